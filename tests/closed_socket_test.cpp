// Operations whose socket is closed under them. Timed send/recv/send_all/recv_exact/accept
// wait for readiness and then use plain non-blocking syscalls, so they must never act on
// another socket that reuses a closed descriptor number; and teardown must close only the
// descriptors completions really carried. Each test failed once (found in review).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
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
using uringcat::testing::make_connected_pair;

std::string text_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// socket_ops.hpp transfer_op::pump: after the readiness poll, recv(2) is called on the
// descriptor NUMBER captured when the op was created. The poll holds the old socket's file,
// but if the client is closed meanwhile (the usual way to abort a pending read) and the
// number is reused, the recv reads another connection's bytes. IORING_OP_RECV (the untimed
// path, and the timed path before 9f7ca9c) holds the file and can never do that.
TEST(ClosedSocket, ATimedRecvOnAClosedClientNeverReadsBytesOfTheConnectionThatReusedItsNumber) {
  io_context io;
  std::string a_got;
  std::string b_got;
  auto body = [&]() -> task<void> {
    auto a = co_await make_connected_pair(io);
    auto b = co_await make_connected_pair(io);
    const int n = a.client.native_handle();
    std::array<std::byte, 64> buf{};
    auto reader = [&]() -> task<void> {
      auto r = co_await a.client.try_recv(buf, 2s);
      a_got = r ? text_of(std::span(buf).first(*r)) : "error: " + r.error().message();
    };
    auto other = [&]() -> task<void> {
      a.client.close_now();                               // abort the pending recv
      EXPECT_EQ(::dup2(b.client.native_handle(), n), n);  // number n now names connection B
      co_await b.server.send_all("for-b", 1s);
      co_await a.server.send_all("for-a", 1s);  // wakes the poll on A's (still open) socket
      std::array<std::byte, 64> bb{};
      auto r = co_await b.client.try_recv(bb, 300ms);
      b_got = r ? text_of(std::span(bb).first(*r)) : "error: " + r.error().message();
      ::close(n);
    };
    co_await uringcat::when_all(reader(), other());
  };
  io.run(body());
  EXPECT_NE(a_got, "for-b") << "a recv on connection A returned bytes sent on connection B";
  EXPECT_EQ(b_got, "for-b") << "connection B lost the bytes its peer sent";
}

