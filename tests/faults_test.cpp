// Faults: what the reactor does when the world misbehaves. A completion queue far smaller
// than the work, descriptors exhausted, a peer that resets mid-stream or half-closes, task
// frames outliving their io_context, and deadlines that coincide with completions. Each
// test states the outcome it expects; races assert the set of allowed outcomes and that
// the bytes and connections add up. Loopback only; every loop is bounded in count, and a
// watchdog ends the process if a test hangs.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <dirent.h>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "connected_pair.hpp"
#include "loopback_black_hole.hpp"
#include "test_support.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace std::chrono_literals;
using uringcat::endpoint;
using uringcat::io_context;
using uringcat::io_context_options;
using uringcat::task;
using uringcat::tcp_client;
using uringcat::tcp_listener;
using uringcat::testing::count_open_fds;
using uringcat::testing::make_connected_pair;
using uringcat::testing::raise_nofile;
using clock_type = uringcat::clock;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

std::string text_of(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// Ends the process if the scope is not left within `limit`: a hang is a failure, not a
// stuck CI job.
class watchdog {
 public:
  watchdog(std::chrono::seconds limit, const char* what)
      : thread_([this, limit, what] {
          std::unique_lock lock(mutex_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "watchdog: %s did not finish within %lld s\n", what,
                         static_cast<long long>(limit.count()));
            std::_Exit(124);
          }
        }) {}
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  ~watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the members above exist
};

[[noreturn]] void fail_errno(const char* what) {
  throw std::system_error(errno, std::system_category(), what);
}

// Connected TCP pairs over 127.0.0.1 made with plain blocking syscalls: thousands of idle
// connections without going through the reactor under test. Closes everything it holds.
class raw_tcp_pairs {
 public:
  explicit raw_tcp_pairs(int n) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener_ < 0) fail_errno("socket");
    const endpoint any = endpoint::loopback_v4(0);
    if (::bind(listener_, any.data(), any.size()) != 0) fail_errno("bind");
    if (::listen(listener_, SOMAXCONN) != 0) fail_errno("listen");
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(listener_, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
      fail_errno("getsockname");
    const endpoint ep(reinterpret_cast<const sockaddr*>(&ss), len);
    pairs_.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (c < 0) fail_errno("socket");
      if (::connect(c, ep.data(), ep.size()) != 0) {
        ::close(c);
        fail_errno("connect");
      }
      const int s = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (s < 0) {
        ::close(c);
        fail_errno("accept4");
      }
      pairs_.emplace_back(c, s);
    }
  }
  raw_tcp_pairs(const raw_tcp_pairs&) = delete;
  raw_tcp_pairs& operator=(const raw_tcp_pairs&) = delete;
  ~raw_tcp_pairs() {
    for (auto [c, s] : pairs_) {
      ::close(c);
      ::close(s);
    }
    ::close(listener_);
  }

  int client(std::size_t i) const { return pairs_.at(i).first; }
  int server(std::size_t i) const { return pairs_.at(i).second; }

 private:
  int listener_ = -1;
  std::vector<std::pair<int, int>> pairs_;
};

// Lets the reactor turn for about `d`: a timed recv on a socket nobody writes to.
task<void> pause(tcp_client& idle, std::chrono::microseconds d) {
  std::array<std::byte, 1> b{};
  (void)co_await idle.try_recv(b, d);
}

// A thread that runs action(k) when the steady clock reaches the time point given for round
// k: the other side of a race against a deadline. Rounds run strictly one after another.
class at_time_thread {
 public:
  explicit at_time_thread(std::function<void(int)> action)
      : action_(std::move(action)), thread_([this] { loop(); }) {}
  at_time_thread(const at_time_thread&) = delete;
  at_time_thread& operator=(const at_time_thread&) = delete;
  ~at_time_thread() {
    requested_.store(stop_request, std::memory_order_release);
    requested_.notify_one();
    thread_.join();
  }

  void fire_at(int k, clock_type::time_point at) {
    at_ns_.store(at.time_since_epoch().count(), std::memory_order_relaxed);
    requested_.store(k + 1, std::memory_order_release);
    requested_.notify_one();
  }
  /// Waits (bounded) until round k has run.
  bool wait_done(int k, std::chrono::milliseconds limit) const {
    const auto give_up = clock_type::now() + limit;
    while (done_.load(std::memory_order_acquire) <= k) {
      if (clock_type::now() > give_up) return false;
      std::this_thread::yield();
    }
    return true;
  }

 private:
  static constexpr int stop_request = -1;

  void loop() {
    for (int k = 0;;) {
      requested_.wait(k, std::memory_order_acquire);  // sleeps: the machine may be busy
      if (requested_.load(std::memory_order_acquire) == stop_request) return;
      const clock_type::time_point at(clock_type::duration(at_ns_.load(std::memory_order_relaxed)));
      while (clock_type::now() < at) {
      }
      action_(k);
      done_.store(++k, std::memory_order_release);
    }
  }

  std::function<void(int)> action_;
  std::atomic<clock_type::rep> at_ns_{0};
  std::atomic<int> requested_{0};
  std::atomic<int> done_{0};
  std::thread thread_;  // last
};

