// SPDX-License-Identifier: GPL-2.0-or-later
// SeqAdjust: the correction history of one session, per direction, and what it does to packets.
//
// A rewrite is recorded as {pos, old bytes, new bytes}: pos is the *original* sequence number (the
// sender's own numbering) of the first replaced byte. Its length change is the correction. From the
// history the receiver's view of every later packet follows, and, unlike the kernel's seqadj (one
// correction point per direction, nf_conntrack_seqadj.c), so does its view of every *earlier*
// sequence number: retransmissions get exactly the offset their bytes had the first time.
//
// Rules (O = the sender's numbering, T = what the receiver sees):
//   * Bytes outside every rewritten region keep their content; their T = O + the sum of the length
//     changes of all regions before them.
//   * A region whose length changed is atomic. A segment that covers any byte of it carries the
//     whole new region: a segment that starts inside it is widened back to the region's start, one
//     that ends inside it is widened to its end. So a retransmission is rewritten identically however
//     the sender collapses or re-segments it, and each of several held packets that carried parts of
//     an announcement becomes a valid packet on its own; the receiver drops the octets it already has
//     (RFC 9293 §3.10.7.4). The cost: a widened packet is up to one new region longer (a control
//     connection's segments are small; refused with packet_too_large at 65535).
//   * Path MTU / MSS (issue 5: "handled or documented"; documented). A segment can grow by a
//     rewrite's length change, and a widened one by up to one whole new region, so by at most
//     limits::max_correction_bytes (in practice a few bytes: "10,0,0,5" -> "203,0,113,1" is +3; a
//     whole "|1|10.0.0.5|40123|" region is < 60). A full-sized segment (MSS bytes) then exceeds the
//     peer's MSS and may exceed the path MTU. The core does not split packets: they go out as they
//     are, and on the wire (i) with DF set (Linux always sets it on TCP), a router on a smaller
//     link drops the packet and sends ICMP "fragmentation needed", which reaches the sender, whose
//     kernel lowers its path MTU and retransmits smaller segments, which are rewritten identically
//     (the rules above) and fit; (ii) a receiver accepts a segment above its announced MSS (Linux
//     and the BSDs do not enforce MSS on receive). Control connections rarely send full segments
//     (announcement lines are < 100 bytes, sent alone), so this only bites when an announcement
//     shares a segment with a near-MSS burst of pipelined commands. The daemon may clamp the MSS of
//     control connections behind NAT by a few bytes (TCPMSS --set-mss) to rule it out entirely.
//   * A region of unchanged length is replaced octet for octet, never widened.
//   * Acknowledgements (and SACK edges) map back from T to O. An ack that falls inside a new region
//     whose length changed maps to the region's start (the sender retransmits the whole region); a
//     SACK left edge inside one maps to the region's end (claim only what was received), so a block
//     may become empty (left == right), which receivers ignore (Linux tcp_is_sackblock_valid).
//   * The urgent pointer (RFC 9293 §3.8.5: an offset from the segment's seq) is mapped as an
//     absolute sequence number; one that points inside a changed region maps to its end. A mapped
//     offset that no longer fits 16 bits (a pointer near 65535 behind a region that grew) is set
//     to 65535 and reported (ApplyOutcome::urgent_clamped): the receiver then ends urgent mode a
//     little early, which for FTP's IAC DM (Telnet Synch) means it may read the DM as ordinary data.
//   * Octets of a segment inside a rewritten region that differ from the recorded old bytes are not
//     mixed into the output: the output carries the recorded new bytes and `violation` is set
//     (Reason correction_mismatch); the caller applies its policy (pass or reset).
//
// Bounded history (limits::max_corrections_per_direction): a correction whose whole old region the
// peer has acknowledged (ack seen by apply(), or note_ack()) collapses into the direction's base
// offset: the receiver already holds those bytes, and a retransmission of bytes before a collapsed
// region is mapped with the base offset, which places it entirely before what the receiver has
// acknowledged, where it is discarded whatever its content. Acks further than the sender has sent
// are not trusted for collapsing. When the bound is still reached, record() refuses with
// correction_history_full: the daemon resets the session; an offset is never dropped silently.
//
// All sequence arithmetic is modulo 2^32 (tcp_seq.hpp); regions may straddle the wrap.
//
// Use from the Tracker, per packet of the session, in order:
//   seq.record(dir, pos, old, new)        when a rewrite is decided (before the packet goes out)
//   seq.apply(view, dir, out_buffer)      for every packet of either direction; sends view.bytes()
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/containers.hpp"
#include "ftpwall/core/packet.hpp"
#include "ftpwall/core/result.hpp"

namespace ftpwall {

// One rewrite of one direction's byte stream.
// Inline up to 24 bytes: an address with its port ("203,0,113,1,195,80") never allocates.
using CorrectionBytes = SmallBytes<24>;

struct Correction {
  std::uint32_t pos = 0;                   // original sequence number of the first replaced byte
  CorrectionBytes old_bytes;               // what the sender sent (non-empty)
  CorrectionBytes new_bytes;               // what the receiver sees instead (may be empty)
  std::uint32_t offset_before = 0;         // T - O for bytes just before pos (derived, mod 2^32)

