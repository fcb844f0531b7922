// when_any: run several tasks concurrently; the first to finish wins, the others are
// cancelled and awaited.
//
//   auto [index, value] = co_await uringcat::when_any(fetch(a), io.sleep_for(1s) ...);
//   // pack: value is a std::variant<...> whose alternative `index` holds the winner's result
//   auto [i, v] = co_await uringcat::when_any(std::move(tasks));   // vector: v is a T
//
// All tasks start when the when_any is awaited, in order, each running until its first
// suspension (if one finishes right there, the ones after it are never started). The first
// task to end, by returning or by throwing, wins. when_any then requests cancellation of the
// others through its own cancellation_source (cancellation.hpp): every operation they are
// awaiting ends, at once, with std::errc::operation_canceled (a loser whose operation had
// already completed sees its own result and carries on until its next operation, which
// starts cancelled). The awaiting coroutine resumes only after every task has ended, so no
// task outlives the when_any, and nothing it borrowed is still in use.
//
// Result: when_any_result{index, value}. If the winner threw, that exception is rethrown
// (after the others ended); the losers' results and exceptions (typically the
// operation_canceled they got) are discarded. void tasks give std::monostate.
//
// Cancellation from outside: the children also listen to the token of the task awaiting the
// when_any (chained into when_any's source), so cancelling it cancels all of them; the first
// to end still wins, usually with operation_canceled.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "uringcat/cancellation.hpp"
#include "uringcat/task.hpp"
#include "uringcat/when_all.hpp"

namespace uringcat {

/// What when_any returns: which task won (its position among the arguments, or in the
/// vector) and its result. Works with structured bindings: `auto [index, value] = ...`.
template <class V>
struct when_any_result {
  std::size_t index;
  V value;
};

namespace detail {

inline void require_valid_any(bool valid) {
  if (!valid) throw std::invalid_argument("uringcat::when_any: an empty task");
}

/// Runs the drivers with when_any's own cancellation source, chained to the awaiting task's
/// token, and waits for every started one to end. Returns the winner's index.
inline task<std::size_t> run_any(std::vector<when_all_driver>& drivers) {
  cancellation_source losers;
  const cancellation_token outer = co_await current_cancellation_token{};
  cancellation_callback chain(outer, [&losers]() noexcept { losers.request_cancellation(); });
  when_all_latch latch{0, {}, nullptr, &losers};
  const cancellation_token token = losers.token();
  co_await when_all_starter{drivers, latch, &token, /*stop_after_winner=*/true};
  co_return latch.winner;
}

template <class V, class Tuple, std::size_t... I>
V take_winner(std::size_t winner, Tuple& tasks, std::index_sequence<I...>) {
  std::optional<V> out;
  ((winner == I ? (void)out.emplace(std::in_place_index<I>, take_result(std::get<I>(tasks)))
                : (void)0),
   ...);
  return std::move(*out);
}

}  // namespace detail

/// Runs every task concurrently until the first ends; cancels and awaits the others. Returns
/// the winner's position and result (T, or std::monostate for task<void>). An empty vector,
/// or an empty task in it, makes it throw std::invalid_argument when awaited, before any task
/// starts.
template <class T>
task<when_any_result<detail::when_all_value_t<T>>> when_any(std::vector<task<T>> tasks) {
  if (tasks.empty()) throw std::invalid_argument("uringcat::when_any: no tasks");
  for (const auto& t : tasks) detail::require_valid_any(t.valid());
  std::vector<detail::when_all_driver> drivers;
  drivers.reserve(tasks.size());
  for (auto& t : tasks) drivers.push_back(detail::drive_child(t));
  const std::size_t winner = co_await detail::run_any(drivers);
  co_return when_any_result<detail::when_all_value_t<T>>{winner,
                                                         detail::take_result(tasks[winner])};
}

/// Runs every task concurrently until the first ends; cancels and awaits the others. Returns
/// the winner's position and its result in a std::variant whose alternative I is task I's
/// result type (std::monostate for void); the alternatives may repeat a type, so read it with
/// std::get<I> (or visit), using `index`.
template <class... Ts>
requires(sizeof...(Ts) > 0)
    task<when_any_result<std::variant<detail::when_all_value_t<Ts>...>>> when_any(
        task<Ts>... tasks) {
  (detail::require_valid_any(tasks.valid()), ...);
  std::vector<detail::when_all_driver> drivers;
  drivers.reserve(sizeof...(Ts));
  (drivers.push_back(detail::drive_child(tasks)), ...);
  const std::size_t winner = co_await detail::run_any(drivers);
  using value_type = std::variant<detail::when_all_value_t<Ts>...>;
  auto refs = std::tie(tasks...);
  co_return when_any_result<value_type>{
      winner, detail::take_winner<value_type>(winner, refs, std::index_sequence_for<Ts...>{})};
}

}  // namespace uringcat
