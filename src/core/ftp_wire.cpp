// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/ftp_wire.hpp"

#include <algorithm>
#include <cassert>

namespace ftpwall {
namespace {

constexpr bool is_digit(char c) { return c >= '0' && c <= '9'; }
constexpr bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
constexpr char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (upper(a[i]) != upper(b[i])) return false;
  return true;
}

// RFC 2428: the delimiter is any ASCII 33-126; a digit would be ambiguous with the fields.
constexpr bool valid_delimiter(char c) { return c >= 33 && c <= 126 && !is_digit(c); }

Error syntax(std::string_view what, std::string_view text) {
  // Bounded: wire text can be long and hostile; 80 bytes identify it in a message.
  constexpr std::size_t show = 80;
  std::string s(what);
  s += ": '";
  s.append(text.substr(0, show));
  if (text.size() > show) s += "...";
  s += "'";
  return make_error(std::move(s));
}

// One field of a PORT/227/LPRT list: 1-3 decimal digits, 0-255. Advances pos.
std::optional<std::uint8_t> read_byte_field(std::string_view s, std::size_t& pos) {
  unsigned v = 0;
  std::size_t n = 0;
  while (pos < s.size() && is_digit(s[pos])) {
    if (++n > 3) return std::nullopt;
    v = v * 10 + static_cast<unsigned>(s[pos] - '0');
    ++pos;
  }
  if (n == 0 || v > 255) return std::nullopt;
  return static_cast<std::uint8_t>(v);
}

// n comma-separated byte fields starting at pos; on success pos is just past the last field.
bool read_byte_list(std::string_view s, std::size_t& pos, std::uint8_t* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) {
      if (pos >= s.size() || s[pos] != ',') return false;
      ++pos;
    }
    auto f = read_byte_field(s, pos);
    if (!f) return false;
    out[i] = *f;
  }
  return true;
}

// A TCP port in EPRT/229: 1-5 digits, no leading zero, 1-65535.
std::optional<std::uint16_t> parse_tcp_port(std::string_view s) {
  if (s.empty() || s.size() > 5 || s[0] == '0') return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v < 1 || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

Endpoint v4_endpoint(const std::uint8_t* f) {
  return {Address::v4(f[0], f[1], f[2], f[3]), static_cast<std::uint16_t>(f[4] * 256 + f[5])};
}

// The six fields of PORT and 227 at pos; pos ends after p2.
std::optional<Endpoint> read_host_port(std::string_view s, std::size_t& pos) {
  std::uint8_t f[6];
  if (!read_byte_list(s, pos, f, 6)) return std::nullopt;
  return v4_endpoint(f);
}

// LPRT/228 fields at pos: af,hal,h1..hn,pal,p1,p2 with (af,hal) = (4,4) or (6,16) and pal = 2.
std::optional<Endpoint> read_long_host_port(std::string_view s, std::size_t& pos) {
  std::uint8_t head[2];
  if (!read_byte_list(s, pos, head, 2)) return std::nullopt;
  Endpoint ep;
  std::size_t hal = 0;
  if (head[0] == 4 && head[1] == 4) {
    ep.addr.family = Family::v4;
    hal = 4;
  } else if (head[0] == 6 && head[1] == 16) {
    ep.addr.family = Family::v6;
    hal = 16;
  } else {
    return std::nullopt;
  }
  std::uint8_t rest[16 + 3];
  if (pos >= s.size() || s[pos] != ',') return std::nullopt;
  ++pos;
  if (!read_byte_list(s, pos, rest, hal + 3)) return std::nullopt;
  for (std::size_t i = 0; i < hal; ++i) ep.addr.bytes[i] = rest[i];
  if (rest[hal] != 2) return std::nullopt;
  ep.port = static_cast<std::uint16_t>(rest[hal + 1] * 256 + rest[hal + 2]);
  return ep;
}

std::size_t first_digit(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i)
    if (is_digit(s[i])) return i;
  return std::string_view::npos;
}

