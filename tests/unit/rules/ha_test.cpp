// SPDX-License-Identifier: GPL-2.0-or-later
// --ha (issue 15): one gateway of a keepalived + conntrackd active/backup pair. Every format with
// --ha (the INVALID drops first, the sync and VRRP accepts from the peer only, DNAT from and SNAT
// to the public virtual address), the refusals, the keepalived.conf / conntrackd.conf / notify
// script and how they agree with the rules and with the other gateway's files; as root, keepalived
// -t and a conntrackd started in a scratch network namespace accept them (skipped without root or
// the tools, failed under CI=true).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ftpwall/rules/ruleset.hpp"
#include "generate_util.hpp"

namespace {

using namespace ftpwall::rules;
using ftpwall::Address;
using ftpwall::Cidr;

Address addr(const char* s) { return *Address::parse(s); }

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The rule lines of a text (no comments, no blank lines).
std::vector<std::string> rule_lines(const std::string& text) {
  std::vector<std::string> out;
  for (auto& l : lines_of(text)) {
    auto at = l.find_first_not_of(" \t");
    if (at != std::string::npos && l[at] != '#') out.push_back(l.substr(at));
  }
  return out;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

std::size_t index_of(const std::vector<std::string>& lines, const std::string& part, std::size_t from = 0) {
  for (std::size_t i = from; i < lines.size(); ++i)
    if (has(lines[i], part)) return i;
  return lines.size();
}

// The bench's pair (../shared/ha-in-netns.md): g1 of g1/g2, public VIP 198.51.100.1 on eth0,
// inside VIP 10.0.0.1 on eth1, server 10.0.0.10, sync link eth2 192.168.99.1/.2.
RulesetSpec pair(Helper h = Helper::kernel, Format f = Format::iptables_save) {
  RulesetSpec s;
  s.role = Role::gateway;
  s.helper = h;
  s.format = h == Helper::ftpwalld && f != Format::firewalld ? Format::nft : f;  // ftpwalld's [ha]: nftables only
  s.public_addresses = {addr("198.51.100.1")};
  s.internal_servers = {addr("10.0.0.10")};
  s.inside_networks = {*Cidr::parse("10.0.0.0/24")};
  s.interface = "eth0";
  if (h == Helper::none) {
    s.passive_ports = {{61000, 61100}};
    s.active = false;  // active mode behind client NAT needs a helper
  }
  s.ha.enabled = true;
  s.ha.inside_vip = addr("10.0.0.1");
  s.ha.inside_interface = "eth1";
  s.ha.self = addr("192.168.99.1");
  s.ha.peer = addr("192.168.99.2");
  s.ha.sync_interface = "eth2";
  s.command_line = "ftpwall rules --ha ...";
  return s;
}

RulesetSpec other_gateway(RulesetSpec s) {
  std::swap(s.ha.self, s.ha.peer);
  return s;
}

using ftpwall::rules::test::error_of;
using ftpwall::rules::test::gen;

const HaFile& file(const Output& o, const std::string& name) {
  for (const auto& f : o.ha_files)
    if (f.name == name) return f;
  static const HaFile none;
  ADD_FAILURE() << "no " << name;
  return none;
}

const std::vector<Helper> all_helpers = {Helper::kernel, Helper::none, Helper::ftpwalld};

// ---- the rules, every format ----

const std::vector<Helper> iptables_helpers = {Helper::kernel, Helper::none};

TEST(Ha, IptablesSaveDropsInvalidFirstAndAcceptsThePeerOnly) {
  for (Helper h : iptables_helpers) {
    const std::string out = gen(pair(h)).text;
    const auto l = rule_lines(out);
    const std::size_t input = index_of(l, "-A INPUT "), forward = index_of(l, "-A FORWARD ");
    ASSERT_LT(input, l.size()) << out;
    EXPECT_EQ(l[input], "-A INPUT -m conntrack --ctstate INVALID -m comment --comment \"ftpwall: base ha drop invalid\" -j DROP");
    EXPECT_EQ(l[forward], "-A FORWARD -m conntrack --ctstate INVALID -m comment --comment \"ftpwall: base ha drop invalid\" -j DROP");
    const std::size_t sync = index_of(l, "ftpwall: base ha conntrackd sync 3780"), vrrp = index_of(l, "ftpwall: base ha vrrp");
    EXPECT_EQ(l[sync], "-A INPUT -s 192.168.99.2/32 -d 192.168.99.1/32 -i eth2 -p udp -m udp --dport 3780 -m comment --comment "
                       "\"ftpwall: base ha conntrackd sync 3780\" -j ACCEPT");
    EXPECT_EQ(l[vrrp], "-A INPUT -s 192.168.99.2/32 -d 192.168.99.1/32 -i eth2 -p 112 -m comment --comment \"ftpwall: base ha vrrp\" -j ACCEPT");
    // Both before INPUT's final REJECT.
    EXPECT_LT(vrrp, index_of(l, "-A INPUT -m comment --comment \"ftpwall: base reject\""));
    EXPECT_TRUE(has(out, "-A PREROUTING -d 198.51.100.1/32 -i eth0 -p tcp -m tcp --dport 21 -m comment --comment "
                         "\"ftpwall: ftp dnat control 21\" -j DNAT --to-destination 10.0.0.10"))
        << out;
    EXPECT_TRUE(has(out, "-A POSTROUTING -s 10.0.0.0/24 -o eth0 -m comment --comment \"ftpwall: base snat 10.0.0.0/24\" -j SNAT "
                         "--to-source 198.51.100.1"))
        << out;
    EXPECT_FALSE(has(joined(l), "MASQUERADE")) << out;
  }
}

TEST(Ha, ShellHasTheSameRules) {
  for (Helper h : iptables_helpers) {
    const std::string out = gen(pair(h, Format::shell)).text;
    EXPECT_TRUE(has(out, "iptables-legacy -w -t filter -A INPUT -m conntrack --ctstate INVALID -m comment --comment "
                         "'ftpwall: base ha drop invalid' -j DROP\n"))
        << out;
    EXPECT_TRUE(has(out, "iptables-legacy -w -t filter -A INPUT -s 192.168.99.2/32 -d 192.168.99.1/32 -i eth2 -p udp -m udp --dport "
                         "3780 -m comment --comment 'ftpwall: base ha conntrackd sync 3780' -j ACCEPT\n"));
    EXPECT_TRUE(has(out, "-i eth2 -p 112 -m comment --comment 'ftpwall: base ha vrrp' -j ACCEPT\n"));
    EXPECT_TRUE(has(out, "-j SNAT --to-source 198.51.100.1\n"));
    EXPECT_FALSE(has(joined(rule_lines(out)), "MASQUERADE"));
    // The first filter line of INPUT and of FORWARD is the drop.
    const auto l = lines_of(out);
    EXPECT_TRUE(has(l[index_of(l, "-t filter -A INPUT ")], "INVALID"));
    EXPECT_TRUE(has(l[index_of(l, "-t filter -A FORWARD ")], "INVALID"));
  }
}

TEST(Ha, NftHasTheSameRules) {
  for (Helper h : all_helpers) {
    const std::string out = gen(pair(h, Format::nft)).text;
    const auto l = rule_lines(out);
    const std::size_t input = index_of(l, "chain input {"), forward = index_of(l, "chain forward {");
    ASSERT_LT(forward, l.size()) << out;
    // After the "type filter hook ..." line, the drop first.
    EXPECT_EQ(l[input + 2], "ct state invalid drop comment \"ftpwall: base ha drop invalid\"") << out;
    EXPECT_EQ(l[forward + 2], "ct state invalid drop comment \"ftpwall: base ha drop invalid\"") << out;
    EXPECT_TRUE(has(out, "iifname \"eth2\" ip saddr 192.168.99.2 ip daddr 192.168.99.1 udp dport 3780 accept comment "
                         "\"ftpwall: base ha conntrackd sync 3780\""))
        << out;
    EXPECT_TRUE(has(out, "iifname \"eth2\" ip saddr 192.168.99.2 ip daddr 192.168.99.1 ip protocol 112 accept comment "
                         "\"ftpwall: base ha vrrp\""))
        << out;
    EXPECT_TRUE(has(out, "iifname \"eth0\" ip daddr 198.51.100.1 tcp dport 21 dnat ip to 10.0.0.10"));
    EXPECT_TRUE(has(out, "ip saddr 10.0.0.0/24 oifname \"eth0\"") || has(out, "oifname \"eth0\" ip saddr 10.0.0.0/24")) << out;
    EXPECT_TRUE(has(out, "snat ip to 198.51.100.1"));
    EXPECT_FALSE(has(joined(l), "masquerade"));
    // Both accepts before input's final reject.
    EXPECT_LT(index_of(l, "ftpwall: base ha vrrp"), index_of(l, "ftpwall: base reject", input));
  }
}

TEST(Ha, FtpwalldNeedsNft) {
  RulesetSpec s = pair(Helper::ftpwalld);
  for (Format f : {Format::iptables_save, Format::shell}) {
    s.format = f;
    EXPECT_EQ(error_of(s).rfind("--ha --helper ftpwalld needs --format nft: ftpwalld's [ha] works only with its nftables backend", 0),
              0u)
        << error_of(s);
  }
}

TEST(Ha, FirewalldCannotExpressAGateway) {
  EXPECT_NE(error_of(pair(Helper::kernel, Format::firewalld)).find("--format firewalld supports only --role server"), std::string::npos);
}

TEST(Ha, WithoutPublicSnatTheRulesStillUseTheVip) {
  // A gateway in front of a server only: DNAT from the VIP, no inside network, nothing masqueraded.
  RulesetSpec s = pair(Helper::none);
  s.inside_networks.clear();
  s.active = true;
  const std::string out = gen(s).text;
  EXPECT_TRUE(has(out, "-j SNAT --to-source 198.51.100.1")) << out;  // the server's active connections (--helper none)
  EXPECT_TRUE(has(out, "-j DNAT --to-destination 10.0.0.10"));
  EXPECT_FALSE(has(joined(rule_lines(out)), "MASQUERADE"));
}

TEST(Ha, HeaderSaysWhatThePairNeeds) {
  const std::string k = gen(pair(Helper::kernel)).text;
  EXPECT_TRUE(has(k, "# High availability (--ha): this gateway (192.168.99.1 on eth2) and 192.168.99.2 are an active/backup pair;"));
  EXPECT_TRUE(has(k, "net.netfilter.nf_conntrack_tcp_loose=0"));
  EXPECT_TRUE(has(k, "SNAT, never MASQUERADE"));
  EXPECT_TRUE(has(k, "ExpectationSync ftp"));
  EXPECT_FALSE(has(k, "[ha] enabled = true"));
  const std::string d = gen(pair(Helper::ftpwalld, Format::nft)).text;
  EXPECT_TRUE(has(d, "# ftpwalld runs on both gateways with ftpwall.conf [ha] enabled = true"));
  EXPECT_TRUE(has(d, "`ftpwall takeover`"));
}

TEST(Ha, PromisesHold) {
  for (Helper h : all_helpers)
    for (Format f : {Format::iptables_save, Format::shell, Format::nft}) {
      auto p = plan(pair(h, f));
      ASSERT_TRUE(p.ok()) << p.error().message;
      const Ruleset rs = build_ruleset(*p);
      for (const auto& r : rs.rules) {
        EXPECT_TRUE(r.tag.starts_with("ftp ") || r.tag.starts_with("base ")) << r.tag;
        EXPECT_NE(r.action, Action::masquerade) << r.tag;
        if (r.action == Action::snat) {
          EXPECT_EQ(*r.address, addr("198.51.100.1")) << r.tag;
        }
        // Nothing but the peer reaches the sync port or sends VRRP.
        if (r.match.proto == Proto::udp || r.match.proto == Proto::vrrp) {
          ASSERT_TRUE(r.match.src.has_value()) << r.tag;
          EXPECT_EQ(r.match.src->to_string(), "192.168.99.2/32") << r.tag;
          EXPECT_EQ(r.match.in_iface, "eth2") << r.tag;
        }
      }
      for (const char* chain : {"INPUT", "FORWARD"}) {
        const auto in = rs.in(Table::filter, chain);
        ASSERT_FALSE(in.empty());
        EXPECT_EQ(in.front()->action, Action::drop) << chain;
        EXPECT_EQ(in.front()->match.ct, ct_invalid) << chain;
        EXPECT_EQ(in.back()->action, Action::reject) << chain;
      }
      EXPECT_EQ(emit_nft(rs), emit_nft(build_ruleset(*plan(pair(h, f)))));  // deterministic
    }
}

TEST(Ha, MergePutsTheDropFirst) {
  const std::string stock =
      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -p icmp -j ACCEPT\n-A INPUT -i lo -j ACCEPT\n"
      "-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT\n-A INPUT -j REJECT --reject-with icmp-host-prohibited\n"
      "-A FORWARD -j REJECT --reject-with icmp-host-prohibited\nCOMMIT\n";
  auto o = generate(pair(), std::string_view(stock));
  ASSERT_TRUE(o.ok()) << o.error().message;
  const auto l = lines_of(o->text);
  const std::size_t filter = index_of(l, "*filter");
  EXPECT_TRUE(has(l[index_of(l, "-A INPUT ", filter)], "--ctstate INVALID")) << o->text;
  EXPECT_TRUE(has(l[index_of(l, "-A FORWARD ", filter)], "--ctstate INVALID")) << o->text;
  EXPECT_EQ(index_of(l, "ftpwall: base ha vrrp") + 1, index_of(l, "-A INPUT -j REJECT")) << o->text;
  // Merging again gives the same file.
  auto again = generate(pair(), std::string_view(o->text));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->text, o->text);
}

TEST(Ha, SyncPortAndInterfacesFollowTheOptions) {
  RulesetSpec s = pair(Helper::kernel, Format::nft);
  s.ha.sync_port = 3781;
  s.ha.sync_interface = "bond1";
  const Output o = gen(s);
  EXPECT_TRUE(has(o.text, "iifname \"bond1\" ip saddr 192.168.99.2 ip daddr 192.168.99.1 udp dport 3781 accept"));
  EXPECT_TRUE(has(file(o, "conntrackd.conf").text, "\t\tPort 3781\n\t\tInterface bond1\n"));
  EXPECT_TRUE(has(file(o, "keepalived.conf").text, "\tinterface bond1\n"));
}

// ---- the refusals ----

TEST(Ha, Refusals) {
  struct Case {
    std::function<void(RulesetSpec&)> edit;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](RulesetSpec& s) {
         s.role = Role::server;
         s.internal_servers.clear();
         s.inside_networks.clear();
       },
       "--ha describes one gateway of an active/backup pair: it needs --role gateway"},
      {[](RulesetSpec& s) { s.family = Families::v6; }, "--public-address 198.51.100.1 is IPv4 but --family is 6"},
      {[](RulesetSpec& s) {
         s.family = Families::both;
         s.internal_servers.push_back(addr("2001:db8:1::10"));
       },
       "--ha is IPv4 only"},
      {[](RulesetSpec& s) { s.public_addresses.clear(); }, "--ha needs --public-address A: the public virtual address"},
      {[](RulesetSpec& s) { s.interface.clear(); }, "--ha needs --interface IFACE"},
      {[](RulesetSpec& s) { s.ha.inside_vip.reset(); }, "--ha needs --inside-vip A"},
      {[](RulesetSpec& s) { s.ha.inside_interface.clear(); }, "--ha needs --inside-interface IFACE"},
      {[](RulesetSpec& s) { s.ha.self.reset(); }, "--ha needs --ha-self A (this gateway's address on the sync link)"},
      {[](RulesetSpec& s) { s.ha.peer.reset(); }, "--ha needs --ha-peer A (the other gateway's address on the sync link)"},
      {[](RulesetSpec& s) { s.ha.sync_interface.clear(); }, "--ha needs --ha-sync-interface IFACE"},
      {[](RulesetSpec& s) { s.ha.sync_interface = "eth0"; }, "--ha-sync-interface eth0 is the public --interface"},
      {[](RulesetSpec& s) { s.ha.inside_interface = "eth0"; }, "--inside-interface eth0 is also the public --interface"},
      {[](RulesetSpec& s) { s.ha.inside_interface = "eth2"; }, "--inside-interface eth2 is also the --ha-sync-interface"},
      {[](RulesetSpec& s) { s.ha.sync_interface = "eth2; reboot"; }, "--ha-sync-interface 'eth2; reboot' is not an interface name"},
      {[](RulesetSpec& s) { s.ha.peer = s.ha.self; }, "--ha-self and --ha-peer are both 192.168.99.1"},
      {[](RulesetSpec& s) { s.ha.peer = addr("10.0.0.1"); }, "--ha-peer 10.0.0.1 is a virtual address"},
      {[](RulesetSpec& s) { s.ha.inside_vip = addr("198.51.100.1"); }, "--inside-vip and --public-address are both 198.51.100.1"},
      {[](RulesetSpec& s) { s.ha.inside_vip = addr("2001:db8::1"); }, "--inside-vip 2001:db8::1 is IPv6; --ha is IPv4 only"},
      {[](RulesetSpec& s) { s.ha.inside_vip = addr("10.0.0.10"); }, "--internal-server 10.0.0.10 is a virtual address"},
      {[](RulesetSpec& s) { s.ha.ignore = {addr("10.0.0.10")}; }, "--ha-ignore 10.0.0.10 is the --internal-server"},
      {[](RulesetSpec& s) { s.inside_networks = {*Cidr::parse("198.51.100.0/24")}; }, "lies inside --inside-network 198.51.100.0/24"},
      {[](RulesetSpec& s) { s.ha.vrid = 255; }, "--ha-vrid 255 is out of range 1-254"},
      {[](RulesetSpec& s) { s.ha.priority = 255; }, "--ha-priority 255 is out of range 1-254"},
      {[](RulesetSpec& s) { s.ha.advert_centis = 5000; }, "--ha-advert-int is out of range 0.01-40.95 seconds"},
      {[](RulesetSpec& s) { s.ha.sync_port = 0; }, "--ha-sync-port 0 is not a port"},
      {[](RulesetSpec& s) { s.format = Format::firewalld; }, "--format firewalld supports only --role server"},
  };
  for (const auto& c : cases) {
    RulesetSpec s = pair();
    c.edit(s);
    const std::string e = error_of(s);
    EXPECT_NE(e.find(c.message), std::string::npos) << "want: " << c.message << "\n got: " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
}

