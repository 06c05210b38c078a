// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/tracker.hpp"

#include <algorithm>
#include <utility>

#include "ftpwall/core/limits.hpp"
#include "ftpwall/core/packet.hpp"
#include "ftpwall/core/rewrite.hpp"

namespace ftpwall {

namespace {

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// RFC 7323 §2.3: the largest shift; used when the handshake was not seen (pick-up), which makes the
// window check lax rather than wrong.
constexpr std::uint8_t unknown_window_shift = 14;

// Bytes of a deferred region's line kept after its withheld part: enough for any announcement line
// (a longer one is refused, and putting the withheld bytes back needs one byte of it).
constexpr std::size_t deferred_after_cap = 2 * limits::max_announcement_line;

}  // namespace

// Glue for one packet: stream output goes to the framer, lines go to the Tracker.
class Tracker::Pipe final : public StreamSink, public LineSink {
 public:
  Pipe(Tracker& t, Direction d, PacketOutcome& out) : t_(t), d_(d), out_(out) {}
  void on_data(std::uint64_t offset, std::span<const std::uint8_t> bytes) override {
    Dir& D = t_.dir(d_);
    if (D.tls) {  // TLS records: no lines to read, unless the layer ends in these bytes (CCC)
      const auto at = t_.tls_bytes(d_, offset, bytes);
      if (!at) return;
      t_.leave_tls(d_, *at, out_);
      bytes = bytes.subspan(static_cast<std::size_t>(*at - offset));
      offset = *at;
    }
    if (D.peek().deferred.active) {
      Deferred& f = D.rare().deferred;
      // The raw bytes after the withheld ones (Telnet included): what the settling correction replaces.
      const std::uint64_t have = f.end + f.after.size();
      if (offset <= have && offset + bytes.size() > have && f.after.size() < deferred_after_cap) {
        const auto tail = bytes.subspan(static_cast<std::size_t>(have - offset));
        const std::size_t n = std::min(tail.size(), deferred_after_cap - f.after.size());
        f.after.append(reinterpret_cast<const char*>(tail.data()), n);
      }
    }
    D.framer.feed(offset, bytes, *this);
    // The 234 ended a line of these bytes: the rest of them are TLS already.
    if (D.tls && D.peek().records.next >= offset && D.peek().records.next < offset + bytes.size()) {
      const std::uint64_t from = D.peek().records.next;
      on_data(from, bytes.subspan(static_cast<std::size_t>(from - offset)));
    }
  }
  void on_gap(std::uint64_t offset, std::uint64_t length) override {
    t_.dir(d_).framer.gap(offset + length, *this);
    t_.live().session.on_gap(d_);
  }
  void on_end(std::uint64_t, bool reset) override {
    t_.dir(d_).framer.end(*this);
    t_.stream_ended(d_, reset, out_);
  }
  void on_line(const Line& line) override { t_.on_line(d_, line, out_); }

