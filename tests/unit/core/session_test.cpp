// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/session.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nat_tuples.hpp"

namespace ftpwall {
namespace {

using test::client_public;
using test::client_real;
using test::client_snat;
using test::remote_client;
using test::server_addr;
using test::server_dnat;
using test::server_inside;
using test::server_public;

// The fixture is the sink: it feeds lines with their CRLF-counted offsets and collects decisions.
class SessionTest : public ::testing::Test {
 protected:
  void start(const ConnTuples& t, PolicyConfig c = {}, Session::Start s = Session::Start::fresh) {
    policy_ = Policy(std::move(c));
    session_.emplace(t, policy_, s);
    out_.clear();
    offset_[0] = offset_[1] = 0;
  }
  void feed(Direction d, std::string_view line) {
    auto& off = offset_[static_cast<int>(d)];
    session_->on_line(d, line, off, out_);
    off += line.size() + 2;
  }
  void c(std::string_view line) { feed(Direction::client_to_server, line); }
  void s(std::string_view line) { feed(Direction::server_to_client, line); }
  // Greeting and login, then forget the (empty) decisions so far.
  void login() {
    s("220 ftp.example.net ready");
    c("USER anonymous");
    s("331 Password please");
    c("PASS guest");
    s("230 Logged in");
    EXPECT_TRUE(out_.empty()) << dump();
    out_.clear();
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> r;
    for (const auto& d : out_) r.push_back(to_string(d));
    return r;
  }
  std::string dump() const {
    std::string r;
    for (const auto& t : texts()) r += t + "\n";
    return r;
  }
  template <class T>
  std::vector<T> all() const {
    std::vector<T> r;
    for (const auto& d : out_)
      if (auto* p = std::get_if<T>(&d)) r.push_back(*p);
    return r;
  }
  // The reasons of all violations, in order.
  std::vector<Reason> reasons() const {
    std::vector<Reason> r;
    for (const auto& v : all<Violation>()) r.push_back(v.reason);
    return r;
  }

  Policy policy_;
  std::optional<Session> session_;
  std::vector<Decision> out_;
  std::uint64_t offset_[2] = {0, 0};
};

TEST(SessionSize, StaysWithinOneKilobyte) {
  EXPECT_LE(sizeof(Session), 1024u);
  RecordProperty("sizeof_Session", static_cast<int>(sizeof(Session)));
}

// ---- accepted announcements ----

TEST_F(SessionTest, ActivePortFromClientBehindSnatIsRewritten) {
  start(client_snat());
  login();
  const auto line_offset = offset_[0];
  c("PORT 10,0,0,5,195,80");
  ASSERT_EQ(out_.size(), 2u) << dump();
  auto rw = std::get<Rewrite>(out_[0]);
  EXPECT_EQ(rw.direction, Direction::client_to_server);
  EXPECT_EQ(rw.line_offset, line_offset);
  EXPECT_EQ(rw.stream_offset, line_offset + 5);
  EXPECT_EQ(rw.old_bytes, "10,0,0,5,195,80");
  EXPECT_EQ(rw.new_bytes, "203,0,113,1,195,80");
  auto o = std::get<OpenData>(out_[1]);
  EXPECT_EQ(o.opening, 1u);
  EXPECT_EQ(o.kind, AnnouncementKind::port);
  EXPECT_EQ(o.source, server_addr);  // the server connects
  EXPECT_EQ(o.destination, (Endpoint{client_public, 50000}));
  EXPECT_EQ(o.inside, (Endpoint{client_real, 50000}));
  EXPECT_TRUE(o.nat());
  EXPECT_TRUE(session_->opening_pending());
}

// "Port in use": the daemon's chooser says the public port 50000 is another opening's DNAT match;
// the rewrite carries the chosen port, the opening DNATs public:50001 -> inside:50000.
TEST_F(SessionTest, ActivePortBehindSnatWithPortInUseCarriesTheChosenPort) {
  start(client_snat());
  std::vector<std::string> asked;
  session_->set_port_chooser([&](const Endpoint& inside, const Endpoint& wanted, const Address& peer) {
    asked.push_back(inside.to_string() + " " + wanted.to_string() + " " + peer.to_string());
    return std::optional<std::uint16_t>(static_cast<std::uint16_t>(wanted.port + 1));
  });
  login();
  c("PORT 10,0,0,5,195,80");
  ASSERT_EQ(out_.size(), 2u) << dump();
  EXPECT_EQ(asked, (std::vector<std::string>{"10.0.0.5:50000 203.0.113.1:50000 198.51.100.9"}));
  auto rw = std::get<Rewrite>(out_[0]);
  EXPECT_EQ(rw.old_bytes, "10,0,0,5,195,80");
  EXPECT_EQ(rw.new_bytes, "203,0,113,1,195,81");
  auto o = std::get<OpenData>(out_[1]);
  EXPECT_EQ(o.destination, (Endpoint{client_public, 50001}));
  EXPECT_EQ(o.inside, (Endpoint{client_real, 50000}));
}

TEST_F(SessionTest, EprtBehindSnatWithPortInUseCarriesTheChosenPort) {
  start(client_snat());
  session_->set_port_chooser([](const Endpoint&, const Endpoint&, const Address&) {
    return std::optional<std::uint16_t>(50002);
  });
  login();
  c("EPRT |1|10.0.0.5|50000|");
  ASSERT_EQ(out_.size(), 2u) << dump();
  EXPECT_EQ(std::get<Rewrite>(out_[0]).new_bytes, "|1|203.0.113.1|50002|");
  EXPECT_EQ(std::get<OpenData>(out_[1]).destination, (Endpoint{client_public, 50002}));
  EXPECT_EQ(std::get<OpenData>(out_[1]).inside, (Endpoint{client_real, 50000}));
}

TEST_F(SessionTest, ActivePortBehindSnatWithNoFreePortIsRefused) {
  PolicyConfig cfg;
  start(client_snat(), cfg);
  session_->set_port_chooser([](const Endpoint&, const Endpoint&, const Address&) { return std::optional<std::uint16_t>(); });
  login();
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::nat_port_exhausted})) << dump();
  EXPECT_TRUE(all<OpenData>().empty());
  EXPECT_TRUE(all<Rewrite>().empty());
  EXPECT_FALSE(session_->opening_pending());
}

