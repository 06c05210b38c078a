// SPDX-License-Identifier: GPL-2.0-or-later
// `ftpwall check [--socket PATH] [--config FILE] [--server-config FILE] [--json]` (issue 11,
// ftpwall(8) CHECK): inspects this host (its network namespace) and says what is wrong for FTP,
// with the fix for each finding:
//   * which firewall is in use (iptables-legacy tables, iptables-nft, firewalld, native nft) and
//     which backend ftpwalld would pick (firewall::make_backend(automatic) and its `why`);
//   * whether the kernel ftp helper is attached anywhere (legacy or iptables-nft `-j CT --helper
//     ftp`, nft rules setting a `ct helper` object, the old automatic assignment sysctl, conntrack
//     entries that carry helper ftp);
//   * whether ftpwalld answers on its control socket, and whether its hooks are complete (the
//     backend's hook_state() against the hooks its configuration asks for);
//   * whether the FTP server's passive range (vsftpd, proftpd, pure-ftpd configuration) is opened:
//     by ftpwalld (policy.port_floor must not be above it), by the kernel helper, or statically by
//     an accept in the ruleset.
// Exit 0 when nothing is wrong, 1 with findings (one line each: what, and the fix), 2 for a usage
// error. The host probing needs the adapters (FTPWALL_CHECK_HOST); the judging below is pure.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
}

namespace ftpwall::cli {

struct CheckOptions {
  std::string socket = "/run/ftpwalld/control";
  std::string config;         // ftpwalld's configuration; empty: the one the daemon reports, else the default path
  std::string server_config;  // empty: the usual vsftpd, proftpd and pure-ftpd paths
  bool json = false;
};

CLI::App* add_check_command(CLI::App& app, CheckOptions& o);
int run_check(const CheckOptions& o, std::ostream& out, std::ostream& err);

// ---- the pure parts (tests/unit/cli/check_cmd_test.cpp) ----

struct PortRange {
  std::uint16_t low = 0;
  std::uint16_t high = 0;
  std::string to_string() const;
  bool operator==(const PortRange&) const = default;
};

// An FTP server's passive-port setting, read from its configuration file.
struct ServerPassive {
  std::string software;  // vsftpd | proftpd | pure-ftpd
  std::string file;
  std::optional<PortRange> range;  // none: the server picks any port
  std::string error;               // the setting is there but unusable (one line)
  // The setting names in the server's own syntax, for a fix: "pasv_min_port=L and pasv_max_port=H".
  std::string setting(const PortRange& r) const;
};
// vsftpd: pasv_min_port / pasv_max_port (0 or absent: any port); pasv_enable=NO: no passive mode.
ServerPassive parse_vsftpd(std::string_view text, const std::string& file);
// proftpd: PassivePorts L H (the last one at top level or in any context wins; comments '#').
ServerPassive parse_proftpd(std::string_view text, const std::string& file);
// pure-ftpd: /etc/pure-ftpd/conf/PassivePortRange holds "L H"; pure-ftpd.conf has "PassivePortRange L H".
ServerPassive parse_pure_ftpd(std::string_view text, const std::string& file);
// --server-config FILE: which server by its name or its contents.
ServerPassive parse_server_config(std::string_view text, const std::string& file);

// One rule that accepts new TCP connections to a port range (a static passive accept).
struct StaticAccept {
  std::string where;  // "iptables-legacy filter FORWARD rule 3", "nft inet filter forward handle 7"
  PortRange ports;
};

// One place that attaches the kernel ftp helper, and how to remove it.
struct HelperAttachment {
  std::string where;
  std::string fix;
};

// What the probes found; every field has a neutral default so that tests fill only what they need.
struct HostFacts {
  bool root = true;
  std::vector<std::string> probe_errors;  // a probe that could not read (one line each)
  // firewall
  std::vector<std::string> legacy_tables;  // /proc/net/ip_tables_names
  std::string legacy_rules;                // IptcBackend::admin_rules(): empty = none
  std::vector<std::string> iptables_nft_tables, firewalld_tables, native_nft_tables;  // "ip filter", "inet f"
  bool filtering = false;                  // a drop or reject (policy or unconditional rule) at input or forward
  std::vector<StaticAccept> accepts;
  // the backend ftpwalld would pick
  std::string backend, backend_why, backend_error;
  // the kernel helper
  std::vector<HelperAttachment> helper;
  bool helper_auto = false;                // net.netfilter.nf_conntrack_helper = 1
  unsigned helper_entries = 0;             // conntrack entries with helper ftp
  // ftpwalld
  bool daemon_running = false;
  std::string daemon_why;                  // why no answer
  std::string daemon_version, daemon_backend, daemon_backend_why, daemon_role, daemon_hooks_mode, daemon_config;
  std::optional<bool> hooks_complete;      // of the daemon's backend, by its configuration
  std::string hooks_detail;                // what is there, what is missing
  std::vector<std::string> preflight_errors, preflight_warnings;  // not running: would it start?
  // ftpwalld's configuration
  std::string config_source = "(built-in defaults)";
  std::string config_backend = "auto";
  std::uint16_t port_floor = 1024;
  std::string config_error;
  // [ha] (issue 15): an active/backup pair
  bool ha_enabled = false;
  std::optional<bool> tcp_loose;           // net.netfilter.nf_conntrack_tcp_loose (unread: nullopt)
  bool conntrackd_running = false, keepalived_running = false;
  // the FTP server
  std::optional<ServerPassive> server;
};

struct Finding {
  std::string id;  // stable: kernel_helper, daemon_not_running, ... (ftpwall(8), CHECK)
  std::string what;
  std::string fix;
};

std::vector<Finding> judge(const HostFacts& f);
// The ports of `need` that no accept covers (empty: all covered).
std::vector<PortRange> uncovered(const PortRange& need, const std::vector<StaticAccept>& accepts);
std::string format_check_text(const HostFacts& f, const std::vector<Finding>& findings);
std::string format_check_json(const HostFacts& f, const std::vector<Finding>& findings);
inline int check_exit_code(const std::vector<Finding>& findings) { return findings.empty() ? 0 : 1; }

}  // namespace ftpwall::cli
