// Connect by name end to end: a DNS responder on 127.0.0.1 that the test controls
// (support/dns_responder.hpp) answers for the name, the lookup runs on the ring (c-ares),
// and Happy Eyeballs races the addresses it returned, all under one deadline. Loopback only.
#include <gtest/gtest.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <system_error>

#include "dns_responder.hpp"
#include "loopback_black_hole.hpp"
#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::connect_options;
using uringcat::connect_report;
using uringcat::endpoint;
using uringcat::io_context;
using uringcat::resolver;
using uringcat::resolver_options;
using uringcat::task;
using uringcat::tcp_client;
using uringcat::testing::count_open_fds;
using uringcat::testing::dns_responder;
using uringcat::testing::have_ipv6_loopback;
using uringcat::testing::loopback_black_hole;
using uringcat::testing::ms_since;

// A resolver that asks `dns` only, with c-ares's own retries beyond any deadline here.
resolver_options at(const dns_responder& dns) {
  return {.servers = {dns.server()}, .attempt_timeout = 5s, .attempts = 1};
}

// A socket bound to `ep`, listening (backlog) or not (connects to it are refused).
struct bound_socket {
  int fd = -1;
  bound_socket(const endpoint& ep, bool listen) {
    fd = ::socket(ep.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (ep.is_v6()) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(fd, ep.data(), ep.size()) != 0 || (listen && ::listen(fd, 16) != 0)) {
      ::close(fd);
      fd = -1;
    }
  }
  ~bound_socket() {
    if (fd >= 0) ::close(fd);
  }
  bool ok() const { return fd >= 0; }
};

connect_report connect_by_name(resolver& r, std::string name, std::uint16_t port,
                               uringcat::timeout t,
                               std::chrono::nanoseconds attempt_delay = 250ms) {
  io_context io;
  tcp_client client(io);
  connect_options options;
  options.name_resolver = &r;
  options.attempt_delay = attempt_delay;
  auto body = [&]() -> task<connect_report> {
    co_return co_await client.connect_with_report(std::move(name), port, t, options);
  };
  connect_report report = io.run(body());
  if (!report.error) {
    EXPECT_TRUE(client.is_open());
  }
  return report;
}

TEST(ConnectByName, BlackHoledIpv6AddressLosesToIpv4AfterTheAttemptDelay) {
  if (!have_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback";
  // [::1]:P drops our SYNs; 127.0.0.1:P accepts (same port, as a name's addresses have).
  std::optional<loopback_black_hole> hole6;
  std::optional<bound_socket> listener4;
  for (int i = 0; i < 20 && !(listener4 && listener4->ok()); ++i) {
    hole6.emplace(/*ipv6=*/true);
    listener4.emplace(endpoint::loopback_v4(hole6->port()), /*listen=*/true);
  }
  ASSERT_TRUE(listener4 && listener4->ok()) << "no port free on both families";
  dns_responder dns;
  dns.add_aaaa("dual.test", "::1");
  dns.add_a("dual.test", "127.0.0.1");
  resolver r(at(dns));
  const int fds = count_open_fds();
  const auto start = std::chrono::steady_clock::now();
  const connect_report report = connect_by_name(r, "dual.test", hole6->port(), 5s, 250ms);
  const double elapsed = ms_since(start);
  ASSERT_FALSE(report.error) << report.error.message() << ": " << report.describe();
  ASSERT_EQ(report.attempts.size(), 2u) << report.describe();
  EXPECT_TRUE(report.attempts[0].peer.is_v6());  // RFC 6724 prefers ::1
  EXPECT_EQ(report.attempts[0].error, std::errc::operation_canceled);
  EXPECT_EQ(report.connected, 1u);
  EXPECT_TRUE(report.attempts[1].peer.is_v4());
  EXPECT_GE(report.attempts[1].start - report.attempts[0].start, 250ms);
  EXPECT_LT(elapsed, 2500.0);  // about the attempt delay, not the 5 s deadline
  EXPECT_EQ(count_open_fds(), fds);
}

TEST(ConnectByName, BothAddressesRefusedGivesOneErrorNamingBoth) {
  if (!have_ipv6_loopback()) GTEST_SKIP() << "no IPv6 loopback";
  std::optional<bound_socket> closed6, closed4;
  std::uint16_t port = 0;
  for (int i = 0; i < 20 && !(closed4 && closed4->ok()); ++i) {
    closed6.emplace(endpoint::loopback_v6(0), /*listen=*/false);
    sockaddr_in6 sin6{};
    socklen_t len = sizeof sin6;
    ::getsockname(closed6->fd, reinterpret_cast<sockaddr*>(&sin6), &len);
    port = ntohs(sin6.sin6_port);
    closed4.emplace(endpoint::loopback_v4(port), /*listen=*/false);
  }
  ASSERT_TRUE(closed4 && closed4->ok());
  dns_responder dns;
  dns.add_aaaa("refused.test", "::1");
  dns.add_a("refused.test", "127.0.0.1");
  resolver r(at(dns));
  const connect_report report = connect_by_name(r, "refused.test", port, 5s);
  EXPECT_EQ(report.error, std::errc::connection_refused);
  const std::string text = report.describe();
  EXPECT_NE(text.find("[::1]:" + std::to_string(port) + " refused"), std::string::npos) << text;
  EXPECT_NE(text.find("127.0.0.1:" + std::to_string(port) + " refused"), std::string::npos) << text;
}

TEST(ConnectByName, ResolutionSlowerThanTheDeadlineTimesOutAtTheDeadline) {
  dns_responder dns;
  dns.add_a("slow.test", "127.0.0.1");
  dns.set_delay(3s);
  resolver r(at(dns));
  const int fds = count_open_fds();
  const auto start = std::chrono::steady_clock::now();
  const connect_report report = connect_by_name(r, "slow.test", 9, 300ms);
  const double elapsed = ms_since(start);
  EXPECT_EQ(report.error, std::errc::timed_out);
  EXPECT_TRUE(report.attempts.empty());  // nothing to try before the deadline
  EXPECT_GE(elapsed, 300.0);
  EXPECT_LT(elapsed, 2500.0);  // at the deadline, not after the 3 s answer
  EXPECT_EQ(count_open_fds(), fds);
}

TEST(ConnectByName, AnUnknownNameIsAResolutionErrorNotATimeout) {
  dns_responder dns;
  resolver r(at(dns));
  const connect_report report = connect_by_name(r, "nosuch.test", 9, 5s);
  EXPECT_EQ(report.error, std::error_code(-EAI_NONAME, uringcat::resolve_category()))
      << report.error.message();
  EXPECT_TRUE(report.attempts.empty());
}

}  // namespace