// The chooser is asked only where a DNAT back to the client is needed.
TEST_F(SessionTest, PortChooserNotAskedWithoutClientNat) {
  start(server_dnat());
  int asked = 0;
  session_->set_port_chooser([&](const Endpoint&, const Endpoint&, const Address&) {
    ++asked;
    return std::optional<std::uint16_t>();
  });
  login();
  c("PASV");
  s("227 Entering Passive Mode (10,1,1,2,195,80).");
  c("PORT 198,51,100,7,195,80");
  EXPECT_EQ(asked, 0);
  EXPECT_EQ(all<OpenData>().size(), 2u) << dump();
}

TEST_F(SessionTest, PassiveFromServerBehindDnatIsRewritten) {
  start(server_dnat());
  login();
  c("PASV");
  EXPECT_TRUE(out_.empty());
  const auto line_offset = offset_[1];
  s("227 Entering Passive Mode (10,1,1,2,195,80).");
  ASSERT_EQ(out_.size(), 2u) << dump();
  auto rw = std::get<Rewrite>(out_[0]);
  EXPECT_EQ(rw.direction, Direction::server_to_client);
  EXPECT_EQ(rw.stream_offset, line_offset + 27);
  EXPECT_EQ(rw.old_bytes, "10,1,1,2,195,80");
  EXPECT_EQ(rw.new_bytes, "203,0,113,1,195,80");
  auto o = std::get<OpenData>(out_[1]);
  EXPECT_EQ(o.source, remote_client);  // the client connects
  EXPECT_EQ(o.destination, (Endpoint{server_public, 50000}));
  EXPECT_EQ(o.inside, (Endpoint{server_inside, 50000}));
  EXPECT_EQ(texts()[1], "open_data #1 pasv_reply v4 from 198.51.100.7 to 203.0.113.1:50000 inside 10.1.1.2:50000");
}

TEST_F(SessionTest, ServerAnnouncingItsPublicAddressOpensWithoutRewrite) {
  start(server_dnat());
  login();
  c("PASV");
  s("227 Entering Passive Mode (203,0,113,1,195,80).");
  ASSERT_EQ(out_.size(), 1u) << dump();
  auto o = std::get<OpenData>(out_[0]);
  EXPECT_EQ(o.destination, (Endpoint{server_public, 50000}));
  EXPECT_EQ(o.inside, (Endpoint{server_inside, 50000}));
}

// Security review M1: a masqueraded client naming the gateway's public address (what every server
// sees) is refused, as nf_conntrack_ftp with loose=0 does; nothing is DNATed to the inside host.
TEST_F(SessionTest, MasqueradedClientNamingItsPublicAddressIsRefused) {
  start(client_snat());
  login();
  c("PORT 203,0,113,1,13,61");
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::address_not_sender})) << dump();
  EXPECT_TRUE(all<OpenData>().empty());
  EXPECT_TRUE(all<Rewrite>().empty());
  EXPECT_FALSE(session_->opening_pending());
  s("200 PORT command successful");
  out_.clear();
  c("EPRT |1|203.0.113.1|3389|");
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::address_not_sender})) << dump();
  EXPECT_TRUE(all<OpenData>().empty());
}

TEST_F(SessionTest, MasqueradedClientPublicAddressOpensWhenConfigured) {
  PolicyConfig cfg;
  cfg.allow_client_public_address = true;
  start(client_snat(), cfg);
  login();
  c("PORT 203,0,113,1,13,61");
  ASSERT_EQ(out_.size(), 1u) << dump();
  auto o = std::get<OpenData>(out_[0]);
  EXPECT_EQ(o.source, server_addr);
  EXPECT_EQ(o.destination, (Endpoint{client_public, 3389}));
  EXPECT_EQ(o.inside, (Endpoint{client_real, 3389}));
  out_.clear();
  s("200 PORT command successful");
  out_.clear();
  c("EPRT |1|203.0.113.1|3389|");
  EXPECT_TRUE(reasons().empty()) << dump();
  ASSERT_EQ(all<OpenData>().size(), 1u) << dump();
  EXPECT_EQ(all<OpenData>()[0].inside, (Endpoint{client_real, 3389}));
}

