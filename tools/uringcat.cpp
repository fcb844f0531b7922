// uringcat: a netcat on io_uring, built on the uringcat library. tools/uringcat.1 is the
// manual; tools/cli.hpp parses the command line. Everything runs on one ring and one thread:
// each direction of a connection is a coroutine (stdin -> socket, socket -> stdout), and the
// session ends when both have ended (as in ncat), or at once on an error or the idle timeout.
#include <dirent.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli.hpp"
#include "uringcat/uringcat.hpp"

namespace {

using namespace uringcat;
using namespace std::chrono_literals;
namespace cli = uringcat::cli;

constexpr std::size_t buffer_size = 256 * 1024;  // per direction; see bench/README.md
constexpr unsigned scan_cq_entries = 65536;      // the kernel's largest CQ (IORING_MAX_CQ_ENTRIES)

double seconds(clock::duration d) {
  return std::chrono::duration<double>(d).count();
}
double millis(clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// --- messages ------------------------------------------------------------------------------

// stderr only: stdout carries data. Errors are one line "uringcat: ..."; -v log lines are
// "[uringcat (pid)] ...", as the seed client logs.
class logger {
 public:
  logger(int verbosity, bool quiet) : verbosity_(quiet ? 0 : verbosity), quiet_(quiet) {}

  bool verbose() const noexcept { return verbosity_ >= 1; }
  bool debugging() const noexcept { return verbosity_ >= 2; }

  [[gnu::format(printf, 2, 3)]] void info(const char* fmt, ...) const {
    if (!verbose()) return;
    va_list args;
    va_start(args, fmt);
    line("[uringcat (%d)] ", fmt, args);
    va_end(args);
  }
  [[gnu::format(printf, 2, 3)]] void debug(const char* fmt, ...) const {
    if (!debugging()) return;
    va_list args;
    va_start(args, fmt);
    line("[uringcat (%d)] ", fmt, args);
    va_end(args);
  }
  [[gnu::format(printf, 2, 3)]] void error(const char* fmt, ...) const {
    if (quiet_) return;
    va_list args;
    va_start(args, fmt);
    line("uringcat: ", fmt, args);
    va_end(args);
  }

 private:
  static void line(const char* prefix, const char* fmt, va_list args) {
    char text[1024];
    int n = std::snprintf(text, sizeof text, prefix, static_cast<int>(::getpid()));
    if (n < 0) n = 0;
    const int m = std::vsnprintf(text + n, sizeof text - static_cast<std::size_t>(n), fmt, args);
    std::size_t len = static_cast<std::size_t>(n) + (m < 0 ? 0 : static_cast<std::size_t>(m));
    len = std::min(len, sizeof text - 2);
    text[len++] = '\n';
    // One write(2) per line, so lines from concurrent connections never interleave.
    (void)!::write(STDERR_FILENO, text, len);
  }

  int verbosity_;
  bool quiet_;
};

std::string describe(std::error_code ec) {
  if (ec == std::errc::connection_refused) return "refused";
  if (ec == std::errc::timed_out) return "timed out";
  return ec.message();
}

int status_for_connect(std::error_code ec) {
  if (ec == std::errc::timed_out) return cli::exit_timed_out;
  if (ec == std::errc::connection_refused || ec == std::errc::network_unreachable ||
      ec == std::errc::host_unreachable)
    return cli::exit_refused;
  return cli::exit_error;
}

std::string host_port(std::string_view host, std::uint16_t port) {
  if (host.find(':') != std::string_view::npos && host.front() != '[')
    return "[" + std::string(host) + "]:" + std::to_string(port);
  return std::string(host) + ":" + std::to_string(port);
}

// --- single-waiter event and async mutex: the tool's only synchronisation ---------------------

// Set once; resumes the one coroutine waiting for it.
class outcome {
 public:
  void set(int status) {
    if (status_) return;
    status_ = status;
    if (waiter_) std::exchange(waiter_, {}).resume();
  }
  bool is_set() const noexcept { return status_.has_value(); }
  auto wait() noexcept {
    struct awaiter {
      outcome& o;
      bool await_ready() const noexcept { return o.status_.has_value(); }
      void await_suspend(std::coroutine_handle<> h) noexcept { o.waiter_ = h; }
      int await_resume() const noexcept { return *o.status_; }
    };
    return awaiter{*this};
  }

 private:
  std::optional<int> status_;
  std::coroutine_handle<> waiter_;
};

// Serialises writes to stdout from concurrent clients (-k), so one client's chunk is never
// split by another's when the pipe takes it in parts.
class async_mutex {
 public:
  auto lock() noexcept {
    struct awaiter {
      async_mutex& m;
      bool await_ready() const noexcept { return !std::exchange(m.locked_, true); }
      void await_suspend(std::coroutine_handle<> h) { m.waiters_.push_back(h); }
      void await_resume() const noexcept {}
    };
    return awaiter{*this};
  }
  void unlock() {
    if (waiters_.empty()) {
      locked_ = false;
      return;
    }
    auto next = waiters_.front();  // ownership passes straight to the next waiter
    waiters_.pop_front();
    next.resume();
  }

 private:
  bool locked_ = false;
  std::deque<std::coroutine_handle<>> waiters_;
};

// --- connecting ------------------------------------------------------------------------------

void log_connect_timeout(const logger& log, std::chrono::nanoseconds timeout) {
  if (!log.verbose()) return;
  const auto syn = read_syn_settings();
  if (!syn) {
    log.info("connect timeout: %g s (kernel max unknown)", seconds(timeout));
    return;
  }
  const auto kernel_max = max_connect_timeout();
  log.info("connect timeout: %g s (kernel max %g s from tcp_syn_retries=%d)", seconds(timeout),
           seconds(kernel_max), syn->syn_retries);
  if (timeout > kernel_max)
    log.info("the kernel gives up first: a connect ends after at most %g s", seconds(kernel_max));
}

struct connect_outcome {
  std::error_code error;
  std::string message;  // the one-line error, when error is set
};

// Resolves o.host on the ring and connects `client` by Happy Eyeballs (RFC 8305: families
// interleaved, a new attempt every 250 ms or as soon as one fails, the first to connect
// wins), all under one deadline. -v logs each attempt as it starts and ends.
task<connect_outcome> connect_host(tcp_client& client, const cli::options& o, const logger& log) {
  const deadline until(clock::now() + o.connect_timeout);
  const std::string target = host_port(o.host, o.port);
  if (!o.source.empty()) {
    auto src = endpoint::try_parse(o.source);
    if (!src) src = endpoint::from_ip(o.source, 0);
    if (!src)
      co_return connect_outcome{std::make_error_code(std::errc::invalid_argument),
                                "invalid source address '" + o.source + "'"};
    client.set_source(*src);
  }
  connect_options options;
  options.resolve = {o.family, o.numeric_only};
  options.on_attempt_start = [&log](const connect_attempt& a) {
    log.info("connecting to %s", a.peer.to_string().c_str());
  };
  options.on_attempt_end = [&log](const connect_attempt& a) {
    const double ms = millis(a.end - a.start);
    if (!a.error) return;  // the winner is logged below, with its source address
    if (a.error == std::errc::operation_canceled)
      log.info("connect to %s: abandoned after %.3f ms (another address connected)",
               a.peer.to_string().c_str(), ms);
    else
      log.info("connect to %s: %s after %.3f ms", a.peer.to_string().c_str(),
               describe(a.error).c_str(), ms);
  };
  const connect_report report =
      co_await client.connect_with_report(o.host, o.port, until, std::move(options));
  if (!report.error) {
    const connect_attempt& won = report.attempts[*report.connected];
    auto local = client.local_endpoint();
    log.info("connected to %s from %s in %.3f ms", won.peer.to_string().c_str(),
             local ? local->to_string().c_str() : "?", millis(won.end - won.start));
    co_return connect_outcome{};
  }
  const std::error_code ec = report.error;
  const std::string timeout_text = cli::format_duration(o.connect_timeout);
  std::string message;
  if (report.attempts.empty()) {  // the name did not resolve, or not in time
    if (ec == std::errc::timed_out)
      message = "connect to " + target + " timed out after " + timeout_text + " while resolving " +
                o.host;
    else if (o.numeric_only)
      message = "'" + o.host + "' is not a numeric address (-n never resolves names)";
    else
      message = "cannot resolve '" + o.host + "': " + ec.message();
  } else if (report.attempts.size() == 1) {
    const std::string peer = report.attempts[0].peer.to_string();
    message = ec == std::errc::timed_out ? "connect to " + peer + " timed out after " + timeout_text
                                         : "connect to " + peer + ": " + ec.message();
  } else if (ec == std::errc::timed_out) {
    message =
        "connect to " + target + " timed out after " + timeout_text + ": " + report.describe();
  } else {
    message = "connect to " + target + " failed: " + report.describe();
  }
  co_return connect_outcome{ec, message};
}

// --- one connection: stdin -> socket and socket -> stdout -----------------------------------
//
// When it ends, as ncat (and nc, and socat) do it: each direction runs until its own end (the
// end of stdin, which half-closes the connection; the peer's end, which is just that: the
// peer may still read), and the session ends when both have. --send-only ends with stdin,
// --recv-only with the peer. An error or the idle timeout ends it at once.

struct session {
  session(io_context& io, const cli::options& o, const logger& log)
      : io(io), o(o), log(log), sock(io) {}

  io_context& io;
  const cli::options& o;
  const logger& log;
  tcp_client sock;
  std::string peer;
  clock::time_point started = clock::now();
  clock::time_point last_activity = clock::now();
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  bool input_done = false;   // stdin ended (and the connection was half-closed) or unused
  bool output_done = false;  // the peer closed its side
  outcome done;

  void touch() noexcept { last_activity = clock::now(); }
  // The deadline of the next wait: the idle timeout after the last traffic (unset without -i).
  deadline idle_due() const noexcept {
    if (!o.idle_timeout) return deadline{};
    return deadline(last_activity + *o.idle_timeout);
  }
  // Whether a wait ended because its idle deadline passed. A timed_out before the deadline
  // is the kernel's own ETIMEDOUT (the peer stopped acknowledging): an I/O error instead.
  static bool waited_out(std::error_code ec, deadline due) noexcept {
    return ec == std::errc::timed_out && due.is_set() && due.expired();
  }
  // After a wait that waited out its deadline: true (and the session ends) when nothing moved
  // either way for the whole idle timeout; false when the other direction had traffic.
  bool idle_expired() {
    if (!o.idle_timeout || clock::now() - last_activity < *o.idle_timeout) return false;
    log.error("idle timeout: no traffic for %s on %s",
              cli::format_duration(*o.idle_timeout).c_str(), peer.c_str());
    done.set(cli::exit_idle);
    return true;
  }
  void direction_ended() {
    if (input_done && (output_done || o.send_only)) done.set(cli::exit_ok);
  }
};

// Reads and discards what the peer has already sent, without waiting: closing a socket with
// unread data makes the kernel send a reset, which would throw away what we sent and the
// peer has not received yet.
// Returns how many bytes it dropped.
std::size_t drain_unread(const tcp_client& sock) noexcept {
  std::byte sink[16384];
  std::size_t dropped = 0;
  for (int i = 0; i < 4096 && sock.is_open(); ++i) {
    const ssize_t n = ::recv(sock.native_handle(), sink, sizeof sink, MSG_DONTWAIT);
    if (n <= 0) break;
    dropped += static_cast<std::size_t>(n);
  }
  return dropped;
}

// --send-only, at the end of stdin (after the half-close): closes only once closing cannot
// lose data. Closing while our bytes are unacknowledged, or while the peer is still sending
// (an echo server answering what we sent), makes the kernel answer the peer's next segment
// with a reset, which drops what was in flight and makes the peer's own send fail. So it
// waits, reading and dropping what the peer sends (copy_socket_to_stdout does), until the
// peer has acknowledged every byte (SIOCOUTQ is 0) and then either closes its side or stays
// quiet for 200 ms, with at most 2 s of waiting after the acknowledgement (ncat quits at once,
// and loses data that way); -i bounds the whole wait.
task<void> linger_until_acknowledged(session& s) {
  constexpr auto quiet = std::chrono::milliseconds(200);
  constexpr auto max_after_ack = std::chrono::seconds(2);
  std::optional<clock::time_point> acknowledged;
  auto wait = std::chrono::microseconds(100);
  for (;;) {
    if (const std::size_t n = drain_unread(s.sock); n > 0) {
      s.received += n;
      s.touch();
    }
    int unacknowledged = 0;
    if (s.output_done || !s.sock.is_open() ||
        ::ioctl(s.sock.native_handle(), SIOCOUTQ, &unacknowledged) != 0)
      break;
    const auto now = clock::now();
    if (unacknowledged == 0) {
      if (!acknowledged) acknowledged = now;
      if (now - s.last_activity >= quiet || now - *acknowledged >= max_after_ack) break;
    }
    if (s.idle_expired()) co_return;
    (void)co_await s.io.try_sleep_for(wait);
    if (s.done.is_set()) co_return;
    wait = std::min<std::chrono::microseconds>(wait * 2, std::chrono::milliseconds(10));
  }
  drain_unread(s.sock);
}

// stdin -> socket. At the end of stdin: half-close (unless --no-shutdown).
task<void> copy_stdin_to_socket(session& s) {
  std::vector<std::byte> buffer(buffer_size);
  stream_descriptor in(s.io, ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3));
  while (in.is_open()) {  // (a closed stdin reads as empty, as in ncat)
    const auto start = clock::now();
    const deadline due = s.idle_due();
    auto n = co_await in.try_read_some(buffer, due);
    if (s.done.is_set()) co_return;
    if (!n && session::waited_out(n.error(), due)) {
      if (s.idle_expired()) co_return;
      continue;
    }
    if (!n) {
      s.log.error("read from stdin: %s", n.error().message().c_str());
      s.done.set(cli::exit_error);
      co_return;
    }
    s.log.debug("read %zu bytes from stdin in %.3f ms", *n, millis(clock::now() - start));
    if (*n == 0) break;
    s.touch();
    const auto send_start = clock::now();
    for (std::size_t offset = 0; offset < *n;) {
      // A send that takes nothing for the idle timeout ends the session, unless the peer
      // sent us something meanwhile (traffic either way counts): then the rest goes on.
      const deadline due = s.idle_due();
      const auto r =
          co_await s.sock.try_send_all(std::span(buffer).subspan(offset, *n - offset), due);
      if (s.done.is_set()) co_return;
      s.sent += r.bytes;
      offset += r.bytes;
      if (r.bytes > 0) s.touch();
      if (session::waited_out(r.error, due)) {
        if (s.idle_expired()) co_return;
        continue;
      }
      if (r.error) {
        s.log.error("send to %s: %s%s", s.peer.c_str(), r.error.message().c_str(),
                    s.output_done ? " (the peer had closed the connection)" : "");
        s.done.set(cli::exit_error);
        co_return;
      }
    }
    s.log.debug("sent %zu bytes in %.3f ms", *n, millis(clock::now() - send_start));
    s.touch();
  }
  s.log.debug("end of stdin after %llu bytes", static_cast<unsigned long long>(s.sent));
  if (!s.o.no_shutdown) {
    const auto ec = co_await s.sock.try_shutdown(SHUT_WR);
    if (s.done.is_set()) co_return;
    if (ec && ec != std::errc::not_connected) {
      s.log.error("shutdown of %s: %s", s.peer.c_str(), ec.message().c_str());
      s.done.set(cli::exit_error);
      co_return;
    }
  }
  if (s.o.send_only) co_await linger_until_acknowledged(s);
  if (s.done.is_set()) co_return;
  s.input_done = true;
  s.direction_ended();
}

// socket -> stdout (or nowhere with --send-only, which still reads so that the peer's data
// never turns our close into a reset, and so that the idle timeout sees its traffic).
task<void> copy_socket_to_stdout(session& s) {
  std::vector<std::byte> buffer(buffer_size);
  std::optional<stream_descriptor> out;
  if (!s.o.send_only) out.emplace(s.io, ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3));
  for (;;) {
    const auto start = clock::now();
    const deadline due = s.idle_due();
    auto n = co_await s.sock.try_recv(buffer, due);
    if (s.done.is_set()) co_return;
    if (!n) {
      if (session::waited_out(n.error(), due)) {
        if (s.idle_expired()) co_return;
        continue;
      }
      s.log.error("receive from %s: %s", s.peer.c_str(), n.error().message().c_str());
      s.done.set(cli::exit_error);
      co_return;
    }
    s.log.debug("received %zu bytes in %.3f ms", *n, millis(clock::now() - start));
    if (*n == 0) break;
    s.received += *n;
    s.touch();
    if (!out) continue;
    const auto r = co_await out->try_write_all(std::span<const std::byte>(buffer).first(*n));
    if (s.done.is_set()) co_return;
    if (r.error == std::errc::broken_pipe) {  // `uringcat ... | head`: the reader has gone
      s.log.info("stdout closed by its reader");
      s.done.set(cli::exit_ok);
      co_return;
    }
    if (r.error) {
      s.log.error("write to stdout: %s", r.error.message().c_str());
      s.done.set(cli::exit_error);
      co_return;
    }
  }
  s.log.debug("%s closed its side", s.peer.c_str());
  s.output_done = true;
  s.direction_ended();
}