// The same for send_all: the bytes of connection A must never be written into connection B.
TEST(ClosedSocket, ATimedSendAllOnAClosedClientNeverWritesIntoTheConnectionThatReusedItsNumber) {
  io_context io;
  std::size_t leaked = 0;
  auto body = [&]() -> task<void> {
    auto a = co_await make_connected_pair(io);
    auto b = co_await make_connected_pair(io);
    const int n = a.client.native_handle();
    const int small = 4096;
    ::setsockopt(n, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::setsockopt(a.server.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    std::vector<std::byte> payload(1 << 20, std::byte{'A'});
    auto writer = [&]() -> task<void> { (void)co_await a.client.try_send_all(payload, 1s); };
    auto other = [&]() -> task<void> {
      a.client.close_now();  // abort the pending send_all (it waits for POLLOUT)
      EXPECT_EQ(::dup2(b.client.native_handle(), n), n);
      std::vector<std::byte> sink(1 << 16);
      for (int i = 0; i < 20; ++i) {  // drain A's peer: A's socket becomes writable
        auto r = co_await a.server.try_recv(sink, 20ms);
        if (!r || *r == 0) break;
      }
      for (int i = 0; i < 20; ++i) {  // whatever B's peer receives came from A's send_all
        auto r = co_await b.server.try_recv(sink, 20ms);
        if (!r || *r == 0) break;
        leaked += *r;
      }
      ::close(n);
    };
    co_await uringcat::when_all(writer(), other());
  };
  io.run(body());
  EXPECT_EQ(leaked, 0u) << "bytes of connection A's send_all were sent on connection B";
}

// tcp_listener.hpp accept_op::on_result / io_context.cpp drain_for: when IORING_OP_ACCEPT
// ends with -EAGAIN (the listener is O_NONBLOCK now; do_accept() ORs the listener's f_flags
// into the accept, so an accept the kernel punts to io-wq, e.g. after losing races, returns
// -EAGAIN), the untimed accept falls back to an untimed POLL_ADD whose CQE carries op's own
// address. Torn down while that poll is in flight, drain_for() hands the poll's result (the
// event mask, POLLIN == 1) to accept_op::abandon_result, which closes descriptor 1.
// The -EAGAIN completion is injected through op_base::complete, as the reactor would call it.
TEST(ClosedSocket, TearingDownAnUntimedAcceptThatFellBackToPollingClosesNoUnrelatedDescriptor) {
  const int saved_stdout = ::dup(1);
  ASSERT_GE(saved_stdout, 0);
  {
    auto io = std::make_unique<io_context>();
    tcp_listener listener(*io, endpoint::loopback_v4(0));
    const int listener_fd = listener.native_handle();  // the op reads it at every step
    auto op = std::make_unique<uringcat::detail::accept_op<false>>(
        *io, listener_fd, listener.local_endpoint(), uringcat::no_timeout);
    io->run([&]() -> task<void> {
      EXPECT_FALSE(op->await_ready());
      op->complete(op.get(), -EAGAIN, 0);   // what a punted IORING_OP_ACCEPT reports
      EXPECT_EQ(io->cqes_in_flight(), 1u);  // the fallback poll is queued
      co_return;
    }());
    const int peer = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(peer, 0);
    const endpoint ep = listener.local_endpoint();
    ASSERT_EQ(::connect(peer, ep.data(), ep.size()), 0);
    io.reset();  // drains: the poll completes with POLLIN
    ::close(peer);
  }
  const bool stdout_open = ::fcntl(1, F_GETFD) != -1;
  if (!stdout_open) ::dup2(saved_stdout, 1);
  ::close(saved_stdout);
  EXPECT_TRUE(stdout_open) << "teardown closed descriptor 1: the poll mask was taken for an "
                              "accepted descriptor";
}

// Review 3: an untimed recv queued (its SQE holding the descriptor number) but not yet
// submitted when another coroutine of the same turn closes the client and the number is
// reused; closing hands the queued SQE to the kernel first, while the number is still A's.
TEST(ClosedSocket, AnUntimedRecvQueuedBeforeACloseNeverReadsTheConnectionThatReusedItsNumber) {
  io_context io;
  std::string a_got = "none";
  std::string b_got = "none";
  auto body = [&]() -> task<void> {
    auto a = co_await make_connected_pair(io);
    auto b = co_await make_connected_pair(io);
    const int n = a.client.native_handle();
    std::array<std::byte, 64> buf{};
    auto reader = [&]() -> task<void> {
      auto r = co_await a.client.try_recv(buf);  // untimed: IORING_OP_RECV, queued this turn
      a_got = r ? text_of(std::span(buf).first(*r)) : "error: " + r.error().message();
    };
    auto other = [&]() -> task<void> {
      a.client.close_now();
      EXPECT_EQ(::dup2(b.client.native_handle(), n), n);  // number n now names connection B
      co_await b.server.send_all("for-b", 1s);
      std::array<std::byte, 64> bb{};
      auto r = co_await b.client.try_recv(bb, 1s);
      b_got = r ? text_of(std::span(bb).first(*r)) : "error: " + r.error().message();
      ::close(n);
    };
    co_await uringcat::when_all(reader(), other());
  };
  io.run(body());
  EXPECT_EQ(a_got, "error: Operation canceled");
  EXPECT_EQ(b_got, "for-b") << "connection B lost the bytes its peer sent";
}

// Review 3: closing a client ends the operations waiting to receive on it (untimed: it
// hung forever; timed: it waited for its deadline), like Asio's close().
TEST(ClosedSocket, ClosingAClientEndsItsPendingReceivesWithOperationCanceled) {
  io_context io;
  auto body = [&]() -> task<bool> {
    auto a = co_await make_connected_pair(io);
    std::array<std::byte, 16> b1{};
    std::array<std::byte, 16> b2{};
    std::error_code untimed;
    std::error_code timed;
    auto r1 = [&]() -> task<void> { untimed = (co_await a.client.try_recv(b1)).error(); };
    auto r2 = [&]() -> task<void> { timed = (co_await a.client.try_recv_exact(b2, 10s)).error; };
    auto closer = [&]() -> task<void> {
      std::array<std::byte, 1> z{};
      (void)co_await a.server.try_recv(z, 50ms);  // a turn later: both receives are waiting
      a.client.close_now();
    };
    const auto start = std::chrono::steady_clock::now();
    co_await uringcat::when_all(r1(), r2(), closer());
    EXPECT_EQ(untimed, std::errc::operation_canceled);
    EXPECT_EQ(timed, std::errc::operation_canceled);
    co_return std::chrono::steady_clock::now() - start < 5s;  // not at the 10 s deadline
  };
  EXPECT_TRUE(io.run(body()));
}

TEST(ClosedSocket, ClosingAListenerEndsItsPendingAcceptsWithOperationCanceled) {
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  auto body = [&]() -> task<void> {
    std::error_code untimed;
    std::error_code timed;
    auto a1 = [&]() -> task<void> { untimed = (co_await listener.try_accept()).error(); };
    auto a2 = [&]() -> task<void> { timed = (co_await listener.try_accept(10s)).error(); };
    auto closer = [&]() -> task<void> {
      auto pair = co_await make_connected_pair(io);  // a few turns: both accepts wait
      listener.close();
    };
    co_await uringcat::when_all(a1(), a2(), closer());
    EXPECT_EQ(untimed, std::errc::operation_canceled);
    EXPECT_EQ(timed, std::errc::operation_canceled);
  };
  io.run(body());
}

// Review 3: the SQE length field is 32 bits; a 4 GiB buffer read as a zero-length recv,
// which returned 0 ("the peer closed") while the peer was open.
TEST(ClosedSocket, ABufferOfFourGibibytesOrMoreIsReadInBoundedSteps) {
  const std::size_t size = (std::size_t{1} << 32) + 16;
  void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) GTEST_SKIP() << "cannot reserve 4 GiB of address space";
  io_context io;
  auto body = [&]() -> task<std::size_t> {
    auto pair = co_await make_connected_pair(io);
    co_await pair.server.send_all("hello", 1s);
    const std::span<std::byte> huge(static_cast<std::byte*>(mem), size);  // pages untouched
    co_return co_await pair.client.recv(huge);
  };
  EXPECT_EQ(io.run(body()), 5u);
  ::munmap(mem, size);
}

}  // namespace
