// SPDX-License-Identifier: GPL-2.0-or-later
// PacketView: a bounds-checked view of one IPv4 or IPv6 packet carrying TCP, over the caller's
// bytes (the NFQUEUE payload: the packet starts at the IP header). Nothing is copied; everything
// the accessors read was range-checked once by parse(). Header layouts are written out here on
// purpose: the core includes no <netinet/...> or <linux/...> header.
//
//   IPv4 (RFC 791)  0 ver|IHL  1 TOS  2 total length  4 id  6 flags|frag offset  8 TTL  9 protocol
//                   10 header checksum  12 source  16 destination  20.. options (IHL*4 bytes in all)
//   IPv6 (RFC 8200) 0 ver|class|flow  4 payload length  6 next header  7 hop limit  8 source
//                   24 destination  40.. extension headers: hop-by-hop (0, first only), routing (43),
//                   destination options (60): {next, len} then (len+1)*8 bytes; fragment (44): 8 bytes
//   TCP (RFC 9293)  0 src port  2 dst port  4 seq  8 ack  12 data offset<<4  13 flags  14 window
//                   16 checksum  18 urgent pointer  20.. options (data offset*4 bytes in all)
//
// Malformed packets are refused with an Error whose message starts with the Reason's name
// (packet_truncated: ..., see reason_of() in reason.hpp); bytes after the IP total length (link padding) are not
// part of the packet. A first fragment (IPv4 MF, IPv6 fragment header with offset 0 and M set)
// parses (its TCP header is whole) but is marked fragmented(): its TCP checksum covers bytes this
// view does not have, so it must not be rewritten. Non-first fragments are refused.
//
// Checksums: every writer keeps the TCP checksum right by RFC 1624 incremental update, so a
// packet that arrived with a bad checksum still has a bad one (a corrupted packet must not be
// "repaired" into a valid one). This assumes the checksum field holds a full checksum: NFQUEUE
// completes CHECKSUM_PARTIAL packets before queueing unless NFQA_CFG_F_GSO is set, so the daemon
// must not set it (or call fix_checksums() on packets flagged NFQA_SKB_CSUMNOTREADY).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "ftpwall/core/addr.hpp"
#include "ftpwall/core/reason.hpp"
#include "ftpwall/core/result.hpp"

namespace ftpwall {

namespace tcp_flag {
inline constexpr std::uint8_t fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10, urg = 0x20,
                              ece = 0x40, cwr = 0x80;
}

// One SACK block (RFC 2018 §3): [left, right) of received octets, in the acknowledging side's view.
struct SackBlock {
  std::uint32_t left = 0;
  std::uint32_t right = 0;
  auto operator<=>(const SackBlock&) const = default;
};

// TCP timestamps option (RFC 7323 §3.2).
struct TcpTimestamps {
  std::uint32_t value = 0;
  std::uint32_t echo_reply = 0;
  auto operator<=>(const TcpTimestamps&) const = default;
};

// ---- Internet checksum (RFC 1071) and incremental update (RFC 1624) ----
// Sum of big-endian 16-bit words of data (a final odd byte is padded with zero), added to acc;
// not folded, not complemented. Data starting at an odd offset of the checksummed region must be
// summed with checksum_sum_at().
std::uint64_t checksum_sum(std::span<const std::uint8_t> data, std::uint64_t acc = 0);
// Same, for data that starts at byte offset `offset` of the checksummed region (only its parity
// matters: odd offsets swap the bytes of every word).
std::uint64_t checksum_sum_at(std::span<const std::uint8_t> data, std::size_t offset, std::uint64_t acc = 0);
// Folds a sum to 16 bits with end-around carry and complements it: the checksum field value.
std::uint16_t checksum_finish(std::uint64_t sum);
// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for one 16-bit word m -> m'.
std::uint16_t checksum_replace16(std::uint16_t check, std::uint16_t old_word, std::uint16_t new_word);
// Two words: a 32-bit field such as seq, ack or an IPv4 address.
std::uint16_t checksum_replace32(std::uint16_t check, std::uint32_t old_value, std::uint32_t new_value);
// Bytes replaced at byte offset `offset` of the checksummed region. Lengths may differ only when the
// bytes are the tail of the region (a payload that grows or shrinks); otherwise they are equal.
std::uint16_t checksum_replace_bytes(std::uint16_t check, std::size_t offset, std::span<const std::uint8_t> old_bytes,
                                     std::span<const std::uint8_t> new_bytes);

class PacketView {
 public:
  // IPv4 or IPv6 by the version nibble. Bytes after the IP total length are ignored.
  static Result<PacketView> parse(std::span<std::uint8_t> bytes);

  Family family() const { return family_; }
  Address src_address() const;
  Address dst_address() const;
  bool fragmented() const { return fragmented_; }  // a first fragment: do not rewrite

