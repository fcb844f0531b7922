// A tiny DNS server on 127.0.0.1 for resolver tests: answers A and AAAA queries from a table
// the test fills, NXDOMAIN for names it does not know, after a configurable delay, or never
// (silent). It runs on its own thread, polls its UDP socket in 20 ms steps so it stops
// promptly, and counts every query it receives (to prove that some lookups send none).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace uringcat::testing {

class dns_responder {
 public:
  dns_responder() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::system_error(errno, std::system_category(), "dns_responder: socket");
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sin), &len) != 0) {
      const int err = errno;
      ::close(fd_);
      throw std::system_error(err, std::system_category(), "dns_responder: bind");
    }
    port_ = ntohs(sin.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~dns_responder() {
    stop_ = true;
    thread_.join();  // bounded: the loop checks stop_ every 20 ms
    ::close(fd_);
  }
  dns_responder(const dns_responder&) = delete;
  dns_responder& operator=(const dns_responder&) = delete;

  /// "127.0.0.1:port", for resolver_options::servers.
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
  std::uint16_t port() const { return port_; }

  /// Makes `name` known (a name with no addresses answers NOERROR with no records).
  void add_name(const std::string& name) {
    std::lock_guard lock(mutex_);
    table_[lower(name)];
  }
  void add_a(const std::string& name, const char* v4) {
    std::array<unsigned char, 4> a{};
    if (::inet_pton(AF_INET, v4, a.data()) != 1) throw std::invalid_argument(v4);
    std::lock_guard lock(mutex_);
    table_[lower(name)].a.push_back(a);
  }
  void add_aaaa(const std::string& name, const char* v6) {
    std::array<unsigned char, 16> a{};
    if (::inet_pton(AF_INET6, v6, a.data()) != 1) throw std::invalid_argument(v6);
    std::lock_guard lock(mutex_);
    table_[lower(name)].aaaa.push_back(a);
  }
  /// Answers `delay` after each query arrives.
  void set_delay(std::chrono::milliseconds delay) { delay_ms_ = delay.count(); }
  /// Counts queries but never answers.
  void set_silent(bool silent) { silent_ = silent; }
  /// Queries received so far (each A and each AAAA counts, retries too).
  int queries() const { return queries_; }

 private:
  struct record {
    std::vector<std::array<unsigned char, 4>> a;
    std::vector<std::array<unsigned char, 16>> aaaa;
  };
  struct pending {
    std::chrono::steady_clock::time_point due;
    sockaddr_storage to;
    socklen_t to_len;
    std::vector<unsigned char> bytes;
  };

  static std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  }

  void serve() {
    std::vector<pending> queue;
    while (!stop_) {
      const auto now = std::chrono::steady_clock::now();
      for (auto it = queue.begin(); it != queue.end();) {
        if (it->due > now) {
          ++it;
          continue;
        }
        ::sendto(fd_, it->bytes.data(), it->bytes.size(), 0,
                 reinterpret_cast<const sockaddr*>(&it->to), it->to_len);
        it = queue.erase(it);
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, queue.empty() ? 20 : 1) <= 0) continue;
      unsigned char buf[1500];
      pending reply{};
      reply.to_len = sizeof reply.to;
      const ssize_t n = ::recvfrom(fd_, buf, sizeof buf, MSG_DONTWAIT,
                                   reinterpret_cast<sockaddr*>(&reply.to), &reply.to_len);
      if (n <= 0) continue;
      ++queries_;
      if (silent_) continue;
      if (!answer(buf, static_cast<std::size_t>(n), reply.bytes)) continue;
      reply.due = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms_.load());
      queue.push_back(std::move(reply));
    }
  }

  // Builds the response to one query; false if the query is malformed.
  bool answer(const unsigned char* q, std::size_t n, std::vector<unsigned char>& out) {
    if (n < 12 || q[4] != 0 || q[5] != 1) return false;  // exactly one question
    std::size_t pos = 12;
    std::string name;
    while (pos < n && q[pos] != 0) {
      const std::size_t len = q[pos];
      if (len > 63 || pos + 1 + len >= n) return false;
      if (!name.empty()) name += '.';
      name.append(reinterpret_cast<const char*>(q + pos + 1), len);
      pos += 1 + len;
    }
    if (pos + 5 > n) return false;
    const unsigned qtype = (q[pos + 1] << 8) | q[pos + 2];
    const std::size_t question_end = pos + 5;

    bool known = false;
    record rec;
    {
      std::lock_guard lock(mutex_);
      if (auto it = table_.find(lower(name)); it != table_.end()) {
        known = true;
        rec = it->second;
      }
    }
    const std::size_t count = !known        ? 0
                              : qtype == 1  ? rec.a.size()
                              : qtype == 28 ? rec.aaaa.size()
                                            : 0;
    out.assign(q, q + question_end);
    out[2] = static_cast<unsigned char>(0x80 | (q[2] & 0x01));    // QR, RD copied
    out[3] = static_cast<unsigned char>(0x80 | (known ? 0 : 3));  // RA; NXDOMAIN if unknown
    out[6] = 0;
    out[7] = static_cast<unsigned char>(count);
    out[8] = out[9] = out[10] = out[11] = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const unsigned char* data = qtype == 1 ? rec.a[i].data() : rec.aaaa[i].data();
      const unsigned char len = qtype == 1 ? 4 : 16;
      const unsigned char rr[] = {0xc0, 0x0c, 0,  static_cast<unsigned char>(qtype), 0, 1, 0, 0, 0,
                                  60,   0,    len};
      out.insert(out.end(), rr, rr + sizeof rr);
      out.insert(out.end(), data, data + len);
    }
    return true;
  }

  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> silent_{false};
  std::atomic<long> delay_ms_{0};
  std::atomic<int> queries_{0};
  std::mutex mutex_;
  std::map<std::string, record> table_;
};

}  // namespace uringcat::testing
