// tcp_listener: a bound, listening TCP socket whose accept() is an awaitable with a deadline.
//
//   uringcat::tcp_listener listener(io, uringcat::endpoint::parse("127.0.0.1:9999"));
//   uringcat::tcp_client peer = co_await listener.accept(30s);
#pragma once

#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <system_error>

#include "uringcat/detail/operation.hpp"
#include "uringcat/endpoint.hpp"
#include "uringcat/io_context.hpp"
#include "uringcat/result.hpp"
#include "uringcat/tcp_client.hpp"
#include "uringcat/timeout.hpp"

namespace uringcat {

/// How a listener binds.
struct listen_options {
  int backlog = SOMAXCONN;
  bool reuse_address = true;  ///< SO_REUSEADDR, so a restarted server can bind at once
  bool reuse_port = false;    ///< SO_REUSEPORT
  bool v6_only = false;       ///< IPV6_V6ONLY for an IPv6 address (false: also accepts IPv4)
};

namespace detail {

/// Waits for one connection and takes it.
///
/// Without a deadline this is one IORING_OP_ACCEPT. With a deadline it waits for readiness
/// (IORING_OP_POLL_ADD on the listener, linked to its timeout) and then takes the connection
/// with a non-blocking accept4(2): nothing the kernel holds points into this object while it
/// waits, so the reactor reports the deadline itself, on time in a burst of thousands, and a
/// connection that arrives at the deadline stays queued for the next accept instead of being
/// accepted into nowhere. (The listener is non-blocking, so a connection another process
/// took first just means waiting again.)
template <bool Throws>
class accept_op final : public operation<accept_op<Throws>> {
  using base = operation<accept_op<Throws>>;

 public:
  /// `fd` is the listener's descriptor field, read again at every step (see transfer_op).
  accept_op(io_context& io, const int& fd, const endpoint& local, timeout t) noexcept
      : base(io, t), fd_(&fd), local_(&local) {}
  accept_op(io_context&, int&&, const endpoint&, timeout) = delete;  // must outlive the op
  ~accept_op() {
    if (accepted_fd_ >= 0 && !taken_) ::close(accepted_fd_);  // accepted, never handed out
  }

  bool ready_without_io() noexcept {
    if (*fd_ < 0) this->res_ = -EBADF;
    this->detachable = polling_ = this->when.is_set();
    return *fd_ < 0;
  }
  void prep(io_uring_sqe* sqe) noexcept {
    peer_len_ = sizeof peer_;
    if (polling_)
      io_uring_prep_poll_add(sqe, *fd_, POLLIN);
    else
      io_uring_prep_accept(sqe, *fd_, reinterpret_cast<sockaddr*>(&peer_), &peer_len_,
                           SOCK_CLOEXEC);
  }
  bool on_result(int res) noexcept {
    if (res < 0 && *fd_ < 0) {  // the listener was closed (and shut down) under us
      aborted_ = true;
      return false;
    }
    if (!polling_) {
      if (res >= 0) {
        accepted_fd_ = res;
        return false;
      }
      if (res != -EAGAIN) return false;
      polling_ = true;  // a kernel that honours O_NONBLOCK for IORING_OP_ACCEPT
      return this->resubmit();
    }
    if (res < 0) return false;
    if (*fd_ < 0) {  // the listener was closed while this step waited
      aborted_ = true;
      this->res_ = -ECANCELED;
      return false;
    }
    peer_len_ = sizeof peer_;
    const int fd = ::accept4(*fd_, reinterpret_cast<sockaddr*>(&peer_), &peer_len_, SOCK_CLOEXEC);
    if (fd >= 0) {
      accepted_fd_ = this->res_ = fd;
      return false;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
      this->res_ = -errno;
      return false;
    }
    if (this->when.expired()) {
      this->res_ = -ETIMEDOUT;
      return false;
    }
    return this->resubmit();
  }
  /// A connection accepted while the io_context is torn down is closed, not leaked. (A
  /// fallback poll's CQE carries an event mask, not a descriptor.)
  static void abandon_result(op_base* op, int fd) noexcept {
    if (!static_cast<accept_op*>(op)->polling_) ::close(fd);
  }

  auto await_resume() {
    const std::error_code ec =
        aborted_ ? std::make_error_code(std::errc::operation_canceled) : this->error();
    if constexpr (Throws) {
      if (ec) throw std::system_error(ec, "accept on " + local_->to_string());
      taken_ = true;
      return tcp_client(*this->io_, accepted_fd_);
    } else {
      if (ec) return result<tcp_client>(ec);
      taken_ = true;
      return result<tcp_client>(tcp_client(*this->io_, accepted_fd_));
    }
  }

  /// The peer's address (valid after a successful accept).
  endpoint peer() const { return endpoint(reinterpret_cast<const sockaddr*>(&peer_), peer_len_); }

 private:
  const int* fd_;
  const endpoint* local_;
  sockaddr_storage peer_{};
  socklen_t peer_len_ = sizeof peer_;
  int accepted_fd_ = -1;
  bool polling_ = false;
  bool aborted_ = false;
  bool taken_ = false;
};

}  // namespace detail

/// A listening TCP socket. Binding and listening happen in the constructor (synchronous
/// system calls: they never block); accept() is asynchronous.
class tcp_listener {
 public:
  /// Binds `local` (port 0: the kernel picks one; see local_endpoint()) and listens.
  /// Throws std::system_error naming the address on failure (EADDRINUSE, EACCES, ...).
  tcp_listener(io_context& io, const endpoint& local, listen_options options = {});
  tcp_listener(tcp_listener&& other) noexcept;
  tcp_listener& operator=(tcp_listener&& other) noexcept;
  tcp_listener(const tcp_listener&) = delete;
  tcp_listener& operator=(const tcp_listener&) = delete;
  ~tcp_listener();

  /// Waits for one connection. The deadline starts when awaited.
  [[nodiscard]] detail::accept_op<true> accept(timeout t = no_timeout) noexcept {
    return {*io_, fd_, local_, t};
  }
  [[nodiscard]] detail::accept_op<false> try_accept(timeout t = no_timeout) noexcept {
    return {*io_, fd_, local_, t};
  }

  /// The bound address, with the kernel-chosen port when bound to port 0.
  const endpoint& local_endpoint() const noexcept { return local_; }
  int native_handle() const noexcept { return fd_; }
  bool is_open() const noexcept { return fd_ >= 0; }
  /// Stops listening and closes the socket; a pending accept ends with operation_canceled.
  void close() noexcept;

 private:
  io_context* io_;
  int fd_ = -1;
  endpoint local_;
};

}  // namespace uringcat
