// SPDX-License-Identifier: GPL-2.0-or-later
// Google Benchmark of the core through its façade (issue 3): control-stream bytes/s and packets/s
// through the Tracker for a realistic session mix, and bytes per tracked session (sizeof + heap).
//
// The mix: one FTP session (greeting, login, PASV/LIST, PORT/RETR aborted with IAC IP/DM,
// EPSV/RETR with a long UTF-8 path, EPRT/NLST, QUIT; about 1.3 KB of control bytes in ~70 packets)
// replayed as
//   no NAT, whole messages      (nothing held, no rewrite)
//   client behind SNAT          (PORT and EPRT rewritten, sequence corrections for the rest)
//   server behind DNAT          (227 rewritten)
//   client behind SNAT, every message split in two segments (announcements held, then rewritten)
// The packets are recorded once (with the acks a receiver would send) and replayed through a fresh
// Tracker per iteration; copying each packet before the call is part of the measured time.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "ftpwall/core/packet.hpp"
#include "ftpwall/core/tracker.hpp"

// ---- heap accounting for "bytes per tracked session" -------------------------------------------
namespace {
std::atomic<long long> g_live{0};
std::size_t g_violations = 0;  // must stay 0: the recorded mix is a clean session
}
void* operator new(std::size_t n) {
  void* p = std::malloc(n + 16);
  if (!p) throw std::bad_alloc();
  *static_cast<std::size_t*>(p) = n;
  g_live += static_cast<long long>(n);
  return static_cast<char*>(p) + 16;
}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept {
  if (!p) return;
  char* base = static_cast<char*>(p) - 16;
  g_live -= static_cast<long long>(*reinterpret_cast<std::size_t*>(base));
  std::free(base);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
#pragma GCC diagnostic pop

namespace {

using namespace ftpwall;
using Bytes = std::vector<std::uint8_t>;

Endpoint ep(const char* a, std::uint16_t port) { return Endpoint{Address::parse(a).value(), port}; }

ConnTuples client_nat() {
  return {{ep("10.0.0.5", 40000), ep("198.51.100.2", 21)}, {ep("198.51.100.2", 21), ep("203.0.113.1", 40000)}};
}
ConnTuples server_nat() {
  return {{ep("192.0.2.7", 40000), ep("203.0.113.9", 21)}, {ep("10.1.1.2", 21), ep("192.0.2.7", 40000)}};
}
ConnTuples no_nat() { return ConnTuples::without_nat(ep("192.0.2.7", 40000), ep("198.51.100.2", 21)); }

struct Turn {
  Direction dir;
  std::string bytes;
};

// The session as the ends write it: `client` is the client's real address, `server` the server's.
std::vector<Turn> session(const std::string& client, const std::string& server) {
  const auto C = Direction::client_to_server;
  const auto S = Direction::server_to_client;
  auto commas = [](std::string a) {
    for (char& c : a) c = c == '.' ? ',' : c;
    return a;
  };
  const std::string pasv = "227 Entering Passive Mode (" + commas(server) + ",195,80).\r\n";
  const std::string host = commas(client);
  const std::string host_dot = client;
  return {
      {S, "220 (vsFTPd 3.0.3)\r\n"}, {C, "USER anonymous\r\n"}, {S, "331 Please specify the password.\r\n"},
      {C, "PASS lftp@\r\n"}, {S, "230 Login successful.\r\n"}, {C, "PWD\r\n"},
      {S, "257 \"/\" is the current directory\r\n"}, {C, "PASV\r\n"}, {S, pasv}, {C, "LIST\r\n"},
      {S, "150 Here comes the directory listing.\r\n"}, {S, "226 Directory send OK.\r\n"}, {C, "TYPE I\r\n"},
      {S, "200 Switching to Binary mode.\r\n"}, {C, "PORT " + host + ",156,64\r\n"},
      {S, "200 PORT command successful. Consider using PASV.\r\n"}, {C, "RETR big.iso\r\n"},
      {S, "150 Opening BINARY mode data connection for big.iso (734003200 bytes).\r\n"},
      {C, "\xff\xf4\xff\xf2" "ABOR\r\n"}, {S, "426 Failure writing network stream.\r\n"},
      {S, "226 Abort successful\r\n"}, {C, "EPSV\r\n"}, {S, "229 Entering Extended Passive Mode (|||50012|)\r\n"},
      {C, "RETR /d\xc3\xa9p\xc3\xb4t/\xe6\x96\x87\xe4\xbb\xb6/r\xc3\xa9sum\xc3\xa9-" + std::string(300, 'x') + ".txt\r\n"},
      {S, "150 Opening BINARY mode data connection.\r\n"}, {S, "226 Transfer complete.\r\n"},
      {C, "EPRT |1|" + host_dot + "|40123|\r\n"}, {S, "200 EPRT command successful. Consider using EPSV.\r\n"},
      {C, "NLST\r\n"}, {S, "150 Here comes the directory listing.\r\n"}, {S, "226 Directory send OK.\r\n"},
      {C, "QUIT\r\n"}, {S, "221 Goodbye.\r\n"},
  };
}

void put16(Bytes& b, std::size_t at, std::uint32_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}
void put32(Bytes& b, std::size_t at, std::uint32_t v) {
  put16(b, at, v >> 16);
  put16(b, at + 2, v & 0xffff);
}
Bytes build(const Tuple& t, std::uint32_t seq, std::uint32_t ack, std::uint8_t flags, std::string_view payload) {
  Bytes p(40 + payload.size());
  p[0] = 0x45;
  put16(p, 2, static_cast<std::uint32_t>(p.size()));
  p[8] = 64;
  p[9] = 6;
  for (int i = 0; i < 4; ++i) p[12 + i] = t.src.addr.bytes[i], p[16 + i] = t.dst.addr.bytes[i];
  put16(p, 20, t.src.port);
  put16(p, 22, t.dst.port);
  put32(p, 24, seq);
  put32(p, 28, ack);
  p[32] = 5 << 4;
  p[33] = flags;
  put16(p, 34, 65535);
  for (std::size_t i = 0; i < payload.size(); ++i) p[40 + i] = static_cast<std::uint8_t>(payload[i]);
  PacketView::parse(std::span<std::uint8_t>(p))->fix_checksums();
  return p;
}

struct Recorded {
  ConnTuples tuples;
  std::vector<std::pair<Direction, Bytes>> packets;
  std::size_t payload_bytes = 0;
};

// Plays the session once through a Tracker and records the packets as the ends would send them:
// each end acknowledges what it received, in its own (corrected) view, like a real TCP.
Recorded record(const ConnTuples& tuples, const std::vector<Turn>& turns, bool split) {
  Recorded rec{tuples, {}, 0};
  Tracker t(tuples, PolicyConfig{});
  std::uint32_t isn[2] = {0x10000000u, 0x20000000u};
  std::uint32_t next[2] = {isn[0] + 1, isn[1] + 1};
  std::uint32_t received[2] = {isn[1] + 1, isn[0] + 1};  // what end d has received of the other's stream (its ack)
  auto account = [&](Direction d, const Bytes& pkt) {
    Bytes c = pkt;
    auto v = PacketView::parse(std::span<std::uint8_t>(c));
    const std::size_t r = static_cast<std::size_t>(other(d));
    const std::uint32_t end = v->seq() + static_cast<std::uint32_t>(v->payload_size());
    if (static_cast<std::int32_t>(end - received[r]) > 0) received[r] = end;
  };
  auto send = [&](Direction d, std::uint32_t seq, std::uint8_t flags, std::string_view payload) {
    const std::size_t i = static_cast<std::size_t>(d);
    Bytes pkt = build(i == 0 ? tuples.original : tuples.reply, seq, received[i], flags, payload);
    rec.packets.push_back({d, pkt});
    rec.payload_bytes += payload.size();
    PacketOutcome o = t.on_packet(d, std::span<std::uint8_t>(pkt), 0);
    for (auto& r : o.released) account(r.direction, r.bytes);
    if (o.verdict == PacketOutcome::Verdict::accept) account(d, o.modified ? o.bytes : pkt);
  };
  send(Direction::client_to_server, isn[0], ftpwall::tcp_flag::syn, "");
  send(Direction::server_to_client, isn[1], ftpwall::tcp_flag::syn | ftpwall::tcp_flag::ack, "");
  send(Direction::client_to_server, next[0], ftpwall::tcp_flag::ack, "");
  for (const Turn& turn : turns) {
    const std::size_t i = static_cast<std::size_t>(turn.dir);
    const std::uint8_t fl = ftpwall::tcp_flag::ack | ftpwall::tcp_flag::psh;
    if (split && turn.bytes.size() > 1) {
      const std::size_t k = turn.bytes.size() / 2;
      send(turn.dir, next[i], fl, std::string_view(turn.bytes).substr(0, k));
      send(turn.dir, next[i] + static_cast<std::uint32_t>(k), fl, std::string_view(turn.bytes).substr(k));
    } else {
      send(turn.dir, next[i], fl, turn.bytes);
    }
    next[i] += static_cast<std::uint32_t>(turn.bytes.size());
    const Direction peer = other(turn.dir);
    send(peer, next[static_cast<std::size_t>(peer)], ftpwall::tcp_flag::ack, "");
  }
  return rec;
}

const std::vector<Recorded>& mix() {
  static const std::vector<Recorded> m = [] {
    std::vector<Recorded> v;
    v.push_back(record(no_nat(), session("192.0.2.7", "198.51.100.2"), false));
    v.push_back(record(client_nat(), session("10.0.0.5", "198.51.100.2"), false));
    v.push_back(record(server_nat(), session("192.0.2.7", "10.1.1.2"), false));
    v.push_back(record(client_nat(), session("10.0.0.5", "198.51.100.2"), true));
    return v;
  }();
  return m;
}

std::size_t replay(const Recorded& r, Bytes& scratch) {
  Tracker t(r.tuples, PolicyConfig{});
  std::size_t decisions = 0;
  for (const auto& [d, pkt] : r.packets) {
    scratch.assign(pkt.begin(), pkt.end());
    PacketOutcome o = t.on_packet(d, std::span<std::uint8_t>(scratch), 0);
    decisions += o.decisions.size() + o.released.size();
    for (const auto& dec : o.decisions) {
      if (std::holds_alternative<Violation>(dec)) {
        ++g_violations;
        if (std::getenv("FTPWALL_BENCH_VERBOSE")) std::fprintf(stderr, "%s\n", to_string(dec).c_str());
      }
    }
  }
  return decisions;
}

void BM_TrackerSessionMix(benchmark::State& state) {
  const auto& m = mix();
  std::size_t bytes = 0, packets = 0;
  for (const auto& r : m) bytes += r.payload_bytes, packets += r.packets.size();
  Bytes scratch;
  scratch.reserve(2048);
  std::size_t per_pass = 0;
  g_violations = 0;
  for (const auto& r : m) per_pass += replay(r, scratch);
  const std::size_t violations = g_violations;
  for (auto _ : state) {
    for (const auto& r : m) benchmark::DoNotOptimize(replay(r, scratch));
  }
  state.counters["decisions_per_pass"] = static_cast<double>(per_pass);
  state.counters["violations_per_pass"] = static_cast<double>(violations);
  state.counters["packets_per_pass"] = static_cast<double>(packets);
  state.counters["bytes_per_pass"] = static_cast<double>(bytes);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * packets));
  state.counters["packets_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * packets), benchmark::Counter::kIsRate);
  state.counters["sessions_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * m.size()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TrackerSessionMix);

// Bytes per tracked session: N Trackers mid-session (greeting, login, PWD done; idle), sizeof plus
// the heap they keep, measured by counting operator new/delete.
void BM_BytesPerSession(benchmark::State& state) {
  const Recorded& r = mix()[1];  // client behind SNAT: the case with holding enabled
  const std::size_t n = 1000;
  const std::size_t upto = 3 + 2 * 7;  // handshake + the first 7 messages with their acks
  double per_session = 0;
  for (auto _ : state) {
    std::vector<Tracker> trackers;
    trackers.reserve(n);
    const long long before = g_live.load();
    Bytes scratch;
    scratch.reserve(2048);
    for (std::size_t i = 0; i < n; ++i) {
      trackers.emplace_back(r.tuples, PolicyConfig{});
      for (std::size_t k = 0; k < upto && k < r.packets.size(); ++k) {
        scratch.assign(r.packets[k].second.begin(), r.packets[k].second.end());
        (void)trackers.back().on_packet(r.packets[k].first, std::span<std::uint8_t>(scratch), 0);
      }
    }
    // `trackers` was reserved before `before`: what grew since is the sessions' own heap.
    const long long heap = g_live.load() - before - static_cast<long long>(scratch.capacity());
    per_session = static_cast<double>(sizeof(Tracker)) + static_cast<double>(heap) / static_cast<double>(n);
  }
  state.counters["sizeof_Tracker"] = static_cast<double>(sizeof(Tracker));
  state.counters["sizeof_Session"] = static_cast<double>(sizeof(Session));
  state.counters["sizeof_StreamAssembler"] = static_cast<double>(sizeof(StreamAssembler));
  state.counters["sizeof_LineFramer"] = static_cast<double>(sizeof(LineFramer));
  state.counters["sizeof_SeqAdjust"] = static_cast<double>(sizeof(SeqAdjust));
  state.counters["bytes_per_session"] = per_session;
}
BENCHMARK(BM_BytesPerSession)->Iterations(3);

}  // namespace
