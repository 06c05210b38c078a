// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/packet.hpp"

#include <gtest/gtest.h>

#include <random>

#include "ftpwall/core/limits.hpp"
#include "ftpwall/core/tcp_seq.hpp"
#include "packet_test_util.hpp"

namespace ftpwall {
namespace {

using test::Bytes;
using test::TcpSpec;

Reason parse_reason(Bytes& b) {
  auto r = PacketView::parse(b);
  EXPECT_FALSE(r.ok());
  return r.ok() ? Reason::none : reason_of(r.error());
}

// Checksums right by an independent full recomputation.
void expect_checksums_ok(const Bytes& pkt) {
  EXPECT_EQ(test::stored_tcp_checksum(pkt), test::reference_tcp_checksum(pkt));
  if ((pkt[0] >> 4) == 4) {
    EXPECT_EQ(test::get16(pkt, 10), test::reference_ipv4_header_checksum(pkt));
  }
}

TcpSpec rich_spec() {
  TcpSpec t;
  t.sport = 1025;
  t.dport = 21;
  t.seq = 0xfffffff0u;
  t.ack = 0x01020304u;
  t.flags = tcp_flag::ack | tcp_flag::psh | tcp_flag::urg;
  t.window = 501;
  t.urgent = 3;
  // NOP NOP TS(10) = 12, NOP NOP SACK(2 blocks, 18) = 20: 32 bytes of options.
  t.options = test::cat({{1, 1}, test::opt_ts(111, 222), {1, 1}, test::opt_sack({{100, 200}, {300, 400}})});
  t.payload = test::bytes_of("PORT 10,0,0,1,4,1\r\n");
  return t;
}

TEST(PacketView, ParsesIpv4WithIpAndTcpOptions) {
  Bytes b = test::build_v4(rich_spec(), {1, 1, 1, 0});  // NOP NOP NOP EOL
  auto r = PacketView::parse(b);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const PacketView& p = *r;
  EXPECT_EQ(p.family(), Family::v4);
  EXPECT_EQ(p.src_address(), Address::v4(192, 0, 2, 1));
  EXPECT_EQ(p.dst_address(), Address::v4(198, 51, 100, 2));
  EXPECT_EQ(p.ip_header_size(), 24u);
  EXPECT_EQ(p.tcp_header_size(), 52u);
  EXPECT_EQ(p.src_port(), 1025);
  EXPECT_EQ(p.dst_port(), 21);
  EXPECT_EQ(p.seq(), 0xfffffff0u);
  EXPECT_EQ(p.ack(), 0x01020304u);
  EXPECT_TRUE(p.has_flag(tcp_flag::urg));
  EXPECT_FALSE(p.has_flag(tcp_flag::syn));
  EXPECT_EQ(p.window(), 501);
  EXPECT_EQ(p.urgent_pointer(), 3);
  ASSERT_TRUE(p.timestamps());
  EXPECT_EQ(*p.timestamps(), (TcpTimestamps{111, 222}));
  EXPECT_FALSE(p.mss());
  ASSERT_EQ(p.sack_count(), 2u);
  EXPECT_EQ(p.sack_block(0), (SackBlock{100, 200}));
  EXPECT_EQ(p.sack_block(1), (SackBlock{300, 400}));
  EXPECT_EQ(p.sack_block(2), (SackBlock{}));  // out of range: empty, never read
  EXPECT_EQ(std::string(p.payload().begin(), p.payload().end()), "PORT 10,0,0,1,4,1\r\n");
  EXPECT_EQ(p.seq_length(), 19u);
  EXPECT_FALSE(p.fragmented());
  EXPECT_TRUE(p.tcp_checksum_ok());
  EXPECT_TRUE(p.ipv4_header_checksum_ok());
  EXPECT_EQ(p.compute_tcp_checksum(), test::reference_tcp_checksum(b));
}

TEST(PacketView, ParsesSynOptions) {
  TcpSpec t;
  t.flags = tcp_flag::syn;
  t.options = test::cat({test::opt_mss(1460), {4, 2}, test::opt_ts(1, 0), {1, 3, 3, 7}});
  Bytes b = test::build_v4(t);
  auto r = PacketView::parse(b);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->mss(), 1460);
  EXPECT_TRUE(r->sack_permitted());
  EXPECT_EQ(r->window_scale(), 7);
  EXPECT_EQ(r->seq_length(), 1u);
  EXPECT_EQ(r->payload_size(), 0u);
}

TEST(PacketView, IgnoresKnownOptionWithWrongLengthLikeTheKernel) {
  TcpSpec t;
  t.options = {2, 6, 5, 0xb4, 0, 0, 5, 4, 0, 0, 1, 1};  // MSS of length 6, SACK of length 4
  Bytes b = test::build_v4(t);
  auto r = PacketView::parse(b);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->mss());
  EXPECT_EQ(r->sack_count(), 0u);
}