TEST_F(SessionTest, EpsvReplyOpensTheControlAddress) {
  start(server_dnat());
  login();
  c("EPSV");
  s("229 Entering Extended Passive Mode (|||50000|)");
  ASSERT_EQ(out_.size(), 1u) << dump();
  auto o = std::get<OpenData>(out_[0]);
  EXPECT_EQ(o.kind, AnnouncementKind::epsv_reply);
  EXPECT_EQ(o.destination, (Endpoint{server_public, 50000}));
  EXPECT_EQ(o.inside, (Endpoint{server_inside, 50000}));
}

TEST_F(SessionTest, EprtOnIpv6WithoutNat) {
  auto cl = *Address::parse("2001:db8::5"), sv = *Address::parse("2001:db8::9");
  start(ConnTuples::without_nat({cl, 40000}, {sv, 21}));
  login();
  c("EPRT |2|2001:db8::5|50000|");
  ASSERT_EQ(out_.size(), 1u) << dump();
  auto o = std::get<OpenData>(out_[0]);
  EXPECT_EQ(o.family, Family::v6);
  EXPECT_EQ(o.source, sv);
  EXPECT_EQ(o.destination, (Endpoint{cl, 50000}));
  EXPECT_FALSE(o.nat());
}

TEST_F(SessionTest, EprtRewriteKeepsDelimiter) {
  start(client_snat());
  login();
  c("EPRT #1#10.0.0.5#50000#");
  ASSERT_EQ(out_.size(), 2u) << dump();
  EXPECT_EQ(std::get<Rewrite>(out_[0]).new_bytes, "#1#203.0.113.1#50000#");
  EXPECT_EQ(std::get<Rewrite>(out_[0]).old_bytes, "#1#10.0.0.5#50000#");
}

TEST_F(SessionTest, CommandsAreCaseInsensitive) {
  start(server_dnat());
  login();
  c("pAsV");
  s("227 Entering Passive Mode (10,1,1,2,195,80)");
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
  out_.clear();
  c("retr x");
  s("150 here it comes");
  s("226 done");
  c("port 198,51,100,7,195,81");
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
}

TEST_F(SessionTest, MultiLine227CountsOnItsFinalLine) {
  start(server_dnat());
  login();
  c("PASV");
  s("227-Here it comes:");
  s("   some text 1,2,3");
  EXPECT_TRUE(out_.empty()) << dump();
  s("227 Entering Passive Mode (10,1,1,2,195,80)");
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
  EXPECT_TRUE(reasons().empty());
}

TEST_F(SessionTest, MultiLineGreeting) {
  start(client_snat());
  s("220-Welcome");
  s("220-to the server");
  EXPECT_FALSE(session_->greeted());
  s("220 ready");
  EXPECT_TRUE(session_->greeted());
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
}

TEST_F(SessionTest, PreliminaryReplyBeforeGreeting) {
  start(client_snat());
  s("120 ready in 1 minute");
  s("220 ready");
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
}

// A picked-up session assumes nothing (C1, M2 of the security review): not the greeting, not the
// login, not an empty queue. One whole round trip after the pick-up synchronises it.
TEST_F(SessionTest, PickupUnsynchronisedRefusesTheFirstPort) {
  start(client_snat(), {}, Session::Start::mid_stream);
  c("PORT 10,0,0,5,195,80");
  EXPECT_TRUE(all<OpenData>().empty()) << dump();
  EXPECT_EQ(reasons(), std::vector<Reason>{Reason::pickup_unsynchronised});
}

TEST_F(SessionTest, PickupUnsynchronisedRefusesA229AnsweringAnUnseenCommand) {
  // The review's C1 shape: the "client" emitted an EPSV line before the pick-up, the other side
  // answers 229. Nothing seen proves there was such a command.
  start(server_dnat(), {}, Session::Start::mid_stream);
  s("229 Entering Extended Passive Mode (|||3306|)");
  EXPECT_TRUE(all<OpenData>().empty()) << dump();
  EXPECT_EQ(reasons(), std::vector<Reason>{Reason::pickup_unsynchronised});
  EXPECT_FALSE(session_->synchronised());
}

TEST_F(SessionTest, PickupRoundTripOfAPasvSeenWholeCounts) {
  // The PASV was seen whole after the pick-up, the 229 answers it: that is the round trip.
  start(server_dnat(), {}, Session::Start::mid_stream);
  c("EPSV");
  s("229 Entering Extended Passive Mode (|||3306|)");
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
  EXPECT_TRUE(reasons().empty()) << dump();
  EXPECT_TRUE(session_->synchronised());
}

TEST_F(SessionTest, PickupClientAnnouncementBeforeTheRoundTripIsRefusedEvenIfAnswered) {
  start(client_snat(), {}, Session::Start::mid_stream);
  c("PORT 10,0,0,5,195,80");
  s("200 PORT command successful.");
  EXPECT_TRUE(all<OpenData>().empty()) << dump();
  EXPECT_EQ(reasons(), std::vector<Reason>{Reason::pickup_unsynchronised});
  EXPECT_TRUE(session_->synchronised());
  out_.clear();
  c("PORT 10,0,0,5,195,81");
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
}

TEST_F(SessionTest, PickupSynchronisesAfterOneRoundTrip) {
  start(client_snat(), {}, Session::Start::mid_stream);
  s("226 Transfer complete");  // answers a command sent before the pick-up: proves nothing
  EXPECT_FALSE(session_->synchronised());
  c("TYPE I");
  s("200 Switching to Binary mode.");
  EXPECT_TRUE(session_->synchronised());
  EXPECT_TRUE(session_->greeted());
  EXPECT_FALSE(session_->logged_in()) << "TYPE says nothing of the login";
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
  EXPECT_TRUE(reasons().empty()) << dump();
}

