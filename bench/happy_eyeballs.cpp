// How long does a connect take when the first address black-holes? Happy Eyeballs
// (uringcat::connect_any, RFC 8305) against trying the addresses in order, in the same run.
//
// The host has two addresses, the way "localhost" or a dual-stack server name resolves:
// [::1]:P first, where SYNs are dropped (tests/support/loopback_black_hole.hpp: a broken IPv6
// path, seen from the client), then 127.0.0.1:Q, which accepts. Each iteration connects once
// and measures from the start of the call to connected.
//
// Methods, each its own benchmark "happy_eyeballs/<method>":
//   happy_eyeballs        co_await connect_any(client, {[::1]:P, 127.0.0.1:Q}, 5 s,
//                         {.attempt_delay = D}): the IPv4 attempt starts D after the IPv6 one
//   in_order              one address after the other, each attempt with its own timeout T
//                         (uringcat try_connect(ep, T)), what Python's
//                         socket.create_connection(addr, timeout=T) does. tokio's
//                         TcpStream::connect also tries in order, with no timeout at all: it
//                         would wait for the kernel's SYN retries (over two minutes here), so it
//                         is not run; in_order with T is its best case.
// D = 250 ms (the RFC's recommended delay), T = 1 s (a common per-attempt timeout); --smoke:
// D = 50 ms, T = 200 ms, 2 iterations each.
//
// Counters: connect_ms p50 / max over the iterations (wall time), and failures (must be 0).
//
// Run:
//   build/bench/happy_eyeballs              # ~10 s
//   build/bench/happy_eyeballs --smoke
#include <benchmark/benchmark.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "bench_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
namespace ub = uringcat::bench;
using clock_type = std::chrono::steady_clock;

struct params {
  std::chrono::milliseconds attempt_delay;
  std::chrono::milliseconds per_attempt_timeout;
};

/// The two-address host: a black hole on ::1 and a listener on 127.0.0.1, kept for the run.
struct dual_stack_host {
  ub::loopback_black_hole hole6{/*ipv6=*/true};
  uringcat::io_context io;
  uringcat::tcp_listener listener{io, uringcat::endpoint::loopback_v4(0)};
  std::vector<uringcat::endpoint> addresses() const {
    return {uringcat::endpoint::parse(hole6.address()), listener.local_endpoint()};
  }
  /// Takes the connection the last iteration made out of the accept queue.
  void drain() {
    for (int fd; (fd = ::accept4(listener.native_handle(), nullptr, nullptr, SOCK_CLOEXEC)) >= 0;)
      ::close(fd);
  }
};

dual_stack_host& host() {
  static dual_stack_host h;
  return h;
}

template <class Connect>
void measure(benchmark::State& state, Connect&& connect) {
  std::vector<double> ms;
  long failures = 0;
  for (auto _ : state) {
    const auto start = clock_type::now();
    const bool ok = connect();
    const double took =
        std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
    state.SetIterationTime(took / 1e3);
    if (ok)
      ms.push_back(took);
    else
      ++failures;
    host().drain();
  }
  std::sort(ms.begin(), ms.end());
  if (!ms.empty()) {
    state.counters["connect_ms_p50"] = ub::quantile(ms, 0.5);
    state.counters["connect_ms_max"] = ms.back();
  }
  state.counters["failures"] = static_cast<double>(failures);
}

void bm_happy_eyeballs(benchmark::State& state, params p) {
  dual_stack_host& h = host();
  measure(state, [&] {
    auto attempt = [&]() -> uringcat::task<bool> {
      uringcat::tcp_client client(h.io);
      uringcat::connect_options options;
      options.attempt_delay = p.attempt_delay;
      const auto r = co_await uringcat::connect_any(client, h.addresses(), 5s, options);
      co_return !r.error && client.remote_endpoint()->is_v4();
    };
    return h.io.run(attempt());
  });
}

void bm_in_order(benchmark::State& state, params p) {
  dual_stack_host& h = host();
  measure(state, [&] {
    auto attempt = [&]() -> uringcat::task<bool> {
      uringcat::tcp_client client(h.io);
      for (const uringcat::endpoint& ep : h.addresses())
        if (!co_await client.try_connect(ep, p.per_attempt_timeout)) co_return true;
      co_return false;
    };
    return h.io.run(attempt());
  });
}

}  // namespace

int main(int argc, char** argv) {
  bool smoke = false;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--smoke")
      smoke = true;
    else
      rest.push_back(argv[i]);
  }
  const params p = smoke ? params{50ms, 200ms} : params{250ms, 1000ms};
  const auto delay = std::to_string(p.attempt_delay.count()) + "ms";
  const auto per = std::to_string(p.per_attempt_timeout.count()) + "ms";
  benchmark::RegisterBenchmark(("happy_eyeballs/happy_eyeballs/delay:" + delay).c_str(),
                               bm_happy_eyeballs, p)
      ->Iterations(smoke ? 2 : 20)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark(("happy_eyeballs/in_order/per_attempt_timeout:" + per).c_str(),
                               bm_in_order, p)
      ->Iterations(smoke ? 2 : 5)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);

  return uringcat::bench::run_benchmarks(std::move(rest));
}