TEST(PacketView, OptionsStopAtEndOfList) {
  TcpSpec t;
  t.options = {0, 0xff, 0xff, 0xff};  // EOL then garbage that would be a bad option
  Bytes b = test::build_v4(t);
  EXPECT_TRUE(PacketView::parse(b).ok());
}

TEST(PacketView, IgnoresBytesAfterTotalLength) {
  TcpSpec t;
  t.payload = test::bytes_of("NOOP\r\n");
  Bytes b = test::build_v4(t);
  std::size_t len = b.size();
  b.resize(len + 6, 0xee);  // Ethernet minimum-frame padding
  auto r = PacketView::parse(b);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), len);
  EXPECT_EQ(r->payload_size(), 6u);
  EXPECT_TRUE(r->tcp_checksum_ok());
}

TEST(PacketView, ParsesIpv6WithExtensionHeaders) {
  TcpSpec t = rich_spec();
  Bytes b = test::build_v6(t, {{0, test::ext_opts8()},
                              {60, test::ext_opts8()},
                              {43, test::ext_routing8()},
                              {44, test::ext_fragment(0, false)}});  // atomic fragment: whole packet
  auto r = PacketView::parse(b);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->family(), Family::v6);
  EXPECT_EQ(r->src_address(), *Address::parse("2001:db8::1"));
  EXPECT_EQ(r->dst_address(), *Address::parse("2001:db8::2"));
  EXPECT_EQ(r->ip_header_size(), 72u);
  EXPECT_EQ(r->seq(), 0xfffffff0u);
  EXPECT_EQ(r->sack_count(), 2u);
  EXPECT_FALSE(r->fragmented());
  EXPECT_TRUE(r->tcp_checksum_ok());
  EXPECT_TRUE(r->ipv4_header_checksum_ok());
  EXPECT_EQ(std::string(r->payload().begin(), r->payload().end()), "PORT 10,0,0,1,4,1\r\n");
}

TEST(PacketView, Ipv6ExtensionHeadersAtTheBoundAndPast) {
  TcpSpec t;
  std::vector<std::pair<std::uint8_t, Bytes>> ext;
  for (std::size_t i = 0; i < limits::max_ipv6_extension_headers; ++i) ext.push_back({60, test::ext_opts8()});
  Bytes at_bound = test::build_v6(t, ext);
  EXPECT_TRUE(PacketView::parse(at_bound).ok());
  ext.push_back({60, test::ext_opts8()});
  Bytes past = test::build_v6(t, ext);
  EXPECT_EQ(parse_reason(past), Reason::packet_too_many_extension_headers);
}