TEST_F(SessionTest, PickupLearnsTheLoginFromAPositiveReplyToADataCommand) {
  PolicyConfig strict;
  strict.require_login = true;
  start(server_dnat(), strict, Session::Start::mid_stream);
  c("PASV");
  s("227 Entering Passive Mode (10,1,1,2,195,80)");
  EXPECT_TRUE(session_->logged_in());
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
  EXPECT_TRUE(reasons().empty()) << dump();
}

TEST_F(SessionTest, PickupWithoutLoginEvidenceStaysNotLoggedIn) {
  PolicyConfig strict;
  strict.require_login = true;
  start(client_snat(), strict, Session::Start::mid_stream);
  c("NOOP");
  s("200 NOOP ok.");
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(reasons(), std::vector<Reason>{Reason::not_logged_in});
}

// Missing bytes never help an attacker (security review M3): commands may have been among the
// bytes a gap swallowed, so the PORT right after it meets a queue that is not known to be empty.
TEST_F(SessionTest, PortRightAfterAClientStreamGapCountsAsCommandOutstanding) {
  start(client_snat());
  login();
  session_->on_gap(Direction::client_to_server);
  c("PORT 10,0,0,5,195,80");
  EXPECT_TRUE(all<OpenData>().empty()) << dump();
  EXPECT_EQ(reasons(), std::vector<Reason>{Reason::command_outstanding});
}

TEST_F(SessionTest, AClientStreamGapIsForgottenAtTheNextFinalReply) {
  start(client_snat());
  login();
  session_->on_gap(Direction::client_to_server);
  s("150 still sending");  // preliminary: not the end of anything
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(reasons(), std::vector<Reason>{Reason::command_outstanding});
  out_.clear();
  s("226 Transfer complete");
  c("PORT 10,0,0,5,195,81");
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
  EXPECT_TRUE(reasons().empty()) << dump();
}

TEST_F(SessionTest, AServerStreamGapDoesNotBlockTheClient) {
  start(client_snat());
  login();
  session_->on_gap(Direction::server_to_client);
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
}

TEST_F(SessionTest, PickupPipelinedCommandsStayOutstanding) {
  // Two commands seen, one reply: the second is still unanswered, a PORT behind it waits.
  start(client_snat(), {}, Session::Start::mid_stream);
  c("TYPE I");
  c("NOOP");
  s("200 Switching to Binary mode.");
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(reasons(), std::vector<Reason>{Reason::command_outstanding});
}

// ---- refusals: one failing input per Reason ----

TEST_F(SessionTest, HttpPostBodyWithEmbeddedPortOpensNothing) {
  // NAT Slipstreaming: a browser inside posts to port 21 of an attacker's server; the body holds
  // a line that a naive helper would take for the client's PORT.
  start(client_snat());
  c("POST /upload HTTP/1.1");
  c("Host: 198.51.100.9:21");
  c("Content-Type: text/plain");
  c("Content-Length: 27");
  c("");
  c("PORT 10,0,0,5,1,189");  // 445: SMB
  c("PORT 10,0,0,5,195,80");
  EXPECT_TRUE(all<OpenData>().empty()) << dump();
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::before_greeting, Reason::before_greeting}));
}

TEST_F(SessionTest, HttpPostAfterAGreetingStillOpensNothing) {
  // The attacker's server greets first: the request lines are commands nobody answered yet.
  start(client_snat());
  s("220 hi");
  c("POST /upload HTTP/1.1");
  c("Host: 198.51.100.9:21");
  c("");
  c("PORT 10,0,0,5,195,80");
  EXPECT_TRUE(all<OpenData>().empty()) << dump();
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::command_outstanding}));
}

TEST_F(SessionTest, RepliesSentAheadDoNotAnswerLaterCommands) {
  // A server cannot pre-answer commands: replies without a request are dropped, not banked.
  start(client_snat());
  s("220 hi");
  s("500 a");
  s("500 b");
  c("POST / HTTP/1.1");
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::command_outstanding}));
}

TEST_F(SessionTest, RejectsAddressNotSender) {
  start(client_snat());
  login();
  c("PORT 192,0,2,99,195,80");  // FTP bounce to a third host
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::address_not_sender}));
  EXPECT_TRUE(all<OpenData>().empty());
  EXPECT_EQ(all<Violation>()[0].bytes, "PORT 192,0,2,99,195,80");
  EXPECT_EQ(texts()[0], "violation address_not_sender client_to_server @28 \"PORT 192,0,2,99,195,80\" pass");
}

TEST_F(SessionTest, RejectsPortBelowFloor) {
  start(client_snat());
  login();
  c("PORT 10,0,0,5,0,25");
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::port_below_floor}));
  s("200 ok");
  c("PORT 10,0,0,5,3,255");  // 1023: past the bound
  s("200 ok");
  c("PORT 10,0,0,5,4,0");  // 1024: the bound
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::port_below_floor, Reason::port_below_floor}));
  EXPECT_EQ(all<OpenData>().size(), 1u);
}

