// The public API contract of DESIGN.md, written exactly as users write it. If this file
// stops compiling, users' code stops compiling.
#include <uringcat/uringcat.hpp>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "loopback_black_hole.hpp"

namespace {

using namespace std::chrono_literals;

uringcat::task<std::string> echo_once(uringcat::tcp_listener& listener) {
  uringcat::tcp_client peer = co_await listener.accept(5s);
  std::array<std::byte, 1024> buffer{};
  const std::size_t n = co_await peer.recv(buffer, 5.5s);
  co_await peer.send_all(std::span<const std::byte>(buffer.data(), n), 5.5s);
  co_return std::string(reinterpret_cast<const char*>(buffer.data()), n);
}

uringcat::task<std::string> seed_flow(uringcat::io_context& io, uringcat::endpoint addr) {
  uringcat::tcp_client client(io);
  co_await client.connect(addr, 3.5s);  // 3.5s is a duration<long double>
  const std::size_t sent = co_await client.send(std::as_bytes(std::span("data\n", 5)), 5.5s);
  EXPECT_EQ(sent, 5u);
  std::array<std::byte, 1024> buffer{};
  const std::size_t n = co_await client.recv(std::span<std::byte>(buffer), 5.5s);
  co_return std::string(reinterpret_cast<const char*>(buffer.data()), n);
}

TEST(ApiContract, TheSeedFlowCompilesAndRunsAsWritten) {
  uringcat::io_context io;
  uringcat::tcp_listener listener(io, uringcat::endpoint::parse("127.0.0.1:0"));
  const uringcat::endpoint addr = uringcat::endpoint::parse(listener.local_endpoint().to_string());
  auto [echoed, got] = io.run(uringcat::when_all(echo_once(listener), seed_flow(io, addr)));
  EXPECT_EQ(echoed, "data\n");
  EXPECT_EQ(got, "data\n");
}

TEST(ApiContract, ConnectByNameTakesOneDeadline) {
  uringcat::io_context io;
  uringcat::tcp_listener listener(io, uringcat::endpoint::parse("127.0.0.1:0"));
  const std::uint16_t port = listener.local_endpoint().port();
  auto body = [&]() -> uringcat::task<bool> {
    uringcat::tcp_client client(io);
    uringcat::resolve_options v4;
    v4.family = AF_INET;
    auto accept_one = [&]() -> uringcat::task<void> { auto p = co_await listener.accept(5s); };
    std::vector<uringcat::task<void>> both;
    both.push_back(accept_one());
    both.push_back(client.connect("localhost", port, 3.5s, v4));
    co_await uringcat::when_all(std::move(both));
    co_return client.is_open();
  };
  EXPECT_TRUE(io.run(body()));
}

TEST(ApiContract, FailuresThrowSystemErrorComparingEqualToErrc) {
  uringcat::testing::loopback_black_hole hole;
  uringcat::io_context io;
  auto body = [&]() -> uringcat::task<void> {
    uringcat::tcp_client client(io);
    co_await client.connect(uringcat::endpoint::parse(hole.address()), 10ms);
  };
  try {
    io.run(body());
    FAIL();
  } catch (const std::system_error& e) {
    EXPECT_TRUE(e.code() == std::errc::timed_out);
  }
}

TEST(ApiContract, EndpointsParseFormatAndRejectBadText) {
  EXPECT_EQ(uringcat::endpoint::parse("127.0.0.1:9999").port(), 9999);
  EXPECT_EQ(uringcat::endpoint::parse("[::1]:9999").to_string(), "[::1]:9999");
  EXPECT_THROW(uringcat::endpoint::parse("::1:80"), std::invalid_argument);
}

TEST(ApiContract, MaxConnectTimeoutIsADuration) {
  const auto limit = uringcat::max_connect_timeout();
  EXPECT_GT(std::chrono::duration_cast<std::chrono::seconds>(limit).count(), 0);
}

TEST(ApiContract, NoTimeoutIsSpelledExplicitly) {
  const uringcat::timeout none = uringcat::no_timeout;
  EXPECT_TRUE(none.is_none());
  const uringcat::timeout fractional = 3.5s;
  EXPECT_FALSE(fractional.is_none());
  EXPECT_THROW(uringcat::timeout(std::chrono::duration<double>(std::nan(""))),
               std::invalid_argument);
}

}  // namespace