TEST(Ha, OptionsOfHaNeedHa) {
  struct Case {
    std::function<void(HaSpec&)> edit;
    std::string opt;
  };
  const std::vector<Case> cases = {
      {[](HaSpec& h) { h.inside_vip = addr("10.0.0.1"); }, "--inside-vip"},
      {[](HaSpec& h) { h.inside_interface = "eth1"; }, "--inside-interface"},
      {[](HaSpec& h) { h.self = addr("192.168.99.1"); }, "--ha-self"},
      {[](HaSpec& h) { h.peer = addr("192.168.99.2"); }, "--ha-peer"},
      {[](HaSpec& h) { h.sync_interface = "eth2"; }, "--ha-sync-interface"},
      {[](HaSpec& h) { h.sync_port = 3781; }, "--ha-sync-port"},
      {[](HaSpec& h) { h.priority = 100; }, "--ha-priority"},
      {[](HaSpec& h) { h.vrid = 60; }, "--ha-vrid"},
      {[](HaSpec& h) { h.advert_centis = 20; }, "--ha-advert-int"},
      {[](HaSpec& h) { h.ignore = {addr("198.51.100.11")}; }, "--ha-ignore"},
  };
  for (const auto& c : cases) {
    RulesetSpec s;
    c.edit(s.ha);
    EXPECT_EQ(error_of(s), c.opt + " needs --ha");
  }
}