TEST_F(SessionTest, RejectsReplyWithoutRequest) {
  start(server_dnat());
  login();
  s("227 Entering Passive Mode (10,1,1,2,195,80)");  // nobody asked
  c("EPSV");
  s("227 Entering Passive Mode (10,1,1,2,195,80)");  // answers EPSV: not a PASV reply
  c("PASV");
  s("229 Entering Extended Passive Mode (|||50000|)");  // answers PASV: not an EPSV reply
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::reply_without_request, Reason::reply_without_request,
                                            Reason::reply_without_request}));
  EXPECT_TRUE(all<OpenData>().empty());
}

TEST_F(SessionTest, RejectsWrongDirection) {
  start(client_snat());
  login();
  s("PORT 198,51,100,9,195,80");                      // the server "announcing" for the client
  c("227 Entering Passive Mode (10,0,0,5,195,80)");   // the client "announcing" for the server
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::wrong_direction, Reason::wrong_direction}));
  EXPECT_TRUE(all<OpenData>().empty());
}

TEST_F(SessionTest, RejectsNotFinalReply) {
  start(server_dnat());
  login();
  c("PASV");
  s("227-Entering Passive Mode (10,1,1,2,195,80)");
  s("227 OK");
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::not_final_reply, Reason::bad_syntax}));
  EXPECT_TRUE(all<OpenData>().empty());
}

TEST_F(SessionTest, Reply227InsideErrorTextDoesNotCount) {
  start(server_dnat());
  login();
  c("PASV");
  s("500 Unknown command 227 Entering Passive Mode (10,1,1,2,195,80)");
  c("PASV");
  s("500-Error:");
  s("227 Entering Passive Mode (10,1,1,2,195,80)");  // text inside the 500 reply
  s("500 end");
  EXPECT_TRUE(out_.empty()) << dump();
  // Both PASVs are answered: a later 227 has no request left.
  s("227 Entering Passive Mode (10,1,1,2,195,80)");
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::reply_without_request}));
}

TEST_F(SessionTest, RejectsBeforeGreeting) {
  start(client_snat());
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::before_greeting}));
}

TEST_F(SessionTest, RejectsCommandOutstanding) {
  start(client_snat());
  login();
  c("TYPE I");
  c("PORT 10,0,0,5,195,80");  // pipelined behind TYPE
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::command_outstanding}));
  s("200 Type set");
  s("200 PORT ok");
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
}

TEST_F(SessionTest, RejectsFamilyMismatch) {
  start(client_snat());
  login();
  c("EPRT |2|2001:db8::5|50000|");
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::family_mismatch}));
}

TEST_F(SessionTest, RejectsBadSyntax) {
  start(client_snat());
  login();
  c("PORT 10,0,0,5,195");
  s("501 bad");
  c("PORT\t10,0,0,5,195,80");
  s("500 bad");
  c("PORT 10,0,0,5,195,80 ");
  s("501 bad");
  c("EPRT |1|10.0.0.5|0|");
  EXPECT_EQ(reasons(),
            (std::vector<Reason>{Reason::bad_syntax, Reason::bad_syntax, Reason::bad_syntax, Reason::bad_syntax}));
}

TEST_F(SessionTest, RejectsLineTooLong) {
  start(server_dnat());
  login();
  const std::string tail = "(10,1,1,2,195,80)";
  // Line + CRLF == limits::max_announcement_line: the bound.
  std::string at = "227 " + std::string(limits::max_announcement_line - 2 - 4 - tail.size(), 'x') + tail;
  ASSERT_EQ(at.size() + 2, limits::max_announcement_line);
  c("PASV");
  s(at);
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
  c("PASV");
  s("227 x" + at.substr(4));  // one byte past it
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::line_too_long}));
}

TEST_F(SessionTest, RejectsLongPassiveUnsupported) {
  start(client_snat());
  login();
  c("LPRT 4,4,10,0,0,5,2,195,80");
  s("200 ok");
  c("LPSV");
  s("228 Entering Long Passive Mode (4,4,198,51,100,9,2,195,80)");
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::long_passive_unsupported, Reason::long_passive_unsupported}));
  EXPECT_TRUE(all<OpenData>().empty());
}

TEST_F(SessionTest, RejectsNotLoggedIn) {
  PolicyConfig cfg;
  cfg.require_login = true;
  start(client_snat(), cfg);
  s("220 hi");
  c("PORT 10,0,0,5,195,80");
  s("200 ok");
  c("USER a");
  s("230 in");
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::not_logged_in}));
  EXPECT_EQ(all<OpenData>().size(), 1u);
}

TEST_F(SessionTest, RejectsAfterEpsvAll) {
  start(client_snat());
  login();
  c("EPSV ALL");
  s("200 EPSV ALL ok");
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::after_epsv_all}));
}

TEST_F(SessionTest, EpsvAllRefusedChangesNothing) {
  start(client_snat());
  login();
  c("EPSV ALL");
  s("500 no");
  c("PORT 10,0,0,5,195,80");
  EXPECT_TRUE(reasons().empty()) << dump();
}

TEST_F(SessionTest, RejectsTooManyPendingCommands) {
  start(client_snat());
  login();
  for (std::size_t i = 0; i < limits::max_pending_commands; ++i) c("NOOP");  // the bound
  EXPECT_TRUE(out_.empty()) << dump();
  c("NOOP");  // past it
  c("NOOP");
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::too_many_pending_commands}));  // once
  EXPECT_EQ(session_->commands_outstanding(), limits::max_pending_commands + 2);
  for (std::size_t i = 0; i < limits::max_pending_commands + 1; ++i) s("200 ok");
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(reasons().back(), Reason::command_outstanding);
  s("200 ok");
  s("200 PORT ok");
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
}

