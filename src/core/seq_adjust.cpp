// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/seq_adjust.hpp"

#include <algorithm>
#include <charconv>

#include "ftpwall/core/limits.hpp"
#include "ftpwall/core/tcp_seq.hpp"

namespace ftpwall {

namespace {

bool same_bytes(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// History

Result<void> SeqAdjust::record(Direction dir, std::uint32_t pos, std::span<const std::uint8_t> old_bytes,
                               std::span<const std::uint8_t> new_bytes) {
  if (old_bytes.empty()) return make_error(Reason::correction_invalid, "a rewrite must replace at least one byte");
  if (old_bytes.size() > limits::max_correction_bytes || new_bytes.size() > limits::max_correction_bytes)
    return make_error(Reason::correction_invalid,
                "a rewrite longer than " + std::to_string(limits::max_correction_bytes) + " bytes");
  if (same_bytes(old_bytes, new_bytes)) return {};
  DirHistory& h = dirs_[idx(dir)];
  collapse(h);
  if (h.acked_known && seq_before(pos, h.acked))
    return make_error(Reason::correction_invalid, "rewrite at " + std::to_string(pos) +
                                                " starts before the acknowledged " + std::to_string(h.acked));
  if (!h.list.empty() && seq_before(pos, h.list.back().end()))
    return make_error(Reason::correction_invalid, "rewrite at " + std::to_string(pos) + " overlaps the one ending at " +
                                                std::to_string(h.list.back().end()));
  if (h.list.size() >= limits::max_corrections_per_direction)
    return make_error(Reason::correction_history_full,
                std::to_string(h.list.size()) + " unacknowledged corrections in " + std::string(name(dir)));
  Correction c;
  c.pos = pos;
  c.old_bytes.assign(old_bytes.begin(), old_bytes.end());
  c.new_bytes.assign(new_bytes.begin(), new_bytes.end());
  c.offset_before = h.list.empty() ? h.base : h.list.back().offset_after();
  std::uint32_t end = c.end();
  h.list.push_back(std::move(c));
  note_sent(dir, end);
  return {};
}

void SeqAdjust::collapse(DirHistory& h) {
  if (!h.acked_known) return;
  std::size_t n = 0;
  while (n < h.list.size() && seq_before_eq(h.list[n].end(), h.acked)) ++n;
  if (n == 0) return;
  h.base = h.list[n - 1].offset_after();
  h.list.erase(h.list.begin(), h.list.begin() + static_cast<std::ptrdiff_t>(n));
}

void SeqAdjust::note_sent(Direction dir, std::uint32_t end) {
  DirHistory& h = dirs_[idx(dir)];
  if (!h.sent_known || seq_after(end, h.sent_end)) {
    h.sent_end = end;
    h.sent_known = true;
  }
}

void SeqAdjust::note_ack(Direction dir, std::uint32_t ack) {
  DirHistory& h = dirs_[idx(dir)];
  // An ack beyond what the sender sent is forged or stale-wrapped: collapsing on it would drop an
  // offset a legitimate retransmission still needs.
  if (!h.sent_known || seq_after(ack, h.sent_end)) return;
  if (h.acked_known && !seq_after(ack, h.acked)) return;
  h.acked = ack;
  h.acked_known = true;
  collapse(h);
}

bool SeqAdjust::empty() const {
  return dirs_[0].list.empty() && dirs_[0].base == 0 && dirs_[1].list.empty() && dirs_[1].base == 0;
}

// ---------------------------------------------------------------------------------------------
// Mapping

std::uint32_t SeqAdjust::map_seq_in(const DirHistory& h, std::uint32_t seq, Round r) {
  for (std::size_t i = h.list.size(); i-- > 0;) {
    const Correction& c = h.list[i];
    if (seq_after_eq(seq, c.end())) return seq + c.offset_after();
    if (seq == c.pos) return seq + c.offset_before;
    if (seq_after(seq, c.pos)) {
      if (c.same_length()) return seq + c.offset_before;
      return c.pos + c.offset_before + (r == Round::up ? static_cast<std::uint32_t>(c.new_bytes.size()) : 0u);
    }
  }
  return seq + h.base;
}

std::uint32_t SeqAdjust::map_ack_in(const DirHistory& h, std::uint32_t ack, Round r) {
  for (std::size_t i = h.list.size(); i-- > 0;) {
    const Correction& c = h.list[i];
    std::uint32_t q = c.pos + c.offset_before;
    std::uint32_t q_end = q + static_cast<std::uint32_t>(c.new_bytes.size());
    if (seq_after_eq(ack, q_end)) return ack - c.offset_after();
    if (ack == q) return c.pos;
    if (seq_after(ack, q)) {
      if (c.same_length()) return ack - c.offset_before;
      return r == Round::down ? c.pos : c.end();
    }
  }
  return ack - h.base;
}

std::uint32_t SeqAdjust::map_seq(Direction dir, std::uint32_t seq) const {
  return map_seq_in(dirs_[idx(dir)], seq, Round::down);
}

std::uint32_t SeqAdjust::map_ack(Direction dir, std::uint32_t ack) const {
  return map_ack_in(dirs_[idx(dir)], ack, Round::down);
}

bool SeqAdjust::transform_in(const DirHistory& h, std::uint32_t s0, std::span<const std::uint8_t> payload,
                             SegmentTransform& out) {
  const auto& list = h.list;
  if (list.empty() || payload.empty()) return false;
  const std::uint32_t s1 = s0 + static_cast<std::uint32_t>(payload.size());
  // Overlapping corrections [lo, hi]: pos < s1 and end > s0. Scan from the newest: new data lies
  // after every correction and costs one comparison.
  std::size_t i = list.size();
  while (i > 0 && seq_after_eq(list[i - 1].pos, s1)) --i;
  if (i == 0 || seq_before_eq(list[i - 1].end(), s0)) return false;
  const std::size_t hi = i - 1;
  std::size_t lo = hi;
  while (lo > 0 && seq_after(list[lo - 1].end(), s0)) --lo;

  out.seq = map_seq_in(h, s0, Round::down);  // a changed region the segment starts in: its start
  out.violation = false;
  out.payload.clear();
  out.payload.reserve(payload.size() + list[lo].new_bytes.size() + list[hi].new_bytes.size());
  auto take = [&](std::uint32_t from, std::uint32_t to) {  // segment bytes [from, to), original numbering
    out.payload.insert(out.payload.end(), payload.begin() + (from - s0), payload.begin() + (to - s0));
  };
  std::uint32_t cursor = s0;
  for (std::size_t k = lo; k <= hi; ++k) {
    const Correction& c = list[k];
    if (seq_before(cursor, c.pos)) {
      take(cursor, c.pos);
      cursor = c.pos;
    }
    const std::uint32_t ov0 = seq_max(s0, c.pos), ov1 = seq_min(s1, c.end());
    const auto seen = payload.subspan(ov0 - s0, ov1 - ov0);
    const auto expected = std::span<const std::uint8_t>(c.old_bytes).subspan(ov0 - c.pos, ov1 - ov0);
    if (!same_bytes(seen, expected)) out.violation = true;
    if (c.same_length()) {
      out.payload.insert(out.payload.end(), c.new_bytes.begin() + (ov0 - c.pos), c.new_bytes.begin() + (ov1 - c.pos));
      cursor = ov1;
    } else {
      out.payload.insert(out.payload.end(), c.new_bytes.begin(), c.new_bytes.end());
      cursor = c.end();  // may lie after s1: the segment was widened to the region's end
    }
  }
  if (seq_before(cursor, s1)) take(cursor, s1);
  return true;
}

SegmentTransform SeqAdjust::transform_segment(Direction dir, std::uint32_t seq,
                                              std::span<const std::uint8_t> payload) const {
  SegmentTransform t;
  if (!transform_in(dirs_[idx(dir)], seq, payload, t)) {
    t.seq = map_seq_in(dirs_[idx(dir)], seq, Round::down);
    t.payload.assign(payload.begin(), payload.end());
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Packets

Result<ApplyOutcome> SeqAdjust::apply(PacketView& pkt, Direction dir, std::vector<std::uint8_t>& out_buffer) {
  ApplyOutcome res;
  const std::uint32_t seq = pkt.seq();
  if (pkt.seq_length() > 0) note_sent(dir, seq + pkt.seq_length());
  if (empty()) {
    if (pkt.has_flag(tcp_flag::ack)) note_ack(other(dir), pkt.ack());
    return res;
  }
  const DirHistory& h = dirs_[idx(dir)];
  const DirHistory& peer = dirs_[idx(other(dir))];

  // One per thread, its buffer kept: a rewritten segment costs no allocation (each queue's thread
  // has its own; transform_in sets every field before use).
  static thread_local SegmentTransform t;
  const bool rewrite = transform_in(h, seq, pkt.payload(), t);
  const std::uint32_t new_seq = rewrite ? t.seq : map_seq_in(h, seq, Round::down);
  if (rewrite) {
    // The TCP checksum of a first fragment covers payload this packet does not carry.
    if (pkt.fragmented()) return make_error(Reason::packet_fragment, "a first fragment overlaps a rewritten region");
    res.violation = t.violation;
    if (t.payload.size() == pkt.payload_size()) {
      if (!same_bytes(t.payload, pkt.payload())) {
        pkt.replace_payload_bytes(0, t.payload);
        res.changed = true;
      }
    } else {
      auto moved = pkt.replace_payload(t.payload, out_buffer);
      if (!moved) return moved.error();
      pkt = *moved;
      res.moved = res.changed = true;
    }
  }
  if (pkt.has_flag(tcp_flag::urg)) {
    // RFC 9293 §3.8.5: the urgent pointer is an offset from this segment's sequence number.
    const std::uint32_t urgent = map_seq_in(h, seq + pkt.urgent_pointer(), Round::up);
    const std::int32_t d = seq_diff(urgent, new_seq);
    const std::int32_t clamped = std::clamp<std::int32_t>(d, 0, 0xffff);
    res.urgent_clamped = clamped != d;
    const auto up = static_cast<std::uint16_t>(clamped);
    if (up != pkt.urgent_pointer()) {
      pkt.set_urgent_pointer(up);
      res.changed = true;
    }
  }
  if (new_seq != seq) {
    pkt.set_seq(new_seq);
    res.changed = true;
  }
  if (pkt.has_flag(tcp_flag::ack)) {
    const std::uint32_t ack = pkt.ack();
    const std::uint32_t orig_ack = map_ack_in(peer, ack, Round::down);
    if (orig_ack != ack) {
      pkt.set_ack(orig_ack);
      res.changed = true;
    }
    for (std::size_t i = 0; i < pkt.sack_count(); ++i) {
      const SackBlock b = pkt.sack_block(i);
      SackBlock m{map_ack_in(peer, b.left, Round::up), map_ack_in(peer, b.right, Round::down)};
      if (seq_after(m.left, m.right)) m.right = m.left;  // nothing of it is whole: an empty block
      if (m != b) {
        pkt.set_sack_block(i, m);
        res.changed = true;
      }
    }
    note_ack(other(dir), orig_ack);
  }
  return res;
}

// ---------------------------------------------------------------------------------------------
// Serialization

bool SeqAdjust::operator==(const SeqAdjust& o) const {
  for (std::size_t d = 0; d < 2; ++d) {
    const DirHistory &a = dirs_[d], &b = o.dirs_[d];
    if (a.base != b.base || a.acked_known != b.acked_known || a.sent_known != b.sent_known) return false;
    if (a.acked_known && a.acked != b.acked) return false;
    if (a.sent_known && a.sent_end != b.sent_end) return false;
    if (a.list.size() != b.list.size()) return false;
    for (std::size_t i = 0; i < a.list.size(); ++i) {
      const Correction &x = a.list[i], &y = b.list[i];
      if (x.pos != y.pos || x.offset_before != y.offset_before || x.old_bytes != y.old_bytes ||
          x.new_bytes != y.new_bytes)
        return false;
    }
  }
  return true;
}

namespace {

constexpr std::string_view magic = "ftpwall-seqadj 1";
constexpr std::string_view dir_names[2] = {"c2s", "s2c"};

void put_hex(std::string& s, std::span<const std::uint8_t> v) {
  static constexpr char digits[] = "0123456789abcdef";
  if (v.empty()) {
    s += '-';
    return;
  }
  std::size_t at = s.size();
  s.resize(at + 2 * v.size());
  for (std::uint8_t b : v) {
    s[at++] = digits[b >> 4];
    s[at++] = digits[b & 15];
  }
}


// Strict tokens: decimal without sign or leading zeros, lower-case hex of even length, or "-".
std::optional<std::uint32_t> get_u32(std::string_view t) {
  if (t.empty() || t.size() > 10 || (t.size() > 1 && t[0] == '0')) return std::nullopt;
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc{} || end != t.data() + t.size() || v > 0xffffffffu) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

std::optional<std::vector<std::uint8_t>> get_hex(std::string_view t) {
  if (t == "-") return std::vector<std::uint8_t>{};
  if (t.empty() || t.size() % 2 != 0 || t.size() > 2 * limits::max_correction_bytes) return std::nullopt;
  std::vector<std::uint8_t> v;
  v.reserve(t.size() / 2);
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < t.size(); i += 2) {
    int hi = nib(t[i]), lo = nib(t[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    v.push_back(static_cast<std::uint8_t>(hi * 16 + lo));
  }
  return v;
}

std::vector<std::string_view> split(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (true) {
    auto sp = line.find(' ', i);
    out.push_back(line.substr(i, sp == std::string_view::npos ? std::string_view::npos : sp - i));
    if (sp == std::string_view::npos) break;
    i = sp + 1;
  }
  return out;
}

}  // namespace

std::string SeqAdjust::serialize() const {
  std::string s;
  serialize_to(s);
  return s;
}

void SeqAdjust::serialize_to(std::string& s) const {
  auto number = [&s](std::uint64_t v) {
    char buf[20];
    s.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  };
  auto optional = [&](bool known, std::uint32_t v) {
    if (known) number(v);
    else s += '-';
  };
  s += magic;
  s += '\n';
  for (std::size_t d = 0; d < 2; ++d) {
    const DirHistory& h = dirs_[d];
    s += "dir ";
    s += dir_names[d];
    s += " base ";
    number(h.base);
    s += " acked ";
    optional(h.acked_known, h.acked);
    s += " sent ";
    optional(h.sent_known, h.sent_end);
    s += " n ";
    number(h.list.size());
    s += '\n';
    for (const Correction& c : h.list) {
      s += "corr ";
      number(c.pos);
      s += ' ';
      put_hex(s, c.old_bytes);
      s += ' ';
      put_hex(s, c.new_bytes);
      s += '\n';
    }
  }
}

Result<SeqAdjust> SeqAdjust::parse(std::string_view text) {
  // Lines end in '\n'; no blank lines, no trailing text.
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    auto nl = text.find('\n');
    if (nl == std::string_view::npos) return make_error("seqadj: last line has no newline");
    lines.push_back(text.substr(0, nl));
    text.remove_prefix(nl + 1);
  }
  if (lines.empty() || lines[0] != magic) return make_error("seqadj: not an 'ftpwall-seqadj 1' state");
  SeqAdjust sa;
  std::size_t ln = 1;
  for (std::size_t d = 0; d < 2; ++d) {
    auto where = [&] { return "seqadj line " + std::to_string(ln + 1) + ": "; };
    if (ln >= lines.size()) return make_error("seqadj: missing 'dir " + std::string(dir_names[d]) + "' line");
    auto f = split(lines[ln]);
    if (f.size() != 10 || f[0] != "dir" || f[1] != dir_names[d] || f[2] != "base" || f[4] != "acked" ||
        f[6] != "sent" || f[8] != "n")
      return make_error(where() + "expected 'dir " + std::string(dir_names[d]) + " base B acked A|- sent S|- n N'");
    // Plain values rather than optionals: GCC 12 warns (falsely) about optionals read later.
    const bool has_acked = f[5] != "-", has_sent = f[7] != "-";
    auto base = get_u32(f[3]);
    auto acked_v = has_acked ? get_u32(f[5]) : std::optional<std::uint32_t>(0u);
    auto sent_v = has_sent ? get_u32(f[7]) : std::optional<std::uint32_t>(0u);
    auto n = get_u32(f[9]);
    if (!base || !acked_v || !sent_v || !n) return make_error(where() + "bad number");
    if (*n > limits::max_corrections_per_direction) return make_error(where() + "more corrections than the bound");
    const std::uint32_t acked = *acked_v, sent = *sent_v;
    const Direction dir = d == 0 ? Direction::client_to_server : Direction::server_to_client;
    DirHistory& h = sa.dirs_[d];
    h.base = *base;
    ++ln;
    for (std::uint32_t k = 0; k < *n; ++k, ++ln) {
      if (ln >= lines.size()) return make_error("seqadj: missing corr line");
      auto c = split(lines[ln]);
      if (c.size() != 4 || c[0] != "corr") return make_error(where() + "expected 'corr POS OLDHEX NEWHEX'");
      auto pos = get_u32(c[1]);
      auto old_b = get_hex(c[2]);
      auto new_b = get_hex(c[3]);
      if (!pos || !old_b || !new_b) return make_error(where() + "bad number or hex");
      if (*old_b == *new_b) return make_error(where() + "correction changes nothing");
      if (auto r = sa.record(dir, *pos, *old_b, *new_b); !r) return make_error(where() + r.error().message);
    }
    if (!h.list.empty() && !has_sent) return make_error("seqadj: corrections without a sent position");
    if (has_sent) {
      if (h.sent_known && seq_before(sent, h.sent_end))
        return make_error("seqadj: sent position before the end of a correction");
      h.sent_known = true;
      h.sent_end = sent;
    }
    if (has_acked) {
      if (!h.sent_known || seq_after(acked, h.sent_end))
        return make_error("seqadj: acknowledged beyond the sent position");
      if (!h.list.empty() && seq_after_eq(acked, h.list.front().end()))
        return make_error("seqadj: a correction the peer acknowledged was not collapsed");
      h.acked_known = true;
      h.acked = acked;
    }
  }
  if (ln != lines.size()) return make_error("seqadj: trailing lines");
  return sa;
}

}  // namespace ftpwall
