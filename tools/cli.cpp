#include "cli.hpp"

#include <cstdio>
#include <vector>

namespace uringcat::cli {
namespace {

using namespace std::chrono_literals;

parse_error error(std::string message) {
  return parse_error{std::move(message)};
}

// Exact arithmetic on up to 20 digits times a unit in nanoseconds needs more than 64 bits.
__extension__ typedef unsigned __int128 u128;

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

// A string for an error message: quoted, with control and non-ASCII bytes escaped so that
// one message stays one line whatever the user typed.
std::string quoted(std::string_view text) {
  std::string out = "'";
  for (const char c : text.substr(0, 64)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '\\' || c == '\'') {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", u);
      out += hex;
    } else {
      out += c;
    }
  }
  if (text.size() > 64) out += "...";
  return out + "'";
}

struct unit {
  std::string_view suffix;
  std::int64_t ns;
};
constexpr unit units[] = {
    {"ns", 1},
    {"us", 1'000},
    {"ms", 1'000'000},
    {"s", 1'000'000'000},
    {"m", 60'000'000'000},
    {"h", 3'600'000'000'000},
};

}  // namespace

std::variant<std::chrono::nanoseconds, parse_error> parse_duration(std::string_view text) {
  const std::string what = "invalid duration " + quoted(text);
  if (text.empty()) return error("empty duration");
  // The number as decimal digits (integer part, then fraction) and where its point is.
  std::string digits;
  std::size_t i = 0, int_digits = 0;
  for (; i < text.size() && is_digit(text[i]); ++i, ++int_digits) digits += text[i];
  if (i < text.size() && text[i] == '.')
    for (++i; i < text.size() && is_digit(text[i]); ++i) digits += text[i];
  if (digits.empty()) {
    if (text[0] == '-') return error(what + ": must be positive");
    return error(what + ": expected a number such as 3.5, 350ms or 2m");
  }
  const std::string_view suffix = text.substr(i);
  const unit* u = &units[3];  // plain numbers are seconds, as in ncat
  if (!suffix.empty()) {
    u = nullptr;
    for (const unit& candidate : units)
      if (suffix == candidate.suffix) u = &candidate;
    if (!u)
      return error(what + ": unknown unit " + quoted(suffix) + " (use ns, us, ms, s, m or h)");
  }
  // Exact: the unit in nanoseconds is m * 10^e with m in {1, 6, 36}, so the value in
  // nanoseconds is the digits times m (decimal long multiplication) with the point moved e
  // places right. Then round half up on the first digit past the point: no float, no
  // truncated fraction, so "0.1" is 100,000,000 ns and a value a hair over half a
  // nanosecond rounds up, however many digits it takes to say so.
  std::int64_t m = u->ns;
  std::size_t e = 0;
  while (m % 10 == 0) m /= 10, ++e;
  std::string product(digits.size() + 2, '0');  // m <= 36 adds at most 2 digits
  int carry = 0;
  for (std::size_t k = digits.size(), out = product.size(); k-- > 0;) {
    const int d = (digits[k] - '0') * static_cast<int>(m) + carry;
    product[--out] = static_cast<char>('0' + d % 10);
    carry = d / 10;
  }
  product[1] = static_cast<char>(product[1] + carry % 10);
  product[0] = static_cast<char>(product[0] + carry / 10);
  const std::size_t point = int_digits + 2 + e;  // in `product`, after the shift
  const auto limit = static_cast<u128>(max_duration.count());
  u128 total = 0;
  bool too_long = false;
  for (std::size_t k = 0; k < point && !too_long; ++k) {
    total = total * 10 + (k < product.size() ? static_cast<unsigned>(product[k] - '0') : 0u);
    too_long = total > limit;
  }
  if (too_long) return error(what + ": longer than the limit of 100 years");
  const bool any_fraction =
      product.find_first_not_of('0', std::min(point, product.size())) != std::string::npos;
  if (point < product.size() && product[point] >= '5') ++total;  // round half up
  if (total > limit) return error(what + ": longer than the limit of 100 years");
  if (total == 0) {
    if (!any_fraction) return error(what + ": must be greater than zero");
    return error(what + ": shorter than 1 ns");
  }
  return std::chrono::nanoseconds(static_cast<std::int64_t>(total));
}

std::variant<std::uint16_t, parse_error> parse_port(std::string_view text, bool allow_zero) {
  const std::string what = "invalid port " + quoted(text);
  if (text.empty()) return error("empty port");
  std::uint32_t value = 0;
  for (const char c : text) {
    if (!is_digit(c)) return error(what + ": expected a number from 1 to 65535");
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > 65535) return error(what + ": must be at most 65535");
  }
  if (value == 0 && !allow_zero) return error(what + ": must be from 1 to 65535");
  return static_cast<std::uint16_t>(value);
}

namespace {

enum class opt {
  listen,
  keep_open,
  scan,
  ipv4,
  ipv6,
  numeric,
  verbose,
  quiet,
  help,
  version,
  send_only,
  recv_only,
  no_shutdown,
  // with a value:
  connect_timeout,
  idle_timeout,
  source,
  port,
};

struct opt_spec {
  char short_name;  // 0: long only
  std::string_view long_name;
  opt id;
  bool takes_value;
};

constexpr opt_spec specs[] = {
    {'l', "listen", opt::listen, false},
    {'k', "keep-open", opt::keep_open, false},
    {'z', "zero-io", opt::scan, false},
    {'4', "ipv4", opt::ipv4, false},
    {'6', "ipv6", opt::ipv6, false},
    {'n', "nodns", opt::numeric, false},
    {'v', "verbose", opt::verbose, false},
    {'q', "quiet", opt::quiet, false},
    {'h', "help", opt::help, false},
    {0, "version", opt::version, false},
    {0, "send-only", opt::send_only, false},
    {0, "recv-only", opt::recv_only, false},
    {0, "no-shutdown", opt::no_shutdown, false},
    {'w', "connect-timeout", opt::connect_timeout, true},
    {0, "wait", opt::connect_timeout, true},
    {'i', "idle-timeout", opt::idle_timeout, true},
    {'s', "source", opt::source, true},
    {'p', "port", opt::port, true},
};

const opt_spec* find_short(char c) noexcept {
  for (const opt_spec& s : specs)
    if (s.short_name == c) return &s;
  return nullptr;
}
const opt_spec* find_long(std::string_view name) noexcept {
  for (const opt_spec& s : specs)
    if (s.long_name == name) return &s;
  return nullptr;
}

std::string option_name(const opt_spec& s) {
  return s.short_name ? std::string("-") + s.short_name : "--" + std::string(s.long_name);
}

}  // namespace

std::variant<options, parse_error> parse_args(std::span<const std::string_view> args) {
  options o;
  std::vector<std::string_view> positional;
  std::optional<std::uint16_t> listen_port;  // -p
  bool saw_4 = false, saw_6 = false;

  // Applies one option; `value` is set for options that take one.
  auto apply = [&](const opt_spec& s, std::string_view value) -> std::optional<parse_error> {
    auto duration = [&](auto& into) -> std::optional<parse_error> {
      auto d = parse_duration(value);
      if (auto* e = std::get_if<parse_error>(&d)) return error(option_name(s) + ": " + e->message);
      into = std::get<std::chrono::nanoseconds>(d);
      return std::nullopt;
    };
    switch (s.id) {
      case opt::listen:
        o.run_mode = mode::listen;
        break;
      case opt::keep_open:
        o.keep_open = true;
        break;
      case opt::scan:
        o.run_mode = mode::scan;
        break;
      case opt::ipv4:
        o.family = AF_INET;
        saw_4 = true;
        break;
      case opt::ipv6:
        o.family = AF_INET6;
        saw_6 = true;
        break;
      case opt::numeric:
        o.numeric_only = true;
        break;
      case opt::verbose:
        ++o.verbosity;
        break;
      case opt::quiet:
        o.quiet = true;
        break;
      case opt::help:
        o.run_mode = mode::help;
        break;
      case opt::version:
        o.run_mode = mode::version;
        break;
      case opt::send_only:
        o.send_only = true;
        break;
      case opt::recv_only:
        o.recv_only = true;
        break;
      case opt::no_shutdown:
        o.no_shutdown = true;
        break;
      case opt::connect_timeout:
        return duration(o.connect_timeout);
      case opt::idle_timeout: {
        std::chrono::nanoseconds d{};
        if (auto e = duration(d)) return e;
        o.idle_timeout = d;
        break;
      }
      case opt::source:
        if (value.empty()) return error(option_name(s) + ": empty address");
        o.source = std::string(value);
        break;
      case opt::port: {
        auto p = parse_port(value, /*allow_zero=*/true);
        if (auto* e = std::get_if<parse_error>(&p))
          return error(option_name(s) + ": " + e->message);
        listen_port = std::get<std::uint16_t>(p);
        break;
      }
    }
    return std::nullopt;
  };

  bool help = false, version = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--") {
      positional.insert(positional.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                        args.end());
      break;
    }
    if (a.size() > 2 && a.substr(0, 2) == "--") {
      std::string_view name = a.substr(2), value;
      const auto eq = name.find('=');
      const bool has_eq = eq != std::string_view::npos;
      if (has_eq) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      const opt_spec* s = find_long(name);
      if (!s) return error("unknown option " + quoted(a));
      if (s->takes_value && !has_eq) {
        if (i + 1 >= args.size()) return error("option --" + std::string(name) + " needs a value");
        value = args[++i];
      } else if (!s->takes_value && has_eq) {
        return error("option --" + std::string(name) + " takes no value");
      }
      if (s->id == opt::help) help = true;
      if (s->id == opt::version) version = true;
      if (auto e = apply(*s, value)) return *e;
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      // Short options, combinable: -lkv, -vv, -w3.5, -w 3.5.
      for (std::size_t j = 1; j < a.size(); ++j) {
        const opt_spec* s = find_short(a[j]);
        if (!s) return error("unknown option " + quoted(std::string("-") + a[j]));
        std::string_view value;
        if (s->takes_value) {
          if (j + 1 < a.size()) {
            value = a.substr(j + 1);
          } else {
            if (i + 1 >= args.size()) return error("option " + option_name(*s) + " needs a value");
            value = args[++i];
          }
          j = a.size();  // the rest of this argument was the value
        }
        if (s->id == opt::help) help = true;
        if (auto e = apply(*s, value)) return *e;
      }
      continue;
    }
    positional.push_back(a);
  }

