// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/addr.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>

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

}  // namespace
}  // namespace ftpwall
