// SPDX-License-Identifier: GPL-2.0-or-later
// --family 4|6|both (issue 10): every format x family, addresses per family, NAT66 refused, the
// ICMPv6 lines of RFC 4890, --helper ftpwalld for IPv6, the server snippets per family.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ftpwall/rules/ruleset.hpp"
#include "generate_util.hpp"

namespace {

using namespace ftpwall::rules;
using ftpwall::Address;
using ftpwall::Cidr;
using ftpwall::Family;

Address addr(const char* s) { return *Address::parse(s); }
Cidr net(const char* s) { return *Cidr::parse(s); }

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The "-A" / rule lines of a text (no header comments, which echo the command line).
std::string rule_lines(const std::string& text) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (!line.empty() && line[0] != '#') out += line + "\n";
  }
  return out;
}

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

RulesetSpec server(Families f, Helper h = Helper::kernel, Format fmt = Format::iptables_save) {
  RulesetSpec s;
  s.family = f;
  s.helper = h;
  s.format = fmt;
  s.passive_ports = {{61000, 61100}};
  return s;
}

using ftpwall::rules::test::error_of;
using ftpwall::rules::test::gen;

const std::vector<Families> all_families = {Families::v4, Families::v6, Families::both};
const std::vector<Helper> all_helpers = {Helper::kernel, Helper::none, Helper::ftpwalld};

// ---- every format x family x helper: generated, each family's text only its own family's ----

TEST(Family, IptablesSaveOneFilePerFamily) {
  for (Families f : all_families)
    for (Helper h : all_helpers) {
      const Output o = gen(server(f, h));
      ASSERT_EQ(o.files.size(), f == Families::both ? 2u : 1u);
      for (const auto& file : o.files) {
        const std::string rules = rule_lines(file.text);
        EXPECT_EQ(file.name, file.family == Family::v4 ? "iptables" : "ip6tables");
        if (file.family == Family::v4) {
          EXPECT_FALSE(has(rules, "ipv6-icmp") || has(rules, "icmp6")) << rules;
          EXPECT_TRUE(has(rules, "--reject-with icmp-host-prohibited"));
        } else {
          EXPECT_FALSE(has(rules, "-p icmp ") || has(rules, "icmp-host-prohibited")) << rules;
          EXPECT_TRUE(has(rules, "--reject-with icmp6-adm-prohibited"));
          EXPECT_TRUE(has(rules, "--icmpv6-type 135 -m hl --hl-eq 255")) << rules;
        }
        EXPECT_TRUE(has(file.text, "COMMIT\n"));
      }
      if (f == Families::both) {
        EXPECT_TRUE(has(o.text, "# ==== /etc/sysconfig/iptables (IPv4, iptables-restore"));
        EXPECT_TRUE(has(o.text, "# ==== /etc/sysconfig/ip6tables (IPv6, ip6tables-restore"));
        EXPECT_LT(o.text.find("/etc/sysconfig/iptables ("), o.text.find("/etc/sysconfig/ip6tables ("));
      } else {
        EXPECT_EQ(o.text, o.files.front().text);  // one family: exactly one file, no banner
      }
    }
}

TEST(Family, ShellUsesEachFamilysTool) {
  for (Families f : all_families)
    for (Helper h : all_helpers) {
      const std::string out = gen(server(f, h, Format::shell)).text;
      const bool v4 = f != Families::v6, v6 = f != Families::v4;
      EXPECT_EQ(has(out, "\niptables-legacy -w -t filter -A INPUT"), v4) << out;
      EXPECT_EQ(has(out, "\nip6tables-legacy -w -t filter -A INPUT"), v6) << out;
      EXPECT_EQ(has(out, "ip6tables-legacy -w -t filter -A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 136 -m hl --hl-eq 255"), v6);
      if (f == Families::both) {
        EXPECT_TRUE(has(out, "plain `iptables` and `ip6tables`")) << out;
        EXPECT_LT(out.find("\niptables-legacy"), out.find("\nip6tables-legacy"));  // IPv4 first
      }
    }
}

