// Asynchronous name resolution on the ring: host name + port -> TCP endpoints, without ever
// blocking the io_context's thread, and bounded by a deadline like every other operation.
//
// How: c-ares (ares_getaddrinfo) does the lookup; its sockets are polled through the ring
// (IORING_OP_POLL_ADD, one watch per socket c-ares reports with ares_getsock) and its retry
// timers are driven by the same watches' deadlines (ares_timeout), so a lookup is one more
// set of operations on the reactor: no thread, no blocking call (beyond reading /etc files).
// Each lookup gets its own c-ares channel (ares_dup of the resolver's), so cancelling one
// lookup (ares_destroy of its channel) never disturbs another.
//
// Why c-ares and not getaddrinfo on a helper thread with an eventfd back to the ring:
//  * a deadline can really end a lookup: the query is cancelled and its socket closed at the
//    deadline, instead of a thread that stays blocked in getaddrinfo for the system
//    resolver's own retries (30 s and more) after the caller was told timed_out;
//  * a resolver can be pointed at a given DNS server (resolver_options::servers) — tests use
//    a responder on 127.0.0.1 — which getaddrinfo cannot do per call;
//  * no thread per lookup (or a pool to size), and its sockets live on the ring like every
//    other socket of the program.
// What it gives up: glibc's NSS. Only /etc/hosts ("files") and DNS ("dns") are consulted,
// in the order /etc/nsswitch.conf gives for them; other modules (mdns/Avahi, LDAP, NIS,
// systemd-resolved's nss-resolve, myhostname) are not. c-ares does read /etc/resolv.conf
// (servers, search, ndots, timeout, attempts, rotate) and /etc/hosts. Use the blocking
// uringcat::resolve() (resolve.hpp) when NSS modules matter.
//
// Order: AF_UNSPEC asks for A and AAAA together; c-ares sorts the answers by RFC 6724 (the
// destination address selection glibc's getaddrinfo applies too), so the order matches the
// system's for the usual configurations; duplicates are dropped, first kept.
//
// Numeric hosts ("127.0.0.1", "::1", "[::1]", "fe80::1%lo") never reach c-ares. "localhost"
// and "*.localhost" (any case, trailing dot or not) are looked up in /etc/hosts only and, when
// the file lacks them, are the loopback addresses (RFC 6761): neither sends a packet.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "uringcat/endpoint.hpp"
#include "uringcat/io_context.hpp"
#include "uringcat/resolve.hpp"
#include "uringcat/result.hpp"
#include "uringcat/task.hpp"
#include "uringcat/timeout.hpp"

namespace uringcat {

/// How a resolver finds its DNS servers and how c-ares retries. Defaults: the system's.
struct resolver_options {
  /// DNS servers to ask, in order: "127.0.0.1", "127.0.0.1:5353", "[::1]:53". Empty: the
  /// nameservers of /etc/resolv.conf.
  std::vector<std::string> servers;
  /// How long c-ares waits for one answer before retrying (it doubles per round over the
  /// servers). Zero: /etc/resolv.conf's `options timeout`, else c-ares's default.
  std::chrono::milliseconds attempt_timeout{0};
  /// How many times c-ares asks each server before giving up. Zero: resolv.conf's
  /// `options attempts`, else c-ares's default. c-ares giving up is a resolution error
  /// (EAI_AGAIN), never timed_out: that is reserved for the caller's deadline.
  int attempts = 0;
};

/// An asynchronous resolver: a c-ares configuration (servers, search domains, retry policy)
/// read once, and lookups made from it on an io_context.
///
/// Not thread-safe: use it from one thread (any io_context's). It must outlive the lookups
/// started from it. Lookups from one resolver run concurrently and independently.
class resolver {
 public:
  /// Reads the system's configuration (/etc/resolv.conf, /etc/nsswitch.conf, environment)
  /// and applies `options`. Throws std::system_error if c-ares cannot be set up, and
  /// std::invalid_argument naming the text if a server is not "address[:port]".
  explicit resolver(const resolver_options& options = {});
  ~resolver();
  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  /// Resolves `host` to TCP endpoints with `port`, asking for the families in `options`
  /// (numeric_only: literals only, nothing is looked up). Work starts when the task is
  /// awaited, and so does a relative timeout; the deadline covers the whole lookup (every
  /// query and retry): when it passes, the lookup is cancelled (its queries abandoned, its
  /// sockets closed) and the result is std::errc::timed_out, at the deadline.
  ///
  /// Errors (as values): resolve_category() codes like uringcat::resolve() gives — EAI_NONAME
  /// for a name that does not exist (NXDOMAIN) or a name given with numeric_only,
  /// EAI_NODATA for a name with no address of the wanted family, EAI_AGAIN when the servers
  /// did not answer, refused or failed, EAI_FAIL for a malformed answer or name,
  /// EAI_FAMILY for a bad family; std::errc::timed_out at the deadline; errc::no_addresses if
  /// nothing usable came back. The awaiting coroutine is resumed on the io_context's thread.
  [[nodiscard]] task<result<std::vector<endpoint>>> try_resolve(io_context& io, std::string host,
                                                                std::uint16_t port,
                                                                timeout t = no_timeout,
                                                                resolve_options options = {});

  /// As try_resolve, but throws std::system_error whose what() names the host (and, for a
  /// DNS failure, c-ares's own reason).
  [[nodiscard]] task<std::vector<endpoint>> resolve(io_context& io, std::string host,
                                                    std::uint16_t port, timeout t = no_timeout,
                                                    resolve_options options = {});

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// try_resolve with a resolver of the system's configuration, made for this lookup (it reads
/// /etc/resolv.conf each time: keep a `resolver` for many lookups).
[[nodiscard]] task<result<std::vector<endpoint>>> try_async_resolve(io_context& io,
                                                                    std::string host,
                                                                    std::uint16_t port,
                                                                    timeout t = no_timeout,
                                                                    resolve_options options = {});

/// resolve with a resolver of the system's configuration, made for this lookup.
[[nodiscard]] task<std::vector<endpoint>> async_resolve(io_context& io, std::string host,
                                                        std::uint16_t port, timeout t = no_timeout,
                                                        resolve_options options = {});

}  // namespace uringcat
