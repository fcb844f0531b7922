// Regressions found in review: each test states a behaviour DESIGN.md promises that the
// reactor once broke. Loopback and AF_UNIX socketpairs only; every wait is bounded.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <vector>

#include "connected_pair.hpp"
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
using uringcat::testing::count_open_fds;
using uringcat::testing::make_connected_pair;
using uringcat::testing::ms_since;

void spin_for(std::chrono::microseconds d) {
  const auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

// Finding 1. io_context.cpp expire_deadlines()/detach(): a detachable op started during the
// dispatch phase is only *queued* in the SQ; if its deadline passes before the next
// io_uring_enter, the reactor reports timed_out, the caller closes the socket, and the stale
// CONNECT SQE is submitted afterwards on whatever file now has that descriptor number.
TEST(Regression, ConnectReportedTimedOutBeforeItsSqeWasSubmittedNeverConnectsALaterSocket) {
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  int expected_fd = -1;
  int udp = -1;
  int peer_rc = 0;
  std::error_code connect_ec;
  auto body = [&]() -> task<void> {
    auto pair = co_await make_connected_pair(io);
    auto a = [&]() -> task<void> {
      (void)co_await pair.client.send("a");  // resumed first from the next reap batch
      tcp_client c(io);
      const int probe = ::dup(0);  // the lowest free descriptor: the connect's socket gets it
      ::close(probe);
      expected_fd = probe;
      auto op = c.try_connect(listener.local_endpoint(), 1ms);  // kept alive on purpose
      connect_ec = co_await op;  // queued, not yet submitted; b spins past the deadline
      udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);             // reuses the closed number
      for (int i = 0; i < 3; ++i) (void)co_await pair.client.send("c");  // a few turns
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      peer_rc = ::getpeername(udp, reinterpret_cast<sockaddr*>(&ss), &len);
    };
    auto b = [&]() -> task<void> {
      (void)co_await pair.server.send("b");  // resumed second, from the same reap batch
      spin_for(5ms);
    };
    co_await uringcat::when_all(a(), b());
  };
  io.run(body());
  EXPECT_EQ(connect_ec, std::errc::timed_out);
  ASSERT_EQ(udp, expected_fd) << "precondition: the UDP socket reused the connect's number";
  EXPECT_NE(peer_rc, 0) << "a socket opened after the connect was reported timed_out and "
                           "closed got connected by that connect's late SQE";
  ::close(udp);
}

// Finding 2. io_context.cpp start()/turn(): only detachable ops are in the deadline heap. A
// timed accept (or send, send_all, recv_exact) queued for CQ room never times out while it
// waits: the loop sleeps with no timeout until some untimed op completes.
TEST(Regression, TimedAcceptWaitingForRingRoomStillReportsItsDeadlineOnTime) {
  io_context_options tiny;
  tiny.sq_entries = 4;
  tiny.cq_entries = 4;
  io_context io(tiny);
  ASSERT_EQ(io.native_handle()->cq.ring_entries, 4u);
  tcp_listener listener(io, endpoint::loopback_v4(0));
  int sp[4][2];
  for (auto& p : sp) ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p), 0);
  std::atomic<bool> stop{false};
  std::thread feeder([&] {  // bounds the test: frees the ring after 2 s whatever happens
    for (int i = 0; i < 200 && !stop; ++i) std::this_thread::sleep_for(10ms);
    for (auto& p : sp) (void)::write(p[1], "x", 1);
  });
  double accept_ms = -1;
  std::error_code accept_ec;
  auto body = [&]() -> task<void> {
    std::vector<task<void>> tasks;
    for (auto& p : sp) {
      tasks.push_back([](io_context& io, int fd) -> task<void> {
        tcp_client c(io, fd);
        std::byte buf[1];
        (void)co_await c.try_recv(buf);  // untimed: one CQE each fills the 4-entry CQ
      }(io, p[0]));
    }
    auto timed_accept = [&]() -> task<void> {  // named: the closure outlives the task
      const auto start = std::chrono::steady_clock::now();
      auto r = co_await listener.try_accept(100ms);
      accept_ms = ms_since(start);
      accept_ec = r ? std::error_code{} : r.error();
      stop = true;
    };
    tasks.push_back(timed_accept());
    co_await uringcat::when_all(std::move(tasks));
  };
  io.run(body());
  stop = true;
  feeder.join();
  for (auto& p : sp) ::close(p[1]);
  EXPECT_EQ(accept_ec, std::errc::timed_out);
  EXPECT_LT(accept_ms, 1000.0) << "a 100 ms accept deadline was reported after " << accept_ms
                               << " ms, only once unrelated operations freed the ring";
}