TEST(Ha, NothingChangesWithoutHa) {
  RulesetSpec s = pair();
  s.ha = HaSpec{};
  const Output o = gen(s);
  EXPECT_TRUE(o.ha_files.empty());
  EXPECT_FALSE(has(o.text, "INVALID"));
  EXPECT_FALSE(has(o.text, "ftpwall: base ha"));
  EXPECT_FALSE(has(o.text, "High availability"));
}

// ---- keepalived.conf, conntrackd.conf, the notify script ----

TEST(HaFiles, FourFilesUnderTheirInstalledNames) {
  const Output o = gen(pair());
  ASSERT_EQ(o.ha_files.size(), 4u);
  EXPECT_EQ(file(o, "99-ftpwall-ha.conf").install_path, "/etc/sysctl.d/99-ftpwall-ha.conf");
  EXPECT_TRUE(has(file(o, "99-ftpwall-ha.conf").text, "\nnet.ipv4.ip_forward = 1\n"));
  EXPECT_TRUE(has(file(o, "99-ftpwall-ha.conf").text, "\nnet.netfilter.nf_conntrack_tcp_loose = 0\n"));
  EXPECT_EQ(file(o, "keepalived.conf").install_path, "/etc/keepalived/keepalived.conf");
  EXPECT_EQ(file(o, "conntrackd.conf").install_path, "/etc/conntrackd/conntrackd.conf");
  EXPECT_EQ(file(o, "ftpwall-ha-notify").install_path, "/etc/keepalived/ftpwall-ha-notify");
  EXPECT_TRUE(file(o, "ftpwall-ha-notify").executable);
  EXPECT_FALSE(file(o, "keepalived.conf").executable);
  for (const auto& f : o.ha_files) EXPECT_TRUE(has(f.text, "  ftpwall rules --ha ...\n")) << f.name;  // the command, to re-run
}

