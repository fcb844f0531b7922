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

#include <algorithm>
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
      // A connect reported timed out may still be in flight in the kernel, which holds the
      // socket until its linked timeout ends it: close() alone would leave it in SYN_SENT,
      // retransmitting. shutdown() ends the handshake at once (the connect completes with
      // ECONNRESET into its slot) so the socket dies now, as with a plain close() elsewhere.
      // Measured: with 10,000 connects expiring at 1 s, exactly when their first SYN
      // retransmission is due, the retransmissions of sockets kept alive pushed p99 from
      // 0.6 to 3.4 ms.
      if (ec == std::errc::timed_out) ::shutdown(fd_, SHUT_RDWR);
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

/// send and recv, once (`All` false: returns how many bytes moved, 0 from recv meaning the
/// peer closed) or until the whole buffer moved (`All` true: send_all, recv_exact; errc::eof
/// if the peer closes first). Sends use MSG_NOSIGNAL: a reset peer is an error value
/// (broken_pipe / connection_reset), never SIGPIPE.
///
/// Without a deadline each step is one IORING_OP_SEND / IORING_OP_RECV. With a deadline the
/// operation waits for readiness instead (IORING_OP_POLL_ADD, linked to its timeout) and then
/// moves bytes with non-blocking send(2) / recv(2). While it waits, the kernel then holds no
/// pointer into the caller's buffer, so the reactor can report the deadline itself, on time
/// even when thousands expire together (a SEND or RECV linked to its timeout must wait for
/// the kernel's cancellation, which trails the deadline by milliseconds in such a burst), and
/// bytes that arrive at the deadline stay in the socket for the next recv instead of landing
/// in a buffer nobody reads. A timed send first tries at once: a writable socket needs no
/// trip through the ring at all.
///
/// The deadline of send_all / recv_exact is one deadline for the whole call (computed once,
/// when awaited), not renewed per partial step, like Python's sendall.
template <bool Throws, bool Send, bool All>
class transfer_op final : public operation<transfer_op<Throws, Send, All>> {
  using base = operation<transfer_op<Throws, Send, All>>;
  using byte_span = std::conditional_t<Send, std::span<const std::byte>, std::span<std::byte>>;

 public:
  /// `fd` is the owner's descriptor field, read again at every step: if the owner closes
  /// the socket while a step waits, the step ends with operation_canceled instead of moving
  /// bytes on whatever socket reuses the number (at once for a receive, which closing wakes;
  /// a send waiting for buffer space ends when it would have continued, or at its deadline).
  transfer_op(io_context& io, const int& fd, byte_span bytes, timeout t) noexcept
      : base(io, t), fd_(&fd), bytes_(bytes) {}
  transfer_op(io_context&, int&&, byte_span, timeout) = delete;  // must outlive the op

  bool ready_without_io() noexcept {
    if (*fd_ < 0) {
      this->res_ = -EBADF;
      return true;
    }
    if (bytes_.empty()) return true;
    this->detachable = this->when.is_set();
    if (Send && this->detachable) return !pump();  // finished without waiting
    return false;
  }

  void prep(io_uring_sqe* sqe) noexcept {
    if (this->detachable)
      io_uring_prep_poll_add(sqe, *fd_, Send ? POLLOUT : POLLIN);
    else if constexpr (Send)
      io_uring_prep_send(sqe, *fd_, bytes_.data() + done_, step(), MSG_NOSIGNAL);
    else
      io_uring_prep_recv(sqe, *fd_, bytes_.data() + done_, step(), 0);
  }

  /// Returns true when the operation continues (resubmitted), false when it has its result.
  bool on_result(int res) noexcept {
    if (!this->detachable && res <= 0 && *fd_ < 0) {  // the owner closed the socket under us
      aborted_ = true;
      return false;
    }
    if (res < 0) return false;
    if (this->detachable) {  // readiness: move what can be moved without blocking
      if (!pump()) return false;
    } else if (!account(res)) {
      return false;
    }
    if (this->when.expired()) {
      this->res_ = -ETIMEDOUT;
      return false;
    }
    return this->resubmit();
  }