 private:
  Tracker& t_;
  Direction d_;
  PacketOutcome& out_;
};

Tracker::Tracker(const ConnTuples& tuples, const Policy* policy, std::unique_ptr<Policy> owned,
                 Session::Start start)
    : owned_policy_(std::move(owned)),
      policy_(owned_policy_ ? owned_policy_.get() : policy),
      live_(std::make_unique<Live>(tuples, *policy_, start)) {
  // A rewrite can only happen where a side is behind NAT: the client's PORT/EPRT when the client
  // is (SNAT/MASQUERADE), the server's 227 when the server is (DNAT). Elsewhere nothing is held.
  dir(Direction::client_to_server).hold_enabled = tuples.client_nat();
  dir(Direction::server_to_client).hold_enabled = tuples.server_nat();
  // Only there can a correction be recorded: a session without NAT has no history to keep (80 bytes
  // less per session).
  if (tuples.client_nat() || tuples.server_nat()) seq_ = std::make_unique<SeqAdjust>();
}

Tracker::Tracker(const ConnTuples& tuples, const Policy& policy)
    : Tracker(tuples, &policy, nullptr, Session::Start::fresh) {}

Tracker::Tracker(const ConnTuples& tuples, PolicyConfig config)
    : Tracker(tuples, nullptr, std::make_unique<Policy>(std::move(config)), Session::Start::fresh) {}

Tracker::Tracker(Tracker&&) noexcept = default;
Tracker& Tracker::operator=(Tracker&&) noexcept = default;
Tracker::~Tracker() = default;

Result<Tracker> Tracker::pick_up(const ConnTuples& tuples, const Policy& policy, PickupHistory history,
                                 SeqAdjust restored, LineStart line_start) {
  Tracker t(tuples, &policy, nullptr, Session::Start::mid_stream);
  for (Dir& D : t.live().dirs) {
    auto ok = D.stream.allow_pickup(history);
    if (!ok) return ok.error();
    if (line_start == LineStart::unknown) D.framer.resync();  // the first byte may be mid-line
  }
  if (history == PickupHistory::restored) t.seq_ = std::make_unique<SeqAdjust>(std::move(restored));
  t.picked_up_ = true;
  return t;
}

std::uint32_t Tracker::scaled_window(Direction d, std::uint16_t raw) const {
  const Dir& me = live().dirs[idx(d)];
  const Dir& peer = live().dirs[idx(other(d))];
  if (!me.syn_seen || !peer.syn_seen) return std::uint32_t{raw} << unknown_window_shift;
  // RFC 7323 §2.2: scaling is in effect only when both SYNs carried the option.
  if (!me.wscale || !peer.wscale) return raw;
  return std::uint32_t{raw} << std::min<std::uint8_t>(*me.wscale, unknown_window_shift);
}

void Tracker::violation(Reason r, Direction d, std::uint64_t offset, std::span<const std::uint8_t> bytes, Act act,
                        std::vector<Decision>& out) const {
  Violation v;
  v.reason = r;
  v.direction = d;
  v.line_offset = offset;
  const std::size_t n = std::min(bytes.size(), limits::max_violation_bytes);
  v.bytes.assign(reinterpret_cast<const char*>(bytes.data()), n);
  v.action = act == Act::pass ? ViolationAction::pass
             : act == Act::reset ? ViolationAction::reset
                                 : policy_->on_violation();
  out.emplace_back(std::move(v));
}

void Tracker::record_rewrite(Direction d, Rewrite rw, std::vector<Decision>& out) {
  const std::uint32_t pos = dir(d).stream.seq_of(rw.stream_offset);
  if (!seq_) seq_ = std::make_unique<SeqAdjust>();  // never without NAT: the Session rewrites only behind it
  auto ok = seq_->record(d, pos, bytes_of(rw.old_bytes), bytes_of(rw.new_bytes));
  if (!ok) {
    const Reason r = reason_of(ok.error());
    violation(r == Reason::none ? Reason::correction_invalid : r, d, rw.line_offset, bytes_of(rw.old_bytes),
              r == Reason::correction_history_full ? Act::reset : Act::policy, out);
    return;
  }
  stats_.rewrites++;
  out.emplace_back(std::move(rw));
}

void Tracker::on_line(Direction d, const Line& line, PacketOutcome& out) {
  stats_.lines++;
  Dir& D = dir(d);
  // A split announcement settled or withheld in part before its line completed (settle, expire):
  // this line ends that state.
  const bool deferred = D.peek().deferred.active && D.peek().deferred.line == line.offset;
  std::optional<Settled> settled;
  if (D.peek().settled && D.peek().settled->line == line.offset) settled = std::move(D.rare().settled);
  if (D.rare_) D.rare_->settled.reset();
  // After the 234 the bytes are TLS; after a gap or at the end the line is not what the receiver
  // read as a whole: neither reaches the Session. Withheld bytes of such a line stay withheld.
  if (D.tls || !line.complete) {
    if (deferred) D.rare().deferred = {};
    D.trim();
    return;
  }
  std::vector<Decision>& got = live().line_decisions;  // on_line is never re-entered
  got.clear();
  bool put_back = !deferred;
  live().session.on_line(d, line.text, line.offset, got);
  out.decisions.reserve(out.decisions.size() + got.size());
  const bool framer_refused = line.reason != Reason::none;
  bool drop_open = framer_refused;
  for (Decision& dec : got) {
    if (auto* rw = std::get_if<Rewrite>(&dec)) {
      if (drop_open) continue;
      if (settled) {
        // The 227's address was rewritten (or found public) when it was complete: the Session's
        // rewrite must be that one, with the port as sent (a server's port never changes).
        auto po = parse_port_args(rw->old_bytes), pn = parse_port_args(rw->new_bytes);
        const bool same = settled->rewritten && rw->stream_offset == settled->region &&
                          rw->old_bytes.starts_with(settled->old_text) && rw->new_bytes.starts_with(settled->new_text) &&
                          po && pn && po->endpoint.port == pn->endpoint.port;
        if (!same) {
          violation(Reason::correction_invalid, d, line.offset, bytes_of(line.text), Act::policy, out.decisions);
          drop_open = true;
        }
        continue;
      }
      if (deferred) {
        put_back = true;
        if (!line_rewrite(d, *rw, out.decisions)) drop_open = true;
        continue;
      }
      // Bytes of the region already went out as they were (the hold expired: rewrite_split_timeout
      // said so). No Rewrite and no correction, but the opening stays (issue 5): it is the one a
      // rewrite would have made (public destination, DNAT to the inside endpoint), and clients
      // that substitute the control connection's address for an unusable 227 address still use it.
      if (rw->stream_offset < D.out_end) continue;
      const std::size_t before = out.decisions.size();
      record_rewrite(d, std::move(*rw), out.decisions);  // *rw is not read again
      if (out.decisions.size() == before || !std::holds_alternative<Rewrite>(out.decisions.back())) drop_open = true;
      continue;
    }
    if (std::holds_alternative<OpenData>(dec) && drop_open) continue;
    if (std::holds_alternative<Violation>(dec) && framer_refused) continue;  // the framer's reason replaces it
    const bool tls = std::holds_alternative<Encrypted>(dec);
    out.decisions.push_back(std::move(dec));
    if (tls) start_tls();
  }
  // Withheld bytes of a line that is not rewritten go out as they were sent.
  if (!put_back) record_deferred(d, D.peek().deferred.region, {}, out.decisions);
  if (deferred) D.rare().deferred = {};
  D.trim();
  if (framer_refused) violation(line.reason, d, line.offset, bytes_of(line.text), Act::policy, out.decisions);
}

// A direction's stream ended (FIN, or an accepted RST, also one after its FIN): the connection
// ends when it was a reset or both directions have ended.
void Tracker::stream_ended(Direction d, bool reset, PacketOutcome& out) {
  dir(d).ended = true;
  if ((reset || dir(other(d)).ended) && !ended_) {
    ended_ = true;
    if (!live().session.ended()) out.decisions.emplace_back(SessionEnd{reset ? Reason::connection_reset : Reason::connection_closed});
  }
}

// After the 234 (or from the first byte, implicit FTPS) both directions carry TLS records from the
// end of their last line: the server's right after the 234, the client's after its AUTH.
void Tracker::start_implicit_tls() {
  live().session.start_encrypted();
  start_tls();
}

void Tracker::start_tls() {
  encrypted_ = true;
  for (Dir& D : live().dirs) {
    D.tls = true;
    D.rare().records = {};
    D.rare().records.next = D.framer.next_offset();
  }
}

std::optional<std::uint64_t> Tracker::tls_bytes(Direction d, std::uint64_t offset, std::span<const std::uint8_t> bytes) {
  TlsRecords& r = dir(d).rare().records;
  if (r.lost) return std::nullopt;
  if (offset != r.next) {  // a gap (or a retransmission the assembler already merged): framing lost
    r.lost = true;
    return std::nullopt;
  }
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (r.remaining) {
      const std::size_t n = std::min<std::size_t>(r.remaining, bytes.size() - i);
      r.remaining -= static_cast<std::uint32_t>(n);
      i += n;
      continue;
    }
    const std::uint8_t c = bytes[i];
    if (r.have == 0 && c >= 0x20 && c < 0x7f) {  // printable at a record boundary: a line, not a record
      if (!r.seen) {  // text before any record: TLS never started here; nothing is read again
        r.lost = true;
        return std::nullopt;
      }
      r.next = offset + i;
      return r.next;
    }
    r.header[r.have++] = c;
    ++i;
    if (r.have < 5) continue;
    const std::uint32_t len = static_cast<std::uint32_t>(r.header[3]) << 8 | r.header[4];
    const bool ok = r.header[0] >= 20 && r.header[0] <= 24 && r.header[1] == 3 && r.header[2] <= 4 && len > 0 &&
                    len <= (1u << 14) + 2048;
    if (!ok) {
      r.lost = true;
      return std::nullopt;
    }
    r.have = 0;
    r.remaining = len;
    r.seen = true;
  }
  r.next = offset + bytes.size();
  return std::nullopt;
}

