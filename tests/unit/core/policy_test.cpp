// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/policy.hpp"

#include <gtest/gtest.h>

#include "nat_tuples.hpp"

namespace ftpwall {
namespace {

using test::client_public;
using test::client_real;
using test::client_snat;
using test::remote_client;
using test::server_addr;
using test::server_dnat;

AnnouncementFacts good_port() {
  AnnouncementFacts f;
  f.kind = AnnouncementKind::port;
  f.from = Direction::client_to_server;
  f.greeted = true;
  f.logged_in = true;
  return f;
}
AnnouncementFacts good_pasv() {
  AnnouncementFacts f;
  f.kind = AnnouncementKind::pasv_reply;
  f.from = Direction::server_to_client;
  f.greeted = true;
  f.logged_in = true;
  f.answers_request = true;
  return f;
}

TEST(StrictPolicy, AcceptsClientRealAddress) {
  Policy p;
  EXPECT_EQ(p.check(good_port(), {client_real, 50000}, true, client_snat()), Reason::none);
  auto e = good_port();
  e.kind = AnnouncementKind::eprt;
  EXPECT_EQ(p.check(e, {client_real, 50000}, true, client_snat()), Reason::none);
  // Without NAT the real and the as-seen address are one.
  auto t = ConnTuples::without_nat({remote_client, 40000}, {server_addr, 21});
  EXPECT_EQ(p.check(good_port(), {remote_client, 50000}, true, t), Reason::none);
}

// Security review M1: client 10.0.0.5 masqueraded to 203.0.113.1 sends "PORT 203,0,113,1,13,61".
// nf_conntrack_ftp (loose=0) wants the sender's real address; the public one is known to every
// server, so accepting it would let a hostile server's injected PORT (NAT Slipstreaming) open a
// DNAT to the inside host without learning its private address.
TEST(StrictPolicy, RejectsMasqueradedClientNamingItsPublicAddress) {
  Policy p;
  EXPECT_EQ(p.check(good_port(), {client_public, 3389}, true, client_snat()), Reason::address_not_sender);
  auto e = good_port();
  e.kind = AnnouncementKind::eprt;
  EXPECT_EQ(p.check(e, {client_public, 3389}, true, client_snat()), Reason::address_not_sender);
  // third_party_networks covering the public address does not bring it back: the opening would
  // still DNAT to the inside host.
  PolicyConfig c;
  c.allow_third_party.push_back(*Cidr::parse("203.0.113.0/24"));
  EXPECT_EQ(Policy(c).check(good_port(), {client_public, 3389}, true, client_snat()), Reason::address_not_sender);
  EXPECT_EQ(Policy(c).check(good_port(), {Address::v4(203, 0, 113, 7), 3389}, true, client_snat()), Reason::none);
}

TEST(StrictPolicy, AcceptsMasqueradedClientPublicAddressWhenConfigured) {
  PolicyConfig c;
  c.allow_client_public_address = true;
  Policy p(c);
  EXPECT_EQ(p.check(good_port(), {client_public, 3389}, true, client_snat()), Reason::none);
  auto e = good_port();
  e.kind = AnnouncementKind::eprt;
  EXPECT_EQ(p.check(e, {client_public, 3389}, true, client_snat()), Reason::none);
  EXPECT_EQ(p.check(good_port(), {client_real, 3389}, true, client_snat()), Reason::none);
  // Nothing else widens: a third host, the server, a low port.
  EXPECT_EQ(p.check(good_port(), {Address::v4(192, 0, 2, 99), 3389}, true, client_snat()), Reason::address_not_sender);
  EXPECT_EQ(p.check(good_port(), {server_addr, 3389}, true, client_snat()), Reason::address_not_sender);
  EXPECT_EQ(p.check(good_port(), {client_public, 25}, true, client_snat()), Reason::port_below_floor);
}

// The server side keeps its as-seen address: a DNATed server announcing the address the client
// dialled (vsftpd pasv_address) names only itself, and the 227 must answer this client's PASV.
TEST(StrictPolicy, AcceptsServerRealAndAsSeenAddress) {
  Policy p;
  EXPECT_EQ(p.check(good_pasv(), {Address::v4(10, 1, 1, 2), 50000}, true, server_dnat()), Reason::none);
  EXPECT_EQ(p.check(good_pasv(), {Address::v4(203, 0, 113, 1), 50000}, true, server_dnat()), Reason::none);
}

TEST(StrictPolicy, RejectsAddressNotSender) {
  Policy p;
  // FTP bounce: the client names a third host.
  EXPECT_EQ(p.check(good_port(), {Address::v4(192, 0, 2, 99), 50000}, true, client_snat()), Reason::address_not_sender);
  // The client must not name the server, nor the server the client.
  EXPECT_EQ(p.check(good_port(), {server_addr, 50000}, true, client_snat()), Reason::address_not_sender);
  EXPECT_EQ(p.check(good_pasv(), {Address::v4(198, 51, 100, 7), 50000}, true, server_dnat()),
            Reason::address_not_sender);
  // A server announcing another inside host (NAT Slipstreaming aiming into the LAN).
  EXPECT_EQ(p.check(good_pasv(), {Address::v4(10, 1, 1, 3), 50000}, true, server_dnat()), Reason::address_not_sender);
}

TEST(StrictPolicy, AllowsConfiguredThirdPartyNetworks) {
  PolicyConfig c;
  c.allow_third_party.push_back(*Cidr::parse("192.0.2.0/24"));
  Policy p(c);
  EXPECT_EQ(p.check(good_port(), {Address::v4(192, 0, 2, 99), 50000}, true, client_snat()), Reason::none);
  EXPECT_EQ(p.check(good_port(), {Address::v4(192, 0, 3, 1), 50000}, true, client_snat()), Reason::address_not_sender);
  // Still subject to the port floor.
  EXPECT_EQ(p.check(good_port(), {Address::v4(192, 0, 2, 99), 25}, true, client_snat()), Reason::port_below_floor);
}

TEST(StrictPolicy, RejectsPortBelowFloor) {
  Policy p;
  EXPECT_EQ(p.check(good_port(), {client_real, 1024}, true, client_snat()), Reason::none);  // the bound
  EXPECT_EQ(p.check(good_port(), {client_real, 1023}, true, client_snat()), Reason::port_below_floor);
  EXPECT_EQ(p.check(good_port(), {client_real, 0}, true, client_snat()), Reason::port_below_floor);
  EXPECT_EQ(p.check(good_pasv(), {Address::v4(10, 1, 1, 2), 21}, true, server_dnat()), Reason::port_below_floor);
  PolicyConfig c;
  c.port_floor = 5000;
  Policy q(c);
  EXPECT_EQ(q.check(good_port(), {client_real, 5000}, true, client_snat()), Reason::none);
  EXPECT_EQ(q.check(good_port(), {client_real, 4999}, true, client_snat()), Reason::port_below_floor);
}

TEST(StrictPolicy, RejectsReplyWithoutRequest) {
  Policy p;
  auto f = good_pasv();
  f.answers_request = false;
  EXPECT_EQ(p.check(f, {Address::v4(10, 1, 1, 2), 50000}, true, server_dnat()), Reason::reply_without_request);
}

TEST(StrictPolicy, RejectsWrongDirection) {
  Policy p;
  auto f = good_port();
  f.from = Direction::server_to_client;
  EXPECT_EQ(p.check(f, {server_addr, 50000}, true, client_snat()), Reason::wrong_direction);
  auto g = good_pasv();
  g.from = Direction::client_to_server;
  EXPECT_EQ(p.check(g, {client_real, 50000}, true, client_snat()), Reason::wrong_direction);
}

TEST(StrictPolicy, RejectsNotFinalReply) {
  Policy p;
  auto f = good_pasv();
  f.final_reply = false;
  EXPECT_EQ(p.check(f, {Address::v4(10, 1, 1, 2), 50000}, true, server_dnat()), Reason::not_final_reply);
}

TEST(StrictPolicy, RejectsBeforeGreeting) {
  Policy p;
  auto f = good_port();
  f.greeted = false;
  EXPECT_EQ(p.check(f, {client_real, 50000}, true, client_snat()), Reason::before_greeting);
}

TEST(StrictPolicy, RejectsCommandOutstanding) {
  Policy p;
  auto f = good_port();
  f.command_outstanding = true;
  EXPECT_EQ(p.check(f, {client_real, 50000}, true, client_snat()), Reason::command_outstanding);
}

TEST(StrictPolicy, RejectsFamilyMismatch) {
  Policy p;
  auto v6 = ConnTuples::without_nat({*Address::parse("2001:db8::5"), 40000}, {*Address::parse("2001:db8::9"), 21});
  // PORT carries IPv4 only: on an IPv6 control connection it cannot name the sender.
  EXPECT_EQ(p.check(good_port(), {Address::v4(192, 0, 2, 5), 50000}, true, v6), Reason::family_mismatch);
  auto e = good_port();
  e.kind = AnnouncementKind::eprt;
  EXPECT_EQ(p.check(e, {*Address::parse("2001:db8::5"), 50000}, true, v6), Reason::none);
  EXPECT_EQ(p.check(e, {*Address::parse("2001:db8::5"), 50000}, true, client_snat()), Reason::family_mismatch);
}

// Issue 10: an IPv6 EPRT naming an address no remote host owns is refused by its own name,
// whatever allow_third_party says; the sender's own address passes (a session over link-local).
TEST(StrictPolicy, RejectsIpv6AddressesThatAreNotUnicast) {
  const Address client = *Address::parse("2001:db8::5");
  auto v6 = ConnTuples::without_nat({client, 40000}, {*Address::parse("2001:db8::9"), 21});
  auto e = good_port();
  e.kind = AnnouncementKind::eprt;
  PolicyConfig everything;
  everything.allow_third_party.push_back(*Cidr::parse("::/0"));
  for (const char* a : {"fe80::1", "febf::1", "ff02::1", "ff0e::1", "::", "::1", "::ffff:192.0.2.10", "::ffff:2001:db8"}) {
    SCOPED_TRACE(a);
    EXPECT_EQ(Policy().check(e, {*Address::parse(a), 50000}, true, v6), Reason::address_not_unicast);
    EXPECT_EQ(Policy(everything).check(e, {*Address::parse(a), 50000}, true, v6), Reason::address_not_unicast);
  }
  // Global unicast that is not the sender's: the bounce check's answer; with the network allowed, allowed.
  EXPECT_EQ(Policy().check(e, {*Address::parse("2001:db8::6"), 50000}, true, v6), Reason::address_not_sender);
  EXPECT_EQ(Policy(everything).check(e, {*Address::parse("2001:db8::6"), 50000}, true, v6), Reason::none);
  EXPECT_EQ(Policy().check(e, {*Address::parse("fec0::1"), 50000}, true, v6), Reason::address_not_sender);  // not fe80::/10
  // The sender's own link-local address is its own.
  const Address ll = *Address::parse("fe80::5");
  auto over_ll = ConnTuples::without_nat({ll, 40000}, {*Address::parse("fe80::9"), 21});
  EXPECT_EQ(Policy().check(e, {ll, 50000}, true, over_ll), Reason::none);
  // The port floor applies as in IPv4.
  EXPECT_EQ(Policy().check(e, {client, 1023}, true, v6), Reason::port_below_floor);
}

TEST(StrictPolicy, RejectsIpv4AddressesThatAreNotUnicast) {
  auto t = ConnTuples::without_nat({Address::v4(192, 0, 2, 5), 40000}, {server_addr, 21});
  PolicyConfig everything;
  everything.allow_third_party.push_back(*Cidr::parse("0.0.0.0/0"));
  for (auto a : {Address::v4(0, 0, 0, 0), Address::v4(127, 0, 0, 1), Address::v4(224, 0, 0, 1),
                 Address::v4(239, 1, 2, 3), Address::v4(255, 255, 255, 255), Address::v4(169, 254, 1, 1)}) {
    SCOPED_TRACE(a.to_string());
    EXPECT_EQ(Policy(everything).check(good_port(), {a, 50000}, true, t), Reason::address_not_unicast);
  }
  EXPECT_EQ(Policy(everything).check(good_port(), {Address::v4(192, 0, 2, 99), 50000}, true, t), Reason::none);
}

TEST(StrictPolicy, RejectsLongPassiveUnsupported) {
  Policy p;
  auto f = good_port();
  f.kind = AnnouncementKind::lprt;
  EXPECT_EQ(p.check(f, {client_real, 50000}, true, client_snat()), Reason::long_passive_unsupported);
  auto g = good_pasv();
  g.kind = AnnouncementKind::lpsv_reply;
  EXPECT_EQ(p.check(g, {Address::v4(10, 1, 1, 2), 50000}, true, server_dnat()), Reason::long_passive_unsupported);
}

TEST(StrictPolicy, RejectsNotLoggedInWhenRequired) {
  auto f = good_port();
  f.logged_in = false;
  EXPECT_EQ(Policy().check(f, {client_real, 50000}, true, client_snat()), Reason::none);  // default off
  PolicyConfig c;
  c.require_login = true;
  EXPECT_EQ(Policy(c).check(f, {client_real, 50000}, true, client_snat()), Reason::not_logged_in);
}

TEST(StrictPolicy, RejectsAfterEpsvAll) {
  Policy p;
  auto f = good_port();
  f.epsv_all = true;
  EXPECT_EQ(p.check(f, {client_real, 50000}, true, client_snat()), Reason::after_epsv_all);
  auto g = good_pasv();
  g.kind = AnnouncementKind::epsv_reply;
  g.epsv_all = true;  // 229 is what EPSV ALL is for
  EXPECT_EQ(p.check(g, {Address::v4(203, 0, 113, 1), 50000}, false, server_dnat()), Reason::none);
}

TEST(StrictPolicy, EpsvReplyHasNoAddressToCheck) {
  Policy p;
  auto g = good_pasv();
  g.kind = AnnouncementKind::epsv_reply;
  EXPECT_EQ(p.check(g, {Address{}, 50000}, false, server_dnat()), Reason::none);
  EXPECT_EQ(p.check(g, {Address{}, 1000}, false, server_dnat()), Reason::port_below_floor);
}

TEST(StrictPolicy, ChecksInTheDocumentedOrder) {
  Policy p;
  AnnouncementFacts f = good_port();
  f.greeted = false;
  f.command_outstanding = true;
  // Several faults: the earliest in the order wins, so the reason is stable.
  EXPECT_EQ(p.check(f, {Address::v4(192, 0, 2, 1), 80}, true, client_snat()), Reason::before_greeting);
  f.greeted = true;
  EXPECT_EQ(p.check(f, {Address::v4(192, 0, 2, 1), 80}, true, client_snat()), Reason::command_outstanding);
  f.command_outstanding = false;
  EXPECT_EQ(p.check(f, {Address::v4(192, 0, 2, 1), 80}, true, client_snat()), Reason::address_not_sender);
}

TEST(ReasonNames, AreStableWords) {
  EXPECT_EQ(name(Reason::address_not_sender), "address_not_sender");
  EXPECT_EQ(name(Reason::port_below_floor), "port_below_floor");
  EXPECT_EQ(name(Reason::long_passive_unsupported), "long_passive_unsupported");
  EXPECT_EQ(name(Reason::address_not_unicast), "address_not_unicast");
  EXPECT_EQ(name(Reason::nat66_unsupported), "nat66_unsupported");
  EXPECT_EQ(name(ViolationAction::reset), "reset");
}

}  // namespace
}  // namespace ftpwall
