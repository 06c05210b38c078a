// SPDX-License-Identifier: GPL-2.0-or-later
// `ftpwall check`: the pure parts. The three servers' passive-range settings, the coverage of a
// range by static accepts, and the findings (and exit status) from faked host facts.
#include "cli/check_cmd.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/rules_cmd.hpp"

namespace ftpwall::cli {
namespace {

bool has(const std::vector<Finding>& v, const std::string& id) {
  return std::any_of(v.begin(), v.end(), [&](const Finding& f) { return f.id == id; });
}
const Finding& get(const std::vector<Finding>& v, const std::string& id) {
  return *std::find_if(v.begin(), v.end(), [&](const Finding& f) { return f.id == id; });
}

TEST(CheckServerConfig, Vsftpd) {
  auto p = parse_vsftpd("listen=YES\n# pasv_min_port=1\npasv_min_port=40000\n pasv_max_port = 40100\n", "/etc/vsftpd.conf");
  EXPECT_EQ(p.software, "vsftpd");
  ASSERT_TRUE(p.range);
  EXPECT_EQ(*p.range, (PortRange{40000, 40100}));
  EXPECT_TRUE(p.error.empty());
  EXPECT_EQ(p.setting({1, 2}), "pasv_min_port=1 and pasv_max_port=2");
  // Absent or 0 (vsftpd's default): any port.
  EXPECT_FALSE(parse_vsftpd("listen=YES\n", "f").range);
  EXPECT_FALSE(parse_vsftpd("pasv_min_port=0\npasv_max_port=0\n", "f").range);
  // One end only: the other is open (1024 or 65535).
  EXPECT_EQ(*parse_vsftpd("pasv_min_port=50000\n", "f").range, (PortRange{50000, 65535}));
  EXPECT_EQ(*parse_vsftpd("pasv_max_port=2000\n", "f").range, (PortRange{1024, 2000}));
  EXPECT_FALSE(parse_vsftpd("pasv_min_port=50000\npasv_max_port=40000\n", "f").error.empty());
  EXPECT_FALSE(parse_vsftpd("pasv_min_port=abc\npasv_max_port=40000\n", "f").error.empty());
}

TEST(CheckServerConfig, Proftpd) {
  auto p = parse_proftpd("ServerName x\n  passiveports 49152 65534\n<Anonymous ~ftp>\n</Anonymous>\n", "/etc/proftpd/proftpd.conf");
  EXPECT_EQ(p.software, "proftpd");
  ASSERT_TRUE(p.range);
  EXPECT_EQ(*p.range, (PortRange{49152, 65534}));
  EXPECT_EQ(p.setting({1, 2}), "PassivePorts 1 2");
  EXPECT_FALSE(parse_proftpd("ServerName x\n#PassivePorts 1 2\n", "f").range);
  EXPECT_FALSE(parse_proftpd("PassivePorts 40000\n", "f").error.empty());
  EXPECT_EQ(*parse_proftpd("PassivePorts 1 2\nPassivePorts 30000 30010\n", "f").range, (PortRange{30000, 30010}));
}

TEST(CheckServerConfig, PureFtpd) {
  // The conf directory (Debian): one file per setting.
  auto p = parse_pure_ftpd("30000 30100\n", "/etc/pure-ftpd/conf/PassivePortRange");
  ASSERT_TRUE(p.range);
  EXPECT_EQ(*p.range, (PortRange{30000, 30100}));
  EXPECT_EQ(p.setting({1, 2}), "\"1 2\"");
  // pure-ftpd.conf.
  auto q = parse_pure_ftpd("ChrootEveryone yes\nPassivePortRange 30000 30100\n", "/etc/pure-ftpd/pure-ftpd.conf");
  ASSERT_TRUE(q.range);
  EXPECT_EQ(*q.range, (PortRange{30000, 30100}));
  EXPECT_EQ(q.setting({1, 2}), "PassivePortRange 1 2");
  EXPECT_FALSE(parse_pure_ftpd("ChrootEveryone yes\n", "f").range);
  EXPECT_FALSE(parse_pure_ftpd("PassivePortRange 30000\n", "f").error.empty());
}

TEST(CheckServerConfig, ServerConfigByNameOrContents) {
  EXPECT_EQ(parse_server_config("x=1\n", "/tmp/my-vsftpd.conf").software, "vsftpd");
  EXPECT_EQ(parse_server_config("listen=YES\npasv_min_port=1\n", "/tmp/ftp.conf").software, "vsftpd");
  EXPECT_EQ(parse_server_config("PassivePorts 1 2\n", "/tmp/ftp.conf").software, "proftpd");
  EXPECT_EQ(parse_server_config("PassivePortRange 1 2\n", "/tmp/ftp.conf").software, "pure-ftpd");
  EXPECT_EQ(parse_server_config("1 2\n", "/x/PassivePortRange").software, "pure-ftpd");
  const auto none = parse_server_config("hello\n", "/tmp/ftp.conf");
  EXPECT_TRUE(none.software.empty());
  EXPECT_FALSE(none.error.empty());
}

TEST(CheckCoverage, Uncovered) {
  const std::vector<StaticAccept> a{{"r1", {40000, 40049}}, {"r2", {40040, 40080}}, {"r3", {21, 21}}};
  EXPECT_TRUE(uncovered({40000, 40080}, a).empty());
  EXPECT_EQ(uncovered({40000, 40100}, a), (std::vector<PortRange>{{40081, 40100}}));
  EXPECT_EQ(uncovered({39990, 40100}, a), (std::vector<PortRange>{{39990, 39999}, {40081, 40100}}));
  EXPECT_EQ(uncovered({50000, 50100}, a), (std::vector<PortRange>{{50000, 50100}}));
  EXPECT_EQ(uncovered({1, 65535}, {{"all", {0, 65535}}}), std::vector<PortRange>{});
  EXPECT_EQ(uncovered({65000, 65535}, {{"x", {65000, 65534}}}), (std::vector<PortRange>{{65535, 65535}}));
}

// A host where all is well: ftpwalld runs with complete hooks, no helper, the server's range above
// port_floor.
HostFacts good() {
  HostFacts f;
  f.legacy_tables = {"filter"};
  f.legacy_rules = "filter FORWARD policy DROP";
  f.filtering = true;
  f.backend = f.daemon_backend = "iptables-legacy";
  f.backend_why = f.daemon_backend_why = "auto: rules in iptables-legacy tables (filter FORWARD policy DROP)";
  f.daemon_running = true;
  f.daemon_version = "version 0.1.0, up 5 s";
  f.daemon_role = "gateway";
  f.daemon_hooks_mode = "daemon";
  f.hooks_complete = true;
  f.hooks_detail = "5 of 5 hook rules, 0 openings";
  f.server = ServerPassive{"vsftpd", "/etc/vsftpd.conf", PortRange{40000, 40100}, {}};
  return f;
}

TEST(CheckJudge, NothingWrongIsExitZero) {
  const auto f = good();
  const auto v = judge(f);
  EXPECT_TRUE(v.empty()) << v.front().what;
  EXPECT_EQ(check_exit_code(v), 0);
  const std::string t = format_check_text(f, v);
  EXPECT_NE(t.find("backend: ftpwalld would pick iptables-legacy (auto: rules in iptables-legacy tables"), std::string::npos) << t;
  EXPECT_NE(t.find("ftpwalld: running, version 0.1.0, up 5 s, role gateway, backend iptables-legacy"), std::string::npos) << t;
  EXPECT_NE(t.find("hooks by daemon: complete (5 of 5 hook rules, 0 openings)"), std::string::npos) << t;
  EXPECT_NE(t.find("\nno findings\n"), std::string::npos) << t;
}

TEST(CheckJudge, KernelHelperIsAFindingWithItsFix) {
  auto f = good();
  f.helper.push_back({"iptables-legacy raw PREROUTING rule 1 (-j CT --helper ftp)", "iptables-legacy -t raw -D PREROUTING 1"});
  f.helper_entries = 2;
  const auto v = judge(f);
  EXPECT_EQ(check_exit_code(v), 1);
  ASSERT_TRUE(has(v, "kernel_helper"));
  EXPECT_NE(get(v, "kernel_helper").what.find("raw PREROUTING rule 1"), std::string::npos);
  EXPECT_EQ(get(v, "kernel_helper").fix, "iptables-legacy -t raw -D PREROUTING 1");
  EXPECT_TRUE(has(v, "kernel_helper_conntrack"));
  const std::string t = format_check_text(f, v);
  EXPECT_NE(t.find("kernel helper: attached by iptables-legacy raw PREROUTING rule 1"), std::string::npos) << t;
  EXPECT_NE(t.find("finding: the kernel ftp helper is attached by iptables-legacy raw PREROUTING rule 1"), std::string::npos) << t;
  EXPECT_NE(t.find("; fix: iptables-legacy -t raw -D PREROUTING 1\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\n2 findings\n"), std::string::npos) << t;
  f.helper.clear();
  f.helper_entries = 0;
  f.helper_auto = true;
  EXPECT_TRUE(has(judge(f), "kernel_helper_auto"));
}

TEST(CheckJudge, HaPairNeedsTcpLooseOffConntrackdAndKeepalived) {
  auto f = good();
  EXPECT_FALSE(has(judge(f), "ha_tcp_loose"));  // [ha] off: none of these
  f.ha_enabled = true;
  f.tcp_loose = true;
  auto v = judge(f);
  EXPECT_TRUE(has(v, "ha_tcp_loose"));
  EXPECT_TRUE(has(v, "ha_no_conntrackd"));
  EXPECT_TRUE(has(v, "ha_no_keepalived"));
  EXPECT_NE(get(v, "ha_tcp_loose").fix.find("sysctl -w net.netfilter.nf_conntrack_tcp_loose=0"), std::string::npos);
  f.tcp_loose = false;
  f.conntrackd_running = f.keepalived_running = true;
  v = judge(f);
  EXPECT_FALSE(has(v, "ha_tcp_loose"));
  EXPECT_FALSE(has(v, "ha_no_conntrackd"));
  EXPECT_FALSE(has(v, "ha_no_keepalived"));
}

TEST(CheckJudge, EachFindingIsOneLine) {
  auto f = good();
  f.helper.push_back({"a", "b"});
  f.daemon_running = false;
  f.daemon_why = "no answer at /run/ftpwalld/control: No such file or directory";
  f.preflight_errors.push_back("nftables chain inet f fw lacks the openings line");
  const auto v = judge(f);
  const std::string t = format_check_text(f, v);
  std::istringstream in(t);
  unsigned lines = 0;
  for (std::string l; std::getline(in, l);) lines += l.starts_with("finding: ") && l.find("; fix: ") != std::string::npos;
  EXPECT_EQ(lines, v.size()) << t;
}

TEST(CheckJudge, DaemonNotRunningAndWouldNotStart) {
  auto f = good();
  f.daemon_running = false;
  f.daemon_why = "no answer at /tmp/x: Connection refused";
  f.preflight_errors.push_back("nftables chain inet f fw lacks the openings line");
  const auto v = judge(f);
  EXPECT_TRUE(has(v, "daemon_not_running"));
  EXPECT_NE(get(v, "daemon_not_running").what.find("Connection refused"), std::string::npos);
  EXPECT_TRUE(has(v, "daemon_would_not_start"));
  // Neither ftpwalld nor the helper, a filtering firewall and no static accept: the range is closed.
  ASSERT_TRUE(has(v, "passive_range_not_open"));
  EXPECT_NE(get(v, "passive_range_not_open").what.find("it accepts no passive range"), std::string::npos);
}

TEST(CheckJudge, StaticRangeOpenMeansNoDaemonNeeded) {
  auto f = good();
  f.daemon_running = false;
  f.daemon_why = "no answer";
  f.accepts.push_back({"iptables-legacy filter FORWARD rule 3", {40000, 40100}});
  EXPECT_TRUE(judge(f).empty());
}

TEST(CheckJudge, PassiveRangeMismatchNamesBothRangesAndTheFix) {
  auto f = good();
  f.daemon_running = false;
  f.daemon_why = "no answer";
  f.server->range = PortRange{50000, 50100};
  f.accepts.push_back({"iptables-legacy filter FORWARD rule 2", {21, 21}});
  f.accepts.push_back({"iptables-legacy filter FORWARD rule 3", {40000, 40100}});
  const auto v = judge(f);
  ASSERT_TRUE(has(v, "passive_range_not_open"));
  const Finding& m = get(v, "passive_range_not_open");
  EXPECT_NE(m.what.find("vsftpd passive ports 50000-50100 (/etc/vsftpd.conf) are not open in the firewall"), std::string::npos) << m.what;
  EXPECT_NE(m.what.find("it accepts 40000-40100 (iptables-legacy filter FORWARD rule 3)"), std::string::npos) << m.what;
  EXPECT_EQ(m.what.find("rule 2"), std::string::npos) << m.what;  // port 21 is no passive range
  EXPECT_NE(m.fix.find("set pasv_min_port=40000 and pasv_max_port=40100 in /etc/vsftpd.conf"), std::string::npos) << m.fix;
  EXPECT_NE(m.fix.find("--passive-ports 50000-50100"), std::string::npos) << m.fix;
  // Partly covered: the gap is named.
  f.server->range = PortRange{40000, 40200};
  EXPECT_NE(get(judge(f), "passive_range_not_open").what.find("(40101-40200 not accepted)"), std::string::npos);
  // A firewall that drops nothing: nothing to open.
  f.filtering = false;
  EXPECT_FALSE(has(judge(f), "passive_range_not_open"));
  // The kernel helper opens it (a finding of its own, not a closed range).
  f.filtering = true;
  f.helper.push_back({"a", "b"});
  EXPECT_FALSE(has(judge(f), "passive_range_not_open"));
}

TEST(CheckJudge, NoPassiveRangeUnderAStaticFirewall) {
  auto f = good();
  f.daemon_running = false;
  f.daemon_why = "no answer";
  f.server->range.reset();
  EXPECT_TRUE(has(judge(f), "passive_range_unset"));
  f.daemon_running = true;  // ftpwalld opens whatever port the server announces
  EXPECT_FALSE(has(judge(f), "passive_range_unset"));
}

TEST(CheckJudge, PortFloorAboveTheServersRange) {
  auto f = good();
  f.port_floor = 45000;
  f.config_source = "/etc/ftpwall/ftpwalld.conf";
  const auto v = judge(f);
  ASSERT_TRUE(has(v, "port_floor"));
  EXPECT_NE(get(v, "port_floor").what.find("policy.port_floor = 45000 (/etc/ftpwall/ftpwalld.conf)"), std::string::npos);
  EXPECT_NE(get(v, "port_floor").fix.find("pasv_min_port=45000 and pasv_max_port=45000"), std::string::npos) << get(v, "port_floor").fix;
  EXPECT_NE(get(v, "port_floor").fix.find("policy.port_floor = 40000"), std::string::npos);
}

TEST(CheckJudge, HooksIncompleteAndBackendChanged) {
  auto f = good();
  f.hooks_complete = false;
  f.hooks_detail = "3 of 5 hook rules";
  auto v = judge(f);
  ASSERT_TRUE(has(v, "daemon_hooks_incomplete"));
  EXPECT_NE(get(v, "daemon_hooks_incomplete").what.find("3 of 5 hook rules"), std::string::npos);
  f.daemon_hooks_mode = "admin";
  EXPECT_NE(get(judge(f), "daemon_hooks_incomplete").fix.find("--hooks admin"), std::string::npos);
  f = good();
  f.backend = "nftables";
  f.backend_why = "auto: no rules in iptables-legacy tables";
  v = judge(f);
  ASSERT_TRUE(has(v, "backend_changed"));
  EXPECT_NE(get(v, "backend_changed").fix.find("restart"), std::string::npos);
  f.config_backend = "iptables-legacy";  // configured, not auto: the firewall does not decide
  EXPECT_FALSE(has(judge(f), "backend_changed"));
}

TEST(CheckJudge, NotRootSaysSoOnly) {
  HostFacts f;
  f.root = false;
  const auto v = judge(f);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].id, "not_root");
  EXPECT_EQ(check_exit_code(v), 1);
}

