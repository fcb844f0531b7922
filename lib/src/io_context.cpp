// The reactor's loop, ring setup with feature fallback, deadline heap and capacity queue.
// See io_context.hpp for the design and the measurements behind it.
#include "uringcat/io_context.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

namespace uringcat {
namespace {

constexpr std::uint64_t slot_tag = 1;  // low bit of user_data: the CQE goes through a slot
constexpr std::size_t slot_chunk = 256;

std::string read_sysctl(const char* path) {
  std::ifstream in(path);
  std::string value;
  if (in) std::getline(in, value);
  return value;
}

// Why io_uring_setup failed, in words an operator can act on.
std::string unavailable_message(int err) {
  std::string msg = "io_uring is unavailable: ";
  switch (err) {
    case ENOSYS:
      return msg + "this kernel has no io_uring support, or a seccomp filter hides io_uring_setup";
    case EPERM: {
      const std::string disabled = read_sysctl("/proc/sys/kernel/io_uring_disabled");
      if (disabled == "2") return msg + "disabled by the sysctl kernel.io_uring_disabled=2";
      if (disabled == "1")
        return msg +
               "kernel.io_uring_disabled=1 allows it only to members of kernel.io_uring_group, "
               "or a seccomp filter (a container's default profile) denies io_uring_setup";
      return msg + "denied by a seccomp filter (container runtimes' default profiles block it)";
    }
    case ENOMEM:
      return msg + "not enough locked memory for the rings (raise RLIMIT_MEMLOCK)";
    default:
      return msg + "io_uring_setup failed";
  }
}

__kernel_timespec to_timespec(clock::duration d) noexcept {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return {static_cast<long long>(ns / 1'000'000'000), static_cast<long long>(ns % 1'000'000'000)};
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Setup and teardown
// ---------------------------------------------------------------------------------------

namespace {
thread_local io_context* running_here = nullptr;  // the io_context whose run() is on this thread
}  // namespace

void io_context::flush_current() noexcept {
  if (io_context* io = running_here; io && io_uring_sq_ready(&io->ring_) > 0)
    (void)io_uring_submit(&io->ring_);
}

io_context::io_context(const io_context_options& options) {
  if (options.sq_entries == 0 || options.cq_entries < options.sq_entries)
    throw std::invalid_argument(
        "uringcat::io_context: sq_entries must be positive and cq_entries at least sq_entries");
  // Flag sets from best to most compatible. DEFER_TASKRUN keeps the kernel's completion work
  // (cancellations of expired linked timeouts above all) inside our own io_uring_enter calls,
  // in bounded batches, instead of interrupting us with it. R_DISABLED lets the thread that
  // first calls run() become the single issuer, not the thread that constructed us.
  constexpr unsigned base = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
  const unsigned attempts[] = {
      base | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
          IORING_SETUP_R_DISABLED,
      base | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      base,
  };
  int err = EINVAL;
  for (unsigned flags : attempts) {
    if (!options.defer_taskrun && (flags & IORING_SETUP_DEFER_TASKRUN)) continue;
    io_uring_params params{};
    params.flags = flags;
    params.cq_entries = options.cq_entries;
    const int r = io_uring_queue_init_params(options.sq_entries, &ring_, &params);
    if (r == 0) {
      setup_flags_ = flags;
      err = 0;
      break;
    }
    err = -r;
    if (err != EINVAL) break;  // EINVAL: this kernel lacks a flag; anything else is final
  }
  if (err != 0) throw std::system_error(err, std::system_category(), unavailable_message(err));

  ring_enabled_ = !(setup_flags_ & IORING_SETUP_R_DISABLED);
  cq_capacity_ = ring_.cq.ring_entries;
  backstop_ = options.backstop;
  completions_.reserve(cq_capacity_);
  heap_.reserve(1024);
}

io_context::~io_context() {
  cancel_everything_and_drain();
  destroy_spawned();  // after the drain: the kernel no longer holds anything of theirs
  io_uring_queue_exit(&ring_);
}

void io_context::cancel_everything_and_drain() noexcept {
  // Nobody will be resumed any more: unhook every operation from our structures first, so
  // that awaiters destroyed later do not reach back into a dead reactor.
  while (wait_head_) wait_unlink(wait_head_);
  while (ready_head_) ready_unlink(ready_head_);
  for (auto* op : heap_) op->heap_index = detail::op_base::no_index;
  heap_.clear();
  for (auto& chunk : slot_chunks_) {
    for (std::size_t i = 0; i < slot_chunk; ++i) {
      detail::op_slot& s = chunk[i];
      if (s.target) {
        s.target->slot = nullptr;
        s.target = nullptr;
      }
    }
  }
  if (!ring_enabled_ || inflight_ == 0) return;

  // Operations the reactor already reported (detached) end by their linked timeouts within
  // `backstop_`: wait for those first, since one IORING_ASYNC_CANCEL_ANY over thousands of
  // requests was measured to take most of a second. Then cancel whatever the kernel still
  // holds and wait (bounded) until it has let go of every buffer and handed back every
  // descriptor.
  if (detached_ > 0) drain_for(backstop_ + std::chrono::milliseconds(50), true);
  if (inflight_ == 0) return;
  if (reserve_sqes(1) == 0) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, 0);
    ++inflight_;
  }
  drain_for(std::chrono::seconds(5), false);
}

void io_context::drain_for(clock::duration limit, bool until_detached_done) noexcept {
  // Consumes CQEs without resuming anyone: the reactor is being torn down.
  const auto give_up = clock::now() + limit;
  while (inflight_ > 0 && !(until_detached_done && detached_ == 0) && clock::now() < give_up) {
    __kernel_timespec ts = to_timespec(
        std::min<clock::duration>(give_up - clock::now(), std::chrono::milliseconds(100)));
    io_uring_cqe* cqe = nullptr;
    const int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) return;
    unsigned head = 0;
    unsigned n = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++n;
      if (cqe->user_data == LIBURING_UDATA_TIMEOUT) continue;
      --inflight_;
      const std::uint64_t ud = cqe->user_data;
      if (ud == 0) continue;
      if (ud & slot_tag) {
        slot_release(reinterpret_cast<detail::op_slot*>(ud & ~slot_tag));
        continue;
      }
      auto* op = reinterpret_cast<detail::op_base*>(ud);
      if (op->abandon && cqe->res >= 0) op->abandon(op, cqe->res);
    }
    io_uring_cq_advance(&ring_, n);
  }
}

