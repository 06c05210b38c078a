// SPDX-License-Identifier: GPL-2.0-or-later
// `ftpwall check` (check_cmd.hpp). The pure parts first (server configuration parsers, the judge,
// the output forms), then the host probes, compiled only when the CLI links the adapters
// (FTPWALL_CHECK_HOST: libiptc, libnftnl, ctnetlink, make_backend); they run for `check` only.
#include "cli/check_cmd.hpp"
#include "cli/status_cmd.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <ostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#if FTPWALL_REPLAY_CONFIG
#include "ftpwall/config/config.hpp"
#endif

namespace ftpwall::cli {
namespace {

using json = nlohmann::ordered_json;

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::optional<long> number(std::string_view s) {
  long v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Lines without comments ('#' at the start of a line, after blanks) and blank lines.
std::vector<std::string> config_lines(std::string_view text) {
  std::vector<std::string> out;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    std::string t = trim(line);
    if (t.empty() || t.front() == '#') continue;
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<std::string> words(std::string_view line) {
  std::vector<std::string> out;
  std::istringstream in{std::string(line)};
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Two port numbers L <= H, 1..65535, or an error.
ServerPassive with_range(ServerPassive p, const std::string& lo, const std::string& hi, const std::string& what) {
  const auto l = number(lo), h = number(hi);
  if (!l || !h || *l < 1 || *h > 65535 || *l > *h) {
    p.error = what + " '" + lo + " " + hi + "' is not a port range L H with 1 <= L <= H <= 65535";
    return p;
  }
  p.range = PortRange{static_cast<std::uint16_t>(*l), static_cast<std::uint16_t>(*h)};
  return p;
}

}  // namespace

std::string PortRange::to_string() const {
  return low == high ? std::to_string(low) : std::to_string(low) + "-" + std::to_string(high);
}

std::string ServerPassive::setting(const PortRange& r) const {
  const std::string l = std::to_string(r.low), h = std::to_string(r.high);
  if (software == "vsftpd") return "pasv_min_port=" + l + " and pasv_max_port=" + h;
  if (software == "proftpd") return "PassivePorts " + l + " " + h;
  if (file.ends_with("/PassivePortRange")) return "\"" + l + " " + h + "\"";
  return "PassivePortRange " + l + " " + h;
}

ServerPassive parse_vsftpd(std::string_view text, const std::string& file) {
  ServerPassive p{"vsftpd", file, std::nullopt, {}};
  std::optional<std::string> lo, hi;
  for (const auto& line : config_lines(text)) {
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = trim(std::string_view(line).substr(0, eq)), value = trim(std::string_view(line).substr(eq + 1));
    if (key == "pasv_min_port") lo = value;
    if (key == "pasv_max_port") hi = value;
  }
  // vsftpd: 0 (the default) is "no limit": the low end 1024, the high end 65535.
  const std::string l = lo.value_or("0"), h = hi.value_or("0");
  if (number(l) == 0L && number(h) == 0L) {
    if (!number(l) || !number(h)) return with_range(p, l, h, "pasv_min_port/pasv_max_port");
    return p;
  }
  return with_range(p, number(l) == 0L ? "1024" : l, number(h) == 0L ? "65535" : h, "pasv_min_port/pasv_max_port");
}

ServerPassive parse_proftpd(std::string_view text, const std::string& file) {
  ServerPassive p{"proftpd", file, std::nullopt, {}};
  std::optional<std::vector<std::string>> last;
  for (const auto& line : config_lines(text)) {
    auto w = words(line);
    if (!w.empty() && lower(w[0]) == "passiveports") last = std::move(w);
  }
  if (!last) return p;
  if (last->size() != 3) {
    p.error = "PassivePorts needs two ports";
    return p;
  }
  return with_range(p, (*last)[1], (*last)[2], "PassivePorts");
}

ServerPassive parse_pure_ftpd(std::string_view text, const std::string& file) {
  ServerPassive p{"pure-ftpd", file, std::nullopt, {}};
  for (const auto& line : config_lines(text)) {
    auto w = words(line);
    if (!w.empty() && w[0] == "PassivePortRange") w.erase(w.begin());
    else if (!w.empty() && !std::isdigit(static_cast<unsigned char>(w[0][0]))) continue;
    if (w.size() != 2) {
      p.error = "PassivePortRange needs two ports";
      return p;
    }
    return with_range(p, w[0], w[1], "PassivePortRange");
  }
  return p;
}

ServerPassive parse_server_config(std::string_view text, const std::string& file) {
  const std::string base = file.substr(file.find_last_of('/') == std::string::npos ? 0 : file.find_last_of('/') + 1);
  if (base.find("vsftpd") != std::string::npos) return parse_vsftpd(text, file);
  if (base.find("proftpd") != std::string::npos) return parse_proftpd(text, file);
  if (base.find("pure-ftpd") != std::string::npos || base == "PassivePortRange") return parse_pure_ftpd(text, file);
  const std::string t(text);
  if (t.find("pasv_") != std::string::npos || t.find("listen=") != std::string::npos) return parse_vsftpd(text, file);
  if (lower(t).find("passiveports") != std::string::npos) return parse_proftpd(text, file);
  if (t.find("PassivePortRange") != std::string::npos) return parse_pure_ftpd(text, file);
  return ServerPassive{"", file, std::nullopt, "not a vsftpd, proftpd or pure-ftpd configuration (no passive-port setting)"};
}

std::vector<PortRange> uncovered(const PortRange& need, const std::vector<StaticAccept>& accepts) {
  std::vector<PortRange> sorted;
  for (const auto& a : accepts) sorted.push_back(a.ports);
  std::sort(sorted.begin(), sorted.end(), [](const PortRange& a, const PortRange& b) { return a.low < b.low; });
  std::vector<PortRange> gaps;
  std::uint32_t next = need.low;  // first port not yet known to be covered
  for (const auto& r : sorted) {
    if (next > need.high) break;
    if (r.high < next) continue;
    if (r.low > next) gaps.push_back({static_cast<std::uint16_t>(next), static_cast<std::uint16_t>(std::min<std::uint32_t>(r.low - 1, need.high))});
    next = std::max<std::uint32_t>(next, std::uint32_t{r.high} + 1);
  }
  if (next <= need.high) gaps.push_back({static_cast<std::uint16_t>(next), need.high});
  return gaps;
}

namespace {

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string ranges(const std::vector<PortRange>& v) {
  std::vector<std::string> s;
  for (const auto& r : v) s.push_back(r.to_string());
  return join(s, ",");
}

// Accepts of unprivileged ports only: what an admin opened for data connections (21 and 22 are not).
std::vector<StaticAccept> data_accepts(const std::vector<StaticAccept>& accepts) {
  std::vector<StaticAccept> out;
  for (const auto& a : accepts)
    if (a.ports.low >= 1024) out.push_back(a);
  return out;
}

bool helper_attached(const HostFacts& f) { return !f.helper.empty() || f.helper_auto; }

#if FTPWALL_CHECK_HOST
// A process of this name in this PID namespace (/proc/PID/comm).
bool process_running(std::string_view name) {
  DIR* d = ::opendir("/proc");
  if (!d) return false;
  bool found = false;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/comm");
    std::string comm;
    if (std::getline(in, comm) && comm == name) {
      found = true;
      break;
    }
  }
  ::closedir(d);
  return found;
}
#endif

}  // namespace

std::vector<Finding> judge(const HostFacts& f) {
  std::vector<Finding> out;
  const auto add = [&](std::string id, std::string what, std::string fix) {
    out.push_back(Finding{std::move(id), std::move(what), std::move(fix)});
  };
  if (!f.root) {
    add("not_root", "ftpwall check runs without root: the firewall, conntrack and the control socket cannot be read",
        "run it as root: sudo ftpwall check");
    return out;
  }
  for (const auto& e : f.probe_errors)
    add("unreadable", "cannot read " + e, "run ftpwall check as root in the network namespace of the firewall");
  if (!f.backend_error.empty())
    add("backend_unknown", "which backend ftpwalld would pick cannot be told: " + f.backend_error,
        "run ftpwall check as root; ftpwalld would fail to start the same way");

  // The kernel helper.
  for (const auto& h : f.helper)
    add("kernel_helper",
        "the kernel ftp helper is attached by " + h.where +
            ": it opens data connections from whatever the control connection says, without ftpwalld's checks, and "
            "next to ftpwalld every data connection is opened twice",
        h.fix);
  if (f.helper_auto)
    add("kernel_helper_auto", "net.netfilter.nf_conntrack_helper = 1: the kernel attaches the ftp helper to every connection to port 21",
        "sysctl -w net.netfilter.nf_conntrack_helper=0, and the same in /etc/sysctl.d/");
  if (f.helper_entries > 0)
    add("kernel_helper_conntrack",
        std::to_string(f.helper_entries) + " conntrack " + (f.helper_entries == 1 ? "entry carries" : "entries carry") +
            " helper ftp (connections the helper was attached to; they keep it until they end)",
        "once nothing attaches the helper: conntrack -D -p tcp --orig-port-dst 21 (or let them end)");

  // ftpwalld.
  const bool static_open = f.server && f.server->error.empty() && f.server->range && f.filtering &&
                           uncovered(*f.server->range, f.accepts).empty();
  if (!f.config_error.empty())
    add("config", "ftpwalld's configuration cannot be read: " + f.config_error, "fix the file (ftpwall.conf(5)), or point --config at the one ftpwalld uses");
  if (!f.daemon_running) {
    if (!static_open)
      add("daemon_not_running", "ftpwalld does not answer on its control socket (" + f.daemon_why + ")",
          "start it: systemctl enable --now ftpwalld (installing does not start it), or point --socket at its control socket");
    for (const auto& e : f.preflight_errors)
      add("daemon_would_not_start", "ftpwalld would refuse to start (" + f.config_source + "): " + e,
          "change what the message names (ftpwalld(8), BACKENDS), then start ftpwalld");
  } else {
    if (f.hooks_complete == false)
      add("daemon_hooks_incomplete", "ftpwalld runs, but its hooks are incomplete: " + f.hooks_detail,
          f.daemon_hooks_mode == "admin"
              ? "load the ruleset from `ftpwall rules --helper ftpwalld --hooks admin` (FTPWALL-* chains and steering)"
              : "ftpwalld puts its hooks back at its next kernel check; if they stay missing, systemctl restart ftpwalld and read its log");
    if (f.config_backend == "auto" && !f.backend.empty() && !f.daemon_backend.empty() && f.daemon_backend != f.backend)
      add("backend_changed",
          "ftpwalld uses " + f.daemon_backend + " (" + f.daemon_backend_why + "), but the firewall now makes it pick " + f.backend +
              " (" + f.backend_why + ")",
          "systemctl restart ftpwalld, so that its openings go into the firewall the rules are in");
  }

  // [ha]: the pair's kernel and daemons (ftpwalld(8), HIGH AVAILABILITY).
  if (f.ha_enabled) {
    if (f.tcp_loose.value_or(false))
      add("ha_tcp_loose",
          "[ha] is enabled but net.netfilter.nf_conntrack_tcp_loose = 1: after a failover this gateway picks up connections "
          "conntrackd never replicated by itself, and ftpwalld sees them without their HA labels",
          "sysctl -w net.netfilter.nf_conntrack_tcp_loose=0, and the same in /etc/sysctl.d/ (ftpwall rules --ha "
          "--ha-output-dir writes 99-ftpwall-ha.conf)");
    if (!f.conntrackd_running)
      add("ha_no_conntrackd", "[ha] is enabled but no conntrackd runs: nothing replicates the sessions' conntrack entries and labels",
          "install the conntrackd.conf of ftpwall rules --ha --ha-output-dir and start conntrackd (before keepalived)");
    if (!f.keepalived_running)
      add("ha_no_keepalived",
          "[ha] is enabled but no keepalived runs: nothing moves the virtual addresses or calls ftpwall takeover and standby",
          "install the keepalived.conf and ftpwall-ha-notify of ftpwall rules --ha --ha-output-dir and start keepalived");
  }

  // The FTP server's passive range.
  if (f.server) {
    const ServerPassive& s = *f.server;
    if (!s.error.empty()) {
      add("server_config", (s.software.empty() ? "" : s.software + " ") + s.file + ": " + s.error,
          "fix the passive-port setting of the FTP server");
    } else if (s.range) {
      const PortRange r = *s.range;
      if (r.low < f.port_floor) {
        const PortRange fixed{std::max(f.port_floor, r.low), std::max(f.port_floor, r.high)};
        add("port_floor",
            s.software + " passive ports " + r.to_string() + " (" + s.file + ") start below ftpwalld's policy.port_floor = " +
                std::to_string(f.port_floor) + " (" + f.config_source + "): ftpwalld refuses the announcements of ports below it",
            "set " + s.setting(fixed) + " in " + s.file + ", or policy.port_floor = " + std::to_string(r.low) +
                " in ftpwalld's configuration (never below 1024)");
      }
      if (!f.daemon_running && !helper_attached(f) && f.filtering) {
        const auto gaps = uncovered(r, f.accepts);
        if (!gaps.empty()) {
          const auto open = data_accepts(f.accepts);
          std::vector<std::string> seen;
          for (const auto& a : open) seen.push_back(a.ports.to_string() + " (" + a.where + ")");
          std::string what = s.software + " passive ports " + r.to_string() + " (" + s.file + ") are not open in the firewall";
          if (gaps.size() != 1 || !(gaps.front() == r)) what += " (" + ranges(gaps) + " not accepted)";
          what += seen.empty() ? ": it accepts no passive range" : ": it accepts " + join(seen);
          what += ", and neither ftpwalld nor the kernel helper opens them";
          std::string fix;
          if (open.size() == 1) fix = "set " + s.setting(open.front().ports) + " in " + s.file + " (the range the firewall accepts), or ";
          fix += "accept " + r.to_string() + " (ftpwall rules --helper none --passive-ports " + std::to_string(r.low) + "-" +
                 std::to_string(r.high) + "), or run ftpwalld";
          add("passive_range_not_open", what, fix);
        }
      }
    } else if (!f.daemon_running && !helper_attached(f) && f.filtering) {
      add("passive_range_unset",
          s.software + " (" + s.file + ") sets no passive range: it picks any port, which no static accept in the firewall covers",
          "set " + s.setting({61000, 61100}) + " (sized to its sessions) and accept it (ftpwall rules --helper none), or run ftpwalld");
    }
  }
  return out;
}

namespace {

std::string firewall_line(const HostFacts& f) {
  std::vector<std::string> parts;
  if (!f.legacy_rules.empty())
    parts.push_back("iptables-legacy (tables " + join(f.legacy_tables, " ") + "; rules: " + f.legacy_rules + ")");
  else if (!f.legacy_tables.empty())
    parts.push_back("iptables-legacy tables " + join(f.legacy_tables, " ") + " without rules");
  if (!f.iptables_nft_tables.empty()) parts.push_back("iptables-nft (" + join(f.iptables_nft_tables) + ")");
  if (!f.firewalld_tables.empty()) parts.push_back("firewalld (" + join(f.firewalld_tables) + ")");
  if (!f.native_nft_tables.empty()) parts.push_back("nftables (" + join(f.native_nft_tables) + ")");
  if (parts.empty()) return "none (no rules in iptables-legacy tables, no nftables table)";
  return join(parts, "; ") + (f.filtering ? "; filters input or forward" : "; drops nothing at input or forward");
}

}  // namespace

std::string format_check_text(const HostFacts& f, const std::vector<Finding>& findings) {
  std::ostringstream o;
  if (f.root) {
    o << "firewall: " << firewall_line(f) << "\n";
    if (f.backend_error.empty()) o << "backend: ftpwalld would pick " << f.backend << " (" << f.backend_why << ")\n";
    std::vector<std::string> h;
    for (const auto& a : f.helper) h.push_back(a.where);
    if (f.helper_auto) h.push_back("net.netfilter.nf_conntrack_helper = 1");
    o << "kernel helper: " << (h.empty() ? "not attached" : "attached by " + join(h, "; "));
    if (f.helper_entries) o << "; " << f.helper_entries << " conntrack entries with helper ftp";
    o << "\n";
    if (f.daemon_running) {
      o << "ftpwalld: running, " << f.daemon_version << ", role " << f.daemon_role << ", backend " << f.daemon_backend << " ("
        << f.daemon_backend_why << "), hooks by " << f.daemon_hooks_mode;
      if (f.hooks_complete) o << ": " << (*f.hooks_complete ? "complete" : "incomplete");
      if (!f.hooks_detail.empty()) o << " (" << f.hooks_detail << ")";
      o << "\n";
    } else {
      o << "ftpwalld: not running (" << f.daemon_why << ")\n";
      for (const auto& w : f.preflight_warnings) o << "ftpwalld would warn: " << w << "\n";
    }
  }
  o << "configuration: " << f.config_source << ", backend " << f.config_backend << ", policy.port_floor " << f.port_floor << "\n";
  if (f.ha_enabled)
    o << "ha: enabled; nf_conntrack_tcp_loose " << (f.tcp_loose ? (*f.tcp_loose ? "1" : "0") : "unread") << ", conntrackd "
      << (f.conntrackd_running ? "running" : "not running") << ", keepalived " << (f.keepalived_running ? "running" : "not running")
      << "\n";
  if (f.server) {
    o << "ftp server: " << (f.server->software.empty() ? "?" : f.server->software) << " " << f.server->file << ": ";
    if (!f.server->error.empty()) o << f.server->error;
    else if (f.server->range) o << "passive ports " << f.server->range->to_string();
    else o << "no passive range (any port)";
    o << "\n";
  } else {
    o << "ftp server: no vsftpd, proftpd or pure-ftpd configuration found\n";
  }
  if (f.root) {
    std::vector<std::string> a;
    for (const auto& s : data_accepts(f.accepts)) a.push_back(s.ports.to_string() + " (" + s.where + ")");
    o << "static accepts of unprivileged ports: " << (a.empty() ? "none" : join(a)) << "\n";
  }
  for (const auto& x : findings) o << "finding: " << x.what << "; fix: " << x.fix << "\n";
  if (findings.empty()) o << "no findings\n";
  else o << findings.size() << (findings.size() == 1 ? " finding\n" : " findings\n");
  return o.str();
}

std::string format_check_json(const HostFacts& f, const std::vector<Finding>& findings) {
  json j;
  json accepts = json::array();
  for (const auto& a : f.accepts) accepts.push_back(json{{"where", a.where}, {"low", a.ports.low}, {"high", a.ports.high}});
  j["root"] = f.root;
  j["firewall"] = json{{"legacy_tables", f.legacy_tables},
                       {"legacy_rules", f.legacy_rules},
                       {"iptables_nft", f.iptables_nft_tables},
                       {"firewalld", f.firewalld_tables},
                       {"nftables", f.native_nft_tables},
                       {"filtering", f.filtering},
                       {"accepts", accepts}};
  j["backend"] = json{{"name", f.backend}, {"why", f.backend_why}, {"error", f.backend_error}};
  json helper = json::array();
  for (const auto& h : f.helper) helper.push_back(json{{"where", h.where}, {"fix", h.fix}});
  j["kernel_helper"] = json{{"attached", helper}, {"auto_assign", f.helper_auto}, {"conntrack_entries", f.helper_entries}};
  json d{{"running", f.daemon_running}};
  if (f.daemon_running) {
    d["version"] = f.daemon_version;
    d["role"] = f.daemon_role;
    d["backend"] = f.daemon_backend;
    d["backend_why"] = f.daemon_backend_why;
    d["hooks"] = f.daemon_hooks_mode;
    d["hooks_complete"] = f.hooks_complete ? json(*f.hooks_complete) : json(nullptr);
    d["hooks_detail"] = f.hooks_detail;
  } else {
    d["why"] = f.daemon_why;
    d["preflight_errors"] = f.preflight_errors;
    d["preflight_warnings"] = f.preflight_warnings;
  }
  j["ftpwalld"] = d;
  j["config"] = json{{"source", f.config_source}, {"backend", f.config_backend}, {"port_floor", f.port_floor}, {"error", f.config_error}};
  j["ha"] = json{{"enabled", f.ha_enabled},
                 {"tcp_loose", f.tcp_loose ? json(*f.tcp_loose) : json(nullptr)},
                 {"conntrackd_running", f.conntrackd_running},
                 {"keepalived_running", f.keepalived_running}};
  if (f.server) {
    json s{{"software", f.server->software}, {"file", f.server->file}, {"error", f.server->error}};
    s["passive"] = f.server->range ? json{{"low", f.server->range->low}, {"high", f.server->range->high}} : json(nullptr);
    j["server"] = s;
  } else {
    j["server"] = nullptr;
  }
  json list = json::array();
  for (const auto& x : findings) list.push_back(json{{"id", x.id}, {"what", x.what}, {"fix", x.fix}});
  j["findings"] = list;
  return j.dump() + "\n";
}

CLI::App* add_check_command(CLI::App& app, CheckOptions& o) {
  CLI::App* c = app.add_subcommand("check", "inspect this host: firewall and backend, kernel helper, ftpwalld and its hooks, "
                                            "the FTP server's passive range; the fix for each finding");
  c->add_option("--socket", o.socket, "ftpwalld's control socket (default: /run/ftpwalld/control)")->type_name("PATH");
  c->add_option("--config", o.config, "ftpwalld's configuration (default: the file the running daemon reports, else /etc/ftpwall/ftpwalld.conf when present)")
      ->type_name("FILE");
  c->add_option("--server-config", o.server_config,
                "the FTP server's configuration (default: the first of /etc/vsftpd.conf, /etc/vsftpd/vsftpd.conf, "
                "/etc/proftpd/proftpd.conf, /etc/pure-ftpd/conf/PassivePortRange, /etc/pure-ftpd/pure-ftpd.conf)")
      ->type_name("FILE");
  c->add_flag("--json", o.json, "the facts and findings as one JSON document (field names: ftpwall(8), CHECK)");
  return c;
}

}  // namespace ftpwall::cli

// ---- the host probes ----

#if FTPWALL_CHECK_HOST
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <libiptc/libiptc.h>
#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/xt_CT.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_tcpudp.h>
#pragma GCC diagnostic pop

#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "firewall/iptc_backend.hpp"
#include "ftpwall/firewall/backend.hpp"
#include "netlink/conntrack.hpp"
#include "netlink/nftables.hpp"
#endif

namespace ftpwall::cli {
namespace {

bool read_file(const std::string& path, std::string& text) {
  std::ifstream in(path);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  text = s.str();
  return true;
}

void probe_daemon(const CheckOptions& o, HostFacts& f) {
  std::string answer, why;
  if (!ask_daemon(o.socket, "status", answer, why)) {
    f.daemon_why = "no answer at " + o.socket + ": " + why;
    return;
  }
  try {
    const json j = json::parse(answer);
    if (j.contains("error")) {
      f.daemon_why = o.socket + " answered: " + j["error"].get<std::string>();
      return;
    }
    f.daemon_running = true;
    f.daemon_version = "version " + j.value("version", std::string("?")) + ", up " + std::to_string(j.value("uptime_s", 0L)) + " s";
    f.daemon_role = j.value("role", std::string("?"));
    f.daemon_backend = j.value("backend", std::string("?"));
    f.daemon_backend_why = j.value("backend_why", std::string("?"));
    f.daemon_hooks_mode = j.value("hooks", std::string("?"));
    f.daemon_config = j.value("config", std::string());
  } catch (const std::exception& e) {
    f.daemon_why = o.socket + " answered something that is not ftpwalld's status document";
  }
}

#if FTPWALL_CHECK_HOST

using firewall::BackendKind;

struct Spec {
  firewall::HookSpec hook;
  bool daemon_hooks = true;
};

#if FTPWALL_REPLAY_CONFIG
Spec spec_of(const config::Config& c) {
  Spec s;
  s.hook.role = c.role == config::Role::gateway ? firewall::Role::gateway : firewall::Role::server;
  s.hook.control_ports = c.control_ports;
  s.hook.queue_num = c.queue.number;
  s.hook.queues_total = c.queue.count;
  s.hook.queue_bypass = c.queue.bypass;
  s.hook.exempt_mark = c.queue.exempt_mark;
  s.hook.nat = c.role == config::Role::gateway;  // as ftpwalld's Daemon::hook_spec()
  s.hook.accept_mark = c.queue.accept_mark;
  s.daemon_hooks = c.hooks == config::HooksMode::daemon;
  return s;
}
#endif

BackendKind kind_of(std::string_view name) {
  if (name == "iptables-legacy") return BackendKind::iptables_legacy;
  if (name == "nftables") return BackendKind::nftables;
  return BackendKind::automatic;
}

bool has_all_legacy_tables(const std::vector<std::string>& tables, std::string& missing) {
  for (const char* t : {"mangle", "filter", "nat"})
    if (std::find(tables.begin(), tables.end(), t) == tables.end()) missing += (missing.empty() ? "" : " ") + std::string(t);
  return missing.empty();
}

// ---- iptables-legacy ----

template <class F>
void each_match(const ipt_entry* e, F&& f) {
  const auto* base = reinterpret_cast<const std::uint8_t*>(e);
  for (std::size_t i = sizeof(ipt_entry); i < e->target_offset;) {
    const auto* m = reinterpret_cast<const xt_entry_match*>(base + i);
    if (m->u.match_size < sizeof(xt_entry_match)) break;
    f(*m);
    i += m->u.match_size;
  }
}

const xt_entry_target* target_of(const ipt_entry* e) {
  return reinterpret_cast<const xt_entry_target*>(reinterpret_cast<const std::uint8_t*>(e) + e->target_offset);
}

// The helper a CT target sets (xt_ct_target_info and its v1/v2 share the layout up to `helper`).
std::string ct_helper_of(const void* data, std::size_t len) {
  if (len < offsetof(xt_ct_target_info, helper) + 1) return {};
  const auto* info = static_cast<const xt_ct_target_info*>(data);
  const std::size_t room = std::min(sizeof info->helper, len - offsetof(xt_ct_target_info, helper));
  return std::string(info->helper, strnlen(info->helper, room));
}

// -m conntrack --ctstate: whether NEW connections can match (no state match: yes).
bool conntrack_allows_new(const xt_entry_match& m) {
  const unsigned rev = m.u.user.revision;
  const std::size_t len = m.u.match_size - sizeof(xt_entry_match);
  std::uint16_t flags = 0, invert = 0, states = 0;
  if (rev == 1 && len >= sizeof(xt_conntrack_mtinfo1)) {
    const auto* i = reinterpret_cast<const xt_conntrack_mtinfo1*>(m.data);
    flags = i->match_flags, invert = i->invert_flags, states = i->state_mask;
  } else if (rev >= 2 && len >= sizeof(xt_conntrack_mtinfo2)) {
    const auto* i = reinterpret_cast<const xt_conntrack_mtinfo2*>(m.data);
    flags = i->match_flags, invert = i->invert_flags, states = i->state_mask;
  } else {
    return true;
  }
  if (!(flags & XT_CONNTRACK_STATE)) return true;
  const bool has_new = states & XT_CONNTRACK_STATE_BIT(IP_CT_NEW);
  return (invert & XT_CONNTRACK_STATE) ? !has_new : has_new;
}

void probe_legacy(HostFacts& f) {
  using Handle = std::unique_ptr<xtc_handle, void (*)(xtc_handle*)>;
  const auto has = [&](const char* t) { return std::find(f.legacy_tables.begin(), f.legacy_tables.end(), t) != f.legacy_tables.end(); };
  // Only tables that exist: looking at a missing one through libiptc creates it.
  if (has("raw")) {
    Handle h(iptc_init("raw"), &iptc_free);
    if (!h) {
      f.probe_errors.push_back(std::string("iptables-legacy table raw: ") + iptc_strerror(errno));
    } else {
      for (const char* c = iptc_first_chain(h.get()); c; c = iptc_next_chain(h.get())) {
        unsigned n = 0;
        for (const ipt_entry* e = iptc_first_rule(c, h.get()); e; e = iptc_next_rule(e, h.get())) {
          ++n;
          const xt_entry_target* t = target_of(e);
          if (std::strcmp(t->u.user.name, "CT") != 0) continue;
          const std::string helper = ct_helper_of(t->data, t->u.target_size - sizeof(xt_entry_target));
          if (helper != "ftp") continue;
          f.helper.push_back({"iptables-legacy raw " + std::string(c) + " rule " + std::to_string(n) + " (-j CT --helper ftp)",
                              "iptables-legacy -t raw -D " + std::string(c) + " " + std::to_string(n) +
                                  " and drop it from the saved ruleset (/etc/iptables/rules.v4, /etc/sysconfig/iptables)"});
        }
      }
    }
  }
  if (has("filter")) {
    Handle h(iptc_init("filter"), &iptc_free);
    if (!h) {
      f.probe_errors.push_back(std::string("iptables-legacy table filter: ") + iptc_strerror(errno));
      return;
    }
    for (const char* c = iptc_first_chain(h.get()); c; c = iptc_next_chain(h.get())) {
      const std::string chain = c;
      if (chain == "OUTPUT" || chain.starts_with("FTPWALL-")) continue;
      const bool hook = chain == "INPUT" || chain == "FORWARD";
      if (hook) {
        ipt_counters counters{};
        const char* policy = iptc_get_policy(c, &counters, h.get());
        if (policy && std::strcmp(policy, "ACCEPT") != 0) f.filtering = true;
      }
      unsigned n = 0;
      for (const ipt_entry* e = iptc_first_rule(c, h.get()); e; e = iptc_next_rule(e, h.get())) {
        ++n;
        const std::string target = iptc_get_target(e, h.get());
        bool only_comments = true;  // -m comment matches everything
        each_match(e, [&](const xt_entry_match& m) { only_comments = only_comments && std::strcmp(m.u.user.name, "comment") == 0; });
        const bool bare = only_comments && e->ip.src.s_addr == 0 && e->ip.smsk.s_addr == 0 &&
                          e->ip.dmsk.s_addr == 0 && e->ip.proto == 0 && e->ip.iniface[0] == 0 && e->ip.outiface[0] == 0;
        if (hook && bare && (target == "DROP" || target == "REJECT")) f.filtering = true;
        if (target != "ACCEPT" || e->ip.proto != IPPROTO_TCP || (e->ip.invflags & IPT_INV_PROTO)) continue;
        // Data connections come from the clients: a rule naming a source but no destination is
        // for connections from that host (the server's active mode), not for the passive range.
        if (e->ip.smsk.s_addr != 0 && e->ip.dmsk.s_addr == 0) continue;
        std::optional<PortRange> ports;
        bool new_ok = true;
        each_match(e, [&](const xt_entry_match& m) {
          if (std::strcmp(m.u.user.name, "tcp") == 0 && m.u.match_size >= sizeof(xt_entry_match) + sizeof(xt_tcp)) {
            const auto* t = reinterpret_cast<const xt_tcp*>(m.data);
            if (!(t->invflags & XT_TCP_INV_DSTPT) && !(t->dpts[0] == 0 && t->dpts[1] == 0xFFFF)) ports = PortRange{t->dpts[0], t->dpts[1]};
          } else if (std::strcmp(m.u.user.name, "conntrack") == 0) {
            new_ok = new_ok && conntrack_allows_new(m);
          } else if (std::strcmp(m.u.user.name, "state") == 0) {
            new_ok = false;  // -m state: rare next to --ctstate; not read
          }
        });
        if (ports && new_ok) f.accepts.push_back({"iptables-legacy filter " + chain + " rule " + std::to_string(n), *ports});
      }
    }
  }
}

// ---- nftables (iptables-nft, firewalld, native) ----

using ChainKey = std::tuple<std::string, std::string, std::string>;

bool iptables_nft_table(const std::string& family, const std::string& table) {
  return (family == "ip" || family == "ip6") &&
         (table == "filter" || table == "nat" || table == "mangle" || table == "raw" || table == "security");
}

enum class TableKind { iptables_nft, firewalld, ftpwall, native };
TableKind kind_of_table(const std::string& family, const std::string& table) {
  if (family == "inet" && table == "firewalld") return TableKind::firewalld;
  if (family == "inet" && table == "ftpwall") return TableKind::ftpwall;
  if (iptables_nft_table(family, table)) return TableKind::iptables_nft;
  return TableKind::native;
}

std::uint32_t be_u16(const nftnl_expr* e, std::uint16_t attr) {
  std::uint32_t len = 0;
  const void* d = nftnl_expr_get(e, attr, &len);
  if (!d || len != 2) return 0x10000;  // not a port
  std::uint16_t v;
  std::memcpy(&v, d, 2);
  return ntohs(v);
}

// What one rule does, as far as check cares.
struct RuleLook {
  std::string family, table, chain;
  std::uint64_t handle = 0;
  std::string ct_helper_object;  // ct helper set "<object>"
  bool ct_helper_map = false;    // ct helper set by a map
  std::string ct_target_helper;  // iptables-nft -j CT --helper X (xt compat target)
  // a static accept
  std::optional<std::uint32_t> dport_low, dport_high;
  bool dport_other = false;      // a set lookup or a != on dport: not read
  bool saddr = false, daddr = false, not_tcp = false, not_new = false;
  bool accepts = false, drops = false, conditional = false;
};

RuleLook look_at(nftnl_rule* r) {
  RuleLook k;
  k.family = netlink::nft_family_name(nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY));
  k.table = nftnl_rule_get_str(r, NFTNL_RULE_TABLE);
  k.chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
  k.handle = nftnl_rule_get_u64(r, NFTNL_RULE_HANDLE);
  struct Ctx {
    RuleLook& k;
    enum class Load { none, dport, l4proto, ctstate } load = Load::none;
    std::optional<std::uint32_t> ct_mask;
  } ctx{k, Ctx::Load::none, std::nullopt};
  nftnl_expr_foreach(
      r,
      [](nftnl_expr* e, void* d) -> int {
        auto& c = *static_cast<Ctx*>(d);
        RuleLook& rl = c.k;
        const std::string n = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
        if (n == "counter" || n == "log") return 0;
        if (n == "immediate" && nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT)) {
          const auto v = static_cast<std::int32_t>(nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT));
          if (v == NF_ACCEPT) rl.accepts = true;
          if (v == NF_DROP) rl.drops = true;
          return 0;
        }
        if (n == "reject") {
          rl.drops = true;
          return 0;
        }
        if (n == "objref") {
          if (nftnl_expr_is_set(e, NFTNL_EXPR_OBJREF_IMM_TYPE) && nftnl_expr_get_u32(e, NFTNL_EXPR_OBJREF_IMM_TYPE) == NFT_OBJECT_CT_HELPER)
            rl.ct_helper_object = nftnl_expr_get_str(e, NFTNL_EXPR_OBJREF_IMM_NAME);
          else if (nftnl_expr_is_set(e, NFTNL_EXPR_OBJREF_SET_NAME))
            rl.ct_helper_map = true;  // an object map: told apart by the objects it names (below)
          return 0;
        }
        // iptables-nft through the compat layer: -m comment matches everything, -j REJECT drops.
        if (n == "match" && nftnl_expr_is_set(e, NFTNL_EXPR_MT_NAME) && std::string(nftnl_expr_get_str(e, NFTNL_EXPR_MT_NAME)) == "comment")
          return 0;
        if (n == "target" && nftnl_expr_is_set(e, NFTNL_EXPR_TG_NAME) && std::string(nftnl_expr_get_str(e, NFTNL_EXPR_TG_NAME)) == "REJECT") {
          rl.drops = true;
          return 0;
        }
        if (n == "target" && nftnl_expr_is_set(e, NFTNL_EXPR_TG_NAME) && std::string(nftnl_expr_get_str(e, NFTNL_EXPR_TG_NAME)) == "CT") {
          std::uint32_t len = 0;
          const void* info = nftnl_expr_get(e, NFTNL_EXPR_TG_INFO, &len);
          if (info) rl.ct_target_helper = ct_helper_of(info, len);
          return 0;
        }
        rl.conditional = true;
        if (n == "payload") {
          const auto base = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_BASE);
          const auto off = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET);
          const auto len = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_LEN);
          c.load = Ctx::Load::none;
          if (base == NFT_PAYLOAD_TRANSPORT_HEADER && off == 2 && len == 2) c.load = Ctx::Load::dport;
          if (base == NFT_PAYLOAD_NETWORK_HEADER && ((off == 12 && len == 4) || (off == 8 && len == 16))) rl.saddr = true;
          if (base == NFT_PAYLOAD_NETWORK_HEADER && ((off == 16 && len == 4) || (off == 24 && len == 16))) rl.daddr = true;
          return 0;
        }
        if (n == "meta") {
          c.load = nftnl_expr_is_set(e, NFTNL_EXPR_META_DREG) && nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY) == NFT_META_L4PROTO
                       ? Ctx::Load::l4proto
                       : Ctx::Load::none;
          return 0;
        }
        if (n == "ct") {
          c.load = nftnl_expr_is_set(e, NFTNL_EXPR_CT_DREG) && nftnl_expr_get_u32(e, NFTNL_EXPR_CT_KEY) == NFT_CT_STATE
                       ? Ctx::Load::ctstate
                       : Ctx::Load::none;
          c.ct_mask.reset();
          return 0;
        }
        if (n == "bitwise" && c.load == Ctx::Load::ctstate) {
          std::uint32_t len = 0;
          const void* m = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &len);
          if (m && len == 4) {
            std::uint32_t v;
            std::memcpy(&v, m, 4);
            c.ct_mask = v;
          }
          return 0;
        }
        if (n == "cmp") {
          const auto op = nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP);
          if (c.load == Ctx::Load::dport) {
            const std::uint32_t v = be_u16(e, NFTNL_EXPR_CMP_DATA);
            if (v > 0xFFFF) rl.dport_other = true;
            else if (op == NFT_CMP_EQ) rl.dport_low = rl.dport_high = v;
            else if (op == NFT_CMP_GTE) rl.dport_low = v;
            else if (op == NFT_CMP_GT) rl.dport_low = v + 1;
            else if (op == NFT_CMP_LTE) rl.dport_high = v;
            else if (op == NFT_CMP_LT && v > 0) rl.dport_high = v - 1;
            else rl.dport_other = true;
          } else if (c.load == Ctx::Load::l4proto) {
            std::uint32_t len = 0;
            const void* v = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
            if (v && len == 1 && op == NFT_CMP_EQ && *static_cast<const std::uint8_t*>(v) != IPPROTO_TCP) rl.not_tcp = true;
          } else if (c.load == Ctx::Load::ctstate && c.ct_mask) {
            // ct state X,Y: (state & mask) != 0; NEW is bit 1 << (IP_CT_NEW + 1) (nft: 8).
            if (op == NFT_CMP_NEQ && !(*c.ct_mask & NF_CT_STATE_BIT(IP_CT_NEW))) rl.not_new = true;
          }
          return 0;
        }
        if (n == "range" && c.load == Ctx::Load::dport) {
          const std::uint32_t lo = be_u16(e, NFTNL_EXPR_RANGE_FROM_DATA), hi = be_u16(e, NFTNL_EXPR_RANGE_TO_DATA);
          if (lo > 0xFFFF || hi > 0xFFFF || nftnl_expr_get_u32(e, NFTNL_EXPR_RANGE_OP) != NFT_RANGE_EQ) rl.dport_other = true;
          else rl.dport_low = lo, rl.dport_high = hi;
          return 0;
        }
        if (n == "lookup" && c.load == Ctx::Load::dport) rl.dport_other = true;
        return 0;
      },
      &ctx);
  return k;
}

