// Tests for the asynchronous resolver (async_resolve.hpp). Every DNS query goes to a
// responder on 127.0.0.1 that the test controls (support/dns_responder.hpp); the system's
// configuration is used only for names that never leave the machine (literals, localhost).
#include "uringcat/async_resolve.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netdb.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <string>
#include <system_error>

#include "connected_pair.hpp"
#include "dns_responder.hpp"
#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::endpoint;
using uringcat::io_context;
using uringcat::resolve_options;
using uringcat::resolver;
using uringcat::resolver_options;
using uringcat::result;
using uringcat::task;
using uringcat::testing::dns_responder;
using uringcat::testing::ms_since;
using endpoints = std::vector<endpoint>;

std::error_code eai(int code) {
  return {code < 0 ? -code : code, uringcat::resolve_category()};
}

// endpoints have no order: compare their texts as sets.
std::set<std::string> as_set(const endpoints& eps) {
  std::set<std::string> texts;
  for (const endpoint& ep : eps) texts.insert(ep.to_string());
  return texts;
}

bool is_loopback(const endpoint& ep) {
  if (ep.is_v4())
    return (ntohl(reinterpret_cast<const sockaddr_in*>(ep.data())->sin_addr.s_addr) >> 24) == 127;
  return ep.is_v6() &&
         IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(ep.data())->sin6_addr);
}

// A resolver that asks `dns` only, with c-ares's retries far beyond any test's deadline.
resolver_options at(const dns_responder& dns) {
  return {.servers = {dns.server()}, .attempt_timeout = 5s, .attempts = 1};
}

// Runs one non-throwing lookup to its end.
result<endpoints> lookup(resolver& r, std::string host, uringcat::timeout t = 5s,
                         resolve_options options = {}) {
  io_context io;
  return io.run(r.try_resolve(io, std::move(host), 80, t, options));
}

TEST(AsyncResolve, ReturnsBothIpv4AndIpv6AnswersAsEndpointsWithThePort) {
  dns_responder dns;
  dns.add_a("both.test", "10.1.2.3");
  dns.add_aaaa("both.test", "fd00::5");
  resolver r(at(dns));
  result<endpoints> eps = lookup(r, "both.test");
  ASSERT_TRUE(eps) << eps.error().message();
  EXPECT_EQ(as_set(*eps), (std::set<std::string>{"10.1.2.3:80", "[fd00::5]:80"}));
  EXPECT_EQ(dns.queries(), 2);  // one A, one AAAA
}

TEST(AsyncResolve, FamilyOptionAsksForThatFamilyOnly) {
  dns_responder dns;
  dns.add_a("both.test", "10.1.2.3");
  dns.add_aaaa("both.test", "fd00::5");
  resolver r(at(dns));
  EXPECT_EQ(*lookup(r, "both.test", 5s, {.family = AF_INET}),
            endpoints{endpoint::parse("10.1.2.3:80")});
  EXPECT_EQ(*lookup(r, "both.test", 5s, {.family = AF_INET6}),
            endpoints{endpoint::parse("[fd00::5]:80")});
}

TEST(AsyncResolve, KeepsEveryAddressOfAFamilyWithoutDuplicates) {
  dns_responder dns;
  dns.add_a("many.test", "10.0.0.1");
  dns.add_a("many.test", "10.0.0.2");
  dns.add_a("many.test", "10.0.0.1");
  resolver r(at(dns));
  result<endpoints> eps = lookup(r, "many.test", 5s, {.family = AF_INET});
  ASSERT_TRUE(eps) << eps.error().message();
  EXPECT_EQ(as_set(*eps), (std::set<std::string>{"10.0.0.1:80", "10.0.0.2:80"}));
  EXPECT_EQ(eps->size(), 2u);
}

TEST(AsyncResolve, UnknownNameIsEaiNonameNotATimeout) {
  dns_responder dns;
  resolver r(at(dns));
  result<endpoints> eps = lookup(r, "nowhere.test");
  ASSERT_FALSE(eps);
  EXPECT_EQ(eps.error(), eai(EAI_NONAME)) << eps.error().message();
  EXPECT_NE(eps.error(), std::errc::timed_out);
}

TEST(AsyncResolve, ThrowingSpellingNamesTheHostAndTheReason) {
  dns_responder dns;
  resolver r(at(dns));
  io_context io;
  try {
    (void)io.run(r.resolve(io, "nowhere.test", 80, 5s));
    FAIL() << "resolved a name the server does not know";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), eai(EAI_NONAME));
    EXPECT_NE(std::string(e.what()).find("\"nowhere.test\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("c-ares"), std::string::npos) << e.what();
  }
}

