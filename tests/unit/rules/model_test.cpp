// SPDX-License-Identifier: GPL-2.0-or-later
// validate() and build_ruleset(): the refusals and the promises every ruleset keeps.
#include <gtest/gtest.h>

#include "ftpwall/rules/ruleset.hpp"

namespace {

using namespace ftpwall::rules;
using ftpwall::Address;
using ftpwall::Cidr;
using ftpwall::Family;

Address addr(const char* s) { return *Address::parse(s); }
Cidr net(const char* s) { return *Cidr::parse(s); }

RulesetSpec server(Helper h) {
  RulesetSpec s;
  s.helper = h;
  s.passive_ports = {{61000, 61100}};
  return s;
}

RulesetSpec gateway_server_nat(Helper h) {
  RulesetSpec s = server(h);
  s.role = Role::gateway;
  s.public_addresses = {addr("203.0.113.1")};
  s.internal_servers = {addr("10.0.0.2")};
  return s;
}

std::string error_of(const RulesetSpec& s) {
  auto v = validate(s);
  return v.ok() ? std::string("(accepted)") : v.error().message;
}

TEST(PortRange, ParsesAndRefuses) {
  EXPECT_EQ(*parse_port_range("61000-61100"), (PortRange{61000, 61100}));
  EXPECT_EQ(*parse_port_range("65535"), (PortRange{65535, 65535}));
  EXPECT_EQ(*parse_port_range("1-65535"), (PortRange{1, 65535}));
  EXPECT_FALSE(parse_port_range("65536").ok());
  EXPECT_FALSE(parse_port_range("0-10").ok());
  EXPECT_FALSE(parse_port_range("100-99").ok());
  EXPECT_FALSE(parse_port_range("1-").ok());
  EXPECT_FALSE(parse_port_range("-5").ok());
  EXPECT_FALSE(parse_port_range("1 -5").ok());
  EXPECT_EQ(PortRange({1024, 65535}).to_string(':'), "1024:65535");
  EXPECT_EQ(PortRange({61000, 61000}).size(), 1u);
}

// --helper ftpwalld --format nft: ftpwalld installs its own hooks in table inet ftpwall, so the
// iptables-only --hooks admin has no nft form; the ruleset accepts openings by the mark only.
TEST(Validate, FtpwalldNftRefusesHooksAdminAndMarkZero) {
  RulesetSpec s = gateway_server_nat(Helper::ftpwalld);
  s.format = Format::nft;
  EXPECT_TRUE(validate(s).ok());
  s.hooks = Hooks::admin;
  EXPECT_EQ(error_of(s),
            "--hooks admin declares ftpwalld's iptables chains and does not apply to --format nft "
            "(ftpwalld installs its own table inet ftpwall): use --hooks daemon");
  s.hooks = Hooks::daemon;
  s.accept_mark = 0;
  EXPECT_NE(error_of(s).find("--accept-mark 0"), std::string::npos);
  s.accept_mark = 0x20000000;
  s.family = Families::v6;
  s.public_addresses.clear();
  s.internal_servers = {addr("2001:db8:1::2")};
  EXPECT_TRUE(validate(s).ok()) << error_of(s);  // ftpwalld serves IPv6 too, routed
  s.public_addresses = {addr("2001:db8::1")};
  EXPECT_NE(error_of(s).find("is NAT66, which ftpwall does not do"), std::string::npos) << error_of(s);
}

TEST(Validate, PrivilegedPortsNeedForceAndPort20NeverOpens) {
  RulesetSpec s = server(Helper::none);
  s.passive_ports = {{1023, 1100}};
  EXPECT_NE(error_of(s).find("below 1024"), std::string::npos);
  s.passive_ports = {{1024, 1100}};
  EXPECT_TRUE(validate(s).ok());  // the bound itself is fine
  s.passive_ports = {{900, 1000}};
  s.force = true;
  EXPECT_TRUE(validate(s).ok());
  s.passive_ports = {{20, 20}};
  EXPECT_NE(error_of(s).find("port 20"), std::string::npos);
}

TEST(Validate, RangesTouchingEachOtherAreNotOverlapping) {
  RulesetSpec s = server(Helper::none);
  s.passive_ports = {{61101, 61200}, {61000, 61100}};
  auto v = validate(s);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->passive.front(), (PortRange{61000, 61100}));  // sorted
  s.passive_ports = {{61100, 61200}, {61000, 61100}};
  EXPECT_NE(error_of(s).find("overlap"), std::string::npos);
}

