// Zero heap allocations per operation: connect to an endpoint, send, recv and accept, each
// with a deadline, counted by replacing the global operator new in this test program.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>

#include "uringcat/uringcat.hpp"

namespace {
std::atomic<long> allocations{0};
}

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return ::operator new(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

namespace {

using namespace std::chrono_literals;
using uringcat::endpoint;
using uringcat::io_context;
using uringcat::task;
using uringcat::tcp_client;
using uringcat::tcp_listener;

struct counts {
  long connect = -1, accept = -1, send = -1, recv = -1;
};

// One round: connect (with a deadline), accept, send, recv. Each awaited directly, so the
// only coroutine frame is this one, allocated once for all rounds.
task<counts> rounds(io_context& io, tcp_listener& listener, int n) {
  counts total{0, 0, 0, 0};
  std::array<std::byte, 64> buf{};
  const std::array<std::byte, 64> msg{};
  // Each operation awaits alone (no when_all), so the connect must not need an accept to
  // finish: the listener's backlog completes the handshake.
  for (int i = 0; i < n; ++i) {
    tcp_client client(io);
    long before = allocations.load();
    co_await client.connect(listener.local_endpoint(), 2s);
    total.connect += allocations.load() - before;

    before = allocations.load();
    tcp_client peer = co_await listener.accept(2s);
    total.accept += allocations.load() - before;

    before = allocations.load();
    (void)co_await client.send(msg, 2s);
    total.send += allocations.load() - before;

    before = allocations.load();
    (void)co_await peer.recv(buf, 2s);
    total.recv += allocations.load() - before;
  }
  co_return total;
}

TEST(Allocations, ConnectAcceptSendAndRecvWithDeadlinesAllocateNothing) {
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  (void)io.run(rounds(io, listener, 4));  // warm-up: the reactor's pools reach size
  const counts c = io.run(rounds(io, listener, 200));
  EXPECT_EQ(c.connect, 0);
  EXPECT_EQ(c.accept, 0);
  EXPECT_EQ(c.send, 0);
  EXPECT_EQ(c.recv, 0);
}

// The same with cancellation attached, both ways: the task is bound to one source (every
// operation it awaits inherits the token) and each operation also gets a token of its own.
// Listening is an intrusive node in the awaiter: nothing is allocated, and a sleep (the timer
// awaitable) allocates nothing either.
task<counts> rounds_with_tokens(io_context& io, tcp_listener& listener,
                                uringcat::cancellation_token own, int n) {
  counts total{0, 0, 0, 0};
  std::array<std::byte, 64> buf{};
  const std::array<std::byte, 64> msg{};
  for (int i = 0; i < n; ++i) {
    tcp_client client(io);
    long before = allocations.load();
    co_await client.connect(listener.local_endpoint(), 2s).with_cancellation(own);
    co_await io.sleep_for(0ms);
    co_await io.sleep_for(1us).with_cancellation(own);
    total.connect += allocations.load() - before;

    before = allocations.load();
    tcp_client peer = co_await listener.accept(2s).with_cancellation(own);
    total.accept += allocations.load() - before;

    before = allocations.load();
    (void)co_await client.send(msg, 2s).with_cancellation(own);
    total.send += allocations.load() - before;

    before = allocations.load();
    (void)co_await peer.recv(buf).with_cancellation(own);  // untimed: IORING_OP_RECV
    total.recv += allocations.load() - before;
  }
  co_return total;
}

TEST(Allocations, OperationsListeningToCancellationTokensAllocateNothing) {
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  uringcat::cancellation_source task_source, op_source;
  auto run = [&](int n) {
    auto t = rounds_with_tokens(io, listener, op_source.token(), n);
    t.handle().promise().bind_token(task_source.token());
    return io.run(std::move(t));
  };
  (void)run(4);
  const counts c = run(200);
  EXPECT_EQ(c.connect, 0);
  EXPECT_EQ(c.accept, 0);
  EXPECT_EQ(c.send, 0);
  EXPECT_EQ(c.recv, 0);
}

TEST(Allocations, TheCountingAllocatorCountsAtAll) {
  const long before = allocations.load();
  void* p = ::operator new(16);  // a direct call: unlike a new-expression, never elided
  ::operator delete(p);
  EXPECT_EQ(allocations.load() - before, 1);
}

}  // namespace
