// Timeouts at scale (DESIGN.md): 10,000 concurrent connects with deadlines all report
// timed_out, none before its deadline, and no descriptor is leaked. How late they are is
// printed for information only; precision is asserted by nothing here but measured in bench/.
#include <gtest/gtest.h>

#include <sys/socket.h>

#include <algorithm>
#include <array>
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

// Lateness of one timed operation, from the caller's point of view, in microseconds.
// `start_op` returns the awaitable (operations are neither copyable nor movable).
template <class StartOp>
task<double> lateness_of(StartOp start_op, std::chrono::milliseconds timeout, bool& timed_out) {
  const auto start = uringcat::clock::now();
  auto r = co_await start_op();
  timed_out = !r && (r.error() == std::errc::timed_out);
  co_return std::chrono::duration<double, std::micro>(uringcat::clock::now() - (start + timeout))
      .count();
}

struct lateness_summary {
  int timed_out = 0;
  double min_us = 0, p50_us = 0, p99_us = 0, max_us = 0;
};

lateness_summary summarize(std::vector<double> v, int timed_out) {
  std::sort(v.begin(), v.end());
  return {timed_out, v.front(), v[v.size() / 2], v[v.size() * 99 / 100], v.back()};
}

void expect_all_on_deadline(const lateness_summary& s, int n, const char* what) {
  EXPECT_EQ(s.timed_out, n) << what;
  EXPECT_GE(s.min_us, 0.0) << what << ": reported before its deadline";
  EXPECT_LT(s.max_us, 1e6) << what << ": reported absurdly late";
  std::printf("%d concurrent %s timeouts: lateness p50 %.0f us, p99 %.0f us, max %.0f us\n", n,
              what, s.p50_us, s.p99_us, s.max_us);
}

// n connected pairs on one listener.
task<void> connect_pairs(io_context& io, uringcat::tcp_listener& listener, int n,
                         std::vector<tcp_client>& clients, std::vector<tcp_client>& servers) {
  for (int i = 0; i < n; ++i) {
    tcp_client c(io);
    co_await c.connect(listener.local_endpoint(), 5s);
    servers.push_back(co_await listener.accept(5s));
    clients.push_back(std::move(c));
  }
}

TEST(TimeoutsAtScale, ThousandConcurrentRecvTimeoutsAllFireNoneEarly) {
  constexpr int n = 1000;
  if (!uringcat::testing::raise_nofile(2 * n + 256)) GTEST_SKIP() << "RLIMIT_NOFILE too low";
  io_context io;
  uringcat::tcp_listener listener(io, endpoint::loopback_v4(0), {.backlog = 4096});
  auto body = [&]() -> task<lateness_summary> {
    std::vector<tcp_client> clients, servers;
    co_await connect_pairs(io, listener, n, clients, servers);
    std::vector<std::array<std::byte, 8>> bufs(n);
    std::vector<bool> fired(n);
    std::vector<task<double>> waits;
    auto one = [&](int i) -> task<double> {
      bool t = false;
      const double late =
          co_await lateness_of([&] { return clients[i].try_recv(bufs[i], 200ms); }, 200ms, t);
      fired[i] = t;
      co_return late;
    };
    for (int i = 0; i < n; ++i) waits.push_back(one(i));
    auto late = co_await uringcat::when_all(std::move(waits));
    co_return summarize(late, static_cast<int>(std::count(fired.begin(), fired.end(), true)));
  };
  expect_all_on_deadline(io.run(body()), n, "recv");
}

TEST(TimeoutsAtScale, ThousandConcurrentSendAllTimeoutsAllFireNoneEarly) {
  // Peers that never read: each send_all fills the socket buffers and then waits until its
  // whole-call deadline.
  constexpr int n = 1000;
  if (!uringcat::testing::raise_nofile(2 * n + 256)) GTEST_SKIP() << "RLIMIT_NOFILE too low";
  io_context io;
  uringcat::tcp_listener listener(io, endpoint::loopback_v4(0), {.backlog = 4096});
  auto body = [&]() -> task<lateness_summary> {
    std::vector<tcp_client> clients, servers;
    co_await connect_pairs(io, listener, n, clients, servers);
    const int small = 4096;
    for (auto& c : clients)
      ::setsockopt(c.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    for (auto& c : servers)
      ::setsockopt(c.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const std::vector<std::byte> payload(1 << 20);
    std::vector<bool> fired(n);
    auto one = [&](int i) -> task<double> {
      const auto start = uringcat::clock::now();
      const uringcat::transfer_result r = co_await clients[i].try_send_all(payload, 300ms);
      fired[i] = r.error == std::errc::timed_out && r.bytes < payload.size();
      co_return std::chrono::duration<double, std::micro>(uringcat::clock::now() - (start + 300ms))
          .count();
    };
    std::vector<task<double>> sends;
    for (int i = 0; i < n; ++i) sends.push_back(one(i));
    auto late = co_await uringcat::when_all(std::move(sends));
    co_return summarize(late, static_cast<int>(std::count(fired.begin(), fired.end(), true)));
  };
  expect_all_on_deadline(io.run(body()), n, "send_all");
}

TEST(TimeoutsAtScale, ThousandConcurrentAcceptTimeoutsAllFireNoneEarly) {
  constexpr int n = 1000;
  io_context io;
  uringcat::tcp_listener listener(io, endpoint::loopback_v4(0));
  auto body = [&]() -> task<lateness_summary> {
    std::vector<bool> fired(n);
    auto one = [&](int i) -> task<double> {
      bool t = false;
      const double late =
          co_await lateness_of([&] { return listener.try_accept(200ms); }, 200ms, t);
      fired[i] = t;
      co_return late;
    };
    std::vector<task<double>> accepts;
    for (int i = 0; i < n; ++i) accepts.push_back(one(i));
    auto late = co_await uringcat::when_all(std::move(accepts));
    co_return summarize(late, static_cast<int>(std::count(fired.begin(), fired.end(), true)));
  };
  expect_all_on_deadline(io.run(body()), n, "accept");
}

}  // namespace
