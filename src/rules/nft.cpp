// SPDX-License-Identifier: GPL-2.0-or-later
// --format nft: one self-contained `table inet filter` with its own base chains, for `nft -f`.
// The file first creates and deletes the table so that loading it again replaces it instead of
// appending duplicate rules; it touches no other table. `table inet ftpwall` is ftpwalld's own
// (its nftables backend adds and removes it), so the admin's table never takes that name.
//
// --helper ftpwalld: the filter chains have policy drop and, before their final reject, the
// documented line (ftpwalld(8) BACKENDS) in the chain at ftpwalld's hook (forward on a gateway,
// input on a server):
//   meta mark & 0x20000000 == 0x20000000 accept comment "ftpwall openings"
// with the mark of --accept-mark (ftpwalld's queue.accept_mark). ftpwalld's openings chains run at
// priority filter - 10 and its verdict sets the mark on the data SYNs they admit; these chains run
// at priority 0 and accept by it.
//
// Kernel helper in nft (--helper kernel):
//   ct helper ftp { type "ftp" protocol tcp }          the helper object
//   chain prerouting_helper { type filter hook prerouting priority -150; ... ct helper set "ftp" }
// Priority -150 is deliberate: `ct helper set` acts on the conntrack entry, which the conntrack
// hook creates at -200, so at raw priority (-300) it finds none and silently does nothing
// (nft_ct_helper_obj_eval returns early without a ct); it must also run before DNAT at -100 so
// nf_nat_ftp sees the helper when the NAT binding is set up. RELATED is then accepted with
// `ct state related ct helper "ftp" tcp dport 1024-65535`.
//
// Rules tagged "ftpwall: ftp ..." carry `meta nfproto ipv4|ipv6` when no address pins the family,
// so --family 4 opens nothing for IPv6; the base rules (established, icmp, loopback, ssh, final
// reject) apply to both families, as the table is the host's whole filter. --family both: one
// table for both, the FTP rules without an address unpinned (one rule serves both), the ones
// with an address in its family (ip/ip6 saddr), IPv4 ICMP `meta l4proto icmp` and ICMPv6 the
// RFC 4890 list (`icmpv6 type { ... }`, neighbour discovery with `ip6 hoplimit 255`). The ct
// helper object of an inet table serves both families (the kernel takes the ftp helper for
// IPv4 and IPv6); NAT rules are IPv4 only (NAT66 is out of scope).
#include <string>

#include "ftpwall/rules/ruleset.hpp"