TEST(PacketView, FirstFragmentsParseMarkedNonFirstAreRefused) {
  TcpSpec t;
  Bytes v6first = test::build_v6(t, {{44, test::ext_fragment(0, true)}});
  auto r = PacketView::parse(v6first);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->fragmented());
  Bytes v6later = test::build_v6(t, {{44, test::ext_fragment(3, false)}});
  EXPECT_EQ(parse_reason(v6later), Reason::packet_fragment);

  Bytes v4first = test::build_v4(t);
  test::put16(v4first, 6, 0x2000);  // MF
  r = PacketView::parse(v4first);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->fragmented());
  Bytes v4later = test::build_v4(t);
  test::put16(v4later, 6, 0x0005);  // offset 40
  EXPECT_EQ(parse_reason(v4later), Reason::packet_fragment);
}

// ---- every malformation, each with its reason ----

TEST(PacketView, RefusesEmptyAndUnknownVersion) {
  Bytes empty;
  EXPECT_EQ(parse_reason(empty), Reason::packet_truncated);
  Bytes b = test::build_v4(TcpSpec{});
  b[0] = 0x55;
  EXPECT_EQ(parse_reason(b), Reason::packet_bad_header);
}

TEST(PacketView, RefusesIpv4ShorterThanItsHeader) {
  Bytes b = test::build_v4(TcpSpec{});
  b.resize(19);
  EXPECT_EQ(parse_reason(b), Reason::packet_truncated);
}

TEST(PacketView, RefusesIhlBelowFive) {
  Bytes b = test::build_v4(TcpSpec{});
  b[0] = 0x44;
  EXPECT_EQ(parse_reason(b), Reason::packet_bad_header);
}

TEST(PacketView, RefusesTotalLengthBeyondBuffer) {
  Bytes b = test::build_v4(TcpSpec{});
  test::put16(b, 2, static_cast<std::uint32_t>(b.size() + 1));
  EXPECT_EQ(parse_reason(b), Reason::packet_truncated);
}

TEST(PacketView, RefusesTotalLengthBelowHeader) {
  Bytes b = test::build_v4(TcpSpec{}, {1, 1, 1, 1});
  test::put16(b, 2, 20);  // IHL says 24
  EXPECT_EQ(parse_reason(b), Reason::packet_bad_header);
}

TEST(PacketView, RefusesNonTcp) {
  Bytes b = test::build_v4(TcpSpec{});
  b[9] = 17;
  EXPECT_EQ(parse_reason(b), Reason::packet_not_tcp);
  Bytes v6 = test::build_v6(TcpSpec{});
  v6[6] = 17;
  EXPECT_EQ(parse_reason(v6), Reason::packet_not_tcp);
  Bytes esp = test::build_v6(TcpSpec{}, {{50, test::ext_opts8()}});  // ESP cannot be skipped
  EXPECT_EQ(parse_reason(esp), Reason::packet_not_tcp);
  Bytes none = test::build_v6(TcpSpec{});
  none[6] = 59;  // No Next Header
  EXPECT_EQ(parse_reason(none), Reason::packet_not_tcp);
}

TEST(PacketView, RefusesTruncatedTcpHeader) {
  Bytes b = test::build_v4(TcpSpec{});
  test::put16(b, 2, 20 + 19);  // one byte short of a TCP header
  EXPECT_EQ(parse_reason(b), Reason::packet_truncated);
}

TEST(PacketView, RefusesDataOffsetBelowFive) {
  Bytes b = test::build_v4(TcpSpec{});
  b[20 + 12] = 0x40;
  EXPECT_EQ(parse_reason(b), Reason::packet_bad_header);
}

TEST(PacketView, RefusesDataOffsetPastThePacket) {
  TcpSpec t;
  t.payload = test::bytes_of("abc");
  Bytes b = test::build_v4(t);
  b[20 + 12] = 0x60;  // 24 bytes of header, 23 available
  EXPECT_EQ(parse_reason(b), Reason::packet_truncated);
  b[20 + 12] = 0xf0;
  EXPECT_EQ(parse_reason(b), Reason::packet_truncated);
}

