// SPDX-License-Identifier: GPL-2.0-or-later
// `ftpwall replay` (issue 12): what ftpwalld would decide, from a packet capture. Pure: IP packets
// (or link-layer frames, capture_decode.hpp) with their capture time in, events out; no I/O, so the
// unit tests and the fuzz target drive it directly. The decisions are the daemon's own: the same
// Tracker, Session and Policy (include/ftpwall/core), fed both directions of every control
// connection. What the daemon takes from outside the packets is decided here from the capture:
//
//   * A session starts at a client's SYN (no ACK) to a control port, keyed client -> server as that
//     SYN shows it (conntrack's original direction); a packet's direction is the key's orientation,
//     never its ports. Until the connection answers, the session is half-open, as in the daemon.
//   * A connection whose SYN is not in the capture is picked up as the daemon picks up a connection
//     that existed when it started: client = the side whose port is not a control port (the packet
//     to a control port travels client -> server), Tracker::pick_up with
//     PickupHistory::no_corrections (replay assumes no NAT, so no rewrite ever happened), and the
//     Session waits for one whole command/reply round trip (pickup_unsynchronised). Every event of
//     such a session says pickup. A FIN or RST does not start a pick-up (the daemon's rule).
//   * No NAT: a capture on one link cannot show conntrack's other tuple, so every session is
//     ConnTuples::without_nat (addresses as the capture shows them). Behind NAT, capture on the
//     side of the host whose view you want to check.
//     `tcpdump -i any` on a gateway without NAT sees every forwarded packet twice (in, out): the
//     second copy is a retransmission to the Tracker and changes nothing; with NAT its copies are
//     two connections, so capture one interface there (man ftpwall(8) REPLAY).
//   * A stream_gap (bytes the receiver acknowledged, never in the capture) is the capture's loss:
//     counted in Summary::missed_bytes, and ftpwall replay warns.
//   * A SYN on a live session's 4-tuple with another initial sequence number replaces the session
//     only when its connection has ended on the wire (FIN both ways or RST); otherwise it is the
//     anomaly syn_mismatch and changes nothing (the daemon also asks conntrack).
//   * Not modelled: the daemon's caps (openings.max_*, half-open eviction and timeout), the
//     one-shot arbitration of data SYNs, opening lifetimes. ftpwalld itself tracks IPv4 only for
//     now; replay reads IPv6 too.
//
// Event order is capture order; within one packet: each announcement line, then the decision it
// caused (opening or refusal), then the other decisions of that packet in the Tracker's order.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cli/capture_decode.hpp"
#include "ftpwall/core/addr.hpp"
#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/decision.hpp"
#include "ftpwall/core/ftp_wire.hpp"
#include "ftpwall/core/policy.hpp"

