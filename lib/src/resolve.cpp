// resolve(): getaddrinfo with uringcat's error mapping, bracket handling and de-duplication.
#include "uringcat/resolve.hpp"

#include <netdb.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>

#include "uringcat/error.hpp"

namespace uringcat {
namespace {

struct addrinfo_deleter {
  void operator()(addrinfo* ai) const noexcept { ::freeaddrinfo(ai); }
};
using addrinfo_ptr = std::unique_ptr<addrinfo, addrinfo_deleter>;

// getaddrinfo's codes are negative on glibc (the libc this library targets); the category
// stores the positive value and its message() hands gai_strerror() the negative one.
std::error_code resolve_error(int eai) noexcept {
  return {eai < 0 ? -eai : eai, resolve_category()};
}

// Whether a getaddrinfo result fits an endpoint (the library should only return these two
// families, but a bad NSS module should not make resolve() throw std::invalid_argument).
bool usable(const addrinfo& ai) noexcept {
  if (ai.ai_addr == nullptr) return false;
  switch (ai.ai_family) {
    case AF_INET:
      return ai.ai_addr->sa_family == AF_INET && ai.ai_addrlen >= sizeof(sockaddr_in);
    case AF_INET6:
      return ai.ai_addr->sa_family == AF_INET6 && ai.ai_addrlen >= sizeof(sockaddr_in6);
    default:
      return false;
  }
}

}  // namespace

std::vector<endpoint> resolve(std::string_view host, std::uint16_t port,
                              const resolve_options& options, std::error_code& ec) {
  ec.clear();
  addrinfo hints{};
  hints.ai_family = options.family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = options.numeric_only ? AI_NUMERICHOST : 0;

  if (options.family != AF_UNSPEC && options.family != AF_INET && options.family != AF_INET6) {
    ec = resolve_error(EAI_FAMILY);
    return {};
  }
  // "[::1]" is how an IPv6 literal is written next to a port; what is inside the brackets
  // must then be a literal, never a name to look up.
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    hints.ai_flags |= AI_NUMERICHOST;
  }
  // getaddrinfo(NULL, ...) means "this host's wildcard/loopback address", not an error, and
  // an embedded NUL would silently shorten the name: neither is a host the caller meant.
  if (host.empty() || host.find('\0') != std::string_view::npos) {
    ec = resolve_error(EAI_NONAME);
    return {};
  }

  const std::string name(host);
  addrinfo* raw = nullptr;
  // No service: the port is set on each endpoint below, which avoids a services lookup.
  int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &raw);
  addrinfo_ptr list(raw);
  if (rc != 0) {
    if (rc == EAI_SYSTEM) {
      int err = errno;
      ec = system_error_code(err != 0 ? err : EIO);
    } else {
      ec = resolve_error(rc);
    }
    return {};
  }

  std::vector<endpoint> result;
  for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    if (!usable(*ai)) continue;
    endpoint ep = endpoint(ai->ai_addr, ai->ai_addrlen).with_port(port);
    // Lists are a handful of entries; keeping the first of each preserves the preference order.
    if (std::find(result.begin(), result.end(), ep) == result.end()) result.push_back(ep);
  }
  if (result.empty()) ec = make_error_code(errc::no_addresses);
  return result;
}

std::vector<endpoint> resolve(std::string_view host, std::uint16_t port,
                              const resolve_options& options) {
  std::error_code ec;
  std::vector<endpoint> result = resolve(host, port, options, ec);
  if (ec) throw std::system_error(ec, "resolve \"" + std::string(host) + "\"");
  return result;
}

}  // namespace uringcat
