// How late connect timeouts are reported when N of them expire together: uringcat against
// raw liburing CONNECT + LINK_TIMEOUT (the design every linked-timeout runtime uses), in the
// same run, against the loopback black hole. The quick benchmark behind the reactor's
// design (io_context.hpp); bench/README.md has the figures and the command.
//
// Counters: lateness of the caller learning "timed out" after the requested deadline, in
// microseconds (p50, p99, max over all N connects of all iterations).
#include <benchmark/benchmark.h>
#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <vector>

#include "loopback_black_hole.hpp"
#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::clock;

void report(benchmark::State& state, std::vector<double>& lateness_us, long timed_out, long total) {
  std::sort(lateness_us.begin(), lateness_us.end());
  if (lateness_us.empty()) return;
  state.counters["p50_us"] = lateness_us[lateness_us.size() / 2];
  state.counters["p99_us"] = lateness_us[lateness_us.size() * 99 / 100];
  state.counters["max_us"] = lateness_us.back();
  state.counters["timed_out_pct"] =
      100.0 * static_cast<double>(timed_out) / static_cast<double>(total);
}

double us_between(clock::time_point later, clock::time_point earlier) {
  return std::chrono::duration<double, std::micro>(later - earlier).count();
}

void connect_timeouts(benchmark::State& state, const uringcat::io_context_options& options) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto timeout = std::chrono::milliseconds(state.range(1));
  if (!uringcat::testing::raise_nofile(n + 256)) return state.SkipWithError("RLIMIT_NOFILE");
  uringcat::testing::loopback_black_hole hole;
  const auto ep = uringcat::endpoint::parse(hole.address());
  std::vector<double> lateness;
  long timed_out = 0, total = 0;
  for (auto _ : state) {
    uringcat::io_context io(options);
    std::vector<double> late(n);
    auto one = [&](std::size_t i) -> uringcat::task<void> {
      uringcat::tcp_client client(io);
      const auto start = clock::now();
      const std::error_code ec = co_await client.try_connect(ep, timeout);
      late[i] = us_between(clock::now(), start + timeout);
      if (ec == std::errc::timed_out) ++timed_out;
      ++total;
    };
    std::vector<uringcat::task<void>> tasks;
    tasks.reserve(n);
    for (std::size_t i = 0; i < n; ++i) tasks.push_back(one(i));
    io.run(uringcat::when_all(std::move(tasks)));
    lateness.insert(lateness.end(), late.begin(), late.end());
  }
  report(state, lateness, timed_out, total);
}

void BM_raw_liburing_linked_timeouts(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto timeout = std::chrono::milliseconds(state.range(1));
  if (!uringcat::testing::raise_nofile(n + 256)) return state.SkipWithError("RLIMIT_NOFILE");
  uringcat::testing::loopback_black_hole hole;
  sockaddr_storage ss{};
  const socklen_t len = hole.sockaddr_of(ss);
  std::vector<double> lateness;
  long timed_out = 0, total = 0;
  for (auto _ : state) {
    // The same ring flags uringcat uses on this kernel.
    io_uring ring{};
    io_uring_params p{};
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
              IORING_SETUP_DEFER_TASKRUN;
    p.cq_entries = 32768;
    if (io_uring_queue_init_params(256, &ring, &p) != 0) {
      p.flags = IORING_SETUP_CQSIZE;
      if (io_uring_queue_init_params(256, &ring, &p) != 0) return state.SkipWithError("io_uring");
    }
    struct conn {
      int fd;
      clock::time_point deadline;
      __kernel_timespec ts;
    };
    std::vector<conn> conns(n);
    for (std::size_t i = 0; i < n; ++i) {
      conn& c = conns[i];
      c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      c.deadline = clock::now() + timeout;
      const auto ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(c.deadline.time_since_epoch())
              .count();
      c.ts = {ns / 1'000'000'000, ns % 1'000'000'000};
      if (io_uring_sq_space_left(&ring) < 2) io_uring_submit(&ring);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_connect(sqe, c.fd, reinterpret_cast<sockaddr*>(&ss), len);
      io_uring_sqe_set_data64(sqe, i + 1);
      sqe->flags |= IOSQE_IO_LINK;
      io_uring_sqe* t = io_uring_get_sqe(&ring);
      io_uring_prep_link_timeout(t, &c.ts, IORING_TIMEOUT_ABS);
      io_uring_sqe_set_data64(t, 0);
    }
    std::size_t done = 0;
    const auto give_up = clock::now() + timeout + 10s;
    while (done < n && clock::now() < give_up) {
      io_uring_cqe* cqe = nullptr;
      __kernel_timespec wait{1, 0};
      io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &wait, nullptr);
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&ring, head, cqe) {
        ++seen;
        if (cqe->user_data == 0 || cqe->user_data == LIBURING_UDATA_TIMEOUT) continue;
        conn& c = conns[cqe->user_data - 1];
        lateness.push_back(us_between(clock::now(), c.deadline));
        if (cqe->res == -ECANCELED || cqe->res == -ETIME) ++timed_out;
        ++total;
        ::close(c.fd);
        ++done;
      }
      io_uring_cq_advance(&ring, seen);
    }
    io_uring_queue_exit(&ring);
  }
  report(state, lateness, timed_out, total);
}

void BM_uringcat_connect_timeouts(benchmark::State& state) {
  connect_timeouts(state, {});
}

