// task<T>: the lazy, move-only coroutine type every uringcat operation composes into.
//
// A task does nothing until it is awaited (or handed to io_context::run / when_all). The
// awaiting coroutine becomes its continuation; when the task finishes, its final awaiter
// hands control straight back to that continuation by symmetric transfer, so a chain of
// tasks that complete synchronously never grows the stack. The result is a value, or the
// exception the body threw, which `co_await` rethrows in the awaiter.
//
// Symmetric transfer is a tail call from one coroutine's resume function into the next.
// clang always emits it as a guaranteed tail call; g++ does so when optimising (-O1 and up)
// but not at -O0 or under -fsanitize=address, where a long chain of synchronously completing
// awaits grows the stack again (a million of them overflow it). Build code with such chains
// with optimisation, or use clang for sanitizer builds.
//
// Cancellation (cancellation.hpp): every task's promise carries a cancellation token, none by
// default. `co_await child` hands the awaiting task's token to the child unless the child
// was bound to its own with with_cancellation(); operations awaited in the task register
// on it. Nothing is allocated for this: the token is one pointer in the promise.
#pragma once

#include <concepts>
#include <coroutine>
#include <exception>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "uringcat/cancellation.hpp"

namespace uringcat {

template <class T = void>
class task;

namespace detail {

class task_promise_base {
 public:
  struct final_awaiter {
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept {
      // Symmetric transfer: resume whoever awaited us without growing the stack.
      return h.promise().continuation_;
    }
    void await_resume() const noexcept {}
  };

  std::suspend_always initial_suspend() const noexcept { return {}; }
  final_awaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  void set_continuation(std::coroutine_handle<> h) noexcept { continuation_ = h; }

  /// The token operations awaited in this task listen to (none by default).
  cancellation_token token() const noexcept { return token_; }
  /// Takes the awaiting coroutine's token, unless bound to its own.
  void inherit_token(cancellation_token t) noexcept {
    if (!bound_) token_ = t;
  }
  /// Binds the task to `t` for good: what awaits it later does not replace it.
  void bind_token(cancellation_token t) noexcept {
    token_ = t;
    bound_ = true;
  }
  bool has_exception() const noexcept { return static_cast<bool>(exception_); }
  void rethrow_if_exception() const {
    if (exception_) std::rethrow_exception(exception_);
  }

 private:
  std::coroutine_handle<> continuation_ = std::noop_coroutine();
  std::exception_ptr exception_;
  cancellation_token token_;
  bool bound_ = false;
};

/// Coroutine promises that carry a cancellation token (task's, when_all's and when_any's
/// drivers): an awaiter given such a promise's handle passes the token on.
template <class Promise>
concept token_carrier = requires(const Promise& p) {
  { p.token() } -> std::same_as<cancellation_token>;
};

/// The token of the coroutine behind `h`, or none.
template <class Promise>
cancellation_token token_of(std::coroutine_handle<Promise> h) noexcept {
  if constexpr (token_carrier<Promise>)
    return h.promise().token();
  else
    return {};
}

template <class T>
class task_promise final : public task_promise_base {
 public:
  task_promise() noexcept {}  // the value is constructed by return_value, if ever
  task_promise(const task_promise&) = delete;
  task_promise& operator=(const task_promise&) = delete;

  task<T> get_return_object() noexcept;

  template <class U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    ::new (static_cast<void*>(std::addressof(value_))) T(std::forward<U>(value));
    has_value_ = true;
  }

  ~task_promise() {
    if (has_value_) value_.~T();
  }

  T& result() & {
    rethrow_if_exception();
    return value_;
  }
  T&& result() && {
    rethrow_if_exception();
    return std::move(value_);
  }

 private:
  union {
    T value_;
  };
  bool has_value_ = false;
};

template <class T>
class task_promise<T&> final : public task_promise_base {
 public:
  task<T&> get_return_object() noexcept;
  void return_value(T& value) noexcept { value_ = std::addressof(value); }
  T& result() {
    rethrow_if_exception();
    return *value_;
  }

 private:
  T* value_ = nullptr;
};

template <>
class task_promise<void> final : public task_promise_base {
 public:
  task<void> get_return_object() noexcept;
  void return_void() const noexcept {}
  void result() const { rethrow_if_exception(); }
};

}  // namespace detail

