// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/addr.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>
#include <tuple>

namespace ftpwall {
namespace {

std::string ntop(int af, const void* bytes) {
  char buf[INET6_ADDRSTRLEN] = {};
  return inet_ntop(af, bytes, buf, sizeof buf);
}

// Address::to_string formats IPv4 by hand (issue 13): exactly as inet_ntop does, for every octet.
TEST(Address, Ipv4TextIsInetNtops) {
  for (unsigned v = 0; v < 256; ++v) {
    const auto o = static_cast<std::uint8_t>(v);
    for (const Address a : {Address::v4(o, 0, 0, 0), Address::v4(0, o, 255, 1), Address::v4(10, 0, o, 10),
                            Address::v4(255, 255, 255, o)})
      EXPECT_EQ(a.to_string(), ntop(AF_INET, a.bytes.data()));
  }
  std::mt19937 rng(13);
  for (int i = 0; i < 10000; ++i) {
    const auto r = static_cast<std::uint32_t>(rng());
    const Address a = Address::v4(static_cast<std::uint8_t>(r >> 24), static_cast<std::uint8_t>(r >> 16),
                                  static_cast<std::uint8_t>(r >> 8), static_cast<std::uint8_t>(r));
    ASSERT_EQ(a.to_string(), ntop(AF_INET, a.bytes.data()));
    auto back = Address::parse(a.to_string());
    ASSERT_TRUE(back);
    ASSERT_EQ(*back, a);
  }
}

TEST(Endpoint, TextOfBothFamilies) {
  EXPECT_EQ((Endpoint{Address::v4(203, 0, 113, 1), 21}).to_string(), "203.0.113.1:21");
  EXPECT_EQ((Endpoint{Address::v4(0, 0, 0, 0), 0}).to_string(), "0.0.0.0:0");
  EXPECT_EQ((Endpoint{Address::v4(255, 255, 255, 255), 65535}).to_string(), "255.255.255.255:65535");
  auto v6 = Address::parse("2001:db8::1");
  ASSERT_TRUE(v6);
  EXPECT_EQ((Endpoint{*v6, 50000}).to_string(), "[2001:db8::1]:50000");
  EXPECT_EQ(v6->to_string(), "2001:db8::1");
}


// The hand-written order is the defaulted one's: family first, then the bytes one by one.
TEST(Address, OrderIsFamilyThenBytesInTurn) {
  std::mt19937 rng(13);
  auto random_address = [&] {
    Address a;
    a.family = rng() % 2 ? Family::v4 : Family::v6;
    const std::size_t n = a.family == Family::v4 ? 4 : 16;
    for (std::size_t i = 0; i < n; ++i) a.bytes[i] = static_cast<std::uint8_t>(rng() % 4 == 0 ? rng() : i);  // many equal prefixes
    return a;
  };
  for (int k = 0; k < 20000; ++k) {
    const Address a = random_address(), b = random_address();
    const auto want = std::tie(a.family, a.bytes) <=> std::tie(b.family, b.bytes);
    ASSERT_EQ(a <=> b, want) << a.to_string() << " vs " << b.to_string();
    ASSERT_EQ(a == b, want == 0);
  }
  const Address x = Address::v4(192, 0, 2, 1), y = Address::v4(192, 0, 2, 2);
  EXPECT_LT(x, y);
  EXPECT_LT(Address::v4(10, 0, 0, 255), Address::v4(10, 0, 1, 0));  // a byte that is more significant wins
  EXPECT_LT(*Address::parse("2001:db8::1"), *Address::parse("2001:db8::1:0"));
  EXPECT_NE(x, y);
}
}  // namespace
}  // namespace ftpwall