  // --help and --version win over everything else, as in ncat.
  if (help) {
    o.run_mode = mode::help;
    return o;
  }
  if (version) {
    o.run_mode = mode::version;
    return o;
  }

  if (saw_4 && saw_6) return error("-4 and -6 exclude each other");
  if (o.send_only && o.recv_only) return error("--send-only and --recv-only exclude each other");
  if (o.keep_open && o.run_mode != mode::listen) return error("-k needs -l (listen mode)");
  if (!o.source.empty() && o.run_mode == mode::listen)
    return error("-s is the source address of connects; to listen on an address, use -l ADDR PORT");

  switch (o.run_mode) {
    case mode::listen: {
      if (listen_port) {
        if (positional.size() > 1)
          return error("too many arguments for -l -p PORT: expected at most an address");
        o.port = *listen_port;
        if (!positional.empty()) o.host = std::string(positional[0]);
      } else {
        if (positional.empty()) return error("-l needs a port: uringcat -l [ADDR] PORT");
        if (positional.size() > 2) return error("too many arguments for -l: expected [ADDR] PORT");
        auto p = parse_port(positional.back(), /*allow_zero=*/true);
        if (auto* e = std::get_if<parse_error>(&p)) return *e;
        o.port = std::get<std::uint16_t>(p);
        if (positional.size() == 2) o.host = std::string(positional[0]);
      }
      return o;
    }
    case mode::scan: {
      if (listen_port) return error("-p is the listen port; -z takes HOST PORT[-PORT]");
      if (positional.size() != 2)
        return error("-z needs a host and ports: uringcat -z HOST PORT[-PORT]");
      o.host = std::string(positional[0]);
      const std::string_view range = positional[1];
      const auto dash = range.find('-');
      auto first = parse_port(range.substr(0, dash));
      if (auto* e = std::get_if<parse_error>(&first)) return *e;
      o.port = o.port_last = std::get<std::uint16_t>(first);
      if (dash != std::string_view::npos) {
        auto last = parse_port(range.substr(dash + 1));
        if (auto* e = std::get_if<parse_error>(&last)) return *e;
        o.port_last = std::get<std::uint16_t>(last);
        if (o.port_last < o.port)
          return error("invalid port range " + quoted(range) + ": the first port is past the last");
      }
      if (o.host.empty()) return error("empty host");
      return o;
    }
    default: {
      if (listen_port)
        return error("-p is the listen port (with -l); uringcat connects to HOST PORT");
      if (positional.size() < 2) return error("missing host or port: uringcat [options] HOST PORT");
      if (positional.size() > 2) return error("too many arguments: uringcat [options] HOST PORT");
      o.host = std::string(positional[0]);
      if (o.host.empty()) return error("empty host");
      auto p = parse_port(positional[1]);
      if (auto* e = std::get_if<parse_error>(&p)) return *e;
      o.port = std::get<std::uint16_t>(p);
      return o;
    }
  }
}

