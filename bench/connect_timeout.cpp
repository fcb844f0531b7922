// How late is a single connect timeout? Lateness = (when the caller learns that its connect
// timed out) - (the requested timeout, counted from just before the attempt starts, socket
// creation included), for one connect at a time against the loopback black hole
// (tests/support/loopback_black_hole.hpp: 127.0.0.1 only; its SYNs are dropped so the
// connect hangs), at 1 ms, 10 ms, 100 ms and 1 s, one connect per benchmark iteration.
//
// Methods, each its own benchmark "connect_timeout/<method>/<timeout>":
//   uringcat      co_await client.try_connect(ep, timeout) on one io_context (one run() per
//                 connect; the time is taken inside the coroutine around the co_await)
//   raw_liburing  CONNECT + IOSQE_IO_LINK + LINK_TIMEOUT (IORING_TIMEOUT_ABS, CLOCK_MONOTONIC),
//                 same ring flags as uringcat; observed when the connect CQE (-ECANCELED) is
//                 reaped. The floor.
//   poll          non-blocking connect + poll() with the remaining time rounded UP to
//                 milliseconds, looping on EINTR: what CPython's socket.settimeout() does
//   epoll_pwait2  non-blocking connect + epoll_pwait2() with a nanosecond timeout
//   so_sndtimeo   blocking connect with SO_SNDTIMEO = timeout, the kernel's own connect
//                 timeout. On expiry Linux's connect() returns -1/EINPROGRESS (not EAGAIN or
//                 ETIMEDOUT): the label prints what was seen. The wait is a jiffy timer
//                 (CONFIG_HZ), so it is coarse and may even end before the deadline.
//   asio          Boost.Asio C++20 coroutine:
//                 co_await (socket.async_connect(ep) || timer.async_wait()) (only when built
//                 with Boost >= 1.81, -DURINGCAT_BENCH_ASIO=1; one io_context per benchmark)
// Every method closes its socket after each attempt.
//
// Counters (bench_support.hpp): min_us, p50_us, p99_us, max_us, q00..q100 of the lateness of
// the attempts that timed out; timed_out_pct (must be 100); unexpected (attempts that ended
// otherwise, named in the label); early (timeouts reported before the deadline).
//
// Run:
//   build/bench/connect_timeout                                  # all four timeouts, ~2 min
//   build/bench/connect_timeout --timeouts=1ms,10ms              # a subset (Nms or Ns)
//   build/bench/connect_timeout --smoke                          # 1 ms and 10 ms, 5 each
//   build/bench/connect_timeout --benchmark_out=x.json --benchmark_out_format=json
// Default iterations: 200 at <= 10 ms, 50 at <= 100 ms, 10 at <= 1 s, 3 above.
#include <benchmark/benchmark.h>
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "bench_support.hpp"
#include "uringcat/uringcat.hpp"

#if URINGCAT_BENCH_ASIO
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#endif

namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using clock_type = std::chrono::steady_clock;  // CLOCK_MONOTONIC, as io_uring's timeouts
namespace ub = uringcat::bench;

// ---------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------

/// One attempt as its method saw it: when it started and when the caller learned the end.
struct outcome {
  clock_type::time_point start{};
  clock_type::time_point observed{};
  bool timed_out = false;
  const char* result = "?";  // static text naming the result ("ECANCELED", "poll=0", ...)
};

const char* errno_name(int err) {
  const char* name = ::strerrorname_np(err);
  return name ? name : "errno?";
}

/// Runs one attempt per iteration and reports the lateness of those that timed out.
template <class Attempt>
void measure(benchmark::State& state, milliseconds timeout, Attempt&& attempt) {
  std::vector<double> lateness_us;
  lateness_us.reserve(static_cast<std::size_t>(state.max_iterations));
  std::map<std::string, long> results;
  long timed_out = 0, total = 0, early = 0;
  for (auto _ : state) {
    const outcome o = attempt();
    ++total;
    ++results[o.result];
    if (!o.timed_out) continue;
    ++timed_out;
    const double late = ub::us_between(o.observed, o.start + timeout);
    if (late < 0) ++early;
    lateness_us.push_back(late);
  }
  ub::set_lateness_counters(state, lateness_us);
  state.counters["timed_out_pct"] =
      total ? 100.0 * static_cast<double>(timed_out) / static_cast<double>(total) : 0.0;
  state.counters["unexpected"] = static_cast<double>(total - timed_out);
  state.counters["early"] = static_cast<double>(early);
  std::string label;  // every result seen, e.g. "EINPROGRESS x200"
  for (const auto& [name, n] : results)
    label += (label.empty() ? "" : ", ") + name + " x" + std::to_string(n);
  state.SetLabel(label);
}

