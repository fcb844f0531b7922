// send, send_all, recv, recv_exact, shutdown and close on connected loopback sockets:
// results, deadlines, end of stream, resets, and that received bytes are never lost.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fcntl.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "connected_pair.hpp"
#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::io_context;
using uringcat::task;
using uringcat::tcp_client;
using uringcat::testing::make_connected_pair;
using uringcat::testing::ms_since;

std::string text_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

TEST(Transfer, SendThenRecvDeliversTheBytes) {
  io_context io;
  auto body = [&]() -> task<std::string> {
    auto pair = co_await make_connected_pair(io);
    const std::size_t sent = co_await pair.client.send("data\n", 1s);
    EXPECT_EQ(sent, 5u);
    std::array<std::byte, 64> buf{};
    const std::size_t n = co_await pair.server.recv(buf, 1s);
    co_return text_of(std::span(buf).first(n));
  };
  EXPECT_EQ(io.run(body()), "data\n");
}

TEST(Transfer, RecvReturnsZeroWhenThePeerCloses) {
  io_context io;
  auto body = [&]() -> task<std::size_t> {
    auto pair = co_await make_connected_pair(io);
    pair.server.close_now();
    std::array<std::byte, 16> buf{};
    co_return co_await pair.client.recv(buf, 1s);
  };
  EXPECT_EQ(io.run(body()), 0u);
}

TEST(Transfer, RecvReportsTimedOutWhenThePeerNeverSends) {
  io_context io;
  auto body = [&]() -> task<double> {
    auto pair = co_await make_connected_pair(io);
    std::array<std::byte, 16> buf{};
    const auto start = std::chrono::steady_clock::now();
    auto r = co_await pair.client.try_recv(buf, 100ms);
    EXPECT_EQ(r.error(), std::errc::timed_out);
    co_return ms_since(start);
  };
  const double elapsed = io.run(body());
  EXPECT_GE(elapsed, 100.0);
  EXPECT_LT(elapsed, 1100.0);
}

TEST(Transfer, RecvThrowsTimedOutInTheThrowingSpelling) {
  io_context io;
  auto body = [&]() -> task<void> {
    auto pair = co_await make_connected_pair(io);
    std::array<std::byte, 16> buf{};
    (void)co_await pair.client.recv(buf, 20ms);
  };
  try {
    io.run(body());
    FAIL() << "recv returned without data";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::timed_out);
  }
}

TEST(Transfer, ConnectionStaysUsableAfterARecvTimeout) {
  io_context io;
  auto body = [&]() -> task<std::string> {
    auto pair = co_await make_connected_pair(io);
    std::array<std::byte, 16> buf{};
    auto r = co_await pair.client.try_recv(buf, 20ms);
    EXPECT_EQ(r.error(), std::errc::timed_out);
    co_await pair.server.send_all("late", 1s);
    const std::size_t n = co_await pair.client.recv(buf, 1s);
    co_return text_of(std::span(buf).first(n));
  };
  EXPECT_EQ(io.run(body()), "late");
}

TEST(Transfer, RecvRacingItsDeadlineNeverLosesBytes) {
  // The peer's bytes and the recv's deadline arrive together, hundreds of times. Each recv
  // either returns data or timed_out; every byte sent is received exactly once, in order.
  io_context io;
  auto body = [&]() -> task<bool> {
    auto pair = co_await make_connected_pair(io);
    std::string received;
    std::string sent;
    std::array<std::byte, 256> buf{};
    int timeouts = 0;
    for (int i = 0; i < 300; ++i) {
      const std::string msg = std::to_string(i) + ";";
      sent += msg;
      auto sender = [&]() -> task<void> { co_await pair.server.send_all(msg, 1s); };
      auto receiver = [&]() -> task<void> {
        auto r = co_await pair.client.try_recv(buf, std::chrono::microseconds(i % 40));
        if (r) {
          received += text_of(std::span(buf).first(*r));
        } else if (r.error() == std::errc::timed_out) {
          ++timeouts;
        } else {
          ADD_FAILURE() << r.error().message();
        }
      };
      co_await uringcat::when_all(sender(), receiver());
    }
    // Whatever the timed-out recvs did not take is still in the socket.
    while (received.size() < sent.size()) {
      auto r = co_await pair.client.try_recv(buf, 1s);
      if (!r || *r == 0) break;
      received += text_of(std::span(buf).first(*r));
    }
    EXPECT_EQ(received, sent);
    co_return received == sent;
  };
  EXPECT_TRUE(io.run(body()));
}

