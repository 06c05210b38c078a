// SPDX-License-Identifier: GPL-2.0-or-later
// libFuzzer target: one input -> chunks with a direction bit and sequence jitter -> StreamAssembler
// + LineFramer per direction, then the same chunks as IPv4 packets -> Tracker (MODELS item 13).
// Checks the invariants the daemon relies on: bytes are delivered once and in order, lines tile the
// delivered stream, every bound holds, every held packet is released by the timer, every packet
// that leaves is well-formed with a correct checksum. And a Tracker that rests when idle (issue 13)
// does exactly what one that never rests does: the same verdicts, bytes and decisions per packet.
//
// Input format, repeated: [ctl][jitter][len] then len payload bytes (fewer at the end of input).
//   ctl bit 0: direction (0 client->server, 1 server->client)
//   ctl bit 1: FIN, ctl bits 2-7 == 0x3f: RST (rare on purpose)
//   ctl bit 2: send an ACK from the peer first (window = jitter * 64)
//   jitter: signed offset added to the sender's next sequence number (retransmission/reorder/gaps)
// Only the first max_input bytes are read. Each chunk is a packet through both pipelines, so cost
// grows with the input; libFuzzer's max_len follows the largest seed, and one 14 KB seed made most
// inputs 14 KB (~180 execs/s). 4 KiB is a whole recorded session with long UTF-8 paths and still
// fills the reorder buffer (limits::stream_reorder_bytes) and the hold bound. Keep seeds below it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "ftpwall/core/decision.hpp"
#include "ftpwall/core/limits.hpp"
#include "ftpwall/core/line_framer.hpp"
#include "ftpwall/core/packet.hpp"
#include "ftpwall/core/stream.hpp"
#include "ftpwall/core/tracker.hpp"

#include <vector>

namespace {

using namespace ftpwall;

void check(bool ok) {
  if (!ok) std::abort();
}

struct Dir : StreamSink, LineSink {
  explicit Dir(Direction d) : framer(d) {}
  StreamAssembler as;
  LineFramer framer;
  std::uint64_t expect = 0;      // next offset the assembler may deliver
  std::uint64_t line_end = 0;    // end of the last complete line
  bool ended = false;

  void on_data(std::uint64_t off, std::span<const std::uint8_t> b) override {
    check(off == expect && !ended);
    expect = off + b.size();
    framer.feed(off, b, *this);
  }
  void on_gap(std::uint64_t off, std::uint64_t len) override {
    check(off == expect && len > 0 && !ended);
    expect = off + len;
    framer.gap(expect, *this);
  }
  void on_end(std::uint64_t, bool) override {
    check(!ended);
    ended = true;
    framer.end(*this);
  }
  void on_line(const Line& l) override {
    check(l.offset >= line_end);
    check(l.text.size() <= limits::max_announcement_line);
    check(l.offset + l.raw_length <= expect);
    if (l.reason == Reason::line_too_long) check(l.raw_length > limits::max_announcement_line);
    if (l.complete) line_end = l.offset + l.raw_length;
  }
};

void put16(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}
void put32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  put16(b, at, v >> 16);
  put16(b, at + 2, v & 0xffff);
}

Endpoint ep(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint16_t port) {
  return Endpoint{Address::v4(a, b, c, d), port};
}

std::vector<std::uint8_t> build(const Tuple& t, std::uint32_t seq, std::uint32_t ack, std::uint8_t flags,
                                std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> p(40 + payload.size());
  p[0] = 0x45;
  put16(p, 2, static_cast<std::uint32_t>(p.size()));
  p[8] = 64;
  p[9] = 6;
  for (int i = 0; i < 4; ++i) {
    p[12 + i] = t.src.addr.bytes[i];
    p[16 + i] = t.dst.addr.bytes[i];
  }
  put16(p, 20, t.src.port);
  put16(p, 22, t.dst.port);
  put32(p, 24, seq);
  put32(p, 28, ack);
  p[32] = 5 << 4;
  p[33] = flags;
  put16(p, 34, 65535);
  for (std::size_t i = 0; i < payload.size(); ++i) p[40 + i] = payload[i];
  auto v = PacketView::parse(std::span<std::uint8_t>(p));
  check(v.ok());
  v->fix_checksums();
  return p;
}

void check_out(const std::vector<std::uint8_t>& bytes) {
  std::vector<std::uint8_t> copy = bytes;
  auto v = PacketView::parse(std::span<std::uint8_t>(copy));
  check(v.ok());
  check(v->tcp_checksum_ok());
}