TEST(Family, NftOneInetTable) {
  for (Families f : all_families)
    for (Helper h : all_helpers) {
      const std::string out = gen(server(f, h, Format::nft)).text;
      EXPECT_EQ(count(out, "\ntable inet filter {"), 1u);
      if (f == Families::v4) {
        EXPECT_TRUE(has(out, "meta l4proto { icmp, ipv6-icmp } accept"));  // as before
        EXPECT_FALSE(has(out, "icmpv6 type"));
      } else {
        EXPECT_FALSE(has(out, "{ icmp, ipv6-icmp }"));
        EXPECT_TRUE(has(out, "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } "
                             "ip6 hoplimit 255 accept comment \"ftpwall: base icmpv6 neighbour discovery\""))
            << out;
        // The base rules serve both families of the inet table: IPv4's ICMP accept also with 6.
        EXPECT_TRUE(has(out, "\t\tmeta l4proto icmp accept comment \"ftpwall: base icmp\""));
      }
      const std::string ctl = "ct state new tcp dport 21 accept comment \"ftpwall: ftp control 21\"";
      switch (f) {
        case Families::v4: EXPECT_TRUE(has(out, "meta nfproto ipv4 " + ctl)) << out; break;
        case Families::v6: EXPECT_TRUE(has(out, "meta nfproto ipv6 " + ctl)) << out; break;
        case Families::both:  // one rule serves both families
          EXPECT_TRUE(has(out, "\t\t" + ctl)) << out;
          EXPECT_FALSE(has(out, "meta nfproto")) << out;
          break;
      }
    }
}

TEST(Family, NftKernelHelperServesBothFamilies) {
  const std::string out = gen(server(Families::both, Helper::kernel, Format::nft)).text;
  EXPECT_TRUE(has(out, "\tct helper ftp {\n\t\ttype \"ftp\" protocol tcp\n\t}\n"));
  EXPECT_TRUE(has(out, "type filter hook prerouting priority -150; policy accept;"));
  EXPECT_TRUE(has(out, "\t\ttcp dport 21 ct helper set \"ftp\" comment \"ftpwall: ftp helper 21\""));
  EXPECT_TRUE(has(out, "\t\tct state related ct helper \"ftp\" tcp dport 1024-65535 accept"));
  const std::string six = gen(server(Families::v6, Helper::kernel, Format::nft)).text;
  EXPECT_TRUE(has(six, "meta nfproto ipv6 tcp dport 21 ct helper set \"ftp\"")) << six;
}

TEST(Family, FirewalldServiceAndRichRulesPerFamily) {
  RulesetSpec s = server(Families::both, Helper::kernel, Format::firewalld);
  s.allow_from = {net("198.51.100.0/24"), net("2001:db8:1::/48")};
  const std::string out = gen(s).text;
  EXPECT_TRUE(has(out, "--add-rich-rule='rule family=\"ipv4\" source address=\"198.51.100.0/24\" service name=\"ftpwall-ftp\" accept'"));
  EXPECT_TRUE(has(out, "--add-rich-rule='rule family=\"ipv6\" source address=\"2001:db8:1::/48\" service name=\"ftpwall-ftp\" accept'"));
  EXPECT_TRUE(has(out, "<module name=\"nf_conntrack_ftp\"/>"));
  // No --allow-from: the service, which firewalld applies to both families.
  for (Families f : all_families)
    EXPECT_TRUE(has(gen(server(f, Helper::kernel, Format::firewalld)).text, "--zone=public --add-service=ftpwall-ftp\n"));
}