// After a scanned list, the next character must not continue it ("...,4,1,9" or "...,4,1000").
bool list_ends_at(std::string_view s, std::size_t pos) {
  return pos >= s.size() || (s[pos] != ',' && !is_digit(s[pos]));
}

}  // namespace

std::string_view name(AnnouncementKind k) {
  switch (k) {
    case AnnouncementKind::none: return "none";
    case AnnouncementKind::port: return "port";
    case AnnouncementKind::eprt: return "eprt";
    case AnnouncementKind::lprt: return "lprt";
    case AnnouncementKind::pasv_reply: return "pasv_reply";
    case AnnouncementKind::epsv_reply: return "epsv_reply";
    case AnnouncementKind::lpsv_reply: return "lpsv_reply";
  }
  return "unknown";
}

// ---- PORT ----

Result<Announced> parse_port_args(std::string_view args) {
  std::size_t pos = 0;
  auto ep = read_host_port(args, pos);
  if (!ep || pos != args.size()) return syntax("PORT wants h1,h2,h3,h4,p1,p2", args);
  return Announced{*ep, true, 0, {0, args.size()}};
}

namespace {
// The decimal byte lists shared by PORT/227 (RFC 959 4.1.2) and LPRT/228 (RFC 1639 2): "h1,...,hn,"
// for the first n address bytes, and "p1,p2" for the port (high byte first).
void append_address_fields(std::string& s, const Address& a, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    s += std::to_string(a.bytes[i]);
    s += ',';
  }
}
void append_port_fields(std::string& s, std::uint16_t port) {
  s += std::to_string(port >> 8);
  s += ',';
  s += std::to_string(port & 0xff);
}
}  // namespace

std::string format_port_args(const Endpoint& ep) {
  assert(ep.addr.family == Family::v4);
  std::string s;
  append_address_fields(s, ep.addr, 4);
  append_port_fields(s, ep.port);
  return s;
}

// ---- EPRT ----

Result<Announced> parse_eprt_args(std::string_view args) {
  if (args.size() < 2 || !valid_delimiter(args[0])) return syntax("EPRT wants |net-prt|net-addr|tcp-port|", args);
  const char d = args[0];
  std::string_view field[3];
  std::size_t pos = 1;
  for (auto& f : field) {
    auto next = args.find(d, pos);
    if (next == std::string_view::npos) return syntax("EPRT wants |net-prt|net-addr|tcp-port|", args);
    f = args.substr(pos, next - pos);
    pos = next + 1;
  }
  if (pos != args.size()) return syntax("EPRT: text after the last delimiter", args);
  Family fam;
  if (field[0] == "1") {
    fam = Family::v4;
  } else if (field[0] == "2") {
    fam = Family::v6;
  } else {
    return syntax("EPRT: net-prt must be 1 or 2", args);
  }
  // Strict address text: only the characters of the family's form (no zone "%eth0", no spaces),
  // then the libc parser (which refuses leading zeros in a dotted quad).
  for (char c : field[1]) {
    bool ok = is_digit(c) || c == '.' || (fam == Family::v6 && (c == ':' || (upper(c) >= 'A' && upper(c) <= 'F')));
    if (!ok) return syntax("EPRT: bad address", args);
  }
  auto addr = Address::parse(field[1], fam);
  if (!addr) return syntax("EPRT: bad address", args);
  auto port = parse_tcp_port(field[2]);
  if (!port) return syntax("EPRT: port must be 1-65535", args);
  return Announced{{*addr, *port}, true, d, {0, args.size()}};
}

std::string format_eprt_args(const Endpoint& ep, char delim) {
  std::string s(1, delim);
  s += ep.addr.family == Family::v4 ? '1' : '2';
  s += delim;
  s += ep.addr.to_string();
  s += delim;
  s += std::to_string(ep.port);
  s += delim;
  return s;
}

