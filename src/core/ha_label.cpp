// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/ha_label.hpp"

#include <span>
#include <string>

namespace ftpwall {
namespace {

constexpr std::uint8_t f_corrected_s2c = 1u << 0;
constexpr std::uint8_t f_last = 1u << 1;
constexpr std::uint8_t f_last_by_server = 1u << 2;
constexpr std::uint8_t f_opening_live = 1u << 3;
constexpr std::uint8_t f_rewrite_pending = 1u << 4;
constexpr std::uint8_t f_address_only = 1u << 5;
constexpr std::uint8_t f_not_carried = 1u << 6;
constexpr std::uint8_t f_known = 0x7f;

void put32(LabelBytes& b, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::uint8_t>(v >> (24 - 8 * i));
}
void put16(LabelBytes& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}
std::uint32_t get32(std::span<const std::uint8_t, 16> b, std::size_t at) {
  return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) | (std::uint32_t{b[at + 2]} << 8) | b[at + 3];
}
std::uint16_t get16(std::span<const std::uint8_t, 16> b, std::size_t at) {
  return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}

bool known_kind(std::uint8_t k) {
  return k >= static_cast<std::uint8_t>(AnnouncementKind::port) &&
         k <= static_cast<std::uint8_t>(AnnouncementKind::lpsv_reply);
}

// The old and new bytes of the last announcement's rewrite, as the core would have recorded them.
struct RewriteBytes {
  std::string old_bytes, new_bytes;
};
RewriteBytes rewrite_bytes(const LastAnnouncement& a, const ConnTuples& t, bool address_only) {
  const AnnouncedEndpoints e = announced_endpoints(a, t);
  RewriteBytes r{format_announced(a.kind, e.inside, '|'), format_announced(a.kind, e.announce, '|')};
  if (address_only) {
    // A split 227 (tracker.hpp's hold): the address h1,h2,h3,h4 only, the port passed unheld.
    const auto cut = [](std::string& s) {
      std::size_t commas = 0;
      for (std::size_t i = 0; i < s.size(); ++i)
        if (s[i] == ',' && ++commas == 4) {
          s.resize(i);
          return;
        }
    };
    cut(r.old_bytes);
    cut(r.new_bytes);
  }
  return r;
}

bool same(std::span<const std::uint8_t> v, const std::string& s) {
  return v.size() == s.size() && std::equal(v.begin(), v.end(), s.begin(),
                                            [](std::uint8_t a, char b) { return a == static_cast<std::uint8_t>(b); });
}

std::string hex(const std::string& s) {
  static constexpr char digits[] = "0123456789abcdef";
  if (s.empty()) return "-";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

}  // namespace

AnnouncedEndpoints announced_endpoints(const LastAnnouncement& a, const ConnTuples& t) {
  // Passive (227/229/228): the client dials the server as it sees it; behind DNAT the real server.
  // Active (PORT/EPRT/LPRT): the server dials the client as it sees it (after SNAT); the real client.
  if (a.by == Direction::server_to_client)
    return {Endpoint{t.server_as_seen(), a.port}, Endpoint{t.server_real(), a.inside_port}};
  return {Endpoint{t.client_as_seen(), a.port}, Endpoint{t.client_real(), a.inside_port}};
}

LabelBytes encode_label(const HaLabel& l) {
  LabelBytes b{};
  b[0] = HaLabel::magic_v1;
  std::uint8_t f = 0;
  if (!l.carried) f |= f_not_carried;
  if (l.corrected == Direction::server_to_client) f |= f_corrected_s2c;
  if (l.last) {
    f |= f_last;
    if (l.last->by == Direction::server_to_client) f |= f_last_by_server;
    if (l.opening_live) f |= f_opening_live;
    if (l.rewrite_pending) f |= f_rewrite_pending;
    if (l.address_only) f |= f_address_only;
    b[10] = static_cast<std::uint8_t>(l.last->kind);
    put16(b, 11, l.last->port);
    put16(b, 13, l.last->inside_port);
  }
  b[1] = f;
  put32(b, 2, l.base);
  put32(b, 6, l.rewrite_pending ? l.pos : 0);
  return b;
}

std::optional<HaLabel> decode_label(std::span<const std::uint8_t, 16> b) {
  if (b[0] != HaLabel::magic_v1 || (b[1] & ~f_known) != 0 || b[15] != 0) return std::nullopt;
  const std::uint8_t f = b[1];
  HaLabel l;
  l.carried = !(f & f_not_carried);
  l.corrected = (f & f_corrected_s2c) ? Direction::server_to_client : Direction::client_to_server;
  l.base = get32(b, 2);
  if (f & f_last) {
    if (!known_kind(b[10])) return std::nullopt;
    LastAnnouncement a;
    a.kind = static_cast<AnnouncementKind>(b[10]);
    a.by = (f & f_last_by_server) ? Direction::server_to_client : Direction::client_to_server;
    a.port = get16(b, 11);
    a.inside_port = get16(b, 13);
    l.last = a;
    l.opening_live = f & f_opening_live;
    l.rewrite_pending = f & f_rewrite_pending;
    l.address_only = f & f_address_only;
    l.pos = l.rewrite_pending ? get32(b, 6) : 0;
    if (!l.rewrite_pending && (get32(b, 6) != 0 || l.address_only)) return std::nullopt;
  } else if ((f & (f_last_by_server | f_opening_live | f_rewrite_pending | f_address_only)) || get32(b, 6) != 0 ||
             b[10] != 0 || get32(b, 11) != 0) {
    return std::nullopt;  // bytes 6-14 are zero without a last announcement: one encoding per label
  }
  // A pending rewrite belongs to the last announcement, and so to its direction.
  if (l.rewrite_pending && l.last->by != l.corrected) return std::nullopt;
  return l;
}

HaLabel make_label(const SeqAdjust& h, const ConnTuples& t, const std::optional<LastAnnouncement>& last,
                   bool opening_live) {
  HaLabel l;
  l.last = last;
  l.opening_live = last && opening_live;
  const auto busy = [&](Direction d) { return h.base_offset(d) != 0 || !h.history(d).empty(); };
  const bool c2s = busy(Direction::client_to_server), s2c = busy(Direction::server_to_client);
  if (c2s && s2c) {
    l.carried = false;  // both directions corrected: two offsets do not fit
    return l;
  }
  l.corrected = c2s ? Direction::client_to_server
                    : s2c ? Direction::server_to_client
                          : (last ? last->by : Direction::server_to_client);
  l.base = h.base_offset(l.corrected);
  const auto& list = h.history(l.corrected);
  if (list.empty()) return l;
  if (list.size() > 1 || !last || last->by != l.corrected) {
    l.carried = false;
    return l;
  }
  const Correction& c = list.front();
  for (const bool address_only : {false, true}) {
    const RewriteBytes r = rewrite_bytes(*last, t, address_only);
    if (same(c.old_bytes, r.old_bytes) && same(c.new_bytes, r.new_bytes)) {
      l.rewrite_pending = true;
      l.address_only = address_only;
      l.pos = c.pos;
      return l;
    }
  }
  l.carried = false;  // not the last announcement's canonical text: cannot be rebuilt
  return l;
}

Result<SeqAdjust> label_history(const HaLabel& l, const ConnTuples& t) {
  if (!l.carried) return make_error("the label says its correction history did not fit");
  std::string text = "ftpwall-seqadj 1\n";
  for (const Direction d : {Direction::client_to_server, Direction::server_to_client}) {
    text += d == Direction::client_to_server ? "dir c2s" : "dir s2c";
    if (d != l.corrected) {
      text += " base 0 acked - sent - n 0\n";
      continue;
    }
    if (!l.rewrite_pending) {
      text += " base " + std::to_string(l.base) + " acked - sent - n 0\n";
      continue;
    }
    const RewriteBytes r = rewrite_bytes(*l.last, t, l.address_only);
    if (r.old_bytes.empty() || r.old_bytes == r.new_bytes)
      return make_error("the label's pending rewrite changes nothing");
    const std::uint32_t end = l.pos + static_cast<std::uint32_t>(r.old_bytes.size());
    text += " base " + std::to_string(l.base) + " acked - sent " + std::to_string(end) + " n 1\n";
    text += "corr " + std::to_string(l.pos) + " " + hex(r.old_bytes) + " " + hex(r.new_bytes) + "\n";
  }
  return SeqAdjust::parse(text);
}

std::optional<OpenData> label_opening(const HaLabel& l, const ConnTuples& t, std::uint32_t opening) {
  if (!l.last || !l.opening_live) return std::nullopt;
  const AnnouncedEndpoints e = announced_endpoints(*l.last, t);
  OpenData o;
  o.opening = opening;
  o.kind = l.last->kind;
  o.announced_by = l.last->by;
  o.family = t.family();
  o.source = l.last->by == Direction::client_to_server ? t.server_real() : t.client_real();
  o.destination = e.announce;
  o.inside = e.inside;
  return o;
}

}  // namespace ftpwall