// A jitter of -40..+40 us around a deadline, spread deterministically over the rounds.
std::chrono::microseconds jitter(int i) {
  return std::chrono::microseconds((i * 37) % 81 - 40);
}

// ---------------------------------------------------------------------------------------
// 1. Completion queue pressure
// ---------------------------------------------------------------------------------------

// 3,000 timed operations on a ring with a 4-entry SQ and a 16-entry CQ: at most 8 timed
// operations fit in flight, the rest wait in the reactor's FIFO. All share one absolute
// deadline. Runtimes that cancel each expired operation with an ASYNC_CANCEL SQE find no
// free SQE (or CQ room) for the cancels and hang or lose completions; here every operation
// must report timed_out, none before the deadline, and no descriptor may be left behind.
TEST(CqPressure, ThreeThousandDeadlinesExpiringTogetherOnATinyRingAllReportTimedOut) {
  constexpr int connects = 1500;
  constexpr int recvs = 1500;
  if (!raise_nofile(connects + 2 * recvs + 512)) GTEST_SKIP() << "RLIMIT_NOFILE too low";
  const watchdog dog(60s, "CqPressure");
  uringcat::testing::loopback_black_hole hole;
  const endpoint hole_ep = endpoint::parse(hole.address());
  const int fds_before = count_open_fds();

  std::vector<std::error_code> results(connects + recvs);
  std::vector<clock_type::time_point> reported(connects + recvs);
  clock_type::time_point when{};
  std::size_t max_cqes_in_flight = 0;
  {
    raw_tcp_pairs idle(recvs);
    io_context_options tiny;
    tiny.sq_entries = 4;
    tiny.cq_entries = 16;
    io_context io(tiny);
    ASSERT_EQ(io.native_handle()->cq.ring_entries, 16u);
    auto connect_one = [&](std::size_t i) -> task<void> {
      tcp_client c(io);
      results[i] = co_await c.try_connect(hole_ep, uringcat::deadline(when));
      reported[i] = clock_type::now();
      max_cqes_in_flight = std::max(max_cqes_in_flight, io.cqes_in_flight());
    };
    auto recv_one = [&](std::size_t i, int fd) -> task<void> {
      tcp_client c(io, fd);
      std::array<std::byte, 16> buf{};
      auto r = co_await c.try_recv(buf, uringcat::deadline(when));
      reported[i] = clock_type::now();
      results[i] = r ? std::error_code{} : r.error();
      (void)c.release();  // raw_tcp_pairs owns it
      max_cqes_in_flight = std::max(max_cqes_in_flight, io.cqes_in_flight());
    };
    std::vector<task<void>> tasks;
    tasks.reserve(results.size());
    for (std::size_t i = 0; i < static_cast<std::size_t>(connects); ++i)
      tasks.push_back(connect_one(i));
    for (std::size_t i = 0; i < static_cast<std::size_t>(recvs); ++i)
      tasks.push_back(recv_one(connects + i, idle.client(i)));
    when = clock_type::now() + 400ms;  // one absolute deadline, shared by every operation
    io.run(uringcat::when_all(std::move(tasks)));
  }  // the io_context's destructor waits for the kernel to end the 8 it held

  int timed_out = 0;
  std::map<std::string, int> other;
  for (const auto& ec : results) {
    if (ec == std::errc::timed_out)
      ++timed_out;
    else
      ++other[ec ? ec.message() : "success"];
  }
  EXPECT_EQ(timed_out, connects + recvs);
  for (const auto& [what, n] : other) ADD_FAILURE() << n << " operations ended with " << what;
  const auto [first, last] = std::minmax_element(reported.begin(), reported.end());
  EXPECT_GE(*first, when) << "a deadline was reported before it passed";
  EXPECT_LT(*last - when, 2s) << "the last of the simultaneous deadlines was reported "
                              << std::chrono::duration<double, std::milli>(*last - when).count()
                              << " ms late";
  EXPECT_LE(max_cqes_in_flight, 16u) << "more CQEs in flight than the CQ holds";
  EXPECT_EQ(count_open_fds(), fds_before) << "descriptors leaked";
}

// ---------------------------------------------------------------------------------------
// 2. Descriptor exhaustion
// ---------------------------------------------------------------------------------------

int highest_open_fd() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  int highest = -1;
  while (const dirent* e = ::readdir(d)) highest = std::max(highest, std::atoi(e->d_name));
  ::closedir(d);
  return highest;
}

// Takes every descriptor number the process may still open: the soft RLIMIT_NOFILE goes to
// just above the highest open descriptor and every free number below it is filled. The
// destructor gives everything back (limit and descriptors), even when an assertion failed.
class descriptor_exhaustion {
 public:
  descriptor_exhaustion() {
    if (::getrlimit(RLIMIT_NOFILE, &saved_) != 0) fail_errno("getrlimit");
  }
  descriptor_exhaustion(const descriptor_exhaustion&) = delete;
  descriptor_exhaustion& operator=(const descriptor_exhaustion&) = delete;
  ~descriptor_exhaustion() { release(); }

