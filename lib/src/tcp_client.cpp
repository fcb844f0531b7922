// tcp_client: connect by name, socket options, and descriptor ownership.
#include "uringcat/tcp_client.hpp"

#include "uringcat/async_resolve.hpp"
#include "uringcat/connect_any.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <utility>

namespace uringcat {

tcp_client::tcp_client(tcp_client&& other) noexcept
    : io_(other.io_),
      fd_(std::exchange(other.fd_, -1)),
      source_(other.source_),
      has_source_(other.has_source_) {}

tcp_client& tcp_client::operator=(tcp_client&& other) noexcept {
  if (this != &other) {
    close_now();
    io_ = other.io_;
    fd_ = std::exchange(other.fd_, -1);
    source_ = other.source_;
    has_source_ = other.has_source_;
  }
  return *this;
}

tcp_client::~tcp_client() {
  close_now();
}

void tcp_client::close_now() noexcept {
  if (fd_ < 0) return;
  const int fd = std::exchange(fd_, -1);  // operations waiting on it see -1 when they wake
  // An operation queued in this turn must reach the kernel while the number is still ours.
  io_context::flush_current();
  // Operations in flight hold the socket open in the kernel: shutting down its receive side
  // wakes the ones waiting to receive, which then end with operation_canceled instead of
  // waiting for data or their deadline (as Asio's close() ends pending operations). Only
  // the receive side: that sends nothing, so close()'s own behaviour (FIN, or RST under
  // SO_LINGER {1, 0}) is unchanged.
  ::shutdown(fd, SHUT_RD);
  ::close(fd);
}

int tcp_client::release() noexcept {
  return std::exchange(fd_, -1);
}

task<connect_report> tcp_client::connect_with_report(std::string host, std::uint16_t port,
                                                     timeout t, connect_options options) {
  // The task is lazy: this line runs when the connect is awaited, so the deadline starts then.
  const deadline until = t.from_now();
  connect_report report;
  if (until.expired()) {  // no lookup
    report.error = std::make_error_code(std::errc::timed_out);
    co_return report;
  }
  // On the ring (c-ares), under the same deadline as the attempts: a lookup slower than the
  // deadline ends with timed_out at the deadline, and other operations run meanwhile.
  // (Not a conditional expression: g++ 12 frees a temporary twice with a co_await in each
  // arm of ?:.)
  result<std::vector<endpoint>> candidates{std::vector<endpoint>{}};
  if (options.name_resolver)
    candidates =
        co_await options.name_resolver->try_resolve(*io_, host, port, until, options.resolve);
  else
    candidates = co_await try_async_resolve(*io_, host, port, until, options.resolve);
  if (!candidates) {
    report.error = candidates.error();
    co_return report;
  }
  co_return co_await connect_any(*this, std::move(*candidates), until, std::move(options));
}

task<std::error_code> tcp_client::try_connect(std::string host, std::uint16_t port, timeout t,
                                              connect_options options) {
  co_return (co_await connect_with_report(std::move(host), port, t, std::move(options))).error;
}

task<std::error_code> tcp_client::try_connect(std::string host, std::uint16_t port, timeout t,
                                              resolve_options options) {
  connect_options o;
  o.resolve = options;
  co_return (co_await connect_with_report(std::move(host), port, t, std::move(o))).error;
}

task<void> tcp_client::connect(std::string host, std::uint16_t port, timeout t,
                               connect_options options) {
  std::string what = "connect to " + host + " port " + std::to_string(port);
  const connect_report r =
      co_await connect_with_report(std::move(host), port, t, std::move(options));
  if (r.error) {
    if (!r.attempts.empty()) what += ": " + r.describe();
    throw std::system_error(r.error, what);
  }
}

task<void> tcp_client::connect(std::string host, std::uint16_t port, timeout t,
                               resolve_options options) {
  connect_options o;
  o.resolve = options;
  co_await connect(std::move(host), port, t, std::move(o));
}

namespace {
template <class Getter>
result<endpoint> name_of(int fd, Getter get) noexcept {
  if (fd < 0) return system_error_code(EBADF);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (get(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return system_error_code(errno);
  try {
    return endpoint(reinterpret_cast<const sockaddr*>(&ss), len);
  } catch (const std::exception&) {
    return std::make_error_code(std::errc::address_family_not_supported);
  }
}
}  // namespace

result<endpoint> tcp_client::local_endpoint() const noexcept {
  return name_of(fd_, ::getsockname);
}
result<endpoint> tcp_client::remote_endpoint() const noexcept {
  return name_of(fd_, ::getpeername);
}

std::error_code tcp_client::set_no_delay(bool on) noexcept {
  const int v = on ? 1 : 0;
  if (::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) != 0)
    return system_error_code(errno);
  return {};
}

}  // namespace uringcat