/// One black hole per benchmark family (method), made on first use and kept for the run:
/// each costs ~100 ms to fill, and SYNs to it are dropped for as long as it lives.
ub::loopback_black_hole& black_hole(const std::string& family) {
  static std::map<std::string, std::unique_ptr<ub::loopback_black_hole>> holes;
  auto& hole = holes[family];
  if (!hole) hole = std::make_unique<ub::loopback_black_hole>();
  return *hole;
}

int tcp_socket(int extra_flags) {
  return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | extra_flags, IPPROTO_TCP);
}

/// An open descriptor closed at scope exit.
struct fd_guard {
  int fd;
  explicit fd_guard(int f) noexcept : fd(f) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

// ---------------------------------------------------------------------------------------
// uringcat
// ---------------------------------------------------------------------------------------

uringcat::task<outcome> uringcat_connect(uringcat::io_context& io, const uringcat::endpoint& ep,
                                         milliseconds timeout) {
  uringcat::tcp_client client(io);
  outcome o;
  o.start = clock_type::now();
  const std::error_code ec = co_await client.try_connect(ep, timeout);
  o.observed = clock_type::now();
  o.timed_out = ec == std::errc::timed_out;
  o.result = ec ? (o.timed_out ? "timed_out" : errno_name(ec.value())) : "connected";
  co_return o;
}

void bm_uringcat(benchmark::State& state, milliseconds timeout) {
  const auto ep = uringcat::endpoint::parse(black_hole("uringcat").address());
  uringcat::io_context io;
  measure(state, timeout, [&] { return io.run(uringcat_connect(io, ep, timeout)); });
}

// ---------------------------------------------------------------------------------------
// raw liburing: CONNECT linked to an absolute LINK_TIMEOUT
// ---------------------------------------------------------------------------------------

void bm_raw_liburing(benchmark::State& state, milliseconds timeout) {
  sockaddr_storage ss{};
  const socklen_t len = black_hole("raw_liburing").sockaddr_of(ss);
  // uringcat's flag sets and fallbacks (io_context.cpp), minus R_DISABLED: this thread
  // creates the ring and is the one that submits.
  constexpr unsigned base = IORING_SETUP_CQSIZE;
  const unsigned attempts[] = {
      base | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
      base | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
      base,
  };
  io_uring ring{};
  int r = -EINVAL;
  for (unsigned flags : attempts) {
    io_uring_params p{};
    p.flags = flags;
    p.cq_entries = 32768;
    r = io_uring_queue_init_params(256, &ring, &p);
    if (r != -EINVAL) break;
  }
  if (r != 0) return state.SkipWithError("io_uring_queue_init_params failed");

  enum : std::uint64_t { connect_tag = 1, timeout_tag = 2 };
  const char* failure = nullptr;
  measure(state, timeout, [&] {
    outcome o;
    o.start = clock_type::now();
    const fd_guard sock(tcp_socket(0));
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>((o.start + timeout).time_since_epoch())
            .count();
    __kernel_timespec ts{ns / 1'000'000'000, ns % 1'000'000'000};
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);  // the ring is empty: two SQEs are free
    io_uring_prep_connect(sqe, sock.fd, reinterpret_cast<sockaddr*>(&ss), len);
    io_uring_sqe_set_data64(sqe, connect_tag);
    sqe->flags |= IOSQE_IO_LINK;
    sqe = io_uring_get_sqe(&ring);
    io_uring_prep_link_timeout(sqe, &ts, IORING_TIMEOUT_ABS);
    io_uring_sqe_set_data64(sqe, timeout_tag);
    // Both CQEs must be reaped before `ts` and the socket go: the linked timeout always ends
    // the pair, so this loop is bounded by the timeout.
    bool connect_seen = false, timeout_seen = false;
    while (!connect_seen || !timeout_seen) {
      const int s = io_uring_submit_and_wait(&ring, 1);
      if (s < 0 && s != -EINTR && s != -EAGAIN && s != -EBUSY) {
        failure = "io_uring_submit_and_wait failed";
        break;
      }
      io_uring_cqe* cqe = nullptr;
      unsigned head = 0, seen = 0;
      io_uring_for_each_cqe(&ring, head, cqe) {
        ++seen;
        if (cqe->user_data == connect_tag) {
          o.observed = clock_type::now();
          o.timed_out = cqe->res == -ECANCELED;
          o.result = cqe->res == 0 ? "connected" : errno_name(-cqe->res);
          connect_seen = true;
        } else if (cqe->user_data == timeout_tag) {
          timeout_seen = true;
        }
      }
      io_uring_cq_advance(&ring, seen);
    }
    return o;
  });
  io_uring_queue_exit(&ring);
  if (failure) state.SkipWithError(failure);
}

// ---------------------------------------------------------------------------------------
// Readiness: poll() (CPython's socket timeout) and epoll_pwait2()
// ---------------------------------------------------------------------------------------