TEST_F(SessionTest, ViolationBytesAreBounded) {
  start(client_snat());
  login();
  c("PORT " + std::string(300, '9'));
  ASSERT_EQ(all<Violation>().size(), 1u);
  EXPECT_EQ(all<Violation>()[0].bytes.size(), limits::max_violation_bytes);
}

TEST_F(SessionTest, ViolationBytesKeptWholeAtTheBound) {
  start(client_snat());
  login();
  std::string at = "PORT " + std::string(limits::max_violation_bytes - 5, '9');
  ASSERT_EQ(at.size(), limits::max_violation_bytes);
  c(at);
  s("501 no");
  c(at + "9");  // one past it
  ASSERT_EQ(all<Violation>().size(), 2u);
  EXPECT_EQ(all<Violation>()[0].bytes, at);
  EXPECT_EQ(all<Violation>()[1].bytes, at);
}

TEST_F(SessionTest, DecisionTextEscapesOddBytes) {
  start(client_snat());
  login();
  c("PORT 10,0,0,5,195,80\x16\"\\");
  ASSERT_EQ(texts().size(), 1u);
  EXPECT_EQ(texts()[0], "violation bad_syntax client_to_server @28 \"PORT 10,0,0,5,195,80\\x16\\x22\\x5c\" pass");
}

TEST_F(SessionTest, ViolationCarriesConfiguredAction) {
  PolicyConfig cfg;
  cfg.on_violation = ViolationAction::reset;
  start(client_snat(), cfg);
  c("PORT 10,0,0,5,195,80");
  ASSERT_EQ(all<Violation>().size(), 1u);
  EXPECT_EQ(all<Violation>()[0].action, ViolationAction::reset);
}

// ---- pairing and effects ----

TEST_F(SessionTest, NewAnnouncementReplacesThePendingOpening) {
  start(client_snat());
  login();
  c("PORT 10,0,0,5,195,80");
  s("200 ok");
  out_.clear();
  c("PORT 10,0,0,5,195,81");
  EXPECT_EQ(texts(), (std::vector<std::string>{
                         "close_data #1 opening_replaced",
                         "rewrite client_to_server @55 \"10,0,0,5,195,81\" -> \"203,0,113,1,195,81\"",
                         "open_data #2 port v4 from 198.51.100.9 to 203.0.113.1:50001 inside 10.0.0.5:50001"}));
}

TEST_F(SessionTest, RefusedPortClosesTheOpening) {
  start(client_snat());
  login();
  c("PORT 10,0,0,5,195,80");
  s("500 Illegal PORT command");
  ASSERT_EQ(all<CloseData>().size(), 1u) << dump();
  EXPECT_EQ(all<CloseData>()[0].reason, Reason::data_command_refused);
  EXPECT_FALSE(session_->opening_pending());
}

TEST_F(SessionTest, TemporaryRefusalClosesTheOpeningToo) {
  start(client_snat());
  login();
  c("EPRT |1|10.0.0.5|50000|");
  s("425 Can't open data connection");
  EXPECT_EQ(all<CloseData>().size(), 1u) << dump();
}

TEST_F(SessionTest, ServiceClosingEndsTheSession) {
  start(client_snat());
  login();
  c("PORT 10,0,0,5,195,80");
  s("421 Timeout");
  EXPECT_EQ(texts().back(), "session_end service_closing");
  EXPECT_EQ(all<CloseData>()[0].reason, Reason::service_closing);
  EXPECT_TRUE(session_->ended());
  out_.clear();
  c("PORT 10,0,0,5,195,81");
  EXPECT_TRUE(out_.empty());
}

TEST_F(SessionTest, TransferWithPreliminaryReplySpendsTheOpening) {
  start(server_dnat());
  login();
  c("PASV");
  s("227 Entering Passive Mode (10,1,1,2,195,80)");
  c("RETR file");
  s("150 Opening BINARY mode data connection");
  EXPECT_EQ(all<CloseData>().size(), 0u);
  s("226 Transfer complete");
  ASSERT_EQ(all<CloseData>().size(), 1u) << dump();
  EXPECT_EQ(all<CloseData>()[0].reason, Reason::transfer_done);
  out_.clear();
  c("PASV");
  s("227 Entering Passive Mode (10,1,1,2,195,81)");
  EXPECT_EQ(all<CloseData>().size(), 0u);  // nothing left to replace
  EXPECT_EQ(all<OpenData>()[0].opening, 2u);
}

TEST_F(SessionTest, FailedTransferWithoutPreliminaryKeepsTheOpening) {
  start(server_dnat());
  login();
  c("PASV");
  s("227 Entering Passive Mode (10,1,1,2,195,80)");
  c("RETR missing");
  s("550 No such file");
  EXPECT_TRUE(all<CloseData>().empty()) << dump();
  EXPECT_TRUE(session_->opening_pending());
}

TEST_F(SessionTest, AborDuringTransferPairs426And226) {
  start(client_snat());
  login();
  c("PORT 10,0,0,5,195,80");
  s("200 ok");
  c("RETR big");
  s("150 Opening");
  c("ABOR");  // (lftp sends IAC IP IAC DM first; the framer strips them)
  s("426 Connection closed; transfer aborted.");
  EXPECT_EQ(session_->commands_outstanding(), 1u);
  s("226 Closing data connection.");
  EXPECT_EQ(session_->commands_outstanding(), 0u);
  EXPECT_EQ(all<CloseData>().size(), 1u);
  out_.clear();
  c("PORT 10,0,0,5,195,81");
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
}

