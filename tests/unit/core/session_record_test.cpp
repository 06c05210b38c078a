// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/session_record.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nat_tuples.hpp"

namespace ftpwall {
namespace {

std::vector<std::uint8_t> B(std::string_view s) { return {s.begin(), s.end()}; }

SessionRecord server_nat_record() {
  SessionRecord r;
  r.ct_id = 3188460011u;
  r.tuples = test::server_dnat();
  r.key = {r.tuples.original.src, r.tuples.reply.src};  // mangle FORWARD: after DNAT
  EXPECT_TRUE(r.corrections.record(Direction::server_to_client, 242, B("10,1,1,2"), B("203,0,113,1")).ok());
  r.corrections.note_sent(Direction::server_to_client, 300);
  return r;
}

TEST(SessionRecord, RoundTrip) {
  const SessionRecord r = server_nat_record();
  const std::string text = format_session_record(r);
  EXPECT_EQ(text.rfind("ftpwalld-session 1\nct 3188460011\noriginal 198.51.100.7:40000 203.0.113.1:21\n"
                       "reply 10.1.1.2:21 198.51.100.7:40000\nkey 198.51.100.7:40000 10.1.1.2:21\nftpwall-seqadj 1\n",
                       0),
            0u)
      << text;
  auto back = parse_session_record(text);
  ASSERT_TRUE(back.ok()) << back.error().message << "\n" << text;
  EXPECT_TRUE(*back == r);
  EXPECT_EQ(back->corrections.map_seq(Direction::server_to_client, 260), 263u);  // +3 after the region
  EXPECT_EQ(format_session_record(*back), text);
}

// The whole text, byte for byte: records written by an earlier build must still read, and a
// faster formatter must write the same (issue 13: the record is written at every rewrite).
TEST(SessionRecord, ExactTextIpv4AndIpv6) {
  EXPECT_EQ(format_session_record(server_nat_record()),
            "ftpwalld-session 1\n"
            "ct 3188460011\n"
            "original 198.51.100.7:40000 203.0.113.1:21\n"
            "reply 10.1.1.2:21 198.51.100.7:40000\n"
            "key 198.51.100.7:40000 10.1.1.2:21\n"
            "ftpwall-seqadj 1\n"
            "dir c2s base 0 acked - sent - n 0\n"
            "dir s2c base 0 acked - sent 300 n 1\n"
            "corr 242 31302c312c312c32 3230332c302c3131332c31\n");
  SessionRecord r;
  r.ct_id = 4294967295u;
  const Endpoint c{Address::parse("2001:db8::7").value(), 40000}, srv{Address::parse("2001:db8:1::10").value(), 21};
  r.tuples = ConnTuples::without_nat(c, srv);
  r.key = {c, srv};
  ASSERT_TRUE(r.corrections.record(Direction::client_to_server, 4294967290u, B("|2|2001:db8::7|"), B("|2|2001:db8::8|")).ok());
  ASSERT_TRUE(r.corrections.record(Direction::server_to_client, 17, B("a"), B("")).ok());
  r.corrections.note_sent(Direction::client_to_server, 5);
  r.corrections.note_ack(Direction::client_to_server, 4294967291u);
  const std::string text = format_session_record(r);
  EXPECT_EQ(text,
            "ftpwalld-session 1\n"
            "ct 4294967295\n"
            "original [2001:db8::7]:40000 [2001:db8:1::10]:21\n"
            "reply [2001:db8:1::10]:21 [2001:db8::7]:40000\n"
            "key [2001:db8::7]:40000 [2001:db8:1::10]:21\n"
            "ftpwall-seqadj 1\n"
            "dir c2s base 0 acked 4294967291 sent 9 n 1\n"
            "corr 4294967290 7c327c323030313a6462383a3a377c 7c327c323030313a6462383a3a387c\n"
            "dir s2c base 0 acked - sent 18 n 1\n"
            "corr 17 61 -\n");
  auto back = parse_session_record(text);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(*back == r);
  std::string appended = "prefix";
  append_session_record(appended, r);
  EXPECT_EQ(appended, "prefix" + text);
}

TEST(SessionRecord, RefusesBadInput) {
  const std::string good = format_session_record(server_nat_record());
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  const std::string bad[] = {
      "",
      replace("ftpwalld-session 1", "ftpwalld-session 2"),
      replace("ct 3188460011", "ct 4294967296"),       // past 32 bits
      replace("ct 3188460011", "ct x"),
      replace("ct 3188460011\n", ""),                  // line missing
      replace("original ", "orig "),
      replace("198.51.100.7:40000 203", "198.51.100.7:65536 203"),
      replace("198.51.100.7:40000 203", "198.51.100.7 203"),
      replace("reply 10.1.1.2:21 ", "reply 10.1.1.256:21 "),
      replace("key 198.51.100.7:40000 10.1.1.2:21\n", "key 198.51.100.7:40000\n"),
      replace("ftpwall-seqadj 1", "ftpwall-seqadj 9"),  // the history's own checks apply
      good.substr(0, good.size() - 1),
  };
  for (const auto& b : bad) EXPECT_FALSE(parse_session_record(b).ok()) << b;
}

TEST(SessionRecord, Endpoints) {
  auto v4 = parse_endpoint("192.0.2.1:21");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->to_string(), "192.0.2.1:21");
  auto v6 = parse_endpoint("[2001:db8::1]:65535");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->to_string(), "[2001:db8::1]:65535");
  for (std::string_view b : {"192.0.2.1", "192.0.2.1:", "192.0.2.1:-1", "192.0.2.1:65536", "[2001:db8::1]21", ":21"})
    EXPECT_FALSE(parse_endpoint(b).ok()) << b;
}

}  // namespace
}  // namespace ftpwall
