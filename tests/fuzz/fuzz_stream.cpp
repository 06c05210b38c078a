// SPDX-License-Identifier: GPL-2.0-or-later
// libFuzzer target: one input -> chunks with a direction bit and sequence jitter -> StreamAssembler
// + LineFramer per direction (MODELS item 13). Checks the invariants the daemon relies on: bytes are
// delivered once and in order, lines tile the delivered stream, every bound holds.
//
// Input format, repeated: [ctl][jitter][len] then len payload bytes (fewer at the end of input).
//   ctl bit 0: direction (0 client->server, 1 server->client)
//   ctl bit 1: FIN, ctl bits 2-7 == 0x3f: RST (rare on purpose)
//   ctl bit 2: send an ACK from the peer first (window = jitter * 64)
//   jitter: signed offset added to the sender's next sequence number (retransmission/reorder/gaps)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "ftpwall/core/limits.hpp"
#include "ftpwall/core/line_framer.hpp"
#include "ftpwall/core/stream.hpp"

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
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
  return 0;
}