// ---- LPRT ----

Result<Announced> parse_lprt_args(std::string_view args) {
  std::size_t pos = 0;
  auto ep = read_long_host_port(args, pos);
  if (!ep || pos != args.size()) return syntax("LPRT wants af,hal,h1,...,pal,p1,p2", args);
  return Announced{*ep, true, 0, {0, args.size()}};
}

std::string format_lprt_args(const Endpoint& ep) {
  std::string s = ep.addr.family == Family::v4 ? "4,4," : "6,16,";  // af,hal
  append_address_fields(s, ep.addr, ep.addr.size());
  s += "2,";  // pal
  append_port_fields(s, ep.port);
  return s;
}

// ---- 227 ----

Result<Announced> parse_pasv_reply(std::string_view text) {
  std::size_t begin = first_digit(text);
  if (begin == std::string_view::npos) return syntax("227 without h1,h2,h3,h4,p1,p2", text);
  std::size_t pos = begin;
  auto ep = read_host_port(text, pos);
  if (!ep || !list_ends_at(text, pos)) return syntax("227 wants h1,h2,h3,h4,p1,p2", text);
  return Announced{*ep, true, 0, {begin, pos}};
}

std::string format_pasv_reply(const Endpoint& ep) {
  return "Entering Passive Mode (" + format_port_args(ep) + ").";
}

// ---- 229 ----

Result<Announced> parse_epsv_reply(std::string_view text) {
  auto open = text.find('(');
  if (open == std::string_view::npos) return syntax("229 wants (|||port|)", text);
  std::size_t p = open + 1;
  if (text.size() < p + 6 || !valid_delimiter(text[p])) return syntax("229 wants (|||port|)", text);
  const char d = text[p];
  if (text[p + 1] != d || text[p + 2] != d) return syntax("229 wants (|||port|)", text);
  auto close = text.find(d, p + 3);
  if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ')')
    return syntax("229 wants (|||port|)", text);
  auto port = parse_tcp_port(text.substr(p + 3, close - (p + 3)));
  if (!port) return syntax("229: port must be 1-65535", text);
  Announced a;
  a.endpoint.port = *port;
  a.has_address = false;
  a.delimiter = d;
  a.range = {p, close + 1};
  return a;
}

std::string format_epsv_field(std::uint16_t port, char delim) {
  std::string s(3, delim);
  s += std::to_string(port);
  s += delim;
  return s;
}

std::string format_epsv_reply(std::uint16_t port, char delim) {
  return "Entering Extended Passive Mode (" + format_epsv_field(port, delim) + ")";
}

// ---- 228 ----

Result<Announced> parse_lpsv_reply(std::string_view text) {
  std::size_t begin = first_digit(text);
  if (begin == std::string_view::npos) return syntax("228 without af,hal,...", text);
  std::size_t pos = begin;
  auto ep = read_long_host_port(text, pos);
  if (!ep || !list_ends_at(text, pos)) return syntax("228 wants af,hal,h1,...,pal,p1,p2", text);
  return Announced{*ep, true, 0, {begin, pos}};
}

std::string format_lpsv_reply(const Endpoint& ep) {
  return "Entering Long Passive Mode (" + format_lprt_args(ep) + ")";
}

std::string format_announced(AnnouncementKind kind, const Endpoint& ep, char delim) {
  switch (kind) {
    case AnnouncementKind::port:
    case AnnouncementKind::pasv_reply: return format_port_args(ep);
    case AnnouncementKind::eprt: return format_eprt_args(ep, delim ? delim : '|');
    case AnnouncementKind::lprt:
    case AnnouncementKind::lpsv_reply: return format_lprt_args(ep);
    case AnnouncementKind::epsv_reply: return format_epsv_field(ep.port, delim ? delim : '|');
    case AnnouncementKind::none: break;
  }
  return {};
}

// ---- commands ----

