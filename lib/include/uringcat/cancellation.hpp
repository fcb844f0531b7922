// Cancellation: a stop-token-like source/token pair that ends operations in flight.
//
//   uringcat::cancellation_source stop;
//   auto t = uringcat::with_cancellation(stop.token(), serve(io));    // a whole task tree
//   co_await client.recv(buf, 5s).with_cancellation(stop.token());      // one operation
//   stop.request_cancellation();   // what is pending ends with std::errc::operation_canceled
//
// Why this shape (the design follows Asio's per-operation cancellation slots, not
// std::stop_token):
//  * Zero heap allocations. std::stop_source allocates shared, thread-safe state; uringcat is
//    one thread per io_context, so the source *is* the state (it is neither copyable nor
//    movable) and a token is one pointer to it. Whoever listens registers an intrusive node
//    that lives in its own frame (an operation's awaiter, a when_any's frame): registering
//    and unregistering are a few pointer writes.
//  * Propagation through the task chain. A task's promise carries a token; `co_await child`
//    hands the awaiting task's token to the child, when_all and when_any hand it to their
//    children, and every operation awaited in such a task registers on it. So one source
//    attached at the top (with_cancellation, task.hpp) reaches every operation below,
//    without passing tokens by hand, and at no cost when nothing is attached.
//  * What requesting does to an operation in flight: its io_context issues
//    IORING_OP_ASYNC_CANCEL for it. An operation the reactor can detach (a timed connect, a
//    timed recv/send/accept, which wait for readiness and hold no caller memory in the
//    kernel) is reported operation_canceled at the reactor's next turn, while its kernel
//    request ends into a reactor-owned slot; the others end when the kernel's CQE for them
//    arrives (promptly: the cancel ends them). Exactly one outcome either way: an operation
//    that completed before the cancel reached it keeps its own result (bytes received are
//    never dropped), one that did not reports std::errc::operation_canceled.
//
// Threading: not thread-safe, like the io_context. request_cancellation() must run on the
// thread that runs the io_context whose operations listen (from a task, or between run()
// calls). Lifetime: the source must outlive every token handed out and every operation or
// task it was attached to; its destructor detaches what is still registered.
#pragma once

#include <type_traits>
#include <utility>

namespace uringcat {

class cancellation_source;
class cancellation_token;

namespace detail {

/// An intrusive registration: what a listener links into a source's list. Lives in the
/// listener's own storage (no allocation). `invoke` runs once, after the node was unlinked.
struct cancellation_node {
  using invoke_fn = void (*)(cancellation_node*) noexcept;

  explicit cancellation_node(invoke_fn f) noexcept : invoke(f) {}
  cancellation_node(const cancellation_node&) = delete;
  cancellation_node& operator=(const cancellation_node&) = delete;

  invoke_fn invoke;
  cancellation_source* source = nullptr;  ///< non-null while registered
  cancellation_node* prev = nullptr;
  cancellation_node* next = nullptr;
};

/// Registers `node` on `token`'s source. Returns false without registering when the token
/// cannot be cancelled, or when cancellation was already requested (the caller acts on that
/// itself; `invoke` is not called).
bool register_node(const cancellation_token& token, cancellation_node& node) noexcept;
/// Unlinks `node` if it is still registered; safe to call on an unregistered node.
void unregister_node(cancellation_node& node) noexcept;

}  // namespace detail

/// A view of a cancellation_source: lets its holder check for, and listen to, cancellation
/// requests. Default-constructed, it is never cancelled (can_be_cancelled() is false).
/// Copyable, one pointer; valid as long as its source lives.
class cancellation_token {
 public:
  cancellation_token() noexcept = default;

  /// True once the source's request_cancellation() was called.
  bool cancellation_requested() const noexcept;
  /// False for a default-constructed token: nothing will ever cancel it.
  bool can_be_cancelled() const noexcept { return source_ != nullptr; }

  friend bool operator==(const cancellation_token&, const cancellation_token&) noexcept = default;

 private:
  friend class cancellation_source;
  friend bool detail::register_node(const cancellation_token&, detail::cancellation_node&) noexcept;
  explicit cancellation_token(cancellation_source* s) noexcept : source_(s) {}

