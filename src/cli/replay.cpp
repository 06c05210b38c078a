// SPDX-License-Identifier: GPL-2.0-or-later
#include "cli/replay.hpp"

#include <algorithm>

#include "ftpwall/core/line_framer.hpp"
#include "ftpwall/core/packet.hpp"
#include "ftpwall/core/reason.hpp"
#include "ftpwall/core/stream.hpp"
#include "ftpwall/core/tracker.hpp"

namespace ftpwall::cli::replay {

namespace {

// Tracker's window shift for a direction whose SYNs were not both seen (tracker.cpp).
constexpr std::uint8_t unknown_window_shift = 14;

bool is_anomaly(Reason r) {
  switch (r) {
    case Reason::stream_gap:
    case Reason::reorder_overflow:
    case Reason::overlap_mismatch:
    case Reason::out_of_window:
    case Reason::syn_mismatch:
    case Reason::segment_before_syn:
    case Reason::correction_history_full:
    case Reason::correction_invalid:
    case Reason::correction_mismatch:
    case Reason::rewrite_split_timeout:
    case Reason::packet_truncated:
    case Reason::packet_bad_header:
    case Reason::packet_not_tcp:
    case Reason::packet_fragment:
    case Reason::packet_too_many_extension_headers:
    case Reason::packet_too_large:
      return true;
    default:
      return false;
  }
}

// What a line announces, read either way (a PORT from the server is still a PORT, refused).
struct LineAnnouncement {
  AnnouncementKind kind = AnnouncementKind::none;
  std::optional<Announced> parsed;
};

LineAnnouncement read_line(std::string_view text) {
  LineAnnouncement a;
  const Command c = parse_command(text);
  if (const VerbRow* v = find_verb_row(c.verb); v && v->announces != AnnouncementKind::none) {
    a.kind = v->announces;
    if (auto p = v->parse(c.args)) a.parsed = *p;
    return a;
  }
  if (auto r = parse_reply_line(text)) {
    if (const ReplyRow* row = find_reply(r->code); row && row->announces != AnnouncementKind::none) {
      a.kind = row->announces;
      if (auto p = row->parse(r->text)) a.parsed = *p;
    }
  }
  return a;
}

std::string without_line_end(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

std::string_view name(EventKind k) {
  switch (k) {
    case EventKind::session: return "session";
    case EventKind::announcement: return "announcement";
    case EventKind::opening: return "opening";
    case EventKind::refused: return "refused";
    case EventKind::closed: return "closed";
    case EventKind::encrypted: return "encrypted";
    case EventKind::anomaly: return "anomaly";
    case EventKind::session_end: return "session_end";
  }
  return "?";
}

// The lines of a session as its Tracker's Session reads them: a second StreamAssembler and
// LineFramer per direction, fed exactly as Tracker::on_packet feeds its own (without NAT there are
// no corrections, so acks map to themselves). The core's decisions carry no line text for
// openings; this gives it, and the announcements themselves.
class Shadow {
 public:
  struct ShadowLine {
    Direction dir;
    std::uint64_t offset;
    std::string text;
    bool announcing;
  };

  explicit Shadow(bool pickup) {
    if (pickup)
      for (Dir& D : dirs_) {
        (void)D.stream.allow_pickup(PickupHistory::no_corrections);
        D.framer.resync();
      }
  }

  void feed(Direction d, const PacketView& p) {
    Dir& D = dirs_[static_cast<std::size_t>(d)];
    D.owner = this;
    const bool syn = p.has_flag(tcp_flag::syn), fin = p.has_flag(tcp_flag::fin), rst = p.has_flag(tcp_flag::rst);
    const auto payload = p.payload();
    SegmentReport r;
    if (!encrypted || !payload.empty() || fin || rst || syn)
      r = D.stream.on_segment(Segment{p.seq(), syn, fin, rst, payload}, D);
    if (syn && r.accepted) {
      D.syn_seen = true;
      D.wscale = p.window_scale();
    }
    const bool receiver_takes = r.accepted || r.reason == Reason::reorder_overflow;
    const bool bare = payload.empty() && !syn && !fin && !rst;
    if (p.has_flag(tcp_flag::ack) && !rst && receiver_takes && (!bare || D.stream.seq_in_window(p.seq()))) {
      const std::uint32_t window = syn ? p.window() : scaled_window(d, p.window());
      dirs_[static_cast<std::size_t>(other(d))].stream.on_peer_ack(p.ack(), window);
    }
  }

  std::vector<ShadowLine> lines;  // complete lines of the last packet
  bool encrypted = false;
  std::uint64_t missed_bytes = 0;  // holes given up (stream_gap), both directions

 private:
  struct Dir final : StreamSink, LineSink {
    explicit Dir(Direction d) : framer(d), dir(d) {}
    void on_data(std::uint64_t offset, std::span<const std::uint8_t> bytes) override {
      if (!owner->encrypted) framer.feed(offset, bytes, *this);
    }
    void on_gap(std::uint64_t offset, std::uint64_t length) override {
      owner->missed_bytes += length;
      framer.gap(offset + length, *this);
    }
    void on_end(std::uint64_t, bool) override { framer.end(*this); }
    void on_line(const Line& l) override {
      if (!l.complete || owner->encrypted) return;
      owner->lines.push_back(ShadowLine{dir, l.offset, std::string(l.text), l.announcing});
    }
    StreamAssembler stream;
    LineFramer framer;
    Direction dir;
    Shadow* owner = nullptr;
    std::optional<std::uint8_t> wscale;
    bool syn_seen = false;
  };

  std::uint32_t scaled_window(Direction d, std::uint16_t raw) const {
    const Dir& me = dirs_[static_cast<std::size_t>(d)];
    const Dir& peer = dirs_[static_cast<std::size_t>(other(d))];
    if (!me.syn_seen || !peer.syn_seen) return std::uint32_t{raw} << unknown_window_shift;
    if (!me.wscale || !peer.wscale) return raw;
    return std::uint32_t{raw} << std::min<std::uint8_t>(*me.wscale, unknown_window_shift);
  }

  Dir dirs_[2] = {Dir(Direction::client_to_server), Dir(Direction::server_to_client)};
};

struct Replayer::Sess {
  Sess(bool picked, std::unique_ptr<Tracker> t) : pickup(picked), tracker(std::move(t)), shadow(picked) {}
  std::uint32_t id = 0;
  Tuple key;  // client -> server
  bool pickup;
  std::unique_ptr<Tracker> tracker;  // reset when the connection has ended on the wire
  Shadow shadow;
  std::optional<std::uint32_t> client_isn;
  bool end_reported = false;
  bool tcp_ended = false;
};

Replayer::Replayer(Options options, EventSink& sink)
    : options_(std::move(options)), policy_(std::make_unique<Policy>(options_.policy)), sink_(sink) {}

Replayer::~Replayer() = default;

bool Replayer::is_control_port(std::uint16_t port) const {
  return std::find(options_.control_ports.begin(), options_.control_ports.end(), port) != options_.control_ports.end();
}

void Replayer::on_frame(capture::LinkType link, std::uint64_t time_ns, std::uint64_t frame_no,
                        std::span<const std::uint8_t> frame) {
  summary_.packets++;
  summary_.captured_bytes += frame.size();
  last_time_ns_ = std::max(last_time_ns_, time_ns);
  last_frame_ = frame_no;
  const capture::Decoded d = capture::decode(link, frame);
  if (d.status == capture::DecodeStatus::not_ip) {
    summary_.not_ip++;
    return;
  }
  if (d.status != capture::DecodeStatus::ok) {
    summary_.not_understood++;
    summary_.not_understood_by_cause[std::string(capture::name(d.status))]++;
    return;
  }
  on_ip_packet(time_ns, frame_no, d.ip);
}

Event Replayer::event(const Sess& s, EventKind k, std::uint64_t time_ns, std::uint64_t frame_no) const {
  Event e;
  e.kind = k;
  e.time_ns = time_ns;
  e.packet = frame_no;
  e.session = s.id;
  e.pickup = s.pickup;
  e.client = s.key.src;
  e.server = s.key.dst;
  return e;
}

void Replayer::emit(const Event& e) {
  switch (e.kind) {
    case EventKind::session: summary_.sessions++; summary_.pickups += e.pickup; break;
    case EventKind::announcement: summary_.announcements++; break;
    case EventKind::opening: summary_.openings++; break;
    case EventKind::refused: summary_.refusals++; summary_.refusals_by_reason[e.reason]++; break;
    case EventKind::encrypted: summary_.encrypted++; break;
    case EventKind::anomaly: summary_.anomalies++; summary_.anomalies_by_reason[e.reason]++; break;
    default: break;
  }
  sink_.on_event(e);
}

void Replayer::on_ip_packet(std::uint64_t time_ns, std::uint64_t frame_no, std::span<const std::uint8_t> ip) {
  summary_.ip_packets++;
  last_time_ns_ = std::max(last_time_ns_, time_ns);
  last_frame_ = frame_no;
  now_ms_ = std::max(now_ms_, time_ns / 1'000'000);  // the Tracker's clock never goes back
  buf_.assign(ip.begin(), ip.end());
  auto view = PacketView::parse(buf_);
  if (!view) {
    const Reason r = reason_of(view.error());
    if (r == Reason::packet_not_tcp) return;  // UDP, ICMP, ...: not ours, not an error
    summary_.not_understood++;
    summary_.not_understood_by_cause[std::string(name(r))]++;
    return;
  }
  summary_.tcp_packets++;
  const Endpoint src{view->src_address(), view->src_port()};
  const Endpoint dst{view->dst_address(), view->dst_port()};
  const bool syn = view->has_flag(tcp_flag::syn) && !view->has_flag(tcp_flag::ack);
  const Tuple fwd{src, dst}, rev{dst, src};

  // The daemon's dispatch (Daemon::on_packet): the key is the first SYN's orientation.
  auto handle = [&](Sess& s, Direction d) {
    summary_.control_packets++;
    if (syn && d == Direction::client_to_server && s.client_isn != view->seq()) {
      if (s.tcp_ended) {
        // The 4-tuple reused by a new connection.
        if (!s.end_reported) end_session(s, "connection_closed", time_ns, frame_no);
        sessions_.erase(fwd);
        half_open_[fwd] = HalfOpen{buf_, time_ns, frame_no};
        return;
      }
      Event e = event(s, EventKind::anomaly, time_ns, frame_no);
      e.reason = std::string(name(Reason::syn_mismatch));
      e.action = ViolationAction::pass;
      emit(e);
      return;
    }
    track(s, d, time_ns, frame_no);
  };
  if (auto it = sessions_.find(fwd); it != sessions_.end()) return handle(*it->second, Direction::client_to_server);
  if (auto it = sessions_.find(rev); it != sessions_.end()) return handle(*it->second, Direction::server_to_client);
  if (auto it = half_open_.find(fwd); it != half_open_.end()) {
    summary_.control_packets++;
    if (syn) {
      it->second.syn = buf_;  // retransmitted, or a new attempt: the session starts at the first
      return;
    }
    start_session(fwd, time_ns, frame_no, false);
    return track(*sessions_.at(fwd), Direction::client_to_server, time_ns, frame_no);
  }
  if (auto it = half_open_.find(rev); it != half_open_.end()) {
    summary_.control_packets++;
    start_session(rev, time_ns, frame_no, false);
    return track(*sessions_.at(rev), Direction::server_to_client, time_ns, frame_no);
  }
  if (syn) {
    if (is_control_port(dst.port)) {
      summary_.control_packets++;
      half_open_[fwd] = HalfOpen{buf_, time_ns, frame_no};
    }
    return;  // otherwise a data connection (or anything else)
  }
  // No SYN seen: picked up as the daemon picks up a connection that existed at its start.
  if (view->has_flag(tcp_flag::fin) || view->has_flag(tcp_flag::rst)) return;
  if (view->has_flag(tcp_flag::syn)) return;  // a SYN-ACK whose SYN is not in the capture
  Direction d;
  Tuple key;
  if (is_control_port(dst.port)) {
    d = Direction::client_to_server;
    key = fwd;
  } else if (is_control_port(src.port)) {
    d = Direction::server_to_client;
    key = rev;
  } else {
    return;
  }
  summary_.control_packets++;
  start_session(key, time_ns, frame_no, true);
  track(*sessions_.at(key), d, time_ns, frame_no);
}

void Replayer::start_session(const Tuple& key, std::uint64_t time_ns, std::uint64_t frame_no, bool pickup) {
  const ConnTuples tuples = ConnTuples::without_nat(key.src, key.dst);
  std::unique_ptr<Tracker> tracker;
  if (pickup) {
    auto t = Tracker::pick_up(tuples, *policy_, PickupHistory::no_corrections);
    if (t) tracker = std::make_unique<Tracker>(std::move(*t));
  } else {
    tracker = std::make_unique<Tracker>(tuples, *policy_);
  }
  auto s = std::make_unique<Sess>(pickup, std::move(tracker));
  s->id = next_session_++;
  s->key = key;
  Sess& ref = *s;
  sessions_[key] = std::move(s);
  auto h = pickup ? half_open_.end() : half_open_.find(key);
  if (h == half_open_.end()) {
    emit(event(ref, EventKind::session, time_ns, frame_no));
    return;
  }
  // The session starts at its SYN, kept while it was half-open; the SYN goes into the Tracker
  // first (the daemon's promote()).
  HalfOpen ho = std::move(h->second);
  half_open_.erase(h);
  emit(event(ref, EventKind::session, ho.time_ns, ho.frame));
  auto v = PacketView::parse(ho.syn);
  if (v && ref.tracker) {
    ref.client_isn = v->seq();
    ref.shadow.feed(Direction::client_to_server, *v);
    ref.shadow.lines.clear();
    (void)ref.tracker->on_packet(Direction::client_to_server, v->bytes(), now_ms_);
  }
}

void Replayer::end_session(Sess& s, std::string_view reason, std::uint64_t time_ns, std::uint64_t frame_no) {
  if (s.end_reported) return;
  s.end_reported = true;
  Event e = event(s, EventKind::session_end, time_ns, frame_no);
  e.reason = std::string(reason);
  emit(e);
}

void Replayer::track(Sess& s, Direction d, std::uint64_t time_ns, std::uint64_t frame_no) {
  if (!s.tracker) return;  // the connection ended on the wire: its last packets decide nothing
  auto view = PacketView::parse(buf_);
  if (view) {
    s.shadow.lines.clear();
    const std::uint64_t missed = s.shadow.missed_bytes;
    s.shadow.feed(d, *view);
    summary_.missed_bytes += s.shadow.missed_bytes - missed;
  }
  PacketOutcome out = s.tracker->on_packet(d, buf_, now_ms_, frame_no);

  auto& lines = s.shadow.lines;
  std::vector<bool> consumed(lines.size(), false), wanted(lines.size(), false);
  std::size_t next_announce = 0;
  const Address& client = s.key.src.addr;
  const Address& server = s.key.dst.addr;
  auto who_to_what = [&](Event& e, const LineAnnouncement& a, Direction from) {
    if (!a.parsed) return;
    if (a.kind == AnnouncementKind::port || a.kind == AnnouncementKind::eprt || a.kind == AnnouncementKind::lprt) {
      e.source = from == Direction::client_to_server ? server : client;
      e.destination = a.parsed->endpoint;
    } else {
      e.source = from == Direction::server_to_client ? client : server;
      e.destination = a.parsed->has_address ? a.parsed->endpoint
                                            : Endpoint{from == Direction::server_to_client ? server : client,
                                                       a.parsed->endpoint.port};
    }
  };
  // Announcement events of this packet's lines up to and including `upto`.
  auto announce_through = [&](std::size_t upto) {
    for (; next_announce <= upto && next_announce < lines.size(); ++next_announce) {
      const auto& l = lines[next_announce];
      if (!l.announcing && !wanted[next_announce]) continue;
      Event e = event(s, EventKind::announcement, time_ns, frame_no);
      e.direction = l.dir;
      e.line = l.text;
      e.offset = l.offset;
      const LineAnnouncement a = read_line(l.text);
      e.announcement = a.kind;
      who_to_what(e, a, l.dir);
      emit(e);
    }
  };
  auto line_at = [&](Direction dir, std::uint64_t offset) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < lines.size(); ++i)
      if (lines[i].dir == dir && lines[i].offset == offset) return i;
    return std::nullopt;
  };