// A malformed option ends option parsing, as in Linux tcp_parse_options; the packet still parses
// (PacketHardening.* has the options parsed before it).
TEST(PacketView, OptionLengthBelowTwoEndsOptionParsing) {
  TcpSpec t;
  t.options = {2, 1, 0, 0};
  Bytes b = test::build_v4(t);
  auto r = PacketView::parse(b);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->mss());
  t.options = {8, 0, 0, 0};
  b = test::build_v4(t);
  r = PacketView::parse(b);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->timestamps());
}

TEST(PacketView, OptionRunningPastTheHeaderEndsOptionParsing) {
  TcpSpec t;
  t.options = {1, 1, 8, 10};  // timestamps needs 10 bytes, 2 left
  Bytes b = test::build_v4(t);
  auto r = PacketView::parse(b);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->timestamps());
  t.options = {1, 1, 1, 2};  // kind 2 in the last byte, no length byte
  b = test::build_v4(t);
  r = PacketView::parse(b);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->mss());
}

TEST(PacketView, RefusesShortIpv6) {
  Bytes b = test::build_v6(TcpSpec{});
  Bytes shorter(b.begin(), b.begin() + 39);
  EXPECT_EQ(parse_reason(shorter), Reason::packet_truncated);
  test::put16(b, 4, static_cast<std::uint32_t>(b.size() - 40 + 1));
  EXPECT_EQ(parse_reason(b), Reason::packet_truncated);
}

TEST(PacketView, RefusesIpv6ExtensionHeaderPastPayload) {
  Bytes b = test::build_v6(TcpSpec{}, {{60, test::ext_opts8()}});
  b[41] = 200;  // claims 1608 bytes
  EXPECT_EQ(parse_reason(b), Reason::packet_truncated);
  Bytes c = test::build_v6(TcpSpec{});
  c[6] = 60;     // says an extension header follows, but the 20 TCP bytes are read as one...
  test::put16(c, 4, 4);  // ...and only 4 bytes of payload exist
  EXPECT_EQ(parse_reason(c), Reason::packet_truncated);
}

TEST(PacketView, RefusesHopByHopNotFirst) {
  Bytes b = test::build_v6(TcpSpec{}, {{60, test::ext_opts8()}, {0, test::ext_opts8()}});
  EXPECT_EQ(parse_reason(b), Reason::packet_bad_header);
}

TEST(PacketView, EveryPrefixOfAValidPacketIsRefusedNotReadPast) {
  for (bool v6 : {false, true}) {
    Bytes full = v6 ? test::build_v6(rich_spec(), {{0, test::ext_opts8()}, {44, test::ext_fragment(0, false)}})
                    : test::build_v4(rich_spec(), {1, 1, 1, 0});
    for (std::size_t n = 0; n < full.size(); ++n) {
      // A copy of exactly n bytes, so that reading past it would be a heap overflow under ASan.
      Bytes cut(full.begin(), full.begin() + static_cast<long>(n));
      auto r = PacketView::parse(cut);
      EXPECT_FALSE(r.ok()) << "prefix " << n;
      if (!r.ok()) {
        EXPECT_EQ(reason_of(r.error()), Reason::packet_truncated) << r.error().message;
      }
    }
  }
}

// ---- writers and checksums ----

