// Ping-pong over loopback TCP: what each client stack costs per request/response round trip,
// and what a deadline on every call adds. A round trip is a 64-byte request and a 64-byte
// response (TCP_NODELAY on both ends); C connections (1, 16, 256) each do their round trips
// back to back, a fixed count per iteration, after one untimed warm-up pass.
//
// The server is the same for every method, so only the client differs: an epoll echo server
// (level-triggered, non-blocking) on its own thread, on 127.0.0.1 with an ephemeral port,
// started per benchmark and joined at its end. The client runs on the benchmark thread.
// This machine has 2 cores, which the server thread and the client share: the client is
// pinned to the first allowed CPU and the server to the last (left to the scheduler, the two
// sometimes shared one core for a whole benchmark, halving its throughput, or sat on one core
// and skipped the cross-core wake-ups, tripling it at C = 1). Absolute figures include the
// server's work and a cross-core wake-up per reply (~40 us at C = 1 on this VM, whatever the
// client); the ratios between methods measured in the same run are what this is for.
//
// Methods, each its own benchmark "pingpong/<method>/<C>" (grouped by C, so the methods
// compared at one C run close in time):
//   uringcat            co_await client.try_send_all(req) then try_recv_exact(resp), no
//                       deadline (direct IORING_OP_SEND / IORING_OP_RECV), C tasks under
//                       when_all on one io_context
//   uringcat_deadline   the same with a 5 s deadline on each call (never hit): the timed path
//                       (send(2) at once, then POLL_ADD + LINK_TIMEOUT and a non-blocking recv)
//   epoll               non-blocking sockets, level-triggered epoll, send(2) / recv(2)
//   raw_liburing        SEND, then RECV on its completion, per connection; the same ring flags
//                       as uringcat (SINGLE_ISSUER | DEFER_TASKRUN | SUBMIT_ALL | CQSIZE)
//   raw_liburing_link_timeout   the same with the RECV linked to an IORING_OP_LINK_TIMEOUT
//                       (5 s, IORING_TIMEOUT_ABS): the floor for a timed operation
//   asio                Boost.Asio C++20 coroutines, async_write / async_read with
//                       use_awaitable, one io_context (with Boost >= 1.81 only)
//
// Counters: rtt_per_s (round trips per second of wall time); p50_us / p99_us (from issuing the
// request to holding the whole response; every round trip is timed, at most 2^20 per
// benchmark kept, evenly strided); cpu_us_per_rtt (CPU time of the client thread per round
// trip, user + system: what the client stack costs, less sensitive to the machine's noise
// than the rate); and for uringcat allocs_per_rtt: heap allocations on the benchmark thread
// per round trip, counted by this binary's global operator new while every connection is in
// its loop (task frames are made before). It must be 0. Not reported for Asio: its recycling
// allocator calls aligned_alloc directly, which operator new cannot see.
//
// Run:
//   build/bench/pingpong                       # all methods, C = 1, 16, 256, ~1 min
//   build/bench/pingpong --smoke               # C = 1 and 16, 200 round trips, 1 iteration
//   build/bench/pingpong --benchmark_out=x.json --benchmark_out_format=json
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "bench_support.hpp"
#include "uringcat/uringcat.hpp"

#if URINGCAT_BENCH_ASIO
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#endif

// ---------------------------------------------------------------------------------------
// Allocation counting: every operator new of this binary, counted on the benchmark thread
// while `counting` is set (thread_local, so the server thread never counts).
// ---------------------------------------------------------------------------------------

namespace alloc_counter {
thread_local bool counting = false;
thread_local std::size_t count = 0;

inline void* allocate(std::size_t n) noexcept {
  if (counting) ++count;
  return std::malloc(n == 0 ? 1 : n);
}

inline void* allocate_aligned(std::size_t n, std::align_val_t a) noexcept {
  if (counting) ++count;
  const auto align = static_cast<std::size_t>(a);
  return std::aligned_alloc(align, (n + align - 1) / align * align);  // a multiple of align
}

// Out of line: inlined into a replaced operator delete, free() would make g++ warn that it
// frees what operator new returned (-Wmismatched-new-delete), which is what we mean here.
[[gnu::noinline]] void release(void* p) noexcept {
  std::free(p);
}
}  // namespace alloc_counter

