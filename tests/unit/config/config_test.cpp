// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/config/config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace ftpwall::config {
namespace {

std::string error_of(std::string_view text) {
  auto r = parse(text, "ftpwalld.conf");
  EXPECT_FALSE(r.ok()) << "accepted: " << text;
  return r.ok() ? std::string() : r.error().message;
}

TEST(Config, EmptyFileIsTheCommonCase) {
  auto r = parse("", "ftpwalld.conf");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->queue.number, 0);
  EXPECT_EQ(r->control_ports, std::vector<std::uint16_t>{21});
  EXPECT_EQ(r->role, Role::gateway);
  EXPECT_EQ(r->hooks, HooksMode::daemon);
  EXPECT_EQ(r->backend, BackendMode::automatic);
  EXPECT_EQ(r->policy.port_floor, 1024);
  EXPECT_FALSE(r->policy.require_login);
  EXPECT_FALSE(r->policy.allow_client_public_address);  // as nf_conntrack_ftp loose=0 (review M1)
  EXPECT_EQ(r->policy.hold_timeout_ms, 3000u);  // covers split announcements 2 s apart (issue 8 item 9)
  EXPECT_EQ(r->policy.on_violation, ViolationAction::pass);
  EXPECT_EQ(r->source, "ftpwalld.conf");
}

TEST(Config, NoFileAtAllGivesDefaults) {
  auto r = load(std::nullopt, "/nonexistent/ftpwalld.conf");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->source, "(built-in defaults)");
  EXPECT_EQ(r->queue.number, 0);
  EXPECT_EQ(r->control_ports, std::vector<std::uint16_t>{21});
}

TEST(Config, NamedFileMissingIsAnError) {
  auto r = load(std::string("/nonexistent/x.conf"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "/nonexistent/x.conf: cannot read the configuration file");
}

TEST(Config, LoadsAFileFromDisk) {
  const std::string path = ::testing::TempDir() + "ftpwall_config_test.conf";
  std::ofstream(path) << "role = \"server\"\n[queue]\nnumber = 3\n";
  auto r = load(path);
  std::remove(path.c_str());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->role, Role::server);
  EXPECT_EQ(r->queue.number, 3);
  EXPECT_EQ(r->source, path);
}

TEST(Config, EveryKey) {
  auto r = parse(R"(
role = "server"
hooks = "admin"
backend = "nftables"
control_ports = [21, 2121]
log_level = "debug"
[queue]
number = 7
bypass = true
fail_open = false
max_len = 100
socket_buffer = 1048576
exempt_mark = 0x20000000
accept_mark = 0x4
[openings]
lifetime = 10
max_total = 50
max_sessions = 500
max_per_source = 5
max_sessions_per_source = 40
max_held_bytes_per_source = 4096
max_half_open = 300
max_half_open_per_source = 30
half_open_timeout = 60
[policy]
port_floor = 2000
third_party_networks = ["198.51.100.0/24", "2001:db8::/32"]
require_login = true
allow_client_public_address = true
violation_action = "reset"
hold_timeout_ms = 750
)",
                 "f.conf");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->role, Role::server);
  EXPECT_EQ(r->hooks, HooksMode::admin);
  EXPECT_EQ(r->backend, BackendMode::nftables);
  EXPECT_EQ(r->control_ports, (std::vector<std::uint16_t>{21, 2121}));
  EXPECT_EQ(r->log_level, LogLevel::debug);
  EXPECT_EQ(r->queue, (QueueConfig{7, true, false, 100, 1048576, 0x20000000, 0x4}));
  EXPECT_EQ(r->openings, (OpeningsConfig{10, 50, 500, 5, 40, 4096, 300, 30, 60}));
  EXPECT_EQ(r->policy.port_floor, 2000);
  ASSERT_EQ(r->policy.allow_third_party.size(), 2u);
  EXPECT_EQ(r->policy.allow_third_party[0].to_string(), "198.51.100.0/24");
  EXPECT_TRUE(r->policy.require_login);
  EXPECT_TRUE(r->policy.allow_client_public_address);
  EXPECT_EQ(r->policy.on_violation, ViolationAction::reset);
  EXPECT_EQ(r->policy.hold_timeout_ms, 750u);
}

TEST(Config, BackendIsAChoice) {
  EXPECT_EQ(parse("backend = \"iptables-legacy\"\n", "f")->backend, BackendMode::iptables_legacy);
  EXPECT_EQ(error_of("backend = \"nft\"\n").rfind("ftpwalld.conf:1: backend: ", 0), 0u) << error_of("backend = \"nft\"\n");
}

