// io_context: the reactor. One io_uring, one thread, and the loop that resumes coroutines.
//
// Each loop turn is one io_uring_submit_and_wait_timeout: it submits what the last turn
// queued and sleeps until a completion arrives or the earliest deadline the reactor tracks
// itself comes due. Then it reaps every CQE into a private buffer, advances the CQ, and only
// then resumes the coroutines (so user code never runs against a half-consumed CQ), and
// finally reports the deadlines that have passed.
//
// Timeouts, and why there are two mechanisms (DESIGN.md, "Timeouts at scale"):
//  * Every operation with a deadline is linked to an IORING_OP_LINK_TIMEOUT with an absolute
//    CLOCK_MONOTONIC deadline. The kernel enforces it and cancels the operation by itself,
//    with no extra syscall; for one operation that is as exact as anything here.
//  * When thousands of linked timeouts expire together, the kernel cancels each linked
//    operation as task work, one after the other, and the CQEs trail the deadlines by
//    milliseconds. So for operations that hold no memory the kernel still writes after
//    submission (connect: the kernel copies the address at prep), the reactor keeps its own
//    deadline heap, sleeps exactly until the earliest deadline, and tells the awaiting
//    coroutine timed_out at once; the operation's CQE lands in a reactor-owned slot whenever
//    it comes. The kernel's operation is ended by its linked timeout, set `backstop` (5 ms)
//    after the deadline, so that the kernel's burst of cancellations comes after the reactor
//    has reported, and DEFER_TASKRUN keeps that work inside our own io_uring_enter calls, in
//    bounded batches, so reporting stays on time while the kernel catches up.
//  * recv, send, send_all, recv_exact and accept with a deadline wait for readiness
//    (POLL_ADD, which holds no pointer into the caller's memory) and then move bytes or take
//    the connection without blocking, so they are detachable too: bytes or connections that
//    arrive at the deadline stay in the socket for the next call, never lost.
//  * What is left relies on the linked timeout alone: shutdown and close with a deadline,
//    and untimed operations (direct IORING_OP_SEND / RECV / ACCEPT), which wait for their CQE.
// Measured on this 2-core VM (Linux 6.18, bench/connect_timeout and bench/concurrent_timeouts,
// one run each; raw = liburing op + LINK_TIMEOUT with the same ring flags, same run):
//    lateness after the deadline         uringcat p50 / p99       raw linked timeouts p50 / p99
//    1 connect, 100 ms                   119 / 169 us             164 / 243 us
//    10,000 concurrent connects, 1 s     0.12 / 0.69 ms           1.34 / 6.48 ms
//    9,000 concurrent recvs, 1 s         0.03 / 0.17 ms           1.71 / 3.35 ms
// Variants measured before choosing (10,000 connects, DEFER_TASKRUN): heap + linked timeouts
// at the exact deadline reported p99 1.2-2.5 ms (their task work competes with the reactor);
// heap + an explicit ASYNC_CANCEL per expired op 0.55-0.9 ms for connects, but for 9,000
// recvs the cancels cost 10x the CPU (320-470 ms vs 25-30 ms) and p99 grew to 8-10 ms;
// close() alone never ends the kernel's connect, and a connect left to its backstop kept its
// socket retransmitting SYNs (p99 5.5 ms at 10,000 expiring at 1 s; shutdown() fixes it).
// Without DEFER_TASKRUN, exact linked timeouts starve the heap check: 9-45 ms p50.
//
// Cancellation (cancellation.hpp) reaches an operation through cancel(): one still waiting
// for ring room leaves the queue; a detachable one in flight (timed connect, recv, send,
// accept) is detached like at its deadline, so the caller hears operation_canceled at the next
// loop turn without a kernel round trip; any other waits for its own CQE. In the last two
// cases an IORING_OP_ASYNC_CANCEL on its user_data ends the kernel's request now (a detached
// connect would otherwise keep its socket in SYN_SENT until the backstop). Operations that
// nobody can cancel take none of these paths: the timeout machinery above is unchanged.
//
// Ring capacity: a linked pair always gets two SQEs together (the SQ is submitted first if
// fewer are free, so no IOSQE_IO_LINK is ever left dangling), and the number of CQEs that
// in-flight operations can still produce never exceeds the CQ size; operations beyond that
// wait in a FIFO and start as completions free room. Their deadlines still count from the
// moment they were awaited. An operation that listens to a cancellation token keeps one more
// CQE in reserve while in flight, for the ASYNC_CANCEL it may need.
#pragma once

#include <liburing.h>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

