// The asynchronous resolver: c-ares driven by the ring. See async_resolve.hpp for why c-ares.
//
// One lookup is one coroutine holding a `lookup`: its own c-ares channel (ares_dup of the
// resolver's, so ares_destroy cancels this lookup alone) and one poll_watch per socket c-ares
// wants watched. The loop is:
//   sync:    ask c-ares which sockets it waits on (ares_getsock) and when its next retry
//            timer is due (ares_timeout); arm a watch per socket whose deadline is
//            min(c-ares's timer, the caller's deadline). With no socket to watch, one watch on
//            the resolver's never-ready eventfd serves as a pure timer.
//   suspend: until any watch completes (ready, or its deadline).
//   process: ares_process_fd for each ready socket, or with no socket when a deadline fired
//            (that runs c-ares's timers); at the caller's deadline, destroy the channel.
// Watches are kept across rounds while they still match, so a quiet lookup costs one POLL_ADD
// per socket and one wake-up per c-ares timer.
//
// A socket c-ares closes and reopens gets the same number back; a watch armed on the old one
// would wait on a file nobody reads. The socket-creation callback names every new socket, and
// sync() replaces any watch on that number. A watch we drop while armed is detached (see
// poll_watch.hpp): its kernel poll ends by its own deadline, its CQE lands in a reactor slot.
#include "uringcat/async_resolve.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "uringcat/detail/poll_watch.hpp"
#include "uringcat/error.hpp"

namespace uringcat {
namespace {

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

std::error_code eai(int code) noexcept {
  return {code < 0 ? -code : code, resolve_category()};
}

// c-ares's statuses as the codes uringcat::resolve() gives for the same situations, so that
// callers handle both resolvers alike. c-ares giving up on silent servers (ARES_ETIMEOUT) is
// EAI_AGAIN, as glibc says: timed_out means the caller's deadline and nothing else.
std::error_code map_ares_status(int status) noexcept {
  switch (status) {
    case ARES_SUCCESS:
      return {};
    case ARES_ENOTFOUND:
    case ARES_ENONAME:
      return eai(EAI_NONAME);
    case ARES_ENODATA:
      return eai(EAI_NODATA);
    case ARES_ESERVFAIL:
    case ARES_EREFUSED:
    case ARES_ETIMEOUT:
    case ARES_ECONNREFUSED:
      return eai(EAI_AGAIN);
    case ARES_EBADFAMILY:
      return eai(EAI_FAMILY);
    case ARES_ENOMEM:
      return system_error_code(ENOMEM);
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
      return std::make_error_code(std::errc::operation_canceled);
    default:  // EFORMERR, EBADRESP, EBADNAME, ENOTIMP, EBADQUERY, EOF, EFILE, ...
      return eai(EAI_FAIL);
  }
}

void init_library() {
  // ares_library_init is reference counted and not thread-safe: do it once, never undo it.
  static const int status = ::ares_library_init(ARES_LIB_INIT_ALL);
  if (status != ARES_SUCCESS)
    throw std::system_error(ENOMEM, std::system_category(),
                            std::string("c-ares: ares_library_init: ") + ::ares_strerror(status));
}

// "127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:53" -> "address:port" for c-ares's CSV.
std::string server_text(const std::string& text) {
  if (auto ep = endpoint::try_parse(text)) return ep->to_string();
  if (auto ep = endpoint::try_parse(text + ":53")) return ep->to_string();
  if (auto ep = endpoint::try_parse("[" + text + "]:53")) return ep->to_string();
  throw std::invalid_argument("uringcat::resolver: bad DNS server \"" + text +
                              "\" (want address[:port], e.g. 127.0.0.1:5353 or [::1]:53)");
}

// A literal address ("10.0.0.1", "::1", "fe80::1%lo"), parsed here: c-ares 1.18 would look a
// literal of the wrong family up as a name, and ignores ARES_AI_NUMERICHOST.
std::optional<endpoint> literal(const std::string& host, std::uint16_t port) {
  sockaddr_in sin{};
  if (::inet_pton(AF_INET, host.c_str(), &sin.sin_addr) == 1) {
    sin.sin_family = AF_INET;
    return endpoint(reinterpret_cast<const sockaddr*>(&sin), sizeof sin).with_port(port);
  }
  if (host.find(':') == std::string::npos) return std::nullopt;
  return endpoint::try_parse("[" + host + "]:" + std::to_string(port));  // v6, maybe scoped
}

// "localhost", "LOCALHOST.", "db.localhost": names RFC 6761 keeps off the DNS. c-ares 1.18
// would ask the servers for them when /etc/hosts lacks them, and always for the trailing-dot
// and subdomain spellings; here they are looked up in the hosts file only.
bool is_localhost(const std::string& host) {
  std::string name = host;
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!name.empty() && name.back() == '.') name.pop_back();
  constexpr std::string_view suffix = ".localhost";
  return name == "localhost" || (name.size() > suffix.size() && name.ends_with(suffix));
}

// RFC 6761 section 6.3: localhost names are the loopback addresses, IPv6 first as RFC 6724
// orders them.
std::vector<endpoint> loopback(int family, std::uint16_t port) {
  std::vector<endpoint> eps;
  if (family != AF_INET) eps.push_back(endpoint::loopback_v6(port));
  if (family != AF_INET6) eps.push_back(endpoint::loopback_v4(port));
  return eps;
}

// ---------------------------------------------------------------------------------------
// One lookup
// ---------------------------------------------------------------------------------------

struct outcome {
  std::vector<endpoint> endpoints;
  std::error_code error;
  int ares_status = ARES_SUCCESS;  ///< c-ares's own status when it decided the error
};

class lookup {
 public:
  lookup(io_context& io, int idle_fd) noexcept : io_(&io), idle_fd_(idle_fd) {}
  lookup(const lookup&) = delete;
  lookup& operator=(const lookup&) = delete;
  ~lookup() { cancel(); }