// The same chunks through the Tracker: client 10.0.0.5 (SNAT 203.0.113.1) and server 10.1.1.2
// (DNAT 198.51.100.9), so both directions hold and rewrite.
void run_tracker(const std::uint8_t* data, std::size_t size) {
  const ConnTuples tuples{{ep(10, 0, 0, 5, 40000), ep(198, 51, 100, 9, 21)}, {ep(10, 1, 1, 2, 21), ep(203, 0, 113, 1, 40000)}};
  Tracker t(tuples, PolicyConfig{});
  Tracker live(tuples, PolicyConfig{});
  live.never_rest();
  // The resting Tracker's outcome against the live one's, packet by packet.
  auto same = [](const PacketOutcome& a, const PacketOutcome& b) {
    check(a.verdict == b.verdict && a.modified == b.modified && (!a.modified || a.bytes == b.bytes));
    check(a.decisions.size() == b.decisions.size() && a.released.size() == b.released.size());
    for (std::size_t k = 0; k < a.decisions.size(); ++k) check(to_string(a.decisions[k]) == to_string(b.decisions[k]));
    for (std::size_t k = 0; k < a.released.size(); ++k)
      check(a.released[k].tag == b.released[k].tag && a.released[k].drop == b.released[k].drop &&
            a.released[k].bytes == b.released[k].bytes);
  };
  const Tuple* way[2] = {&tuples.original, &tuples.reply};
  std::uint32_t next[2] = {0xFFFFFF00u, 1000u};
  std::uint64_t now = 1;
  auto send = [&](int d, std::uint32_t seq, std::uint32_t ack, std::uint8_t flags, std::span<const std::uint8_t> pl) {
    auto pkt = build(*way[d], seq, ack, flags, pl);
    auto twin = pkt;
    const std::size_t before = pkt.size();
    const Direction dir = d == 0 ? Direction::client_to_server : Direction::server_to_client;
    PacketOutcome o = t.on_packet(dir, std::span<std::uint8_t>(pkt), now, now);
    same(o, live.on_packet(dir, std::span<std::uint8_t>(twin), now, now));
    if (o.verdict == PacketOutcome::Verdict::accept) check_out(o.modified ? o.bytes : pkt);
    for (const auto& r : o.released) check_out(r.bytes);
    (void)before;
  };
  send(0, next[0], 0, tcp_flag::syn, {});
  send(1, next[1], next[0] + 1, tcp_flag::syn | tcp_flag::ack, {});
  next[0]++;
  next[1]++;
  std::size_t i = 0;
  while (i + 3 <= size) {
    const std::uint8_t ctl = data[i];
    const auto jitter = static_cast<std::int8_t>(data[i + 1]);
    std::size_t len = data[i + 2];
    i += 3;
    if (len > size - i) len = size - i;
    const int d = ctl & 1;
    now += static_cast<std::uint8_t>(jitter) & 0x3f;
    std::uint8_t flags = tcp_flag::ack | tcp_flag::psh;
    if ((ctl & 2) && (ctl >> 3) == 0x1f) flags |= tcp_flag::fin;
    if ((ctl >> 2) == 0x3f) flags |= tcp_flag::rst;
    const std::uint32_t seq = next[d] + static_cast<std::uint32_t>(static_cast<std::int32_t>(jitter) * 7);
    send(d, seq, next[d ^ 1], flags, std::span<const std::uint8_t>(data + i, len));
    if (jitter >= 0) next[d] = seq + static_cast<std::uint32_t>(len);
    i += len;
    check(!t.holding(Direction::client_to_server) || t.next_deadline().has_value());
  }
  PacketOutcome o = t.on_timer(now + limits::hold_timeout_ms);
  same(o, live.on_timer(now + limits::hold_timeout_ms));
  for (const auto& r : o.released) check_out(r.bytes);
  check(t.corrections() == live.corrections() && t.ended() == live.ended());
  check(!t.holding(Direction::client_to_server) && !t.holding(Direction::server_to_client));
}

}  // namespace

constexpr std::size_t max_input = 4096;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  size = std::min(size, max_input);
  Dir dirs[2] = {Dir(Direction::client_to_server), Dir(Direction::server_to_client)};
  const std::uint32_t isn[2] = {0xFFFFFF00u, 1000u};  // the client's stream wraps early
  for (int d = 0; d < 2; ++d) {
    dirs[d].as.on_segment(Segment{isn[d], true, false, false, {}}, dirs[d]);
  }
  std::size_t i = 0;
  while (i + 3 <= size) {
    const std::uint8_t ctl = data[i];
    const auto jitter = static_cast<std::int8_t>(data[i + 1]);
    std::size_t len = data[i + 2];
    i += 3;
    if (len > size - i) len = size - i;
    Dir& dir = dirs[ctl & 1];
    Dir& peer = dirs[(ctl & 1) ^ 1];
    if (ctl & 4) {
      dir.as.on_peer_ack(dir.as.next_seq(), static_cast<std::uint32_t>(static_cast<std::uint8_t>(jitter)) * 64);
    }
    (void)peer;
    Segment seg;
    seg.seq = dir.as.next_seq() + static_cast<std::uint32_t>(static_cast<std::int32_t>(jitter) * 7);
    seg.fin = (ctl & 2) != 0 && (ctl >> 3) == 0x1f;
    seg.rst = (ctl >> 2) == 0x3f;
    seg.payload = std::span<const std::uint8_t>(data + i, len);
    const std::uint64_t before = dir.as.next_offset();
    const SegmentReport r = dir.as.on_segment(seg, dir);
    check(dir.as.next_offset() >= before);
    check(dir.as.buffered_bytes() <= limits::stream_reorder_bytes);
    check(r.new_bytes + r.duplicate_bytes <= len);
    (void)dir.framer.partial_may_be_announcement();
    i += len;
  }
  run_tracker(data, size);
  return 0;
}
