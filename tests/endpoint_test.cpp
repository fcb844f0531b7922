// Tests for uringcat::endpoint: every accepted and rejected text form, the round trip
// parse -> to_string -> parse, and the socket-address side (construction, data/size, ==).
#include "uringcat/endpoint.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

using uringcat::endpoint;

std::uint32_t scope_of(const endpoint& ep) {
  return reinterpret_cast<const sockaddr_in6*>(ep.data())->sin6_scope_id;
}

// The message parse() throws for `text`, or "" if it did not throw std::invalid_argument.
std::string parse_error(const std::string& text) {
  try {
    (void)endpoint::parse(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

// ---------------------------------------------------------------------------
// Accepted forms
// ---------------------------------------------------------------------------

TEST(EndpointParse, AcceptsIpv4AddressAndPort) {
  endpoint ep = endpoint::parse("127.0.0.1:9999");
  EXPECT_TRUE(ep.is_v4());
  EXPECT_EQ(ep.family(), AF_INET);
  EXPECT_EQ(ep.port(), 9999);
  EXPECT_EQ(ep.address_string(), "127.0.0.1");
}

TEST(EndpointParse, AcceptsBracketedIpv6AddressAndPort) {
  endpoint ep = endpoint::parse("[::1]:9999");
  EXPECT_TRUE(ep.is_v6());
  EXPECT_EQ(ep.family(), AF_INET6);
  EXPECT_EQ(ep.port(), 9999);
  EXPECT_EQ(ep.address_string(), "::1");
  EXPECT_EQ(scope_of(ep), 0u);
}

TEST(EndpointParse, AcceptsIpv6ScopeByInterfaceName) {
  unsigned lo = if_nametoindex("lo");
  if (lo == 0) GTEST_SKIP() << "no interface named lo";
  endpoint ep = endpoint::parse("[fe80::1%lo]:80");
  EXPECT_EQ(scope_of(ep), lo);
  EXPECT_EQ(ep.port(), 80);
}

TEST(EndpointParse, AcceptsIpv6ScopeByNumber) {
  endpoint ep = endpoint::parse("[fe80::1%7]:80");
  EXPECT_EQ(scope_of(ep), 7u);
}

TEST(EndpointParse, AcceptsPortZeroForBindingAnEphemeralPort) {
  EXPECT_EQ(endpoint::parse("127.0.0.1:0").port(), 0);
}

TEST(EndpointParse, AcceptsTheHighestPort) {
  EXPECT_EQ(endpoint::parse("[::1]:65535").port(), 65535);
}

TEST(EndpointParse, AcceptsFiveDigitPortWithLeadingZeros) {
  EXPECT_EQ(endpoint::parse("1.2.3.4:00080").port(), 80);
}

TEST(EndpointParse, AcceptsIpv4MappedIpv6Address) {
  endpoint ep = endpoint::parse("[::ffff:1.2.3.4]:80");
  EXPECT_TRUE(ep.is_v6());
  EXPECT_EQ(ep.address_string(), "::ffff:1.2.3.4");
}

TEST(EndpointTryParse, ReturnsTheSameEndpointAsParse) {
  auto ep = endpoint::try_parse("[::1]:443");
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(*ep, endpoint::parse("[::1]:443"));
}

// ---------------------------------------------------------------------------
// Rejected forms: each with the reason that parse() must give
// ---------------------------------------------------------------------------

struct rejected {
  const char* name;  // gtest parameter name
  const char* text;
  const char* reason;  // must appear in what()
};

void PrintTo(const rejected& r, std::ostream* os) {
  *os << '"' << r.text << '"';
}

class EndpointRejects : public ::testing::TestWithParam<rejected> {};

TEST_P(EndpointRejects, ParseThrowsInvalidArgumentQuotingTheTextAndTheReason) {
  const rejected& r = GetParam();
  std::string what = parse_error(r.text);
  ASSERT_FALSE(what.empty()) << "parse did not throw std::invalid_argument";
  EXPECT_NE(what.find(std::string("\"") + r.text + "\""), std::string::npos) << what;
  EXPECT_NE(what.find(r.reason), std::string::npos) << what;
}

TEST_P(EndpointRejects, TryParseReturnsNullopt) {
  EXPECT_FALSE(endpoint::try_parse(GetParam().text).has_value());
}

INSTANTIATE_TEST_SUITE_P(
    Texts, EndpointRejects,
    ::testing::Values(
        rejected{"PortAbove65535", "1.2.3.4:99999", "port out of range"},
        rejected{"PortWithSixDigits", "1.2.3.4:000080", "port out of range"},
        rejected{"Ipv6WithoutBrackets", "::1:80", "IPv6 address needs brackets"},
        rejected{"EmptyPort", "127.0.0.1:", "empty port"},
        rejected{"NoColonAtAll", "80x", "missing port"},
        rejected{"BracketedIpv6WithoutPort", "[::1]", "missing port"},
        rejected{"Ipv4WithoutPort", "127.0.0.1", "missing port"},
        rejected{"OctetAbove255", "300.1.1.1:80", "invalid IPv4 address"},
        rejected{"ThreeOctets", "1.2.3:80", "invalid IPv4 address"},
        rejected{"EmptyText", "", "empty"}, rejected{"EmptyAddress", ":80", "empty address"},
        rejected{"PlusSignInPort", "1.2.3.4:+80", "decimal digits"},
        rejected{"MinusSignInPort", "1.2.3.4:-1", "decimal digits"},
        rejected{"SpaceBeforePort", "1.2.3.4: 80", "decimal digits"},
        rejected{"SpaceAfterPort", "1.2.3.4:80 ", "decimal digits"},
        rejected{"SpaceBeforeAddress", " 1.2.3.4:80", "invalid"},
        rejected{"HostName", "localhost:80", "numeric only"},
        rejected{"DottedHostName", "example.com:443", "numeric only"},
        rejected{"BracketedHostName", "[localhost]:80", "numeric only"},
        rejected{"Ipv4InBrackets", "[127.0.0.1]:80", "invalid IPv6 address"},
        rejected{"InvalidIpv6", "[1::2::3]:80", "invalid IPv6 address"},
        rejected{"MissingClosingBracket", "[::1:80", "missing ']'"},
        rejected{"NoColonAfterBracket", "[::1]x80", "expected ':'"},
        rejected{"EmptyBrackets", "[]:80", "empty address"},
        rejected{"EmptyScope", "[fe80::1%]:80", "empty IPv6 scope"},
        rejected{"UnknownInterface", "[fe80::1%nosuchif0]:80", "unknown network interface"},
        rejected{"ScopeIdAbove32Bits", "[fe80::1%4294967296]:80", "scope id out of range"},
        rejected{"ScopeOnIpv4", "1.2.3.4%lo:80", "invalid"}),
    [](const ::testing::TestParamInfo<rejected>& info) { return std::string(info.param.name); });

// Found by tests/fuzz/endpoint_fuzz.cpp: inet_pton and if_nametoindex stop at the first NUL.
TEST(EndpointParse, RejectsEmbeddedNul) {
  using namespace std::string_view_literals;
  EXPECT_THROW(uringcat::endpoint::parse("1.2.3.4\0x:80"sv), std::invalid_argument);
  EXPECT_THROW(uringcat::endpoint::parse("[::1\0x]:80"sv), std::invalid_argument);
  EXPECT_THROW(uringcat::endpoint::parse("[fe80::1%lo\0x]:80"sv), std::invalid_argument);
  EXPECT_FALSE(uringcat::endpoint::from_ip("::1\0junk"sv, 80).has_value());
}

// Found by the fuzzer: the kernel resolves the alias label "lo:1" as "lo".
TEST(EndpointParse, RejectsScopeWithAliasLabel) {
  EXPECT_THROW(uringcat::endpoint::parse("[fe80::1%lo:1]:80"), std::invalid_argument);
  EXPECT_FALSE(uringcat::endpoint::from_ip("fe80::1%lo:1", 80).has_value());
}

TEST(EndpointParse, EscapesNonPrintableBytesInTheMessage) {
  std::string what = parse_error(std::string("1.2.3.4:8\n0", 11));
  EXPECT_NE(what.find("\"1.2.3.4:8\\x0a0\""), std::string::npos) << what;
}

TEST(EndpointParse, ShortensAVeryLongTextInTheMessage) {
  std::string what = parse_error(std::string(10000, '1'));
  EXPECT_LT(what.size(), 400u) << what;
  EXPECT_NE(what.find("...\""), std::string::npos) << what;
}

// ---------------------------------------------------------------------------
// Text output and the round trip
// ---------------------------------------------------------------------------

class EndpointRoundTrip : public ::testing::TestWithParam<const char*> {};

TEST_P(EndpointRoundTrip, ParseOfToStringGivesTheSameEndpoint) {
  endpoint original = endpoint::parse(GetParam());
  std::string text = original.to_string();
  EXPECT_EQ(endpoint::parse(text), original) << GetParam() << " -> " << text;
}

TEST_P(EndpointRoundTrip, ToStringIsAFixedPoint) {
  std::string once = endpoint::parse(GetParam()).to_string();
  EXPECT_EQ(endpoint::parse(once).to_string(), once);
}

INSTANTIATE_TEST_SUITE_P(Texts, EndpointRoundTrip,
                         ::testing::Values("127.0.0.1:9999", "0.0.0.0:0", "255.255.255.255:65535",
                                           "1.2.3.4:00080", "[::1]:9999", "[::]:0",
                                           "[2001:db8::1]:443", "[2001:DB8:0:0:0:0:0:1]:443",
                                           "[::ffff:1.2.3.4]:80", "[fe80::1%lo]:80",
                                           "[fe80::1%1]:80", "[fe80::1%4294967295]:80",
                                           "[ff02::1%lo]:5353"));

TEST(EndpointToString, WritesIpv4AsAddressColonPort) {
  EXPECT_EQ(endpoint::parse("127.0.0.1:9999").to_string(), "127.0.0.1:9999");
}

TEST(EndpointToString, WritesIpv6InBrackets) {
  EXPECT_EQ(endpoint::parse("[::1]:9999").to_string(), "[::1]:9999");
}

TEST(EndpointToString, WritesTheScopeByInterfaceName) {
  if (if_nametoindex("lo") == 0) GTEST_SKIP() << "no interface named lo";
  EXPECT_EQ(endpoint::parse("[fe80::1%lo]:80").to_string(), "[fe80::1%lo]:80");
}

TEST(EndpointToString, WritesAScopeWithoutInterfaceAsNumber) {
  EXPECT_EQ(endpoint::parse("[fe80::1%4294967295]:80").to_string(), "[fe80::1%4294967295]:80");
}

TEST(EndpointToString, UsesTheCanonicalInetNtopForm) {
  EXPECT_EQ(endpoint::parse("[2001:DB8:0:0:0:0:0:1]:443").to_string(), "[2001:db8::1]:443");
}

TEST(EndpointAddressString, OmitsPortAndBrackets) {
  EXPECT_EQ(endpoint::parse("[2001:db8::1]:443").address_string(), "2001:db8::1");
  EXPECT_EQ(endpoint::parse("10.0.0.1:443").address_string(), "10.0.0.1");
}

TEST(EndpointStream, WritesToString) {
  std::ostringstream os;
  os << endpoint::parse("[::1]:80");
  EXPECT_EQ(os.str(), "[::1]:80");
}

// ---------------------------------------------------------------------------
// from_ip and the named constructors
// ---------------------------------------------------------------------------

TEST(EndpointFromIp, AcceptsABareIpv4Address) {
  EXPECT_EQ(endpoint::from_ip("127.0.0.1", 80), endpoint::parse("127.0.0.1:80"));
}

TEST(EndpointFromIp, AcceptsABareIpv6Address) {
  EXPECT_EQ(endpoint::from_ip("::1", 80), endpoint::parse("[::1]:80"));
}

TEST(EndpointFromIp, AcceptsAScopedIpv6Address) {
  if (if_nametoindex("lo") == 0) GTEST_SKIP() << "no interface named lo";
  EXPECT_EQ(endpoint::from_ip("fe80::1%lo", 80), endpoint::parse("[fe80::1%lo]:80"));
}

TEST(EndpointFromIp, RejectsBracketsPortsNamesAndEmptyText) {
  EXPECT_FALSE(endpoint::from_ip("[::1]", 80).has_value());
  EXPECT_FALSE(endpoint::from_ip("127.0.0.1:80", 80).has_value());
  EXPECT_FALSE(endpoint::from_ip("localhost", 80).has_value());
  EXPECT_FALSE(endpoint::from_ip("", 80).has_value());
}

TEST(EndpointNamedConstructors, GiveLoopbackAndWildcardAddresses) {
  EXPECT_EQ(endpoint::loopback_v4(80).to_string(), "127.0.0.1:80");
  EXPECT_EQ(endpoint::loopback_v6(80).to_string(), "[::1]:80");
  EXPECT_EQ(endpoint::any_v4(80).to_string(), "0.0.0.0:80");
  EXPECT_EQ(endpoint::any_v6(80).to_string(), "[::]:80");
}

// ---------------------------------------------------------------------------
// The socket-address side
// ---------------------------------------------------------------------------

TEST(EndpointDefault, IsUnspecified) {
  endpoint ep;
  EXPECT_EQ(ep.family(), AF_UNSPEC);
  EXPECT_FALSE(ep.is_v4());
  EXPECT_FALSE(ep.is_v6());
  EXPECT_EQ(ep.size(), 0u);
  EXPECT_EQ(ep.port(), 0);
  EXPECT_EQ(ep.to_string(), "unspecified");
  EXPECT_EQ(ep, endpoint());
}

TEST(EndpointFromSockaddr, CopiesAnIpv4Address) {
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(8080);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  endpoint ep(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
  EXPECT_EQ(ep, endpoint::loopback_v4(8080));
}

TEST(EndpointFromSockaddr, CopiesAnIpv6AddressWithItsScope) {
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(80);
  ASSERT_EQ(inet_pton(AF_INET6, "fe80::1", &sin6.sin6_addr), 1);
  sin6.sin6_scope_id = 3;
  endpoint ep(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6);
  EXPECT_EQ(ep, endpoint::parse("[fe80::1%3]:80"));
}

TEST(EndpointFromSockaddr, AcceptsALongerLengthSuchAsSockaddrStorage) {
  sockaddr_storage ss{};
  std::memcpy(&ss, endpoint::loopback_v6(1).data(), sizeof(sockaddr_in6));
  endpoint ep(reinterpret_cast<const sockaddr*>(&ss), sizeof ss);
  EXPECT_EQ(ep, endpoint::loopback_v6(1));
}

TEST(EndpointFromSockaddr, RejectsAnotherFamily) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  EXPECT_THROW(endpoint(reinterpret_cast<const sockaddr*>(&sun), sizeof sun),
               std::invalid_argument);
}

TEST(EndpointFromSockaddr, RejectsATooShortLength) {
  endpoint v6 = endpoint::loopback_v6(1);
  EXPECT_THROW(endpoint(v6.data(), sizeof(sockaddr_in6) - 1), std::invalid_argument);
  endpoint v4 = endpoint::loopback_v4(1);
  EXPECT_THROW(endpoint(v4.data(), sizeof(sockaddr_in) - 1), std::invalid_argument);
  EXPECT_THROW(endpoint(v4.data(), 1), std::invalid_argument);
}

TEST(EndpointFromSockaddr, RejectsANullAddress) {
  EXPECT_THROW(endpoint(nullptr, sizeof(sockaddr_in)), std::invalid_argument);
}

TEST(EndpointData, DescribesTheSockaddrOfEachFamily) {
  endpoint v4 = endpoint::parse("127.0.0.1:1");
  EXPECT_EQ(v4.data()->sa_family, AF_INET);
  EXPECT_EQ(v4.size(), sizeof(sockaddr_in));
  endpoint v6 = endpoint::parse("[::1]:1");
  EXPECT_EQ(v6.data()->sa_family, AF_INET6);
  EXPECT_EQ(v6.size(), sizeof(sockaddr_in6));
}

TEST(EndpointData, IsAcceptedByBind) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  endpoint ep = endpoint::loopback_v4(0);
  EXPECT_EQ(::bind(fd, ep.data(), ep.size()), 0) << std::strerror(errno);
  ::close(fd);
}

TEST(EndpointWithPort, ReturnsACopyWithTheNewPort) {
  endpoint original = endpoint::parse("[::1]:80");
  endpoint moved = original.with_port(443);
  EXPECT_EQ(moved, endpoint::parse("[::1]:443"));
  EXPECT_EQ(original.port(), 80);
}

TEST(EndpointWithPort, LeavesTheUnspecifiedEndpointUnspecified) {
  EXPECT_EQ(endpoint().with_port(80), endpoint());
}

TEST(EndpointEquality, DistinguishesPortAddressFamilyAndScope) {
  endpoint a = endpoint::parse("[fe80::1%1]:80");
  EXPECT_EQ(a, endpoint::parse("[fe80::1%1]:80"));
  EXPECT_NE(a, endpoint::parse("[fe80::1%1]:81"));
  EXPECT_NE(a, endpoint::parse("[fe80::2%1]:80"));
  EXPECT_NE(a, endpoint::parse("[fe80::1%2]:80"));
  EXPECT_NE(endpoint::parse("0.0.0.0:80"), endpoint::parse("[::]:80"));
  EXPECT_NE(endpoint::parse("0.0.0.0:0"), endpoint());
}

TEST(EndpointEquality, IgnoresTheIpv6FlowLabel) {
  sockaddr_in6 sin6{};
  std::memcpy(&sin6, endpoint::loopback_v6(80).data(), sizeof sin6);
  sin6.sin6_flowinfo = htonl(0x12345);
  EXPECT_EQ(endpoint(reinterpret_cast<const sockaddr*>(&sin6), sizeof sin6),
            endpoint::loopback_v6(80));
}

}  // namespace
