// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/stream.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ftpwall/core/limits.hpp"

namespace ftpwall {
namespace {

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// The fixture is the sink: it rebuilds the stream and records gaps and the end.
class StreamTest : public ::testing::Test, public StreamSink {
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
  void on_end(std::uint64_t offset, bool reset) override {
    ends_.push_back({offset, reset});
  }

  SegmentReport seg(std::uint32_t seq, const std::string& payload, bool fin = false) {
    return as_.on_segment(Segment{seq, false, fin, false, bytes_of(payload)}, *this);
  }
  SegmentReport syn(std::uint32_t isn) { return as_.on_segment(Segment{isn, true, false, false, {}}, *this); }

  StreamAssembler as_;
  std::string out_;
  std::uint64_t expected_ = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> gaps_;
  std::vector<std::pair<std::uint64_t, bool>> ends_;
};

TEST_F(StreamTest, InOrderAfterSyn) {
  syn(1000);
  EXPECT_EQ(as_.state(), StreamAssembler::State::open);
  auto r = seg(1001, "USER a\r\n");
  EXPECT_EQ(r.reason, Reason::none);
  EXPECT_EQ(r.new_bytes, 8u);
  EXPECT_EQ(r.offset, 0u);
  seg(1009, "PASS b\r\n");
  EXPECT_EQ(out_, "USER a\r\nPASS b\r\n");
  EXPECT_EQ(as_.next_seq(), 1017u);
}

TEST_F(StreamTest, SegmentBeforeSynIsRefusedWithoutPickup) {
  auto r = seg(5, "USER a\r\n");
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.reason, Reason::segment_before_syn);
  EXPECT_EQ(out_, "");
}

TEST_F(StreamTest, RetransmissionDeliveredOnce) {
  syn(0);
  seg(1, "abcdef");
  auto r = seg(1, "abcdef");
  EXPECT_EQ(r.reason, Reason::none);
  EXPECT_EQ(r.duplicate_bytes, 6u);
  EXPECT_EQ(r.new_bytes, 0u);
  r = seg(4, "defgh");  // overlap, then new bytes
  EXPECT_EQ(r.reason, Reason::none);
  EXPECT_EQ(r.duplicate_bytes, 3u);
  EXPECT_EQ(r.new_bytes, 2u);
  EXPECT_EQ(out_, "abcdefgh");
  EXPECT_EQ(as_.stats().duplicate_bytes, 9u);
}

TEST_F(StreamTest, RetransmissionWithOtherBytesIsOverlapMismatchFirstCopyWins) {
  syn(0);
  seg(1, "PASV\r\n");
  auto r = seg(1, "PORT\r\nX");
  EXPECT_EQ(r.reason, Reason::overlap_mismatch);
  EXPECT_EQ(out_, "PASV\r\nX");  // the new byte after the overlap is taken, the overlap is not
  EXPECT_EQ(as_.stats().overlap_mismatches, 1u);
}

TEST_F(StreamTest, AcknowledgedBytesAreNoLongerCompared) {
  syn(0);
  as_.on_peer_ack(1, 65535);
  seg(1, "PASV\r\n");
  as_.on_peer_ack(7, 65535);  // the receiver has them: it will drop any later copy
  auto r = seg(1, "PORT\r\n");
  EXPECT_EQ(r.reason, Reason::none);
  EXPECT_EQ(r.duplicate_bytes, 6u);
  EXPECT_EQ(as_.heap_bytes(), 0u);
}

TEST_F(StreamTest, RetainedBytesBoundedAtLimit) {
  syn(0);
  const std::string big(limits::stream_retained_bytes + 10, 'a');
  seg(1, big);
  // The first 10 bytes fell out of the retained window: a differing copy of them is not caught.
  auto r = seg(1, std::string(10, 'b'));
  EXPECT_EQ(r.reason, Reason::none);
  // The 11th byte is the oldest still retained: a differing copy is caught.
  r = seg(11, "b");
  EXPECT_EQ(r.reason, Reason::overlap_mismatch);
}

TEST_F(StreamTest, OutOfOrderReassembled) {
  syn(0);
  auto r = seg(7, "world\r\n");
  EXPECT_EQ(r.reason, Reason::none);
  EXPECT_EQ(out_, "");
  EXPECT_EQ(as_.buffered_bytes(), 7u);
  seg(1, "hello ");
  EXPECT_EQ(out_, "hello world\r\n");
  EXPECT_EQ(as_.buffered_bytes(), 0u);
  EXPECT_LT(as_.heap_bytes(), limits::stream_reorder_bytes);  // the reorder buffer was freed
}

TEST_F(StreamTest, OverlappingOutOfOrderMismatch) {
  syn(0);
  seg(5, "5678");
  auto r = seg(3, "34X6");
  EXPECT_EQ(r.reason, Reason::overlap_mismatch);
  seg(1, "12");
  EXPECT_EQ(out_, "12345678");
}

TEST_F(StreamTest, ReorderBufferAtBoundWaits) {
  syn(0);
  // Last byte lands exactly on the last slot of the reorder buffer: still waits for the hole.
  const std::string tail(limits::stream_reorder_bytes - 1, 'x');
  auto r = seg(2, tail);
  EXPECT_EQ(r.reason, Reason::none);
  EXPECT_EQ(as_.buffered_bytes(), limits::stream_reorder_bytes - 1);
  seg(1, "y");
  EXPECT_EQ(out_, "y" + tail);
  EXPECT_TRUE(gaps_.empty());
}

TEST_F(StreamTest, ReorderBufferPastBoundIsGap) {
  syn(0);
  seg(3, "cd");  // buffered
  const std::string far = "far\r\n";
  auto r = seg(static_cast<std::uint32_t>(1 + limits::stream_reorder_bytes), far);
  EXPECT_EQ(r.reason, Reason::stream_gap);
  // The hole [0,2) is reported, "cd" delivered, the hole up to the far segment reported, then it.
  ASSERT_EQ(gaps_.size(), 2u);
  EXPECT_EQ(gaps_[0], (std::pair<std::uint64_t, std::uint64_t>{0, 2}));
  EXPECT_EQ(gaps_[1].first, 4u);
  EXPECT_EQ(gaps_[1].first + gaps_[1].second, limits::stream_reorder_bytes);
  EXPECT_EQ(out_, "<gap>cd<gap>far\r\n");
  EXPECT_EQ(as_.stats().gaps, 1u);
  // The hole's bytes arriving late are old now: ignored.
  r = seg(1, "ab");
  EXPECT_EQ(r.new_bytes, 0u);
  EXPECT_EQ(out_, "<gap>cd<gap>far\r\n");
}

TEST_F(StreamTest, OutOfWindowIgnoredNeverMerged) {
  syn(100);
  as_.on_peer_ack(101, 10);  // right edge 111
  auto r = seg(111, "PORT 1,2,3,4,5,6\r\n");
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.reason, Reason::out_of_window);
  r = seg(110, "a");  // the last byte of the window is acceptable
  EXPECT_TRUE(r.accepted);
  EXPECT_EQ(r.reason, Reason::none);
  seg(101, "012345678");
  EXPECT_EQ(out_, "012345678a");
  EXPECT_EQ(as_.stats().out_of_window_segments, 1u);
}

