// Error codes of uringcat.
//
// Every operation reports failure as a std::error_code. Kernel results (-errno in a CQE)
// become std::system_category() codes, so `code() == std::errc::timed_out` and
// `code() == std::errc::connection_refused` work as users of <system_error> expect.
// What the kernel has no errno for (a peer that closed before recv_exact was satisfied,
// a name that did not resolve) lives in uringcat's own categories below.
#pragma once

#include <string>
#include <system_error>

namespace uringcat {

/// uringcat's own error conditions (category "uringcat").
enum class errc {
  eof = 1,           ///< the peer closed the connection before the requested bytes arrived
  no_addresses = 2,  ///< name resolution succeeded but returned no usable address
};

/// The category of uringcat::errc.
const std::error_category& uringcat_category() noexcept;

/// The category of getaddrinfo() failures (EAI_* values, stored as positive numbers).
/// EAI_SYSTEM is never stored here: it becomes the errno in the system category.
const std::error_category& resolve_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), uringcat_category()};
}

/// A kernel result (a negative errno from a CQE, or a positive errno) as an error_code.
inline std::error_code system_error_code(int err) noexcept {
  return {err < 0 ? -err : err, std::system_category()};
}

/// Throws std::system_error(ec, what) when ec is set.
void throw_if(const std::error_code& ec, const char* what);

}  // namespace uringcat

template <>
struct std::is_error_code_enum<uringcat::errc> : std::true_type {};
