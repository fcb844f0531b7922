// Timeouts and deadlines: how a caller says "by when" for an operation.
//
// A `timeout` is what users write: any std::chrono::duration (`3.5s` is a
// duration<long double>, `250ms` an integral one), an absolute steady_clock time point, or
// `no_timeout`. A relative timeout is turned into an absolute deadline on CLOCK_MONOTONIC
// when the operation starts (when it is awaited), never when the awaitable was created.
// The kernel enforces the deadline with an absolute IORING_TIMEOUT_ABS linked timeout, so a
// deadline computed once can bound several steps (send_all, connect by name) exactly.
#pragma once

#include <linux/time_types.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <type_traits>

namespace uringcat {

/// The clock of every deadline: std::chrono::steady_clock is CLOCK_MONOTONIC on Linux,
/// the clock io_uring's timeouts use by default.
using clock = std::chrono::steady_clock;

/// Spells "this operation has no deadline".
struct no_timeout_t {
  explicit constexpr no_timeout_t() noexcept = default;
};
inline constexpr no_timeout_t no_timeout{};

/// An absolute point on CLOCK_MONOTONIC, or none.
class deadline {
 public:
  constexpr deadline() noexcept = default;
  constexpr explicit deadline(clock::time_point at) noexcept : at_(at), set_(true) {}

  constexpr bool is_set() const noexcept { return set_; }
  constexpr clock::time_point time() const noexcept { return at_; }
  bool expired(clock::time_point now = clock::now()) const noexcept { return set_ && now >= at_; }
  /// What is left at `now` (zero when expired); only meaningful when is_set().
  clock::duration remaining(clock::time_point now = clock::now()) const noexcept {
    return now >= at_ ? clock::duration::zero() : at_ - now;
  }
  /// The deadline as an absolute timespec for IORING_TIMEOUT_ABS.
  __kernel_timespec to_kernel_timespec() const noexcept {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(at_.time_since_epoch()).count();
    if (ns < 0) ns = 0;
    return {static_cast<long long>(ns / 1'000'000'000), static_cast<long long>(ns % 1'000'000'000)};
  }

  friend constexpr bool operator==(const deadline&, const deadline&) noexcept = default;

 private:
  clock::time_point at_{};
  bool set_ = false;
};

/// What an operation's caller passes: a relative duration, an absolute deadline, or
/// no_timeout. Implicit from any std::chrono::duration, so `connect(ep, 3.5s)` and
/// `connect(ep, 250ms)` both compile.
class timeout {
 public:
  /// No deadline.
  constexpr timeout(no_timeout_t = no_timeout) noexcept {}  // NOLINT(google-explicit-constructor)

  /// Relative: starts when the operation starts. Zero or negative means "already expired":
  /// the operation reports timed_out at once, without a syscall. A duration too large for
  /// the clock (hundreds of years, or +infinity) means no deadline. NaN is an error.
  template <class Rep, class Period>
  timeout(std::chrono::duration<Rep, Period> d)  // NOLINT(google-explicit-constructor)
      : kind_(kind::relative) {
    using ld_ns = std::chrono::duration<long double, std::nano>;
    if constexpr (std::is_floating_point_v<Rep>) {
      if (std::isnan(d.count())) throw std::invalid_argument("uringcat::timeout: NaN duration");
    }
    // Range checks in long double: converting hours::max() to nanoseconds would overflow.
    const long double ns = std::chrono::duration_cast<ld_ns>(d).count();
    if (ns >= static_cast<long double>(max_relative_ns)) {
      kind_ = kind::none;
    } else if (ns <= 0) {
      rel_ = clock::duration::zero();
    } else if constexpr (std::is_floating_point_v<Rep>) {
      // Round up: a deadline is never earlier than asked for.
      rel_ = std::chrono::duration_cast<clock::duration>(
          std::chrono::nanoseconds(static_cast<long long>(std::ceil(ns))));
    } else {
      rel_ = std::chrono::ceil<clock::duration>(d);
    }
  }

  /// Absolute.
  constexpr timeout(deadline d) noexcept  // NOLINT(google-explicit-constructor)
      : abs_(d), kind_(d.is_set() ? kind::absolute : kind::none) {}
  timeout(clock::time_point at) noexcept  // NOLINT(google-explicit-constructor)
      : abs_(at), kind_(kind::absolute) {}

  constexpr bool is_none() const noexcept { return kind_ == kind::none; }

  /// The absolute deadline for an operation starting at `now`.
  deadline from(clock::time_point now) const noexcept {
    switch (kind_) {
      case kind::none:
        return {};
      case kind::relative:
        return deadline(now + rel_);
      case kind::absolute:
        return abs_;
    }
    return {};
  }
  deadline from_now() const noexcept {
    return kind_ == kind::relative ? from(clock::now()) : from({});
  }

 private:
  // About 100 years: far enough to mean "never", near enough that now + rel cannot overflow.
  static constexpr long long max_relative_ns = 100LL * 365 * 24 * 3600 * 1'000'000'000;
  enum class kind : unsigned char { none, relative, absolute };

  clock::duration rel_{};
  deadline abs_{};
  kind kind_ = kind::none;
};

}  // namespace uringcat