TEST(Config, MetricsAndAudit) {
  auto c = parse("metrics_file = \"/var/lib/prometheus/node-exporter/ftpwall.prom\"\nmetrics_interval = 10\n"
                 "audit = \"summary\"\naudit_interval = 300\n", "f");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->metrics_file, "/var/lib/prometheus/node-exporter/ftpwall.prom");
  EXPECT_EQ(c->metrics_interval_s, 10u);
  EXPECT_EQ(c->audit, AuditMode::summary);
  EXPECT_EQ(c->audit_interval_s, 300u);
  EXPECT_EQ(parse("", "f")->audit, AuditMode::limited);
  EXPECT_EQ(error_of("metrics_file = \"relative.prom\"\n").rfind("ftpwalld.conf:1: metrics_file: expected an absolute path", 0), 0u);
  EXPECT_EQ(error_of("metrics_interval = 0\n"), "ftpwalld.conf:1: metrics_interval: 0 is out of range 1-3600");
  EXPECT_EQ(error_of("audit = \"loud\"\n").rfind("ftpwalld.conf:1: audit: ", 0), 0u);
}

TEST(Config, ErrorsNameFileLineAndKey) {
  EXPECT_EQ(error_of("\n\n[queue]\nnumbr = 1\n"), "ftpwalld.conf:4: queue.numbr: unknown key");
  EXPECT_EQ(error_of("rol = \"server\"\n"), "ftpwalld.conf:1: rol: unknown key");
  EXPECT_EQ(error_of("role = \"router\"\n"), "ftpwalld.conf:1: role: \"router\" is not one of gateway|server");
  EXPECT_EQ(error_of("hooks = 1\n"), "ftpwalld.conf:1: hooks: expected a string: daemon|admin");
  EXPECT_EQ(error_of("[queue]\nbypass = \"yes\"\n"), "ftpwalld.conf:2: queue.bypass: expected true or false");
  EXPECT_EQ(error_of("[policy]\nviolation_action = \"drop\"\n"),
            "ftpwalld.conf:2: policy.violation_action: \"drop\" is not one of pass|reset");
  EXPECT_EQ(error_of("queue = 3\n"), "ftpwalld.conf:1: queue: expected a table ([queue])");
}

TEST(Config, SyntaxErrorHasALine) {
  const std::string e = error_of("role = \"server\"\n[queue\n");
  EXPECT_EQ(e.rfind("ftpwalld.conf:2: syntax: ", 0), 0u) << e;
}

TEST(Config, QueueNumberBound) {
  EXPECT_TRUE(parse("[queue]\nnumber = 65535\n", "f").ok());
  EXPECT_EQ(error_of("[queue]\nnumber = 65536\n"), "ftpwalld.conf:2: queue.number: 65536 is out of range 0-65535");
  EXPECT_EQ(error_of("[queue]\nnumber = -1\n"), "ftpwalld.conf:2: queue.number: -1 is out of range 0-65535");
}

TEST(Config, LifetimeBounds) {
  EXPECT_TRUE(parse("[openings]\nlifetime = 1\n", "f").ok());
  EXPECT_TRUE(parse("[openings]\nlifetime = 3600\n", "f").ok());
  EXPECT_EQ(error_of("[openings]\nlifetime = 0\n"), "ftpwalld.conf:2: openings.lifetime: 0 is out of range 1-3600");
  EXPECT_EQ(error_of("[openings]\nlifetime = 3601\n"), "ftpwalld.conf:2: openings.lifetime: 3601 is out of range 1-3600");
  EXPECT_EQ(error_of("[openings]\nlifetime = \"30s\"\n"), "ftpwalld.conf:2: openings.lifetime: expected an integer");
}

TEST(Config, CapsBounds) {
  EXPECT_TRUE(parse("[openings]\nmax_total = 1000000\nmax_sessions = 1000000\n", "f").ok());
  EXPECT_EQ(error_of("[openings]\nmax_total = 1000001\n"),
            "ftpwalld.conf:2: openings.max_total: 1000001 is out of range 1-1000000");
  EXPECT_EQ(error_of("[openings]\nmax_sessions = 0\n"), "ftpwalld.conf:2: openings.max_sessions: 0 is out of range 1-1000000");
  EXPECT_EQ(error_of("[openings]\nmax_per_source = 0\n"), "ftpwalld.conf:2: openings.max_per_source: 0 is out of range 1-1000000");
  EXPECT_EQ(error_of("[openings]\nhalf_open_timeout = 601\n"),
            "ftpwalld.conf:2: openings.half_open_timeout: 601 is out of range 1-600");
  EXPECT_TRUE(parse("[openings]\nmax_held_bytes_per_source = 0\nhalf_open_timeout = 600\n", "f").ok());
}