TEST(HaFiles, KeepalivedSyncGroupOfTwoVrrp3InstancesUnicastOnTheSyncLink) {
  const std::string k = file(gen(pair()), "keepalived.conf").text;
  EXPECT_TRUE(has(k, "global_defs {\n\tvrrp_version 3\n")) << k;
  EXPECT_TRUE(has(k, "\tenable_script_security\n\tscript_user root\n"));
  EXPECT_TRUE(has(k, "vrrp_sync_group FTPWALL {\n\tgroup {\n\t\tFTPWALL_PUBLIC\n\t\tFTPWALL_INSIDE\n\t}\n"));
  EXPECT_TRUE(has(k, "\tnotify_master \"/etc/keepalived/ftpwall-ha-notify primary\"\n"));
  EXPECT_TRUE(has(k, "\tnotify_backup \"/etc/keepalived/ftpwall-ha-notify backup\"\n"));
  EXPECT_TRUE(has(k, "\tnotify_fault \"/etc/keepalived/ftpwall-ha-notify fault\"\n"));
  const std::string common =
      "\tstate BACKUP\n\tnopreempt\n\tinterface eth2\n"
      "\t# a direct sync link loses its carrier when the peer dies: that must not be a FAULT here\n\tdont_track_primary\n"
      "\tvirtual_router_id %\n\tpriority 150\n\tadvert_int 1\n"
      "\tunicast_src_ip 192.168.99.1\n\tunicast_peer {\n\t\t192.168.99.2\n\t}\n\ttrack_interface {\n\t\teth0\n\t\teth1\n\t}\n";
  auto with_vrid = [&](const char* v) {
    std::string c = common;
    c.replace(c.find('%'), 1, v);
    return c;
  };
  EXPECT_TRUE(has(k, "vrrp_instance FTPWALL_PUBLIC {\n" + with_vrid("51") + "\tvirtual_ipaddress {\n\t\t198.51.100.1/32 dev eth0\n\t}\n}\n"))
      << k;
  EXPECT_TRUE(has(k, "vrrp_instance FTPWALL_INSIDE {\n" + with_vrid("52") + "\tvirtual_ipaddress {\n\t\t10.0.0.1/32 dev eth1\n\t}\n}\n"))
      << k;
  EXPECT_FALSE(has(k, "preempt_delay"));
}

