// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/rewrite.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ftpwall/core/limits.hpp"
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

// Parses the announcement in `line` like the Session does and rewrites it to `ep`.
std::string rewrite(std::string_view line, AnnouncementKind kind, std::size_t text_offset, const Endpoint& ep) {
  AnnouncementParser parse = nullptr;
  switch (kind) {
    case AnnouncementKind::port: parse = parse_port_args; break;
    case AnnouncementKind::eprt: parse = parse_eprt_args; break;
    case AnnouncementKind::pasv_reply: parse = parse_pasv_reply; break;
    case AnnouncementKind::epsv_reply: parse = parse_epsv_reply; break;
    default: return {};
  }
  auto a = parse(line.substr(text_offset));
  EXPECT_TRUE(a.ok()) << line;
  if (!a) return {};
  return rewrite_line(line, kind, a->range.shifted(text_offset), a->delimiter, ep);
}

TEST(PlanRewrite, ClientBehindSnatAnnouncingItsRealAddress) {
  auto p = plan_rewrite(client_snat(), Direction::client_to_server, AnnouncementKind::port, {client_real, 50000});
  EXPECT_TRUE(p.rewrite);
  EXPECT_EQ(p.announce, (Endpoint{client_public, 50000}));
  EXPECT_EQ(p.inside, (Endpoint{client_real, 50000}));
}

// Reached only with PolicyConfig::allow_client_public_address (the policy refuses it by default,
// security review M1); the plan itself is the same as for a server with pasv_address.
TEST(PlanRewrite, ClientAlreadyAnnouncingItsPublicAddress) {
  auto p = plan_rewrite(client_snat(), Direction::client_to_server, AnnouncementKind::port, {client_public, 50000});
  EXPECT_FALSE(p.rewrite);
  EXPECT_EQ(p.announce, (Endpoint{client_public, 50000}));
  EXPECT_EQ(p.inside, (Endpoint{client_real, 50000}));
}

TEST(PlanRewrite, ServerBehindDnatAnnouncingItsInsideAddress) {
  auto p = plan_rewrite(server_dnat(), Direction::server_to_client, AnnouncementKind::pasv_reply,
                        {server_inside, 50000});
  EXPECT_TRUE(p.rewrite);
  EXPECT_EQ(p.announce, (Endpoint{server_public, 50000}));
  EXPECT_EQ(p.inside, (Endpoint{server_inside, 50000}));
}

TEST(PlanRewrite, ServerWithPasvAddressNeedsNoRewriteButDnat) {
  // vsftpd pasv_address=203.0.113.1: the 227 is already right for the client.
  auto p = plan_rewrite(server_dnat(), Direction::server_to_client, AnnouncementKind::pasv_reply,
                        {server_public, 50000});
  EXPECT_FALSE(p.rewrite);
  EXPECT_EQ(p.announce, (Endpoint{server_public, 50000}));
  EXPECT_EQ(p.inside, (Endpoint{server_inside, 50000}));
}

TEST(PlanRewrite, EpsvReplyIsNeverRewrittenForTheAddress) {
  auto p = plan_rewrite(server_dnat(), Direction::server_to_client, AnnouncementKind::epsv_reply,
                        {server_public, 50000});
  EXPECT_FALSE(p.rewrite);
  EXPECT_EQ(p.inside, (Endpoint{server_inside, 50000}));
}

TEST(PlanRewrite, WithoutNatNothingChanges) {
  auto t = ConnTuples::without_nat({remote_client, 40000}, {server_addr, 21});
  auto p = plan_rewrite(t, Direction::client_to_server, AnnouncementKind::port, {remote_client, 50000});
  EXPECT_FALSE(p.rewrite);
  EXPECT_EQ(p.announce, p.inside);
}

TEST(PlanRewrite, NewPublicPortForcesRewrite) {
  auto t = ConnTuples::without_nat({remote_client, 40000}, {server_addr, 21});
  auto p = plan_rewrite(t, Direction::client_to_server, AnnouncementKind::port, {remote_client, 50000}, 50001);
  EXPECT_TRUE(p.rewrite);
  EXPECT_EQ(p.announce, (Endpoint{remote_client, 50001}));
  EXPECT_EQ(p.inside, (Endpoint{remote_client, 50000}));
  auto q = plan_rewrite(t, Direction::client_to_server, AnnouncementKind::port, {remote_client, 50000}, 50000);
  EXPECT_FALSE(q.rewrite);
  auto e = plan_rewrite(server_dnat(), Direction::server_to_client, AnnouncementKind::epsv_reply,
                        {server_public, 50000}, 50002);
  EXPECT_TRUE(e.rewrite);
  EXPECT_EQ(e.announce, (Endpoint{server_public, 50002}));
  EXPECT_EQ(e.inside, (Endpoint{server_inside, 50000}));
}