// ---------------------------------------------------------------------------------------
// The loop
// ---------------------------------------------------------------------------------------

void io_context::drive(std::coroutine_handle<> root) {
  // One thread drives the ring (IORING_SETUP_SINGLE_ISSUER makes the kernel refuse any
  // other, and nothing here is synchronised): the first thread to call run() owns it.
  // Refuse others before the task runs, so it never queues work the owner would submit.
  if (owner_ == std::thread::id{}) owner_ = std::this_thread::get_id();
  if (owner_ != std::this_thread::get_id())
    throw std::logic_error(
        "uringcat::io_context::run: called from a thread other than the one that first ran it");
  if (running_)
    throw std::logic_error("uringcat::io_context::run: called from inside a task it runs");
  running_ = true;
  io_context* const outer = std::exchange(running_here, this);
  struct leave {
    io_context& io;
    io_context* outer;
    ~leave() {
      // Whatever the last turn queued goes to the kernel now, not at some later run().
      if (io.ring_enabled_ && io_uring_sq_ready(&io.ring_) > 0) (void)io_uring_submit(&io.ring_);
      running_here = outer;
      io.running_ = false;
    }
  } guard{*this, outer};
  if (!ring_enabled_) {
    // liburing 2.3 has no io_uring_enable_rings(): register the opcode directly.
    if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr,
                  0) != 0)
      throw std::system_error(errno, std::system_category(), "IORING_REGISTER_ENABLE_RINGS");
    ring_enabled_ = true;
  }
  try {
    root.resume();
    for (;;) {
      start_spawned();
      if (spawn_error_) std::rethrow_exception(std::exchange(spawn_error_, nullptr));
      if (root.done()) break;
      turn();
    }
  } catch (...) {
    // The ring failed under us. The task's frames are about to be destroyed with it: make
    // sure the kernel no longer holds their buffers first.
    cancel_everything_and_drain();
    throw;
  }
}

