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
// Holding (issue 3 item 3, issue 8 item 9). The rewrite must replace a whole address, which may
// be spread over several packets, and no byte of an inside address may reach the peer. So in a
// direction where a rewrite is possible at all (client -> server when the client is behind NAT,
// server -> client when the server is), a data packet is held when
//   * it carries bytes of the current line's *rewrite region* and that region is not decided yet
//     (rewrite_region_start, rewrite.hpp): a 227's six fields from their first digit, a PORT/EPRT
//     argument (LPRT, 228 and 229 are never rewritten: not held); bytes before it pass, or
//   * it carries bytes the stream cannot deliver yet (out of order: they may belong to such a
//     region), or
//   * an earlier packet of the direction is held (packets of a direction leave in order; pure ACKs,
//     which carry no stream bytes, are not queued).
// The other direction is never held. A region is decided
//   * for a 227, once its address is complete (the comma after h4, pasv_address_prefix): the port is
//     not needed, a server's port never changes. The address is rewritten there (settle) and every
//     held packet released; the port and the rest pass unheld. The Session's rewrite of the whole
//     line must then agree (same address, same port) or its opening is dropped (correction_invalid);
//     a line the Policy refuses keeps its rewritten address (nothing private left) and opens nothing;
//   * for a masqueraded client's PORT/EPRT, when the line completes: the public port may move
//     ("port in use", PortChooser, decided by the Session), so the port belongs to the region.
// The opening is decided on the packet that completes the line, and without NAT that packet's
// verdict waits for the daemon to install it, so the peer never sees an announcement before its
// opening exists. Without NAT nothing is held.
//
// Bounds: the hold of a direction ends when its first packet has waited PolicyConfig::hold_timeout_ms
// (default limits::hold_timeout_ms, 3 s: parts written 2 s apart), when together they exceed
// limits::hold_bytes, or when the sender resends held bytes (tail loss probe, RTO: it waits for
// their ACK). Then (expire, Violation rewrite_split_timeout, action pass) the region's bytes seen so
// far are *withheld*: one correction replaces them by nothing, the held packets go out without them,
// the receiver acknowledges, and that ack maps back past them (seq_adjust.hpp: an ack at an emptied
// region maps to its end), so the sender sends the rest. When the region is decided, one correction
// starting where the withheld bytes end gives them back: rewritten, or as sent when no rewrite
// applies (refused, public address, no announcement after all, Telnet inside). Held packets whose
// bytes the stream has not delivered (past a hole) are released with drop set instead: they may
// carry an address not seen yet; the stream keeps them and their retransmission is judged again.
// When the withholding correction cannot be recorded, every held packet is dropped. The inside
// address never leaves. If the line never completes (gap, FIN), the withheld bytes stay withheld.
//
// Nagle (RFC 896). A sender with Nagle on that split an announcement sends its second segment only
// when the first is acknowledged; the receiver never sees the held first segment, so no ACK comes.
// On Linux the sender's tail loss probe (RFC 8985) after about 200 ms carries the waiting bytes if
// the application wrote them already (the line completes, one rewrite), or resends the first
// segment, which ends the hold as above. We chose withholding over acknowledging the held bytes
// ourselves: a forged ACK makes the firewall a TCP endpoint (it acknowledges bytes the receiver has
// not got, which are lost for good if the held packet is then lost) and needs forged timestamps and
// SACK; a withheld region's bytes stay in the correction history until they are given back, and
// every retransmission is corrected the same way. Releasing them unrewritten (before issue 8)
// leaked the inside address; dropping them deadlocks a Nagle sender.
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
  // Give this packet a drop verdict instead (its bytes lie past a hole when a hold ends: they may
  // carry an address not yet seen; the sender retransmits them).
  bool drop = false;
};

struct PacketOutcome {
  enum class Verdict : std::uint8_t { accept, hold };
  Verdict verdict = Verdict::accept;
  bool modified = false;            // accept: the packet must go out as `bytes`
  std::vector<std::uint8_t> bytes;  // the final packet when modified
  std::vector<Decision> decisions;
  std::vector<ReleasedPacket> released;  // earlier held packets, in their direction's order
  // Empty again, the vectors' capacity kept (an outcome reused packet after packet).
  void clear() {
    verdict = Verdict::accept;
    modified = false;
    bytes.clear();
    decisions.clear();
    released.clear();
  }
};

// Per session; 32-bit counters (statistics, never decisions; they wrap after 4 Gi events).
struct TrackerStats {
  std::uint32_t packets = 0;
  std::uint32_t bad_packets = 0;
  std::uint32_t held_packets = 0;
  std::uint32_t hold_expiries = 0;
  std::uint32_t rewrites = 0;
  std::uint32_t lines = 0;
  std::uint32_t urgent_clamped = 0;  // packets whose mapped urgent pointer did not fit (seq_adjust.hpp)
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
  // `line_start`: whether the first segment seen in each direction starts a line. Unknown (a
  // restart: a packet may be anywhere in a line) makes the framer skip to the next line end;
  // at_first_segment (a takeover from the HA label, ha_label.hpp) reads it as a line, as the
  // kernel's ftp helper does for an entry conntrackd restored (NF_CT_FTP_SEQ_PICKUP): the first
  // 227 after a failover must be rewritten, not passed as the tail of an unknown line. The
  // Session's round trip (session.hpp, mid_stream) still comes before any announcement counts.
  enum class LineStart : std::uint8_t { unknown, at_first_segment };
  static Result<Tracker> pick_up(const ConnTuples& tuples, const Policy& policy, PickupHistory history,
                                 SeqAdjust restored = {}, LineStart line_start = LineStart::unknown);

