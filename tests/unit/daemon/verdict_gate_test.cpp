// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/verdict_gate.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ftpwall::daemon {
namespace {

constexpr auto c2s = Direction::client_to_server;
constexpr auto s2c = Direction::server_to_client;

struct Recorder final : VerdictSink {
  std::vector<std::string> seen;  // "id:accept|drop[:bytes]"
  void verdict(std::uint32_t id, bool accept, std::span<const std::uint8_t> bytes) override {
    seen.push_back(std::to_string(id) + (accept ? ":accept" : ":drop") + (bytes.empty() ? "" : ":" + std::to_string(bytes.size())));
  }
};

TEST(VerdictGate, WithNothingInFlightAPacketLeavesAtOnce) {
  Recorder r;
  VerdictGate g(r);
  g.deliver(1, c2s, 10, {});
  g.deliver(1, s2c, 11, {1, 2, 3});
  EXPECT_EQ(r.seen, (std::vector<std::string>{"10:accept", "11:accept:3"}));
  EXPECT_TRUE(g.idle(1));
  EXPECT_EQ(g.waits(), 0u);
}

// The caller's buffer (the daemon's reused outcome) is kept when the packet leaves at once and
// taken only when it must wait; a lane made again after it was dropped starts empty.
TEST(VerdictGate, ABufferIsTakenOnlyWhenThePacketWaits) {
  Recorder r;
  VerdictGate g(r);
  std::vector<std::uint8_t> buf{1, 2, 3, 4};
  g.deliver(1, s2c, 70, buf);
  EXPECT_EQ(buf.size(), 4u);  // sent at once: still the caller's
  g.opening_started(1, s2c);
  g.deliver(1, s2c, 71, buf);
  EXPECT_TRUE(buf.empty());  // waits: moved into the lane
  g.opening_done(1, s2c);
  EXPECT_EQ(r.seen, (std::vector<std::string>{"70:accept:4", "71:accept:4"}));
  EXPECT_TRUE(g.idle(1));
  g.opening_started(2, c2s);  // the kept lane, reused: nothing of session 1 in it
  g.opening_done(2, c2s);
  EXPECT_EQ(r.seen.size(), 2u);
  EXPECT_TRUE(g.idle(2));
}

TEST(VerdictGate, TheAnnouncingDirectionWaitsForItsOpeningInOrder) {
  Recorder r;
  VerdictGate g(r);
  g.opening_started(1, s2c);  // a 227: the server's direction waits
  g.deliver(1, s2c, 20, {9});
  g.deliver(1, c2s, 21, {});  // the other direction does not
  g.deliver(1, s2c, 22, {});
  EXPECT_EQ(r.seen, (std::vector<std::string>{"21:accept"}));
  EXPECT_FALSE(g.idle(1));
  g.opening_done(1, s2c);
  EXPECT_EQ(r.seen, (std::vector<std::string>{"21:accept", "20:accept:1", "22:accept"}));
  EXPECT_TRUE(g.idle(1));
  EXPECT_EQ(g.waits(), 2u);
}

TEST(VerdictGate, TwoOpeningsInFlightReleaseOnlyAfterTheLast) {
  Recorder r;
  VerdictGate g(r);
  g.opening_started(1, c2s);
  g.opening_started(1, c2s);
  g.deliver(1, c2s, 30, {});
  g.opening_done(1, c2s);
  EXPECT_TRUE(r.seen.empty());
  g.opening_done(1, c2s);
  EXPECT_EQ(r.seen, (std::vector<std::string>{"30:accept"}));
}

TEST(VerdictGate, ASessionBeingResetDropsWhatWaits) {
  Recorder r;
  VerdictGate g(r);
  g.opening_started(1, c2s);
  g.deliver(1, c2s, 40, {});
  g.opening_done(1, c2s, /*drop=*/true);
  EXPECT_EQ(r.seen, (std::vector<std::string>{"40:drop"}));
}

TEST(VerdictGate, ReleaseLetsEverythingGoButKeepsTheCountInFlight) {
  Recorder r;
  VerdictGate g(r);
  g.opening_started(2, s2c);
  g.deliver(2, s2c, 50, {});
  g.release(2, false);
  EXPECT_EQ(r.seen, (std::vector<std::string>{"50:accept"}));
  EXPECT_FALSE(g.idle(2)) << "the opening is still in flight";
  g.deliver(2, s2c, 51, {});
  EXPECT_EQ(r.seen.size(), 1u);
  g.opening_done(2, s2c);
  EXPECT_EQ(r.seen.back(), "51:accept");
  EXPECT_TRUE(g.idle(2));
}

TEST(VerdictGate, SessionsDoNotWaitForEachOther) {
  Recorder r;
  VerdictGate g(r);
  g.opening_started(1, c2s);
  g.deliver(1, c2s, 60, {});
  g.deliver(2, c2s, 61, {});
  EXPECT_EQ(r.seen, (std::vector<std::string>{"61:accept"}));
}

}  // namespace
}  // namespace ftpwall::daemon
