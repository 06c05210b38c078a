// SPDX-License-Identifier: GPL-2.0-or-later
// Hardening of the stream, the handshake and the option parser against injected or odd segments
// (adversarial review of December 2026, findings L1-L4). Each test is named after what must hold:
//   L1 a segment far ahead does not make later real bytes invisible (StreamHardening.*)
//   L2 the window scale comes only from the SYN carrying the stream's ISN, and a segment the
//      stream rejects moves no window (TrackerHardening.*)
//   L3 a FIN is checked against the window like data (StreamHardening.*Fin*)
//   L4 TCP options are parsed as the kernel does: a malformed option ends option parsing, the
//      packet is still tracked and corrected (PacketHardening.*, TrackerHardening.*)
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "ftpwall/core/limits.hpp"
#include "ftpwall/core/packet.hpp"
#include "ftpwall/core/stream.hpp"
#include "ftpwall/core/tracker.hpp"
#include "packet_test_util.hpp"

namespace ftpwall {
namespace {

using Bytes = std::vector<std::uint8_t>;

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// ---- StreamAssembler ------------------------------------------------------------------------

class StreamHardening : public ::testing::Test, public StreamSink {
 protected:
  void on_data(std::uint64_t offset, std::span<const std::uint8_t> b) override {
    EXPECT_EQ(offset, expected_) << "delivery out of order";
    out_.append(reinterpret_cast<const char*>(b.data()), b.size());
    expected_ = offset + b.size();
  }
  void on_gap(std::uint64_t offset, std::uint64_t length) override {
    EXPECT_EQ(offset, expected_);
    gaps_.push_back({offset, length});
    out_.append("<gap>");
    expected_ = offset + length;
  }
  void on_end(std::uint64_t offset, bool reset) override { ends_.push_back({offset, reset}); }

  SegmentReport seg(std::uint32_t seq, const std::string& payload, bool fin = false) {
    return as_.on_segment(Segment{seq, false, fin, false, bytes_of(payload)}, *this);
  }
  SegmentReport fin(std::uint32_t seq) { return as_.on_segment(Segment{seq, false, true, false, {}}, *this); }
  SegmentReport rst(std::uint32_t seq) { return as_.on_segment(Segment{seq, false, false, true, {}}, *this); }
  void syn(std::uint32_t isn) { as_.on_segment(Segment{isn, true, false, false, {}}, *this); }