  // One packet of `dir`, starting at its IP header. The bytes may be modified in place (and are
  // then also copied into the outcome). `tag` identifies the packet when it is released later.
  PacketOutcome on_packet(Direction dir, std::span<std::uint8_t> packet, std::uint64_t now_ms,
                          std::uint64_t tag = 0);
  // The same into `out` (cleared first, its buffers reused: the daemon's packet path allocates no
  // outcome per packet).
  void on_packet(Direction dir, std::span<std::uint8_t> packet, std::uint64_t now_ms, std::uint64_t tag,
                 PacketOutcome& out);
  // Hold expiry: releases held packets whose time is up.
  PacketOutcome on_timer(std::uint64_t now_ms);
  // When on_timer must be called next (empty: nothing held).
  std::optional<std::uint64_t> next_deadline() const;

  // The daemon's public-port choice for client-NAT active announcements (session.hpp).
  void set_port_chooser(PortChooser chooser) { live().session.set_port_chooser(std::move(chooser)); }

  // session(), stream() and framer() bring a Tracker at rest back to life (see at_rest()).
  const Session& session() const { return live().session; }
  const SeqAdjust& corrections() const;  // serialize() for the state file
  const StreamAssembler& stream(Direction d) const { return live().dirs[idx(d)].stream; }
  const LineFramer& framer(Direction d) const { return live().dirs[idx(d)].framer; }
  bool holding(Direction d) const { return live_ && !live_->dirs[idx(d)].held.empty(); }
  bool hold_enabled(Direction d) const {
    return live_ ? live_->dirs[idx(d)].hold_enabled : (rest_.dirs[idx(d)].flags & DirRest::hold_enabled);
  }
  // Implicit FTPS (the connection came to an implicit port): TLS from the first byte of both
  // directions; the session reads nothing until a direction leaves TLS (Cleartext). Call before
  // the first data byte.
  void start_implicit_tls();
  // The bytes of `d` are TLS records now.
  bool in_tls(Direction d) const { return live_ && live_->dirs[idx(d)].tls; }
  // Bytes of the packets held now, both directions (the daemon's per-source bound).
  std::size_t held_bytes() const { return live_ ? live_->dirs[0].held_bytes + live_->dirs[1].held_bytes : 0; }
  bool ended() const { return ended_; }
  // Some direction is TLS now (Encrypted, no Cleartext since in both).
  bool encrypted() const { return encrypted_; }
  // At rest (issue 13): an idle session, greeted, no command outstanding, nothing held, every byte
  // both ways acknowledged, both directions between lines and in clear text. After a packet that
  // leaves it so, the Tracker keeps only a compact state (Session::Rest, StreamAssembler::Rest,
  // LineFramer::Rest: about 500 bytes instead of 1 400) and frees the rest; the next packet, or a
  // call of session(), stream() or framer(), brings it back, exactly as it was.
  bool at_rest() const { return !live_; }
  // Stay live after every packet (tests compare a Tracker that rests with one that never does).
  void never_rest() { never_rest_ = true; }
  const TrackerStats& stats() const { return stats_; }
  // Heap bytes owned now (held packets, buffers, correction history), for the memory budget.
  std::size_t heap_bytes() const;

