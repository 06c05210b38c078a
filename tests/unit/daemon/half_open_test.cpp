// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/half_open.hpp"

#include <gtest/gtest.h>

namespace ftpwall::daemon {
namespace {

using namespace std::chrono_literals;

Tuple key(std::uint8_t client, std::uint16_t port, std::uint8_t server = 10) {
  return Tuple{Endpoint{Address::v4(192, 0, 2, client), port}, Endpoint{Address::v4(198, 51, 100, server), 21}};
}
const std::vector<std::uint8_t> syn{0x45, 0, 0, 40};

TEST(HalfOpenTable, TakeReturnsTheSynOnce) {
  HalfOpenTable t;
  const auto now = HalfOpenTable::Clock::now();
  EXPECT_TRUE(t.add(key(1, 1000), syn, now).empty());
  EXPECT_TRUE(t.contains(key(1, 1000)));
  EXPECT_EQ(t.take(key(1, 1000)), syn);
  EXPECT_FALSE(t.take(key(1, 1000)).has_value());
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.of_source(Address::v4(192, 0, 2, 1)), 0u);
}

TEST(HalfOpenTable, ARetransmittedSynReplacesTheCopyWithoutEviction) {
  HalfOpenTable t({1, 1, 120s});
  const auto now = HalfOpenTable::Clock::now();
  t.add(key(1, 1000), syn, now);
  const std::vector<std::uint8_t> other{0x45, 1};
  EXPECT_TRUE(t.add(key(1, 1000), other, now).empty());
  EXPECT_EQ(t.take(key(1, 1000)), other);
}

TEST(HalfOpenTable, AtTheGlobalCapTheOldestGoes) {
  HalfOpenTable t({3, 100, 120s});
  const auto now = HalfOpenTable::Clock::now();
  t.add(key(1, 1000), syn, now);
  t.add(key(2, 1000), syn, now);
  t.add(key(3, 1000), syn, now);
  const auto evicted = t.add(key(4, 1000), syn, now);
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_EQ(evicted[0], key(1, 1000));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_TRUE(t.contains(key(4, 1000)));
}

TEST(HalfOpenTable, AtTheSourceCapThatSourcesOldestGoesNotAnotherSources) {
  // The flood of one address never pushes out another address's SYN (review H1).
  HalfOpenTable t({100, 2, 120s});
  const auto now = HalfOpenTable::Clock::now();
  t.add(key(9, 500), syn, now);  // the real client, first
  t.add(key(1, 1000), syn, now);
  t.add(key(1, 1001), syn, now);
  const auto evicted = t.add(key(1, 1002), syn, now);
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_EQ(evicted[0], key(1, 1000));
  EXPECT_TRUE(t.contains(key(9, 500)));
  EXPECT_EQ(t.of_source(Address::v4(192, 0, 2, 1)), 2u);
}

TEST(HalfOpenTable, AFloodFromManySourcesAtTheGlobalCapKeepsTheTableBounded) {
  HalfOpenTable t({64, 8, 120s});
  const auto now = HalfOpenTable::Clock::now();
  std::size_t evicted = 0;
  for (std::uint8_t c = 1; c < 200; ++c)
    for (std::uint16_t p = 1000; p < 1010; ++p) evicted += t.add(key(c, p), syn, now).size();
  EXPECT_EQ(t.size(), 64u);
  EXPECT_EQ(evicted, 199u * 10u - 64u);
  // The next real client still gets in.
  t.add(key(250, 40000), syn, now);
  EXPECT_TRUE(t.contains(key(250, 40000)));
}

TEST(HalfOpenTable, ExpireForgetsOnlyWhatIsOlderThanTheTimeout) {
  HalfOpenTable t({100, 100, 120s});
  const auto t0 = HalfOpenTable::Clock::now();
  t.add(key(1, 1000), syn, t0);
  t.add(key(2, 1000), syn, t0 + 60s);
  EXPECT_EQ(t.expire(t0 + 119s), 0u);
  EXPECT_EQ(t.expire(t0 + 120s), 1u);
  EXPECT_FALSE(t.contains(key(1, 1000)));
  EXPECT_TRUE(t.contains(key(2, 1000)));
  EXPECT_EQ(t.expire(t0 + 181s), 1u);
  EXPECT_EQ(t.size(), 0u);
}

}  // namespace
}  // namespace ftpwall::daemon
