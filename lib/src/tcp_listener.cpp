// tcp_listener: socket, options, bind and listen.
#include "uringcat/tcp_listener.hpp"

#include <netinet/in.h>

#include <cerrno>
#include <string>
#include <utility>

namespace uringcat {

tcp_listener::tcp_listener(io_context& io, const endpoint& local, listen_options options)
    : io_(&io), local_(local) {
  auto fail = [&](const char* step) {
    const int err = errno;
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
    throw std::system_error(err, std::system_category(),
                            std::string(step) + " " + local.to_string());
  };
  // Non-blocking: a timed accept takes its connection with accept4(2) after the ring said
  // the listener is readable, and must not block if someone else took it first.
  fd_ = ::socket(local.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (fd_ < 0) fail("socket for");
  const int one = 1;
  if (options.reuse_address && ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
    fail("SO_REUSEADDR on");
  if (options.reuse_port && ::setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
    fail("SO_REUSEPORT on");
  if (local.is_v6()) {
    const int v6only = options.v6_only ? 1 : 0;
    if (::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0)
      fail("IPV6_V6ONLY on");
  }
  if (::bind(fd_, local.data(), local.size()) != 0) fail("bind");
  if (::listen(fd_, options.backlog) != 0) fail("listen on");
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) fail("getsockname of");
  local_ = endpoint(reinterpret_cast<const sockaddr*>(&ss), len);
}

tcp_listener::tcp_listener(tcp_listener&& other) noexcept
    : io_(other.io_), fd_(std::exchange(other.fd_, -1)), local_(other.local_) {}

tcp_listener& tcp_listener::operator=(tcp_listener&& other) noexcept {
  if (this != &other) {
    close();
    io_ = other.io_;
    fd_ = std::exchange(other.fd_, -1);
    local_ = other.local_;
  }
  return *this;
}

tcp_listener::~tcp_listener() {
  close();
}

void tcp_listener::close() noexcept {
  if (fd_ < 0) return;
  const int fd = std::exchange(fd_, -1);
  io_context::flush_current();  // see tcp_client::close_now
  ::shutdown(fd, SHUT_RD);      // wakes a pending accept, which ends with operation_canceled
  ::close(fd);
}

}  // namespace uringcat