void io_context::turn() {
  start_waiting_ops();
  if (!to_start_.empty()) return;  // a completion spawned a task: start it first
  if (ready_head_) {
    // Cancelled operations to report: hand the kernel their ASYNC_CANCELs now (so their
    // requests end at once), take what has completed meanwhile, but do not sleep.
    const int s = io_uring_submit(&ring_);
    if (s < 0 && s != -EINTR && s != -EAGAIN && s != -EBUSY)
      throw std::system_error(-s, std::system_category(), "io_uring_submit");
    reap_and_dispatch();
    complete_cancelled();
    expire_deadlines();
    return;
  }
  if (inflight_ == 0 && heap_.empty() && !wait_head_ && io_uring_sq_ready(&ring_) == 0) {
    // Nothing can ever resume the task: it awaits something that is not an operation of
    // this io_context. Say so instead of sleeping forever.
    throw std::logic_error(
        "uringcat::io_context::run: the task is suspended with no operation in flight "
        "(it awaits something no io_context operation will complete)");
  }

  __kernel_timespec ts{};
  __kernel_timespec* wait_for = nullptr;
  if (!heap_.empty()) {
    // The kernel starts a relative wait timeout after it has processed the submissions of
    // the same call (a connect's SYN takes ~100 us), which would make every deadline that
    // late. So submit first, then wait for exactly what remains. (IORING_ENTER_ABS_TIMER
    // would avoid the second syscall, but only from Linux 6.12 and not through liburing 2.3.)
    if (io_uring_sq_ready(&ring_) > 0) {
      const int s = io_uring_submit(&ring_);
      if (s < 0 && s != -EINTR && s != -EAGAIN && s != -EBUSY)
        throw std::system_error(-s, std::system_category(), "io_uring_submit");
    }
    ts = to_timespec(heap_.front()->when.remaining(clock::now()));
    wait_for = &ts;
  }
  io_uring_cqe* cqe = nullptr;
  const int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, wait_for, nullptr);
  if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
    throw std::system_error(-r, std::system_category(), "io_uring_submit_and_wait_timeout");

  reap_and_dispatch();
  expire_deadlines();
  complete_cancelled();
}

void io_context::reap_and_dispatch() {
  // Reap everything first, then resume: user code never runs against a half-consumed CQ.
  // The count is read once, so completions the kernel keeps posting meanwhile (without
  // DEFER_TASKRUN it may) wait for the next turn instead of starving the deadline check.
  completions_.clear();
  const unsigned ready = io_uring_cq_ready(&ring_);
  unsigned head = 0;
  unsigned seen = 0;
  io_uring_cqe* cqe = nullptr;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    if (seen == ready) break;
    ++seen;
    if (cqe->user_data == LIBURING_UDATA_TIMEOUT) continue;  // liburing's own (old kernels)
    completions_.push_back({cqe->user_data, cqe->res, cqe->flags});
  }
  io_uring_cq_advance(&ring_, seen);
  inflight_ -= completions_.size();

  for (const completion& c : completions_) {
    if (c.user_data == 0) continue;  // a linked timeout's own CQE, or a cancel request's
    detail::op_base* op;
    if (c.user_data & slot_tag) {
      auto* s = reinterpret_cast<detail::op_slot*>(c.user_data & ~slot_tag);
      op = s->target;
      slot_release(s);
      if (!op) continue;  // its deadline was already reported; the kernel is done with it now
      op->slot = nullptr;
    } else {
      op = reinterpret_cast<detail::op_base*>(c.user_data);
    }
    if (op->heap_index != detail::op_base::no_index) heap_erase(op);
    release_cancel_reserve(*op);
    op->complete(op, c.res, c.flags);
  }
}

void io_context::expire_deadlines() {
  if (heap_.empty()) return;
  const auto now = clock::now();
  while (!heap_.empty() && heap_.front()->when.time() <= now) {
    detail::op_base* op = heap_.front();
    heap_erase(op);
    if (op->waiting) {
      wait_unlink(op);  // never reached the kernel: nothing to end
    } else if (op->slot) {
      detach(*op);
    }
    release_cancel_reserve(*op);
    op->complete(op, -ETIMEDOUT, 0);
  }
}

void io_context::detach(detail::op_base& op) noexcept {
  // An op reported before its SQE reached the kernel would reach it afterwards, reading an
  // address and a timespec from an awaiter that may be gone, on a descriptor number the
  // caller has closed and may have reused. So make sure the kernel has it first.
  if (io_uring_sq_ready(&ring_) > 0) (void)io_uring_submit(&ring_);
  // The op's CQE will go to its slot alone, when the kernel ends the operation: by itself,
  // or through the linked timeout `backstop_` after the deadline. There is deliberately no
  // IORING_OP_ASYNC_CANCEL here: measured with 9,000 expiring recvs, explicit cancels cost
  // 320-470 ms of CPU against 25-30 ms for the linked timeouts, and the reactor, busy
  // cancelling, reported later deadlines milliseconds late.
  op.slot->target = nullptr;
  op.slot->detached = true;
  ++detached_;
  op.slot = nullptr;
  release_cancel_reserve(op);
}

