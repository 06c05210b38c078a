// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/opening_book.hpp"

#include <gtest/gtest.h>

namespace ftpwall::daemon {
namespace {

const Address client_a = Address::v4(192, 0, 2, 10);
const Address client_b = Address::v4(192, 0, 2, 11);
const Address server = Address::v4(198, 51, 100, 10);

firewall::Opening passive(std::uint64_t session, const Address& from, std::uint16_t port) {
  firewall::Opening o;
  o.id = {session, 1};
  o.source = from;
  o.destination = Endpoint{server, port};
  return o;
}

TEST(OpeningBook, AdmitAddRemove) {
  OpeningBook b({10, 10});
  const auto o = passive(1, client_a, 50000);
  EXPECT_EQ(b.admit(1, client_a, {o.source, o.accepted_destination()}), Reason::none);
  b.add(1, client_a, o);
  EXPECT_EQ(b.owner(client_a, o.destination), 1u);
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(b.of_client(client_a), 1u);
  b.remove(1, client_a, o);
  EXPECT_FALSE(b.owner(client_a, o.destination).has_value());
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.of_client(client_a), 0u);
}

TEST(OpeningBook, AnotherSessionsMatchIsAClashNotAReplacement) {
  // Two clients behind one address announcing the same port (review L8): the newer gets none, the
  // older keeps its opening.
  OpeningBook b({10, 10});
  const auto first = passive(1, client_a, 50000);
  b.add(1, client_a, first);
  EXPECT_EQ(b.admit(2, client_a, {first.source, first.destination}), Reason::opening_clash);
  EXPECT_EQ(b.admit(1, client_a, {first.source, first.destination}), Reason::none) << "a session replaces its own";
  auto second = passive(2, client_a, 50000);
  b.remove(2, client_a, second);  // removing what session 2 never had changes nothing
  EXPECT_EQ(b.owner(client_a, first.destination), 1u);
}

TEST(OpeningBook, GlobalAndPerClientLimits) {
  OpeningBook b({3, 2});
  b.add(1, client_a, passive(1, client_a, 50000));
  b.add(2, client_a, passive(2, client_a, 50001));
  EXPECT_EQ(b.admit(3, client_a, {client_a, Endpoint{server, 50002}}), Reason::source_opening_limit);
  EXPECT_EQ(b.admit(3, client_b, {client_b, Endpoint{server, 50002}}), Reason::none) << "another client is not limited";
  b.add(3, client_b, passive(3, client_b, 50002));
  EXPECT_EQ(b.admit(4, client_b, {client_b, Endpoint{server, 50003}}), Reason::opening_limit);
}

TEST(OpeningBook, DnatMatchesMakeAPortInUseForOtherSessionsOnly) {
  OpeningBook b;
  firewall::Opening active;  // a masqueraded client's PORT: the server connects to public:P, DNATed inside
  active.id = {7, 1};
  active.source = server;
  active.destination = Endpoint{Address::v4(203, 0, 113, 1), 40000};
  active.dnat_to = Endpoint{Address::v4(192, 168, 1, 10), 40000};
  b.add(7, Address::v4(192, 168, 1, 10), active);
  EXPECT_TRUE(b.dnat_in_use(8, server, active.destination));
  EXPECT_FALSE(b.dnat_in_use(7, server, active.destination));
  EXPECT_FALSE(b.dnat_in_use(8, server, Endpoint{active.destination.addr, 40001}));
  // The data SYN shows the DNATed destination at the arbitration.
  EXPECT_EQ(b.owner(server, *active.dnat_to), 7u);
  b.remove(7, Address::v4(192, 168, 1, 10), active);
  EXPECT_FALSE(b.dnat_in_use(8, server, active.destination));
}

TEST(OpeningBook, QueuesShareTheirDnatClaims) {
  // Two queues' books (issue 13): clients 192.168.1.10 and .11 behind one MASQUERADE announce the
  // same port to one server; their control connections may be in different queues, their DNAT
  // parts would share one key.
  auto claims = std::make_shared<DnatClaims>();
  OpeningBook q0, q1;
  q0.share_dnat(claims);
  q1.share_dnat(claims);
  auto port = [&](std::uint64_t session, std::uint8_t inside) {
    firewall::Opening o;
    o.id = {session, 1};
    o.source = server;
    o.destination = Endpoint{Address::v4(203, 0, 113, 1), 40000};
    o.dnat_to = Endpoint{Address::v4(192, 168, 1, inside), 40000};
    return o;
  };
  const auto a = port(1, 10), b = port(2, 11);
  EXPECT_EQ(q0.add(1, a.dnat_to->addr, a), Reason::none);
  EXPECT_TRUE(q1.dnat_in_use(2, server, b.destination)) << "the other queue's port chooser sees it";
  EXPECT_EQ(q1.add(2, b.dnat_to->addr, b), Reason::opening_clash) << "and a claim that raced it fails";
  EXPECT_EQ(q1.size(), 0u) << "a failed add adds nothing";
  EXPECT_EQ(q0.add(1, a.dnat_to->addr, a), Reason::none) << "a session's own claim is no clash";
  q0.remove(1, a.dnat_to->addr, a);
  EXPECT_EQ(q1.add(2, b.dnat_to->addr, b), Reason::none);
  EXPECT_TRUE(q0.dnat_in_use(1, server, a.destination));
}

TEST(OpeningBook, QueuesShareThePerClientLimit) {
  OpeningBook q0({10, 2}), q1({10, 2});
  q1.share_counts(q0.counts());
  q0.add(1, client_a, passive(1, client_a, 50000));
  firewall::Opening other = passive(2, client_a, 50001);  // to another server: another queue
  other.destination.addr = Address::v4(198, 51, 100, 20);
  q1.add(2, client_a, other);
  EXPECT_EQ(q0.admit(3, client_a, {client_a, Endpoint{server, 50002}}), Reason::source_opening_limit)
      << "two openings of this client, one in each queue";
  EXPECT_EQ(q0.admit(3, client_b, {client_b, Endpoint{server, 50002}}), Reason::none);
  q1.remove(2, client_a, other);
  EXPECT_EQ(q0.admit(3, client_a, {client_a, Endpoint{server, 50002}}), Reason::none);
}

TEST(OpeningBook, FirstSynWinsItsRetransmissionsPassOthersAreRefused) {
  std::optional<std::uint16_t> winner;
  EXPECT_EQ(OpeningBook::arbitrate(winner, 40001), OpeningBook::Syn::first);
  EXPECT_EQ(winner, 40001);
  EXPECT_EQ(OpeningBook::arbitrate(winner, 40001), OpeningBook::Syn::retransmission);
  EXPECT_EQ(OpeningBook::arbitrate(winner, 40002), OpeningBook::Syn::taken);
  EXPECT_EQ(winner, 40001);
}

// DNAT parts closed lately: remembered for their grace, then forgotten; a later close of the same
// match extends it; what is past its grace goes at the next call (no growth under a storm).
TEST(RecentDnatTest, RemembersForTheGraceOnly) {
  using namespace std::chrono_literals;
  RecentDnat r;
  const RecentDnat::Clock::time_point t0{};
  const RecentDnat::Match a{Address::v4(192, 0, 2, 10), Endpoint{Address::v4(10, 0, 0, 10), 50000}};
  const RecentDnat::Match b{Address::v4(192, 0, 2, 10), Endpoint{Address::v4(10, 0, 0, 10), 50001}};
  EXPECT_FALSE(r.contains(a, t0));
  r.add(a, t0, 1s);
  EXPECT_TRUE(r.contains(a, t0 + 999ms));
  EXPECT_FALSE(r.contains(b, t0 + 999ms));  // another port of the same server: not this part
  EXPECT_FALSE(r.contains(a, t0 + 1s));
  EXPECT_EQ(r.size(), 0u);
  r.add(a, t0 + 2s, 1s);
  r.add(a, t0 + 2500ms, 1s);  // closed again: the later grace counts
  EXPECT_TRUE(r.contains(a, t0 + 3200ms));
  EXPECT_FALSE(r.contains(a, t0 + 3500ms));
  for (int i = 0; i < 10000; ++i)
    r.add({Address::v4(192, 0, 2, 10), Endpoint{Address::v4(10, 0, 0, 10), static_cast<std::uint16_t>(1024 + i)}},
          t0 + 10s + std::chrono::microseconds(i * 10), 1s);
  EXPECT_EQ(r.size(), 10000u);
  r.add(b, t0 + 20s, 1s);
  EXPECT_EQ(r.size(), 1u);
}

}  // namespace
}  // namespace ftpwall::daemon
