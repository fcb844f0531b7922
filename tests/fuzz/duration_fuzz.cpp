// libFuzzer target for uringcat's duration parser (tools/cli.hpp, parse_duration), which reads
// -w and -i. A crash means a property of its contract broke: an accepted duration is within
// (0, max_duration], its input has the documented form (digits, at most one '.', a known
// unit), and it reads back the same from its nanosecond spelling; a rejection is one
// non-empty line.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "cli.hpp"
#include "fuzz_check.hpp"

namespace {

namespace cli = uringcat::cli;

bool has_documented_form(std::string_view text) {
  std::size_t i = 0, digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i, ++digits;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i, ++digits;
  }
  const std::string_view unit = text.substr(i);
  return digits > 0 && (unit.empty() || unit == "ns" || unit == "us" || unit == "ms" ||
                        unit == "s" || unit == "m" || unit == "h");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = cli::parse_duration(text);
  if (const auto* error = std::get_if<cli::parse_error>(&parsed)) {
    FUZZ_CHECK(!error->message.empty());
    FUZZ_CHECK(error->message.find('\n') == std::string::npos);
    return 0;
  }
  const auto ns = std::get<std::chrono::nanoseconds>(parsed);
  FUZZ_CHECK(ns.count() > 0);
  FUZZ_CHECK(ns <= cli::max_duration);
  FUZZ_CHECK(has_documented_form(text));
  const auto again = cli::parse_duration(std::to_string(ns.count()) + "ns");
  FUZZ_CHECK(std::holds_alternative<std::chrono::nanoseconds>(again));
  FUZZ_CHECK(std::get<std::chrono::nanoseconds>(again) == ns);
  return 0;
}
