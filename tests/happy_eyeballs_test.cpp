// Happy Eyeballs (connect_any.hpp): address order, the attempt delay, the first success
// winning over a black-holed address, combined errors, one deadline for every attempt, and
// no descriptor left behind. Loopback only: ::1 and 127.0.0.1.
#include "uringcat/connect_any.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "loopback_black_hole.hpp"
#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::connect_options;
using uringcat::connect_report;
using uringcat::endpoint;
using uringcat::io_context;
using uringcat::task;
using uringcat::tcp_client;
using uringcat::tcp_listener;
using uringcat::testing::count_open_fds;
using uringcat::testing::have_ipv6_loopback;
using uringcat::testing::loopback_black_hole;
using uringcat::testing::ms_since;

/// A loopback port (IPv4 or IPv6) where nothing listens: bound, never listening, so SYNs get
/// a RST and connects are refused.
struct refusing_port {
  int fd = -1;
  endpoint ep;
  explicit refusing_port(bool v6) {
    const endpoint any = v6 ? endpoint::loopback_v6(0) : endpoint::loopback_v4(0);
    fd = ::socket(any.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || ::bind(fd, any.data(), any.size()) != 0)
      throw std::system_error(errno, std::system_category(), "bind");
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    ep = endpoint(reinterpret_cast<sockaddr*>(&ss), len);
  }
  ~refusing_port() { ::close(fd); }
};