TEST(HaFiles, PriorityVridAndAdvertInterval) {
  EXPECT_TRUE(has(file(gen(other_gateway(pair())), "keepalived.conf").text, "\tpriority 100\n"));
  RulesetSpec s = pair();
  s.ha.priority = 200;
  s.ha.vrid = 10;
  s.ha.advert_centis = 20;
  const std::string k = file(gen(s), "keepalived.conf").text;
  EXPECT_TRUE(has(k, "\tpriority 200\n"));
  EXPECT_TRUE(has(k, "\tvirtual_router_id 10\n"));
  EXPECT_TRUE(has(k, "\tvirtual_router_id 11\n"));
  EXPECT_TRUE(has(k, "\tadvert_int 0.2\n"));
  EXPECT_EQ(ha_advert_text(100), "1");
  EXPECT_EQ(ha_advert_text(20), "0.2");
  EXPECT_EQ(ha_advert_text(25), "0.25");
  EXPECT_EQ(ha_advert_text(5), "0.05");
  EXPECT_EQ(ha_advert_text(4095), "40.95");
  EXPECT_EQ(ha_advert_text(150), "1.5");
}

TEST(HaFiles, ConntrackdFtfwOverUdpToThePeer) {
  const std::string c = file(gen(pair()), "conntrackd.conf").text;
  EXPECT_TRUE(has(c, "Sync {\n\tMode FTFW {\n")) << c;
  EXPECT_TRUE(has(c, "\t\tStartupResync on\n"));
  EXPECT_TRUE(has(c, "\t\tDisableExternalCache off\n"));
  EXPECT_TRUE(has(c, "\tUDP {\n\t\tIPv4_address 192.168.99.1\n\t\tIPv4_Destination_Address 192.168.99.2\n\t\tPort 3780\n"
                     "\t\tInterface eth2\n"));
  EXPECT_FALSE(has(c, "Multicast"));
  // HashSize above 8192 (at 8192 or below flushes after a commit are ignored).
  const auto at = c.find("\tHashSize ");
  ASSERT_NE(at, std::string::npos);
  EXPECT_GT(std::stoul(c.substr(at + 10)), 8192u);
  EXPECT_TRUE(has(c, "\tLockFile /var/lock/conntrack.lock\n"));
  EXPECT_TRUE(has(c, "\tUNIX {\n\t\tPath /var/run/conntrackd.ctl\n\t}\n"));
}

