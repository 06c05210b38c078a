// SPDX-License-Identifier: GPL-2.0-or-later
// --format shell: the same rules as iptables commands, one per line, for hosts without the
// iptables service. `-w` waits for the xtables lock instead of failing when another tool holds it.
// The binary is iptables-legacy / ip6tables-legacy (Debian 11+, RHEL 8+: plain `iptables` is the
// nft variant there, and a DROP in one is not overridden by an ACCEPT in the other). On CentOS 6/7
// the same binary is called plain `iptables` / `ip6tables`. --family both: the IPv4 commands, then
// the IPv6 ones.
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
  const auto fams = members(rs.family);
  auto bin_of = [](Family f) { return std::string(f == Family::v4 ? "iptables-legacy" : "ip6tables-legacy"); };
  std::string out = "#!/bin/sh\n" + header_comment(rs);
  std::string bins, centos, flush;
  for (Family f : fams) {
    const std::string bin = bin_of(f);
    bins += std::string(bins.empty() ? "" : ", ") + "\"" + bin + "\"";
    centos += std::string(centos.empty() ? "" : " and ") + "`" + std::string(sysconfig_name(f)) + "`";
    flush += std::string(flush.empty() ? "" : "; ") + bin + " -F; " + bin + " -X";
  }
  out += "# Appends to the live tables: run it on an empty ruleset (" + flush + "; per table).\n";
  if (fams.size() == 1)
    out += "# On CentOS 6/7 the binary is called plain " + centos + "; replace " + bins + " below.\n";
  else
    out += "# On CentOS 6/7 the binaries are called plain " + centos + "; replace " + bins + " below.\n";
  out += "set -e\n";
  for (Family f : fams) {
    const Ruleset one = rs.only(f);
    const std::string bin = bin_of(f);
    for (Table t : {Table::raw, Table::mangle, Table::nat, Table::filter}) {
      if (!one.has_table(t)) continue;
      const std::string pre = bin + " -w -t " + std::string(name(t)) + " ";
      for (const auto& c : one.chains)
        if (c.table == t && !c.builtin) out += pre + "-N " + c.name + "\n";
      for (const auto& r : one.rules)
        if (r.table == t)
          for (const auto& b : iptables_rule_bodies(r, f)) out += pre + "-A " + r.chain + " " + shell_quote_comment(b) + "\n";
    }
  }
  return out;
}

}  // namespace ftpwall::rules