// Runs both directions over a connected s.sock until the session ends.
task<int> run_session(session& s) {
  if (auto remote = s.sock.remote_endpoint()) s.peer = remote->to_string();
  if (s.o.idle_timeout) s.log.info("idle timeout: %g s", seconds(*s.o.idle_timeout));
  s.started = clock::now();
  s.touch();
  s.input_done = s.o.recv_only;
  if (!s.o.recv_only) s.io.spawn(copy_stdin_to_socket(s));
  s.io.spawn(copy_socket_to_stdout(s));
  const int status = co_await s.done.wait();
  s.log.info("sent %llu bytes, received %llu bytes in %.3f s",
             static_cast<unsigned long long>(s.sent), static_cast<unsigned long long>(s.received),
             seconds(clock::now() - s.started));
  co_return status;
}

task<int> run_connect(session& s) {
  log_connect_timeout(s.log, s.o.connect_timeout);
  const auto r = co_await connect_host(s.sock, s.o, s.log);
  if (r.error) {
    s.log.error("%s", r.message.c_str());
    co_return status_for_connect(r.error);
  }
  co_return co_await run_session(s);
}

// --- listening -------------------------------------------------------------------------------

// The address to listen on: -l ADDR, else :: (IPv4 too, as ncat) unless -4, falling back to
// 0.0.0.0 where IPv6 is off.
std::optional<endpoint> listen_address(const cli::options& o, const logger& log, bool& v6_only) {
  v6_only = o.family == AF_INET6;
  if (o.host.empty())
    return o.family == AF_INET ? endpoint::any_v4(o.port) : endpoint::any_v6(o.port);
  std::error_code ec;
  auto addresses = resolve(o.host, o.port, {o.family, o.numeric_only}, ec);
  if (ec) {
    log.error("cannot resolve '%s': %s", o.host.c_str(), ec.message().c_str());
    return std::nullopt;
  }
  return addresses.front();
}

