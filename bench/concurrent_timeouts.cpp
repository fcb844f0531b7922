// concurrent_timeouts: what it costs to have N connect timeouts pending at once, and how late
// they are reported when they all expire together. uringcat against the designs a user would
// otherwise pick, in the same run (DESIGN.md, "Timeouts at scale").
//
// What: N = 1,000 and 10,000 connects, each with its own 1 s timeout, started back to back on
// one thread against the loopback black hole (127.0.0.1, a listener whose accept queue is full,
// so every SYN is dropped; one hole per benchmark family). Methods:
//   connect/uringcat       try_connect(ep, 1s) in N tasks under uringcat::when_all
//   connect/raw_liburing   CONNECT + LINK_TIMEOUT (ABS), the ring flags uringcat uses
//                          (SINGLE_ISSUER | DEFER_TASKRUN | SUBMIT_ALL, CQSIZE 32768), reaped
//                          in a tight loop
//   connect/asio           N co_spawn'ed coroutines, each `co_await (sock.async_connect(...) ||
//                          timer.async_wait(...))`, one io_context (when built with Boost)
//   connect/epoll_timerfd  non-blocking connects in epoll, one timerfd armed for the top of a
//                          binary min-heap of deadlines; the baseline DESIGN.md quotes
// plus the recv comparison: try_recv with a 1 s timeout against raw RECV + LINK_TIMEOUT on
// N = 1,000 and 9,000 idle loopback connections (2N descriptors; the hard limit is 20,000).
//
// Counters, per iteration (averaged over iterations; lateness over every operation of all):
//   wall_ms             iteration start (before the reactor exists) to the last report;
//                       compare with the 1,000 ms timeout. setup_ms: to the last one started.
//   min/p50/p99/max_us  lateness = when the caller learns the result - (its own start + timeout)
//   cpu_ms              user + sys CPU (getrusage) of the whole iteration, setup + wait;
//                       wait_cpu_ms and voluntary_switches: from the last one started to the
//                       last one reported
//   bytes_per_pending   (RSS with all N pending - RSS just before the first one starts, the
//                       reactor already set up) / N. An approximation: RSS moves by whole pages
//                       (4 KiB / N), malloc keeps freed memory (trimmed before each iteration),
//                       and kernel memory (sockets, io_uring requests, epoll items, timers), the
//                       larger part, is not in RSS at all.
//   timed_out_pct       share of operations reported as timed out (100 here)
// The kernel retransmits each SYN after its 1 s initial RTO, so the connect deadlines meet a
// burst of N retransmissions (dropped again): the same for every method.
//
// Run (about 40 s; the machine is shared, so compare only figures from one run):
//   build/bench/concurrent_timeouts --benchmark_out=/tmp/concurrent_timeouts.json
//                                   --benchmark_out_format=json
//   build/bench/concurrent_timeouts --smoke   # N = 100, 50 ms, 1 iteration: what
//                                             # `meson test --benchmark` runs
#include <benchmark/benchmark.h>
#include <liburing.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <exception>
#include <functional>
#include <memory>
#include <queue>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "bench_support.hpp"
#include "uringcat/uringcat.hpp"

#if URINGCAT_BENCH_ASIO
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#endif

namespace {

using namespace std::chrono_literals;
using uringcat::clock;
using uringcat::bench::us_between;
using uringcat::bench::usage;

/// How long past the timeout a method may take before the benchmark gives up on it.
constexpr auto give_up_after = 10s;

struct scale {
  std::size_t n;
  std::chrono::milliseconds timeout;
};

scale scale_of(benchmark::State& state) {
  return {static_cast<std::size_t>(state.range(0)), std::chrono::milliseconds(state.range(1))};
}

double ms_between(clock::time_point later, clock::time_point earlier) {
  return us_between(later, earlier) / 1e3;
}

/// One iteration's measurements: N operations started back to back, each reported once.
struct iteration {
  explicit iteration(std::size_t count) : n(count) {
    lateness_us.reserve(n);  // before the RSS baseline: the harness's memory, not the method's
    ::malloc_trim(0);        // so that memory an earlier run freed does not hide this one's growth
  }

