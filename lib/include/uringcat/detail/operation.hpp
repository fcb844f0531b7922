// The awaiter skeleton shared by every socket operation.
//
// `operation<Derived>` holds what DESIGN.md asks of an awaiter: its SQE inputs by value (in
// Derived), the awaiting coroutine, the result, and the deadline. It is neither copyable nor
// movable: its address (or its slot's) is the CQE user_data. Derived supplies
//   void prep(io_uring_sqe*) noexcept       fill the SQE
//   bool on_result(int res) noexcept        optional: return true to keep going (resubmitted)
// and its own await_resume built on `error()`.
#pragma once

#include <liburing.h>

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <system_error>

#include "uringcat/detail/op_base.hpp"
#include "uringcat/error.hpp"
#include "uringcat/io_context.hpp"
#include "uringcat/timeout.hpp"

namespace uringcat::detail {

template <class Derived>
class operation : public op_base {
 public:
  operation(io_context& io, timeout t, bool detachable_op = false) noexcept
      : op_base(&complete_thunk, &prepare_thunk, &Derived::abandon_result), io_(&io), timeout_(t) {
    detachable = detachable_op;
  }
  ~operation() {
    if (heap_index != no_index || waiting || slot) io_->forget(*this);
  }

  /// Computes the deadline (a relative timeout starts now) and completes at once, without a
  /// syscall, when it has already passed or Derived has nothing to do.
  bool await_ready() noexcept {
    when = timeout_.from_now();
    if (when.is_set() && when.expired()) {
      res_ = -ETIMEDOUT;
      return true;
    }
    return static_cast<Derived*>(this)->ready_without_io();
  }

  bool await_suspend(std::coroutine_handle<> awaiting) noexcept {
    awaiting_ = awaiting;
    const int r = io_->start(*this);
    if (r < 0) {
      res_ = r;
      return false;
    }
    return true;
  }

  // Defaults for Derived.
  bool ready_without_io() noexcept { return false; }
  bool on_result(int) noexcept { return false; }
  static void abandon_result(op_base*, int) noexcept {}

 protected:
  /// The result as an error: a deadline is std::errc::timed_out whichever path reported it
  /// (the reactor's heap, the linked timeout's cancellation, or the kernel's own ETIMEDOUT).
  std::error_code error() const noexcept {
    if (res_ >= 0) return {};
    if (res_ == -ETIMEDOUT) return std::make_error_code(std::errc::timed_out);
    if (when.is_set() && (res_ == -ECANCELED || (res_ == -EINTR && when.expired())))
      return std::make_error_code(std::errc::timed_out);
    return system_error_code(res_);
  }

  /// Queues the operation again (send_all after a partial send). Returns false and sets
  /// the result if the ring refused.
  bool resubmit() noexcept {
    const int r = io_->start(*this);
    if (r < 0) res_ = r;
    return r == 0;
  }

  io_context* io_;
  timeout timeout_;
  std::coroutine_handle<> awaiting_;
  int res_ = 0;

 private:
  static void prepare_thunk(op_base* op, io_uring_sqe* sqe) noexcept {
    static_cast<Derived*>(op)->prep(sqe);
  }
  static void complete_thunk(op_base* op, int res, std::uint32_t) noexcept {
    auto* self = static_cast<Derived*>(op);
    self->res_ = res;
    if (self->on_result(res)) return;
    self->awaiting_.resume();
  }
};

}  // namespace uringcat::detail
