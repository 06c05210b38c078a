// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/ftp_wire.hpp"

#include <gtest/gtest.h>

#include <string>

#include "ftpwall/core/limits.hpp"
#include "recorded_sessions.hpp"

namespace ftpwall {
namespace {

Endpoint ep4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint16_t port) {
  return {Address::v4(a, b, c, d), port};
}
Endpoint ep6(std::string_view text, std::uint16_t port) { return {*Address::parse(text, Family::v6), port}; }

// ---- PORT ----

TEST(PortArgs, ParsesRfc959Form) {
  auto a = parse_port_args("192,0,2,7,4,1");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->endpoint, ep4(192, 0, 2, 7, 1025));
  EXPECT_EQ(a->range, (TextRange{0, 13}));
  EXPECT_TRUE(a->has_address);
}

TEST(PortArgs, FieldBounds) {
  EXPECT_TRUE(parse_port_args("255,255,255,255,255,255").ok());
  EXPECT_EQ(parse_port_args("255,255,255,255,255,255")->endpoint.port, 65535);
  EXPECT_TRUE(parse_port_args("0,0,0,0,0,0").ok());
  EXPECT_FALSE(parse_port_args("256,0,0,0,4,1").ok());
  EXPECT_FALSE(parse_port_args("1,2,3,4,5,256").ok());
  EXPECT_TRUE(parse_port_args("001,002,003,004,005,006").ok());   // three digits: the bound
  EXPECT_FALSE(parse_port_args("0001,2,3,4,5,6").ok());           // four digits: past it
}

TEST(PortArgs, RejectsEveryStrictListItem) {
  EXPECT_FALSE(parse_port_args("").ok());
  EXPECT_FALSE(parse_port_args("1,2,3,4,5").ok());          // five fields
  EXPECT_FALSE(parse_port_args("1,2,3,4,5,6,7").ok());      // seven fields
  EXPECT_FALSE(parse_port_args("+1,2,3,4,5,6").ok());       // sign
  EXPECT_FALSE(parse_port_args("1,2,3,4,-5,6").ok());
  EXPECT_FALSE(parse_port_args("1, 2,3,4,5,6").ok());       // space inside
  EXPECT_FALSE(parse_port_args(" 1,2,3,4,5,6").ok());
  EXPECT_FALSE(parse_port_args("1,2,3,4,5,6 ").ok());       // trailing text
  EXPECT_FALSE(parse_port_args("1,2,3,4,5,,6").ok());       // empty field
  EXPECT_FALSE(parse_port_args("1,2,3,4,5,6,").ok());
  EXPECT_FALSE(parse_port_args("1.2.3.4,5,6").ok());
  EXPECT_FALSE(parse_port_args("0x1,2,3,4,5,6").ok());
  EXPECT_FALSE(parse_port_args(std::string_view("1,2,3,4,5,6\0", 12)).ok());
}

TEST(PortArgs, RoundTrip) {
  for (auto e : {ep4(192, 0, 2, 7, 1025), ep4(0, 0, 0, 0, 0), ep4(255, 255, 255, 255, 65535), ep4(10, 0, 0, 5, 50000)}) {
    auto text = format_port_args(e);
    auto a = parse_port_args(text);
    ASSERT_TRUE(a.ok()) << text;
    EXPECT_EQ(a->endpoint, e);
  }
  EXPECT_EQ(format_port_args(ep4(192, 0, 2, 7, 1025)), "192,0,2,7,4,1");
}

// ---- EPRT ----

TEST(EprtArgs, ParsesRfc2428Examples) {
  auto a = parse_eprt_args("|1|132.235.1.2|6275|");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->endpoint, ep4(132, 235, 1, 2, 6275));
  EXPECT_EQ(a->delimiter, '|');
  EXPECT_EQ(a->range, (TextRange{0, 20}));
  auto b = parse_eprt_args("|2|1080::8:800:200C:417A|5282|");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->endpoint, ep6("1080::8:800:200c:417a", 5282));
}