/// Starts a non-blocking connect. Returns true when it is in progress (wait for it).
bool start_nonblocking_connect(outcome& o, int fd, const sockaddr_storage& ss, socklen_t len) {
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&ss), len) == 0) {
    o.observed = clock_type::now();
    o.result = "connected";
    return false;
  }
  if (errno == EINPROGRESS) return true;
  o.observed = clock_type::now();
  o.result = errno_name(errno);
  return false;
}

/// The socket became writable before the deadline: the connect ended (SO_ERROR says how).
void finished_early(outcome& o, int fd) {
  o.observed = clock_type::now();
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  o.result = err == 0 ? "connected" : errno_name(err);
}

void bm_poll(benchmark::State& state, milliseconds timeout) {
  sockaddr_storage ss{};
  const socklen_t len = black_hole("poll").sockaddr_of(ss);
  measure(state, timeout, [&] {
    outcome o;
    o.start = clock_type::now();
    const auto deadline = o.start + timeout;
    const fd_guard sock(tcp_socket(SOCK_NONBLOCK));
    if (!start_nonblocking_connect(o, sock.fd, ss, len)) return o;
    for (;;) {
      // CPython (sock_call_ex / internal_select): interval = deadline - now; negative is a
      // timeout; else poll() for the interval rounded UP to ms; 0 ready is a timeout.
      const auto interval = deadline - clock_type::now();
      if (interval < interval.zero()) {
        o.observed = clock_type::now();
        o.timed_out = true;
        o.result = "deadline passed";
        return o;
      }
      const auto ms = std::chrono::ceil<milliseconds>(interval);
      pollfd p{sock.fd, POLLOUT | POLLERR, 0};
      const int n = ::poll(&p, 1, static_cast<int>(ms.count()));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        o.observed = clock_type::now();
        o.result = errno_name(errno);
        return o;
      }
      if (n == 0) {
        o.observed = clock_type::now();
        o.timed_out = true;
        o.result = "poll=0";
        return o;
      }
      finished_early(o, sock.fd);
      return o;
    }
  });
}

