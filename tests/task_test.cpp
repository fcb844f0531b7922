// task<T>: laziness, results, exceptions, move-only ownership, and stack safety of
// symmetric transfer.
#include "uringcat/task.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "uringcat/io_context.hpp"

namespace {

using uringcat::task;

task<int> forty_two() {
  co_return 42;
}
task<void> set_flag(bool& flag) {
  flag = true;
  co_return;
}
task<int> throws_runtime_error() {
  throw std::runtime_error("boom");
  co_return 0;
}
task<std::string> add_suffix(task<std::string> inner) {
  std::string s = co_await std::move(inner);
  co_return s + "!";
}
task<std::string> hello() {
  co_return "hello";
}

TEST(Task, DoesNotRunUntilAwaited) {
  bool ran = false;
  {
    auto t = set_flag(ran);
    EXPECT_FALSE(ran);
  }
  EXPECT_FALSE(ran);  // destroyed without being started: the body never ran
}

TEST(Task, RunReturnsTheValue) {
  uringcat::io_context io;
  EXPECT_EQ(io.run(forty_two()), 42);
}

TEST(Task, AwaitingATaskReturnsItsValue) {
  uringcat::io_context io;
  EXPECT_EQ(io.run(add_suffix(hello())), "hello!");
}

TEST(Task, ExceptionPropagatesToTheAwaiter) {
  uringcat::io_context io;
  auto outer = []() -> task<bool> {
    try {
      co_await throws_runtime_error();
    } catch (const std::runtime_error& e) {
      co_return std::string(e.what()) == "boom";
    }
    co_return false;
  };
  EXPECT_TRUE(io.run(outer()));
}

TEST(Task, RunRethrowsTheTasksException) {
  uringcat::io_context io;
  EXPECT_THROW(io.run(throws_runtime_error()), std::runtime_error);
}

TEST(Task, MoveTransfersOwnership) {
  auto a = forty_two();
  EXPECT_TRUE(a.valid());
  auto b = std::move(a);
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): that is the point
  EXPECT_TRUE(b.valid());
  uringcat::io_context io;
  EXPECT_EQ(io.run(std::move(b)), 42);
}

TEST(Task, ReturnsMoveOnlyValues) {
  uringcat::io_context io;
  auto make = []() -> task<std::unique_ptr<int>> { co_return std::make_unique<int>(7); };
  auto p = io.run(make());
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, 7);
}

TEST(Task, ReturnsReferences) {
  static int value = 3;
  uringcat::io_context io;
  auto ref = []() -> task<int&> { co_return value; };
  int& r = io.run(ref());
  EXPECT_EQ(&r, &value);
}

task<int> one() {
  co_return 1;
}

TEST(Task, AMillionSynchronousAwaitsDoNotGrowTheStack) {
  // Each co_await one() starts the child by symmetric transfer and the child's final
  // awaiter transfers back: without that, this loop would nest a million frames deep.
  uringcat::io_context io;
  auto loop = []() -> task<long> {
    long sum = 0;
    for (int i = 0; i < 1'000'000; ++i) sum += co_await one();
    co_return sum;
  };
  EXPECT_EQ(io.run(loop()), 1'000'000);
}

TEST(Task, ADeepChainOfNestedTasksCompletes) {
  // 100,000 tasks each awaiting the next: completion unwinds by symmetric transfer.
  struct chain {
    static task<int> depth(int n) {
      if (n == 0) co_return 0;
      co_return 1 + co_await depth(n - 1);
    }
  };
  uringcat::io_context io;
  EXPECT_EQ(io.run(chain::depth(100'000)), 100'000);
}

}  // namespace
