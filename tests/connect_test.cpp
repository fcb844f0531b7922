// connect: success, refusal, timeouts against the loopback black hole, deadline semantics,
// and the race between a completion and its deadline.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "loopback_black_hole.hpp"
#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::endpoint;
using uringcat::io_context;
using uringcat::task;
using uringcat::tcp_client;
using uringcat::tcp_listener;
using uringcat::testing::loopback_black_hole;
using uringcat::testing::ms_since;

// A loopback port where nothing listens: bind without listen, so SYNs meet a RST.
struct closed_port {
  int fd;
  std::uint16_t port;
  closed_port() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~closed_port() { ::close(fd); }
  endpoint ep() const { return endpoint::loopback_v4(port); }
};

TEST(Connect, ConnectsToALoopbackListener) {
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  auto body = [&]() -> task<bool> {
    tcp_client client(io);
    auto [accepted, none] = co_await uringcat::when_all(
        [&]() -> task<tcp_client> { co_return co_await listener.accept(5s); }(),
        [&]() -> task<void> { co_await client.connect(listener.local_endpoint(), 5s); }());
    (void)none;
    co_return client.is_open() && accepted.is_open() &&
        client.remote_endpoint()->port() == listener.local_endpoint().port();
  };
  EXPECT_TRUE(io.run(body()));
}

TEST(Connect, ReportsTimedOutWhenPeerNeverAccepts) {
  loopback_black_hole hole;
  io_context io;
  auto body = [&]() -> task<std::error_code> {
    tcp_client client(io);
    co_return co_await client.try_connect(endpoint::parse(hole.address()), 100ms);
  };
  const auto start = std::chrono::steady_clock::now();
  const std::error_code ec = io.run(body());
  const double elapsed = ms_since(start);
  EXPECT_EQ(ec, std::errc::timed_out);
  EXPECT_GE(elapsed, 100.0);   // never early
  EXPECT_LT(elapsed, 1100.0);  // and not absurdly late (precision is the benchmarks' job)
}

TEST(Connect, ThrowsSystemErrorNamingTheAddressOnTimeout) {
  loopback_black_hole hole;
  io_context io;
  auto body = [&]() -> task<void> {
    tcp_client client(io);
    co_await client.connect(endpoint::parse(hole.address()), 50ms);
  };
  try {
    io.run(body());
    FAIL() << "connect to a black hole succeeded";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::timed_out);
    EXPECT_NE(std::string(e.what()).find(hole.address()), std::string::npos) << e.what();
  }
}

TEST(Connect, ReportsConnectionRefusedWhenNothingListens) {
  closed_port port;
  io_context io;
  auto body = [&]() -> task<std::error_code> {
    tcp_client client(io);
    co_return co_await client.try_connect(port.ep(), 2s);
  };
  EXPECT_EQ(io.run(body()), std::errc::connection_refused);
}

TEST(Connect, RefusalWithoutTimeoutIsStillRefusal) {
  closed_port port;
  io_context io;
  auto body = [&]() -> task<std::error_code> {
    tcp_client client(io);
    co_return co_await client.try_connect(port.ep());
  };
  EXPECT_EQ(io.run(body()), std::errc::connection_refused);
}

TEST(Connect, ZeroTimeoutReportsTimedOutWithoutOpeningASocket) {
  closed_port port;
  io_context io;
  const int fds = uringcat::testing::count_open_fds();
  auto body = [&]() -> task<std::error_code> {
    tcp_client client(io);
    std::error_code zero = co_await client.try_connect(port.ep(), 0s);
    std::error_code negative = co_await client.try_connect(port.ep(), -5ms);
    co_return zero == negative ? zero : std::error_code{};
  };
  EXPECT_EQ(io.run(body()), std::errc::timed_out);  // not refused: no SYN was sent
  EXPECT_EQ(io.cqes_in_flight(), 0u);
  EXPECT_EQ(uringcat::testing::count_open_fds(), fds);
}

TEST(Connect, RelativeTimeoutStartsWhenAwaitedNotWhenCreated) {
  loopback_black_hole hole;
  io_context io;
  auto body = [&]() -> task<double> {
    tcp_client client(io);
    auto pending = client.try_connect(endpoint::parse(hole.address()), 100ms);
    std::this_thread::sleep_for(150ms);  // longer than the timeout, before awaiting
    const auto start = std::chrono::steady_clock::now();
    const std::error_code ec = co_await pending;
    co_return ec == std::errc::timed_out ? ms_since(start) : -1.0;
  };
  const double elapsed = io.run(body());
  EXPECT_GE(elapsed, 100.0);
}

TEST(Connect, ClosesTheSocketAfterATimeoutAndCanConnectAgain) {
  loopback_black_hole hole;
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  const int fds = uringcat::testing::count_open_fds();
  auto body = [&]() -> task<bool> {
    tcp_client client(io);
    const std::error_code first =
        co_await client.try_connect(endpoint::parse(hole.address()), 20ms);
    if (first != std::errc::timed_out || client.is_open()) co_return false;
    auto [peer, ec] = co_await uringcat::when_all(
        [&]() -> task<tcp_client> { co_return co_await listener.accept(5s); }(),
        [&]() -> task<std::error_code> {
          co_return co_await client.try_connect(listener.local_endpoint(), 5s);
        }());
    co_return !ec && client.is_open() && peer.is_open();
  };
  EXPECT_TRUE(io.run(body()));
  EXPECT_EQ(uringcat::testing::count_open_fds(), fds);
}