// The fallback ring of kernels without DEFER_TASKRUN (COOP_TASKRUN | TASKRUN_FLAG).
void BM_uringcat_connect_timeouts_without_defer_taskrun(benchmark::State& state) {
  uringcat::io_context_options options;
  options.defer_taskrun = false;
  connect_timeouts(state, options);
}

// N idle loopback connections (client ends returned; server ends kept in `peers`).
std::vector<int> idle_connections(std::size_t n, std::vector<int>& peers) {
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(listener, 64);
  ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  std::vector<int> clients;
  for (std::size_t i = 0; i < n; ++i) {
    const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) break;
    clients.push_back(c);
    peers.push_back(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  }
  ::close(listener);
  return clients;
}

void close_all(std::vector<int>& fds) {
  for (int fd : fds) ::close(fd);
  fds.clear();
}

void BM_uringcat_recv_timeouts(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto timeout = std::chrono::milliseconds(state.range(1));
  if (!uringcat::testing::raise_nofile(2 * n + 256)) return state.SkipWithError("RLIMIT_NOFILE");
  std::vector<int> peers;
  std::vector<int> fds = idle_connections(n, peers);
  std::vector<double> lateness;
  long timed_out = 0, total = 0;
  for (auto _ : state) {
    uringcat::io_context io;
    std::vector<double> late(n);
    auto one = [&](std::size_t i) -> uringcat::task<void> {
      uringcat::tcp_client client(io, fds[i]);
      std::array<std::byte, 64> buf{};
      const auto start = clock::now();
      auto r = co_await client.try_recv(buf, timeout);
      late[i] = us_between(clock::now(), start + timeout);
      if (r.error() == std::errc::timed_out) ++timed_out;
      ++total;
      (void)client.release();  // the descriptor is reused by the next iteration
    };
    std::vector<uringcat::task<void>> tasks;
    tasks.reserve(n);
    for (std::size_t i = 0; i < n; ++i) tasks.push_back(one(i));
    io.run(uringcat::when_all(std::move(tasks)));
    lateness.insert(lateness.end(), late.begin(), late.end());
  }
  close_all(fds);
  close_all(peers);
  report(state, lateness, timed_out, total);
}

void BM_raw_liburing_recv_linked_timeouts(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto timeout = std::chrono::milliseconds(state.range(1));
  if (!uringcat::testing::raise_nofile(2 * n + 256)) return state.SkipWithError("RLIMIT_NOFILE");
  std::vector<int> peers;
  std::vector<int> fds = idle_connections(n, peers);
  std::vector<double> lateness;
  long timed_out = 0, total = 0;
  std::vector<std::array<char, 64>> bufs(n);
  for (auto _ : state) {
    io_uring ring{};
    io_uring_params p{};
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
              IORING_SETUP_DEFER_TASKRUN;
    p.cq_entries = 32768;
    if (io_uring_queue_init_params(256, &ring, &p) != 0) return state.SkipWithError("io_uring");
    std::vector<clock::time_point> deadlines(n);
    std::vector<__kernel_timespec> ts(n);
    for (std::size_t i = 0; i < n; ++i) {
      deadlines[i] = clock::now() + timeout;
      const auto ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(deadlines[i].time_since_epoch())
              .count();
      ts[i] = {ns / 1'000'000'000, ns % 1'000'000'000};
      if (io_uring_sq_space_left(&ring) < 2) io_uring_submit(&ring);
      io_uring_sqe* sqe = io_uring_get_sqe(&ring);
      io_uring_prep_recv(sqe, fds[i], bufs[i].data(), bufs[i].size(), 0);
      io_uring_sqe_set_data64(sqe, i + 1);
      sqe->flags |= IOSQE_IO_LINK;
      io_uring_sqe* t = io_uring_get_sqe(&ring);
      io_uring_prep_link_timeout(t, &ts[i], IORING_TIMEOUT_ABS);
      io_uring_sqe_set_data64(t, 0);
    }
    std::size_t done = 0;
    const auto give_up = clock::now() + timeout + 10s;
    while (done < n && clock::now() < give_up) {
      io_uring_cqe* cqe = nullptr;
      __kernel_timespec wait{1, 0};
      io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &wait, nullptr);
      unsigned head, seen = 0;
      io_uring_for_each_cqe(&ring, head, cqe) {
        ++seen;
        if (cqe->user_data == 0 || cqe->user_data == LIBURING_UDATA_TIMEOUT) continue;
        lateness.push_back(us_between(clock::now(), deadlines[cqe->user_data - 1]));
        if (cqe->res == -ECANCELED) ++timed_out;
        ++total;
        ++done;
      }
      io_uring_cq_advance(&ring, seen);
    }
    io_uring_queue_exit(&ring);
  }
  close_all(fds);
  close_all(peers);
  report(state, lateness, timed_out, total);
}

void recv_args(benchmark::internal::Benchmark* b) {
  b->Args({1, 100})->Args({1000, 500})->Args({9000, 500});
  b->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
}

BENCHMARK(BM_uringcat_recv_timeouts)->Apply(recv_args);
BENCHMARK(BM_raw_liburing_recv_linked_timeouts)->Apply(recv_args);

void scale_args(benchmark::internal::Benchmark* b) {
  b->Args({1, 10})->Args({1, 100})->Args({1000, 500})->Args({10000, 500});
  b->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
}

BENCHMARK(BM_uringcat_connect_timeouts)->Apply(scale_args);
BENCHMARK(BM_uringcat_connect_timeouts_without_defer_taskrun)->Apply(scale_args);
BENCHMARK(BM_raw_liburing_linked_timeouts)->Apply(scale_args);

}  // namespace

BENCHMARK_MAIN();
