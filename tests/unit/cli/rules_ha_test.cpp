// SPDX-License-Identifier: GPL-2.0-or-later
// `ftpwall rules --ha` (issue 15) on the command line: the options, --ha-output-dir (three files,
// the notify script executable), the bad inputs as one line with exit status 2, and --check of
// the HA rules by the real tools (root; skipped otherwise).
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

using ftpwall::cli::test::count_lines;
using ftpwall::cli::test::CliRun;
using ftpwall::cli::test::run_ftpwall;
using ftpwall::cli::test::slurp;

// The bench's g1 (../shared/ha-in-netns.md).
std::vector<std::string> ha_rules(std::initializer_list<const char*> more = {}) {
  std::vector<std::string> a{"rules",         "--role",           "gateway",      "--public-address", "198.51.100.1",
                             "--internal-server", "10.0.0.10",   "--interface",  "eth0",             "--ha",
                             "--inside-vip",  "10.0.0.1",        "--inside-interface", "eth1",       "--ha-self",
                             "192.168.99.1",  "--ha-peer",       "192.168.99.2", "--ha-sync-interface", "eth2"};
  for (const char* m : more) a.emplace_back(m);
  return a;
}

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/ftpwall-rules-ha-XXXXXX";
    path = ::mkdtemp(t) ? t : "";
  }
  ~TempDir() {
    if (!path.empty()) (void)std::system(("rm -rf '" + path + "'").c_str());
  }
};

unsigned mode_of(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

TEST(RulesHa, OutputDirWritesTheFourFiles) {
  TempDir d;
  std::vector<std::string> args = ha_rules({"--helper", "ftpwalld", "--format", "nft", "--ha-output-dir"});
  args.push_back(d.path);
  CliRun r = run_ftpwall(args);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("ftpwall: base ha drop invalid"), std::string::npos);  // the ruleset still on stdout
  EXPECT_EQ(mode_of(d.path + "/keepalived.conf"), 0644u);
  EXPECT_EQ(mode_of(d.path + "/conntrackd.conf"), 0644u);
  EXPECT_EQ(mode_of(d.path + "/ftpwall-ha-notify"), 0755u);
  EXPECT_EQ(mode_of(d.path + "/99-ftpwall-ha.conf"), 0644u);
  EXPECT_NE(slurp(d.path + "/keepalived.conf").find("vrrp_sync_group FTPWALL {"), std::string::npos);
  EXPECT_NE(slurp(d.path + "/conntrackd.conf").find("Mode FTFW {"), std::string::npos);
  const std::string notify = slurp(d.path + "/ftpwall-ha-notify");
  EXPECT_NE(notify.find("\trun ftpwall takeover"), std::string::npos) << notify;
  // The command to re-run is in each, --ha-output-dir included.
  EXPECT_NE(notify.find("--ha-output-dir " + d.path), std::string::npos);
}

TEST(RulesHa, FtpwalldSocketReachesTakeoverAndStandby) {
  TempDir d;
  std::vector<std::string> args = ha_rules({"--helper", "ftpwalld", "--format", "nft", "--ha-ftpwalld-socket",
                                            "/run/ftpwalld-a/control", "--ha-output-dir"});
  args.push_back(d.path);
  CliRun r = run_ftpwall(args);
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string notify = slurp(d.path + "/ftpwall-ha-notify");
  EXPECT_NE(notify.find("\trun ftpwall takeover --socket /run/ftpwalld-a/control  #"), std::string::npos) << notify;
  std::size_t standby = 0;
  for (std::size_t at = 0; (at = notify.find("\trun ftpwall standby --socket /run/ftpwalld-a/control", at)) != std::string::npos; ++at)
    ++standby;
  EXPECT_EQ(standby, 2u) << notify;  // backup, fault
  CliRun k = run_ftpwall(ha_rules({"--helper", "kernel", "--ha-ftpwalld-socket", "/run/x"}));
  EXPECT_EQ(k.status, 2);
  EXPECT_EQ(k.err, "ftpwall: error: --ha-ftpwalld-socket needs --helper ftpwalld\n");
  CliRun bad = run_ftpwall(ha_rules({"--helper", "ftpwalld", "--format", "nft", "--ha-ftpwalld-socket", "run/x;reboot"}));
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("an absolute path without spaces or shell characters"), std::string::npos) << bad.err;
}

TEST(RulesHa, OptionsReachTheFiles) {
  TempDir d;
  std::vector<std::string> args = ha_rules({"--ha-sync-port", "3781", "--ha-priority", "120", "--ha-vrid", "61", "--ha-advert-int",
                                            "0.2", "--ha-ignore", "198.51.100.11", "--ha-ignore", "10.0.0.11", "--ha-output-dir"});
  args.push_back(d.path);
  CliRun r = run_ftpwall(args);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("-p udp -m udp --dport 3781"), std::string::npos);
  const std::string k = slurp(d.path + "/keepalived.conf"), c = slurp(d.path + "/conntrackd.conf");
  for (const char* want : {"\tpriority 120\n", "\tvirtual_router_id 61\n", "\tvirtual_router_id 62\n", "\tadvert_int 0.2\n"})
    EXPECT_NE(k.find(want), std::string::npos) << want;
  for (const char* want : {"\t\tPort 3781\n", "IPv4_address 198.51.100.11 # --ha-ignore", "IPv4_address 10.0.0.11 # --ha-ignore"})
    EXPECT_NE(c.find(want), std::string::npos) << want;
}