void Tracker::leave_tls(Direction d, std::uint64_t offset, PacketOutcome& out) {
  Dir& D = dir(d);
  D.tls = false;
  D.framer.restart(offset);
  live().session.on_cleartext(d);
  out.decisions.emplace_back(Cleartext{d, offset});
  if (!live().dirs[0].tls && !live().dirs[1].tls) encrypted_ = false;
}

// A whole-line rewrite (client PORT/EPRT) of a region withheld in part: one correction from the
// withheld end to the region's end carries the region's new text.
bool Tracker::line_rewrite(Direction d, const Rewrite& rw, std::vector<Decision>& out) {
  const Deferred& f = dir(d).peek().deferred;
  const std::string sent = f.withheld + f.after;
  const bool fits = rw.stream_offset == f.region && rw.old_bytes.size() <= sent.size() &&
                    sent.compare(0, rw.old_bytes.size(), rw.old_bytes) == 0;
  if (fits && record_deferred(d, rw.stream_offset + rw.old_bytes.size(), rw.new_bytes, out)) return true;
  if (!fits) {
    violation(Reason::correction_invalid, d, f.line, bytes_of(rw.old_bytes), Act::policy, out);
    record_deferred(d, f.region, {}, out);  // as sent
  }
  return false;
}

// Settles a deferred region: the receiver has everything before f.region and nothing of
// [f.region, f.end). The region's text up to `region_end` becomes `new_text` (empty with
// region_end == f.region: put the withheld bytes back as sent). One correction from f.end on,
// which replaces at least one byte (a correction must): [f.end, max(region_end, f.end + 1)).
bool Tracker::record_deferred(Direction d, std::uint64_t region_end, std::string_view new_text,
                              std::vector<Decision>& out) {
  Deferred f = std::move(dir(d).rare().deferred);
  dir(d).rare().deferred = {};
  const std::string sent = f.withheld + f.after;  // bytes from f.region on
  const std::uint64_t e = std::max(region_end, f.end + 1);
  if (!f.active || region_end < f.region || e - f.region > sent.size()) {
    violation(Reason::correction_invalid, d, f.line, bytes_of(f.withheld), Act::policy, out);
    return false;
  }
  Rewrite b;
  b.direction = d;
  b.line_offset = f.line;
  b.stream_offset = f.end;
  b.old_bytes = sent.substr(static_cast<std::size_t>(f.end - f.region), static_cast<std::size_t>(e - f.end));
  b.new_bytes = std::string(new_text) +
                sent.substr(static_cast<std::size_t>(region_end - f.region), static_cast<std::size_t>(e - region_end));
  const std::size_t before = out.size();
  record_rewrite(d, b, out);
  return out.size() > before && std::holds_alternative<Rewrite>(out.back());
}

