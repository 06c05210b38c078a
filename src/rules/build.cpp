// SPDX-License-Identifier: GPL-2.0-or-later
// build_ruleset(): the validated options become a format-neutral list of tagged rules.
//
// The layout mirrors the stock CentOS /etc/sysconfig/iptables: policies ACCEPT, an ESTABLISHED
// accept first, the stock icmp/lo/ssh accepts, then the FTP accepts, then an unconditional REJECT
// closing INPUT and FORWARD. Two promises hold in every profile:
//   - no rule opens port 20 inbound or accepts a packet because its source port is 20 (RFC 959's
//     active data source port is trivially spoofable; filtering on it opens every port);
//   - with --helper kernel the ftp helper is attached explicitly in raw PREROUTING (kernels since
//     4.7 no longer assign it by port, net.netfilter.nf_conntrack_helper=0) and RELATED is accepted
//     only for that helper and only toward ports >= 1024.
#include <algorithm>
#include <cstdio>
#include <string>

#include "ftpwall/rules/ruleset.hpp"

namespace ftpwall::rules {

std::vector<const Rule*> Ruleset::in(Table t, std::string_view chain) const {
  std::vector<const Rule*> out;
  for (const auto& r : rules)
    if (r.table == t && r.chain == chain) out.push_back(&r);
  return out;
}

bool Ruleset::has_table(Table t) const {
  for (const auto& c : chains)
    if (c.table == t) return true;
  return false;
}

std::string comment_of(const Rule& r) { return "ftpwall: " + r.tag; }

namespace {

constexpr PortRange unprivileged{first_unprivileged_port, 65535};

Cidr host(const Address& a) { return Cidr{a, static_cast<std::uint8_t>(a.family == Family::v4 ? 32 : 128)}; }

std::string ports_word(const std::vector<std::uint16_t>& ports) {
  std::string s;
  for (auto p : ports) s += (s.empty() ? "" : ",") + std::to_string(p);
  return s;
}

class Builder {
 public:
  explicit Builder(const Validated& v) : v_(v), s_(v.spec) {}

  Ruleset build() {
    rs_.family = s_.family;
    rs_.role = s_.role;
    rs_.command_line = s_.command_line;
    raw();
    mangle();
    nat();
    filter();
    declare_chains();
    notes();
    return std::move(rs_);
  }

 private:
  Rule& add(Table t, std::string chain, Match m, Action a, Purpose p, std::string tag) {
    Rule r;
    r.table = t;
    r.chain = std::move(chain);
    r.match = std::move(m);
    r.action = a;
    r.purpose = p;
    r.tag = std::move(tag);
    rs_.rules.push_back(std::move(r));
    return rs_.rules.back();
  }

  static Match tcp_to(PortRange ports, std::uint8_t ct = ct_none) {
    Match m;
    m.proto = Proto::tcp;
    m.dports = {ports};
    m.ct = ct;
    return m;
  }
  static PortRange port(std::uint16_t p) { return {p, p}; }

  // Sources allowed to reach the server: one rule per --allow-from, or one unrestricted rule.
  std::vector<std::optional<Cidr>> sources() const {
    std::vector<std::optional<Cidr>> out;
    for (const auto& c : s_.allow_from) out.emplace_back(c);
    if (out.empty()) out.emplace_back(std::nullopt);
    return out;
  }

  // The address the outside dials and the address the server really has.
  std::optional<Address> outside_server() const {
    if (v_.server_nat()) return s_.public_address;
    if (v_.routed_server()) return s_.internal_server;
    return std::nullopt;
  }

  // raw PREROUTING: attach nf_conntrack_ftp to new control connections.
  void raw() {
    if (s_.helper != Helper::kernel) return;
    rs_.needs_helper_modules = true;
    for (auto cp : v_.control_ports) {
      if (s_.role == Role::server || outside_server()) {
        Match m = tcp_to(port(cp));
        m.in_iface = s_.interface;
        if (auto a = outside_server()) m.dst = host(*a);
        add(Table::raw, "PREROUTING", m, Action::ct_helper, Purpose::ftp, "ftp helper " + std::to_string(cp));
      }
      if (v_.client_nat()) {
        Match m = tcp_to(port(cp));
        m.src = s_.inside_network;
        add(Table::raw, "PREROUTING", m, Action::ct_helper, Purpose::ftp, "ftp helper " + std::to_string(cp) + " from inside");
      }
    }
  }