  /// Starts the query; it may finish at once (/etc/hosts, localhost, c-ares errors).
  int start(ares_channel templ, const std::string& name, const ares_addrinfo_hints& hints,
            std::uint16_t port) {
    port_ = port;
    const int r = ::ares_dup(&channel_, templ);
    if (r != ARES_SUCCESS) return r;
    ::ares_set_socket_callback(channel_, &on_socket_created, this);
    ::ares_getaddrinfo(channel_, name.c_str(), nullptr, &hints, &on_addrinfo, this);
    return ARES_SUCCESS;
  }

  bool done() const noexcept { return done_; }
  int status() const noexcept { return status_; }
  std::vector<endpoint>& endpoints() noexcept { return endpoints_; }

  /// Arms the watches this round needs. `until` is the caller's deadline (may be unset).
  void sync(deadline until) {
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    const int bits = ::ares_getsock(channel_, socks, ARES_GETSOCK_MAXNUM);
    wants_.clear();
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      unsigned events = 0;
      if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
      if (events == 0) break;
      wants_.push_back({socks[i], events});
    }
    if (wants_.empty()) wants_.push_back({idle_fd_, POLLIN});  // a timer only

    // When c-ares next wants to run its timers (a retry, a server switch, giving up). 1 ms
    // late rather than a hair early: early would wake us to find nothing due yet.
    const auto now = clock::now();
    timeval tv{};
    clock::time_point wake = now + std::chrono::seconds(1);  // nothing pending: a safety net
    if (::ares_timeout(channel_, nullptr, &tv) != nullptr)
      wake = now + std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec) +
             std::chrono::milliseconds(1);
    const deadline next(until.is_set() ? std::min(wake, until.time()) : wake);