/// A lazily started coroutine producing a T (or void, or a reference).
///
/// Work starts when the task is first awaited, passed to io_context::run, or to when_all;
/// until then nothing runs. The task owns its coroutine frame: destroying a task that never
/// started, or that has finished, frees it. The awaiter of a task is resumed by whoever
/// completes the task's last operation (on the io_context's thread).
template <class T>
class [[nodiscard]] task {
 public:
  using promise_type = detail::task_promise<T>;
  using value_type = T;

  task() noexcept = default;
  explicit task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  task(task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  task& operator=(task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() {
    if (handle_) handle_.destroy();
  }

  /// True when this task holds a coroutine (it was not moved from or default-constructed).
  bool valid() const noexcept { return static_cast<bool>(handle_); }
  /// True once the coroutine has run to its end (returned or threw).
  bool done() const noexcept { return handle_ && handle_.done(); }

  auto operator co_await() & noexcept { return awaiter<false>{handle_}; }
  auto operator co_await() && noexcept { return awaiter<true>{handle_}; }

  /// Starts the task with `continuation` resumed when it ends. For io_context and when_all.
  std::coroutine_handle<promise_type> handle() const noexcept { return handle_; }

  /// The finished task's value; rethrows its exception.
  decltype(auto) result() & { return handle_.promise().result(); }
  decltype(auto) result() && { return std::move(handle_.promise()).result(); }

 private:
  template <bool Rvalue>
  struct awaiter {
    std::coroutine_handle<promise_type> handle;

    bool await_ready() const noexcept { return !handle || handle.done(); }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> awaiting) noexcept {
      handle.promise().set_continuation(awaiting);
      handle.promise().inherit_token(detail::token_of(awaiting));
      return handle;  // start the task by symmetric transfer
    }
    decltype(auto) await_resume() {
      if (!handle) throw std::logic_error("uringcat::task: awaited an empty task");
      // An rvalue task (`co_await f()`) dies with the full expression: move the value out.
      if constexpr (Rvalue && !std::is_void_v<T> && !std::is_reference_v<T>)
        return T(std::move(handle.promise()).result());
      else
        return handle.promise().result();
    }
  };

  std::coroutine_handle<promise_type> handle_;
};

namespace detail {

template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
  return task<T>{std::coroutine_handle<task_promise>::from_promise(*this)};
}
template <class T>
task<T&> task_promise<T&>::get_return_object() noexcept {
  return task<T&>{std::coroutine_handle<task_promise>::from_promise(*this)};
}
inline task<void> task_promise<void>::get_return_object() noexcept {
  return task<void>{std::coroutine_handle<task_promise>::from_promise(*this)};
}

}  // namespace detail

/// `co_await current_cancellation_token()` inside a task gives the token the task listens to
/// (none when nothing was attached), e.g. to stop a loop that does no I/O, or to chain it into
/// a cancellation_callback. Never suspends.
struct current_cancellation_token {
  cancellation_token token;
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  bool await_suspend(std::coroutine_handle<Promise> h) noexcept {
    static_assert(detail::token_carrier<Promise>,
                  "current_cancellation_token() is for uringcat::task coroutines");
    token = h.promise().token();
    return false;  // resume at once
  }
  cancellation_token await_resume() const noexcept { return token; }
};

/// Runs `t` so that cancellation requested on `token` cancels every operation it awaits (and
/// those of the tasks it awaits in turn). The task still listens to the token of whoever
/// awaits the result: either request cancels it. Costs one coroutine frame (where the two
/// requests are combined); a task that should listen to `token` alone can instead be bound
/// with `t.handle().promise().bind_token(token)` before it starts, allocating nothing.
/// An empty task makes it throw std::invalid_argument when awaited.
template <class T>
task<T> with_cancellation(cancellation_token token, task<T> t) {
  if (!t.valid()) throw std::invalid_argument("uringcat::with_cancellation: an empty task");
  cancellation_source combined;
  const cancellation_token outer = co_await current_cancellation_token{};
  auto forward = [&combined]() noexcept { combined.request_cancellation(); };
  cancellation_callback on_token(token, forward);
  cancellation_callback on_outer(outer, forward);
  t.handle().promise().bind_token(combined.token());
  co_return co_await std::move(t);
}

}  // namespace uringcat
