// The awaiter skeleton shared by every socket operation.
//
// `operation<Derived>` holds what DESIGN.md asks of an awaiter: its SQE inputs by value (in
// Derived), the awaiting coroutine, the result, and the deadline. It is neither copyable nor
// movable: its address (or its slot's) is the CQE user_data. Derived supplies
//   void prep(io_uring_sqe*) noexcept       fill the SQE
//   bool on_result(int res) noexcept        optional: return true to keep going (resubmitted)
// and its own await_resume built on `error()`.
//
// Cancellation: awaited from a task, the operation listens to the task's token (task.hpp);
// `.with_cancellation(token)` adds a token of its own (both are listened to). Listening is an
// intrusive node per token inside this awaiter, registered from await_suspend until the
// operation completes: no allocation. A request makes the io_context cancel the operation
// (io_context::cancel); a token already cancelled when the operation is awaited completes it
// at once with operation_canceled, without a syscall.
//
// This header needs io_context only as a name (it reaches the reactor through the functions
// below), so that io_context.hpp can itself offer operations (sleep_for).
#pragma once

#include <liburing.h>

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <system_error>

#include "uringcat/cancellation.hpp"
#include "uringcat/detail/op_base.hpp"
#include "uringcat/error.hpp"
#include "uringcat/task.hpp"
#include "uringcat/timeout.hpp"

namespace uringcat {
class io_context;
}

namespace uringcat::detail {

// The reactor's entry points for operations (io_context::start, forget, cancel).
int start_op(io_context& io, op_base& op) noexcept;
void forget_op(io_context& io, op_base& op) noexcept;
void cancel_op(io_context& io, op_base& op) noexcept;

/// What operation::with_cancellation returns: forwards to the operation it points to.
template <class Op>
struct forwarding_awaiter {
  Op* op;
  bool await_ready() noexcept { return op->await_ready(); }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) noexcept {
    return op->await_suspend(h);
  }
  decltype(auto) await_resume() { return op->await_resume(); }
};

template <class Derived>
class operation : public op_base {
 public:
  operation(io_context& io, timeout t, bool detachable_op = false) noexcept
      : op_base(&complete_thunk, &prepare_thunk, &Derived::abandon_result), io_(&io), timeout_(t) {
    detachable = detachable_op;
  }
  ~operation() {
    stop_listening();
    if (heap_index != no_index || waiting || slot || reported) forget_op(*io_, *this);
  }

  /// Also cancel this operation when `token` is cancelled (in addition to the token of the
  /// task that awaits it): `co_await client.recv(buf, 1s).with_cancellation(stop.token())`.
  /// Returns a one-pointer awaiter forwarding to this operation, which, as a temporary of
  /// that full expression, lives until it ends. (Not a reference to *this: g++ 12 copies an
  /// awaiter given as a glvalue, and operations are not copyable.)
  auto with_cancellation(cancellation_token token) noexcept {
    own_token_ = token;
    return forwarding_awaiter<Derived>{static_cast<Derived*>(this)};
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

  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
    awaiting_ = awaiting;
    const cancellation_token inherited = token_of(awaiting);
    if (own_token_.cancellation_requested() || inherited.cancellation_requested()) {
      cancel_requested = true;
      res_ = -ECANCELED;
      return false;
    }
    const bool a = register_node(own_token_, own_node_);
    const bool b = inherited != own_token_ && register_node(inherited, inherited_node_);
    cancellable = a || b;
    const int r = start_op(*io_, *this);
    if (r < 0) {
      stop_listening();
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
  /// (the reactor's heap, the linked timeout's cancellation, or the kernel's own ETIMEDOUT);
  /// a cancellation that ended the operation is std::errc::operation_canceled.
  std::error_code error() const noexcept {
    if (res_ >= 0) return {};
    if (cancel_requested && (res_ == -ECANCELED || res_ == -EINTR))
      return std::make_error_code(std::errc::operation_canceled);
    if (res_ == -ETIMEDOUT) return std::make_error_code(std::errc::timed_out);
    if (when.is_set() && (res_ == -ECANCELED || (res_ == -EINTR && when.expired())))
      return std::make_error_code(std::errc::timed_out);
    return system_error_code(res_);
  }

  /// Queues the operation again (send_all after a partial send). Returns false and sets
  /// the result if the ring refused, or if cancellation was requested meanwhile.
  bool resubmit() noexcept {
    if (cancel_requested) {
      res_ = -ECANCELED;
      return false;
    }
    const int r = start_op(*io_, *this);
    if (r < 0) res_ = r;
    return r == 0;
  }

  io_context* io_;
  timeout timeout_;
  std::coroutine_handle<> awaiting_;
  int res_ = 0;

 private:
  struct cancel_hook : cancellation_node {
    explicit cancel_hook(operation* o) noexcept : cancellation_node(&run), owner(o) {}
    static void run(cancellation_node* n) noexcept {
      operation* op = static_cast<cancel_hook*>(n)->owner;
      op->stop_listening();  // one request is enough; the other token need not call again
      cancel_op(*op->io_, *op);
    }
    operation* owner;
  };

  void stop_listening() noexcept {
    unregister_node(own_node_);
    unregister_node(inherited_node_);
  }

  static void prepare_thunk(op_base* op, io_uring_sqe* sqe) noexcept {
    static_cast<Derived*>(op)->prep(sqe);
  }
  static void complete_thunk(op_base* op, int res, std::uint32_t) noexcept {
    auto* self = static_cast<Derived*>(op);
    self->res_ = res;
    if (self->on_result(res)) return;
    self->stop_listening();
    self->awaiting_.resume();
  }

  cancellation_token own_token_;
  cancel_hook own_node_{this};
  cancel_hook inherited_node_{this};
};

}  // namespace uringcat::detail
