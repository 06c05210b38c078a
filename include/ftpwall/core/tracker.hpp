// SPDX-License-Identifier: GPL-2.0-or-later
// Tracker: the one façade the daemon calls, per packet of one session (MODELS item 3).
//
//   packet bytes -> PacketView -> StreamAssembler (per direction) -> LineFramer -> Session
//     -> decisions (OpenData, Rewrite, Violation, CloseData, Encrypted, SessionEnd)
//     -> corrections recorded in SeqAdjust -> the packet (and earlier held ones) transformed
//
// Usage in the daemon (one Tracker per control connection; time is a monotonic millisecond count):
//   Tracker t(tuples, policy);
//   PacketOutcome o = t.on_packet(Direction::client_to_server, nfq_payload, now_ms, nfq_packet_id);
//   act on o.decisions (install/remove openings, log, reset);
//   o.verdict == accept: NF_ACCEPT (with o.bytes when o.modified); hold: no verdict yet;
//   for each o.released: NF_ACCEPT that packet (by its tag) with its bytes;
//   when t.next_deadline() passes: t.on_timer(now_ms) and act on its outcome the same way.
//
// Holding (issue 3 item 3). The Session decides an announcement only once its line is complete, but
// the rewrite must replace the whole address, which may be spread over several packets. So in a
// direction where a rewrite is possible at all (client -> server when the client is behind NAT,
// server -> client when the server is), a data packet is held when
//   * it carries bytes of a line that is not complete and may still be an announcement from that
//     side (LineFramer::partial_may_be_announcement: a keyword or its prefix, within
//     limits::max_announcement_line), or
//   * it carries bytes the stream cannot deliver yet (out of order: they may belong to such a line),
//     or
//   * an earlier packet of the direction is held (packets of a direction leave in order; pure ACKs,
//     which carry no stream bytes, are not queued).
// The other direction is never held. When the line completes, the Session's Rewrite becomes a
// correction (SeqAdjust::record) and every held packet is released transformed by SeqAdjust (each
// carries the whole rewritten region, see seq_adjust.hpp). Without NAT nothing is held: the opening
// is decided on the packet that completes the line, and that packet's verdict waits for the daemon to
// install it, so the peer never sees an announcement before its opening exists.
//
// Bounds: the held packets of a direction are released unrewritten, with a Violation
// rewrite_split_timeout (action pass), when the first of them has waited limits::hold_timeout_ms or
// when together they exceed limits::hold_bytes. If the line completes later it still goes through
// the Session and the Policy: its OpenData is emitted exactly as if it had been rewritten (the
// public/as-seen destination, DNAT to the inside endpoint; issue 5), but no Rewrite and no
// correction, since the peer already has the region's original bytes. The peer read the inside
// address; clients that replace an unusable 227 address by the control connection's (curl's
// default, lftp's ftp:fix-pasv-address) still connect through the opening. The same holds for any
// rewrite whose region already went out (Dir::out_end), whatever released it.
//
// Nagle (RFC 896). A sender with Nagle on that split an announcement sends its second segment only
// when the first is acknowledged; the receiver never sees the held first segment, so no ACK comes.
// On Linux the sender's tail loss probe (RFC 8985) resends after about 200 ms, and a TLP may carry
// the waiting bytes too, so the line often completes inside the 300 ms hold (measured 215 ms in
// tests/netns/314-nat-split-227). When it does not, the hold ends by the timeout, the announcement goes out
// unrewritten, the opening for the public address is still installed, and that data connection
// works only for clients that ignore the announced address (they retry or fall back). We chose
// this over acknowledging the held bytes ourselves: a forged ACK makes the firewall a TCP endpoint
// (it acknowledges bytes the receiver has not got, which are lost for good if the held packet is
// then lost), and it needs forged timestamps/SACK options. Real clients write a command in one
// send(), so a split announcement needs a tiny MSS or a deliberate split; the test
// TrackerTest.NagleSplitReleasedByTimeout pins this behaviour.
//
// Violations from the stream: out_of_window, reorder_overflow, syn_mismatch and segment_before_syn
// are reported with action pass (a stray or forged segment must not let a third party reset the
// session), and a segment the receiver would drop (all but reorder_overflow, which is in its window)
// gives no window scale, ack or window either;
// overlap_mismatch, stream_gap, line_too_long, telnet_in_announcement, correction_* with the policy's
// action (correction_history_full and correction_mismatch always reset: the stream is no longer the
// one either peer sent). A line the framer flags (too long, Telnet inside) still goes to the Session
// for pairing, but its OpenData and Rewrite are dropped and replaced by the framer's Violation. An
// incomplete line (stream gap or end) does not reach the Session. After Encrypted, lines are no
// longer read; corrections keep being applied until the connection ends.
//
// CloseData may name an opening the daemon never got (its OpenData was dropped with a violation, or
// the daemon failed to install it): decision.hpp says to ignore unknown ids.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/decision.hpp"
#include "ftpwall/core/line_framer.hpp"
#include "ftpwall/core/policy.hpp"
#include "ftpwall/core/result.hpp"
#include "ftpwall/core/seq_adjust.hpp"
#include "ftpwall/core/session.hpp"
#include "ftpwall/core/stream.hpp"