  StreamAssembler as_;
  std::string out_;
  std::uint64_t expected_ = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps_;
  std::vector<std::pair<std::uint64_t, bool>> ends_;
};

constexpr std::uint32_t big_window = 1u << 20;  // a scaled window wide enough for any injection below

// L1. An attacker guesses a sequence number >= 4 KiB past the stream but inside the window. The
// stream must not jump to it: the real bytes that follow are delivered, never taken for old ones.
TEST_F(StreamHardening, FarAheadSegmentDoesNotHideRealBytes) {
  syn(1000);
  as_.on_peer_ack(1001, big_window);
  auto r = seg(1001 + 5000, "227 Entering Passive Mode (6,6,6,6,4,1).\r\n");
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.reason, Reason::reorder_overflow);
  EXPECT_TRUE(gaps_.empty());
  EXPECT_EQ(as_.next_offset(), 0u);
  r = seg(1001, "USER anonymous\r\n");
  EXPECT_EQ(r.reason, Reason::none);
  EXPECT_EQ(r.new_bytes, 16u);
  seg(1017, "PASV\r\n");
  EXPECT_EQ(out_, "USER anonymous\r\nPASV\r\n");
  EXPECT_TRUE(gaps_.empty());
  EXPECT_EQ(as_.stats().gaps, 0u);
  // Stays bounded: nothing of the far segment was kept.
  EXPECT_EQ(as_.buffered_bytes(), 0u);
}

// L1, the same with out-of-order real bytes waiting: the far segment ends no wait.
TEST_F(StreamHardening, FarAheadSegmentDoesNotEndTheWaitForAHole) {
  syn(0);
  as_.on_peer_ack(1, big_window);
  seg(4, "def\r\n");  // waits for "abc"
  EXPECT_EQ(seg(1 + 4096, "x").reason, Reason::reorder_overflow);
  EXPECT_EQ(as_.buffered_bytes(), 5u);
  seg(1, "abc");
  EXPECT_EQ(out_, "abcdef\r\n");
  EXPECT_TRUE(gaps_.empty());
}

// L1: a segment that starts inside the reorder buffer but runs past it keeps the part that fits;
// the rest is taken when it comes again.
TEST_F(StreamHardening, SegmentRunningPastTheReorderBufferKeepsWhatFits) {
  syn(0);
  as_.on_peer_ack(1, big_window);
  const std::string tail(limits::stream_reorder_bytes + 100, 't');
  auto r = seg(2, tail);  // offsets [1, 4197): [1, 4096) fits
  EXPECT_TRUE(r.accepted);
  EXPECT_EQ(r.reason, Reason::reorder_overflow);
  EXPECT_EQ(r.new_bytes, limits::stream_reorder_bytes - 1);
  EXPECT_TRUE(gaps_.empty());
  seg(1, "h");
  EXPECT_EQ(out_, "h" + std::string(limits::stream_reorder_bytes - 1, 't'));
  r = seg(1 + limits::stream_reorder_bytes, std::string(101, 't'));  // the sender's retransmission
  EXPECT_EQ(r.reason, Reason::none);
  EXPECT_EQ(out_, "h" + tail);
  EXPECT_TRUE(gaps_.empty());
}

// L1: the hole is declared lost only when the receiver acknowledges past it (it holds bytes the
// daemon never saw, and no retransmission of them will come), as a NIDS does on an ack above a
// hole. The bytes after the ack point are then followed.
TEST_F(StreamHardening, HoleIsGapOnlyOnceTheReceiverAcknowledgesPastIt) {
  syn(0);
  as_.on_peer_ack(1, big_window);
  seg(3, "cd");  // [2, 4) buffered, [0, 2) missing
  const std::string far(100, 'f');
  EXPECT_EQ(seg(1 + 5000, far).reason, Reason::reorder_overflow);  // [5000, 5100) not kept
  EXPECT_TRUE(gaps_.empty());
  as_.on_peer_ack(1 + 5100, big_window);  // the receiver got everything, the daemon did not
  auto r = seg(1 + 5100, "NOOP\r\n");
  EXPECT_EQ(r.reason, Reason::stream_gap);
  ASSERT_EQ(gaps_.size(), 2u);
  EXPECT_EQ(gaps_[0], (std::pair<std::uint64_t, std::uint64_t>{0, 2}));
  EXPECT_EQ(gaps_[1], (std::pair<std::uint64_t, std::uint64_t>{4, 5096}));
  EXPECT_EQ(out_, "<gap>cd<gap>NOOP\r\n");
}

// L1: an acknowledgement beyond every byte the sender was seen to send proves nothing (a TCP
// sender ignores an ack of data it never sent; conntrack calls it INVALID): no gap.
TEST_F(StreamHardening, AckBeyondEverythingSeenDeclaresNoGap) {
  syn(0);
  as_.on_peer_ack(1, big_window);
  seg(3, "cd");
  as_.on_peer_ack(1 + 100000, big_window);
  EXPECT_EQ(seg(5, "e").reason, Reason::none);
  EXPECT_TRUE(gaps_.empty());
  seg(1, "ab");
  EXPECT_EQ(out_, "abcde");
}

// L1: an RST at the acknowledged point after a lost hole ends the stream (the receiver's rcv_nxt).
TEST_F(StreamHardening, RstAtTheAcknowledgedPointAfterALostHoleEndsTheStream) {
  syn(0);
  as_.on_peer_ack(1, big_window);
  seg(5, "efgh");  // [4, 8) buffered
  as_.on_peer_ack(9, big_window);
  rst(9);
  ASSERT_EQ(ends_.size(), 1u);
  EXPECT_EQ(ends_[0], (std::pair<std::uint64_t, bool>{8, true}));
  EXPECT_EQ(out_, "<gap>efgh");
}

// Without any acknowledgement from the receiver (none seen yet) the bound still holds the old way:
// the far segment ends the wait (StreamTest.ReorderBufferPastBoundIsGap).

// L3. A bare FIN far outside the window is dropped by the receiver: it must neither end the stream
// nor pin its end.
TEST_F(StreamHardening, BareFinOutsideTheWindowIsIgnored) {
  syn(0);
  as_.on_peer_ack(1, 1000);
  auto r = fin(1 + 1000000);
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.reason, Reason::out_of_window);
  r = fin(1 + 1000);  // just past the right edge (ack + window)
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.reason, Reason::out_of_window);
  seg(1, "QUIT\r\n");
  r = fin(7);  // the real FIN
  EXPECT_EQ(r.reason, Reason::none);
  ASSERT_EQ(ends_.size(), 1u);
  EXPECT_EQ(ends_[0], (std::pair<std::uint64_t, bool>{6, false}));
  EXPECT_EQ(as_.stats().overlap_mismatches, 0u);
  EXPECT_EQ(out_, "QUIT\r\n");
}

