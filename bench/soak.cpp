// soak: the load of tests/load_test.cpp at 10,000 concurrent connections, round after round
// for a given time, with the echo server in a child process.
//
//   soak [--seconds N] [--connections N] [--bytes N]    (defaults: 60 s, 10,000, 16 KiB)
//   soak --smoke                                        (3 s, 200 connections: CI)
//
// Each round the client (this process, one io_context) opens N connections to a loopback
// echo server built on uringcat (the child process: one io_context, one tcp_listener, kept
// for the whole run), waits at a gate until all N are established, then each connection
// echoes its pseudo-random payload in 4 KiB chunks (send_all, recv_exact) under a 30 s
// deadline per operation, checks every byte and an FNV-1a checksum, and expects the server
// to close first. Why a child: RLIMIT_NOFILE's hard limit here is 20,000, and 10,000 client
// plus 10,000 server sockets do not fit in one process. The fork happens before any ring
// exists; the child exits when told (or when the control socket closes), and is waited for.
//
// Printed per round and at the end: connections completed, bytes, lost and corrupted bytes,
// descriptor leaks (each process counts /proc/self/fd after every round and after its
// io_context is gone), peak RSS growth per connection in each process (VmHWM, reset before
// each round), and connect / completion time quantiles. Exits 1 on any loss, corruption,
// incomplete connection or leak.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>
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

/// Pooled latency samples in fixed log buckets (1% wide, 1 us to ~20 min), allocated once so
/// that a long run's RSS does not grow with the number of samples.
class histogram {
 public:
  void add(double ms) {
    const double x = std::max(ms, min_ms) / min_ms;
    auto i = static_cast<std::size_t>(std::log(x) / std::log(ratio));
    ++counts_[std::min(i, counts_.size() - 1)];
    ++total_;
  }
  /// The upper edge of the bucket holding quantile q (nearest rank).
  double quantile(double q) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1) + 0.5);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen > rank) return min_ms * std::pow(ratio, static_cast<double>(i + 1));
    }
    return 0;
  }

 private:
  static constexpr double min_ms = 0.001, ratio = 1.01;
  std::array<std::uint64_t, 2100> counts_{};
  std::uint64_t total_ = 0;
};

double ms_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// --- the control channel between the two processes (a blocking AF_UNIX socketpair) -------

struct hello_msg {
  std::uint16_t port = 0;
};
struct command_msg {
  std::uint64_t quit = 0;
  std::uint64_t connections = 0;
  std::uint64_t bytes = 0;
  std::int64_t timeout_s = 30;
};
struct round_reply {
  std::uint64_t accepted = 0, completed = 0, failed = 0, echoed = 0;
  std::int64_t error_value = 0;
  std::int64_t rss_base_kib = 0, rss_peak_kib = 0, rss_after_kib = 0, fds = 0;
};
struct final_reply {
  std::int64_t fds_before = 0, fds_after = 0, rss_kib = 0;
};

