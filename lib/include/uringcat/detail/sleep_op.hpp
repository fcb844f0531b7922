// The timer awaitable behind io_context::sleep_for / sleep_until: one IORING_OP_TIMEOUT with
// an absolute CLOCK_MONOTONIC deadline (IORING_TIMEOUT_ABS).
//
// A plain (unlinked) kernel timeout, because it fires on time even when thousands expire
// together (DESIGN.md, "Timeouts at scale"), and because the kernel copies the timespec when
// it takes the SQE, so nothing of this awaiter is read after submission. It is not
// detachable: a cancelled sleep ends when the kernel's CQE for it arrives, which the
// IORING_OP_ASYNC_CANCEL issued by the io_context makes immediate.
#pragma once

#include <liburing.h>
#include <linux/time_types.h>

#include <cerrno>
#include <system_error>

#include "uringcat/detail/operation.hpp"
#include "uringcat/timeout.hpp"

namespace uringcat::detail {

/// Sleeps until a deadline. `Throws`: true makes a cancelled sleep throw std::system_error
/// (operation_canceled); false returns the std::error_code (empty when it slept to the end).
template <bool Throws>
class sleep_op final : public operation<sleep_op<Throws>> {
  using base = operation<sleep_op<Throws>>;

 public:
  /// `until`: relative (starts when awaited), absolute, or no_timeout (until cancelled).
  sleep_op(io_context& io, timeout until) noexcept : base(io, no_timeout), until_(until) {}

  bool ready_without_io() noexcept {
    const deadline d = until_.from_now();
    if (d.expired()) {
      this->res_ = 0;
      return true;  // a deadline in the past: no syscall
    }
    // "Until cancelled": a deadline so far away that only cancellation ends it (the kernel
    // saturates it at its own maximum).
    ts_ = d.is_set() ? d.to_kernel_timespec() : __kernel_timespec{1LL << 40, 0};
    return false;
  }
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_timeout(sqe, &ts_, 0, IORING_TIMEOUT_ABS); }
  bool on_result(int res) noexcept {
    if (res == -ETIME) this->res_ = 0;  // the timer expired: that is success for a sleep
    return false;
  }

  auto await_resume() {
    const std::error_code ec = this->error();
    if constexpr (Throws) {
      if (ec) throw std::system_error(ec, "sleep");
    } else {
      return ec;
    }
  }

 private:
  timeout until_;
  __kernel_timespec ts_{};
};

}  // namespace uringcat::detail
