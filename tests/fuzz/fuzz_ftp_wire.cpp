// SPDX-License-Identifier: GPL-2.0-or-later
// libFuzzer target for the FTP wire layer: every parser, the parse/format round trips, the rewrite,
// and a Session fed with lines of both directions.
//
// Input layout: byte 0 picks the scenario (bits 0-1: NAT layout, bit 2: require_login, bit 3:
// IPv6 control connection); the rest is split at '\n' into lines; a line starting with 's' is
// server -> client, any other first byte client -> server; that first byte is not part of the line.
// The whole input (minus byte 0) is also fed to every parser as one string.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ftpwall/core/ftp_wire.hpp"
#include "ftpwall/core/limits.hpp"
#include "ftpwall/core/policy.hpp"
#include "ftpwall/core/rewrite.hpp"
#include "ftpwall/core/session.hpp"

using namespace ftpwall;

namespace {

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

// parse(format(parse(x))) == parse(x) for formats with an endpoint, and the rewrite of x with its
// own endpoint parses back to the same endpoint.
void round_trip(AnnouncementKind kind, AnnouncementParser parse, std::string_view text) {
  auto a = parse(text);
  if (!a) return;
  CHECK(a->range.begin <= a->range.end && a->range.end <= text.size());
  std::string f = format_announced(kind, a->endpoint, a->delimiter);
  std::string rewritten = replace_range(text, a->range, f);
  auto b = parse(rewritten);
  CHECK(b.ok());
  CHECK(b->endpoint == a->endpoint);
  CHECK(b->delimiter == a->delimiter);
  CHECK(rewritten.substr(0, a->range.begin) == text.substr(0, a->range.begin));
  CHECK(std::string_view(rewritten).substr(b->range.end) == text.substr(a->range.end));
  // For the argument formats the formatter alone is the whole text.
  if (kind == AnnouncementKind::port || kind == AnnouncementKind::eprt || kind == AnnouncementKind::lprt) {
    auto c = parse(f);
    CHECK(c.ok() && c->endpoint == a->endpoint);
  }
}

ConnTuples scenario(std::uint8_t s) {
  if (s & 8) {
    auto cl = *Address::parse("2001:db8::5"), sv = *Address::parse("2001:db8::9");
    return ConnTuples::without_nat({cl, 40000}, {sv, 21});
  }
  const Address c_real = Address::v4(10, 0, 0, 5), c_pub = Address::v4(203, 0, 113, 1);
  const Address s_real = Address::v4(10, 1, 1, 2), s_pub = Address::v4(203, 0, 113, 2);
  const Address c_plain = Address::v4(198, 51, 100, 7), s_plain = Address::v4(198, 51, 100, 9);
  switch (s & 3) {
    case 0: return ConnTuples::without_nat({c_plain, 40000}, {s_plain, 21});
    case 1: return {{{c_real, 40000}, {s_plain, 21}}, {{s_plain, 21}, {c_pub, 40000}}};
    case 2: return {{{c_plain, 40000}, {s_pub, 21}}, {{s_real, 21}, {c_plain, 40000}}};
    default: return {{{c_real, 40000}, {s_pub, 21}}, {{s_real, 21}, {c_pub, 40000}}};
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t sc = data[0];
  std::string_view all(reinterpret_cast<const char*>(data + 1), size - 1);

  // Every parser on the whole input.
  round_trip(AnnouncementKind::port, parse_port_args, all);
  round_trip(AnnouncementKind::eprt, parse_eprt_args, all);
  round_trip(AnnouncementKind::lprt, parse_lprt_args, all);
  round_trip(AnnouncementKind::pasv_reply, parse_pasv_reply, all);
  round_trip(AnnouncementKind::epsv_reply, parse_epsv_reply, all);
  round_trip(AnnouncementKind::lpsv_reply, parse_lpsv_reply, all);
  Command cmd = parse_command(all);
  CHECK(cmd.args_offset <= all.size());
  (void)parse_epsv_args(cmd.args);
  (void)parse_auth_args(cmd.args);
  if (auto r = parse_reply_line(all)) {
    CHECK(r->code >= 100 && r->code <= 699);
    CHECK(r->text_offset <= all.size());
  }
  (void)may_announce(Direction::client_to_server, all);
  (void)may_announce(Direction::server_to_client, all);

  // A Session over the lines.
  PolicyConfig cfg;
  cfg.require_login = (sc & 4) != 0;
  Policy policy(cfg);
  const ConnTuples tuples = scenario(sc);
  Session session(tuples, policy);
  std::vector<Decision> out;
  std::uint64_t offset[2] = {0, 0};
  std::uint32_t last_opening = 0;
  std::size_t pos = 0;
  while (pos < all.size()) {
    std::size_t nl = all.find('\n', pos);
    std::string_view raw = all.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? all.size() : nl + 1;
    if (raw.empty()) continue;
    const Direction dir = raw[0] == 's' ? Direction::server_to_client : Direction::client_to_server;
    std::string_view line = raw.substr(1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::uint64_t off = offset[static_cast<int>(dir)];
    out.clear();
    session.on_line(dir, line, off, out);
    offset[static_cast<int>(dir)] += line.size() + 2;
    for (const auto& d : out) {
      (void)to_string(d);
      if (auto* rw = std::get_if<Rewrite>(&d)) {
        CHECK(rw->direction == dir && rw->line_offset == off);
        CHECK(rw->stream_offset >= off && rw->stream_offset - off + rw->old_bytes.size() <= line.size());
        CHECK(line.substr(rw->stream_offset - off, rw->old_bytes.size()) == rw->old_bytes);
        CHECK(line.size() + 2 <= limits::max_announcement_line);
      } else if (auto* o = std::get_if<OpenData>(&d)) {
        CHECK(o->opening == last_opening + 1);
        last_opening = o->opening;
        CHECK(o->destination.port >= cfg.port_floor);
        CHECK(o->family == tuples.family() && o->destination.addr.family == tuples.family());
        CHECK(session.greeted());
      } else if (auto* v = std::get_if<Violation>(&d)) {
        CHECK(v->reason != Reason::none);
        CHECK(v->bytes.size() <= limits::max_violation_bytes);
      } else if (auto* c = std::get_if<CloseData>(&d)) {
        CHECK(c->opening == last_opening);
      }
    }
  }
  return 0;
}