TEST(EprtArgs, AnyDelimiterUsedThroughout) {
  EXPECT_TRUE(parse_eprt_args("!1!192.0.2.7!1025!").ok());
  EXPECT_TRUE(parse_eprt_args("~1~192.0.2.7~1025~").ok());   // 126: the bound
  EXPECT_EQ(parse_eprt_args("!1!192.0.2.7!1025!")->delimiter, '!');  // 33: the bound
  EXPECT_FALSE(parse_eprt_args(" 1 192.0.2.7 1025 ").ok());  // 32: past it
  EXPECT_FALSE(parse_eprt_args("\x7f" "1\x7f" "192.0.2.7\x7f" "1025\x7f").ok());  // 127: past it
  EXPECT_FALSE(parse_eprt_args("5152.0.2.7510255").ok());     // a digit
  EXPECT_FALSE(parse_eprt_args("|1!192.0.2.7|1025|").ok());   // mixed
  EXPECT_FALSE(parse_eprt_args("|1|192.0.2.7!1025!").ok());
}

TEST(EprtArgs, RejectsEveryStrictListItem) {
  EXPECT_FALSE(parse_eprt_args("").ok());
  EXPECT_FALSE(parse_eprt_args("|").ok());
  EXPECT_FALSE(parse_eprt_args("|3|192.0.2.7|1025|").ok());        // net-prt
  EXPECT_FALSE(parse_eprt_args("|01|192.0.2.7|1025|").ok());
  EXPECT_FALSE(parse_eprt_args("||192.0.2.7|1025|").ok());
  EXPECT_FALSE(parse_eprt_args("|1|2001:db8::1|1025|").ok());      // v6 text under net-prt 1
  EXPECT_FALSE(parse_eprt_args("|2|192.0.2.7|1025|").ok());        // v4 text under net-prt 2
  EXPECT_FALSE(parse_eprt_args("|1|192.0.2.07|1025|").ok());       // leading zero
  EXPECT_FALSE(parse_eprt_args("|1|192.0.2|1025|").ok());
  EXPECT_FALSE(parse_eprt_args("|1| 192.0.2.7|1025|").ok());
  EXPECT_FALSE(parse_eprt_args("|2|fe80::1%eth0|1025|").ok());     // zone
  EXPECT_FALSE(parse_eprt_args("|1|192.0.2.7|0|").ok());           // port 0: past the bound
  EXPECT_TRUE(parse_eprt_args("|1|192.0.2.7|1|").ok());            // port 1: the bound
  EXPECT_TRUE(parse_eprt_args("|1|192.0.2.7|65535|").ok());        // the bound
  EXPECT_FALSE(parse_eprt_args("|1|192.0.2.7|65536|").ok());       // past it
  EXPECT_FALSE(parse_eprt_args("|1|192.0.2.7|01025|").ok());
  EXPECT_FALSE(parse_eprt_args("|1|192.0.2.7|+1025|").ok());
  EXPECT_FALSE(parse_eprt_args("|1|192.0.2.7|1025").ok());         // no final delimiter
  EXPECT_FALSE(parse_eprt_args("|1|192.0.2.7|1025| ").ok());       // trailing text
  EXPECT_FALSE(parse_eprt_args("|1|192.0.2.7|1025||").ok());
}

TEST(EprtArgs, RoundTrip) {
  for (auto e : {ep4(192, 0, 2, 7, 1025), ep4(203, 0, 113, 1, 65535), ep6("2001:db8::7", 1),
                 ep6("2001:db8:1:2:3:4:5:6", 50000)}) {
    for (char d : {'|', '!', '#', '~'}) {
      auto text = format_eprt_args(e, d);
      auto a = parse_eprt_args(text);
      ASSERT_TRUE(a.ok()) << text;
      EXPECT_EQ(a->endpoint, e);
      EXPECT_EQ(a->delimiter, d);
    }
  }
  EXPECT_EQ(format_eprt_args(ep4(132, 235, 1, 2, 6275)), "|1|132.235.1.2|6275|");
}