TEST(Transfer, SendAllDeadlineCoversTheWholeCall) {
  // A reader that drains slowly lets every partial send succeed well within the timeout, so
  // a deadline renewed per send would never fire; the whole-call deadline fires at 300 ms.
  io_context io;
  auto body = [&]() -> task<bool> {
    auto pair = co_await make_connected_pair(io);
    const int small = 4096;
    ::setsockopt(pair.client.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::setsockopt(pair.server.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const int server_fd = pair.server.native_handle();
    std::atomic<bool> stop{false};
    std::thread slow_reader([&] {
      std::array<char, 2048> sink{};
      for (int i = 0; i < 200 && !stop; ++i) {  // bounded: at most ~4 s
        (void)::recv(server_fd, sink.data(), sink.size(), MSG_DONTWAIT);
        std::this_thread::sleep_for(20ms);
      }
    });
    std::vector<std::byte> payload(16 << 20);
    const auto start = std::chrono::steady_clock::now();
    const uringcat::transfer_result r = co_await pair.client.try_send_all(payload, 300ms);
    const double elapsed = ms_since(start);
    stop = true;
    slow_reader.join();
    EXPECT_EQ(r.error, std::errc::timed_out);
    EXPECT_GT(r.bytes, 0u);
    EXPECT_LT(r.bytes, payload.size());
    EXPECT_GE(elapsed, 300.0);
    EXPECT_LT(elapsed, 1300.0);
    co_return true;
  };
  EXPECT_TRUE(io.run(body()));
}

TEST(Transfer, SendAllDeliversLargeBuffersIntact) {
  io_context io;
  auto body = [&]() -> task<bool> {
    auto pair = co_await make_connected_pair(io);
    std::vector<std::byte> out(8 << 20);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>((i * 131) >> 3);
    std::vector<std::byte> in(out.size());
    auto [sent, got] = co_await uringcat::when_all(
        [&]() -> task<uringcat::transfer_result> {
          co_return co_await pair.client.try_send_all(out, 10s);
        }(),
        [&]() -> task<uringcat::transfer_result> {
          co_return co_await pair.server.try_recv_exact(in, 10s);
        }());
    EXPECT_TRUE(sent);
    EXPECT_TRUE(got);
    EXPECT_EQ(sent.bytes, out.size());
    co_return in == out;
  };
  EXPECT_TRUE(io.run(body()));
}

TEST(Transfer, RecvExactReportsEofWhenThePeerClosesEarly) {
  io_context io;
  auto body = [&]() -> task<uringcat::transfer_result> {
    auto pair = co_await make_connected_pair(io);
    co_await pair.server.send_all("abc", 1s);
    pair.server.close_now();
    std::array<std::byte, 10> buf{};
    co_return co_await pair.client.try_recv_exact(buf, 1s);
  };
  const auto r = io.run(body());
  EXPECT_EQ(r.error, uringcat::errc::eof);
  EXPECT_EQ(r.bytes, 3u);
}

TEST(Transfer, SendingIntoAResetConnectionIsAnErrorNotSigpipe) {
  io_context io;
  auto body = [&]() -> task<std::error_code> {
    auto pair = co_await make_connected_pair(io);
    const linger hard{1, 0};  // close with RST
    ::setsockopt(pair.server.native_handle(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    pair.server.close_now();
    std::array<std::byte, 1024> chunk{};
    for (int i = 0; i < 100; ++i) {
      auto r = co_await pair.client.try_send(chunk, 1s);
      if (!r) co_return r.error();
    }
    co_return std::error_code{};
  };
  const std::error_code ec = io.run(body());  // a SIGPIPE would have killed the test
  EXPECT_TRUE(ec == std::errc::connection_reset || ec == std::errc::broken_pipe) << ec.message();
}

TEST(Transfer, RecvFromAResetConnectionReportsConnectionReset) {
  io_context io;
  auto body = [&]() -> task<std::error_code> {
    auto pair = co_await make_connected_pair(io);
    const linger hard{1, 0};
    ::setsockopt(pair.server.native_handle(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    pair.server.close_now();
    std::array<std::byte, 16> buf{};
    auto r = co_await pair.client.try_recv(buf, 1s);
    co_return r.error();
  };
  EXPECT_EQ(io.run(body()), std::errc::connection_reset);
}

TEST(Transfer, ShutdownWriteHalfClosesAndTheOtherDirectionStillWorks) {
  io_context io;
  auto body = [&]() -> task<std::string> {
    auto pair = co_await make_connected_pair(io);
    co_await pair.client.send_all("request", 1s);
    co_await pair.client.shutdown(SHUT_WR, 1s);
    std::array<std::byte, 64> buf{};
    std::string got;
    for (;;) {  // the server reads to end of stream
      const std::size_t n = co_await pair.server.recv(buf, 1s);
      if (n == 0) break;
      got += text_of(std::span(buf).first(n));
    }
    co_await pair.server.send_all("reply to " + got, 1s);
    const std::size_t n = co_await pair.client.recv(buf, 1s);
    co_return text_of(std::span(buf).first(n));
  };
  EXPECT_EQ(io.run(body()), "reply to request");
}

TEST(Transfer, CloseThroughTheRingClosesTheDescriptor) {
  io_context io;
  auto body = [&]() -> task<bool> {
    auto pair = co_await make_connected_pair(io);
    const int fd = pair.client.native_handle();
    co_await pair.client.close();
    co_return !pair.client.is_open() && ::fcntl(fd, F_GETFD) == -1 && errno == EBADF;
  };
  EXPECT_TRUE(io.run(body()));
}

TEST(Transfer, OperationsOnAClosedClientReportBadDescriptor) {
  io_context io;
  auto body = [&]() -> task<std::error_code> {
    tcp_client client(io);
    std::array<std::byte, 4> buf{};
    auto r = co_await client.try_recv(buf, 1s);
    co_return r.error();
  };
  EXPECT_EQ(io.run(body()), std::errc::bad_file_descriptor);
}

TEST(Transfer, ATryResultCanBeReadThroughAConstReference) {
  io_context io;
  auto body = [&]() -> task<std::size_t> {
    auto pair = co_await make_connected_pair(io);
    co_await pair.server.send_all("abc", 1s);
    std::array<std::byte, 8> buf{};
    const auto n = co_await pair.client.try_recv(buf, 1s);
    co_return n.has_value() ? *n + n.value() : 0;
  };
  EXPECT_EQ(io.run(body()), 6u);
}

TEST(Transfer, EmptyBuffersCompleteWithoutIo) {
  io_context io;
  auto body = [&]() -> task<bool> {
    auto pair = co_await make_connected_pair(io);
    const std::size_t before = io.cqes_in_flight();
    const std::size_t s = co_await pair.client.send(std::span<const std::byte>{}, 1s);
    const std::size_t r = co_await pair.client.recv(std::span<std::byte>{}, 1s);
    co_return s == 0 && r == 0 && io.cqes_in_flight() == before;
  };
  EXPECT_TRUE(io.run(body()));
}

}  // namespace