namespace ftpwall::cli::replay {

struct Options {
  PolicyConfig policy;
  std::vector<std::uint16_t> control_ports{21};
};

enum class EventKind : std::uint8_t {
  session,       // a session started (its SYN, or its first packet when picked up)
  announcement,  // a complete announcing line (PORT, EPRT, LPRT, 227, 228, 229)
  opening,       // the daemon would install an opening
  refused,       // a line refused (reason)
  closed,        // an opening closed (transfer_done, opening_replaced, data_command_refused, ...)
  encrypted,     // 234 to AUTH: the rest of the session is TLS
  anomaly,       // stream or packet trouble (stream_gap, overlap_mismatch, out_of_window, ...)
  session_end,   // 221/421, FIN both ways, RST, or end_of_capture
};
std::string_view name(EventKind k);

struct Event {
  EventKind kind = EventKind::session;
  std::uint64_t time_ns = 0;  // capture time, nanoseconds since the epoch
  std::uint64_t packet = 0;   // frame number in its capture file, from 1 (as Wireshark counts)
  std::uint32_t session = 0;  // 1, 2, ... in the order sessions start
  bool pickup = false;        // the session was picked up mid-stream
  Endpoint client;
  Endpoint server;
  Direction direction = Direction::client_to_server;  // who sent the line or segment
  AnnouncementKind announcement = AnnouncementKind::none;
  std::string reason;          // refused, closed, anomaly, session_end: a Reason name or end_of_capture
  std::string line;            // the line, without its line end (as far as it is known)
  std::optional<std::uint64_t> offset;  // stream offset of the line (or of the segment: anomaly)
  std::uint32_t opening = 0;   // opening, closed: the session's opening number
  std::optional<Address> source;         // opening, refused: who may (would) connect ...
  std::optional<Endpoint> destination;   // ... to what
  std::optional<ViolationAction> action; // refused, anomaly: what the daemon does with the session
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void on_event(const Event& e) = 0;
};

struct Summary {
  std::uint64_t packets = 0;          // frames read
  std::uint64_t captured_bytes = 0;   // their captured bytes
  std::uint64_t ip_packets = 0;
  std::uint64_t tcp_packets = 0;
  std::uint64_t control_packets = 0;  // of control connections (sessions, half-open, picked up)
  std::uint64_t sessions = 0;
  std::uint64_t pickups = 0;
  std::uint64_t half_open = 0;        // SYNs to a control port never answered in the capture
  std::uint64_t announcements = 0;
  std::uint64_t openings = 0;
  std::uint64_t refusals = 0;
  std::uint64_t encrypted = 0;
  std::uint64_t anomalies = 0;
  std::map<std::string, std::uint64_t> refusals_by_reason;
  std::map<std::string, std::uint64_t> anomalies_by_reason;
  // Control-connection bytes the capture never showed although their receiver acknowledged them
  // (the holes of the stream_gap anomalies). Offline that is always the capture's loss: a packet
  // dropped by the capturing kernel (tcpdump's "packets dropped by kernel") or a path the capture
  // point does not see; ftpwalld, on the path, would have seen those bytes.
  std::uint64_t missed_bytes = 0;
  std::uint64_t not_understood = 0;   // frames that are not a readable IP packet
  std::map<std::string, std::uint64_t> not_understood_by_cause;
  std::uint64_t not_ip = 0;           // ARP, LLDP, ... (counted, not "not understood")
};

class Replayer {
 public:
  Replayer(Options options, EventSink& sink);
  ~Replayer();
  Replayer(const Replayer&) = delete;
  Replayer& operator=(const Replayer&) = delete;

  // One captured frame of `link`; `frame_no` counts from 1 in its file.
  void on_frame(capture::LinkType link, std::uint64_t time_ns, std::uint64_t frame_no,
                std::span<const std::uint8_t> frame);
  // One IP packet (from its IP header).
  void on_ip_packet(std::uint64_t time_ns, std::uint64_t frame_no, std::span<const std::uint8_t> ip);
  // The capture is over: every session still open ends (session_end, end_of_capture).
  void finish();

  const Summary& summary() const { return summary_; }

 private:
  struct Sess;
  void start_session(const Tuple& key, std::uint64_t time_ns, std::uint64_t frame_no, bool pickup);
  void track(Sess& s, Direction d, std::uint64_t time_ns, std::uint64_t frame_no);
  void end_session(Sess& s, std::string_view reason, std::uint64_t time_ns, std::uint64_t frame_no);
  Event event(const Sess& s, EventKind k, std::uint64_t time_ns, std::uint64_t frame_no) const;
  void emit(const Event& e);
  bool is_control_port(std::uint16_t port) const;

  Options options_;
  std::unique_ptr<Policy> policy_;
  EventSink& sink_;
  std::map<Tuple, std::unique_ptr<Sess>> sessions_;   // key: client -> server
  struct HalfOpen {
    std::vector<std::uint8_t> syn;
    std::uint64_t time_ns = 0;
    std::uint64_t frame = 0;
  };
  std::map<Tuple, HalfOpen> half_open_;  // a client's SYN, nothing else seen yet
  std::vector<std::uint8_t> buf_;
  std::uint32_t next_session_ = 1;
  std::uint64_t now_ms_ = 0;
  std::uint64_t last_time_ns_ = 0;
  std::uint64_t last_frame_ = 0;
  Summary summary_;
};

}  // namespace ftpwall::cli::replay
