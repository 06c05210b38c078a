// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/policy.hpp"

namespace ftpwall {

// Unicast in the sense that matters for an opening: an address one remote host owns.
// IPv4: not 0.0.0.0/8, 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4 or 240.0.0.0/4 (with
// 255.255.255.255). IPv6: not ::, ::1, fe80::/10, ff00::/8 or ::ffff:0:0/96.
bool is_unicast(const Address& a) {
  const auto& b = a.bytes;
  if (a.family == Family::v4) {
    if (b[0] == 0 || b[0] == 127 || b[0] >= 224) return false;
    if (b[0] == 169 && b[1] == 254) return false;
    return true;
  }
  bool zero10 = true;  // the first 10 bytes are zero
  for (int i = 0; i < 10; ++i) zero10 = zero10 && b[i] == 0;
  if (zero10 && b[10] == 0xff && b[11] == 0xff) return false;  // IPv4-mapped
  if (zero10 && b[10] == 0 && b[11] == 0 && b[12] == 0 && b[13] == 0 && b[14] == 0 && b[15] <= 1) return false;  // :: and ::1
  if (b[0] == 0xff) return false;                          // multicast
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return false;  // link-local
  return true;
}

bool Policy::third_party_allowed(const Address& a) const {
  for (const auto& net : config_.allow_third_party)
    if (net.contains(a)) return true;
  return false;
}

Reason Policy::check(const AnnouncementFacts& f, const Endpoint& announced, bool has_address,
                     const ConnTuples& t) const {
  if (f.kind == AnnouncementKind::none) return Reason::bad_syntax;
  // PORT/EPRT are client commands, 227/229 server replies (the tables say who may send what);
  // a server "PORT" or a client "227" is somebody trying to open something for the other side.
  if (f.from != announcer(f.kind)) return Reason::wrong_direction;
  // LPRT/LPSV (RFC 1639) are recognised but never opened: no client needs them and every extra
  // format is attack surface.
  if (f.kind == AnnouncementKind::lprt || f.kind == AnnouncementKind::lpsv_reply)
    return Reason::long_passive_unsupported;
  // Before the 220 greeting nothing is FTP yet: an HTTP request to port 21 carrying "PORT ..."
  // (NAT Slipstreaming) arrives exactly here.
  if (!f.greeted) return Reason::before_greeting;
  if (f.from == Direction::client_to_server && f.command_outstanding) return Reason::command_outstanding;
  if (f.from == Direction::server_to_client && !f.answers_request) return Reason::reply_without_request;
  if (!f.final_reply) return Reason::not_final_reply;
  if (config_.require_login && !f.logged_in) return Reason::not_logged_in;
  // RFC 2428 4: after EPSV ALL the server must refuse every other data command: PORT, EPRT and
  // LPRT from the client, and a 227 (PASV answered anyway) is refused too. 229 is what it is for.
  if (f.epsv_all && (f.from == Direction::client_to_server || f.kind == AnnouncementKind::pasv_reply))
    return Reason::after_epsv_all;
  if (has_address) {
    if (announced.addr.family != t.family()) return Reason::family_mismatch;
    const bool client = f.from == Direction::client_to_server;
    const Address& real = client ? t.client_real() : t.server_real();
    const Address& seen = client ? t.client_as_seen() : t.server_as_seen();
    if (announced.addr != real && announced.addr != seen && !is_unicast(announced.addr)) {
      // Not an address another host's data connection can come from or go to, or one that
      // stands for another family (::ffff:a.b.c.d): refused whatever allow_third_party says
      // (issue 10: a link-local address needs the sender's interface, multicast and :: name
      // no peer at all). Only the sender's own address passes, e.g. a session over link-local.
      return Reason::address_not_unicast;
    }
    if (announced.addr != real) {
      if (announced.addr == seen) {
        // Behind NAT (seen != real). Server: a DNATed server announcing the address the client
        // dialled (vsftpd pasv_address) names itself. Client: the gateway's public address is
        // what every server knows, so an injected PORT would name it; only with the option, and
        // third_party_networks do not stand in for it (the opening would DNAT to the client).
        if (client && !config_.allow_client_public_address) return Reason::address_not_sender;
      } else if (!third_party_allowed(announced.addr)) {
        return Reason::address_not_sender;
      }
    }
  }
  if (announced.port < config_.port_floor) return Reason::port_below_floor;
  return Reason::none;
}

}  // namespace ftpwall
