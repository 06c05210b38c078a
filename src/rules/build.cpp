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
// Families: the builder runs every rule site once per family's part (each() below); rules the
// parts made alike and that name no address, no ICMP type and no NAT become one rule for both.
// IPv6 gets RFC 4890's ICMPv6 accepts instead of the stock "every ICMP" line; NAT is IPv4 only.
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

// The builtin chains of every table a rule uses, plus the user chains (in iptables-save order:
// tables raw, mangle, nat, filter; user chains after the builtin ones).
void declare_chains(Ruleset& rs, const std::vector<ChainDecl>& user) {
  rs.chains.clear();
  auto want = [&](Table t, std::initializer_list<const char*> builtin) {
    bool used = false;
    for (const auto& r : rs.rules) used = used || r.table == t;
    if (!used) return;
    for (const char* c : builtin) rs.chains.push_back({t, c, true, std::nullopt});
  };
  want(Table::raw, {"PREROUTING", "OUTPUT"});
  want(Table::mangle, {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"});
  want(Table::nat, {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"});
  want(Table::filter, {"INPUT", "FORWARD", "OUTPUT"});
  for (const auto& c : user) rs.chains.push_back(c);
  std::stable_sort(rs.chains.begin(), rs.chains.end(), [](const ChainDecl& a, const ChainDecl& b) { return a.table < b.table; });
}

// Two rules of different families that say the same thing with no address, no ICMP and no NAT
// target become one rule for both.
bool neutral(const Rule& r) {
  return !r.match.src && !r.match.dst && !r.address && r.match.proto != Proto::icmp && r.match.proto != Proto::icmpv6 &&
         r.action != Action::dnat && r.action != Action::snat && r.action != Action::masquerade;
}
std::string key_of(const Rule& r) {
  return std::string(name(r.table)) + " " + r.chain + " " + iptables_rule_body(r, Family::v4) + " " +
         std::to_string(static_cast<int>(r.purpose)) + " " + std::to_string(r.match.mark);
}

// RFC 4890 (ICMPv6 filtering), section 4.4 for a host's own traffic, 4.3 for traffic it forwards.
constexpr std::uint8_t icmp6_errors[] = {1, 2, 3, 4};  // destination-unreachable, packet-too-big, time-exceeded, parameter-problem
constexpr std::uint8_t icmp6_nd[] = {133, 134, 135, 136};  // router solicitation/advertisement, neighbour solicitation/advertisement
constexpr std::uint8_t icmp6_mld[] = {130, 131, 132, 143};  // MLD query, report, done; MLDv2 report
constexpr std::uint8_t icmp6_echo_request = 128;

class Builder {
 public:
  explicit Builder(const Plan& p) : plan_(p), s_(p.spec) {}

  Ruleset build() {
    rs_.family = s_.family;
    rs_.role = s_.role;
    rs_.command_line = s_.command_line;
    raw();
    mangle();
    nat();
    filter();
    chains();
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
    r.family = cur_->family;
    rs_.rules.push_back(std::move(r));
    return rs_.rules.back();
  }

  // Runs f for every family's part; rules the parts added alike become one rule for both.
  template <class F>
  void each(F&& f) {
    const std::size_t start = rs_.rules.size();
    for (const auto& p : plan_.parts) {
      cur_ = &p;
      f(p);
    }
    for (std::size_t i = start; i < rs_.rules.size(); ++i) {
      if (!neutral(rs_.rules[i]) || !rs_.rules[i].family) continue;
      const std::string k = key_of(rs_.rules[i]);
      for (std::size_t j = i + 1; j < rs_.rules.size(); ++j)
        if (rs_.rules[j].family && *rs_.rules[j].family != *rs_.rules[i].family && neutral(rs_.rules[j]) &&
            key_of(rs_.rules[j]) == k) {
          rs_.rules[i].family.reset();
          rs_.rules.erase(rs_.rules.begin() + static_cast<std::ptrdiff_t>(j));
          break;
        }
    }
  }

  static Match tcp_to(PortRange ports, std::uint8_t ct = ct_none) {
    Match m;
    m.proto = Proto::tcp;
    m.dports = {ports};
    m.ct = ct;
    return m;
  }
  static PortRange port(std::uint16_t p) { return {p, p}; }

  // Sources allowed to reach the server: one rule per --allow-from of the part's family, or one
  // unrestricted rule; none when --allow-from names only networks of the other family.
  static std::vector<std::optional<Cidr>> sources(const Validated& p) {
    std::vector<std::optional<Cidr>> out;
    if (p.no_clients) return out;
    for (const auto& c : p.allow_from) out.emplace_back(c);
    if (out.empty()) out.emplace_back(std::nullopt);
    return out;
  }

  // The address the outside dials and the address the server really has.
  static std::optional<Address> outside_server(const Validated& p) {
    if (p.server_nat()) return p.public_address;
    if (p.routed_server()) return p.internal_server;
    return std::nullopt;
  }

  // raw PREROUTING: attach nf_conntrack_ftp to new control connections.
  void raw() {
    if (s_.helper != Helper::kernel) return;
    rs_.needs_helper_modules = true;
    for (auto cp : plan_.parts.front().control_ports) {
      each([&](const Validated& p) {
        if (s_.role == Role::server || outside_server(p)) {
          Match m = tcp_to(port(cp));
          m.in_iface = s_.interface;
          if (auto a = outside_server(p)) m.dst = host(*a);
          add(Table::raw, "PREROUTING", m, Action::ct_helper, Purpose::ftp, "ftp helper " + std::to_string(cp));
        }
      });
      each([&](const Validated& p) {
        if (p.inside_clients()) {
          Match m = tcp_to(port(cp));
          m.src = p.inside_network;
          add(Table::raw, "PREROUTING", m, Action::ct_helper, Purpose::ftp, "ftp helper " + std::to_string(cp) + " from inside");
        }
      });
    }
  }

  // mangle: ftpwalld's NFQUEUE steering, first rule, both directions of every control port. In the
  // mangle table so the admin's filter rules still judge every control packet after the daemon.
  // IPv6 control connections are steered exactly as IPv4 ones (the same rules in ip6tables).
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
    for (auto cp : plan_.parts.front().control_ports) {
      if (s_.role == Role::server) {
        each([&](const Validated&) { steer("INPUT", Match::CtDir::original, cp); });
        each([&](const Validated&) { steer("OUTPUT", Match::CtDir::reply, cp); });
      } else {
        each([&](const Validated&) { steer("FORWARD", Match::CtDir::any, cp); });
      }
    }
  }

  // NAT is IPv4 only (NAT66 is out of scope): only the IPv4 part has server_nat()/client_nat().
  void nat() {
    if (s_.role != Role::gateway) return;
    const bool ftpwalld_chains = s_.helper == Helper::ftpwalld && s_.hooks == Hooks::admin;
    each([&](const Validated& p) {
      if (ftpwalld_chains && p.family == Family::v4)
        add(Table::nat, "PREROUTING", {}, Action::jump, Purpose::ftp, "ftp ftpwalld openings dnat").chain_target = "FTPWALL-DNAT";
      if (p.server_nat()) {
        for (auto cp : p.control_ports) {
          Match m = tcp_to(port(cp));
          m.in_iface = s_.interface;
          m.dst = host(*p.public_address);
          add(Table::nat, "PREROUTING", m, Action::dnat, Purpose::ftp, "ftp dnat control " + std::to_string(cp)).address =
              p.internal_server;
        }
        if (s_.helper == Helper::none) {
          for (const auto& pr : p.passive) {
            Match m = tcp_to(pr);
            m.in_iface = s_.interface;
            m.dst = host(*p.public_address);
            add(Table::nat, "PREROUTING", m, Action::dnat, Purpose::ftp, "ftp dnat passive " + pr.to_string()).address =
                p.internal_server;
          }
        }
      }
      if (ftpwalld_chains && p.family == Family::v4)
        add(Table::nat, "POSTROUTING", {}, Action::jump, Purpose::ftp, "ftp ftpwalld openings snat").chain_target = "FTPWALL-SNAT";
      // Static SNAT of the server's active-mode connections (its PORT/EPRT data connections go out
      // from the private address; without a helper nothing else maps them to the public one).
      if (p.server_nat() && s_.helper == Helper::none && s_.active) {
        Match m = tcp_to(unprivileged);
        m.out_iface = s_.interface;
        m.src = host(*p.internal_server);
        add(Table::nat, "POSTROUTING", m, Action::snat, Purpose::ftp, "ftp snat active from " + p.internal_server->to_string())
            .address = p.public_address;
      }
      if (p.client_nat()) {
        Match m;
        m.src = p.inside_network;
        if (!s_.interface.empty()) {
          m.out_iface = s_.interface;
        } else {
          m.dst = p.inside_network;
          m.not_dst = true;
        }
        const Action a = p.public_address ? Action::snat : Action::masquerade;
        Rule& r = add(Table::nat, "POSTROUTING", m, a, Purpose::base,
                      std::string("base ") + (p.public_address ? "snat " : "masquerade ") + p.inside_network->to_string());
        r.address = p.public_address;
      }
    });
  }

  // ICMP: IPv4 the stock accept of every type (--stock yes); IPv6 RFC 4890's list: the errors
  // (1-4) and neighbour discovery (133-136, hop limit 255) and MLD (130-132, 143, link-local
  // sources) always, since IPv6 does not work without them (ESTABLISHED alone covers none:
  // ND is not tracked, errors are RELATED); echo-request (128) only with --stock yes, as the IPv4
  // accept. On a gateway's FORWARD the IPv6 errors (packet-too-big above all: routers do not
  // fragment IPv6).
  void icmp_input(const Validated& p) {
    if (p.family == Family::v4) {
      if (!s_.stock) return;
      Match icmp;
      icmp.proto = Proto::icmp;
      add(Table::filter, "INPUT", icmp, Action::accept, Purpose::stock, "base icmp");
      return;
    }
    // nft --family 6: the inet table is still the host's whole filter, and its base rules serve
    // IPv4 too (as the IPv4-only table's ICMP accept serves ICMPv6): the stock IPv4 ICMP accept.
    if (s_.format == Format::nft && s_.family == Families::v6 && s_.stock) {
      Match icmp;
      icmp.proto = Proto::icmp;
      add(Table::filter, "INPUT", icmp, Action::accept, Purpose::stock, "base icmp");
    }
    Match err;
    err.proto = Proto::icmpv6;
    err.icmp_types.assign(std::begin(icmp6_errors), std::end(icmp6_errors));
    add(Table::filter, "INPUT", err, Action::accept, Purpose::stock, "base icmpv6 errors");
    Match nd;
    nd.proto = Proto::icmpv6;
    nd.icmp_types.assign(std::begin(icmp6_nd), std::end(icmp6_nd));
    nd.hop_limit = 255;
    add(Table::filter, "INPUT", nd, Action::accept, Purpose::stock, "base icmpv6 neighbour discovery");
    Match mld;
    mld.proto = Proto::icmpv6;
    mld.src = Cidr{*Address::parse("fe80::"), 10};
    mld.icmp_types.assign(std::begin(icmp6_mld), std::end(icmp6_mld));
    add(Table::filter, "INPUT", mld, Action::accept, Purpose::stock, "base icmpv6 mld");
    if (s_.stock) {
      Match echo;
      echo.proto = Proto::icmpv6;
      echo.icmp_types = {icmp6_echo_request};
      add(Table::filter, "INPUT", echo, Action::accept, Purpose::stock, "base icmpv6 echo-request");
    }
  }

  // --ha: INVALID first, silently. A packet of a connection this gateway has not learnt (yet) is
  // INVALID (nf_conntrack_tcp_loose=0); addressed to a virtual address, the backup's own TCP stack
  // would answer it with a RST, and the final REJECT would send ICMP errors mid-failover.
  void ha_drop_invalid(const char* chain) {
    if (!s_.ha.enabled) return;
    Match m;
    m.ct = ct_invalid;
    add(Table::filter, chain, m, Action::drop, Purpose::base, "base ha drop invalid");
  }

  // --ha: conntrackd's sync (UDP) and keepalived's unicast VRRP adverts (IP protocol 112), on the
  // sync link, from the peer to this gateway only.
  void ha_input() {
    if (!s_.ha.enabled) return;
    const HaSpec& ha = s_.ha;
    auto from_peer = [&](Proto p) {
      Match m;
      m.in_iface = ha.sync_interface;
      m.src = host(*ha.peer);
      m.dst = host(*ha.self);
      m.proto = p;
      return m;
    };
    Match sync_msgs = from_peer(Proto::udp);
    sync_msgs.dports = {port(ha.sync_port)};
    add(Table::filter, "INPUT", sync_msgs, Action::accept, Purpose::base, "base ha conntrackd sync " + std::to_string(ha.sync_port));
    add(Table::filter, "INPUT", from_peer(Proto::vrrp), Action::accept, Purpose::base, "base ha vrrp");
  }

  void filter() {
    // ---- INPUT: the host itself ----
    each([&](const Validated&) { ha_drop_invalid("INPUT"); });
    each([&](const Validated&) {
      Match est;
      est.ct = ct_established;
      add(Table::filter, "INPUT", est, Action::accept, Purpose::stock, "base established");
    });
    each([&](const Validated& p) { icmp_input(p); });
    if (s_.stock) {
      each([&](const Validated&) {
        Match lo;
        lo.in_iface = "lo";
        add(Table::filter, "INPUT", lo, Action::accept, Purpose::stock, "base loopback");
      });
      if (s_.ssh_port)
        each([&](const Validated&) {
          add(Table::filter, "INPUT", tcp_to(port(s_.ssh_port), ct_new), Action::accept, Purpose::stock,
              "base ssh " + std::to_string(s_.ssh_port));
        });
    }
    each([&](const Validated&) { ha_input(); });
    if (s_.role == Role::server) server_input();
    // The final REJECT is emitted also with --stock no: the output alone must never leave a
    // chain open (policies are ACCEPT, as in the stock file).
    each([&](const Validated&) { add(Table::filter, "INPUT", {}, Action::reject, Purpose::stock, "base reject"); });
    if (s_.role == Role::server) {
      if (s_.helper == Helper::ftpwalld && s_.hooks == Hooks::admin)
        each([&](const Validated&) {
          add(Table::filter, "OUTPUT", {}, Action::jump, Purpose::ftp, "ftp ftpwalld openings").chain_target = "FTPWALL-ACCEPT";
        });
      each([&](const Validated&) { add(Table::filter, "FORWARD", {}, Action::reject, Purpose::stock, "base reject"); });
      return;
    }
    // ---- FORWARD: the gateway ----
    each([&](const Validated&) { ha_drop_invalid("FORWARD"); });
    each([&](const Validated&) {
      Match est;
      est.ct = ct_established;
      add(Table::filter, "FORWARD", est, Action::accept, Purpose::base, "base established");
    });
    each([&](const Validated& p) {
      if (p.family != Family::v6) return;
      Match err;
      err.proto = Proto::icmpv6;
      err.icmp_types.assign(std::begin(icmp6_errors), std::end(icmp6_errors));
      add(Table::filter, "FORWARD", err, Action::accept, Purpose::base, "base icmpv6 errors");
    });
    server_forward();
    client_forward();
    if (s_.helper == Helper::ftpwalld && s_.hooks == Hooks::admin)
      each([&](const Validated&) {
        add(Table::filter, "FORWARD", {}, Action::jump, Purpose::ftp, "ftp ftpwalld openings").chain_target = "FTPWALL-ACCEPT";
      });
    if (s_.helper == Helper::ftpwalld && s_.format == Format::nft) each([&](const Validated&) { openings_line("FORWARD"); });
    each([&](const Validated&) { add(Table::filter, "FORWARD", {}, Action::reject, Purpose::stock, "base reject"); });
  }

  void server_input() {
    for (auto cp : plan_.parts.front().control_ports)
      each([&](const Validated& p) {
        for (const auto& src : sources(p)) {
          Match m = tcp_to(port(cp), ct_new);
          m.in_iface = s_.interface;
          m.src = src;
          add(Table::filter, "INPUT", m, Action::accept, Purpose::ftp, "ftp control " + std::to_string(cp));
        }
      });
    switch (s_.helper) {
      case Helper::kernel:
        each([&](const Validated& p) {
          if (sources(p).empty()) return;
          Match m = tcp_to(unprivileged, ct_related);
          m.in_iface = s_.interface;
          m.helper_ftp = true;
          add(Table::filter, "INPUT", m, Action::accept, Purpose::ftp, "ftp data related");
        });
        break;
      case Helper::none:
        for (const auto& pr : plan_.parts.front().passive)
          each([&](const Validated& p) {
            for (const auto& src : sources(p)) {
              Match m = tcp_to(pr, ct_new);
              m.in_iface = s_.interface;
              m.src = src;
              add(Table::filter, "INPUT", m, Action::accept, Purpose::ftp, "ftp passive " + pr.to_string());
            }
          });
        break;
      case Helper::ftpwalld:
        if (s_.hooks == Hooks::admin)
          each([&](const Validated&) {
            add(Table::filter, "INPUT", {}, Action::jump, Purpose::ftp, "ftp ftpwalld openings").chain_target = "FTPWALL-ACCEPT";
          });
        if (s_.format == Format::nft) each([&](const Validated&) { openings_line("INPUT"); });
        break;
    }
    // Active mode on a server needs no rule here: the server's data connection leaves through
    // OUTPUT (policy ACCEPT) and the client's answers are ESTABLISHED.
  }

  void server_forward() {
    for (auto cp : plan_.parts.front().control_ports)
      each([&](const Validated& p) {
        if (!p.internal_server) return;
        for (const auto& src : sources(p)) {
          Match m = tcp_to(port(cp), ct_new);
          m.in_iface = s_.interface;
          m.src = src;
          m.dst = host(*p.internal_server);
          add(Table::filter, "FORWARD", m, Action::accept, Purpose::ftp, "ftp control " + std::to_string(cp));
        }
      });
    switch (s_.helper) {
      case Helper::kernel:
        // Passive: the client connects to the server; active: the server connects out.
        each([&](const Validated& p) {
          if (p.internal_server && !sources(p).empty()) related_data(std::nullopt, host(*p.internal_server), "ftp data related passive");
        });
        if (s_.active)
          each([&](const Validated& p) {
            if (p.internal_server && !sources(p).empty()) related_data(host(*p.internal_server), std::nullopt, "ftp data related active");
          });
        break;
      case Helper::none:
        for (const auto& pr : plan_.parts.front().passive)
          each([&](const Validated& p) {
            if (!p.internal_server) return;
            for (const auto& src : sources(p)) {
              Match m = tcp_to(pr, ct_new);
              m.in_iface = s_.interface;
              m.src = src;
              m.dst = host(*p.internal_server);
              add(Table::filter, "FORWARD", m, Action::accept, Purpose::ftp, "ftp passive " + pr.to_string());
            }
          });
        // Active: the server connects out to the port the client announced (any port >= 1024).
        // Matched by destination, never by the source port 20.
        if (s_.active)
          each([&](const Validated& p) {
            if (!p.internal_server) return;
            for (const auto& dst : sources(p)) {
              Match m = tcp_to(unprivileged, ct_new);
              m.out_iface = s_.interface;
              m.src = host(*p.internal_server);
              m.dst = dst;
              add(Table::filter, "FORWARD", m, Action::accept, Purpose::ftp, "ftp active from " + p.internal_server->to_string());
            }
          });
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

  // Clients behind the gateway: masqueraded (IPv4) or routed (IPv6).
  void client_forward() {
    for (auto cp : plan_.parts.front().control_ports)
      each([&](const Validated& p) {
        if (!p.inside_clients()) return;
        Match m = tcp_to(port(cp), ct_new);
        m.src = p.inside_network;
        add(Table::filter, "FORWARD", m, Action::accept, Purpose::ftp, "ftp control " + std::to_string(cp) + " from inside");
      });
    switch (s_.helper) {
      case Helper::kernel:
        // Passive: the inside client connects out; active: the outside server connects in.
        each([&](const Validated& p) {
          if (p.inside_clients()) related_data(*p.inside_network, std::nullopt, "ftp data related passive from inside");
        });
        if (s_.active)
          each([&](const Validated& p) {
            if (p.inside_clients()) related_data(std::nullopt, *p.inside_network, "ftp data related active to inside");
          });
        break;
      case Helper::none:
        // Outside servers pick their own passive ports: without a helper the inside clients may
        // open any unprivileged port (validate() refused active mode here).
        each([&](const Validated& p) {
          if (!p.inside_clients()) return;
          Match m = tcp_to(unprivileged, ct_new);
          m.src = p.inside_network;
          add(Table::filter, "FORWARD", m, Action::accept, Purpose::ftp, "ftp passive from inside");
        });
        break;
      case Helper::ftpwalld:
        break;
    }
  }

  void chains() {
    std::vector<ChainDecl> user;
    if (s_.helper == Helper::ftpwalld && s_.hooks == Hooks::admin) {
      if (s_.role == Role::gateway && plan_.part(Family::v4)) {
        user.push_back({Table::nat, "FTPWALL-DNAT", false, Family::v4});
        user.push_back({Table::nat, "FTPWALL-SNAT", false, Family::v4});
      }
      user.push_back({Table::filter, "FTPWALL-ACCEPT", false, std::nullopt});
    }
    declare_chains(rs_, user);
  }

  void note(std::string text, std::optional<Family> f = std::nullopt) { rs_.notes.push_back({f, std::move(text)}); }

  void notes() {
    const Validated& v = plan_.parts.front();
    const std::string cps = ports_word(v.control_ports);
    const bool both = s_.family == Families::both;
    const bool v6 = plan_.part(Family::v6) != nullptr;
    note(std::string("Role ") + std::string(name(s_.role)) + ", helper " + std::string(name(s_.helper)) +
         ", control port(s) " + cps + ", active mode " + (s_.active ? "yes" : "no") +
         (v.passive.empty() ? std::string() : ", passive ports " + [&] {
           std::string p;
           for (const auto& r : v.passive) p += (p.empty() ? "" : ",") + r.to_string();
           return p;
         }()) + (s_.family == Families::v4 ? std::string() : both ? ", IPv4 and IPv6" : ", IPv6") + ".");
    if (v.sizing) note("Passive range sized for " + std::to_string(s_.sessions) + " sessions: " + v.sizing->reason + ".");
    bool nat = false;
    for (const auto& p : plan_.parts) nat = nat || p.server_nat() || p.client_nat();
    switch (s_.helper) {
      case Helper::kernel: {
        rs_.nat_helper = nat;
        if (s_.format == Format::firewalld) {
          note("Kernel helper: firewalld attaches nf_conntrack_ftp to this service's control connections");
          note("(<module>) and accepts RELATED itself, for every helper.");
          break;
        }
        if (s_.format == Format::nft) {
          note("Kernel helper: chain prerouting_helper attaches the ct helper object \"ftp\" (nf_conntrack_ftp) to new");
          note("control connections; RELATED is accepted only for helper ftp, toward ports >= 1024.");
          if (nat) note("NAT: nf_nat_ftp rewrites the addresses in PORT/EPRT/227; make sure it is loaded (modprobe nf_nat_ftp).");
          break;
        }
        note("Kernel helper: the raw-table CT rule attaches nf_conntrack_ftp explicitly (kernels >= 4.7 no");
        note("longer assign helpers by port); RELATED is accepted only for helper ftp, toward ports >= 1024.");
        for (const auto& p : plan_.parts) {
          const std::string cfg = p.family == Family::v4 ? "iptables-config" : "ip6tables-config";
          const bool pnat = p.server_nat() || p.client_nat();
          if (pnat) {
            note("NAT: nf_nat_ftp rewrites the addresses in PORT/EPRT/227 and maps the data connections; load it too.", p.family);
            note("CentOS 6/7: IPTABLES_MODULES=\"nf_conntrack_ftp nf_nat_ftp\" in /etc/sysconfig/" + cfg + ".", p.family);
          } else {
            note("CentOS 6/7: " + std::string(p.family == Family::v4 ? "IPTABLES_MODULES" : "IP6TABLES_MODULES") +
                     "=\"nf_conntrack_ftp\" in /etc/sysconfig/" + cfg + ".",
                 p.family);
          }
        }
        break;
      }
      case Helper::none:
        note("No helper: the passive range is open statically (what FTPS needs: no helper can read an");
        note(s_.format == Format::nft || s_.format == Format::firewalld ? "encrypted control connection)."
                                                                        : "encrypted control connection). Leave nf_conntrack_ftp out of IPTABLES_MODULES.");
        break;
      case Helper::ftpwalld: {
        rs_.uses_ftpwalld = true;
        if (s_.format == Format::nft) {
          char mark[16];
          std::snprintf(mark, sizeof mark, "0x%08x", s_.accept_mark);
          const std::string hooks = s_.role == Role::server ? "input and output" : "forward";
          note("ftpwalld (ftpwall.conf backend = \"auto\" or \"nftables\") adds its own table inet ftpwall at");
          note("start and removes it at stop; this file never names it. Its chains (hook " + hooks + ") queue");
          note("control packets and each data SYN of an opening at priority filter - 10, before this table's");
          note(std::string("filter chains (priority 0); its verdict sets the packet mark ") + mark + " (queue.accept_mark),");
          note("and the rule commented \"ftpwall openings\" accepts by it. An accept in table inet ftpwall is not");
          note("final: without that rule ftpwalld refuses to start and names the chain and the line.");
          note("Policy drop: everything not accepted here is dropped, also while ftpwalld is stopped.");
          note("No nf_conntrack_ftp: ftpwalld makes the openings (kernel helper off).");
          break;
        }
        if (s_.format == Format::firewalld) {
          char mark[16];
          std::snprintf(mark, sizeof mark, "0x%08x", s_.accept_mark);
          note("ftpwalld (backend nftables: ftpwall.conf role = \"server\", backend = \"auto\") adds its own");
          note("table inet ftpwall at start and removes it at stop; firewalld does not touch it. Its verdict");
          note(std::string("sets the packet mark ") + mark + " (queue.accept_mark) on each data SYN it admits, and zone");
          if (v6 && both) {
            note("public accepts that mark: ipsets ftpwall-accept and ftpwall-accept6 (hash:ip,mark, inet and inet6,");
            note("matched as ip saddr . meta mark and ip6 saddr . meta mark) in one rich rule each. firewalld");
            note("matches the whole mark: nothing else may mark those packets.");
          } else if (v6) {
            note("public accepts that mark: ipset ftpwall-accept6 (hash:ip,mark, family inet6, matched as");
            note("ip6 saddr . meta mark) in one rich rule. firewalld matches the whole mark: nothing else may mark those packets.");
          } else {
            note("public accepts that mark: ipset ftpwall-accept (hash:ip,mark, matched as ip saddr . meta mark)");
            note("in one rich rule. firewalld matches the whole mark: nothing else may mark those packets.");
          }
          note("The ipset's entries are permanent, so firewall-cmd --reload restores them itself.");
          note("No helper in the service: ftpwalld makes the openings (kernel helper off).");
          break;
        }
        const std::string q = "-j NFQUEUE --queue-num " + std::to_string(s_.queue_num) + (s_.queue_bypass ? " --queue-bypass" : "");
        if (s_.hooks == Hooks::daemon) {
          note("ftpwalld owns its hooks: it adds them at start and removes them at stop, so this file");
          note(std::string("carries only what the admin owns. Where ftpwalld hooks in") +
               (both ? " (iptables and ip6tables alike):" : ":"));
          if (s_.role == Role::server) {
            note("  mangle INPUT 1:  -p tcp -m conntrack --ctorigdstport " + cps + " --ctdir ORIGINAL " + q);
            note("  mangle OUTPUT 1: -p tcp -m conntrack --ctorigdstport " + cps + " --ctdir REPLY " + q);
            note("  filter INPUT/OUTPUT: -j FTPWALL-ACCEPT, before the final REJECT");
          } else {
            note("  mangle FORWARD 1: -p tcp -m conntrack --ctorigdstport " + cps + " " + q);
            note("  filter FORWARD: -j FTPWALL-ACCEPT, before the final REJECT");
            if (plan_.part(Family::v4))
              note(std::string("  nat PREROUTING: -j FTPWALL-DNAT; nat POSTROUTING: -j FTPWALL-SNAT") + (v6 ? " (IPv4 only: no NAT66)" : ""));
          }
        } else {
          note("Hooks owned by the admin (--hooks admin): this file declares ftpwalld's chains and jumps;");
          note("the daemon only fills and flushes FTPWALL-ACCEPT" +
               std::string(s_.role == Role::gateway && plan_.part(Family::v4) ? std::string(", FTPWALL-DNAT and FTPWALL-SNAT") +
                                                                                   (v6 ? " (IPv4)." : ".")
                                                                             : "."));
        }
        note("No nf_conntrack_ftp: leave it out of IPTABLES_MODULES (ftpwalld makes the openings).");
        break;
      }
    }
    if (s_.helper == Helper::ftpwalld) {
      // FTPS (issue 14): what ftpwalld can do for encrypted sessions, and the static alternative.
      const std::string range = v.passive.empty() ? std::string("L-H") : v.passive.front().to_string();
      note("FTPS: no helper reads an encrypted control connection. With ftpwall.conf [ftps] mode = \"per-client\"");
      note("and passive_ports = \"" + range + "\", ftpwalld admits each FTPS session's client alone to the passive");
      note("range while that session lasts; with stand-aside (the default) FTPS needs the range open statically");
      note("(--helper none). Active mode (PORT/EPRT) inside TLS cannot be narrowed: FTPS clients need passive");
      note("mode, or the static rules of --helper none --active yes.");
    }
    for (const auto& p : plan_.parts)
      if (p.client_nat() && s_.helper == Helper::none)
        note("Clients behind this gateway use passive mode only (active behind client NAT needs a helper).", both ? std::optional<Family>(Family::v4) : std::nullopt);
    if (s_.ha.enabled) ha_notes(v);
    if (v6 && s_.format != Format::firewalld)
      note("ICMPv6 (RFC 4890): errors 1-4, neighbour discovery 133-136 (hop limit 255) and MLD from link-local" +
           std::string(s_.stock ? ", echo-request 128;" : " (--stock no: no echo-request);"),
           both && s_.format == Format::iptables_save ? std::optional<Family>(Family::v6) : std::nullopt);
    if (v6 && s_.format != Format::firewalld)
      note(std::string("without them IPv6 stops working (neighbour discovery is not tracked, errors are RELATED).") +
               (s_.role == Role::gateway ? " FORWARD: errors 1-4." : ""),
           both && s_.format == Format::iptables_save ? std::optional<Family>(Family::v6) : std::nullopt);
  }

  void ha_notes(const Validated& v) {
    const HaSpec& ha = s_.ha;
    const std::string pub = v.public_address->to_string(), in = ha.inside_vip->to_string();
    note("High availability (--ha): this gateway (" + ha.self->to_string() + " on " + ha.sync_interface + ") and " +
         ha.peer->to_string() + " are an active/backup pair;");
    note("keepalived moves " + pub + " (" + s_.interface + ") and " + in + " (" + ha.inside_interface +
         ") together, conntrackd replicates the connections");
    note("(FTFW, UDP port " + std::to_string(ha.sync_port) + " on " + ha.sync_interface +
         "). The other gateway loads the same rules with --ha-self and --ha-peer swapped.");
    note("NAT uses the public virtual address: SNAT, never MASQUERADE (its entries die with the interface, and");
    note("conntrackd replicates the deletion). The hosts behind the pair route via " + in + ".");
    note("INVALID is dropped first in INPUT and FORWARD: the backup's own stack would reset the connections it has");
    note("not learnt yet. sysctl: net.ipv4.ip_forward=1 and net.netfilter.nf_conntrack_tcp_loose=0 (with 1 a");
    note("gateway picks connections up mid-stream by itself).");
    if (s_.helper == Helper::kernel) note("conntrackd also replicates nf_conntrack_ftp's expectations (ExpectationSync ftp).");
    if (s_.helper == Helper::ftpwalld) {
      note("ftpwalld runs on both gateways with ftpwall.conf [ha] enabled = true; at takeover the notify script runs");
      note("`ftpwall takeover` after conntrackd's commit, and ftpwalld picks up the sessions conntrackd replicated.");
    }
    note("--ha-output-dir DIR writes keepalived.conf, conntrackd.conf and ftpwall-ha-notify, which agree with these rules.");
  }

  const Plan& plan_;
  const RulesetSpec& s_;
  const Validated* cur_ = nullptr;
  Ruleset rs_;
};

}  // namespace

Ruleset build_ruleset(const Plan& p) { return Builder(p).build(); }

Ruleset build_ruleset(const Validated& v) {
  Plan p;
  p.spec = v.spec;
  p.spec.family = v.family == Family::v4 ? Families::v4 : Families::v6;
  p.parts = {v};
  p.warnings = v.warnings;
  return build_ruleset(p);
}

Ruleset Ruleset::only(Family f) const {
  Ruleset out;
  out.family = f == Family::v4 ? Families::v4 : Families::v6;
  out.role = role;
  out.command_line = command_line;
  out.needs_helper_modules = needs_helper_modules;
  out.nat_helper = nat_helper;
  out.uses_ftpwalld = uses_ftpwalld;
  for (const auto& r : rules)
    if (r.serves(f)) out.rules.push_back(r);
  for (const auto& n : notes)
    if (!n.family || *n.family == f) out.notes.push_back(n);
  std::vector<ChainDecl> user;
  for (const auto& c : chains)
    if (!c.builtin && (!c.family || *c.family == f)) user.push_back(c);
  declare_chains(out, user);
  return out;
}

std::string header_comment(const Ruleset& rs, std::string_view prefix, std::optional<Family> only) {
  std::string out;
  auto line = [&](std::string_view s) {
    out += prefix;
    out += s;
    out += '\n';
  };
  line("Generated by ftpwall rules; do not edit the lines tagged \"ftpwall:\" by hand, re-run:");
  line("  " + (rs.command_line.empty() ? std::string("ftpwall rules") : rs.command_line));
  for (const auto& n : rs.notes)
    if (!only || !n.family || *n.family == *only) line(n.text);
  return out;
}

}  // namespace ftpwall::rules
