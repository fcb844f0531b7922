// Cancellation (cancellation.hpp): pending connect, recv, accept and sleep end with
// operation_canceled, promptly, leaking no descriptor; tokens propagate through task chains
// and when_all; cancel racing completion has exactly one outcome; the timer awaitable.
#include "uringcat/cancellation.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "connected_pair.hpp"
#include "loopback_black_hole.hpp"
#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::cancellation_callback;
using uringcat::cancellation_source;
using uringcat::cancellation_token;
using uringcat::endpoint;
using uringcat::io_context;
using uringcat::task;
using uringcat::tcp_client;
using uringcat::tcp_listener;
using uringcat::when_all;
using uringcat::testing::count_open_fds;
using uringcat::testing::loopback_black_hole;
using uringcat::testing::ms_since;

/// Sleeps `d`, then requests cancellation on `source`.
task<void> cancel_after(io_context& io, cancellation_source& source, std::chrono::microseconds d) {
  co_await io.sleep_for(d);
  source.request_cancellation();
}

// --- the source and the token ------------------------------------------------------------

TEST(CancellationSource, TellsEveryCallbackOnceAndLaterOnesAtOnce) {
  cancellation_source source;
  int a = 0, b = 0, late = 0;
  {
    cancellation_callback ca(source.token(), [&]() noexcept { ++a; });
    cancellation_callback cb(source.token(), [&]() noexcept { ++b; });
    EXPECT_FALSE(source.token().cancellation_requested());
    EXPECT_TRUE(source.request_cancellation());
    EXPECT_FALSE(source.request_cancellation());  // one-shot
    cancellation_callback cl(source.token(), [&]() noexcept { ++late; });
  }
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 1);
  EXPECT_EQ(late, 1);
  EXPECT_TRUE(source.token().cancellation_requested());
}

TEST(CancellationSource, ACallbackDestroyedBeforeTheRequestIsNotCalled) {
  cancellation_source source;
  int called = 0;
  {
    cancellation_callback c(source.token(), [&]() noexcept { ++called; });
  }
  source.request_cancellation();
  EXPECT_EQ(called, 0);
}

TEST(CancellationToken, ADefaultTokenCanNeverBeCancelled) {
  const cancellation_token none;
  EXPECT_FALSE(none.can_be_cancelled());
  EXPECT_FALSE(none.cancellation_requested());
}

// --- sleep -------------------------------------------------------------------------------

TEST(Sleep, SleepsAtLeastTheDurationFromWhenAwaited) {
  io_context io;
  auto body = [&]() -> task<double> {
    auto s = io.sleep_for(30ms);  // created now, awaited later: the sleep starts when awaited
    std::this_thread::sleep_for(20ms);
    const auto start = std::chrono::steady_clock::now();
    co_await s;
    co_return ms_since(start);
  };
  const double elapsed = io.run(body());
  EXPECT_GE(elapsed, 30.0);
  EXPECT_LT(elapsed, 1000.0);
}

TEST(Sleep, ADeadlineInThePastReturnsAtOnce) {
  io_context io;
  auto body = [&]() -> task<std::error_code> {
    co_await io.sleep_for(0s);
    co_await io.sleep_for(-5ms);
    co_return co_await io.try_sleep_until(std::chrono::steady_clock::now() - 1s);
  };
  EXPECT_FALSE(io.run(body()));
}

TEST(Sleep, SleepUntilWakesAtTheDeadline) {
  io_context io;
  const auto until = std::chrono::steady_clock::now() + 20ms;
  auto body = [&]() -> task<void> { co_await io.sleep_until(until); };
  io.run(body());
  EXPECT_GE(std::chrono::steady_clock::now(), until);
}

TEST(Sleep, ACancelledSleepEndsPromptlyWithOperationCanceled) {
  io_context io;
  cancellation_source stop;
  auto sleeper = [&]() -> task<std::error_code> {
    co_return co_await io.try_sleep_for(10s).with_cancellation(stop.token());
  };
  auto body = [&]() -> task<std::error_code> {
    auto [ec, none] = co_await when_all(sleeper(), cancel_after(io, stop, 20ms));
    (void)none;
    co_return ec;
  };
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(io.run(body()), std::errc::operation_canceled);
  EXPECT_LT(ms_since(start), 2000.0);
}

