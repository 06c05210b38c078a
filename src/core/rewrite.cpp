// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/rewrite.hpp"

#include <algorithm>

#include "ftpwall/core/limits.hpp"

namespace ftpwall {

RewritePlan plan_rewrite(const ConnTuples& t, Direction from, AnnouncementKind kind, const Endpoint& announced,
                         std::optional<std::uint16_t> public_port) {
  const bool client = from == Direction::client_to_server;
  const Address& real = client ? t.client_real() : t.server_real();
  const Address& seen = client ? t.client_as_seen() : t.server_as_seen();
  const bool nat = client ? t.client_nat() : t.server_nat();

  RewritePlan p{false, announced, announced};
  if (nat && announced.addr == real) {
    // The inside address leaks to a peer that cannot reach it: publish the as-seen one.
    p.rewrite = kind != AnnouncementKind::epsv_reply;
    p.announce.addr = seen;
  } else if (nat && announced.addr == seen) {
    // Already public (e.g. vsftpd pasv_address, or the 229 address the client dials): the
    // opening DNATs to the real side. A client reaches here only with the policy's
    // allow_client_public_address (security review M1): by default Policy::check refuses it.
    p.inside.addr = real;
  }
  if (public_port && *public_port != announced.port) {
    p.announce.port = *public_port;
    p.rewrite = true;
  }
  return p;
}

std::optional<std::uint16_t> next_free_port(std::uint16_t wanted, const std::function<bool(std::uint16_t)>& taken) {
  constexpr std::uint16_t lowest = 1024;  // wrap below the privileged ports, as an unprivileged client's would
  std::uint16_t port = wanted;
  for (std::size_t i = 0; i < limits::nat_port_tries; ++i) {
    if (!taken(port)) return port;
    port = port == 65535 || port < lowest ? lowest : static_cast<std::uint16_t>(port + 1);
  }
  return std::nullopt;
}

namespace {
bool digit(char c) { return c >= '0' && c <= '9'; }
char upper_ascii(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }
bool starts_with_nocase(std::string_view s, std::string_view kw) {
  if (s.size() < kw.size()) return false;
  for (std::size_t i = 0; i < kw.size(); ++i)
    if (upper_ascii(s[i]) != kw[i]) return false;
  return true;
}
}  // namespace

std::optional<std::size_t> rewrite_region_start(Direction from, std::string_view partial) {
  if (from == Direction::client_to_server) {
    // parse_command: the verb, one SP, the arguments (anything else is bad_syntax, never rewritten).
    if (partial.size() < 5) return std::nullopt;
    if (!starts_with_nocase(partial, "PORT ") && !starts_with_nocase(partial, "EPRT ")) return std::nullopt;
    return 5;
  }
  if (!partial.starts_with("227 ")) return std::nullopt;
  for (std::size_t i = 4; i < partial.size(); ++i)
    if (digit(partial[i])) return i;
  return std::nullopt;
}

PasvAddressPrefix pasv_address_prefix(std::string_view partial) {
  PasvAddressPrefix r;
  const auto start = rewrite_region_start(Direction::server_to_client, partial);
  if (!start) return r;
  r.begin = *start;
  std::size_t pos = r.begin;
  std::uint8_t f[4] = {};
  for (int i = 0; i < 4; ++i) {
    unsigned v = 0, n = 0;
    while (pos < partial.size() && digit(partial[pos])) {
      v = v * 10 + static_cast<unsigned>(partial[pos] - '0');
      ++n;
      ++pos;
      if (n > 3 || v > 255) {
        r.state = PasvAddressPrefix::State::invalid;
        return r;
      }
    }
    if (pos == partial.size()) return r;  // the field or its comma is still to come
    if (n == 0 || partial[pos] != ',') {
      r.state = PasvAddressPrefix::State::invalid;
      return r;
    }
    f[i] = static_cast<std::uint8_t>(v);
    ++pos;
  }
  r.end = pos;
  r.addr = Address::v4(f[0], f[1], f[2], f[3]);
  // The real parser must agree on a completion: same start, same address.
  std::string probe(partial.substr(4, pos - 4));
  probe += "0,0";
  auto parsed = parse_pasv_reply(probe);
  r.state = parsed && parsed->range.begin + 4 == r.begin && parsed->endpoint.addr == r.addr
                ? PasvAddressPrefix::State::complete
                : PasvAddressPrefix::State::invalid;
  return r;
}

std::string format_pasv_address(const Address& a) {
  std::string s = format_port_args(Endpoint{a, 0});
  return s.substr(0, s.size() - 4);  // drop ",0,0"
}

std::string replace_range(std::string_view line, TextRange range, std::string_view replacement) {
  // Ranges come from the parsers and lie inside the line; clamp anyway so a caller's mistake
  // cannot make substr throw on wire data.
  range.end = std::min(range.end, line.size());
  range.begin = std::min(range.begin, range.end);
  std::string out;
  out.reserve(line.size() - range.size() + replacement.size());
  out.append(line.substr(0, range.begin));
  out.append(replacement);
  out.append(line.substr(range.end));
  return out;
}

std::string rewrite_line(std::string_view line, AnnouncementKind kind, TextRange range, char delimiter,
                         const Endpoint& ep) {
  return replace_range(line, range, format_announced(kind, ep, delimiter));
}

}  // namespace ftpwall