  // mangle: ftpwalld's NFQUEUE steering, first rule, both directions of every control port. In the
  // mangle table so the admin's filter rules still judge every control packet after the daemon.
  void mangle() {
    if (s_.helper != Helper::ftpwalld || s_.hooks != Hooks::admin) return;
    // The same rules ftpwalld installs itself with --hooks daemon: control connections by
    // conntrack's original destination port (both directions on a gateway; on a server INPUT the
    // original direction, OUTPUT the reply), FTPS sessions out of the queue by their connmark.
    auto steer = [&](const std::string& chain, Match::CtDir dir, std::uint16_t cp) {
      const std::string what = dir == Match::CtDir::original ? " requests" : dir == Match::CtDir::reply ? " replies" : "";
      Match m;
      m.proto = Proto::tcp;
      m.ct_orig_dport = cp;
      m.ct_dir = dir;
      m.not_connmark = s_.exempt_mark;
      Rule& r = add(Table::mangle, chain, m, Action::nfqueue, Purpose::ftp, "ftp ftpwalld steering " + std::to_string(cp) + what);
      r.queue_num = s_.queue_num;
      r.queue_bypass = s_.queue_bypass;
    };
    for (auto cp : v_.control_ports) {
      if (s_.role == Role::server) {
        steer("INPUT", Match::CtDir::original, cp);
        steer("OUTPUT", Match::CtDir::reply, cp);
      } else {
        steer("FORWARD", Match::CtDir::any, cp);
      }
    }
  }

  void nat() {
    if (s_.role != Role::gateway) return;
    const bool ftpwalld_chains = s_.helper == Helper::ftpwalld && s_.hooks == Hooks::admin;
    if (ftpwalld_chains) {
      add(Table::nat, "PREROUTING", {}, Action::jump, Purpose::ftp, "ftp ftpwalld openings dnat").chain_target = "FTPWALL-DNAT";
    }
    if (v_.server_nat()) {
      for (auto cp : v_.control_ports) {
        Match m = tcp_to(port(cp));
        m.in_iface = s_.interface;
        m.dst = host(*s_.public_address);
        add(Table::nat, "PREROUTING", m, Action::dnat, Purpose::ftp, "ftp dnat control " + std::to_string(cp)).address =
            s_.internal_server;
      }
      if (s_.helper == Helper::none) {
        for (const auto& pr : v_.passive) {
          Match m = tcp_to(pr);
          m.in_iface = s_.interface;
          m.dst = host(*s_.public_address);
          add(Table::nat, "PREROUTING", m, Action::dnat, Purpose::ftp, "ftp dnat passive " + pr.to_string()).address =
              s_.internal_server;
        }
      }
    }
    if (ftpwalld_chains) {
      add(Table::nat, "POSTROUTING", {}, Action::jump, Purpose::ftp, "ftp ftpwalld openings snat").chain_target = "FTPWALL-SNAT";
    }
    // Static SNAT of the server's active-mode connections (its PORT/EPRT data connections go out
    // from the private address; without a helper nothing else maps them to the public one).
    if (v_.server_nat() && s_.helper == Helper::none && s_.active) {
      Match m = tcp_to(unprivileged);
      m.out_iface = s_.interface;
      m.src = host(*s_.internal_server);
      add(Table::nat, "POSTROUTING", m, Action::snat, Purpose::ftp, "ftp snat active from " + s_.internal_server->to_string())
          .address = s_.public_address;
    }
    if (v_.client_nat()) {
      Match m;
      m.src = s_.inside_network;
      if (!s_.interface.empty()) {
        m.out_iface = s_.interface;
      } else {
        m.dst = s_.inside_network;
        m.not_dst = true;
      }
      const Action a = s_.public_address ? Action::snat : Action::masquerade;
      Rule& r = add(Table::nat, "POSTROUTING", m, a, Purpose::base,
                    std::string("base ") + (s_.public_address ? "snat " : "masquerade ") + s_.inside_network->to_string());
      r.address = s_.public_address;
    }
  }

