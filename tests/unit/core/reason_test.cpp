// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/reason.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace ftpwall {
namespace {

TEST(ReasonOf, EveryReasonRoundTripsThroughAnError) {
  std::set<std::string_view> names;
#define FTPWALL_REASON_CHECK(n)                                                              \
  EXPECT_EQ(reason_of(make_error(Reason::n, "detail: with a colon")), Reason::n) << #n;      \
  EXPECT_EQ(make_error(Reason::n, "x").message, std::string(#n) + ": x");                     \
  EXPECT_TRUE(names.insert(name(Reason::n)).second) << #n;
  FTPWALL_REASONS(FTPWALL_REASON_CHECK)
#undef FTPWALL_REASON_CHECK
  EXPECT_GT(names.size(), 30u);
}

TEST(ReasonOf, UnknownOrMissingNameIsNone) {
  EXPECT_EQ(reason_of(make_error("packet_not_tcp: IPv4 protocol 17")), Reason::packet_not_tcp);
  EXPECT_EQ(reason_of(make_error("something else")), Reason::none);
  EXPECT_EQ(reason_of(make_error("no_such_reason: x")), Reason::none);
  EXPECT_EQ(reason_of(make_error("packet_not_tcp")), Reason::none);  // no ':'
  EXPECT_EQ(reason_of(make_error(" packet_not_tcp: x")), Reason::none);
}

}  // namespace
}  // namespace ftpwall
