// without_io_uring ENOSYS|EPERM PROGRAM [ARGS...]: runs PROGRAM with io_uring_setup denied by
// a seccomp filter (tests/support/deny_io_uring.hpp), so that the CLI tests can check what
// uringcat does where io_uring is unavailable. Exits 127 if the filter or the exec fails.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "deny_io_uring.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: without_io_uring ENOSYS|EPERM PROGRAM [ARGS...]\n");
    return 127;
  }
  const int err = std::strcmp(argv[1], "ENOSYS") == 0  ? ENOSYS
                  : std::strcmp(argv[1], "EPERM") == 0 ? EPERM
                                                       : 0;
  if (err == 0) {
    std::fprintf(stderr, "without_io_uring: unknown errno '%s'\n", argv[1]);
    return 127;
  }
  if (!uringcat::testing::deny_io_uring_setup(err)) {
    std::perror("without_io_uring: seccomp");
    return 127;
  }
  ::execvp(argv[2], argv + 2);
  std::perror("without_io_uring: exec");
  return 127;
}
