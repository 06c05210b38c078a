// SPDX-License-Identifier: GPL-2.0-or-later
// Hand-built IPv4/IPv6 + TCP packets for the packet and seq_adjust tests, with a reference checksum
// written independently of src/core/packet.cpp (naive byte-pair loop over an explicit pseudo-header).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace ftpwall::test {

using Bytes = std::vector<std::uint8_t>;

inline Bytes bytes_of(const char* s) {
  Bytes b;
  for (; *s; ++s) b.push_back(static_cast<std::uint8_t>(*s));
  return b;
}

struct TcpSpec {
  std::uint16_t sport = 40000, dport = 21;
  std::uint32_t seq = 1000, ack = 5000;
  std::uint8_t flags = 0x18;  // PSH|ACK
  std::uint16_t window = 64240, urgent = 0;
  Bytes options;  // padded with NOPs... by the caller: length must be a multiple of 4
  Bytes payload;
};

inline void put16(Bytes& b, std::size_t at, std::uint32_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}
inline void put32(Bytes& b, std::size_t at, std::uint32_t v) {
  put16(b, at, v >> 16);
  put16(b, at + 2, v & 0xffff);
}
inline std::uint32_t get16(const Bytes& b, std::size_t at) { return (std::uint32_t{b[at]} << 8) | b[at + 1]; }