TEST(AsyncResolve, NameWithoutAnAddressOfTheFamilyIsEaiNodata) {
  dns_responder dns;
  dns.add_aaaa("v6only.test", "fd00::7");
  resolver r(at(dns));
  result<endpoints> eps = lookup(r, "v6only.test", 5s, {.family = AF_INET});
  ASSERT_FALSE(eps);
  EXPECT_EQ(eps.error(), eai(EAI_NODATA)) << eps.error().message();
}

TEST(AsyncResolve, DelayedAnswerWithinTheDeadlineArrives) {
  dns_responder dns;
  dns.add_a("slow.test", "10.3.3.3");
  dns.set_delay(100ms);
  resolver r(at(dns));
  const auto start = std::chrono::steady_clock::now();
  result<endpoints> eps = lookup(r, "slow.test", 3s, {.family = AF_INET});
  const double ms = ms_since(start);
  ASSERT_TRUE(eps) << eps.error().message();
  EXPECT_EQ(*eps, endpoints{endpoint::parse("10.3.3.3:80")});
  EXPECT_GE(ms, 100.0);
  EXPECT_LT(ms, 3000.0);
}

TEST(AsyncResolve, SilentServerReportsTimedOutAtTheDeadline) {
  dns_responder dns;
  dns.set_silent(true);
  resolver r(at(dns));
  io_context io;
  double ms = 0;
  const result<endpoints> eps = io.run([&]() -> task<result<endpoints>> {
    const auto start = std::chrono::steady_clock::now();  // when the lookup starts
    result<endpoints> res = co_await r.try_resolve(io, "silent.test", 80, 300ms);
    ms = ms_since(start);
    co_return res;
  }());
  ASSERT_FALSE(eps);
  EXPECT_EQ(eps.error(), std::errc::timed_out) << eps.error().message();
  EXPECT_GE(ms, 300.0);
  EXPECT_LT(ms, 3000.0);
  EXPECT_GE(dns.queries(), 1);
  std::printf("[ measure  ] silent server, 300 ms deadline: timed_out after %.3f ms\n", ms);
}

TEST(AsyncResolve, DeadlineCutsShortCaresOwnRetries) {
  // c-ares would wait 2 s for its first answer; the caller's 200 ms deadline wins.
  dns_responder dns;
  dns.set_silent(true);
  resolver r({.servers = {dns.server()}, .attempt_timeout = 2s, .attempts = 3});
  const auto start = std::chrono::steady_clock::now();
  result<endpoints> eps = lookup(r, "silent.test", 200ms);
  const double ms = ms_since(start);
  EXPECT_EQ(eps.error(), std::errc::timed_out);
  EXPECT_GE(ms, 200.0);
  EXPECT_LT(ms, 1900.0);
}

TEST(AsyncResolve, ServersGivingUpIsEaiAgainNotTimedOut) {
  dns_responder dns;
  dns.set_silent(true);
  resolver r({.servers = {dns.server()}, .attempt_timeout = 50ms, .attempts = 2});
  const auto start = std::chrono::steady_clock::now();
  result<endpoints> eps = lookup(r, "silent.test", uringcat::no_timeout);
  const double ms = ms_since(start);
  ASSERT_FALSE(eps);
  EXPECT_EQ(eps.error(), eai(EAI_AGAIN)) << eps.error().message();
  EXPECT_GE(dns.queries(), 2);  // c-ares retried on its own timer, driven by the ring
  EXPECT_GE(ms, 50.0);
  EXPECT_LT(ms, 3000.0);
}

TEST(AsyncResolve, ZeroTimeoutIsTimedOutAtOnceWithoutAQuery) {
  dns_responder dns;
  dns.add_a("fast.test", "10.0.0.1");
  resolver r(at(dns));
  EXPECT_EQ(lookup(r, "fast.test", 0ms).error(), std::errc::timed_out);
  EXPECT_EQ(dns.queries(), 0);
}