  /// The iteration starts, before the method sets up its reactor.
  void begin() {
    t_begin = clock::now();
    at_begin = usage::now();
  }
  /// The reactor exists and no operation has started: the RSS baseline.
  void baseline() { at_baseline = usage::now(); }
  /// The last operation has been started.
  void all_pending() {
    t_pending = clock::now();
    at_pending = usage::now();
  }
  /// The operation whose deadline is `deadline` is reported to its caller now.
  void report(clock::time_point deadline, bool timed_out) {
    lateness_us.push_back(us_between(clock::now(), deadline));
    if (timed_out) ++timed_out_count;
    if (complete()) {
      t_end = clock::now();
      at_end = usage::now();
    }
  }
  bool complete() const { return lateness_us.size() == n; }

  std::size_t n;
  std::vector<double> lateness_us;
  std::size_t timed_out_count = 0;
  clock::time_point t_begin, t_pending, t_end;
  usage at_begin, at_baseline, at_pending, at_end;
};

/// Sums iterations and sets the counters.
struct totals {
  void add(const iteration& it) {
    lateness_us.insert(lateness_us.end(), it.lateness_us.begin(), it.lateness_us.end());
    expected += it.n;
    timed_out += it.timed_out_count;
    if (!it.complete()) {
      gave_up = true;
      return;
    }
    ++iterations;
    wall_ms += ms_between(it.t_end, it.t_begin);
    setup_ms += ms_between(it.t_pending, it.t_begin);
    cpu_ms += it.at_end.cpu_ms - it.at_begin.cpu_ms;
    wait_cpu_ms += it.at_end.cpu_ms - it.at_pending.cpu_ms;
    switches +=
        static_cast<double>(it.at_end.voluntary_switches - it.at_pending.voluntary_switches);
    bytes_per_pending += static_cast<double>(it.at_pending.rss_kib - it.at_baseline.rss_kib) *
                         1024.0 / static_cast<double>(it.n);
  }

  void publish(benchmark::State& state) {
    if (gave_up) state.SkipWithError("not every operation was reported by timeout + 10 s");
    uringcat::bench::set_lateness_counters(state, lateness_us);
    if (expected > 0) {
      state.counters["timed_out_pct"] =
          100.0 * static_cast<double>(timed_out) / static_cast<double>(expected);
    }
    if (iterations == 0) return;
    const double k = iterations;
    state.counters["wall_ms"] = wall_ms / k;
    state.counters["setup_ms"] = setup_ms / k;
    state.counters["cpu_ms"] = cpu_ms / k;
    state.counters["wait_cpu_ms"] = wait_cpu_ms / k;
    state.counters["voluntary_switches"] = switches / k;
    state.counters["bytes_per_pending"] = bytes_per_pending / k;
  }

  std::vector<double> lateness_us;
  std::size_t expected = 0, timed_out = 0;
  int iterations = 0;
  bool gave_up = false;
  double wall_ms = 0, setup_ms = 0, cpu_ms = 0, wait_cpu_ms = 0, switches = 0;
  double bytes_per_pending = 0;
};

/// Where the connects go: the family's black hole, as each method spells an address.
struct target {
  uringcat::endpoint ep;
  sockaddr_storage addr;
  socklen_t addr_len;
};

timespec to_timespec(clock::time_point t) {
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return {static_cast<std::time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

__kernel_timespec to_kernel_timespec(clock::time_point t) {
  const timespec ts = to_timespec(t);
  return {ts.tv_sec, ts.tv_nsec};
}

/// The ring uringcat sets up on this kernel, for the raw liburing comparisons.
bool init_ring_like_uringcat(io_uring& ring) {
  io_uring_params p{};
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
            IORING_SETUP_DEFER_TASKRUN;
  p.cq_entries = 32768;
  return io_uring_queue_init_params(256, &ring, &p) == 0;
}

// Queues `prep`'s SQE linked to a LINK_TIMEOUT at `at` (never splitting the pair across
// submissions): the classic one-timeout-per-operation design.
template <class Prep>
void queue_linked(io_uring& ring, std::uint64_t user_data, __kernel_timespec& at, Prep prep) {
  if (io_uring_sq_space_left(&ring) < 2) io_uring_submit(&ring);
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  prep(sqe);
  io_uring_sqe_set_data64(sqe, user_data);
  sqe->flags |= IOSQE_IO_LINK;
  io_uring_sqe* t = io_uring_get_sqe(&ring);
  io_uring_prep_link_timeout(t, &at, IORING_TIMEOUT_ABS);
  io_uring_sqe_set_data64(t, 0);
}

// Reaps in a tight loop until every operation reported or `give_up`: on_cqe(index, res) for
// each operation CQE (user_data = index + 1; the linked timeouts' own CQEs are skipped).
template <class OnCqe>
void reap_until_done(io_uring& ring, iteration& it, clock::time_point give_up, OnCqe on_cqe) {
  while (!it.complete() && clock::now() < give_up) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec wait{1, 0};
    io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &wait, nullptr);
    unsigned head = 0, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      if (cqe->user_data == 0 || cqe->user_data == LIBURING_UDATA_TIMEOUT) continue;
      on_cqe(static_cast<std::size_t>(cqe->user_data - 1), cqe->res);
    }
    io_uring_cq_advance(&ring, seen);
  }
}

