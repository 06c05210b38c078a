// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/session_record.hpp"

#include <charconv>
#include <vector>


namespace ftpwall {
namespace {

constexpr std::string_view magic = "ftpwalld-session 1";

// Splits off the next line (without its LF) from `text`.
std::string_view next_line(std::string_view& text) {
  const auto nl = text.find('\n');
  std::string_view line = text.substr(0, nl);
  text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
  return line;
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> w;
  while (!line.empty()) {
    const auto b = line.find_first_not_of(' ');
    if (b == std::string_view::npos) break;
    line.remove_prefix(b);
    const auto e = line.find(' ');
    w.push_back(line.substr(0, e));
    line = e == std::string_view::npos ? std::string_view{} : line.substr(e);
  }
  return w;
}

Result<Tuple> parse_tuple_line(std::string_view line, std::string_view name) {
  const auto w = words(line);
  if (w.size() != 3 || w[0] != name) return make_error("state record: expected \"" + std::string(name) + " SRC DST\"");
  auto s = parse_endpoint(w[1]);
  if (!s) return s.error();
  auto d = parse_endpoint(w[2]);
  if (!d) return d.error();
  return Tuple{*s, *d};
}

void append_number(std::string& out, std::uint64_t v) {
  char buf[20];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

void append_tuple_line(std::string& out, std::string_view name, const Tuple& t) {
  out += name;
  out += ' ';
  t.src.append_to(out);
  out += ' ';
  t.dst.append_to(out);
  out += '\n';
}

}  // namespace

Result<Endpoint> parse_endpoint(std::string_view text) {
  std::string_view addr, port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find("]:");
    if (close == std::string_view::npos) return make_error("endpoint \"" + std::string(text) + "\": expected [ADDR]:PORT");
    addr = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return make_error("endpoint \"" + std::string(text) + "\": expected ADDR:PORT");
    addr = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto a = Address::parse(addr);
  if (!a) return a.error();
  unsigned p = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc{} || end != port.data() + port.size() || port.empty() || p > 65535)
    return make_error("endpoint \"" + std::string(text) + "\": bad port");
  return Endpoint{*a, static_cast<std::uint16_t>(p)};
}

void append_session_record_prefix(std::string& out, std::uint32_t ct_id, const ConnTuples& tuples, const Tuple& key) {
  out += magic;
  out += "\nct ";
  append_number(out, ct_id);
  out += '\n';
  append_tuple_line(out, "original", tuples.original);
  append_tuple_line(out, "reply", tuples.reply);
  append_tuple_line(out, "key", key);
}

void append_session_record(std::string& out, std::uint32_t ct_id, const ConnTuples& tuples, const Tuple& key,
                           const SeqAdjust& corrections) {
  append_session_record_prefix(out, ct_id, tuples, key);
  corrections.serialize_to(out);
}

std::string format_session_record(const SessionRecord& r) {
  std::string out;
  out.reserve(320);
  append_session_record(out, r);
  return out;
}

Result<SessionRecord> parse_session_record(std::string_view text) {
  SessionRecord r;
  if (next_line(text) != magic) return make_error("state record: not \"" + std::string(magic) + "\"");
  const auto ct = words(next_line(text));
  if (ct.size() != 2 || ct[0] != "ct") return make_error("state record: expected \"ct ID\"");
  const auto [end, ec] = std::from_chars(ct[1].data(), ct[1].data() + ct[1].size(), r.ct_id);
  if (ec != std::errc{} || end != ct[1].data() + ct[1].size()) return make_error("state record: bad conntrack id");
  auto o = parse_tuple_line(next_line(text), "original");
  if (!o) return o.error();
  auto p = parse_tuple_line(next_line(text), "reply");
  if (!p) return p.error();
  auto k = parse_tuple_line(next_line(text), "key");
  if (!k) return k.error();
  r.tuples = {*o, *p};
  r.key = *k;
  auto seq = SeqAdjust::parse(text);
  if (!seq) return seq.error();
  r.corrections = std::move(*seq);
  return r;
}

}  // namespace ftpwall
