// SPDX-License-Identifier: GPL-2.0-or-later
// --passive-ports auto: max(2N, N + R*T, 100), T = 60 s (server) / 120 s (gateway), outside 32768-60999.
#include <gtest/gtest.h>

#include "ftpwall/rules/ruleset.hpp"

namespace {

using namespace ftpwall::rules;

TEST(Sizing, FloorOf100Ports) {
  std::string why;
  EXPECT_EQ(ports_needed(Role::server, 1, 0, &why), 100u);
  EXPECT_NE(why.find("100-port floor"), std::string::npos) << why;
  EXPECT_EQ(ports_needed(Role::server, 50, 0), 100u);   // 2 x 50 = 100: at the floor
  EXPECT_EQ(ports_needed(Role::server, 51, 0), 102u);   // one past it
}

TEST(Sizing, TwiceTheSessionsWhenFewTransfers) {
  std::string why;
  EXPECT_EQ(ports_needed(Role::server, 200, 1, &why), 400u);  // 200 + 60 < 400
  EXPECT_NE(why.find("2 x 200 sessions"), std::string::npos) << why;
}

TEST(Sizing, TimeWaitDominatesWithManyTransfers) {
  std::string why;
  EXPECT_EQ(ports_needed(Role::server, 200, 5, &why), 500u);    // 200 + 5 x 60
  EXPECT_NE(why.find("TCP TIME_WAIT for 60 s"), std::string::npos) << why;
  EXPECT_EQ(ports_needed(Role::gateway, 200, 5, &why), 800u);   // 200 + 5 x 120
  EXPECT_NE(why.find("conntrack keeps each closed data connection 120 s"), std::string::npos) << why;
  EXPECT_EQ(ports_needed(Role::server, 10, 0.5), 100u);          // 10 + 30 < 100
  EXPECT_EQ(ports_needed(Role::server, 100, 1.68), 201u);        // 100 + ceil(100.8) > 2 x 100
}

TEST(Sizing, PlacesTheRangeAboveTheEphemeralRangeWhenItFits) {
  auto s = size_passive_range(Role::server, 200, 5);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->range, (PortRange{61000, 61499}));
  EXPECT_FALSE(s->range.overlaps(ephemeral_range));
  // 61000-65535 holds 4536 ports: exactly that fits above, one more goes below 32768.
  auto top = size_passive_range(Role::server, 2268, 0);
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(top->range, (PortRange{61000, 65535}));
  auto below = size_passive_range(Role::server, 2269, 0);
  ASSERT_TRUE(below.ok());
  EXPECT_EQ(below->range, (PortRange{32768 - 4538, 32767}));
  EXPECT_NE(below->reason.find("placed below the ephemeral range"), std::string::npos);
}

TEST(Sizing, RefusesWhatDoesNotFitOutsideTheEphemeralRange) {
  EXPECT_TRUE(size_passive_range(Role::server, 15872, 0).ok());   // 31744 = all of 1024-32767
  auto r = size_passive_range(Role::server, 15873, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("more than fit outside the ephemeral range"), std::string::npos);
  EXPECT_FALSE(size_passive_range(Role::server, 0, 0).ok());
}

}  // namespace
