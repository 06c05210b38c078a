// SPDX-License-Identifier: GPL-2.0-or-later
// StreamAssembler: the TCP segments of one direction of a session -> its in-order byte stream.
//
// Stream offsets are 64-bit and count payload bytes: offset 0 is the byte after the SYN (or, when
// picked up mid-stream, the first byte of the first segment seen). Sequence numbers are 32-bit and
// wrap (RFC 793 §3.3); every comparison is done on the signed 32-bit difference, so a stream that
// crosses 2^32 is handled like any other.
//
// What the receiver sees is the truth this class tries to follow. The daemon sees each packet before
// the admin's filter and before the receiver's TCP, so:
//  * a segment whose first byte lies at or past the receiver's right window edge (its last ack +
//    advertised window, RFC 793 §3.3 "segment acceptability") is ignored and reported
//    (Reason out_of_window), never merged: the receiver drops it too, and merging it would let a
//    forged or later-dropped segment desynchronise the stream;
//  * bytes seen twice (retransmission, overlapping segments, re-segmented retransmission) are
//    delivered once; the first copy wins. A later copy that differs from the first is reported
//    (Reason overlap_mismatch): receivers differ in which copy they keep (Linux replaces an
//    out-of-order segment that a later one covers whole), so the two views may have diverged.
//    Delivered bytes stay comparable until the peer acknowledges them (bounded by
//    limits::stream_retained_bytes); acknowledged bytes are never taken again by the receiver.
//  * out-of-order bytes wait in a buffer of limits::stream_reorder_bytes past the first missing
//    byte. Bytes beyond it are not kept (Reason reorder_overflow; a segment that starts beyond it is
//    ignored as a whole, accepted == false): they are taken when they come again. A segment far
//    ahead never ends the wait, or a blind in-window guess would make the real bytes that fill the
//    hole look old (they would be dropped unseen). A hole is given up only when it is really lost:
//    when the receiver acknowledges past it (it holds bytes this assembler never saw, and no
//    retransmission of them will come; a NIDS declares a content gap on the same "ack above hole").
//    Such an ack counts only up to the end of what the sender was seen to send (a TCP sender
//    ignores an ack of data it never sent, conntrack calls it INVALID). Then what was buffered
//    before the ack point is delivered, the holes are reported as gaps (StreamSink::on_gap, Reason
//    stream_gap) and the consumer resynchronises at the next line start. Until the receiver's ack
//    is known at all (on_peer_ack never called) a segment that does not fit ends the wait at once,
//    as the only bound left.
//  * RST ends the stream only with the exact next sequence number (RFC 5961 §3.2); FIN ends it once
//    every byte before it has been delivered. A FIN is checked against the receiver's window like
//    data: one past the right edge is ignored (out_of_window); a bare FIN exactly at the edge is
//    taken (Linux takes a bare FIN at rcv_nxt even with a zero window, and the edge is rcv_nxt once
//    the sender filled the window).
//
// Pure code: no allocation on the in-order path with an empty reorder buffer other than the
// retained bytes; the reorder buffer is allocated on first use and freed when it drains.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "ftpwall/core/reason.hpp"
#include "ftpwall/core/result.hpp"

namespace ftpwall {

// One TCP segment of the direction the assembler follows, as it arrived (sender's sequence space).
struct Segment {
  std::uint32_t seq = 0;
  bool syn = false;
  bool fin = false;
  bool rst = false;
  std::span<const std::uint8_t> payload;
};

// Where the assembler's output goes. Calls arrive in stream order.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // In-order bytes starting at `offset`, each delivered exactly once.
  virtual void on_data(std::uint64_t offset, std::span<const std::uint8_t> bytes) = 0;
  // Bytes [offset, offset + length) will never be delivered (reorder buffer overflow).
  virtual void on_gap(std::uint64_t offset, std::uint64_t length) = 0;
  // The stream ended at `offset`: by FIN (reset == false) or an accepted RST. At most once.
  virtual void on_end(std::uint64_t offset, bool reset) = 0;
};

// What one segment did. `reason` is the first problem found (none when the segment was clean).
struct SegmentReport {
  Reason reason = Reason::none;
  bool accepted = true;              // false: ignored as a whole (out of window, bad SYN, ...)
  std::uint32_t new_bytes = 0;       // payload bytes seen for the first time
  std::uint32_t duplicate_bytes = 0; // payload bytes seen before (retransmission, overlap)
  std::optional<std::uint64_t> offset;  // stream offset of the first payload byte, once known
  // An accepted RST after this direction's FIN (on_end came with the FIN): the connection is
  // reset, though this direction's stream had already ended.
  bool reset_after_fin = false;
};

// Per stream, so per session twice: 32-bit counters (they wrap after 4 Gi events; they are
// statistics, never decisions), 64-bit only for the bytes (issue 13: 32 bytes less per session).
struct StreamStats {
  std::uint64_t delivered_bytes = 0;
  std::uint32_t duplicate_bytes = 0;
  std::uint32_t out_of_window_segments = 0;
  std::uint32_t overlap_mismatches = 0;
  std::uint32_t gaps = 0;
  std::uint32_t gap_bytes = 0;
  std::uint32_t ignored_rsts = 0;
  std::uint32_t reorder_overflows = 0;  // segments with bytes beyond the reorder buffer (not kept)
};

