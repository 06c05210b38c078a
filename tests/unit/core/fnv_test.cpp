// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/fnv.hpp"

#include <gtest/gtest.h>

#include <array>

namespace ftpwall {
namespace {

// The state records' checksum is FNV-1a 64 (a file format): the published test vectors.
TEST(Fnv1a, PublishedVectors) {
  EXPECT_EQ(Fnv1a().value(), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a().add(std::string_view("a")).value(), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(Fnv1a().add(std::string_view("foobar")).value(), 0x85944171f73967e8ull);
  const std::array<std::uint8_t, 6> bytes{'f', 'o', 'o', 'b', 'a', 'r'};
  EXPECT_EQ(Fnv1a().add(std::span<const std::uint8_t>(bytes)).value(), 0x85944171f73967e8ull);
  EXPECT_EQ(Fnv1a().add_u16(0x6162).value(), Fnv1a().add(std::string_view("ab")).value());
}

}  // namespace
}  // namespace ftpwall
