// SPDX-License-Identifier: GPL-2.0-or-later
// Every emitter against the shipped examples in rules/examples/ (built here from a RulesetSpec, not
// through the CLI; the CLI test runs the README commands). FTPWALL_UPDATE_GOLDEN=1 rewrites.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "ftpwall/rules/ruleset.hpp"

namespace {

using namespace ftpwall::rules;
using ftpwall::Address;
using ftpwall::Cidr;

const std::string examples = std::string(FTPWALL_SOURCE_DIR) + "/rules/examples/";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void expect_golden(const std::string& file, const std::string& actual) {
  if (std::getenv("FTPWALL_UPDATE_GOLDEN")) {
    std::ofstream(examples + file, std::ios::binary | std::ios::trunc) << actual;
    return;
  }
  EXPECT_EQ(actual, slurp(examples + file)) << file;
}

Validated valid(RulesetSpec s) {
  auto v = validate(std::move(s));
  EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.error().message);
  return *v;
}

RulesetSpec gateway(Helper h, Format f, const std::string& cmd) {
  RulesetSpec s;
  s.role = Role::gateway;
  s.public_addresses = {*Address::parse("203.0.113.1")};
  s.internal_servers = {*Address::parse("10.0.0.2")};
  s.interface = "eth0";
  s.helper = h;
  s.format = f;
  if (h == Helper::none) s.passive_ports = {{61000, 61100}};
  s.command_line = cmd;
  return s;
}

TEST(IptablesSave, GatewayServerNatKernel) {
  auto s = gateway(Helper::kernel, Format::iptables_save,
                   "ftpwall rules --role gateway --public-address 203.0.113.1 --internal-server 10.0.0.2 --interface eth0 --helper kernel");
  const std::string out = emit_iptables_save(build_ruleset(valid(s)));
  expect_golden("gateway-server-nat-kernel.iptables", out);
  EXPECT_NE(out.find("IPTABLES_MODULES=\"nf_conntrack_ftp nf_nat_ftp\""), std::string::npos);
}

TEST(IptablesSave, GatewayServerNatNone) {
  auto s = gateway(Helper::none, Format::iptables_save,
                   "ftpwall rules --role gateway --public-address 203.0.113.1 --internal-server 10.0.0.2 --interface eth0 --helper none "
                   "--passive-ports 61000-61100");
  expect_golden("gateway-server-nat-none.iptables", emit_iptables_save(build_ruleset(valid(s))));
}

TEST(IptablesSave, Ip6tablesLayout) {
  RulesetSpec s;
  s.family = Families::v6;
  s.passive_ports = {{61000, 61100}};
  s.command_line = "ftpwall rules --role server --helper kernel --family 6 --passive-ports 61000-61100";
  const std::string out = emit_iptables_save(build_ruleset(valid(s)));
  expect_golden("server-kernel.ip6tables", out);
  EXPECT_NE(out.find("-p ipv6-icmp"), std::string::npos);
  EXPECT_NE(out.find("--reject-with icmp6-adm-prohibited"), std::string::npos);
  EXPECT_NE(out.find("/etc/sysconfig/ip6tables-config"), std::string::npos);
}

TEST(IptablesSave, FtpwalldAdminHooks) {
  auto s = gateway(Helper::ftpwalld, Format::iptables_save,
                   "ftpwall rules --role gateway --public-address 203.0.113.1 --internal-server 10.0.0.2 --interface eth0 --helper ftpwalld "
                   "--hooks admin --queue-bypass");
  s.hooks = Hooks::admin;
  s.queue_bypass = true;
  const std::string out = emit_iptables_save(build_ruleset(valid(s)));
  expect_golden("ftpwalld-gateway-admin-hooks.iptables", out);
  EXPECT_NE(out.find(":FTPWALL-ACCEPT - [0:0]"), std::string::npos);
  EXPECT_NE(out.find("-j NFQUEUE --queue-num 0 --queue-bypass"), std::string::npos);
}