void probe_nft(HostFacts& f) {
  auto chains = netlink::list_nft_base_chains();
  if (!chains) {
    f.probe_errors.push_back("nftables chains: " + chains.error().message);
    return;
  }
  std::set<std::pair<std::string, std::string>> tables;
  std::map<ChainKey, netlink::NftBaseChain> base;
  for (const auto& c : *chains) {
    tables.insert({c.family, c.table});
    base[{c.family, c.table, c.chain}] = c;
    const bool ip = c.family == "ip" || c.family == "inet" || c.family == "ip6";
    if (ip && c.type == "filter" && (c.hook == netlink::Hook::input || c.hook == netlink::Hook::forward) && c.policy_drop &&
        kind_of_table(c.family, c.table) != TableKind::ftpwall)
      f.filtering = true;
  }
  // ct helper objects: which helper each one is.
  std::map<std::tuple<std::string, std::string, std::string>, std::string> helper_objects;
  auto objs = netlink::nf_dump(
      [](char* buf, std::uint32_t seq) { return nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETOBJ, NFPROTO_UNSPEC, NLM_F_DUMP, seq); },
      [&](const nlmsghdr* m) {
        nftnl_obj* o = nftnl_obj_alloc();
        if (nftnl_obj_nlmsg_parse(m, o) >= 0 && nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE) == NFT_OBJECT_CT_HELPER) {
          tables.insert({netlink::nft_family_name(nftnl_obj_get_u32(o, NFTNL_OBJ_FAMILY)), nftnl_obj_get_str(o, NFTNL_OBJ_TABLE)});
          helper_objects[{netlink::nft_family_name(nftnl_obj_get_u32(o, NFTNL_OBJ_FAMILY)), nftnl_obj_get_str(o, NFTNL_OBJ_TABLE),
                          nftnl_obj_get_str(o, NFTNL_OBJ_NAME)}] =
              nftnl_obj_is_set(o, NFTNL_OBJ_CT_HELPER_NAME) ? nftnl_obj_get_str(o, NFTNL_OBJ_CT_HELPER_NAME) : "";
        }
        nftnl_obj_free(o);
      });
  if (!objs) f.probe_errors.push_back("nftables objects: " + objs.error().message);
  std::map<ChainKey, unsigned> position;
  auto rules = netlink::nf_dump(
      [](char* buf, std::uint32_t seq) { return nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_UNSPEC, NLM_F_DUMP, seq); },
      [&](const nlmsghdr* m) {
        nftnl_rule* r = nftnl_rule_alloc();
        if (nftnl_rule_nlmsg_parse(m, r) < 0) {
          nftnl_rule_free(r);
          return;
        }
        const RuleLook k = look_at(r);
        nftnl_rule_free(r);
        tables.insert({k.family, k.table});
        const unsigned n = ++position[{k.family, k.table, k.chain}];
        const TableKind tk = kind_of_table(k.family, k.table);
        if (tk == TableKind::ftpwall) return;
        const std::string where = (tk == TableKind::iptables_nft ? "iptables-nft " + k.table + " " + k.chain + " rule " + std::to_string(n)
                                                                 : "nft " + k.family + " " + k.table + " " + k.chain + " handle " +
                                                                       std::to_string(k.handle));
        const std::string nft_delete = "nft delete rule " + k.family + " " + k.table + " " + k.chain + " handle " + std::to_string(k.handle);
        const std::string firewalld_fix =
            "firewalld attaches it for its ftp service: firewall-cmd --permanent --zone=ZONE --remove-service=ftp "
            "--add-port=21/tcp, then firewall-cmd --reload";
        if (k.ct_target_helper == "ftp")
          f.helper.push_back({where + " (-j CT --helper ftp)", tk == TableKind::iptables_nft ? "iptables-nft -t " + k.table + " -D " + k.chain + " " + std::to_string(n) +
                                                                                                " and drop it from the saved ruleset"
                                                                                          : nft_delete});
        if (!k.ct_helper_object.empty() || k.ct_helper_map) {
          const auto it = helper_objects.find({k.family, k.table, k.ct_helper_object});
          const std::string helper = it == helper_objects.end() ? "" : it->second;
          bool ftp = helper == "ftp";
          if (k.ct_helper_map)  // a map of helpers: ftp if any object of its table is
            for (const auto& [key, h] : helper_objects) ftp = ftp || (std::get<0>(key) == k.family && std::get<1>(key) == k.table && h == "ftp");
          if (ftp)
            f.helper.push_back({where + " (ct helper set " + (k.ct_helper_map ? std::string("by a map") : "\"" + k.ct_helper_object + "\"") +
                                    ", helper ftp)",
                                tk == TableKind::firewalld ? firewalld_fix : nft_delete + " (and from the file the ruleset is loaded from)"});
        }
        const auto b = base.find({k.family, k.table, k.chain});
        const bool ip = k.family == "ip" || k.family == "inet" || k.family == "ip6";
        if (!ip) return;
        const bool at_hook = b != base.end() && b->second.type == "filter" &&
                             (b->second.hook == netlink::Hook::input || b->second.hook == netlink::Hook::forward);
        if (at_hook && k.drops && !k.conditional) f.filtering = true;
        if (b != base.end() && !at_hook) return;  // output, nat, prerouting: not where data connections are accepted
        if (k.accepts && (k.dport_low || k.dport_high) && !k.dport_other && !k.not_tcp && !k.not_new && (!k.saddr || k.daddr)) {
          const std::uint32_t lo = k.dport_low.value_or(0), hi = k.dport_high.value_or(65535);
          if (lo <= hi && hi <= 65535) f.accepts.push_back({where, {static_cast<std::uint16_t>(lo), static_cast<std::uint16_t>(hi)}});
        }
      });
  if (!rules) f.probe_errors.push_back("nftables rules: " + rules.error().message);
  for (const auto& [family, table] : tables) {
    const std::string name = family + " " + table;
    switch (kind_of_table(family, table)) {
      case TableKind::iptables_nft: f.iptables_nft_tables.push_back(name); break;
      case TableKind::firewalld: f.firewalld_tables.push_back(name); break;
      case TableKind::native: f.native_nft_tables.push_back(name); break;
      case TableKind::ftpwall: break;  // ftpwalld's own (reported under ftpwalld)
    }
  }
}

