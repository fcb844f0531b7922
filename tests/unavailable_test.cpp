// io_uring unavailable: io_context reports it as a std::system_error whose message says so
// and names the likely reason. Each case runs in a child process under a seccomp filter
// that makes io_uring_setup fail with one errno (the way kernels without io_uring and
// container runtimes' default profiles make it fail).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "deny_io_uring.hpp"
#include "uringcat/io_context.hpp"

namespace {

using uringcat::testing::deny_io_uring_setup;

// Runs in a child: 0 when io_context threw the expected error, another code otherwise.
int child_expects_unavailable(int err, const char* reason_fragment) {
  if (!deny_io_uring_setup(err)) return 10;
  try {
    uringcat::io_context io;
    return 11;  // set up anyway
  } catch (const std::system_error& e) {
    const std::string what = e.what();
    if (e.code().value() != err) return 12;
    if (what.find("io_uring is unavailable") == std::string::npos) return 13;
    if (what.find(reason_fragment) == std::string::npos) return 14;
    return 0;
  } catch (...) {
    return 15;
  }
}

int run_in_child(int err, const char* reason_fragment) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(child_expects_unavailable(err, reason_fragment));
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

#if defined(__x86_64__)
TEST(Unavailable, ENOSYSFromIoUringSetupBecomesAClearSystemError) {
  EXPECT_EQ(run_in_child(ENOSYS, "no io_uring support"), 0);
}

TEST(Unavailable, EPERMFromIoUringSetupNamesSysctlOrSeccomp) {
  EXPECT_EQ(run_in_child(EPERM, "seccomp"), 0);
}
#else
TEST(Unavailable, ENOSYSFromIoUringSetupBecomesAClearSystemError) {
  GTEST_SKIP() << "the seccomp filter in this test is written for x86_64";
}
#endif

}  // namespace
