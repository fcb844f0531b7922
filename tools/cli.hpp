// uringcat's command line, as pure functions: they take strings and return options or an
// error message, and never print, exit or touch the environment, so they are unit-tested
// (tests/cli_test.cpp) and fuzzed (tests/fuzz/args_fuzz.cpp, duration_fuzz.cpp) directly.
// The grammar is documented in tools/uringcat.1 and in usage_text().
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace uringcat::cli {

/// The exit statuses, distinct per outcome so that scripts can tell them apart.
enum exit_status : int {
  exit_ok = 0,
  exit_error = 1,        ///< any other I/O or resolution error; -z with no port open
  exit_usage = 2,        ///< bad command line
  exit_timed_out = 3,    ///< the connect timeout (-w) passed
  exit_refused = 4,      ///< connection refused, network or host unreachable
  exit_idle = 5,         ///< the idle timeout (-i) passed
  exit_no_io_uring = 6,  ///< io_uring is unavailable (kernel, sysctl, seccomp)
};

enum class mode { connect, listen, scan, help, version };

/// ncat's default connect timeout, used when -w is not given.
inline constexpr std::chrono::nanoseconds default_connect_timeout = std::chrono::seconds(10);
/// The longest duration accepted: far below what the kernel's 64-bit nanosecond timers hold
/// (about 292 years counted from boot), so that now + timeout never overflows.
inline constexpr std::chrono::nanoseconds max_duration =
    std::chrono::seconds(100LL * 36525 * 864);  // 100 years of 365.25 days

struct options {
  mode run_mode = mode::connect;
  /// connect, -z: the host to connect to; listen: the address to bind (empty: any).
  std::string host;
  /// connect, listen: the port (0 only with -l: any); -z: the first port of the range.
  std::uint16_t port = 0;
  /// -z: the last port of the range (== port for one port).
  std::uint16_t port_last = 0;
  std::chrono::nanoseconds connect_timeout = default_connect_timeout;
  std::optional<std::chrono::nanoseconds> idle_timeout;
  int family = AF_UNSPEC;  ///< -4: AF_INET, -6: AF_INET6
  bool numeric_only = false;
  std::string source;  ///< -s: numeric source address for connects
  int verbosity = 0;
  bool quiet = false;
  bool keep_open = false;
  bool send_only = false;
  bool recv_only = false;
  bool no_shutdown = false;
};

struct parse_error {
  std::string message;  ///< one line, no trailing newline, e.g. "invalid port 'abc'"
};

/// Parses a duration: a decimal number (digits with an optional fraction, no sign or
/// exponent) and an optional unit: ns, us, ms, s (the default), m or h. Rejects empty input,
/// zero, negative values, NaN and infinities, trailing junk, a value that rounds to 0 ns and
/// one longer than max_duration. Exact: "0.1" is 100,000,000 ns, not a float's rounding.
std::variant<std::chrono::nanoseconds, parse_error> parse_duration(std::string_view text);

/// Parses a port: decimal, 1-65535, or 0 as well when `allow_zero`.
std::variant<std::uint16_t, parse_error> parse_port(std::string_view text, bool allow_zero = false);

/// Parses the arguments after argv[0].
std::variant<options, parse_error> parse_args(std::span<const std::string_view> args);

/// "3.5 s", "0.25 s", "0.00025 s": for messages.
std::string format_duration(std::chrono::nanoseconds d);

/// The --help text.
std::string_view usage_text() noexcept;

}  // namespace uringcat::cli