TEST(Shell, ServerWithAllowFrom) {
  RulesetSpec s;
  s.allow_from = {*Cidr::parse("198.51.100.0/24")};
  s.interface = "eth0";
  s.format = Format::shell;
  s.command_line = "ftpwall rules --role server --helper kernel --allow-from 198.51.100.0/24 --interface eth0 --format shell";
  const std::string out = emit_shell(build_ruleset(valid(s)));
  expect_golden("server-kernel-allow.sh", out);
  EXPECT_NE(out.find("iptables-legacy -w -t raw -A PREROUTING"), std::string::npos);
  EXPECT_NE(out.find("plain `iptables`"), std::string::npos);
  EXPECT_NE(out.find("--comment 'ftpwall: ftp control 21'"), std::string::npos);
}

TEST(Shell, FtpwalldServerAdminHooks) {
  RulesetSpec s;
  s.helper = Helper::ftpwalld;
  s.hooks = Hooks::admin;
  s.format = Format::shell;
  s.command_line = "ftpwall rules --role server --helper ftpwalld --hooks admin --format shell";
  const std::string out = emit_shell(build_ruleset(valid(s)));
  expect_golden("ftpwalld-server-admin-hooks.sh", out);
  EXPECT_NE(out.find("iptables-legacy -w -t filter -N FTPWALL-ACCEPT"), std::string::npos);
}

TEST(Nft, GatewayServerNatKernel) {
  auto s = gateway(Helper::kernel, Format::nft,
                   "ftpwall rules --role gateway --public-address 203.0.113.1 --internal-server 10.0.0.2 --interface eth0 --helper kernel "
                   "--format nft");
  const std::string out = emit_nft(build_ruleset(valid(s)));
  expect_golden("gateway-server-nat-kernel.nft", out);
  EXPECT_NE(out.find("type filter hook prerouting priority -150;"), std::string::npos);
  EXPECT_NE(out.find("ct state related ct helper \"ftp\" tcp dport 1024-65535 accept"), std::string::npos);
}

TEST(Nft, GatewayServerNatNone) {
  auto s = gateway(Helper::none, Format::nft,
                   "ftpwall rules --role gateway --public-address 203.0.113.1 --internal-server 10.0.0.2 --interface eth0 --helper none "
                   "--passive-ports 61000-61100 --format nft");
  expect_golden("gateway-server-nat-none.nft", emit_nft(build_ruleset(valid(s))));
}

TEST(Nft, GatewayClientNatKernel) {
  RulesetSpec s;
  s.role = Role::gateway;
  s.inside_networks = {*Cidr::parse("10.1.0.0/24")};
  s.interface = "eth0";
  s.format = Format::nft;
  s.command_line = "ftpwall rules --role gateway --inside-network 10.1.0.0/24 --interface eth0 --helper kernel --format nft";
  const std::string out = emit_nft(build_ruleset(valid(s)));
  expect_golden("gateway-client-nat-kernel.nft", out);
  EXPECT_NE(out.find("oifname \"eth0\" ip saddr 10.1.0.0/24 masquerade"), std::string::npos);
}

// --helper ftpwalld --format nft: the admin's whole table (never named ftpwall: that is the
// daemon's), policy drop, and the documented line before the final reject in the chain at the
// daemon's hook; no helper, no queue, no jump.
TEST(Nft, FtpwalldGatewayServerNat) {
  auto s = gateway(Helper::ftpwalld, Format::nft,
                   "ftpwall rules --role gateway --public-address 203.0.113.1 --internal-server 10.0.0.2 --interface eth0 "
                   "--helper ftpwalld --format nft");
  const std::string out = emit_nft(build_ruleset(valid(s)));
  expect_golden("ftpwalld-gateway.nft", out);
  const std::string line = "meta mark & 0x20000000 == 0x20000000 accept comment \"ftpwall openings\"";
  const auto fwd = out.find("\tchain forward {");
  ASSERT_NE(fwd, std::string::npos);
  EXPECT_NE(out.find("type filter hook forward priority 0; policy drop;", fwd), std::string::npos);
  const auto est = out.find("ct state established accept", fwd);
  const auto ctl = out.find("ct state new tcp dport 21 accept", fwd);
  const auto at = out.find(line, fwd);
  const auto rej = out.find("reject with icmpx admin-prohibited", fwd);
  ASSERT_NE(at, std::string::npos);
  EXPECT_LT(est, ctl);
  EXPECT_LT(ctl, at);
  EXPECT_LT(at, rej);
  EXPECT_EQ(out.find(line, at + 1), std::string::npos);  // once: forward only on a gateway
  EXPECT_NE(out.find("dnat ip to 10.0.0.2"), std::string::npos);
  EXPECT_EQ(out.find("\ntable inet ftpwall"), std::string::npos);  // named in the notes only
  EXPECT_NE(out.find("\ntable inet filter\ndelete table inet filter\n"), std::string::npos);
  EXPECT_EQ(out.find("ct helper"), std::string::npos);
  EXPECT_EQ(out.find("queue num"), std::string::npos);
  EXPECT_EQ(out.find("FTPWALL-"), std::string::npos);
}