    // Watches on numbers c-ares has reopened, or no longer wanted, or wanted differently, go.
    std::erase_if(watches_, [&](const std::unique_ptr<detail::poll_watch>& w) {
      if (!w->armed()) return false;  // idle: re-armed or dropped below, nothing in flight
      const bool reopened = std::find(created_.begin(), created_.end(), w->fd()) != created_.end();
      const auto want = find_want(w->fd());
      return reopened || want == wants_.end() || want->events != w->events() ||
             next.time() < w->until().time();
    });
    created_.clear();
    std::erase_if(watches_, [&](const std::unique_ptr<detail::poll_watch>& w) {
      return !w->armed() && find_want(w->fd()) == wants_.end();
    });
    for (const want& want : wants_) {
      auto it = std::find_if(watches_.begin(), watches_.end(),
                             [&](const auto& w) { return w->fd() == want.fd; });
      if (it == watches_.end()) {
        watches_.push_back(std::make_unique<detail::poll_watch>(*io_, &on_watch, this));
        it = watches_.end() - 1;
      }
      if (!(*it)->armed()) (*it)->arm(want.fd, want.events, next);
    }
  }

  /// Suspends until a watch completed (at once if one already has).
  auto next_event() noexcept {
    struct awaiter {
      lookup& l;
      bool await_ready() const noexcept {
        return std::any_of(l.watches_.begin(), l.watches_.end(),
                           [](const auto& w) { return w->fired(); });
      }
      void await_suspend(std::coroutine_handle<> h) noexcept { l.waiter_ = h; }
      void await_resume() const noexcept {}
    };
    return awaiter{*this};
  }

  /// Hands c-ares what the watches saw.
  void process() {
    bool timer = false;
    for (const auto& w : watches_) {
      if (!w->fired()) continue;
      w->consume();
      const int r = w->result();
      if (r > 0 && w->fd() != idle_fd_) {
        const unsigned ready = static_cast<unsigned>(r);
        const bool in = ready & (POLLIN | POLLERR | POLLHUP);
        const bool out = ready & (POLLOUT | POLLERR | POLLHUP);
        ::ares_process_fd(channel_, in ? w->fd() : ARES_SOCKET_BAD,
                          out ? w->fd() : ARES_SOCKET_BAD);
        if (done_) return;
      } else {
        timer = true;  // a deadline, or the poll failed: let c-ares look at its timers
      }
    }
    if (timer) ::ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  }

  /// Ends the lookup: drops the watches (their SQEs reach the kernel before any socket is
  /// closed), then destroys the channel, which closes its sockets.
  void cancel() noexcept {
    watches_.clear();
    if (channel_) ::ares_destroy(std::exchange(channel_, nullptr));  // calls on_addrinfo
  }

 private:
  struct want {
    int fd;
    unsigned events;
  };
  std::vector<want>::iterator find_want(int fd) {
    return std::find_if(wants_.begin(), wants_.end(), [fd](const want& w) { return w.fd == fd; });
  }

  static int on_socket_created(ares_socket_t fd, int, void* self) {
    try {
      static_cast<lookup*>(self)->created_.push_back(fd);
    } catch (...) {
      return -1;  // c-ares closes the socket and fails that server
    }
    return 0;
  }

  static void on_addrinfo(void* self_, int status, int, ares_addrinfo* result) {
    auto* self = static_cast<lookup*>(self_);
    self->done_ = true;
    self->status_ = status;
    if (status == ARES_SUCCESS && result) {
      try {
        for (const ares_addrinfo_node* n = result->nodes; n; n = n->ai_next) {
          const bool usable =
              n->ai_addr && ((n->ai_family == AF_INET && n->ai_addr->sa_family == AF_INET &&
                              n->ai_addrlen >= sizeof(sockaddr_in)) ||
                             (n->ai_family == AF_INET6 && n->ai_addr->sa_family == AF_INET6 &&
                              n->ai_addrlen >= sizeof(sockaddr_in6)));
          if (!usable) continue;
          endpoint ep = endpoint(n->ai_addr, n->ai_addrlen).with_port(self->port_);
          // A handful of entries: keeping the first of each preserves c-ares's order.
          if (std::find(self->endpoints_.begin(), self->endpoints_.end(), ep) ==
              self->endpoints_.end())
            self->endpoints_.push_back(ep);
        }
      } catch (...) {
        self->status_ = ARES_ENOMEM;
        self->endpoints_.clear();
      }
    }
    if (result) ::ares_freeaddrinfo(result);
  }

  static void on_watch(void* self_, detail::poll_watch&) noexcept {
    auto* self = static_cast<lookup*>(self_);
    if (auto h = std::exchange(self->waiter_, {})) h.resume();
  }

  io_context* io_;
  int idle_fd_;
  std::uint16_t port_ = 0;
  ares_channel channel_ = nullptr;
  bool done_ = false;
  int status_ = ARES_SUCCESS;
  std::vector<endpoint> endpoints_;
  std::vector<std::unique_ptr<detail::poll_watch>> watches_;
  std::vector<want> wants_;
  std::vector<int> created_;
  std::coroutine_handle<> waiter_;
};

}  // namespace

// ---------------------------------------------------------------------------------------
// resolver
// ---------------------------------------------------------------------------------------

struct resolver::impl {
  ares_channel channel = nullptr;
  ares_channel files_channel = nullptr;  ///< the same, consulting /etc/hosts only (localhost)
  int idle_fd = -1;  ///< an eventfd nobody writes: polling it never completes, a pure timer

  ~impl() {
    if (channel) ::ares_destroy(channel);
    if (files_channel) ::ares_destroy(files_channel);
    if (idle_fd >= 0) ::close(idle_fd);
  }

  task<outcome> run(io_context& io, std::string host, std::uint16_t port, timeout t,
                    resolve_options options);
};