TEST(PacketWriters, SetFieldsKeepsTheChecksumEqualToAFullRecomputation) {
  for (bool v6 : {false, true}) {
    // One NOP before SACK: its edges sit at odd offsets of the segment.
    TcpSpec t = rich_spec();
    t.options = test::cat({{1}, test::opt_sack({{100, 200}, {300, 400}}), {1, 1, 1}});
    Bytes b = v6 ? test::build_v6(t, {{60, test::ext_opts8()}}) : test::build_v4(t);
    auto r = PacketView::parse(b);
    ASSERT_TRUE(r.ok()) << r.error().message;
    PacketView p = *r;
    p.set_seq(0x7fffffffu);
    expect_checksums_ok(b);
    p.set_ack(12);
    expect_checksums_ok(b);
    p.set_urgent_pointer(0xffff);
    expect_checksums_ok(b);
    p.set_sack_block(0, {0xdeadbeefu, 0x01});
    expect_checksums_ok(b);
    p.set_sack_block(1, {7, 0xffffffffu});
    expect_checksums_ok(b);
    p.set_sack_block(2, {1, 2});  // no such block: nothing written
    expect_checksums_ok(b);
    auto again = PacketView::parse(b);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->seq(), 0x7fffffffu);
    EXPECT_EQ(again->ack(), 12u);
    EXPECT_EQ(again->urgent_pointer(), 0xffff);
    EXPECT_EQ(again->sack_block(0), (SackBlock{0xdeadbeefu, 0x01}));
    EXPECT_EQ(again->sack_block(1), (SackBlock{7, 0xffffffffu}));
    EXPECT_TRUE(again->tcp_checksum_ok());
  }
}

TEST(PacketWriters, IncrementalUpdateKeepsABadChecksumBad) {
  Bytes b = test::build_v4(rich_spec());
  std::size_t ck = 20 + 16;
  std::uint16_t good = static_cast<std::uint16_t>(test::get16(b, ck));
  test::put16(b, ck, good ^ 0x0101u);
  auto r = PacketView::parse(b);
  ASSERT_TRUE(r.ok());
  PacketView p = *r;
  p.set_seq(42);
  EXPECT_FALSE(p.tcp_checksum_ok());
  p.fix_checksums();
  EXPECT_TRUE(p.tcp_checksum_ok());
  expect_checksums_ok(b);
}

TEST(PacketWriters, ReplacePayloadBytesInPlace) {
  for (std::size_t at : {0u, 1u, 4u, 5u}) {
    Bytes b = test::build_v4(rich_spec());
    auto r = PacketView::parse(b);
    ASSERT_TRUE(r.ok());
    PacketView p = *r;
    Bytes repl = test::bytes_of("xyz");
    p.replace_payload_bytes(at, repl);
    expect_checksums_ok(b);
    EXPECT_EQ(p.payload()[at], 'x');
    EXPECT_EQ(p.payload()[at + 2], 'z');
  }
}

TEST(PacketWriters, ReplacePayloadGrowShrinkEmptyBothFamilies) {
  for (bool v6 : {false, true}) {
    for (const char* np : {"PORT 203,0,113,200,4,1\r\n", "PORT 1,2,3,4,0,21\r\n", "", "x"}) {
      TcpSpec t = rich_spec();
      Bytes b = v6 ? test::build_v6(t, {{0, test::ext_opts8()}}) : test::build_v4(t, {1, 1, 1, 1});
      b.push_back(0xee);  // padding after the total length is not copied
      auto r = PacketView::parse(b);
      ASSERT_TRUE(r.ok());
      std::vector<std::uint8_t> out;
      Bytes newp = test::bytes_of(np);
      auto w = r->replace_payload(newp, out);
      ASSERT_TRUE(w.ok()) << w.error().message;
      EXPECT_EQ(w->bytes().data(), out.data());
      EXPECT_EQ(out.size(), r->payload_offset() + newp.size());
      EXPECT_EQ(Bytes(w->payload().begin(), w->payload().end()), newp);
      EXPECT_EQ(test::get16(out, v6 ? 4 : 2), v6 ? out.size() - 40 : out.size());
      expect_checksums_ok(out);
      auto re = PacketView::parse(out);
      ASSERT_TRUE(re.ok()) << re.error().message;
      EXPECT_EQ(re->seq(), r->seq());
      EXPECT_EQ(re->sack_count(), 2u);
      // The source packet is untouched.
      expect_checksums_ok(Bytes(b.begin(), b.end() - 1));
    }
  }
}

