// uringcat::endpoint: socket address storage, and the one strict parser behind parse(),
// try_parse() and from_ip().
//
// The parser reports why text is rejected as a static string and never allocates, so that
// try_parse() and from_ip() can be noexcept and parse() adds only the message.
#include "uringcat/endpoint.hpp"

#include <arpa/inet.h>
#include <net/if.h>

#include <cstring>
#include <ostream>
#include <stdexcept>

namespace uringcat {
namespace {

// Longest input echoed in an exception message; the rest is elided so that a megabyte of
// garbage does not become a megabyte of what().
constexpr std::size_t max_quoted_bytes = 128;

constexpr const char* hostname_reason =
    "host names are not accepted, parsing is numeric only (resolve names with uringcat::resolve)";

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}
bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool all_digits(std::string_view s) noexcept {
  for (char c : s)
    if (!is_digit(c)) return false;
  return true;
}

// Only to choose the more helpful message: "localhost" or "example.com" get told about
// resolve() instead of "invalid IPv4 address".
bool looks_like_hostname(std::string_view s) noexcept {
  bool has_alpha = false;
  for (char c : s) {
    if (is_alpha(c)) {
      has_alpha = true;
    } else if (!is_digit(c) && c != '.' && c != '-') {
      return false;
    }
  }
  return has_alpha;
}

// The text as a C string for inet_pton/if_nametoindex, or false if it does not fit or holds a
// NUL (then it cannot be a valid address either; the C function would stop at the NUL and
// accept "1.2.3.4\0junk" as 1.2.3.4).
template <std::size_t N>
bool to_c_string(std::string_view s, char (&buf)[N]) noexcept {
  if (s.size() >= N || s.find('\0') != std::string_view::npos) return false;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  return true;
}

const char* parse_port(std::string_view text, std::uint16_t& port) noexcept {
  if (text.empty()) return "empty port";
  if (!all_digits(text)) return "port must be decimal digits only";
  if (text.size() > 5) return "port out of range (0-65535)";
  unsigned value = 0;
  for (char c : text) value = value * 10 + static_cast<unsigned>(c - '0');
  if (value > 65535) return "port out of range (0-65535)";
  port = static_cast<std::uint16_t>(value);
  return nullptr;
}

const char* parse_v4(std::string_view text, sockaddr_in& out) noexcept {
  if (text.empty()) return "empty address";
  char buf[INET_ADDRSTRLEN];
  // inet_pton(AF_INET) is the strict form: exactly four decimal octets, no leading zeros,
  // unlike inet_aton which also takes "1.2.3", "0x7f.1" and "010.0.0.1".
  if (!to_c_string(text, buf) || ::inet_pton(AF_INET, buf, &out.sin_addr) != 1)
    return looks_like_hostname(text) ? hostname_reason : "invalid IPv4 address";
  out.sin_family = AF_INET;
  return nullptr;
}

const char* parse_scope(std::string_view scope, std::uint32_t& id) noexcept {
  if (scope.empty()) return "empty IPv6 scope after '%'";
  if (all_digits(scope)) {
    if (scope.size() > 10) return "IPv6 scope id out of range";
    std::uint64_t value = 0;
    for (char c : scope) value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > UINT32_MAX) return "IPv6 scope id out of range";
    id = static_cast<std::uint32_t>(value);
    return nullptr;
  }
  char name[IF_NAMESIZE];
  unsigned index = 0;
  if (to_c_string(scope, name)) index = ::if_nametoindex(name);
  // The kernel looks "lo:junk" up as "lo" (everything from ':' on is an IPv4 alias label), so
  // an index alone does not prove `scope` is a name: it must be that interface's name exactly.
  char actual[IF_NAMESIZE];
  if (index == 0 || ::if_indextoname(index, actual) == nullptr || scope != actual)
    return "unknown network interface in IPv6 scope";
  id = index;
  return nullptr;
}

const char* parse_v6(std::string_view text, sockaddr_in6& out) noexcept {
  if (text.empty()) return "empty address";
  std::string_view address = text;
  std::string_view scope;
  bool has_scope = false;
  if (auto percent = text.find('%'); percent != std::string_view::npos) {
    address = text.substr(0, percent);
    scope = text.substr(percent + 1);
    has_scope = true;
  }
  char buf[INET6_ADDRSTRLEN];
  if (!to_c_string(address, buf) || ::inet_pton(AF_INET6, buf, &out.sin6_addr) != 1)
    return looks_like_hostname(address) ? hostname_reason : "invalid IPv6 address";
  std::uint32_t scope_id = 0;
  if (has_scope) {
    if (const char* error = parse_scope(scope, scope_id)) return error;
  }
  out.sin6_family = AF_INET6;
  out.sin6_scope_id = scope_id;
  return nullptr;
}

