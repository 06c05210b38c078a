// SPDX-License-Identifier: GPL-2.0-or-later
// Option names, port ranges and validate(): every refusal of `ftpwall rules` is one line here.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

#include "ftpwall/rules/ruleset.hpp"

namespace ftpwall::rules {

std::string_view name(Role r) { return r == Role::server ? "server" : "gateway"; }
std::string_view name(Helper h) {
  switch (h) {
    case Helper::kernel: return "kernel";
    case Helper::ftpwalld: return "ftpwalld";
    case Helper::none: return "none";
  }
  return "?";
}
std::string_view name(Format f) {
  switch (f) {
    case Format::iptables_save: return "iptables-save";
    case Format::shell: return "shell";
    case Format::nft: return "nft";
    case Format::firewalld: return "firewalld";
  }
  return "?";
}
std::string_view name(ServerSoftware s) {
  switch (s) {
    case ServerSoftware::none: return "none";
    case ServerSoftware::vsftpd: return "vsftpd";
    case ServerSoftware::proftpd: return "proftpd";
    case ServerSoftware::pure_ftpd: return "pure-ftpd";
  }
  return "?";
}
std::string_view name(Hooks h) { return h == Hooks::daemon ? "daemon" : "admin"; }
std::string_view name(AnnouncePublic a) {
  switch (a) {
    case AnnouncePublic::automatic: return "auto";
    case AnnouncePublic::yes: return "yes";
    case AnnouncePublic::no: return "no";
  }
  return "?";
}
std::string_view name(Families f) {
  switch (f) {
    case Families::v4: return "4";
    case Families::v6: return "6";
    case Families::both: return "both";
  }
  return "?";
}
bool includes(Families set, Family f) {
  return set == Families::both || (set == Families::v4) == (f == Family::v4);
}
std::vector<Family> members(Families set) {
  switch (set) {
    case Families::v4: return {Family::v4};
    case Families::v6: return {Family::v6};
    case Families::both: break;
  }
  return {Family::v4, Family::v6};
}
std::string_view sysconfig_name(Family f) { return f == Family::v4 ? "iptables" : "ip6tables"; }

std::string_view name(Table t) {
  switch (t) {
    case Table::raw: return "raw";
    case Table::mangle: return "mangle";
    case Table::nat: return "nat";
    case Table::filter: return "filter";
  }
  return "?";
}

std::string PortRange::to_string(char sep) const {
  if (low == high) return std::to_string(low);
  return std::to_string(low) + sep + std::to_string(high);
}

namespace {

Result<std::uint16_t> parse_port(std::string_view s, std::string_view whole) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || s.size() > 5)
    return make_error("'" + std::string(whole) + "' is not a port range (LOW-HIGH, e.g. 50000-50100)");
  if (v == 0 || v > 65535) return make_error("port " + std::string(s) + " is out of range 1-65535");
  return static_cast<std::uint16_t>(v);
}

std::string family_word(Family f) { return f == Family::v4 ? "IPv4" : "IPv6"; }

// RFC 1918 / RFC 4193 space: unreachable from the Internet without NAT.
bool is_private(const Address& a) {
  const auto& b = a.bytes;
  if (a.family == Family::v4)
    return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168);
  return (b[0] & 0xfe) == 0xfc;
}

// IFNAMSIZ is 16 with the NUL; the name goes into rule and configuration text, so only the
// characters Linux interface names are made of in practice.
bool interface_name(const std::string& name) {
  bool ok = !name.empty() && name.size() < 16;
  for (char c : name)
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '@' || c == '+');
  return ok;
}

