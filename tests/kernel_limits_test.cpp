// Tests for kernel_limits: the give-up model against values derived from the kernel source,
// and once against the running kernel itself (a connect into a loopback black hole).
#include "uringcat/kernel_limits.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "loopback_black_hole.hpp"

namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using uringcat::model_connect_give_up;

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

struct model_case {
  const char* name;
  int syn_retries;
  int syn_linear_timeouts;
  milliseconds rto_max;
  milliseconds give_up;
};

void PrintTo(const model_case& c, std::ostream* os) {
  *os << c.name;
}

class ModelConnectGiveUp : public ::testing::TestWithParam<model_case> {};

TEST_P(ModelConnectGiveUp, MatchesTheKernelsSchedule) {
  const model_case& c = GetParam();
  EXPECT_EQ(model_connect_give_up(c.syn_retries, c.syn_linear_timeouts, c.rto_max), c.give_up);
}

// Expiries: with L linear timeouts the RTOs are L+1 times 1 s, then 2, 4, 8, ... s; the kernel
// stops at the first expiry after syn_retries + L retransmissions or after the
// tcp_model_timeout() budget (2^(n+1) - 1 s) is spent.
INSTANTIATE_TEST_SUITE_P(
    Cases, ModelConnectGiveUp,
    ::testing::Values(
        // Classic kernels (no tcp_syn_linear_timeouts): 1 + 2 + ... + 2^n.
        model_case{"ClassicSixRetries", 6, 0, 120s, 127s},
        model_case{"ClassicOneRetry", 1, 0, 120s, 3s},
        model_case{"ClassicTwoRetries", 2, 0, 120s, 7s},
        model_case{"ClassicFiveRetries", 5, 0, 120s, 63s},
        // Past 2^6 s the RTO is capped at 120 s and the budget grows by 120 s per retry.
        model_case{"ClassicEightRetriesHitRtoMax", 8, 0, 120s, 367s},
        model_case{"ClassicFifteenRetries", 15, 0, 120s, 1207s},
        // Linux >= 6.5 defaults (L = 4): measured 134 s, 3.08 s, 7.13 s on 6.18.
        model_case{"LinearSixRetries", 6, 4, 120s, 131s},
        model_case{"LinearOneRetry", 1, 4, 120s, 3s},
        model_case{"LinearTwoRetries", 2, 4, 120s, 7s},
        model_case{"LinearThreeRetries", 3, 4, 120s, 19s},
        model_case{"LinearFourRetries", 4, 4, 120s, 35s},
        model_case{"LinearFiveRetries", 5, 4, 120s, 67s},
        // One linear timeout: SYNs at 0, 1, 2, 4, ... and the count ends it after the budget.
        model_case{"OneLinearTimeoutOneRetry", 1, 1, 120s, 4s},
        model_case{"OneLinearTimeoutSixRetries", 6, 1, 120s, 128s},
        // tcp_rto_max_ms = 5 s (Linux >= 6.15): 1, 2, 4, then 5 s steps.
        model_case{"LowRtoMax", 6, 0, 5s, 27s}),
    [](const ::testing::TestParamInfo<model_case>& info) { return std::string(info.param.name); });

TEST(ModelConnectGiveUpLimits, ClampsArgumentsToTheKernelsRanges) {
  EXPECT_EQ(model_connect_give_up(0, -1), model_connect_give_up(1, 0));
  EXPECT_EQ(model_connect_give_up(1000, 1000), model_connect_give_up(127, 127));
  EXPECT_EQ(model_connect_give_up(6, 0, 1h), model_connect_give_up(6, 0, 120s));
  EXPECT_EQ(model_connect_give_up(6, 0, 0ms), model_connect_give_up(6, 0, 1s));
}