// Where the undecided rewrite region of the current partial line starts (or continues, after a
// withheld part): packets carrying bytes from there on must wait. nullopt: nothing to wait for.
std::optional<std::uint64_t> Tracker::open_region(Direction d) const {
  const Dir& D = live().dirs[idx(d)];
  if (!D.framer.partial_may_be_announcement()) return std::nullopt;
  const std::uint64_t line = D.framer.line_offset();
  if (D.peek().settled && D.peek().settled->line == line) return std::nullopt;
  const auto start = rewrite_region_start(d, D.framer.partial_text());
  if (!start) return std::nullopt;
  std::uint64_t at = line + *start;
  if (const Deferred& f = D.peek().deferred; f.active && f.line == line) at = std::max(at, f.end);
  if (at < D.out_end) return std::nullopt;  // too late: bytes of it already went out
  return at;
}

// Before the hold decisions of a packet: a region that is decided although its line is not
// complete. A 227 whose address is complete is rewritten there (the port is not needed; the
// Session's later rewrite must agree, on_line); a withheld region whose line can no longer be
// rewritten (Telnet, too long) gets its bytes back before the rest of the line goes out.
void Tracker::settle(Direction d, PacketOutcome& out) {
  Dir& D = dir(d);
  if (!D.framer.in_line() || D.framer.skipping()) return;
  const std::uint64_t line = D.framer.line_offset();
  if (D.peek().settled && D.peek().settled->line == line) return;
  const Deferred& f = D.peek().deferred;
  const bool deferred = f.active && f.line == line;
  if (deferred && !D.framer.partial_may_be_announcement()) {
    if (f.after.empty()) return;
    const std::uint64_t region = f.region;
    record_deferred(d, region, {}, out.decisions);
    D.rare().settled = Settled{line, region, false, {}, {}};
    return;
  }
  if (d != Direction::server_to_client || !D.framer.partial_may_be_announcement()) return;
  const std::string_view text = D.framer.partial_text();
  const PasvAddressPrefix p = pasv_address_prefix(text);
  if (p.state == PasvAddressPrefix::State::incomplete) return;
  const bool complete = p.state == PasvAddressPrefix::State::complete;
  const bool inside = complete && p.addr == live().session.tuples().server_real();
  Settled st{line, line + p.begin, false, {}, {}};
  const std::string new_text = inside ? format_pasv_address(live().session.tuples().server_as_seen()) + "," : std::string();
  bool ok = true;
  if (deferred) {
    ok = record_deferred(d, inside ? line + p.end : f.region, new_text, out.decisions);
  } else if (inside) {
    Rewrite rw;
    rw.direction = d;
    rw.line_offset = line;
    rw.stream_offset = line + p.begin;
    rw.old_bytes = std::string(text.substr(p.begin, p.end - p.begin));
    rw.new_bytes = new_text;
    const std::size_t before = out.decisions.size();
    record_rewrite(d, rw, out.decisions);
    ok = out.decisions.size() > before && std::holds_alternative<Rewrite>(out.decisions.back());
  }
  if (!ok && !deferred) return;  // not recorded: keep holding; the bound withholds or drops
  if (inside && ok) {
    st.rewritten = true;
    st.old_text = std::string(text.substr(p.begin, p.end - p.begin));
    st.new_text = new_text;
  }
  D.rare().settled = std::move(st);
}