// ---------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------

void io_context::cancel(detail::op_base& op) noexcept {
  if (op.cancel_requested) return;
  op.cancel_requested = true;
  if (op.waiting) {
    // Never reached the kernel: nothing to end there.
    wait_unlink(&op);
    if (op.heap_index != detail::op_base::no_index) heap_erase(&op);
    ready_push(&op);
  } else if (op.slot) {
    // Detachable and in flight: report now, and let the kernel's request end into its slot.
    const std::uint64_t ud = reinterpret_cast<std::uintptr_t>(op.slot) | slot_tag;
    if (op.heap_index != detail::op_base::no_index) heap_erase(&op);
    detach(op);  // submits the op's own SQE first if it is still queued
    issue_cancel(ud);
    ready_push(&op);
  } else {
    // Its CQE, -ECANCELED (or its own result if that came first), completes it. The cancel
    // is queued after the op's SQE, and the kernel takes SQEs in order, so it can never hit
    // another operation that later reuses this address.
    release_cancel_reserve(op);
    issue_cancel(reinterpret_cast<std::uintptr_t>(&op));
  }
}

void io_context::issue_cancel(std::uint64_t user_data) noexcept {
  // The CQE this needs was reserved when the op started (release_cancel_reserve gave it back
  // to the pool just before). If the ring is broken the op still ends: by its own deadline,
  // or at teardown.
  if (reserve_sqes(1) < 0) return;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  io_uring_prep_cancel64(sqe, user_data, 0);
  io_uring_sqe_set_data64(sqe, 0);
  ++inflight_;
}

void io_context::release_cancel_reserve(detail::op_base& op) noexcept {
  if (!op.holds_cancel_reserve) return;
  op.holds_cancel_reserve = false;
  --cancel_reserve_;
}

void io_context::complete_cancelled() {
  // Operations resumed here may cancel others: those join the list and run in this loop.
  while (ready_head_) {
    detail::op_base* op = ready_head_;
    ready_unlink(op);
    release_cancel_reserve(*op);
    op->complete(op, -ECANCELED, 0);
  }
}

void io_context::ready_push(detail::op_base* op) noexcept {
  op->reported = true;
  op->wait_next = nullptr;
  op->wait_prev = ready_tail_;
  if (ready_tail_)
    ready_tail_->wait_next = op;
  else
    ready_head_ = op;
  ready_tail_ = op;
}

void io_context::ready_unlink(detail::op_base* op) noexcept {
  if (op->wait_prev)
    op->wait_prev->wait_next = op->wait_next;
  else
    ready_head_ = op->wait_next;
  if (op->wait_next)
    op->wait_next->wait_prev = op->wait_prev;
  else
    ready_tail_ = op->wait_prev;
  op->wait_prev = op->wait_next = nullptr;
  op->reported = false;
}

// ---------------------------------------------------------------------------------------
// Submission
// ---------------------------------------------------------------------------------------

// CQEs an operation may produce: its own, and its linked timeout's.
static unsigned cqes_needed(const detail::op_base& op) noexcept {
  return op.when.is_set() ? 2 : 1;
}

// CQ room an operation needs to start: its CQEs, and one kept for a cancel if it may get one.
static unsigned cq_room_needed(const detail::op_base& op) noexcept {
  return cqes_needed(op) + (op.cancellable && !op.holds_cancel_reserve ? 1 : 0);
}

int io_context::start(detail::op_base& op) noexcept {
  const bool must_wait =
      wait_head_ || inflight_ + cancel_reserve_ + cq_room_needed(op) > cq_capacity_;
  // The heap holds the deadlines the reactor reports itself: those of detachable ops, and
  // those of any timed op still waiting for ring room (the kernel cannot time out what it
  // has not been given).
  if (op.when.is_set() && (op.detachable || must_wait)) {
    try {
      heap_push(&op);
    } catch (const std::bad_alloc&) {
      return -ENOMEM;
    }
  }
  if (must_wait) {
    wait_push(&op);  // FIFO: later operations never overtake earlier ones
    return 0;
  }
  const int r = submit_now(op);
  if (r < 0 && op.heap_index != detail::op_base::no_index) heap_erase(&op);
  return r;
}

