// Shared by tests/load_test.cpp and bench/soak.cpp: the loopback echo load both run (the
// pseudo-random payloads, FNV-1a checksum, /proc/self/status memory figures, the gate that
// holds every connection until all are established, the client and the echo server as
// uringcat coroutines, and a quantile of the samples). load_test.cpp runs it once in one
// process; soak.cpp round after round, with the server in a child process.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "uringcat/uringcat.hpp"

namespace uringcat::testing::echo_load {

using steady = std::chrono::steady_clock;

inline constexpr std::size_t chunk_size = 4096;
inline constexpr std::size_t pool_span = std::size_t{1} << 20;  // payload start offsets

struct load_params {
  std::size_t connections = 0;
  std::size_t bytes_per_connection = 0;
  std::chrono::seconds op_timeout{30};
};

// --- data -------------------------------------------------------------------------------

/// pool_span + bytes pseudo-random bytes (splitmix64); connection i sends a slice of it.
inline std::vector<std::byte> make_pool(std::size_t bytes, std::uint64_t seed) {
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

/// Connection i's payload in round r: distinct for every i < pool_span within a round (4099 is
/// odd, pool_span 2^20), and shifted from round to round.
inline std::span<const std::byte> payload_of(const std::vector<std::byte>& pool, std::size_t i,
                                             std::size_t bytes, std::uint64_t round = 0) {
  return std::span(pool).subspan((i * 4099 + round * 104729) % pool_span, bytes);
}

inline constexpr std::uint64_t fnv_basis = 0xcbf29ce484222325ULL;
inline std::uint64_t fnv1a(std::uint64_t h, std::span<const std::byte> bytes) {
  for (std::byte b : bytes) h = (h ^ static_cast<std::uint64_t>(b)) * 0x100000001b3ULL;
  return h;
}

inline std::size_t mismatches(std::span<const std::byte> want, std::span<const std::byte> got) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < got.size(); ++i) n += want[i] != got[i];
  return n;
}

// --- memory -----------------------------------------------------------------------------

/// A field of /proc/self/status in KiB ("VmRSS:", "VmHWM:"), or -1.
inline long status_kib(const char* key) {
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
inline void reset_peak_rss() {
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

/// One round's client results, added up.
struct round_tally {
  std::size_t completed = 0, received = 0, corrupted = 0, bad_checksums = 0;
  std::vector<double> connect_ms, total_ms;  // total_ms of completed connections only
  const client_stats* first_failure = nullptr;
};

inline round_tally tally(const std::vector<client_stats>& stats, const load_params& p) {
  round_tally t;
  for (const client_stats& s : stats) {
    t.completed += s.completed;
    t.received += s.received;
    t.corrupted += s.corrupted;
    t.bad_checksums += s.received == p.bytes_per_connection && !s.checksum_ok;
    t.connect_ms.push_back(s.connect_ms);
    if (s.completed) t.total_ms.push_back(s.total_ms);
    if (!s.completed && !t.first_failure) t.first_failure = &s;
  }
  return t;
}

inline task<void> run_client(io_context& io, endpoint server, std::span<const std::byte> payload,
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

inline task<void> client_round(io_context& io, endpoint server, const std::vector<std::byte>& pool,
                               const load_params& p, gate& g, std::vector<client_stats>& stats,
                               std::uint64_t round = 0) {
  std::vector<task<void>> tasks;
  tasks.reserve(p.connections);
  for (std::size_t i = 0; i < p.connections; ++i)
    tasks.push_back(
        run_client(io, server, payload_of(pool, i, p.bytes_per_connection, round), p, g, stats[i]));
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
inline task<void> acceptor(tcp_listener& listener, std::vector<handoff>& slots,
                           const load_params& p, server_stats& s) {
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

inline task<void> echo_session(handoff& slot, const load_params& p, server_stats& s) {
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

inline task<void> server_round(tcp_listener& listener, const load_params& p, server_stats& s) {
  std::vector<handoff> slots(p.connections);
  std::vector<task<void>> tasks;
  tasks.reserve(p.connections + 1);
  tasks.push_back(acceptor(listener, slots, p, s));
  for (handoff& slot : slots) tasks.push_back(echo_session(slot, p, s));
  co_await uringcat::when_all(std::move(tasks));
}

inline double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1,
                    static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5))];
}

}  // namespace uringcat::testing::echo_load
