// io_uring unavailable: io_context reports it as a std::system_error whose message says so
// and names the likely reason. Each case runs in a child process under a seccomp filter
// that makes io_uring_setup fail with one errno (the way kernels without io_uring and
// container runtimes' default profiles make it fail).
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "uringcat/io_context.hpp"

namespace {

// Installs a filter: io_uring_setup fails with `err`, every other syscall is allowed.
bool deny_io_uring_setup(int err) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),  // another ABI: leave it alone
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K,
               SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
}

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