std::optional<tcp_listener> open_listener(io_context& io, const cli::options& o,
                                          const logger& log) {
  bool v6_only = false;
  auto address = listen_address(o, log, v6_only);
  if (!address) return std::nullopt;
  listen_options lo;
  lo.v6_only = v6_only;
  try {
    tcp_listener listener(io, *address, lo);
    log.info("listening on %s", listener.local_endpoint().to_string().c_str());
    return listener;
  } catch (const std::system_error& e) {
    if (o.host.empty() && o.family == AF_UNSPEC && address->is_v6() &&
        e.code() == std::errc::address_family_not_supported) {
      tcp_listener listener(io, endpoint::any_v4(o.port), lo);  // IPv6 is off here
      log.info("listening on %s", listener.local_endpoint().to_string().c_str());
      return listener;
    }
    log.error("listen on %s: %s", address->to_string().c_str(), e.code().message().c_str());
    return std::nullopt;
  }
}

task<int> run_listen_once(session& s) {
  auto listener = open_listener(s.io, s.o, s.log);
  if (!listener) co_return cli::exit_error;
  auto peer = co_await listener->try_accept();
  if (!peer) {
    s.log.error("accept: %s", peer.error().message().c_str());
    co_return cli::exit_error;
  }
  s.sock = std::move(*peer);
  listener.reset();  // one connection, as ncat without -k
  if (auto remote = s.sock.remote_endpoint())
    s.log.info("connection from %s", remote->to_string().c_str());
  co_return co_await run_session(s);
}

