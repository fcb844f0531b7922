// Tests for uringcat::resolve. Only loopback names, numeric literals and a name under the
// reserved .invalid TLD (RFC 6761: never resolves; at most the local resolver is asked) are
// looked up, so nothing here depends on the outside network.
#include "uringcat/resolve.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netdb.h>

#include <algorithm>
#include <string>
#include <system_error>

#include "uringcat/error.hpp"

namespace {

using uringcat::endpoint;
using uringcat::resolve;
using uringcat::resolve_options;

// The name no resolver may answer for (RFC 6761, section 6.4).
constexpr const char* invalid_name = "uringcat-test.invalid";

// How resolve() stores a getaddrinfo error.
std::error_code eai(int code) {
  return {code < 0 ? -code : code, uringcat::resolve_category()};
}

bool is_loopback(const endpoint& ep) {
  if (ep.is_v4())
    return (ntohl(reinterpret_cast<const sockaddr_in*>(ep.data())->sin_addr.s_addr) >> 24) == 127;
  return ep.is_v6() &&
         IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(ep.data())->sin6_addr);
}

TEST(Resolve, LocalhostGivesOnlyLoopbackAddresses) {
  std::vector<endpoint> eps = resolve("localhost", 8080);
  ASSERT_FALSE(eps.empty());
  for (const endpoint& ep : eps) EXPECT_TRUE(is_loopback(ep)) << ep;
}

TEST(Resolve, SetsThePortOnEveryEndpoint) {
  for (const endpoint& ep : resolve("localhost", 8080)) EXPECT_EQ(ep.port(), 8080) << ep;
}

TEST(Resolve, ReturnsNoDuplicates) {
  std::vector<endpoint> eps = resolve("localhost", 80);
  for (auto it = eps.begin(); it != eps.end(); ++it)
    EXPECT_EQ(std::count(eps.begin(), eps.end(), *it), 1) << *it;
}

TEST(Resolve, NumericIpv4GivesExactlyThatAddress) {
  EXPECT_EQ(resolve("127.0.0.1", 9999), std::vector<endpoint>{endpoint::parse("127.0.0.1:9999")});
}

TEST(Resolve, NumericIpv6GivesExactlyThatAddress) {
  EXPECT_EQ(resolve("::1", 9999), std::vector<endpoint>{endpoint::parse("[::1]:9999")});
}

TEST(Resolve, BracketedIpv6LiteralGivesThatAddress) {
  EXPECT_EQ(resolve("[::1]", 9999), std::vector<endpoint>{endpoint::parse("[::1]:9999")});
}

TEST(Resolve, BracketsOnlyHoldLiterals) {
  std::error_code ec;
  EXPECT_TRUE(resolve("[localhost]", 80, {}, ec).empty());
  EXPECT_EQ(ec.category(), uringcat::resolve_category()) << ec.message();
}

TEST(Resolve, NumericOnlyAcceptsALiteral) {
  std::error_code ec;
  std::vector<endpoint> eps = resolve("127.0.0.1", 80, {.numeric_only = true}, ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(eps, std::vector<endpoint>{endpoint::loopback_v4(80)});
}

TEST(Resolve, NumericOnlyRejectsAHostNameWithEaiNoname) {
  std::error_code ec;
  EXPECT_TRUE(resolve("localhost", 80, {.numeric_only = true}, ec).empty());
  EXPECT_EQ(ec, eai(EAI_NONAME)) << ec.message();
}

TEST(Resolve, NameUnderTheInvalidTldFailsWithAResolveError) {
  std::error_code ec;
  EXPECT_TRUE(resolve(invalid_name, 80, {}, ec).empty());
  // EAI_NONAME from a resolver, EAI_AGAIN without one: both are resolve errors.
  EXPECT_EQ(ec.category(), uringcat::resolve_category()) << ec.message();
}

TEST(Resolve, Ipv6FamilyRejectsAnIpv4Literal) {
  std::error_code ec;
  EXPECT_TRUE(resolve("127.0.0.1", 80, {.family = AF_INET6}, ec).empty());
  EXPECT_EQ(ec.category(), uringcat::resolve_category()) << ec.message();
}

TEST(Resolve, Ipv4FamilyGivesOnlyIpv4) {
  std::vector<endpoint> eps = resolve("localhost", 80, {.family = AF_INET});
  ASSERT_FALSE(eps.empty());
  for (const endpoint& ep : eps) EXPECT_TRUE(ep.is_v4()) << ep;
}

TEST(Resolve, UnsupportedFamilyFailsWithEaiFamily) {
  std::error_code ec;
  EXPECT_TRUE(resolve("127.0.0.1", 80, {.family = AF_UNIX}, ec).empty());
  EXPECT_EQ(ec, eai(EAI_FAMILY));
}

TEST(Resolve, EmptyHostFailsInsteadOfMeaningThisHost) {
  std::error_code ec;
  EXPECT_TRUE(resolve("", 80, {}, ec).empty());
  EXPECT_EQ(ec, eai(EAI_NONAME));
}

TEST(Resolve, HostWithEmbeddedNulFails) {
  std::error_code ec;
  EXPECT_TRUE(resolve(std::string_view("127.0.0.1\0evil", 14), 80, {}, ec).empty());
  EXPECT_EQ(ec, eai(EAI_NONAME));
}

TEST(Resolve, ClearsTheErrorCodeOnSuccess) {
  std::error_code ec = std::make_error_code(std::errc::timed_out);
  resolve("127.0.0.1", 80, {}, ec);
  EXPECT_FALSE(ec) << ec.message();
}

TEST(Resolve, ErrorMessageComesFromGaiStrerror) {
  EXPECT_EQ(eai(EAI_NONAME).message(), gai_strerror(EAI_NONAME));
}

TEST(Resolve, ThrowingOverloadThrowsSystemErrorNamingTheHost) {
  try {
    resolve("localhost", 80, {.numeric_only = true});
    FAIL() << "resolve did not throw";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), eai(EAI_NONAME));
    EXPECT_NE(std::string(e.what()).find("\"localhost\""), std::string::npos) << e.what();
  }
}

}  // namespace