TEST_F(StreamTest, ZeroWindowProbeNotMerged) {
  syn(0);
  as_.on_peer_ack(1, 0);
  auto r = seg(1, "x");
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(out_, "");
  as_.on_peer_ack(1, 100);
  seg(1, "y");
  EXPECT_EQ(out_, "y");
}

TEST_F(StreamTest, SequenceWrapAround) {
  syn(0xFFFFFFF0u);
  as_.on_peer_ack(0xFFFFFFF1u, 65535);
  const std::string a(20, 'a');
  seg(0xFFFFFFF1u, a);  // crosses 2^32
  seg(0x00000005u, "bc");
  seg(0x00000006u, "cd");  // overlap after the wrap
  EXPECT_EQ(out_, a + "bcd");
  EXPECT_EQ(as_.next_seq(), 0x00000008u);
  EXPECT_EQ(as_.next_offset(), 23u);
  EXPECT_EQ(as_.offset_of(0xFFFFFFF1u), 0u);
}

TEST_F(StreamTest, OutOfOrderAcrossWrap) {
  syn(0xFFFFFFFEu);  // data starts at 0xFFFFFFFF
  seg(0x00000001u, "cd");
  seg(0xFFFFFFFFu, "ab");
  EXPECT_EQ(out_, "abcd");
}

TEST_F(StreamTest, FinEndsAfterAllBytes) {
  syn(0);
  seg(4, "def", true);  // FIN arrives before the hole fills
  EXPECT_TRUE(ends_.empty());
  seg(1, "abc");
  ASSERT_EQ(ends_.size(), 1u);
  EXPECT_EQ(ends_[0], (std::pair<std::uint64_t, bool>{6, false}));
  EXPECT_EQ(as_.state(), StreamAssembler::State::closed);
  auto r = seg(7, "more");
  EXPECT_EQ(r.reason, Reason::out_of_window);
  EXPECT_EQ(out_, "abcdef");
}