// L3: a FIN carried by an out-of-window data segment is ignored with it.
TEST_F(StreamHardening, FinOnOutOfWindowDataIsIgnored) {
  syn(0);
  as_.on_peer_ack(1, 10);
  auto r = seg(1 + 10, "x", true);
  EXPECT_FALSE(r.accepted);
  seg(1, "abc");
  EXPECT_TRUE(ends_.empty());
  fin(4);
  ASSERT_EQ(ends_.size(), 1u);
  EXPECT_EQ(ends_[0].first, 3u);
}

// L3: the receiver takes a bare FIN at its rcv_nxt even with a zero window (Linux tcp_data_queue:
// "some stacks send bare FIN packets in a loop even if we send RWIN 0") and at the right edge of a
// window the sender filled; it is not a zero-window probe.
TEST_F(StreamHardening, BareFinAtTheRightEdgeIsAccepted) {
  syn(0);
  seg(1, "abc");
  as_.on_peer_ack(4, 0);
  EXPECT_EQ(fin(4).reason, Reason::none);
  ASSERT_EQ(ends_.size(), 1u);
  EXPECT_EQ(ends_[0].first, 3u);
}

// L3: at the edge but past a hole the receiver drops it (not in order, no room).
TEST_F(StreamHardening, BareFinAtTheRightEdgePastAHoleIsIgnored) {
  syn(0);
  as_.on_peer_ack(1, 10);
  EXPECT_EQ(fin(11).reason, Reason::out_of_window);
  seg(1, std::string(10, 'a'));
  EXPECT_TRUE(ends_.empty());
}

TEST_F(StreamHardening, BareFinAfterDataThatFilledTheWindowIsAccepted) {
  syn(0);
  as_.on_peer_ack(1, 3);
  seg(1, "abc");  // fills the window exactly
  EXPECT_EQ(fin(4).reason, Reason::none);
  ASSERT_EQ(ends_.size(), 1u);
}

// ---- PacketView -------------------------------------------------------------------------------