bool send_msg(int fd, const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

/// Reads exactly `size` bytes, waiting at most `limit` in all; false on EOF, error or timeout.
bool recv_msg(int fd, void* data, std::size_t size, std::chrono::milliseconds limit) {
  char* p = static_cast<char*>(data);
  const auto until = steady::now() + limit;
  while (size > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    const int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    const ssize_t n = ::recv(fd, p, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// --- the server process ------------------------------------------------------------------

int server_main(int ctl) {
  const int fds_before = uringcat::testing::count_open_fds();
  {
    io_context io;
    tcp_listener listener(io, endpoint::loopback_v4(0), {.backlog = 65535});
    const hello_msg hello{listener.local_endpoint().port()};
    if (!send_msg(ctl, &hello, sizeof hello)) return 2;
    for (;;) {
      command_msg cmd;
      // The parent sends the next command within seconds; an hour bounds a stuck parent.
      if (!recv_msg(ctl, &cmd, sizeof cmd, std::chrono::hours(1)) || cmd.quit) break;
      load_params p;
      p.connections = cmd.connections;
      p.bytes_per_connection = cmd.bytes;
      p.op_timeout = std::chrono::seconds(cmd.timeout_s);
      server_stats s;
      round_reply reply;
      reset_peak_rss();
      reply.rss_base_kib = status_kib("VmRSS:");
      io.run(server_round(listener, p, s));
      reply.rss_peak_kib = status_kib("VmHWM:");
      reply.rss_after_kib = status_kib("VmRSS:");
      reply.fds = uringcat::testing::count_open_fds();
      reply.accepted = s.accepted;
      reply.completed = s.completed;
      reply.failed = s.failed;
      reply.echoed = s.echoed;
      reply.error_value = s.first_error.value();
      if (!send_msg(ctl, &reply, sizeof reply)) return 2;
    }
  }
  const final_reply fin{fds_before, uringcat::testing::count_open_fds(), status_kib("VmRSS:")};
  return send_msg(ctl, &fin, sizeof fin) ? 0 : 2;
}

// --- the client process ------------------------------------------------------------------

struct options {
  double seconds = 60;
  std::size_t connections = 10000;
  std::size_t bytes = 16 * 1024;
};

struct totals {
  std::size_t rounds = 0, connections = 0, completed = 0, server_completed = 0;
  std::size_t bytes_expected = 0, bytes_received = 0, bytes_echoed = 0, corrupted = 0,
              bad_checksums = 0;
  long client_fd_leak = 0, server_fd_leak = 0;  // worst round
  long server_fds_idle = 0;
  double client_rss_per_conn_first = 0, client_rss_per_conn_max = 0;
  double server_rss_per_conn_first = 0, server_rss_per_conn_max = 0;
  long client_rss_after_first = 0, client_rss_after_last = 0;
  long server_rss_after_first = 0, server_rss_after_last = 0;
  histogram connect_ms, total_ms;
};

/// Runs rounds until the time is up (at least one) or a round fails. Returns false when the
/// server stopped answering.
bool client_rounds(int ctl, endpoint server, const options& o, totals& t) {
  load_params p;
  p.connections = o.connections;
  p.bytes_per_connection = o.bytes;
  const std::vector<std::byte> pool = make_pool(o.bytes, 0x5eed);
  io_context io;
  const int fds_idle = uringcat::testing::count_open_fds();
  const auto end = steady::now() + std::chrono::duration<double>(o.seconds);
  bool ok = true;
  for (std::uint64_t round = 0; ok; ++round) {
    const command_msg cmd{0, p.connections, p.bytes_per_connection, p.op_timeout.count()};
    if (!send_msg(ctl, &cmd, sizeof cmd)) return false;
    std::vector<client_stats> stats(p.connections);
    gate g(p.connections);
    reset_peak_rss();
    const long rss_base = status_kib("VmRSS:");
    const auto t0 = steady::now();
    io.run(client_round(io, server, pool, p, g, stats, round));
    const double wall_ms = ms_between(t0, steady::now());
    const long rss_peak = status_kib("VmHWM:");
    const long rss_after = status_kib("VmRSS:");
    const long fd_leak = uringcat::testing::count_open_fds() - fds_idle;
    round_reply srv;
    // Every server operation has a deadline of op_timeout; the acceptor may wait one more.
    if (!recv_msg(ctl, &srv, sizeof srv, 4 * p.op_timeout + 60s)) return false;

    const auto [completed, received, corrupted, bad_checksums, connect_ms, total_ms, failure] =
        tally(stats, p);
    for (double ms : connect_ms) t.connect_ms.add(ms);
    for (double ms : total_ms) t.total_ms.add(ms);
    const std::size_t expected = p.connections * p.bytes_per_connection;
    const double n = static_cast<double>(p.connections);
    const double client_rss = static_cast<double>(rss_peak - rss_base) * 1024.0 / n;
    const double server_rss = static_cast<double>(srv.rss_peak_kib - srv.rss_base_kib) * 1024.0 / n;
    const long server_fd_leak = srv.fds - (t.rounds == 0 ? srv.fds : t.server_fds_idle);
    if (t.rounds == 0) {
      t.server_fds_idle = srv.fds;
      t.client_rss_per_conn_first = client_rss;
      t.server_rss_per_conn_first = server_rss;
      t.client_rss_after_first = rss_after;
      t.server_rss_after_first = srv.rss_after_kib;
    }
    ++t.rounds;
    t.connections += p.connections;
    t.completed += completed;
    t.server_completed += srv.completed;
    t.bytes_expected += expected;
    t.bytes_received += received;
    t.bytes_echoed += srv.echoed;
    t.corrupted += corrupted;
    t.bad_checksums += bad_checksums;
    t.client_fd_leak = std::max(t.client_fd_leak, std::labs(fd_leak));
    t.server_fd_leak = std::max(t.server_fd_leak, std::labs(server_fd_leak));
    t.client_rss_per_conn_max = std::max(t.client_rss_per_conn_max, client_rss);
    t.server_rss_per_conn_max = std::max(t.server_rss_per_conn_max, server_rss);
    t.client_rss_after_last = rss_after;
    t.server_rss_after_last = srv.rss_after_kib;

    std::printf(
        "round %zu: %zu/%zu completed (server %llu), %zu B echoed of %zu, lost %zu, corrupted "
        "%zu, bad checksums %zu, wall %.0f ms, connect p50/p99 %.1f/%.1f ms, completion "
        "p50/p99 %.1f/%.1f ms, RSS/conn client %.0f B server %.0f B, fd leak client %ld "
        "server %ld\n",
        t.rounds, completed, p.connections, static_cast<unsigned long long>(srv.completed),
        received, expected, expected - received, corrupted, bad_checksums, wall_ms,
        quantile(connect_ms, 0.5), quantile(connect_ms, 0.99), quantile(total_ms, 0.5),
        quantile(total_ms, 0.99), client_rss, server_rss, fd_leak, server_fd_leak);
    if (failure)
      std::printf("  first failed connection: %s: %s\n", failure->failed_step,
                  failure->error.message().c_str());
    if (srv.completed != p.connections)
      std::printf("  server: %llu accepted, %llu failed, first error: %s\n",
                  static_cast<unsigned long long>(srv.accepted),
                  static_cast<unsigned long long>(srv.failed),
                  std::system_category().message(static_cast<int>(srv.error_value)).c_str());
    std::fflush(stdout);
    ok = completed == p.connections && srv.completed == p.connections && received == expected &&
         srv.echoed == expected && corrupted == 0 && bad_checksums == 0 && fd_leak == 0 &&
         server_fd_leak == 0;
    if (steady::now() >= end) break;
  }
  const command_msg quit{1, 0, 0, 0};
  return send_msg(ctl, &quit, sizeof quit);
}

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--seconds N] [--connections N] [--bytes N] [--smoke]\n", argv0);
  std::exit(2);
}

/// Waits for the child at most `limit`, then kills it; returns its exit status or -1.
int reap(pid_t child, std::chrono::milliseconds limit) {
  const auto until = steady::now() + limit;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(child, &status, WNOHANG);
    if (r == child) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (r < 0 && errno != EINTR) return -1;
    if (steady::now() >= until) break;
    std::this_thread::sleep_for(10ms);
  }
  ::kill(child, SIGKILL);
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--smoke") {
      o.seconds = 3;
      o.connections = 200;
    } else if ((a == "--seconds" || a == "--connections" || a == "--bytes") && i + 1 < argc) {
      const double v = std::strtod(argv[++i], nullptr);
      if (!(v > 0)) usage(argv[0]);
      if (a == "--seconds")
        o.seconds = v;
      else if (a == "--connections")
        o.connections = static_cast<std::size_t>(v);
      else
        o.bytes = static_cast<std::size_t>(v);
    } else {
      usage(argv[0]);
    }
  }
  // Each process holds one socket per connection, plus its ring, listener and stdio.
  if (!uringcat::testing::raise_nofile(o.connections + 256)) {
    std::fprintf(stderr, "soak: cannot raise RLIMIT_NOFILE to %zu\n", o.connections + 256);
    return 2;
  }
  int ctl[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ctl) != 0) {
    std::perror("soak: socketpair");
    return 2;
  }
  std::fflush(nullptr);
  const pid_t parent = ::getpid();
  const pid_t child = ::fork();  // before any io_uring exists in either process
  if (child < 0) {
    std::perror("soak: fork");
    return 2;
  }
  if (child == 0) {
    ::close(ctl[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the client
    if (::getppid() != parent) ::_exit(3);
    int rc = 2;
    try {
      rc = server_main(ctl[1]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "soak server: %s\n", e.what());
    }
    ::close(ctl[1]);
    ::_exit(rc);
  }
  ::close(ctl[1]);

  std::printf(
      "soak: %zu connections per round, %zu bytes each way per connection, %.0f s, "
      "server in child process %d\n",
      o.connections, o.bytes, o.seconds, static_cast<int>(child));
  const int fds_before = uringcat::testing::count_open_fds();
  totals t;
  bool answered = false;
  int fds_after = -1;
  final_reply fin{};
  try {
    hello_msg hello;
    if (recv_msg(ctl[0], &hello, sizeof hello, 30s)) {
      answered = client_rounds(ctl[0], endpoint::loopback_v4(hello.port), o, t);
      fds_after = uringcat::testing::count_open_fds();  // the io_context is gone
      answered = answered && recv_msg(ctl[0], &fin, sizeof fin, 60s);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "soak: %s\n", e.what());
  }
  ::close(ctl[0]);  // the child ends on end of stream if it has not already
  const int child_status = reap(child, 30s);

  const long client_final_leak = fds_after - fds_before;
  const long server_final_leak = fin.fds_after - fin.fds_before;
  const std::size_t lost = t.bytes_expected - t.bytes_received;
  std::printf(
      "soak: %zu rounds, %zu connections (%zu completed, server %zu), %zu bytes each way "
      "(server echoed %zu), lost %zu, corrupted %zu, bad checksums %zu\n"
      "soak: fd leak client %ld per round / %ld at exit, server %ld per round / %ld at exit\n"
      "soak: peak RSS growth per connection: client %.0f B (round 1) %.0f B (max), server "
      "%.0f B (round 1) %.0f B (max); RSS after last round vs round 1: client %+ld KiB, "
      "server %+ld KiB\n"
      "soak: connect p50/p99 %.1f/%.1f ms, connection completion p50/p99 %.1f/%.1f ms\n",
      t.rounds, t.connections, t.completed, t.server_completed, t.bytes_received, t.bytes_echoed,
      lost, t.corrupted, t.bad_checksums, t.client_fd_leak, client_final_leak, t.server_fd_leak,
      server_final_leak, t.client_rss_per_conn_first, t.client_rss_per_conn_max,
      t.server_rss_per_conn_first, t.server_rss_per_conn_max,
      t.client_rss_after_last - t.client_rss_after_first,
      t.server_rss_after_last - t.server_rss_after_first, t.connect_ms.quantile(0.5),
      t.connect_ms.quantile(0.99), t.total_ms.quantile(0.5), t.total_ms.quantile(0.99));
  const bool ok = answered && child_status == 0 && t.rounds > 0 && t.completed == t.connections &&
                  t.server_completed == t.connections && lost == 0 &&
                  t.bytes_echoed == t.bytes_expected && t.corrupted == 0 && t.bad_checksums == 0 &&
                  t.client_fd_leak == 0 && t.server_fd_leak == 0 && client_final_leak == 0 &&
                  server_final_leak == 0;
  if (!answered) std::printf("soak: the server stopped answering\n");
  if (child_status != 0) std::printf("soak: the server exited with status %d\n", child_status);
  std::printf("soak: %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
