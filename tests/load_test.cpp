// Load test: a loopback echo server built on uringcat (tcp_listener + tcp_client, one
// io_context on its own thread) and a uringcat client on another io_context and thread that
// holds 2,000 connections open at once, each echoing 16 KiB of pseudo-random bytes in 4 KiB
// chunks (send_all, then recv_exact), every operation under a 30 s deadline.
//
// Asserted: every connection completed, no byte lost or corrupted (byte-for-byte compare and
// an FNV-1a checksum of each stream), no descriptor leaked. Printed, never asserted: wall
// time, completion-time quantiles and the peak RSS growth per connection (both ends: client
// and server share this process). bench/soak.cpp runs the same load at 10,000 connections,
// repeatedly, with the server in a child process.
//
// Protocol: the client sends its payload chunk by chunk and waits for each echo; the server
// knows the payload size, echoes exactly that many bytes and closes first (so TIME_WAIT stays
// on the server side, not on the client's ephemeral ports); the client's last recv must see
// the end of stream, so an extra byte is an error too. All clients connect, then wait at a
// gate until every connection is established: the N connections are really concurrent.
#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <future>
#include <thread>
#include <vector>

#include "echo_load.hpp"
#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::endpoint;
using uringcat::io_context;
using uringcat::tcp_listener;
using namespace uringcat::testing::echo_load;

TEST(Load, TwoThousandConcurrentConnectionsEchoEveryByte) {
  load_params p;
  p.connections = 2000;
  p.bytes_per_connection = 16 * 1024;
  // Both ends live in this process: 2 descriptors per connection, plus rings and stdio.
  ASSERT_TRUE(uringcat::testing::raise_nofile(2 * p.connections + 256));
  const std::vector<std::byte> pool = make_pool(p.bytes_per_connection, 0x5eed);

  const int fds_before = uringcat::testing::count_open_fds();
  std::vector<client_stats> stats(p.connections);
  server_stats served;
  long rss_base_kib = 0, rss_peak_kib = 0, rss_after_kib = 0;
  double wall_ms = 0;
  std::exception_ptr server_error;
  {
    // The server: its own io_context and listener, on its own thread.
    std::promise<endpoint> listening;
    std::future<endpoint> listening_at = listening.get_future();
    std::promise<void> go;
    std::shared_future<void> started = go.get_future().share();
    std::thread server([&] {
      try {
        io_context io;
        tcp_listener listener(io, endpoint::loopback_v4(0), {.backlog = 65535});
        listening.set_value(listener.local_endpoint());
        // Wait (bounded) until the client has measured its baseline.
        if (started.wait_for(30s) != std::future_status::ready) return;
        io.run(server_round(listener, p, served));
      } catch (...) {
        server_error = std::current_exception();
        try {
          listening.set_exception(std::current_exception());
        } catch (const std::future_error&) {  // already set: the error came later
        }
      }
    });
    struct joiner {
      std::thread& t;
      std::promise<void>& go;
      ~joiner() {
        try {
          go.set_value();
        } catch (const std::future_error&) {
        }
        t.join();
      }
    } join_server{server, go};

    ASSERT_EQ(listening_at.wait_for(30s), std::future_status::ready);
    const endpoint at = listening_at.get();
    io_context io;  // the client's
    gate g(p.connections);
    reset_peak_rss();
    rss_base_kib = status_kib("VmRSS:");
    go.set_value();
    const auto t0 = steady::now();
    io.run(client_round(io, at, pool, p, g, stats));
    wall_ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
    rss_peak_kib = status_kib("VmHWM:");
    rss_after_kib = status_kib("VmRSS:");
  }  // joins the server thread, then both io_contexts and listener are gone
  const int fds_after = uringcat::testing::count_open_fds();
  if (server_error) {
    try {
      std::rethrow_exception(server_error);
    } catch (const std::exception& e) {
      FAIL() << "server: " << e.what();
    }
  }

  const auto [completed, received, corrupted, bad_checksums, connect_ms, total_ms, first_failure] =
      tally(stats, p);
  const std::size_t expected = p.connections * p.bytes_per_connection;
  const double rss_per_conn = static_cast<double>(rss_peak_kib - rss_base_kib) * 1024.0 /
                              static_cast<double>(p.connections);
  std::printf(
      "load: %zu connections x %zu bytes each way: %zu completed, %zu bytes echoed, %zu lost, "
      "%zu corrupted, %zu bad checksums, wall %.0f ms\n"
      "load: connect p50/p99 %.1f/%.1f ms; completion p50/p99 %.1f/%.1f ms\n"
      "load: RSS base %ld KiB, peak +%ld KiB = %.0f bytes per connection (client and server "
      "ends), %+ld KiB retained after; fds %d before, %d after\n",
      p.connections, p.bytes_per_connection, completed, received, expected - received, corrupted,
      bad_checksums, wall_ms, quantile(connect_ms, 0.5), quantile(connect_ms, 0.99),
      quantile(total_ms, 0.5), quantile(total_ms, 0.99), rss_base_kib, rss_peak_kib - rss_base_kib,
      rss_per_conn, rss_after_kib - rss_base_kib, fds_before, fds_after);
  std::fflush(stdout);

  if (first_failure)
    ADD_FAILURE() << "first failed connection: " << first_failure->failed_step << ": "
                  << first_failure->error.message();
  EXPECT_EQ(completed, p.connections);
  EXPECT_EQ(received, expected);
  EXPECT_EQ(corrupted, 0u);
  EXPECT_EQ(bad_checksums, 0u);
  EXPECT_EQ(served.accepted, p.connections);
  EXPECT_EQ(served.completed, p.connections) << served.first_error.message();
  EXPECT_EQ(served.echoed, expected);
  EXPECT_EQ(fds_after, fds_before);
}

}  // namespace
