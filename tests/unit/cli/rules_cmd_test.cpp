// SPDX-License-Identifier: GPL-2.0-or-later
// `ftpwall rules` option parsing: defaults, --help/--version, --output, and every bad input as one
// line "ftpwall: error: ..." with exit status 2.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string>
#include <vector>

#include <unistd.h>

#include "test_util.hpp"

namespace {

using ftpwall::cli::test::count_lines;
using ftpwall::cli::test::CliRun;
using ftpwall::cli::test::run_ftpwall;
using ftpwall::cli::test::slurp;

std::vector<std::string> rules(std::initializer_list<const char*> more) {
  std::vector<std::string> a{"rules"};
  for (const char* m : more) a.emplace_back(m);
  return a;
}

TEST(RulesCmd, DefaultsAreServerKernelIptablesSaveOnPort21) {
  CliRun r = run_ftpwall(rules({}));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("*raw\n"), std::string::npos);
  EXPECT_NE(r.out.find("-A PREROUTING -p tcp -m tcp --dport 21 -m comment --comment \"ftpwall: ftp helper 21\" -j CT --helper ftp"),
            std::string::npos);
  EXPECT_NE(r.out.find("-m helper --helper ftp -m tcp --dport 1024:65535"), std::string::npos);
  EXPECT_NE(r.out.find("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"), std::string::npos);
  EXPECT_EQ(r.err, "");
}

TEST(RulesCmd, RepeatedControlPortsEachGetHelperAndAccept) {
  CliRun r = run_ftpwall(rules({"--control-port", "21", "--control-port", "2121"}));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("--dport 2121 -m comment --comment \"ftpwall: ftp helper 2121\" -j CT --helper ftp"), std::string::npos);
  EXPECT_NE(r.out.find("--dport 2121 -m comment --comment \"ftpwall: ftp control 2121\" -j ACCEPT"), std::string::npos);
  EXPECT_NE(r.out.find("ftpwall: ftp control 21\""), std::string::npos);
}

TEST(RulesCmd, HelpStatesEveryDefault) {
  CliRun r = run_ftpwall(rules({"--help"}));
  ASSERT_EQ(r.status, 0);
  for (const char* opt : {"--role", "--helper", "--format", "--family", "--control-port", "--passive-ports", "--sessions",
                          "--transfers-per-second", "--active", "--allow-from", "--interface", "--public-address",
                          "--internal-server", "--inside-network", "--force", "--hooks", "--queue-num", "--queue-bypass",
                          "--stock", "--ssh-port", "--server", "--server-output", "--announce-public", "--output", "--merge",
                          "--check"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
  for (const char* def : {"(default: server)", "(default: kernel)", "(default: iptables-save)", "(default: 4)", "(default: 21)",
                          "(default: yes)", "(default: daemon)", "(default: 0)", "(default: 22)", "(default: auto)",
                          "(default: stdout)"})
    EXPECT_NE(r.out.find(def), std::string::npos) << def;
}

TEST(RulesCmd, Version) {
  CliRun r = run_ftpwall({"--version"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, "ftpwall 0.1.0\n");
}

TEST(RulesCmd, OutputFileGetsTheRulesetAndStdoutStaysEmpty) {
  char path[] = "/tmp/ftpwall-rules-test-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  CliRun r = run_ftpwall(rules({"--passive-ports", "61000-61100", "--helper", "none", "--output", path}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(slurp(path).find("--dport 61000:61100"), std::string::npos);
  std::remove(path);
}

TEST(RulesCmd, ServerOutputDashPrintsOnlyTheSnippet) {
  CliRun r = run_ftpwall(rules({"--passive-ports", "61000-61100", "--server", "vsftpd", "--server-output", "-"}));
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("pasv_min_port=61000\npasv_max_port=61100\n"), std::string::npos);
  EXPECT_EQ(r.out.find("*filter"), std::string::npos);
}

TEST(RulesCmd, NeverOpensPort20) {
  for (auto helper : {"kernel", "none", "ftpwalld"})
    for (auto role : {std::vector<const char*>{"--role", "server"},
                      std::vector<const char*>{"--role", "gateway", "--public-address", "203.0.113.1", "--internal-server", "10.0.0.2"}}) {
      std::vector<std::string> a{"rules", "--helper", helper, "--passive-ports", "61000-61100"};
      a.insert(a.end(), role.begin(), role.end());
      CliRun r = run_ftpwall(a);
      ASSERT_EQ(r.status, 0) << r.err;
      EXPECT_EQ(r.out.find("--dport 20 "), std::string::npos) << helper;
      EXPECT_EQ(r.out.find("--sport 20"), std::string::npos) << helper;
    }
}

// ---- warnings: exit 0, the ruleset on stdout, one warning line on stderr ----

TEST(RulesCmd, WarnsForARangeInsideTheEphemeralRange) {
  CliRun r = run_ftpwall(rules({"--passive-ports", "50000-50100"}));
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.err.rfind("ftpwall: warning: --passive-ports 50000-50100 lies inside the ephemeral range 32768-60999", 0), 0u) << r.err;
  EXPECT_EQ(count_lines(r.err), 1u);
  EXPECT_NE(r.out.find("COMMIT"), std::string::npos);
}

TEST(RulesCmd, WarnsForARangeBelowTheSizingRule) {
  CliRun r = run_ftpwall(rules({"--passive-ports", "61000-61049"}));
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.err.find("ftpwall: warning: --passive-ports has 50 ports, below the sizing rule's 100"), std::string::npos) << r.err;
  CliRun s = run_ftpwall(rules({"--passive-ports", "61000-61299", "--sessions", "200"}));
  EXPECT_NE(s.err.find("has 300 ports, below the sizing rule's 400 (2 x 200 sessions"), std::string::npos) << s.err;
  CliRun ok = run_ftpwall(rules({"--passive-ports", "61000-61399", "--sessions", "200"}));
  EXPECT_EQ(ok.err, "");
}