TEST(RulesHa, UnwritableOutputDirIsOneLineExit1) {
  CliRun r = run_ftpwall(ha_rules({"--ha-output-dir", "/nonexistent/ftpwall-ha"}));
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(count_lines(r.err), 1u) << r.err;
  EXPECT_NE(r.err.find("ftpwall: error: --ha-output-dir: cannot write /nonexistent/ftpwall-ha/keepalived.conf"), std::string::npos)
      << r.err;
}

TEST(RulesHa, HelpListsTheOptionsWithTheirDefaults) {
  CliRun r = run_ftpwall({"rules", "--help"});
  ASSERT_EQ(r.status, 0);
  for (const char* opt : {"--ha ", "--inside-vip", "--inside-interface", "--ha-self", "--ha-peer", "--ha-sync-interface",
                          "--ha-sync-port", "--ha-priority", "--ha-vrid", "--ha-advert-int", "--ha-ignore", "--ha-output-dir"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt;
  for (const char* def : {"(default: 3780)", "(default: 51)", "(default: 1)", "High availability"})
    EXPECT_NE(r.out.find(def), std::string::npos) << def;
}

struct Bad {
  std::vector<std::string> args;
  std::string message;
};

TEST(RulesHa, BadInputIsOneLineExit2) {
  const std::vector<Bad> cases = {
      {{"rules", "--ha-output-dir", "/tmp"}, "--ha-output-dir needs --ha"},
      {{"rules", "--ha-peer", "192.168.99.2"}, "--ha-peer needs --ha"},
      {{"rules", "--ha"}, "--ha describes one gateway of an active/backup pair: it needs --role gateway"},
      {ha_rules({"--ha-advert-int", "fast"}), "--ha-advert-int 'fast' is not a number of seconds in 0.01-40.95"},
      {ha_rules({"--ha-advert-int", "0"}), "--ha-advert-int '0' is not a number of seconds"},
      {ha_rules({"--ha-advert-int", "0.125"}), "--ha-advert-int '0.125' is not a number of seconds"},
      {ha_rules({"--ha-advert-int", "41"}), "--ha-advert-int '41' is not a number of seconds"},
      {ha_rules({"--ha-priority", "0"}), "--ha-priority 0 is out of range 1-254"},
      {ha_rules({"--ha-priority", "255"}), "--ha-priority 255 is out of range 1-254"},
      {ha_rules({"--ha-vrid", "0"}), "--ha-vrid 0 is out of range 1-254"},
      {ha_rules({"--ha-sync-port", "70000"}), "--ha-sync-port 70000 is out of range 1-65535"},
      {ha_rules({"--ha-ignore", "10.0.0.300"}), "--ha-ignore: not an IPv4 address"},
      {ha_rules({"--format", "firewalld"}), "--format firewalld supports only --role server"},
      {ha_rules({"--helper", "ftpwalld"}), "--ha --helper ftpwalld needs --format nft"},
      {ha_rules({"--family", "6"}), "--public-address 198.51.100.1 is IPv4 but --family is 6"},
      {{"rules", "--role", "gateway", "--public-address", "198.51.100.1", "--internal-server", "10.0.0.10", "--interface", "eth0",
        "--ha"},
       "--ha needs --inside-vip A"},
  };
  for (const auto& b : cases) {
    CliRun r = run_ftpwall(b.args);
    EXPECT_EQ(r.status, 2) << b.message << ": " << r.err;
    EXPECT_EQ(r.out, "") << b.message;
    EXPECT_EQ(count_lines(r.err), 1u) << r.err;
    EXPECT_EQ(r.err.rfind("ftpwall: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(b.message), std::string::npos) << "want: " << b.message << "\n got: " << r.err;
  }
}

TEST(RulesHa, CheckAcceptsTheRulesOfEveryHelper) {
  for (const char* helper : {"kernel", "ftpwalld", "none"})
    for (const char* format : {"iptables-save", "nft"}) {
      if (std::string(helper) == "ftpwalld" && std::string(format) != "nft") continue;  // refused: [ha] needs nftables
      std::vector<std::string> args = ha_rules({"--helper", helper, "--format", format, "--check"});
      if (std::string(helper) == "none")
        for (const char* a : {"--passive-ports", "61000-61100"}) args.emplace_back(a);
      CliRun r = run_ftpwall(args);
      if (r.err.find("did not check") != std::string::npos) GTEST_SKIP() << r.err;
      EXPECT_EQ(r.status, 0) << helper << " " << format << ": " << r.err;
      EXPECT_NE(r.err.find("accepted the output"), std::string::npos) << r.err;
    }
}

}  // namespace