TEST(Sleep, AThrowingSleepThrowsOperationCanceledAndUntilCancelledWaitsForIt) {
  io_context io;
  cancellation_source stop;
  auto sleeper = [&]() -> task<void> { co_await io.sleep_until(uringcat::deadline{}); };
  auto body = [&]() -> task<void> {
    co_await when_all(uringcat::with_cancellation(stop.token(), sleeper()),
                      cancel_after(io, stop, 10ms));
  };
  try {
    io.run(body());
    FAIL() << "a cancelled sleep returned normally";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::operation_canceled);
  }
}

// --- connect, recv, accept -------------------------------------------------------------

class CancelPendingConnect : public ::testing::TestWithParam<bool> {};

TEST_P(CancelPendingConnect, EndsWithOperationCanceledPromptlyAndClosesTheSocket) {
  // With a deadline the connect is detachable (reported at once, the kernel's request
  // cancelled into its slot); without one it waits for the kernel's -ECANCELED.
  const bool timed = GetParam();
  loopback_black_hole hole;
  io_context io;
  const int fds = count_open_fds();
  cancellation_source stop;
  tcp_client client(io);
  auto connect = [&]() -> task<std::error_code> {
    const auto ep = endpoint::parse(hole.address());
    co_return timed ? co_await client.try_connect(ep, 10s) : co_await client.try_connect(ep);
  };
  auto body = [&]() -> task<std::error_code> {
    auto [ec, none] = co_await when_all(uringcat::with_cancellation(stop.token(), connect()),
                                        cancel_after(io, stop, 30ms));
    (void)none;
    co_return ec;
  };
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(io.run(body()), std::errc::operation_canceled);
  EXPECT_LT(ms_since(start), 3000.0);  // not the 10 s deadline, nor the kernel's SYN retries
  EXPECT_FALSE(client.is_open());
  EXPECT_EQ(count_open_fds(), fds);
}

INSTANTIATE_TEST_SUITE_P(TimedAndUntimed, CancelPendingConnect, ::testing::Bool());

class CancelPendingRecv : public ::testing::TestWithParam<bool> {};

TEST_P(CancelPendingRecv, EndsWithOperationCanceledAndTheConnectionStaysUsable) {
  const bool timed = GetParam();
  io_context io;
  cancellation_source stop;
  auto body = [&]() -> task<bool> {
    auto pair = co_await uringcat::testing::make_connected_pair(io);
    std::array<std::byte, 8> buf{};
    auto recv = [&]() -> task<std::error_code> {
      auto r = timed ? co_await pair.client.try_recv(buf, 10s) : co_await pair.client.try_recv(buf);
      co_return r ? std::error_code{} : r.error();
    };
    auto [ec, none] = co_await when_all(uringcat::with_cancellation(stop.token(), recv()),
                                        cancel_after(io, stop, 20ms));
    (void)none;
    EXPECT_EQ(ec, std::errc::operation_canceled);
    // The connection is intact: the next receive gets what the peer sends.
    co_await pair.server.send_all("x", 2s);
    const std::size_t n = co_await pair.client.recv(buf, 2s);
    co_return ec == std::errc::operation_canceled&& n == 1 && buf[0] == std::byte{'x'};
  };
  const int fds = count_open_fds();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(io.run(body()));
  EXPECT_LT(ms_since(start), 3000.0);
  EXPECT_EQ(count_open_fds(), fds);
}

INSTANTIATE_TEST_SUITE_P(TimedAndUntimed, CancelPendingRecv, ::testing::Bool());

class CancelPendingAccept : public ::testing::TestWithParam<bool> {};

TEST_P(CancelPendingAccept, EndsWithOperationCanceledAndTheListenerStaysUsable) {
  const bool timed = GetParam();
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  const int fds = count_open_fds();
  cancellation_source stop;
  auto accept = [&]() -> task<std::error_code> {
    auto r = timed ? co_await listener.try_accept(10s) : co_await listener.try_accept();
    co_return r ? std::error_code{} : r.error();
  };
  auto body = [&]() -> task<bool> {
    auto [ec, none] = co_await when_all(uringcat::with_cancellation(stop.token(), accept()),
                                        cancel_after(io, stop, 20ms));
    (void)none;
    EXPECT_EQ(ec, std::errc::operation_canceled);
    // A connection made afterwards is accepted by the next accept.
    tcp_client c(io);
    co_await c.connect(listener.local_endpoint(), 2s);
    tcp_client peer = co_await listener.accept(2s);
    co_return ec == std::errc::operation_canceled&& peer.is_open();
  };
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(io.run(body()));
  EXPECT_LT(ms_since(start), 3000.0);
  EXPECT_EQ(count_open_fds(), fds);
}

