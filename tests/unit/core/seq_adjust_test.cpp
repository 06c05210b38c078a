// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/seq_adjust.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "ftpwall/core/limits.hpp"
#include "ftpwall/core/tcp_seq.hpp"
#include "packet_test_util.hpp"

namespace ftpwall {
namespace {

using test::Bytes;
using test::TcpSpec;
constexpr Direction c2s = Direction::client_to_server;
constexpr Direction s2c = Direction::server_to_client;

Bytes B(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string S(std::span<const std::uint8_t> b) { return std::string(b.begin(), b.end()); }

// ---------------------------------------------------------------------------------------------
// Explicit numbers on one history:
//   [100,110) 10 bytes -> 14 (+4)    [200,220) 20 -> 15 (-5)    [300,305) 5 -> 5 (same length)
// Original stream byte i is 'a' + i % 26, so old bytes are known.

Bytes orig_bytes(std::uint32_t from, std::uint32_t to) {
  Bytes b;
  for (std::uint32_t i = from; i != to; ++i) b.push_back(static_cast<std::uint8_t>('a' + i % 26));
  return b;
}

SeqAdjust three_rewrites(std::uint32_t base = 0) {
  SeqAdjust sa;
  EXPECT_TRUE(sa.record(c2s, base + 100, orig_bytes(100, 110), B("NNNNNNNNNNNNNN")).ok());
  EXPECT_TRUE(sa.record(c2s, base + 200, orig_bytes(200, 220), B("MMMMMMMMMMMMMMM")).ok());
  EXPECT_TRUE(sa.record(c2s, base + 300, orig_bytes(300, 305), B("SSSSS")).ok());
  return sa;
}

TEST(SeqAdjust, MapSeqExplicit) {
  SeqAdjust sa = three_rewrites();
  EXPECT_EQ(sa.corrections(c2s), 3u);
  const std::pair<std::uint32_t, std::uint32_t> cases[] = {
      {50, 50},   {100, 100}, {105, 100}, {109, 100}, {110, 114}, {150, 154}, {200, 204},
      {210, 204}, {220, 219}, {299, 298}, {300, 299}, {302, 301}, {305, 304}, {400, 399}};
  for (auto [o, t] : cases) EXPECT_EQ(sa.map_seq(c2s, o), t) << o;
  for (std::uint32_t o : {50u, 222u, 400u}) EXPECT_EQ(sa.map_seq(s2c, o), o);  // other direction untouched
}

TEST(SeqAdjust, MapAckExplicit) {
  SeqAdjust sa = three_rewrites();
  const std::pair<std::uint32_t, std::uint32_t> cases[] = {
      {50, 50},   {100, 100}, {105, 100}, {113, 100}, {114, 110}, {154, 150}, {204, 200},
      {210, 200}, {218, 200}, {219, 220}, {299, 300}, {301, 302}, {304, 305}, {399, 400}};
  for (auto [t, o] : cases) EXPECT_EQ(sa.map_ack(c2s, t), o) << t;
  // Inverse outside changed regions, both sides of every region, and inside the same-length one.
  for (std::uint32_t s : {0u, 99u, 100u, 110u, 111u, 199u, 200u, 220u, 300u, 301u, 304u, 305u, 1000u})
    EXPECT_EQ(sa.map_ack(c2s, sa.map_seq(c2s, s)), s) << s;
}

TEST(SeqAdjust, MapAcrossTheWrap) {
  // The same history shifted so that the first region straddles 2^32.
  const std::uint32_t base = 0u - 105u;
  SeqAdjust sa;
  ASSERT_TRUE(sa.record(c2s, base + 100, Bytes(10, 'x'), Bytes(14, 'N')).ok());
  ASSERT_TRUE(sa.record(c2s, base + 200, Bytes(20, 'y'), Bytes(15, 'M')).ok());
  EXPECT_EQ(sa.map_seq(c2s, base + 50), base + 50);
  EXPECT_EQ(sa.map_seq(c2s, base + 105), base + 100);  // == 0xffffffff... inside, maps to the start
  EXPECT_EQ(sa.map_seq(c2s, base + 110), base + 114);  // past 2^32
  EXPECT_EQ(sa.map_seq(c2s, base + 220), base + 219);
  EXPECT_EQ(sa.map_ack(c2s, base + 114), base + 110);
  EXPECT_EQ(sa.map_ack(c2s, base + 113), base + 100);
  EXPECT_EQ(sa.map_ack(c2s, base + 219), base + 220);
}

TEST(SeqAdjust, TransformSegmentBeforeAfterAcrossAndInside) {
  SeqAdjust sa = three_rewrites();
  auto tf = [&](std::uint32_t from, std::uint32_t to) { return sa.transform_segment(c2s, from, orig_bytes(from, to)); };
  const std::string N(14, 'N'), M(15, 'M');
  auto o = [](std::uint32_t a, std::uint32_t b) { return S(orig_bytes(a, b)); };

  auto t = tf(50, 60);
  EXPECT_EQ(t.seq, 50u);
  EXPECT_EQ(S(t.payload), o(50, 60));
  t = tf(100, 110);  // exactly the region
  EXPECT_EQ(t.seq, 100u);
  EXPECT_EQ(S(t.payload), N);
  t = tf(95, 115);  // covers it
  EXPECT_EQ(t.seq, 95u);
  EXPECT_EQ(S(t.payload), o(95, 100) + N + o(110, 115));
  t = tf(105, 120);  // starts inside: widened back to the region's start
  EXPECT_EQ(t.seq, 100u);
  EXPECT_EQ(S(t.payload), N + o(110, 120));
  t = tf(90, 105);  // ends inside: widened to its end
  EXPECT_EQ(t.seq, 90u);
  EXPECT_EQ(S(t.payload), o(90, 100) + N);
  t = tf(102, 108);  // wholly inside
  EXPECT_EQ(t.seq, 100u);
  EXPECT_EQ(S(t.payload), N);
  t = tf(105, 205);  // inside one region to inside the next
  EXPECT_EQ(t.seq, 100u);
  EXPECT_EQ(S(t.payload), N + o(110, 200) + M);
  t = tf(150, 160);  // between regions
  EXPECT_EQ(t.seq, 154u);
  EXPECT_EQ(S(t.payload), o(150, 160));
  t = tf(302, 304);  // same-length region: octet for octet, never widened
  EXPECT_EQ(t.seq, 301u);
  EXPECT_EQ(S(t.payload), "SS");
  t = tf(298, 310);
  EXPECT_EQ(t.seq, 297u);
  EXPECT_EQ(S(t.payload), o(298, 300) + "SSSSS" + o(305, 310));
  t = tf(400, 410);  // new data after everything
  EXPECT_EQ(t.seq, 399u);
  EXPECT_EQ(S(t.payload), o(400, 410));
  EXPECT_FALSE(t.violation);
  t = sa.transform_segment(c2s, 105, {});  // zero-length (an ACK): seq only
  EXPECT_EQ(t.seq, 100u);
  EXPECT_TRUE(t.payload.empty());
}

TEST(SeqAdjust, DifferingBytesInsideARegionAreAViolationNotMixed) {
  SeqAdjust sa = three_rewrites();
  Bytes seg = orig_bytes(95, 115);
  seg[7] = '!';  // original 102, inside [100,110)
  auto t = sa.transform_segment(c2s, 95, seg);
  EXPECT_TRUE(t.violation);
  EXPECT_EQ(S(t.payload), S(orig_bytes(95, 100)) + std::string(14, 'N') + S(orig_bytes(110, 115)));
  Bytes same = orig_bytes(300, 305);
  same[4] = 'X';
  t = sa.transform_segment(c2s, 300, same);
  EXPECT_TRUE(t.violation);
  EXPECT_EQ(S(t.payload), "SSSSS");
  seg = orig_bytes(120, 130);
  seg[0] = '!';  // outside any region: not this class's business
  EXPECT_FALSE(sa.transform_segment(c2s, 120, seg).violation);
}

TEST(SeqAdjust, DeletionRegion) {
  SeqAdjust sa;
  ASSERT_TRUE(sa.record(s2c, 1000, B("abc"), {}).ok());
  EXPECT_EQ(sa.map_seq(s2c, 1003), 1000u);
  EXPECT_EQ(sa.map_ack(s2c, 1000), 1003u);  // nothing of the (empty) region is missing
  EXPECT_EQ(sa.map_ack(s2c, 999), 999u);
  auto t = sa.transform_segment(s2c, 998, B("xxabcyy"));
  EXPECT_EQ(t.seq, 998u);
  EXPECT_EQ(S(t.payload), "xxyy");
  t = sa.transform_segment(s2c, 1001, B("bc"));  // only deleted bytes: nothing left to send
  EXPECT_EQ(t.seq, 1000u);
  EXPECT_TRUE(t.payload.empty());
}

TEST(SeqAdjust, RecordRefusesInvalidRewrites) {
  SeqAdjust sa = three_rewrites();
  auto r = sa.record(c2s, 302, B("x"), B("yy"));  // overlaps the last one
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(reason_of(r.error()), Reason::correction_invalid);
  r = sa.record(c2s, 500, {}, B("yy"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(reason_of(r.error()), Reason::correction_invalid);
  EXPECT_TRUE(sa.record(c2s, 305, B("x"), B("x")).ok());  // changes nothing: not stored
  EXPECT_EQ(sa.corrections(c2s), 3u);
  // max_correction_bytes: at the bound accepted, past it refused.
  Bytes at(limits::max_correction_bytes, 'a'), past(limits::max_correction_bytes + 1, 'a');
  EXPECT_TRUE(sa.record(c2s, 1000, at, B("b")).ok());
  r = sa.record(c2s, 5000, B("a"), past);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(reason_of(r.error()), Reason::correction_invalid);
  // Before what the peer acknowledged.
  sa.note_ack(c2s, 2025);  // beyond what was sent (the last rewrite ends at 2024): ignored
  EXPECT_EQ(sa.corrections(c2s), 4u);
  sa.note_ack(c2s, 2024);
  EXPECT_EQ(sa.corrections(c2s), 0u);
  r = sa.record(c2s, 2023, B("a"), B("bb"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(reason_of(r.error()), Reason::correction_invalid);
}

TEST(SeqAdjust, HistoryBoundAtTheEdgeAndPast) {
  SeqAdjust sa;
  std::uint32_t pos = 0xfffffff0u;  // and across the wrap while at it
  for (std::size_t i = 0; i < limits::max_corrections_per_direction; ++i, pos += 10)
    ASSERT_TRUE(sa.record(s2c, pos, B("a"), B("bb")).ok()) << i;
  EXPECT_EQ(sa.corrections(s2c), limits::max_corrections_per_direction);
  auto r = sa.record(s2c, pos, B("a"), B("bb"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(reason_of(r.error()), Reason::correction_history_full);
  EXPECT_EQ(sa.map_seq(s2c, pos), pos + limits::max_corrections_per_direction);  // no offset lost
  // An ack beyond anything sent is not trusted for collapsing.
  sa.note_ack(s2c, pos + 100000);
  EXPECT_EQ(sa.corrections(s2c), limits::max_corrections_per_direction);
  // The peer acknowledges the first ten regions: they collapse into the base offset, mapping unchanged.
  const std::uint32_t later = pos - 5;
  const std::uint32_t before = sa.map_seq(s2c, later);
  sa.note_ack(s2c, 0xfffffff0u + 10 * 10);
  EXPECT_EQ(sa.corrections(s2c), limits::max_corrections_per_direction - 10);
  EXPECT_EQ(sa.base_offset(s2c), 10u);
  EXPECT_EQ(sa.map_seq(s2c, later), before);
  EXPECT_TRUE(sa.record(s2c, pos, B("a"), B("bb")).ok());
  EXPECT_EQ(sa.map_seq(s2c, pos + 1), pos + 1 + limits::max_corrections_per_direction + 1);
}

TEST(SeqAdjust, RetransmissionBeforeACollapsedRegionLandsBeforeWhatTheReceiverAcknowledged) {
  SeqAdjust sa;
  ASSERT_TRUE(sa.record(c2s, 100, Bytes(10, 'o'), Bytes(30, 'n')).ok());  // +20
  ASSERT_TRUE(sa.record(c2s, 200, Bytes(10, 'o'), Bytes(2, 'n')).ok());   // -8
  sa.note_sent(c2s, 300);
  const std::uint32_t ack_t = 250 + 12;  // the receiver has everything up to original 250
  EXPECT_EQ(sa.map_ack(c2s, ack_t), 250u);
  sa.note_ack(c2s, 250);
  EXPECT_EQ(sa.corrections(c2s), 0u);
  EXPECT_EQ(sa.base_offset(c2s), 12u);
  // An old retransmission of [50, 250): placed wholly before the receiver's 262, so discarded.
  auto t = sa.transform_segment(c2s, 50, Bytes(200, 'r'));
  EXPECT_TRUE(seq_before_eq(t.seq + static_cast<std::uint32_t>(t.payload.size()), ack_t));
  // Straddling the acknowledged point: the new bytes land exactly right.
  t = sa.transform_segment(c2s, 240, Bytes(20, 'r'));
  EXPECT_EQ(t.seq + 10, ack_t);
}

// ---------------------------------------------------------------------------------------------
// Whole packets

TEST(SeqAdjustApply, NoCorrectionsLeavesThePacketUntouched) {
  SeqAdjust sa;
  TcpSpec t;
  t.payload = B("PORT 10,0,0,1,4,1\r\n");
  Bytes b = test::build_v4(t);
  const Bytes copy = b;
  auto v = PacketView::parse(b);
  ASSERT_TRUE(v.ok());
  Bytes out;
  auto r = sa.apply(*v, c2s, out);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->changed);
  EXPECT_FALSE(r->moved);
  EXPECT_EQ(b, copy);
  EXPECT_TRUE(out.empty());
}

TEST(SeqAdjustApply, FirstFragmentThatNeedsARewriteIsRefused) {
  SeqAdjust sa;
  TcpSpec t;
  t.seq = 1000;
  t.payload = B("PORT 10,0,0,1,4,1\r\n");
  ASSERT_TRUE(sa.record(c2s, 1005, B("10,0,0,1"), B("203,0,113,9")).ok());
  Bytes b = test::build_v6(t, {{44, test::ext_fragment(0, true)}});
  auto v = PacketView::parse(b);
  ASSERT_TRUE(v.ok());
  Bytes out;
  auto r = sa.apply(*v, c2s, out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(reason_of(r.error()), Reason::packet_fragment);
  // A first fragment after the region only needs header words: updated incrementally.
  t.seq = 1019;
  t.payload = B("NOOP\r\n");
  Bytes later = test::build_v6(t, {{44, test::ext_fragment(0, true)}});
  v = PacketView::parse(later);
  ASSERT_TRUE(v.ok());
  r = sa.apply(*v, c2s, out);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(v->seq(), 1022u);
}

TEST(SeqAdjustApply, AckSackAndUrgentWithChecksumsAfterEachUpdate) {
  // Server history: [1000,1010) -> 14 bytes (+4), [1100,1105) -> 5 bytes (same length).
  SeqAdjust sa;
  ASSERT_TRUE(sa.record(s2c, 1000, Bytes(10, 'o'), Bytes(14, 'n')).ok());
  ASSERT_TRUE(sa.record(s2c, 1100, Bytes(5, 'o'), Bytes(5, 'n')).ok());
  sa.note_sent(s2c, 1200);
  // Client packet: ack inside the grown region (receiver trimmed it), SACK blocks with edges inside both.
  TcpSpec t;
  t.seq = 77;
  t.ack = 1012;
  t.flags = tcp_flag::ack | tcp_flag::urg;
  t.urgent = 0;
  t.options = test::cat({{1, 1}, test::opt_sack({{1005, 1013}, {1050, 1106}, {1104, 1150}})});
  for (bool v6 : {false, true}) {
    Bytes b = v6 ? test::build_v6(t) : test::build_v4(t);
    auto v = PacketView::parse(b);
    ASSERT_TRUE(v.ok());
    Bytes out;
    auto r = sa.apply(*v, c2s, out);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->changed);
    EXPECT_FALSE(r->moved);
    EXPECT_EQ(test::stored_tcp_checksum(b), test::reference_tcp_checksum(b));
    EXPECT_EQ(v->seq(), 77u);         // the client's own stream has no correction
    EXPECT_EQ(v->ack(), 1000u);       // inside the grown region: its start, so it is sent again whole
    EXPECT_EQ(v->sack_block(0), (SackBlock{1010, 1010}));  // nothing of it is whole: empty, ignored
    EXPECT_EQ(v->sack_block(1), (SackBlock{1046, 1102}));  // same-length region: octet exact
    EXPECT_EQ(v->sack_block(2), (SackBlock{1100, 1146}));
    EXPECT_EQ(v->urgent_pointer(), 0);
  }
}

TEST(SeqAdjustApply, UrgentPointerThatNoLongerFitsIsClampedAndReported) {
  // Client history: [1000,1004) -> 7 bytes (+3). A segment starting before the region whose urgent
  // pointer lies past it: mapped, the offset grows by 3.
  SeqAdjust sa;
  ASSERT_TRUE(sa.record(c2s, 1000, Bytes(4, 'o'), Bytes(7, 'n')).ok());
  for (std::uint16_t urgent : {std::uint16_t{0xffff - 3}, std::uint16_t{0xffff - 2}, std::uint16_t{0xffff}}) {
    TcpSpec t;
    t.seq = 990;
    t.ack = 5000;
    t.flags = tcp_flag::ack | tcp_flag::urg;
    t.urgent = urgent;
    t.payload = Bytes(5, 'x');  // ends before the region: only the urgent pointer moves
    Bytes b = test::build_v4(t);
    auto v = PacketView::parse(b);
    ASSERT_TRUE(v.ok());
    Bytes out;
    auto r = sa.apply(*v, c2s, out);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(test::stored_tcp_checksum(b), test::reference_tcp_checksum(b));
    if (urgent <= 0xffff - 3) {  // at the bound: 0xffff exactly, no clamp
      EXPECT_FALSE(r->urgent_clamped) << urgent;
      EXPECT_EQ(v->urgent_pointer(), urgent + 3);
    } else {  // past it
      EXPECT_TRUE(r->urgent_clamped) << urgent;
      EXPECT_EQ(v->urgent_pointer(), 0xffff);
    }
  }
}

// A peer's byte stream of one direction, the rewrites applied to it, and what the receiver got.
struct Flow {
  std::uint32_t isn = 0;
  Bytes orig;
  struct Rw {
    std::size_t off;
    Bytes old_b, new_b;
  };
  std::vector<Rw> rws;
  Bytes expected;
  Bytes got;
  std::vector<bool> have;

  std::size_t line(const std::string& text) {  // appends a line, returns its offset
    std::size_t off = orig.size();
    orig.insert(orig.end(), text.begin(), text.end());
    return off;
  }
  // Declares a rewrite of the first `old` found at or after `from`; returns its offset.
  std::size_t rewrite(std::size_t from, const std::string& old, const std::string& neu) {
    std::size_t off = S(orig).find(old, from);
    EXPECT_NE(off, std::string::npos);
    rws.push_back({off, B(old), B(neu)});
    return off;
  }
  void finish() {  // the stream the receiver must end up with
    std::size_t o = 0;
    for (const auto& r : rws) {
      expected.insert(expected.end(), orig.begin() + static_cast<long>(o), orig.begin() + static_cast<long>(r.off));
      expected.insert(expected.end(), r.new_b.begin(), r.new_b.end());
      o = r.off + r.old_b.size();
    }
    expected.insert(expected.end(), orig.begin() + static_cast<long>(o), orig.end());
    got.assign(expected.size(), 0);
    have.assign(expected.size(), false);
  }
  std::size_t prefix() const {
    std::size_t k = 0;
    while (k < have.size() && have[k]) ++k;
    return k;
  }
  // Oracle, written as a forward walk independent of SeqAdjust: the original offset acknowledged by
  // a receiver holding k bytes (a changed region counts only when whole); round_up for SACK left edges.
  std::size_t orig_ack(std::size_t k, bool round_up = false) const {
    std::size_t o = 0, t = 0;
    for (const auto& r : rws) {
      std::size_t gap = r.off - o;
      if (k < t + gap) return o + (k - t);
      o += gap;
      t += gap;
      if (k < t + r.new_b.size() && k > t) {
        if (r.old_b.size() == r.new_b.size()) return o + (k - t);
        return round_up ? o + r.old_b.size() : o;
      }
      if (k == t) return o;
      o += r.old_b.size();
      t += r.new_b.size();
    }
    return o + (k - t);
  }
  // Receiver offset of original offset o outside changed regions (oracle for urgent pointers).
  std::size_t recv_offset(std::size_t o) const {
    std::ptrdiff_t d = 0;
    for (const auto& r : rws)
      if (r.off + r.old_b.size() <= o) d += static_cast<std::ptrdiff_t>(r.new_b.size()) - static_cast<std::ptrdiff_t>(r.old_b.size());
    return static_cast<std::size_t>(static_cast<std::ptrdiff_t>(o) + d);
  }
};

struct Delivered {
  std::uint32_t seq;
  Bytes payload;
  ApplyOutcome outcome;
  std::uint16_t urgent;
  std::vector<SackBlock> sacks;
  Bytes packet;
};

class Peers {
 public:
  Peers(Family fam, std::uint32_t isn_c, std::uint32_t isn_s) : fam_(fam) {
    flow_[0].isn = isn_c;
    flow_[1].isn = isn_s;
  }
  Flow& flow(Direction d) { return flow_[static_cast<int>(d)]; }
  SeqAdjust& sa() { return sa_; }

  void record(Direction d, std::size_t idx) {
    const auto& r = flow(d).rws[idx];
    ASSERT_TRUE(sa_.record(d, flow(d).isn + 1 + static_cast<std::uint32_t>(r.off), r.old_b, r.new_b).ok());
  }

  // The sender of `d` sends original bytes [off, off+len), acking what it has of the other
  // direction; optional SACK blocks (receiver offsets of the other direction) and urgent offset.
  Delivered send(Direction d, std::size_t off, std::size_t len, bool deliver = true,
                 std::vector<std::pair<std::size_t, std::size_t>> sacks = {}, std::optional<std::size_t> urgent_off = {}) {
    Flow& f = flow(d);
    Flow& back = flow(other(d));
    TcpSpec t;
    t.sport = d == c2s ? 40000 : 21;
    t.dport = d == c2s ? 21 : 40000;
    t.seq = f.isn + 1 + static_cast<std::uint32_t>(off);
    t.ack = back.isn + 1 + static_cast<std::uint32_t>(back.prefix());
    t.flags = tcp_flag::ack | tcp_flag::psh;
    t.payload.assign(f.orig.begin() + static_cast<long>(off), f.orig.begin() + static_cast<long>(off + len));
    if (urgent_off) {
      t.flags |= tcp_flag::urg;
      t.urgent = static_cast<std::uint16_t>(*urgent_off - off);
    }
    std::vector<std::pair<std::uint32_t, std::uint32_t>> blocks;
    for (auto [l, r] : sacks)
      blocks.push_back({back.isn + 1 + static_cast<std::uint32_t>(l), back.isn + 1 + static_cast<std::uint32_t>(r)});
    t.options = blocks.empty() ? test::cat({{1, 1}, test::opt_ts(7, 9)})
                               : test::cat({{1, 1}, test::opt_ts(7, 9), {1, 1}, test::opt_sack(blocks)});
    Bytes pkt = fam_ == Family::v4 ? test::build_v4(t) : test::build_v6(t, {{60, test::ext_opts8()}});
    auto v = PacketView::parse(pkt);
    EXPECT_TRUE(v.ok());
    Bytes out;
    auto r = sa_.apply(*v, d, out);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    Delivered res{};
    if (!r.ok()) return res;
    res.outcome = *r;
    res.packet = Bytes(v->bytes().begin(), v->bytes().end());
    EXPECT_EQ(r->moved, v->bytes().data() == out.data());
    // Checksums against an independent full recomputation, after every apply().
    EXPECT_EQ(test::stored_tcp_checksum(res.packet), test::reference_tcp_checksum(res.packet));
    if (fam_ == Family::v4) {
      EXPECT_EQ(test::get16(res.packet, 10), test::reference_ipv4_header_checksum(res.packet));
    }
    auto p = PacketView::parse(res.packet);
    EXPECT_TRUE(p.ok());
    res.seq = p->seq();
    res.payload.assign(p->payload().begin(), p->payload().end());
    res.urgent = p->urgent_pointer();
    for (std::size_t i = 0; i < p->sack_count(); ++i) res.sacks.push_back(p->sack_block(i));
    // Every ACK maps back to exactly what the receiver holds, in the sender's numbering.
    EXPECT_EQ(p->ack(), back.isn + 1 + static_cast<std::uint32_t>(back.orig_ack(back.prefix())));
    for (std::size_t i = 0; i < sacks.size() && i < res.sacks.size(); ++i) {
      EXPECT_EQ(res.sacks[i].left, back.isn + 1 + static_cast<std::uint32_t>(back.orig_ack(sacks[i].first, true)));
      EXPECT_EQ(res.sacks[i].right, back.isn + 1 + static_cast<std::uint32_t>(back.orig_ack(sacks[i].second)));
    }
    if (urgent_off) {
      EXPECT_EQ(res.seq + res.urgent, f.isn + 1 + static_cast<std::uint32_t>(f.recv_offset(*urgent_off)));
    }
    EXPECT_FALSE(r->violation);
    if (deliver) {
      // Each octet must land at its place in the expected stream, duplicates included.
      std::uint32_t k0 = res.seq - (f.isn + 1);
      for (std::size_t i = 0; i < res.payload.size(); ++i) {
        std::size_t k = k0 + i;
        EXPECT_LT(k, f.expected.size());
        if (k >= f.expected.size()) break;
        EXPECT_EQ(res.payload[i], f.expected[k]) << "receiver offset " << k;
        f.have[k] = true;
        f.got[k] = res.payload[i];
      }
    }
    return res;
  }

 private:
  Family fam_;
  Flow flow_[2];
  SeqAdjust sa_;
};

struct StreamCase {
  Family fam;
  std::uint32_t isn_c, isn_s;
  const char* name;
  bool wraps_in_rewrite = false;
};

class SeqAdjustStream : public ::testing::TestWithParam<StreamCase> {};

TEST_P(SeqAdjustStream, BothPeersReceiveExactlyTheRewrittenStream) {
  const StreamCase& sc = GetParam();
  Peers p(sc.fam, sc.isn_c, sc.isn_s);
  Flow& cl = p.flow(c2s);
  Flow& sv = p.flow(s2c);

  const std::size_t s220 = sv.line("220 ftp.example ready\r\n");
  const std::size_t s331 = sv.line("331 Password required\r\n");
  const std::size_t s230 = sv.line("230 Logged in\r\n");
  const std::size_t s227a = sv.line("227 Entering Passive Mode (10,0,0,2,195,80).\r\n");
  const std::size_t s150 = sv.line("150 Here it comes\r\n226 Done\r\n");
  const std::size_t s227b = sv.line("227 Entering Passive Mode (192,168,100,200,195,81).\r\n");
  const std::size_t s229 = sv.line("229 Entering Extended Passive Mode (|||50001|)\r\n");
  const std::size_t s221 = sv.line("221 Bye\r\n");
  sv.rewrite(s227a, "10,0,0,2", "203,0,113,200");        // grows by 5
  sv.rewrite(s227b, "192,168,100,200", "198,51,100,7");  // shrinks by 3
  sv.rewrite(s229, "50001", "50002");                    // same length
  sv.finish();

  const std::size_t cuser = cl.line("USER anonymous\r\n");
  const std::size_t cpass = cl.line("PASS guest\r\n");
  const std::size_t cpasv = cl.line("PASV\r\n");
  const std::size_t cretr = cl.line("RETR a\r\n");
  const std::size_t cport = cl.line("PORT 192,168,1,10,7,208\r\n");
  const std::size_t ceprt = cl.line("EPRT |1|10.0.0.1|2000|\r\n");
  const std::size_t cabor = cl.line("\xff\xf4\xff\xf2" "ABOR\r\n");
  const std::size_t clist = cl.line("LIST\r\nEPSV\r\nQUIT\r\n");
  cl.rewrite(cport, "192,168,1,10", "203,0,113,9");        // shrinks by 1
  cl.rewrite(ceprt, "10.0.0.1", "198.51.100.77");          // grows by 5
  cl.finish();
  auto len = [](std::size_t a, std::size_t b) { return b - a; };
  if (sc.wraps_in_rewrite) {
    // 2^32 falls strictly inside one rewritten region of each direction.
    for (Flow* f : {&cl, &sv}) {
      bool inside = false;
      for (const auto& r : f->rws) {
        std::uint32_t first = f->isn + 1 + static_cast<std::uint32_t>(r.off);
        inside |= first > first + static_cast<std::uint32_t>(r.old_b.size() - 1);
      }
      EXPECT_TRUE(inside);
    }
  }

  p.send(s2c, s220, len(s220, s331));
  p.send(c2s, cuser, len(cuser, cpass));
  p.send(s2c, s331, len(s331, s230));
  p.send(c2s, cpass, len(cpass, cpasv));
  p.send(s2c, s230, len(s230, s227a));
  p.send(c2s, cpasv, len(cpasv, cretr));

  // 227 split inside its address over two held packets: each carries the whole new region.
  p.record(s2c, 0);
  const std::size_t mid = sv.rws[0].off + 3;
  auto a = p.send(s2c, s227a, mid - s227a);
  auto b = p.send(s2c, mid, len(mid, s150));
  EXPECT_TRUE(a.outcome.moved);
  EXPECT_NE(S(a.payload).find("203,0,113,200"), std::string::npos);
  EXPECT_EQ(b.seq, sv.isn + 1 + static_cast<std::uint32_t>(sv.rws[0].off));
  EXPECT_EQ(S(b.payload).substr(0, 13), "203,0,113,200");
  p.send(c2s, cretr, len(cretr, cport));  // acks the whole 227

  // 150/226 lost; the second 227 arrives; the client SACKs it; a collapsed retransmission follows.
  p.send(s2c, s150, len(s150, s227b), /*deliver=*/false);
  p.record(s2c, 1);
  p.send(s2c, s227b, len(s227b, s229));
  const std::size_t r0 = sv.recv_offset(s227b), r1 = sv.recv_offset(s229);
  auto sacked = p.send(c2s, cport, 0, true, {{r0, r1}});
  ASSERT_EQ(sacked.sacks.size(), 1u);
  EXPECT_EQ(sacked.sacks[0].left, sv.isn + 1 + static_cast<std::uint32_t>(s227b));
  EXPECT_EQ(sacked.sacks[0].right, sv.isn + 1 + static_cast<std::uint32_t>(s229));
  p.send(s2c, s150, len(s150, s229));  // collapsed retransmission across the rewrite

  // PORT: sent, then retransmitted whole: identical bytes.
  p.record(c2s, 0);
  auto first = p.send(c2s, cport, len(cport, ceprt));
  auto again = p.send(c2s, cport, len(cport, ceprt));
  EXPECT_EQ(first.seq, again.seq);
  EXPECT_EQ(first.payload, again.payload);
  EXPECT_EQ(S(first.payload), "PORT 203,0,113,9,7,208\r\n");

  // EPRT + urgent ABOR (IAC IP IAC DM; the urgent pointer points past the DM) lost, then
  // re-segmented by the sender at points inside the rewritten address.
  p.record(c2s, 1);
  const std::size_t dm_end = cabor + 4;
  p.send(c2s, ceprt, len(ceprt, clist), false, {}, dm_end);
  const std::size_t cut1 = cl.rws[1].off + 2, cut2 = cl.rws[1].off + 6;
  auto x = p.send(c2s, ceprt, cut1 - ceprt);
  auto y = p.send(c2s, cut1, cut2 - cut1);
  auto z = p.send(c2s, cut2, len(cut2, clist), true, {}, dm_end);
  EXPECT_EQ(y.seq, z.seq);  // both widened back to the region's start
  EXPECT_EQ(S(y.payload), "198.51.100.77");
  auto end_of = [](const Delivered& d) { return d.seq + static_cast<std::uint32_t>(d.payload.size()); };
  EXPECT_EQ(end_of(x), end_of(y));  // x widened to the region's end
  p.send(s2c, s229, 0);

  // 229 with a same-length rewrite, in three segments cut inside the port: changed in place.
  p.record(s2c, 2);
  const std::size_t pc = sv.rws[2].off;
  auto q1 = p.send(s2c, s229, pc + 2 - s229);
  auto q2 = p.send(s2c, pc + 2, 2);
  auto q3 = p.send(s2c, pc + 4, len(pc + 4, s221));
  EXPECT_FALSE(q1.outcome.moved || q2.outcome.moved || q3.outcome.moved);
  EXPECT_TRUE(q3.outcome.changed);
  EXPECT_EQ(S(q3.payload).substr(0, 1), "2");

  p.send(c2s, clist, len(clist, cl.orig.size()));
  p.send(s2c, s221, len(s221, sv.orig.size()));
  p.send(c2s, cl.orig.size(), 0);  // final acks both ways
  p.send(s2c, sv.orig.size(), 0);

  EXPECT_EQ(S(cl.got), S(cl.expected));
  EXPECT_EQ(S(sv.got), S(sv.expected));
  EXPECT_EQ(cl.prefix(), cl.expected.size());
  EXPECT_EQ(sv.prefix(), sv.expected.size());
  // Everything acknowledged: all corrections collapsed into the base offsets.
  EXPECT_EQ(p.sa().corrections(c2s), 0u);
  EXPECT_EQ(p.sa().corrections(s2c), 0u);
  EXPECT_EQ(p.sa().base_offset(c2s), 4u);  // -1 + 5
  EXPECT_EQ(p.sa().base_offset(s2c), 2u);  // +5 - 3 + 0
}

std::uint32_t isn_for_wrap_at(std::size_t off) { return static_cast<std::uint32_t>(0u - 1u - off - 3u); }

INSTANTIATE_TEST_SUITE_P(
    Seq, SeqAdjustStream,
    ::testing::Values(StreamCase{Family::v4, 1000, 5000000, "ipv4"},
                      StreamCase{Family::v6, 0x7ffffff0u, 0xfffffff0u, "ipv6"},
                      // 2^32 falls three bytes into the client's EPRT address (offset 75) and the
                      // server's first 227 address (offset 88).
                      StreamCase{Family::v4, isn_for_wrap_at(75), isn_for_wrap_at(88), "ipv4_wrap_in_rewrite", true},
                      StreamCase{Family::v6, isn_for_wrap_at(75), isn_for_wrap_at(88), "ipv6_wrap_in_rewrite", true}),
    [](const ::testing::TestParamInfo<StreamCase>& i) { return std::string(i.param.name); });

// ---------------------------------------------------------------------------------------------
// Serialization

SeqAdjust rich_history() {
  SeqAdjust sa;
  EXPECT_TRUE(sa.record(c2s, 0xfffffff8u, B("10,0,0,1"), B("203,0,113,9")).ok());
  EXPECT_TRUE(sa.record(c2s, 40, B("abc"), {}).ok());
  EXPECT_TRUE(sa.record(s2c, 7, B("50001"), B("50002")).ok());
  sa.note_sent(s2c, 100);
  sa.note_ack(s2c, 10);  // inside the same-length region: kept
  return sa;
}

TEST(SeqAdjustSerialize, RoundTrip) {
  SeqAdjust sa = rich_history();
  std::string text = sa.serialize();
  EXPECT_EQ(text.rfind("ftpwall-seqadj 1\n", 0), 0u);
  auto back = SeqAdjust::parse(text);
  ASSERT_TRUE(back.ok()) << back.error().message << "\n" << text;
  EXPECT_TRUE(*back == sa);
  EXPECT_EQ(back->serialize(), text);
  for (std::uint32_t s : {0xfffffff0u, 0xfffffffau, 2u, 41u, 50u})
    EXPECT_EQ(back->map_seq(c2s, s), sa.map_seq(c2s, s)) << s;
  SeqAdjust empty;
  auto e = SeqAdjust::parse(empty.serialize());
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->empty());
  // A collapsed history keeps its base offset.
  SeqAdjust collapsed = rich_history();
  collapsed.note_ack(c2s, 43);
  EXPECT_EQ(collapsed.corrections(c2s), 0u);
  auto c = SeqAdjust::parse(collapsed.serialize());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->base_offset(c2s), 0u);  // +3 - 3
  EXPECT_TRUE(*c == collapsed);
}

TEST(SeqAdjustSerialize, RefusesBadInput) {
  const std::string good = rich_history().serialize();
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  const std::string bad[] = {
      "",
      "ftpwall-seqadj 2\n",
      good.substr(0, good.size() - 1),                           // no final newline
      good + "\n",                                               // trailing blank line
      good + "dir c2s base 0 acked - sent - n 0\n",              // trailing lines
      replace("dir s2c", "dir c2s"),                             // wrong order
      replace(" base 0 ", " base 00 "),                          // leading zero
      replace(" base 0 ", " base 4294967296 "),                  // past 32 bits
      replace(" base 0 ", " base -1 "),
      replace(" base 0 ", "  base 0 "),                          // extra space
      replace("3130", "3G30"),                                   // not hex
      replace("3130", "313"),                                    // odd hex
      replace("3130", "3A30"),                                   // upper case
      replace("n 2", "n 3"),                                     // missing corr line
      replace("n 2", "n 65"),                                    // past the bound
      replace("corr 40 ", "corr 4294967290 "),                   // overlaps the previous
      replace("corr 40 616263 -", "corr 40 616263 616263"),      // changes nothing
      replace("corr 40 616263 -", "corr 40 - 616263"),           // empty old bytes
      replace("acked 10 sent 100", "acked 101 sent 100"),        // acked beyond sent
      replace("acked 10 sent 100", "acked 12 sent 100"),         // should have been collapsed
  };
  for (const auto& s : bad) EXPECT_FALSE(SeqAdjust::parse(s).ok()) << s;
  // The bound itself is accepted.
  SeqAdjust full;
  for (std::uint32_t i = 0; i < limits::max_corrections_per_direction; ++i)
    ASSERT_TRUE(full.record(c2s, i * 4, B("a"), B("bc")).ok());
  auto f = SeqAdjust::parse(full.serialize());
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_TRUE(*f == full);
}

}  // namespace
}  // namespace ftpwall
