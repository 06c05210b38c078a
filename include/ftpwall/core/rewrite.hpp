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
//     opening whose inside endpoint is the real server. The same for a client announcing its
//     public address, which the policy accepts only with allow_client_public_address.
//   229 carries no address: no rewrite (unless the public port must change).
#pragma once

#include <cstdint>
#include <functional>
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

// "Port in use" (issue 5), as nf_nat_ftp: a client behind SNAT/MASQUERADE announces its inside
// port P; the opening DNATs (server, public address, public port) -> inside. When another live
// opening already uses that match (a second client behind the same gateway announcing the same P
// to the same server), the public port moves: P, then upward, wrapping from 65535 to 1024, at most
// limits::nat_port_tries ports; the rewrite carries the chosen port and the DNAT maps
// public:chosen -> inside:P. nullopt when all tried ports are taken (nat_port_exhausted).
//   next_free_port(50000, taken = {50000, 50001}) == 50002
//   next_free_port(65535, taken = {65535})        == 1024
std::optional<std::uint16_t> next_free_port(std::uint16_t wanted, const std::function<bool(std::uint16_t)>& taken);

// The daemon's answer to "which public port may this client-NAT announcement use": `inside` is
// the client's real endpoint, `wanted` the public endpoint with the inside port, `peer` the
// server's real address (who connects). nullopt: none free. An empty chooser keeps the inside
// port (the core alone knows no other opening).
using PortChooser =
    std::function<std::optional<std::uint16_t>(const Endpoint& inside, const Endpoint& wanted, const Address& peer)>;

// ---- split announcements (issue 8 item 9; the Tracker's hold, tracker.hpp) -----------------------
// `partial` is the start of a line as sent (no Telnet sequence, no line end yet).
//
// Where the text a rewrite may replace begins: for PORT/EPRT from the client the whole argument
// ("PORT " / "EPRT " then index 5: the port may change too, "port in use"); for a 227 from the
// server its six fields, from the first digit after "227 " (RFC 1123 4.1.2.6, parse_pasv_reply).
// nullopt while that text has not begun, and for every other line (LPRT, 228 and 229 are never
// rewritten: long_passive_unsupported, and a 229 carries no address).
//   rewrite_region_start(client, "PORT 10")        == 5      rewrite_region_start(client, "PORT") == nullopt
//   rewrite_region_start(server, "227 Entering (") == nullopt   (..."(1") == 14
std::optional<std::size_t> rewrite_region_start(Direction from, std::string_view partial);

// A partial 227 line: its address h1,h2,h3,h4 is complete once the comma after h4 is there, and
// then every completion that parses (parse_pasv_reply) names that address; the port is not needed
// (a server's port is never changed). `end` is the index after that comma. invalid: no completion
// parses (bad_syntax follows, nothing is rewritten).
//   "227 Entering Passive Mode (10,1,1"    -> incomplete
//   "227 Entering Passive Mode (10,1,1,2," -> complete, begin 27, end 36, 10.1.1.2
struct PasvAddressPrefix {
  enum class State : std::uint8_t { incomplete, complete, invalid };
  State state = State::incomplete;
  std::size_t begin = 0;
  std::size_t end = 0;
  Address addr;
};
PasvAddressPrefix pasv_address_prefix(std::string_view partial);
// "203,0,113,9": the four fields of a 227/PORT for an IPv4 address.
std::string format_pasv_address(const Address& a);

// The line with `range` (relative to the line) replaced by `replacement`.
std::string replace_range(std::string_view line, TextRange range, std::string_view replacement);

// The announcement line rewritten to announce `ep`: the range holding address/port gets the
// kind's format (same delimiter for EPRT/229), everything else byte for byte.
// range_in_line = Announced::range shifted to line offsets.
std::string rewrite_line(std::string_view line, AnnouncementKind kind, TextRange range_in_line, char delimiter,
                         const Endpoint& ep);

}  // namespace ftpwall
