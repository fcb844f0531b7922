// stream_descriptor: reads and writes on any stream descriptor (a pipe, a terminal, a regular
// file read sequentially, a character device) through the ring, like Asio's
// posix::stream_descriptor. This is how a program copies between stdin/stdout and a socket
// without a blocking syscall on the ring's thread:
//
//   uringcat::stream_descriptor in(io, ::dup(STDIN_FILENO));
//   std::size_t n = co_await in.read_some(buffer);      // 0 at end of file
//
// Each read or write is one IORING_OP_READ / IORING_OP_WRITE at the descriptor's current
// position (offset -1, IORING_FEAT_RW_CUR_POS), so a regular file is read from where the
// shell left it, as read(2) would. The kernel completes a pipe or socket operation when data
// or room arrives and hands a terminal read to its worker threads; either way the ring's
// thread never blocks. A timeout is the linked timeout alone (the kernel writes into the
// caller's buffer until the operation ends, so the reactor cannot report it earlier): exact
// for a few descriptors, which is what a program's standard streams are.
#pragma once

#include <liburing.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <span>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "uringcat/detail/operation.hpp"
#include "uringcat/io_context.hpp"
#include "uringcat/result.hpp"
#include "uringcat/tcp_client.hpp"
#include "uringcat/timeout.hpp"

namespace uringcat {
namespace detail {

/// read(2) / write(2) through the ring, once (`All` false) or until the whole buffer moved
/// (`All` true: write_all, or read_exact with errc::eof when the stream ends first).
template <bool Throws, bool Write, bool All>
class stream_op final : public operation<stream_op<Throws, Write, All>> {
  using base = operation<stream_op<Throws, Write, All>>;
  using byte_span = std::conditional_t<Write, std::span<const std::byte>, std::span<std::byte>>;

 public:
  stream_op(io_context& io, const int& fd, byte_span bytes, timeout t) noexcept
      : base(io, t), fd_(&fd), bytes_(bytes) {}
  stream_op(io_context&, int&&, byte_span, timeout) = delete;  // must outlive the op

  bool ready_without_io() noexcept {
    if (*fd_ < 0) {
      this->res_ = -EBADF;
      return true;
    }
    return bytes_.empty();
  }
  void prep(io_uring_sqe* sqe) noexcept {
    // The SQE's length is 32 bits, and the kernel moves at most MAX_RW_COUNT per call.
    constexpr std::size_t max_step = 0x7ffff000;
    const auto len = static_cast<unsigned>(std::min(bytes_.size() - done_, max_step));
    constexpr auto current_position = static_cast<__u64>(-1);
    if constexpr (Write)
      io_uring_prep_write(sqe, *fd_, bytes_.data() + done_, len, current_position);
    else
      io_uring_prep_read(sqe, *fd_, bytes_.data() + done_, len, current_position);
  }
  bool on_result(int res) noexcept {
    if (res < 0) return false;
    if (res == 0 && !Write) {
      eof_ = All;  // the stream ended before the buffer was full
      return false;
    }
    if (res == 0 && All) {  // a write that took nothing would be retried forever
      this->res_ = -EIO;
      return false;
    }
    done_ += static_cast<std::size_t>(res);
    this->res_ = 0;
    if (!All || done_ == bytes_.size()) return false;
    if (this->when.expired()) {
      this->res_ = -ETIMEDOUT;
      return false;
    }
    return this->resubmit();
  }

  auto await_resume() {
    const std::error_code ec = eof_ ? make_error_code(errc::eof) : this->error();
    constexpr const char* what =
        Write ? (All ? "write_all" : "write") : (All ? "read_exact" : "read");
    if constexpr (All) {
      if constexpr (Throws) {
        if (ec) throw std::system_error(ec, what);
      } else {
        return transfer_result{done_, ec};
      }
    } else if constexpr (Throws) {
      if (ec) throw std::system_error(ec, what);
      return done_;
    } else {
      return ec ? result<std::size_t>(ec) : result<std::size_t>(done_);
    }
  }

 private:
  const int* fd_;
  byte_span bytes_;
  std::size_t done_ = 0;
  bool eof_ = false;
};

}  // namespace detail

/// Owns a stream descriptor (closed by the destructor; pass a dup() of a descriptor you must
/// keep open, such as STDIN_FILENO). Movable, but not while an operation on it is in flight.
class stream_descriptor {
 public:
  stream_descriptor() noexcept = default;
  stream_descriptor(io_context& io, int fd) noexcept : io_(&io), fd_(fd) {}
  stream_descriptor(stream_descriptor&& other) noexcept
      : io_(other.io_), fd_(std::exchange(other.fd_, -1)) {}
  stream_descriptor& operator=(stream_descriptor&& other) noexcept {
    if (this != &other) {
      close_now();
      io_ = other.io_;
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  stream_descriptor(const stream_descriptor&) = delete;
  stream_descriptor& operator=(const stream_descriptor&) = delete;
  ~stream_descriptor() { close_now(); }

  /// One read: the bytes read, 0 at end of file.
  [[nodiscard]] detail::stream_op<true, false, false> read_some(std::span<std::byte> buffer,
                                                                timeout t = no_timeout) noexcept {
    return {*io_, fd_, buffer, t};
  }
  [[nodiscard]] detail::stream_op<false, false, false> try_read_some(
      std::span<std::byte> buffer, timeout t = no_timeout) noexcept {
    return {*io_, fd_, buffer, t};
  }
  /// Fills the whole buffer; errc::eof if the stream ends first. One deadline for the call.
  [[nodiscard]] detail::stream_op<false, false, true> try_read_exact(
      std::span<std::byte> buffer, timeout t = no_timeout) noexcept {
    return {*io_, fd_, buffer, t};
  }

  /// One write: how many bytes the kernel took.
  [[nodiscard]] detail::stream_op<true, true, false> write_some(std::span<const std::byte> bytes,
                                                                timeout t = no_timeout) noexcept {
    return {*io_, fd_, bytes, t};
  }
  [[nodiscard]] detail::stream_op<false, true, false> try_write_some(
      std::span<const std::byte> bytes, timeout t = no_timeout) noexcept {
    return {*io_, fd_, bytes, t};
  }
  /// Writes every byte (a pipe or terminal may take them in parts); one deadline for the call.
  [[nodiscard]] detail::stream_op<true, true, true> write_all(std::span<const std::byte> bytes,
                                                              timeout t = no_timeout) noexcept {
    return {*io_, fd_, bytes, t};
  }
  [[nodiscard]] detail::stream_op<true, true, true> write_all(std::string_view text,
                                                              timeout t = no_timeout) noexcept {
    return {*io_, fd_, std::as_bytes(std::span(text)), t};
  }
  [[nodiscard]] detail::stream_op<false, true, true> try_write_all(
      std::span<const std::byte> bytes, timeout t = no_timeout) noexcept {
    return {*io_, fd_, bytes, t};
  }

  bool is_open() const noexcept { return fd_ >= 0; }
  int native_handle() const noexcept { return fd_; }
  int release() noexcept { return std::exchange(fd_, -1); }
  /// Closes the descriptor (after handing the ring what is queued, so that no queued
  /// operation reaches a reused number). An operation in flight keeps its own reference to
  /// the file and ends when the file does, or at its deadline.
  void close_now() noexcept {
    if (fd_ < 0) return;
    io_context::flush_current();
    ::close(std::exchange(fd_, -1));
  }

 private:
  io_context* io_ = nullptr;
  int fd_ = -1;
};

}  // namespace uringcat
