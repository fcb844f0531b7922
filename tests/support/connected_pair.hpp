// A connected pair of tcp_clients over 127.0.0.1, made through a tcp_listener: the usual
// starting point of a transfer test.
#pragma once

#include <chrono>
#include <utility>

#include "uringcat/uringcat.hpp"

namespace uringcat::testing {

struct connected_pair {
  tcp_client client;
  tcp_client server;
};

/// Connects a client to a fresh loopback listener and accepts it; both ends on `io`.
inline task<connected_pair> make_connected_pair(io_context& io) {
  using namespace std::chrono_literals;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  tcp_client client(io);
  auto [server, none] = co_await when_all(
      [](tcp_listener& l) -> task<tcp_client> { co_return co_await l.accept(5s); }(listener),
      [](tcp_client& c, endpoint ep) -> task<void> { co_await c.connect(ep, 5s); }(
                                         client, listener.local_endpoint()));
  (void)none;
  co_return connected_pair{std::move(client), std::move(server)};
}

}  // namespace uringcat::testing