#define REQUIRE_IPV6()                                             \
  do {                                                             \
    if (!have_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback"; \
  } while (0)

TEST(HappyEyeballsOrder, InterleavesFamiliesStartingWithTheFirstAddress) {
  const auto v6a = endpoint::parse("[::1]:1"), v6b = endpoint::parse("[::1]:2");
  const auto v6c = endpoint::parse("[::1]:3");
  const auto v4a = endpoint::parse("127.0.0.1:1"), v4b = endpoint::parse("127.0.0.1:2");
  EXPECT_EQ(uringcat::happy_eyeballs_order({v6a, v6b, v6c, v4a, v4b}),
            (std::vector<endpoint>{v6a, v4a, v6b, v4b, v6c}));
  EXPECT_EQ(uringcat::happy_eyeballs_order({v4a, v6a, v6b}),
            (std::vector<endpoint>{v4a, v6a, v6b}));
  EXPECT_EQ(uringcat::happy_eyeballs_order({v4a, v4b}), (std::vector<endpoint>{v4a, v4b}));
  EXPECT_TRUE(uringcat::happy_eyeballs_order({}).empty());
}

TEST(HappyEyeballs, ABlackHoledFirstAddressLosesToTheNextAfterTheAttemptDelay) {
  // ::1 drops our SYNs; 127.0.0.1 accepts. The IPv4 attempt starts after the attempt delay
  // and wins; the IPv6 one is cancelled and closed. All well before the 5 s deadline.
  REQUIRE_IPV6();
  loopback_black_hole hole6(/*ipv6=*/true);
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  const int fds = count_open_fds();
  connect_options options;
  options.attempt_delay = 100ms;
  tcp_client client(io);
  auto body = [&]() -> task<connect_report> {
    std::vector<endpoint> eps{endpoint::parse(hole6.address()), listener.local_endpoint()};
    co_return co_await uringcat::connect_any(client, std::move(eps), 5s, options);
  };
  const auto start = std::chrono::steady_clock::now();
  const connect_report r = io.run(body());
  const double elapsed = ms_since(start);
  ASSERT_FALSE(r.error) << r.error.message() << ": " << r.describe();
  ASSERT_EQ(r.attempts.size(), 2u);
  EXPECT_EQ(r.connected, 1u);
  EXPECT_TRUE(r.attempts[0].peer.is_v6());
  EXPECT_EQ(r.attempts[0].error, std::errc::operation_canceled);
  EXPECT_FALSE(r.attempts[1].error);
  EXPECT_GE(r.attempts[1].start - r.attempts[0].start, 100ms);  // never before the delay
  EXPECT_LT(elapsed, 2500.0);                                   // well before the 5 s deadline
  EXPECT_TRUE(client.is_open());
  EXPECT_TRUE(client.remote_endpoint()->is_v4());
  client.close_now();
  EXPECT_EQ(count_open_fds(), fds + 0);  // the accepted connection sits in the backlog only
}

TEST(HappyEyeballs, AFailedAttemptStartsTheNextAtOnce) {
  // The attempt delay is 2 s, but ::1 refuses at once: 127.0.0.1 is tried immediately.
  REQUIRE_IPV6();
  refusing_port refused6(true);
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  connect_options options;
  options.attempt_delay = 2s;
  tcp_client client(io);
  auto body = [&]() -> task<connect_report> {
    std::vector<endpoint> eps{refused6.ep, listener.local_endpoint()};
    co_return co_await uringcat::connect_any(client, std::move(eps), 5s, options);
  };
  const auto start = std::chrono::steady_clock::now();
  const connect_report r = io.run(body());
  EXPECT_FALSE(r.error) << r.describe();
  EXPECT_EQ(r.connected, 1u);
  EXPECT_EQ(r.attempts.at(0).error, std::errc::connection_refused);
  EXPECT_LT(ms_since(start), 1000.0);  // not the 2 s delay
}

TEST(HappyEyeballs, EveryAddressRefusedGivesACombinedErrorNamingEach) {
  REQUIRE_IPV6();
  refusing_port refused6(true), refused4(false);
  io_context io;
  const int fds = count_open_fds();
  auto body = [&]() -> task<connect_report> {
    tcp_client client(io);
    std::vector<endpoint> eps{refused6.ep, refused4.ep};
    co_return co_await uringcat::connect_any(client, std::move(eps), 5s);
  };
  const connect_report r = io.run(body());
  EXPECT_EQ(r.error, std::errc::connection_refused);
  EXPECT_EQ(r.describe(),
            refused6.ep.to_string() + " refused; " + refused4.ep.to_string() + " refused");
  EXPECT_FALSE(r.connected);
  EXPECT_EQ(count_open_fds(), fds);
}

TEST(HappyEyeballs, EveryAddressBlackHoledTimesOutAtTheOneDeadline) {
  REQUIRE_IPV6();
  loopback_black_hole hole6(true), hole4(false);
  io_context io;
  const int fds = count_open_fds();
  connect_options options;
  options.attempt_delay = 50ms;
  auto body = [&]() -> task<connect_report> {
    tcp_client client(io);
    std::vector<endpoint> eps{endpoint::parse(hole6.address()), endpoint::parse(hole4.address())};
    co_return co_await uringcat::connect_any(client, std::move(eps), 300ms, options);
  };
  const auto start = std::chrono::steady_clock::now();
  const connect_report r = io.run(body());
  const double elapsed = ms_since(start);
  EXPECT_EQ(r.error, std::errc::timed_out);
  EXPECT_EQ(r.describe(), hole6.address() + " timed out; " + hole4.address() + " timed out");
  EXPECT_GE(elapsed, 300.0);   // never early
  EXPECT_LT(elapsed, 1300.0);  // one deadline, not one per attempt
  EXPECT_EQ(count_open_fds(), fds);
}

TEST(HappyEyeballs, MixedFailuresReportEachAndTheDeadline) {
  // "[::1]:P refused; 127.0.0.1:Q timed out", overall timed_out.
  REQUIRE_IPV6();
  refusing_port refused6(true);
  loopback_black_hole hole4(false);
  io_context io;
  auto body = [&]() -> task<connect_report> {
    tcp_client client(io);
    std::vector<endpoint> eps{refused6.ep, endpoint::parse(hole4.address())};
    co_return co_await uringcat::connect_any(client, std::move(eps), 200ms);
  };
  const connect_report r = io.run(body());
  EXPECT_EQ(r.error, std::errc::timed_out);
  EXPECT_EQ(r.describe(), refused6.ep.to_string() + " refused; " + hole4.address() + " timed out");
}

TEST(HappyEyeballs, ReportsEachAttemptAsItStartsAndEnds) {
  refusing_port refused4(false);
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  std::vector<std::string> log;
  connect_options options;
  options.on_attempt_start = [&](const uringcat::connect_attempt& a) {
    log.push_back("start " + a.peer.to_string());
  };
  options.on_attempt_end = [&](const uringcat::connect_attempt& a) {
    log.push_back("end " + a.peer.to_string() + (a.error ? " failed" : " ok"));
  };
  auto body = [&]() -> task<bool> {
    tcp_client client(io);
    std::vector<endpoint> eps{refused4.ep, listener.local_endpoint()};
    auto r = co_await uringcat::connect_any(client, std::move(eps), 5s, options);
    co_return !r.error;
  };
  EXPECT_TRUE(io.run(body()));
  const std::string a = refused4.ep.to_string(), b = listener.local_endpoint().to_string();
  EXPECT_EQ(log, (std::vector<std::string>{"start " + a, "end " + a + " failed", "start " + b,
                                           "end " + b + " ok"}));
}

TEST(HappyEyeballs, CancellingTheCallerCancelsEveryAttempt) {
  REQUIRE_IPV6();
  loopback_black_hole hole6(true), hole4(false);
  io_context io;
  const int fds = count_open_fds();
  uringcat::cancellation_source stop;
  connect_options options;
  options.attempt_delay = 10ms;
  auto attempt = [&]() -> task<connect_report> {
    tcp_client client(io);
    std::vector<endpoint> eps{endpoint::parse(hole6.address()), endpoint::parse(hole4.address())};
    co_return co_await uringcat::connect_any(client, std::move(eps), 10s, options);
  };
  auto canceller = [&]() -> task<void> {
    co_await io.sleep_for(50ms);
    stop.request_cancellation();
  };
  auto body = [&]() -> task<connect_report> {
    auto [r, none] = co_await uringcat::when_all(
        uringcat::with_cancellation(stop.token(), attempt()), canceller());
    (void)none;
    co_return r;
  };
  const auto start = std::chrono::steady_clock::now();
  const connect_report r = io.run(body());
  EXPECT_EQ(r.error, std::errc::operation_canceled);
  EXPECT_EQ(r.attempts.size(), 2u);
  EXPECT_LT(ms_since(start), 3000.0);
  EXPECT_EQ(count_open_fds(), fds);
}

TEST(HappyEyeballs, ConnectByNameThrowsListingTheAttempts) {
  refusing_port refused4(false);
  io_context io;
  auto body = [&]() -> task<void> {
    tcp_client client(io);
    co_await client.connect("127.0.0.1", refused4.ep.port(), 2s, connect_options{});
  };
  try {
    io.run(body());
    FAIL() << "connected to a refusing port";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::connection_refused);
    EXPECT_NE(std::string(e.what()).find(refused4.ep.to_string() + " refused"), std::string::npos)
        << e.what();
  }
}

TEST(HappyEyeballs, NoAddressesIsAnErrorNotAHang) {
  io_context io;
  auto body = [&]() -> task<std::error_code> {
    tcp_client client(io);
    std::vector<endpoint> eps{};
    co_return (co_await uringcat::connect_any(client, std::move(eps), 1s)).error;
  };
  EXPECT_EQ(io.run(body()), uringcat::errc::no_addresses);
}

}  // namespace
