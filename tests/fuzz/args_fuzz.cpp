// libFuzzer target for uringcat's argument parser (tools/cli.hpp, parse_args). The input is
// argv after argv[0], split at NUL bytes. A crash means a property broke: parsing is
// deterministic; a rejection is one non-empty line; accepted options are consistent with
// the mode (a port for connect, a range for -z, -k only with -l, durations in range, never
// both --send-only and --recv-only).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "fuzz_check.hpp"

namespace {

namespace cli = uringcat::cli;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> args;
  for (std::size_t start = 0; start <= input.size() && args.size() < 64;) {
    const std::size_t end = std::min(input.find('\0', start), input.size());
    args.push_back(input.substr(start, end - start));
    start = end + 1;
  }
  const auto parsed = cli::parse_args(args);
  const auto again = cli::parse_args(args);
  FUZZ_CHECK(parsed.index() == again.index());
  if (const auto* error = std::get_if<cli::parse_error>(&parsed)) {
    FUZZ_CHECK(!error->message.empty());
    FUZZ_CHECK(error->message.find('\n') == std::string::npos);
    FUZZ_CHECK(error->message == std::get<cli::parse_error>(again).message);
    return 0;
  }
  const auto& o = std::get<cli::options>(parsed);
  if (o.run_mode == cli::mode::help || o.run_mode == cli::mode::version) return 0;
  FUZZ_CHECK(o.connect_timeout.count() > 0 && o.connect_timeout <= cli::max_duration);
  FUZZ_CHECK(!o.idle_timeout ||
             (o.idle_timeout->count() > 0 && *o.idle_timeout <= cli::max_duration));
  FUZZ_CHECK(!(o.send_only && o.recv_only));
  FUZZ_CHECK(!o.keep_open || o.run_mode == cli::mode::listen);
  FUZZ_CHECK(o.family == AF_UNSPEC || o.family == AF_INET || o.family == AF_INET6);
  FUZZ_CHECK(o.verbosity >= 0);
  switch (o.run_mode) {
    case cli::mode::connect:
      FUZZ_CHECK(!o.host.empty());
      FUZZ_CHECK(o.port != 0);
      break;
    case cli::mode::scan:
      FUZZ_CHECK(!o.host.empty());
      FUZZ_CHECK(o.port != 0 && o.port <= o.port_last);
      break;
    case cli::mode::listen:
      FUZZ_CHECK(o.source.empty());
      break;
    default:
      FUZZ_CHECK(false);
  }
  return 0;
}
