// Small helpers shared by the tests: descriptor counting, RLIMIT_NOFILE, loopback peers.
#pragma once

#include <dirent.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>

namespace uringcat::testing {

/// Open descriptors of this process (entries of /proc/self/fd, minus the one opendir uses).
inline int count_open_fds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  while (::readdir(d)) ++n;
  ::closedir(d);
  return n - 3;  // ".", ".." and the directory's own descriptor
}

/// Raises the soft RLIMIT_NOFILE to at least `wanted` (up to the hard limit). Returns
/// whether the limit is now at least `wanted`.
inline bool raise_nofile(rlim_t wanted) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  if (rl.rlim_cur >= wanted) return true;
  rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= wanted ? wanted : rl.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  return rl.rlim_cur >= wanted;
}

/// Milliseconds since `start`, as a double.
inline double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

/// Whether ::1 can be bound here (a container may have IPv6 off): tests that need it skip.
inline bool have_ipv6_loopback() {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_addr = in6addr_loopback;
  const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6) == 0;
  ::close(fd);
  return ok;
}

}  // namespace uringcat::testing
