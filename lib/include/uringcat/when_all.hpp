// when_all: run several tasks concurrently on one io_context and wait for every one.
//
//   auto [a, b] = co_await uringcat::when_all(fetch(x), fetch(y));   // tuple of results
//   std::vector<int> r = co_await uringcat::when_all(std::move(tasks)); // vector of results
//
// All tasks start when the when_all is awaited, in order, each running until its first
// suspension. The awaiting coroutine resumes when the last one ends (whichever thread of
// control completes it, on the io_context's thread). If any task threw, the exception of
// the first task to fail (in time) is rethrown, but only after every task has ended: no
// task outlives the when_all. void tasks contribute std::monostate to the tuple form.
//
// Cancellation: the children listen to the token of the task that awaits the when_all, so
// cancelling it cancels every child (when_all itself never cancels anything).
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "uringcat/cancellation.hpp"
#include "uringcat/task.hpp"

namespace uringcat {
namespace detail {

/// Counts running children; the last to finish resumes the awaiting coroutine. For
/// when_any, the first child to finish is the winner, and it requests `cancel_on_first`.
struct when_all_latch {
  std::size_t remaining;
  std::coroutine_handle<> awaiting;
  std::exception_ptr first_error;
  cancellation_source* cancel_on_first = nullptr;
  std::size_t winner = static_cast<std::size_t>(-1);
};

/// A tiny eager-on-resume coroutine that awaits one child and then counts down the latch.
class when_all_driver {
 public:
  struct promise_type {
    when_all_latch* latch = nullptr;
    std::size_t index = 0;
    cancellation_token token_for_child;

    /// The token the child task inherits (task.hpp's token_carrier).
    cancellation_token token() const noexcept { return token_for_child; }

    when_all_driver get_return_object() noexcept {
      return when_all_driver{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    struct final_awaiter {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        when_all_latch* l = h.promise().latch;
        if (l->winner == static_cast<std::size_t>(-1)) {
          l->winner = h.promise().index;
          // Only tells the other children's operations to end; nobody resumes in here.
          if (l->cancel_on_first) l->cancel_on_first->request_cancellation();
        }
        if (--l->remaining == 0) return l->awaiting;  // symmetric transfer to the parent
        return std::noop_coroutine();
      }
      void await_resume() const noexcept {}
    };
    final_awaiter final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() noexcept {
      if (!latch->first_error) latch->first_error = std::current_exception();
    }
  };

  explicit when_all_driver(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  when_all_driver(when_all_driver&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  when_all_driver(const when_all_driver&) = delete;
  when_all_driver& operator=(const when_all_driver&) = delete;
  when_all_driver& operator=(when_all_driver&&) = delete;
  ~when_all_driver() {
    if (handle_) handle_.destroy();
  }

  void start(when_all_latch& latch, std::size_t index, cancellation_token token) noexcept {
    handle_.promise().latch = &latch;
    handle_.promise().index = index;
    handle_.promise().token_for_child = token;
    handle_.resume();
  }

 private:
  std::coroutine_handle<promise_type> handle_;
};

/// Awaits a child task without taking its result, so results are collected afterwards.
template <class T>
when_all_driver drive_child(task<T>& child) {
  struct completion_awaiter {
    task<T>& t;
    bool await_ready() const noexcept { return t.done(); }
    std::coroutine_handle<> await_suspend(
        std::coroutine_handle<when_all_driver::promise_type> h) noexcept {
      t.handle().promise().set_continuation(h);
      t.handle().promise().inherit_token(h.promise().token());
      return t.handle();
    }
    void await_resume() const {
      if (t.handle().promise().has_exception()) t.handle().promise().rethrow_if_exception();
    }
  };
  co_await completion_awaiter{child};
}

/// Starts every driver, then suspends until the latch reaches zero. The children listen to
/// `token` when it is given, else to the awaiting task's token. With `stop_after_winner`
/// (when_any), children after one that finished synchronously are not started at all.
struct when_all_starter {
  std::vector<when_all_driver>& drivers;
  when_all_latch& latch;
  const cancellation_token* token = nullptr;
  bool stop_after_winner = false;

  bool await_ready() const noexcept { return drivers.empty(); }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
    const cancellation_token t = token ? *token : token_of(awaiting);
    latch.awaiting = awaiting;
    latch.remaining = drivers.size() + 1;  // +1: ours, so no child resumes us while starting
    std::size_t started = 0;
    for (auto& d : drivers) {
      if (stop_after_winner && latch.winner != static_cast<std::size_t>(-1)) break;
      d.start(latch, started++, t);
    }
    latch.remaining -= drivers.size() - started;  // never started: nothing to wait for
    return --latch.remaining != 0;                // all finished synchronously: do not suspend
  }
  void await_resume() const {
    // when_any takes the winner's exception from its task instead, and drops the losers'.
    if (latch.first_error && !stop_after_winner) std::rethrow_exception(latch.first_error);
  }
};

template <class T>
using when_all_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
when_all_value_t<T> take_result(task<T>& t) {
  if constexpr (std::is_void_v<T>) {
    t.result();
    return {};
  } else {
    return std::move(t).result();
  }
}

inline void require_valid(bool valid) {
  if (!valid) throw std::invalid_argument("uringcat::when_all: an empty task");
}

}  // namespace detail

/// Runs every task concurrently; returns a vector of their results (task<void>: returns void).
/// An empty (moved-from or default-constructed) task makes it throw std::invalid_argument
/// when awaited, before any task starts.
template <class T>
task<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> when_all(
    std::vector<task<T>> tasks) {
  for (const auto& t : tasks) detail::require_valid(t.valid());
  detail::when_all_latch latch{0, {}, nullptr};
  std::vector<detail::when_all_driver> drivers;
  drivers.reserve(tasks.size());
  for (auto& t : tasks) drivers.push_back(detail::drive_child(t));
  co_await detail::when_all_starter{drivers, latch};
  if constexpr (std::is_void_v<T>) {
    co_return;
  } else {
    std::vector<T> results;
    results.reserve(tasks.size());
    for (auto& t : tasks) results.push_back(std::move(t).result());
    co_return results;
  }
}

/// Runs every task concurrently; returns a tuple of their results (void -> std::monostate).
template <class... Ts>
task<std::tuple<detail::when_all_value_t<Ts>...>> when_all(task<Ts>... tasks) {
  (detail::require_valid(tasks.valid()), ...);
  detail::when_all_latch latch{0, {}, nullptr};
  std::vector<detail::when_all_driver> drivers;
  drivers.reserve(sizeof...(Ts));
  (drivers.push_back(detail::drive_child(tasks)), ...);
  co_await detail::when_all_starter{drivers, latch};
  co_return std::tuple<detail::when_all_value_t<Ts>...>(detail::take_result(tasks)...);
}

}  // namespace uringcat