// RFC 1071, the slow obvious way.
inline std::uint16_t reference_checksum(const Bytes& data) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < data.size(); i += 2) {
    std::uint32_t hi = data[i], lo = i + 1 < data.size() ? data[i + 1] : 0;
    sum += (hi << 8) | lo;
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

inline Bytes tcp_segment(const TcpSpec& t) {
  Bytes s(20 + t.options.size());
  put16(s, 0, t.sport);
  put16(s, 2, t.dport);
  put32(s, 4, t.seq);
  put32(s, 8, t.ack);
  s[12] = static_cast<std::uint8_t>(((20 + t.options.size()) / 4) << 4);
  s[13] = t.flags;
  put16(s, 14, t.window);
  put16(s, 18, t.urgent);
  for (std::size_t i = 0; i < t.options.size(); ++i) s[20 + i] = t.options[i];
  s.insert(s.end(), t.payload.begin(), t.payload.end());
  return s;
}

// The TCP checksum a packet should carry, from its IP addresses and TCP segment (check field ignored).
inline std::uint16_t reference_tcp_checksum(const Bytes& pkt) {
  Bytes ph;
  std::size_t tcp_off;
  if ((pkt[0] >> 4) == 4) {
    tcp_off = (pkt[0] & 15) * 4u;
    std::size_t total = get16(pkt, 2);
    ph.assign(pkt.begin() + 12, pkt.begin() + 20);
    ph.push_back(0);
    ph.push_back(6);
    ph.push_back(static_cast<std::uint8_t>((total - tcp_off) >> 8));
    ph.push_back(static_cast<std::uint8_t>(total - tcp_off));
    Bytes seg(pkt.begin() + static_cast<long>(tcp_off), pkt.begin() + static_cast<long>(total));
    seg[16] = seg[17] = 0;
    ph.insert(ph.end(), seg.begin(), seg.end());
  } else {
    // Walk the extension headers the simple way (the tests only build well-formed chains).
    std::size_t total = 40 + get16(pkt, 4);
    std::uint8_t next = pkt[6];
    tcp_off = 40;
    while (next != 6) {
      std::size_t len = next == 44 ? 8 : (pkt[tcp_off + 1] + 1u) * 8;
      next = pkt[tcp_off];
      tcp_off += len;
    }
    ph.assign(pkt.begin() + 8, pkt.begin() + 40);
    std::size_t l = total - tcp_off;
    Bytes len4 = {0, 0, static_cast<std::uint8_t>(l >> 8), static_cast<std::uint8_t>(l), 0, 0, 0, 6};
    ph.insert(ph.end(), len4.begin(), len4.end());
    Bytes seg(pkt.begin() + static_cast<long>(tcp_off), pkt.begin() + static_cast<long>(total));
    seg[16] = seg[17] = 0;
    ph.insert(ph.end(), seg.begin(), seg.end());
  }
  return reference_checksum(ph);
}

inline std::size_t tcp_offset_of(const Bytes& pkt) {
  if ((pkt[0] >> 4) == 4) return (pkt[0] & 15) * 4u;
  std::uint8_t next = pkt[6];
  std::size_t off = 40;
  while (next != 6) {
    std::size_t len = next == 44 ? 8 : (pkt[off + 1] + 1u) * 8;
    next = pkt[off];
    off += len;
  }
  return off;
}

inline std::uint16_t stored_tcp_checksum(const Bytes& pkt) {
  return static_cast<std::uint16_t>(get16(pkt, tcp_offset_of(pkt) + 16));
}

inline std::uint16_t reference_ipv4_header_checksum(const Bytes& pkt) {
  Bytes h(pkt.begin(), pkt.begin() + (pkt[0] & 15) * 4);
  h[10] = h[11] = 0;
  return reference_checksum(h);
}

// IPv4: 192.0.2.1 -> 198.51.100.2 unless given; ip_options padded to 4 bytes by the caller.
inline Bytes build_v4(const TcpSpec& t, Bytes ip_options = {}, std::uint8_t src_last = 1, std::uint8_t dst_last = 2) {
  Bytes seg = tcp_segment(t);
  std::size_t ihl = 20 + ip_options.size();
  Bytes p(ihl);
  p[0] = static_cast<std::uint8_t>(0x40 | (ihl / 4));
  put16(p, 2, static_cast<std::uint32_t>(ihl + seg.size()));
  put16(p, 4, 0x1234);
  put16(p, 6, 0x4000);  // DF
  p[8] = 64;
  p[9] = 6;
  p[12] = 192, p[13] = 0, p[14] = 2, p[15] = src_last;
  p[16] = 198, p[17] = 51, p[18] = 100, p[19] = dst_last;
  for (std::size_t i = 0; i < ip_options.size(); ++i) p[20 + i] = ip_options[i];
  put16(p, 10, reference_ipv4_header_checksum(p));
  p.insert(p.end(), seg.begin(), seg.end());
  put16(p, ihl + 16, reference_tcp_checksum(p));
  return p;
}

// IPv6: 2001:db8::1 -> 2001:db8::2; ext = {type, whole header bytes (next-header byte filled in)}.
inline Bytes build_v6(const TcpSpec& t, std::vector<std::pair<std::uint8_t, Bytes>> ext = {}) {
  Bytes seg = tcp_segment(t);
  Bytes p(40);
  p[0] = 0x60;
  p[7] = 64;
  p[8] = 0x20, p[9] = 0x01, p[10] = 0x0d, p[11] = 0xb8, p[23] = 1;
  p[24] = 0x20, p[25] = 0x01, p[26] = 0x0d, p[27] = 0xb8, p[39] = 2;
  p[6] = ext.empty() ? 6 : ext[0].first;
  for (std::size_t i = 0; i < ext.size(); ++i) {
    Bytes h = ext[i].second;
    h[0] = i + 1 < ext.size() ? ext[i + 1].first : 6;
    p.insert(p.end(), h.begin(), h.end());
  }
  std::size_t tcp_off = p.size();
  p.insert(p.end(), seg.begin(), seg.end());
  put16(p, 4, static_cast<std::uint32_t>(p.size() - 40));
  put16(p, tcp_off + 16, reference_tcp_checksum(p));
  return p;
}

// An 8-byte options-type extension header (hop-by-hop, destination options): PadN filler.
inline Bytes ext_opts8() { return {0, 0, 1, 4, 0, 0, 0, 0}; }
// Routing header type 0-less (segments left 0): 8 bytes.
inline Bytes ext_routing8() { return {0, 0, 4, 0, 0, 0, 0, 0}; }
// Fragment header: offset in 8-byte units, M flag.
inline Bytes ext_fragment(std::uint16_t offset_units, bool more) {
  std::uint16_t fo = static_cast<std::uint16_t>((offset_units << 3) | (more ? 1 : 0));
  return {0, 0, static_cast<std::uint8_t>(fo >> 8), static_cast<std::uint8_t>(fo), 0, 0, 0, 42};
}

// TCP options.
inline Bytes opt_mss(std::uint16_t v) { return {2, 4, static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)}; }
inline Bytes opt_sack(std::vector<std::pair<std::uint32_t, std::uint32_t>> blocks) {
  Bytes o = {5, static_cast<std::uint8_t>(2 + 8 * blocks.size())};
  for (auto [l, r] : blocks)
    for (std::uint32_t v : {l, r})
      for (int s = 24; s >= 0; s -= 8) o.push_back(static_cast<std::uint8_t>(v >> s));
  return o;
}
inline Bytes opt_ts(std::uint32_t val, std::uint32_t ecr) {
  Bytes o = {8, 10};
  for (std::uint32_t v : {val, ecr})
    for (int s = 24; s >= 0; s -= 8) o.push_back(static_cast<std::uint8_t>(v >> s));
  return o;
}
inline Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes o;
  for (const auto& p : parts) o.insert(o.end(), p.begin(), p.end());
  return o;
}

}  // namespace ftpwall::test