void probe_conntrack(HostFacts& f) {
  auto ct = netlink::Conntrack::open();
  if (!ct) return;  // no conntrack here: no entry can carry a helper
  auto n = (*ct)->dump(Family::v4, [&](const netlink::ConntrackEntry& e) { f.helper_entries += e.helper == "ftp"; });
  (void)n;
}

void probe_backends(const Spec& spec, bool have_spec, HostFacts& f) {
  auto choice = firewall::make_backend(BackendKind::automatic);
  if (!choice) {
    f.backend_error = choice.error().message;
  } else {
    f.backend = std::string(choice->backend->name());
    f.backend_why = choice->why;
  }
  std::string missing;
  const bool legacy_complete = has_all_legacy_tables(f.legacy_tables, missing);
  if (f.daemon_running) {
    // The running daemon's backend, asked for its hooks (hook_state(), as ftpwalld's kernel check does).
    auto b = firewall::make_backend(kind_of(f.daemon_backend));
    if (!b) {
      f.hooks_detail = b.error().message;
      return;
    }
    if (b->backend->name() == "iptables-legacy" && !legacy_complete) {
      f.hooks_complete = false;
      f.hooks_detail = "iptables-legacy table " + missing + " missing";
      return;
    }
    auto st = b->backend->hook_state();
    if (!st) {
      f.probe_errors.push_back("the hooks of " + std::string(b->backend->name()) + ": " + st.error().message);
      return;
    }
    const firewall::HookSpec& hs = spec.hook;
    const unsigned want = firewall::expected_own_hooks(hs, *st);
    std::vector<std::string> parts;
    bool complete = st->accept_chain && (!hs.nat || (st->dnat_chain && st->snat_chain));
    if (!st->accept_chain) parts.push_back("openings chain missing");
    if (hs.nat && !(st->dnat_chain && st->snat_chain)) parts.push_back("nat chains missing");
    if (f.daemon_hooks_mode == "admin") {
      complete = complete && !st->steering.empty();
      parts.push_back(std::to_string(st->steering.size()) + " steering rules (the admin's)");
    } else {
      complete = complete && st->own_hooks >= want;
      parts.push_back(std::to_string(st->own_hooks) + " of " + std::to_string(want) + " hook rules");
    }
    parts.push_back(std::to_string(st->openings) + " openings");
    // ftpwalld's queued openings are its own (nftables): the kernel shows their address pairs.
    if (st->pairs) parts.push_back(std::to_string(st->pairs) + " address pairs steered to the daemon");
    f.hooks_complete = complete;
    f.hooks_detail = join(parts);
    if (!have_spec) f.hooks_detail += "; expected count from the built-in defaults";
    return;
  }
  // Not running: would it start? The daemon's own start checks, read-only.
  auto b = firewall::make_backend(kind_of(f.config_backend));
  if (!b) return;
  if (b->backend->name() == "iptables-legacy" && !legacy_complete) {
    f.preflight_warnings.push_back("not checked: iptables-legacy " + std::string(missing.find(' ') == std::string::npos ? "table " : "tables ") +
                                   missing + " not there yet (ftpwalld creates them; looking would too)");
    return;
  }
  auto pf = b->backend->preflight(spec.hook, spec.daemon_hooks);
  if (!pf) f.preflight_errors.push_back(pf.error().message);
  else f.preflight_warnings = *pf;
}

