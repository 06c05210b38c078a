// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/session_table.hpp"

#include <gtest/gtest.h>

#include <vector>

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

// Without NAT before the hook the original tuple is the key, and the table finds it without an
// index entry of its own; behind DNAT it is indexed. Either way only once the entry is known.
TEST(SessionTable, OnlyTranslatedSessionsNeedAnIndexEntryAndBothAreFoundByTheirOriginal) {
  SessionTable t;
  SessionState& plain = t.add(key(4, 4000), session(7));
  EXPECT_EQ(t.by_original(key(4, 4000)), t.end());  // the query has not answered yet
  plain.tuples = ConnTuples::without_nat(key(4, 4000).src, key(4, 4000).dst);
  t.set_original(plain, key(4, 4000));
  EXPECT_EQ(t.by_original(key(4, 4000))->second.id, 7u);
  SessionState& dnat = t.add(key(5, 5000), session(8));
  const Tuple original{key(5, 5000).src, Endpoint{Address::v4(203, 0, 113, 1), 21}};
  dnat.tuples = ConnTuples::without_nat(original.src, original.dst);
  t.set_original(dnat, original);
  EXPECT_EQ(t.by_original(original)->second.id, 8u);
  EXPECT_EQ(t.by_original(key(5, 5000)), t.end());  // its key is not an original tuple
  EXPECT_EQ(t.originals(), (std::vector<Tuple>{key(4, 4000), original}));
  t.erase(t.find_it(key(4, 4000)));
  t.erase(t.find_it(key(5, 5000)));
  EXPECT_EQ(t.by_original(key(4, 4000)), t.end());
  EXPECT_EQ(t.by_original(original), t.end());
  EXPECT_TRUE(t.originals().empty());
}

// Issue 13: a session's own state, without its Tracker, in 256 bytes (fields grouped by size,
// the SYN out of line until the conntrack query): with its key and the red-black node, one
// 336-byte heap block per session.
TEST(SessionTable, ASessionStateFitsIn256Bytes) { EXPECT_LE(sizeof(SessionState), 256u); }

// Many translated sessions: every one found by its original tuple (a hash table since issue 13),
// IPv4 and IPv6, none by another's.
TEST(SessionTable, ManyTranslatedSessionsAreEachFoundByTheirOriginal) {
  SessionTable t;
  std::vector<Tuple> originals;
  for (std::uint16_t i = 0; i < 2000; ++i) {
    const bool v6 = i % 2;
    const Tuple k = v6 ? Tuple{Endpoint{Address::parse("2001:db8::5").value(), static_cast<std::uint16_t>(10000 + i)},
                               Endpoint{Address::parse("2001:db8:1::10").value(), 21}}
                       : key(static_cast<std::uint8_t>(1 + i % 200), static_cast<std::uint16_t>(10000 + i));
    SessionState& s = t.add(k, session(100 + i));
    const Tuple original{k.src, Endpoint{v6 ? Address::parse("2001:db8:2::1").value() : Address::v4(203, 0, 113, 1), 21}};
    s.tuples = ConnTuples::without_nat(original.src, original.dst);
    t.set_original(s, original);
    originals.push_back(original);
  }
  for (std::uint16_t i = 0; i < 2000; ++i) {
    auto it = t.by_original(originals[i]);
    ASSERT_NE(it, t.end());
    EXPECT_EQ(it->second.id, 100u + i);
  }
  EXPECT_EQ(t.by_original(Tuple{originals[0].src, Endpoint{Address::v4(203, 0, 113, 2), 21}}), t.end());
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

// Several queues (issue 13): a client whose sessions reach two servers may have them in two
// queues' tables; the per-source caps are checked against one count.
TEST(SessionTable, QueuesShareTheirPerClientCounts) {
  SessionTable q0, q1;
  q1.share_counts(q0.session_counts(), q0.held_counts());
  const Address c = Address::v4(192, 0, 2, 1);
  q0.add(key(1, 1000), session(1));
  SessionState& b = q1.add(Tuple{Endpoint{c, 1001}, Endpoint{Address::v4(198, 51, 100, 20), 21}}, session(2));
  EXPECT_EQ(q0.of_client(c), 2u);
  EXPECT_EQ(q1.of_client(c), 2u);
  b.held = 0;
  q1.erase(q1.find_it(b.key));
  EXPECT_EQ(q0.of_client(c), 1u);
  EXPECT_EQ(q0.size(), 1u);
  EXPECT_EQ(q1.size(), 0u);
}

// A session replaced in place gives back the bytes its predecessor held.
TEST(SessionTable, AReplacedSessionsHeldBytesLeaveWithIt) {
  SessionTable t;
  SessionState& a = t.add(key(1, 1000), session(1));
  t.held_counts()->add(a.client(), 300);
  a.held = 300;
  EXPECT_EQ(t.held_of(a.client()), 300u);
  t.add(key(1, 1000), session(2));
  EXPECT_EQ(t.held_of(Address::v4(192, 0, 2, 1)), 0u);
  EXPECT_EQ(t.of_client(Address::v4(192, 0, 2, 1)), 1u);
}

}  // namespace
}  // namespace ftpwall::daemon