TEST(AsyncResolve, RingKeepsServingOtherOperationsWhileALookupIsPending) {
  dns_responder dns;
  dns.set_silent(true);
  resolver r(at(dns));
  io_context io;
  double lookup_ms = 0, other_ms = 0;
  int echoes = 0;
  std::error_code lookup_error, recv_error;
  auto pending_lookup = [&]() -> task<void> {
    const auto start = std::chrono::steady_clock::now();
    result<endpoints> eps = co_await r.try_resolve(io, "silent.test", 80, 300ms);
    lookup_error = eps.error();
    lookup_ms = ms_since(start);
  };
  auto other_work = [&]() -> task<void> {
    const auto start = std::chrono::steady_clock::now();
    auto pair = co_await uringcat::testing::make_connected_pair(io);
    std::byte buf[8];
    for (int i = 0; i < 20; ++i) {  // echo round trips on the same ring
      co_await pair.client.send_all(std::span<const std::byte>(buf, sizeof buf), 1s);
      co_await pair.server.recv_exact(std::span<std::byte>(buf, sizeof buf), 1s);
      ++echoes;
    }
    // ...and a deadline of its own, reported on time while the lookup still waits.
    recv_error =
        (co_await pair.client.try_recv(std::span<std::byte>(buf, sizeof buf), 50ms)).error();
    other_ms = ms_since(start);
  };
  io.run(uringcat::when_all(pending_lookup(), other_work()));
  EXPECT_EQ(echoes, 20);
  EXPECT_EQ(recv_error, std::errc::timed_out);
  EXPECT_EQ(lookup_error, std::errc::timed_out);
  EXPECT_GE(lookup_ms, 300.0);
  EXPECT_LT(other_ms, lookup_ms);  // finished while the lookup was pending
  EXPECT_LT(other_ms, 250.0);
}

TEST(AsyncResolve, NumericHostsSendNoQueries) {
  dns_responder dns;
  resolver r(at(dns));
  EXPECT_EQ(*lookup(r, "127.0.0.1"), endpoints{endpoint::parse("127.0.0.1:80")});
  EXPECT_EQ(*lookup(r, "::1"), endpoints{endpoint::parse("[::1]:80")});
  EXPECT_EQ(*lookup(r, "[::1]"), endpoints{endpoint::parse("[::1]:80")});
  EXPECT_EQ(*lookup(r, "10.9.8.7"), endpoints{endpoint::parse("10.9.8.7:80")});
  EXPECT_EQ(*lookup(r, "fd00::1", 5s, {.numeric_only = true}),
            endpoints{endpoint::parse("[fd00::1]:80")});
  EXPECT_EQ(*lookup(r, "fe80::1%lo"), endpoints{endpoint::parse("[fe80::1%lo]:80")});
  EXPECT_EQ(dns.queries(), 0);
}

TEST(AsyncResolve, NumericOnlyAndBracketsRejectANameWithoutAQuery) {
  dns_responder dns;
  dns.add_a("named.test", "10.0.0.1");
  resolver r(at(dns));
  EXPECT_EQ(lookup(r, "named.test", 5s, {.numeric_only = true}).error(), eai(EAI_NONAME));
  EXPECT_EQ(lookup(r, "[named.test]").error(), eai(EAI_NONAME));
  EXPECT_EQ(lookup(r, "").error(), eai(EAI_NONAME));
  EXPECT_EQ(lookup(r, std::string("a\0b", 3)).error(), eai(EAI_NONAME));
  EXPECT_EQ(lookup(r, "named.test", 5s, {.family = AF_UNIX}).error(), eai(EAI_FAMILY));
  EXPECT_EQ(lookup(r, "::1", 5s, {.family = AF_INET}).error(), eai(EAI_ADDRFAMILY));
  EXPECT_EQ(lookup(r, "127.0.0.1", 5s, {.family = AF_INET6}).error(), eai(EAI_ADDRFAMILY));
  EXPECT_EQ(dns.queries(), 0);
}

TEST(AsyncResolve, LocalhostComesFromTheHostsFileWithoutAQuery) {
  dns_responder dns;
  resolver r(at(dns));
  const auto start = std::chrono::steady_clock::now();
  result<endpoints> eps = lookup(r, "localhost");
  const double ms = ms_since(start);
  ASSERT_TRUE(eps) << eps.error().message();
  ASSERT_FALSE(eps->empty());
  for (const endpoint& ep : *eps) EXPECT_TRUE(is_loopback(ep)) << ep;
  EXPECT_EQ(dns.queries(), 0);
  std::printf("[ measure  ] localhost: %.3f ms (including io_context setup)\n", ms);
}

TEST(AsyncResolve, LocalhostSpellingsNeverReachTheServer) {
  // RFC 6761: "LOCALHOST.", "db.localhost" are loopback too; the hosts file may lack them.
  dns_responder dns;
  dns.add_a("db.localhost", "10.6.6.6");  // a server that would lie must never be asked
  resolver r(at(dns));
  for (const char* name : {"LOCALHOST", "localhost.", "db.localhost", "db.localhost."}) {
    result<endpoints> eps = lookup(r, name);
    ASSERT_TRUE(eps) << name << ": " << eps.error().message();
    ASSERT_FALSE(eps->empty()) << name;
    for (const endpoint& ep : *eps) EXPECT_TRUE(is_loopback(ep)) << name << ": " << ep;
  }
  EXPECT_EQ(*lookup(r, "db.localhost", 5s, {.family = AF_INET6}),
            endpoints{endpoint::parse("[::1]:80")});
  EXPECT_EQ(dns.queries(), 0);
}