  cancellation_source* source_ = nullptr;
};

/// The owner of a cancellation request. One-shot: once requested, it stays requested. Neither
/// copyable nor movable (tokens and registrations point at it).
class cancellation_source {
 public:
  cancellation_source() noexcept = default;
  cancellation_source(const cancellation_source&) = delete;
  cancellation_source& operator=(const cancellation_source&) = delete;
  /// Detaches every registration still linked (their owners then see no source).
  ~cancellation_source() {
    while (head_) {
      detail::cancellation_node* n = head_;
      head_ = n->next;
      n->source = nullptr;
      n->prev = n->next = nullptr;
    }
  }

  cancellation_token token() noexcept { return cancellation_token(this); }

  /// Requests cancellation: every listener registered now is told, once, in registration
  /// order; later registrations see the request at once. Returns true for the call that made
  /// the request, false if it had been made before. Operations do not resume inside this
  /// call (their io_context reports them at its next turn), but user callbacks
  /// (cancellation_callback) run here.
  bool request_cancellation() noexcept {
    if (requested_) return false;
    requested_ = true;
    // Unlink each node before invoking it: a callback may destroy its own registration, or
    // unregister others, without breaking this walk.
    while (head_) {
      detail::cancellation_node* n = head_;
      head_ = n->next;
      if (head_) head_->prev = nullptr;
      n->source = nullptr;
      n->prev = n->next = nullptr;
      n->invoke(n);
    }
    return true;
  }

  bool cancellation_requested() const noexcept { return requested_; }

 private:
  friend bool detail::register_node(const cancellation_token&, detail::cancellation_node&) noexcept;
  friend void detail::unregister_node(detail::cancellation_node&) noexcept;

  detail::cancellation_node* head_ = nullptr;
  detail::cancellation_node* tail_ = nullptr;
  bool requested_ = false;
};

inline bool cancellation_token::cancellation_requested() const noexcept {
  return source_ && source_->cancellation_requested();
}

namespace detail {

inline bool register_node(const cancellation_token& token, cancellation_node& node) noexcept {
  cancellation_source* s = token.source_;
  if (!s || s->requested_) return false;
  node.source = s;
  node.next = nullptr;
  node.prev = s->tail_;
  if (s->tail_)
    s->tail_->next = &node;
  else
    s->head_ = &node;
  s->tail_ = &node;
  return true;
}

inline void unregister_node(cancellation_node& node) noexcept {
  cancellation_source* s = node.source;
  if (!s) return;
  if (node.prev)
    node.prev->next = node.next;
  else
    s->head_ = node.next;
  if (node.next)
    node.next->prev = node.prev;
  else
    s->tail_ = node.prev;
  node.source = nullptr;
  node.prev = node.next = nullptr;
}

}  // namespace detail

/// Runs `callback()` when cancellation is requested on `token` (at once, in the constructor,
/// if it already was), like std::stop_callback. Unregisters in its destructor. Neither
/// copyable nor movable; no allocation. The callback must not throw, and must not destroy the
/// source it listens to.
template <class Callback>
class cancellation_callback {
 public:
  template <class C>
  requires std::is_constructible_v<Callback, C&&> cancellation_callback(
      const cancellation_token& token, C&& callback)
  noexcept(std::is_nothrow_constructible_v<Callback, C&&>)
      : hook_(this), callback_(std::forward<C>(callback)) {
    if (!detail::register_node(token, hook_) && token.cancellation_requested()) callback_();
  }
  cancellation_callback(const cancellation_callback&) = delete;
  cancellation_callback& operator=(const cancellation_callback&) = delete;
  ~cancellation_callback() { detail::unregister_node(hook_); }

 private:
  struct hook : detail::cancellation_node {
    explicit hook(cancellation_callback* o) noexcept : cancellation_node(&run), owner(o) {}
    static void run(detail::cancellation_node* n) noexcept {
      static_cast<hook*>(n)->owner->callback_();
    }
    cancellation_callback* owner;
  };

  hook hook_;
  Callback callback_;
};

template <class Callback>
cancellation_callback(const cancellation_token&, Callback) -> cancellation_callback<Callback>;

}  // namespace uringcat