void* operator new(std::size_t n) {
  if (void* p = alloc_counter::allocate(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return ::operator new(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return alloc_counter::allocate(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return alloc_counter::allocate(n);
}
void* operator new(std::size_t n, std::align_val_t a) {
  if (void* p = alloc_counter::allocate_aligned(n, a)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return ::operator new(n, a);
}
void operator delete(void* p) noexcept {
  alloc_counter::release(p);
}
void operator delete[](void* p) noexcept {
  alloc_counter::release(p);
}
void operator delete(void* p, std::size_t) noexcept {
  alloc_counter::release(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  alloc_counter::release(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  alloc_counter::release(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  alloc_counter::release(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  alloc_counter::release(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  alloc_counter::release(p);
}

namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;  // CLOCK_MONOTONIC, as io_uring's timeouts
namespace ub = uringcat::bench;

constexpr std::size_t message_size = 64;
constexpr auto call_deadline = 5s;  // the timed methods' deadline per call: never reached
constexpr int hard_limit_s = 600;   // no benchmark runs longer; the server gives up then

// What --smoke changes, and where the threads run.
struct config {
  bool smoke = false;
  int iterations = 5;
  int client_cpu = -1;  // -1: not pinned
  int server_cpu = -1;
};
config cfg;

/// Pins the calling thread to `cpu` (nothing when cpu < 0).
void pin_to(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
}

/// The client on the first allowed CPU, the server on the last, when there are two or more.
void choose_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) < 2) return;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    if (cfg.client_cpu < 0) cfg.client_cpu = cpu;
    cfg.server_cpu = cpu;
  }
}

/// Round trips per connection per iteration: ~0.3-1 s per iteration on this machine.
std::size_t round_trips_per_connection(std::size_t conns) {
  if (cfg.smoke) return 200;
  if (conns == 1) return 20'000;
  if (conns <= 16) return 6'000;
  return 600;
}
std::size_t warmup_round_trips() {
  return cfg.smoke ? 10 : 100;
}

// ---------------------------------------------------------------------------------------
// The echo server, the same for every method
// ---------------------------------------------------------------------------------------

/// An epoll echo server on its own thread, on 127.0.0.1 with an ephemeral port. It echoes
/// whatever it reads (the clients send 64 bytes and wait for them). Stopped and joined by
/// the destructor; it also gives up on its own after hard_limit_s.
class echo_server {
 public:
  echo_server() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    stop_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (listener_ < 0 || stop_ < 0 ||
        ::bind(listener_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        ::listen(listener_, 1024) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      error_ = errno;
      return;
    }
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  echo_server(const echo_server&) = delete;
  echo_server& operator=(const echo_server&) = delete;
  ~echo_server() {
    if (thread_.joinable()) {
      const std::uint64_t one = 1;
      if (::write(stop_, &one, sizeof one) != sizeof one) std::abort();  // would never join
      thread_.join();
    }
    if (listener_ >= 0) ::close(listener_);
    if (stop_ >= 0) ::close(stop_);
  }

  /// 0, or the errno that kept the server from starting.
  int error() const noexcept { return error_; }
  std::uint16_t port() const noexcept { return port_; }

 private:
  struct connection {
    int fd;
    bool want_out = false;  // waiting for EPOLLOUT to flush the rest
    std::size_t off = 0;
    std::size_t len = 0;
    std::array<char, 4096> buf;
  };

  void run() {
    ::pthread_setname_np(::pthread_self(), "echo_server");  // for perf report --sort comm
    pin_to(cfg.server_cpu);
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return;  // the clients then see their connections go unanswered
    watch(ep, EPOLL_CTL_ADD, listener_, EPOLLIN, &listener_);
    watch(ep, EPOLL_CTL_ADD, stop_, EPOLLIN, &stop_);
    std::vector<std::unique_ptr<connection>> conns;
    std::array<epoll_event, 256> events{};
    const auto give_up = steady::now() + std::chrono::seconds(hard_limit_s);
    for (bool stop = false; !stop && steady::now() < give_up;) {
      const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
      for (int i = 0; i < n; ++i) {
        void* tag = events[i].data.ptr;
        if (tag == &stop_) {
          stop = true;
        } else if (tag == &listener_) {
          for (int fd;
               (fd = ::accept4(listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
            const int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            conns.push_back(std::make_unique<connection>(connection{fd, false, 0, 0, {}}));
            watch(ep, EPOLL_CTL_ADD, fd, EPOLLIN, conns.back().get());
          }
        } else {
          serve(ep, *static_cast<connection*>(tag));
        }
      }
    }
    for (auto& c : conns)
      if (c->fd >= 0) ::close(c->fd);
    ::close(ep);
  }

  static void watch(int ep, int op, int fd, std::uint32_t events, void* tag) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = tag;
    ::epoll_ctl(ep, op, fd, &ev);
  }

  static void serve(int ep, connection& c) {
    if (c.len == 0) {  // level-triggered: one read per readiness report is enough
      const ssize_t n = ::recv(c.fd, c.buf.data(), c.buf.size(), 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (n <= 0) return drop(ep, c);
      c.off = 0;
      c.len = static_cast<std::size_t>(n);
    }
    while (c.len > 0) {
      const ssize_t n = ::send(c.fd, c.buf.data() + c.off, c.len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        if (!c.want_out) watch(ep, EPOLL_CTL_MOD, c.fd, EPOLLOUT, &c);
        c.want_out = true;
        return;
      }
      if (n < 0) return drop(ep, c);
      c.off += static_cast<std::size_t>(n);
      c.len -= static_cast<std::size_t>(n);
    }
    if (c.want_out) watch(ep, EPOLL_CTL_MOD, c.fd, EPOLLIN, &c);
    c.want_out = false;
  }

  static void drop(int ep, connection& c) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    c.fd = -1;
    c.len = 0;
  }

  int listener_ = -1;
  int stop_ = -1;
  int error_ = 0;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

/// Client descriptors connected to the server, closed at scope exit unless taken.
struct client_fds {
  std::vector<int> fds;
  client_fds() = default;
  client_fds(const client_fds&) = delete;
  client_fds& operator=(const client_fds&) = delete;
  ~client_fds() {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }
};

/// Connects `n` blocking (or non-blocking) clients with TCP_NODELAY. Returns 0 or an errno.
int connect_clients(std::uint16_t port, std::size_t n, bool nonblocking, client_fds& out) {
  if (!uringcat::testing::raise_nofile(2 * n + 256)) return EMFILE;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  out.fds.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno;
    out.fds.push_back(fd);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return errno;
    const int one = 1;
    if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) return errno;
    if (nonblocking && ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) return errno;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------

/// Round-trip times and counts of one benchmark, and the allocation window.
class rtt_log {
 public:
  explicit rtt_log(std::size_t expected_round_trips)
      : stride_(expected_round_trips / max_samples + 1) {
    samples_.reserve(std::min(expected_round_trips, max_samples));
  }

  /// One round trip, from issuing the request to holding the whole response.
  void add(steady::time_point start, steady::time_point end) noexcept {
    if (alloc_counter::counting) ++window_round_trips_;
    if (round_trips_++ % stride_ == 0 && samples_.size() < samples_.capacity())
      samples_.push_back(ub::us_between(end, start));  // within capacity: no allocation
  }

  /// Forgets the warm-up.
  void clear() noexcept {
    samples_.clear();
    round_trips_ = window_round_trips_ = 0;
    alloc_counter::count = 0;
    seconds_ = cpu_seconds_ = 0;
  }

  /// Runs one timed pass.
  template <class Pass>
  void timed(Pass&& pass) {
    const double cpu_start = thread_cpu_seconds();
    const auto start = steady::now();
    pass();
    seconds_ += std::chrono::duration<double>(steady::now() - start).count();
    cpu_seconds_ += thread_cpu_seconds() - cpu_start;
  }

  void report(benchmark::State& state, bool with_allocs) {
    if (seconds_ > 0) state.counters["rtt_per_s"] = static_cast<double>(round_trips_) / seconds_;
    std::sort(samples_.begin(), samples_.end());
    state.counters["p50_us"] = ub::quantile(samples_, 0.50);
    state.counters["p99_us"] = ub::quantile(samples_, 0.99);
    state.counters["round_trips"] = static_cast<double>(round_trips_);
    if (round_trips_ > 0)
      state.counters["cpu_us_per_rtt"] = cpu_seconds_ * 1e6 / static_cast<double>(round_trips_);
    if (with_allocs && window_round_trips_ > 0)
      state.counters["allocs_per_rtt"] =
          static_cast<double>(alloc_counter::count) / static_cast<double>(window_round_trips_);
  }

 private:
  static constexpr std::size_t max_samples = std::size_t{1} << 20;
  std::vector<double> samples_;
  std::size_t stride_;
  std::size_t round_trips_ = 0;
  std::size_t window_round_trips_ = 0;
  double seconds_ = 0;
  double cpu_seconds_ = 0;

  // CPU time of the calling (client) thread, user and system.
  static double thread_cpu_seconds() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }
};

/// Shared by the connections of one pass: the log, the first error, and the allocation
/// window, open while every connection is inside its loop (not while frames are made).
struct pass_state {
  rtt_log& log;
  std::size_t conns;
  std::size_t in_loop = 0;
  std::error_code error{};

  void enter() noexcept {
    if (++in_loop == conns) alloc_counter::counting = true;
  }
  void leave() noexcept {
    if (in_loop-- == conns) alloc_counter::counting = false;
  }
  void fail(std::error_code ec) noexcept {
    if (!error) error = ec;
  }
};

std::string describe(const char* what, int err) {
  return std::string(what) + ": " + std::system_category().message(err);
}

/// Sets up the server and `conns` connected clients, or reports why not.
bool setup(benchmark::State& state, const echo_server& server, std::size_t conns, bool nonblocking,
           client_fds& fds) {
  if (server.error()) {
    state.SkipWithError(describe("echo server", server.error()).c_str());
    return false;
  }
  if (const int err = connect_clients(server.port(), conns, nonblocking, fds)) {
    state.SkipWithError(describe("connect", err).c_str());
    return false;
  }
  return true;
}

/// The warm-up pass, then one timed pass per iteration; reports unless a pass failed.
template <class Pass>
void measure(benchmark::State& state, rtt_log& log, std::error_code& error, bool with_allocs,
             Pass&& pass) {
  pass(warmup_round_trips());
  log.clear();
  const std::size_t round_trips =
      round_trips_per_connection(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    if (!error) log.timed([&] { pass(round_trips); });
    if (error) {
      state.SkipWithError(error.message().c_str());
      break;
    }
  }
  alloc_counter::counting = false;
  if (!error) log.report(state, with_allocs);
}

std::size_t expected_round_trips(std::size_t conns) {
  return conns * round_trips_per_connection(conns) * static_cast<std::size_t>(cfg.iterations);
}

// ---------------------------------------------------------------------------------------
// uringcat, without and with a deadline per call
// ---------------------------------------------------------------------------------------

uringcat::task<void> uringcat_connection(uringcat::tcp_client& client, std::size_t round_trips,
                                         uringcat::timeout t, pass_state& pass) {
  std::array<std::byte, message_size> request{};
  std::array<std::byte, message_size> response{};
  pass.enter();
  for (std::size_t i = 0; i < round_trips && !pass.error; ++i) {
    const auto start = steady::now();
    const uringcat::transfer_result sent = co_await client.try_send_all(request, t);
    if (!sent) {
      pass.fail(sent.error);
      break;
    }
    const uringcat::transfer_result got = co_await client.try_recv_exact(response, t);
    if (!got) {
      pass.fail(got.error);
      break;
    }
    pass.log.add(start, steady::now());
  }
  pass.leave();
}

void uringcat_pingpong(benchmark::State& state, uringcat::timeout t) {
  const auto conns = static_cast<std::size_t>(state.range(0));
  echo_server server;
  client_fds fds;
  if (!setup(state, server, conns, false, fds)) return;
  try {
    uringcat::io_context io;
    std::vector<uringcat::tcp_client> clients;
    clients.reserve(conns);
    for (int& fd : fds.fds) clients.emplace_back(io, std::exchange(fd, -1));
    rtt_log log(expected_round_trips(conns));
    pass_state ps{log, conns};
    measure(state, log, ps.error, true, [&](std::size_t round_trips) {
      std::vector<uringcat::task<void>> tasks;
      tasks.reserve(conns);
      for (auto& c : clients) tasks.push_back(uringcat_connection(c, round_trips, t, ps));
      io.run(uringcat::when_all(std::move(tasks)));
    });
  } catch (const std::exception& e) {
    alloc_counter::counting = false;
    state.SkipWithError(e.what());
  }
}

void BM_uringcat(benchmark::State& state) {
  uringcat_pingpong(state, uringcat::no_timeout);
}
void BM_uringcat_deadline(benchmark::State& state) {
  uringcat_pingpong(state, call_deadline);
}

// ---------------------------------------------------------------------------------------
// epoll
// ---------------------------------------------------------------------------------------

void BM_epoll(benchmark::State& state) {
  const auto conns = static_cast<std::size_t>(state.range(0));
  echo_server server;
  client_fds fds;
  if (!setup(state, server, conns, true, fds)) return;
  const int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return state.SkipWithError(describe("epoll_create1", errno).c_str());
  for (std::size_t i = 0; i < conns; ++i) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fds.fds[i], &ev);
  }
  struct conn_state {
    std::size_t done = 0;
    std::size_t got = 0;
    steady::time_point start{};
    std::array<char, message_size> response{};
  };
  std::vector<conn_state> cs(conns);
  std::vector<epoll_event> events(conns);
  const std::array<char, message_size> request{};
  rtt_log log(expected_round_trips(conns));
  std::error_code error;
  auto fail = [&](int err) { error = std::error_code(err, std::system_category()); };
  // One 64-byte request onto a socket with at most 64 bytes in flight is never short.
  auto send_request = [&](std::size_t i) {
    cs[i].start = steady::now();
    const ssize_t n = ::send(fds.fds[i], request.data(), request.size(), MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(request.size())) fail(n < 0 ? errno : EMSGSIZE);
  };

  measure(state, log, error, false, [&](std::size_t round_trips) {
    for (std::size_t i = 0; i < conns; ++i) {
      cs[i].done = cs[i].got = 0;
      send_request(i);
    }
    std::size_t finished = 0;
    while (finished < conns && !error) {
      const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1000);
      if (n == 0) fail(ETIMEDOUT);  // a second without a reply: the server is gone
      if (n < 0 && errno != EINTR) fail(errno);
      for (int k = 0; k < n && !error; ++k) {
        const std::size_t i = events[k].data.u64;
        conn_state& c = cs[i];
        const ssize_t r = ::recv(fds.fds[i], c.response.data() + c.got, message_size - c.got, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (r <= 0) {
          fail(r == 0 ? ECONNRESET : errno);
          break;
        }
        c.got += static_cast<std::size_t>(r);
        if (c.got < message_size) continue;
        c.got = 0;
        log.add(c.start, steady::now());
        if (++c.done == round_trips)
          ++finished;
        else
          send_request(i);
      }
    }
  });
  ::close(ep);
}

// ---------------------------------------------------------------------------------------
// Raw liburing: SEND then RECV, optionally with the RECV linked to a LINK_TIMEOUT
// ---------------------------------------------------------------------------------------

void raw_liburing_pingpong(benchmark::State& state, bool link_timeout) {
  const auto conns = static_cast<std::size_t>(state.range(0));
  echo_server server;
  client_fds fds;
  if (!setup(state, server, conns, false, fds)) return;
  // The flags uringcat's io_context sets up on this kernel, and its default sizes.
  io_uring ring{};
  io_uring_params p{};
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
            IORING_SETUP_DEFER_TASKRUN;
  p.cq_entries = 32768;
  if (const int r = io_uring_queue_init_params(256, &ring, &p); r != 0)
    return state.SkipWithError(describe("io_uring_queue_init_params", -r).c_str());

  struct conn_state {
    bool receiving = false;
    std::size_t off = 0;
    std::size_t done = 0;
    steady::time_point start{};
    __kernel_timespec deadline{};  // must stay valid until submitted: lives here
    std::array<char, message_size> response{};
  };
  std::vector<conn_state> cs(conns);
  const std::array<char, message_size> request{};
  rtt_log log(expected_round_trips(conns));
  std::error_code error;
  auto fail = [&](int err) {
    if (!error) error = std::error_code(err, std::system_category());
  };

  auto queue = [&](std::size_t i) {
    conn_state& c = cs[i];
    const bool timed = link_timeout && c.receiving;
    if (io_uring_sq_space_left(&ring) < (timed ? 2u : 1u)) io_uring_submit(&ring);
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (c.receiving)
      io_uring_prep_recv(sqe, fds.fds[i], c.response.data() + c.off, message_size - c.off, 0);
    else
      io_uring_prep_send(sqe, fds.fds[i], request.data() + c.off, message_size - c.off,
                         MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, i + 1);
    if (timed) {
      sqe->flags |= IOSQE_IO_LINK;
      io_uring_sqe* t = io_uring_get_sqe(&ring);
      io_uring_prep_link_timeout(t, &c.deadline, IORING_TIMEOUT_ABS);
      io_uring_sqe_set_data64(t, 0);  // its own CQE (-ECANCELED when the RECV won) is ignored
    }
  };
  auto start_round_trip = [&](std::size_t i) {
    cs[i].start = steady::now();
    queue(i);
  };

  measure(state, log, error, false, [&](std::size_t round_trips) {
    for (std::size_t i = 0; i < conns; ++i) {
      cs[i].done = cs[i].off = 0;
      cs[i].receiving = false;
      start_round_trip(i);
    }
    std::size_t finished = 0;
    while (finished < conns && !error) {
      const int r = io_uring_submit_and_wait(&ring, 1);
      if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) fail(-r);
      unsigned head = 0;
      unsigned seen = 0;
      io_uring_cqe* cqe = nullptr;
      io_uring_for_each_cqe(&ring, head, cqe) {
        ++seen;
        if (cqe->user_data == 0) continue;  // a linked timeout's own CQE
        const std::size_t i = cqe->user_data - 1;
        conn_state& c = cs[i];
        if (cqe->res <= 0) {  // -ECANCELED: the 5 s linked timeout fired
          fail(cqe->res == 0 ? ECONNRESET : -cqe->res);
          continue;
        }
        c.off += static_cast<std::size_t>(cqe->res);
        if (c.off < message_size) {
          queue(i);  // the rest, under the same deadline
          continue;
        }
        c.off = 0;
        if (!c.receiving) {
          c.receiving = true;
          if (link_timeout) {
            const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                (steady::now() + call_deadline).time_since_epoch())
                                .count();
            c.deadline = {ns / 1'000'000'000, ns % 1'000'000'000};
          }
          queue(i);
          continue;
        }
        c.receiving = false;
        log.add(c.start, steady::now());
        if (++c.done == round_trips)
          ++finished;
        else
          start_round_trip(i);
      }
      io_uring_cq_advance(&ring, seen);
    }
  });
  io_uring_queue_exit(&ring);  // (after an error, unfinished requests end with their sockets)
}

void BM_raw_liburing(benchmark::State& state) {
  raw_liburing_pingpong(state, false);
}
void BM_raw_liburing_link_timeout(benchmark::State& state) {
  raw_liburing_pingpong(state, true);
}

// ---------------------------------------------------------------------------------------
// Boost.Asio C++20 coroutines
// ---------------------------------------------------------------------------------------

#if URINGCAT_BENCH_ASIO
namespace asio = boost::asio;

asio::awaitable<void> asio_connection(asio::ip::tcp::socket& socket, std::size_t round_trips,
                                      pass_state& pass) {
  std::array<std::byte, message_size> request{};
  std::array<std::byte, message_size> response{};
  pass.enter();
  try {
    for (std::size_t i = 0; i < round_trips && !pass.error; ++i) {
      const auto start = steady::now();
      co_await asio::async_write(socket, asio::buffer(request), asio::use_awaitable);
      co_await asio::async_read(socket, asio::buffer(response), asio::use_awaitable);
      pass.log.add(start, steady::now());
    }
  } catch (const boost::system::system_error& e) {
    pass.fail(e.code());
  }
  pass.leave();
}

void BM_asio(benchmark::State& state) {
  const auto conns = static_cast<std::size_t>(state.range(0));
  echo_server server;
  client_fds fds;
  if (!setup(state, server, conns, false, fds)) return;
  try {
    asio::io_context ctx(1);
    std::vector<asio::ip::tcp::socket> sockets;
    sockets.reserve(conns);
    for (int& fd : fds.fds) sockets.emplace_back(ctx, asio::ip::tcp::v4(), std::exchange(fd, -1));
    rtt_log log(expected_round_trips(conns));
    pass_state ps{log, conns};
    measure(state, log, ps.error, false, [&](std::size_t round_trips) {
      for (auto& s : sockets)
        asio::co_spawn(ctx, asio_connection(s, round_trips, ps), [&](std::exception_ptr e) {
          if (e) ps.fail(std::make_error_code(std::errc::io_error));  // (not from I/O errors)
        });
      ctx.run();
      ctx.restart();
    });
  } catch (const std::exception& e) {
    alloc_counter::counting = false;
    state.SkipWithError(e.what());
  }
}
#endif

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest{argv[0]};  // what Google Benchmark gets
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--smoke")
      cfg.smoke = true;
    else
      rest.push_back(argv[i]);
  }
  if (cfg.smoke) cfg.iterations = 1;
  choose_cpus();
  pin_to(cfg.client_cpu);

  struct method {
    const char* name;
    void (*fn)(benchmark::State&);
  };
  const std::vector<method> methods = {
    {"pingpong/uringcat", BM_uringcat},
    {"pingpong/uringcat_deadline", BM_uringcat_deadline},
    {"pingpong/epoll", BM_epoll},
    {"pingpong/raw_liburing", BM_raw_liburing},
    {"pingpong/raw_liburing_link_timeout", BM_raw_liburing_link_timeout},
#if URINGCAT_BENCH_ASIO
    {"pingpong/asio", BM_asio},
#endif
  };
  // Grouped by C, so that the methods compared at one C run close in time.
  const std::vector<long> conns =
      cfg.smoke ? std::vector<long>{1, 16} : std::vector<long>{1, 16, 256};
  for (long c : conns)
    for (const method& m : methods)
      benchmark::RegisterBenchmark(m.name, m.fn)
          ->Arg(c)
          ->Iterations(cfg.iterations)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);

  return uringcat::bench::run_benchmarks(std::move(rest));
}
