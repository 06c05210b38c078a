// SPDX-License-Identifier: GPL-2.0-or-later
// --format iptables-save: the layout of CentOS /etc/sysconfig/iptables (ip6tables for --family 6),
// loadable with iptables-restore and by the iptables service (--family both: one file per family,
// each with the rules that serve it):
//   *raw / *mangle / *nat / *filter   one block per table, in this order
//   :INPUT ACCEPT [0:0]               builtin chains with policy and zeroed counters; user chains "-"
//   -A INPUT ... -m comment --comment "ftpwall: <tag>" -j ACCEPT
//   COMMIT
// Rules are printed in iptables-save's own canonical order (-s -d -i -o -p, matches, -j) so a
// restore + save round trip gives back the same lines, and --merge finds them again.
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "ftpwall/rules/ruleset.hpp"

namespace ftpwall::rules {

namespace {

std::string ports_arg(const std::vector<PortRange>& ps) { return ps.front().to_string(':'); }

std::string quote_comment(const std::string& c) { return "\"" + c + "\""; }

}  // namespace

namespace {
std::string rule_body(const Rule& r, Family f, std::optional<std::uint8_t> icmp_type) {
  const Match& m = r.match;
  std::string s;
  auto add = [&](const std::string& part) {
    if (!s.empty()) s += ' ';
    s += part;
  };
  if (m.src) add("-s " + m.src->to_string());
  if (m.dst) add(std::string(m.not_dst ? "! " : "") + "-d " + m.dst->to_string());
  if (!m.in_iface.empty()) add(std::string(m.not_in_iface ? "! " : "") + "-i " + m.in_iface);
  if (!m.out_iface.empty()) add("-o " + m.out_iface);
  if (m.proto == Proto::tcp) add("-p tcp");
  if (m.proto == Proto::udp) add("-p udp");
  if (m.proto == Proto::vrrp) add("-p 112");  // iptables-save prints "vrrp" when /etc/protocols names it
  if (m.proto == Proto::icmp) add(f == Family::v4 ? "-p icmp" : "-p ipv6-icmp");
  if (m.proto == Proto::icmpv6) {
    add("-p ipv6-icmp");
    if (icmp_type) add("-m icmp6 --icmpv6-type " + std::to_string(*icmp_type));
  }
  if (m.hop_limit) add("-m hl --hl-eq " + std::to_string(m.hop_limit));
  if (m.ct != ct_none) {
    std::string st;
    auto one = [&](std::uint8_t bit, const char* word) {
      if (m.ct & bit) st += (st.empty() ? "" : ",") + std::string(word);
    };
    one(ct_invalid, "INVALID");
    one(ct_new, "NEW");
    one(ct_related, "RELATED");
    one(ct_established, "ESTABLISHED");
    add("-m conntrack --ctstate " + st);
  }
  if (m.ct_orig_dport) {
    std::string c = "-m conntrack --ctorigdstport " + std::to_string(*m.ct_orig_dport);
    if (m.ct_dir == Match::CtDir::original) c += " --ctdir ORIGINAL";
    if (m.ct_dir == Match::CtDir::reply) c += " --ctdir REPLY";
    add(c);
  }
  if (m.not_connmark) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%x", m.not_connmark);
    add(std::string("-m connmark ! --mark ") + hex + "/" + hex);
  }
  if (m.helper_ftp) add("-m helper --helper ftp");
  if (!m.sports.empty() || !m.dports.empty()) {
    std::string t = m.proto == Proto::udp ? "-m udp" : "-m tcp";
    if (!m.sports.empty()) t += " --sport " + ports_arg(m.sports);
    if (!m.dports.empty()) t += " --dport " + ports_arg(m.dports);
    add(t);
  }
  add("-m comment --comment " + quote_comment(comment_of(r)));
  switch (r.action) {
    case Action::accept: add("-j ACCEPT"); break;
    case Action::reject:
      add(f == Family::v4 ? "-j REJECT --reject-with icmp-host-prohibited" : "-j REJECT --reject-with icmp6-adm-prohibited");
      break;
    case Action::drop: add("-j DROP"); break;
    case Action::ct_helper: add("-j CT --helper ftp"); break;
    case Action::dnat: add("-j DNAT --to-destination " + r.address->to_string()); break;
    case Action::snat: add("-j SNAT --to-source " + r.address->to_string()); break;
    case Action::masquerade: add("-j MASQUERADE"); break;
    case Action::nfqueue:
      add("-j NFQUEUE --queue-num " + std::to_string(r.queue_num) + (r.queue_bypass ? " --queue-bypass" : ""));
      break;
    case Action::jump: add("-j " + r.chain_target); break;
  }
  return s;
}
}  // namespace

std::string iptables_rule_body(const Rule& r, Family f) {
  return rule_body(r, f, r.match.icmp_types.empty() ? std::nullopt : std::optional<std::uint8_t>(r.match.icmp_types.front()));
}

std::vector<std::string> iptables_rule_bodies(const Rule& r, Family f) {
  if (r.match.proto != Proto::icmpv6 || r.match.icmp_types.size() < 2) return {iptables_rule_body(r, f)};
  std::vector<std::string> out;
  for (auto t : r.match.icmp_types) out.push_back(rule_body(r, f, t));
  return out;
}

std::string emit_iptables_save(const Ruleset& whole, Family f) {
  const Ruleset rs = whole.only(f);
  std::string out = header_comment(rs);
  for (Table t : {Table::raw, Table::mangle, Table::nat, Table::filter}) {
    if (!rs.has_table(t)) continue;
    out += "*" + std::string(name(t)) + "\n";
    for (const auto& c : rs.chains)
      if (c.table == t) out += ":" + c.name + (c.builtin ? " ACCEPT" : " -") + " [0:0]\n";
    for (const auto& r : rs.rules)
      if (r.table == t)
        for (const auto& b : iptables_rule_bodies(r, f)) out += "-A " + r.chain + " " + b + "\n";
    out += "COMMIT\n";
  }
  return out;
}

std::string emit_iptables_save(const Ruleset& rs) { return emit_iptables_save(rs, rs.first_family()); }

}  // namespace ftpwall::rules