// L4. Linux tcp_parse_options and conntrack's tcp_options stop at an option whose length is < 2 or
// runs past the header, keep what they parsed before it and take the segment. So does PacketView.
TEST(PacketHardening, MalformedOptionEndsOptionParsingPacketStillParses) {
  test::TcpSpec t;
  t.flags = 0x12;  // SYN|ACK
  t.options = test::cat({test::opt_mss(1460), {3, 3, 7, 1}, {8, 1, 0, 0}, test::opt_ts(1, 2), {0, 0}});
  Bytes b = test::build_v4(t);
  auto p = PacketView::parse(b);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->mss(), 1460);
  EXPECT_EQ(p->window_scale(), 7);
  EXPECT_FALSE(p->timestamps());  // after the silly option: never parsed, as by the receiver

  t.options = {2, 0, 0, 0};  // length 0: the kernel's "silly option"
  b = test::build_v4(t);
  p = PacketView::parse(b);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_FALSE(p->mss());

  t.options = {1, 1, 8, 10};  // timestamps needs 10 bytes, 2 left
  b = test::build_v4(t);
  p = PacketView::parse(b);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_FALSE(p->timestamps());

  t.options = {1, 1, 1, 2};  // kind 2 in the last byte, no length byte
  b = test::build_v6(t);
  p = PacketView::parse(b);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_FALSE(p->mss());
}

TEST(PacketHardening, SackBeforeAMalformedOptionIsStillMapped) {
  test::TcpSpec t;
  t.options = test::cat({{1, 1}, test::opt_sack({{100, 200}}), {5, 1}});
  Bytes b = test::build_v4(t);
  auto p = PacketView::parse(b);
  ASSERT_TRUE(p.ok()) << p.error().message;
  ASSERT_EQ(p->sack_count(), 1u);
  EXPECT_EQ(p->sack_block(0).left, 100u);
}

// ---- Tracker ----------------------------------------------------------------------------------

Endpoint ep(std::string_view a, std::uint16_t port) { return Endpoint{Address::parse(a).value(), port}; }

// Client 10.0.0.5 behind SNAT (seen as 203.0.113.1), server 198.51.100.2.
ConnTuples client_nat() {
  return {{ep("10.0.0.5", 40000), ep("198.51.100.2", 21)}, {ep("198.51.100.2", 21), ep("203.0.113.1", 40000)}};
}

Bytes wscale_opt(std::uint8_t shift) { return {1, 3, 3, shift}; }

// An IPv4 + TCP packet with options (a multiple of 4 bytes), checksums fixed.
Bytes build(const Tuple& t, std::uint32_t seq, std::uint32_t ack, std::uint8_t flags, std::string_view payload,
            std::uint16_t window, const Bytes& options = {}) {
  Bytes p(40 + options.size() + payload.size());
  p[0] = 0x45;
  test::put16(p, 2, static_cast<std::uint32_t>(p.size()));
  p[8] = 64;
  p[9] = 6;
  std::copy_n(t.src.addr.bytes.begin(), 4, p.begin() + 12);
  std::copy_n(t.dst.addr.bytes.begin(), 4, p.begin() + 16);
  test::put16(p, 20, t.src.port);
  test::put16(p, 22, t.dst.port);
  test::put32(p, 24, seq);
  test::put32(p, 28, ack);
  p[32] = static_cast<std::uint8_t>(((20 + options.size()) / 4) << 4);
  p[33] = flags;
  test::put16(p, 34, window);
  std::copy(options.begin(), options.end(), p.begin() + 40);
  std::copy(payload.begin(), payload.end(), p.begin() + 40 + static_cast<long>(options.size()));
  auto v = PacketView::parse(std::span<std::uint8_t>(p));
  EXPECT_TRUE(v.ok());
  if (v) v->fix_checksums();
  return p;
}

constexpr auto c2s = Direction::client_to_server;
constexpr auto s2c = Direction::server_to_client;
constexpr std::uint32_t cisn = 1000, sisn = 7000;

bool has_reason(const PacketOutcome& o, Reason r) {
  for (const auto& d : o.decisions) {
    if (const auto* v = std::get_if<Violation>(&d); v && v->reason == r) return true;
  }
  return false;
}
std::string all(const PacketOutcome& o) {
  std::string s;
  for (const auto& d : o.decisions) s += to_string(d) + "\n";
  return s;
}