#endif  // FTPWALL_CHECK_HOST

// The FTP server's configuration: --server-config, else the first usual path that exists.
bool find_server(const CheckOptions& o, HostFacts& f, std::ostream& err) {
  if (!o.server_config.empty()) {
    std::string text;
    if (!read_file(o.server_config, text)) {
      err << "ftpwall: error: --server-config " << o.server_config << ": " << std::strerror(errno) << "\n";
      return false;
    }
    f.server = parse_server_config(text, o.server_config);
    if (f.server->software.empty()) {
      err << "ftpwall: error: --server-config " << o.server_config << ": " << f.server->error << "\n";
      return false;
    }
    return true;
  }
  static const std::pair<const char*, ServerPassive (*)(std::string_view, const std::string&)> known[] = {
      {"/etc/vsftpd.conf", parse_vsftpd},
      {"/etc/vsftpd/vsftpd.conf", parse_vsftpd},
      {"/etc/proftpd/proftpd.conf", parse_proftpd},
      {"/etc/proftpd.conf", parse_proftpd},
      {"/etc/pure-ftpd/conf/PassivePortRange", parse_pure_ftpd},
      {"/etc/pure-ftpd/pure-ftpd.conf", parse_pure_ftpd},
      {"/etc/pure-ftpd.conf", parse_pure_ftpd},
  };
  for (const auto& [path, parse] : known) {
    std::string text;
    if (read_file(path, text)) {
      f.server = parse(text, path);
      return true;
    }
  }
  return true;
}

}  // namespace

