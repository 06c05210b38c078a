// SPDX-License-Identifier: GPL-2.0-or-later
// Drives the ctnetlink adapter for tests/netns/202-adapter-conntrack. Prints one line per entry:
//   id=<n> mark=0x<hex> status=0x<hex> helper=<name|-> state=<n> liberal=<0|1> original=<src>-><dst> reply=<src>-><dst>
//   ct_probe get SRC:PORT DST:PORT [original|reply]     ct_probe lookup SRC:PORT DST:PORT
//   ct_probe liberal SRC:PORT DST:PORT                   ct_probe mark SRC:PORT DST:PORT MARK MASK
//   ct_probe dump PORT[,PORT...]|all       the TCP entries of both families (only those to these
//       original destination ports: the daemon's dump), one line each as for get
//   ct_probe events PORT[,PORT...]|all SECONDS
//       the DESTROY events for SECONDS, as ftpwalld's event socket gets them (filtered to TCP entries
//       to those original destination ports, or `all`): "filtered=0|1" once, then one
//       "destroyed original=<src>-><dst>" line per event; "ready" once the socket is bound.
#include <poll.h>

#include <chrono>
#include <cstdio>
#include <vector>
#include <string>
#include <string_view>

#include "netlink/conntrack.hpp"

using namespace ftpwall;
using namespace ftpwall::netlink;

namespace {

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "ct_probe: %s\n", m.c_str());
  std::exit(1);
}

Endpoint endpoint(std::string_view s) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos) die("bad endpoint " + std::string(s));
  auto a = Address::parse(s.substr(0, colon));
  if (!a) die("bad address in " + std::string(s));
  return Endpoint{*a, static_cast<std::uint16_t>(std::stoul(std::string(s.substr(colon + 1))))};
}

void print(const Result<std::optional<ConntrackEntry>>& r) {
  if (!r) die(r.error().message);
  if (!r->has_value()) {
    std::printf("none\n");
    return;
  }
  const ConntrackEntry& e = **r;
  std::printf("id=%u mark=0x%x status=0x%x helper=%s state=%u liberal=%d original=%s->%s reply=%s->%s\n", e.id, e.mark,
              e.status, e.has_helper() ? e.helper.c_str() : "-", e.tcp_state, e.liberal(),
              e.tuples.original.src.to_string().c_str(), e.tuples.original.dst.to_string().c_str(),
              e.tuples.reply.src.to_string().c_str(), e.tuples.reply.dst.to_string().c_str());
}

}  // namespace

std::vector<std::uint16_t> port_list(std::string_view ports_arg) {
  std::vector<std::uint16_t> ports;
  if (ports_arg != "all") {
    std::size_t at = 0;
    while (at <= ports_arg.size()) {
      const std::size_t comma = std::min(ports_arg.find(',', at), ports_arg.size());
      ports.push_back(static_cast<std::uint16_t>(std::stoul(std::string(ports_arg.substr(at, comma - at)))));
      at = comma + 1;
    }
  }
  return ports;
}

int dump(std::string_view ports_arg) {
  const auto ports = port_list(ports_arg);
  auto ct = Conntrack::open();
  if (!ct) die(ct.error().message);
  for (const Family f : {Family::v4, Family::v6}) {
    auto n = (*ct)->dump(f, [](const ConntrackEntry& e) { print(std::optional<ConntrackEntry>(e)); }, ports);
    if (!n) die(n.error().message);
  }
  return 0;
}

int events(std::string_view ports_arg, double seconds) {
  const auto ports = port_list(ports_arg);
  auto ev = ConntrackEvents::open(1 << 20, ports);
  if (!ev) die(ev.error().message);
  if (!ports.empty() && !(*ev)->filtered()) die((*ev)->filter_error());
  std::printf("filtered=%d\nready\n", (*ev)->filtered());
  std::fflush(stdout);
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now()).count();
    if (left <= 0) break;
    pollfd p{(*ev)->fd(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    auto b = (*ev)->read([](const ConntrackEntry& e) {
      std::printf("destroyed original=%s->%s\n", e.tuples.original.src.to_string().c_str(),
                  e.tuples.original.dst.to_string().c_str());
    });
    if (!b) die(b.error().message);
    if (b->lost) std::printf("lost\n");
    std::fflush(stdout);
  }
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 4 && std::string_view(argv[1]) == "events") return events(argv[2], std::stod(argv[3]));
  if (argc == 3 && std::string_view(argv[1]) == "dump") return dump(argv[2]);
  if (argc < 4) die("usage: ct_probe get|lookup|liberal|mark SRC:PORT DST:PORT ... | events PORTS SECONDS");
  const std::string cmd = argv[1];
  const Tuple t{endpoint(argv[2]), endpoint(argv[3])};
  auto ct = Conntrack::open();
  if (!ct) die(ct.error().message);
  if (cmd == "get") {
    const bool reply = argc > 4 && std::string(argv[4]) == "reply";
    print((*ct)->get(t, reply ? TupleKind::reply : TupleKind::original));
  } else if (cmd == "lookup") {
    print((*ct)->lookup_packet(t));
  } else if (cmd == "liberal") {
    if (auto r = (*ct)->set_liberal(t); !r) die(r.error().message);
  } else if (cmd == "mark" && argc == 6) {
    if (auto r = (*ct)->set_mark(t, static_cast<std::uint32_t>(std::stoul(argv[4], nullptr, 0)),
                                 static_cast<std::uint32_t>(std::stoul(argv[5], nullptr, 0)));
        !r) {
      die(r.error().message);
    }
  } else {
    die("unknown command " + cmd);
  }
  return 0;
}
