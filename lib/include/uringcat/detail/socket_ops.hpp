// The socket operations as awaiters: connect, send, send_all, recv, recv_exact, shutdown,
// close. Each is one small object in the awaiting coroutine's frame (no heap allocation),
// holding its SQE inputs by value. `Throws` picks the spelling: true makes await_resume throw
// std::system_error, false returns the error as a value (result<T> / std::error_code).
//
// Who owns what: the buffer passed to send/recv must stay valid until the co_await returns;
// the tcp_client must outlive its operations (it is where connect stores the descriptor).
#pragma once

#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <span>
#include <string>
#include <system_error>

#include "uringcat/detail/operation.hpp"
#include "uringcat/endpoint.hpp"
#include "uringcat/result.hpp"

namespace uringcat {

/// What send_all / recv_exact did: how many bytes moved before success or failure.
struct transfer_result {
  std::size_t bytes = 0;
  std::error_code error;
  explicit operator bool() const noexcept { return !error; }
};

namespace detail {

/// Creates the socket (bound to `source` when given), connects it, and on success stores the
/// descriptor in the client. On any failure the socket is closed: after a cancelled connect
/// its state is undefined, so it is never reused.
template <bool Throws>
class connect_op final : public operation<connect_op<Throws>> {
  using base = operation<connect_op<Throws>>;

 public:
  connect_op(io_context& io, int& client_fd, const endpoint* source, const endpoint& ep,
             timeout t) noexcept
      : base(io, t, /*detachable=*/true), client_fd_(&client_fd), source_(source), ep_(ep) {}
  ~connect_op() {
    if (fd_ >= 0) ::close(fd_);
  }

  bool ready_without_io() noexcept {
    if (*client_fd_ >= 0) {
      this->res_ = -EISCONN;
      return true;
    }
    fd_ = ::socket(ep_.family(), SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd_ < 0) {
      this->res_ = -errno;
      return true;
    }
    if (source_) {
      const int one = 1;  // pick the port at connect time, so 4-tuples can share it
      ::setsockopt(fd_, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      if (::bind(fd_, source_->data(), source_->size()) != 0) {
        this->res_ = -errno;
        return true;
      }
    }
    return false;
  }
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_connect(sqe, fd_, ep_.data(), ep_.size()); }

  auto await_resume() {
    std::error_code ec = this->error();
    if (!ec && *client_fd_ >= 0) ec = std::make_error_code(std::errc::already_connected);
    if (!ec) {  // (a concurrent connect on the same client may have won meanwhile)
      *client_fd_ = fd_;
      fd_ = -1;
    } else if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    if constexpr (Throws) {
      if (ec) throw std::system_error(ec, "connect to " + ep_.to_string());
    } else {
      return ec;
    }
  }

 private:
  int* client_fd_;
  const endpoint* source_;
  endpoint ep_;
  int fd_ = -1;
};

/// One send(2) of at most the whole buffer, with MSG_NOSIGNAL: a reset peer is an error
/// value (broken_pipe / connection_reset), never SIGPIPE.
template <bool Throws>
class send_op final : public operation<send_op<Throws>> {
  using base = operation<send_op<Throws>>;

 public:
  send_op(io_context& io, int fd, std::span<const std::byte> bytes, timeout t) noexcept
      : base(io, t), fd_(fd), bytes_(bytes) {}

  bool ready_without_io() noexcept {
    if (fd_ < 0) this->res_ = -EBADF;
    return fd_ < 0 || bytes_.empty();
  }
  void prep(io_uring_sqe* sqe) noexcept {
    io_uring_prep_send(sqe, fd_, bytes_.data(), bytes_.size(), MSG_NOSIGNAL);
  }

  auto await_resume() {
    const std::error_code ec = this->error();
    const std::size_t n = ec ? 0 : static_cast<std::size_t>(this->res_);
    if constexpr (Throws) {
      if (ec) throw std::system_error(ec, "send");
      return n;
    } else {
      return ec ? result<std::size_t>(ec) : result<std::size_t>(n);
    }
  }

 private:
  int fd_;
  std::span<const std::byte> bytes_;
};

/// One recv(2) into the buffer; 0 means the peer closed its side.
///
/// Without a deadline this is one IORING_OP_RECV. With a deadline it waits for readiness
/// instead (IORING_OP_POLL_ADD, linked to its timeout) and then reads with a non-blocking
/// recv(2): the kernel then holds no pointer into the caller's buffer while it waits, so
/// the reactor can report the deadline itself, on time even when thousands expire together,
/// and bytes that arrive at the deadline stay in the socket for the next recv instead of
/// landing in a buffer nobody reads. (A RECV linked to its timeout would have to wait for
/// the kernel's cancellation, which trails the deadline by milliseconds in such a burst.)
template <bool Throws>
class recv_op final : public operation<recv_op<Throws>> {
  using base = operation<recv_op<Throws>>;

 public:
  recv_op(io_context& io, int fd, std::span<std::byte> bytes, timeout t) noexcept
      : base(io, t), fd_(fd), bytes_(bytes) {}