  /// True when no descriptor can be opened any more.
  bool exhaust() {
    const int source = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (source < 0) return false;
    fillers_.push_back(source);
    rlimit low = saved_;
    low.rlim_cur = static_cast<rlim_t>(highest_open_fd()) + 4;  // "a few" free numbers
    if (low.rlim_cur > saved_.rlim_cur) return false;
    if (::setrlimit(RLIMIT_NOFILE, &low) != 0) return false;
    lowered_ = true;
    for (int i = 0; i < 100'000; ++i) {
      const int fd = ::fcntl(source, F_DUPFD_CLOEXEC, 0);
      if (fd < 0) return errno == EMFILE;
      fillers_.push_back(fd);
    }
    return false;
  }

  /// Closes the fillers and restores the limit.
  void release() noexcept {
    for (int fd : fillers_) ::close(fd);
    fillers_.clear();
    if (lowered_) ::setrlimit(RLIMIT_NOFILE, &saved_);
    lowered_ = false;
  }

 private:
  rlimit saved_{};
  bool lowered_ = false;
  std::vector<int> fillers_;
};

// A blocking connect to `ep` from a plain socket: a connection waiting in the accept queue.
int queue_connection(const endpoint& ep) {
  const int fd = ::socket(ep.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail_errno("socket");
  if (::connect(fd, ep.data(), ep.size()) != 0) {
    ::close(fd);
    fail_errno("connect");
  }
  return fd;
}

std::error_code error_of(const uringcat::result<tcp_client>& r) {
  return r ? std::error_code{} : r.error();
}

TEST(DescriptorExhaustion, ConnectReportsTooManyFilesOpenTimedAndUntimed) {
  const watchdog dog(30s, "DescriptorExhaustion");
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  std::error_code timed, untimed;
  {
    descriptor_exhaustion exhausted;
    ASSERT_TRUE(exhausted.exhaust()) << "precondition: could not exhaust descriptors";
    io.run([&]() -> task<void> {
      tcp_client a(io);
      timed = co_await a.try_connect(listener.local_endpoint(), 1s);
      tcp_client b(io);
      untimed = co_await b.try_connect(listener.local_endpoint());
    }());
  }
  EXPECT_EQ(timed, std::errc::too_many_files_open) << timed.message();
  EXPECT_EQ(untimed, std::errc::too_many_files_open) << untimed.message();
}

// A timed accept waits for readiness and then calls accept4(2): EMFILE comes from there,
// and the connection must stay queued (accept4 takes the descriptor number first).
TEST(DescriptorExhaustion, TimedAcceptReportsTooManyFilesOpenAndLeavesTheConnectionQueued) {
  const watchdog dog(30s, "DescriptorExhaustion");
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  const int peer = queue_connection(listener.local_endpoint());
  std::error_code exhausted_ec, later_ec;
  {
    descriptor_exhaustion exhausted;
    ASSERT_TRUE(exhausted.exhaust()) << "precondition: could not exhaust descriptors";
    io.run([&]() -> task<void> { exhausted_ec = error_of(co_await listener.try_accept(1s)); }());
  }
  io.run([&]() -> task<void> { later_ec = error_of(co_await listener.try_accept(1s)); }());
  ::close(peer);
  EXPECT_EQ(exhausted_ec, std::errc::too_many_files_open) << exhausted_ec.message();
  EXPECT_FALSE(later_ec) << "the queued connection was lost: " << later_ec.message();
}

// An untimed accept is one IORING_OP_ACCEPT: the kernel reports EMFILE in the CQE.
TEST(DescriptorExhaustion, UntimedAcceptReportsTooManyFilesOpenAndLeavesTheConnectionQueued) {
  const watchdog dog(30s, "DescriptorExhaustion");
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  const int peer = queue_connection(listener.local_endpoint());
  std::error_code exhausted_ec, later_ec;
  {
    descriptor_exhaustion exhausted;
    ASSERT_TRUE(exhausted.exhaust()) << "precondition: could not exhaust descriptors";
    io.run([&]() -> task<void> { exhausted_ec = error_of(co_await listener.try_accept()); }());
  }
  io.run([&]() -> task<void> { later_ec = error_of(co_await listener.try_accept(1s)); }());
  ::close(peer);
  EXPECT_EQ(exhausted_ec, std::errc::too_many_files_open) << exhausted_ec.message();
  EXPECT_FALSE(later_ec) << "the queued connection was lost: " << later_ec.message();
}

TEST(DescriptorExhaustion, TheSameIoContextConnectsAndAcceptsAgainOnceDescriptorsAreFreed) {
  const watchdog dog(30s, "DescriptorExhaustion");
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  const int fds_before = count_open_fds();
  {
    descriptor_exhaustion exhausted;
    ASSERT_TRUE(exhausted.exhaust()) << "precondition: could not exhaust descriptors";
    std::error_code connect_ec, timed_accept_ec, untimed_accept_ec;
    io.run([&]() -> task<void> {
      tcp_client c(io);
      connect_ec = co_await c.try_connect(listener.local_endpoint(), 1s);
      timed_accept_ec = error_of(co_await listener.try_accept(1ms));  // nothing queued
      untimed_accept_ec = error_of(co_await listener.try_accept());
    }());
    ASSERT_EQ(connect_ec, std::errc::too_many_files_open) << "precondition";
    ASSERT_EQ(timed_accept_ec, std::errc::timed_out) << "precondition";
    ASSERT_EQ(untimed_accept_ec, std::errc::too_many_files_open) << "precondition";
  }
  std::error_code connect_ec, accept_ec, untimed_connect_ec, untimed_accept_ec;
  io.run([&]() -> task<void> {
    tcp_client a(io), b(io);
    auto [r1, e1] = co_await uringcat::when_all(
        [&]() -> task<uringcat::result<tcp_client>> {
          co_return co_await listener.try_accept(2s);
        }(),
        [&]() -> task<std::error_code> {
          co_return co_await a.try_connect(listener.local_endpoint(), 2s);
        }());
    accept_ec = error_of(r1);
    connect_ec = e1;
    auto [r2, e2] = co_await uringcat::when_all(
        [&]() -> task<uringcat::result<tcp_client>> { co_return co_await listener.try_accept(); }(),
        [&]() -> task<std::error_code> {
          co_return co_await b.try_connect(listener.local_endpoint());
        }());
    untimed_accept_ec = error_of(r2);
    untimed_connect_ec = e2;
  }());
  EXPECT_FALSE(connect_ec) << connect_ec.message();
  EXPECT_FALSE(accept_ec) << accept_ec.message();
  EXPECT_FALSE(untimed_connect_ec) << untimed_connect_ec.message();
  EXPECT_FALSE(untimed_accept_ec) << untimed_accept_ec.message();
  EXPECT_EQ(count_open_fds(), fds_before) << "descriptors leaked";
}

// ---------------------------------------------------------------------------------------
// 3. A peer that resets mid-stream
// ---------------------------------------------------------------------------------------

// What the reader saw: the bytes, then its first two results that were not bytes.
struct reset_read {
  std::string bytes;
  std::vector<std::string> ends;
};

std::string describe(uringcat::result<std::size_t> r) {
  if (r) return *r == 0 ? "eof" : "bytes";
  if (r.error() == std::errc::connection_reset) return "connection_reset";
  return r.error().message();
}

task<void> read_until_two_ends(tcp_client& c, uringcat::timeout t, reset_read& out) {
  std::array<std::byte, 4096> buf{};
  for (int i = 0; i < 10'000 && out.ends.size() < 2; ++i) {
    auto r = co_await c.try_recv(buf, t);
    if (r && *r > 0)
      out.bytes += text_of(std::span(buf).first(*r));
    else
      out.ends.push_back(describe(r));
  }
}

// Sends `payload` in pieces through the ring (so the reader runs in between), waits until
// every byte is in the reader's socket or already read, then closes with SO_LINGER {1, 0}:
// an RST, which discards whatever was not delivered yet (that would be TCP's loss, not ours).
task<void> send_then_reset(tcp_client& server, const std::string& payload, int round,
                           const tcp_client& reader_side, const reset_read& reader,
                           tcp_client& idle) {
  std::size_t off = 0;
  for (int piece = 0; off < payload.size(); ++piece) {
    const std::size_t n = std::min(
        payload.size() - off, static_cast<std::size_t>(1 + (round * 131 + piece * 977) % 9000));
    co_await server.send_all(std::string_view(payload).substr(off, n));  // untimed: suspends
    off += n;
  }
  for (int i = 0; i < 2'000; ++i) {  // bounded: at most ~1 s; loopback delivers at once
    int queued = 0;
    if (::ioctl(reader_side.native_handle(), SIOCINQ, &queued) != 0) break;
    if (reader.bytes.size() + static_cast<std::size_t>(queued) >= payload.size()) break;
    co_await pause(idle, 50us);  // lets the reader's completions in
  }
  const linger hard{1, 0};
  ::setsockopt(server.native_handle(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  server.close_now();
}

std::string payload_for(int round) {
  std::string p(static_cast<std::size_t>(1 + (round * 7919) % 60'000), '\0');
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<char>('a' + (i * 7 + round) % 26);
  return p;
}

// Linux keeps received data queued when an RST arrives (tcp_reset() purges only the write
// queue) and tcp_recvmsg() copies queued data before it looks at sk_err; sock_error() then
// clears sk_err, and the socket is shut down for reading, so the next recv says end of
// stream. Hence exactly: every byte, then connection_reset, then eof. An RST carries no FIN,
// so "eof before reset" would mean the reset was lost.
void expect_every_byte_then_reset(uringcat::timeout t) {
  const watchdog dog(60s, "PeerReset");
  io_context io;
  const int fds_before = count_open_fds();
  std::map<std::string, int> endings;
  int lost_rounds = 0;
  io.run([&]() -> task<void> {
    auto spare = co_await make_connected_pair(io);  // its client never receives: for pauses
    for (int round = 0; round < 100; ++round) {
      auto pair = co_await make_connected_pair(io);
      const std::string payload = payload_for(round);
      reset_read got;
      co_await uringcat::when_all(
          read_until_two_ends(pair.client, t, got),
          send_then_reset(pair.server, payload, round, pair.client, got, spare.client));
      std::string ending;
      for (const auto& e : got.ends) ending += e + ";";
      ++endings[ending];
      if (got.bytes != payload) {
        if (++lost_rounds <= 3)
          ADD_FAILURE() << "round " << round << ": received " << got.bytes.size() << " of "
                        << payload.size() << " bytes (ending " << ending << ")";
      }
    }
  }());
  EXPECT_EQ(lost_rounds, 0) << "rounds that lost or changed bytes";
  for (const auto& [ending, n] : endings)
    EXPECT_EQ(ending, "connection_reset;eof;") << n << " of 100 rounds ended that way";
  EXPECT_EQ(count_open_fds(), fds_before) << "descriptors leaked";
}

TEST(PeerReset, TimedRecvGetsEveryByteThenConnectionResetThenEof) {
  expect_every_byte_then_reset(2s);
}

TEST(PeerReset, UntimedRecvGetsEveryByteThenConnectionResetThenEof) {
  expect_every_byte_then_reset(uringcat::no_timeout);
}

// ---------------------------------------------------------------------------------------
// 4. Half-open connections
// ---------------------------------------------------------------------------------------

TEST(HalfOpen, RecvReturnsZeroWhileSendsStillReachAPeerThatShutDownItsWritingSide) {
  const watchdog dog(30s, "HalfOpen");
  io_context io;
  std::vector<std::string> recvs;
  uringcat::transfer_result sent, received;
  bool intact = false;
  std::error_code small_send_ec;
  io.run([&]() -> task<void> {
    auto pair = co_await make_connected_pair(io);
    const int shut = ::shutdown(pair.server.native_handle(), SHUT_WR);  // the peer keeps reading
    EXPECT_EQ(shut, 0);
    std::array<std::byte, 64> buf{};
    recvs.push_back(describe(co_await pair.client.try_recv(buf, 1s)));
    recvs.push_back(describe(co_await pair.client.try_recv(buf)));      // untimed
    recvs.push_back(describe(co_await pair.client.try_recv(buf, 1s)));  // and again
    auto r = co_await pair.client.try_send(std::as_bytes(std::span("ping", 4)), 1s);
    small_send_ec = r ? std::error_code{} : r.error();
    std::vector<std::byte> out(4 << 20);
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>((i * 131) >> 5);
    std::vector<std::byte> in(4 + out.size());
    std::tie(sent, received) = co_await uringcat::when_all(
        [&]() -> task<uringcat::transfer_result> {
          co_return co_await pair.client.try_send_all(out, 10s);
        }(),
        [&]() -> task<uringcat::transfer_result> {
          co_return co_await pair.server.try_recv_exact(in, 10s);
        }());
    intact = text_of(std::span(in).first(4)) == "ping" &&
             std::equal(out.begin(), out.end(), in.begin() + 4);
  }());
  EXPECT_EQ(recvs, (std::vector<std::string>{"eof", "eof", "eof"}));
  EXPECT_FALSE(small_send_ec) << small_send_ec.message();
  EXPECT_TRUE(sent) << sent.error.message();
  EXPECT_TRUE(received) << received.error.message();
  EXPECT_TRUE(intact) << "the half-closed peer did not receive exactly what was sent";
}

// ---------------------------------------------------------------------------------------
// 5. Task frames that outlive their io_context
// ---------------------------------------------------------------------------------------
//
// Through run(), co_await and when_all alone, a task frame is never destroyed while one of
// its operations is in flight: run() returns only when the root task has ended, and a task
// ends only after every task it awaits (when_all waits for all of them, even after one
// threw); run() throws with the task suspended only when nothing is in flight (logic_error)
// or after cancel_everything_and_drain() (the ring failed). What remains reachable is a
// frame started by hand through the public task::handle(), as a user-written "spawn" would
// do: its root returns, run() returns, and the frame keeps operations in flight. The user
// must then destroy the io_context before the frames (the other order leaves a CQE whose
// user_data is the freed awaiter: a documented misuse, not tested here). The tests below
// check that order under ASan: teardown must unhook every awaiter, so that destroying the
// frames afterwards reaches nothing freed, close every descriptor a late CQE carried, and
// leave no buffer the kernel may still write.

task<void> untimed_recv_into(io_context& io, int fd, std::span<std::byte> buf) {
  tcp_client c(io, fd);
  (void)co_await c.try_recv(buf);
}
task<void> timed_recv_on(io_context& io, int fd, std::chrono::microseconds t) {
  tcp_client c(io, fd);
  std::array<std::byte, 16> buf{};
  (void)co_await c.try_recv(buf, t);
}
task<void> timed_send_all_on(io_context& io, int fd, std::span<const std::byte> bytes,
                             std::chrono::microseconds t) {
  tcp_client c(io, fd);
  (void)co_await c.try_send_all(bytes, t);
}
task<void> timed_connect_to(io_context& io, endpoint ep, std::chrono::microseconds t) {
  tcp_client c(io);
  (void)co_await c.try_connect(ep, t);
}
task<void> untimed_accept_on(tcp_listener& listener) {
  auto peer = co_await listener.try_accept();
}

TEST(Teardown, FramesDestroyedAfterTheirIoContextWithOperationsInFlightTouchNothingFreed) {
  const watchdog dog(120s, "Teardown");
  uringcat::testing::loopback_black_hole hole;
  const endpoint hole_ep = endpoint::parse(hole.address());
  const std::vector<std::byte> big(1 << 20, std::byte{'b'});
  const int fds_before = count_open_fds();
  int cycles_with_ops_in_flight = 0;
  int idle_buffers_written = 0;
  for (int cycle = 0; cycle < 128; ++cycle) {
    // Every 8th cycle also holds an untimed recv that nothing completes: teardown must
    // cancel it (that path waits ~55 ms, hence not every cycle).
    const bool with_idle_untimed = cycle % 8 == 0;
    raw_tcp_pairs pairs(5);  // 0 idle untimed recv, 1 data at teardown, 2 timed recvs,
                             // 3 send_all into a full socket, 4 the pause
    const int small = 4096;
    ::setsockopt(pairs.client(3), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::setsockopt(pairs.server(3), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    std::array<std::byte, 64> idle_buf{};
    std::array<std::byte, 64> data_buf{};
    io_context_options tiny;  // 16 CQEs: some of the operations wait in the FIFO
    tiny.sq_entries = 8;
    tiny.cq_entries = 16;
    auto io = std::make_unique<io_context>(tiny);
    auto listener = std::make_unique<tcp_listener>(*io, endpoint::loopback_v4(0));
    int late_peer = -1;
    std::size_t in_flight_at_return = 0;
    task<void> spawned;
    {
      std::vector<task<void>> children;
      children.push_back(untimed_recv_into(*io, ::dup(pairs.client(1)), data_buf));
      if (with_idle_untimed)
        children.push_back(untimed_recv_into(*io, ::dup(pairs.client(0)), idle_buf));
      children.push_back(untimed_accept_on(*listener));
      children.push_back(timed_connect_to(*io, hole_ep, 3ms));
      children.push_back(timed_send_all_on(*io, ::dup(pairs.client(3)), big, 3ms));
      for (int i = 0; i < 6; ++i)
        children.push_back(timed_recv_on(*io, ::dup(pairs.client(2)), 3ms));
      spawned = uringcat::when_all(std::move(children));
    }
    io->run([&]() -> task<void> {
      spawned.handle().resume();  // "spawn": each child runs to its operation and suspends
      tcp_client idle(*io, pairs.client(4));
      co_await pause(idle, 500us);  // one loop turn: the kernel now holds the operations
      (void)idle.release();
      // Completions that arrive while the io_context is torn down, never consumed.
      (void)::send(pairs.server(1), "late", 4, MSG_NOSIGNAL);
      late_peer = queue_connection(listener->local_endpoint());
      in_flight_at_return = io->cqes_in_flight();
    }());
    EXPECT_FALSE(spawned.done());
    if (in_flight_at_return > 0) ++cycles_with_ops_in_flight;
    io.reset();  // first the io_context ...
    if (with_idle_untimed) {
      (void)::send(pairs.server(0), "after", 5, MSG_NOSIGNAL);
      std::this_thread::sleep_for(1ms);
      if (std::any_of(idle_buf.begin(), idle_buf.end(),
                      [](std::byte b) { return b != std::byte{}; }))
        ++idle_buffers_written;
    }
    spawned = {};  // ... then the frames, suspended inside their operations
    listener.reset();
    ::close(late_peer);
  }
  EXPECT_EQ(cycles_with_ops_in_flight, 128) << "precondition: operations were in flight";
  EXPECT_EQ(idle_buffers_written, 0) << "the kernel wrote into a recv buffer after teardown";
  EXPECT_EQ(count_open_fds(), fds_before) << "descriptors leaked";
}

// The closest thing with the public API alone: run() returns while the connects it reported
// timed_out are still being ended by the kernel, and the io_context is destroyed at once.
TEST(Teardown, AnIoContextDestroyedWithAThousandDetachedConnectsInFlightLeaksNothing) {
  constexpr int n = 1000;
  if (!raise_nofile(n + 512)) GTEST_SKIP() << "RLIMIT_NOFILE too low";
  const watchdog dog(120s, "Teardown");
  uringcat::testing::loopback_black_hole hole;
  const endpoint hole_ep = endpoint::parse(hole.address());
  const int fds_before = count_open_fds();
  long timed_out = 0;
  int cycles_with_ops_in_flight = 0;
  for (int cycle = 0; cycle < 128; ++cycle) {
    io_context io;
    auto body = [&]() -> task<std::size_t> {
      auto one = [&]() -> task<void> {
        tcp_client c(io);
        if (co_await c.try_connect(hole_ep, 1ms) == std::errc::timed_out) ++timed_out;
      };
      std::vector<task<void>> tasks;
      tasks.reserve(n);
      for (int i = 0; i < n; ++i) tasks.push_back(one());
      co_await uringcat::when_all(std::move(tasks));
      co_return io.cqes_in_flight();
    };
    if (io.run(body()) > 0) ++cycles_with_ops_in_flight;
  }
  EXPECT_EQ(timed_out, 128L * n);
  EXPECT_GT(cycles_with_ops_in_flight, 0) << "precondition: never torn down with ops in flight";
  EXPECT_EQ(count_open_fds(), fds_before) << "descriptors leaked";
}

// ---------------------------------------------------------------------------------------
// 6. Cancellation racing completion
// ---------------------------------------------------------------------------------------

// Another thread sends each message within +-40 us of the recv's absolute deadline, 2,000
// times. Allowed per round: the message's bytes, or timed_out with the bytes left in the
// socket for the next recv. Nothing lost, nothing twice.
TEST(CancellationRace, RecvWhoseDataArrivesAtItsDeadlineReturnsItOrTimesOutAndLosesNothing) {
  constexpr int rounds = 2000;
  const watchdog dog(60s, "CancellationRace");
  io_context io;
  std::map<std::string, int> outcomes;
  std::string sent, received;
  io.run([&]() -> task<void> {
    auto pair = co_await make_connected_pair(io);
    std::vector<std::string> messages;
    for (int i = 0; i < rounds; ++i) messages.push_back(std::to_string(i) + ";");
    const int server_fd = pair.server.native_handle();
    at_time_thread sender([&](int k) {
      (void)::send(server_fd, messages[k].data(), messages[k].size(), MSG_NOSIGNAL);
    });
    std::array<std::byte, 256> buf{};
    for (int i = 0; i < rounds; ++i) {
      const auto when = clock_type::now() + 200us;
      sender.fire_at(i, when + jitter(i));
      sent += messages[i];
      auto r = co_await pair.client.try_recv(buf, uringcat::deadline(when));
      if (r && *r > 0) {
        ++outcomes["data"];
        received += text_of(std::span(buf).first(*r));
      } else if (!r && r.error() == std::errc::timed_out) {
        ++outcomes["timed_out"];
      } else {
        ++outcomes[describe(r)];
      }
      if (!sender.wait_done(i, 2000ms)) {
        ADD_FAILURE() << "the sender thread stalled";
        break;
      }
      for (int j = 0; j < 10 && received.size() < sent.size(); ++j) {  // what is still queued
        auto rest = co_await pair.client.try_recv(buf, 1s);
        if (!rest || *rest == 0) break;
        received += text_of(std::span(buf).first(*rest));
      }
      if (received != sent) {
        ADD_FAILURE() << "round " << i << ": bytes lost or duplicated";
        break;
      }
    }
  }());
  EXPECT_EQ(received, sent);
  for (const auto& [what, n] : outcomes)
    EXPECT_TRUE(what == "data" || what == "timed_out") << n << " rounds ended with " << what;
  std::printf("recv at its deadline: %d data, %d timed_out\n", outcomes["data"],
              outcomes["timed_out"]);
}

std::byte stream_byte(std::size_t offset) {
  return static_cast<std::byte>((offset * 131 + (offset >> 9)) & 0xff);
}

// A peer thread drains slowly; each send_all gets a deadline between 0.1x and 2x the time
// a send_all of that size was measured to take once the buffers are full. Allowed per call: success
// with every byte, or timed_out having sent fewer. The peer must receive exactly the bytes the
// calls said they sent, in order: a send after the deadline was reported, or a lost one, shows.
TEST(CancellationRace, SendAllWhoseDeadlineFallsNearItsFinishAccountsForEveryByte) {
  constexpr int rounds = 2000;
  constexpr std::size_t chunk = 8192;
  const watchdog dog(60s, "CancellationRace");
  io_context io;
  std::map<std::string, int> outcomes;
  std::size_t stream = 0;  // bytes the send_all calls reported sent
  std::vector<std::byte> peer_got;
  io.run([&]() -> task<void> {
    auto pair = co_await make_connected_pair(io);
    // A small send buffer only: a small receive buffer makes the peer's window updates
    // wait for TCP's persist timer (stalls of ~600 ms), where the race needs a steady pace.
    const int small = 4096;
    ::setsockopt(pair.client.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    const int server_fd = pair.server.native_handle();
    const timeval five_s{5, 0};
    ::setsockopt(server_fd, SOL_SOCKET, SO_RCVTIMEO, &five_s, sizeof five_s);
    std::thread reader([&] {  // bounded: ends at EOF, on error, or after 5 s of silence
      std::array<std::byte, 1024> sink{};
      for (;;) {
        const ssize_t n = ::recv(server_fd, sink.data(), sink.size(), 0);
        if (n <= 0) break;
        peer_got.insert(peer_got.end(), sink.begin(), sink.begin() + n);
        std::this_thread::sleep_for(10us);
      }
    });
    std::vector<std::byte> bytes(chunk);
    auto send_round = [&](clock_type::duration d) -> task<uringcat::transfer_result> {
      for (std::size_t i = 0; i < chunk; ++i) bytes[i] = stream_byte(stream + i);
      auto r = co_await pair.client.try_send_all(bytes, uringcat::deadline(clock_type::now() + d));
      stream += r.bytes;
      co_return r;
    };
    for (int i = 0; i < 30; ++i) {  // fill the socket buffers: measure the steady state
      auto r = co_await send_round(2s);
      if (!r) ADD_FAILURE() << "warm-up send_all failed: " << r.error.message();
    }
    std::vector<clock_type::duration> took;
    for (int i = 0; i < 21; ++i) {
      const auto start = clock_type::now();
      auto r = co_await send_round(2s);
      if (!r) ADD_FAILURE() << "calibration send_all failed: " << r.error.message();
      took.push_back(clock_type::now() - start);
    }
    std::nth_element(took.begin(), took.begin() + 10, took.end());
    const auto typical = took[10];
    for (int i = 0; i < rounds; ++i) {
      auto r = co_await send_round(typical * (1 + i % 20) / 10);
      if (r && r.bytes == chunk)
        ++outcomes["sent"];
      else if (r.error == std::errc::timed_out && r.bytes < chunk)
        ++outcomes["timed_out"];
      else
        ++outcomes[r.error.message() + " after " + std::to_string(r.bytes) + " bytes"];
    }
    ::shutdown(pair.client.native_handle(), SHUT_WR);
    reader.join();
    std::printf("send_all at its deadline (typical %.0f us): %d sent, %d timed_out\n",
                std::chrono::duration<double, std::micro>(typical).count(), outcomes["sent"],
                outcomes["timed_out"]);
  }());
  for (const auto& [what, n] : outcomes)
    EXPECT_TRUE(what == "sent" || what == "timed_out") << n << " rounds ended with " << what;
  ASSERT_EQ(peer_got.size(), stream) << "the peer received a different number of bytes than "
                                        "the send_all calls reported";
  std::size_t first_bad = stream;
  for (std::size_t i = 0; i < stream; ++i)
    if (peer_got[i] != stream_byte(i)) {
      first_bad = i;
      break;
    }
  EXPECT_EQ(first_bad, stream) << "the peer's bytes differ from the stream sent";
}

// Another thread connects within +-40 us of the accept's absolute deadline, 1,500 times.
// Allowed per round: that connection, or timed_out with the connection still queued for
// the next accept. Every connection is accepted exactly once (matched by its port).
TEST(CancellationRace, AcceptWhoseConnectionArrivesAtItsDeadlineTakesItOnceOrLeavesItQueued) {
  constexpr int rounds = 1500;
  const watchdog dog(60s, "CancellationRace");
  io_context io;
  tcp_listener listener(io, endpoint::loopback_v4(0));
  const endpoint ep = listener.local_endpoint();
  const int fds_before = count_open_fds();
  std::vector<int> client_fds(rounds, -1);
  std::vector<int> client_ports(rounds, -1);
  std::map<std::string, int> outcomes;
  int mismatched = 0;
  std::error_code extra;
  {
    at_time_thread connector([&](int k) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return;
      if (::connect(fd, ep.data(), ep.size()) != 0) {
        ::close(fd);
        return;
      }
      sockaddr_in local{};
      socklen_t len = sizeof local;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
      client_fds[k] = fd;
      client_ports[k] = ntohs(local.sin_port);
    });
    io.run([&]() -> task<void> {
      for (int i = 0; i < rounds; ++i) {
        const auto when = clock_type::now() + 200us;
        connector.fire_at(i, when + jitter(i));
        auto r = co_await listener.try_accept(uringcat::deadline(when));
        if (r) {
          ++outcomes["accepted"];
        } else if (r.error() == std::errc::timed_out) {
          ++outcomes["timed_out"];
        } else {
          ++outcomes[r.error().message()];
        }
        if (!connector.wait_done(i, 2000ms) || client_fds[i] < 0) {
          ADD_FAILURE() << "round " << i << ": the connecting thread failed or stalled";
          break;
        }
        if (!r) r = co_await listener.try_accept(1s);  // it must still be queued
        if (!r) {
          ADD_FAILURE() << "round " << i << ": the connection was lost: " << r.error().message();
          break;
        }
        if (r->remote_endpoint()->port() != client_ports[i]) ++mismatched;
        ::close(std::exchange(client_fds[i], -1));
      }
      auto more = co_await listener.try_accept(20ms);  // nothing may be left, or twice
      extra = more ? std::error_code{} : more.error();
    }());
  }
  for (int fd : client_fds)
    if (fd >= 0) ::close(fd);
  EXPECT_EQ(mismatched, 0) << "an accept returned another round's connection";
  EXPECT_EQ(extra, std::errc::timed_out) << "a connection was left over or accepted twice";
  for (const auto& [what, n] : outcomes)
    EXPECT_TRUE(what == "accepted" || what == "timed_out") << n << " rounds ended with " << what;
  std::printf("accept at its deadline: %d accepted, %d timed_out\n", outcomes["accepted"],
              outcomes["timed_out"]);
  EXPECT_EQ(count_open_fds(), fds_before) << "descriptors leaked";
}

}  // namespace