  std::uint16_t src_port() const { return load16(tcp_ + 0); }
  std::uint16_t dst_port() const { return load16(tcp_ + 2); }
  std::uint32_t seq() const { return load32(tcp_ + 4); }
  std::uint32_t ack() const { return load32(tcp_ + 8); }
  std::uint8_t flags() const { return bytes_[tcp_ + 13]; }
  bool has_flag(std::uint8_t f) const { return (flags() & f) != 0; }
  std::uint16_t window() const { return load16(tcp_ + 14); }
  std::uint16_t tcp_checksum() const { return load16(tcp_ + 16); }
  std::uint16_t urgent_pointer() const { return load16(tcp_ + 18); }

  // Option bytes (after the 20-byte fixed header) and the parsed options, read as the kernel does
  // (tcp_parse_options): known options with a wrong length are ignored, and a malformed option
  // (no length byte, length < 2, running past the header) ends the parsing; the packet still parses.
  std::span<const std::uint8_t> tcp_options() const { return bytes_.subspan(tcp_ + 20, tcp_len_ - 20); }
  std::optional<std::uint16_t> mss() const;
  std::optional<std::uint8_t> window_scale() const;
  bool sack_permitted() const { return sack_permitted_; }
  std::optional<TcpTimestamps> timestamps() const;
  std::size_t sack_count() const { return sack_count_; }
  SackBlock sack_block(std::size_t i) const;  // i < sack_count()

  std::span<const std::uint8_t> payload() const { return bytes_.subspan(payload_off_); }
  std::size_t payload_size() const { return bytes_.size() - payload_off_; }
  // Sequence space the segment occupies: payload plus one for SYN and one for FIN.
  std::uint32_t seq_length() const;

  std::size_t size() const { return bytes_.size(); }            // IP total length
  std::size_t ip_header_size() const { return tcp_; }           // IP header + extension headers
  std::size_t tcp_header_size() const { return tcp_len_; }
  std::size_t payload_offset() const { return payload_off_; }
  std::span<std::uint8_t> bytes() const { return bytes_; }

  // ---- writers: in place, TCP checksum updated incrementally (RFC 1624) ----
  void set_seq(std::uint32_t v) { store32_csum(tcp_ + 4, v); }
  void set_ack(std::uint32_t v) { store32_csum(tcp_ + 8, v); }
  void set_urgent_pointer(std::uint16_t v) { store16_csum(tcp_ + 18, v); }
  void set_sack_block(std::size_t i, SackBlock b);  // i < sack_count()
  // Replaces payload bytes at payload offset `at` with the same number of bytes.
  void replace_payload_bytes(std::size_t at, std::span<const std::uint8_t> new_bytes);

  // Writes this packet with its payload replaced by `new_payload` (any length) into `out` and
  // returns the view of it: IPv4 total length / IPv6 payload length set, IPv4 header checksum and
  // TCP checksum (its pseudo-header length and the payload) updated incrementally, which equals a full
  // recomputation for a packet that had correct checksums. `out` must not be the buffer this view
  // is over. Refused (packet_too_large) when the IP length field cannot hold the result.
  Result<PacketView> replace_payload(std::span<const std::uint8_t> new_payload, std::vector<std::uint8_t>& out) const;

  // Full computations, for checks and for packets built from scratch.
  std::uint16_t compute_tcp_checksum() const;  // the value the checksum field should hold
  bool tcp_checksum_ok() const { return compute_tcp_checksum() == tcp_checksum(); }
  std::uint16_t compute_ipv4_header_checksum() const;  // IPv4 only
  bool ipv4_header_checksum_ok() const;                // true for IPv6 (no header checksum)
  void fix_checksums();                                // sets both from a full recomputation

 private:
  PacketView() = default;
  static Result<PacketView> parse_ipv4(std::span<std::uint8_t> bytes);
  static Result<PacketView> parse_ipv6(std::span<std::uint8_t> bytes);
  Result<void> parse_tcp();

  std::uint16_t load16(std::size_t off) const {
    return static_cast<std::uint16_t>((bytes_[off] << 8) | bytes_[off + 1]);
  }
  std::uint32_t load32(std::size_t off) const {
    return (std::uint32_t{bytes_[off]} << 24) | (std::uint32_t{bytes_[off + 1]} << 16) |
           (std::uint32_t{bytes_[off + 2]} << 8) | std::uint32_t{bytes_[off + 3]};
  }
  void store16(std::size_t off, std::uint16_t v);
  void store32(std::size_t off, std::uint32_t v);
  void store16_csum(std::size_t off, std::uint16_t v);
  void store32_csum(std::size_t off, std::uint32_t v);

  std::span<std::uint8_t> bytes_;  // exactly the IP packet (total length)
  Family family_ = Family::v4;
  bool fragmented_ = false;
  bool sack_permitted_ = false;
  std::uint8_t sack_count_ = 0;
  std::uint16_t tcp_ = 0;          // offset of the TCP header
  std::uint16_t tcp_len_ = 0;      // TCP header length, options included
  std::uint32_t payload_off_ = 0;  // offset of the payload
  // Offsets of known options in bytes_ (0 = absent): the option's first data byte.
  std::uint16_t mss_off_ = 0, wscale_off_ = 0, ts_off_ = 0, sack_off_ = 0;
};

}  // namespace ftpwall