TEST(RewriteLine, PortKeepsEverythingElse) {
  EXPECT_EQ(rewrite("PORT 10,0,0,5,195,80", AnnouncementKind::port, 5, {client_public, 50000}),
            "PORT 203,0,113,1,195,80");
  // The verb's case is the client's.
  EXPECT_EQ(rewrite("port 10,0,0,5,195,80", AnnouncementKind::port, 5, {client_public, 50000}),
            "port 203,0,113,1,195,80");
}

TEST(RewriteLine, PasvReplyKeepsTextAroundByteForByte) {
  EXPECT_EQ(rewrite("227 Entering Passive Mode (10,1,1,2,195,80).", AnnouncementKind::pasv_reply, 4,
                    {server_public, 50000}),
            "227 Entering Passive Mode (203,0,113,1,195,80).");
  EXPECT_EQ(rewrite("227 =10,1,1,2,195,80 \xc3\xa9t\xc3\xa9", AnnouncementKind::pasv_reply, 4, {server_public, 50000}),
            "227 =203,0,113,1,195,80 \xc3\xa9t\xc3\xa9");
  // Shrinking: 3-digit fields become 1-digit ones.
  EXPECT_EQ(rewrite("227 Entering Passive Mode (192,168,100,200,195,80)", AnnouncementKind::pasv_reply, 4,
                    {Address::v4(1, 2, 3, 4), 50000}),
            "227 Entering Passive Mode (1,2,3,4,195,80)");
}

TEST(RewriteLine, EprtKeepsTheSendersDelimiter) {
  EXPECT_EQ(rewrite("EPRT !1!10.0.0.5!50000!", AnnouncementKind::eprt, 5, {client_public, 50000}),
            "EPRT !1!203.0.113.1!50000!");
}

TEST(RewriteLine, EpsvReplyPortOnly) {
  EXPECT_EQ(rewrite("229 Entering Extended Passive Mode (|||50000|).", AnnouncementKind::epsv_reply, 4,
                    {server_public, 50002}),
            "229 Entering Extended Passive Mode (|||50002|).");
}

TEST(ReplaceRange, ClampsOutOfRangeInsteadOfThrowing) {
  EXPECT_EQ(replace_range("abc", {1, 2}, "XY"), "aXYc");
  EXPECT_EQ(replace_range("abc", {2, 9}, "Z"), "abZ");
  EXPECT_EQ(replace_range("abc", {9, 9}, "Z"), "abcZ");
}

// ---- "port in use" (nf_nat_ftp's port search) ----

TEST(NextFreePort, FreePortIsKept) {
  EXPECT_EQ(next_free_port(50000, [](std::uint16_t) { return false; }), 50000);
}

TEST(NextFreePort, TakenPortMovesUpToTheNextFreeOne) {
  auto taken = [](std::uint16_t p) { return p == 50000 || p == 50001; };
  EXPECT_EQ(next_free_port(50000, taken), 50002);
}

TEST(NextFreePort, WrapsFrom65535To1024) {
  std::vector<std::uint16_t> tried;
  auto taken = [&](std::uint16_t p) {
    tried.push_back(p);
    return p >= 65534;
  };
  EXPECT_EQ(next_free_port(65534, taken), 1024);
  EXPECT_EQ(tried, (std::vector<std::uint16_t>{65534, 65535, 1024}));
}

TEST(NextFreePort, LastTryAtTheBoundSucceeds) {
  // limits::nat_port_tries ports are tried: the free one at the last try is found...
  const auto last = static_cast<std::uint16_t>(40000 + limits::nat_port_tries - 1);
  EXPECT_EQ(next_free_port(40000, [&](std::uint16_t p) { return p < last; }), last);
}

TEST(NextFreePort, OnePastTheBoundIsExhausted) {
  // ...one past it is not tried.
  const auto past = static_cast<std::uint16_t>(40000 + limits::nat_port_tries);
  std::size_t calls = 0;
  EXPECT_EQ(next_free_port(40000, [&](std::uint16_t p) { ++calls; return p < past; }), std::nullopt);
  EXPECT_EQ(calls, limits::nat_port_tries);
}

}  // namespace
}  // namespace ftpwall
