// A loopback address where TCP connects hang: the one helper that tests and benchmarks use
// to get a connect timeout without sending a packet anywhere but 127.0.0.1 (or ::1).
//
// How it works: a listener with a backlog of 0 whose accept queue is filled by a couple of
// connects that are never accepted. Once the queue is full, the kernel drops further SYNs
// (it does not answer them, even with syncookies), so a new connect() stays in SYN_SENT and
// waits until its caller's timeout or the kernel's own SYN retry limit.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace uringcat::testing {

class loopback_black_hole {
 public:
  /// Binds 127.0.0.1 (or ::1 when `ipv6`) on an ephemeral port and fills its accept queue.
  explicit loopback_black_hole(bool ipv6 = false) : ipv6_(ipv6) {
    listener_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener_ < 0) fail("socket");
    sockaddr_storage ss{};
    socklen_t len = fill_loopback(ss, 0);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&ss), len) != 0) fail("bind");
    if (::listen(listener_, 0) != 0) fail("listen");
    if (::getsockname(listener_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) fail("getsockname");
    port_ = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6&>(ss).sin6_port
                       : reinterpret_cast<sockaddr_in&>(ss).sin_port);
    // With backlog 0 the queue holds one connection; a second makes sure it is full.
    for (int i = 0; i < 2; ++i) {
      int fd = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) fail("socket");
      fillers_.push_back(fd);
      fill_loopback(ss, port_);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 && errno != EINPROGRESS)
        fail("connect");
    }
    // Let the handshakes of the fillers finish so that later SYNs meet a full queue.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  loopback_black_hole(const loopback_black_hole&) = delete;
  loopback_black_hole& operator=(const loopback_black_hole&) = delete;

  ~loopback_black_hole() {
    for (int fd : fillers_) ::close(fd);
    if (listener_ >= 0) ::close(listener_);
  }

  std::uint16_t port() const noexcept { return port_; }

  /// "127.0.0.1:PORT" or "[::1]:PORT".
  std::string address() const {
    return (ipv6_ ? std::string("[::1]:") : std::string("127.0.0.1:")) + std::to_string(port_);
  }

  /// The black hole as a sockaddr, for code that does not use uringcat::endpoint.
  socklen_t sockaddr_of(sockaddr_storage& ss) const noexcept { return fill_loopback(ss, port_); }

 private:
  socklen_t fill_loopback(sockaddr_storage& ss, std::uint16_t port) const noexcept {
    std::memset(&ss, 0, sizeof ss);
    if (ipv6_) {
      auto& a = reinterpret_cast<sockaddr_in6&>(ss);
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_loopback;
      a.sin6_port = htons(port);
      return sizeof(sockaddr_in6);
    }
    auto& a = reinterpret_cast<sockaddr_in&>(ss);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return sizeof(sockaddr_in);
  }

  [[noreturn]] static void fail(const char* what) {
    throw std::system_error(errno, std::system_category(),
                            std::string("loopback_black_hole: ") + what);
  }

  bool ipv6_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::vector<int> fillers_;
};

}  // namespace uringcat::testing
