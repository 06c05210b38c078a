// SPDX-License-Identifier: GPL-2.0-or-later
// Link-layer decoding for `ftpwall replay` (issue 12): one captured frame of a known link type ->
// the IP packet inside it. Pure: bytes in, a span of those bytes out, no I/O and no pcap header,
// so that the unit tests and the fuzz target call it directly.
//
// Link types (the DLT_ values libpcap's pcap_datalink() reports; the LINKTYPE_ number of the file
// is mapped by libpcap):
//   ethernet    DLT_EN10MB (1)      14-byte header, then up to max_vlan_tags 802.1Q (0x8100), 802.1ad
//                                   (0x88a8) or old QinQ (0x9100) tags; an 802.3 length field is not IP
//   linux_sll   DLT_LINUX_SLL (113) 16 bytes, protocol at 14; VLAN tags after it are read as above
//   linux_sll2  DLT_LINUX_SLL2 (276) 20 bytes, protocol at 0
//   raw         DLT_RAW (12, 14 on OpenBSD, LINKTYPE_RAW 101), DLT_IPV4 (228), DLT_IPV6 (229):
//                                   the frame is the IP packet (version nibble 4 or 6)
//   null        DLT_NULL (0)        4-byte address family in the capturing host's byte order
//   loop        DLT_LOOP (108)      4-byte address family in network byte order
// Address families of null/loop: AF_INET 2; AF_INET6 10 (Linux), 24 (NetBSD, OpenBSD), 28
// (FreeBSD), 30 (macOS, iOS).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace ftpwall::cli::capture {

enum class LinkType : std::uint8_t { ethernet, linux_sll, linux_sll2, raw, null, loop };
std::string_view name(LinkType t);
// The link type of a libpcap DLT_ value; empty when replay does not read it.
std::optional<LinkType> link_type_from_dlt(int dlt);

inline constexpr int max_vlan_tags = 4;

enum class DecodeStatus : std::uint8_t {
  ok,
  truncated,     // the frame ends inside the link header (or no IP version byte follows)
  not_ip,        // ARP, LLDP, 802.3/LLC, another address family: not for replay, not an error
  too_many_vlan, // more than max_vlan_tags VLAN tags
  bad_version,   // raw/null/loop/ethertype said IP, the version nibble disagrees
};
std::string_view name(DecodeStatus s);

struct Decoded {
  DecodeStatus status = DecodeStatus::truncated;
  std::span<const std::uint8_t> ip;  // ok: from the IP header to the frame's end (link padding included)
  int vlan_tags = 0;                 // how many VLAN tags were stripped
};

Decoded decode(LinkType link, std::span<const std::uint8_t> frame);

}  // namespace ftpwall::cli::capture