 private:
  struct Held {
    std::uint64_t tag;
    std::uint64_t since_ms;
    bool in_stream;  // the stream took its bytes (not out of window)
    std::uint64_t end;  // stream offset after its last byte (0: none known)
    std::vector<std::uint8_t> bytes;
  };
  // A split announcement whose hold ended before its address was complete: the bytes of its
  // rewrite region seen so far went out withheld (a correction to nothing); they come back, as
  // sent or rewritten, in one correction when the region is settled.
  struct Deferred {
    bool active = false;
    std::uint64_t line = 0;    // stream offset of the line
    std::uint64_t region = 0;  // of the region's first byte
    std::uint64_t end = 0;     // after the last withheld byte
    std::string withheld;      // bytes [region, end)
    std::string after;         // bytes from end on, as delivered (bounded)
  };
  // The rewrite region of a 227 settled before its line completed (its address was complete).
  struct Settled {
    std::uint64_t line = 0;
    std::uint64_t region = 0;
    bool rewritten = false;  // old/new: the address and its comma, as recorded
    std::string old_text, new_text;
  };
  // TLS record framing of one direction after Encrypted (RFC 8446 5.1 / RFC 5246 6.2: a 5-byte
  // header, content type 20-24, version 3.x, length <= 2^14 + 2048). At a record boundary a byte
  // that is printable text instead of a content type ends the TLS layer (CCC): Cleartext.
  struct TlsRecords {
    std::uint64_t next = 0;       // stream offset of the next byte expected
    std::uint32_t remaining = 0;  // body bytes of the current record still to come
    std::uint8_t header[5]{};
    std::uint8_t have = 0;        // header bytes seen at the current boundary
    bool lost = false;            // framing lost (a gap, a malformed header): TLS to the end
    bool seen = false;            // one whole record header seen: the TLS layer started
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
    bool tls = false;  // the bytes are TLS records (Encrypted, no Cleartext yet)
    // What only a split announcement behind NAT or a TLS layer needs, out of line (issue 13: ~200
    // bytes per direction an idle session does not carry): allocated by rare(), read through
    // peek() (a shared empty one when there is none), freed by trim() once nothing is in it.
    struct Rare {
      Deferred deferred;
      std::optional<Settled> settled;
      TlsRecords records;
    };
    std::unique_ptr<Rare> rare_;
    Rare& rare() {
      if (!rare_) rare_ = std::make_unique<Rare>();
      return *rare_;
    }
    const Rare& peek() const {
      static const Rare none;
      return rare_ ? *rare_ : none;
    }
    void trim() {
      if (rare_ && !tls && !rare_->deferred.active && !rare_->settled) rare_.reset();
    }
  };
  class Pipe;  // StreamSink + LineSink glue for one packet
  // What an idle session needs to go on (at_rest()); everything else is freed.
  struct Live {
    Live(const ConnTuples& tuples, const Policy& policy, Session::Start start) : session(tuples, policy, start) {}
    Live(Session::Rest&& rest, const Policy& policy) : session(std::move(rest), policy) {}
    Session session;
    Dir dirs[2] = {Dir(Direction::client_to_server), Dir(Direction::server_to_client)};
    std::vector<std::uint8_t> scratch;
    std::vector<Decision> line_decisions;  // on_line(): the Session's decisions, capacity kept (issue 13)
  };
  struct DirRest {
    static constexpr std::uint8_t has_wscale = 1, syn_seen = 2, hold_enabled = 4, skipping = 8;
    StreamAssembler::Rest stream;
    std::uint64_t framer_next = 0, framer_skipped = 0, held_end = 0, out_end = 0;
    std::uint8_t wscale = 0;
    std::uint8_t flags = 0;
  };
  struct Rest {
    Session::Rest session;
    DirRest dirs[2];
  };
  Live& live() const {
    if (!live_) wake();
    return *live_;
  }
  void wake() const;
  void rest_if_idle();
  void packet(Direction dir, std::span<std::uint8_t> packet, std::uint64_t now_ms, std::uint64_t tag,
              PacketOutcome& out);
  void timer(std::uint64_t now_ms, PacketOutcome& out);

  Tracker(const ConnTuples& tuples, const Policy* policy, std::unique_ptr<Policy> owned, Session::Start start);
  static std::size_t idx(Direction d) { return static_cast<std::size_t>(d); }
  Dir& dir(Direction d) { return live().dirs[idx(d)]; }
  void on_line(Direction d, const Line& line, PacketOutcome& out);
  void start_tls();
  void stream_ended(Direction d, bool reset, PacketOutcome& out);
  // Bytes of a TLS direction: the offset where clear text starts, if it does within them.
  std::optional<std::uint64_t> tls_bytes(Direction d, std::uint64_t offset, std::span<const std::uint8_t> bytes);
  void leave_tls(Direction d, std::uint64_t offset, PacketOutcome& out);
  void record_rewrite(Direction d, Rewrite rw, std::vector<Decision>& out);  // by value: moved in when it can
  enum class Act : std::uint8_t { pass, policy, reset };
  void violation(Reason r, Direction d, std::uint64_t offset, std::span<const std::uint8_t> bytes, Act act,
                 std::vector<Decision>& out) const;
  void release_all(Direction d, PacketOutcome& out, bool drop_all = false);
  std::optional<std::uint64_t> open_region(Direction d) const;
  void settle(Direction d, PacketOutcome& out);
  bool record_deferred(Direction d, std::uint64_t region_end, std::string_view new_text, std::vector<Decision>& out);
  bool line_rewrite(Direction d, const Rewrite& rw, std::vector<Decision>& out);
  std::uint64_t hold_timeout() const;
  void expire(Direction d, PacketOutcome& out);
  void finish(PacketView& packet, Direction d, bool in_stream, PacketOutcome& out);
  bool release_due(Direction d) const;
  std::uint32_t scaled_window(Direction d, std::uint16_t raw) const;

  // The connection's tuples are the Session's (session_.tuples()): one copy, 80 bytes less per
  // tracked session (issue 13).
  std::unique_ptr<Policy> owned_policy_;
  const Policy* policy_;
  mutable std::unique_ptr<Live> live_;  // empty: at rest, rest_ holds the state
  mutable Rest rest_;
  std::unique_ptr<SeqAdjust> seq_;  // behind NAT only (or restored at a pick-up)
  bool encrypted_ = false;
  bool ended_ = false;
  bool picked_up_ = false;
  bool never_rest_ = false;
  TrackerStats stats_;
};

}  // namespace ftpwall
