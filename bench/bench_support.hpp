// Shared by the benchmarks: lateness statistics as Google Benchmark counters, process
// resource usage, and the loopback helpers the tests use too.
//
// Every lateness benchmark reports, in microseconds: min_us, p50_us, p99_us, max_us, and
// the quantiles q00..q100 (every 5%, plus q99), from which bench/plot_lateness.sh draws a CDF
// straight from the JSON output (--benchmark_out).
#pragma once

#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "loopback_black_hole.hpp"
#include "test_support.hpp"

namespace uringcat::bench {

using testing::loopback_black_hole;
using testing::raise_nofile;

/// Runs the registered benchmarks with Google Benchmark's own flags: `args` is argv[0] and
/// the arguments the program did not take itself. Returns main's status (2: an unknown flag).
inline int run_benchmarks(std::vector<char*> args) {
  int argc = static_cast<int>(args.size());
  args.push_back(nullptr);
  benchmark::Initialize(&argc, args.data());
  if (benchmark::ReportUnrecognizedArguments(argc, args.data())) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

/// Microseconds from `earlier` to `later` (negative when `later` is earlier).
inline double us_between(std::chrono::steady_clock::time_point later,
                         std::chrono::steady_clock::time_point earlier) {
  return std::chrono::duration<double, std::micro>(later - earlier).count();
}

/// The value at quantile q (0..1) of sorted samples, nearest-rank.
inline double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  auto i = static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

/// Sorts `samples_us` and sets min_us, p50_us, p99_us, max_us, samples and q00..q100.
inline void set_lateness_counters(benchmark::State& state, std::vector<double>& samples_us) {
  if (samples_us.empty()) return;
  std::sort(samples_us.begin(), samples_us.end());
  state.counters["min_us"] = samples_us.front();
  state.counters["p50_us"] = quantile(samples_us, 0.50);
  state.counters["p99_us"] = quantile(samples_us, 0.99);
  state.counters["max_us"] = samples_us.back();
  state.counters["samples"] = static_cast<double>(samples_us.size());
  for (int q = 0; q <= 100; q += 5) {
    char name[8];
    std::snprintf(name, sizeof name, "q%02d", q);  // q00 ... q95, q100
    state.counters[name] = quantile(samples_us, q / 100.0);
  }
  state.counters["q99"] = quantile(samples_us, 0.99);
}

/// CPU time, voluntary context switches and resident memory of this process, now.
struct usage {
  double cpu_ms = 0;
  long voluntary_switches = 0;
  long rss_kib = 0;

  static usage now() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    usage u;
    u.cpu_ms = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
               static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
    u.voluntary_switches = ru.ru_nvcsw;
    long pages = 0, resident = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
      if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
      std::fclose(f);
    }
    u.rss_kib = resident * (::sysconf(_SC_PAGESIZE) / 1024);
    return u;
  }
};

}  // namespace uringcat::bench
