// when_any: the first task to finish wins, the others are cancelled and awaited before it
// returns; the winner's exception is rethrown; the vector form; cancellation from outside.
#include "uringcat/when_any.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::cancellation_source;
using uringcat::io_context;
using uringcat::task;
using uringcat::when_any;
using uringcat::testing::ms_since;

/// Sleeps `d` and returns `v`; counts how it ended.
struct tally {
  int finished = 0;
  int canceled = 0;
};

task<int> sleep_then(io_context& io, std::chrono::milliseconds d, int v, tally& t) {
  const std::error_code ec = co_await io.try_sleep_for(d);
  if (ec == std::errc::operation_canceled) {
    ++t.canceled;
    co_return -1;
  }
  ++t.finished;
  co_return v;
}

TEST(WhenAny, TheFirstToFinishWinsAndTheOthersAreCancelledAndAwaited) {
  io_context io;
  tally t;
  auto body = [&]() -> task<std::pair<std::size_t, int>> {
    auto [index, value] = co_await when_any(sleep_then(io, 10s, 1, t), sleep_then(io, 20ms, 2, t),
                                            sleep_then(io, 10s, 3, t));
    // Every loser has ended by now: none is left to end later.
    EXPECT_EQ(t.canceled, 2);
    co_return std::pair{index, std::get<1>(value)};
  };
  const auto start = std::chrono::steady_clock::now();
  const auto [index, value] = io.run(body());
  EXPECT_EQ(index, 1u);
  EXPECT_EQ(value, 2);
  EXPECT_EQ(t.finished, 1);
  EXPECT_EQ(t.canceled, 2);
  EXPECT_LT(ms_since(start), 3000.0);  // the losers' 10 s sleeps were cut short
  EXPECT_EQ(io.cqes_in_flight(), 0u);
}

TEST(WhenAny, MixedResultTypesComeBackAsAVariant) {
  io_context io;
  auto text = [&]() -> task<std::string> {
    co_await io.sleep_for(5ms);
    co_return "text";
  };
  auto forever = [&]() -> task<void> { co_await io.sleep_until(uringcat::deadline{}); };
  auto body = [&]() -> task<bool> {
    auto r = co_await when_any(forever(), text());
    co_return r.index == 1 && std::get<1>(r.value) == "text";
  };
  EXPECT_TRUE(io.run(body()));
}

TEST(WhenAny, ATaskThatFinishesAtOnceWinsAndLaterOnesNeverStart) {
  io_context io;
  bool second_started = false;
  auto at_once = []() -> task<int> { co_return 7; };
  auto second = [&]() -> task<int> {
    second_started = true;
    co_return 8;
  };
  auto body = [&]() -> task<std::size_t> {
    co_return (co_await when_any(at_once(), second())).index;
  };
  EXPECT_EQ(io.run(body()), 0u);
  EXPECT_FALSE(second_started);
}

TEST(WhenAny, RethrowsTheWinnersExceptionAfterTheOthersEnded) {
  io_context io;
  tally t;
  auto fail_soon = [&]() -> task<int> {
    co_await io.sleep_for(10ms);
    throw std::runtime_error("winner failed");
  };
  auto body = [&]() -> task<void> {
    (void)co_await when_any(sleep_then(io, 10s, 1, t), fail_soon(), sleep_then(io, 10s, 3, t));
  };
  try {
    io.run(body());
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "winner failed");
  }
  EXPECT_EQ(t.canceled, 2);
}

TEST(WhenAny, LosersExceptionsAreDiscarded) {
  // A loser whose cancellation surfaces as an exception (a throwing sleep) does not replace
  // the winner's value.
  io_context io;
  auto throwing_loser = [&]() -> task<int> {
    co_await io.sleep_for(10s);  // throws operation_canceled when cancelled
    co_return 1;
  };
  auto winner = [&]() -> task<int> {
    co_await io.sleep_for(5ms);
    co_return 2;
  };
  auto body = [&]() -> task<int> {
    auto r = co_await when_any(throwing_loser(), winner());
    co_return std::get<1>(r.value);
  };
  EXPECT_EQ(io.run(body()), 2);
}

TEST(WhenAny, VectorFormReturnsTheWinnersIndexAndValue) {
  io_context io;
  tally t;
  auto body = [&]() -> task<uringcat::when_any_result<int>> {
    std::vector<task<int>> tasks;
    for (int i = 0; i < 10; ++i) tasks.push_back(sleep_then(io, i == 6 ? 10ms : 10s, i * 100, t));
    co_return co_await when_any(std::move(tasks));
  };
  const auto r = io.run(body());
  EXPECT_EQ(r.index, 6u);
  EXPECT_EQ(r.value, 600);
  EXPECT_EQ(t.canceled, 9);
}

TEST(WhenAny, AnEmptyVectorIsAnArgumentError) {
  io_context io;
  auto body = []() -> task<void> { (void)co_await when_any(std::vector<task<int>>{}); };
  EXPECT_THROW(io.run(body()), std::invalid_argument);
}

TEST(WhenAny, VoidTasksInAVector) {
  io_context io;
  auto s = [&](std::chrono::milliseconds d) -> task<void> { co_await io.sleep_for(d); };
  auto body = [&]() -> task<std::size_t> {
    std::vector<task<void>> tasks;
    tasks.push_back(s(10s));
    tasks.push_back(s(5ms));
    co_return (co_await when_any(std::move(tasks))).index;
  };
  EXPECT_EQ(io.run(body()), 1u);
}

TEST(WhenAny, CancellingTheAwaitingTaskCancelsEveryChild) {
  io_context io;
  cancellation_source stop;
  tally t;
  auto canceller = [&]() -> task<void> {
    co_await io.sleep_for(10ms);
    stop.request_cancellation();
  };
  auto race = [&]() -> task<std::size_t> {
    co_return (co_await when_any(sleep_then(io, 10s, 1, t), sleep_then(io, 10s, 2, t))).index;
  };
  auto body = [&]() -> task<void> {
    co_await uringcat::when_all(uringcat::with_cancellation(stop.token(), race()), canceller());
  };
  const auto start = std::chrono::steady_clock::now();
  io.run(body());
  EXPECT_EQ(t.canceled, 2);
  EXPECT_LT(ms_since(start), 3000.0);
}

TEST(WhenAny, ARecvRacingATimerLeavesTheConnectionUsable) {
  // The classic use: a receive with a "give up" timer, through when_any.
  io_context io;
  auto body = [&]() -> task<bool> {
    uringcat::tcp_listener listener(io, uringcat::endpoint::loopback_v4(0));
    uringcat::tcp_client client(io);
    co_await client.connect(listener.local_endpoint(), 2s);
    uringcat::tcp_client server = co_await listener.accept(2s);
    std::array<std::byte, 4> buf{};
    auto recv = [&]() -> task<std::size_t> { co_return co_await client.recv(buf); };
    auto timer = [&]() -> task<std::size_t> {
      co_await io.sleep_for(20ms);
      co_return 0;
    };
    auto first = co_await when_any(recv(), timer());
    co_await server.send_all("ping", 2s);
    const std::size_t n = co_await client.recv(buf, 2s);
    co_return first.index == 1 && n == 4;
  };
  EXPECT_TRUE(io.run(body()));
}

}  // namespace