TEST(PacketWriters, ReplacePayloadKeepsABadChecksumBadByTheSameAmount) {
  Bytes b = test::build_v4(rich_spec());
  std::size_t ck = 20 + 16;
  test::put16(b, ck, test::get16(b, ck) ^ 0x0010u);
  auto r = PacketView::parse(b);
  ASSERT_TRUE(r.ok());
  std::vector<std::uint8_t> out;
  Bytes newp = test::bytes_of("PORT 203,0,113,200,4,1\r\n");
  auto w = r->replace_payload(newp, out);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(w->tcp_checksum_ok());
  EXPECT_TRUE(w->ipv4_header_checksum_ok());
}

TEST(PacketWriters, ReplacePayloadAtTheIpLengthBoundAndPast) {
  TcpSpec t;
  Bytes b = test::build_v4(t);  // 40 bytes of headers
  auto r = PacketView::parse(b);
  ASSERT_TRUE(r.ok());
  std::vector<std::uint8_t> out;
  Bytes fits(65535 - 40, 'a'), past(65535 - 40 + 1, 'a');
  auto ok = r->replace_payload(fits, out);
  ASSERT_TRUE(ok.ok());
  expect_checksums_ok(out);
  std::vector<std::uint8_t> out2;
  auto bad = r->replace_payload(past, out2);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(reason_of(bad.error()), Reason::packet_too_large);

  Bytes v6 = test::build_v6(t);  // payload length counts from byte 40
  auto r6 = PacketView::parse(v6);
  ASSERT_TRUE(r6.ok());
  Bytes fits6(65535 - 20, 'a'), past6(65535 - 20 + 1, 'a');
  EXPECT_TRUE(r6->replace_payload(fits6, out).ok());
  expect_checksums_ok(out);
  EXPECT_FALSE(r6->replace_payload(past6, out2).ok());
}

TEST(PacketChecksum, Rfc1624Example) {
  // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000 (eqn. 3), not 0xffff.
  EXPECT_EQ(checksum_replace16(0xdd2f, 0x5555, 0x3285), 0x0000);
}

TEST(PacketChecksum, IncrementalEqualsFullRecomputationOnRandomData) {
  std::mt19937 rng(7);
  for (int round = 0; round < 2000; ++round) {
    Bytes data(2 + rng() % 64);
    for (auto& c : data) c = static_cast<std::uint8_t>(rng());
    std::uint16_t check = checksum_finish(checksum_sum(data));
    EXPECT_EQ(check, test::reference_checksum(data));
    std::size_t at = rng() % (data.size() - 1);
    std::size_t n = 1 + rng() % (data.size() - at);
    Bytes old(data.begin() + static_cast<long>(at), data.begin() + static_cast<long>(at + n));
    Bytes neu(n);
    for (auto& c : neu) c = static_cast<std::uint8_t>(rng());
    std::copy(neu.begin(), neu.end(), data.begin() + static_cast<long>(at));
    std::uint16_t inc = checksum_replace_bytes(check, at, old, neu);
    std::uint16_t full = test::reference_checksum(data);
    // 0x0000 and 0xffff are the same one's-complement number; the tail of a packet may be either.
    EXPECT_TRUE(inc == full || (inc ^ full) == 0xffff) << round;
    if (at % 2 == 0 && n >= 2) {
      std::uint16_t ow = static_cast<std::uint16_t>((old[0] << 8) | old[1]);
      std::uint16_t nw = static_cast<std::uint16_t>((neu[0] << 8) | neu[1]);
      std::uint16_t via16 = checksum_replace16(check, ow, nw);
      Bytes partial = data;
      std::copy(old.begin() + 2, old.end(), partial.begin() + static_cast<long>(at + 2));  // only the word changed
      std::uint16_t ref = test::reference_checksum(partial);
      EXPECT_TRUE(via16 == ref || (via16 ^ ref) == 0xffff) << round;
    }
    if (at % 2 == 0 && n >= 4) {
      auto w32 = [](const Bytes& v) {
        return (std::uint32_t{v[0]} << 24) | (std::uint32_t{v[1]} << 16) | (std::uint32_t{v[2]} << 8) | v[3];
      };
      Bytes partial = data;
      std::copy(old.begin() + 4, old.end(), partial.begin() + static_cast<long>(at + 4));
      std::uint16_t via32 = checksum_replace32(check, w32(old), w32(neu));
      std::uint16_t ref = test::reference_checksum(partial);
      EXPECT_TRUE(via32 == ref || (via32 ^ ref) == 0xffff) << round;
    }
  }
}