// -k: every client's data goes to stdout (whole chunks, never interleaved), and stdin is
// broadcast to every client connected when it arrives; at its end every client, and every
// later one, is half-closed (as ncat -k does), unless --no-shutdown. A closed stdout ends it.
struct hub {
  hub(io_context& io, const cli::options& o, const logger& log) : io(io), o(o), log(log) {}

  struct client {
    tcp_client sock;
    std::string peer;
    clock::time_point last_activity = clock::now();
    timeout idle_deadline(const cli::options& o) const noexcept {
      if (!o.idle_timeout) return no_timeout;
      return deadline(last_activity + *o.idle_timeout);
    }
    bool idle(const cli::options& o) const noexcept {
      return o.idle_timeout && clock::now() - last_activity >= *o.idle_timeout;
    }
    void close() noexcept {
      // Wakes a broadcast blocked on this client as well as its own receive.
      if (sock.is_open()) ::shutdown(sock.native_handle(), SHUT_RDWR);
      sock.close_now();
    }
  };

  io_context& io;
  const cli::options& o;
  const logger& log;
  tcp_listener* listener = nullptr;
  std::vector<std::shared_ptr<client>> clients;
  async_mutex stdout_lock;
  std::optional<stream_descriptor> out;
  bool input_ended = false;
  std::optional<int> stopped;  // the exit status, once the server must end
  outcome client_left;         // the acceptor waits on it when out of descriptors