// firewalld takes IPv6 hash:ip,mark entries as single addresses only (1.3.3 ignores "::/1" with
// INVALID_ENTRY): the IPv6 ipset lists the --allow-from hosts, and anything else is refused.
TEST(Family, FirewalldFtpwalldIpsetPerFamily) {
  RulesetSpec s = server(Families::v6, Helper::ftpwalld, Format::firewalld);
  EXPECT_EQ(error_of(s),
            "--helper ftpwalld --format firewalld: firewalld's hash:ip,mark ipsets take single IPv6 addresses only (no prefix), "
            "so ftpwalld's IPv6 data connections can be accepted only from clients given as --allow-from ADDRESS/128; give "
            "them, or use --format nft for IPv6");
  s.allow_from = {net("2001:db8:1::/48")};
  EXPECT_NE(error_of(s).find("single IPv6 addresses only"), std::string::npos);
  s.allow_from = {net("2001:db8::20/128"), net("2001:db8::21/128")};
  std::string out = gen(s).text;
  EXPECT_TRUE(has(out, "cat > /etc/firewalld/ipsets/ftpwall-accept6.xml"));
  EXPECT_TRUE(has(out, "<option name=\"family\" value=\"inet6\"/>"));
  EXPECT_TRUE(has(out, "  <entry>2001:db8::20,0x20000000</entry>\n  <entry>2001:db8::21,0x20000000</entry>\n"));
  EXPECT_FALSE(has(out, "/1,"));
  EXPECT_TRUE(has(out, "--add-rich-rule='rule family=\"ipv6\" source ipset=\"ftpwall-accept6\" accept'"));
  EXPECT_FALSE(has(out, "ipsets/ftpwall-accept.xml"));
  s.family = Families::both;
  s.allow_from.push_back(net("198.51.100.0/24"));
  out = gen(s).text;
  EXPECT_TRUE(has(out, "ipsets/ftpwall-accept.xml"));
  EXPECT_TRUE(has(out, "<entry>198.51.100.0/24,0x20000000</entry>"));
  EXPECT_TRUE(has(out, "ipsets/ftpwall-accept6.xml"));
  EXPECT_TRUE(has(out, "rule family=\"ipv4\" source ipset=\"ftpwall-accept\" accept"));
  EXPECT_TRUE(has(out, "rule family=\"ipv6\" source ipset=\"ftpwall-accept6\" accept"));
  s.allow_from = {net("198.51.100.0/24")};  // IPv4 clients only: no IPv6 ipset (and a warning)
  const Output o = gen(s);
  EXPECT_FALSE(has(o.text, "ipsets/ftpwall-accept6.xml"));
  EXPECT_EQ(o.warnings.size(), 1u);
}

// ---- ICMPv6 (RFC 4890) ----

TEST(Icmpv6, EssentialsAlwaysEchoRequestWithStock) {
  const std::string six = gen(server(Families::v6)).text;
  for (const char* line :
       {"-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 1 -m comment --comment \"ftpwall: base icmpv6 errors\" -j ACCEPT",
        "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 2 -m comment --comment \"ftpwall: base icmpv6 errors\" -j ACCEPT",
        "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 3 -m comment --comment \"ftpwall: base icmpv6 errors\" -j ACCEPT",
        "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 4 -m comment --comment \"ftpwall: base icmpv6 errors\" -j ACCEPT",
        "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 133 -m hl --hl-eq 255 -m comment --comment \"ftpwall: base icmpv6 neighbour discovery\" -j ACCEPT",
        "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 134 -m hl --hl-eq 255 -m comment --comment \"ftpwall: base icmpv6 neighbour discovery\" -j ACCEPT",
        "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -m hl --hl-eq 255 -m comment --comment \"ftpwall: base icmpv6 neighbour discovery\" -j ACCEPT",
        "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 136 -m hl --hl-eq 255 -m comment --comment \"ftpwall: base icmpv6 neighbour discovery\" -j ACCEPT",
        "-A INPUT -s fe80::/10 -p ipv6-icmp -m icmp6 --icmpv6-type 130 -m comment --comment \"ftpwall: base icmpv6 mld\" -j ACCEPT",
        "-A INPUT -s fe80::/10 -p ipv6-icmp -m icmp6 --icmpv6-type 143 -m comment --comment \"ftpwall: base icmpv6 mld\" -j ACCEPT",
        "-A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 128 -m comment --comment \"ftpwall: base icmpv6 echo-request\" -j ACCEPT"})
    EXPECT_TRUE(has(six, std::string(line) + "\n")) << line;
  // No blanket ICMPv6 accept: only the listed types.
  EXPECT_FALSE(has(six, "-A INPUT -p ipv6-icmp -m comment"));
  // The ICMPv6 accepts come right after ESTABLISHED, before the final REJECT.
  EXPECT_LT(six.find("ftpwall: base established"), six.find("--icmpv6-type 1 "));
  EXPECT_LT(six.find("--icmpv6-type 128"), six.find("ftpwall: base reject"));

  RulesetSpec s = server(Families::v6);
  s.stock = false;  // like IPv4's icmp accept, echo-request is a stock rule; the essentials stay
  const std::string bare = gen(s).text;
  EXPECT_FALSE(has(bare, "--icmpv6-type 128"));
  EXPECT_TRUE(has(bare, "--icmpv6-type 135 -m hl --hl-eq 255"));
  EXPECT_TRUE(has(bare, "--icmpv6-type 2 -m comment"));
  EXPECT_TRUE(has(bare, "(--stock no: no echo-request)"));
  // IPv4 with --stock no: no ICMP accept at all, as before.
  s.family = Families::v4;
  EXPECT_FALSE(has(rule_lines(gen(s).text), "icmp -m comment"));
}

