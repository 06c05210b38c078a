// SPDX-License-Identifier: GPL-2.0-or-later
#include "log/log.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

namespace ftpwall::log {
namespace {

using namespace std::chrono_literals;
using Clock = RateLimiter::Clock;

TEST(RateLimiter, BurstThenSuppressed) {
  RateLimiter r(3, 1s);
  const Clock::time_point t0{};
  EXPECT_TRUE(r.allow(1, t0).log);
  EXPECT_TRUE(r.allow(1, t0).log);
  EXPECT_TRUE(r.allow(1, t0).log);   // the burst, at the bound
  EXPECT_FALSE(r.allow(1, t0).log);  // one past it
  EXPECT_FALSE(r.allow(1, t0 + 500ms).log);
}

TEST(RateLimiter, RefillReportsSuppressedCount) {
  RateLimiter r(1, 1s);
  const Clock::time_point t0{};
  EXPECT_TRUE(r.allow(7, t0).log);
  EXPECT_FALSE(r.allow(7, t0 + 100ms).log);
  EXPECT_FALSE(r.allow(7, t0 + 200ms).log);
  auto d = r.allow(7, t0 + 1100ms);
  EXPECT_TRUE(d.log);
  EXPECT_EQ(d.suppressed, 2u);
  EXPECT_EQ(r.allow(7, t0 + 2200ms).suppressed, 0u);
}

TEST(RateLimiter, KeysAreIndependent) {
  RateLimiter r(1, 1s);
  const Clock::time_point t0{};
  EXPECT_TRUE(r.allow(1, t0).log);
  EXPECT_FALSE(r.allow(1, t0).log);
  EXPECT_TRUE(r.allow(2, t0).log);
}

TEST(RateLimiter, RefillIsCappedAtTheBurst) {
  RateLimiter r(2, 1s);
  const Clock::time_point t0{};
  EXPECT_TRUE(r.allow(1, t0).log);
  // An hour of silence refills two tokens, not 3600.
  EXPECT_TRUE(r.allow(1, t0 + 1h).log);
  EXPECT_TRUE(r.allow(1, t0 + 1h).log);
  EXPECT_FALSE(r.allow(1, t0 + 1h).log);
}

TEST(Journald, EveryLevelHasItsSyslogPriority) {
  // journalctl -p warning finds warnings, errors and criticals; info and debug stay below.
  EXPECT_EQ(priority_prefix(spdlog::level::trace), "<7>");
  EXPECT_EQ(priority_prefix(spdlog::level::debug), "<7>");
  EXPECT_EQ(priority_prefix(spdlog::level::info), "<6>");
  EXPECT_EQ(priority_prefix(spdlog::level::warn), "<4>");
  EXPECT_EQ(priority_prefix(spdlog::level::err), "<3>");
  EXPECT_EQ(priority_prefix(spdlog::level::critical), "<2>");
}

TEST(Setup, CanRunTwiceAndSetsTheLevel) {
  setup(config::LogLevel::warn);
  setup(config::LogLevel::debug);
  EXPECT_EQ(spdlog::default_logger()->name(), "ftpwalld");
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::debug);
  set_level(config::LogLevel::error);
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::err);
}

}  // namespace
}  // namespace ftpwall::log
