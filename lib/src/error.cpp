// The error categories declared in error.hpp.
#include "uringcat/error.hpp"

#include <netdb.h>

namespace uringcat {
namespace {

class uringcat_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "uringcat"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::eof:
        return "end of stream";
      case errc::no_addresses:
        return "no usable address";
    }
    return "unknown uringcat error";
  }
};

class resolve_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "resolve"; }
  std::string message(int ev) const override { return ::gai_strerror(-ev); }
};

}  // namespace

const std::error_category& uringcat_category() noexcept {
  static const uringcat_category_impl instance;
  return instance;
}

const std::error_category& resolve_category() noexcept {
  static const resolve_category_impl instance;
  return instance;
}

void throw_if(const std::error_code& ec, const char* what) {
  if (ec) throw std::system_error(ec, what);
}

}  // namespace uringcat
