// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/line_framer.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ftpwall/core/limits.hpp"

namespace ftpwall {
namespace {

struct Got {
  std::uint64_t offset;
  std::uint64_t raw_length;
  std::string text;
  bool complete;
  bool truncated;
  bool announcing;
  bool telnet;
  Reason reason;
};

class LineFramerTest : public ::testing::Test, public LineSink {
 protected:
  void on_line(const Line& l) override {
    lines_.push_back({l.offset, l.raw_length, std::string(l.text), l.complete, l.truncated, l.announcing,
                      l.telnet, l.reason});
  }
  void feed(LineFramer& f, const std::string& s) {
    f.feed(off_, {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}, *this);
    off_ += s.size();
  }
  std::vector<std::string> texts() const {
    std::vector<std::string> t;
    for (auto& l : lines_) t.push_back(l.text);
    return t;
  }
  LineFramer client_{Direction::client_to_server};
  LineFramer server_{Direction::server_to_client};
  std::vector<Got> lines_;
  std::uint64_t off_ = 0;
};

TEST_F(LineFramerTest, SeveralLinesInOneSegment) {
  feed(client_, "USER a\r\nPASS b\r\nPASV\r\n");
  ASSERT_EQ(lines_.size(), 3u);
  EXPECT_EQ(texts(), (std::vector<std::string>{"USER a", "PASS b", "PASV"}));
  EXPECT_EQ(lines_[1].offset, 8u);
  EXPECT_EQ(lines_[1].raw_length, 8u);
  EXPECT_TRUE(lines_[2].complete);
}

TEST_F(LineFramerTest, OneLineAcrossManySegments) {
  const std::string line = "PORT 192,0,2,7,4,1\r\n";
  for (char c : line) feed(client_, std::string(1, c));
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].text, "PORT 192,0,2,7,4,1");
  EXPECT_EQ(lines_[0].raw_length, line.size());
  EXPECT_TRUE(lines_[0].announcing);
  EXPECT_EQ(lines_[0].reason, Reason::none);
}

TEST_F(LineFramerTest, BareLfTolerated) {
  feed(server_, "220 hi\n230 ok\r\n");
  EXPECT_EQ(texts(), (std::vector<std::string>{"220 hi", "230 ok"}));
  EXPECT_EQ(lines_[0].raw_length, 7u);
  EXPECT_EQ(lines_[1].offset, 7u);
}

TEST_F(LineFramerTest, LoneCrIsData) {
  feed(client_, "A\rB\r\n");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].text, "A\rB");
}

TEST_F(LineFramerTest, LftpAbortTelnetSkipped) {
  // lftp: IAC IP, IAC DM (urgent), then ABOR.
  feed(client_, "\xff\xf4\xff\xf2" "ABOR\r\n");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].text, "ABOR");
  EXPECT_EQ(lines_[0].raw_length, 10u);
  EXPECT_TRUE(lines_[0].telnet);
  EXPECT_EQ(lines_[0].reason, Reason::none);
}

TEST_F(LineFramerTest, TelnetSequencesSplitAcrossSegments) {
  feed(client_, "\xff");
  feed(client_, "\xfb");  // IAC WILL
  feed(client_, "\x01" "NO");  // option byte, then data
  feed(client_, "OP\xff");
  feed(client_, "\xff!\r\n");  // IAC IAC = 0xFF data
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].text, "NOOP\xff!");
  EXPECT_EQ(lines_[0].raw_length, 12u);
}

TEST_F(LineFramerTest, TelnetInsideAnnouncementIsViolation) {
  feed(client_, "PO\xff\xf1RT 1,2,3,4,5,6\r\n");  // IAC NOP inside the keyword
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].text, "PORT 1,2,3,4,5,6");
  EXPECT_TRUE(lines_[0].announcing);
  EXPECT_EQ(lines_[0].reason, Reason::telnet_in_announcement);
}

TEST_F(LineFramerTest, AnnouncingKeywordsPerDirection) {
  feed(client_, "port 1,2,3,4,5,6\r\nEprt |1|192.0.2.1|5000|\r\nLPRT 4,4,1,2,3,4,2,1,2\r\nPORTS\r\n227 x\r\n");
  ASSERT_EQ(lines_.size(), 5u);
  EXPECT_TRUE(lines_[0].announcing);
  EXPECT_TRUE(lines_[1].announcing);
  EXPECT_TRUE(lines_[2].announcing);
  EXPECT_FALSE(lines_[3].announcing);
  EXPECT_FALSE(lines_[4].announcing);  // a 227 from the client is not an announcement
  lines_.clear();
  off_ = 0;
  feed(server_, "227 Entering Passive Mode (192,0,2,1,4,1)\r\n227-multi\r\n229 (|||5000|)\r\n228 x\r\nPORT 1\r\n");
  ASSERT_EQ(lines_.size(), 5u);
  EXPECT_TRUE(lines_[0].announcing);
  EXPECT_FALSE(lines_[1].announcing);
  EXPECT_TRUE(lines_[2].announcing);
  EXPECT_TRUE(lines_[3].announcing);
  EXPECT_FALSE(lines_[4].announcing);
}