TEST_F(StreamTest, RstNeedsExactSequence) {
  syn(0);
  seg(1, "abc");
  auto r = as_.on_segment(Segment{10, false, false, true, {}}, *this);
  EXPECT_FALSE(r.accepted);
  EXPECT_TRUE(ends_.empty());
  as_.on_segment(Segment{4, false, false, true, {}}, *this);
  ASSERT_EQ(ends_.size(), 1u);
  EXPECT_EQ(ends_[0], (std::pair<std::uint64_t, bool>{3, true}));
}

// A FIN, then the peer's late data draws an RST from this side (a TLS close_notify after the server
// closed): with the FIN's own sequence number (vsftpd, the FIN not yet acknowledged) or the one after
// it, the connection is reset (SegmentReport::reset_after_fin, once); on_end stays the FIN's. Another
// sequence number, or a second RST, changes nothing.
TEST_F(StreamTest, ExactRstAfterFinResets) {
  for (const std::uint32_t rst_seq : {4u, 5u}) {
    SCOPED_TRACE(rst_seq);
    as_ = StreamAssembler{};
    ends_.clear();
    out_.clear();
    expected_ = 0;
    syn(0);
    seg(1, "abc");
    as_.on_segment(Segment{4, false, true, false, {}}, *this);  // FIN at offset 3 (seq 4)
    ASSERT_EQ(ends_.size(), 1u);
    EXPECT_EQ(ends_[0], (std::pair<std::uint64_t, bool>{3, false}));
    EXPECT_FALSE(as_.on_segment(Segment{3, false, false, true, {}}, *this).reset_after_fin);  // before the FIN
    EXPECT_FALSE(as_.on_segment(Segment{9, false, false, true, {}}, *this).reset_after_fin);
    EXPECT_TRUE(as_.on_segment(Segment{rst_seq, false, false, true, {}}, *this).reset_after_fin);
    EXPECT_FALSE(as_.on_segment(Segment{rst_seq, false, false, true, {}}, *this).reset_after_fin);
    EXPECT_EQ(ends_.size(), 1u);  // the stream's end is reported once, with the FIN
  }
}

TEST_F(StreamTest, SynRetransmissionAndMismatch) {
  syn(50);
  EXPECT_EQ(syn(50).reason, Reason::none);
  auto r = syn(77);
  EXPECT_FALSE(r.accepted);
  EXPECT_EQ(r.reason, Reason::syn_mismatch);
}

TEST_F(StreamTest, SynWithData) {
  as_.on_segment(Segment{9, true, false, false, bytes_of("hi")}, *this);
  EXPECT_EQ(out_, "hi");
}

TEST_F(StreamTest, PickupRefusedWithoutHistory) {
  auto res = as_.allow_pickup(PickupHistory::unknown);
  ASSERT_FALSE(res.ok());
  EXPECT_NE(res.error().message.find("pickup_without_history"), std::string::npos);
  EXPECT_EQ(seg(77, "abc").reason, Reason::segment_before_syn);
}

TEST_F(StreamTest, PickupStartsAtFirstSegment) {
  ASSERT_TRUE(as_.allow_pickup(PickupHistory::no_corrections).ok());
  seg(5000, "ne\r\nPASV\r\n");
  EXPECT_TRUE(as_.picked_up());
  EXPECT_EQ(out_, "ne\r\nPASV\r\n");
  // Bytes from before the pick-up point are old.
  auto r = seg(4990, "0123456789");
  EXPECT_EQ(r.new_bytes, 0u);
  EXPECT_TRUE(as_.allow_pickup(PickupHistory::restored).ok());
}


// ---- rest (issue 13: an idle session's compact state) --------------------------------------------

TEST_F(StreamTest, RestOnlyWhenEveryDeliveredByteIsAcknowledged) {
  EXPECT_FALSE(as_.rest()) << "not started";
  syn(1000);
  ASSERT_TRUE(as_.rest()) << "started, nothing sent";
  seg(1001, "USER a\r\n");
  EXPECT_FALSE(as_.rest()) << "bytes the receiver has not acknowledged are retained";
  as_.on_peer_ack(1005, 65535);
  EXPECT_FALSE(as_.rest()) << "half acknowledged";
  as_.on_peer_ack(1009, 65535);
  EXPECT_TRUE(as_.rest());
  seg(1017, "later");
  EXPECT_FALSE(as_.rest()) << "out of order bytes wait";
  seg(1009, "PASS b\r\n");
  EXPECT_FALSE(as_.rest()) << "delivered, not acknowledged";
  as_.on_peer_ack(1022, 65535);
  EXPECT_TRUE(as_.rest()) << "hole filled: " << out_;
  EXPECT_EQ(out_, "USER a\r\nPASS b\r\nlater");
  seg(1022, "", true);
  EXPECT_FALSE(as_.rest()) << "ended";
}