// --ha: one gateway of a keepalived + conntrackd pair (src/rules/ha.cpp; docs/architecture.md).
// IPv4 only: NAT is IPv4 only here, and keepalived would move no IPv6 address.
Result<void> check_ha(const RulesetSpec& spec) {
  const HaSpec& ha = spec.ha;
  if (!ha.enabled) {
    auto given = [&](bool set, const char* opt) -> Result<void> {
      if (set) return make_error(std::string(opt) + " needs --ha");
      return {};
    };
    for (auto r : {given(ha.inside_vip.has_value(), "--inside-vip"), given(!ha.inside_interface.empty(), "--inside-interface"),
                   given(ha.self.has_value(), "--ha-self"), given(ha.peer.has_value(), "--ha-peer"),
                   given(!ha.sync_interface.empty(), "--ha-sync-interface"), given(ha.sync_port != 3780, "--ha-sync-port"),
                   given(ha.priority != 0, "--ha-priority"), given(ha.vrid != 51, "--ha-vrid"),
                   given(ha.advert_centis != 100, "--ha-advert-int"), given(!ha.ignore.empty(), "--ha-ignore")})
      if (!r) return r;
    return {};
  }
  if (spec.role != Role::gateway)
    return make_error("--ha describes one gateway of an active/backup pair: it needs --role gateway");
  if (spec.family != Families::v4)
    return make_error("--ha is IPv4 only (NAT and the virtual addresses keepalived moves): use --family 4");
  // ftpwalld keeps a session's HA state only with its nftables backend, and beside iptables-legacy
  // rules (what the iptables formats are) backend = auto picks iptables-legacy (ftpwall.conf(5)).
  if (spec.helper == Helper::ftpwalld && spec.format != Format::nft)
    return make_error("--ha --helper ftpwalld needs --format nft: ftpwalld's [ha] works only with its nftables backend, and "
                      "beside iptables-legacy rules backend = auto picks iptables-legacy");
  if (spec.public_addresses.empty())
    return make_error("--ha needs --public-address A: the public virtual address (DNAT from it, SNAT to it; keepalived moves it)");
  if (spec.interface.empty())
    return make_error("--ha needs --interface IFACE: the public interface, where keepalived puts the public virtual address");
  if (!ha.inside_vip)
    return make_error("--ha needs --inside-vip A: the inside virtual address, the gateway of the hosts behind the pair");
  if (ha.inside_interface.empty())
    return make_error("--ha needs --inside-interface IFACE: where keepalived puts the inside virtual address");
  if (!ha.self || !ha.peer)
    return make_error(std::string("--ha needs ") + (ha.self ? "--ha-peer A (the other gateway's" : "--ha-self A (this gateway's") +
                      " address on the sync link)");
  if (ha.sync_interface.empty())
    return make_error("--ha needs --ha-sync-interface IFACE: the link to the other gateway (conntrackd's sync, VRRP)");
  for (const auto& [opt, name] : {std::pair<const char*, const std::string&>{"--inside-interface", ha.inside_interface},
                                  {"--ha-sync-interface", ha.sync_interface}})
    if (!interface_name(name))
      return make_error(std::string(opt) + " '" + name + "' is not an interface name (at most 15 of A-Z a-z 0-9 - _ . @ +)");
  const Address& pub = spec.public_addresses.front();
  for (const auto& [opt, a] : {std::pair<const char*, const Address&>{"--inside-vip", *ha.inside_vip}, {"--ha-self", *ha.self},
                               {"--ha-peer", *ha.peer}})
    if (a.family != Family::v4) return make_error(std::string(opt) + " " + a.to_string() + " is IPv6; --ha is IPv4 only");
  for (const auto& a : ha.ignore)
    if (a.family != Family::v4) return make_error("--ha-ignore " + a.to_string() + " is IPv6; --ha is IPv4 only");
  if (ha.sync_interface == spec.interface)
    return make_error("--ha-sync-interface " + ha.sync_interface + " is the public --interface: conntrackd's state and VRRP belong on a "
                      "link of their own between the two gateways");
  if (ha.inside_interface == spec.interface || ha.inside_interface == ha.sync_interface)
    return make_error("--inside-interface " + ha.inside_interface + " is also the " +
                      (ha.inside_interface == spec.interface ? "public --interface" : "--ha-sync-interface") +
                      ": each virtual address needs its own interface");
  if (*ha.self == *ha.peer) return make_error("--ha-self and --ha-peer are both " + ha.self->to_string() + ": give each gateway's own");
  if (*ha.inside_vip == pub) return make_error("--inside-vip and --public-address are both " + pub.to_string() + ": two virtual addresses");
  for (const auto& [opt, a] : {std::pair<const char*, const Address&>{"--ha-self", *ha.self}, {"--ha-peer", *ha.peer}})
    if (a == pub || a == *ha.inside_vip)
      return make_error(std::string(opt) + " " + a.to_string() + " is a virtual address: give the gateway's own address on the sync link");
  // conntrackd's Address Ignore skips every flow from or (after NAT) to an address it lists:
  // never the server or the clients, or their connections are not replicated.
  for (const auto& srv : spec.internal_servers) {
    if (srv == *ha.inside_vip || srv == pub)
      return make_error("--internal-server " + srv.to_string() + " is a virtual address: the server sits behind the pair");
    for (const auto& a : ha.ignore)
      if (a == srv)
        return make_error("--ha-ignore " + a.to_string() + " is the --internal-server: conntrackd would not replicate its connections");
  }
  for (const auto& net : spec.inside_networks)
    if (net.contains(pub))
      return make_error("--public-address " + pub.to_string() + " lies inside --inside-network " + net.to_string() +
                        ": the public virtual address is outside");
  if (ha.sync_port == 0) return make_error("--ha-sync-port 0 is not a port");
  if (ha.priority > 254) return make_error("--ha-priority " + std::to_string(ha.priority) + " is out of range 1-254 (255 is an address owner)");
  if (ha.vrid < 1 || ha.vrid > 254)
    return make_error("--ha-vrid " + std::to_string(ha.vrid) + " is out of range 1-254 (the inside instance takes the next one)");
  if (ha.advert_centis < 1 || ha.advert_centis > 4095)
    return make_error("--ha-advert-int is out of range 0.01-40.95 seconds (VRRPv3 counts centiseconds)");
  return {};
}

}  // namespace