INSTANTIATE_TEST_SUITE_P(TimedAndUntimed, CancelPendingAccept, ::testing::Bool());

TEST(Cancellation, AnAlreadyCancelledTokenCompletesAtOnceWithoutOpeningAnything) {
  loopback_black_hole hole;
  io_context io;
  cancellation_source stop;
  stop.request_cancellation();
  const int fds = count_open_fds();
  auto body = [&]() -> task<std::error_code> {
    tcp_client client(io);
    co_return co_await client.try_connect(endpoint::parse(hole.address()), 10s)
        .with_cancellation(stop.token());
  };
  EXPECT_EQ(io.run(body()), std::errc::operation_canceled);
  EXPECT_EQ(count_open_fds(), fds);
  EXPECT_EQ(io.cqes_in_flight(), 0u);
}

TEST(Cancellation, PropagatesThroughNestedTasksAndWhenAll) {
  // One source at the top reaches operations two tasks down, in every when_all child.
  io_context io;
  cancellation_source stop;
  int canceled = 0;
  auto leaf = [&]() -> task<void> {
    if (co_await io.try_sleep_for(10s) == std::errc::operation_canceled) ++canceled;
  };
  auto middle = [&]() -> task<void> { co_await when_all(leaf(), leaf(), leaf()); };
  auto body = [&]() -> task<void> {
    co_await when_all(uringcat::with_cancellation(stop.token(), middle()),
                      cancel_after(io, stop, 10ms));
  };
  const auto start = std::chrono::steady_clock::now();
  io.run(body());
  EXPECT_EQ(canceled, 3);
  EXPECT_LT(ms_since(start), 3000.0);
}

TEST(Cancellation, CurrentTokenIsTheOneTheTaskListensTo) {
  io_context io;
  cancellation_source stop;
  auto inner = [&]() -> task<bool> {
    const cancellation_token t = co_await uringcat::current_cancellation_token{};
    co_return t.can_be_cancelled() && !t.cancellation_requested();
  };
  auto bare = [&]() -> task<bool> {
    co_return !(co_await uringcat::current_cancellation_token{}).can_be_cancelled();
  };
  EXPECT_TRUE(io.run(uringcat::with_cancellation(stop.token(), inner())));
  EXPECT_TRUE(io.run(bare()));
}

TEST(Cancellation, ASendAllCancelledMidwayReportsTheBytesItSent) {
  // The peer never reads: send_all fills the socket buffers, then waits; cancelled, it
  // reports operation_canceled with the count of bytes the kernel took.
  io_context io;
  cancellation_source stop;
  auto body = [&]() -> task<bool> {
    auto pair = co_await uringcat::testing::make_connected_pair(io);
    std::vector<std::byte> big(64 << 20);
    auto send = [&]() -> task<uringcat::transfer_result> {
      co_return co_await pair.client.try_send_all(big, 10s);
    };
    auto [r, none] = co_await when_all(uringcat::with_cancellation(stop.token(), send()),
                                       cancel_after(io, stop, 30ms));
    (void)none;
    co_return r.error == std::errc::operation_canceled&& r.bytes > 0 && r.bytes < big.size();
  };
  EXPECT_TRUE(io.run(body()));
}

// --- races -------------------------------------------------------------------------------

class CancelRacingRecv : public ::testing::TestWithParam<bool> {};