// ---- LPRT ----

TEST(LprtArgs, ParsesRfc1639Forms) {
  auto a = parse_lprt_args("4,4,132,235,1,2,2,24,131");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->endpoint, ep4(132, 235, 1, 2, 24 * 256 + 131));
  auto b = parse_lprt_args("6,16,16,128,0,0,0,0,0,0,0,8,8,0,32,12,65,123,2,20,162");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->endpoint, ep6("1080::8:800:200c:417b", 20 * 256 + 162));
}

TEST(LprtArgs, RejectsBadForms) {
  EXPECT_FALSE(parse_lprt_args("4,16,1,2,3,4,2,4,1").ok());     // af 4 with hal 16
  EXPECT_FALSE(parse_lprt_args("4,4,1,2,3,4,3,0,4,1").ok());    // pal 3
  EXPECT_FALSE(parse_lprt_args("4,4,1,2,3,4,2,4").ok());        // short
  EXPECT_FALSE(parse_lprt_args("4,4,1,2,3,4,2,4,1,7").ok());    // long
  EXPECT_FALSE(parse_lprt_args("5,4,1,2,3,4,2,4,1").ok());
}

TEST(LprtArgs, RoundTrip) {
  for (auto e : {ep4(192, 0, 2, 7, 1025), ep6("2001:db8::7", 50000)}) {
    auto a = parse_lprt_args(format_lprt_args(e));
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->endpoint, e);
    auto b = parse_lpsv_reply(format_lpsv_reply(e));
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b->endpoint, e);
  }
}

// ---- 228 ----

TEST(LpsvReply, ParsesRfc1639Example) {
  // RFC 1639 section 2: "228 Entering Long Passive Mode (af,hal,h1,...,pal,p1,p2)"; the address of
  // its LPRT example, scanned for the first digit like 227.
  std::string_view t = "Entering Long Passive Mode (4,4,132,235,1,2,2,24,131)";
  auto a = parse_lpsv_reply(t);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->endpoint, ep4(132, 235, 1, 2, 24 * 256 + 131));
  EXPECT_EQ(t.substr(a->range.begin, a->range.size()), "4,4,132,235,1,2,2,24,131");
  auto b = parse_lpsv_reply("Entering Long Passive Mode (6,16,16,128,0,0,0,0,0,0,0,8,8,0,32,12,65,123,2,20,162)");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->endpoint, ep6("1080::8:800:200c:417b", 20 * 256 + 162));
}

TEST(LpsvReply, RejectsBadForms) {
  EXPECT_FALSE(parse_lpsv_reply("Entering Long Passive Mode").ok());
  EXPECT_FALSE(parse_lpsv_reply("Entering Long Passive Mode (4,16,1,2,3,4,2,4,1)").ok());
  EXPECT_FALSE(parse_lpsv_reply("Entering Long Passive Mode (4,4,1,2,3,4,2,4)").ok());
  EXPECT_FALSE(parse_lpsv_reply("Entering Long Passive Mode (4,4,1,2,3,256,2,4,1)").ok());
}

// ---- 227 ----

TEST(PasvReply, ScansForTheFirstDigitRfc1123) {
  std::string_view t = "Entering Passive Mode (192,0,2,7,195,80).";
  auto a = parse_pasv_reply(t);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->endpoint, ep4(192, 0, 2, 7, 50000));
  EXPECT_EQ(t.substr(a->range.begin, a->range.size()), "192,0,2,7,195,80");
  // Parentheses optional, free text around (RFC 1123 4.1.2.6).
  EXPECT_TRUE(parse_pasv_reply("=192,0,2,7,195,80").ok());
  EXPECT_TRUE(parse_pasv_reply("192,0,2,7,195,80").ok());
  EXPECT_TRUE(parse_pasv_reply("Entering Passive Mode 192,0,2,7,195,80 ok").ok());
}