TEST_F(SessionTest, AborCrossingTheTransferEndGetsItsOwnReply) {
  start(client_snat());
  login();
  c("PORT 10,0,0,5,195,80");
  s("200 ok");
  c("RETR small");
  s("150 Opening");
  c("ABOR");
  s("226 Transfer complete.");  // sent before the server read ABOR: answers RETR
  EXPECT_EQ(session_->commands_outstanding(), 1u);
  s("225 No transfer to ABOR.");
  EXPECT_EQ(session_->commands_outstanding(), 0u);
  c("PASV");
  s("227 Entering Passive Mode (198,51,100,9,195,81)");
  EXPECT_EQ(all<OpenData>().size(), 2u) << dump();
  EXPECT_TRUE(reasons().empty()) << dump();
}

TEST_F(SessionTest, AborAnsweredOnceByANonConformingServerDoesNotStickForever) {
  start(client_snat());
  login();
  c("PORT 10,0,0,5,195,80");
  s("200 ok");
  c("RETR big");
  s("150 Opening");
  c("ABOR");
  s("226 Abort successful");  // the only reply: RETR's and ABOR's merged
  c("PASV");
  s("227 Entering Passive Mode (198,51,100,9,195,81)");  // shows ABOR got no reply of its own
  EXPECT_EQ(session_->commands_outstanding(), 0u);
  c("RETR x");
  s("150 go");
  c("ABOR");
  s("226 Abort successful");
  c("PORT 10,0,0,5,195,82");  // the client moved on: the ABOR is not held against it
  s("200 PORT ok");
  EXPECT_EQ(session_->commands_outstanding(), 0u);
  EXPECT_TRUE(reasons().empty()) << dump();
  EXPECT_EQ(all<OpenData>().size(), 3u) << dump();
}

TEST_F(SessionTest, AborAfterFailedTransferStaysOutstanding) {
  start(client_snat());
  login();
  c("PORT 10,0,0,5,195,80");
  s("200 ok");
  c("RETR big");
  s("150 Opening");
  c("ABOR");
  s("426 Connection closed; transfer aborted.");
  c("PORT 10,0,0,5,195,81");  // pipelined before ABOR's 226: still outstanding
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::command_outstanding}));
}

TEST_F(SessionTest, AborWithoutTransfer) {
  start(client_snat());
  login();
  c("ABOR");
  s("225 No transfer to ABOR.");
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(all<OpenData>().size(), 1u) << dump();
}

TEST_F(SessionTest, AuthTlsMakesTheSessionEncrypted) {
  start(client_snat());
  login();
  c("AUTH TLS");
  const auto at = offset_[1];
  s("234 Proceed with negotiation.");
  ASSERT_EQ(out_.size(), 1u) << dump();
  EXPECT_EQ(std::get<Encrypted>(out_[0]).line_offset, at);
  EXPECT_TRUE(session_->encrypted());
  out_.clear();
  c("\x16\x03\x01 garbage that is TLS");
  c("PORT 10,0,0,5,195,80");
  c("CCC");
  s("200 CCC ok");
  c("PORT 10,0,0,5,195,80");
  EXPECT_TRUE(out_.empty()) << dump();  // CCC stays encrypted: nothing is read any more
}

TEST_F(SessionTest, RefusedAuthStaysInTheClear) {
  start(client_snat());
  login();
  c("AUTH SSL");
  s("534 Not supported");
  EXPECT_FALSE(session_->encrypted());
  c("PORT 10,0,0,5,195,80");
  EXPECT_EQ(all<OpenData>().size(), 1u);
}

TEST_F(SessionTest, ReinClosesTheOpeningAndForgetsLogin) {
  PolicyConfig cfg;
  cfg.require_login = true;
  start(client_snat(), cfg);
  login();
  c("PORT 10,0,0,5,195,80");
  s("200 ok");
  c("REIN");
  s("220 Service ready for new user.");
  ASSERT_EQ(all<CloseData>().size(), 1u) << dump();
  EXPECT_EQ(all<CloseData>()[0].reason, Reason::reinitialized);
  EXPECT_FALSE(session_->logged_in());
  c("PORT 10,0,0,5,195,81");
  EXPECT_EQ(reasons(), (std::vector<Reason>{Reason::not_logged_in}));
}

TEST_F(SessionTest, QuitEndsTheSession) {
  start(client_snat());
  login();
  c("PORT 10,0,0,5,195,80");
  s("200 ok");
  out_.clear();
  c("QUIT");
  s("221 Goodbye.");
  EXPECT_EQ(texts(), (std::vector<std::string>{"close_data #1 session_quit", "session_end session_quit"}));
  EXPECT_TRUE(session_->ended());
}

TEST_F(SessionTest, LongUtf8PathsAreJustCommands) {
  start(client_snat());
  login();
  std::string path;
  for (int i = 0; i < 300; ++i) path += "\xc3\xa9";  // 600 bytes: legal, not an announcement
  c("RETR " + path);
  s("550 No such file");
  c("PORT 10,0,0,5,195,80");
  EXPECT_TRUE(reasons().empty()) << dump();
  EXPECT_EQ(all<OpenData>().size(), 1u);
}