  void remove(const std::shared_ptr<client>& c) {
    if (std::erase(clients, c) == 0) return;
    c->close();
    client_left.set(0);
  }
  void half_close(client& c) const noexcept {
    if (!o.no_shutdown && c.sock.is_open()) ::shutdown(c.sock.native_handle(), SHUT_WR);
  }
  // Ends the server: the pending accept ends with operation_canceled, and the acceptor
  // returns `status`.
  void stop(int status) {
    if (stopped) return;
    stopped = status;
    if (listener) listener->close();
    client_left.set(0);
  }
};

task<void> serve_client(hub& h, std::shared_ptr<hub::client> c) {
  std::vector<std::byte> buffer(64 * 1024);
  std::uint64_t received = 0;
  for (;;) {
    auto n = co_await c->sock.try_recv(buffer, c->idle_deadline(h.o));
    if (!n) {
      if (n.error() == std::errc::timed_out && c->idle(h.o)) {
        h.log.info("idle timeout: no traffic for %s with %s, closing it",
                   cli::format_duration(*h.o.idle_timeout).c_str(), c->peer.c_str());
      } else if (n.error() == std::errc::timed_out && h.o.idle_timeout) {
        continue;  // a broadcast to it moved data meanwhile
      } else if (n.error() != std::errc::operation_canceled) {
        h.log.info("receive from %s: %s", c->peer.c_str(), n.error().message().c_str());
      }
      break;
    }
    if (*n == 0) break;
    received += *n;
    c->last_activity = clock::now();
    if (h.o.send_only) continue;  // read (for -i, and so that closing never resets) and drop
    co_await h.stdout_lock.lock();
    const auto r = co_await h.out->try_write_all(std::span<const std::byte>(buffer).first(*n));
    h.stdout_lock.unlock();
    if (r.error == std::errc::broken_pipe) {  // `uringcat -lk ... | head`: the reader has gone
      h.log.info("stdout closed by its reader");
      h.stop(cli::exit_ok);
      break;
    }
    if (r.error) {
      h.log.error("write to stdout: %s", r.error.message().c_str());
      h.stop(cli::exit_error);
      break;
    }
  }
  h.log.info("%s left after sending %llu bytes", c->peer.c_str(),
             static_cast<unsigned long long>(received));
  h.remove(c);
}