void bm_epoll_pwait2(benchmark::State& state, milliseconds timeout) {
  sockaddr_storage ss{};
  const socklen_t len = black_hole("epoll_pwait2").sockaddr_of(ss);
  const fd_guard ep(::epoll_create1(EPOLL_CLOEXEC));
  if (ep.fd < 0) return state.SkipWithError("epoll_create1 failed");
  measure(state, timeout, [&] {
    outcome o;
    o.start = clock_type::now();
    const auto deadline = o.start + timeout;
    const fd_guard sock(tcp_socket(SOCK_NONBLOCK));
    if (!start_nonblocking_connect(o, sock.fd, ss, len)) return o;
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.fd = sock.fd;
    if (::epoll_ctl(ep.fd, EPOLL_CTL_ADD, sock.fd, &ev) != 0) {
      o.observed = clock_type::now();
      o.result = errno_name(errno);
      return o;
    }
    for (;;) {  // closing the socket removes it from the epoll set
      const auto remaining = deadline - clock_type::now();
      if (remaining <= remaining.zero()) {
        o.observed = clock_type::now();
        o.timed_out = true;
        o.result = "deadline passed";
        return o;
      }
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(remaining).count();
      const timespec ts{static_cast<time_t>(ns / 1'000'000'000),
                        static_cast<long>(ns % 1'000'000'000)};
      const int n = ::epoll_pwait2(ep.fd, &ev, 1, &ts, nullptr);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        o.observed = clock_type::now();
        o.result = errno_name(errno);
        return o;
      }
      if (n == 0) {
        o.observed = clock_type::now();
        o.timed_out = true;
        o.result = "epoll_pwait2=0";
        return o;
      }
      finished_early(o, sock.fd);
      return o;
    }
  });
}

// ---------------------------------------------------------------------------------------
// The kernel's own connect timeout: SO_SNDTIMEO on a blocking socket
// ---------------------------------------------------------------------------------------

void bm_so_sndtimeo(benchmark::State& state, milliseconds timeout) {
  sockaddr_storage ss{};
  const socklen_t len = black_hole("so_sndtimeo").sockaddr_of(ss);
  measure(state, timeout, [&] {
    outcome o;
    o.start = clock_type::now();
    const fd_guard sock(tcp_socket(0));
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    const timeval tv{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
    if (::setsockopt(sock.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
      o.observed = clock_type::now();
      o.result = errno_name(errno);
      return o;
    }
    const int r = ::connect(sock.fd, reinterpret_cast<const sockaddr*>(&ss), len);
    const int err = errno;
    o.observed = clock_type::now();
    // Linux (inet_stream_connect): a blocking connect whose SO_SNDTIMEO expires returns
    // -EINPROGRESS and leaves the handshake going; socket(7) also allows EAGAIN.
    o.timed_out = r != 0 && (err == EINPROGRESS || err == EAGAIN);
    o.result = r == 0 ? "connected" : errno_name(err);
    return o;
  });
}

// ---------------------------------------------------------------------------------------
// Boost.Asio: async_connect || steady_timer, C++20 coroutines
// ---------------------------------------------------------------------------------------

#if URINGCAT_BENCH_ASIO
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

asio::awaitable<outcome> asio_connect(asio::ip::tcp::endpoint ep, milliseconds timeout) {
  const auto ex = co_await asio::this_coro::executor;
  outcome o;
  o.start = clock_type::now();
  asio::ip::tcp::socket socket(ex);
  asio::steady_timer timer(ex);
  timer.expires_after(timeout);
  try {
    // `||` waits for the first to *succeed* (wait_for_one_success) and cancels the other.
    const auto which = co_await (socket.async_connect(ep, asio::use_awaitable) ||
                                 timer.async_wait(asio::use_awaitable));
    o.observed = clock_type::now();
    o.timed_out = which.index() == 1;
    o.result = o.timed_out ? "timer won" : "connected";
  } catch (const std::exception&) {
    o.observed = clock_type::now();
    o.result = "exception";
  }
  co_return o;  // the socket closes here
}

void bm_asio(benchmark::State& state, milliseconds timeout) {
  const asio::ip::tcp::endpoint ep(asio::ip::address_v4::loopback(), black_hole("asio").port());
  asio::io_context io(1);
  measure(state, timeout, [&] {
    outcome o;
    o.result = "did not finish";
    asio::co_spawn(io, asio_connect(ep, timeout), [&](std::exception_ptr e, outcome r) {
      if (!e) o = r;
    });
    io.run();
    io.restart();
    return o;
  });
}
#endif

// ---------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------

constexpr milliseconds max_timeout = 60s;  // well inside the kernel's own SYN retry limit

/// "250ms" or "2s" (1 ms .. 60 s); nothing otherwise.
bool parse_timeout(std::string_view text, milliseconds& out) {
  long long n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end == text.data()) return false;
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  if (n <= 0 || n > max_timeout.count()) return false;
  if (unit == "ms") {
    out = milliseconds(n);
  } else if (unit == "s" && n <= 60) {
    out = std::chrono::seconds(n);
  } else {
    return false;
  }
  return true;
}

std::string timeout_name(milliseconds t) {
  return t.count() % 1000 == 0 ? std::to_string(t.count() / 1000) + "s"
                               : std::to_string(t.count()) + "ms";
}

std::int64_t default_iterations(milliseconds t) {
  if (t <= 10ms) return 200;
  if (t <= 100ms) return 50;
  if (t <= 1s) return 10;
  return 3;
}

using method_fn = void (*)(benchmark::State&, milliseconds);

struct method {
  const char* name;
  method_fn fn;
};

constexpr method methods[] = {
    {"uringcat", bm_uringcat},
    {"raw_liburing", bm_raw_liburing},
    {"poll", bm_poll},
    {"epoll_pwait2", bm_epoll_pwait2},
    {"so_sndtimeo", bm_so_sndtimeo},
#if URINGCAT_BENCH_ASIO
    {"asio", bm_asio},
#endif
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<milliseconds> timeouts;
  bool smoke = false;
  std::vector<char*> rest{argv[0]};  // what Google Benchmark gets
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--smoke") {
      smoke = true;
    } else if (arg.starts_with("--timeouts=")) {
      std::string_view list = arg.substr(std::strlen("--timeouts="));
      for (;;) {
        const auto comma = list.find(',');
        const std::string_view item = list.substr(0, comma);
        milliseconds t{};
        if (!parse_timeout(item, t)) {
          std::fprintf(stderr,
                       "connect_timeout: bad timeout '%.*s' in %s\n"
                       "  expected --timeouts=T[,T...] with T like 1ms, 250ms or 2s "
                       "(1 ms to 60 s)\n",
                       static_cast<int>(item.size()), item.data(), argv[i]);
          return 2;
        }
        timeouts.push_back(t);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (timeouts.empty())
    timeouts = smoke ? std::vector<milliseconds>{1ms, 10ms}
                     : std::vector<milliseconds>{1ms, 10ms, 100ms, 1000ms};

  // Grouped by timeout, so that the methods compared at one timeout run close in time.
  for (const milliseconds t : timeouts) {
    for (const method& m : methods) {
      const std::string name = std::string("connect_timeout/") + m.name + "/" + timeout_name(t);
      benchmark::RegisterBenchmark(name.c_str(), m.fn, t)
          ->Iterations(smoke ? 5 : default_iterations(t))
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }

  return uringcat::bench::run_benchmarks(std::move(rest));
}