struct Link {
  explicit Link(ConnTuples tu) : tuples(tu), t(tu, PolicyConfig{}) {}
  PacketOutcome send(Direction d, Bytes pkt) { return t.on_packet(d, std::span<std::uint8_t>(pkt), 1000); }
  // Handshake with window scale 7 both ways; the server then advertises 256 << 7 = 32 KiB.
  void handshake() {
    send(c2s, build(tuples.original, cisn, 0, tcp_flag::syn, "", 64240, wscale_opt(7)));
    send(s2c, build(tuples.reply, sisn, cisn + 1, tcp_flag::syn | tcp_flag::ack, "", 65160, wscale_opt(7)));
    send(c2s, build(tuples.original, cisn + 1, sisn + 1, tcp_flag::ack, "", 502));
    send(s2c, build(tuples.reply, sisn + 1, cisn + 1, tcp_flag::ack | tcp_flag::psh, "220 hi\r\n", 256));
  }
  PacketOutcome client_data(std::uint32_t off, std::string_view text) {
    return send(c2s, build(tuples.original, cisn + 1 + off, sisn + 9, tcp_flag::ack | tcp_flag::psh, text, 502));
  }
  ConnTuples tuples;
  Tracker t;
};

// Without NAT: client 192.0.2.7, server 198.51.100.2.
ConnTuples no_nat() { return ConnTuples::without_nat(ep("192.0.2.7", 40000), ep("198.51.100.2", 21)); }

// Client bytes [0, 600): with the server's window read as 256 bytes the second half would be
// out of window; read as 32 KiB it is taken.
void expect_client_stream_followed(Link& s) {
  const std::string head = "NOOP\r\n" + std::string(394, 'x');
  const std::string tail = std::string(198, 'y') + "\r\n";
  s.client_data(0, head);
  auto b = s.client_data(static_cast<std::uint32_t>(head.size()), tail);
  EXPECT_FALSE(has_reason(b, Reason::out_of_window)) << all(b);
  EXPECT_EQ(s.t.stream(c2s).next_offset(), head.size() + tail.size());
}

TEST(TrackerHardening, ScaledWindowFollowedWithoutForgery) {
  Link s(no_nat());
  s.handshake();
  expect_client_stream_followed(s);
}

// L2. Conntrack passes a SYN-ACK in the reply direction of an ESTABLISHED connection (IGNORE ->
// NF_ACCEPT). One with another ISN and no window scale option must change nothing: neither the
// scale nor the ack/window it carries.
TEST(TrackerHardening, ForgedSynAckDoesNotStripTheWindowScale) {
  Link s(no_nat());
  s.handshake();
  auto o = s.send(s2c, build(s.tuples.reply, 123456, cisn + 1, tcp_flag::syn | tcp_flag::ack, "", 256));
  EXPECT_TRUE(has_reason(o, Reason::syn_mismatch)) << all(o);
  expect_client_stream_followed(s);
}

// L2: the same from the client side (a forged SYN with another ISN).
TEST(TrackerHardening, ForgedSynDoesNotStripTheWindowScale) {
  Link s(no_nat());
  s.handshake();
  auto o = s.send(c2s, build(s.tuples.original, 99999, 0, tcp_flag::syn, "", 64240));
  EXPECT_TRUE(has_reason(o, Reason::syn_mismatch)) << all(o);
  // The client's windows must stay scaled (502 << 7): the server's data past 502 bytes is taken.
  s.send(c2s, build(s.tuples.original, cisn + 1, sisn + 9, tcp_flag::ack, "", 502));
  const std::string text = std::string(518, 'z') + "\r\n" + std::string(98, 'w') + "\r\n";
  s.send(s2c, build(s.tuples.reply, sisn + 9, cisn + 1, tcp_flag::ack, text.substr(0, 520), 256));
  auto b = s.send(s2c, build(s.tuples.reply, sisn + 9 + 520, cisn + 1, tcp_flag::ack, text.substr(520), 256));
  EXPECT_FALSE(has_reason(b, Reason::out_of_window)) << all(b);
  EXPECT_EQ(s.t.stream(s2c).next_offset(), 8 + text.size());
  expect_client_stream_followed(s);
}