std::string format_duration(std::chrono::nanoseconds d) {
  char text[64];
  std::snprintf(text, sizeof text, "%.9g s", std::chrono::duration<double>(d).count());
  return text;
}

std::string_view usage_text() noexcept {
  return R"(usage: uringcat [options] HOST PORT           connect, copy stdin/stdout
       uringcat -l [options] [ADDR] PORT      listen for one connection (-k: many)
       uringcat -l -p PORT [options] [ADDR]
       uringcat -z [options] HOST PORT[-PORT] report which ports accept connections

options:
  -w, --connect-timeout DUR  one deadline for resolution and every connect attempt
                             (default 10 s, as ncat)
  -i, --idle-timeout DUR     close a connection after DUR with no traffic either way
  -l, --listen               listen instead of connecting
  -p, --port PORT            the port to listen on (with -l)
  -k, --keep-open            with -l: keep accepting, serve clients concurrently,
                             broadcast stdin to every client
  -z, --zero-io              probe ports concurrently, print the open ones
  -4, -6                     IPv4 or IPv6 only
  -n, --nodns                numeric addresses only, never resolve names
  -s, --source ADDR          source address of connects
      --send-only            only send stdin; quit at its end
      --recv-only            only receive; never read stdin
      --no-shutdown          do not half-close the connection at the end of stdin
  -v, --verbose              log to stderr (-vv: every operation with its latency)
  -q, --quiet                no messages on stderr, only the exit status
  -h, --help                 this text
      --version              the version

DUR: a number with an optional unit: 3.5 (seconds), 3.5s, 350ms, 250us, 100ns, 2m, 1h.

exit status:
  0  success
  1  other error (I/O, name resolution; -z: no port open)
  2  usage error
  3  connect timed out (-w)
  4  connection refused, or network/host unreachable
  5  idle timeout (-i)
  6  io_uring unavailable (kernel, kernel.io_uring_disabled, seccomp)
)";
}

}  // namespace uringcat::cli