TEST(PasvReply, RejectsBadForms) {
  EXPECT_FALSE(parse_pasv_reply("Entering Passive Mode").ok());
  EXPECT_FALSE(parse_pasv_reply("Entering Passive Mode (192,0,2,7,195)").ok());
  EXPECT_FALSE(parse_pasv_reply("Entering Passive Mode (192,0,2,7,195,80,1)").ok());
  EXPECT_FALSE(parse_pasv_reply("Entering Passive Mode (192,0,2,7,195,8000)").ok());
  EXPECT_FALSE(parse_pasv_reply("Entering Passive Mode (192,0,2,7,195,256)").ok());
  EXPECT_FALSE(parse_pasv_reply("Entering Passive Mode (192, 0,2,7,195,80)").ok());
  EXPECT_FALSE(parse_pasv_reply("Mode 2 (192,0,2,7,195,80)").ok());  // the first digit is not the list
}

TEST(PasvReply, RoundTrip) {
  for (auto e : {ep4(192, 0, 2, 7, 1025), ep4(0, 0, 0, 0, 0), ep4(255, 255, 255, 255, 65535)}) {
    auto a = parse_pasv_reply(format_pasv_reply(e));
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(a->endpoint, e);
  }
  EXPECT_EQ(format_pasv_reply(ep4(192, 0, 2, 7, 1025)), "Entering Passive Mode (192,0,2,7,4,1).");
}

// ---- 229 ----

TEST(EpsvReply, ParsesRfc2428Example) {
  std::string_view t = "Entering Extended Passive Mode (|||6446|)";
  auto a = parse_epsv_reply(t);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->endpoint.port, 6446);
  EXPECT_FALSE(a->has_address);
  EXPECT_EQ(t.substr(a->range.begin, a->range.size()), "|||6446|");
}

TEST(EpsvReply, AnyConsistentDelimiter) {
  EXPECT_EQ(parse_epsv_reply("Entering Extended Passive Mode (!!!6446!)")->delimiter, '!');
  EXPECT_TRUE(parse_epsv_reply("(~~~1~)").ok());
  EXPECT_FALSE(parse_epsv_reply("(||!6446|)").ok());
  EXPECT_FALSE(parse_epsv_reply("(|||6446!)").ok());
  EXPECT_FALSE(parse_epsv_reply("(11164461)").ok());
  EXPECT_FALSE(parse_epsv_reply("(   6446 )").ok());
}

TEST(EpsvReply, RejectsBadForms) {
  EXPECT_FALSE(parse_epsv_reply("Entering Extended Passive Mode |||6446|").ok());  // no parenthesis
  EXPECT_FALSE(parse_epsv_reply("(|||6446|").ok());
  EXPECT_FALSE(parse_epsv_reply("(|||0|)").ok());
  EXPECT_FALSE(parse_epsv_reply("(|||65536|)").ok());
  EXPECT_TRUE(parse_epsv_reply("(|||65535|)").ok());
  EXPECT_FALSE(parse_epsv_reply("(|1|192.0.2.7|6446|)").ok());  // 229 carries no address
  EXPECT_FALSE(parse_epsv_reply("(||||)").ok());
  EXPECT_FALSE(parse_epsv_reply("(|||64a6|)").ok());
}

TEST(EpsvReply, RoundTrip) {
  for (std::uint16_t p : {std::uint16_t{1}, std::uint16_t{6446}, std::uint16_t{65535}}) {
    for (char d : {'|', '!', '#'}) {
      auto a = parse_epsv_reply(format_epsv_reply(p, d));
      ASSERT_TRUE(a.ok());
      EXPECT_EQ(a->endpoint.port, p);
      EXPECT_EQ(a->delimiter, d);
    }
  }
}

// ---- commands ----