  void filter() {
    // ---- INPUT: the host itself ----
    {
      Match est;
      est.ct = ct_established;
      add(Table::filter, "INPUT", est, Action::accept, Purpose::stock, "base established");
      if (s_.stock) {
        Match icmp;
        icmp.proto = Proto::icmp;
        add(Table::filter, "INPUT", icmp, Action::accept, Purpose::stock, "base icmp");
        Match lo;
        lo.in_iface = "lo";
        add(Table::filter, "INPUT", lo, Action::accept, Purpose::stock, "base loopback");
        if (s_.ssh_port)
          add(Table::filter, "INPUT", tcp_to(port(s_.ssh_port), ct_new), Action::accept, Purpose::stock,
              "base ssh " + std::to_string(s_.ssh_port));
      }
      if (s_.role == Role::server) server_input();
      // The final REJECT is emitted also with --stock no: the output alone must never leave a
      // chain open (policies are ACCEPT, as in the stock file).
      add(Table::filter, "INPUT", {}, Action::reject, Purpose::stock, "base reject");
    }
    if (s_.role == Role::server) {
      if (s_.helper == Helper::ftpwalld && s_.hooks == Hooks::admin)
        add(Table::filter, "OUTPUT", {}, Action::jump, Purpose::ftp, "ftp ftpwalld openings").chain_target = "FTPWALL-ACCEPT";
      add(Table::filter, "FORWARD", {}, Action::reject, Purpose::stock, "base reject");
      return;
    }
    // ---- FORWARD: the gateway ----
    Match est;
    est.ct = ct_established;
    add(Table::filter, "FORWARD", est, Action::accept, Purpose::base, "base established");
    if (s_.internal_server) server_forward();
    if (v_.client_nat()) client_forward();
    if (s_.helper == Helper::ftpwalld && s_.hooks == Hooks::admin)
      add(Table::filter, "FORWARD", {}, Action::jump, Purpose::ftp, "ftp ftpwalld openings").chain_target = "FTPWALL-ACCEPT";
    if (s_.helper == Helper::ftpwalld && s_.format == Format::nft) openings_line("FORWARD");
    add(Table::filter, "FORWARD", {}, Action::reject, Purpose::stock, "base reject");
  }

  void server_input() {
    for (auto cp : v_.control_ports)
      for (const auto& src : sources()) {
        Match m = tcp_to(port(cp), ct_new);
        m.in_iface = s_.interface;
        m.src = src;
        add(Table::filter, "INPUT", m, Action::accept, Purpose::ftp, "ftp control " + std::to_string(cp));
      }
    switch (s_.helper) {
      case Helper::kernel: {
        Match m = tcp_to(unprivileged, ct_related);
        m.in_iface = s_.interface;
        m.helper_ftp = true;
        add(Table::filter, "INPUT", m, Action::accept, Purpose::ftp, "ftp data related");
        break;
      }
      case Helper::none:
        for (const auto& pr : v_.passive)
          for (const auto& src : sources()) {
            Match m = tcp_to(pr, ct_new);
            m.in_iface = s_.interface;
            m.src = src;
            add(Table::filter, "INPUT", m, Action::accept, Purpose::ftp, "ftp passive " + pr.to_string());
          }
        break;
      case Helper::ftpwalld:
        if (s_.hooks == Hooks::admin)
          add(Table::filter, "INPUT", {}, Action::jump, Purpose::ftp, "ftp ftpwalld openings").chain_target = "FTPWALL-ACCEPT";
        if (s_.format == Format::nft) openings_line("INPUT");
        break;
    }
    // Active mode on a server needs no rule here: the server's data connection leaves through
    // OUTPUT (policy ACCEPT) and the client's answers are ESTABLISHED.
  }

