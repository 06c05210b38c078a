// SPDX-License-Identifier: GPL-2.0-or-later
// Drives NftBackend from the shell for tests/netns/204-adapter-nft-backend (run inside a throw-away
// network namespace as root). Prints what the backend reads back; the story compares the kernel's
// view through `nft list table inet ftpwall`.
//   nft_backend_probe install [--role gateway|server] [--queue N] [--bypass] [--port P]... [--exempt-mark M] [--nat]
//   nft_backend_probe open SESSION OPENING SRC DST:PORT EXPIRES_UNIX [--dnat IP:PORT] [--snat IP] [--queue N] [--range-to LAST]
//   nft_backend_probe close SESSION OPENING | close-range SESSION NUMBER | close-session SESSION | flush | list | state | remove | steering
//   nft_backend_probe batch STEP [, STEP]...   one apply(); STEP = open ... (as above) | close SESSION OPENING
//   nft_backend_probe [--fail-batch] [--steering queue|xt] [--pairs] CMD ...   (NftOptions)
//   nft_backend_probe [--pairs] script   the commands above (and `sleep MS`), one per line of standard
//                                   input, in one process: what only the process keeps (--pairs);
//                                   `!CMD` lines run CMD through the shell between two of them
//   nft_backend_probe bench [--queue Q] N...   latency of one open (one batch, one OpenStep; queued to Q as the
//                                   daemon's are) and one close with N live openings: p50/p99 of 200 rounds
//   nft_backend_probe stress N     N opens and closes, one batch each
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firewall/nft_backend.hpp"
#include "opening_args.hpp"

using namespace ftpwall;
using namespace ftpwall::probe;

[[noreturn]] void ftpwall::probe::die(const std::string& msg) {
  std::fprintf(stderr, "nft_backend_probe: %s\n", msg.c_str());
  std::exit(1);
}
using namespace ftpwall::firewall;

namespace {


Opening synthetic(std::uint64_t session, std::uint32_t n, Clock::time_point expires) {
  Opening o;
  o.id = {session, n};
  o.source = Address::v4(198, 51, 100, static_cast<std::uint8_t>(1 + n % 250));
  o.destination = Endpoint{Address::v4(203, 0, 113, static_cast<std::uint8_t>(1 + (n / 250) % 250)),
                           static_cast<std::uint16_t>(1024 + session * 7 + n % 60000)};
  o.expires = expires;
  return o;
}

void run(NftBackend& b, const std::vector<std::string>& a);

double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  NftOptions options;
  for (;;) {
    if (!a.empty() && a[0] == "--fail-batch") {
      options.fail_batch = [] { return true; };
      a.erase(a.begin());
    } else if (!a.empty() && a[0] == "--pairs") {
      options.pairs = true;
      a.erase(a.begin());
    } else if (a.size() >= 2 && a[0] == "--steering") {
      options.steering = a[1] == "queue" ? NftOptions::Steering::queue : NftOptions::Steering::xt_nfqueue;
      a.erase(a.begin(), a.begin() + 2);
    } else {
      break;
    }
  }
  if (a.empty()) die("usage: nft_backend_probe [--fail-batch] [--steering queue|xt] [--pairs] install|open|close|close-session|batch|flush|list|state|pairs|remove|steering|bench|stress|script ...");
  NftBackend b(options);
  if (a[0] == "script") {
    // One command per line of standard input, all in this process (NftOptions::pairs: what one
    // process keeps, as the daemon does); "# text" lines are echoed.
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.starts_with("#")) {
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
        continue;
      }
      if (line.starts_with("!")) {  // a shell command between two of ours (nft list ..., in the namespace)
        std::fflush(stdout);
        if (std::system(line.c_str() + 1) != 0) std::printf("! failed: %s\n", line.c_str() + 1);
        std::fflush(stdout);
        continue;
      }
      std::istringstream in(line);
      std::vector<std::string> words{std::istream_iterator<std::string>(in), std::istream_iterator<std::string>()};
      if (!words.empty()) run(b, words);
      std::fflush(stdout);
    }
    return 0;
  }
  run(b, a);
  return 0;
}

