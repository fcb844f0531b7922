// poll_watch: readiness of one descriptor through IORING_OP_POLL_ADD, for an owner that waits
// for several things at once and is told through a callback instead of being resumed.
//
// The asynchronous resolver needs this: it waits for any of c-ares's sockets to become ready
// or for c-ares's next timer, whichever comes first, and one co_await resumes a coroutine
// only once. So each watch is an operation (operation<>, on the reactor like every other
// one) that is never awaited: when it completes it calls `notify(owner, watch)` on the
// reactor's thread, and the owner decides what to resume.
//
// Every watch has a deadline, and that deadline is how the owner's timers are driven: a
// watch reports -ETIMEDOUT at `until` from the reactor's own deadline heap (exactly, even
// with thousands pending), and a descriptor that never becomes ready doubles as a pure timer.
// A POLL_ADD holds no pointer into the watch, so a watch is detachable: destroying an armed
// watch (the owner lost interest) unhooks it from the reactor at once; the kernel's poll then
// ends by its linked timeout shortly after `until` and its CQE goes to a reactor-owned slot.
// That is also why a watch without a deadline is not offered: its CQE would have nowhere safe
// to land after its owner is gone.
#pragma once

#include <liburing.h>

#include <cassert>
#include <coroutine>

#include "uringcat/detail/operation.hpp"
#include "uringcat/io_context.hpp"
#include "uringcat/timeout.hpp"

namespace uringcat::detail {

class poll_watch final : public operation<poll_watch> {
  using base = operation<poll_watch>;

 public:
  /// Called once per arm() that went to the ring, with the watch's result(): the poll's
  /// revents (> 0), -ETIMEDOUT at the deadline, or another negative errno. The owner may
  /// destroy or re-arm the watch inside the call.
  using notify_fn = void (*)(void* owner, poll_watch& watch) noexcept;

  poll_watch(io_context& io, notify_fn notify, void* owner) noexcept
      : base(io, no_timeout, /*detachable_op=*/true), notify_(notify), owner_(owner) {}

  /// Starts watching `fd` for `events` (POLLIN, POLLOUT) until `until`, which must be set.
  /// Returns true when the poll is in flight (notify comes later); false when it completed at
  /// once (the deadline had passed, or the ring refused): result() holds why, and notify is
  /// not called for it. The watch must not be armed already.
  bool arm(int fd, unsigned events, deadline until) noexcept {
    assert(!armed_ && until.is_set());
    fd_ = fd;
    events_ = events;
    fired_ = false;
    this->timeout_ = until;
    if (this->await_ready() || !this->await_suspend(std::noop_coroutine())) {
      result_ = this->res_;
      fired_ = true;
      return false;
    }
    armed_ = true;
    return true;
  }

  int fd() const noexcept { return fd_; }
  unsigned events() const noexcept { return events_; }
  /// The deadline of the current (or last) arm().
  deadline until() const noexcept { return this->when; }
  /// In flight: armed and not yet completed.
  bool armed() const noexcept { return armed_; }
  /// Completed since the last arm() (through notify, or at once), and not yet consumed.
  bool fired() const noexcept { return fired_; }
  int result() const noexcept { return result_; }
  /// Marks the result as handled.
  void consume() noexcept { fired_ = false; }

  // For operation<>.
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_poll_add(sqe, fd_, events_); }
  bool on_result(int res) noexcept {
    armed_ = false;
    fired_ = true;
    result_ = res;
    notify_(owner_, *this);  // may destroy *this: nothing below touches it
    return true;             // nobody co_awaits a watch: never resume awaiting_
  }

 private:
  notify_fn notify_;
  void* owner_;
  int fd_ = -1;
  unsigned events_ = 0;
  int result_ = 0;
  bool armed_ = false;
  bool fired_ = false;
};

}  // namespace uringcat::detail