  auto await_resume() {
    const std::error_code ec = aborted_ ? std::make_error_code(std::errc::operation_canceled)
                               : eof_   ? make_error_code(errc::eof)
                                        : this->error();
    if constexpr (All) {
      if constexpr (Throws) {
        if (ec) throw std::system_error(ec, Send ? "send_all" : "recv_exact");
      } else {
        return transfer_result{done_, ec};
      }
    } else if constexpr (Throws) {
      if (ec) throw std::system_error(ec, Send ? "send" : "recv");
      return done_;
    } else {
      return ec ? result<std::size_t>(ec) : result<std::size_t>(done_);
    }
  }

 private:
  // One step's length: the SQE's length field is 32 bits, and the kernel moves at most
  // MAX_RW_COUNT (INT_MAX rounded down to a page) per call anyway.
  unsigned step() const noexcept {
    constexpr std::size_t max_step = 0x7ffff000;
    return static_cast<unsigned>(std::min(bytes_.size() - done_, max_step));
  }

  // Counts `n` bytes moved (n >= 0). Returns true when more must move.
  bool account(int n) noexcept {
    if (n == 0 && !Send && !bytes_.empty()) {
      if (All) eof_ = true;  // the peer closed before the buffer was full
      this->res_ = 0;
      return false;
    }
    done_ += static_cast<std::size_t>(n);
    this->res_ = 0;
    return All && done_ < bytes_.size();
  }

  // Non-blocking steps until done, would-block or error. Returns true to wait for readiness.
  bool pump() noexcept {
    const int fd = *fd_;
    if (fd < 0) {  // closed by its owner while this step waited
      aborted_ = true;
      this->res_ = -ECANCELED;
      return false;
    }
    for (;;) {
      ssize_t n;
      if constexpr (Send)
        n = ::send(fd, bytes_.data() + done_, bytes_.size() - done_, MSG_DONTWAIT | MSG_NOSIGNAL);
      else
        n = ::recv(fd, bytes_.data() + done_, bytes_.size() - done_, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          this->res_ = 0;
          return true;
        }
        this->res_ = -errno;
        return false;
      }
      if (!account(static_cast<int>(n))) return false;
    }
  }

  const int* fd_;
  byte_span bytes_;
  std::size_t done_ = 0;
  bool eof_ = false;
  bool aborted_ = false;
};

template <bool Throws>
using send_op = transfer_op<Throws, true, false>;
template <bool Throws>
using recv_op = transfer_op<Throws, false, false>;
template <bool Throws, bool Send>
using transfer_all_op = transfer_op<Throws, Send, true>;

/// shutdown(2) of one or both directions.
template <bool Throws>
class shutdown_op final : public operation<shutdown_op<Throws>> {
  using base = operation<shutdown_op<Throws>>;

 public:
  /// `fd` is the owner's descriptor field, read when the SQE is prepared (see transfer_op).
  shutdown_op(io_context& io, const int& fd, int how, timeout t) noexcept
      : base(io, t), fd_(&fd), how_(how) {}
  shutdown_op(io_context&, int&&, int, timeout) = delete;  // must outlive the op

  bool ready_without_io() noexcept {
    if (*fd_ < 0) this->res_ = -EBADF;
    return *fd_ < 0;
  }
  void prep(io_uring_sqe* sqe) noexcept { io_uring_prep_shutdown(sqe, *fd_, how_); }

  auto await_resume() {
    const std::error_code ec = this->error();
    if constexpr (Throws) {
      if (ec) throw std::system_error(ec, "shutdown");
    } else {
      return ec;
    }
  }

 private:
  const int* fd_;
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

  bool ready_without_io() noexcept {
    // As tcp_client::close_now: operations waiting to receive on the socket end now.
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RD);
    return fd_ < 0;
  }
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
