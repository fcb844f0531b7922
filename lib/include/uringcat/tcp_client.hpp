// tcp_client: a TCP connection driven by an io_context, with a deadline on every operation.
//
//   uringcat::tcp_client client(io);
//   co_await client.connect(uringcat::endpoint::parse("127.0.0.1:9999"), 3.5s);
//   co_await client.send_all("data\n", 5.5s);
//   std::size_t n = co_await client.recv(buffer, 5.5s);
//
// Every operation takes an optional `timeout` (any std::chrono::duration, an absolute
// deadline, or no_timeout) that starts when the operation is awaited. Failures throw
// std::system_error whose code() compares equal to std::errc::timed_out,
// connection_refused, connection_reset, broken_pipe, ...; the try_ spelling of each
// operation returns the error as a value instead and never throws for I/O errors.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "uringcat/connect_options.hpp"
#include "uringcat/detail/socket_ops.hpp"
#include "uringcat/endpoint.hpp"
#include "uringcat/io_context.hpp"
#include "uringcat/resolve.hpp"
#include "uringcat/result.hpp"
#include "uringcat/task.hpp"
#include "uringcat/timeout.hpp"

namespace uringcat {

/// A TCP stream socket. Owns its descriptor (closed by the destructor). Movable, but not
/// while an operation on it is in flight. All operations run on the io_context's thread.
class tcp_client {
 public:
  /// An unconnected client; connect() creates the socket.
  tcp_client() noexcept = default;
  explicit tcp_client(io_context& io) noexcept : io_(&io) {}
  /// Adopts a connected descriptor (what tcp_listener::accept returns).
  tcp_client(io_context& io, int fd) noexcept : io_(&io), fd_(fd) {}
  tcp_client(tcp_client&& other) noexcept;
  tcp_client& operator=(tcp_client&& other) noexcept;
  tcp_client(const tcp_client&) = delete;
  tcp_client& operator=(const tcp_client&) = delete;
  ~tcp_client();

  // --- connect -----------------------------------------------------------------------------

  /// Connects to `ep`. The deadline starts when awaited. On timeout, refusal or any other
  /// failure the socket is closed (a cancelled connect leaves it in an undefined state) and
  /// the client can connect again. No heap allocation.
  [[nodiscard]] detail::connect_op<true> connect(const endpoint& ep,
                                                 timeout t = no_timeout) noexcept {
    return {*io_, fd_, source_ptr(), ep, t};
  }
  [[nodiscard]] detail::connect_op<false> try_connect(const endpoint& ep,
                                                      timeout t = no_timeout) noexcept {
    return {*io_, fd_, source_ptr(), ep, t};
  }

  /// Resolves `host` and connects to its addresses by Happy Eyeballs (RFC 8305, see
  /// connect_any.hpp): families interleaved, a new attempt every `attempt_delay` (250 ms by
  /// default) or as soon as the running ones failed, the first to connect wins, the others
  /// are cancelled and closed. One deadline covers resolution and every attempt.
  /// Resolution runs on the ring (async_resolve.hpp: c-ares, /etc/hosts and DNS; or
  /// options.name_resolver), so a slow lookup never blocks the reactor and ends with
  /// timed_out at the deadline. connect() throws std::system_error
  /// whose code() is the report's error and whose what() lists every attempt
  /// ("... [::1]:9999 refused; 127.0.0.1:9999 timed out").
  task<void> connect(std::string host, std::uint16_t port, timeout t = no_timeout,
                     resolve_options options = {});
  task<void> connect(std::string host, std::uint16_t port, timeout t, connect_options options);
  task<std::error_code> try_connect(std::string host, std::uint16_t port, timeout t = no_timeout,
                                    resolve_options options = {});
  task<std::error_code> try_connect(std::string host, std::uint16_t port, timeout t,
                                    connect_options options);
  /// As try_connect by name, returning what every attempt did (for a verbose log).
  task<connect_report> connect_with_report(std::string host, std::uint16_t port,
                                           timeout t = no_timeout, connect_options options = {});

  /// Sets the source address of later connects (port 0: chosen by the kernel). Every
  /// connect attempt binds its new socket to it.
  void set_source(const endpoint& local) noexcept {
    source_ = local;
    has_source_ = true;
  }

  // --- send --------------------------------------------------------------------------------