int io_context::submit_now(detail::op_base& op) noexcept {
  const bool timed = op.when.is_set();
  const int r = reserve_sqes(timed ? 2 : 1);
  if (r < 0) return r;

  std::uint64_t user_data = reinterpret_cast<std::uintptr_t>(&op);
  if (timed) {
    // The kernel-side bound. For a detachable op the reactor reports the deadline itself;
    // its linked timeout ends the kernel's operation `backstop_` later, so that a burst of
    // expiring linked timeouts never competes with the reactor's own reporting.
    deadline bound = op.when;
    if (op.detachable) bound = deadline(op.when.time() + backstop_);
    op.kernel_deadline = bound.to_kernel_timespec();
  }
  if (op.detachable && timed) {
    detail::op_slot* s;
    try {
      s = slot_acquire();
    } catch (const std::bad_alloc&) {
      return -ENOMEM;
    }
    s->target = &op;
    op.slot = s;
    user_data = reinterpret_cast<std::uintptr_t>(s) | slot_tag;
  }
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  op.prepare(&op, sqe);
  io_uring_sqe_set_data64(sqe, user_data);
  if (timed) {
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe* t = io_uring_get_sqe(&ring_);
    io_uring_prep_link_timeout(t, &op.kernel_deadline, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(t, 0);
  }
  inflight_ += cqes_needed(op);
  if (op.cancellable && !op.holds_cancel_reserve) {
    op.holds_cancel_reserve = true;
    ++cancel_reserve_;
  }
  return 0;
}

int io_context::reserve_sqes(unsigned n) noexcept {
  // A linked pair must get both SQEs from the same batch: submit what is queued first.
  // Failing, it returns -EBUSY rather than the kernel's -EAGAIN, which operations would
  // take for their own socket's EAGAIN.
  for (int attempt = 0; io_uring_sq_space_left(&ring_) < n; ++attempt) {
    const int r = io_uring_submit(&ring_);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) return r;
    if (attempt == 64) return -EBUSY;
  }
  return 0;
}

void io_context::start_waiting_ops() noexcept {
  while (wait_head_) {
    detail::op_base* op = wait_head_;
    if (inflight_ + cancel_reserve_ + cq_room_needed(*op) > cq_capacity_) break;
    wait_unlink(op);
    // From here the linked timeout enforces a non-detachable op's deadline.
    if (!op->detachable && op->heap_index != detail::op_base::no_index) heap_erase(op);
    const int r = submit_now(*op);
    if (r < 0) {
      if (op->heap_index != detail::op_base::no_index) heap_erase(op);
      op->complete(op, r, 0);
    }
  }
}

void io_context::forget(detail::op_base& op) noexcept {
  if (op.heap_index != detail::op_base::no_index) heap_erase(&op);
  if (op.waiting) wait_unlink(&op);
  if (op.reported) ready_unlink(&op);
  if (op.slot) detach(op);
  release_cancel_reserve(op);
}

namespace detail {
int start_op(io_context& io, op_base& op) noexcept {
  return io.start(op);
}
void forget_op(io_context& io, op_base& op) noexcept {
  io.forget(op);
}
void cancel_op(io_context& io, op_base& op) noexcept {
  io.cancel(op);
}
}  // namespace detail

// ---------------------------------------------------------------------------------------
// Deadline heap
// ---------------------------------------------------------------------------------------

void io_context::heap_push(detail::op_base* op) {
  heap_.push_back(op);
  op->heap_index = heap_.size() - 1;
  heap_sift_up(op->heap_index);
}

void io_context::heap_erase(detail::op_base* op) noexcept {
  const std::size_t i = op->heap_index;
  op->heap_index = detail::op_base::no_index;
  detail::op_base* last = heap_.back();
  heap_.pop_back();
  if (last == op) return;
  heap_[i] = last;
  last->heap_index = i;
  heap_sift_up(i);
  heap_sift_down(last->heap_index);
}

void io_context::heap_sift_up(std::size_t i) noexcept {
  detail::op_base* op = heap_[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!(op->when.time() < heap_[parent]->when.time())) break;
    heap_[i] = heap_[parent];
    heap_[i]->heap_index = i;
    i = parent;
  }
  heap_[i] = op;
  op->heap_index = i;
}

void io_context::heap_sift_down(std::size_t i) noexcept {
  detail::op_base* op = heap_[i];
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && heap_[child + 1]->when.time() < heap_[child]->when.time()) ++child;
    if (!(heap_[child]->when.time() < op->when.time())) break;
    heap_[i] = heap_[child];
    heap_[i]->heap_index = i;
    i = child;
  }
  heap_[i] = op;
  op->heap_index = i;
}