TEST(HaFiles, AddressIgnoreListsOwnAndVirtualAddressesNeverClientsOrServer) {
  RulesetSpec s = pair();
  s.ha.ignore = {addr("198.51.100.11"), addr("10.0.0.11")};
  const std::string c = file(gen(s), "conntrackd.conf").text;
  const auto from = c.find("Address Ignore {"), to = c.find('}', from);
  ASSERT_NE(from, std::string::npos);
  const std::string list = c.substr(from, to - from);
  for (const char* a : {"127.0.0.1", "198.51.100.1", "10.0.0.1", "192.168.99.1", "192.168.99.2", "198.51.100.11", "10.0.0.11"})
    EXPECT_TRUE(has(list, std::string("\tIPv4_address ") + a + " #")) << a << "\n" << list;
  EXPECT_FALSE(has(list, "10.0.0.10")) << list;   // the server
  EXPECT_FALSE(has(list, "10.0.0.0")) << list;    // the inside network
  EXPECT_FALSE(has(list, "IPv6")) << list;
}

TEST(HaFiles, AddressIgnoreListsEachAddressOnce) {
  RulesetSpec s = pair();
  s.ha.ignore = {addr("198.51.100.1"), addr("192.168.99.2"), addr("198.51.100.11"), addr("198.51.100.11")};
  const std::string c = file(gen(s), "conntrackd.conf").text;
  for (const char* a : {"198.51.100.1 ", "192.168.99.2 ", "198.51.100.11 "}) {
    const std::string line = std::string("IPv4_address ") + a;
    const auto first = c.find(line);
    ASSERT_NE(first, std::string::npos) << a;
    EXPECT_EQ(c.find(line, first + 1), std::string::npos) << a << "\n" << c;
  }
}