Result<PortRange> parse_port_range(std::string_view text) {
  auto dash = text.find('-');
  auto lo = parse_port(text.substr(0, dash), text);
  if (!lo) return lo.error();
  if (dash == std::string_view::npos) return PortRange{*lo, *lo};
  auto hi = parse_port(text.substr(dash + 1), text);
  if (!hi) return hi.error();
  if (*hi < *lo) return make_error("port range " + std::string(text) + " is reversed (LOW-HIGH)");
  return PortRange{*lo, *hi};
}

bool Validated::server_nat() const {
  return spec.role == Role::gateway && internal_server && public_address && *internal_server != *public_address;
}
bool Validated::routed_server() const {
  return spec.role == Role::gateway && internal_server && !server_nat();
}
// NAT66 is out of scope: an IPv6 --inside-network is routed, an IPv4 one masqueraded (or SNATed).
bool Validated::client_nat() const {
  return spec.role == Role::gateway && inside_network.has_value() && family == Family::v4;
}
bool Validated::routed_clients() const {
  return spec.role == Role::gateway && inside_network.has_value() && family == Family::v6;
}

bool Validated::server_announces_public() const {
  switch (spec.announce_public) {
    case AnnouncePublic::yes: return public_address.has_value();
    case AnnouncePublic::no: return false;
    case AnnouncePublic::automatic: break;
  }
  // Behind a NAT nobody rewrites: a server host with a public address that is not its own (1:1 NAT
  // in front of it), or a gateway DNAT with no helper. nf_nat_ftp (kernel) and ftpwalld rewrite.
  if (spec.role == Role::server) return public_address.has_value();
  return server_nat() && spec.helper == Helper::none;
}

const Validated* Plan::part(Family f) const {
  for (const auto& p : parts)
    if (p.family == f) return &p;
  return nullptr;
}