std::string_view name(Verb v) {
  if (v == Verb::other) return "other";
  if (auto* r = find_verb_row(v)) return r->word;
  return "unknown";
}

Command parse_command(std::string_view line) {
  Command c;
  std::size_t n = 0;
  while (n < line.size() && is_alpha(line[n])) ++n;
  c.word = line.substr(0, n);
  if (n == 0) {
    c.well_formed = false;
    return c;
  }
  if (n < line.size()) {
    if (line[n] != ' ') {
      c.well_formed = false;
    } else {
      c.args_offset = n + 1;
      c.args = line.substr(n + 1);
    }
  } else {
    c.args_offset = n;
  }
  if (auto* row = find_verb(c.word)) c.verb = row->verb;
  return c;
}

std::optional<EpsvArg> parse_epsv_args(std::string_view args) {
  if (args.empty()) return EpsvArg::any;
  if (args == "1") return EpsvArg::v4;
  if (args == "2") return EpsvArg::v6;
  if (iequals(args, "ALL")) return EpsvArg::all;
  return std::nullopt;
}

AuthMech parse_auth_args(std::string_view args) {
  if (iequals(args, "TLS")) return AuthMech::tls;
  if (iequals(args, "SSL")) return AuthMech::ssl;
  if (iequals(args, "TLS-C")) return AuthMech::tls_c;
  if (iequals(args, "TLS-P")) return AuthMech::tls_p;
  return AuthMech::other;
}

// ---- replies ----

std::optional<ReplyLine> parse_reply_line(std::string_view line) {
  if (line.size() < 3 || line[0] < '1' || line[0] > '6' || !is_digit(line[1]) || !is_digit(line[2]))
    return std::nullopt;
  ReplyLine r;
  r.code = static_cast<std::uint16_t>((line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
  if (line.size() == 3) {
    r.text_offset = 3;
    return r;
  }
  if (line[3] != ' ' && line[3] != '-') return std::nullopt;
  r.final = line[3] == ' ';
  r.text_offset = 4;
  r.text = line.substr(4);
  return r;
}

bool ends_multiline(std::string_view line, std::uint16_t code) {
  auto r = parse_reply_line(line);
  return r && r->final && r->code == code;
}

// ---- tables ----

const VerbRow* find_verb(std::string_view word) {
  for (const auto& r : verb_table)
    if (iequals(word, r.word)) return &r;
  return nullptr;
}

const ReplyRow* find_reply(std::uint16_t code) {
  for (const auto& r : reply_table)
    if (r.code == code) return &r;
  return nullptr;
}

const VerbRow* find_verb_row(Verb v) {
  for (const auto& r : verb_table)
    if (r.verb == v) return &r;
  return nullptr;
}

Direction announcer(AnnouncementKind k) {
  for (const auto& r : verb_table)
    if (r.announces == k) return r.from;
  for (const auto& r : reply_table)
    if (r.announces == k) return r.from;
  return Direction::client_to_server;
}

bool may_announce(Direction from, std::string_view start) {
  for (const auto& r : verb_table) {
    if (r.announces == AnnouncementKind::none || r.from != from) continue;
    std::size_t n = std::min(start.size(), r.word.size());
    if (!iequals(start.substr(0, n), r.word.substr(0, n))) continue;
    if (start.size() <= r.word.size() || start[r.word.size()] == ' ') return true;
  }
  for (const auto& r : reply_table) {
    if (r.announces == AnnouncementKind::none || r.from != from) continue;
    char code[3] = {static_cast<char>('0' + r.code / 100), static_cast<char>('0' + r.code / 10 % 10),
                    static_cast<char>('0' + r.code % 10)};
    std::string_view cs(code, 3);
    std::size_t n = std::min<std::size_t>(start.size(), 3);
    if (start.substr(0, n) != cs.substr(0, n)) continue;
    if (start.size() <= 3 || start[3] == ' ') return true;
  }
  return false;
}

}  // namespace ftpwall