// Whether a connection picked up mid-stream may carry corrections (sequence shifts of earlier
// rewrites). The assembler itself works in the sender's sequence space; the question decides
// whether the session may be followed at all: corrections cannot be rebuilt from the wire.
enum class PickupHistory : std::uint8_t {
  no_corrections,  // known to have none (no rewrite was ever made: conntrack has no seqadj)
  restored,        // the daemon restored the saved correction history
  unknown,         // may have corrections, history lost: refuse (Reason pickup_without_history)
};

class StreamAssembler {
 public:
  enum class State : std::uint8_t { fresh, open, closed };

  StreamAssembler();
  ~StreamAssembler();
  StreamAssembler(StreamAssembler&&) noexcept;
  StreamAssembler& operator=(StreamAssembler&&) noexcept;

  // Allow the stream to start at the first segment seen without a SYN (daemon restart). The
  // consumer resynchronises at the next line start (LineFramer::resync). Refuses `unknown`.
  Result<void> allow_pickup(PickupHistory history);

  // The receiver's (peer's) last acknowledgement and advertised window in bytes (already scaled by
  // the window scale of RFC 7323 §2). Until the first call no window check is made, but the
  // reorder buffer bound still holds.
  void on_peer_ack(std::uint32_t ack, std::uint32_t window);
  // Whether a segment starting at `seq` and carrying nothing (a pure ACK) is acceptable to the
  // receiver: not past its right window edge (RFC 793 §3.3; Linux tcp_sequence drops it before
  // reading its ack). True until the window is known.
  bool seq_in_window(std::uint32_t seq) const;

  SegmentReport on_segment(const Segment& seg, StreamSink& sink);

  State state() const { return state_; }
  bool picked_up() const { return picked_up_; }
  // Next offset to deliver, and its sequence number (valid once state() != fresh).
  std::uint64_t next_offset() const { return next_off_; }
  std::uint32_t next_seq() const { return seq_of(next_off_); }
  std::uint32_t seq_of(std::uint64_t offset) const { return base_seq_ + static_cast<std::uint32_t>(offset); }
  // Stream offset of a sequence number near the current position (signed 32-bit distance); empty
  // before the stream starts or when it would lie before offset 0.
  std::optional<std::uint64_t> offset_of(std::uint32_t seq) const;
  // Bytes held on the heap now (reorder buffer + retained bytes), for the memory budget.
  std::size_t heap_bytes() const;
  std::size_t buffered_bytes() const;  // out-of-order bytes waiting
  const StreamStats& stats() const { return stats_; }

  // A stream at rest (issue 13: the compact state of an idle session, tracker.hpp): started and not
  // ended (no FIN or RST seen), every delivered byte acknowledged (nothing retained), nothing out of
  // order, no accepted byte beyond the next offset. Then what is left fits in a Rest, and
  // StreamAssembler(rest) goes on exactly as this one would.
  struct Rest {
    std::uint64_t next_off = 0;
    std::uint32_t base_seq = 0, peer_ack = 0, peer_window = 0, isn = 0;
    StreamStats stats;
    State state = State::fresh;
    std::uint8_t flags = 0;  // rest_* below
  };
  std::optional<Rest> rest() const;
  explicit StreamAssembler(const Rest& rest);

 private:
  struct Reorder;
  static constexpr std::uint8_t rest_pickup_allowed = 1, rest_picked_up = 2, rest_peer_known = 4, rest_isn = 8;

  void start(std::uint32_t base_seq);
  void deliver(std::uint64_t offset, std::span<const std::uint8_t> bytes, StreamSink& sink);
  void compare_retained(std::uint64_t offset, std::span<const std::uint8_t> bytes, SegmentReport& r);
  void take_payload(std::uint64_t offset, std::span<const std::uint8_t> bytes, SegmentReport& r, StreamSink& sink);
  void write_reorder(std::uint64_t offset, std::span<const std::uint8_t> bytes, SegmentReport& r);
  void drain(StreamSink& sink);
  void jump_to(std::uint64_t offset, SegmentReport& r, StreamSink& sink);
  void settle_acked_hole(std::uint64_t seen_end, SegmentReport& r, StreamSink& sink);
  void trim_retained();
  void check_end(StreamSink& sink);
  static void note(SegmentReport& r, Reason reason);

  State state_ = State::fresh;
  bool pickup_allowed_ = false;
  bool picked_up_ = false;
  bool peer_known_ = false;
  std::uint32_t base_seq_ = 0;  // sequence number of offset 0
  std::uint32_t peer_ack_ = 0;
  std::uint32_t peer_window_ = 0;
  std::uint64_t next_off_ = 0;
  std::uint64_t seen_end_ = 0;  // end offset of the furthest byte of an accepted segment
  std::optional<std::uint32_t> isn_;
  std::optional<std::uint64_t> fin_off_;
  bool reset_seen_ = false;  // ended by an accepted RST (after a FIN too)
  std::uint64_t retained_off_ = 0;  // retained_ holds [retained_off_, next_off_)
  std::string retained_;
  std::unique_ptr<Reorder> reorder_;
  StreamStats stats_;
};

}  // namespace ftpwall