void Tracker::finish(PacketView& p, Direction d, bool in_stream, PacketOutcome& out) {
  // Remember how far the stream has gone out (in the sender's numbering, before apply() maps it):
  // a rewrite that starts before that point comes too late for bytes the receiver may have. Only
  // segments the stream took count: an out-of-window one (forged, or far ahead) is dropped by the
  // receiver too, and counting it would switch holding and rewriting off for the rest of the session.
  Dir& D = dir(d);
  if (in_stream && p.payload_size() > 0) {
    if (auto off = D.stream.offset_of(p.seq())) D.out_end = std::max(D.out_end, *off + p.payload_size());
  }
  if (!seq_) return;  // no NAT: no correction, ever
  const auto applied = seq_->apply(p, d, live().scratch);
  if (!applied) {
    violation(reason_of(applied.error()), d, 0, {}, Act::policy, out.decisions);
    return;
  }
  if (applied->urgent_clamped) stats_.urgent_clamped++;
  if (applied->violation) {
    violation(Reason::correction_mismatch, d, 0, p.payload(), Act::reset, out.decisions);
  }
  if (applied->moved || applied->changed) {
    out.modified = true;
    out.bytes.assign(p.bytes().begin(), p.bytes().end());
  }
}

void Tracker::release_all(Direction d, PacketOutcome& out, bool drop_all) {
  Dir& D = dir(d);
  for (Held& h : D.held) {
    ReleasedPacket rel;
    rel.tag = h.tag;
    rel.direction = d;
    if (drop_all || h.end > D.stream.next_offset()) {
      // Bytes the stream has not delivered yet (past a hole) may be bytes of an address nobody
      // has seen: dropped, the sender sends them again (the stream keeps them, its retransmission
      // is a duplicate and is judged again like any packet).
      rel.drop = true;
      rel.bytes = std::move(h.bytes);
      out.released.push_back(std::move(rel));
      continue;
    }
    auto pv = PacketView::parse(std::span<std::uint8_t>(h.bytes));
    if (pv) {
      PacketOutcome tmp;
      finish(*pv, d, h.in_stream, tmp);
      for (auto& dec : tmp.decisions) out.decisions.push_back(std::move(dec));
      rel.bytes = tmp.modified ? std::move(tmp.bytes) : std::move(h.bytes);
    } else {
      rel.bytes = std::move(h.bytes);  // parsed once already; cannot happen
    }
    out.released.push_back(std::move(rel));
  }
  D.held.clear();
  D.held.shrink_to_fit();
  D.held_bytes = 0;
  D.held_end = 0;
}

