// The part of every operation that the reactor sees.
//
// An operation is an awaiter in the awaiting coroutine's frame that derives from op_base. The
// reactor finds it again through the CQE's user_data and calls `complete`, a plain function
// pointer (no virtuals, as in libunifex's io_uring_context). The reactor also keeps the
// bookkeeping fields below: the deadline heap position, the queue for ring capacity, and
// the slot a detachable operation's CQE is routed through.
#pragma once

#include <linux/time_types.h>

#include <cstddef>
#include <cstdint>
#include <limits>

#include "uringcat/timeout.hpp"

struct io_uring_sqe;

namespace uringcat::detail {

struct op_slot;

struct op_base {
  /// Called on the reactor thread with the operation's result: a CQE's res, or -ETIMEDOUT
  /// when the reactor reported a detachable operation's deadline before its CQE.
  using complete_fn = void (*)(op_base*, int res, std::uint32_t cqe_flags) noexcept;
  /// Fills the operation's SQE (everything but user_data and link flags).
  using prepare_fn = void (*)(op_base*, io_uring_sqe*) noexcept;
  /// Releases what a CQE carries when nobody will ever consume it (an accepted descriptor
  /// arriving while the io_context is torn down). Gets the op, to know what the CQE was for
  /// (an accept's fallback poll carries an event mask, not a descriptor). May be null.
  using abandon_fn = void (*)(op_base*, int res) noexcept;

  static constexpr std::size_t no_index = std::numeric_limits<std::size_t>::max();

  op_base(complete_fn c, prepare_fn p, abandon_fn a = nullptr) noexcept
      : complete(c), prepare(p), abandon(a) {}
  op_base(const op_base&) = delete;
  op_base& operator=(const op_base&) = delete;

  complete_fn complete;
  prepare_fn prepare;
  abandon_fn abandon;

  /// The absolute deadline (none when unset), and its kernel form. The timespec must stay
  /// valid until the SQEs are submitted: it lives here, in the awaiter.
  deadline when{};
  __kernel_timespec kernel_deadline{};
  /// A detachable operation holds no memory the kernel writes to after submission (connect:
  /// the kernel copies the address at prep; timed recv/send/accept: a readiness poll). The
  /// reactor may then report its deadline from its own timer before the kernel's operation
  /// ends; the CQE goes to a reactor-owned slot. Others always wait for their own CQE.
  bool detachable = false;

  // Cancellation (cancellation.hpp). `cancellable`: the awaiter registered on a token while
  // in flight, so the reactor keeps one CQ entry in reserve for the ASYNC_CANCEL it may need
  // (`holds_cancel_reserve` while it does). `cancel_requested`: cancellation reached it; its
  // result then reads operation_canceled unless its own completion got there first.
  bool cancellable = false;
  bool holds_cancel_reserve = false;
  bool cancel_requested = false;

  // Reactor bookkeeping.
  std::size_t heap_index = no_index;  ///< position in the deadline heap
  op_base* wait_prev = nullptr;       ///< queue of operations waiting for ring capacity, or
  op_base* wait_next = nullptr;       ///< the list of cancelled ones to report (`reported`)
  bool waiting = false;
  bool reported = false;    ///< cancelled without a CQE to wait for: completes at the next turn
  op_slot* slot = nullptr;  ///< the slot routing this op's CQE (detachable ops in flight)
};

/// A reactor-owned CQE target for a detachable operation. When the operation's deadline is
/// reported before its CQE, target becomes null and the late CQE is consumed here.
struct op_slot {
  op_base* target = nullptr;
  op_slot* next_free = nullptr;
  bool detached = false;  ///< its deadline was reported; the kernel's CQE is still to come
};

}  // namespace uringcat::detail
