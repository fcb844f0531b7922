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

#include <algorithm>
#include <array>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <future>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::endpoint;
using uringcat::io_context;
using uringcat::task;
using uringcat::tcp_client;
using uringcat::tcp_listener;
using steady = std::chrono::steady_clock;

constexpr std::size_t chunk_size = 4096;
constexpr std::size_t pool_span = std::size_t{1} << 20;  // payload start offsets

struct load_params {
  std::size_t connections = 0;
  std::size_t bytes_per_connection = 0;
  std::chrono::seconds op_timeout{30};
};

// --- data -------------------------------------------------------------------------------

/// pool_span + bytes pseudo-random bytes (splitmix64); connection i sends a slice of it.
std::vector<std::byte> make_pool(std::size_t bytes, std::uint64_t seed) {
  std::vector<std::byte> pool(pool_span + bytes);
  std::uint64_t x = seed;
  for (std::size_t i = 0; i < pool.size(); i += 8) {
    x += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (std::size_t b = 0; b < 8 && i + b < pool.size(); ++b)
      pool[i + b] = static_cast<std::byte>(z >> (8 * b));
  }
  return pool;
}

/// Connection i's payload: distinct for every i < pool_span (4099 is odd, pool_span 2^20).
std::span<const std::byte> payload_of(const std::vector<std::byte>& pool, std::size_t i,
                                      std::size_t bytes) {
  return std::span(pool).subspan((i * 4099) % pool_span, bytes);
}

constexpr std::uint64_t fnv_basis = 0xcbf29ce484222325ULL;
std::uint64_t fnv1a(std::uint64_t h, std::span<const std::byte> bytes) {
  for (std::byte b : bytes) h = (h ^ static_cast<std::uint64_t>(b)) * 0x100000001b3ULL;
  return h;
}

std::size_t mismatches(std::span<const std::byte> want, std::span<const std::byte> got) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < got.size(); ++i) n += want[i] != got[i];
  return n;
}

// --- memory -----------------------------------------------------------------------------

/// A field of /proc/self/status in KiB ("VmRSS:", "VmHWM:"), or -1.
long status_kib(const char* key) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long value = -1;
  const std::size_t len = std::char_traits<char>::length(key);
  while (std::fgets(line, sizeof line, f))
    if (std::char_traits<char>::compare(line, key, len) == 0) {
      value = std::strtol(line + len, nullptr, 10);
      break;
    }
  std::fclose(f);
  return value;
}

/// Resets the peak RSS (VmHWM) to the current RSS (Linux 4.0+).
void reset_peak_rss() {
  if (FILE* f = std::fopen("/proc/self/clear_refs", "w")) {
    std::fputs("5", f);
    std::fclose(f);
  }
}

// --- a gate: every connection waits until all N are established ---------------------------

class gate {
 public:
  explicit gate(std::size_t n) : remaining_(n) { waiting_.reserve(n); }

  /// The last arrival opens the gate: it resumes every waiter (each runs to its next
  /// suspension) and continues without suspending.
  struct awaiter {
    gate& g;
    bool await_ready() {
      if (--g.remaining_ != 0) return false;
      g.opened_at_ = steady::now();
      for (std::coroutine_handle<> h : std::exchange(g.waiting_, {})) h.resume();
      return true;
    }
    void await_suspend(std::coroutine_handle<> h) { g.waiting_.push_back(h); }
    void await_resume() const noexcept {}
  };
  awaiter arrive() noexcept { return {*this}; }
  steady::time_point opened_at() const noexcept { return opened_at_; }

 private:
  std::size_t remaining_;
  std::vector<std::coroutine_handle<>> waiting_;
  steady::time_point opened_at_{};
};

// --- client -----------------------------------------------------------------------------

struct client_stats {
  bool completed = false;
  std::size_t received = 0;   // echoed bytes received
  std::size_t corrupted = 0;  // received bytes that differ from what was sent
  bool checksum_ok = false;
  const char* failed_step = nullptr;
  std::error_code error;
  double connect_ms = 0;  // from the start of connect to connected
  double total_ms = 0;    // from the start of connect to the verified end of stream
};