TEST(Validate, ProfilesOfAGateway) {
  auto v = validate(gateway_server_nat(Helper::kernel));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->server_nat());
  EXPECT_FALSE(v->routed_server());
  RulesetSpec routed = gateway_server_nat(Helper::kernel);
  routed.public_addresses.clear();
  routed.internal_servers = {addr("192.0.2.20")};
  auto r = validate(routed);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->routed_server());
  RulesetSpec client = server(Helper::none);
  client.role = Role::gateway;
  client.inside_networks = {net("10.1.0.0/24")};
  client.interface = "eth0";
  EXPECT_NE(error_of(client).find("active mode behind client NAT needs a helper"), std::string::npos);
  client.active = false;
  EXPECT_TRUE(validate(client).ok());
  client.helper = Helper::kernel;
  client.active = true;
  EXPECT_TRUE(validate(client).ok());
}

TEST(Validate, ServerAnnouncesThePublicAddressOnlyWhenNothingRewrites) {
  EXPECT_TRUE(validate(gateway_server_nat(Helper::none))->server_announces_public());
  EXPECT_FALSE(validate(gateway_server_nat(Helper::kernel))->server_announces_public());  // nf_nat_ftp rewrites
  EXPECT_FALSE(validate(gateway_server_nat(Helper::ftpwalld))->server_announces_public());
  RulesetSpec s = gateway_server_nat(Helper::kernel);
  s.server = ServerSoftware::vsftpd;
  s.announce_public = AnnouncePublic::yes;
  auto v = validate(s);
  ASSERT_TRUE(v.ok());
  ASSERT_EQ(v->warnings.size(), 2u);
  EXPECT_NE(v->warnings[0].find("both the vsftpd snippet and nf_nat_ftp"), std::string::npos);
  EXPECT_NE(v->warnings[1].find("nf_conntrack_ftp ignores such 227 replies"), std::string::npos);
}

// ---- promises of every built ruleset ----

std::vector<RulesetSpec> every_profile() {
  std::vector<RulesetSpec> out;
  for (Helper h : {Helper::kernel, Helper::none, Helper::ftpwalld}) {
    out.push_back(server(h));
    out.push_back(gateway_server_nat(h));
    RulesetSpec c = gateway_server_nat(h);
    c.inside_networks = {net("10.1.0.0/24")};
    c.interface = "eth0";
    c.active = h != Helper::none;
    out.push_back(c);
    RulesetSpec a = server(h);
    a.allow_from = {net("198.51.100.0/24"), net("192.0.2.0/25")};
    out.push_back(a);
  }
  RulesetSpec hooks = gateway_server_nat(Helper::ftpwalld);
  hooks.hooks = Hooks::admin;
  out.push_back(hooks);
  return out;
}

TEST(Build, NoRuleOpensPort20OrTrustsSourcePort20) {
  for (const auto& s : every_profile()) {
    auto v = validate(s);
    ASSERT_TRUE(v.ok()) << v.error().message;
    for (const auto& r : build_ruleset(*v).rules) {
      for (const auto& p : r.match.dports)
        if (r.action == Action::accept || r.action == Action::dnat) { EXPECT_FALSE(p.contains(20)) << r.tag; }
      for (const auto& p : r.match.sports) EXPECT_FALSE(p.contains(20)) << r.tag;
    }
  }
}

TEST(Build, EveryRuleIsTagged) {
  for (const auto& s : every_profile()) {
    for (const auto& r : build_ruleset(*validate(s)).rules) {
      EXPECT_TRUE(r.tag.starts_with("ftp ") || r.tag.starts_with("base ")) << r.tag;
      EXPECT_EQ(r.purpose == Purpose::ftp, r.tag.starts_with("ftp ")) << r.tag;
    }
  }
}

