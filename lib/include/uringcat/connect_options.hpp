// How a connect to several addresses (a name, or connect_any) runs, and what it reports.
//
// uringcat connects to a list of addresses with Happy Eyeballs (RFC 8305, connect_any.hpp):
// the attempts are interleaved by address family, each starts `attempt_delay` after the
// previous one (or at once when the previous one failed), the first to connect wins and the
// others are cancelled. connect_report says what each attempt did, for logs and for the
// error message ("[::1]:9999 refused; 127.0.0.1:9999 timed out").
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "uringcat/endpoint.hpp"
#include "uringcat/resolve.hpp"
#include "uringcat/timeout.hpp"

namespace uringcat {

class resolver;  // async_resolve.hpp

/// One connection attempt: to whom, how it ended (empty error: it connected), and when it
/// started and ended (CLOCK_MONOTONIC). An attempt that lost the race to another one ends
/// with std::errc::operation_canceled.
struct connect_attempt {
  endpoint peer;
  std::error_code error;
  clock::time_point start{};
  clock::time_point end{};
};

/// How connect by name and connect_any run.
struct connect_options {
  /// RFC 8305's "Connection Attempt Delay": how long an attempt runs alone before the next
  /// address is tried too. The RFC recommends 250 ms (and at least 100 ms, at most 2 s);
  /// zero starts every attempt at once. A failed attempt starts the next one at once anyway.
  std::chrono::nanoseconds attempt_delay = std::chrono::milliseconds(250);
  /// How the name is resolved (connect by name only): which families, numeric only.
  resolve_options resolve{};
  /// Who resolves it (connect by name only): the resolver's DNS servers and retry policy,
  /// e.g. one configured once for many connects; null means a fresh lookup with the system's
  /// configuration (/etc/resolv.conf, /etc/hosts), as async_resolve() does. Either way the
  /// lookup runs on the ring (c-ares), never blocks it, and ends at the connect's deadline.
  resolver* name_resolver = nullptr;
  /// Called (on the io_context's thread) as each attempt starts and as it ends, e.g. for a
  /// verbose log. `end` is unset in the first call. An exception thrown here ends the
  /// connect (after every attempt ended) and is rethrown to its caller.
  std::function<void(const connect_attempt&)> on_attempt_start;
  std::function<void(const connect_attempt&)> on_attempt_end;
};

/// What a connect to several addresses did.
struct connect_report {
  /// Empty when connected. Otherwise: timed_out when the deadline ended it,
  /// operation_canceled when it was cancelled, connection_refused when every attempt was
  /// refused, else the error of the attempt that ended last; a resolution error or
  /// errc::no_addresses when there was nothing to try.
  std::error_code error;
  /// Every attempt in the order started (addresses never tried are not listed).
  std::vector<connect_attempt> attempts;
  /// The index in `attempts` of the one that connected.
  std::optional<std::size_t> connected;

  explicit operator bool() const noexcept { return !error; }
  /// "[::1]:9999 refused; 127.0.0.1:9999 timed out": each attempt and how it ended.
  std::string describe() const;
};

}  // namespace uringcat