namespace ftpwall::rules {

namespace {

struct NftChain {
  Table table;
  const char* iptables_chain;
  const char* name;
  const char* hook;
  const char* type;
  int priority;
  const char* why;
};

constexpr NftChain nft_chains[] = {
    {Table::raw, "PREROUTING", "prerouting_helper", "prerouting", "filter", -150,
     "after conntrack (-200) created the entry, before DNAT (-100); at -300 `ct helper set` finds no entry"},
    {Table::nat, "PREROUTING", "prerouting_nat", "prerouting", "nat", -100, nullptr},
    {Table::filter, "INPUT", "input", "input", "filter", 0, nullptr},
    {Table::filter, "FORWARD", "forward", "forward", "filter", 0, nullptr},
    {Table::filter, "OUTPUT", "output", "output", "filter", 0, nullptr},
    {Table::nat, "POSTROUTING", "postrouting_nat", "postrouting", "nat", 100, nullptr},
};

std::string addr_text(const Cidr& c) {
  const unsigned full = c.addr.family == Family::v4 ? 32 : 128;
  return c.prefix == full ? c.addr.to_string() : c.to_string();
}

constexpr const char* admin_table = "filter";

std::string hex(std::uint32_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) s += digits[(v >> shift) & 0xf];
  return s;
}

std::string icmpv6_name(std::uint8_t t) {
  switch (t) {
    case 1: return "destination-unreachable";
    case 2: return "packet-too-big";
    case 3: return "time-exceeded";
    case 4: return "parameter-problem";
    case 128: return "echo-request";
    case 129: return "echo-reply";
    case 130: return "mld-listener-query";
    case 131: return "mld-listener-report";
    case 132: return "mld-listener-done";
    case 133: return "nd-router-solicit";
    case 134: return "nd-router-advert";
    case 135: return "nd-neighbor-solicit";
    case 136: return "nd-neighbor-advert";
    case 143: return "mld2-listener-report";
  }
  return std::to_string(t);
}

std::string nft_rule(const Rule& r, Families set) {
  const Match& m = r.match;
  // The documented line, byte for byte: ftpwalld's preflight finds it by its comment.
  if (m.mark != 0) return "meta mark & " + hex(m.mark) + " == " + hex(m.mark) + " accept comment \"ftpwall openings\"";
  // The rule's family: its addresses', else the one it was built for, else the table's first.
  Family f = set == Families::v6 ? Family::v6 : Family::v4;
  if (r.family) f = *r.family;
  if (m.src) f = m.src->addr.family;
  if (m.dst) f = m.dst->addr.family;
  if (r.address) f = r.address->family;
  const std::string ipw = f == Family::v4 ? "ip" : "ip6";
  std::string s;
  auto add = [&](const std::string& part) {
    if (!s.empty()) s += ' ';
    s += part;
  };
  // An FTP rule built for one family says so; a rule for both (--family both) does not.
  if (r.purpose == Purpose::ftp && !m.src && !m.dst && r.family)
    add(*r.family == Family::v4 ? "meta nfproto ipv4" : "meta nfproto ipv6");
  if (!m.in_iface.empty()) add(std::string("iifname ") + (m.not_in_iface ? "!= " : "") + "\"" + m.in_iface + "\"");
  if (!m.out_iface.empty()) add("oifname \"" + m.out_iface + "\"");
  if (m.src) add(ipw + " saddr " + addr_text(*m.src));
  if (m.dst) add(ipw + " daddr " + (m.not_dst ? "!= " : "") + addr_text(*m.dst));
  if (m.ct != ct_none) {
    std::string st;
    auto one = [&](std::uint8_t bit, const char* word) {
      if (m.ct & bit) st += (st.empty() ? "" : ",") + std::string(word);
    };
    one(ct_invalid, "invalid");
    one(ct_established, "established");
    one(ct_related, "related");
    one(ct_new, "new");
    add("ct state " + st);
  }
  if (m.helper_ftp) add("ct helper \"ftp\"");
  if (m.proto == Proto::tcp) {
    if (!m.sports.empty()) add("tcp sport " + m.sports.front().to_string('-'));
    if (!m.dports.empty()) add("tcp dport " + m.dports.front().to_string('-'));
    if (m.sports.empty() && m.dports.empty()) add("meta l4proto tcp");
  }
  if (m.proto == Proto::udp) {
    if (!m.sports.empty()) add("udp sport " + m.sports.front().to_string('-'));
    if (!m.dports.empty()) add("udp dport " + m.dports.front().to_string('-'));
    if (m.sports.empty() && m.dports.empty()) add("meta l4proto udp");
  }
  if (m.proto == Proto::vrrp) add("ip protocol 112");  // vrrp
  // IPv4-only table: the stock accept serves every ICMP of both families, as it always did. With
  // IPv6 rules the ICMPv6 accepts are RFC 4890's list, so IPv4's accept is ICMP alone.
  if (m.proto == Proto::icmp) add(set == Families::v4 ? "meta l4proto { icmp, ipv6-icmp }" : "meta l4proto icmp");
  if (m.proto == Proto::icmpv6) {
    std::string types;
    for (auto t : m.icmp_types) types += (types.empty() ? "" : ", ") + icmpv6_name(t);
    if (m.icmp_types.empty()) add("meta l4proto ipv6-icmp");
    else if (m.icmp_types.size() == 1) add("icmpv6 type " + types);
    else add("icmpv6 type { " + types + " }");
    if (m.hop_limit) add("ip6 hoplimit " + std::to_string(m.hop_limit));
  }
  switch (r.action) {
    case Action::accept: add("accept"); break;
    case Action::reject: add("reject with icmpx admin-prohibited"); break;
    case Action::drop: add("drop"); break;
    case Action::ct_helper: add("ct helper set \"ftp\""); break;
    case Action::dnat: add("dnat " + ipw + " to " + r.address->to_string()); break;
    case Action::snat: add("snat " + ipw + " to " + r.address->to_string()); break;
    case Action::masquerade: add("masquerade"); break;
    case Action::nfqueue:  // validate() keeps --hooks admin (steering, jumps) out of nft
    case Action::jump: add("# (not expressible here)"); break;
  }
  add("comment \"" + comment_of(r) + "\"");
  return s;
}

}  // namespace

std::string emit_nft(const Ruleset& rs) {
  std::string out = "#!/usr/sbin/nft -f\n" + header_comment(rs);
  out += "# Load with: nft -f FILE (the next two lines make re-loading replace the table).\n";
  const std::string table = std::string("table inet ") + admin_table;
  out += table + "\ndelete " + table + "\n\n" + table + " {\n";
  bool first = true;
  if (rs.has_table(Table::raw)) {
    out += "\tct helper ftp {\n\t\ttype \"ftp\" protocol tcp\n\t}\n";
    first = false;
  }
  for (const auto& c : nft_chains) {
    auto rules = rs.in(c.table, c.iptables_chain);
    if (rules.empty()) continue;
    if (!first) out += "\n";
    first = false;
    out += "\tchain " + std::string(c.name) + " {\n";
    if (c.why) out += "\t\t# " + std::string(c.why) + "\n";
    // Beside ftpwalld the filter chains drop what they do not accept (ftpwalld's openings pass by
    // their mark); otherwise policy accept and the final reject, as in the stock CentOS file.
    const bool drop = rs.uses_ftpwalld && c.table == Table::filter;
    out += "\t\ttype " + std::string(c.type) + " hook " + c.hook + " priority " + std::to_string(c.priority) +
           "; policy " + (drop ? "drop" : "accept") + ";\n";
    for (const Rule* r : rules) out += "\t\t" + nft_rule(*r, rs.family) + "\n";
    out += "\t}\n";
  }
  out += "}\n";
  return out;
}

}  // namespace ftpwall::rules
