// SPDX-License-Identifier: GPL-2.0-or-later
// Drives NfQueue for tests/netns/201-adapter-nfqueue: binds a queue, accepts every packet, and in
// TCP payloads replaces FROM by TO (same length) with a full TCP checksum recomputation, so that
// the peer sees whether modified verdicts arrive. Runs until SIGTERM/SIGINT or --seconds, then
// prints its counters on one line.
//   nfq_probe --queue N [--seconds S] [--replace FROM TO] [--ready FILE] [--conntrack]
//             [--rcvbuf BYTES] [--stall-ms MS]   (a small buffer and a pause: provoke ENOBUFS)
// With --conntrack it also counts packets by direction and prints the first entry's tuples.
#include <arpa/inet.h>
#include <poll.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "netlink/nfqueue.hpp"

using namespace ftpwall;
using namespace ftpwall::netlink;

namespace {

volatile std::sig_atomic_t stop = 0;
void on_signal(int) { stop = 1; }

std::uint32_t sum16(const std::uint8_t* p, std::size_t n, std::uint32_t acc = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) acc += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) acc += static_cast<std::uint32_t>(p[n - 1] << 8);
  return acc;
}

std::uint16_t fold(std::uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return static_cast<std::uint16_t>(~acc & 0xffff);
}

// IPv4 + TCP: replace `from` by `to` in the payload; recompute the TCP checksum over the pseudo
// header and the whole segment (the kernel may have handed us a partial one: CSUMNOTREADY).
bool rewrite(std::vector<std::uint8_t>& pkt, const std::string& from, const std::string& to) {
  if (pkt.size() < 20 || (pkt[0] >> 4) != 4 || pkt[9] != 6) return false;
  const std::size_t ihl = (pkt[0] & 0x0f) * 4u;
  const std::size_t total = static_cast<std::size_t>(pkt[2] << 8 | pkt[3]);
  if (total > pkt.size() || ihl + 20 > total) return false;
  const std::size_t doff = (pkt[ihl + 12] >> 4) * 4u;
  if (ihl + doff > total) return false;
  bool changed = false;
  for (std::size_t i = ihl + doff; i + from.size() <= total; ++i) {
    if (std::memcmp(&pkt[i], from.data(), from.size()) == 0) {
      std::memcpy(&pkt[i], to.data(), to.size());
      changed = true;
      i += from.size() - 1;
    }
  }
  if (!changed) return false;
  const std::size_t tcp_len = total - ihl;
  pkt[ihl + 16] = pkt[ihl + 17] = 0;
  std::uint32_t acc = sum16(&pkt[12], 8);  // source and destination address
  acc += 6 + static_cast<std::uint32_t>(tcp_len);
  acc = sum16(&pkt[ihl], tcp_len, acc);
  const std::uint16_t c = fold(acc);
  pkt[ihl + 16] = static_cast<std::uint8_t>(c >> 8);
  pkt[ihl + 17] = static_cast<std::uint8_t>(c & 0xff);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  QueueOptions opt;
  double seconds = 60;
  int stall_ms = 0;
  std::string from, to, ready;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--queue" && i + 1 < argc) opt.queue_num = static_cast<std::uint16_t>(std::stoul(argv[++i]));
    else if (a == "--seconds" && i + 1 < argc) seconds = std::stod(argv[++i]);
    else if (a == "--replace" && i + 2 < argc) { from = argv[++i]; to = argv[++i]; }
    else if (a == "--ready" && i + 1 < argc) ready = argv[++i];
    else if (a == "--conntrack") opt.conntrack = true;
    else if (a == "--rcvbuf" && i + 1 < argc) opt.socket_buffer = std::stoi(argv[++i]);
    else if (a == "--stall-ms" && i + 1 < argc) stall_ms = std::stoi(argv[++i]);
    else { std::fprintf(stderr, "nfq_probe: unknown option %s\n", a.c_str()); return 2; }
  }
  if (from.size() != to.size()) { std::fprintf(stderr, "nfq_probe: --replace needs equal lengths\n"); return 2; }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  auto q = NfQueue::open(opt);
  if (!q) { std::fprintf(stderr, "nfq_probe: %s\n", q.error().message.c_str()); return 1; }
  if (!ready.empty()) std::ofstream(ready) << "ready\n";
  std::uint64_t csum_not_ready = 0, gso = 0, max_len = 0, hooks[5] = {}, ct_original = 0, ct_reply = 0, ct_none = 0;
  std::string first_ct;
  std::vector<std::uint8_t> copy;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!stop && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{(*q)->fd(), POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    if (stall_ms > 0) {  // once, at the first packet: let the socket buffer overflow
      poll(nullptr, 0, stall_ms);
      stall_ms = 0;
    }
    auto r = (*q)->receive([&](const QueuedPacket& p) {
      csum_not_ready += p.checksum_not_ready;
      gso += p.gso;
      max_len = std::max<std::uint64_t>(max_len, p.payload.size());
      if (p.hook != Hook::unknown) ++hooks[static_cast<int>(p.hook)];
      if (!p.conntrack || !p.ctinfo) {
        ++ct_none;
      } else {
        ++(p.reply_direction() ? ct_reply : ct_original);
        if (first_ct.empty()) {
          first_ct = " ct_first=" + p.conntrack->tuples.original.src.to_string() + "->" +
                     p.conntrack->tuples.original.dst.to_string() + "/" + p.conntrack->tuples.reply.src.to_string() +
                     "->" + p.conntrack->tuples.reply.dst.to_string() + " ct_id=" + std::to_string(p.conntrack->id);
        }
      }
      copy.assign(p.payload.begin(), p.payload.end());
      Result<void> v = !from.empty() && rewrite(copy, from, to) ? (*q)->verdict(p.id, Verdict::accept, copy)
                                                                 : (*q)->verdict(p.id, Verdict::accept);
      if (!v) std::fprintf(stderr, "nfq_probe: %s\n", v.error().message.c_str());
    });
    if (!r) { std::fprintf(stderr, "nfq_probe: %s\n", r.error().message.c_str()); return 1; }
  }
  const auto& s = (*q)->stats();
  std::printf("packets=%llu verdicts=%llu modified=%llu enobufs=%llu verdict_errors=%llu malformed=%llu "
              "csum_not_ready=%llu gso=%llu max_len=%llu input=%llu output=%llu forward=%llu rcvbuf=%d "
              "ct_original=%llu ct_reply=%llu ct_none=%llu%s\n",
              (unsigned long long)s.packets, (unsigned long long)s.verdicts, (unsigned long long)s.modified,
              (unsigned long long)s.enobufs, (unsigned long long)s.verdict_errors, (unsigned long long)s.malformed,
              (unsigned long long)csum_not_ready, (unsigned long long)gso, (unsigned long long)max_len,
              (unsigned long long)hooks[1], (unsigned long long)hooks[3], (unsigned long long)hooks[2],
              (*q)->socket_buffer(), (unsigned long long)ct_original, (unsigned long long)ct_reply,
              (unsigned long long)ct_none, first_ct.c_str());
  return 0;
}