// --- uringcat: N tasks under one when_all ---------------------------------------------------

// Runs, per iteration, N uringcat tasks on a fresh io_context; make(io, it, i) makes the i-th.
template <class Make>
void run_uringcat(benchmark::State& state, const scale& s, Make make) {
  totals all;
  for (auto _ : state) {
    iteration it(s.n);
    it.begin();
    uringcat::io_context io;
    it.baseline();
    // when_all starts its tasks in order, each until its first suspension, so this one runs
    // once every operation above has been issued (the last SQ batch, < 128 operations, is
    // submitted by the reactor's next turn, inside the wait).
    auto mark_all_pending = [&]() -> uringcat::task<void> {
      it.all_pending();
      co_return;
    };
    std::vector<uringcat::task<void>> tasks;
    tasks.reserve(s.n + 1);
    for (std::size_t i = 0; i < s.n; ++i) tasks.push_back(make(io, it, i));
    tasks.push_back(mark_all_pending());
    // No outer bound needed: every operation carries its own deadline.
    io.run(uringcat::when_all(std::move(tasks)));
    all.add(it);
  }
  all.publish(state);
}

// --- connect: uringcat --------------------------------------------------------------------

uringcat::task<void> connect_once(uringcat::io_context& io, iteration& it,
                                  const uringcat::endpoint& ep, clock::duration timeout) {
  uringcat::tcp_client client(io);
  const auto deadline = clock::now() + timeout;
  const std::error_code ec = co_await client.try_connect(ep, timeout);
  it.report(deadline, ec == std::errc::timed_out);
}

void connect_uringcat(benchmark::State& state, const target& to) {
  const scale s = scale_of(state);
  run_uringcat(state, s, [&](uringcat::io_context& io, iteration& it, std::size_t) {
    return connect_once(io, it, to.ep, s.timeout);
  });
}

// --- connect: raw liburing, CONNECT + LINK_TIMEOUT ----------------------------------------

void connect_raw_liburing(benchmark::State& state, const target& to) {
  const scale s = scale_of(state);
  totals all;
  for (auto _ : state) {
    iteration it(s.n);
    it.begin();
    io_uring ring{};
    if (!init_ring_like_uringcat(ring)) {
      state.SkipWithError("io_uring with SINGLE_ISSUER | DEFER_TASKRUN is unavailable");
      break;
    }
    it.baseline();
    struct pending_connect {
      int fd;
      clock::time_point deadline;
      __kernel_timespec at;  // read by the kernel when the LINK_TIMEOUT is submitted
    };
    std::vector<pending_connect> conns(s.n);
    for (std::size_t i = 0; i < s.n; ++i) {
      pending_connect& c = conns[i];
      c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      c.deadline = clock::now() + s.timeout;
      c.at = to_kernel_timespec(c.deadline);
      if (c.fd < 0) {
        it.report(c.deadline, false);
        continue;
      }
      queue_linked(ring, i + 1, c.at, [&](io_uring_sqe* sqe) {
        io_uring_prep_connect(sqe, c.fd, reinterpret_cast<const sockaddr*>(&to.addr), to.addr_len);
      });
    }
    io_uring_submit(&ring);
    it.all_pending();
    reap_until_done(ring, it, clock::now() + s.timeout + give_up_after,
                    [&](std::size_t i, int res) {
                      pending_connect& c = conns[i];
                      it.report(c.deadline, res == -ECANCELED || res == -ETIME);
                      ::close(c.fd);
                      c.fd = -1;
                    });
    io_uring_queue_exit(&ring);  // cancels whatever a give-up left in flight
    for (const pending_connect& c : conns) {
      if (c.fd >= 0) ::close(c.fd);
    }
    all.add(it);
  }
  all.publish(state);
}

// --- connect: epoll + timerfd + deadline heap ---------------------------------------------