// The hold ends before the region is decided (hold_timeout_ms, hold_bytes, or the sender resent
// held bytes: it waits for their ACK, Nagle or a lost-looking segment, so waiting cannot complete
// the line). The region's bytes seen so far are withheld: one correction replaces them by nothing,
// the held packets go out without them, the receiver acknowledges them (the ack maps to the
// region's end, seq_adjust.hpp) and the sender sends the rest; settle / on_line give the region
// back, as sent or rewritten, in one later correction. Nothing of an inside address leaves. When
// even that cannot be recorded, the held packets are dropped.
void Tracker::expire(Direction d, PacketOutcome& out) {
  Dir& D = dir(d);
  stats_.hold_expiries++;
  violation(Reason::rewrite_split_timeout, d, D.framer.in_line() ? D.framer.line_offset() : D.stream.next_offset(),
            bytes_of(D.framer.partial_text()), Act::pass, out.decisions);
  bool drop_all = false;
  const std::uint64_t to = D.stream.next_offset();
  if (auto reg = open_region(d); reg && *reg < to) {
    const std::uint64_t line = D.framer.line_offset();
    const std::string_view text = D.framer.partial_text();
    drop_all = true;
    if (to - line <= text.size()) {
      Rewrite a;
      a.direction = d;
      a.line_offset = line;
      a.stream_offset = *reg;
      a.old_bytes = std::string(text.substr(static_cast<std::size_t>(*reg - line), static_cast<std::size_t>(to - *reg)));
      const std::size_t before = out.decisions.size();
      record_rewrite(d, a, out.decisions);
      if (out.decisions.size() > before && std::holds_alternative<Rewrite>(out.decisions.back())) {
        Deferred& f = D.rare().deferred;
        if (!f.active || f.line != line) f = Deferred{true, line, *reg, *reg, {}, {}};
        f.withheld += a.old_bytes;
        f.end = to;
        f.after.clear();
        drop_all = false;
      }
    }
  }
  release_all(d, out, drop_all);
}

std::uint64_t Tracker::hold_timeout() const { return policy_->config().hold_timeout_ms; }

// The held packets of `d` may go: no line they carry can still become an announcement, and the
// stream has delivered every byte they carry.
bool Tracker::release_due(Direction d) const {
  const Dir& D = live().dirs[idx(d)];
  if (D.stream.next_offset() < D.held_end) return false;
  if (auto reg = open_region(d); reg && *reg < D.held_end) return false;
  return true;
}

std::optional<std::uint64_t> Tracker::next_deadline() const {
  std::optional<std::uint64_t> t;
  if (!live_) return t;  // at rest: nothing held
  for (const Dir& D : live_->dirs) {
    if (D.held.empty()) continue;
    const std::uint64_t due = D.held.front().since_ms + hold_timeout();
    if (!t || due < *t) t = due;
  }
  return t;
}

PacketOutcome Tracker::on_timer(std::uint64_t now_ms) {
  PacketOutcome out;
  timer(now_ms, out);
  return out;
}

void Tracker::timer(std::uint64_t now_ms, PacketOutcome& out) {
  if (!live_) return;  // at rest: nothing held
  for (Direction d : {Direction::client_to_server, Direction::server_to_client}) {
    Dir& D = dir(d);
    if (!D.held.empty() && now_ms >= D.held.front().since_ms + hold_timeout()) expire(d, out);
  }
}

PacketOutcome Tracker::on_packet(Direction d, std::span<std::uint8_t> bytes, std::uint64_t now_ms, std::uint64_t tag) {
  PacketOutcome out;
  on_packet(d, bytes, now_ms, tag, out);
  return out;
}

void Tracker::on_packet(Direction d, std::span<std::uint8_t> bytes, std::uint64_t now_ms, std::uint64_t tag,
                        PacketOutcome& out) {
  out.clear();
  packet(d, bytes, now_ms, tag, out);
  rest_if_idle();
}

