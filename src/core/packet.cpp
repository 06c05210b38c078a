// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/packet.hpp"

#include <cstring>
#include <string>

#include "ftpwall/core/limits.hpp"

namespace ftpwall {

namespace {

constexpr std::uint8_t proto_tcp = 6;
constexpr std::uint8_t ip6_hop_by_hop = 0, ip6_routing = 43, ip6_fragment = 44, ip6_dest_opts = 60;
constexpr std::size_t ipv4_min_header = 20, ipv6_header = 40, tcp_min_header = 20;

// TCP option kinds (IANA "TCP Option Kind Numbers").
constexpr std::uint8_t opt_eol = 0, opt_nop = 1, opt_mss = 2, opt_wscale = 3, opt_sack_perm = 4, opt_sack = 5,
                       opt_timestamps = 8;

std::string num(std::size_t v) { return std::to_string(v); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Checksums

std::uint64_t checksum_sum(std::span<const std::uint8_t> data, std::uint64_t acc) {
  std::size_t i = 0;
  for (; i + 1 < data.size(); i += 2) acc += (std::uint32_t{data[i]} << 8) | data[i + 1];
  if (i < data.size()) acc += std::uint32_t{data[i]} << 8;
  return acc;
}

namespace {
std::uint16_t fold(std::uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}
std::uint16_t swap16(std::uint16_t v) { return static_cast<std::uint16_t>((v << 8) | (v >> 8)); }
}  // namespace

std::uint64_t checksum_sum_at(std::span<const std::uint8_t> data, std::size_t offset, std::uint64_t acc) {
  if (offset % 2 == 0) return checksum_sum(data, acc);
  // RFC 1071 §2(B): the sum is byte-order independent, so bytes at odd offsets sum as the
  // byte-swapped sum of the same bytes taken at an even offset.
  return acc + swap16(fold(checksum_sum(data)));
}

std::uint16_t checksum_finish(std::uint64_t sum) { return static_cast<std::uint16_t>(~fold(sum)); }

std::uint16_t checksum_replace16(std::uint16_t check, std::uint16_t old_word, std::uint16_t new_word) {
  std::uint64_t sum = std::uint16_t(~check);
  sum += std::uint16_t(~old_word);
  sum += new_word;
  return static_cast<std::uint16_t>(~fold(sum));
}

std::uint16_t checksum_replace32(std::uint16_t check, std::uint32_t old_value, std::uint32_t new_value) {
  std::uint64_t sum = std::uint16_t(~check);
  sum += std::uint16_t(~static_cast<std::uint16_t>(old_value >> 16));
  sum += std::uint16_t(~static_cast<std::uint16_t>(old_value));
  sum += static_cast<std::uint16_t>(new_value >> 16);
  sum += static_cast<std::uint16_t>(new_value);
  return static_cast<std::uint16_t>(~fold(sum));
}

std::uint16_t checksum_replace_bytes(std::uint16_t check, std::size_t offset, std::span<const std::uint8_t> old_bytes,
                                     std::span<const std::uint8_t> new_bytes) {
  std::uint64_t sum = std::uint16_t(~check);
  sum += std::uint16_t(~fold(checksum_sum_at(old_bytes, offset)));
  sum += fold(checksum_sum_at(new_bytes, offset));
  return static_cast<std::uint16_t>(~fold(sum));
}

// ---------------------------------------------------------------------------------------------
// Parsing

Result<PacketView> PacketView::parse(std::span<std::uint8_t> bytes) {
  if (bytes.empty()) return make_error(Reason::packet_truncated, "empty packet");
  switch (bytes[0] >> 4) {
    case 4: return parse_ipv4(bytes);
    case 6: return parse_ipv6(bytes);
    default: return make_error(Reason::packet_bad_header, "IP version " + num(bytes[0] >> 4));
  }
}

Result<PacketView> PacketView::parse_ipv4(std::span<std::uint8_t> bytes) {
  if (bytes.size() < ipv4_min_header)
    return make_error(Reason::packet_truncated, "IPv4 header needs 20 bytes, have " + num(bytes.size()));
  std::size_t ihl = std::size_t(bytes[0] & 0x0f) * 4;
  if (ihl < ipv4_min_header) return make_error(Reason::packet_bad_header, "IPv4 IHL " + num(ihl / 4) + " < 5");
  std::size_t total = (std::size_t{bytes[2]} << 8) | bytes[3];
  if (total > bytes.size())
    return make_error(Reason::packet_truncated, "IPv4 total length " + num(total) + " > " + num(bytes.size()) + " bytes");
  if (total < ihl)
    return make_error(Reason::packet_bad_header, "IPv4 total length " + num(total) + " < header length " + num(ihl));
  // Flags|fragment offset (RFC 791): bit 0x2000 = MF, low 13 bits = offset in 8-byte units.
  std::uint16_t frag = static_cast<std::uint16_t>((bytes[6] << 8) | bytes[7]);
  if ((frag & 0x1fff) != 0)
    return make_error(Reason::packet_fragment, "IPv4 fragment at offset " + num(std::size_t(frag & 0x1fff) * 8));
  if (bytes[9] != proto_tcp) return make_error(Reason::packet_not_tcp, "IPv4 protocol " + num(bytes[9]));
  PacketView v;
  v.bytes_ = bytes.first(total);
  v.family_ = Family::v4;
  v.fragmented_ = (frag & 0x2000) != 0;
  v.tcp_ = static_cast<std::uint16_t>(ihl);
  if (auto r = v.parse_tcp(); !r) return r.error();
  return v;
}

Result<PacketView> PacketView::parse_ipv6(std::span<std::uint8_t> bytes) {
  if (bytes.size() < ipv6_header)
    return make_error(Reason::packet_truncated, "IPv6 header needs 40 bytes, have " + num(bytes.size()));
  std::size_t total = ipv6_header + ((std::size_t{bytes[4]} << 8) | bytes[5]);
  // Payload length 0 with a hop-by-hop jumbo option (RFC 2675) is not supported: it fails below as a
  // truncated TCP header, since 40 bytes carry no TCP header.
  if (total > bytes.size())
    return make_error(Reason::packet_truncated, "IPv6 payload length " + num(total - ipv6_header) + " > " +
                                              num(bytes.size() - ipv6_header) + " bytes");
  auto pkt = bytes.first(total);
  std::uint8_t next = pkt[6];
  std::size_t off = ipv6_header;
  bool fragmented = false;
  for (std::size_t n = 0;; ++n) {
    if (next == proto_tcp) break;
    if (next != ip6_hop_by_hop && next != ip6_routing && next != ip6_fragment && next != ip6_dest_opts)
      return make_error(Reason::packet_not_tcp, "IPv6 next header " + num(next));
    if (n == limits::max_ipv6_extension_headers)
      return make_error(Reason::packet_too_many_extension_headers,
                  "more than " + num(limits::max_ipv6_extension_headers) + " IPv6 extension headers");
    // RFC 8200 §4.3: the hop-by-hop header may only follow the fixed header.
    if (next == ip6_hop_by_hop && n != 0) return make_error(Reason::packet_bad_header, "IPv6 hop-by-hop header not first");
    if (off + 8 > total) return make_error(Reason::packet_truncated, "IPv6 extension header past the payload length");
    std::size_t len = 8;
    if (next == ip6_fragment) {
      // Fragment header (RFC 8200 §4.5): next, reserved, offset<<3 | res | M, identification.
      std::uint16_t fo = static_cast<std::uint16_t>((pkt[off + 2] << 8) | pkt[off + 3]);
      if ((fo & 0xfff8) != 0) return make_error(Reason::packet_fragment, "IPv6 fragment at offset " + num(fo & 0xfff8));
      if (fo & 1) fragmented = true;  // an atomic fragment (offset 0, M 0) is a whole packet
    } else {
      len = (std::size_t{pkt[off + 1]} + 1) * 8;
      if (off + len > total) return make_error(Reason::packet_truncated, "IPv6 extension header past the payload length");
    }
    next = pkt[off];
    off += len;
  }
  PacketView v;
  v.bytes_ = pkt;
  v.family_ = Family::v6;
  v.fragmented_ = fragmented;
  v.tcp_ = static_cast<std::uint16_t>(off);
  if (auto r = v.parse_tcp(); !r) return r.error();
  return v;
}

Result<void> PacketView::parse_tcp() {
  std::size_t avail = bytes_.size() - tcp_;
  if (avail < tcp_min_header)
    return make_error(Reason::packet_truncated, "TCP header needs 20 bytes, have " + num(avail));
  std::size_t doff = std::size_t(bytes_[tcp_ + 12] >> 4) * 4;
  if (doff < tcp_min_header) return make_error(Reason::packet_bad_header, "TCP data offset " + num(doff / 4) + " < 5");
  if (doff > avail)
    return make_error(Reason::packet_truncated, "TCP header length " + num(doff) + " > " + num(avail) + " bytes");
  tcp_len_ = static_cast<std::uint16_t>(doff);
  payload_off_ = static_cast<std::uint32_t>(tcp_ + doff);
  // Options (RFC 9293 §3.2): kind 0 ends the list, kind 1 is one byte, every other kind is
  // {kind, length (>= 2, counting both), data}. A kind without a length byte, a length < 2 (the
  // kernel's "silly option") or one running past the header ends option parsing: what was parsed
  // before it stands, the rest is not read, and the segment is still a segment. This is what Linux
  // tcp_parse_options and conntrack's tcp_options do, so the receiver takes such a packet; refusing
  // it here would let a sender hide payload from the tracker and keep it out of the sequence
  // corrections. A known kind with the wrong length is skipped, as the kernel does. Nothing here
  // reads past the header: `end` is the data offset, already checked against the packet.
  std::size_t i = tcp_ + tcp_min_header, end = payload_off_;
  while (i < end) {
    std::uint8_t kind = bytes_[i];
    if (kind == opt_eol) break;
    if (kind == opt_nop) {
      ++i;
      continue;
    }
    if (i + 1 >= end) break;  // no length byte
    std::size_t len = bytes_[i + 1];
    if (len < 2 || i + len > end) break;
    auto at = static_cast<std::uint16_t>(i + 2);
    switch (kind) {
      case opt_mss: if (len == 4) mss_off_ = at; break;
      case opt_wscale: if (len == 3) wscale_off_ = at; break;
      case opt_sack_perm: if (len == 2) sack_permitted_ = true; break;
      case opt_timestamps: if (len == 10) ts_off_ = at; break;
      case opt_sack:
        // RFC 2018 §3: 2 + 8n bytes, n = 1..4 (at most 3 with timestamps in a 40-byte option space).
        if (len >= 10 && (len - 2) % 8 == 0) {
          sack_off_ = at;
          sack_count_ = static_cast<std::uint8_t>((len - 2) / 8);
        }
        break;
      default: break;
    }
    i += len;
  }
  return {};
}

namespace {
// The address at `v4_off` (IPv4) or `v6_off` (IPv6) of an IP header already range-checked by parse().
Address address_at(std::span<const std::uint8_t> ip, Family f, std::size_t v4_off, std::size_t v6_off) {
  Address a;
  a.family = f;
  if (f == Family::v4) std::memcpy(a.bytes.data(), ip.data() + v4_off, 4);
  else std::memcpy(a.bytes.data(), ip.data() + v6_off, 16);
  return a;
}
}  // namespace

Address PacketView::src_address() const { return address_at(bytes_, family_, 12, 8); }
Address PacketView::dst_address() const { return address_at(bytes_, family_, 16, 24); }

std::optional<std::uint16_t> PacketView::mss() const {
  if (!mss_off_) return std::nullopt;
  return load16(mss_off_);
}
std::optional<std::uint8_t> PacketView::window_scale() const {
  if (!wscale_off_) return std::nullopt;
  return bytes_[wscale_off_];
}
std::optional<TcpTimestamps> PacketView::timestamps() const {
  if (!ts_off_) return std::nullopt;
  return TcpTimestamps{load32(ts_off_), load32(ts_off_ + 4u)};
}
SackBlock PacketView::sack_block(std::size_t i) const {
  if (i >= sack_count_) return {};
  std::size_t at = sack_off_ + i * 8;
  return {load32(at), load32(at + 4)};
}

std::uint32_t PacketView::seq_length() const {
  std::uint32_t n = static_cast<std::uint32_t>(payload_size());
  if (has_flag(tcp_flag::syn)) ++n;
  if (has_flag(tcp_flag::fin)) ++n;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Writers

void PacketView::store16(std::size_t off, std::uint16_t v) {
  bytes_[off] = static_cast<std::uint8_t>(v >> 8);
  bytes_[off + 1] = static_cast<std::uint8_t>(v);
}
void PacketView::store32(std::size_t off, std::uint32_t v) {
  store16(off, static_cast<std::uint16_t>(v >> 16));
  store16(off + 2, static_cast<std::uint16_t>(v));
}
// The TCP checksum follows every field written through these; the field's offset parity within the
// segment is passed on, since SACK edges may sit at odd offsets.
void PacketView::store16_csum(std::size_t off, std::uint16_t v) {
  std::uint16_t old = load16(off);
  if (old == v) return;
  std::uint8_t ob[2] = {static_cast<std::uint8_t>(old >> 8), static_cast<std::uint8_t>(old)};
  store16(off, v);
  store16(tcp_ + 16u, checksum_replace_bytes(tcp_checksum(), off - tcp_, ob, bytes_.subspan(off, 2)));
}
void PacketView::store32_csum(std::size_t off, std::uint32_t v) {
  std::uint32_t old = load32(off);
  if (old == v) return;
  std::uint8_t ob[4] = {static_cast<std::uint8_t>(old >> 24), static_cast<std::uint8_t>(old >> 16),
                        static_cast<std::uint8_t>(old >> 8), static_cast<std::uint8_t>(old)};
  store32(off, v);
  store16(tcp_ + 16u, checksum_replace_bytes(tcp_checksum(), off - tcp_, ob, bytes_.subspan(off, 4)));
}

void PacketView::set_sack_block(std::size_t i, SackBlock b) {
  if (i >= sack_count_) return;
  // SACK edges may sit at odd offsets (after one NOP); checksum_replace_bytes handles the parity.
  store32_csum(sack_off_ + i * 8, b.left);
  store32_csum(sack_off_ + i * 8 + 4, b.right);
}

void PacketView::replace_payload_bytes(std::size_t at, std::span<const std::uint8_t> new_bytes) {
  if (at > payload_size() || new_bytes.size() > payload_size() - at) return;
  auto dst = bytes_.subspan(payload_off_ + at, new_bytes.size());
  std::uint16_t check = tcp_checksum();
  std::size_t rel = payload_off_ - tcp_ + at;
  // Sum the old bytes before overwriting them (new_bytes may not alias dst).
  std::uint64_t sum = std::uint16_t(~check);
  sum += std::uint16_t(~fold(checksum_sum_at(dst, rel)));
  std::memmove(dst.data(), new_bytes.data(), new_bytes.size());
  sum += fold(checksum_sum_at(dst, rel));
  store16(tcp_ + 16u, static_cast<std::uint16_t>(~fold(sum)));
}

Result<PacketView> PacketView::replace_payload(std::span<const std::uint8_t> new_payload,
                                               std::vector<std::uint8_t>& out) const {
  std::size_t new_total = payload_off_ + new_payload.size();
  std::size_t ip_len_field = family_ == Family::v4 ? new_total : new_total - ipv6_header;
  if (ip_len_field > 0xffff)
    return make_error(Reason::packet_too_large, "rewritten packet needs IP length " + num(ip_len_field) + " > 65535");
  const std::uint8_t* src = bytes_.data();
  if (!out.empty() && src < out.data() + out.size() && out.data() < src + bytes_.size())
    return make_error(Reason::packet_too_large, "output buffer aliases the packet");
  std::size_t old_tcp_len = bytes_.size() - tcp_, new_tcp_len = new_total - tcp_;
  std::uint16_t check = tcp_checksum();
  // TCP checksum (RFC 9293 §3.1): the pseudo-header's TCP length and the payload change; the payload
  // starts at an even offset of the TCP segment (data offset is a multiple of 4), so whole-tail
  // replacement per RFC 1624 applies. IPv6's upper-layer length is 32 bits (RFC 8200 §8.1), its high
  // half stays zero below 65536.
  std::uint64_t sum = std::uint16_t(~check);
  sum += std::uint16_t(~fold(checksum_sum(payload(), old_tcp_len)));
  sum += fold(checksum_sum(new_payload, new_tcp_len));
  std::uint16_t new_check = static_cast<std::uint16_t>(~fold(sum));

  out.resize(new_total);
  std::memcpy(out.data(), src, payload_off_);
  if (!new_payload.empty()) std::memcpy(out.data() + payload_off_, new_payload.data(), new_payload.size());
  PacketView v = *this;
  v.bytes_ = std::span<std::uint8_t>(out.data(), out.size());
  v.store16(tcp_ + 16u, new_check);
  if (family_ == Family::v4) {
    // IPv4 header checksum (RFC 791): incremental over the total length word (RFC 1624).
    std::uint16_t old_len = v.load16(2);
    v.store16(2, static_cast<std::uint16_t>(new_total));
    v.store16(10, checksum_replace16(v.load16(10), old_len, static_cast<std::uint16_t>(new_total)));
  } else {
    v.store16(4, static_cast<std::uint16_t>(ip_len_field));
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Full checksums

std::uint16_t PacketView::compute_tcp_checksum() const {
  std::size_t tcp_len = bytes_.size() - tcp_;
  std::uint64_t sum = 0;
  if (family_ == Family::v4) {
    sum = checksum_sum(bytes_.subspan(12, 8));  // source, destination
  } else {
    sum = checksum_sum(bytes_.subspan(8, 32));
  }
  sum += proto_tcp;
  sum += tcp_len;  // IPv4: 16-bit length; IPv6: 32-bit length, high half 0 here (< 2^16 + 2^16)
  auto seg = bytes_.subspan(tcp_);
  sum = checksum_sum(seg.first(16), sum);
  sum = checksum_sum(seg.subspan(18), sum);
  return checksum_finish(sum);
}

std::uint16_t PacketView::compute_ipv4_header_checksum() const {
  if (family_ != Family::v4) return 0;
  std::uint64_t sum = checksum_sum(bytes_.first(10));
  sum = checksum_sum(bytes_.subspan(12, tcp_ - 12u), sum);
  return checksum_finish(sum);
}

bool PacketView::ipv4_header_checksum_ok() const {
  return family_ != Family::v4 || compute_ipv4_header_checksum() == load16(10);
}

void PacketView::fix_checksums() {
  if (family_ == Family::v4) store16(10, compute_ipv4_header_checksum());
  store16(tcp_ + 16u, compute_tcp_checksum());
}

}  // namespace ftpwall
