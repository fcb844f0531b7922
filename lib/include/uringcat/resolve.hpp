// Blocking name resolution: host name (or numeric address) + port -> TCP endpoints.
//
// A thin, predictable layer over getaddrinfo(3). It blocks the calling thread for as long as
// the system resolver takes (files, DNS, ...), so do not call it on an io_context thread that
// must stay responsive; an asynchronous resolver is planned separately.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string_view>
#include <system_error>
#include <vector>

#include "uringcat/endpoint.hpp"

namespace uringcat {

/// How resolve() looks names up.
struct resolve_options {
  /// AF_UNSPEC (IPv4 and IPv6), AF_INET or AF_INET6.
  int family = AF_UNSPEC;
  /// Accept numeric addresses only (AI_NUMERICHOST): never consults /etc/hosts or DNS.
  bool numeric_only = false;
};

/// Resolves `host` ("localhost", "example.com", "127.0.0.1", "::1" or "[::1]") to TCP
/// endpoints with the given port, in getaddrinfo's order (the system's preference, RFC 6724),
/// without duplicates. Blocks until the resolver answers.
///
/// On failure returns an empty vector and sets `ec`: a getaddrinfo error as a
/// resolve_category() code (its EAI_* value made positive, e.g. -EAI_NONAME); EAI_SYSTEM as the
/// errno in the system category; uringcat::errc::no_addresses if nothing usable came back.
/// On success clears `ec`.
///
/// AI_ADDRCONFIG is deliberately not used: it would hide ::1 on hosts without a global IPv6
/// address, and loopback must always resolve.
std::vector<endpoint> resolve(std::string_view host, std::uint16_t port,
                              const resolve_options& options, std::error_code& ec);

/// As above, but throws std::system_error (whose what() names the host) on failure.
std::vector<endpoint> resolve(std::string_view host, std::uint16_t port,
                              const resolve_options& options = {});

}  // namespace uringcat