  for (const Decision& dec : out.decisions) {
    if (const auto* od = std::get_if<OpenData>(&dec)) {
      Event e = event(s, EventKind::opening, time_ns, frame_no);
      e.direction = od->announced_by;
      e.announcement = od->kind;
      e.opening = od->opening;
      e.source = od->source;
      e.destination = od->destination;
      for (std::size_t i = 0; i < lines.size(); ++i) {
        if (consumed[i] || lines[i].dir != od->announced_by || !lines[i].announcing) continue;
        consumed[i] = true;
        announce_through(i);
        e.line = lines[i].text;
        e.offset = lines[i].offset;
        break;
      }
      emit(e);
    } else if (const auto* v = std::get_if<Violation>(&dec)) {
      const bool anomaly = is_anomaly(v->reason);
      Event e = event(s, anomaly ? EventKind::anomaly : EventKind::refused, time_ns, frame_no);
      e.direction = v->direction;
      e.reason = std::string(name(v->reason));
      e.action = v->action;
      e.offset = v->line_offset;
      if (anomaly) {
        emit(e);
        continue;
      }
      if (auto i = line_at(v->direction, v->line_offset); i && !consumed[*i]) {
        consumed[*i] = true;
        wanted[*i] = true;
        if (*i >= next_announce) announce_through(*i);
        e.line = lines[*i].text;
      } else {
        e.line = without_line_end(v->bytes);
      }
      const LineAnnouncement a = read_line(e.line);
      e.announcement = a.kind;
      who_to_what(e, a, v->direction);
      emit(e);
    } else if (const auto* c = std::get_if<CloseData>(&dec)) {
      Event e = event(s, EventKind::closed, time_ns, frame_no);
      e.opening = c->opening;
      e.reason = std::string(name(c->reason));
      emit(e);
    } else if (const auto* en = std::get_if<Encrypted>(&dec)) {
      Event e = event(s, EventKind::encrypted, time_ns, frame_no);
      e.direction = Direction::server_to_client;
      e.offset = en->line_offset;
      if (auto i = line_at(Direction::server_to_client, en->line_offset)) {
        e.line = lines[*i].text;
        announce_through(*i);
        // Lines after the 234 in the same packet are TLS to the Tracker.
        lines.resize(*i + 1);
      }
      s.shadow.encrypted = true;
      emit(e);
    } else if (const auto* se = std::get_if<SessionEnd>(&dec)) {
      end_session(s, name(se->reason), time_ns, frame_no);
    }
  }
  if (!lines.empty()) announce_through(lines.size() - 1);
  lines.clear();
  if (s.tracker->ended()) {
    s.tcp_ended = true;
    s.tracker.reset();
  }
}

void Replayer::finish() {
  std::vector<Sess*> open;  // in the order they started
  for (auto& [key, s] : sessions_)
    if (!s->end_reported) open.push_back(s.get());
  std::sort(open.begin(), open.end(), [](const Sess* a, const Sess* b) { return a->id < b->id; });
  for (Sess* s : open) end_session(*s, "end_of_capture", last_time_ns_, last_frame_);
  summary_.half_open = half_open_.size();
}

}  // namespace ftpwall::cli::replay