// The classic reactor: the sockets wait in epoll, their deadlines in a binary min-heap, and
// one timerfd is armed for the earliest deadline, so epoll_wait needs no timeout of its own
// (and none of its millisecond rounding). On expiry, every deadline that has passed is
// reported and its socket closed; entries of connects that finished first are dropped lazily.
void connect_epoll_timerfd(benchmark::State& state, const target& to) {
  const scale s = scale_of(state);
  totals all;
  for (auto _ : state) {
    iteration it(s.n);
    it.begin();
    const int epfd = ::epoll_create1(EPOLL_CLOEXEC);
    const int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    constexpr std::uint64_t timer_tag = ~std::uint64_t{0};
    epoll_event timer_event{};
    timer_event.events = EPOLLIN;
    timer_event.data.u64 = timer_tag;
    if (epfd < 0 || tfd < 0 || ::epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &timer_event) != 0) {
      if (tfd >= 0) ::close(tfd);
      if (epfd >= 0) ::close(epfd);
      state.SkipWithError("epoll or timerfd failed");
      break;
    }
    it.baseline();

    struct pending_connect {
      int fd;
      clock::time_point deadline;
    };
    std::vector<pending_connect> conns(s.n);
    using entry = std::pair<clock::time_point, std::size_t>;  // deadline, index into conns
    std::priority_queue<entry, std::vector<entry>, std::greater<>> heap;  // earliest on top

    const auto arm = [&](clock::time_point at) {
      itimerspec spec{};
      spec.it_value = to_timespec(at);  // absolute CLOCK_MONOTONIC, as steady_clock
      ::timerfd_settime(tfd, TFD_TIMER_ABSTIME, &spec, nullptr);
    };
    const auto finish = [&](std::size_t i, bool timed_out) {
      it.report(conns[i].deadline, timed_out);
      ::close(conns[i].fd);  // also leaves the epoll set
      conns[i].fd = -1;
    };
    const auto expire = [&] {
      while (!heap.empty() && heap.top().first <= clock::now()) {
        const std::size_t i = heap.top().second;
        heap.pop();
        if (conns[i].fd >= 0) finish(i, true);
      }
      while (!heap.empty() && conns[heap.top().second].fd < 0) heap.pop();
      if (!heap.empty()) arm(heap.top().first);
    };

    for (std::size_t i = 0; i < s.n; ++i) {
      pending_connect& c = conns[i];
      c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      c.deadline = clock::now() + s.timeout;
      if (c.fd < 0) {
        it.report(c.deadline, false);
        continue;
      }
      if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&to.addr), to.addr_len) == 0 ||
          errno != EINPROGRESS) {
        finish(i, false);  // connected or failed at once
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLOUT;  // writable (connected) or EPOLLERR (failed)
      ev.data.u64 = i;
      ::epoll_ctl(epfd, EPOLL_CTL_ADD, c.fd, &ev);
      heap.emplace(c.deadline, i);
      if (heap.top().second == i) arm(c.deadline);
    }
    it.all_pending();

    // Every wait ends by the timerfd, which holds the earliest pending deadline.
    const auto give_up = clock::now() + s.timeout + give_up_after;
    std::array<epoll_event, 256> events{};
    while (!it.complete() && clock::now() < give_up) {
      const int ready = ::epoll_wait(epfd, events.data(), static_cast<int>(events.size()), -1);
      if (ready < 0 && errno != EINTR) break;
      bool timer_fired = false;
      for (int e = 0; e < ready; ++e) {
        const std::uint64_t tag = events[static_cast<std::size_t>(e)].data.u64;
        if (tag == timer_tag) {
          timer_fired = true;
        } else if (conns[tag].fd >= 0) {
          finish(tag, false);
        }
      }
      if (timer_fired) {
        std::uint64_t expirations = 0;
        [[maybe_unused]] const auto got = ::read(tfd, &expirations, sizeof expirations);
        expire();
      }
    }
    for (const pending_connect& c : conns) {
      if (c.fd >= 0) ::close(c.fd);
    }
    ::close(tfd);
    ::close(epfd);
    all.add(it);
  }
  all.publish(state);
}

// --- connect: Boost.Asio C++20 coroutines -------------------------------------------------

#if URINGCAT_BENCH_ASIO
namespace asio = boost::asio;

