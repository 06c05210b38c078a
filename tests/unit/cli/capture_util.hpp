// SPDX-License-Identifier: GPL-2.0-or-later
// Hand-built captures for the replay tests: TCP/IP packets, link-layer frames of every link type
// replay reads, pcap and pcapng files, and whole control sessions made from the recorded sessions
// of tests/data/sessions (handshake, one segment per recorded line, ACKs, FIN both ways).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "ftpwall/core/addr.hpp"
#include "ftpwall/core/packet.hpp"

namespace ftpwall::cli::test {

using Bytes = std::vector<std::uint8_t>;

inline void put16(Bytes& b, std::uint16_t v) { b.push_back(std::uint8_t(v >> 8)); b.push_back(std::uint8_t(v)); }
inline void put32(Bytes& b, std::uint32_t v) { put16(b, std::uint16_t(v >> 16)); put16(b, std::uint16_t(v)); }
inline void le16(Bytes& b, std::uint16_t v) { b.push_back(std::uint8_t(v)); b.push_back(std::uint8_t(v >> 8)); }
inline void le32(Bytes& b, std::uint32_t v) { le16(b, std::uint16_t(v)); le16(b, std::uint16_t(v >> 16)); }

namespace tcpf {
inline constexpr std::uint8_t fin = 1, syn = 2, rst = 4, psh = 8, ack = 16;
}

// An IPv4 or IPv6 TCP packet with correct checksums.
inline Bytes tcp_packet(const Endpoint& src, const Endpoint& dst, std::uint32_t seq, std::uint32_t ack,
                        std::uint8_t flags, const std::string& payload = {}, std::uint16_t window = 64240) {
  Bytes tcp;
  put16(tcp, src.port); put16(tcp, dst.port); put32(tcp, seq); put32(tcp, ack);
  const bool syn = flags & tcpf::syn;
  tcp.push_back(std::uint8_t((syn ? 6 : 5) << 4)); tcp.push_back(flags);
  put16(tcp, window); put16(tcp, 0); put16(tcp, 0);
  if (syn) { tcp.push_back(3); tcp.push_back(3); tcp.push_back(7); tcp.push_back(1); }  // wscale 7, NOP
  tcp.insert(tcp.end(), payload.begin(), payload.end());
  Bytes ip;
  if (src.addr.family == Family::v4) {
    ip = {0x45, 0};
    put16(ip, std::uint16_t(20 + tcp.size())); put16(ip, 0); put16(ip, 0x4000);
    ip.push_back(64); ip.push_back(6); put16(ip, 0);
    ip.insert(ip.end(), src.addr.bytes.begin(), src.addr.bytes.begin() + 4);
    ip.insert(ip.end(), dst.addr.bytes.begin(), dst.addr.bytes.begin() + 4);
  } else {
    ip = {0x60, 0, 0, 0};
    put16(ip, std::uint16_t(tcp.size())); ip.push_back(6); ip.push_back(64);
    ip.insert(ip.end(), src.addr.bytes.begin(), src.addr.bytes.end());
    ip.insert(ip.end(), dst.addr.bytes.begin(), dst.addr.bytes.end());
  }
  ip.insert(ip.end(), tcp.begin(), tcp.end());
  auto v = PacketView::parse(ip);
  if (v) {
    const std::uint16_t c = v->compute_tcp_checksum();
    const std::size_t at = v->ip_header_size() + 16;
    ip[at] = std::uint8_t(c >> 8); ip[at + 1] = std::uint8_t(c);
    if (src.addr.family == Family::v4) {
      const std::uint16_t h = v->compute_ipv4_header_checksum();
      ip[10] = std::uint8_t(h >> 8); ip[11] = std::uint8_t(h);
    }
  }
  return ip;
}

enum class Link { ethernet, vlan, qinq, sll, sll2, raw, null_le, null_be, loop };
inline int dlt_of(Link l) {
  switch (l) {
    case Link::ethernet: case Link::vlan: case Link::qinq: return 1;
    case Link::sll: return 113;
    case Link::sll2: return 276;
    case Link::raw: return 101;
    case Link::null_le: case Link::null_be: return 0;
    case Link::loop: return 108;
  }
  return 1;
}

inline Bytes frame(Link l, const Bytes& ip) {
  const bool v6 = !ip.empty() && (ip[0] >> 4) == 6;
  const std::uint16_t type = v6 ? 0x86dd : 0x0800;
  Bytes f;
  switch (l) {
    case Link::ethernet: case Link::vlan: case Link::qinq:
      f = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
      if (l == Link::qinq) { put16(f, 0x88a8); put16(f, 100); }
      if (l != Link::ethernet) { put16(f, 0x8100); put16(f, 7); }
      put16(f, type);
      break;
    case Link::sll:
      put16(f, 0); put16(f, 1); put16(f, 6); f.insert(f.end(), {2, 0, 0, 0, 0, 1, 0, 0}); put16(f, type);
      break;
    case Link::sll2:
      put16(f, type); put16(f, 0); put32(f, 2); put16(f, 1); f.push_back(0); f.push_back(6);
      f.insert(f.end(), {2, 0, 0, 0, 0, 1, 0, 0});
      break;
    case Link::raw: break;
    case Link::null_le: le32(f, v6 ? 30 : 2); break;
    case Link::null_be: put32(f, v6 ? 28 : 2); break;
    case Link::loop: put32(f, v6 ? 24 : 2); break;
  }
  f.insert(f.end(), ip.begin(), ip.end());
  return f;
}

struct Frame {
  std::uint64_t time_us;
  Bytes bytes;
};

inline Bytes pcap_file(int dlt, const std::vector<Frame>& frames) {
  Bytes b;
  le32(b, 0xa1b2c3d4); le16(b, 2); le16(b, 4); le32(b, 0); le32(b, 0); le32(b, 262144); le32(b, std::uint32_t(dlt));
  for (const Frame& f : frames) {
    le32(b, std::uint32_t(f.time_us / 1'000'000)); le32(b, std::uint32_t(f.time_us % 1'000'000));
    le32(b, std::uint32_t(f.bytes.size())); le32(b, std::uint32_t(f.bytes.size()));
    b.insert(b.end(), f.bytes.begin(), f.bytes.end());
  }
  return b;
}

// Minimal pcapng: section header, one interface (microsecond timestamps), enhanced packet blocks.
inline Bytes pcapng_file(int dlt, const std::vector<Frame>& frames) {
  Bytes b;
  le32(b, 0x0a0d0d0a); le32(b, 28); le32(b, 0x1a2b3c4d); le16(b, 1); le16(b, 0);
  le32(b, 0xffffffff); le32(b, 0xffffffff); le32(b, 28);
  le32(b, 1); le32(b, 20); le16(b, std::uint16_t(dlt)); le16(b, 0); le32(b, 262144); le32(b, 20);
  for (const Frame& f : frames) {
    const std::uint32_t pad = (4 - f.bytes.size() % 4) % 4;
    const std::uint32_t len = std::uint32_t(32 + f.bytes.size() + pad);
    le32(b, 6); le32(b, len); le32(b, 0);
    le32(b, std::uint32_t(f.time_us >> 32)); le32(b, std::uint32_t(f.time_us));
    le32(b, std::uint32_t(f.bytes.size())); le32(b, std::uint32_t(f.bytes.size()));
    b.insert(b.end(), f.bytes.begin(), f.bytes.end());
    b.insert(b.end(), pad, 0);
    le32(b, len);
  }
  return b;
}

inline void write_file(const std::string& path, const Bytes& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// The recorded session file: (from client?, payload) per line.
inline std::vector<std::pair<bool, std::string>> read_session(const std::string& path) {
  std::vector<std::pair<bool, std::string>> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 2 || line[0] == '#') continue;
    std::string p;
    for (std::size_t i = 2; i < line.size(); ++i) {
      if (line[i] != '\\' || i + 1 >= line.size()) { p += line[i]; continue; }
      const char e = line[++i];
      if (e == 'r') p += '\r';
      else if (e == 'n') p += '\n';
      else if (e == '\\') p += '\\';
      else if (e == 'x' && i + 2 < line.size()) { p += char(std::stoi(line.substr(i + 1, 2), nullptr, 16)); i += 2; }
    }
    out.emplace_back(line[0] == 'C', p);
  }
  return out;
}