TEST(Icmpv6, GatewayForwardsTheErrors) {
  RulesetSpec s;
  s.family = Families::v6;
  s.role = Role::gateway;
  s.internal_servers = {addr("2001:db8:1::10")};
  const std::string out = gen(s).text;
  EXPECT_TRUE(has(out, "-A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type 2 -m comment --comment \"ftpwall: base icmpv6 errors\" -j ACCEPT\n"));
  EXPECT_FALSE(has(out, "-A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type 135"));  // ND is link-local, never forwarded
  s.format = Format::nft;
  const std::string nft = gen(s).text;
  const auto fwd = nft.find("\tchain forward {");
  ASSERT_NE(fwd, std::string::npos);
  EXPECT_NE(nft.find("icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept", fwd),
            std::string::npos);
}

TEST(Icmpv6, MergeKeepsTheFilesOwnIcmpAccept) {
  // The stock CentOS 7 ip6tables accepts every ICMPv6: the ICMPv6 lines are stock, not inserted.
  const std::string stock =
      "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT\n-A INPUT -p ipv6-icmp -j ACCEPT\n-A INPUT -i lo -j ACCEPT\n"
      "-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT\n"
      "-A INPUT -j REJECT --reject-with icmp6-adm-prohibited\n-A FORWARD -j REJECT --reject-with icmp6-adm-prohibited\nCOMMIT\n";
  auto o = generate(server(Families::v6, Helper::none), stock);
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_FALSE(has(o->text, "icmpv6-type"));
  EXPECT_TRUE(has(o->text, "-A INPUT -p tcp -m conntrack --ctstate NEW -m tcp --dport 61000:61100 -m comment --comment \"ftpwall: ftp passive 61000-61100\" -j ACCEPT\n-A INPUT -j REJECT --reject-with icmp6-adm-prohibited\n"))
      << o->text;
  EXPECT_EQ(o->files.size(), 1u);
  EXPECT_EQ(o->files.front().name, "ip6tables");
}

// ---- addresses per family ----

TEST(Family, AllowFromGoesToItsFamily) {
  RulesetSpec s = server(Families::both, Helper::none);
  s.allow_from = {net("198.51.100.0/24"), net("2001:db8:1::/48")};
  const Output o = gen(s);
  ASSERT_EQ(o.files.size(), 2u);
  EXPECT_TRUE(has(o.files[0].text, "-A INPUT -s 198.51.100.0/24 -p tcp -m conntrack --ctstate NEW -m tcp --dport 21 "));
  EXPECT_FALSE(has(rule_lines(o.files[0].text), "2001:db8"));
  EXPECT_TRUE(has(o.files[1].text, "-A INPUT -s 2001:db8:1::/48 -p tcp -m conntrack --ctstate NEW -m tcp --dport 61000:61100 "));
  EXPECT_FALSE(has(rule_lines(o.files[1].text), "198.51.100"));
  EXPECT_TRUE(o.warnings.empty());
}

TEST(Family, AllowFromOfOneFamilyLeavesTheOtherClosedWithAWarning) {
  RulesetSpec s = server(Families::both, Helper::kernel);
  s.allow_from = {net("198.51.100.0/24")};
  const Output o = gen(s);
  ASSERT_EQ(o.warnings.size(), 1u);
  EXPECT_EQ(o.warnings[0],
            "--allow-from names no IPv6 network: no IPv6 client may connect (the IPv6 part opens no FTP port); add an IPv6 "
            "--allow-from or use --family 4");
  EXPECT_FALSE(has(o.files[1].text, "ftpwall: ftp control"));
  EXPECT_FALSE(has(o.files[1].text, "ftpwall: ftp data related"));
  EXPECT_TRUE(has(o.files[0].text, "ftpwall: ftp data related"));
}