TEST(Config, QueueLengthAndBufferBounds) {
  EXPECT_TRUE(parse("[queue]\nmax_len = 1048576\nsocket_buffer = 65536\n", "f").ok());
  EXPECT_TRUE(parse("[queue]\nsocket_buffer = 1073741824\n", "f").ok());
  EXPECT_EQ(error_of("[queue]\nmax_len = 1048577\n"), "ftpwalld.conf:2: queue.max_len: 1048577 is out of range 1-1048576");
  EXPECT_EQ(error_of("[queue]\nsocket_buffer = 65535\n"),
            "ftpwalld.conf:2: queue.socket_buffer: 65535 is out of range 65536-1073741824");
  EXPECT_EQ(error_of("[queue]\nsocket_buffer = 1073741825\n"),
            "ftpwalld.conf:2: queue.socket_buffer: 1073741825 is out of range 65536-1073741824");
}

TEST(Config, ExemptMarkIsA32BitValue) {
  EXPECT_TRUE(parse("[queue]\nexempt_mark = 0xffffffff\n", "f").ok());
  EXPECT_EQ(error_of("[queue]\nexempt_mark = 0x100000000\n"),
            "ftpwalld.conf:2: queue.exempt_mark: 4294967296 is out of range 0-4294967295");
}

TEST(Config, ControlPorts) {
  EXPECT_EQ(error_of("control_ports = []\n"), "ftpwalld.conf:1: control_ports: needs 1 to 16 ports");
  EXPECT_EQ(error_of("control_ports = 21\n"), "ftpwalld.conf:1: control_ports: expected an array of ports, e.g. [21]");
  EXPECT_EQ(error_of("control_ports = [21, 0]\n"), "ftpwalld.conf:1: control_ports: ports are integers 1-65535");
  EXPECT_EQ(error_of("control_ports = [21, 65536]\n"), "ftpwalld.conf:1: control_ports: ports are integers 1-65535");
  EXPECT_EQ(error_of("control_ports = [21, 21]\n"), "ftpwalld.conf:1: control_ports: 21 is listed twice");
  std::string sixteen = "control_ports = [";
  for (int p = 1; p <= 16; ++p) sixteen += std::to_string(2100 + p) + (p < 16 ? "," : "]\n");
  EXPECT_TRUE(parse(sixteen, "f").ok());
  EXPECT_EQ(error_of("control_ports = [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]\n"),
            "ftpwalld.conf:1: control_ports: needs 1 to 16 ports");
}

TEST(Config, ThirdPartyNetworksMustBeCidrs) {
  const std::string e = error_of("[policy]\nthird_party_networks = [\"198.51.100.0/33\"]\n");
  EXPECT_EQ(e.rfind("ftpwalld.conf:2: policy.third_party_networks: \"198.51.100.0/33\": ", 0), 0u) << e;
  EXPECT_EQ(error_of("[policy]\nthird_party_networks = [5]\n"),
            "ftpwalld.conf:2: policy.third_party_networks: expected a CIDR string");
}

TEST(Config, PortFloorBounds) {
  EXPECT_TRUE(parse("[policy]\nport_floor = 1\n", "f").ok());
  EXPECT_TRUE(parse("[policy]\nport_floor = 65535\n", "f").ok());
  EXPECT_EQ(error_of("[policy]\nport_floor = 0\n"), "ftpwalld.conf:2: policy.port_floor: 0 is out of range 1-65535");
  EXPECT_EQ(error_of("[policy]\nport_floor = 65536\n"), "ftpwalld.conf:2: policy.port_floor: 65536 is out of range 1-65535");
}