  /// One send: returns how many bytes the kernel took (may be fewer than given).
  [[nodiscard]] detail::send_op<true> send(std::span<const std::byte> bytes,
                                           timeout t = no_timeout) noexcept {
    return {*io_, fd_, bytes, t};
  }
  [[nodiscard]] detail::send_op<true> send(std::string_view text, timeout t = no_timeout) noexcept {
    return {*io_, fd_, std::as_bytes(std::span(text)), t};
  }
  [[nodiscard]] detail::send_op<false> try_send(std::span<const std::byte> bytes,
                                                timeout t = no_timeout) noexcept {
    return {*io_, fd_, bytes, t};
  }

  /// Sends every byte; the timeout is a deadline for the whole call, not per partial send.
  [[nodiscard]] detail::transfer_all_op<true, true> send_all(std::span<const std::byte> bytes,
                                                             timeout t = no_timeout) noexcept {
    return {*io_, fd_, bytes, t};
  }
  [[nodiscard]] detail::transfer_all_op<true, true> send_all(std::string_view text,
                                                             timeout t = no_timeout) noexcept {
    return {*io_, fd_, std::as_bytes(std::span(text)), t};
  }
  [[nodiscard]] detail::transfer_all_op<false, true> try_send_all(std::span<const std::byte> bytes,
                                                                  timeout t = no_timeout) noexcept {
    return {*io_, fd_, bytes, t};
  }

  // --- recv --------------------------------------------------------------------------------

  /// One receive: returns the bytes received, 0 when the peer closed its side. If the data
  /// arrives as the deadline passes, the data wins: received bytes are never dropped.
  [[nodiscard]] detail::recv_op<true> recv(std::span<std::byte> buffer,
                                           timeout t = no_timeout) noexcept {
    return {*io_, fd_, buffer, t};
  }
  [[nodiscard]] detail::recv_op<false> try_recv(std::span<std::byte> buffer,
                                                timeout t = no_timeout) noexcept {
    return {*io_, fd_, buffer, t};
  }

  /// Fills the whole buffer; errc::eof if the peer closes first. One deadline for the call.
  [[nodiscard]] detail::transfer_all_op<true, false> recv_exact(std::span<std::byte> buffer,
                                                                timeout t = no_timeout) noexcept {
    return {*io_, fd_, buffer, t};
  }
  [[nodiscard]] detail::transfer_all_op<false, false> try_recv_exact(
      std::span<std::byte> buffer, timeout t = no_timeout) noexcept {
    return {*io_, fd_, buffer, t};
  }

  // --- shutdown and close ------------------------------------------------------------------

  /// shutdown(2): SHUT_WR sends FIN after queued data (a half-close), SHUT_RD, SHUT_RDWR.
  [[nodiscard]] detail::shutdown_op<true> shutdown(int how = SHUT_WR,
                                                   timeout t = no_timeout) noexcept {
    return {*io_, fd_, how, t};
  }
  [[nodiscard]] detail::shutdown_op<false> try_shutdown(int how = SHUT_WR,
                                                        timeout t = no_timeout) noexcept {
    return {*io_, fd_, how, t};
  }
  /// Closes the socket through the ring; the client is closed at once (is_open() is false)
  /// and, as with close_now(), operations waiting to receive on it end with
  /// operation_canceled.
  [[nodiscard]] detail::close_op<true> close() noexcept { return {*io_, fd_}; }
  /// Closes the socket now (close(2) of a socket does not block without SO_LINGER). Its
  /// receive side is shut down first, so an operation waiting to receive ends at once with
  /// operation_canceled, as Asio's close() ends pending operations with operation_aborted; a
  /// send waiting for buffer space ends when it would have continued, or at its deadline.
  void close_now() noexcept;

  // --- state -------------------------------------------------------------------------------

  bool is_open() const noexcept { return fd_ >= 0; }
  int native_handle() const noexcept { return fd_; }
  /// Gives up ownership of the descriptor.
  int release() noexcept;
  io_context& context() const noexcept { return *io_; }
  /// getsockname / getpeername; error if not open or not connected.
  result<endpoint> local_endpoint() const noexcept;
  result<endpoint> remote_endpoint() const noexcept;
  /// TCP_NODELAY.
  std::error_code set_no_delay(bool on) noexcept;

 private:
  const endpoint* source_ptr() const noexcept { return has_source_ ? &source_ : nullptr; }

  io_context* io_ = nullptr;
  int fd_ = -1;
  endpoint source_{};
  bool has_source_ = false;
};

}  // namespace uringcat