namespace {

std::string fam_opt(Family f) { return f == Family::v4 ? "4" : "6"; }

// The checks of one family's part: its addresses against the role, NAT (IPv4 only), the warnings
// that depend on them. `both`: the spec serves both families (the messages name the family).
Result<void> check_part(Validated& v, bool both) {
  const RulesetSpec& spec = v.spec;
  const Family fam = v.family;
  const std::string fw = family_word(fam);
  if (spec.role == Role::gateway) {
    if (!v.internal_server && !v.inside_network) {
      if (both)
        return make_error("--family both --role gateway: no " + fw + " --internal-server or --inside-network given; each family "
                          "needs its own (use --family " + fam_opt(fam == Family::v4 ? Family::v6 : Family::v4) +
                          " for one family only)");
      return make_error("--role gateway needs --internal-server A (a server behind it) or --inside-network CIDR (clients behind it)");
    }
    if (v.public_address && v.inside_network && v.inside_network->contains(*v.public_address))
      return make_error("--public-address " + v.public_address->to_string() + " lies inside --inside-network " +
                        v.inside_network->to_string());
  }
  if (fam == Family::v6) {
    // NAT66/NPTv6 is out of scope: IPv6 behind a gateway is routed.
    if (spec.role == Role::server && v.public_address)
      return make_error("--public-address " + v.public_address->to_string() +
                        ": a server's public address is what its 227 replies announce, and 227 carries only IPv4 "
                        "(IPv6 sessions use EPSV, which names no address); give an IPv4 address or none");
    if (spec.role == Role::gateway && v.public_address && v.internal_server && *v.public_address != *v.internal_server)
      return make_error("--public-address " + v.public_address->to_string() + " with --internal-server " +
                        v.internal_server->to_string() + " is NAT66, which ftpwall does not do (IPv6 is routed): "
                        "drop the IPv6 --public-address");
    if (spec.role == Role::gateway && v.public_address && !v.internal_server)
      return make_error("--public-address " + v.public_address->to_string() + " with --inside-network " +
                        v.inside_network->to_string() + " is NAT66 (SNAT), which ftpwall does not do (IPv6 is routed): "
                        "drop the IPv6 --public-address");
    if (v.routed_clients() && spec.helper == Helper::none && spec.active)
      return make_error("--helper none --active yes with --inside-network " + v.inside_network->to_string() +
                        ": active mode of the clients behind a gateway needs a helper (without one every unprivileged "
                        "port of theirs would be open from outside); use --helper kernel or --active no");
    if (v.routed_clients())
      v.warnings.push_back("--inside-network " + v.inside_network->to_string() +
                           ": IPv6 clients are routed, not masqueraded (NAT66 is out of scope)");
  } else if (spec.role == Role::gateway) {
    if (v.inside_network && spec.interface.empty() && !v.public_address)
      return make_error("--inside-network needs --interface IF (for MASQUERADE) or --public-address A (for SNAT)");
    if (v.internal_server && !v.public_address && is_private(*v.internal_server))
      return make_error("--internal-server " + v.internal_server->to_string() +
                        " is a private address: give --public-address A for the gateway to DNAT to it");
    if (v.internal_server && v.inside_network && v.inside_network->contains(*v.internal_server) && !v.public_address)
      return make_error("--internal-server " + v.internal_server->to_string() +
                        " lies inside the masqueraded --inside-network: give its --public-address to DNAT to it");
    // Behind client NAT the client's PORT/EPRT names its private address. Only a helper that
    // rewrites it (nf_nat_ftp, ftpwalld) makes the server's data connection reach it.
    if (v.client_nat() && spec.helper == Helper::none && spec.active)
      return make_error("--helper none --active yes with --inside-network: active mode behind client NAT needs a helper "
                        "(the client's PORT/EPRT names its private address, which only nf_nat_ftp or ftpwalld rewrites); "
                        "use --helper kernel or --active no");
  }
  // firewalld accepts ftpwalld's data connections by mark only through a hash:ip,mark ipset, and
  // firewalld (1.3.3, io/ipset.py check_entry) takes IPv6 entries of that type as single addresses:
  // no prefix, no range. So an IPv6 part needs its clients as host addresses.
  if (fam == Family::v6 && spec.helper == Helper::ftpwalld && spec.format == Format::firewalld && !v.no_clients) {
    const bool hosts = !v.allow_from.empty() &&
                       std::all_of(v.allow_from.begin(), v.allow_from.end(), [](const Cidr& c) { return c.prefix == 128; });
    if (!hosts)
      return make_error("--helper ftpwalld --format firewalld: firewalld's hash:ip,mark ipsets take single IPv6 addresses only "
                        "(no prefix), so ftpwalld's IPv6 data connections can be accepted only from clients given as "
                        "--allow-from ADDRESS/128; give them, or use --format nft for IPv6");
  }
  if (spec.role == Role::gateway && !v.internal_server && !v.allow_from.empty())
    return make_error("--allow-from restricts the outside clients of --internal-server; with --inside-network alone the clients are the inside network");

  const bool rewriting_helper = spec.helper == Helper::ftpwalld || (spec.helper == Helper::kernel && v.server_nat());
  if (spec.server != ServerSoftware::none && v.server_announces_public() && rewriting_helper)
    v.warnings.push_back(std::string("both the ") + std::string(name(spec.server)) + " snippet and " +
                         (spec.helper == Helper::kernel ? "nf_nat_ftp" : "ftpwalld") +
                         " would put the public address into 227 replies; drop --announce-public yes");
  // nf_conntrack_ftp records no expectation for a 227/229 whose address is not the connection's own
  // (the "NOT RECORDING" check, unless loaded with loose=1), so passive breaks.
  if (spec.helper == Helper::kernel && v.server_announces_public() && (spec.role == Role::server || v.server_nat()))
    v.warnings.push_back("the server announces " + v.public_address->to_string() +
                         ", not its own address: nf_conntrack_ftp ignores such 227 replies (unless loaded with loose=1), "
                         "so passive transfers need --helper none");
  if (v.no_clients)
    v.warnings.push_back("--allow-from names no " + fw + " network: no " + fw + " client may connect (the " + fw +
                         " part opens no FTP port); add an " + fw + " --allow-from or use --family " +
                         fam_opt(fam == Family::v4 ? Family::v6 : Family::v4));
  return {};
}

}  // namespace