// A TCP conversation: the handshake (optional), each payload as one segment with the peer's ACK,
// FIN both ways at the end (optional). Times advance 1 ms per packet from `t0_us`.
struct Conversation {
  Conversation(Endpoint c, Endpoint s) : client(c), server(s) {}
  Endpoint client, server;
  std::uint32_t cseq = 1000, sseq = 50000;
  std::uint64_t t_us = 1'700'000'000'000'000;
  std::vector<Bytes> packets;

  void add(bool from_client, std::uint8_t flags, const std::string& payload = {}, std::int64_t seq_shift = 0) {
    std::uint32_t& seq = from_client ? cseq : sseq;
    const std::uint32_t ack = from_client ? sseq : cseq;
    packets.push_back(tcp_packet(from_client ? client : server, from_client ? server : client,
                                 seq + std::uint32_t(seq_shift), ack, flags, payload));
    if (seq_shift == 0) seq += std::uint32_t(payload.size()) + ((flags & (tcpf::syn | tcpf::fin)) ? 1 : 0);
  }
  void handshake() {
    add(true, tcpf::syn);
    add(false, tcpf::syn | tcpf::ack);
    add(true, tcpf::ack);
  }
  void data(bool from_client, const std::string& payload) {
    add(from_client, tcpf::psh | tcpf::ack, payload);
    add(!from_client, tcpf::ack);
  }
  void close() {
    add(true, tcpf::fin | tcpf::ack);
    add(false, tcpf::fin | tcpf::ack);
    add(true, tcpf::ack);
  }
  std::vector<Frame> frames(Link l) const {
    std::vector<Frame> f;
    std::uint64_t t = t_us;
    for (const Bytes& p : packets) f.push_back(Frame{t += 1000, frame(l, p)});
    return f;
  }
};

inline Endpoint ep(const char* a, std::uint16_t port) { return Endpoint{*Address::parse(a), port}; }

}  // namespace ftpwall::cli::test