TEST(AsyncResolve, LocalhostWithTheSystemConfigurationAgreesWithGetaddrinfoAddresses) {
  // The free function, on /etc/resolv.conf: localhost never reaches a DNS server, so this
  // stays on the machine. c-ares and glibc read the same /etc/hosts.
  io_context io;
  endpoints eps = io.run(uringcat::async_resolve(io, "localhost", 8080, 2s));
  ASSERT_FALSE(eps.empty());
  for (const endpoint& ep : eps) {
    EXPECT_TRUE(is_loopback(ep)) << ep;
    EXPECT_EQ(ep.port(), 8080);
  }
  const endpoints system = uringcat::resolve("localhost", 8080);
  for (const endpoint& ep : system)
    EXPECT_TRUE(as_set(eps).count(ep.to_string())) << ep << " from getaddrinfo missing";
}

TEST(AsyncResolve, ManyConcurrentLookupsAllGetTheirOwnAnswer) {
  dns_responder dns;
  constexpr int n = 200;
  for (int i = 0; i < n; ++i) {
    const std::string ip = "10.7." + std::to_string(i / 100) + "." + std::to_string(i % 100);
    if (i % 10 != 9) dns.add_a("host" + std::to_string(i) + ".test", ip.c_str());
  }
  resolver r(at(dns));
  io_context io;
  std::vector<task<result<endpoints>>> lookups;
  for (int i = 0; i < n; ++i)
    lookups.push_back(
        r.try_resolve(io, "host" + std::to_string(i) + ".test", 80, 5s, {.family = AF_INET}));
  const auto start = std::chrono::steady_clock::now();
  std::vector<result<endpoints>> results = io.run(uringcat::when_all(std::move(lookups)));
  const double ms = ms_since(start);
  ASSERT_EQ(results.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    if (i % 10 == 9) {
      EXPECT_EQ(results[i].error(), eai(EAI_NONAME)) << i;
    } else {
      const std::string ip = "10.7." + std::to_string(i / 100) + "." + std::to_string(i % 100);
      ASSERT_TRUE(results[i]) << i << ": " << results[i].error().message();
      EXPECT_EQ(*results[i], endpoints{endpoint::parse(ip + ":80")}) << i;
    }
  }
  EXPECT_EQ(dns.queries(), n);
  std::printf("[ measure  ] %d concurrent lookups: %.1f ms\n", n, ms);
}

TEST(AsyncResolve, TimedOutLookupsLeakNoDescriptor) {
  dns_responder dns;
  dns.set_silent(true);
  resolver r(at(dns));
  io_context io;
  const int before = uringcat::testing::count_open_fds();
  for (int round = 0; round < 3; ++round) {
    std::vector<task<result<endpoints>>> lookups;
    for (int i = 0; i < 20; ++i) lookups.push_back(r.try_resolve(io, "silent.test", 80, 100ms));
    for (const auto& res : io.run(uringcat::when_all(std::move(lookups))))
      EXPECT_EQ(res.error(), std::errc::timed_out);
  }
  EXPECT_EQ(uringcat::testing::count_open_fds(), before);
}

TEST(AsyncResolve, CompletedLookupsLeakNoDescriptor) {
  dns_responder dns;
  dns.add_a("ok.test", "10.0.0.1");
  resolver r(at(dns));
  io_context io;
  const int before = uringcat::testing::count_open_fds();
  for (int i = 0; i < 20; ++i)
    EXPECT_TRUE(io.run(r.try_resolve(io, "ok.test", 80, 5s, {.family = AF_INET})));
  EXPECT_EQ(uringcat::testing::count_open_fds(), before);
}

TEST(AsyncResolve, IoContextDestroyedWithALookupPendingLeaksNoDescriptor) {
  dns_responder dns;
  dns.set_silent(true);
  resolver r(at(dns));
  const int before = uringcat::testing::count_open_fds();
  {
    io_context io;
    io.spawn([](resolver& r, io_context& io) -> task<void> {
      (void)co_await r.try_resolve(io, "silent.test", 80, 10s);
    }(r, io));
    // Runs until the lookup is waiting for its answer, then abandons it.
    (void)io.run(r.try_resolve(io, "silent.test", 80, 50ms));
  }
  EXPECT_EQ(uringcat::testing::count_open_fds(), before);
}

TEST(AsyncResolve, BadServerTextThrowsNamingIt) {
  try {
    resolver r({.servers = {"not an address"}});
    FAIL() << "accepted a bad server";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("\"not an address\""), std::string::npos) << e.what();
  }
}

}  // namespace