TEST(Family, GatewayRoutesIpv6AndNatsIpv4) {
  RulesetSpec s;
  s.family = Families::both;
  s.role = Role::gateway;
  s.interface = "eth0";
  s.public_addresses = {addr("203.0.113.1")};
  s.internal_servers = {addr("10.0.0.2"), addr("2001:db8:1::10")};
  const Output o = gen(s);
  ASSERT_EQ(o.files.size(), 2u);
  EXPECT_TRUE(has(o.files[0].text, "-j DNAT --to-destination 10.0.0.2"));
  EXPECT_TRUE(has(o.files[0].text, "-A FORWARD -d 10.0.0.2/32 -i eth0 -p tcp"));
  EXPECT_FALSE(has(o.files[1].text, "*nat"));
  EXPECT_TRUE(has(o.files[1].text, "-A PREROUTING -d 2001:db8:1::10/128 -i eth0 -p tcp -m tcp --dport 21 -m comment --comment \"ftpwall: ftp helper 21\" -j CT --helper ftp"));
  EXPECT_TRUE(has(o.files[1].text, "-A FORWARD -d 2001:db8:1::10/128 -i eth0 -p tcp -m conntrack --ctstate NEW -m tcp --dport 21 "));
  EXPECT_TRUE(has(o.files[1].text, "-A FORWARD -s 2001:db8:1::10/128 -p tcp -m conntrack --ctstate RELATED -m helper --helper ftp"));
  // The notes of each file: its own IPTABLES_MODULES line.
  EXPECT_TRUE(has(o.files[0].text, "IPTABLES_MODULES=\"nf_conntrack_ftp nf_nat_ftp\" in /etc/sysconfig/iptables-config"));
  EXPECT_FALSE(has(o.files[0].text, "ip6tables-config"));
  EXPECT_TRUE(has(o.files[1].text, "IP6TABLES_MODULES=\"nf_conntrack_ftp\" in /etc/sysconfig/ip6tables-config"));
  EXPECT_FALSE(has(o.files[1].text, "nf_nat_ftp"));
}

TEST(Family, Ipv6InsideNetworkIsRoutedWithAWarning) {
  RulesetSpec s;
  s.family = Families::v6;
  s.role = Role::gateway;
  s.inside_networks = {net("2001:db8:10::/64")};
  const Output o = gen(s);
  ASSERT_EQ(o.warnings.size(), 1u);
  EXPECT_EQ(o.warnings[0], "--inside-network 2001:db8:10::/64: IPv6 clients are routed, not masqueraded (NAT66 is out of scope)");
  EXPECT_FALSE(has(o.text, "MASQUERADE"));
  EXPECT_FALSE(has(o.text, "*nat"));
  EXPECT_TRUE(has(o.text, "-A FORWARD -s 2001:db8:10::/64 -p tcp -m conntrack --ctstate NEW -m tcp --dport 21 -m comment --comment \"ftpwall: ftp control 21 from inside\" -j ACCEPT"));
  EXPECT_TRUE(has(o.text, "-A FORWARD -d 2001:db8:10::/64 -p tcp -m conntrack --ctstate RELATED -m helper --helper ftp"));
}

// ---- refusals: one line each ----