  void server_forward() {
    const Cidr server = host(*s_.internal_server);
    for (auto cp : v_.control_ports)
      for (const auto& src : sources()) {
        Match m = tcp_to(port(cp), ct_new);
        m.in_iface = s_.interface;
        m.src = src;
        m.dst = server;
        add(Table::filter, "FORWARD", m, Action::accept, Purpose::ftp, "ftp control " + std::to_string(cp));
      }
    switch (s_.helper) {
      case Helper::kernel:
        // Passive: the client connects to the server; active: the server connects out.
        related_data(std::nullopt, server, "ftp data related passive");
        if (s_.active) related_data(server, std::nullopt, "ftp data related active");
        break;
      case Helper::none:
        for (const auto& pr : v_.passive)
          for (const auto& src : sources()) {
            Match m = tcp_to(pr, ct_new);
            m.in_iface = s_.interface;
            m.src = src;
            m.dst = server;
            add(Table::filter, "FORWARD", m, Action::accept, Purpose::ftp, "ftp passive " + pr.to_string());
          }
        // Active: the server connects out to the port the client announced (any port >= 1024).
        // Matched by destination, never by the source port 20.
        if (s_.active)
          for (const auto& dst : sources()) {
            Match m = tcp_to(unprivileged, ct_new);
            m.out_iface = s_.interface;
            m.src = server;
            m.dst = dst;
            add(Table::filter, "FORWARD", m, Action::accept, Purpose::ftp, "ftp active from " + s_.internal_server->to_string());
          }
        break;
      case Helper::ftpwalld:
        break;
    }
  }

  // nft: meta mark & M == M accept comment "ftpwall openings" (M = --accept-mark): ftpwalld's
  // verdict marks every data SYN an opening admits, in its table inet ftpwall at priority
  // filter - 10; this accept, before the chain's reject, is what lets it through the admin's table.
  void openings_line(const std::string& chain) {
    Match m;
    m.mark = s_.accept_mark;
    add(Table::filter, chain, m, Action::accept, Purpose::ftp, "ftp ftpwalld openings");
  }

  // -A FORWARD [-s SRC] [-d DST] -p tcp -m conntrack --ctstate RELATED -m helper --helper ftp
  //   --dport 1024:65535 -j ACCEPT: the kernel helper's data connections, toward unprivileged ports.
  void related_data(std::optional<Cidr> src, std::optional<Cidr> dst, std::string tag) {
    Match m = tcp_to(unprivileged, ct_related);
    m.src = std::move(src);
    m.dst = std::move(dst);
    m.helper_ftp = true;
    add(Table::filter, "FORWARD", m, Action::accept, Purpose::ftp, std::move(tag));
  }

  void client_forward() {
    const Cidr inside = *s_.inside_network;
    for (auto cp : v_.control_ports) {
      Match m = tcp_to(port(cp), ct_new);
      m.src = inside;
      add(Table::filter, "FORWARD", m, Action::accept, Purpose::ftp, "ftp control " + std::to_string(cp) + " from inside");
    }
    switch (s_.helper) {
      case Helper::kernel:
        // Passive: the inside client connects out; active: the outside server connects in.
        related_data(inside, std::nullopt, "ftp data related passive from inside");
        if (s_.active) related_data(std::nullopt, inside, "ftp data related active to inside");
        break;
      case Helper::none: {
        // Outside servers pick their own passive ports: without a helper the inside clients may
        // open any unprivileged port (validate() refused active mode here).
        Match m = tcp_to(unprivileged, ct_new);
        m.src = inside;
        add(Table::filter, "FORWARD", m, Action::accept, Purpose::ftp, "ftp passive from inside");
        break;
      }
      case Helper::ftpwalld:
        break;
    }
  }