task<void> send_to_client(hub& h, std::shared_ptr<hub::client> c,
                          std::span<const std::byte> bytes) {
  for (;;) {
    const auto r = co_await c->sock.try_send_all(bytes, c->idle_deadline(h.o));
    bytes = bytes.subspan(r.bytes);
    if (r.bytes > 0) c->last_activity = clock::now();
    if (!r.error) co_return;
    if (r.error == std::errc::timed_out && h.o.idle_timeout && !c->idle(h.o)) continue;
    if (r.error == std::errc::timed_out && h.o.idle_timeout)
      h.log.info("idle timeout: %s took no data for %s, closing it", c->peer.c_str(),
                 cli::format_duration(*h.o.idle_timeout).c_str());
    else if (r.error != std::errc::operation_canceled && r.error != std::errc::bad_file_descriptor)
      h.log.info("send to %s: %s", c->peer.c_str(), r.error.message().c_str());
    h.remove(c);
    co_return;
  }
}

task<void> broadcast_stdin(hub& h) {
  std::vector<std::byte> buffer(64 * 1024);
  stream_descriptor in(h.io, ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3));
  while (in.is_open() && !h.stopped) {
    auto n = co_await in.try_read_some(buffer);
    if (!n) h.log.error("read from stdin: %s", n.error().message().c_str());
    if (!n || *n == 0) break;
    std::vector<task<void>> sends;
    for (const auto& c : h.clients)
      sends.push_back(send_to_client(h, c, std::span(buffer).first(*n)));
    co_await when_all(std::move(sends));
  }
  if (h.stopped) co_return;
  h.log.debug("end of stdin; still serving clients");
  h.input_ended = true;
  for (const auto& c : h.clients) h.half_close(*c);
}

