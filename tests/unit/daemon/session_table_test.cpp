// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/session_table.hpp"

#include <gtest/gtest.h>

namespace ftpwall::daemon {
namespace {

Tuple key(std::uint8_t client, std::uint16_t port) {
  return Tuple{Endpoint{Address::v4(192, 0, 2, client), port}, Endpoint{Address::v4(198, 51, 100, 10), 21}};
}

SessionState session(std::uint64_t id) {
  SessionState s;
  s.id = id;
  return s;
}

TEST(SessionTable, AddFindEraseKeepEveryIndexInStep) {
  SessionTable t;
  SessionState& a = t.add(key(1, 1000), session(1));
  EXPECT_EQ(a.key, key(1, 1000));
  EXPECT_EQ(t.find(key(1, 1000)), &a);
  EXPECT_EQ(t.by_id(1), &a);
  EXPECT_EQ(t.of_client(Address::v4(192, 0, 2, 1)), 1u);
  const Tuple original{key(1, 1000).src, Endpoint{Address::v4(203, 0, 113, 1), 21}};
  a.tuples = ConnTuples::without_nat(original.src, original.dst);
  t.set_original(a, original);
  EXPECT_EQ(t.by_original(original)->second.id, 1u);
  t.erase(t.find_it(key(1, 1000)));
  EXPECT_EQ(t.find(key(1, 1000)), nullptr);
  EXPECT_EQ(t.by_id(1), nullptr);
  EXPECT_EQ(t.by_original(original), t.end());
  EXPECT_EQ(t.of_client(Address::v4(192, 0, 2, 1)), 0u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(SessionTable, ASessionReplacedInPlaceTakesItsPredecessorsIndexesAlong) {
  SessionTable t;
  SessionState a = session(5);
  a.ct_known = true;
  a.tuples = ConnTuples::without_nat(key(3, 3000).src, key(3, 3000).dst);
  t.add(key(3, 3000), std::move(a));
  SessionState b = session(6);
  t.add(key(3, 3000), std::move(b));  // the same 4-tuple, a new session
  EXPECT_EQ(t.by_id(5), nullptr);      // never the new session under the old id
  ASSERT_NE(t.by_id(6), nullptr);
  EXPECT_EQ(t.by_original(key(3, 3000)), t.end());
  EXPECT_EQ(t.of_client(Address::v4(192, 0, 2, 3)), 1u);
  t.erase(t.find_it(key(3, 3000)));
  EXPECT_EQ(t.of_client(Address::v4(192, 0, 2, 3)), 0u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(SessionTable, ASessionKnownToConntrackAtItsStartIsIndexedByItsOriginalTuple) {
  SessionTable t;
  SessionState s = session(3);
  s.ct_known = true;
  s.tuples = ConnTuples::without_nat(key(2, 2000).src, key(2, 2000).dst);
  t.add(key(2, 2000), std::move(s));
  EXPECT_EQ(t.by_original(key(2, 2000))->second.id, 3u);
  EXPECT_EQ(t.originals(), std::vector<Tuple>{key(2, 2000)});
}

TEST(SessionTable, SessionsAreCountedPerClient) {
  SessionTable t;
  t.add(key(1, 1000), session(1));
  t.add(key(1, 1001), session(2));
  t.add(key(2, 1000), session(3));
  EXPECT_EQ(t.of_client(Address::v4(192, 0, 2, 1)), 2u);
  EXPECT_EQ(t.of_client(Address::v4(192, 0, 2, 2)), 1u);
  t.erase(t.find_it(key(1, 1000)));
  EXPECT_EQ(t.of_client(Address::v4(192, 0, 2, 1)), 1u);
}

TEST(SessionTable, HeldBytesFollowTheTrackerAndLeaveWithTheSession) {
  SessionTable t;
  SessionState& s = t.add(key(1, 1000), session(1));
  // No Tracker: nothing held.
  t.account_held(s);
  EXPECT_EQ(t.held_of(s.client()), 0u);
  s.held = 700;  // as if a Tracker had held 700 bytes at the last account
  SessionState& other = t.add(key(1, 1001), session(2));
  other.held = 0;
  // Accounting a session whose Tracker is gone brings its share back to zero.
  t.account_held(s);
  EXPECT_EQ(s.held, 0u);
  EXPECT_EQ(t.held_of(s.client()), 0u);
}

}  // namespace
}  // namespace ftpwall::daemon
