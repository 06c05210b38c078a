// SPDX-License-Identifier: GPL-2.0-or-later
// --format firewalld (role server): a shell script that installs the service file
// /etc/firewalld/services/ftpwall-ftp.xml and enables it with firewall-cmd (firewalld running) or
// firewall-offline-cmd (firewalld stopped: kickstart %post, image builds).
//   <port protocol="tcp" port="21"/>              each control port
//   <port protocol="tcp" port="61000-61100"/>     --helper none: the static passive range
//   <module name="nf_conntrack_ftp"/>             --helper kernel: firewalld attaches the helper
// <module> is what CentOS 7's firewalld 0.6 understands; firewalld >= 0.9 reads it as <helper name="ftp"/>
// (measured in 1.3.3: --info-service lists "modules: ftp", table inet firewalld gets helper-ftp-tcp).
// firewalld accepts RELATED for every helper itself, so the "only toward ports >= 1024" narrowing of
// the iptables formats is not expressible here.
//
// --helper ftpwalld: the service carries the control port(s) only. ftpwalld (backend nftables) keeps
// its openings in its own table inet ftpwall, which firewalld neither sees nor touches (also not at
// --reload); an accept there is not final, firewalld's filter_INPUT still rejects. What firewalld
// can accept by is the packet mark ftpwalld's verdict sets on each data SYN it admits
// (queue.accept_mark). firewalld 1.3.3 has no mark match in rich rules or policies, and its direct
// rules go to iptables (table ip filter, a separate base chain that cannot override the reject);
// the one mark match it has is an ipset of type hash:ip,mark:
//   /etc/firewalld/ipsets/ftpwall-accept.xml   <entry>0.0.0.0/1,0x20000000</entry> + 128.0.0.0/1
//                                              (or one entry per --allow-from network)
//   rule family="ipv4" source ipset="ftpwall-accept" accept
// which firewalld turns into `ip saddr . meta mark @ftpwall-accept accept` in filter_IN_public_allow.
// The entries are prefixes because firewalld refuses /0 and sends an address range inside a
// concatenation to libnftables as a host name (reload fails: "Could not resolve hostname"). The
// mark is compared whole (no mask), so the data SYNs must carry no other mark bit. Permanent
// entries survive firewall-cmd --reload (firewalld re-adds them): there is nothing for the daemon
// to repair. (ipsets that ftpwalld fills per opening would lose every element at a reload and, in
// 1.3.3, could not even expire: the set gets no timeout flag.)
// IPv6 (--family 6|both): ipset ftpwall-accept6, <option name="family" value="inet6"/>, and
//   rule family="ipv6" source ipset="ftpwall-accept6" accept
// (firewalld: ip6 saddr . meta mark @ftpwall-accept6 accept). firewalld refuses IPv6 prefixes and
// ranges in hash:ip entries ("invalid address '::/1' ... ignoring", measured in 1.3.3), so its
// entries are the --allow-from clients, each a single address (validate() asks for /128).
// The service itself has no family: firewalld applies its ports and helper to IPv4 and IPv6;
// --allow-from rich rules carry their network's family.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "ftpwall/rules/ruleset.hpp"

namespace ftpwall::rules {

namespace {
constexpr const char* service_name = "ftpwall-ftp";
constexpr const char* zone = "public";
constexpr const char* accept_ipset = "ftpwall-accept";
constexpr const char* accept_ipset6 = "ftpwall-accept6";

std::string hex_mark(std::uint32_t m) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", m);
  return b;
}

// The ipset's entries: each --allow-from network of the part's family (firewalld refuses /0: two
// /1 instead; everyone when --allow-from is not given); IPv6: each client's single address
// (firewalld takes no IPv6 prefix there; plan() asked for /128).
std::vector<std::string> accept_entries(const Validated& v) {
  std::vector<std::string> nets;
  if (v.family == Family::v6) {
    for (const auto& a : v.allow_from) nets.push_back(a.addr.to_string());
  } else {
    for (const auto& a : v.allow_from) {
      if (a.prefix == 0) {
        nets.push_back("0.0.0.0/1");
        nets.push_back("128.0.0.0/1");
      } else {
        nets.push_back(a.to_string());
      }
    }
    if (v.spec.allow_from.empty()) nets = {"0.0.0.0/1", "128.0.0.0/1"};
  }
  for (auto& n : nets) n += "," + hex_mark(v.spec.accept_mark);
  return nets;
}
}  // namespace

Result<std::string> emit_firewalld(const Validated& v) {
  Plan p;
  p.spec = v.spec;
  p.spec.family = v.family == Family::v4 ? Families::v4 : Families::v6;
  p.parts = {v};
  return emit_firewalld(p);
}

