// SPDX-License-Identifier: GPL-2.0-or-later
// The kernel's -m time --datestop (xt_time date_stop, a u32 of UTC seconds) derived from an
// opening's expiry (security review L11): valid after 2038, up to 2106, and never shorter than
// the daemon's own (monotonic) lifetime.
#include <gtest/gtest.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "firewall/iptc_backend.hpp"

using namespace ftpwall::firewall;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {
WallClock::time_point utc(std::int64_t s) { return WallClock::time_point(seconds(s)); }
}  // namespace

TEST(KernelDateStop, WholeSecondsAreKept) {
  auto d = kernel_date_stop(utc(2000000000));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(*d, 2000000000u);
}

TEST(KernelDateStop, MatchesAtLeastUntilTheStopAndAtMostASecondLonger) {
  // xt_time matches while now <= date_stop: until date_stop + 1 s.
  for (int ms : {0, 1, 250, 500, 999}) {
    const auto stop = utc(2000000000) + milliseconds(ms);
    auto d = kernel_date_stop(stop);
    ASSERT_TRUE(d);
    const auto end = utc(*d) + seconds(1);
    EXPECT_GT(end, stop) << ms;
    EXPECT_LE(end - stop, milliseconds(1001)) << ms;
  }
  // A few microseconds short of a second (a monotonic round trip) keeps that second.
  auto d = kernel_date_stop(utc(2000000000) - std::chrono::microseconds(20));
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, 2000000000u);
}

TEST(KernelDateStop, WorksAfter2038) {
  // 2038-01-19 03:14:07 UTC is INT_MAX; every opening from then on used to fail.
  for (std::int64_t s : {std::int64_t{INT_MAX} - 1, std::int64_t{INT_MAX} + 1, std::int64_t{2208988800} /* 2040 */,
                         std::int64_t{4102444800} /* 2100 */, std::int64_t{UINT32_MAX}}) {
    auto d = kernel_date_stop(utc(s));
    ASSERT_TRUE(d) << s << ": " << d.error().message;
    EXPECT_EQ(*d, static_cast<std::uint32_t>(s));
  }
}

TEST(KernelDateStop, IntMaxIsNotWrittenBecauseIptablesShowsItAsNoEnd) {
  auto d = kernel_date_stop(utc(INT_MAX));
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, static_cast<std::uint32_t>(INT_MAX) + 1);
}

TEST(KernelDateStop, OutsideTheU32IsRefused) {
  EXPECT_FALSE(kernel_date_stop(utc(0)));
  EXPECT_FALSE(kernel_date_stop(utc(-5)));
  EXPECT_FALSE(kernel_date_stop(utc(std::int64_t{UINT32_MAX} + 1)));  // 2106-02-07 06:28:16 UTC
}

TEST(OpeningExpiry, IsMonotonicAndMapsToTheWallClock) {
  // The opening's expiry is on the steady clock; the round trip to UTC and back is exact to well
  // under the millisecond the datestop rounding allows.
  static_assert(std::is_same_v<Clock, std::chrono::steady_clock>);
  const auto t = Clock::now() + seconds(30);
  const auto back = monotonic_time(wall_time(t));
  EXPECT_LT(std::chrono::abs(back - t), milliseconds(1));
  auto d = kernel_date_stop(wall_time(t));
  ASSERT_TRUE(d);
  const auto end = utc(*d) + seconds(1);
  EXPECT_GT(end, WallClock::now() + seconds(29));
  EXPECT_LT(end, WallClock::now() + seconds(32));
}