task<int> run_listen_many(hub& h) {
  auto listener = open_listener(h.io, h.o, h.log);
  if (!listener) co_return cli::exit_error;
  h.listener = &*listener;
  h.out.emplace(h.io, ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3));
  if (h.o.recv_only)
    h.input_ended = true;
  else
    h.io.spawn(broadcast_stdin(h));
  for (;;) {
    auto peer = co_await listener->try_accept();
    if (h.stopped) co_return *h.stopped;
    if (!peer) {
      // Out of descriptors: keep serving the clients we have, and accept again when one
      // leaves (the pending connections wait in the backlog meanwhile).
      const bool full = peer.error() == std::errc::too_many_files_open ||
                        peer.error() == std::errc::too_many_files_open_in_system;
      if (!full || h.clients.empty()) {
        h.log.error("accept: %s", peer.error().message().c_str());
        co_return cli::exit_error;
      }
      h.log.info("accept: %s; waiting for one of %zu clients to leave",
                 peer.error().message().c_str(), h.clients.size());
      h.client_left = {};  // (a client that left before now made no room for this accept)
      co_await h.client_left.wait();
      if (h.stopped) co_return *h.stopped;
      continue;
    }
    auto c = std::make_shared<hub::client>();
    c->sock = std::move(*peer);
    if (auto remote = c->sock.remote_endpoint()) c->peer = remote->to_string();
    h.log.info("connection from %s (%zu connected)", c->peer.c_str(), h.clients.size() + 1);
    h.clients.push_back(c);
    if (h.input_ended) h.half_close(*c);
    h.io.spawn(serve_client(h, std::move(c)));
  }
}

// --- -z: which ports accept a connection -----------------------------------------------------

enum class port_state : unsigned char { pending, open, refused, timed_out, failed };

struct scan {
  scan(const endpoint& target, const cli::options& o) : target(target), o(o) {}
  const endpoint& target;
  const cli::options& o;
  std::optional<endpoint> source;
  std::vector<port_state> states;
  std::vector<clock::duration> took;
  std::vector<std::error_code> errors;
  std::size_t next = 0;
  std::vector<std::size_t> retry;  // ports a probe could not start for want of a descriptor
  std::size_t running = 0;         // probes running

  bool take(std::size_t& i) {
    if (!retry.empty()) {
      i = retry.back();
      retry.pop_back();
      return true;
    }
    if (next >= states.size()) return false;
    i = next++;
    return true;
  }
};

// One of the probes running at once: takes the next port until none is left. What it finds
// is recorded, and logged only when every port is done: 10,000 results arrive in the same
// millisecond, and a write(2) each would make the later ones late.
task<void> probe_ports(io_context& io, scan& sc) {
  tcp_client client(io);
  if (sc.source) client.set_source(*sc.source);
  std::size_t i = 0;
  while (sc.take(i)) {
    const endpoint probe = sc.target.with_port(static_cast<std::uint16_t>(sc.o.port + i));
    const auto start = clock::now();
    const auto ec = co_await client.try_connect(probe, sc.o.connect_timeout);
    client.close_now();
    if ((ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system) &&
        sc.running > 1) {
      // No descriptor for this probe: another probe will take the port when it is done,
      // and this one stops, so that the scan runs as wide as descriptors allow.
      sc.retry.push_back(i);
      break;
    }
    sc.took[i] = clock::now() - start;
    sc.errors[i] = ec;
    sc.states[i] = !ec                                   ? port_state::open
                   : ec == std::errc::connection_refused ? port_state::refused
                   : ec == std::errc::timed_out          ? port_state::timed_out
                                                         : port_state::failed;
  }
  --sc.running;
}

