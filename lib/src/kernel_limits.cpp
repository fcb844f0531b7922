// The connect give-up model of kernel_limits.hpp, and reading the sysctls it needs.
#include "uringcat/kernel_limits.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace uringcat {
namespace {

using std::chrono::milliseconds;

// include/net/tcp.h
constexpr milliseconds tcp_timeout_init{1000};  // TCP_TIMEOUT_INIT: the first SYN's RTO
constexpr milliseconds tcp_rto_max{120000};     // TCP_RTO_MAX
constexpr int max_tcp_syncnt = 127;             // MAX_TCP_SYNCNT

constexpr const char* sysctl_dir = "/proc/sys/net/ipv4/";

// ilog2() of the kernel: the index of the highest set bit.
int ilog2(std::int64_t v) noexcept {
  int log = -1;
  while (v > 0) {
    v >>= 1;
    ++log;
  }
  return log;
}

// tcp_model_timeout(): the time `boundary` exponentially backed-off retransmissions take from
// `rto_base`, growing linearly once the RTO would pass rto_max.
milliseconds model_timeout(int boundary, milliseconds rto_base, milliseconds rto_max) noexcept {
  const int linear_backoff_thresh = ilog2(rto_max / rto_base);
  if (boundary <= linear_backoff_thresh) return ((std::int64_t{2} << boundary) - 1) * rto_base;
  return ((std::int64_t{2} << linear_backoff_thresh) - 1) * rto_base +
         (boundary - linear_backoff_thresh) * rto_max;
}

// One integer from a sysctl file. Opened and read with plain syscalls so that errno (ENOENT
// for a sysctl this kernel does not have) reaches the caller.
std::error_code read_sysctl(const std::string& path, long& value) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {errno, std::system_category()};
  char buf[64];
  ssize_t n;
  do {
    n = ::read(fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  const int read_errno = errno;
  ::close(fd);
  if (n < 0) return {read_errno, std::system_category()};

  std::string_view text(buf, static_cast<std::size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty())
    return std::make_error_code(std::errc::bad_message);
  return {};
}

// Fills `out`; on failure returns the error and the file it came from.
std::error_code read_settings(syn_settings& out, std::string& failed_path) {
  long value = 0;
  failed_path = std::string(sysctl_dir) + "tcp_syn_retries";
  if (auto ec = read_sysctl(failed_path, value)) return ec;
  if (value < 1 || value > max_tcp_syncnt) return std::make_error_code(std::errc::bad_message);
  out.syn_retries = static_cast<int>(value);

  // Added in Linux 6.5; older kernels back off exponentially from the first retry.
  failed_path = std::string(sysctl_dir) + "tcp_syn_linear_timeouts";
  if (auto ec = read_sysctl(failed_path, value)) {
    if (ec != std::errc::no_such_file_or_directory) return ec;
    value = 0;
  }
  if (value < 0 || value > max_tcp_syncnt) return std::make_error_code(std::errc::bad_message);
  out.syn_linear_timeouts = static_cast<int>(value);

  // Added in Linux 6.15; before, the cap was the constant TCP_RTO_MAX.
  failed_path = std::string(sysctl_dir) + "tcp_rto_max_ms";
  if (auto ec = read_sysctl(failed_path, value)) {
    if (ec != std::errc::no_such_file_or_directory) return ec;
    value = tcp_rto_max.count();
  }
  if (value < 1 || value > tcp_rto_max.count()) return std::make_error_code(std::errc::bad_message);
  out.rto_max = milliseconds(value);

  failed_path.clear();
  return {};
}

syn_settings read_settings_or_throw() {
  syn_settings settings{};
  std::string failed_path;
  if (auto ec = read_settings(settings, failed_path))
    throw std::system_error(ec, "max_connect_timeout: cannot read " + failed_path);
  return settings;
}

}  // namespace

std::optional<syn_settings> read_syn_settings() {
  syn_settings settings{};
  std::string failed_path;
  if (read_settings(settings, failed_path)) return std::nullopt;
  return settings;
}

milliseconds model_connect_give_up(int syn_retries, int syn_linear_timeouts,
                                   milliseconds rto_max) noexcept {
  syn_retries = std::clamp(syn_retries, 1, max_tcp_syncnt);
  syn_linear_timeouts = std::clamp(syn_linear_timeouts, 0, max_tcp_syncnt);
  rto_max = std::clamp(rto_max, tcp_timeout_init, tcp_rto_max);

  // tcp_write_timeout()'s two conditions in SYN_SENT, see the header.
  const int max_retransmits = syn_retries + syn_linear_timeouts;
  const milliseconds budget = model_timeout(syn_retries, tcp_timeout_init, rto_max);

  // Replay tcp_retransmit_timer() expiry by expiry. Ends by the count condition at the latest,
  // after at most max_retransmits + 1 (<= 255) expiries.
  milliseconds now{0};  // since the first SYN (tp->retrans_stamp)
  milliseconds rto = tcp_timeout_init;
  for (int retransmits = 0;; ++retransmits) {
    now += rto;
    if (retransmits >= max_retransmits) return now;
    if (retransmits > 0 && now >= budget) return now;  // retransmits_timed_out()
    // Retransmit; tp->total_rto == retransmits + 1 for a connect that never got an answer.
    if (retransmits + 1 > syn_linear_timeouts) rto = std::min(rto * 2, rto_max);
  }
}

milliseconds max_connect_timeout() {
  const syn_settings s = read_settings_or_throw();
  return model_connect_give_up(s.syn_retries, s.syn_linear_timeouts, s.rto_max);
}

milliseconds max_connect_timeout(int syn_count) {
  if (syn_count < 1 || syn_count > max_tcp_syncnt)
    throw std::invalid_argument("max_connect_timeout: TCP_SYNCNT " + std::to_string(syn_count) +
                                " is outside 1.." + std::to_string(max_tcp_syncnt));
  const syn_settings s = read_settings_or_throw();
  return model_connect_give_up(syn_count, s.syn_linear_timeouts, s.rto_max);
}

}  // namespace uringcat