// L2: a data segment the stream rejects (out of window) carries an ack and a window the receiver
// never reads: a zero window from it must not shut the client's stream.
TEST(TrackerHardening, RejectedSegmentMovesNoWindow) {
  Link s(no_nat());
  s.handshake();
  auto o = s.send(s2c, build(s.tuples.reply, sisn + 9 + 10000000, cisn + 1, tcp_flag::ack, "junk\r\n", 0));
  EXPECT_TRUE(has_reason(o, Reason::out_of_window)) << all(o);
  expect_client_stream_followed(s);
}

// L2: the same for a pure ACK whose sequence number lies past the receiver's window (Linux
// tcp_sequence drops it before reading its ack).
TEST(TrackerHardening, PureAckOutsideTheWindowMovesNoWindow) {
  Link s(no_nat());
  s.handshake();
  s.send(s2c, build(s.tuples.reply, sisn + 9 + 10000000, cisn + 1, tcp_flag::ack, "", 0));
  expect_client_stream_followed(s);
}

// L2: a retransmitted SYN-ACK (same ISN) is harmless and keeps the scale.
TEST(TrackerHardening, RetransmittedSynAckKeepsTheWindowScale) {
  Link s(no_nat());
  s.handshake();
  auto o = s.send(s2c, build(s.tuples.reply, sisn, cisn + 1, tcp_flag::syn | tcp_flag::ack, "", 65160, wscale_opt(7)));
  EXPECT_TRUE(o.decisions.empty()) << all(o);
  s.send(s2c, build(s.tuples.reply, sisn + 9, cisn + 1, tcp_flag::ack, "", 256));
  expect_client_stream_followed(s);
}

// L4. A packet with a "silly" option (length < 2) carries payload the server reads. It must be
// tracked (its bytes reach the stream) and corrected (its sequence number follows the +3 of the
// earlier PORT rewrite).
TEST(TrackerHardening, MalformedOptionPacketIsTrackedAndCorrected) {
  Link s(client_nat());
  s.handshake();
  const std::string port = "PORT 10,0,0,5,156,64\r\n";
  auto o = s.client_data(0, port);
  ASSERT_TRUE(o.modified) << all(o);
  const std::string next = "RETR x\r\n";
  Bytes pkt = build(s.tuples.original, cisn + 1 + static_cast<std::uint32_t>(port.size()), sisn + 9,
                    tcp_flag::ack | tcp_flag::psh, next, 502, {1, 1, 8, 0});
  o = s.send(c2s, pkt);
  EXPECT_TRUE(o.decisions.empty()) << all(o);
  ASSERT_TRUE(o.modified);
  auto v = PacketView::parse(std::span<std::uint8_t>(o.bytes));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->seq(), cisn + 1 + port.size() + 3);
  EXPECT_TRUE(v->tcp_checksum_ok());
  EXPECT_EQ(s.t.stream(c2s).next_offset(), port.size() + next.size());
}

// L1 through the Tracker: an in-window injection far ahead in the client's stream of a client-NAT
// session is neither followed nor counted as gone out, so the real PORT after it is still
// rewritten.
TEST(TrackerHardening, FarAheadInjectionDoesNotHideTheRealPort) {
  Link s(client_nat());
  s.handshake();
  auto o = s.client_data(10000, "PORT 10,0,0,5,1,1\r\n");
  EXPECT_TRUE(has_reason(o, Reason::reorder_overflow)) << all(o);
  o = s.client_data(0, "PORT 10,0,0,5,156,64\r\n");
  EXPECT_TRUE(o.modified) << all(o);
  EXPECT_NE(all(o).find("\"10,0,0,5,156,64\" -> \"203,0,113,1,156,64\""), std::string::npos) << all(o);
  EXPECT_FALSE(has_reason(o, Reason::stream_gap)) << all(o);
}

}  // namespace
}  // namespace ftpwall