TEST(ModelConnectGiveUpLimits, GrowsWithEveryRetry) {
  for (int linear : {0, 1, 4, 127}) {
    for (int retries = 1; retries < 127; ++retries) {
      EXPECT_LT(model_connect_give_up(retries, linear), model_connect_give_up(retries + 1, linear))
          << "retries " << retries << ", linear timeouts " << linear;
    }
  }
}

TEST(MaxTimerWheelSlack, IsEightSixtyThirdsRoundedUp) {
  EXPECT_EQ(uringcat::max_timer_wheel_slack(63s), 8s);
  EXPECT_EQ(uringcat::max_timer_wheel_slack(3000ms), 381ms);
  EXPECT_EQ(uringcat::max_timer_wheel_slack(0ms), 0ms);
}

// ---------------------------------------------------------------------------
// The running kernel
// ---------------------------------------------------------------------------

int read_proc_int(const char* path) {
  std::ifstream in(path);
  int value = -1;
  in >> value;
  return value;
}

TEST(ReadSynSettings, ReadsTheRunningKernelsSysctls) {
  auto settings = uringcat::read_syn_settings();
  ASSERT_TRUE(settings.has_value());
  EXPECT_EQ(settings->syn_retries, read_proc_int("/proc/sys/net/ipv4/tcp_syn_retries"));
  int linear = read_proc_int("/proc/sys/net/ipv4/tcp_syn_linear_timeouts");
  EXPECT_EQ(settings->syn_linear_timeouts, linear < 0 ? 0 : linear);
  EXPECT_GE(settings->rto_max, 1s);
  EXPECT_LE(settings->rto_max, 120s);
}

TEST(MaxConnectTimeout, IsTheModelForTheRunningKernelsSysctls) {
  auto s = uringcat::read_syn_settings();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(uringcat::max_connect_timeout(),
            model_connect_give_up(s->syn_retries, s->syn_linear_timeouts, s->rto_max));
}

TEST(MaxConnectTimeout, WithSynCountReplacesOnlyTheRetryCount) {
  auto s = uringcat::read_syn_settings();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(uringcat::max_connect_timeout(2),
            model_connect_give_up(2, s->syn_linear_timeouts, s->rto_max));
}

TEST(MaxConnectTimeout, RejectsASynCountTheKernelRejects) {
  EXPECT_THROW(uringcat::max_connect_timeout(0), std::invalid_argument);
  EXPECT_THROW(uringcat::max_connect_timeout(128), std::invalid_argument);
}

// The model against the kernel itself: a blocking connect (no SO_SNDTIMEO, so only the
// kernel's SYN retry logic ends it) into a loopback listener whose accept queue is full.
TEST(ConnectToBlackHole, KernelGivesUpWithinTheModelForSynCountOne) {
  const milliseconds model = uringcat::max_connect_timeout(1);
  const milliseconds latest = model + uringcat::max_timer_wheel_slack(model) + 1s;

  uringcat::testing::loopback_black_hole hole;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  int syn_count = 1;
  ASSERT_EQ(::setsockopt(fd, IPPROTO_TCP, TCP_SYNCNT, &syn_count, sizeof syn_count), 0)
      << std::strerror(errno);
  sockaddr_storage ss{};
  socklen_t len = hole.sockaddr_of(ss);

  const auto start = std::chrono::steady_clock::now();
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&ss), len);
  const int err = errno;
  const auto elapsed =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start);
  ::close(fd);

  ASSERT_EQ(rc, -1) << "connect to the black hole succeeded";
  EXPECT_EQ(err, ETIMEDOUT) << std::strerror(err);
  EXPECT_GE(elapsed, model);
  EXPECT_LE(elapsed, latest);
  RecordProperty("model_ms", static_cast<int>(model.count()));
  RecordProperty("give_up_ms", static_cast<int>(elapsed.count()));
  std::printf("kernel gave up after %lld ms (model %lld ms, latest allowed %lld ms)\n",
              static_cast<long long>(elapsed.count()), static_cast<long long>(model.count()),
              static_cast<long long>(latest.count()));
}

}  // namespace