  bool ready_without_io() noexcept {
    if (fd_ < 0) this->res_ = -EBADF;
    this->detachable = this->when.is_set();
    return fd_ < 0 || bytes_.empty();
  }
  void prep(io_uring_sqe* sqe) noexcept {
    if (this->detachable)
      io_uring_prep_poll_add(sqe, fd_, POLLIN);
    else
      io_uring_prep_recv(sqe, fd_, bytes_.data(), bytes_.size(), 0);
  }
  bool on_result(int res) noexcept {
    if (!this->detachable || res < 0) return false;
    // Readable (or hung up, or in error): read what is there without blocking.
    const ssize_t n = ::recv(fd_, bytes_.data(), bytes_.size(), MSG_DONTWAIT);
    if (n >= 0) {
      this->res_ = static_cast<int>(n);
      return false;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      this->res_ = -errno;
      return false;
    }
    if (this->when.expired()) {  // spurious readiness, and no time left
      this->res_ = -ETIMEDOUT;
      return false;
    }
    return this->resubmit();
  }

  auto await_resume() {
    const std::error_code ec = this->error();
    const std::size_t n = ec ? 0 : static_cast<std::size_t>(this->res_);
    if constexpr (Throws) {
      if (ec) throw std::system_error(ec, "recv");
      return n;
    } else {
      return ec ? result<std::size_t>(ec) : result<std::size_t>(n);
    }
  }

 private:
  int fd_;
  std::span<std::byte> bytes_;
};

/// send_all / recv_exact: repeats send or recv until the whole buffer moved, under ONE
/// deadline for the whole call (the absolute deadline is computed once, when awaited, and
/// every partial step is linked to the same IORING_TIMEOUT_ABS time), like Python's sendall.
template <bool Throws, bool Send>
class transfer_all_op final : public operation<transfer_all_op<Throws, Send>> {
  using base = operation<transfer_all_op<Throws, Send>>;
  using byte_span = std::conditional_t<Send, std::span<const std::byte>, std::span<std::byte>>;

 public:
  transfer_all_op(io_context& io, int fd, byte_span bytes, timeout t) noexcept
      : base(io, t), fd_(fd), bytes_(bytes) {}

  bool ready_without_io() noexcept {
    if (fd_ < 0) this->res_ = -EBADF;
    return fd_ < 0 || bytes_.empty();
  }
  void prep(io_uring_sqe* sqe) noexcept {
    if constexpr (Send)
      io_uring_prep_send(sqe, fd_, bytes_.data() + done_, bytes_.size() - done_, MSG_NOSIGNAL);
    else
      io_uring_prep_recv(sqe, fd_, bytes_.data() + done_, bytes_.size() - done_, 0);
  }
  bool on_result(int res) noexcept {
    if (res < 0) return false;
    if (res == 0 && !Send) {  // the peer closed before the buffer was full
      eof_ = true;
      return false;
    }
    done_ += static_cast<std::size_t>(res);
    if (done_ >= bytes_.size()) return false;
    if (this->when.expired()) {
      this->res_ = -ETIMEDOUT;
      return false;
    }
    return this->resubmit();
  }

  auto await_resume() {
    std::error_code ec = eof_ ? make_error_code(errc::eof) : this->error();
    if constexpr (Throws) {
      if (ec) throw std::system_error(ec, Send ? "send_all" : "recv_exact");
    } else {
      return transfer_result{done_, ec};
    }
  }

 private:
  int fd_;
  byte_span bytes_;
  std::size_t done_ = 0;
  bool eof_ = false;
};

/// shutdown(2) of one or both directions.
template <bool Throws>
class shutdown_op final : public operation<shutdown_op<Throws>> {
  using base = operation<shutdown_op<Throws>>;

 public:
  shutdown_op(io_context& io, int fd, int how, timeout t) noexcept
      : base(io, t), fd_(fd), how_(how) {}

  bool ready_without_io() noexcept {
    if (fd_ < 0) this->res_ = -EBADF;
    return fd_ < 0;
  }
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_shutdown(sqe, fd_, how_); }

  auto await_resume() {
    const std::error_code ec = this->error();
    if constexpr (Throws) {
      if (ec) throw std::system_error(ec, "shutdown");
    } else {
      return ec;
    }
  }

 private:
  int fd_;
  int how_;
};

/// close(2) through the ring. The descriptor is taken from its owner before the SQE is
/// queued, so nothing can use it while the close is in flight.
template <bool Throws>
class close_op final : public operation<close_op<Throws>> {
  using base = operation<close_op<Throws>>;

 public:
  close_op(io_context& io, int& owner_fd) noexcept
      : base(io, no_timeout), fd_(std::exchange(owner_fd, -1)) {}
  ~close_op() {
    if (fd_ >= 0 && !started_) ::close(fd_);
  }

  bool ready_without_io() noexcept { return fd_ < 0; }
  void prep(io_uring_sqe* sqe) noexcept {
    started_ = true;
    io_uring_prep_close(sqe, fd_);
  }

  auto await_resume() {
    const std::error_code ec = this->error();
    if constexpr (Throws) {
      if (ec) throw std::system_error(ec, "close");
    } else {
      return ec;
    }
  }

 private:
  int fd_;
  bool started_ = false;
};

}  // namespace detail
}  // namespace uringcat