TEST_F(LineFramerTest, MayBeAnnouncementPredicate) {
  const auto c = Direction::client_to_server;
  const auto s = Direction::server_to_client;
  EXPECT_TRUE(may_be_announcement(c, ""));
  EXPECT_TRUE(may_be_announcement(c, "P"));
  EXPECT_TRUE(may_be_announcement(c, "po"));
  EXPECT_TRUE(may_be_announcement(c, "PORT"));
  EXPECT_TRUE(may_be_announcement(c, "PORT 19"));
  EXPECT_TRUE(may_be_announcement(c, "ePr"));
  EXPECT_TRUE(may_be_announcement(c, "LPRT "));
  EXPECT_FALSE(may_be_announcement(c, "PORTS"));
  EXPECT_FALSE(may_be_announcement(c, "USER"));
  EXPECT_FALSE(may_be_announcement(c, "2"));
  EXPECT_TRUE(may_be_announcement(s, "2"));
  EXPECT_TRUE(may_be_announcement(s, "22"));
  EXPECT_TRUE(may_be_announcement(s, "229 Ent"));
  EXPECT_FALSE(may_be_announcement(s, "227-"));
  EXPECT_FALSE(may_be_announcement(s, "226 "));
  EXPECT_FALSE(may_be_announcement(s, "P"));
}

TEST_F(LineFramerTest, PartialHoldState) {
  feed(client_, "PO");
  EXPECT_TRUE(client_.in_line());
  EXPECT_TRUE(client_.partial_may_be_announcement());
  feed(client_, "RT 1,2");
  EXPECT_TRUE(client_.partial_may_be_announcement());
  feed(client_, ",3,4,5,6\r\nRETR x");
  EXPECT_FALSE(client_.partial_may_be_announcement());
  EXPECT_EQ(client_.line_offset(), 18u);
  EXPECT_EQ(client_.partial_text(), "RETR x");
}

TEST_F(LineFramerTest, PartialWithTelnetNotWorthHolding) {
  feed(client_, "\xff\xf4\xff");  // lftp: IAC IP, IAC (urgent) ... DM follows in the next segment
  EXPECT_TRUE(client_.in_line());
  EXPECT_FALSE(client_.partial_may_be_announcement());
  feed(client_, "\xf2" "ABOR\r\n");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].text, "ABOR");
  feed(client_, "PO");
  EXPECT_TRUE(client_.partial_may_be_announcement());
  feed(client_, "\xff\xf1");  // IAC NOP inside: it can only end as telnet_in_announcement
  EXPECT_FALSE(client_.partial_may_be_announcement());
}

TEST_F(LineFramerTest, AnnouncementAtBoundAndPast) {
  // Raw length exactly max_announcement_line (CRLF included): fine.
  std::string at = "PORT " + std::string(limits::max_announcement_line - 7, '1') + "\r\n";
  ASSERT_EQ(at.size(), limits::max_announcement_line);
  feed(client_, at);
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].reason, Reason::none);
  EXPECT_FALSE(lines_[0].truncated);
  // One byte more: line_too_long.
  std::string past = "PORT " + std::string(limits::max_announcement_line - 6, '1');
  feed(client_, past);
  EXPECT_TRUE(client_.partial_may_be_announcement());  // 511 raw bytes: a lone LF would still fit
  feed(client_, "\r");
  EXPECT_FALSE(client_.partial_may_be_announcement());  // 512 and no line end yet: can only be too long
  feed(client_, "\n");
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_TRUE(lines_[1].announcing);
  EXPECT_EQ(lines_[1].reason, Reason::line_too_long);
  EXPECT_EQ(lines_[1].raw_length, limits::max_announcement_line + 1);
}

TEST_F(LineFramerTest, LongUtf8PathPassesUnparsed) {
  std::string path;
  while (path.size() < 2000) path += "\xc3\xa9t\xc3\xa9/";
  feed(client_, "RETR " + path + "\r\nPASV\r\n");
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_TRUE(lines_[0].truncated);
  EXPECT_EQ(lines_[0].text.size(), limits::max_announcement_line);
  EXPECT_EQ(lines_[0].raw_length, 5 + path.size() + 2);
  EXPECT_EQ(lines_[0].reason, Reason::none);
  EXPECT_EQ(lines_[1].text, "PASV");
  EXPECT_EQ(lines_[1].offset, 5 + path.size() + 2);
}

