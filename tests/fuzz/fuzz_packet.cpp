// SPDX-License-Identifier: GPL-2.0-or-later
// libFuzzer target: arbitrary bytes as an IPv4/IPv6 packet. Every accessor is read, every writer
// exercised, and SeqAdjust::apply() run with a small fixed correction history in both directions.
// The first input byte picks the direction and whether the payload is also replaced; the rest is
// the packet. ASan catches any read or write past the packet, UBSan any overflow.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "ftpwall/core/packet.hpp"
#include "ftpwall/core/seq_adjust.hpp"
#include "ftpwall/core/tcp_seq.hpp"

using namespace ftpwall;

namespace {

const SeqAdjust& history() {
  static const SeqAdjust sa = [] {
    SeqAdjust s;
    auto bytes = [](const char* t) {
      return std::vector<std::uint8_t>(t, t + __builtin_strlen(t));
    };
    // Regions around small sequence numbers and across 2^32, where fuzzed packets land often.
    (void)s.record(Direction::client_to_server, 0xfffffff8u, bytes("10,0,0,1"), bytes("203,0,113,200"));
    (void)s.record(Direction::client_to_server, 0x20, bytes("abcd"), bytes("ab"));
    (void)s.record(Direction::client_to_server, 0x40, bytes("50001"), bytes("50002"));
    (void)s.record(Direction::server_to_client, 0x10, bytes("192,168,1,1"), bytes("198,51,100,7"));
    (void)s.record(Direction::server_to_client, 0x30, bytes("xyz"), bytes(""));
    return s;
  }();
  return sa;
}

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t mode = data[0];
  // An exact-size heap copy, so that a read past the packet is a heap overflow.
  std::vector<std::uint8_t> buf(data + 1, data + size);
  auto r = PacketView::parse(buf);
  if (!r) {
    (void)reason_of(r.error());
    return 0;
  }
  PacketView p = *r;
  check(p.size() <= buf.size());
  check(p.payload_offset() + p.payload_size() == p.size());
  check(p.ip_header_size() + p.tcp_header_size() == p.payload_offset());
  volatile std::uint64_t sink = 0;
  sink = sink + p.src_address().bytes[0] + p.dst_address().bytes[15] + p.src_port() + p.dst_port() + p.seq() +
         p.ack() + p.flags() + p.window() + p.urgent_pointer() + p.tcp_checksum() + p.seq_length();
  sink = sink + p.mss().value_or(0) + p.window_scale().value_or(0) + p.sack_permitted();
  if (auto ts = p.timestamps()) sink = sink + ts->value + ts->echo_reply;
  for (std::size_t i = 0; i <= p.sack_count(); ++i) sink = sink + p.sack_block(i).left + p.sack_block(i).right;
  for (std::uint8_t b : p.tcp_options()) sink = sink + b;
  for (std::uint8_t b : p.payload()) sink = sink + b;
  const bool was_ok = p.tcp_checksum_ok();
  sink = sink + p.ipv4_header_checksum_ok() + p.compute_ipv4_header_checksum();

  // apply() on a copy of the history; checksums stay right when they were right.
  SeqAdjust sa = history();
  std::vector<std::uint8_t> out;
  PacketView q = p;
  const Direction dir = (mode & 1) ? Direction::server_to_client : Direction::client_to_server;
  auto a = sa.apply(q, dir, out);
  if (a) {
    check(!a->moved || q.bytes().data() == out.data());
    if (was_ok && !p.fragmented()) check(q.tcp_checksum_ok());
    check(q.ipv4_header_checksum_ok() || !p.ipv4_header_checksum_ok());
    auto again = PacketView::parse(q.bytes());
    check(again.ok());
  }
  // The public mapping functions and writers on whatever the packet holds.
  sink = sink + sa.map_seq(dir, p.seq()) + sa.map_ack(other(dir), p.ack());
  auto t = sa.transform_segment(dir, p.seq(), p.payload());
  sink = sink + t.seq + t.payload.size();

  if (mode & 2) {
    std::vector<std::uint8_t> out2;
    auto w = p.replace_payload(std::span<const std::uint8_t>(data, size), out2);
    if (w) {
      check(w->payload_size() == size);
      if (was_ok) check(w->tcp_checksum_ok());
      check(PacketView::parse(w->bytes()).ok());
    }
  }
  if (mode & 4) {
    p.set_seq(p.seq() + 1);
    p.set_ack(p.ack() - 1);
    p.set_urgent_pointer(static_cast<std::uint16_t>(p.urgent_pointer() ^ 0x5a5a));
    for (std::size_t i = 0; i < p.sack_count(); ++i) p.set_sack_block(i, {p.sack_block(i).right, p.sack_block(i).left});
    if (p.payload_size() > 0) {
      std::uint8_t x[3] = {'x', 'y', 'z'};
      std::size_t n = p.payload_size() < 3 ? p.payload_size() : 3;
      p.replace_payload_bytes(p.payload_size() - n, std::span<const std::uint8_t>(x, n));
    }
    if (was_ok && !p.fragmented()) check(p.tcp_checksum_ok());
  }
  return 0;
}
