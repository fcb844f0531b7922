// The seed's flow (shared/seed/tcp_client_ipv4_timeout.md), natively: connect to
// localhost:9999 with a 3.5 s deadline, send "data\n" with a 5.5 s deadline, receive up to
// 1024 bytes with a 5.5 s deadline, logging each step as `[program (pid)] message`,
// including the kernel's own maximum connect time. Every failure is logged with its cause.
//
// Usage: seed_client [HOST [PORT]]   (defaults: localhost 9999)
#include <unistd.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include <uringcat/uringcat.hpp>

using namespace std::chrono_literals;

namespace {

template <class... Args>
void log(const char* fmt, Args... args) {
  std::fprintf(stderr, "[seed_client (%d)] ", static_cast<int>(::getpid()));
  if constexpr (sizeof...(Args) == 0)
    std::fputs(fmt, stderr);
  else
    std::fprintf(stderr, fmt, args...);
  std::fputc('\n', stderr);
}

// Bytes the way Python's repr shows them: b'data\n'.
std::string repr(std::string_view bytes) {
  std::string out = "b'";
  for (unsigned char c : bytes) {
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\'':
        out += "\\'";
        break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out += static_cast<char>(c);
        } else {
          char hex[5];
          std::snprintf(hex, sizeof hex, "\\x%02x", c);
          out += hex;
        }
    }
  }
  return out + "'";
}

double seconds(std::chrono::duration<long double> d) {
  return static_cast<double>(d.count());
}

uringcat::task<int> run_client(uringcat::io_context& io, std::string host, std::uint16_t port) {
  constexpr auto conn_timeout = 3.5s;
  constexpr auto recv_send_timeout = 5.5s;
  std::string data = "data\n";

  if (auto syn = uringcat::read_syn_settings()) {
    log("max syn/ack retries: %d", syn->syn_retries);
    log("connect timeout: %g seconds (max=%g)", seconds(conn_timeout),
        seconds(uringcat::max_connect_timeout()));
  } else {
    log("connect timeout: %g seconds (max=unknown)", seconds(conn_timeout));
  }

  try {
    uringcat::tcp_client client(io);
    co_await client.connect(host, port, conn_timeout);
    log("connected to %s", client.remote_endpoint()->to_string().c_str());

    log("recv/send timeout: %g seconds", seconds(recv_send_timeout));
    co_await client.send_all(data, recv_send_timeout);
    log("sent: %s", repr(data).c_str());

    std::array<std::byte, 1024> buffer{};
    const std::size_t n = co_await client.recv(buffer, recv_send_timeout);
    log("recv: %s", repr({reinterpret_cast<const char*>(buffer.data()), n}).c_str());
  } catch (const std::system_error& err) {
    log("%s", err.what());
    co_return 1;
  }
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = argc > 1 ? argv[1] : "localhost";
  unsigned port = 9999;
  if (argc > 2) {
    std::string_view text = argv[2];
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (ec != std::errc{} || end != text.data() + text.size() || port > 65535) {
      log("invalid port: '%s'", argv[2]);
      return 2;
    }
  }
  try {
    uringcat::io_context io;
    return io.run(run_client(io, host, static_cast<std::uint16_t>(port)));
  } catch (const std::exception& err) {
    log("%s", err.what());
    return 1;
  }
}
