// An IPv4 or IPv6 TCP endpoint (address + port), and its strict numeric text form.
//
// This is what every connect, bind and accept in uringcat speaks. It holds the socket address
// by value (no heap), hands it to the kernel as-is through data()/size(), and converts to and
// from text so that parse(ep.to_string()) == ep for every endpoint parse can produce.
// Parsing is numeric only on purpose: turning a host name into addresses blocks and may send
// packets, which is resolve()'s job (resolve.hpp), never a side effect of parsing.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

namespace uringcat {

/// An IPv4 or IPv6 socket address, or "unspecified" (family() == AF_UNSPEC).
///
/// A small value type: copyable, comparable, no allocation. An IPv6 endpoint may carry a
/// scope (interface) id, written "%name" or "%number" in text: "[fe80::1%lo]:80".
class endpoint {
 public:
  /// The unspecified endpoint: family() == AF_UNSPEC, size() == 0, port() == 0.
  endpoint() noexcept;

  /// Copies a kernel socket address (e.g. from getpeername, accept or getaddrinfo).
  /// Throws std::invalid_argument if `addr` is null, its family is neither AF_INET nor
  /// AF_INET6, or `len` is shorter than that family's sockaddr_in / sockaddr_in6.
  endpoint(const sockaddr* addr, socklen_t len);

  /// Parses "127.0.0.1:9999", "[::1]:9999" or "[fe80::1%lo]:80" (scope by interface name or
  /// number). Strict: numeric addresses only (no host names), IPv6 in brackets, the port is
  /// 1 to 5 decimal digits in 0..65535 (0 means "any port" when binding), nothing before or
  /// after. Throws std::invalid_argument whose what() quotes the text and gives the reason.
  static endpoint parse(std::string_view text);

  /// Same rules as parse(); returns std::nullopt instead of throwing.
  static std::optional<endpoint> try_parse(std::string_view text) noexcept;

  /// A bare numeric address without brackets or port ("127.0.0.1", "::1", "fe80::1%lo")
  /// with the given port; std::nullopt if `ip` is not one.
  static std::optional<endpoint> from_ip(std::string_view ip, std::uint16_t port) noexcept;

  /// 127.0.0.1:port
  static endpoint loopback_v4(std::uint16_t port) noexcept;
  /// [::1]:port
  static endpoint loopback_v6(std::uint16_t port) noexcept;
  /// 0.0.0.0:port, for binding to every IPv4 address.
  static endpoint any_v4(std::uint16_t port) noexcept;
  /// [::]:port, for binding to every IPv6 address.
  static endpoint any_v6(std::uint16_t port) noexcept;

  /// The port in host byte order (0 for the unspecified endpoint).
  std::uint16_t port() const noexcept;

  /// A copy with another port. The unspecified endpoint stays unspecified.
  endpoint with_port(std::uint16_t port) const noexcept;

  /// AF_INET, AF_INET6 or AF_UNSPEC.
  int family() const noexcept { return family_; }
  bool is_v4() const noexcept { return family_ == AF_INET; }
  bool is_v6() const noexcept { return family_ == AF_INET6; }

  /// "127.0.0.1:9999", "[::1]:9999", "[fe80::1%lo]:80": the address in canonical inet_ntop
  /// form, the scope by interface name when the interface exists (else by number).
  /// "unspecified" for the unspecified endpoint.
  std::string to_string() const;

  /// The address alone, without brackets or port: "127.0.0.1", "::1", "fe80::1%lo".
  std::string address_string() const;

  /// The socket address to pass to connect/bind; valid as long as this endpoint.
  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&addr_); }

  /// sizeof(sockaddr_in), sizeof(sockaddr_in6), or 0 when unspecified.
  socklen_t size() const noexcept;

  /// Same family, address, port and (IPv6) scope id. The IPv6 flow label is ignored: it is
  /// per-packet metadata, not part of the address.
  friend bool operator==(const endpoint& a, const endpoint& b) noexcept;

 private:
  union storage {
    sockaddr_in v4;
    sockaddr_in6 v6;
  };

  storage addr_;
  int family_ = AF_UNSPEC;
};

/// Writes ep.to_string().
std::ostream& operator<<(std::ostream& os, const endpoint& ep);

}  // namespace uringcat