// At rest: what each part keeps of itself (Session::Rest, StreamAssembler::Rest, LineFramer::Rest)
// and the few per-direction fields of the Tracker; nothing else has a value then (nothing held, no
// rare state, no TLS, the scratch buffer empty).
void Tracker::rest_if_idle() {
  if (never_rest_ || !live_ || encrypted_ || ended_) return;
  Live& L = *live_;
  if (!L.session.greeted() || !L.session.at_rest()) return;
  DirRest dr[2];
  for (std::size_t i = 0; i < 2; ++i) {
    const Dir& D = L.dirs[i];
    if (!D.held.empty() || D.rare_ || D.tls || D.ended) return;
    auto st = D.stream.rest();
    auto fr = D.framer.rest();
    if (!st || !fr) return;
    dr[i].stream = *st;
    dr[i].framer_next = fr->next_off;
    dr[i].framer_skipped = fr->skipped;
    dr[i].held_end = D.held_end;
    dr[i].out_end = D.out_end;
    dr[i].wscale = D.wscale.value_or(0);
    dr[i].flags = static_cast<std::uint8_t>((D.wscale ? DirRest::has_wscale : 0) | (D.syn_seen ? DirRest::syn_seen : 0) |
                                            (D.hold_enabled ? DirRest::hold_enabled : 0) |
                                            (fr->skipping ? DirRest::skipping : 0));
  }
  rest_.session = std::move(L.session).rest();
  rest_.dirs[0] = dr[0];
  rest_.dirs[1] = dr[1];
  live_.reset();
}

void Tracker::wake() const {
  auto L = std::make_unique<Live>(std::move(rest_.session), *policy_);
  rest_.session = {};
  for (std::size_t i = 0; i < 2; ++i) {
    const DirRest& r = rest_.dirs[i];
    Dir& D = L->dirs[i];
    D.stream = StreamAssembler(r.stream);
    D.framer = LineFramer(D.framer.direction(), LineFramer::Rest{r.framer_next, r.framer_skipped, bool(r.flags & DirRest::skipping)});
    D.held_end = r.held_end;
    D.out_end = r.out_end;
    if (r.flags & DirRest::has_wscale) D.wscale = r.wscale;
    D.syn_seen = r.flags & DirRest::syn_seen;
    D.hold_enabled = r.flags & DirRest::hold_enabled;
  }
  live_ = std::move(L);
}