TEST(CheckJudge, JsonHasTheFindingsAndFacts) {
  auto f = good();
  f.helper.push_back({"where", "fix it"});
  const auto v = judge(f);
  const auto j = nlohmann::json::parse(format_check_json(f, v));
  EXPECT_EQ(j["backend"]["name"], "iptables-legacy");
  EXPECT_EQ(j["ftpwalld"]["running"], true);
  EXPECT_EQ(j["ftpwalld"]["hooks_complete"], true);
  EXPECT_EQ(j["server"]["passive"]["low"], 40000);
  EXPECT_EQ(j["kernel_helper"]["attached"][0]["where"], "where");
  ASSERT_EQ(j["findings"].size(), 1u);
  EXPECT_EQ(j["findings"][0]["id"], "kernel_helper");
  EXPECT_EQ(j["findings"][0]["fix"], "fix it");
}

TEST(CheckCmd, UsageErrorsExitTwo) {
  std::ostringstream out, err;
  EXPECT_EQ(run({"check", "--server-config", "/nonexistent/vsftpd.conf"}, out, err), 2);
  EXPECT_NE(err.str().find("ftpwall: error: --server-config /nonexistent/vsftpd.conf: "), std::string::npos) << err.str();
  std::ostringstream out2, err2;
  EXPECT_EQ(run({"check", "--frobnicate"}, out2, err2), 2);
  std::ostringstream out3, err3;
  EXPECT_EQ(run({"chekc"}, out3, err3), 2);
  EXPECT_NE(err3.str().find("check"), std::string::npos) << err3.str();
}

}  // namespace
}  // namespace ftpwall::cli