namespace ftpwall {

// A packet held earlier, now released with its final bytes (corrections applied).
struct ReleasedPacket {
  std::uint64_t tag = 0;           // the tag given to on_packet (the daemon's NFQUEUE packet id)
  Direction direction = Direction::client_to_server;
  std::vector<std::uint8_t> bytes;
};

struct PacketOutcome {
  enum class Verdict : std::uint8_t { accept, hold };
  Verdict verdict = Verdict::accept;
  bool modified = false;            // accept: the packet must go out as `bytes`
  std::vector<std::uint8_t> bytes;  // the final packet when modified
  std::vector<Decision> decisions;
  std::vector<ReleasedPacket> released;  // earlier held packets, in their direction's order
};

struct TrackerStats {
  std::uint64_t packets = 0;
  std::uint64_t bad_packets = 0;
  std::uint64_t held_packets = 0;
  std::uint64_t hold_expiries = 0;
  std::uint64_t rewrites = 0;
  std::uint64_t lines = 0;
  std::uint64_t urgent_clamped = 0;  // packets whose mapped urgent pointer did not fit (seq_adjust.hpp)
};

class Tracker {
 public:
  // A session seen from its SYN. The first constructor borrows `policy` (the daemon's, one for all
  // sessions; it must outlive the Tracker); the second owns a Policy built from `config`.
  Tracker(const ConnTuples& tuples, const Policy& policy);
  Tracker(const ConnTuples& tuples, PolicyConfig config);
  Tracker(Tracker&&) noexcept;
  Tracker& operator=(Tracker&&) noexcept;
  ~Tracker();

  // A session picked up mid-stream (daemon restart, no SYN seen). `history` says what is known of
  // its corrections; `restored` is the saved correction history (SeqAdjust::parse) when
  // history == restored. Refused with pickup_without_history when history == unknown: a session
  // with corrections cannot be rebuilt from the wire, and guessing would corrupt it.
  static Result<Tracker> pick_up(const ConnTuples& tuples, const Policy& policy, PickupHistory history,
                                 SeqAdjust restored = {});

  // One packet of `dir`, starting at its IP header. The bytes may be modified in place (and are
  // then also copied into the outcome). `tag` identifies the packet when it is released later.
  PacketOutcome on_packet(Direction dir, std::span<std::uint8_t> packet, std::uint64_t now_ms,
                          std::uint64_t tag = 0);
  // Hold expiry: releases held packets whose time is up.
  PacketOutcome on_timer(std::uint64_t now_ms);
  // When on_timer must be called next (empty: nothing held).
  std::optional<std::uint64_t> next_deadline() const;

  // The daemon's public-port choice for client-NAT active announcements (session.hpp).
  void set_port_chooser(PortChooser chooser) { session_.set_port_chooser(std::move(chooser)); }

  const Session& session() const { return session_; }
  const SeqAdjust& corrections() const { return seq_; }  // serialize() for the state file
  const StreamAssembler& stream(Direction d) const { return dirs_[idx(d)].stream; }
  const LineFramer& framer(Direction d) const { return dirs_[idx(d)].framer; }
  bool holding(Direction d) const { return !dirs_[idx(d)].held.empty(); }
  bool hold_enabled(Direction d) const { return dirs_[idx(d)].hold_enabled; }
  // Bytes of the packets held now, both directions (the daemon's per-source bound).
  std::size_t held_bytes() const { return dirs_[0].held_bytes + dirs_[1].held_bytes; }
  bool ended() const { return ended_; }
  const TrackerStats& stats() const { return stats_; }
  // Heap bytes owned now (held packets, buffers, correction history), for the memory budget.
  std::size_t heap_bytes() const;

 private:
  struct Held {
    std::uint64_t tag;
    std::uint64_t since_ms;
    bool in_stream;  // the stream took its bytes (not out of window)
    std::vector<std::uint8_t> bytes;
  };
  struct Dir {
    explicit Dir(Direction d) : framer(d) {}
    StreamAssembler stream;
    LineFramer framer;
    std::vector<Held> held;  // few and short-lived: a vector, released all at once
    std::size_t held_bytes = 0;
    std::uint64_t held_end = 0;           // stream offset after the last byte a held packet carries
    std::uint64_t out_end = 0;            // stream offset after the last byte that went out (accepted/released)
    std::optional<std::uint8_t> wscale;   // window scale the sender announced in its SYN
    bool syn_seen = false;
    bool ended = false;
    bool hold_enabled = false;
  };
  class Pipe;  // StreamSink + LineSink glue for one packet

  Tracker(const ConnTuples& tuples, const Policy* policy, std::unique_ptr<Policy> owned, Session::Start start);
  static std::size_t idx(Direction d) { return static_cast<std::size_t>(d); }
  Dir& dir(Direction d) { return dirs_[idx(d)]; }
  void on_line(Direction d, const Line& line, PacketOutcome& out);
  void record_rewrite(Direction d, const Rewrite& rw, std::vector<Decision>& out);
  enum class Act : std::uint8_t { pass, policy, reset };
  void violation(Reason r, Direction d, std::uint64_t offset, std::span<const std::uint8_t> bytes, Act act,
                 std::vector<Decision>& out) const;
  void release_all(Direction d, PacketOutcome& out);
  void expire(Direction d, PacketOutcome& out);
  void finish(PacketView& packet, Direction d, bool in_stream, PacketOutcome& out);
  bool release_due(Direction d) const;
  std::uint32_t scaled_window(Direction d, std::uint16_t raw) const;

  ConnTuples tuples_;
  std::unique_ptr<Policy> owned_policy_;
  const Policy* policy_;
  Session session_;
  SeqAdjust seq_;
  Dir dirs_[2] = {Dir(Direction::client_to_server), Dir(Direction::server_to_client)};
  std::vector<std::uint8_t> scratch_;
  bool encrypted_ = false;
  bool ended_ = false;
  bool picked_up_ = false;
  TrackerStats stats_;
};

}  // namespace ftpwall
