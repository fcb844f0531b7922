// The kernel's own limit on how long a TCP connect() may take, modelled from its sysctls.
//
// A connect timeout longer than this limit is never reached: the kernel gives up first with
// ETIMEDOUT (which tcp_client reports as timed_out too). Callers use max_connect_timeout()
// to say so, as the seed example does, and tests use the model to predict when a connect to
// a black hole ends.
//
// What the kernel does (net/ipv4/tcp_timer.c, Linux 6.5 and later; checked against 6.18):
//
//  * tcp_connect() (tcp_output.c) sends the SYN, stamps tp->retrans_stamp, and arms the
//    retransmit timer with icsk_rto = tcp_timeout_init() = TCP_TIMEOUT_INIT = 1 s.
//  * Each time the timer fires, tcp_retransmit_timer() first calls tcp_write_timeout(). In
//    SYN_SENT that gives up (tcp_write_err(): ETIMEDOUT) when either
//      - the count is reached: icsk_retransmits >= retry_until + tcp_syn_linear_timeouts,
//        where retry_until = icsk_syn_retries (TCP_SYNCNT) or else sysctl tcp_syn_retries; or
//      - the time budget is spent: retransmits_timed_out(sk, retry_until, 0) checks, once at
//        least one retransmission happened, the time since retrans_stamp against
//        tcp_model_timeout(retry_until, rto_base = 1 s), the classic exponential sum
//        (2^(n+1) - 1) s, which past ilog2(rto_max / 1 s) doublings (6 for the default
//        rto_max of 120 s) grows by rto_max per retry instead. This budget ignores the linear
//        timeouts.
//    Otherwise it retransmits the SYN and re-arms the timer. The RTO stays 1 s while the
//    number of RTOs so far (tp->total_rto; icsk_backoff in the first version) is at most
//    tcp_syn_linear_timeouts, then doubles, capped at rto_max (TCP_RTO_MAX = 120 s; since 6.15
//    the sysctl tcp_rto_max_ms, or TCP_RTO_MAX_MS per socket).
//  * So with tcp_syn_linear_timeouts = L the SYNs go out at 0, 1, 2, ..., L, L+1, L+3, L+7, ...
//    and the connect ends at the first timer expiry where either condition holds. For 6 retries
//    and L = 4: expiries at 1..5, 7, 11, 19, 35, 67, 131 s; the 127 s budget is not yet spent
//    at 67 s, and at 131 s the 10th retransmission (6 + 4) has happened: 131 s, not the
//    classic 127 s (ip-sysctl.rst says the same). With L = 0 both conditions meet at the classic
//    1 + 2 + ... + 2^n.
//  * TCP_SYNCNT interacts with linear timeouts: it replaces tcp_syn_retries in both conditions,
//    but the linear schedule and the + L in the count still come from the sysctl. With L = 4,
//    TCP_SYNCNT 1 -> 3 s and 2 -> 7 s (the budget lands on an expiry: more SYNs, classic
//    time), but 3 -> 19 s and 4 -> 35 s where the classic model says 15 s and 31 s.
//  * tcp_syn_linear_timeouts (added in 6.5) is absent on older kernels, which behave as L = 0.
//
// Timer slack: the retransmit timer lives on the kernel's timer wheel (kernel/time/timer.c),
// which never fires early but rounds each expiry up to the granularity of the wheel level the
// timer lands in (calc_index()). A level's granularity is at most 8/63 (about 12.7%) of the
// shortest timeout it holds, so each expiry, and therefore the give-up time, may come up to
// 12.7% later than modelled; max_timer_wheel_slack() gives that bound. In practice it is far
// less (measured on 6.18, HZ=250: 3.05-3.08 s for 3 s, 7.14 s for 7, 19.46 s for 19, 35.59 s
// for 35, 134 s for 131). One caveat: if the accumulated slack pushes an earlier expiry past
// the time budget, the kernel gives up at that expiry, before the modelled one (never before
// the budget). With the defaults that needs 60 s of slack (the expiry at 67 s against the
// 127 s budget); only retry counts in the dozens, whose 120 s expiries each add up to a few
// seconds, get there.
#pragma once

#include <chrono>
#include <optional>

namespace uringcat {

/// The kernel's TCP SYN retransmission settings (/proc/sys/net/ipv4).
struct syn_settings {
  /// tcp_syn_retries: SYN retransmissions before giving up (1..127).
  int syn_retries;
  /// tcp_syn_linear_timeouts: retransmissions at the initial RTO before exponential backoff;
  /// 0 on kernels before 6.5, which do not have the sysctl.
  int syn_linear_timeouts;
  /// tcp_rto_max_ms: the cap on the backed-off RTO; 120 s (TCP_RTO_MAX) on kernels before 6.15.
  std::chrono::milliseconds rto_max = std::chrono::seconds(120);
};

/// Reads the running kernel's settings (of the calling thread's network namespace).
/// std::nullopt if tcp_syn_retries cannot be read or one of the files holds garbage.
std::optional<syn_settings> read_syn_settings();

/// When the kernel gives up a connect that is never answered, per the logic above: the time
/// from the first SYN to the timer expiry at which tcp_write_timeout() reports ETIMEDOUT,
/// without timer-wheel slack. Pure: depends only on its arguments. Values outside the
/// kernel's ranges are clamped to them (syn_retries 1..127, syn_linear_timeouts 0..127,
/// rto_max 1..120 s).
std::chrono::milliseconds model_connect_give_up(
    int syn_retries, int syn_linear_timeouts,
    std::chrono::milliseconds rto_max = std::chrono::seconds(120)) noexcept;

/// The most the timer wheel can add to a modelled give-up time (see the top of this file):
/// 8/63 of it, rounded up.
constexpr std::chrono::milliseconds max_timer_wheel_slack(
    std::chrono::milliseconds give_up) noexcept {
  return (give_up * 8 + std::chrono::milliseconds(62)) / 63;
}

/// The running kernel's limit on a connect(): model_connect_give_up() with its sysctls.
/// Throws std::system_error if they cannot be read.
std::chrono::milliseconds max_connect_timeout();

/// The limit for a socket with setsockopt(TCP_SYNCNT, syn_count): the count replaces
/// tcp_syn_retries, the other sysctls still apply. Throws std::invalid_argument if syn_count
/// is outside 1..127 (the kernel rejects those), std::system_error if the sysctls cannot be read.
std::chrono::milliseconds max_connect_timeout(int syn_count);

}  // namespace uringcat