void Tracker::packet(Direction d, std::span<std::uint8_t> packet, std::uint64_t now_ms, std::uint64_t tag,
                     PacketOutcome& out) {
  timer(now_ms, out);
  stats_.packets++;
  auto pv = PacketView::parse(packet);
  if (!pv) {
    stats_.bad_packets++;
    violation(reason_of(pv.error()), d, 0, {}, Act::pass, out.decisions);
    return;
  }
  PacketView& p = *pv;
  Dir& D = dir(d);
  const bool syn = p.has_flag(tcp_flag::syn), fin = p.has_flag(tcp_flag::fin), rst = p.has_flag(tcp_flag::rst);

  const auto payload = p.payload();
  SegmentReport r;
  if (!encrypted_ || !payload.empty() || fin || rst || syn) {
    Pipe pipe(*this, d, out);
    r = D.stream.on_segment(Segment{p.seq(), syn, fin, rst, payload}, pipe);
    if (r.reset_after_fin) stream_ended(d, true, out);
    switch (r.reason) {
      case Reason::none:
        break;
      case Reason::overlap_mismatch:
      case Reason::stream_gap:
        violation(r.reason, d, r.offset.value_or(0), payload, Act::policy, out.decisions);
        break;
      default:  // out_of_window, reorder_overflow, syn_mismatch, segment_before_syn: never a reason to reset
        violation(r.reason, d, r.offset.value_or(0), payload, Act::pass, out.decisions);
        break;
    }
  }

  // The handshake and the window, only from segments the stream took. The stream is fed first so
  // that a forged segment (another ISN, out of window, before the SYN) changes nothing here: a SYN
  // or SYN-ACK in an established connection passes conntrack (IGNORE), and taking its window scale
  // (or its missing one) would make every later window of that side be read 2^14 times too small
  // or too large, blinding the stream. The segment's own bytes never depend on this packet's ack
  // (it concerns the other direction), so the order changes nothing for real segments.
  if (syn && r.accepted) {
    // The SYN carrying the stream's ISN: the first one, or its retransmission (RFC 7323 §2.2: the
    // window scale option is only valid in a SYN).
    D.syn_seen = true;
    D.wscale = p.window_scale();
  }
  // A segment beyond the reorder buffer is in the receiver's window (only the assembler does not
  // keep its bytes): the receiver reads its ack, so do we.
  const bool receiver_takes = r.accepted || r.reason == Reason::reorder_overflow;
  const bool bare = payload.empty() && !syn && !fin && !rst;
  if (p.has_flag(tcp_flag::ack) && !rst && receiver_takes && (!bare || D.stream.seq_in_window(p.seq()))) {
    // The ack travels in the receiver's view of the other direction: map it back to the sender's
    // numbering, in which that direction's stream is assembled. RFC 7323 §2.2: a SYN's window is
    // never scaled. A pure ACK whose sequence number lies past this side's window is dropped by its
    // receiver before the ack is read (tcp_sequence), and so is its ack here.
    const Direction o = other(d);
    const std::uint32_t window = syn ? p.window() : scaled_window(d, p.window());
    const std::uint32_t ack_o = seq_ ? seq_->map_ack(o, p.ack()) : p.ack();
    const std::uint32_t edge_o = seq_ ? seq_->map_ack(o, p.ack() + window) : p.ack() + window;
    dir(o).stream.on_peer_ack(ack_o, edge_o - ack_o);
  }

  if (D.hold_enabled && !D.tls) settle(d, out);

  const bool stream_bytes = !payload.empty() || fin || rst;
  if (!D.hold_enabled || !stream_bytes || D.tls) {
    if (!D.held.empty() && release_due(d)) release_all(d, out);
    finish(p, d, r.accepted, out);
    return;
  }

  // Does this packet need to wait?
  bool hold = !D.held.empty();
  std::uint64_t seg_end = 0;
  if (r.accepted && r.offset) {
    seg_end = *r.offset + payload.size();
    if (seg_end > D.stream.next_offset() && D.stream.state() == StreamAssembler::State::open) hold = true;
    if (auto reg = open_region(d); reg && *reg < seg_end) hold = true;
  }
  if (hold) {
    if (D.held.empty() || seg_end > D.held_end) D.held_end = std::max(D.held_end, seg_end);
    if (!D.held.empty() && release_due(d)) {
      release_all(d, out);
      finish(p, d, r.accepted, out);
      return;
    }
    // The sender resends held bytes (tail loss probe, RTO): it waits for their ACK, and a Nagle
    // sender sends nothing new before it; past the byte bound: the hold ends (expire).
    const bool resent = !D.held.empty() && r.accepted && r.new_bytes == 0 && r.duplicate_bytes > 0;
    if (resent || D.held_bytes + packet.size() > limits::hold_bytes) {
      expire(d, out);
      D.held_end = seg_end;
      const bool behind_hole = seg_end > D.stream.next_offset() && D.stream.state() == StreamAssembler::State::open;
      if (!behind_hole) {
        finish(p, d, r.accepted, out);  // its bytes of the region, if any, are withheld now
        return;
      }
      // past a hole: this one starts a new hold
    }
    D.held.push_back(Held{tag, now_ms, r.accepted, seg_end,
                          std::vector<std::uint8_t>(p.bytes().begin(), p.bytes().end())});
    D.held_bytes += p.size();
    stats_.held_packets++;
    out.verdict = PacketOutcome::Verdict::hold;
    return;
  }
  finish(p, d, r.accepted, out);
  return;
}

const SeqAdjust& Tracker::corrections() const {
  static const SeqAdjust none;
  return seq_ ? *seq_ : none;
}

std::size_t Tracker::heap_bytes() const {
  std::size_t n = (owned_policy_ ? sizeof(Policy) : 0) + (seq_ ? sizeof(SeqAdjust) : 0);
  if (!live_) return n;
  n += sizeof(Live);
  for (const Dir& D : live_->dirs) {
    n += D.stream.heap_bytes() + D.framer.heap_bytes();
    for (const Held& h : D.held) n += h.bytes.capacity() + sizeof(Held);
    if (D.rare_) {
      n += sizeof(Dir::Rare);
      for (const std::string* b : {&D.rare_->deferred.withheld, &D.rare_->deferred.after})
        n += b->capacity() > 15 ? b->capacity() : 0;
    }
  }
  n += live_->scratch.capacity();
  return n;
}

}  // namespace ftpwall
