// SPDX-License-Identifier: GPL-2.0-or-later
// libFuzzer target for the HA label (core/ha_label.hpp), the one parser of bytes that reach
// ftpwalld from another host (conntrackd carries the labels from the other gateway): decode,
// the encode round trip (one encoding per label), the history and the opening rebuilt from it
// for a NATed and a plain session, and a Tracker picked up with that history fed one packet.
//
// Input: bytes 0-15 the label; byte 16 picks the tuples (bit 0: server DNAT, bit 1: client SNAT);
// the rest is the payload of one server -> client packet.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "ftpwall/core/ha_label.hpp"
#include "ftpwall/core/packet.hpp"
#include "ftpwall/core/policy.hpp"
#include "ftpwall/core/tracker.hpp"

using namespace ftpwall;

namespace {

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

Endpoint ep(const char* a, std::uint16_t p) { return Endpoint{Address::parse(a).value(), p}; }

ConnTuples tuples(std::uint8_t pick) {
  const Endpoint client = ep("192.0.2.7", 40000), server = ep("10.1.1.2", 21);
  const Endpoint seen_server = (pick & 1) ? ep("203.0.113.9", 21) : server;
  const Endpoint seen_client = (pick & 2) ? ep("203.0.113.1", 40000) : client;
  return {{client, seen_server}, {server, seen_client}};
}

std::vector<std::uint8_t> packet(const Tuple& t, std::span<const std::uint8_t> payload) {
  std::vector<std::uint8_t> p(40 + payload.size());
  p[0] = 0x45;
  p[2] = static_cast<std::uint8_t>(p.size() >> 8);
  p[3] = static_cast<std::uint8_t>(p.size());
  p[8] = 64;
  p[9] = 6;
  std::copy_n(t.src.addr.bytes.begin(), 4, p.begin() + 12);
  std::copy_n(t.dst.addr.bytes.begin(), 4, p.begin() + 16);
  p[20] = static_cast<std::uint8_t>(t.src.port >> 8);
  p[21] = static_cast<std::uint8_t>(t.src.port);
  p[22] = static_cast<std::uint8_t>(t.dst.port >> 8);
  p[23] = static_cast<std::uint8_t>(t.dst.port);
  p[24] = 0x12;  // seq 0x12000000: near whatever pos the label names, sometimes
  p[32] = 5 << 4;
  p[33] = 0x18;  // ACK PSH
  p[34] = 0xff;
  p[35] = 0xff;
  std::copy(payload.begin(), payload.end(), p.begin() + 40);
  if (auto v = PacketView::parse(std::span<std::uint8_t>(p))) v->fix_checksums();
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 16) return 0;
  const std::span<const std::uint8_t, 16> bytes(data, 16);
  const auto l = decode_label(bytes);
  if (!l) return 0;
  const LabelBytes again = encode_label(*l);
  CHECK(std::equal(again.begin(), again.end(), data));
  CHECK(decode_label(again) == l);
  const ConnTuples t = tuples(size > 16 ? data[16] : 0);
  static const Policy policy;
  (void)label_opening(*l, t, 1);
  auto history = label_history(*l, t);
  if (!history) return 0;
  // What the history says about the last announcement must be what a new label says again.
  const HaLabel remade = make_label(*history, t, l->last, l->opening_live);
  CHECK(remade.carried);
  CHECK(remade.base == l->base && remade.rewrite_pending == l->rewrite_pending);
  auto tracker = Tracker::pick_up(t, policy, history->empty() ? PickupHistory::no_corrections : PickupHistory::restored,
                                  std::move(*history), Tracker::LineStart::at_first_segment);
  CHECK(tracker.ok());
  const std::span<const std::uint8_t> payload =
      size > 17 ? std::span<const std::uint8_t>(data + 17, size - 17) : std::span<const std::uint8_t>();
  auto pkt = packet(t.reply, payload.subspan(0, std::min<std::size_t>(payload.size(), 1400)));
  (void)tracker->on_packet(Direction::server_to_client, std::span<std::uint8_t>(pkt), 1000, 1);
  return 0;
}
