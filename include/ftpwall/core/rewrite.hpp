// SPDX-License-Identifier: GPL-2.0-or-later
// NAT rewrite (issue 3 item 8). The conntrack tuples of the session say which side is behind NAT;
// an accepted announcement that carries a NATed side's real (inside) address is useless to its
// peer and gets the address the peer sees instead. Everything else on the line stays byte for byte.
//
//   client 10.0.0.5 behind SNAT to 203.0.113.1:
//     "PORT 10,0,0,5,195,80"           -> "PORT 203,0,113,1,195,80"       (inside 10.0.0.5:50000)
//   server 10.1.1.2 behind DNAT from 203.0.113.1:
//     "227 Entering Passive Mode (10,1,1,2,195,80)." -> "... (203,0,113,1,195,80)."
//   server already announcing its public address (vsftpd pasv_address): no rewrite, still an
//     opening whose inside endpoint is the real server.
//   229 carries no address: no rewrite (unless the public port must change).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ftpwall/core/addr.hpp"
#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/ftp_wire.hpp"

namespace ftpwall {

struct RewritePlan {
  bool rewrite = false;  // the line must change
  Endpoint announce;     // what the peer must read (the public endpoint, as seen at the firewall)
  Endpoint inside;       // the real endpoint behind NAT (== announce without NAT)
  bool operator==(const RewritePlan&) const = default;
};

// For an announcement already accepted by the policy. `announced` is what the line carried; for a
// 229 pass the address the client dials (server_as_seen()) and the port. `public_port`, when the
// daemon must publish another port than the inside one, forces a rewrite with that port; the inside
// port stays the announced one.
RewritePlan plan_rewrite(const ConnTuples& tuples, Direction from, AnnouncementKind kind, const Endpoint& announced,
                         std::optional<std::uint16_t> public_port = std::nullopt);

// The line with `range` (relative to the line) replaced by `replacement`.
std::string replace_range(std::string_view line, TextRange range, std::string_view replacement);

// The announcement line rewritten to announce `ep`: the range holding address/port gets the
// kind's format (same delimiter for EPRT/229), everything else byte for byte.
// range_in_line = Announced::range shifted to line offsets.
std::string rewrite_line(std::string_view line, AnnouncementKind kind, TextRange range_in_line, char delimiter,
                         const Endpoint& ep);

}  // namespace ftpwall