asio::awaitable<void> asio_connect_one(asio::ip::tcp::endpoint to,
                                       std::chrono::milliseconds timeout, iteration& it,
                                       int& last_fd) {
  using namespace asio::experimental::awaitable_operators;
  const auto ex = co_await asio::this_coro::executor;
  asio::ip::tcp::socket sock(ex);
  asio::steady_timer timer(ex);
  boost::system::error_code ec;
  sock.open(to.protocol(), ec);
  last_fd = sock.native_handle();
  const auto deadline = clock::now() + timeout;
  timer.expires_at(deadline);
  bool timed_out = false;
  if (!ec) {
    try {
      const auto winner = co_await (sock.async_connect(to, asio::use_awaitable) ||
                                    timer.async_wait(asio::use_awaitable));
      timed_out = winner.index() == 1;
    } catch (const std::exception&) {
      // refused or failed: reported, not timed out
    }
  }
  it.report(deadline, timed_out);
}

bool has_local_port(int fd) {
  sockaddr_in local{};
  socklen_t len = sizeof local;
  return fd >= 0 && ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0 &&
         local.sin_port != 0;
}

// Spawned after the N connects: the io_context runs handlers in order, so by now each has
// issued its connect; the last socket having a local port (bound by connect) confirms it.
asio::awaitable<void> asio_mark_all_pending(iteration& it, const int& last_fd) {
  const auto ex = co_await asio::this_coro::executor;
  for (int turn = 0; turn < 100 && !has_local_port(last_fd); ++turn) {
    co_await asio::post(ex, asio::use_awaitable);
  }
  it.all_pending();
}

void connect_asio(benchmark::State& state, const target& to) {
  const scale s = scale_of(state);
  const asio::ip::tcp::endpoint ep(asio::ip::address_v4::loopback(), to.ep.port());
  totals all;
  for (auto _ : state) {
    iteration it(s.n);
    it.begin();
    asio::io_context ctx(1);
    {
      // Asio creates its reactor (epoll, timerfd, eventfd) at the first socket or timer; bring
      // it up before the RSS baseline, as the other methods do theirs.
      asio::steady_timer warm_timer(ctx);
      asio::ip::tcp::socket warm_socket(ctx);
    }
    it.baseline();
    int last_fd = -1;
    for (std::size_t i = 0; i < s.n; ++i) {
      asio::co_spawn(ctx, asio_connect_one(ep, s.timeout, it, last_fd), asio::detached);
    }
    asio::co_spawn(ctx, asio_mark_all_pending(it, last_fd), asio::detached);
    ctx.run_for(s.timeout + give_up_after);
    all.add(it);
  }
  all.publish(state);
}
#endif  // URINGCAT_BENCH_ASIO

// --- recv on idle connections ---------------------------------------------------------------

/// N idle loopback connections: client ends (where the recvs wait) and the server ends.
struct idle_connections {
  explicit idle_connections(std::size_t n) {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listener, 64) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      if (listener >= 0) ::close(listener);
      return;
    }
    for (std::size_t i = 0; i < n; ++i) {
      const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (c < 0) break;
      if (::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(c);
        break;
      }
      const int server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      clients.push_back(c);
      if (server < 0) break;
      servers.push_back(server);
    }
    ::close(listener);
  }
  idle_connections(const idle_connections&) = delete;
  idle_connections& operator=(const idle_connections&) = delete;
  ~idle_connections() {
    for (int fd : clients) ::close(fd);
    for (int fd : servers) ::close(fd);
  }

  std::vector<int> clients, servers;
};

uringcat::task<void> recv_once(uringcat::io_context& io, iteration& it, int fd,
                               clock::duration timeout) {
  uringcat::tcp_client client(io, fd);
  std::array<std::byte, 64> buffer{};
  const auto deadline = clock::now() + timeout;
  const auto got = co_await client.try_recv(buffer, timeout);
  it.report(deadline, !got && got.error() == std::errc::timed_out);
  (void)client.release();  // the connection is reused by the next iteration
}

void recv_uringcat(benchmark::State& state, const idle_connections& conns) {
  const scale s = scale_of(state);
  run_uringcat(state, s, [&](uringcat::io_context& io, iteration& it, std::size_t i) {
    return recv_once(io, it, conns.clients[i], s.timeout);
  });
}

