// SPDX-License-Identifier: GPL-2.0-or-later
// --format shell: the same rules as iptables commands, one per line, for hosts without the
// iptables service. `-w` waits for the xtables lock instead of failing when another tool holds it.
// The binary is iptables-legacy / ip6tables-legacy (Debian 11+, RHEL 8+: plain `iptables` is the
// nft variant there, and a DROP in one is not overridden by an ACCEPT in the other). On CentOS 6/7
// the same binary is called plain `iptables` / `ip6tables`.
#include <string>

#include "ftpwall/rules/ruleset.hpp"

namespace ftpwall::rules {

namespace {

// Single quotes for the shell; comments never contain a quote (tags are built from ports,
// addresses and fixed words).
std::string shell_quote_comment(std::string body) {
  const std::string from = "--comment \"";
  auto at = body.find(from);
  if (at == std::string::npos) return body;
  auto end = body.find('"', at + from.size());
  body[at + from.size() - 1] = '\'';
  body[end] = '\'';
  return body;
}

}  // namespace

std::string emit_shell(const Ruleset& rs) {
  const std::string bin = rs.family == Family::v4 ? "iptables-legacy" : "ip6tables-legacy";
  const std::string centos = rs.family == Family::v4 ? "iptables" : "ip6tables";
  std::string out = "#!/bin/sh\n" + header_comment(rs);
  out += "# Appends to the live tables: run it on an empty ruleset (" + bin + " -F; " + bin + " -X; per table).\n";
  out += "# On CentOS 6/7 the binary is called plain `" + centos + "`; replace \"" + bin + "\" below.\n";
  out += "set -e\n";
  for (Table t : {Table::raw, Table::mangle, Table::nat, Table::filter}) {
    if (!rs.has_table(t)) continue;
    const std::string pre = bin + " -w -t " + std::string(name(t)) + " ";
    for (const auto& c : rs.chains)
      if (c.table == t && !c.builtin) out += pre + "-N " + c.name + "\n";
    for (const auto& r : rs.rules)
      if (r.table == t) out += pre + "-A " + r.chain + " " + shell_quote_comment(iptables_rule_body(r, rs.family)) + "\n";
  }
  return out;
}

}  // namespace ftpwall::rules