resolver::resolver(const resolver_options& options) : impl_(std::make_unique<impl>()) {
  init_library();
  std::string csv;
  for (const std::string& s : options.servers) {
    if (!csv.empty()) csv += ',';
    csv += server_text(s);
  }

  ares_options opts{};
  int mask = 0;
  if (options.attempt_timeout.count() > 0) {
    opts.timeout = static_cast<int>(std::min<std::chrono::milliseconds::rep>(
        options.attempt_timeout.count(), 24L * 3600 * 1000));
    mask |= ARES_OPT_TIMEOUTMS;
  }
  if (options.attempts > 0) {
    opts.tries = options.attempts;
    mask |= ARES_OPT_TRIES;
  }
  int r = ::ares_init_options(&impl_->channel, &opts, mask);
  if (r == ARES_SUCCESS) {
    char files_only[] = "f";
    opts.lookups = files_only;
    r = ::ares_init_options(&impl_->files_channel, &opts, mask | ARES_OPT_LOOKUPS);
    if (r != ARES_SUCCESS) impl_->files_channel = nullptr;
  } else {
    impl_->channel = nullptr;
  }
  if (r != ARES_SUCCESS)
    throw std::system_error(r == ARES_ENOMEM ? ENOMEM : EINVAL, std::system_category(),
                            std::string("uringcat::resolver: c-ares: ") + ::ares_strerror(r));
  if (!csv.empty() && (r = ::ares_set_servers_ports_csv(impl_->channel, csv.c_str())) != 0)
    throw std::system_error(
        EINVAL, std::system_category(),
        "uringcat::resolver: c-ares refused the servers \"" + csv + "\": " + ::ares_strerror(r));

  impl_->idle_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl_->idle_fd < 0)
    throw std::system_error(errno, std::system_category(), "uringcat::resolver: eventfd");
}

resolver::~resolver() = default;

task<outcome> resolver::impl::run(io_context& io, std::string host, std::uint16_t port, timeout t,
                                  resolve_options options) {
  const deadline until = t.from_now();  // a relative timeout starts now, when awaited
  if (until.expired()) co_return outcome{{}, std::make_error_code(std::errc::timed_out)};
  if (options.family != AF_UNSPEC && options.family != AF_INET && options.family != AF_INET6)
    co_return outcome{{}, eai(EAI_FAMILY)};

  bool numeric = options.numeric_only;
  // "[::1]" is how an IPv6 literal is written next to a port: only a literal may be inside.
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    numeric = true;
  }
  // An empty name means "this host" to getaddrinfo, and a NUL would shorten it silently.
  if (host.empty() || host.find('\0') != std::string::npos) co_return outcome{{}, eai(EAI_NONAME)};
  if (auto ep = literal(host, port)) {
    if (options.family != AF_UNSPEC && options.family != ep->family())
      co_return outcome{{}, eai(EAI_ADDRFAMILY)};  // as getaddrinfo says
    co_return outcome{{*ep}, {}};
  }
  if (numeric) co_return outcome{{}, eai(EAI_NONAME)};

  ares_addrinfo_hints hints{};
  hints.ai_family = options.family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;

  const bool local = is_localhost(host);
  lookup l(io, idle_fd);
  if (const int r = l.start(local ? files_channel : channel, host, hints, port); r != ARES_SUCCESS)
    co_return outcome{{}, map_ares_status(r), r};
  // Bounded: every round either completes the lookup or waits for a socket or a deadline.
  while (!l.done()) {
    if (until.expired()) {
      l.cancel();
      co_return outcome{{}, std::make_error_code(std::errc::timed_out)};
    }
    l.sync(until);
    co_await l.next_event();
    l.process();
  }
  if (local && (l.status() != ARES_SUCCESS || l.endpoints().empty()))
    co_return outcome{loopback(options.family, port), {}};  // not in /etc/hosts
  if (l.status() != ARES_SUCCESS) co_return outcome{{}, map_ares_status(l.status()), l.status()};
  if (l.endpoints().empty()) co_return outcome{{}, make_error_code(errc::no_addresses)};
  co_return outcome{std::move(l.endpoints()), {}};
}

task<result<std::vector<endpoint>>> resolver::try_resolve(io_context& io, std::string host,
                                                          std::uint16_t port, timeout t,
                                                          resolve_options options) {
  outcome o = co_await impl_->run(io, std::move(host), port, t, options);
  if (o.error) co_return o.error;
  co_return std::move(o.endpoints);
}

task<std::vector<endpoint>> resolver::resolve(io_context& io, std::string host, std::uint16_t port,
                                              timeout t, resolve_options options) {
  outcome o = co_await impl_->run(io, host, port, t, options);
  if (o.error) {
    std::string what = "async_resolve \"" + host + "\"";
    if (o.ares_status != ARES_SUCCESS)
      what += std::string(" (c-ares: ") + ::ares_strerror(o.ares_status) + ")";
    throw std::system_error(o.error, what);
  }
  co_return std::move(o.endpoints);
}

task<result<std::vector<endpoint>>> try_async_resolve(io_context& io, std::string host,
                                                      std::uint16_t port, timeout t,
                                                      resolve_options options) {
  const deadline until = t.from_now();  // counts the resolver's setup too
  resolver r;
  co_return co_await r.try_resolve(io, std::move(host), port, until, options);
}

task<std::vector<endpoint>> async_resolve(io_context& io, std::string host, std::uint16_t port,
                                          timeout t, resolve_options options) {
  const deadline until = t.from_now();
  resolver r;
  co_return co_await r.resolve(io, std::move(host), port, until, options);
}

}  // namespace uringcat