TEST(Nft, FtpwalldServerLineInInputWithTheConfiguredMark) {
  RulesetSpec s;
  s.helper = Helper::ftpwalld;
  s.format = Format::nft;
  s.accept_mark = 0x00000400;
  const std::string out = emit_nft(build_ruleset(valid(s)));
  const auto in = out.find("\tchain input {");
  ASSERT_NE(in, std::string::npos);
  EXPECT_NE(out.find("type filter hook input priority 0; policy drop;", in), std::string::npos);
  const auto at = out.find("meta mark & 0x00000400 == 0x00000400 accept comment \"ftpwall openings\"", in);
  ASSERT_NE(at, std::string::npos);
  EXPECT_LT(out.find("tcp dport 21 accept", in), at);
  EXPECT_LT(at, out.find("reject with icmpx admin-prohibited", in));
  const auto fwd = out.find("\tchain forward {");
  ASSERT_NE(fwd, std::string::npos);
  EXPECT_EQ(out.find("ftpwall openings", fwd), std::string::npos);  // a server opens in input only
}

TEST(Nft, KernelAndNoneKeepPolicyAcceptAndNoOpeningsLine) {
  for (Helper h : {Helper::kernel, Helper::none}) {
    RulesetSpec s;
    s.helper = h;
    s.format = Format::nft;
    s.passive_ports = {{61000, 61100}};
    const std::string out = emit_nft(build_ruleset(valid(s)));
    EXPECT_EQ(out.find("policy drop"), std::string::npos);
    EXPECT_EQ(out.find("ftpwall openings"), std::string::npos);
    EXPECT_EQ(out.find("\ntable inet ftpwall"), std::string::npos);
  }
}

TEST(Nft, FamilyPinnedOnFtpRulesWithoutAddresses) {
  RulesetSpec s;
  s.format = Format::nft;
  const std::string out = emit_nft(build_ruleset(valid(s)));
  EXPECT_NE(out.find("meta nfproto ipv4 ct state new tcp dport 21 accept"), std::string::npos);
  EXPECT_NE(out.find("\t\tct state new tcp dport 22 accept"), std::string::npos);  // base rules serve both families
}

TEST(Firewalld, ServerKernelAndNone) {
  RulesetSpec k;
  k.format = Format::firewalld;
  k.command_line = "ftpwall rules --role server --helper kernel --format firewalld";
  auto fk = emit_firewalld(valid(k));
  ASSERT_TRUE(fk.ok());
  expect_golden("firewalld-server-kernel.sh", *fk);
  EXPECT_NE(fk->find("<module name=\"nf_conntrack_ftp\"/>"), std::string::npos);
  EXPECT_NE(fk->find("firewall-offline-cmd --zone=public --add-service=ftpwall-ftp"), std::string::npos);

  RulesetSpec n;
  n.format = Format::firewalld;
  n.helper = Helper::none;
  n.passive_ports = {{61000, 61100}};
  n.allow_from = {*Cidr::parse("198.51.100.0/24")};
  n.command_line = "ftpwall rules --role server --helper none --passive-ports 61000-61100 --allow-from 198.51.100.0/24 --format firewalld";
  auto fn = emit_firewalld(valid(n));
  ASSERT_TRUE(fn.ok());
  expect_golden("firewalld-server-none.sh", *fn);
  EXPECT_NE(fn->find("<port protocol=\"tcp\" port=\"61000-61100\"/>"), std::string::npos);
  EXPECT_EQ(fn->find("--add-service="), std::string::npos);  // rich rules only: the service alone admits everyone
}