int run_check(const CheckOptions& o, std::ostream& out, std::ostream& err) {
  HostFacts f;
  if (!find_server(o, f, err)) return 2;
  f.root = ::geteuid() == 0;
#if FTPWALL_REPLAY_CONFIG
  // ftpwalld's configuration: --config, else the file the running daemon names, else its default path.
  if (f.root) probe_daemon(o, f);
  std::optional<std::string> path;
  if (!o.config.empty()) path = o.config;
  else if (f.daemon_running && !f.daemon_config.empty() && f.daemon_config.front() == '/') path = f.daemon_config;
  if (!o.config.empty() && ::access(o.config.c_str(), R_OK) != 0) {
    err << "ftpwall: error: --config " << o.config << ": " << std::strerror(errno) << "\n";
    return 2;
  }
  config::Config cfg;
  bool have_config = true;
  if (auto c = config::load(path); c) {
    cfg = *c;
  } else {
    f.config_error = c.error().message;
    have_config = false;
  }
  f.config_source = cfg.source;
  f.config_backend = std::string(config::name(cfg.backend));
  f.port_floor = cfg.policy.port_floor;
  f.ha_enabled = cfg.ha.enabled;
#else
  if (f.root) probe_daemon(o, f);
  if (!o.config.empty()) {
    err << "ftpwall: error: --config: this ftpwall was built without toml++\n";
    return 2;
  }
#endif
#if FTPWALL_CHECK_HOST
  if (f.root) {
    f.legacy_tables = firewall::IptcBackend::existing_tables();
    if (auto r = firewall::IptcBackend::admin_rules(); r) f.legacy_rules = *r;
    else f.probe_errors.push_back("iptables-legacy tables: " + r.error().message);
    probe_legacy(f);
    probe_nft(f);
    std::string text;
    if (read_file("/proc/sys/net/netfilter/nf_conntrack_helper", text)) f.helper_auto = trim(text) == "1";
    if (read_file("/proc/sys/net/netfilter/nf_conntrack_tcp_loose", text)) f.tcp_loose = trim(text) != "0";
    f.conntrackd_running = process_running("conntrackd");
    f.keepalived_running = process_running("keepalived");
    probe_conntrack(f);
    Spec spec;
#if FTPWALL_REPLAY_CONFIG
    spec = spec_of(cfg);
#else
    const bool have_config = false;
#endif
    if (f.daemon_running) spec.hook.role = f.daemon_role == "server" ? firewall::Role::server : firewall::Role::gateway;
    if (f.daemon_running) spec.hook.nat = spec.hook.role == firewall::Role::gateway;
    probe_backends(spec, have_config, f);
  }
#else
  if (f.root) f.probe_errors.push_back("the firewall: this ftpwall was built without the kernel libraries (libiptc, libnftnl)");
#endif
  const auto findings = judge(f);
  out << (o.json ? format_check_json(f, findings) : format_check_text(f, findings));
  return check_exit_code(findings);
}

}  // namespace ftpwall::cli
