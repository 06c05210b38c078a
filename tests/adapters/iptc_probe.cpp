// SPDX-License-Identifier: GPL-2.0-or-later
// Drives IptcBackend from the shell for tests/netns/200-adapter-iptc (run inside a throw-away
// network namespace as root). Prints what the backend reads back; the story compares the kernel's
// view through iptables-legacy-save.
//   iptc_probe install [--role gateway|server] [--queue N] [--bypass] [--port P]... [--exempt-mark M] [--nat]
//              [--state-after-line]   then prints "installed", waits for a line on stdin and judges the
//                                     hooks as the daemon's kernel check does (reinstalls when incomplete)
//   iptc_probe open SESSION OPENING SRC DST:PORT EXPIRES_UNIX [--dnat IP:PORT] [--snat IP] [--queue N]
//              (SRC and DST IPv4 or IPv6: 2001:db8::2 [2001:db8::1]:50000)
//   iptc_probe close SESSION OPENING | close-session SESSION | flush | list | state | remove
//   iptc_probe batch STEP [, STEP]...   one apply(); STEP = open ... (as above) | close SESSION OPENING
//   iptc_probe --fail-commit TABLE CMD ...   every commit of TABLE fails (IptcOptions::fail_commit;
//                                             ip6:filter for ip6tables' filter)
//   iptc_probe --no-ipv6 afnosupport|noprotoopt CMD ...   the kernel as this process sees it has no IPv6
//                 (socket(AF_INET6) fails with EAFNOSUPPORT, as under ipv6.disable=1) or no ip6_tables
//                 (IPv6 getsockopt fails with ENOPROTOOPT): the IPv4-only degradation, for real
//   iptc_probe bench N...     commit time of one open and one close with N openings in the chain
//   iptc_probe bench6 N...    the same with IPv6 openings in ip6tables' FTPWALL-ACCEPT
//   iptc_probe choose         make_backend(automatic): the backend's name and why
//   iptc_probe cleanup        remove_all_hooks() (ftpwalld --cleanup)
//   iptc_probe stress N       N opens and closes, one commit each; prints commits and EAGAIN retries
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <iostream>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "firewall/iptc_backend.hpp"
#include "opening_args.hpp"

using namespace ftpwall;
using namespace ftpwall::firewall;
using namespace ftpwall::probe;

[[noreturn]] void ftpwall::probe::die(const std::string& msg) {
  std::fprintf(stderr, "iptc_probe: %s\n", msg.c_str());
  std::exit(1);
}

// --no-ipv6: this executable's socket() and getsockopt() stand before libc's for libip6tc and the
// backend (the executable comes first in the dynamic symbol lookup).
namespace {
enum class NoIpv6 { off, afnosupport, noprotoopt } no_ipv6 = NoIpv6::off;
}
extern "C" int socket(int domain, int type, int protocol) {
  if (no_ipv6 == NoIpv6::afnosupport && domain == AF_INET6) {
    errno = EAFNOSUPPORT;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_socket, domain, type, protocol));
}
extern "C" int getsockopt(int fd, int level, int name, void* value, socklen_t* len) {
  if (no_ipv6 == NoIpv6::noprotoopt && level == IPPROTO_IPV6) {
    errno = ENOPROTOOPT;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_getsockopt, fd, level, name, value, len));
}

