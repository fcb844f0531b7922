// libFuzzer target for uringcat::endpoint's two parsers: the text form (parse, try_parse,
// from_ip) and the kernel socket address (endpoint(const sockaddr*, socklen_t)).
//
// Every input is tried both ways. A crash means a property in endpoint.hpp's contract broke:
// an accepted text must round-trip through to_string() to the same endpoint and the same
// text, parse() and try_parse() must agree, a rejection must be a readable one-line
// std::invalid_argument, and a socket address is either rejected for the documented reasons or
// copied faithfully. Built with libFuzzer by -Dfuzzing=true (scripts/fuzz.sh); without it,
// replay_main.cpp runs the seed corpus through the same function under `meson test`.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "uringcat/endpoint.hpp"

namespace {

using uringcat::endpoint;

// Inputs up to this length must appear whole in parse()'s message. endpoint.cpp elides longer
// ones (at 128 bytes today); any input must still give a message of bounded size.
constexpr std::size_t always_quoted_bytes = 64;
constexpr std::size_t max_message_bytes = 1024;

// The text as parse() promises to quote it: double quotes, with quotes and backslashes
// escaped and any byte outside printable ASCII as \xHH. Written independently of endpoint.cpp.
std::string escaped(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += ch;
    }
  }
  out += '"';
  return out;
}

bool all_digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