TEST(Command, VerbsAreCaseInsensitive) {
  for (auto line : {"PORT 1,2,3,4,5,6", "port 1,2,3,4,5,6", "Port 1,2,3,4,5,6", "pOrT 1,2,3,4,5,6"}) {
    auto c = parse_command(line);
    EXPECT_EQ(c.verb, Verb::port) << line;
    EXPECT_EQ(c.args, "1,2,3,4,5,6");
    EXPECT_EQ(c.args_offset, 5u);
    EXPECT_TRUE(c.well_formed);
  }
}

TEST(Command, KnowsEveryVerb) {
  EXPECT_EQ(parse_command("EPRT |1|192.0.2.7|1025|").verb, Verb::eprt);
  EXPECT_EQ(parse_command("LPRT 4,4,1,2,3,4,2,4,1").verb, Verb::lprt);
  EXPECT_EQ(parse_command("PASV").verb, Verb::pasv);
  EXPECT_EQ(parse_command("EPSV ALL").verb, Verb::epsv);
  EXPECT_EQ(parse_command("LPSV").verb, Verb::lpsv);
  EXPECT_EQ(parse_command("AUTH TLS").verb, Verb::auth);
  EXPECT_EQ(parse_command("CCC").verb, Verb::ccc);
  EXPECT_EQ(parse_command("REIN").verb, Verb::rein);
  EXPECT_EQ(parse_command("ABOR").verb, Verb::abor);
  EXPECT_EQ(parse_command("QUIT").verb, Verb::quit);
  EXPECT_EQ(parse_command("USER anonymous").verb, Verb::user);
  EXPECT_EQ(parse_command("PASS x").verb, Verb::pass);
  EXPECT_EQ(parse_command("RETR a file with spaces").verb, Verb::retr);
  EXPECT_EQ(parse_command("RETR a file with spaces").args, "a file with spaces");
  EXPECT_EQ(parse_command("MKD x").verb, Verb::other);
  EXPECT_EQ(parse_command("PORTX 1,2,3,4,5,6").verb, Verb::other);
  EXPECT_EQ(parse_command("POST / HTTP/1.1").verb, Verb::other);
  EXPECT_EQ(parse_command("").verb, Verb::other);
}

TEST(Command, SeparatorMustBeOneSpace) {
  auto c = parse_command("PORT\t1,2,3,4,5,6");
  EXPECT_EQ(c.verb, Verb::port);
  EXPECT_FALSE(c.well_formed);
  auto d = parse_command("PASV");
  EXPECT_TRUE(d.well_formed);
  EXPECT_TRUE(d.args.empty());
}

TEST(Command, EpsvAndAuthArguments) {
  EXPECT_EQ(parse_epsv_args(""), EpsvArg::any);
  EXPECT_EQ(parse_epsv_args("ALL"), EpsvArg::all);
  EXPECT_EQ(parse_epsv_args("all"), EpsvArg::all);
  EXPECT_EQ(parse_epsv_args("1"), EpsvArg::v4);
  EXPECT_EQ(parse_epsv_args("2"), EpsvArg::v6);
  EXPECT_FALSE(parse_epsv_args("3").has_value());
  EXPECT_EQ(parse_auth_args("TLS"), AuthMech::tls);
  EXPECT_EQ(parse_auth_args("tls"), AuthMech::tls);
  EXPECT_EQ(parse_auth_args("SSL"), AuthMech::ssl);
  EXPECT_EQ(parse_auth_args("TLS-C"), AuthMech::tls_c);
  EXPECT_EQ(parse_auth_args("tls-p"), AuthMech::tls_p);
  EXPECT_EQ(parse_auth_args("GSSAPI"), AuthMech::other);
}

// ---- replies ----