TEST_F(StreamTest, RestedStreamGoesOnExactlyAsTheLiveOne) {
  syn(0xFFFFFFF0u);  // the numbering wraps after the rest
  seg(0xFFFFFFF1u, "220 hello\r\n");
  seg(0xFFFFFFF1u, "220 hello\r\n");  // a duplicate counted in the statistics
  as_.on_peer_ack(0xFFFFFFF1u + 11, 4096);
  const auto rest = as_.rest();
  ASSERT_TRUE(rest);
  StreamAssembler resumed(*rest);
  EXPECT_EQ(resumed.next_offset(), as_.next_offset());
  EXPECT_EQ(resumed.next_seq(), as_.next_seq());
  EXPECT_EQ(resumed.stats().duplicate_bytes, 11u);
  EXPECT_EQ(resumed.stats().delivered_bytes, 11u);
  // The same segments to both, one after the other: the same reports and the same bytes.
  struct Step { std::uint32_t seq; std::string bytes; bool fin; bool syn; };
  const std::vector<Step> steps = {
      {0xFFFFFFF0u, "", false, true},                 // the SYN again: same ISN, accepted
      {0xFFFFFFF0u + 30, "far", false, false},        // out of order
      {0xFFFFFFF0u + 12, "331 ok\r\n", false, false},
      {0xFFFFFFF0u + 12 + 4096, "x", false, false},   // past the window the peer gave
      {0xFFFFFFF0u + 1, "220 hellO\r\n", false, false},  // acknowledged before: not compared
      {0xFFFFFFF0u + 20, "0123456789", false, false},
      {0xFFFFFFF0u + 33, "", true, false},
  };
  std::string out_live, out_resumed;
  struct Collect : StreamSink {
    std::string& s;
    explicit Collect(std::string& x) : s(x) {}
    void on_data(std::uint64_t o, std::span<const std::uint8_t> b) override {
      s += std::to_string(o) + ":" + std::string(reinterpret_cast<const char*>(b.data()), b.size()) + ";";
    }
    void on_gap(std::uint64_t o, std::uint64_t l) override { s += "gap " + std::to_string(o) + "+" + std::to_string(l) + ";"; }
    void on_end(std::uint64_t o, bool r) override { s += "end " + std::to_string(o) + (r ? " reset;" : ";"); }
  } live_sink(out_live), resumed_sink(out_resumed);
  for (const auto& st : steps) {
    const Segment sg{st.seq, st.syn, st.fin, false, bytes_of(st.bytes)};
    const SegmentReport a = as_.on_segment(sg, live_sink);
    const SegmentReport b = resumed.on_segment(sg, resumed_sink);
    EXPECT_EQ(a.reason, b.reason) << st.bytes;
    EXPECT_EQ(a.accepted, b.accepted) << st.bytes;
    EXPECT_EQ(a.new_bytes, b.new_bytes) << st.bytes;
    EXPECT_EQ(a.duplicate_bytes, b.duplicate_bytes) << st.bytes;
    EXPECT_EQ(a.offset, b.offset) << st.bytes;
    EXPECT_EQ(as_.seq_in_window(st.seq + 5000), resumed.seq_in_window(st.seq + 5000));
  }
  EXPECT_EQ(out_resumed, out_live);
  EXPECT_NE(out_live.find("end "), std::string::npos) << out_live;
  EXPECT_EQ(resumed.stats().out_of_window_segments, as_.stats().out_of_window_segments);
  EXPECT_EQ(resumed.stats().delivered_bytes, as_.stats().delivered_bytes);
  EXPECT_EQ(resumed.state(), as_.state());
}

TEST_F(StreamTest, PickedUpStreamKeepsItsPickupAtRest) {
  ASSERT_TRUE(as_.allow_pickup(PickupHistory::no_corrections).ok());
  seg(5000, "230 in\r\n");
  as_.on_peer_ack(5008, 1000);
  const auto rest = as_.rest();
  ASSERT_TRUE(rest);
  StreamAssembler resumed(*rest);
  EXPECT_TRUE(resumed.picked_up());
  EXPECT_EQ(resumed.next_seq(), 5008u);
  EXPECT_FALSE(resumed.seq_in_window(5008 + 1001));
  EXPECT_TRUE(resumed.seq_in_window(5008 + 1000));
}

}  // namespace
}  // namespace ftpwall