  std::uint32_t end() const { return pos + static_cast<std::uint32_t>(old_bytes.size()); }
  std::uint32_t delta() const {
    return static_cast<std::uint32_t>(new_bytes.size()) - static_cast<std::uint32_t>(old_bytes.size());
  }
  std::uint32_t offset_after() const { return offset_before + delta(); }
  bool same_length() const { return old_bytes.size() == new_bytes.size(); }
};

// What the receiver must see for one segment.
struct SegmentTransform {
  std::uint32_t seq = 0;
  std::vector<std::uint8_t> payload;
  bool violation = false;  // octets inside a rewritten region differed from the recorded old bytes
};

struct ApplyOutcome {
  bool moved = false;      // the packet now lives in out_buffer (its length changed)
  bool changed = false;    // at least one byte of the packet changed
  bool violation = false;  // see SegmentTransform::violation (Reason correction_mismatch)
  bool urgent_clamped = false;  // the mapped urgent pointer did not fit 16 bits: set to 0 or 65535
};

class SeqAdjust {
 public:
  // Records a rewrite of direction `dir`: the bytes [pos, pos + old.size()) in the sender's
  // numbering become `new_bytes`. Rewrites of one direction must come in stream order without
  // overlap and must not start before what the peer has acknowledged. A rewrite that changes
  // nothing is accepted and not stored. Errors: correction_history_full, correction_invalid.
  Result<void> record(Direction dir, std::uint32_t pos, std::span<const std::uint8_t> old_bytes,
                      std::span<const std::uint8_t> new_bytes);

  // The sequence number the receiver must see for original sequence number `seq` of `dir`
  // (inside a changed region: the region's start).
  std::uint32_t map_seq(Direction dir, std::uint32_t seq) const;
  // The original sequence number of `dir` for an acknowledgement number `ack` that the peer sent
  // (it travels in the other direction). map_ack(d, map_seq(d, s)) == s outside changed regions.
  std::uint32_t map_ack(Direction dir, std::uint32_t ack) const;

  // The segment the receiver must see for a segment of `dir` starting at original `seq`.
  SegmentTransform transform_segment(Direction dir, std::uint32_t seq, std::span<const std::uint8_t> payload) const;

  // The whole packet of direction `dir`: seq and payload by dir's history, ack and SACK blocks by
  // the other direction's, urgent pointer, checksums kept right (incrementally; a bad checksum stays
  // bad). When the payload length is unchanged the packet is changed in place; otherwise it is
  // written into out_buffer and `pkt` is re-pointed to it (moved). The ack collapses the other
  // direction's acknowledged corrections. Errors: packet_fragment (a fragment would be rewritten),
  // packet_too_large.
  Result<ApplyOutcome> apply(PacketView& pkt, Direction dir, std::vector<std::uint8_t>& out_buffer);

  // The peer acknowledged `dir` up to original sequence number `ack`: collapse what it covers.
  void note_ack(Direction dir, std::uint32_t ack);
  // The sender of `dir` has sent up to original sequence number `end` (apply() and record() note
  // this themselves); acks beyond it are not trusted for collapsing.
  void note_sent(Direction dir, std::uint32_t end);

  // No correction at all in either direction: packets pass unchanged; a pick-up is safe.
  bool empty() const;
  std::size_t corrections(Direction dir) const { return dirs_[idx(dir)].list.size(); }
  std::uint32_t base_offset(Direction dir) const { return dirs_[idx(dir)].base; }
  // The corrections of `dir` not yet collapsed, in stream order (the HA label, ha_label.hpp).
  const std::vector<Correction>& history(Direction dir) const { return dirs_[idx(dir)].list; }

  // Versioned text form for the daemon's state file; parse(serialize()) reproduces the history.
  //   ftpwall-seqadj 1
  //   dir c2s base 0 acked - sent 1000 n 1
  //   corr 900 504f5254 504f5254...      (pos, old bytes hex, new bytes hex; "-" for empty)
  //   dir s2c base 4294967294 acked 77 sent 77 n 0
  std::string serialize() const;
  void serialize_to(std::string& out) const;  // the same text, appended
  static Result<SeqAdjust> parse(std::string_view text);

  bool operator==(const SeqAdjust&) const;

 private:
  struct DirHistory {
    std::uint32_t base = 0;  // T - O for everything before list.front() (collapsed corrections)
    bool acked_known = false, sent_known = false;
    std::uint32_t acked = 0;     // highest original seq of this direction the peer acknowledged
    std::uint32_t sent_end = 0;  // highest original seq end the sender has sent
    std::vector<Correction> list;  // in stream order, non-overlapping
  };
  static std::size_t idx(Direction d) { return static_cast<std::size_t>(d); }
  enum class Round { down, up };
  static std::uint32_t map_seq_in(const DirHistory& h, std::uint32_t seq, Round r);
  static std::uint32_t map_ack_in(const DirHistory& h, std::uint32_t ack, Round r);
  // Writes the receiver's segment; returns false when no rewritten region overlaps (out untouched).
  static bool transform_in(const DirHistory& h, std::uint32_t seq, std::span<const std::uint8_t> payload,
                           SegmentTransform& out);
  void collapse(DirHistory& h);

  DirHistory dirs_[2];
};

}  // namespace ftpwall
