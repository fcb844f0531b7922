// Happy Eyeballs (RFC 8305) over resolved addresses, and the connect report's text.
//
// Shape: connect_any's own coroutine decides when to start attempts; each attempt runs in a
// small coroutine of its own (an attempt_driver, owned by connect_any's frame) that awaits
// one try_connect on the client, listening to connect_any's cancellation source. Between
// decisions connect_any sleeps until the next attempt is due (io.try_sleep_until, woken
// early through a cancellation source when an attempt ends), or, once every address has
// started, waits for the next attempt to end. All attempts connect the same tcp_client: the
// first to connect stores its descriptor; one finishing later sees already_connected and
// closes its own socket (socket_ops.hpp), so there is never a second connection to undo.
#include "uringcat/connect_any.hpp"

#include <algorithm>
#include <coroutine>
#include <exception>
#include <utility>

#include "uringcat/cancellation.hpp"
#include "uringcat/io_context.hpp"

namespace uringcat {
namespace {

struct race_state {
  std::size_t running = 0;
  bool changed = false;                 ///< an attempt ended since connect_any last looked
  cancellation_source* wake = nullptr;  ///< ends connect_any's sleep when an attempt ends
  std::coroutine_handle<> waiter;       ///< connect_any, when waiting for an attempt to end
  std::exception_ptr error;             ///< from a user callback
};

/// One attempt's coroutine: started by connect_any, destroyed with its frame.
class attempt_driver {
 public:
  struct promise_type {
    template <class... Args>
    explicit promise_type(race_state& s, Args&&...) noexcept : state(&s) {}