// A parsed address before it becomes an endpoint.
struct parsed {
  sockaddr_in v4{};
  sockaddr_in6 v6{};
  int family = AF_UNSPEC;

  const sockaddr* data() const noexcept {
    return family == AF_INET ? reinterpret_cast<const sockaddr*>(&v4)
                             : reinterpret_cast<const sockaddr*>(&v6);
  }
  socklen_t size() const noexcept {
    return family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  }
};

// A bare address: IPv6 if it has a colon (no IPv4 text does), else IPv4.
const char* parse_ip(std::string_view text, std::uint16_t port, parsed& out) noexcept {
  if (text.find(':') != std::string_view::npos) {
    if (const char* error = parse_v6(text, out.v6)) return error;
    out.v6.sin6_port = htons(port);
    out.family = AF_INET6;
  } else {
    if (const char* error = parse_v4(text, out.v4)) return error;
    out.v4.sin_port = htons(port);
    out.family = AF_INET;
  }
  return nullptr;
}

// The single endpoint-text parser: fills `out` and returns nullptr, or returns the reason.
const char* parse_endpoint(std::string_view text, parsed& out) noexcept {
  if (text.empty()) return "empty text";
  std::string_view host;
  std::string_view port_text;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return "missing ']' after the IPv6 address";
    host = text.substr(1, close - 1);
    std::string_view rest = text.substr(close + 1);
    if (rest.empty()) return "missing port (expected [address]:port)";
    if (rest.front() != ':') return "expected ':' and a port after ']'";
    port_text = rest.substr(1);
    if (const char* error = parse_v6(host, out.v6)) return error;
    out.family = AF_INET6;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return "missing port (expected address:port)";
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      return "an IPv6 address needs brackets, as in [::1]:80";
    if (const char* error = parse_v4(host, out.v4)) return error;
    out.family = AF_INET;
  }
  std::uint16_t port = 0;
  if (const char* error = parse_port(port_text, port)) return error;
  if (out.family == AF_INET)
    out.v4.sin_port = htons(port);
  else
    out.v6.sin6_port = htons(port);
  return nullptr;
}

// `text` in double quotes with quotes, backslashes and non-printable bytes escaped, so the
// message stays one readable line whatever the input was.
std::string quote(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  std::size_t n = text.size() < max_quoted_bytes ? text.size() : max_quoted_bytes;
  for (std::size_t i = 0; i < n; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (n < text.size()) out += "...";
  out += '"';
  return out;
}

endpoint make_v4(std::uint32_t host_order_address, std::uint16_t port) noexcept {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(host_order_address);
  a.sin_port = htons(port);
  return endpoint(reinterpret_cast<const sockaddr*>(&a), sizeof a);
}

endpoint make_v6(const in6_addr& address, std::uint16_t port) noexcept {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = address;
  a.sin6_port = htons(port);
  return endpoint(reinterpret_cast<const sockaddr*>(&a), sizeof a);
}

}  // namespace

endpoint::endpoint() noexcept : family_(AF_UNSPEC) {
  std::memset(&addr_, 0, sizeof addr_);
}

endpoint::endpoint(const sockaddr* addr, socklen_t len) : endpoint() {
  if (addr == nullptr) throw std::invalid_argument("endpoint: null socket address");
  if (len < static_cast<socklen_t>(sizeof(sa_family_t)))
    throw std::invalid_argument("endpoint: socket address of " + std::to_string(len) +
                                " bytes is too short to hold a family");
  switch (addr->sa_family) {
    case AF_INET:
      if (len < static_cast<socklen_t>(sizeof(sockaddr_in)))
        throw std::invalid_argument("endpoint: AF_INET socket address of " + std::to_string(len) +
                                    " bytes is too short (need " +
                                    std::to_string(sizeof(sockaddr_in)) + ")");
      std::memcpy(&addr_.v4, addr, sizeof(sockaddr_in));
      std::memset(addr_.v4.sin_zero, 0, sizeof addr_.v4.sin_zero);
      family_ = AF_INET;
      return;
    case AF_INET6:
      if (len < static_cast<socklen_t>(sizeof(sockaddr_in6)))
        throw std::invalid_argument("endpoint: AF_INET6 socket address of " + std::to_string(len) +
                                    " bytes is too short (need " +
                                    std::to_string(sizeof(sockaddr_in6)) + ")");
      std::memcpy(&addr_.v6, addr, sizeof(sockaddr_in6));
      family_ = AF_INET6;
      return;
    default:
      throw std::invalid_argument("endpoint: unsupported address family " +
                                  std::to_string(addr->sa_family) + " (need AF_INET or AF_INET6)");
  }
}