TEST(Build, RelatedOnlyForTheFtpHelperTowardUnprivilegedPorts) {
  for (const auto& s : every_profile()) {
    for (const auto& r : build_ruleset(*validate(s)).rules) {
      if (!(r.match.ct & ct_related)) continue;
      EXPECT_TRUE(r.match.helper_ftp) << r.tag;
      ASSERT_EQ(r.match.dports.size(), 1u) << r.tag;
      EXPECT_GE(r.match.dports[0].low, first_unprivileged_port) << r.tag;
    }
  }
}

TEST(Build, KernelHelperIsAttachedExplicitlyOnlyWithHelperKernel) {
  for (const auto& s : every_profile()) {
    const auto rs = build_ruleset(*validate(s));
    bool ct = false;
    for (const auto& r : rs.rules) ct = ct || r.action == Action::ct_helper;
    EXPECT_EQ(ct, s.helper == Helper::kernel);
  }
}

TEST(Build, AllowFromRestrictsEveryNewAccept) {
  RulesetSpec s = server(Helper::none);
  s.allow_from = {net("198.51.100.0/24")};
  for (const auto& r : build_ruleset(*validate(s)).rules)
    if (r.purpose == Purpose::ftp && r.action == Action::accept && (r.match.ct & ct_new)) {
      EXPECT_EQ(r.match.src, net("198.51.100.0/24")) << r.tag;
    }
}

TEST(Build, FtpwalldDefaultCarriesOnlyWhatTheAdminOwns) {
  const auto rs = build_ruleset(*validate(server(Helper::ftpwalld)));
  for (const auto& r : rs.rules) {
    EXPECT_NE(r.action, Action::nfqueue);
    EXPECT_NE(r.action, Action::jump);
  }
  for (const auto& c : rs.chains) EXPECT_TRUE(c.builtin) << c.name;
  bool says_where = false;
  for (const auto& n : rs.notes) says_where = says_where || n.text.find("FTPWALL-ACCEPT") != std::string::npos;
  EXPECT_TRUE(says_where);
}

TEST(Build, FtpwalldAdminHooksSteerFirstInMangle) {
  RulesetSpec s = gateway_server_nat(Helper::ftpwalld);
  s.hooks = Hooks::admin;
  s.queue_num = 3;
  s.queue_bypass = true;
  const auto rs = build_ruleset(*validate(s));
  auto fwd = rs.in(Table::mangle, "FORWARD");
  // One rule queues both directions of connections whose conntrack original destination is 21
  // (never a packet's port: a connection from port 21 to another service is no control
  // connection), without FTPS sessions (their connmark bit).
  ASSERT_EQ(fwd.size(), 1u);
  EXPECT_EQ(fwd[0]->action, Action::nfqueue);
  EXPECT_EQ(fwd[0]->queue_num, 3u);
  EXPECT_TRUE(fwd[0]->queue_bypass);
  EXPECT_EQ(fwd[0]->match.ct_orig_dport, std::optional<std::uint16_t>(21));
  EXPECT_EQ(fwd[0]->match.ct_dir, Match::CtDir::any);
  EXPECT_TRUE(fwd[0]->match.dports.empty() && fwd[0]->match.sports.empty());
  EXPECT_EQ(fwd[0]->match.not_connmark, 0x10000000u);
  std::vector<std::string> user;
  for (const auto& c : rs.chains)
    if (!c.builtin) user.push_back(c.name);
  EXPECT_EQ(user, (std::vector<std::string>{"FTPWALL-DNAT", "FTPWALL-SNAT", "FTPWALL-ACCEPT"}));
  // The jump to FTPWALL-ACCEPT sits right before the final REJECT.
  auto f = rs.in(Table::filter, "FORWARD");
  ASSERT_GE(f.size(), 2u);
  EXPECT_EQ(f[f.size() - 2]->chain_target, "FTPWALL-ACCEPT");
  EXPECT_EQ(f.back()->action, Action::reject);
}

TEST(Build, IsDeterministic) {
  for (const auto& s : every_profile()) {
    auto v = validate(s);
    EXPECT_EQ(emit_iptables_save(build_ruleset(*v)), emit_iptables_save(build_ruleset(*v)));
  }
}

}  // namespace