    attempt_driver get_return_object() noexcept {
      return attempt_driver(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    struct final_awaiter {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        race_state& s = *h.promise().state;
        --s.running;
        s.changed = true;
        if (s.wake) s.wake->request_cancellation();  // connect_any sleeps: wake it
        if (auto w = std::exchange(s.waiter, {})) return w;
        return std::noop_coroutine();
      }
      void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() noexcept {
      if (!state->error) state->error = std::current_exception();
    }

    race_state* state;
  };

  explicit attempt_driver(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  attempt_driver(attempt_driver&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  attempt_driver(const attempt_driver&) = delete;
  attempt_driver& operator=(const attempt_driver&) = delete;
  attempt_driver& operator=(attempt_driver&&) = delete;
  ~attempt_driver() {
    if (handle_) handle_.destroy();
  }

  void start() noexcept { handle_.resume(); }

 private:
  std::coroutine_handle<promise_type> handle_;
};

attempt_driver run_attempt(race_state&, tcp_client& client, connect_attempt& record, deadline until,
                           cancellation_token token, const connect_options& options) {
  record.start = clock::now();
  if (options.on_attempt_start) options.on_attempt_start(record);
  record.error = co_await client.try_connect(record.peer, until).with_cancellation(token);
  record.end = clock::now();
  if (options.on_attempt_end) options.on_attempt_end(record);
}

/// Suspends until an attempt ends (at once if one ended since the last look).
struct attempt_ended {
  race_state& s;
  bool await_ready() const noexcept { return std::exchange(s.changed, false); }
  void await_suspend(std::coroutine_handle<> h) noexcept { s.waiter = h; }
  void await_resume() const noexcept { s.changed = false; }
};

const char* short_name(const std::error_code& ec) {
  if (ec == std::errc::connection_refused) return "refused";
  if (ec == std::errc::timed_out) return "timed out";
  if (ec == std::errc::operation_canceled) return "cancelled";
  if (ec == std::errc::network_unreachable) return "network unreachable";
  if (ec == std::errc::host_unreachable) return "host unreachable";
  return nullptr;
}

}  // namespace

std::string connect_report::describe() const {
  std::string out;
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    const connect_attempt& a = attempts[i];
    if (!out.empty()) out += "; ";
    out += a.peer.to_string();
    out += ' ';
    if (!a.error) {
      out += connected == i ? "connected" : "ok";
    } else if (const char* s = short_name(a.error)) {
      out += s;
    } else {
      out += a.error.message();
    }
  }
  return out;
}

std::vector<endpoint> happy_eyeballs_order(std::vector<endpoint> endpoints) {
  if (endpoints.empty()) return endpoints;
  const int first = endpoints.front().family();
  std::vector<endpoint> same, other;
  for (endpoint& e : endpoints) (e.family() == first ? same : other).push_back(e);
  std::vector<endpoint> out;
  out.reserve(endpoints.size());
  for (std::size_t i = 0; i < std::max(same.size(), other.size()); ++i) {
    if (i < same.size()) out.push_back(same[i]);
    if (i < other.size()) out.push_back(other[i]);
  }
  return out;
}

task<connect_report> connect_any(tcp_client& client, std::vector<endpoint> endpoints, timeout t,
                                 connect_options options) {
  const deadline until = t.from_now();  // lazy task: runs when awaited
  connect_report report;
  if (endpoints.empty()) {
    report.error = make_error_code(errc::no_addresses);
    co_return report;
  }
  if (client.is_open()) {
    report.error = std::make_error_code(std::errc::already_connected);
    co_return report;
  }
  const std::vector<endpoint> order = happy_eyeballs_order(std::move(endpoints));
  report.attempts.reserve(order.size());  // records stay put while attempts write them

  cancellation_source stop;  // ends every attempt: a winner, or the caller's cancellation
  const cancellation_token outer = co_await current_cancellation_token{};
  cancellation_callback chain(outer, [&stop]() noexcept { stop.request_cancellation(); });
  race_state state;
  std::vector<attempt_driver> drivers;
  drivers.reserve(order.size());
  io_context& io = client.context();

  std::size_t next = 0;
  clock::time_point next_due = clock::now();
  while (!client.is_open() && !stop.cancellation_requested() && !until.expired()) {
    if (state.error) break;
    if (next < order.size() && (state.running == 0 || clock::now() >= next_due)) {
      report.attempts.push_back(connect_attempt{order[next++], {}, {}, {}});
      ++state.running;
      drivers.push_back(
          run_attempt(state, client, report.attempts.back(), until, stop.token(), options));
      next_due = clock::now() + options.attempt_delay;
      drivers.back().start();  // runs until it waits for the kernel, or ends
      continue;
    }
    if (next < order.size()) {
      // Sleep until the next attempt is due, or until one ends (which cancels the sleep).
      cancellation_source wake;
      state.wake = &wake;
      const clock::time_point at = until.is_set() ? std::min(next_due, until.time()) : next_due;
      (void)co_await io.try_sleep_until(deadline(at)).with_cancellation(wake.token());
      state.wake = nullptr;
    } else if (state.running > 0) {
      co_await attempt_ended{state};  // every address started: wait for an outcome
    } else {
      break;  // every attempt failed
    }
  }

  // A winner or a cancellation ends the others now. At the deadline they end by themselves
  // (their own deadline is the same), reporting timed_out rather than cancelled.
  if (client.is_open() || stop.cancellation_requested() || state.error) stop.request_cancellation();
  while (state.running > 0) co_await attempt_ended{state};
  drivers.clear();
  if (state.error) std::rethrow_exception(state.error);

  bool all_refused = !report.attempts.empty();
  clock::time_point last_end{};
  for (std::size_t i = 0; i < report.attempts.size(); ++i) {
    connect_attempt& a = report.attempts[i];
    if (!a.error && client.is_open() && !report.connected) {
      report.connected = i;
    } else if (a.error == std::errc::already_connected && client.is_open()) {
      a.error = std::make_error_code(std::errc::operation_canceled);  // it lost the race
    }
    if (a.error != std::errc::connection_refused) all_refused = false;
    if (a.error && a.end >= last_end) {
      last_end = a.end;
      report.error = a.error;
    }
  }
  if (report.connected) {
    report.error = {};
  } else if (outer.cancellation_requested()) {
    report.error = std::make_error_code(std::errc::operation_canceled);
  } else if (until.expired()) {
    report.error = std::make_error_code(std::errc::timed_out);
  } else if (all_refused) {
    report.error = std::make_error_code(std::errc::connection_refused);
  }
  co_return report;
}

}  // namespace uringcat