namespace {

void print_state(const HookState& s) {
  std::printf("accept_chain=%d dnat_chain=%d snat_chain=%d own_hooks=%u foreign_jumps=%u foreign_queue=%u openings=%u\n",
              s.accept_chain, s.dnat_chain, s.snat_chain, s.own_hooks, s.foreign_jumps, s.foreign_queue, s.openings);
  if (s.ip6) std::printf("ip6 accept_chain=%d own_hooks=%u openings=%u\n", s.ip6->accept_chain, s.ip6->own_hooks, s.ip6->openings);
  if (s.hooks_complete) std::printf("hooks_complete=%d\n", *s.hooks_complete);
  for (const auto& r : s.steering) {
    const char* how = r.match == SteerMatch::dport ? "dport" : r.match == SteerMatch::sport ? "sport"
                      : r.match == SteerMatch::ct_original_dport ? "ctorigdstport" : "none";
    const char* dir = r.dir == CtDir::original ? " ctdir original" : r.dir == CtDir::reply ? " ctdir reply" : "";
    std::printf("steering %s%s %s %u%s queue %u/%u%s%s\n", r.family == Family::v6 ? "ip6 " : "", r.chain.c_str(), how,
                r.port, dir, r.queue_num, r.queues_total, r.bypass ? " bypass" : "", r.own ? " own" : "");
  }
}


bool bench_v6 = false;  // bench6: synthetic() makes IPv6 openings

Opening synthetic(std::uint64_t session, std::uint32_t n, Clock::time_point expires) {
  Opening o;
  o.id = {session, n};
  o.source = Address::v4(198, 51, 100, static_cast<std::uint8_t>(1 + n % 250));
  o.destination = Endpoint{Address::v4(203, 0, 113, 1), static_cast<std::uint16_t>(40000 + n)};
  if (bench_v6) {  // 2001:db8:1::N -> [2001:db8:2::1]:40000+N
    o.family = Family::v6;
    o.source = addr("2001:db8:1::" + std::to_string(1 + n % 250));
    o.destination.addr = addr("2001:db8:2::1");
  }
  o.expires = expires;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  IptcOptions options;
  while (a.size() >= 2 && (a[0] == "--fail-commit" || a[0] == "--no-ipv6")) {
    if (a[0] == "--fail-commit") {
      options.fail_commit = [table = a[1]](std::string_view t) { return t == table; };
    } else if (a[1] == "afnosupport" || a[1] == "noprotoopt") {
      no_ipv6 = a[1] == "afnosupport" ? NoIpv6::afnosupport : NoIpv6::noprotoopt;
    } else {
      die("--no-ipv6 afnosupport|noprotoopt");
    }
    a.erase(a.begin(), a.begin() + 2);
  }
  if (a.empty())
    die("usage: iptc_probe [--fail-commit TABLE] [--no-ipv6 afnosupport|noprotoopt] "
        "install|open|close|close-session|batch|flush|list|state|remove|bench|bench6|choose|cleanup ...");
  IptcBackend b(options);
  const std::string cmd = a[0];
  if (cmd == "install") {
    HookSpec spec;
    spec.control_ports.clear();
    bool state_after_line = false;
    for (std::size_t i = 1; i < a.size(); ++i) {
      if (a[i] == "--role" && i + 1 < a.size()) spec.role = a[++i] == "server" ? Role::server : Role::gateway;
      else if (a[i] == "--queue" && i + 1 < a.size()) spec.queue_num = static_cast<std::uint16_t>(std::stoul(a[++i]));
      else if (a[i] == "--bypass") spec.queue_bypass = true;
      else if (a[i] == "--port" && i + 1 < a.size()) spec.control_ports.push_back(static_cast<std::uint16_t>(std::stoul(a[++i])));
      else if (a[i] == "--exempt-mark" && i + 1 < a.size()) spec.exempt_mark = static_cast<std::uint32_t>(std::stoul(a[++i], nullptr, 0));
      else if (a[i] == "--nat") spec.nat = true;
      else if (a[i] == "--state-after-line") state_after_line = true;
      else die("install: unknown option " + a[i]);
    }
    if (spec.control_ports.empty()) spec.control_ports.push_back(21);
    // preflight() first, as the daemon does: its warnings (the IPv4-only degradation) on stderr.
    auto warnings = b.preflight(spec, true);
    if (!warnings) die(warnings.error().message);
    for (const auto& w : *warnings) std::fprintf(stderr, "iptc_probe: warning: %s\n", w.c_str());
    check(b.install_hooks(spec));
    if (state_after_line) {
      // The daemon's kernel check (daemon.cpp check_kernel): incomplete hooks are reinstalled.
      std::printf("installed\n");
      std::fflush(stdout);
      std::string line;
      std::getline(std::cin, line);
      auto st = b.hook_state();
      if (!st) die(st.error().message);
      print_state(*st);
      const bool incomplete = st->hooks_complete ? !*st->hooks_complete
                                                 : st->own_hooks < expected_own_hooks(spec, *st) || !st->accept_chain;
      if (incomplete) {
        std::printf("reinstalling\n");
        check(b.install_hooks(spec));
        auto again = b.hook_state();
        if (!again) die(again.error().message);
        print_state(*again);
      }
    }
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
    print_state(*s);
  } else if (cmd == "choose") {
    auto c = make_backend(BackendKind::automatic);
    if (!c) die(c.error().message);
    std::printf("%s: %s\n", std::string(c->backend->name()).c_str(), c->why.c_str());
  } else if (cmd == "cleanup") {
    check(remove_all_hooks());
  } else if (cmd == "stress" && a.size() == 2) {
    // Opens and closes N openings one by one; another writer may be changing the table meanwhile.
    const auto expires = Clock::now() + std::chrono::hours(1);
    const auto n = static_cast<std::uint32_t>(std::stoul(a[1]));
    for (std::uint32_t k = 0; k < n; ++k) {
      check(b.open(synthetic(5, k, expires)));
      check(b.close(OpeningId{5, k}));
    }
    std::printf("commits=%llu retries=%llu\n", static_cast<unsigned long long>(b.stats().commits),
                static_cast<unsigned long long>(b.stats().commit_retries));
  } else if (cmd == "bench" || cmd == "bench6") {
    bench_v6 = cmd == "bench6";
    const auto expires = Clock::now() + std::chrono::hours(1);
    for (std::size_t i = 1; i < a.size(); ++i) {
      const auto n = static_cast<std::uint32_t>(std::stoul(a[i]));
      check(b.flush_own());
      std::vector<Change> fill;
      for (std::uint32_t k = 0; k < n; ++k) fill.push_back(OpenStep{synthetic(1, k, expires)});
      check(b.apply(fill));
      // One opening added and removed at a time, as the daemon does: two filter commits per round.
      // commit = the iptc_commit (table replace) alone; apply = lock + snapshot + edit + commit.
      std::vector<double> open_commit, open_apply, close_commit, close_apply;
      for (int round = 0; round < 21; ++round) {
        check(b.open(synthetic(2, static_cast<std::uint32_t>(round), expires)));
        open_commit.push_back(static_cast<double>(b.stats().last_commit_us));
        open_apply.push_back(static_cast<double>(b.stats().last_apply_us));
        check(b.close(OpeningId{2, static_cast<std::uint32_t>(round)}));
        close_commit.push_back(static_cast<double>(b.stats().last_commit_us));
        close_apply.push_back(static_cast<double>(b.stats().last_apply_us));
      }
      for (auto* v : {&open_commit, &open_apply, &close_commit, &close_apply}) std::sort(v->begin(), v->end());
      auto st = b.hook_state();
      std::printf("%sopenings=%u open: commit_p50_us=%.0f apply_p50_us=%.0f apply_max_us=%.0f"
                  " close: commit_p50_us=%.0f apply_p50_us=%.0f apply_max_us=%.0f\n",
                  bench_v6 ? "ipv6 " : "", st ? st->openings : 0u, open_commit[10], open_apply[10], open_apply.back(), close_commit[10],
                  close_apply[10], close_apply.back());
    }
    check(b.flush_own());
  } else {
    die("unknown command or wrong arguments: " + cmd);
  }
  return 0;
}