TEST_F(SessionTest, RecordedVsftpdPassiveSession) {
  // Shape of a vsftpd 3.0 session (pasv_address set) behind DNAT, as lftp drives it.
  start(server_dnat());
  s("220 (vsFTPd 3.0.3)");
  c("FEAT");
  s("211-Features:");
  s(" EPRT");
  s(" EPSV");
  s(" PASV");
  s(" UTF8");
  s("211 End");
  c("USER ftp");
  s("331 Please specify the password.");
  c("PASS x");
  s("230 Login successful.");
  c("PWD");
  s("257 \"/\" is the current directory");
  c("TYPE I");
  s("200 Switching to Binary mode.");
  c("EPSV");
  s("229 Entering Extended Passive Mode (|||30001|)");
  c("RETR data.bin");
  s("150 Opening BINARY mode data connection for data.bin (1048576 bytes).");
  s("226 Transfer complete.");
  c("PASV");
  s("227 Entering Passive Mode (203,0,113,1,117,50).");
  c("LIST");
  s("150 Here comes the directory listing.");
  s("226 Directory send OK.");
  c("QUIT");
  s("221 Goodbye.");
  EXPECT_EQ(texts(), (std::vector<std::string>{
                         "open_data #1 epsv_reply v4 from 198.51.100.7 to 203.0.113.1:30001 inside 10.1.1.2:30001",
                         "close_data #1 transfer_done",
                         "open_data #2 pasv_reply v4 from 198.51.100.7 to 203.0.113.1:30002 inside 10.1.1.2:30002",
                         "close_data #2 transfer_done",
                         "session_end session_quit"}));
}

TEST_F(SessionTest, RecordedPureFtpdActiveSessionClientBehindSnat) {
  // Shape of a pure-ftpd 1.0 session (dashed multi-line greeting), client behind SNAT, active mode.
  start(client_snat());
  s("220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------");
  s("220-You are user number 1 of 50 allowed.");
  s("220-Local time is now 12:00. Server port: 21.");
  s("220 You will be disconnected after 15 minutes of inactivity.");
  c("USER ftpuser");
  s("331 User ftpuser OK. Password required");
  c("PASS secret");
  s("230-Your bandwidth usage is restricted");
  s("230 OK. Current directory is /");
  c("TYPE I");
  s("200 TYPE is now 8-bit binary");
  c("PORT 10,0,0,5,156,64");
  s("200 PORT command successful");
  c("STOR upload.bin");
  s("150 Connecting to port 40000");
  s("226-File successfully transferred");
  s("226 0.012 seconds (measured here), 83.21 Mbytes per second");
  c("EPRT |1|10.0.0.5|40123|");
  s("200-FXP transfers are disabled");
  s("200 PORT command successful");
  c("NLST");
  s("150 Connecting to port 40123");
  s("226 2 matches total");
  c("QUIT");
  s("221-Goodbye. You uploaded 1024 and downloaded 0 kbytes.");
  s("221 Logout.");
  EXPECT_EQ(texts(), (std::vector<std::string>{
                         "rewrite client_to_server @40 \"10,0,0,5,156,64\" -> \"203,0,113,1,156,64\"",
                         "open_data #1 port v4 from 198.51.100.9 to 203.0.113.1:40000 inside 10.0.0.5:40000",
                         "close_data #1 transfer_done",
                         "rewrite client_to_server @79 \"|1|10.0.0.5|40123|\" -> \"|1|203.0.113.1|40123|\"",
                         "open_data #2 eprt v4 from 198.51.100.9 to 203.0.113.1:40123 inside 10.0.0.5:40123",
                         "close_data #2 transfer_done",
                         "session_end session_quit"}));
}

TEST_F(SessionTest, RecordedProftpdPassiveSessionWithAbort) {
  // Shape of a proftpd 1.3 session behind DNAT announcing its inside address, lftp aborting a
  // download (426 to RETR, then 226 to ABOR).
  start(server_dnat());
  s("220 ProFTPD Server (Debian) [10.1.1.2]");
  c("USER ftp");
  s("331 Anonymous login ok, send your complete email address as your password");
  c("PASS lftp@");
  s("230 Anonymous access granted, restrictions apply");
  c("PASV");
  s("227 Entering Passive Mode (10,1,1,2,117,48).");
  c("RETR big.iso");
  s("150 Opening BINARY mode data connection for big.iso (734003200 bytes)");
  c("ABOR");
  s("426 Transfer aborted. Data connection closed");
  s("226 Abort successful");
  c("EPSV");
  s("229 Entering Extended Passive Mode (|||30001|)");
  c("QUIT");
  s("221 Goodbye.");
  EXPECT_EQ(texts(), (std::vector<std::string>{
                         "rewrite server_to_client @192 \"10,1,1,2,117,48\" -> \"203,0,113,1,117,48\"",
                         "open_data #1 pasv_reply v4 from 198.51.100.7 to 203.0.113.1:30000 inside 10.1.1.2:30000",
                         "close_data #1 transfer_done",
                         "open_data #2 epsv_reply v4 from 198.51.100.7 to 203.0.113.1:30001 inside 10.1.1.2:30001",
                         "close_data #2 session_quit",
                         "session_end session_quit"}));
}

}  // namespace
}  // namespace ftpwall