void recv_raw_liburing(benchmark::State& state, const idle_connections& conns) {
  const scale s = scale_of(state);
  totals all;
  for (auto _ : state) {
    iteration it(s.n);
    it.begin();
    io_uring ring{};
    if (!init_ring_like_uringcat(ring)) {
      state.SkipWithError("io_uring with SINGLE_ISSUER | DEFER_TASKRUN is unavailable");
      break;
    }
    it.baseline();
    struct pending_recv {
      clock::time_point deadline;
      __kernel_timespec at;
      std::array<char, 64> buffer;
    };
    std::vector<pending_recv> recvs(s.n);
    for (std::size_t i = 0; i < s.n; ++i) {
      pending_recv& r = recvs[i];
      r.deadline = clock::now() + s.timeout;
      r.at = to_kernel_timespec(r.deadline);
      queue_linked(ring, i + 1, r.at, [&](io_uring_sqe* sqe) {
        io_uring_prep_recv(sqe, conns.clients[i], r.buffer.data(), r.buffer.size(), 0);
      });
    }
    io_uring_submit(&ring);
    it.all_pending();
    reap_until_done(
        ring, it, clock::now() + s.timeout + give_up_after,
        [&](std::size_t i, int res) { it.report(recvs[i].deadline, res == -ECANCELED); });
    io_uring_queue_exit(&ring);  // before `recvs`, whose buffers a recv in flight points into
    all.add(it);
  }
  all.publish(state);
}

// --- registration ---------------------------------------------------------------------------

using connect_fn = void (*)(benchmark::State&, const target&);
using recv_fn = void (*)(benchmark::State&, const idle_connections&);

/// One black hole per benchmark family, made on its first run and kept for the others.
struct black_hole_family {
  std::unique_ptr<uringcat::bench::loopback_black_hole> hole;
};

void run_connect(benchmark::State& state, black_hole_family& family, connect_fn method) {
  const auto n = static_cast<std::size_t>(state.range(0));
  if (!uringcat::bench::raise_nofile(n + 256)) {
    state.SkipWithError("RLIMIT_NOFILE cannot be raised to N + 256");
    return;
  }
  try {
    if (!family.hole) family.hole = std::make_unique<uringcat::bench::loopback_black_hole>();
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  target to{uringcat::endpoint::parse(family.hole->address()), {}, 0};
  to.addr_len = family.hole->sockaddr_of(to.addr);
  method(state, to);
}

void run_recv(benchmark::State& state, recv_fn method) {
  const auto n = static_cast<std::size_t>(state.range(0));
  if (!uringcat::bench::raise_nofile(2 * n + 256)) {
    state.SkipWithError("RLIMIT_NOFILE cannot be raised to 2N + 256");
    return;
  }
  const idle_connections conns(n);
  if (conns.clients.size() != n || conns.servers.size() != n) {
    state.SkipWithError("could not open N idle loopback connections");
    return;
  }
  method(state, conns);
}

void register_benchmarks(bool smoke) {
  const std::int64_t timeout_ms = smoke ? 50 : 1000;
  const auto configure = [&](benchmark::internal::Benchmark* b, std::vector<std::int64_t> counts) {
    if (smoke) counts = {100};
    for (std::int64_t n : counts) b->Args({n, timeout_ms});
    b->ArgNames({"n", "timeout_ms"});
    b->Iterations(smoke ? 1 : 3)->UseRealTime()->Unit(benchmark::kMillisecond);
  };

  const std::pair<const char*, connect_fn> connects[] = {
    {"connect/uringcat", connect_uringcat},
    {"connect/raw_liburing", connect_raw_liburing},
#if URINGCAT_BENCH_ASIO
    {"connect/asio", connect_asio},
#endif
    {"connect/epoll_timerfd", connect_epoll_timerfd},
  };
  for (const auto& [name, method] : connects) {
    const auto family = std::make_shared<black_hole_family>();
    const connect_fn fn = method;
    configure(benchmark::RegisterBenchmark(
                  name, [family, fn](benchmark::State& state) { run_connect(state, *family, fn); }),
              {1000, 10000});
  }

  const std::pair<const char*, recv_fn> recvs[] = {
      {"recv/uringcat", recv_uringcat},
      {"recv/raw_liburing", recv_raw_liburing},
  };
  for (const auto& [name, method] : recvs) {
    const recv_fn fn = method;
    configure(
        benchmark::RegisterBenchmark(name, [fn](benchmark::State& state) { run_recv(state, fn); }),
        {1000, 9000});
  }
}

}  // namespace

int main(int argc, char** argv) {
  // --smoke: N = 100 and a 50 ms timeout, one iteration, every method (seconds, for CI).
  bool smoke = false;
  std::vector<char*> rest{argv[0]};  // what Google Benchmark gets
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--smoke")
      smoke = true;
    else
      rest.push_back(argv[i]);
  }
  register_benchmarks(smoke);
  return uringcat::bench::run_benchmarks(std::move(rest));
}