// ---------------------------------------------------------------------------------------
// Capacity queue and slots
// ---------------------------------------------------------------------------------------

void io_context::wait_push(detail::op_base* op) noexcept {
  op->waiting = true;
  op->wait_next = nullptr;
  op->wait_prev = wait_tail_;
  if (wait_tail_)
    wait_tail_->wait_next = op;
  else
    wait_head_ = op;
  wait_tail_ = op;
}

void io_context::wait_unlink(detail::op_base* op) noexcept {
  if (op->wait_prev)
    op->wait_prev->wait_next = op->wait_next;
  else
    wait_head_ = op->wait_next;
  if (op->wait_next)
    op->wait_next->wait_prev = op->wait_prev;
  else
    wait_tail_ = op->wait_prev;
  op->wait_prev = op->wait_next = nullptr;
  op->waiting = false;
}

detail::op_slot* io_context::slot_acquire() {
  if (!free_slots_) {
    // Grows in chunks and never shrinks: after warm-up, acquiring a slot allocates nothing.
    auto chunk = std::make_unique<detail::op_slot[]>(slot_chunk);
    for (std::size_t i = 0; i < slot_chunk; ++i) {
      chunk[i].next_free = free_slots_;
      free_slots_ = &chunk[i];
    }
    slot_chunks_.push_back(std::move(chunk));
  }
  detail::op_slot* s = free_slots_;
  free_slots_ = s->next_free;
  s->next_free = nullptr;
  return s;
}

void io_context::slot_release(detail::op_slot* s) noexcept {
  if (s->detached) --detached_;
  s->detached = false;
  s->target = nullptr;
  s->next_free = free_slots_;
  free_slots_ = s;
}

// ---------------------------------------------------------------------------------------
// Spawned tasks
// ---------------------------------------------------------------------------------------

struct io_context::spawn_promise {
  spawn_promise(io_context& owner, task<void>&) noexcept : io(&owner) {}
  ~spawn_promise() { io->unlink_spawned(this); }

  spawn_owner get_return_object() noexcept;
  std::suspend_always initial_suspend() const noexcept { return {}; }
  // Ends by freeing its own frame (and the task it owns); the destructor unlinks it.
  std::suspend_never final_suspend() const noexcept { return {}; }
  void return_void() const noexcept {}
  void unhandled_exception() noexcept {
    if (!io->spawn_error_) io->spawn_error_ = std::current_exception();
  }

  io_context* io;
  spawn_promise* prev = nullptr;
  spawn_promise* next = nullptr;
};

struct io_context::spawn_owner {
  using promise_type = spawn_promise;
  std::coroutine_handle<spawn_promise> handle;
};

io_context::spawn_owner io_context::spawn_promise::get_return_object() noexcept {
  return {std::coroutine_handle<spawn_promise>::from_promise(*this)};
}

io_context::spawn_owner io_context::own(io_context&, task<void> t) {
  co_await std::move(t);
}

void io_context::spawn(task<void> t) {
  if (!t.valid()) throw std::invalid_argument("uringcat::io_context::spawn: empty task");
  if (owner_ != std::thread::id{} && owner_ != std::this_thread::get_id())
    throw std::logic_error(
        "uringcat::io_context::spawn: called from a thread that does not run it");
  to_start_.reserve(to_start_.size() + 1);  // the only step that may throw, done first
  const auto h = own(*this, std::move(t)).handle;
  spawn_promise& p = h.promise();
  p.next = spawned_head_;
  if (spawned_head_) spawned_head_->prev = &p;
  spawned_head_ = &p;
  ++spawned_count_;
  to_start_.push_back(h);
}

void io_context::start_spawned() {
  while (!to_start_.empty()) {
    std::vector<std::coroutine_handle<>> batch;
    batch.swap(to_start_);
    for (auto h : batch) h.resume();  // runs until its first suspension (or its end)
  }
}

void io_context::unlink_spawned(spawn_promise* p) noexcept {
  if (p->prev)
    p->prev->next = p->next;
  else
    spawned_head_ = p->next;
  if (p->next) p->next->prev = p->prev;
  p->prev = p->next = nullptr;
  --spawned_count_;
}

void io_context::destroy_spawned() noexcept {
  to_start_.clear();
  while (spawned_head_)
    std::coroutine_handle<spawn_promise>::from_promise(*spawned_head_).destroy();
}

}  // namespace uringcat