TEST(RulesCmd, AutoSizingSaysWhy) {
  CliRun r = run_ftpwall(rules({"--helper", "none", "--passive-ports", "auto", "--sessions", "50", "--role", "gateway", "--public-address",
                             "203.0.113.1", "--internal-server", "10.0.0.2", "--transfers-per-second", "2"}));
  ASSERT_EQ(r.status, 0) << r.err;
  // 50 + 2 x 120 = 290 on a gateway (conntrack TIME_WAIT), above 2 x 50 and the 100 floor.
  EXPECT_NE(r.out.find("--dport 61000:61289"), std::string::npos);
  EXPECT_NE(r.out.find("120 s in TIME_WAIT"), std::string::npos);
}

// ---- bad input: exactly one line "ftpwall: error: ...", exit 2, nothing on stdout ----

struct BadInput {
  std::vector<std::string> args;
  std::string message;  // a substring of the one error line
};

// Short, ctest-friendly parameter names: the options, joined.
void PrintTo(const BadInput& b, std::ostream* os) {
  std::string s;
  for (const auto& a : b.args) s += (s.empty() ? "" : "_") + a;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  *os << (s.empty() ? std::string("no_args") : s);
}

class RulesCmdBadInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(RulesCmdBadInput, OneLineAndExitStatus2) {
  const BadInput& b = GetParam();
  CliRun r = run_ftpwall(b.args);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_EQ(r.err.rfind("ftpwall: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(b.message), std::string::npos) << r.err;
}

const std::string gw_args[] = {"--role", "gateway", "--public-address", "203.0.113.1", "--internal-server", "10.0.0.2"};

INSTANTIATE_TEST_SUITE_P(
    All, RulesCmdBadInput,
    ::testing::Values(
        BadInput{{"rules", "--passive-ports", "61100-61000"}, "port range 61100-61000 is reversed"},
        BadInput{{"rules", "--passive-ports", "61000-61100", "--passive-ports", "61050-61200"}, "61000-61100 and 61050-61200 overlap"},
        BadInput{{"rules", "--passive-ports", "2000-2200", "--control-port", "2121"}, "2000-2200 contains control port 2121"},
        BadInput{{"rules", "--passive-ports", "900-1100"}, "900-1100 reaches below 1024 (privileged ports); add --force"},
        BadInput{{"rules", "--passive-ports", "18-20", "--force"}, "contains port 20"},
        BadInput{{"rules", "--passive-ports", "6x000"}, "is not a port range"},
        BadInput{{"rules", "--passive-ports", "0-100"}, "port 0 is out of range"},
        BadInput{{"rules", "--control-port", "20"}, "port 20 is FTP's active data source port"},
        BadInput{{"rules", "--control-port", "70000"}, "--control-port 70000 is out of range"},
        BadInput{{"rules", "--family", "6", "--allow-from", "198.51.100.0/24"}, "--allow-from 198.51.100.0 is IPv4 but --family is 6"},
        BadInput{{"rules", "--public-address", "2001:db8::1"}, "--public-address 2001:db8::1 is IPv6 but --family is 4"},
        BadInput{{"rules", "--family", "5"}, "--family: '5' is not one of 4, 6, both"},
        BadInput{{"rules", "--family", "4", "--allow-from", "2001:db8::/32"}, "--allow-from 2001:db8:: is IPv6 but --family is 4"},
        BadInput{{"rules", "--family", "6", "--public-address", "2001:db8::1"}, "227 carries only IPv4"},
        BadInput{{"rules", "--family", "6", "--role", "gateway", "--public-address", "2001:db8::1", "--internal-server", "2001:db8:1::10"},
                 "is NAT66, which ftpwall does not do (IPv6 is routed)"},
        BadInput{{"rules", "--family", "both", "--role", "gateway", "--public-address", "203.0.113.1", "--internal-server", "10.0.0.2"},
                 "--family both --role gateway: no IPv6 --internal-server or --inside-network given"},
        BadInput{{"rules", "--family", "both", "--role", "gateway", "--internal-server", "2001:db8:1::10", "--internal-server",
                  "2001:db8:1::11"},
                 "--internal-server given twice for IPv6 (2001:db8:1::10 and 2001:db8:1::11): one per family"},
        BadInput{{"rules", "--family", "both", "-o", "/tmp/ftpwall-never-written"},
                 "--family both --format iptables-save writes two files (iptables and ip6tables): use --output-dir DIR"},
        BadInput{{"rules", "--format", "nft", "--output-dir", "/tmp"}, "--output-dir writes the iptables-save files"},
        BadInput{{"rules", "--output-dir", "/tmp", "-o", "/tmp/x"}, "--output and --output-dir exclude each other"},
        BadInput{{"rules", "--family", "both", "--merge", "/etc/hostname"}, "--merge edits one file"},
        BadInput{{"rules", "--role", "router"}, "--role: 'router' is not one of server, gateway"},
        BadInput{{"rules", "--helper", "magic"}, "--helper: 'magic' is not one of kernel, ftpwalld, none"},
        BadInput{{"rules", "--format", "pf"}, "--format: 'pf' is not one of"},
        BadInput{{"rules", "--allow-from", "198.51.100.1/24"}, "host bits set"},
        BadInput{{"rules", "--public-address", "203.0.113.300"}, "--public-address: not an IPv4 address"},
        BadInput{{"rules", "--role", "gateway"}, "--role gateway needs --internal-server A"},
        BadInput{{"rules", "--role", "gateway", "--internal-server", "10.0.0.2"}, "10.0.0.2 is a private address: give --public-address"},
        BadInput{{"rules", "--role", "gateway", "--inside-network", "10.1.0.0/24"}, "--inside-network needs --interface IF"},
        BadInput{{"rules", "--role", "gateway", "--inside-network", "10.1.0.0/24", "--interface", "eth0", "--helper", "none"},
                 "active mode behind client NAT needs a helper"},
        BadInput{{"rules", "--internal-server", "10.0.0.2"}, "--internal-server needs --role gateway"},
        BadInput{{"rules", "--role", "gateway", "--inside-network", "10.1.0.0/24", "--interface", "eth0", "--allow-from", "198.51.100.0/24"},
                 "--allow-from restricts the outside clients of --internal-server"},
        BadInput{{"rules", "--helper", "ftpwalld", "--format", "nft", "--hooks", "admin"},
                 "--hooks admin declares ftpwalld's iptables chains and does not apply to --format nft"},
        BadInput{{"rules", "--helper", "ftpwalld", "--format", "nft", "--accept-mark", "0"}, "--accept-mark 0: ftpwalld would mark"},
        BadInput{{"rules", "--hooks", "admin"}, "--hooks applies only to --helper ftpwalld"},
        BadInput{{"rules", "--queue-bypass"}, "apply only to --helper ftpwalld"},
        BadInput{{"rules", "--helper", "none"}, "--helper none opens the passive range statically"},
        BadInput{{"rules", "--passive-ports", "auto"}, "--passive-ports auto needs --sessions N"},
        BadInput{{"rules", "--transfers-per-second", "3"}, "--transfers-per-second needs --sessions N"},
        BadInput{{"rules", "--server", "vsftpd"}, "--server vsftpd takes exactly one passive range"},
        BadInput{{"rules", "--server-output", "-"}, "--server-output needs --server"},
        BadInput{{"rules", "--role", "gateway", "--public-address", "203.0.113.1", "--internal-server", "10.0.0.2", "--format", "firewalld"},
                 "--format firewalld supports only --role server"},
        BadInput{{"rules", "--format", "nft", "--merge", "/etc/hostname"}, "--merge works on /etc/sysconfig/iptables files"},
        BadInput{{"rules", "--merge", "/nonexistent/ftpwall/iptables"}, "--merge: cannot read /nonexistent/ftpwall/iptables"},
        BadInput{{"rules", "--interface", "eth0; rm -rf /"}, "is not an interface name"},
        BadInput{{"rules", "--announce-public", "yes"}, "--announce-public yes needs --public-address"},
        BadInput{{"rules", "--bogus"}, "--bogus"},
        BadInput{{"rules", "--sessions", "many"}, "--sessions"},
        BadInput{{"rules", "--role"}, "--role"},
        BadInput{{"frobnicate"}, "unknown command 'frobnicate'"},
        BadInput{{}, "subcommand"}));

}  // namespace

namespace {
// --stock no leaves out the stock accepts, never the final REJECT: a gateway's FORWARD must not be
// left open (found by the bench: an inside client reached a port nothing allowed).
TEST(RulesCmd, StockNoKeepsTheFinalReject) {
  for (auto args : {rules({"--role", "gateway", "--helper", "kernel", "--interface", "eth1", "--inside-network",
                           "192.168.1.0/25", "--stock", "no"}),
                    rules({"--role", "server", "--helper", "none", "--passive-ports", "61000-61099", "--stock", "no"})}) {
    CliRun r = run_ftpwall(args);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("-A FORWARD -m comment --comment \"ftpwall: base reject\" -j REJECT"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("-A INPUT -m comment --comment \"ftpwall: base reject\" -j REJECT"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("base ssh"), std::string::npos);
    EXPECT_EQ(r.out.find("base loopback"), std::string::npos);
  }
}
}  // namespace

namespace {
// --family both --format iptables-save: --output-dir writes the CentOS pair, stdout shows both
// after their banners; one family writes its own file only.
TEST(RulesCmd, OutputDirWritesOneFilePerFamily) {
  char dir[] = "/tmp/ftpwall-rules-dir-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string d = dir;
  CliRun r = run_ftpwall(rules({"--family", "both", "--allow-from", "192.0.2.0/24", "--allow-from", "2001:db8::/32",
                                "--output-dir", dir}));
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, "");
  const std::string v4 = slurp(d + "/iptables"), v6 = slurp(d + "/ip6tables");
  EXPECT_NE(v4.find("-A INPUT -s 192.0.2.0/24 -p tcp"), std::string::npos);
  EXPECT_EQ(v4.find("-A INPUT -s 2001:db8::/32"), std::string::npos);
  EXPECT_NE(v6.find("-A INPUT -s 2001:db8::/32 -p tcp"), std::string::npos);
  EXPECT_NE(v6.find("--icmpv6-type 135 -m hl --hl-eq 255"), std::string::npos);
  EXPECT_EQ(v4.find("# ===="), std::string::npos);  // each file alone, loadable as it is
  CliRun both = run_ftpwall(rules({"--family", "both", "--allow-from", "192.0.2.0/24", "--allow-from", "2001:db8::/32"}));
  ASSERT_EQ(both.status, 0) << both.err;
  const auto b4 = both.out.find("# ==== /etc/sysconfig/iptables ("), b6 = both.out.find("# ==== /etc/sysconfig/ip6tables (");
  ASSERT_NE(b4, std::string::npos);
  ASSERT_NE(b6, std::string::npos);
  // The same files but for the command line in their headers (without --output-dir).
  auto without_command = [](std::string t) {
    const auto at = t.find("\n#   ftpwall ");
    return at == std::string::npos ? t : t.erase(at, t.find('\n', at + 1) - at);
  };
  EXPECT_EQ(without_command(both.out.substr(both.out.find('\n', b4) + 1, b6 - both.out.find('\n', b4) - 1)), without_command(v4));
  EXPECT_EQ(without_command(both.out.substr(both.out.find('\n', b6) + 1)), without_command(v6));
  std::remove((d + "/iptables").c_str());
  std::remove((d + "/ip6tables").c_str());
  CliRun six = run_ftpwall(rules({"--family", "6", "--output-dir", dir}));
  ASSERT_EQ(six.status, 0) << six.err;
  EXPECT_NE(slurp(d + "/ip6tables").find("icmp6-adm-prohibited"), std::string::npos);
  EXPECT_EQ(slurp(d + "/iptables"), "");  // not written
  std::remove((d + "/ip6tables").c_str());
  rmdir(dir);
}

// The server snippet goes into every file of the pair; --server-output keeps it apart.
TEST(RulesCmd, FamilyBothSnippetInEachFile) {
  CliRun r = run_ftpwall(rules({"--family", "both", "--passive-ports", "61000-61100", "--server", "vsftpd"}));
  ASSERT_EQ(r.status, 0) << r.err;
  std::size_t n = 0;
  for (auto at = r.out.find("# listen_ipv6=YES\n"); at != std::string::npos; at = r.out.find("# listen_ipv6=YES\n", at + 1)) ++n;
  EXPECT_EQ(n, 2u) << r.out;
  CliRun s = run_ftpwall(rules({"--family", "6", "--passive-ports", "61000-61100", "--server", "proftpd", "--server-output", "-"}));
  ASSERT_EQ(s.status, 0) << s.err;
  EXPECT_NE(s.out.find("UseIPv6 on\nPassivePorts 61000 61100\n"), std::string::npos) << s.out;
}

// --check checks each file of the pair with its own tool (root only; otherwise it says why not).
TEST(RulesCmd, CheckBothFamilies) {
  CliRun r = run_ftpwall(rules({"--family", "both", "--check"}));
  ASSERT_EQ(r.status, 0) << r.err;
  if (r.err.find("did not check") != std::string::npos) GTEST_SKIP() << r.err;
  EXPECT_NE(r.err.find("--check (iptables): iptables-legacy-restore --test accepted the output"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--check (ip6tables): ip6tables-legacy-restore --test accepted the output"), std::string::npos) << r.err;
  CliRun n = run_ftpwall(rules({"--family", "both", "--format", "nft", "--helper", "ftpwalld", "--check"}));
  ASSERT_EQ(n.status, 0) << n.err;
  EXPECT_NE(n.err.find("nft -c -f accepted the output"), std::string::npos) << n.err;
}
}  // namespace