Result<Plan> plan(RulesetSpec spec) {
  Validated v;
  v.spec = spec;
  const Families fams = spec.family;
  const bool both = fams == Families::both;

  // ---- control ports ----
  v.control_ports = spec.control_ports.empty() ? std::vector<std::uint16_t>{21} : spec.control_ports;
  std::sort(v.control_ports.begin(), v.control_ports.end());
  v.control_ports.erase(std::unique(v.control_ports.begin(), v.control_ports.end()), v.control_ports.end());
  for (auto p : v.control_ports) {
    if (p == 0) return make_error("--control-port 0 is not a port");
    // RFC 959 §3.2: port 20 is the server's active-mode *source* port. Opening it inbound (or
    // trusting a packet because it comes from port 20) is the classic FTP firewall hole.
    if (p == 20) return make_error("--control-port 20: port 20 is FTP's active data source port; ftpwall never opens it inbound");
  }

  // ---- passive ports ----
  if (spec.passive_auto && !spec.passive_ports.empty())
    return make_error("--passive-ports auto cannot be combined with explicit ranges");
  if (spec.transfers_per_second < 0 || !std::isfinite(spec.transfers_per_second))
    return make_error("--transfers-per-second must be a number >= 0");
  if (spec.transfers_per_second > 0 && spec.sessions == 0)
    return make_error("--transfers-per-second needs --sessions N");
  if (spec.passive_auto) {
    if (spec.sessions == 0) return make_error("--passive-ports auto needs --sessions N (concurrent sessions)");
    auto s = size_passive_range(spec.role, spec.sessions, spec.transfers_per_second);
    if (!s) return s.error();
    v.sizing = *s;
    v.passive.push_back(s->range);
  } else {
    v.passive = spec.passive_ports;
  }
  std::sort(v.passive.begin(), v.passive.end());
  for (std::size_t i = 0; i < v.passive.size(); ++i) {
    const auto& r = v.passive[i];
    if (i > 0 && v.passive[i - 1].overlaps(r))
      return make_error("--passive-ports " + v.passive[i - 1].to_string() + " and " + r.to_string() + " overlap");
    for (auto cp : v.control_ports)
      if (r.contains(cp))
        return make_error("--passive-ports " + r.to_string() + " contains control port " + std::to_string(cp));
    if (r.contains(20)) return make_error("--passive-ports " + r.to_string() + " contains port 20; ftpwall never opens it inbound");
    if (r.low < first_unprivileged_port && !spec.force)
      return make_error("--passive-ports " + r.to_string() + " reaches below 1024 (privileged ports); add --force if you mean it");
  }
  // Behind a masquerading gateway the passive ports are the outside servers' choice: no range here.
  if (spec.helper == Helper::none && v.passive.empty() && (spec.role == Role::server || !spec.internal_servers.empty()))
    return make_error("--helper none opens the passive range statically: give --passive-ports LOW-HIGH or auto");
  if (spec.server != ServerSoftware::none && v.passive.size() != 1)
    return make_error(std::string("--server ") + std::string(name(spec.server)) +
                      " takes exactly one passive range: give --passive-ports LOW-HIGH or auto");

  // ---- addresses and their family ----
  // Single family: an address of the other family is an error. Both: each goes to its family's
  // part, at most one public address, internal server and inside network per family.
  auto check_family = [&](const Address& a, std::string_view opt) -> Result<void> {
    if (!includes(fams, a.family))
      return make_error(std::string(opt) + " " + a.to_string() + " is " + family_word(a.family) + " but --family is " +
                        std::string(name(fams)));
    return {};
  };
  for (const auto& a : spec.public_addresses)
    if (auto r = check_family(a, "--public-address"); !r) return r.error();
  for (const auto& a : spec.internal_servers)
    if (auto r = check_family(a, "--internal-server"); !r) return r.error();
  for (const auto& c : spec.inside_networks)
    if (auto r = check_family(c.addr, "--inside-network"); !r) return r.error();
  for (const auto& c : spec.allow_from)
    if (auto r = check_family(c.addr, "--allow-from"); !r) return r.error();
  auto one_per_family = [&](const auto& list, std::string_view opt, auto addr_of) -> Result<void> {
    for (std::size_t i = 0; i < list.size(); ++i)
      for (std::size_t j = i + 1; j < list.size(); ++j)
        if (addr_of(list[i]).family == addr_of(list[j]).family)
          return make_error(std::string(opt) + " given twice for " + family_word(addr_of(list[i]).family) + " (" +
                            list[i].to_string() + " and " + list[j].to_string() + "): one per family" +
                            (both ? "" : " (two with --family both, one IPv4 and one IPv6)"));
    return {};
  };
  auto self = [](const Address& a) -> const Address& { return a; };
  auto net_addr = [](const Cidr& c) -> const Address& { return c.addr; };
  if (auto r = one_per_family(spec.public_addresses, "--public-address", self); !r) return r.error();
  if (auto r = one_per_family(spec.internal_servers, "--internal-server", self); !r) return r.error();
  if (auto r = one_per_family(spec.inside_networks, "--inside-network", net_addr); !r) return r.error();

  if (!spec.interface.empty() && !interface_name(spec.interface))
    return make_error("--interface '" + spec.interface + "' is not an interface name (at most 15 of A-Z a-z 0-9 - _ . @ +)");

  // ---- role profiles (spec-wide) ----
  if (spec.role == Role::server) {
    if (!spec.internal_servers.empty()) return make_error("--internal-server needs --role gateway");
    if (!spec.inside_networks.empty()) return make_error("--inside-network needs --role gateway");
  } else if (spec.internal_servers.empty() && spec.inside_networks.empty()) {
    return make_error("--role gateway needs --internal-server A (a server behind it) or --inside-network CIDR (clients behind it)");
  }
  if (spec.announce_public == AnnouncePublic::yes &&
      std::none_of(spec.public_addresses.begin(), spec.public_addresses.end(), [](const Address& a) { return a.family == Family::v4; }))
    return make_error(spec.public_addresses.empty() ? "--announce-public yes needs --public-address A"
                                                    : "--announce-public yes needs an IPv4 --public-address (227 carries only IPv4)");
  if (spec.role == Role::gateway && spec.server != ServerSoftware::none && spec.internal_servers.empty())
    return make_error("--server on a gateway describes the server behind it: give --internal-server A");

  // ---- formats and helpers ----
  if (spec.helper == Helper::ftpwalld) {
    // firewalld: ftpwalld keeps its own table inet ftpwall (backend nftables); firewalld's zone
    // accepts the data connections by queue.accept_mark (src/rules/firewalld.cpp).
    if (spec.format == Format::firewalld && spec.hooks == Hooks::admin)
      return make_error("--hooks admin declares ftpwalld's iptables chains; with --format firewalld ftpwalld installs its own "
                        "table inet ftpwall: use --hooks daemon");
    if (spec.format == Format::firewalld && spec.accept_mark == 0)
      return make_error("--accept-mark 0: ftpwalld would mark no data connection, and firewalld can accept them only by their mark");
    // nft: the admin's own table with the openings line; ftpwalld keeps its table inet ftpwall and
    // its hooks to itself (backend nftables), so nothing of --hooks admin has an nft form.
    if (spec.format == Format::nft && spec.hooks == Hooks::admin)
      return make_error("--hooks admin declares ftpwalld's iptables chains and does not apply to --format nft "
                        "(ftpwalld installs its own table inet ftpwall): use --hooks daemon");
    if (spec.format == Format::nft && spec.accept_mark == 0)
      return make_error("--accept-mark 0: ftpwalld would mark no data connection, and the nft ruleset accepts them only by their mark");
  } else {
    if (spec.hooks != Hooks::daemon) return make_error("--hooks applies only to --helper ftpwalld");
    if (spec.queue_bypass || spec.queue_num != 0)
      return make_error("--queue-num and --queue-bypass apply only to --helper ftpwalld");
  }
  if (spec.format == Format::firewalld && spec.role == Role::gateway)
    return make_error("--format firewalld supports only --role server in this release (use iptables-save, shell or nft for a gateway)");
  if (spec.merging && spec.format != Format::iptables_save)
    return make_error("--merge works on /etc/sysconfig/iptables files: it needs --format iptables-save");
  if (auto r = check_ha(spec); !r) return r.error();
  if (spec.merging && both)
    return make_error("--merge edits one file: run it with --family 4 on /etc/sysconfig/iptables and with --family 6 on "
                      "/etc/sysconfig/ip6tables");

  // ---- warnings of the whole spec ----
  for (const auto& r : v.passive)
    if (r.overlaps(ephemeral_range))
      v.warnings.push_back("--passive-ports " + r.to_string() +
                           " lies inside the ephemeral range 32768-60999 (net.ipv4.ip_local_port_range): this host's own "
                           "outbound connections compete for those ports; prefer 61000-65535 or 1024-32767");
  if (!v.passive.empty() && !spec.passive_auto) {
    std::size_t have = 0;
    for (const auto& r : v.passive) have += r.size();
    std::string why;
    const std::size_t need = spec.sessions ? ports_needed(spec.role, spec.sessions, spec.transfers_per_second, &why) : 100;
    if (have < need)
      v.warnings.push_back("--passive-ports has " + std::to_string(have) + " ports, below the sizing rule's " +
                           std::to_string(need) + (spec.sessions ? " (" + why + ")" : " (the 100-port minimum; use --sessions N to size it)"));
  }

  // ---- the parts ----
  Plan out;
  out.spec = spec;
  out.warnings = v.warnings;
  for (Family f : members(fams)) {
    Validated p = v;
    p.warnings.clear();
    p.family = f;
    for (const auto& a : spec.public_addresses)
      if (a.family == f) p.public_address = a;
    for (const auto& a : spec.internal_servers)
      if (a.family == f) p.internal_server = a;
    for (const auto& c : spec.inside_networks)
      if (c.addr.family == f) p.inside_network = c;
    for (const auto& c : spec.allow_from)
      if (c.addr.family == f) p.allow_from.push_back(c);
    p.no_clients = !spec.allow_from.empty() && p.allow_from.empty();
    if (auto r = check_part(p, both); !r) return r.error();
    for (const auto& w : p.warnings)
      if (std::find(out.warnings.begin(), out.warnings.end(), w) == out.warnings.end()) out.warnings.push_back(w);
    out.parts.push_back(std::move(p));
  }
  for (auto& p : out.parts) p.warnings = out.warnings;
  return out;
}

Result<Validated> validate(RulesetSpec spec) {
  if (spec.family == Families::both) return make_error("validate() takes one family: use plan() for --family both");
  auto p = plan(std::move(spec));
  if (!p) return p.error();
  return std::move(p->parts.front());
}

}  // namespace ftpwall::rules