TEST(HaFiles, ExpectationSyncOnlyWithTheKernelHelper) {
  EXPECT_TRUE(has(file(gen(pair(Helper::kernel)), "conntrackd.conf").text, "\tOptions {\n"));
  EXPECT_TRUE(has(file(gen(pair(Helper::kernel)), "conntrackd.conf").text, "\t\tExpectationSync {\n\t\t\tftp\n\t\t}\n"));
  EXPECT_FALSE(has(file(gen(pair(Helper::none)), "conntrackd.conf").text, "ExpectationSync"));
  EXPECT_FALSE(has(file(gen(pair(Helper::ftpwalld)), "conntrackd.conf").text, "ExpectationSync"));
}

TEST(HaFiles, NotifyScriptIsThePrimaryBackupLogic) {
  for (Helper h : all_helpers) {
    const std::string n = file(gen(pair(h)), "ftpwall-ha-notify").text;
    EXPECT_EQ(n.rfind("#!/bin/sh\n", 0), 0u);
    EXPECT_TRUE(has(n, "\nCONF=/etc/conntrackd/conntrackd.conf\n"));
    const auto l = rule_lines(n);
    const std::size_t primary = index_of(l, "primary)"), backup = index_of(l, "backup)"), fault = index_of(l, "fault)");
    ASSERT_LT(fault, l.size()) << n;
    std::vector<std::string> steps;
    for (std::size_t i = primary + 1; i < backup; ++i) steps.push_back(l[i].substr(0, l[i].find("  #")));
    std::vector<std::string> want = {"run conntrackd -C \"$CONF\" -c", "run conntrackd -C \"$CONF\" -f", "run conntrackd -C \"$CONF\" -R",
                                     "run conntrackd -C \"$CONF\" -B"};
    if (h == Helper::ftpwalld) want.push_back("run ftpwall takeover");
    want.push_back(";;");
    EXPECT_EQ(steps, want) << n;
    const std::size_t b = h == Helper::ftpwalld ? 1 : 0;  // ftpwalld: standby first
    if (b) {
      EXPECT_TRUE(has(l[backup + 1], "run ftpwall standby")) << n;
      EXPECT_TRUE(has(l[fault + 1], "run ftpwall standby")) << n;
    }
    EXPECT_TRUE(has(l[backup + 1 + b], "run conntrackd -C \"$CONF\" -t"));
    EXPECT_TRUE(has(l[backup + 2 + b], "run conntrackd -C \"$CONF\" -n"));
    EXPECT_TRUE(has(l[fault + 1 + b], "run conntrackd -C \"$CONF\" -t"));
    EXPECT_EQ(has(n, "[ha] enabled = true"), h == Helper::ftpwalld);
  }
}

// The two gateways' files agree with each other and with each other's rules.
TEST(HaFiles, ThePairAgrees) {
  const Output a = gen(pair()), b = gen(other_gateway(pair()));
  const std::string ka = file(a, "keepalived.conf").text, kb = file(b, "keepalived.conf").text;
  EXPECT_TRUE(has(ka, "\tunicast_src_ip 192.168.99.1\n\tunicast_peer {\n\t\t192.168.99.2\n"));
  EXPECT_TRUE(has(kb, "\tunicast_src_ip 192.168.99.2\n\tunicast_peer {\n\t\t192.168.99.1\n"));
  EXPECT_TRUE(has(ka, "\tpriority 150\n"));
  EXPECT_TRUE(has(kb, "\tpriority 100\n"));
  // b's rules accept what a sends, and the reverse.
  EXPECT_TRUE(has(b.text, "-s 192.168.99.1/32 -d 192.168.99.2/32 -i eth2 -p udp -m udp --dport 3780"));
  EXPECT_TRUE(has(b.text, "-s 192.168.99.1/32 -d 192.168.99.2/32 -i eth2 -p 112"));
  EXPECT_TRUE(has(a.text, "-s 192.168.99.2/32 -d 192.168.99.1/32 -i eth2 -p 112"));
  // One notify script and one Address Ignore list for both.
  EXPECT_EQ(file(a, "ftpwall-ha-notify").text, file(b, "ftpwall-ha-notify").text);
  // The same addresses in both Address Ignore lists.
  auto ignore_of = [](const Output& o) {
    const std::string c = file(o, "conntrackd.conf").text;
    const auto from = c.find("Address Ignore {"), to = c.find('}', from);
    std::vector<std::string> v;
    for (const auto& l : rule_lines(c.substr(from, to - from)))
      if (l.starts_with("IPv4_address ")) v.push_back(l.substr(0, l.find(" #")));
    std::sort(v.begin(), v.end());
    return v;
  };
  const auto ia = ignore_of(a), ib = ignore_of(b);
  EXPECT_EQ(ia.size(), 5u);
  EXPECT_EQ(ia, ib);
}

