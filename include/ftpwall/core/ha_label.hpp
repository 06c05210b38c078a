// SPDX-License-Identifier: GPL-2.0-or-later
// The HA label (issue 15): what a backup gateway's ftpwalld needs to carry on a session after a
// failover, in the 128 bits of the control connection's conntrack labels, which conntrackd
// replicates with the entry (checked: conntrackd 1.4.7, FTFW, external cache and commit). No
// replication protocol of ftpwall's own: the engine that already carries the connection carries
// its state.
//
// 128 bits cannot hold a correction history (seq_adjust.hpp keeps old and new bytes of every
// rewrite), but what a session needs after the peer acknowledged its rewrites is one offset, and
// the one rewrite that may still be unacknowledged is the last announcement's, whose old and new
// bytes follow from the session's tuples and the announcement's two ports (format_announced). So
// the label says:
//
//   byte  0      magic_v1 (0xf1): ftpwalld tracks this session (a known session, not a blind pick-up)
//   byte  1      flags (below)
//   bytes 2-5    base: T - O of the corrected direction before the pending rewrite (mod 2^32)
//   bytes 6-9    pos: original sequence number of the pending rewrite's first byte
//   byte  10     kind of the last announcement (AnnouncementKind)
//   bytes 11-12  its port as the peer reads it (announce)
//   bytes 13-14  its inside port (the real endpoint's)
//   byte  15     0
// All numbers big-endian. A session whose history does not fit (corrections in both directions,
// two unacknowledged rewrites in one, a rewrite this layout cannot rebuild such as a non-'|' EPRT
// delimiter or a 227 written with leading zeros) carries `carried = false`: the new master then
// refuses it by name (pickup_without_history) rather than guess.
//
// Pure: bytes in, bytes out; the daemon reads and writes the labels (ctnetlink).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/decision.hpp"
#include "ftpwall/core/ftp_wire.hpp"
#include "ftpwall/core/result.hpp"
#include "ftpwall/core/seq_adjust.hpp"

namespace ftpwall {

using LabelBytes = std::array<std::uint8_t, 16>;

// The session's last announcement, as the daemon remembers it (its OpenData).
struct LastAnnouncement {
  AnnouncementKind kind = AnnouncementKind::none;
  Direction by = Direction::client_to_server;
  std::uint16_t port = 0;         // the port the peer reads (OpenData::destination)
  std::uint16_t inside_port = 0;  // the real endpoint's (OpenData::inside)
  bool operator==(const LastAnnouncement&) const = default;
};

struct HaLabel {
  static constexpr std::uint8_t magic_v1 = 0xf1;
  bool carried = true;             // false: the history does not fit; refuse the pick-up
  Direction corrected = Direction::server_to_client;  // the direction `base` and `pos` belong to
  std::uint32_t base = 0;
  std::optional<LastAnnouncement> last;
  bool opening_live = false;       // the last announcement's opening is still in place
  bool rewrite_pending = false;    // the last announcement's rewrite is not acknowledged yet
  bool address_only = false;       // that rewrite replaced the address only (a split 227)
  std::uint32_t pos = 0;
  bool operator==(const HaLabel&) const = default;
};

LabelBytes encode_label(const HaLabel& l);
// nullopt: not ftpwalld's (no magic_v1, or bits this version does not know).
std::optional<HaLabel> decode_label(std::span<const std::uint8_t, 16> bytes);

// The label of a session now: its correction history, its last announcement (if any) and whether
// that one's opening is live. Never fails: what does not fit is carried = false.
HaLabel make_label(const SeqAdjust& history, const ConnTuples& tuples, const std::optional<LastAnnouncement>& last,
                   bool opening_live);

// The correction history a new master continues with (history == restored), rebuilt from the label.
Result<SeqAdjust> label_history(const HaLabel& l, const ConnTuples& tuples);

// The opening a new master must put in place (the last announcement's, when live), as the core's
// OpenData would have named it; `opening` is the id the daemon gives it.
std::optional<OpenData> label_opening(const HaLabel& l, const ConnTuples& tuples, std::uint32_t opening);

// The endpoints of an announcement the peer reads and the real one behind NAT (as plan_rewrite).
struct AnnouncedEndpoints {
  Endpoint announce;
  Endpoint inside;
};
AnnouncedEndpoints announced_endpoints(const LastAnnouncement& a, const ConnTuples& tuples);

}  // namespace ftpwall