#include "uringcat/detail/op_base.hpp"
#include "uringcat/detail/sleep_op.hpp"
#include "uringcat/task.hpp"
#include "uringcat/timeout.hpp"

namespace uringcat {

/// How the ring is set up. The defaults suit tens of thousands of concurrent operations.
struct io_context_options {
  /// Submission queue entries (rounded up to a power of two by the kernel).
  unsigned sq_entries = 256;
  /// Completion queue entries: the bound on CQEs in flight. A timed operation needs two.
  unsigned cq_entries = 32768;
  /// (Both sizes are clamped to the kernel's limits; cq_entries must be at least sq_entries.)
  /// Try IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN first (Linux 6.1+), then
  /// COOP_TASKRUN | TASKRUN_FLAG (5.19+), then no flags. Set false to skip DEFER_TASKRUN.
  bool defer_taskrun = true;
  /// How long after the deadline of a connect (or timed recv) its linked timeout fires and
  /// ends the kernel's operation. The caller is told at the deadline by the reactor itself;
  /// 5 ms is past the reporting lateness measured at 10,000 simultaneous deadlines (p99
  /// < 1 ms), so the kernel's cancellations do not compete with that reporting.
  std::chrono::nanoseconds backstop = std::chrono::milliseconds(5);
};

/// The reactor: owns one io_uring and resumes coroutines whose operations completed.
///
/// Single-threaded, not thread-safe: the first thread that calls run() owns the ring (it
/// need not be the thread that created the io_context); run() from any other thread, or
/// from inside a task it runs, throws std::logic_error. All operations on it must be started
/// by coroutines that run() drives, and it must be destroyed on the thread that ran it (on
/// another, the kernel refuses the final cancel-and-drain).
/// Destroying an io_context with operations in flight cancels them, waits (bounded) for the kernel
/// to finish with their memory, and closes descriptors that completions carried.
class io_context {
 public:
  /// Sets up the ring. Throws std::system_error when io_uring is unavailable, with a message
  /// naming the likely reason (no kernel support, kernel.io_uring_disabled, seccomp).
  io_context() : io_context(io_context_options{}) {}
  explicit io_context(const io_context_options& options);
  io_context(const io_context&) = delete;
  io_context& operator=(const io_context&) = delete;
  ~io_context();

  /// Starts `t` and drives the ring until it ends; returns its value or rethrows its
  /// exception. The task runs on the calling thread.
  template <class T>
  T run(task<T> t) {
    if (!t.valid()) throw std::invalid_argument("uringcat::io_context::run: empty task");
    if (t.done()) throw std::invalid_argument("uringcat::io_context::run: the task has ended");
    drive(t.handle());
    return std::move(t).result();
  }

  /// Runs `t` concurrently with the task run() drives, like Asio's co_spawn(detached): the
  /// io_context owns it until it ends. It starts at the reactor's next loop turn (inside a
  /// run(), on its thread), never inside spawn() itself. A spawned task still pending when
  /// run()'s own task ends keeps its operations in flight and continues at the next run();
  /// one pending when the io_context is destroyed is destroyed after every operation has been
  /// cancelled and drained. An exception that escapes a spawned task ends the current run():
  /// every operation is cancelled and run() rethrows it, so catch what you mean to survive.
  void spawn(task<void> t);
  /// Spawned tasks that have not ended yet.
  std::size_t spawned() const noexcept { return spawned_count_; }

  // --- timers ------------------------------------------------------------------------------

  /// Sleeps for `d` (from when the sleep is awaited) with one IORING_OP_TIMEOUT. Zero or
  /// negative returns at once without a syscall. Cancellable (cancellation.hpp): a cancelled
  /// sleep throws std::system_error with std::errc::operation_canceled; try_sleep_for returns
  /// that code instead (an empty code when it slept to the end). No heap allocation.
  template <class Rep, class Period>
  [[nodiscard]] detail::sleep_op<true> sleep_for(std::chrono::duration<Rep, Period> d) {
    return {*this, timeout(d)};
  }
  template <class Rep, class Period>
  [[nodiscard]] detail::sleep_op<false> try_sleep_for(std::chrono::duration<Rep, Period> d) {
    return {*this, timeout(d)};
  }
  /// Sleeps until `at` on CLOCK_MONOTONIC. An unset deadline sleeps until cancelled.
  [[nodiscard]] detail::sleep_op<true> sleep_until(deadline at) noexcept { return {*this, at}; }
  [[nodiscard]] detail::sleep_op<true> sleep_until(clock::time_point at) noexcept {
    return {*this, timeout(at)};
  }
  [[nodiscard]] detail::sleep_op<false> try_sleep_until(deadline at) noexcept {
    return {*this, at};
  }
  [[nodiscard]] detail::sleep_op<false> try_sleep_until(clock::time_point at) noexcept {
    return {*this, timeout(at)};
  }