TEST(ReplyLine, FinalAndContinuation) {
  auto a = parse_reply_line("227 Entering Passive Mode (192,0,2,7,4,1)");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->code, 227);
  EXPECT_TRUE(a->final);
  EXPECT_EQ(a->text_offset, 4u);
  auto b = parse_reply_line("230-Welcome");
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->final);
  EXPECT_EQ(b->text, "Welcome");
  auto c = parse_reply_line("220");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->final);
  EXPECT_FALSE(parse_reply_line("22"));
  EXPECT_FALSE(parse_reply_line("2200 x"));
  EXPECT_FALSE(parse_reply_line("720 x"));
  EXPECT_FALSE(parse_reply_line("020 x"));
  EXPECT_FALSE(parse_reply_line(" 220 x"));
  EXPECT_TRUE(parse_reply_line("631 base64"));  // RFC 2228 protected reply
}

TEST(ReplyLine, Rfc959MultiLineExample) {
  // RFC 959 4.2: the reply ends only at "123 "; "234 A line beginning with numbers" is text.
  EXPECT_FALSE(ends_multiline("Second line", 123));
  EXPECT_FALSE(ends_multiline(" 234 A line beginning with numbers", 123));
  EXPECT_FALSE(ends_multiline("234 A line beginning with numbers", 123));
  EXPECT_FALSE(ends_multiline("123-Still going", 123));
  EXPECT_TRUE(ends_multiline("123 The last line", 123));
}

// ---- tables ----

TEST(Tables, SayWhoMaySendWhat) {
  EXPECT_EQ(announcer(AnnouncementKind::port), Direction::client_to_server);
  EXPECT_EQ(announcer(AnnouncementKind::eprt), Direction::client_to_server);
  EXPECT_EQ(announcer(AnnouncementKind::pasv_reply), Direction::server_to_client);
  EXPECT_EQ(announcer(AnnouncementKind::epsv_reply), Direction::server_to_client);
  EXPECT_EQ(find_reply(227)->answers, Verb::pasv);
  EXPECT_EQ(find_reply(229)->answers, Verb::epsv);
  EXPECT_EQ(find_reply(228)->answers, Verb::lpsv);
  EXPECT_EQ(find_reply(234)->answers, Verb::auth);
  EXPECT_EQ(find_reply(200), nullptr);
  EXPECT_EQ(find_verb("eprt")->parse, &parse_eprt_args);
  EXPECT_EQ(name(Verb::abor), "ABOR");
}

TEST(Tables, MayAnnounceForHolding) {
  const auto c = Direction::client_to_server, s = Direction::server_to_client;
  EXPECT_TRUE(may_announce(c, ""));
  EXPECT_TRUE(may_announce(c, "P"));
  EXPECT_TRUE(may_announce(c, "po"));
  EXPECT_TRUE(may_announce(c, "PORT"));
  EXPECT_TRUE(may_announce(c, "PORT 10,0"));
  EXPECT_TRUE(may_announce(c, "eprt |1|"));
  EXPECT_FALSE(may_announce(c, "PORTX"));
  EXPECT_FALSE(may_announce(c, "RETR x"));
  EXPECT_FALSE(may_announce(c, "227 x"));
  EXPECT_TRUE(may_announce(s, "2"));
  EXPECT_TRUE(may_announce(s, "22"));
  EXPECT_TRUE(may_announce(s, "227 Entering"));
  EXPECT_TRUE(may_announce(s, "229"));
  EXPECT_FALSE(may_announce(s, "227-"));
  EXPECT_FALSE(may_announce(s, "226 ok"));
  EXPECT_FALSE(may_announce(s, "PORT 1,2,3,4,5,6"));
}

TEST(FormatAnnounced, MatchesTheRangeEachParserReports) {
  auto e = ep4(203, 0, 113, 1, 50000);
  EXPECT_EQ(format_announced(AnnouncementKind::port, e, 0), "203,0,113,1,195,80");
  EXPECT_EQ(format_announced(AnnouncementKind::pasv_reply, e, 0), "203,0,113,1,195,80");
  EXPECT_EQ(format_announced(AnnouncementKind::eprt, e, '!'), "!1!203.0.113.1!50000!");
  EXPECT_EQ(format_announced(AnnouncementKind::epsv_reply, e, '|'), "|||50000|");
}

