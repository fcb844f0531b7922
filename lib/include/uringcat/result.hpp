// result<T>: a value or a std::error_code, for the non-throwing spelling of operations.
//
// The throwing spelling (`co_await client.recv(buf, t)`) is the convenient default; hot loops
// and benchmarks use `co_await client.try_recv(buf, t)`, which returns a result<std::size_t>
// and never throws for I/O errors.
#pragma once

#include <system_error>
#include <type_traits>
#include <utility>

namespace uringcat {

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)  // NOLINT
      : value_(std::move(value)) {}
  result(std::error_code ec) noexcept : ec_(ec) {}  // NOLINT

  bool has_value() const noexcept { return !ec_; }
  explicit operator bool() const noexcept { return !ec_; }
  const std::error_code& error() const noexcept { return ec_; }

  T& value() & {
    if (ec_) throw std::system_error(ec_);
    return value_;
  }
  const T& value() const& {
    if (ec_) throw std::system_error(ec_);
    return value_;
  }
  T&& value() && {
    if (ec_) throw std::system_error(ec_);
    return std::move(value_);
  }
  T& operator*() & noexcept { return value_; }
  const T& operator*() const& noexcept { return value_; }
  T&& operator*() && noexcept { return std::move(value_); }
  T* operator->() noexcept { return &value_; }
  const T* operator->() const noexcept { return &value_; }

 private:
  T value_{};
  std::error_code ec_;
};

}  // namespace uringcat