  /// The IORING_SETUP_* flags the ring was created with (after falling back).
  unsigned setup_flags() const noexcept { return setup_flags_; }
  /// The IORING_FEAT_* flags the kernel reported.
  unsigned features() const noexcept { return ring_.features; }
  /// CQEs that operations in flight may still produce.
  std::size_t cqes_in_flight() const noexcept { return inflight_; }
  /// The ring, for code that prepares its own SQEs (benchmarks comparing against raw use).
  io_uring* native_handle() noexcept { return &ring_; }

  // --- for operations (uringcat::detail) -------------------------------------------------

  /// Queues `op` (and its linked timeout when op.when is set). Returns 0, or a negative
  /// errno when the ring failed at once (the caller then completes without suspending).
  int start(detail::op_base& op) noexcept;
  /// Withdraws `op` from every reactor structure; for an awaiter destroyed before its CQE.
  void forget(detail::op_base& op) noexcept;
  /// Cancels `op`, which is in flight or waiting for ring room (see the top of this file).
  /// Never resumes anyone itself: a cancelled operation that need not wait for its CQE is
  /// completed with -ECANCELED at the next loop turn.
  void cancel(detail::op_base& op) noexcept;
  /// Hands the kernel the SQEs queued so far by the io_context running on this thread, if
  /// any: called before a descriptor is closed, so that an operation queued on it cannot
  /// reach the kernel after its number was reused by another socket.
  static void flush_current() noexcept;

 private:
  void drive(std::coroutine_handle<> root);
  void turn();
  int submit_now(detail::op_base& op) noexcept;
  int reserve_sqes(unsigned n) noexcept;
  void reap_and_dispatch();
  void start_waiting_ops() noexcept;
  void expire_deadlines();
  void cancel_everything_and_drain() noexcept;
  void detach(detail::op_base& op) noexcept;
  void drain_for(clock::duration limit, bool until_detached_done) noexcept;
  void issue_cancel(std::uint64_t user_data) noexcept;
  void release_cancel_reserve(detail::op_base& op) noexcept;
  void complete_cancelled();
  void ready_push(detail::op_base* op) noexcept;
  void ready_unlink(detail::op_base* op) noexcept;

  // Deadline heap (detachable operations only), min-heap on op->when.
  void heap_push(detail::op_base* op);
  void heap_erase(detail::op_base* op) noexcept;
  void heap_sift_up(std::size_t i) noexcept;
  void heap_sift_down(std::size_t i) noexcept;

  // Capacity queue.
  void wait_push(detail::op_base* op) noexcept;
  void wait_unlink(detail::op_base* op) noexcept;

  // Slots.
  detail::op_slot* slot_acquire();
  void slot_release(detail::op_slot* s) noexcept;

  struct completion {
    std::uint64_t user_data;
    std::int32_t res;
    std::uint32_t flags;
  };

  io_uring ring_{};
  unsigned setup_flags_ = 0;
  bool ring_enabled_ = false;
  std::size_t cq_capacity_ = 0;
  std::size_t inflight_ = 0;
  std::size_t detached_ = 0;        ///< slots whose op was reported, awaiting the kernel's CQE
  std::size_t cancel_reserve_ = 0;  ///< CQEs kept for cancels cancellable ops may need
  std::chrono::nanoseconds backstop_{};
  std::thread::id owner_{};
  bool running_ = false;

  // Spawned tasks: a small coroutine per task that owns it (its promise is a node of an
  // intrusive list, so teardown can destroy the ones still pending).
  struct spawn_promise;
  struct spawn_owner;
  static spawn_owner own(io_context& io, task<void> t);
  void start_spawned();
  void unlink_spawned(spawn_promise* p) noexcept;
  void destroy_spawned() noexcept;
  std::vector<std::coroutine_handle<>> to_start_;
  spawn_promise* spawned_head_ = nullptr;
  std::size_t spawned_count_ = 0;
  std::exception_ptr spawn_error_;

  std::vector<completion> completions_;
  std::vector<detail::op_base*> heap_;
  detail::op_base* wait_head_ = nullptr;
  detail::op_base* wait_tail_ = nullptr;
  detail::op_base* ready_head_ = nullptr;  ///< cancelled ops to complete at the next turn
  detail::op_base* ready_tail_ = nullptr;

  std::vector<std::unique_ptr<detail::op_slot[]>> slot_chunks_;
  detail::op_slot* free_slots_ = nullptr;
};

}  // namespace uringcat