bool is_one_printable_line(std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// What every endpoint must satisfy, however it was made: a known family whose size matches,
// and a text form that parses back to the same endpoint and prints identically.
void check_round_trip(const endpoint& ep) {
  FUZZ_CHECK(ep.is_v4() || ep.is_v6());
  FUZZ_CHECK(ep.size() == (ep.is_v4() ? sizeof(sockaddr_in) : sizeof(sockaddr_in6)));
  const std::string text = ep.to_string();
  const std::optional<endpoint> again = endpoint::try_parse(text);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(*again == ep);
  FUZZ_CHECK(again->to_string() == text);
  FUZZ_CHECK(again->port() == ep.port());
  try {
    FUZZ_CHECK(endpoint::parse(text) == ep);
  } catch (...) {
    FUZZ_CHECK(!"parse() threw for to_string() of a valid endpoint");
  }
  // address_string() is the same address without port: from_ip() must take it back.
  const std::optional<endpoint> from_address = endpoint::from_ip(ep.address_string(), ep.port());
  FUZZ_CHECK(from_address.has_value());
  FUZZ_CHECK(*from_address == ep);
  FUZZ_CHECK(ep.with_port(ep.port()) == ep);
}

// (1) The text parser.
void check_text(std::string_view text) {
  const std::optional<endpoint> ep = endpoint::try_parse(text);
  if (ep) {
    // "Nothing before or after": an embedded NUL must not cut the text short for inet_pton.
    FUZZ_CHECK(text.find('\0') == std::string_view::npos);
    // A scope given by name names that interface exactly, so to_string() writes it back the
    // same ("%lo:junk" is not "%lo").
    if (auto percent = text.find('%'); percent != std::string_view::npos) {
      const std::string_view scope = text.substr(percent + 1, text.find(']') - percent - 1);
      if (!all_digits(scope)) {
        const std::string address = ep->address_string();
        const auto printed = address.find('%');
        FUZZ_CHECK(printed != std::string::npos);
        FUZZ_CHECK(std::string_view(address).substr(printed + 1) == scope);
      }
    }
    check_round_trip(*ep);
    try {
      FUZZ_CHECK(endpoint::parse(text) == *ep);
    } catch (...) {
      FUZZ_CHECK(!"parse() threw for text that try_parse() accepted");
    }
    return;
  }
  try {
    (void)endpoint::parse(text);
    FUZZ_CHECK(!"parse() accepted text that try_parse() rejected");
  } catch (const std::invalid_argument& e) {
    const std::string_view message = e.what();
    FUZZ_CHECK(!message.empty());
    FUZZ_CHECK(message.size() <= max_message_bytes);
    FUZZ_CHECK(is_one_printable_line(message));
    if (text.size() <= always_quoted_bytes)
      FUZZ_CHECK(message.find(escaped(text)) != std::string_view::npos);
  } catch (...) {
    FUZZ_CHECK(!"parse() threw something other than std::invalid_argument");
  }
}

// (1b) from_ip() on the same text, with a port taken from its ends so that 0 and 65535 occur.
// It must agree with parse() on the bracketed (IPv6) or plain (IPv4) text with that port.
void check_from_ip(std::string_view text) {
  std::uint16_t port = 0;
  if (!text.empty())
    port = static_cast<std::uint16_t>(static_cast<unsigned char>(text.front()) << 8 |
                                      static_cast<unsigned char>(text.back()));
  const std::optional<endpoint> ep = endpoint::from_ip(text, port);
  const bool v6 = text.find(':') != std::string_view::npos;
  std::string with_port;
  if (v6) with_port += '[';
  with_port += text;
  if (v6) with_port += ']';
  with_port += ':';
  with_port += std::to_string(port);
  const std::optional<endpoint> parsed = endpoint::try_parse(with_port);
  FUZZ_CHECK(ep.has_value() == parsed.has_value());
  if (!ep) return;
  FUZZ_CHECK(text.find('\0') == std::string_view::npos);
  FUZZ_CHECK(ep->is_v6() == v6);
  FUZZ_CHECK(ep->port() == port);
  FUZZ_CHECK(*ep == *parsed);
  check_round_trip(*ep);
}

// (2) The bytes as a kernel socket address of that length (at most a sockaddr_storage, the
// most the kernel ever hands back). The copy is a heap block of exactly that many bytes,
// aligned for sockaddr, so ASan sees any read past `len`.
void check_socket_address(const std::uint8_t* data, std::size_t input_size) {
  const std::size_t size = std::min(input_size, sizeof(sockaddr_storage));
  auto bytes = std::make_unique<unsigned char[]>(size);
  if (size > 0) std::memcpy(bytes.get(), data, size);
  const auto* addr = reinterpret_cast<const sockaddr*>(bytes.get());
  const auto len = static_cast<socklen_t>(size);

  sa_family_t family = AF_UNSPEC;
  if (size >= sizeof family) std::memcpy(&family, bytes.get(), sizeof family);
  const bool acceptable = (family == AF_INET && size >= sizeof(sockaddr_in)) ||
                          (family == AF_INET6 && size >= sizeof(sockaddr_in6));
  std::optional<endpoint> ep;
  try {
    ep.emplace(addr, len);
  } catch (const std::invalid_argument& e) {
    FUZZ_CHECK(!acceptable);
    FUZZ_CHECK(e.what()[0] != '\0');
    return;
  } catch (...) {
    FUZZ_CHECK(!"endpoint(sockaddr) threw something other than std::invalid_argument");
  }
  FUZZ_CHECK(acceptable);
  FUZZ_CHECK(ep->family() == family);
  if (family == AF_INET) {
    sockaddr_in in{};
    std::memcpy(&in, bytes.get(), sizeof in);
    const auto* kept = reinterpret_cast<const sockaddr_in*>(ep->data());
    FUZZ_CHECK(ep->port() == ntohs(in.sin_port));
    FUZZ_CHECK(kept->sin_addr.s_addr == in.sin_addr.s_addr);
  } else {
    sockaddr_in6 in6{};
    std::memcpy(&in6, bytes.get(), sizeof in6);
    const auto* kept = reinterpret_cast<const sockaddr_in6*>(ep->data());
    FUZZ_CHECK(ep->port() == ntohs(in6.sin6_port));
    FUZZ_CHECK(std::memcmp(&kept->sin6_addr, &in6.sin6_addr, sizeof in6.sin6_addr) == 0);
    FUZZ_CHECK(kept->sin6_scope_id == in6.sin6_scope_id);
  }
  FUZZ_CHECK(endpoint(ep->data(), ep->size()) == *ep);
  check_round_trip(*ep);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_text(text);
  check_from_ip(text);
  check_socket_address(data, size);
  return 0;
}
