// SPDX-License-Identifier: GPL-2.0-or-later
#include "cli/capture_decode.hpp"

namespace ftpwall::cli::capture {

namespace {

constexpr std::uint16_t ethertype_ipv4 = 0x0800;
constexpr std::uint16_t ethertype_ipv6 = 0x86dd;
constexpr std::uint16_t ethertype_vlan = 0x8100;
constexpr std::uint16_t ethertype_qinq = 0x88a8;
constexpr std::uint16_t ethertype_qinq_old = 0x9100;

std::uint16_t be16(std::span<const std::uint8_t> b, std::size_t at) {
  return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}

// The IP packet starting at `at`, whose version must be `want` (0: 4 or 6).
Decoded ip_at(std::span<const std::uint8_t> frame, std::size_t at, int want, int tags = 0) {
  Decoded d;
  d.vlan_tags = tags;
  if (frame.size() <= at) return d;  // truncated
  const int version = frame[at] >> 4;
  if ((want == 0 && version != 4 && version != 6) || (want != 0 && version != want)) {
    d.status = DecodeStatus::bad_version;
    return d;
  }
  d.status = DecodeStatus::ok;
  d.ip = frame.subspan(at);
  return d;
}

// An ethertype at `at` (VLAN tags allowed before the real one).
Decoded by_ethertype(std::span<const std::uint8_t> frame, std::size_t at) {
  int tags = 0;
  for (;;) {
    if (frame.size() < at + 2) return Decoded{DecodeStatus::truncated, {}, tags};
    const std::uint16_t type = be16(frame, at);
    if (type == ethertype_vlan || type == ethertype_qinq || type == ethertype_qinq_old) {
      if (++tags > max_vlan_tags) return Decoded{DecodeStatus::too_many_vlan, {}, tags - 1};
      at += 4;  // TCI (2) then the next ethertype
      continue;
    }
    if (type == ethertype_ipv4) return ip_at(frame, at + 2, 4, tags);
    if (type == ethertype_ipv6) return ip_at(frame, at + 2, 6, tags);
    return Decoded{DecodeStatus::not_ip, {}, tags};
  }
}

Decoded by_family(std::span<const std::uint8_t> frame, std::uint32_t family) {
  if (family == 2) return ip_at(frame, 4, 4);
  if (family == 10 || family == 24 || family == 28 || family == 30) return ip_at(frame, 4, 6);
  return Decoded{DecodeStatus::not_ip, {}, 0};
}

}  // namespace

std::string_view name(LinkType t) {
  switch (t) {
    case LinkType::ethernet: return "ethernet";
    case LinkType::linux_sll: return "linux_sll";
    case LinkType::linux_sll2: return "linux_sll2";
    case LinkType::raw: return "raw";
    case LinkType::null: return "null";
    case LinkType::loop: return "loop";
  }
  return "?";
}

std::string_view name(DecodeStatus s) {
  switch (s) {
    case DecodeStatus::ok: return "ok";
    case DecodeStatus::truncated: return "link_truncated";
    case DecodeStatus::not_ip: return "not_ip";
    case DecodeStatus::too_many_vlan: return "too_many_vlan_tags";
    case DecodeStatus::bad_version: return "bad_ip_version";
  }
  return "?";
}

std::optional<LinkType> link_type_from_dlt(int dlt) {
  switch (dlt) {
    case 0: return LinkType::null;
    case 1: return LinkType::ethernet;
    case 12: case 14: case 101: case 228: case 229: return LinkType::raw;
    case 108: return LinkType::loop;
    case 113: return LinkType::linux_sll;
    case 276: return LinkType::linux_sll2;
    default: return std::nullopt;
  }
}

Decoded decode(LinkType link, std::span<const std::uint8_t> frame) {
  switch (link) {
    case LinkType::ethernet:
      if (frame.size() < 14) return {};
      return by_ethertype(frame, 12);
    case LinkType::linux_sll:
      if (frame.size() < 16) return {};
      return by_ethertype(frame, 14);
    case LinkType::linux_sll2: {
      if (frame.size() < 20) return {};
      const std::uint16_t type = be16(frame, 0);  // SLL2 carries VLAN tags out of band
      if (type == ethertype_ipv4) return ip_at(frame, 20, 4);
      if (type == ethertype_ipv6) return ip_at(frame, 20, 6);
      return Decoded{DecodeStatus::not_ip, {}, 0};
    }
    case LinkType::raw:
      return ip_at(frame, 0, 0);
    case LinkType::null: {
      if (frame.size() < 4) return {};
      // The capturing host's byte order: a family is small, so the non-zero end tells.
      const std::uint32_t le = frame[0] | (frame[1] << 8) | (frame[2] << 16) | (std::uint32_t{frame[3]} << 24);
      const std::uint32_t be = frame[3] | (frame[2] << 8) | (frame[1] << 16) | (std::uint32_t{frame[0]} << 24);
      return by_family(frame, le < be ? le : be);
    }
    case LinkType::loop: {
      if (frame.size() < 4) return {};
      const std::uint32_t be = frame[3] | (frame[2] << 8) | (frame[1] << 16) | (std::uint32_t{frame[0]} << 24);
      return by_family(frame, be);
    }
  }
  return {};
}

}  // namespace ftpwall::cli::capture