TEST_P(CancelRacingRecv, HasExactlyOneOutcomeAndNeverLosesAByte) {
  // Each round: a recv of one byte is pending; the peer sends a byte and, 0-60 us later,
  // cancellation is requested. The recv either got the byte or was cancelled, in which case
  // the byte is still in the socket and the next round receives it. Over the rounds, every
  // byte arrives exactly once, in order.
  const bool timed = GetParam();
  constexpr int rounds = 2000;
  io_context io;
  std::set<std::string> outcomes;
  auto body = [&]() -> task<bool> {
    auto pair = co_await uringcat::testing::make_connected_pair(io);
    std::mt19937 rng(timed ? 7 : 8);
    std::string received;
    std::string sent;
    for (int i = 0; i < rounds; ++i) {
      cancellation_source stop;
      const char c = static_cast<char>('a' + i % 26);
      std::array<std::byte, 1> buf{};
      auto recv = [&]() -> task<void> {
        auto r =
            timed ? co_await pair.client.try_recv(buf, 10s) : co_await pair.client.try_recv(buf);
        if (r && *r == 1) {
          received += static_cast<char>(buf[0]);
          outcomes.insert("received");
        } else if (!r && r.error() == std::errc::operation_canceled) {
          outcomes.insert("canceled");
        } else {
          outcomes.insert("unexpected: " + (r ? std::to_string(*r) : r.error().message()));
        }
      };
      auto race = [&]() -> task<void> {
        sent += c;
        co_await pair.server.send_all(std::string_view(&c, 1), 2s);
        co_await io.sleep_for(std::chrono::microseconds(rng() % 60));
        stop.request_cancellation();
      };
      co_await when_all(uringcat::with_cancellation(stop.token(), recv()), race());
    }
    // Whatever the cancelled rounds left in the socket, in order.
    while (received.size() < sent.size()) {
      std::array<std::byte, 256> buf{};
      const std::size_t n = co_await pair.client.recv(buf, 2s);
      if (n == 0) break;
      received.append(reinterpret_cast<const char*>(buf.data()), n);
    }
    co_return received == sent;
  };
  const int fds = count_open_fds();
  EXPECT_TRUE(io.run(body()));
  for (const auto& o : outcomes) EXPECT_TRUE(o == "received" || o == "canceled") << o;
  EXPECT_EQ(count_open_fds(), fds);
}

INSTANTIATE_TEST_SUITE_P(TimedAndUntimed, CancelRacingRecv, ::testing::Bool());

TEST(CancelRacingConnect, HasExactlyOneOutcomeAndLeaksNothing) {
  // Connects to a listener that accepts, cancelled 0-80 us after they start: connected (and
  // open) or operation_canceled (and closed), nothing else, and no descriptor left behind.
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0), {.backlog = 4096});
  const int fds = count_open_fds();
  std::set<std::string> outcomes;
  auto body = [&]() -> task<bool> {
    std::mt19937 rng(99);
    for (int i = 0; i < 1000; ++i) {
      cancellation_source stop;
      tcp_client client(io);
      std::error_code ec;
      auto connect = [&]() -> task<void> {
        ec = co_await client.try_connect(listener.local_endpoint(),
                                         i % 2 ? 10s : uringcat::timeout{});
      };
      co_await when_all(uringcat::with_cancellation(stop.token(), connect()),
                        cancel_after(io, stop, std::chrono::microseconds(rng() % 80)));
      if (!ec) {
        if (!client.is_open()) co_return false;
        outcomes.insert("connected");
      } else if (ec == std::errc::operation_canceled) {
        if (client.is_open()) co_return false;
        outcomes.insert("canceled");
      } else {
        ADD_FAILURE() << "unexpected outcome " << ec.message();
        co_return false;
      }
      // Drain the accept queue (connections the kernel completed even when we cancelled).
      for (int fd; (fd = ::accept4(listener.native_handle(), nullptr, nullptr, SOCK_CLOEXEC)) >= 0;)
        ::close(fd);
    }
    co_return true;
  };
  EXPECT_TRUE(io.run(body()));
  EXPECT_FALSE(outcomes.empty());
  EXPECT_EQ(count_open_fds(), fds);
}

TEST(CancelRacingSleep, ASleepCancelledAsItExpiresHasOneOutcome) {
  io_context io;
  std::set<std::string> outcomes;
  auto body = [&]() -> task<bool> {
    std::mt19937 rng(3);
    for (int i = 0; i < 2000; ++i) {
      cancellation_source stop;
      std::error_code ec{1, std::generic_category()};
      auto sleeper = [&]() -> task<void> {
        ec = co_await io.try_sleep_for(std::chrono::microseconds(rng() % 50));
      };
      co_await when_all(uringcat::with_cancellation(stop.token(), sleeper()),
                        cancel_after(io, stop, std::chrono::microseconds(rng() % 50)));
      if (!ec)
        outcomes.insert("slept");
      else if (ec == std::errc::operation_canceled)
        outcomes.insert("canceled");
      else
        co_return false;
    }
    co_return true;
  };
  EXPECT_TRUE(io.run(body()));
  EXPECT_EQ(io.cqes_in_flight(), 0u);
}

}  // namespace