TEST_F(LineFramerTest, TextOfExactlyTheBoundIsNotTruncated) {
  const std::string t(limits::max_announcement_line, 'x');
  feed(client_, t + "\r\n");
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_FALSE(lines_[0].truncated);
  EXPECT_EQ(lines_[0].text, t);
  feed(client_, t + "y\r\n");
  EXPECT_TRUE(lines_[1].truncated);
}

TEST_F(LineFramerTest, GapDropsPartialLineAndResyncs) {
  feed(client_, "PORT 1,2,");
  off_ += 100;  // bytes never seen
  feed(client_, "3,4,5,6\r\nPASV\r\n");
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_FALSE(lines_[0].complete);
  EXPECT_EQ(lines_[0].text, "PORT 1,2,");
  EXPECT_EQ(lines_[1].text, "PASV");
  EXPECT_EQ(client_.skipped_bytes(), 9u);
}

TEST_F(LineFramerTest, ResyncSkipsToNextLineStart) {
  client_.resync();
  feed(client_, "RT 1,2,3,4,5,6\r\nNOOP\r\n");
  EXPECT_EQ(texts(), (std::vector<std::string>{"NOOP"}));
}

TEST_F(LineFramerTest, EndReportsPartialLine) {
  feed(client_, "QUI");
  client_.end(*this);
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_FALSE(lines_[0].complete);
  EXPECT_EQ(lines_[0].text, "QUI");
}

TEST_F(LineFramerTest, OneByteFeedingEqualsWhole) {
  const std::string s = "220 hi\r\n227 Entering (1,2,3,4,5,6)\r\n\xff\xff\r\n211-x\n 211 end\r\n";
  feed(server_, s);
  auto whole = lines_;
  lines_.clear();
  off_ = 0;
  LineFramer f(Direction::server_to_client);
  for (char c : s) feed(f, std::string(1, c));
  ASSERT_EQ(lines_.size(), whole.size());
  for (std::size_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(lines_[i].text, whole[i].text);
    EXPECT_EQ(lines_[i].offset, whole[i].offset);
    EXPECT_EQ(lines_[i].raw_length, whole[i].raw_length);
  }
}


// ---- rest (issue 13) -----------------------------------------------------------------------------

TEST_F(LineFramerTest, RestOnlyBetweenLinesAndResumesExactly) {
  LineFramer f{Direction::server_to_client};
  EXPECT_TRUE(f.rest());
  feed(f, "220 a much longer greeting than fifteen bytes\r\n");
  ASSERT_TRUE(f.rest());
  feed(f, "227 Entering");
  EXPECT_FALSE(f.rest()) << "mid-line";
  feed(f, " Passive Mode (1,2,3,4,5,6)\r");
  EXPECT_FALSE(f.rest()) << "a CR waiting for its LF";
  feed(f, "\n\xff");
  EXPECT_FALSE(f.rest()) << "a Telnet IAC open";
  feed(f, "\xff\r\n");
  ASSERT_TRUE(f.rest());
  // A gap makes it skip to the next line end: that survives the rest, with the skipped count.
  f.gap(off_ + 5, *this);
  off_ += 5;
  feed(f, "ss");
  const auto r = f.rest();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->skipping);
  LineFramer resumed(Direction::server_to_client, *r);
  EXPECT_EQ(resumed.next_offset(), f.next_offset());
  EXPECT_EQ(resumed.skipped_bytes(), f.skipped_bytes());
  const auto before = lines_.size();
  const std::string rest_of = "kipped\r\n229 Entering Extended Passive Mode (|||6446|)\r\n";
  const std::uint64_t at = off_;
  feed(f, rest_of);
  std::vector<Got> live(lines_.begin() + static_cast<long>(before), lines_.end());
  lines_.resize(before);
  off_ = at;
  feed(resumed, rest_of);
  ASSERT_EQ(lines_.size() - before, live.size());
  ASSERT_EQ(live.size(), 1u);
  for (std::size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(lines_[before + i].offset, live[i].offset);
    EXPECT_EQ(lines_[before + i].text, live[i].text);
    EXPECT_EQ(lines_[before + i].announcing, live[i].announcing);
  }
  EXPECT_EQ(resumed.skipped_bytes(), f.skipped_bytes());
}

}  // namespace
}  // namespace ftpwall