TEST(Family, Refusals) {
  struct Case {
    RulesetSpec spec;
    std::string message;
  };
  std::vector<Case> cases;
  {
    RulesetSpec s = server(Families::v4);
    s.allow_from = {net("2001:db8::/32")};
    cases.push_back({s, "--allow-from 2001:db8:: is IPv6 but --family is 4"});
  }
  {
    RulesetSpec s = server(Families::v6);
    s.allow_from = {net("192.0.2.0/24")};
    cases.push_back({s, "--allow-from 192.0.2.0 is IPv4 but --family is 6"});
  }
  {
    RulesetSpec s = server(Families::v6);
    s.public_addresses = {addr("2001:db8::1")};
    cases.push_back({s, "--public-address 2001:db8::1: a server's public address is what its 227 replies announce, and 227 "
                        "carries only IPv4 (IPv6 sessions use EPSV, which names no address); give an IPv4 address or none"});
  }
  {
    RulesetSpec s = server(Families::v6);
    s.role = Role::gateway;
    s.public_addresses = {addr("2001:db8::1")};
    s.internal_servers = {addr("2001:db8:1::10")};
    cases.push_back({s, "--public-address 2001:db8::1 with --internal-server 2001:db8:1::10 is NAT66, which ftpwall does not do "
                        "(IPv6 is routed): drop the IPv6 --public-address"});
  }
  {
    RulesetSpec s = server(Families::v6);
    s.role = Role::gateway;
    s.public_addresses = {addr("2001:db8::1")};
    s.inside_networks = {net("2001:db8:10::/64")};
    cases.push_back({s, "is NAT66 (SNAT), which ftpwall does not do"});
  }
  {
    RulesetSpec s = server(Families::v6, Helper::none);
    s.role = Role::gateway;
    s.inside_networks = {net("2001:db8:10::/64")};
    cases.push_back({s, "--helper none --active yes with --inside-network 2001:db8:10::/64: active mode of the clients behind a "
                        "gateway needs a helper"});
  }
  {
    RulesetSpec s = server(Families::both);
    s.role = Role::gateway;
    s.public_addresses = {addr("203.0.113.1")};
    s.internal_servers = {addr("10.0.0.2")};
    cases.push_back({s, "--family both --role gateway: no IPv6 --internal-server or --inside-network given; each family needs its "
                        "own (use --family 4 for one family only)"});
  }
  {
    RulesetSpec s = server(Families::both);
    s.role = Role::gateway;
    s.internal_servers = {addr("198.51.100.10"), addr("192.0.2.10")};
    cases.push_back({s, "--internal-server given twice for IPv4 (198.51.100.10 and 192.0.2.10): one per family"});
  }
  {
    RulesetSpec s = server(Families::v4);
    s.public_addresses = {addr("203.0.113.1"), addr("203.0.113.2")};
    cases.push_back({s, "--public-address given twice for IPv4 (203.0.113.1 and 203.0.113.2): one per family (two with --family "
                        "both, one IPv4 and one IPv6)"});
  }
  {
    RulesetSpec s = server(Families::both);
    s.announce_public = AnnouncePublic::yes;
    s.public_addresses = {addr("2001:db8::1")};
    cases.push_back({s, "--announce-public yes needs an IPv4 --public-address (227 carries only IPv4)"});
  }
  for (const auto& c : cases) {
    const std::string e = error_of(c.spec);
    EXPECT_NE(e.find(c.message), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  auto m = generate(server(Families::both), std::string_view("*filter\nCOMMIT\n"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message,
            "--merge edits one file: run it with --family 4 on /etc/sysconfig/iptables and with --family 6 on /etc/sysconfig/ip6tables");
}

// ---- --helper ftpwalld for IPv6 ----

TEST(Family, FtpwalldAdminHooksSteerIpv6LikeIpv4) {
  RulesetSpec s = server(Families::both, Helper::ftpwalld);
  s.role = Role::gateway;
  s.public_addresses = {addr("203.0.113.1")};
  s.internal_servers = {addr("10.0.0.2"), addr("2001:db8:1::10")};
  s.hooks = Hooks::admin;
  const Output o = gen(s);
  ASSERT_EQ(o.files.size(), 2u);
  const std::string steer =
      "-A FORWARD -p tcp -m conntrack --ctorigdstport 21 -m connmark ! --mark 0x10000000/0x10000000 -m comment --comment "
      "\"ftpwall: ftp ftpwalld steering 21\" -j NFQUEUE --queue-num 0\n";
  for (const auto& f : o.files) {
    EXPECT_TRUE(has(f.text, steer)) << f.text;
    EXPECT_TRUE(has(f.text, ":FTPWALL-ACCEPT - [0:0]\n"));
    EXPECT_TRUE(has(f.text, "-A FORWARD -m comment --comment \"ftpwall: ftp ftpwalld openings\" -j FTPWALL-ACCEPT\n"));
  }
  EXPECT_TRUE(has(o.files[0].text, ":FTPWALL-DNAT - [0:0]"));
  EXPECT_FALSE(has(rule_lines(o.files[1].text), "FTPWALL-DNAT"));  // no NAT66: no nat chains in ip6tables
  EXPECT_FALSE(has(o.files[1].text, "*nat"));

  RulesetSpec srv = server(Families::v6, Helper::ftpwalld);
  srv.hooks = Hooks::admin;
  const std::string six = gen(srv).text;
  EXPECT_TRUE(has(six, "-A INPUT -p tcp -m conntrack --ctorigdstport 21 --ctdir ORIGINAL "));
  EXPECT_TRUE(has(six, "-A OUTPUT -p tcp -m conntrack --ctorigdstport 21 --ctdir REPLY "));
  EXPECT_TRUE(has(six, "-A OUTPUT -m comment --comment \"ftpwall: ftp ftpwalld openings\" -j FTPWALL-ACCEPT"));
}

TEST(Family, FtpwalldNftOpeningsLineServesBothFamilies) {
  const std::string out = gen(server(Families::both, Helper::ftpwalld, Format::nft)).text;
  EXPECT_EQ(count(out, "meta mark & 0x20000000 == 0x20000000 accept comment \"ftpwall openings\""), 1u);
  EXPECT_TRUE(has(out, "policy drop;"));
  EXPECT_TRUE(has(out, "icmpv6 type { nd-router-solicit"));  // policy drop: ND must be accepted
}

// ---- server snippets per family ----

TEST(Family, ServerSnippetsMatchTheFamily) {
  auto snippet = [](ServerSoftware sw, Families f) {
    RulesetSpec s = server(f);
    s.server = sw;
    return gen(s).server_config;
  };
  EXPECT_FALSE(has(snippet(ServerSoftware::vsftpd, Families::v4), "listen"));  // as before
  for (Families f : {Families::v6, Families::both}) {
    EXPECT_TRUE(has(snippet(ServerSoftware::vsftpd, f), "\nlisten=NO\nlisten_ipv6=YES\n"));
    EXPECT_TRUE(has(snippet(ServerSoftware::proftpd, f), "\nUseIPv6 on\n"));
  }
  EXPECT_FALSE(has(snippet(ServerSoftware::proftpd, Families::v4), "UseIPv6"));
  EXPECT_TRUE(has(snippet(ServerSoftware::pure_ftpd, Families::v6), "\nIPV6Only yes\n"));
  EXPECT_FALSE(has(snippet(ServerSoftware::pure_ftpd, Families::both), "\nIPV6Only"));
  EXPECT_FALSE(has(snippet(ServerSoftware::pure_ftpd, Families::both), "\nIPV4Only"));
  // Behind 1:1 NAT the announced address is IPv4 (227), also with --family both.
  RulesetSpec s = server(Families::both, Helper::none);
  s.server = ServerSoftware::vsftpd;
  s.public_addresses = {addr("203.0.113.1")};
  EXPECT_TRUE(has(gen(s).server_config, "pasv_address=203.0.113.1\n"));
}

// ---- the promises hold for every family ----

TEST(Family, PromisesOfEveryProfile) {
  for (Families f : all_families)
    for (Helper h : all_helpers) {
      RulesetSpec a = server(f, h);
      if (f != Families::v6) a.allow_from.push_back(net("198.51.100.0/24"));
      if (f != Families::v4) a.allow_from.push_back(net("2001:db8:1::/48"));
      RulesetSpec g = server(f, h);
      g.role = Role::gateway;
      if (f != Families::v6) {
        g.public_addresses = {addr("203.0.113.1")};
        g.internal_servers.push_back(addr("10.0.0.2"));
      }
      if (f != Families::v4) g.internal_servers.push_back(addr("2001:db8:1::10"));
      for (const RulesetSpec& s : {server(f, h), a, g}) {
        auto p = plan(s);
        ASSERT_TRUE(p.ok()) << p.error().message;
        const Ruleset rs = build_ruleset(*p);
        for (const auto& r : rs.rules) {
          EXPECT_TRUE(r.tag.starts_with("ftp ") || r.tag.starts_with("base ")) << r.tag;
          for (const auto& pr : r.match.dports)
            if (r.action == Action::accept || r.action == Action::dnat) {
              EXPECT_FALSE(pr.contains(20)) << r.tag;
            }
          if (r.match.ct & ct_related) {
            EXPECT_TRUE(r.match.helper_ftp) << r.tag;
          }
          // A rule with an address is its address's family.
          if (r.match.src && r.family) {
            EXPECT_EQ(*r.family, r.match.src->addr.family) << r.tag;
          }
          if (r.action == Action::dnat || r.action == Action::snat || r.action == Action::masquerade) {
            EXPECT_EQ(r.family, std::optional<Family>(Family::v4)) << r.tag;
          }
          if (r.match.proto == Proto::icmpv6) {
            EXPECT_EQ(r.family, std::optional<Family>(Family::v6)) << r.tag;
          }
        }
        // The final REJECT closes INPUT in every family's file, last.
        for (Family fam : members(f)) {
          const auto in = rs.only(fam).in(Table::filter, "INPUT");
          ASSERT_FALSE(in.empty());
          EXPECT_EQ(in.back()->action, Action::reject);
        }
        EXPECT_EQ(emit_nft(rs), emit_nft(build_ruleset(*plan(s))));  // deterministic
      }
    }
}

}  // namespace
