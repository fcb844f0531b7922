// io_context: ring setup and fallback, threads, ring capacity (tiny SQ and CQ), and
// teardown with operations in flight.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "loopback_black_hole.hpp"
#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::endpoint;
using uringcat::io_context;
using uringcat::io_context_options;
using uringcat::task;
using uringcat::tcp_client;
using uringcat::tcp_listener;

task<int> seven() {
  co_return 7;
}

TEST(IoContext, PrefersDeferTaskrunAndFallsBackWhenAskedNotToUseIt) {
  io_context best;
  io_context_options plain;
  plain.defer_taskrun = false;
  io_context fallback(plain);
  EXPECT_FALSE(fallback.setup_flags() & IORING_SETUP_DEFER_TASKRUN);
  EXPECT_EQ(fallback.run(seven()), 7);
  if (!(best.setup_flags() & IORING_SETUP_DEFER_TASKRUN))
    GTEST_SKIP() << "this kernel refused DEFER_TASKRUN; the fallback ring is in use";
  EXPECT_TRUE(best.setup_flags() & IORING_SETUP_SINGLE_ISSUER);
  EXPECT_EQ(best.run(seven()), 7);
}

TEST(IoContext, RunsOnAThreadOtherThanTheOneThatCreatedIt) {
  io_context io;
  int value = 0;
  std::thread t([&] { value = io.run(seven()); });
  t.join();
  EXPECT_EQ(value, 7);
}

TEST(IoContext, RunsManyTasksOneAfterAnother) {
  io_context io;
  for (int i = 0; i < 100; ++i) ASSERT_EQ(io.run(seven()), 7);
}

TEST(IoContext, TinyRingCarriesThousandsOfConcurrentTimedOperations) {
  // A 4-entry SQ and a 16-entry CQ, 2,000 concurrent connects with linked timeouts: linked
  // pairs always get their two SQEs together, excess operations wait for CQ room, and every
  // connect completes.
  constexpr int n = 2000;
  if (!uringcat::testing::raise_nofile(2 * n + 256)) GTEST_SKIP() << "RLIMIT_NOFILE too low";
  io_context_options tiny;
  tiny.sq_entries = 4;
  tiny.cq_entries = 16;
  io_context io(tiny);
  tcp_listener listener(io, endpoint::loopback_v4(0), {.backlog = 4096});
  auto body = [&]() -> task<int> {
    int connected = 0;
    auto one = [&]() -> task<void> {
      tcp_client c(io);
      if (!co_await c.try_connect(listener.local_endpoint(), 10s)) ++connected;
    };
    auto acceptor = [&]() -> task<void> {
      for (int i = 0; i < n; ++i) auto peer = co_await listener.accept(10s);
    };
    std::vector<task<void>> tasks;
    for (int i = 0; i < n; ++i) tasks.push_back(one());
    tasks.push_back(acceptor());
    co_await uringcat::when_all(std::move(tasks));
    co_return connected;
  };
  EXPECT_EQ(io.run(body()), n);
  EXPECT_LE(io.cqes_in_flight(), 16u);
}

TEST(IoContext, TinyRingReportsManySimultaneousDeadlines) {
  // 500 connects into a black hole on a 16-entry CQ: most wait for ring room and reach
  // their deadline before the kernel ever sees them; all report timed_out, none hang.
  constexpr int n = 500;
  if (!uringcat::testing::raise_nofile(n + 256)) GTEST_SKIP() << "RLIMIT_NOFILE too low";
  uringcat::testing::loopback_black_hole hole;
  const int fds = uringcat::testing::count_open_fds();
  {
    io_context_options tiny;
    tiny.sq_entries = 4;
    tiny.cq_entries = 16;
    io_context io(tiny);
    auto body = [&]() -> task<int> {
      int timed_out = 0;
      auto one = [&]() -> task<void> {
        tcp_client c(io);
        if (co_await c.try_connect(endpoint::parse(hole.address()), 100ms) == std::errc::timed_out)
          ++timed_out;
      };
      std::vector<task<void>> tasks;
      for (int i = 0; i < n; ++i) tasks.push_back(one());
      co_await uringcat::when_all(std::move(tasks));
      co_return timed_out;
    };
    EXPECT_EQ(io.run(body()), n);
  }
  EXPECT_EQ(uringcat::testing::count_open_fds(), fds);
}

TEST(IoContext, DestroyedWithOperationsInFlightLeaksNoDescriptor) {
  // Connects whose deadlines the reactor reported are still being cancelled in the kernel
  // when run() returns; the destructor must wait for them, 128 times over.
  uringcat::testing::loopback_black_hole hole;
  const int fds = uringcat::testing::count_open_fds();
  for (int cycle = 0; cycle < 128; ++cycle) {
    io_context io;
    auto body = [&]() -> task<std::size_t> {
      auto one = [&]() -> task<void> {
        tcp_client c(io);
        (void)co_await c.try_connect(endpoint::parse(hole.address()), 2ms);
      };
      std::vector<task<void>> tasks;
      for (int i = 0; i < 8; ++i) tasks.push_back(one());
      co_await uringcat::when_all(std::move(tasks));
      co_return io.cqes_in_flight();
    };
    (void)io.run(body());
  }
  EXPECT_EQ(uringcat::testing::count_open_fds(), fds);
}

TEST(IoContext, ATaskSuspendedWithNothingInFlightIsAnErrorNotAHang) {
  // An awaitable from outside uringcat that nobody will ever resume.
  struct never {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<>) const noexcept {}
    void await_resume() const noexcept {}
  };
  io_context io;
  auto body = []() -> task<void> { co_await never{}; };
  EXPECT_THROW(io.run(body()), std::logic_error);
  EXPECT_EQ(io.run(seven()), 7);  // and the io_context is still usable
}

TEST(IoContext, RunFromInsideATaskItRunsIsRefused) {
  // Review 3: the inner loop would reuse the outer loop's completion buffer mid-iteration.
  io_context io;
  auto body = [&]() -> task<bool> {
    try {
      (void)io.run(seven());
    } catch (const std::logic_error&) {
      co_return true;
    }
    co_return false;
  };
  EXPECT_TRUE(io.run(body()));
}

TEST(IoContext, RunRefusesATaskThatHasAlreadyEnded) {
  io_context io;
  auto t = seven();
  auto outer = [&]() -> task<int> { co_return co_await t; };  // runs `t` to its end
  EXPECT_EQ(io.run(outer()), 7);
  EXPECT_THROW((void)io.run(std::move(t)), std::invalid_argument);
}

TEST(IoContext, InvalidRingSizesAreAnArgumentErrorNotUnavailability) {
  io_context_options bad;
  bad.sq_entries = 256;
  bad.cq_entries = 16;  // smaller than the SQ
  EXPECT_THROW(io_context{bad}, std::invalid_argument);
  io_context_options huge;
  huge.cq_entries = 1'000'000;  // clamped to the kernel's maximum
  io_context io(huge);
  EXPECT_EQ(io.run(seven()), 7);
}

}  // namespace