TEST(PacketChecksum, SumAtOddOffsetIsTheSwappedSum) {
  Bytes region = {0x00, 0x12, 0x34, 0x56};
  Bytes tail(region.begin() + 1, region.end());
  EXPECT_EQ(checksum_finish(checksum_sum_at(tail, 1)), checksum_finish(checksum_sum(region)));
}

// ---- tcp_seq ----

TEST(TcpSeq, ComparisonsAcrossTheWrap) {
  EXPECT_TRUE(seq_before(0xfffffff0u, 0x10u));
  EXPECT_TRUE(seq_after(0x10u, 0xfffffff0u));
  EXPECT_FALSE(seq_before(5, 5));
  EXPECT_TRUE(seq_before_eq(5, 5));
  EXPECT_TRUE(seq_after_eq(5, 5));
  EXPECT_EQ(seq_diff(0x10u, 0xfffffff0u), 0x20);
  EXPECT_EQ(seq_diff(0xfffffff0u, 0x10u), -0x20);
  EXPECT_EQ(seq_max(0xfffffff0u, 0x10u), 0x10u);
  EXPECT_EQ(seq_min(0xfffffff0u, 0x10u), 0xfffffff0u);
  // Exactly half the circle apart is ambiguous: each is "before" the other, as in the kernel.
  EXPECT_TRUE(seq_before(0x80000000u, 0u));
  EXPECT_TRUE(seq_before(0u, 0x80000000u));
  EXPECT_TRUE(seq_before(0xfffffffeu, 0x7ffffffdu));   // 2^31 - 1 apart: unambiguous
  EXPECT_FALSE(seq_before(0x7ffffffdu, 0xfffffffeu));
}

TEST(TcpSeq, WindowChecksAcrossTheWrap) {
  EXPECT_TRUE(seq_in_window(0xffffffffu, 0xfffffff0u, 0x20));
  EXPECT_TRUE(seq_in_window(0x0fu, 0xfffffff0u, 0x20));
  EXPECT_FALSE(seq_in_window(0x10u, 0xfffffff0u, 0x20));  // right edge excluded
  EXPECT_FALSE(seq_in_window(0xffffffefu, 0xfffffff0u, 0x20));
  EXPECT_TRUE(seq_between(0u, 0xfffffff0u, 0x10u));
  EXPECT_TRUE(seq_between(0x10u, 0xfffffff0u, 0x10u));
  EXPECT_FALSE(seq_between(0x11u, 0xfffffff0u, 0x10u));
  EXPECT_TRUE(seq_segment_in_window(0xffffffe0u, 0x20, 0xfffffff0u, 0x20));   // tail overlaps
  EXPECT_TRUE(seq_segment_in_window(0xffffffe0u, 0x100, 0xfffffff0u, 0x20));  // covers it
  EXPECT_FALSE(seq_segment_in_window(0xffffffe0u, 0x10, 0xfffffff0u, 0x20));  // ends at left edge
  EXPECT_TRUE(seq_segment_in_window(0x0u, 0, 0x0u, 0));                       // zero window, zero length
  EXPECT_FALSE(seq_segment_in_window(0x0u, 1, 0x0u, 0));
}

}  // namespace
}  // namespace ftpwall