// Finding 4. socket_ops.hpp connect_op::await_resume: two connects racing on one client both
// pass the EISCONN check in await_ready; the second success overwrites the first descriptor.
TEST(Regression, TwoConnectsRacingOnOneClientLeakNoDescriptor) {
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  const int before = count_open_fds();
  std::error_code e1, e2;
  {
    tcp_client c(io);
    auto body = [&]() -> task<void> {
      auto one = [&](std::error_code& out) -> task<void> {
        out = co_await c.try_connect(listener.local_endpoint(), 2s);
      };
      co_await uringcat::when_all(one(e1), one(e2));
    };
    io.run(body());
  }
  EXPECT_TRUE(!e1 != !e2) << "exactly one of two racing connects should win: " << e1.message()
                          << " / " << e2.message();
  EXPECT_EQ(count_open_fds(), before) << "a connected descriptor was leaked";
}

// Finding 5. when_all.hpp drive_child: an empty (moved-from) task dereferences a null
// coroutine handle, where co_await of the same task throws std::logic_error.
TEST(RegressionDeathTest, WhenAllGivenAnEmptyTaskThrowsLogicErrorInsteadOfCrashing) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        io_context io;
        std::vector<task<int>> tasks;
        tasks.emplace_back();
        try {
          (void)io.run(uringcat::when_all(std::move(tasks)));
        } catch (const std::logic_error&) {
          std::_Exit(0);
        } catch (...) {
          std::_Exit(2);
        }
        std::_Exit(3);
      },
      ::testing::ExitedWithCode(0), "");
}

// Finding 3. io_context.cpp drive()/turn(): run() from a thread other than the ring's single
// issuer starts the task, queues its SQEs, and only then fails with EEXIST. The frame dies
// but its SQEs stay queued; the owner thread's next enter submits them: the kernel writes into
// the freed frame and the CQE's user_data points at it.
TEST(RegressionDeathTest, RunFromASecondThreadIsRefusedWithoutLeavingStaleSubmissionsBehind) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        io_context io;
        auto seven = []() -> task<int> { co_return 7; };
        if (io.run(seven()) != 7) std::_Exit(4);  // this thread is now the single issuer
        if (!(io.setup_flags() & IORING_SETUP_SINGLE_ISSUER)) std::_Exit(0);
        int sp[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) std::_Exit(5);
        std::thread other([&] {
          auto stray = [&]() -> task<void> {
            tcp_client c(io, sp[0]);
            std::byte b[1];
            (void)co_await c.try_recv(b);
            (void)c.release();
          };
          try {
            io.run(stray());
          } catch (...) {
          }
        });
        other.join();
        if (io.cqes_in_flight() != 0) std::_Exit(6);  // stale SQE left queued
        (void)::write(sp[1], "x", 1);
        auto mine = [&]() -> task<std::size_t> {
          tcp_client c(io, sp[0]);
          std::byte b[1];
          auto r = co_await c.try_recv(b, 1s);
          (void)c.release();
          co_return r ? *r : 0;
        };
        std::_Exit(io.run(mine()) == 1 ? 0 : 7);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
