// SPDX-License-Identifier: GPL-2.0-or-later
// PacketView::parse + SeqAdjust::apply per packet (ns/packet = the "Time" column; items/s = packets/s).
// Each iteration copies the ~90-byte packet into a work buffer first (apply changes it in place),
// so the numbers include one small memcpy.
#include <benchmark/benchmark.h>

#include <cstring>
#include <vector>

#include "ftpwall/core/packet.hpp"
#include "ftpwall/core/seq_adjust.hpp"

using namespace ftpwall;

namespace {

std::uint16_t csum(const std::vector<std::uint8_t>& b) {
  return checksum_finish(checksum_sum(b));
}

// IPv4 or IPv6 + TCP with timestamps, a control-connection-sized payload.
std::vector<std::uint8_t> make_packet(bool v6, std::uint32_t seq, const char* text) {
  std::vector<std::uint8_t> tcp = {0x9c, 0x40, 0, 21, 0, 0, 0, 0, 0, 0, 0x13, 0x88, 0x80, 0x18, 0xfa, 0xf0, 0, 0, 0, 0,
                                   1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2};
  tcp[4] = static_cast<std::uint8_t>(seq >> 24), tcp[5] = static_cast<std::uint8_t>(seq >> 16);
  tcp[6] = static_cast<std::uint8_t>(seq >> 8), tcp[7] = static_cast<std::uint8_t>(seq);
  tcp.insert(tcp.end(), text, text + std::strlen(text));
  std::vector<std::uint8_t> p;
  if (!v6) {
    p = {0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2};
    std::size_t total = 20 + tcp.size();
    p[2] = static_cast<std::uint8_t>(total >> 8), p[3] = static_cast<std::uint8_t>(total);
  } else {
    p.assign(40, 0);
    p[0] = 0x60, p[6] = 6, p[7] = 64, p[8] = 0x20, p[9] = 0x01, p[23] = 1, p[24] = 0x20, p[25] = 0x01, p[39] = 2;
    p[4] = static_cast<std::uint8_t>(tcp.size() >> 8), p[5] = static_cast<std::uint8_t>(tcp.size());
  }
  p.insert(p.end(), tcp.begin(), tcp.end());
  auto v = PacketView::parse(p);
  if (v) v->fix_checksums();
  (void)csum;
  return p;
}

// `n` corrections of the client's stream, each 10 bytes apart, growing by 5.
SeqAdjust history(int n) {
  SeqAdjust sa;
  for (int i = 0; i < n; ++i) {
    const char* o = "10,0,0,1";
    const char* w = "203,0,113,200";
    (void)sa.record(Direction::client_to_server, 1000u + static_cast<std::uint32_t>(i) * 100u,
                    std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(o), 8),
                    std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(w), 13));
  }
  return sa;
}

void run(benchmark::State& state, bool v6, int corrections, std::uint32_t seq, const char* text) {
  const auto pkt = make_packet(v6, seq, text);
  std::vector<std::uint8_t> work(pkt.size()), out;
  out.reserve(2048);
  SeqAdjust sa = history(corrections);
  for (auto _ : state) {
    std::memcpy(work.data(), pkt.data(), pkt.size());
    auto v = PacketView::parse(work);
    if (!v) {
      state.SkipWithError("parse failed");
      break;
    }
    auto r = sa.apply(*v, Direction::client_to_server, out);
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(v->bytes().data());
  }
  state.SetItemsProcessed(state.iterations());
}

const char* const line = "RETR some/file/name.txt\r\n";

void BM_ParseOnly_v4(benchmark::State& state) {
  const auto pkt = make_packet(false, 5000, line);
  std::vector<std::uint8_t> work(pkt);
  for (auto _ : state) {
    auto v = PacketView::parse(work);
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
void BM_ParseApply_NoCorrections_v4(benchmark::State& s) { run(s, false, 0, 50000, line); }
void BM_ParseApply_NoCorrections_v6(benchmark::State& s) { run(s, true, 0, 50000, line); }
// New data after every correction: seq shifted in place, incremental checksum.
void BM_ParseApply_AfterCorrections_v4(benchmark::State& s) { run(s, false, static_cast<int>(s.range(0)), 50000, line); }
void BM_ParseApply_AfterCorrections_v6(benchmark::State& s) { run(s, true, static_cast<int>(s.range(0)), 50000, line); }
// A retransmission before every correction: the history is scanned to its start.
void BM_ParseApply_BeforeCorrections_v4(benchmark::State& s) { run(s, false, static_cast<int>(s.range(0)), 900, line); }
// The rewritten announcement itself (or its retransmission): payload rebuilt, packet moved to out.
void BM_ParseApply_Rewrite_v4(benchmark::State& s) { run(s, false, static_cast<int>(s.range(0)), 995, "PORT 10,0,0,1,4,1\r\n"); }

}  // namespace

BENCHMARK(BM_ParseOnly_v4);
BENCHMARK(BM_ParseApply_NoCorrections_v4);
BENCHMARK(BM_ParseApply_NoCorrections_v6);
BENCHMARK(BM_ParseApply_AfterCorrections_v4)->Arg(1)->Arg(8)->Arg(64);
BENCHMARK(BM_ParseApply_AfterCorrections_v6)->Arg(1)->Arg(8)->Arg(64);
BENCHMARK(BM_ParseApply_BeforeCorrections_v4)->Arg(1)->Arg(8)->Arg(64);
BENCHMARK(BM_ParseApply_Rewrite_v4)->Arg(1)->Arg(8);
