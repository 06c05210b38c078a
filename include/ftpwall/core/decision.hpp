// SPDX-License-Identifier: GPL-2.0-or-later
// What the core tells the daemon: bytes in, these decisions out (issue 3 item 7). Plain values; the
// daemon acts on them (installs/removes the opening, rewrites the stream, logs, resets).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "ftpwall/core/addr.hpp"
#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/ftp_wire.hpp"
#include "ftpwall/core/reason.hpp"

namespace ftpwall {

// What the daemon does with the session after a violation (PolicyConfig::on_violation). The
// violating line is never dropped forever: it passes unrewritten, or the session is reset.
enum class ViolationAction : std::uint8_t { pass, reset };
std::string_view name(ViolationAction a);

// Install one opening: allow exactly one new data connection from `source` to `destination`.
// All addresses are as a packet shows them when it arrives at the firewall, before any NAT:
//   active (PORT/EPRT from the client): source = the server's real address, destination = the
//     address/port the client announced to the server (after a rewrite: the client as seen);
//   passive (227/229 from the server): source = the client's real address, destination = the
//     address/port the client will dial (after a rewrite, or for 229: the server as seen).
// `inside` is the real endpoint behind NAT to DNAT to; without NAT it equals `destination`.
struct OpenData {
  std::uint32_t opening = 0;   // per-session sequence number; CloseData names it
  AnnouncementKind kind = AnnouncementKind::none;
  Direction announced_by = Direction::client_to_server;
  Family family = Family::v4;
  Address source;
  Endpoint destination;
  Endpoint inside;
  bool nat() const { return inside != destination; }
  bool operator==(const OpenData&) const = default;
};

// Replace old_bytes, which start at stream_offset of `direction`'s byte stream, by new_bytes.
// line_offset is where the announcement line starts; the rest of the line is unchanged.
struct Rewrite {
  Direction direction = Direction::client_to_server;
  std::uint64_t line_offset = 0;
  std::uint64_t stream_offset = 0;
  std::string old_bytes;
  std::string new_bytes;
  bool operator==(const Rewrite&) const = default;
};

// A refused line. bytes: the start of the line, at most limits::max_violation_bytes.
struct Violation {
  Reason reason = Reason::none;
  Direction direction = Direction::client_to_server;
  std::uint64_t line_offset = 0;
  std::string bytes;
  ViolationAction action = ViolationAction::pass;
  bool operator==(const Violation&) const = default;
};

// Remove the opening `opening` (if still installed): replaced, refused, spent, or session over.
// The daemon must ignore an id it does not know: the Session numbers every opening it accepts,
// but the daemon may never have installed one (the Tracker dropped its OpenData because the framer
// refused the line or the correction could not be recorded, or installing it failed, or it already
// expired), and a later CloseData still names it. Closing is idempotent; an unknown id is not an error.
struct CloseData {
  std::uint32_t opening = 0;
  Reason reason = Reason::none;
  bool operator==(const CloseData&) const = default;
};

// The session switched to TLS (234 to AUTH, or an implicit FTPS port): from here on the control
// stream is opaque and the session announces nothing, until Cleartext.
struct Encrypted {
  std::uint64_t line_offset = 0;  // where the 234 line starts (server -> client); TLS follows it
  bool operator==(const Encrypted&) const = default;
};

// One direction of an encrypted session left TLS (CCC, RFC 4217 12.3): at `offset` of its stream
// the bytes stopped being TLS records and are lines again. Once the client's direction is clear
// the session reads and opens as before the 234 (the daemon narrows back to one-shot openings).
struct Cleartext {
  Direction direction = Direction::client_to_server;
  std::uint64_t offset = 0;
  bool operator==(const Cleartext&) const = default;
};

// The session is over (221 to QUIT, or 421): the daemon forgets it once the connection closes.
struct SessionEnd {
  Reason reason = Reason::none;
  bool operator==(const SessionEnd&) const = default;
};

using Decision = std::variant<OpenData, Rewrite, Violation, CloseData, Encrypted, SessionEnd, Cleartext>;

// One line for tests and logs, e.g.
//   open_data #1 pasv_reply v4 from 198.51.100.7 to 203.0.113.1:50000 inside 10.1.1.2:50000
//   rewrite server_to_client @142 "10,1,1,2,195,80" -> "203,0,113,1,195,80"
//   violation address_not_sender client_to_server @0 "PORT 192,0,2,99,4,1" pass
// Non-printable bytes appear as \xNN.
std::string to_string(const Decision& d);

}  // namespace ftpwall
