// SPDX-License-Identifier: GPL-2.0-or-later
#include "cli/status_cmd.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "cli/rules_cmd.hpp"

namespace ftpwall::cli {
namespace {

// What ftpwalld answers (introspect.cpp), trimmed to what the formatters read.
const std::string status_answer = R"J({"version":"0.1.0","uptime_s":12,"role":"gateway","backend":"nftables",
"backend_why":"auto: no rules in iptables-legacy tables","steering":"xt NFQUEUE (nft compat)","hooks":"daemon",
"config":"(built-in defaults)","queue":{"number":0,"verdicts":40,"modified":2,"enobufs":0,"verdict_errors":0,
"kernel":{"waiting":0,"queue_dropped":0,"user_dropped":0,"id_sequence":40}},
"live":{"sessions":1,"half_open":0,"openings":1,"openings_installed":1},
"counters":{"packets":40,"untracked":0,"max_wait_us":250},
"refusals":{"bad_syntax":0,"address_not_sender":1}})J";

TEST(StatusCmd, TextNamesBackendQueueAndOnlyTheRefusalsThatHappened) {
  const std::string t = format_status(status_answer);
  EXPECT_NE(t.find("backend nftables (auto: no rules in iptables-legacy tables)"), std::string::npos) << t;
  EXPECT_NE(t.find("queue 0: 40 verdicts (2 modified)"), std::string::npos) << t;
  EXPECT_NE(t.find("live: 1 sessions, 0 half-open, 1 openings (1 in the kernel)"), std::string::npos) << t;
  EXPECT_NE(t.find("refusals: address_not_sender=1\n"), std::string::npos) << t;
  EXPECT_EQ(t.find("bad_syntax"), std::string::npos) << t;
}

TEST(StatusCmd, SeveralQueuesShowTheRangeAndEachQueuesShare) {
  std::string a = status_answer;
  a.replace(a.find(R"("queue":{"number":0,)"), 20, R"("queue":{"number":5,"count":2,)");
  a.replace(a.find(R"("live":)"), 7, R"("queues":[{"number":5,"packets":30,"sessions":1,"openings":1,"data_syns":2,"verdicts":30,"enobufs":0,
"kernel":{"waiting":0,"queue_dropped":0,"user_dropped":0}},{"number":6,"packets":10,"sessions":0,"openings":0,"data_syns":0,
"verdicts":10,"enobufs":0,"kernel":null}],"live":)");
  const std::string t = format_status(a);
  EXPECT_NE(t.find("queue 5-6 (2 threads): 40 verdicts"), std::string::npos) << t;
  EXPECT_NE(t.find("\n  queue 5: 30 packets, 1 sessions, 1 openings, 2 data SYNs; kernel: 0 waiting, 0 dropped\n"), std::string::npos) << t;
  EXPECT_NE(t.find("\n  queue 6: 10 packets, 0 sessions, 0 openings, 0 data SYNs\n"), std::string::npos) << t;
  const std::string s = format_sessions(R"J({"sessions":[{"id":4,"queue":6,"client":{"address":"192.0.2.10","port":40000},
    "server":{"address":"198.51.100.10","port":21},"server_real":{"address":"198.51.100.10","port":21},
    "client_as_seen":{"address":"192.0.2.10","port":40000},"state":"tracked","announcements":0,"refusals":0,
    "held_bytes":0,"recorded":false,"age_s":1}]})J");
  EXPECT_NE(s.find(" age=1s queue=6\n"), std::string::npos) << s;
  const std::string p = format_prometheus(a);
  EXPECT_NE(p.find("\nftpwall_queue_packets_total{queue=\"5\"} 30\nftpwall_queue_packets_total{queue=\"6\"} 10\n"),
            std::string::npos) << p;
  EXPECT_NE(p.find("\nftpwall_queue_sessions{queue=\"6\"} 0\n"), std::string::npos) << p;
  EXPECT_EQ(format_prometheus(status_answer).find("ftpwall_queue_packets_total"), std::string::npos) << "one queue: no per-queue series";
}

