// io_context::spawn: detached tasks owned by the io_context, as a server's per-client tasks.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "connected_pair.hpp"
#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::endpoint;
using uringcat::io_context;
using uringcat::task;
using uringcat::tcp_client;
using uringcat::tcp_listener;

task<void> echo_once(tcp_client peer) {
  std::array<std::byte, 64> buf{};
  const std::size_t n = co_await peer.recv(buf, 5s);
  co_await peer.send_all(std::span<const std::byte>(buf.data(), n), 5s);
}

task<void> serve(io_context& io, tcp_listener& listener, int clients) {
  for (int i = 0; i < clients; ++i) io.spawn(echo_once(co_await listener.accept(5s)));
}

TEST(Spawn, ServesEveryClientConcurrentlyFromSpawnedTasks) {
  // The server spawns one task per accepted client; the clients all connect and send before
  // any of them reads, so a server handling one client at a time would deadlock.
  constexpr int n = 50;
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0), {.backlog = 256});
  const int fds = uringcat::testing::count_open_fds();
  io.spawn(serve(io, listener, n));
  auto clients = [&]() -> task<int> {
    std::vector<tcp_client> conns;
    for (int i = 0; i < n; ++i) {
      tcp_client c(io);
      co_await c.connect(listener.local_endpoint(), 5s);
      co_await c.send_all("ping " + std::to_string(i), 5s);
      conns.push_back(std::move(c));
    }
    int ok = 0;
    for (int i = 0; i < n; ++i) {
      std::array<std::byte, 64> buf{};
      const std::size_t got = co_await conns[i].recv(buf, 5s);
      ok += std::string(reinterpret_cast<const char*>(buf.data()), got) ==
            "ping " + std::to_string(i);
    }
    co_return ok;
  };
  EXPECT_EQ(io.run(clients()), n);
  EXPECT_EQ(io.spawned(), 0u);
  EXPECT_EQ(uringcat::testing::count_open_fds(), fds);
}

task<void> read_once(tcp_client c, bool& done) {
  std::array<std::byte, 8> buf{};
  (void)co_await c.recv(buf, 5s);
  done = true;
}  // closes `c`

TEST(Spawn, ATaskStillPendingWhenRunEndsContinuesInTheNextRun) {
  io_context io;
  bool finished = false;
  auto first = [&]() -> task<tcp_client> {
    auto pair = co_await uringcat::testing::make_connected_pair(io);
    io.spawn(read_once(std::move(pair.client), finished));
    co_return std::move(pair.server);
  };
  tcp_client server = io.run(first());
  EXPECT_FALSE(finished);
  EXPECT_EQ(io.spawned(), 1u);
  auto second = [&]() -> task<std::size_t> {
    co_await server.send_all("x", 1s);
    std::array<std::byte, 1> buf{};
    co_return co_await server.recv(buf, 2s);  // 0 once the spawned reader closed its end
  };
  EXPECT_EQ(io.run(second()), 0u);
  EXPECT_TRUE(finished);
  EXPECT_EQ(io.spawned(), 0u);
}

TEST(Spawn, AnExceptionEscapingASpawnedTaskIsRethrownByRun) {
  io_context io;
  auto thrower = []() -> task<void> {
    throw std::runtime_error("spawned failure");
    co_return;
  };
  auto body = [&]() -> task<void> {
    io.spawn(thrower());
    auto pair = co_await uringcat::testing::make_connected_pair(io);
    std::array<std::byte, 8> buf{};
    (void)co_await pair.client.try_recv(buf, 2s);  // interrupted by the failure
  };
  try {
    io.run(body());
    FAIL() << "run() returned";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "spawned failure");
  }
}

TEST(Spawn, PendingSpawnedTasksAreDestroyedWithTheIoContextLeakingNothing) {
  const int fds = uringcat::testing::count_open_fds();
  for (int cycle = 0; cycle < 32; ++cycle) {
    io_context io;
    auto reader = [](tcp_client c) -> task<void> {
      std::array<std::byte, 8> buf{};
      (void)co_await c.recv(buf);  // no deadline: pending until the io_context goes
    };
    auto body = [&]() -> task<void> {
      for (int i = 0; i < 4; ++i) {
        auto pair = co_await uringcat::testing::make_connected_pair(io);
        io.spawn(reader(std::move(pair.client)));
        io.spawn(reader(std::move(pair.server)));
      }
    };
    io.run(body());
    EXPECT_EQ(io.spawned(), 8u);
  }
  EXPECT_EQ(uringcat::testing::count_open_fds(), fds);
}

TEST(Spawn, AnEmptyTaskIsRejected) {
  io_context io;
  EXPECT_THROW(io.spawn(task<void>{}), std::invalid_argument);
}

}  // namespace
