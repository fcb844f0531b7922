// connect_any: Happy Eyeballs (RFC 8305) over addresses already resolved.
//
//   std::vector<uringcat::endpoint> eps = uringcat::resolve("localhost", 9999);
//   uringcat::connect_report r = co_await uringcat::connect_any(client, eps, 3s);
//   if (!r) std::cerr << r.describe();   // "[::1]:9999 refused; 127.0.0.1:9999 timed out"
//
// tcp_client's connect by name resolves and then calls this; an asynchronous resolver can
// feed it the same way. Why Happy Eyeballs and not one address after the other (what
// Python's socket.create_connection and tokio's TcpStream::connect do): when the first
// address black-holes (a broken IPv6 route, a firewall that drops SYNs), trying in order
// waits for that attempt's whole timeout before trying the next address; here the next one
// starts after `attempt_delay` (bench/happy_eyeballs.cpp measures both).
#pragma once

#include <vector>

#include "uringcat/connect_options.hpp"
#include "uringcat/endpoint.hpp"
#include "uringcat/task.hpp"
#include "uringcat/tcp_client.hpp"
#include "uringcat/timeout.hpp"

namespace uringcat {

/// RFC 8305 section 4's order: the first address's family first, then alternating between
/// the families while both have addresses left, each family keeping its own order
/// ("::1, ::2, 127.0.0.1" -> "::1, 127.0.0.1, ::2"). Duplicates are kept.
std::vector<endpoint> happy_eyeballs_order(std::vector<endpoint> endpoints);

/// Connects `client` (which must not be open) to one of `endpoints` by Happy Eyeballs: in
/// happy_eyeballs_order, the next attempt starts `options.attempt_delay` after the previous
/// one or as soon as every running attempt has failed; the first attempt to connect wins,
/// and the others are cancelled (IORING_OP_ASYNC_CANCEL) and their sockets closed before
/// this returns. `t` is one deadline for every attempt (computed when awaited). Each attempt
/// binds to the client's source address, if set.
///
/// Never throws for network errors: the report carries them (and the winner's index); on
/// success the client is connected. Cancelling the awaiting task cancels every attempt
/// (report.error is then operation_canceled). Allocates: the report, one coroutine frame per
/// attempt.
task<connect_report> connect_any(tcp_client& client, std::vector<endpoint> endpoints,
                                 timeout t = no_timeout, connect_options options = {});

}  // namespace uringcat