  void declare_chains() {
    auto want = [&](Table t, std::initializer_list<const char*> builtin) {
      bool used = false;
      for (const auto& r : rs_.rules) used = used || r.table == t;
      if (!used) return;
      for (const char* c : builtin) rs_.chains.push_back({t, c, true});
    };
    want(Table::raw, {"PREROUTING", "OUTPUT"});
    want(Table::mangle, {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"});
    want(Table::nat, {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"});
    want(Table::filter, {"INPUT", "FORWARD", "OUTPUT"});
    if (s_.helper == Helper::ftpwalld && s_.hooks == Hooks::admin) {
      if (s_.role == Role::gateway) {
        rs_.chains.push_back({Table::nat, "FTPWALL-DNAT", false});
        rs_.chains.push_back({Table::nat, "FTPWALL-SNAT", false});
      }
      rs_.chains.push_back({Table::filter, "FTPWALL-ACCEPT", false});
    }
    // iptables-save prints tables in this order and user chains after the builtin ones.
    std::stable_sort(rs_.chains.begin(), rs_.chains.end(),
                     [](const ChainDecl& a, const ChainDecl& b) { return a.table < b.table; });
  }

  void notes() {
    auto& n = rs_.notes;
    const std::string cps = ports_word(v_.control_ports);
    const bool v4 = s_.family == Family::v4;
    n.push_back(std::string("Role ") + std::string(name(s_.role)) + ", helper " + std::string(name(s_.helper)) +
                ", control port(s) " + cps + ", active mode " + (s_.active ? "yes" : "no") +
                (v_.passive.empty() ? std::string() : ", passive ports " + [&] {
                  std::string p;
                  for (const auto& r : v_.passive) p += (p.empty() ? "" : ",") + r.to_string();
                  return p;
                }()) + ".");
    if (v_.sizing) n.push_back("Passive range sized for " + std::to_string(s_.sessions) + " sessions: " + v_.sizing->reason + ".");
    switch (s_.helper) {
      case Helper::kernel: {
        const bool nat = v_.server_nat() || v_.client_nat();
        rs_.nat_helper = nat;
        if (s_.format == Format::firewalld) {
          n.push_back("Kernel helper: firewalld attaches nf_conntrack_ftp to this service's control connections");
          n.push_back("(<module>) and accepts RELATED itself, for every helper.");
          break;
        }
        if (s_.format == Format::nft) {
          n.push_back("Kernel helper: chain prerouting_helper attaches the ct helper object \"ftp\" (nf_conntrack_ftp) to new");
          n.push_back("control connections; RELATED is accepted only for helper ftp, toward ports >= 1024.");
          if (nat) n.push_back("NAT: nf_nat_ftp rewrites the addresses in PORT/EPRT/227; make sure it is loaded (modprobe nf_nat_ftp).");
          break;
        }
        n.push_back("Kernel helper: the raw-table CT rule attaches nf_conntrack_ftp explicitly (kernels >= 4.7 no");
        n.push_back("longer assign helpers by port); RELATED is accepted only for helper ftp, toward ports >= 1024.");
        const std::string cfg = v4 ? "iptables-config" : "ip6tables-config";
        if (nat) {
          n.push_back("NAT: nf_nat_ftp rewrites the addresses in PORT/EPRT/227 and maps the data connections; load it too.");
          n.push_back("CentOS 6/7: IPTABLES_MODULES=\"nf_conntrack_ftp nf_nat_ftp\" in /etc/sysconfig/" + cfg + ".");
        } else {
          n.push_back("CentOS 6/7: IPTABLES_MODULES=\"nf_conntrack_ftp\" in /etc/sysconfig/" + cfg + ".");
        }
        break;
      }
      case Helper::none:
        n.push_back("No helper: the passive range is open statically (what FTPS needs: no helper can read an");
        n.push_back(s_.format == Format::nft || s_.format == Format::firewalld ? "encrypted control connection)."
                                              : "encrypted control connection). Leave nf_conntrack_ftp out of IPTABLES_MODULES.");
        break;
      case Helper::ftpwalld: {
        rs_.uses_ftpwalld = true;
        if (s_.format == Format::nft) {
          char mark[16];
          std::snprintf(mark, sizeof mark, "0x%08x", s_.accept_mark);
          const std::string hooks = s_.role == Role::server ? "input and output" : "forward";
          n.push_back("ftpwalld (ftpwall.conf backend = \"auto\" or \"nftables\") adds its own table inet ftpwall at");
          n.push_back("start and removes it at stop; this file never names it. Its chains (hook " + hooks + ") queue");
          n.push_back("control packets and each data SYN of an opening at priority filter - 10, before this table's");
          n.push_back(std::string("filter chains (priority 0); its verdict sets the packet mark ") + mark + " (queue.accept_mark),");
          n.push_back("and the rule commented \"ftpwall openings\" accepts by it. An accept in table inet ftpwall is not");
          n.push_back("final: without that rule ftpwalld refuses to start and names the chain and the line.");
          n.push_back("Policy drop: everything not accepted here is dropped, also while ftpwalld is stopped.");
          n.push_back("No nf_conntrack_ftp: ftpwalld makes the openings (kernel helper off).");
          break;
        }
        if (s_.format == Format::firewalld) {
          char mark[16];
          std::snprintf(mark, sizeof mark, "0x%08x", s_.accept_mark);
          n.push_back("ftpwalld (backend nftables: ftpwall.conf role = \"server\", backend = \"auto\") adds its own");
          n.push_back("table inet ftpwall at start and removes it at stop; firewalld does not touch it. Its verdict");
          n.push_back(std::string("sets the packet mark ") + mark + " (queue.accept_mark) on each data SYN it admits, and zone");
          n.push_back("public accepts that mark: ipset ftpwall-accept (hash:ip,mark, matched as ip saddr . meta mark)");
          n.push_back("in one rich rule. firewalld matches the whole mark: nothing else may mark those packets.");
          n.push_back("The ipset's entries are permanent, so firewall-cmd --reload restores them itself.");
          n.push_back("No helper in the service: ftpwalld makes the openings (kernel helper off).");
          break;
        }
        const std::string q = "-j NFQUEUE --queue-num " + std::to_string(s_.queue_num) + (s_.queue_bypass ? " --queue-bypass" : "");
        if (s_.hooks == Hooks::daemon) {
          n.push_back("ftpwalld owns its hooks: it adds them at start and removes them at stop, so this file");
          n.push_back("carries only what the admin owns. Where ftpwalld hooks in:");
          if (s_.role == Role::server) {
            n.push_back("  mangle INPUT 1:  -p tcp -m conntrack --ctorigdstport " + cps + " --ctdir ORIGINAL " + q);
            n.push_back("  mangle OUTPUT 1: -p tcp -m conntrack --ctorigdstport " + cps + " --ctdir REPLY " + q);
            n.push_back("  filter INPUT/OUTPUT: -j FTPWALL-ACCEPT, before the final REJECT");
          } else {
            n.push_back("  mangle FORWARD 1: -p tcp -m conntrack --ctorigdstport " + cps + " " + q);
            n.push_back("  filter FORWARD: -j FTPWALL-ACCEPT, before the final REJECT");
            n.push_back("  nat PREROUTING: -j FTPWALL-DNAT; nat POSTROUTING: -j FTPWALL-SNAT");
          }
        } else {
          n.push_back("Hooks owned by the admin (--hooks admin): this file declares ftpwalld's chains and jumps;");
          n.push_back("the daemon only fills and flushes FTPWALL-ACCEPT" +
                      std::string(s_.role == Role::gateway ? ", FTPWALL-DNAT and FTPWALL-SNAT." : "."));
        }
        n.push_back("No nf_conntrack_ftp: leave it out of IPTABLES_MODULES (ftpwalld makes the openings).");
        break;
      }
    }
    if (v_.client_nat() && s_.helper == Helper::none)
      n.push_back("Clients behind this gateway use passive mode only (active behind client NAT needs a helper).");
  }

  const Validated& v_;
  const RulesetSpec& s_;
  Ruleset rs_;
};

}  // namespace

Ruleset build_ruleset(const Validated& v) { return Builder(v).build(); }

std::string header_comment(const Ruleset& rs, std::string_view prefix) {
  std::string out;
  auto line = [&](std::string_view s) {
    out += prefix;
    out += s;
    out += '\n';
  };
  line("Generated by ftpwall rules; do not edit the lines tagged \"ftpwall:\" by hand, re-run:");
  line("  " + (rs.command_line.empty() ? std::string("ftpwall rules") : rs.command_line));
  for (const auto& n : rs.notes) line(n);
  return out;
}

}  // namespace ftpwall::rules