TEST(Config, HoldTimeoutBounds) {
  EXPECT_EQ(parse("[policy]\nhold_timeout_ms = 50\n", "f")->policy.hold_timeout_ms, 50u);
  EXPECT_EQ(parse("[policy]\nhold_timeout_ms = 60000\n", "f")->policy.hold_timeout_ms, 60000u);
  EXPECT_EQ(error_of("[policy]\nhold_timeout_ms = 49\n"),
            "ftpwalld.conf:2: policy.hold_timeout_ms: 49 is out of range 50-60000");
  EXPECT_EQ(error_of("[policy]\nhold_timeout_ms = 60001\n"),
            "ftpwalld.conf:2: policy.hold_timeout_ms: 60001 is out of range 50-60000");
  EXPECT_EQ(error_of("hold_timeout_ms = 1000\n"), "ftpwalld.conf:1: hold_timeout_ms: unknown key");
}

TEST(Config, ClientPublicAddressIsABoolean) {
  EXPECT_FALSE(parse("[policy]\nallow_client_public_address = false\n", "f")->policy.allow_client_public_address);
  EXPECT_TRUE(parse("[policy]\nallow_client_public_address = true\n", "f")->policy.allow_client_public_address);
  EXPECT_EQ(error_of("[policy]\nallow_client_public_address = \"yes\"\n"),
            "ftpwalld.conf:2: policy.allow_client_public_address: expected true or false");
  EXPECT_EQ(error_of("[policy]\nallow_client_public_address = 1\n"),
            "ftpwalld.conf:2: policy.allow_client_public_address: expected true or false");
  // Not a top-level key: it belongs to [policy].
  EXPECT_EQ(error_of("allow_client_public_address = true\n"), "ftpwalld.conf:1: allow_client_public_address: unknown key");
}

TEST(Config, HaSection) {
  EXPECT_FALSE(parse("", "f")->ha.enabled);
  EXPECT_TRUE(parse("[ha]\nenabled = true\n", "f")->ha.enabled);
  EXPECT_TRUE(parse("backend = \"nftables\"\n[ha]\nenabled = true\n", "f")->ha.enabled);
  EXPECT_EQ(error_of("[ha]\nenabled = 1\n"), "ftpwalld.conf:2: ha.enabled: expected true or false");
  EXPECT_EQ(error_of("[ha]\npeer = \"192.168.99.2\"\n"), "ftpwalld.conf:2: ha.peer: unknown key");
  const std::string e = error_of("backend = \"iptables-legacy\"\n[ha]\nenabled = true\n");
  EXPECT_EQ(e.rfind("ftpwalld.conf:2: ha.enabled: needs backend = \"nftables\"", 0), 0u) << e;
}

TEST(Config, QueueCount) {
  EXPECT_EQ(parse("", "f")->queue.count, 1);
  EXPECT_EQ(parse("[queue]\nnumber = 7\ncount = 4\n", "f")->queue.count, 4);
  EXPECT_EQ(parse("[queue]\ncount = 64\n", "f")->queue.count, 64);
  EXPECT_EQ(error_of("[queue]\ncount = 0\n"), "ftpwalld.conf:2: queue.count: 0 is out of range 1-64");
  EXPECT_EQ(error_of("[queue]\ncount = 65\n"), "ftpwalld.conf:2: queue.count: 65 is out of range 1-64");
  EXPECT_EQ(error_of("[queue]\nnumber = 65534\ncount = 3\n"), "ftpwalld.conf:3: queue.count: queues 65534 .. 65536 go past 65535");
  const std::string legacy = error_of("backend = \"iptables-legacy\"\n[queue]\ncount = 2\n");
  EXPECT_EQ(legacy.rfind("ftpwalld.conf:3: queue.count: more than one queue needs backend = \"nftables\"", 0), 0u) << legacy;
  const std::string admin = error_of("hooks = \"admin\"\n[queue]\ncount = 2\n");
  EXPECT_EQ(admin.rfind("ftpwalld.conf:3: queue.count: more than one queue needs hooks = \"daemon\"", 0), 0u) << admin;
  const std::string ha = error_of("[queue]\ncount = 2\n[ha]\nenabled = true\n");
  EXPECT_EQ(ha.rfind("ftpwalld.conf:2: queue.count: more than one queue cannot be combined with [ha]", 0), 0u) << ha;
  // One queue: nothing to conflict with.
  EXPECT_TRUE(parse("backend = \"iptables-legacy\"\n[queue]\ncount = 1\n", "f"));
}

TEST(Config, Names) {
  EXPECT_EQ(name(Role::server), "server");
  EXPECT_EQ(name(HooksMode::admin), "admin");
  EXPECT_EQ(name(LogLevel::critical), "critical");
}

}  // namespace
}  // namespace ftpwall::config