TEST(Connect, ConnectingAnOpenClientIsAnError) {
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  auto body = [&]() -> task<std::error_code> {
    tcp_client client(io);
    co_await uringcat::when_all(
        [&]() -> task<tcp_client> { co_return co_await listener.accept(5s); }(),
        [&]() -> task<void> { co_await client.connect(listener.local_endpoint(), 5s); }());
    co_return co_await client.try_connect(listener.local_endpoint(), 5s);
  };
  EXPECT_EQ(io.run(body()), std::errc::already_connected);
}

TEST(Connect, ConnectsByHostNameWithOneDeadline) {
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  auto body = [&]() -> task<bool> {
    tcp_client client(io);
    uringcat::resolve_options v4;
    v4.family = AF_INET;
    co_await uringcat::when_all(
        [&]() -> task<tcp_client> { co_return co_await listener.accept(5s); }(),
        client.connect("localhost", listener.local_endpoint().port(), 3.5s, v4));
    co_return client.is_open();
  };
  EXPECT_TRUE(io.run(body()));
}

TEST(Connect, HostNameDeadlineCoversEveryAttempt) {
  // "localhost" may resolve to ::1 and 127.0.0.1; both are black holes here, so the single
  // deadline must end the whole call near 150 ms, not 150 ms per address.
  loopback_black_hole hole4;
  io_context io;
  auto body = [&]() -> task<std::error_code> {
    tcp_client client(io);
    uringcat::resolve_options v4;
    v4.family = AF_INET;
    co_return co_await client.try_connect("localhost", hole4.port(), 150ms, v4);
  };
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(io.run(body()), std::errc::timed_out);
  const double elapsed = ms_since(start);
  EXPECT_GE(elapsed, 150.0);
  EXPECT_LT(elapsed, 1150.0);
}

TEST(Connect, AnExpiredDeadlineByNameIsTimedOutWithoutALookup) {
  // Review 3: the name was still resolved (here it would fail) before reporting the deadline.
  io_context io;
  auto body = [&]() -> task<std::error_code> {
    tcp_client client(io);
    co_return co_await client.try_connect("no-such-host.invalid", 80, 0s);
  };
  EXPECT_EQ(io.run(body()), std::errc::timed_out);
}

TEST(Connect, UnknownHostIsAResolutionErrorNotATimeout) {
  io_context io;
  auto body = [&]() -> task<std::error_code> {
    tcp_client client(io);
    co_return co_await client.try_connect("no-such-host.invalid", 80, 2s);
  };
  const std::error_code ec = io.run(body());
  EXPECT_TRUE(ec);
  EXPECT_NE(ec, std::errc::timed_out);
}

TEST(Connect, WorksOverIpv6Loopback) {
  io_context io;
  std::unique_ptr<tcp_listener> listener;
  try {
    listener = std::make_unique<tcp_listener>(io, endpoint::loopback_v6(0));
  } catch (const std::system_error& e) {
    GTEST_SKIP() << "no IPv6 loopback here: " << e.what();
  }
  auto body = [&]() -> task<bool> {
    tcp_client client(io);
    auto [peer, none] = co_await uringcat::when_all(
        [&]() -> task<tcp_client> { co_return co_await listener->accept(5s); }(),
        [&]() -> task<void> { co_await client.connect(listener->local_endpoint(), 5s); }());
    (void)none;
    co_return peer.is_open() && client.remote_endpoint()->is_v6();
  };
  EXPECT_TRUE(io.run(body()));
}

TEST(Connect, CompletionRacingItsDeadlineHasOneWellDefinedOutcome) {
  // Deadlines of 0-60 us against a listener that accepts: sometimes the connect wins,
  // sometimes the deadline. Either way the outcome is one of the two, the socket state
  // matches it, and nothing hangs or leaks.
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0), {.backlog = 4096});
  const int fds = uringcat::testing::count_open_fds();
  std::set<std::string> outcomes;
  auto body = [&]() -> task<bool> {
    std::mt19937 rng(12345);
    for (int i = 0; i < 400; ++i) {
      tcp_client client(io);
      const auto t = std::chrono::microseconds(rng() % 60);
      const std::error_code ec = co_await client.try_connect(listener.local_endpoint(), t);
      if (!ec) {
        if (!client.is_open()) co_return false;
        outcomes.insert("connected");
        auto peer = co_await listener.accept(5s);  // drain the accept queue
      } else if (ec == std::errc::timed_out) {
        if (client.is_open()) co_return false;
        outcomes.insert("timed_out");
      } else {
        ADD_FAILURE() << "unexpected outcome " << ec.message();
        co_return false;
      }
    }
    co_return true;
  };
  EXPECT_TRUE(io.run(body()));
  EXPECT_FALSE(outcomes.empty());
  listener.close();
  EXPECT_EQ(uringcat::testing::count_open_fds(), fds - 1);  // only the listener went away
}

}  // namespace