TEST(StatusCmd, PrometheusHasEveryReasonFromZero) {
  const std::string p = format_prometheus(status_answer);
  EXPECT_NE(p.find("ftpwall_refusals_total{reason=\"address_not_sender\"} 1\n"), std::string::npos) << p;
  EXPECT_NE(p.find("ftpwall_refusals_total{reason=\"bad_syntax\"} 0\n"), std::string::npos) << p;
  EXPECT_NE(p.find("ftpwall_sessions 1\n"), std::string::npos) << p;
  EXPECT_NE(p.find("ftpwall_packets_total 40\n"), std::string::npos) << p;
  EXPECT_NE(p.find("ftpwall_max_verdict_wait_microseconds 250\n"), std::string::npos) << p;
  EXPECT_NE(p.find("# TYPE ftpwall_refusals_total counter\n"), std::string::npos) << p;
}

TEST(StatusCmd, OpeningsLikeConntrackExpect) {
  const std::string t = format_openings(R"J({"openings":[{"session":3,"opening":2,"source":"192.0.2.10",
    "destination":"203.0.113.1","port":50000,"dnat_to":{"address":"10.0.0.10","port":50000},"installed":true,
    "used_by_port":null,"expires_in_s":27}]})J");
  EXPECT_EQ(t, "s3 o2 192.0.2.10 -> 203.0.113.1:50000 dnat to 10.0.0.10:50000 expires in 27 s\n1 openings\n");
}

TEST(StatusCmd, RangeOpeningsOfFtpsSessions) {
  const std::string t = format_openings(R"J({"openings":[{"session":4,"opening":1,"kind":"range","source":"192.0.2.10",
    "destination":"203.0.113.1","port":40000,"port_last":40100,"dnat_to":{"address":"10.0.0.10","port":40000},
    "installed":true,"expires_in_s":28790}]})J");
  EXPECT_EQ(t, "s4 r1 192.0.2.10 -> 203.0.113.1:40000-40100 dnat to 10.0.0.10 for the FTPS session expires in 28790 s\n"
               "1 openings\n");
}

TEST(StatusCmd, SessionsShowTheRealServerBehindDnat) {
  const std::string t = format_sessions(R"J({"sessions":[{"id":3,"client":{"address":"192.0.2.10","port":40000},
    "server":{"address":"203.0.113.1","port":21},"server_real":{"address":"10.0.0.10","port":21},
    "client_as_seen":{"address":"192.0.2.10","port":40000},"state":"tracked","announcements":2,"refusals":0,
    "corrections":{"client_to_server":0,"server_to_client":1},"held_bytes":0,"recorded":true,"age_s":5,"opening":2}]})J");
  EXPECT_EQ(t, "s3 tracked 192.0.2.10:40000 -> 203.0.113.1:21 (server 10.0.0.10:21) announcements=2 refusals=0 "
               "corrections=0/1 held=0 age=5s opening=o2\n1 sessions\n");
}

TEST(StatusCmd, SessionsShowTheirHaLabel) {
  const std::string t = format_sessions(R"J({"sessions":[{"id":4,"client":{"address":"198.51.100.2","port":40000},
    "server":{"address":"198.51.100.1","port":21},"server_real":{"address":"10.0.0.10","port":21},
    "client_as_seen":{"address":"198.51.100.2","port":40000},"state":"tracked","announcements":1,"refusals":0,
    "held_bytes":0,"recorded":false,"ha_label":"carried","age_s":2}]})J");
  EXPECT_EQ(t, "s4 tracked 198.51.100.2:40000 -> 198.51.100.1:21 (server 10.0.0.10:21) announcements=1 refusals=0 "
               "held=0 age=2s ha_label=carried\n1 sessions\n");
}

TEST(StatusCmd, NoDaemonIsOneLineAndExitOne) {
  std::ostringstream out, err;
  const int rc = run({"status", "--socket", "/nonexistent/ftpwall-test/control"}, out, err);
  EXPECT_EQ(rc, 1);
  const std::string e = err.str();
  EXPECT_EQ(e.rfind("ftpwall: error: no ftpwalld answers at /nonexistent/ftpwall-test/control: ", 0), 0u) << e;
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
}

}  // namespace
}  // namespace ftpwall::cli