endpoint endpoint::parse(std::string_view text) {
  parsed p;
  if (const char* error = parse_endpoint(text, p))
    throw std::invalid_argument("invalid endpoint " + quote(text) + ": " + error);
  return endpoint(p.data(), p.size());
}

std::optional<endpoint> endpoint::try_parse(std::string_view text) noexcept {
  parsed p;
  if (parse_endpoint(text, p) != nullptr) return std::nullopt;
  return endpoint(p.data(), p.size());
}

std::optional<endpoint> endpoint::from_ip(std::string_view ip, std::uint16_t port) noexcept {
  parsed p;
  if (parse_ip(ip, port, p) != nullptr) return std::nullopt;
  return endpoint(p.data(), p.size());
}

endpoint endpoint::loopback_v4(std::uint16_t port) noexcept {
  return make_v4(INADDR_LOOPBACK, port);
}
endpoint endpoint::loopback_v6(std::uint16_t port) noexcept {
  return make_v6(in6addr_loopback, port);
}
endpoint endpoint::any_v4(std::uint16_t port) noexcept {
  return make_v4(INADDR_ANY, port);
}
endpoint endpoint::any_v6(std::uint16_t port) noexcept {
  return make_v6(in6addr_any, port);
}

std::uint16_t endpoint::port() const noexcept {
  switch (family_) {
    case AF_INET:
      return ntohs(addr_.v4.sin_port);
    case AF_INET6:
      return ntohs(addr_.v6.sin6_port);
    default:
      return 0;
  }
}

endpoint endpoint::with_port(std::uint16_t port) const noexcept {
  endpoint copy = *this;
  if (family_ == AF_INET)
    copy.addr_.v4.sin_port = htons(port);
  else if (family_ == AF_INET6)
    copy.addr_.v6.sin6_port = htons(port);
  return copy;
}

socklen_t endpoint::size() const noexcept {
  switch (family_) {
    case AF_INET:
      return sizeof(sockaddr_in);
    case AF_INET6:
      return sizeof(sockaddr_in6);
    default:
      return 0;
  }
}

std::string endpoint::address_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (family_ == AF_INET) {
    ::inet_ntop(AF_INET, &addr_.v4.sin_addr, buf, sizeof buf);
    return buf;
  }
  if (family_ != AF_INET6) return "unspecified";
  ::inet_ntop(AF_INET6, &addr_.v6.sin6_addr, buf, sizeof buf);
  std::string out = buf;
  if (std::uint32_t scope = addr_.v6.sin6_scope_id; scope != 0) {
    // By name when the interface exists, as people write it; the number otherwise, which
    // parse() accepts just the same.
    char name[IF_NAMESIZE];
    out += '%';
    out += ::if_indextoname(scope, name) != nullptr ? std::string(name) : std::to_string(scope);
  }
  return out;
}

std::string endpoint::to_string() const {
  switch (family_) {
    case AF_INET:
      return address_string() + ':' + std::to_string(port());
    case AF_INET6:
      return '[' + address_string() + "]:" + std::to_string(port());
    default:
      return "unspecified";
  }
}

bool operator==(const endpoint& a, const endpoint& b) noexcept {
  if (a.family_ != b.family_) return false;
  switch (a.family_) {
    case AF_INET:
      return a.addr_.v4.sin_port == b.addr_.v4.sin_port &&
             a.addr_.v4.sin_addr.s_addr == b.addr_.v4.sin_addr.s_addr;
    case AF_INET6:
      return a.addr_.v6.sin6_port == b.addr_.v6.sin6_port &&
             a.addr_.v6.sin6_scope_id == b.addr_.v6.sin6_scope_id &&
             std::memcmp(&a.addr_.v6.sin6_addr, &b.addr_.v6.sin6_addr, sizeof(in6_addr)) == 0;
    default:
      return true;
  }
}

std::ostream& operator<<(std::ostream& os, const endpoint& ep) {
  return os << ep.to_string();
}

}  // namespace uringcat