// --helper ftpwalld: the control port, an ipset hash:ip,mark holding queue.accept_mark and one rich
// rule matching it (firewalld 1.3.3 has no other mark match); no helper, no static range.
TEST(Firewalld, ServerFtpwalld) {
  RulesetSpec d;
  d.format = Format::firewalld;
  d.helper = Helper::ftpwalld;
  d.command_line = "ftpwall rules --role server --helper ftpwalld --format firewalld";
  auto fd = emit_firewalld(valid(d));
  ASSERT_TRUE(fd.ok()) << fd.error().message;
  expect_golden("firewalld-server-ftpwalld.sh", *fd);
  EXPECT_NE(fd->find("<ipset type=\"hash:ip,mark\">"), std::string::npos);
  EXPECT_NE(fd->find("<entry>0.0.0.0/1,0x20000000</entry>"), std::string::npos);  // firewalld refuses /0
  EXPECT_NE(fd->find("<entry>128.0.0.0/1,0x20000000</entry>"), std::string::npos);
  EXPECT_NE(fd->find("--add-rich-rule='rule family=\"ipv4\" source ipset=\"ftpwall-accept\" accept'"), std::string::npos);
  EXPECT_EQ(fd->find("<module"), std::string::npos);
  EXPECT_EQ(fd->find("61000"), std::string::npos);

  d.accept_mark = 0x40000000;
  d.allow_from = {*Cidr::parse("198.51.100.0/24"), *Cidr::parse("0.0.0.0/0")};
  auto fa = emit_firewalld(valid(d));
  ASSERT_TRUE(fa.ok());
  EXPECT_NE(fa->find("<entry>198.51.100.0/24,0x40000000</entry>"), std::string::npos);
  EXPECT_NE(fa->find("<entry>128.0.0.0/1,0x40000000</entry>"), std::string::npos);
  EXPECT_EQ(fa->find("/0,"), std::string::npos);

  d.hooks = Hooks::admin;
  EXPECT_FALSE(validate(d).ok());
  d.hooks = Hooks::daemon;
  d.accept_mark = 0;
  EXPECT_FALSE(validate(d).ok());
}

class ServerConfig : public ::testing::TestWithParam<std::pair<ServerSoftware, const char*>> {};

TEST_P(ServerConfig, BehindNatWithoutHelperAnnouncesThePublicAddress) {
  const auto [sw, file] = GetParam();
  auto s = gateway(Helper::none, Format::iptables_save,
                   "ftpwall rules --role gateway --public-address 203.0.113.1 --internal-server 10.0.0.2 --helper none "
                   "--passive-ports 61000-61100 --server " + std::string(name(sw)) + " --server-output -");
  s.interface.clear();
  s.server = sw;
  const std::string out = emit_server_config(valid(s));
  expect_golden(file, out);
  EXPECT_NE(out.find("203.0.113.1"), std::string::npos);
  EXPECT_NE(out.find("61000"), std::string::npos);
  // With the kernel helper, nf_nat_ftp rewrites: the server must not announce the public address.
  auto k = gateway(Helper::kernel, Format::iptables_save, "");
  k.passive_ports = {{61000, 61100}};
  k.server = sw;
  const std::string ko = emit_server_config(valid(k));
  EXPECT_EQ(ko.find("203.0.113.1"), std::string::npos) << ko;
}

INSTANTIATE_TEST_SUITE_P(All, ServerConfig,
                         ::testing::Values(std::make_pair(ServerSoftware::vsftpd, "vsftpd.conf"),
                                           std::make_pair(ServerSoftware::proftpd, "proftpd.conf"),
                                           std::make_pair(ServerSoftware::pure_ftpd, "pure-ftpd.conf")));

TEST(ServerConfigVsftpd, ActiveNoRefusesPort) {
  RulesetSpec s;
  s.passive_ports = {{61000, 61100}};
  s.server = ServerSoftware::vsftpd;
  s.active = false;
  const std::string out = emit_server_config(valid(s));
  EXPECT_NE(out.find("port_enable=NO\nconnect_from_port_20=NO\n"), std::string::npos);
}

}  // namespace
