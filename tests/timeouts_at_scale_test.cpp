// Timeouts at scale (DESIGN.md): 10,000 concurrent connects with deadlines all report
// timed_out, none before its deadline, and no descriptor is leaked. How late they are is
// printed for information only; precision is asserted by nothing here but measured in bench/.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "loopback_black_hole.hpp"
#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::endpoint;
using uringcat::io_context;
using uringcat::task;
using uringcat::tcp_client;

void run_concurrent_connect_timeouts(int n, std::chrono::milliseconds timeout) {
  if (!uringcat::testing::raise_nofile(static_cast<rlim_t>(n) + 256))
    GTEST_SKIP() << "RLIMIT_NOFILE cannot be raised to " << n + 256;
  uringcat::testing::loopback_black_hole hole;
  const endpoint ep = endpoint::parse(hole.address());
  const int fds_before = uringcat::testing::count_open_fds();

  std::vector<std::error_code> errors(static_cast<std::size_t>(n));
  std::vector<double> lateness_us(static_cast<std::size_t>(n));
  {
    io_context io;
    auto one = [&](std::size_t i) -> task<void> {
      tcp_client client(io);
      const auto start = uringcat::clock::now();
      errors[i] = co_await client.try_connect(ep, timeout);
      lateness_us[i] =
          std::chrono::duration<double, std::micro>(uringcat::clock::now() - (start + timeout))
              .count();
    };
    std::vector<task<void>> tasks;
    tasks.reserve(errors.size());
    for (std::size_t i = 0; i < errors.size(); ++i) tasks.push_back(one(i));
    io.run(uringcat::when_all(std::move(tasks)));
  }  // destroying the io_context waits for the kernel's cancellations

  const auto timed_out = std::count_if(errors.begin(), errors.end(), [](const std::error_code& e) {
    return e == std::errc::timed_out;
  });
  EXPECT_EQ(timed_out, n);
  std::vector<double> sorted = lateness_us;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_GE(sorted.front(), 0.0) << "a timeout was reported before its deadline";
  EXPECT_LT(sorted.back(), 1e6) << "a timeout was reported absurdly late";
  std::printf(
      "%d concurrent connect timeouts of %lld ms: lateness p50 %.0f us, p99 %.0f us, max %.0f us\n",
      n, static_cast<long long>(timeout.count()), sorted[sorted.size() / 2],
      sorted[sorted.size() * 99 / 100], sorted.back());
  EXPECT_EQ(uringcat::testing::count_open_fds(), fds_before) << "descriptors leaked";
}

TEST(TimeoutsAtScale, OneConnectReportsTimedOutNotEarly) {
  run_concurrent_connect_timeouts(1, 50ms);
}

TEST(TimeoutsAtScale, TenThousandConcurrentConnectsAllReportTimedOutNoneEarlyNoneLeaked) {
  run_concurrent_connect_timeouts(10'000, 500ms);
}

TEST(TimeoutsAtScale, ThousandConcurrentRecvTimeoutsLoseNoBytesAndAllFire) {
  // recv deadlines are enforced by the kernel (linked timeouts); the reactor waits for each
  // recv's own CQE so that data arriving at the deadline is delivered, never dropped.
  constexpr int n = 1000;
  if (!uringcat::testing::raise_nofile(2 * n + 256)) GTEST_SKIP() << "RLIMIT_NOFILE too low";
  io_context io;
  uringcat::tcp_listener listener(io, endpoint::loopback_v4(0), {.backlog = 4096});
  auto body = [&]() -> task<int> {
    std::vector<tcp_client> clients;
    std::vector<tcp_client> servers;
    for (int i = 0; i < n; ++i) {
      tcp_client c(io);
      co_await c.connect(listener.local_endpoint(), 5s);
      servers.push_back(co_await listener.accept(5s));
      clients.push_back(std::move(c));
    }
    int fired = 0;
    auto wait_one = [&](tcp_client& c) -> task<void> {
      std::array<std::byte, 8> buf{};
      auto r = co_await c.try_recv(buf, 200ms);
      if (r.error() == std::errc::timed_out) ++fired;
    };
    std::vector<task<void>> waits;
    for (auto& c : clients) waits.push_back(wait_one(c));
    co_await uringcat::when_all(std::move(waits));
    co_return fired;
  };
  EXPECT_EQ(io.run(body()), n);
}

}  // namespace