Result<std::string> emit_firewalld(const Plan& plan) {
  const RulesetSpec& s = plan.spec;
  if (s.role != Role::server) return make_error("--format firewalld supports only --role server in this release");
  const bool daemon = s.helper == Helper::ftpwalld;
  const Validated& v = plan.parts.front();  // control ports and passive range: the same in every part
  const Ruleset rs = build_ruleset(plan);
  // ftpwalld: one ipset per family whose part admits clients.
  std::vector<const Validated*> sets;
  if (daemon)
    for (const auto& p : plan.parts)
      if (!p.no_clients) sets.push_back(&p);
  auto set_name = [](const Validated& p) { return std::string(p.family == Family::v4 ? accept_ipset : accept_ipset6); };
  std::string out = "#!/bin/sh\n" + header_comment(rs);
  std::string set_names;
  for (const auto* p : sets) set_names += (set_names.empty() ? "" : " and ") + ("\"" + set_name(*p) + "\"");
  out += "# Installs firewalld service \"" + std::string(service_name) + "\"" +
         (daemon ? std::string(sets.size() > 1 ? " and ipsets " : " and ipset ") + set_names : std::string()) + " and enables " +
         (daemon ? "them" : "it") + " in zone " + zone + ".\n";
  out += "set -e\n";
  out += "cat > /etc/firewalld/services/" + std::string(service_name) + ".xml <<'EOF'\n";
  out += "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<service>\n";
  out += "  <short>FTP (ftpwall)</short>\n";
  std::string ports;
  for (auto p : v.control_ports) ports += (ports.empty() ? "" : ",") + std::to_string(p);
  std::string what = "FTP on control port(s) " + ports;
  if (s.helper == Helper::kernel) what += " with the kernel ftp helper (nf_conntrack_ftp) opening the data connections";
  else if (daemon) {
    std::string names;
    for (const auto* p : sets) names += (names.empty() ? "" : ", ") + set_name(*p);
    what += "; ftpwalld opens the data connections (ipset" + std::string(sets.size() > 1 ? "s " : " ") + names + ")";
  }
  else {
    std::string pr;
    for (const auto& r : v.passive) pr += (pr.empty() ? "" : ",") + r.to_string();
    what += " with the passive range " + pr + " open statically (no helper: FTPS works)";
  }
  out += "  <description>" + what + ". Generated by ftpwall rules.</description>\n";
  for (auto p : v.control_ports) out += "  <port protocol=\"tcp\" port=\"" + std::to_string(p) + "\"/>\n";
  if (s.helper == Helper::none)
    for (const auto& r : v.passive) out += "  <port protocol=\"tcp\" port=\"" + r.to_string() + "\"/>\n";
  if (s.helper == Helper::kernel) out += "  <module name=\"nf_conntrack_ftp\"/>\n";
  out += "</service>\nEOF\n";
  for (const auto* p : sets) {
    out += "cat > /etc/firewalld/ipsets/" + set_name(*p) + ".xml <<'EOF'\n";
    out += "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ipset type=\"hash:ip,mark\">\n";
    out += "  <short>ftpwalld openings" + std::string(p->family == Family::v6 ? " (IPv6)" : "") + "</short>\n";
    out += "  <description>Data connections ftpwalld admitted: packet mark " + hex_mark(s.accept_mark) +
           " (queue.accept_mark). Generated by ftpwall rules.</description>\n";
    if (p->family == Family::v6) out += "  <option name=\"family\" value=\"inet6\"/>\n";
    for (const auto& e : accept_entries(*p)) out += "  <entry>" + e + "</entry>\n";
    out += "</ipset>\nEOF\n";
  }

  // A firewalld service has no family: enabled as is it serves IPv4 and IPv6 (whatever
  // --family says, as firewalld's own ftp service). --allow-from: rich rules instead, each in its
  // network's family, since the plain service would admit everyone.
  auto zone_cmds = [&](const std::string& tool, const std::string& perm) {
    std::string c;
    if (!s.interface.empty()) c += tool + perm + " --zone=" + zone + " --change-interface=" + s.interface + "\n";
    if (s.allow_from.empty()) {
      c += tool + perm + " --zone=" + zone + " --add-service=" + service_name + "\n";
    } else {
      for (const auto& a : s.allow_from)
        c += tool + perm + " --zone=" + zone + " --add-rich-rule='rule family=\"" + (a.addr.family == Family::v4 ? "ipv4" : "ipv6") +
             "\" source address=\"" + a.to_string() + "\" service name=\"" + service_name + "\" accept'\n";
    }
    for (const auto* p : sets)
      c += tool + perm + " --zone=" + zone + " --add-rich-rule='rule family=\"" + (p->family == Family::v4 ? "ipv4" : "ipv6") +
           "\" source ipset=\"" + set_name(*p) + "\" accept'\n";
    return c;
  };
  out += "if firewall-cmd --state >/dev/null 2>&1; then\n";
  out += "# firewalld is running: load the new service file, enable it permanently, apply.\n";
  out += "firewall-cmd --reload\n";
  out += zone_cmds("firewall-cmd", " --permanent");
  out += "firewall-cmd --reload\n";
  out += "else\n";
  out += "# firewalld is stopped: change the permanent configuration offline.\n";
  out += zone_cmds("firewall-offline-cmd", "");
  out += "fi\n";
  return out;
}

}  // namespace ftpwall::rules