namespace {

void run(NftBackend& b, const std::vector<std::string>& a) {
  const std::string cmd = a[0];
  if (cmd == "install") {
    HookSpec spec;
    spec.control_ports.clear();
    for (std::size_t i = 1; i < a.size(); ++i) {
      if (a[i] == "--role" && i + 1 < a.size()) spec.role = a[++i] == "server" ? Role::server : Role::gateway;
      else if (a[i] == "--queue" && i + 1 < a.size()) spec.queue_num = static_cast<std::uint16_t>(std::stoul(a[++i]));
      else if (a[i] == "--bypass") spec.queue_bypass = true;
      else if (a[i] == "--port" && i + 1 < a.size()) spec.control_ports.push_back(static_cast<std::uint16_t>(std::stoul(a[++i])));
      else if (a[i] == "--exempt-mark" && i + 1 < a.size()) spec.exempt_mark = static_cast<std::uint32_t>(std::stoul(a[++i], nullptr, 0));
      else if (a[i] == "--nat") spec.nat = true;
      else die("install: unknown option " + a[i]);
    }
    if (spec.control_ports.empty()) spec.control_ports.push_back(21);
    check(b.install_hooks(spec));
    std::printf("steering: %s\n", std::string(b.steering()).c_str());
  } else if (cmd == "steering") {
    auto s = b.detect_steering();
    if (!s) die(s.error().message);
    std::printf("%s\n", std::string(b.steering()).c_str());
  } else if (cmd == "open" && a.size() >= 6) {
    check(b.open(opening_of(a)));
  } else if (cmd == "batch" && a.size() >= 2) {
    check(b.apply(batch_of(a)));
  } else if (cmd == "close" && a.size() == 3) {
    check(b.close(opening_id(a[1], a[2])));
  } else if (cmd == "close-range" && a.size() == 3) {
    check(b.close(opening_id(a[1], a[2], true)));
  } else if (cmd == "close-session" && a.size() == 2) {
    check(b.close_session(std::stoull(a[1])));
  } else if (cmd == "flush") {
    check(b.flush_own());
  } else if (cmd == "remove") {
    check(b.remove_hooks());
  } else if (cmd == "list") {
    auto l = b.list_own();
    if (!l) die(l.error().message);
    for (const auto& o : *l) std::printf("%s\n", show(o).c_str());
  } else if (cmd == "state") {
    auto s = b.hook_state();
    if (!s) die(s.error().message);
    std::printf("accept_chain=%d dnat_chain=%d snat_chain=%d own_hooks=%u foreign_jumps=%u foreign_queue=%u openings=%u%s\n",
                s->accept_chain, s->dnat_chain, s->snat_chain, s->own_hooks, s->foreign_jumps, s->foreign_queue,
                s->openings, s->pairs ? (" pairs=" + std::to_string(s->pairs)).c_str() : "");
    for (const auto& r : s->steering) {
      const char* how = r.match == SteerMatch::dport ? "dport" : r.match == SteerMatch::sport ? "sport"
                        : r.match == SteerMatch::ct_original_dport ? "ctorigdstport" : "none";
      const char* dir = r.dir == CtDir::original ? " ctdir original" : r.dir == CtDir::reply ? " ctdir reply" : "";
      std::printf("steering %s %s %u%s queue %u/%u%s%s\n", r.chain.c_str(), how, r.port, dir, r.queue_num,
                  r.queues_total, r.bypass ? " bypass" : "", r.own ? " own" : "");
    }
  } else if (cmd == "stress" && a.size() == 2) {
    const auto expires = Clock::now() + std::chrono::hours(1);
    const auto n = static_cast<std::uint32_t>(std::stoul(a[1]));
    for (std::uint32_t k = 0; k < n; ++k) {
      check(b.open(synthetic(5, k, expires)));
      check(b.close(OpeningId{5, k}));
    }
    std::printf("commits=%llu max_apply_us=%llu\n", static_cast<unsigned long long>(b.stats().commits),
                static_cast<unsigned long long>(b.stats().max_apply_us));
  } else if (cmd == "bench") {
    const auto expires = Clock::now() + std::chrono::hours(1);
    std::optional<std::uint16_t> queue;  // --queue N: the measured openings queue their SYN (as the daemon's do)
    for (std::size_t i = 1; i < a.size(); ++i) {
      if (a[i] == "--queue" && i + 1 < a.size()) {
        queue = static_cast<std::uint16_t>(std::stoul(a[++i]));
        continue;
      }
      const auto n = static_cast<std::uint32_t>(std::stoul(a[i]));
      check(b.flush_own());
      for (std::uint32_t k = 0; k < n; k += 1000) {  // the live openings, 1 000 per batch
        std::vector<Change> fill;
        for (std::uint32_t j = k; j < std::min(n, k + 1000); ++j) {
          Opening f = synthetic(1, j, expires);
          if (b.queues_unnamed_syns()) f.queue = queue;  // --pairs: live openings as pairs4 elements
          fill.push_back(OpenStep{f});
        }
        check(b.apply(fill));
      }
      // One opening added and removed at a time, as the daemon does: one batch each.
      // commit = sendmsg + acknowledgement; apply = the whole call.
      std::vector<double> open_commit, open_apply, close_commit, close_apply;
      constexpr int rounds = 200;
      for (int round = -20; round < rounds; ++round) {  // 20 rounds unmeasured: warm caches and buffers
        Opening o = synthetic(2, static_cast<std::uint32_t>(round + 20), expires);
        // A source no live opening has: with --pairs the open adds a pair, the close removes it.
        o.source = Address::v4(192, 0, 2, static_cast<std::uint8_t>(1 + (round + 20) % 250));
        o.queue = queue;
        check(b.open(o));
        if (round < 0) {
          check(b.close(o.id));
          continue;
        }
        open_commit.push_back(static_cast<double>(b.stats().last_commit_us));
        open_apply.push_back(static_cast<double>(b.stats().last_apply_us));
        check(b.close(o.id));
        close_commit.push_back(static_cast<double>(b.stats().last_commit_us));
        close_apply.push_back(static_cast<double>(b.stats().last_apply_us));
      }
      auto st = b.hook_state();
      std::printf("openings=%u open: apply_p50_us=%.0f apply_p99_us=%.0f commit_p50_us=%.0f commit_p99_us=%.0f"
                  " close: apply_p50_us=%.0f apply_p99_us=%.0f\n",
                  st ? st->openings : 0u, pct(open_apply, 0.5), pct(open_apply, 0.99), pct(open_commit, 0.5),
                  pct(open_commit, 0.99), pct(close_apply, 0.5), pct(close_apply, 0.99));
    }
    check(b.flush_own());
  } else if (cmd == "sleep" && a.size() == 2) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::stoul(a[1])));
  } else {
    die("unknown command or wrong arguments: " + cmd);
  }
}

}  // namespace
