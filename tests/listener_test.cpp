// tcp_listener: binding, accepting with and without a deadline, and bind errors.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::endpoint;
using uringcat::io_context;
using uringcat::task;
using uringcat::tcp_client;
using uringcat::tcp_listener;
using uringcat::testing::ms_since;

TEST(Listener, BindingPortZeroReportsTheKernelChosenPort) {
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  EXPECT_NE(listener.local_endpoint().port(), 0);
  EXPECT_TRUE(listener.local_endpoint().is_v4());
}

TEST(Listener, AcceptReturnsAConnectedClientFromThePeer) {
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  auto body = [&]() -> task<bool> {
    tcp_client client(io);
    auto [peer, none] = co_await uringcat::when_all(
        [&]() -> task<tcp_client> { co_return co_await listener.accept(5s); }(),
        [&]() -> task<void> { co_await client.connect(listener.local_endpoint(), 5s); }());
    (void)none;
    co_return peer.is_open() && peer.remote_endpoint()->port() == client.local_endpoint()->port();
  };
  EXPECT_TRUE(io.run(body()));
}

TEST(Listener, AcceptReportsTimedOutWhenNobodyConnects) {
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  auto body = [&]() -> task<std::error_code> {
    auto r = co_await listener.try_accept(100ms);
    co_return r.error();
  };
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(io.run(body()), std::errc::timed_out);
  EXPECT_GE(ms_since(start), 100.0);
}

TEST(Listener, AcceptWithoutTimeoutWaitsForTheClient) {
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  auto body = [&]() -> task<bool> {
    tcp_client client(io);
    auto [peer, none] = co_await uringcat::when_all(
        [&]() -> task<tcp_client> { co_return co_await listener.accept(); }(),
        [&]() -> task<void> { co_await client.connect(listener.local_endpoint()); }());
    (void)none;
    co_return peer.is_open();
  };
  EXPECT_TRUE(io.run(body()));
}

TEST(Listener, BindingABusyPortThrowsNamingTheAddress) {
  io_context io;
  tcp_listener first(io, endpoint::loopback_v4(0));
  const endpoint taken = first.local_endpoint();
  try {
    tcp_listener second(io, taken);
    FAIL() << "bound a port that is in use";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::address_in_use);
    EXPECT_NE(std::string(e.what()).find(taken.to_string()), std::string::npos) << e.what();
  }
}

TEST(Listener, ClientsAcceptedInALoopAreAllServed) {
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  const int fds = uringcat::testing::count_open_fds();
  auto body = [&]() -> task<int> {
    int served = 0;
    auto server = [&]() -> task<void> {
      for (int i = 0; i < 20; ++i) {
        tcp_client peer = co_await listener.accept(5s);
        co_await peer.send_all("hi", 1s);
        ++served;
      }
    };
    auto clients = [&]() -> task<void> {
      for (int i = 0; i < 20; ++i) {
        tcp_client c(io);
        co_await c.connect(listener.local_endpoint(), 5s);
        std::array<std::byte, 2> buf{};
        co_await c.recv_exact(buf, 1s);
      }
    };
    co_await uringcat::when_all(server(), clients());
    co_return served;
  };
  EXPECT_EQ(io.run(body()), 20);
  EXPECT_EQ(uringcat::testing::count_open_fds(), fds);
}

TEST(Listener, AConnectionArrivingAtTheAcceptDeadlineIsNeverLost) {
  // Connects race timed accepts hundreds of times; an accept that timed out must leave its
  // connection queued for the next accept, so every connection is accepted exactly once.
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0), {.backlog = 4096});
  auto body = [&]() -> task<int> {
    int accepted = 0;
    int timeouts = 0;
    std::vector<tcp_client> clients;
    for (int i = 0; i < 300; ++i) {
      auto connector = [&]() -> task<void> {
        tcp_client c(io);
        co_await c.connect(listener.local_endpoint(), 5s);
        clients.push_back(std::move(c));
      };
      auto acceptor = [&]() -> task<void> {
        auto r = co_await listener.try_accept(std::chrono::microseconds(i % 50));
        if (r)
          ++accepted;
        else if (r.error() == std::errc::timed_out)
          ++timeouts;
        else
          ADD_FAILURE() << r.error().message();
      };
      co_await uringcat::when_all(connector(), acceptor());
    }
    for (int i = 0; i < timeouts; ++i) {  // the ones that timed out are still queued
      auto r = co_await listener.try_accept(2s);
      if (r) ++accepted;
    }
    co_return accepted;
  };
  EXPECT_EQ(io.run(body()), 300);
}

}  // namespace