std::size_t open_descriptors() noexcept {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (const dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n;
}

task<int> run_scan(io_context& io, const cli::options& o, const logger& log) {
  // -z probes the first address of the name (of the -4 / -6 family, if given), as ncat.
  auto addresses =
      co_await try_async_resolve(io, o.host, o.port, o.connect_timeout, {o.family, o.numeric_only});
  if (!addresses) {
    log.error("cannot resolve '%s': %s", o.host.c_str(), addresses.error().message().c_str());
    co_return addresses.error() == std::errc::timed_out ? cli::exit_timed_out : cli::exit_error;
  }
  const endpoint target = addresses->front();
  const std::size_t ports = std::size_t(o.port_last) - o.port + 1;
  scan sc{target, o};
  sc.states.assign(ports, port_state::pending);
  sc.took.resize(ports);
  sc.errors.resize(ports);
  if (!o.source.empty()) {
    sc.source = endpoint::from_ip(o.source, 0);
    if (!sc.source) {
      log.error("invalid source address '%s'", o.source.c_str());
      co_return cli::exit_error;
    }
  }
  // As many probes at once as free descriptors allow (each holds one while it waits), and
  // no more than the ring carries at once (a timed connect needs 2 CQEs): a probe queued for
  // ring room would spend its timeout before its SYN leaves.
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  const std::size_t used = open_descriptors() + 8;  // (+ the ring's and c-ares's spares)
  const std::size_t free_fds = lim.rlim_cur > used ? lim.rlim_cur - used : 1;
  const std::size_t workers =
      std::max<std::size_t>(1, std::min<std::size_t>({ports, free_fds, scan_cq_entries / 2 - 64}));
  log.info("probing %zu port%s of %s, %zu at a time, connect timeout %s", ports,
           ports == 1 ? "" : "s", target.to_string().c_str(), workers,
           cli::format_duration(o.connect_timeout).c_str());
  std::vector<task<void>> probes;
  probes.reserve(workers);
  sc.running = workers;
  for (std::size_t w = 0; w < workers; ++w) probes.push_back(probe_ports(io, sc));
  const auto start = clock::now();
  co_await when_all(std::move(probes));
  bool any_open = false;
  const std::string address = target.address_string();
  std::size_t counts[5] = {};
  for (std::size_t i = 0; i < ports; ++i) {
    const auto port = static_cast<unsigned>(o.port + i);
    ++counts[static_cast<int>(sc.states[i])];
    if (sc.states[i] == port_state::open) {
      any_open = true;
      std::printf("%s %u open\n", address.c_str(), port);
    }
    const std::string what = sc.states[i] == port_state::open ? "open" : describe(sc.errors[i]);
    if (log.debugging())
      log.debug("%s %u %s after %.3f ms", address.c_str(), port, what.c_str(), millis(sc.took[i]));
    else if (sc.states[i] != port_state::open)
      log.info("%s %u %s", address.c_str(), port, what.c_str());
  }
  std::fflush(stdout);
  log.info("%zu open, %zu refused, %zu timed out, %zu failed in %.3f s", counts[1], counts[2],
           counts[3], counts[4], seconds(clock::now() - start));
  co_return any_open ? cli::exit_ok : cli::exit_error;
}

// Raises the soft descriptor limit to the hard one: -z and -k hold one per connection.
void raise_descriptor_limit() noexcept {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
}

}  // namespace

int main(int argc, char** argv) {
  // A closed stdin, stdout or stderr reads as empty / discards, as /dev/null would: otherwise
  // the ring or a socket would take its number and be read or written as if it were one.
  for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      const int null = ::open("/dev/null", fd == STDIN_FILENO ? O_RDONLY : O_WRONLY);
      if (null >= 0 && null != fd) {  // (lower numbers are open, so it landed on fd)
        ::dup2(null, fd);
        ::close(null);
      }
    }
  }
  std::vector<std::string_view> args(argv + 1, argv + argc);
  auto parsed = cli::parse_args(args);
  if (auto* e = std::get_if<cli::parse_error>(&parsed)) {
    std::fprintf(stderr, "uringcat: %s; see 'uringcat --help'\n", e->message.c_str());
    return cli::exit_usage;
  }
  const cli::options& o = std::get<cli::options>(parsed);
  if (o.run_mode == cli::mode::help) {
    std::fwrite(cli::usage_text().data(), 1, cli::usage_text().size(), stdout);
    return cli::exit_ok;
  }
  if (o.run_mode == cli::mode::version) {
    std::printf("uringcat %s\n", URINGCAT_VERSION);
    return cli::exit_ok;
  }
  const logger log(o.verbosity, o.quiet);
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout or socket is an error value, not a signal
  raise_descriptor_limit();

  std::optional<io_context> io;
  try {
    // One connection needs a handful of CQEs; a small ring is set up faster (its memory is
    // populated at once). -z and -k keep the default, sized for tens of thousands.
    io_context_options ring;
    if (o.run_mode == cli::mode::scan) ring.cq_entries = scan_cq_entries;
    if (o.run_mode != cli::mode::scan && !o.keep_open) ring.cq_entries = ring.sq_entries = 64;
    io.emplace(ring);
  } catch (const std::system_error& e) {
    log.error("%s", e.what());  // "io_uring is unavailable: ..., with the likely reason
    return cli::exit_no_io_uring;
  }
  log.debug("io_uring ready (setup flags 0x%x)", io->setup_flags());

  // The session and hub outlive the io_context (reset first below): tasks still pending when
  // the session ends are destroyed with it and may refer to them.
  session s(*io, o, log);
  hub h(*io, o, log);
  int status = cli::exit_error;
  try {
    switch (o.run_mode) {
      case cli::mode::listen:
        status = io->run(o.keep_open ? run_listen_many(h) : run_listen_once(s));
        break;
      case cli::mode::scan:
        status = io->run(run_scan(*io, o, log));
        break;
      default:
        status = io->run(run_connect(s));
        break;
    }
  } catch (const std::exception& e) {
    log.error("%s", e.what());
    status = cli::exit_error;
  }
  h.out.reset();
  io.reset();
  return status;
}