task<void> run_client(io_context& io, endpoint server, std::span<const std::byte> payload,
                      const load_params& p, gate& g, client_stats& s) {
  const auto t0 = steady::now();
  tcp_client c(io);
  const std::error_code connect_error = co_await c.try_connect(server, p.op_timeout);
  s.connect_ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
  co_await g.arrive();  // every task arrives exactly once, connected or not
  if (connect_error) {
    s.failed_step = "connect";
    s.error = connect_error;
    co_return;
  }
  std::array<std::byte, chunk_size> buf;
  std::uint64_t sent_sum = fnv_basis, received_sum = fnv_basis;
  for (std::size_t off = 0; off < payload.size(); off += chunk_size) {
    const auto piece = payload.subspan(off, std::min(chunk_size, payload.size() - off));
    sent_sum = fnv1a(sent_sum, piece);
    if (auto w = co_await c.try_send_all(piece, p.op_timeout); !w) {
      s.failed_step = "send_all";
      s.error = w.error;
      co_return;
    }
    const auto in = std::span(buf).first(piece.size());
    const auto r = co_await c.try_recv_exact(in, p.op_timeout);
    s.received += r.bytes;
    received_sum = fnv1a(received_sum, in.first(r.bytes));
    s.corrupted += mismatches(piece, in.first(r.bytes));
    if (!r) {
      s.failed_step = "recv_exact";
      s.error = r.error;
      co_return;
    }
  }
  // The server closes once it has echoed everything: the next recv must see end of stream.
  auto end = co_await c.try_recv(std::span(buf).first(1), p.op_timeout);
  if (!end || *end != 0) {
    s.failed_step = end ? "end of stream (extra byte)" : "end of stream";
    s.error = end ? std::make_error_code(std::errc::protocol_error) : end.error();
    co_return;
  }
  s.checksum_ok = sent_sum == received_sum;
  s.completed = s.checksum_ok && s.corrupted == 0 && s.received == payload.size();
  s.total_ms = std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

task<void> client_round(io_context& io, endpoint server, const std::vector<std::byte>& pool,
                        const load_params& p, gate& g, std::vector<client_stats>& stats) {
  std::vector<task<void>> tasks;
  tasks.reserve(p.connections);
  for (std::size_t i = 0; i < p.connections; ++i)
    tasks.push_back(
        run_client(io, server, payload_of(pool, i, p.bytes_per_connection), p, g, stats[i]));
  co_await uringcat::when_all(std::move(tasks));
}

// --- server -----------------------------------------------------------------------------

struct server_stats {
  std::size_t accepted = 0;
  std::size_t completed = 0;
  std::size_t failed = 0;
  std::size_t echoed = 0;
  std::error_code first_error;
};

/// One accepted connection handed from the acceptor to a waiting session.
struct handoff {
  std::optional<tcp_client> client;
  bool ready = false;
  std::coroutine_handle<> waiter;
};

struct handoff_awaiter {
  handoff& h;
  bool await_ready() const noexcept { return h.ready; }
  void await_suspend(std::coroutine_handle<> c) noexcept { h.waiter = c; }
  void await_resume() const noexcept {}
};

/// Accepts one connection per slot (30 s deadline each) and wakes the slot's session. After
/// a failed accept the remaining slots are woken empty, so every session ends.
task<void> acceptor(tcp_listener& listener, std::vector<handoff>& slots, const load_params& p,
                    server_stats& s) {
  bool failed = false;
  for (handoff& slot : slots) {
    if (!failed) {
      auto r = co_await listener.try_accept(p.op_timeout);
      if (r) {
        slot.client.emplace(std::move(*r));
        ++s.accepted;
      } else {
        failed = true;
        if (!s.first_error) s.first_error = r.error();
      }
    }
    slot.ready = true;
    if (auto w = std::exchange(slot.waiter, {})) w.resume();
  }
}

task<void> echo_session(handoff& slot, const load_params& p, server_stats& s) {
  co_await handoff_awaiter{slot};
  if (!slot.client) {
    ++s.failed;
    co_return;
  }
  tcp_client c = std::move(*slot.client);
  slot.client.reset();
  std::array<std::byte, chunk_size> buf;
  std::size_t echoed = 0;
  while (echoed < p.bytes_per_connection) {
    const std::size_t want = std::min(chunk_size, p.bytes_per_connection - echoed);
    auto n = co_await c.try_recv(std::span(buf).first(want), p.op_timeout);
    std::error_code ec = n ? std::error_code{} : n.error();
    if (!ec && *n == 0) ec = make_error_code(uringcat::errc::eof);
    if (!ec) {
      const auto w = co_await c.try_send_all(std::span(buf).first(*n), p.op_timeout);
      ec = w.error;
    }
    if (ec) {
      ++s.failed;
      if (!s.first_error) s.first_error = ec;
      co_return;
    }
    echoed += *n;
    s.echoed += *n;
  }
  ++s.completed;  // the destructor closes first: the client sees end of stream
}

task<void> server_round(tcp_listener& listener, const load_params& p, server_stats& s) {
  std::vector<handoff> slots(p.connections);
  std::vector<task<void>> tasks;
  tasks.reserve(p.connections + 1);
  tasks.push_back(acceptor(listener, slots, p, s));
  for (handoff& slot : slots) tasks.push_back(echo_session(slot, p, s));
  co_await uringcat::when_all(std::move(tasks));
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1,
                    static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5))];
}

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

  std::size_t completed = 0, received = 0, corrupted = 0, bad_checksums = 0;
  std::vector<double> connect_ms, total_ms;
  const client_stats* first_failure = nullptr;
  for (const client_stats& s : stats) {
    completed += s.completed;
    received += s.received;
    corrupted += s.corrupted;
    bad_checksums += s.received == p.bytes_per_connection && !s.checksum_ok;
    connect_ms.push_back(s.connect_ms);
    if (s.completed) total_ms.push_back(s.total_ms);
    if (!s.completed && !first_failure) first_failure = &s;
  }
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
