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