// ---- the recorded sessions of tests/data/sessions/ ----------------------------------------------

// Every announcement the real servers and clients sent (vsftpd, proftpd, pure-ftpd; lftp, curl,
// ftplib) parses with its table parser, names the sender's bench address, and formatting the
// parsed value reproduces the exact text of its range (they all write the canonical form).
TEST(RecordedSessions, EveryAnnouncementParsesAndFormatsBack) {
  const auto all = test::recordings();
  ASSERT_GE(all.size(), 21u);
  std::size_t kinds[7] = {};
  for (const auto& rec : all) {
    SCOPED_TRACE(rec.name);
    std::size_t announcements = 0;
    for (Direction d : {Direction::client_to_server, Direction::server_to_client}) {
      for (const auto& l : test::lines_of(rec.stream(d))) {
        AnnouncementParser parse = nullptr;
        AnnouncementKind kind = AnnouncementKind::none;
        std::size_t at = 0;
        if (d == Direction::client_to_server) {
          const Command c = parse_command(l.text);
          if (const VerbRow* row = find_verb(c.word); row && row->parse) {
            parse = row->parse, kind = row->announces, at = c.args_offset;
          }
        } else if (auto r = parse_reply_line(l.text); r && r->final) {
          if (const ReplyRow* row = find_reply(r->code); row && row->parse) {
            parse = row->parse, kind = row->announces, at = r->text_offset;
          }
        }
        if (!parse) continue;
        ++announcements;
        ++kinds[static_cast<int>(kind)];
        const std::string_view text = std::string_view(l.text).substr(at);
        auto a = parse(text);
        ASSERT_TRUE(a.ok()) << l.text;
        EXPECT_GE(a->endpoint.port, 1024) << l.text;
        if (a->has_address) {
          const std::string& sender = d == Direction::client_to_server ? rec.client : rec.server;
          EXPECT_EQ(a->endpoint.addr, Address::parse(sender).value()) << l.text;
        }
        EXPECT_EQ(format_announced(kind, a->endpoint, a->delimiter), text.substr(a->range.begin, a->range.size()))
            << l.text;
      }
    }
    // Every recording moves data at least once (LIST, RETR or STOR).
    EXPECT_GE(announcements, 1u);
  }
  EXPECT_GT(kinds[static_cast<int>(AnnouncementKind::port)], 0u);
  EXPECT_GT(kinds[static_cast<int>(AnnouncementKind::eprt)], 0u);
  EXPECT_GT(kinds[static_cast<int>(AnnouncementKind::pasv_reply)], 0u);
  EXPECT_GT(kinds[static_cast<int>(AnnouncementKind::epsv_reply)], 0u);
}

// The odd lines of the recordings are not announcements: lftp's abort (Telnet IP/DM before ABOR,
// or a plain ABOR) and the UTF-8 paths over 512 bytes parse as commands, not as violations.
TEST(RecordedSessions, AbortsAndLongUtf8PathsAreOrdinaryCommands) {
  std::size_t long_lines = 0, abors = 0;
  for (const auto& rec : test::recordings()) {
    for (const auto& l : test::lines_of(rec.stream(Direction::client_to_server))) {
      const Command c = parse_command(l.text);
      if (l.text.size() > limits::max_announcement_line) {
        ++long_lines;
        EXPECT_EQ(find_verb(c.word) ? find_verb(c.word)->parse : nullptr, nullptr) << rec.name;
        EXPECT_FALSE(may_announce(Direction::client_to_server, l.text)) << rec.name;
      }
      if (l.text.find("ABOR") != std::string::npos) ++abors;
    }
  }
  EXPECT_GE(long_lines, 3u);  // one per server's longpath recording
  EXPECT_GE(abors, 3u);
}

}  // namespace
}  // namespace ftpwall
