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
