// when_all: concurrency, result order, void tasks, and exceptions only after every task ends.
#include "uringcat/when_all.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "connected_pair.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::io_context;
using uringcat::task;
using uringcat::when_all;

task<int> value(int v) {
  co_return v;
}
task<void> nothing() {
  co_return;
}
task<int> fail_with(const char* what) {
  throw std::runtime_error(what);
  co_return 0;
}

TEST(WhenAll, ReturnsATupleOfResultsInArgumentOrder) {
  io_context io;
  auto body = []() -> task<bool> {
    auto [a, b, c] = co_await when_all(value(1), nothing(), value(3));
    (void)b;
    co_return a == 1 && c == 3;
  };
  EXPECT_TRUE(io.run(body()));
}

TEST(WhenAll, ReturnsAVectorOfResultsInOrder) {
  io_context io;
  auto body = []() -> task<std::vector<int>> {
    std::vector<task<int>> tasks;
    for (int i = 0; i < 5; ++i) tasks.push_back(value(i * i));
    co_return co_await when_all(std::move(tasks));
  };
  EXPECT_EQ(io.run(body()), (std::vector<int>{0, 1, 4, 9, 16}));
}

TEST(WhenAll, AnEmptyVectorCompletesAtOnce) {
  io_context io;
  auto body = []() -> task<std::size_t> {
    co_return (co_await when_all(std::vector<task<int>>{})).size();
  };
  EXPECT_EQ(io.run(body()), 0u);
}

TEST(WhenAll, RunsTasksConcurrently) {
  // Each task waits for a message the other sends after it starts waiting: run one after
  // the other, this would deadlock (and time out); run concurrently, both succeed.
  io_context io;
  auto body = [&]() -> task<std::string> {
    auto pair = co_await uringcat::testing::make_connected_pair(io);
    auto left = [&]() -> task<std::string> {
      std::array<std::byte, 8> buf{};
      const std::size_t n = co_await pair.client.recv(buf, 2s);
      co_await pair.client.send_all("pong", 2s);
      co_return std::string(reinterpret_cast<const char*>(buf.data()), n);
    };
    auto right = [&]() -> task<std::string> {
      co_await pair.server.send_all("ping", 2s);
      std::array<std::byte, 8> buf{};
      const std::size_t n = co_await pair.server.recv(buf, 2s);
      co_return std::string(reinterpret_cast<const char*>(buf.data()), n);
    };
    auto [l, r] = co_await when_all(left(), right());
    co_return l + "/" + r;
  };
  EXPECT_EQ(io.run(body()), "ping/pong");
}

TEST(WhenAll, RethrowsTheFirstExceptionOnlyAfterEveryTaskEnded) {
  io_context io;
  bool slow_finished = false;
  auto body = [&]() -> task<void> {
    auto pair = co_await uringcat::testing::make_connected_pair(io);
    auto slow = [&]() -> task<int> {
      std::array<std::byte, 1> buf{};
      (void)co_await pair.client.try_recv(buf, 50ms);  // times out
      slow_finished = true;
      co_return 1;
    };
    co_await when_all(fail_with("first"), slow(), fail_with("second"));
  };
  try {
    io.run(body());
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "first");
  }
  EXPECT_TRUE(slow_finished);
}

TEST(WhenAll, VectorOfVoidTasksCompletes) {
  io_context io;
  int count = 0;
  auto bump = [&]() -> task<void> {
    ++count;
    co_return;
  };
  auto body = [&]() -> task<void> {
    std::vector<task<void>> tasks;
    for (int i = 0; i < 1000; ++i) tasks.push_back(bump());
    co_await when_all(std::move(tasks));
  };
  io.run(body());
  EXPECT_EQ(count, 1000);
}

}  // namespace