// ---- the real tools accept them (root; skipped otherwise, failed under CI=true) ----

bool ci() {
  const char* c = std::getenv("CI");
  return c && std::string(c) == "true";
}

bool have(const char* tool) {
  return std::system(("command -v " + std::string(tool) + " >/dev/null 2>&1 || test -x /usr/sbin/" + tool).c_str()) == 0;
}

#define NEED_ROOT_AND(tool)                                                                    \
  do {                                                                                         \
    if (::geteuid() != 0 || !have(tool) || !have("unshare")) {                                 \
      if (ci()) FAIL() << "CI=true: this test needs root, unshare and " tool;                  \
      GTEST_SKIP() << "needs root, unshare and " tool;                                         \
    }                                                                                          \
  } while (0)

struct ScratchDir {
  std::string path;
  ScratchDir() {
    char t[] = "/tmp/ftpwall-ha-test-XXXXXX";
    path = ::mkdtemp(t) ? t : "";
    ::chmod(path.c_str(), 0755);
  }
  ~ScratchDir() {
    if (!path.empty()) (void)std::system(("rm -rf '" + path + "'").c_str());
  }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = path + "/" + name;
    std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
    return p;
  }
};

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

int run_sh(const std::string& script, std::string& output) {
  const std::string cmd = "PATH=\"$PATH:/usr/sbin:/sbin\" unshare -n sh -c '" + replaced(script, "'", "'\\''") + "' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[512];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
  const int st = ::pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// The interfaces of the spec, as veth pairs (no dummy module needed) in a fresh namespace.
const std::string interfaces =
    "ip link set lo up && for i in eth0 eth1 eth2; do ip link add $i type veth peer name p$i || exit 9; done && "
    "ip addr add 192.168.99.1/24 dev eth2 && ip link set eth2 up && ip link set peth2 up && ";

TEST(HaTools, KeepalivedAcceptsTheConfiguration) {
  NEED_ROOT_AND("keepalived");
  for (Helper h : all_helpers) {
    ScratchDir d;
    const std::string conf = d.write("keepalived.conf", file(gen(pair(h)), "keepalived.conf").text);
    std::string out;
    const int rc = run_sh(interfaces + "keepalived -t -f " + conf, out);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_EQ(out, "") << out;  // no warning either (a missing file is rc 0 with a message)
  }
  // And the check has teeth: an unknown keyword is refused.
  ScratchDir d;
  const std::string conf = d.write("bad.conf", replaced(file(gen(pair()), "keepalived.conf").text, "nopreempt", "nopreemptx"));
  std::string out;
  EXPECT_NE(run_sh(interfaces + "keepalived -t -f " + conf, out), 0) << out;
}

TEST(HaTools, ConntrackdStartsWithTheConfiguration) {
  NEED_ROOT_AND("conntrackd");
  for (Helper h : all_helpers) {
    ScratchDir d;
    // The installed paths of the lock, the socket and the log, moved into the scratch directory.
    std::string text = file(gen(pair(h)), "conntrackd.conf").text;
    text = replaced(text, "/var/lock/conntrack.lock", d.path + "/ct.lock");
    text = replaced(text, "/var/run/conntrackd.ctl", d.path + "/ct.ctl");
    text = replaced(text, "\tLogFile on\n", "\tLogFile " + d.path + "/ct.log\n");
    const std::string conf = d.write("conntrackd.conf", text);
    std::string out;
    // Daemon mode, its statistics through the socket, then the kill; the log says it resynced.
    // Waits by polling (up to 5 s each), not by fixed sleeps: under ctest -j the daemon may take longer.
    const std::string sock = d.path + "/ct.ctl", lock = d.path + "/ct.lock";
    const int rc = run_sh(interfaces + "conntrackd -C " + conf + " -d && for i in $(seq 50); do [ -S " + sock +
                              " ] && break; sleep 0.1; done && conntrackd -C " + conf + " -s >/dev/null && conntrackd -C " +
                              conf + " -k && for i in $(seq 50); do [ -e " + lock + " ] || break; sleep 0.1; done && cat " +
                              d.path + "/ct.log",
                          out);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_TRUE(has(out, "initialization completed")) << out;
    EXPECT_TRUE(has(out, "resync requested")) << out;  // StartupResync
    EXPECT_FALSE(has(out, "[ERROR]")) << out;
    EXPECT_FALSE(has(out, "[WARNING]")) << out;
  }
}

TEST(HaTools, NotifyScriptParses) {
  if (!have("sh")) GTEST_SKIP() << "no sh";
  for (Helper h : all_helpers) {
    ScratchDir d;
    const std::string p = d.write("notify", file(gen(pair(h)), "ftpwall-ha-notify").text);
    EXPECT_EQ(std::system(("sh -n " + p).c_str()), 0);
  }
}

}  // namespace
