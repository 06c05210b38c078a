// SPDX-License-Identifier: GPL-2.0-or-later
// `ftpwall rules`: options (CLI11) -> rules::RulesetSpec -> rules::generate() -> stdout or --output.
// Startup errors follow one convention: a single line "ftpwall: error: ..." and exit status 2,
// CLI11's own parse errors included.
#include "cli/rules_cmd.hpp"
#include "cli/check_cmd.hpp"
#include "cli/replay_cmd.hpp"
#include "cli/status_cmd.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

namespace ftpwall::cli {

namespace {

using rules::AnnouncePublic;
using rules::Format;
using rules::Helper;
using rules::Hooks;
using rules::Role;
using rules::ServerSoftware;

// A bad option value: becomes "ftpwall: error: <message>", exit 2.
struct UsageError {
  std::string message;
};

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

template <class E>
E pick(const std::string& opt, const std::string& value, std::initializer_list<std::pair<const char*, E>> choices) {
  std::string list;
  for (const auto& [word, e] : choices) {
    if (value == word) return e;
    list += (list.empty() ? "" : ", ") + std::string(word);
  }
  throw UsageError{opt + ": '" + value + "' is not one of " + list};
}

bool yes_no(const std::string& opt, const std::string& value) {
  return pick<bool>(opt, value, {{"yes", true}, {"no", false}});
}

Address address(const std::string& opt, const std::string& text) {
  auto a = Address::parse(text);
  if (!a) throw UsageError{opt + ": " + a.error().message};
  return *a;
}

Cidr cidr(const std::string& opt, const std::string& text) {
  auto c = Cidr::parse(text);
  if (!c) throw UsageError{opt + ": " + c.error().message};
  return *c;
}

std::string shell_word(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,=+@") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return !in.bad();
}

bool on_path(const std::string& tool) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/sbin:/usr/bin:/sbin:/bin";
  p += ":/usr/sbin:/sbin";  // root tools, also when PATH lacks them
  std::stringstream ss(p);
  std::string dir;
  while (std::getline(ss, dir, ':'))
    if (!dir.empty() && ::access((dir + "/" + tool).c_str(), X_OK) == 0) return true;
  return false;
}

// Raw option values, as CLI11 fills them.
struct RawOptions {
  std::string role = "server";
  std::string helper = "kernel";
  std::string format = "iptables-save";
  std::string family = "4";
  std::vector<int> control_ports;
  std::vector<std::string> passive_ports;
  unsigned sessions = 0;
  double transfers_per_second = 0;
  std::string active = "yes";
  std::vector<std::string> allow_from;
  std::string interface;
  std::vector<std::string> public_address;
  std::vector<std::string> internal_server;
  std::vector<std::string> inside_network;
  bool force = false;
  std::string hooks = "daemon";
  unsigned queue_num = 0;
  bool queue_bypass = false;
  std::uint32_t exempt_mark = 0x10000000;
  std::uint32_t accept_mark = 0x20000000;
  std::string stock = "yes";
  int ssh_port = 22;
  std::string server = "none";
  std::string server_output;
  std::string announce_public = "auto";
  std::string output;
  std::string output_dir;
  std::string merge;
  bool check = false;
  // --ha
  bool ha = false;
  std::string inside_vip;
  std::string inside_interface;
  std::string ha_self;
  std::string ha_peer;
  std::string ha_sync_interface;
  int ha_sync_port = 3780;
  std::optional<int> ha_priority;
  int ha_vrid = 51;
  std::string ha_advert_int = "1";
  std::vector<std::string> ha_ignore;
  std::string ha_output_dir;
  std::string ha_ftpwalld_socket;
};

// --ha-advert-int SECONDS: "1", "0.2", "0.25" -> centiseconds (VRRPv3's unit); 0 = not a number.
unsigned advert_centis(const std::string& text) {
  unsigned whole = 0, frac = 0, digits = 0;
  std::size_t i = 0;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
    whole = whole * 10 + static_cast<unsigned>(text[i] - '0');
    if (whole > 100) return 0;
  }
  if (i == 0) return 0;
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) {
      if (++digits > 2) return 0;
      frac = frac * 10 + static_cast<unsigned>(text[i] - '0');
    }
    if (digits == 0) return 0;
    if (digits == 1) frac *= 10;
  }
  if (i != text.size()) return 0;
  return whole * 100 + frac;
}

void ha_to_spec(const RawOptions& o, rules::HaSpec& ha) {
  ha.enabled = o.ha;
  if (!o.inside_vip.empty()) ha.inside_vip = address("--inside-vip", o.inside_vip);
  ha.inside_interface = o.inside_interface;
  if (!o.ha_self.empty()) ha.self = address("--ha-self", o.ha_self);
  if (!o.ha_peer.empty()) ha.peer = address("--ha-peer", o.ha_peer);
  ha.sync_interface = o.ha_sync_interface;
  if (o.ha_sync_port < 1 || o.ha_sync_port > 65535)
    throw UsageError{"--ha-sync-port " + std::to_string(o.ha_sync_port) + " is out of range 1-65535"};
  ha.sync_port = static_cast<std::uint16_t>(o.ha_sync_port);
  if (o.ha_priority && (*o.ha_priority < 1 || *o.ha_priority > 254))
    throw UsageError{"--ha-priority " + std::to_string(*o.ha_priority) + " is out of range 1-254 (255 is an address owner)"};
  ha.priority = o.ha_priority ? static_cast<unsigned>(*o.ha_priority) : 0;
  if (o.ha_vrid < 1 || o.ha_vrid > 254)
    throw UsageError{"--ha-vrid " + std::to_string(o.ha_vrid) + " is out of range 1-254 (the inside instance takes the next one)"};
  ha.vrid = static_cast<unsigned>(o.ha_vrid);
  ha.advert_centis = advert_centis(o.ha_advert_int);
  if (ha.advert_centis == 0 || ha.advert_centis > 4095)
    throw UsageError{"--ha-advert-int '" + o.ha_advert_int + "' is not a number of seconds in 0.01-40.95 (VRRPv3 counts centiseconds)"};
  for (const auto& a : o.ha_ignore) ha.ignore.push_back(address("--ha-ignore", a));
  if (!o.ha_output_dir.empty() && !o.ha) throw UsageError{"--ha-output-dir needs --ha"};
  if (!o.ha_ftpwalld_socket.empty()) {
    if (!o.ha) throw UsageError{"--ha-ftpwalld-socket needs --ha"};
    if (o.helper != "ftpwalld") throw UsageError{"--ha-ftpwalld-socket needs --helper ftpwalld"};
    if (o.ha_ftpwalld_socket.front() != '/' || o.ha_ftpwalld_socket.find_first_of(" \t\n'\"\\$`") != std::string::npos)
      throw UsageError{"--ha-ftpwalld-socket '" + o.ha_ftpwalld_socket + "': an absolute path without spaces or shell characters"};
    ha.ftpwalld_socket = o.ha_ftpwalld_socket;
  }
}

rules::RulesetSpec to_spec(const RawOptions& o) {
  rules::RulesetSpec s;
  s.role = pick<Role>("--role", o.role, {{"server", Role::server}, {"gateway", Role::gateway}});
  s.helper = pick<Helper>("--helper", o.helper, {{"kernel", Helper::kernel}, {"ftpwalld", Helper::ftpwalld}, {"none", Helper::none}});
  s.format = pick<Format>("--format", o.format,
                          {{"iptables-save", Format::iptables_save}, {"shell", Format::shell}, {"nft", Format::nft}, {"firewalld", Format::firewalld}});
  s.family = pick<rules::Families>("--family", o.family,
                                   {{"4", rules::Families::v4}, {"6", rules::Families::v6}, {"both", rules::Families::both}});
  for (int p : o.control_ports) {
    if (p < 1 || p > 65535) throw UsageError{"--control-port " + std::to_string(p) + " is out of range 1-65535"};
    s.control_ports.push_back(static_cast<std::uint16_t>(p));
  }
  for (const auto& p : o.passive_ports) {
    if (p == "auto") {
      s.passive_auto = true;
      continue;
    }
    auto r = rules::parse_port_range(p);
    if (!r) throw UsageError{"--passive-ports: " + r.error().message};
    s.passive_ports.push_back(*r);
  }
  s.sessions = o.sessions;
  s.transfers_per_second = o.transfers_per_second;
  s.active = yes_no("--active", o.active);
  for (const auto& a : o.allow_from) s.allow_from.push_back(cidr("--allow-from", a));
  s.interface = o.interface;
  for (const auto& a : o.public_address) s.public_addresses.push_back(address("--public-address", a));
  for (const auto& a : o.internal_server) s.internal_servers.push_back(address("--internal-server", a));
  for (const auto& c : o.inside_network) s.inside_networks.push_back(cidr("--inside-network", c));
  s.force = o.force;
  s.hooks = pick<Hooks>("--hooks", o.hooks, {{"daemon", Hooks::daemon}, {"admin", Hooks::admin}});
  s.queue_num = o.queue_num;
  s.queue_bypass = o.queue_bypass;
  s.exempt_mark = o.exempt_mark;
  s.accept_mark = o.accept_mark;
  s.stock = yes_no("--stock", o.stock);
  if (o.ssh_port < 0 || o.ssh_port > 65535) throw UsageError{"--ssh-port " + std::to_string(o.ssh_port) + " is out of range 0-65535"};
  s.ssh_port = static_cast<std::uint16_t>(o.ssh_port);
  s.server = pick<ServerSoftware>("--server", o.server,
                                  {{"none", ServerSoftware::none}, {"vsftpd", ServerSoftware::vsftpd},
                                   {"proftpd", ServerSoftware::proftpd}, {"pure-ftpd", ServerSoftware::pure_ftpd}});
  s.announce_public = pick<AnnouncePublic>("--announce-public", o.announce_public,
                                           {{"auto", AnnouncePublic::automatic}, {"yes", AnnouncePublic::yes}, {"no", AnnouncePublic::no}});
  if (!o.server_output.empty() && s.server == ServerSoftware::none)
    throw UsageError{"--server-output needs --server vsftpd|proftpd|pure-ftpd"};
  ha_to_spec(o, s.ha);
  return s;
}

void add_rules_options(CLI::App& rules, RawOptions& o) {
  // Option groups, in the order --help shows them (that of each group's first option below).
  const std::string ruleset = "Ruleset", service = "FTP service", nat = "Addresses and NAT",
                    daemon = "With --helper ftpwalld", stock = "Stock rules", server = "FTP server settings",
                    output = "Output", ha = "High availability (--ha: one gateway of an active/backup pair)";
  rules.add_option("--role", o.role, "server: this host runs the FTP server; gateway: it routes/NATs for one (default: server)")
      ->type_name("server|gateway")->group(ruleset);
  rules.add_option("--helper", o.helper,
                   "kernel: nf_conntrack_ftp attached explicitly; ftpwalld: the admin rules beside the daemon; "
                   "none: static passive range, what FTPS needs (default: kernel)")
      ->type_name("kernel|ftpwalld|none")->group(ruleset);
  rules.add_option("--format", o.format, "iptables-save | shell | nft | firewalld (default: iptables-save)")
      ->type_name("FORMAT")->group(ruleset);
  rules.add_option("--family", o.family,
                   "IPv4, IPv6 or both: the iptables-save and ip6tables-save pair, shell commands of both tools, "
                   "one nft inet table (default: 4)")
      ->type_name("4|6|both")->group(ruleset);
  rules.add_option("--control-port", o.control_ports, "FTP control port, repeatable (default: 21)")
      ->allow_extra_args(false)->type_name("PORT")->group(service);
  rules.add_option("--passive-ports", o.passive_ports,
                   "LOW-HIGH passive range, repeatable, or auto (needs --sessions); required with --helper none or --server "
                   "(default: none)")
      ->allow_extra_args(false)->type_name("LOW-HIGH|auto")->group(service);
  rules.add_option("--sessions", o.sessions, "concurrent sessions, for --passive-ports auto and the size warning (default: not set)")
      ->type_name("N")->group(service);
  rules.add_option("--transfers-per-second", o.transfers_per_second, "data connections opened per second (default: 0)")
      ->type_name("RATE")->group(service);
  rules.add_option("--active", o.active, "allow active mode (PORT/EPRT) (default: yes)")->type_name("yes|no")->group(service);
  rules.add_option("--allow-from", o.allow_from, "only these clients may connect, repeatable (default: anyone)")
      ->allow_extra_args(false)->type_name("CIDR")->group(service);
  rules.add_option("--interface", o.interface, "the public-side interface (default: any)")->type_name("IFACE")->group(nat);
  rules.add_option("--public-address", o.public_address,
                   "the address clients dial: DNAT source on a gateway, announced address behind NAT; IPv4 only "
                   "(NAT66 is out of scope); one per family (default: none)")
      ->allow_extra_args(false)->type_name("ADDRESS")->group(nat);
  rules.add_option("--internal-server", o.internal_server,
                   "gateway: the FTP server behind it; one per family, IPv6 routed (default: none)")
      ->allow_extra_args(false)->type_name("ADDRESS")->group(nat);
  rules.add_option("--inside-network", o.inside_network,
                   "gateway: clients behind it, masqueraded (IPv4) or routed (IPv6); one per family (default: none)")
      ->allow_extra_args(false)->type_name("CIDR")->group(nat);
  rules.add_flag("--force", o.force, "allow passive ports below 1024 (default: off)")->group(service);
  rules.add_option("--hooks", o.hooks, "who installs ftpwalld's hooks and declares its chains (default: daemon)")
      ->type_name("daemon|admin")->group(daemon);
  rules.add_option("--queue-num", o.queue_num, "with --hooks admin: NFQUEUE number (default: 0)")->type_name("N")->group(daemon);
  rules.add_option("--exempt-mark", o.exempt_mark,
                   "with --hooks admin: connmark bit that takes FTPS sessions out of the queue, "
                   "as ftpwalld's queue.exempt_mark; 0 for none (default: 0x10000000)")
      ->type_name("MARK")->group(daemon);
  rules.add_option("--accept-mark", o.accept_mark,
                   "packet-mark bit ftpwalld sets on the data connections it admits, as its "
                   "queue.accept_mark; the admin's rules accept by it (default: 0x20000000)")
      ->type_name("MARK")->group(daemon);
  rules.add_flag("--queue-bypass", o.queue_bypass,
                 "with --hooks admin: let control packets pass when ftpwalld is not running (default: off)")
      ->group(daemon);
  rules.add_option("--stock", o.stock, "emit the stock CentOS accepts (loopback, icmp, ssh); the final REJECT is always there (default: yes)")
      ->type_name("yes|no")->group(stock);
  rules.add_option("--ssh-port", o.ssh_port, "port of the stock ssh accept, 0 for none (default: 22)")->type_name("PORT")->group(stock);
  rules.add_option("--server", o.server, "also write settings for vsftpd | proftpd | pure-ftpd (default: none)")
      ->type_name("SERVER")->group(server);
  rules.add_option("--server-output", o.server_output,
                   "write the server settings to FILE; - = stdout instead of the ruleset (default: appended to the output as comments)")
      ->type_name("FILE")->group(server);
  rules.add_option("--announce-public", o.announce_public,
                   "whether the server announces --public-address itself; auto: only behind NAT that nothing rewrites "
                   "(default: auto)")
      ->type_name("auto|yes|no")->group(nat);
  rules.add_option("--output,-o", o.output, "write to FILE instead of stdout (default: stdout)")->type_name("FILE")->group(output);
  rules.add_option("--output-dir", o.output_dir,
                   "iptables-save: write DIR/iptables and/or DIR/ip6tables, one file per family, e.g. /etc/sysconfig "
                   "(default: none)")
      ->type_name("DIR")->group(output);
  rules.add_option("--merge", o.merge,
                   "update an existing /etc/sysconfig/iptables: replace lines of an earlier run, insert before the stock REJECT "
                   "(default: none)")
      ->type_name("FILE")->group(output);
  rules.add_flag("--ha", o.ha,
                 "gateway: one of a keepalived + conntrackd active/backup pair; --public-address is the public virtual "
                 "address (IPv4) (default: off)")
      ->group(ha);
  rules.add_option("--inside-vip", o.inside_vip, "the inside virtual address, the gateway of the hosts behind the pair; required with --ha")
      ->type_name("ADDRESS")->group(ha);
  rules.add_option("--inside-interface", o.inside_interface, "the interface of --inside-vip; required with --ha")
      ->type_name("IFACE")->group(ha);
  rules.add_option("--ha-self", o.ha_self, "this gateway's address on the sync link; required with --ha")
      ->type_name("ADDRESS")->group(ha);
  rules.add_option("--ha-peer", o.ha_peer, "the other gateway's address on the sync link; required with --ha")
      ->type_name("ADDRESS")->group(ha);
  rules.add_option("--ha-sync-interface", o.ha_sync_interface,
                   "the link between the gateways: conntrackd's sync and unicast VRRP; required with --ha")
      ->type_name("IFACE")->group(ha);
  rules.add_option("--ha-sync-port", o.ha_sync_port, "conntrackd's UDP port (default: 3780)")->type_name("PORT")->group(ha);
  rules.add_option("--ha-priority", o.ha_priority,
                   "keepalived priority 1-254 (default: 150 on the gateway with the lower --ha-self, 100 on the other)")
      ->type_name("N")->group(ha);
  rules.add_option("--ha-vrid", o.ha_vrid, "VRRP router id of the public address; the inside one is the next (default: 51)")
      ->type_name("N")->group(ha);
  rules.add_option("--ha-advert-int", o.ha_advert_int,
                   "VRRPv3 advert interval in seconds, 0.01-40.95; failover takes about 3 of them (default: 1)")
      ->type_name("SECONDS")->group(ha);
  rules.add_option("--ha-ignore", o.ha_ignore,
                   "more of the gateways' own addresses (both gateways' public and inside ones) for conntrackd's Address "
                   "Ignore, repeatable; never a client's (default: none)")
      ->allow_extra_args(false)->type_name("ADDRESS")->group(ha);
  rules.add_option("--ha-output-dir", o.ha_output_dir,
                   "write DIR/keepalived.conf, DIR/conntrackd.conf, DIR/ftpwall-ha-notify and DIR/99-ftpwall-ha.conf "
                   "(sysctl.d), which agree with the rules (default: none)")
      ->type_name("DIR")->group(ha);
  rules.add_option("--ha-ftpwalld-socket", o.ha_ftpwalld_socket,
                   "with --helper ftpwalld: the control socket the notify script's ftpwall takeover/standby names "
                   "(default: ftpwalld's, /run/ftpwalld/control)")
      ->type_name("PATH")->group(ha);
  rules.add_flag("--check", o.check,
                 "validate with iptables-legacy-restore --test / ip6tables-legacy-restore --test / nft -c -f when present and root "
                 "(default: off)")
      ->group(output);
}

std::string commented(const std::string& text) {
  std::string out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out += line.empty() ? "#\n" : "# " + line + "\n";
  return out;
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  return static_cast<bool>(f);
}

int run_rules(const RawOptions& o, const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  rules::RulesetSpec spec = to_spec(o);
  std::string cmd = "ftpwall";
  for (const auto& a : args) cmd += " " + shell_word(a);
  spec.command_line = cmd;
  const bool two_files = spec.format == Format::iptables_save && spec.family == rules::Families::both;
  if (!o.output_dir.empty() && spec.format != Format::iptables_save)
    throw UsageError{"--output-dir writes the iptables-save files (DIR/iptables, DIR/ip6tables): it needs --format iptables-save; "
                     "use -o FILE for " + std::string(rules::name(spec.format))};
  if (!o.output_dir.empty() && !o.output.empty()) throw UsageError{"--output and --output-dir exclude each other"};
  if (two_files && !o.output.empty())
    throw UsageError{"--family both --format iptables-save writes two files (iptables and ip6tables): use --output-dir DIR "
                     "(e.g. /etc/sysconfig) instead of --output"};

  std::string merge_text;
  if (!o.merge.empty() && !read_file(o.merge, merge_text)) throw UsageError{"--merge: cannot read " + o.merge};
  auto gen = rules::generate(spec, o.merge.empty() ? std::nullopt : std::optional<std::string_view>(merge_text));
  if (!gen) throw UsageError{gen.error().message};
  for (const auto& w : gen->warnings) err << "ftpwall: warning: " << one_line(w) << "\n";

  std::vector<rules::OutputFile> files = gen->files;
  std::string server_text = gen->server_config;
  bool print_ruleset = true;
  if (!server_text.empty()) {
    if (o.server_output.empty()) {
      // Its first line repeats the command already in the header; appended to every file.
      const std::string body = server_text.substr(server_text.find('\n') + 1);
      for (auto& f : files)
        f.text += "#\n# Settings for " + std::string(rules::name(spec.server)) + " that agree with this ruleset:\n" + commented(body);
    } else if (o.server_output == "-") {
      out << server_text;
      print_ruleset = !o.output.empty() || !o.output_dir.empty();
    } else if (!write_file(o.server_output, server_text)) {
      err << "ftpwall: error: --server-output: cannot write " << o.server_output << "\n";
      return exit_failed;
    }
  }
  // What stdout shows: the one file, or both after their banners (as generate() joined them).
  std::string text;
  if (files.size() == 1) {
    text = files.front().text;
  } else {
    for (const auto& f : files) {
      const std::string banner = "# ==== /etc/sysconfig/" + f.name;
      const auto at = gen->text.find(banner);
      text += gen->text.substr(at, gen->text.find('\n', at) - at + 1) + f.text;
    }
  }

  if (o.check) {
    for (const auto& f : files) {
      CheckResult c = check_text(spec.format, f.family, f.text);
      const std::string which = files.size() > 1 ? " (" + f.name + ")" : "";
      if (!c.ran) {
        err << "ftpwall: note: --check did not check" << which << ": " << c.message << "\n";
      } else if (!c.ok) {
        err << "ftpwall: error: --check" << which << ": " << one_line(c.message) << "\n";
        return exit_failed;
      } else {
        err << "ftpwall: note: --check" << which << ": " << c.message << "\n";
      }
    }
  }

  // --ha-output-dir: the keepalived and conntrackd files (the ruleset goes where it always goes).
  if (!o.ha_output_dir.empty()) {
    for (const auto& f : gen->ha_files) {
      const std::string path = o.ha_output_dir + "/" + f.name;
      if (!write_file(path, f.text) || ::chmod(path.c_str(), f.executable ? 0755 : 0644) != 0) {
        err << "ftpwall: error: --ha-output-dir: cannot write " << path << "\n";
        return exit_failed;
      }
    }
  }

  if (print_ruleset) {
    if (!o.output_dir.empty()) {
      for (const auto& f : files) {
        const std::string path = o.output_dir + "/" + (f.name.empty() ? std::string(rules::sysconfig_name(f.family)) : f.name);
        if (!write_file(path, f.text)) {
          err << "ftpwall: error: --output-dir: cannot write " << path << "\n";
          return exit_failed;
        }
      }
    } else if (o.output.empty()) {
      out << text;
    } else if (!write_file(o.output, text)) {
      err << "ftpwall: error: --output: cannot write " << o.output << "\n";
      return exit_failed;
    }
  }
  return exit_ok;
}

}  // namespace

CheckResult check_text(rules::Format format, Family family, const std::string& text) {
  CheckResult r;
  std::string tool;
  std::string args;
  switch (format) {
    case Format::iptables_save:
      tool = family == Family::v4 ? "iptables-legacy-restore" : "ip6tables-legacy-restore";
      args = " --test ";
      break;
    case Format::nft:
      tool = "nft";
      args = " -c -f ";
      break;
    case Format::shell:
      r.message = "shell output is checked by running it; check the same options with --format iptables-save";
      return r;
    case Format::firewalld:
      r.message = "firewalld output needs firewalld to check (firewall-cmd --check-config after installing the service)";
      return r;
  }
  if (::geteuid() != 0) {
    r.message = tool + " needs root";
    return r;
  }
  if (!on_path(tool)) {
    r.message = tool + " is not installed";
    return r;
  }
  char path[] = "/tmp/ftpwall-check-XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) {
    r.message = "cannot create a temporary file in /tmp";
    return r;
  }
  ::close(fd);
  if (!write_file(path, text)) {
    ::unlink(path);
    r.message = "cannot write a temporary file in /tmp";
    return r;
  }
  const std::string command = "PATH=\"$PATH:/usr/sbin:/sbin\" " + tool + args + path + " 2>&1";
  FILE* p = ::popen(command.c_str(), "r");
  std::string output;
  if (p) {
    char buf[512];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
    const int status = ::pclose(p);
    r.ran = true;
    r.ok = status == 0;
  }
  ::unlink(path);
  if (!r.ran) {
    r.message = "cannot run " + tool;
    return r;
  }
  while (!output.empty() && (output.back() == '\n' || output.back() == ' ')) output.pop_back();
  // The tools name our temporary file; the user never saw it.
  for (auto at = output.find(path); at != std::string::npos; at = output.find(path)) output.replace(at, std::string(path).size(), "<output>");
  r.message = r.ok ? tool + args.substr(0, args.size() - 1) + " accepted the output" : tool + ": " + output;
  return r;
}

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app{"ftpwall: FTP firewall rules and tools (see ftpwall(8))", "ftpwall"};
  app.set_version_flag("--version", "ftpwall " + std::string(version));
  app.require_subcommand(1);
  app.footer("The options of one command: ftpwall COMMAND --help; everything: ftpwall(8).");
  RawOptions o;
  CLI::App* rules = app.add_subcommand("rules", "generate a static FTP ruleset (iptables-save, shell, nft, firewalld)");
  add_rules_options(*rules, o);
  ReplayArgs replay_args;
  CLI::App* replay = app.add_subcommand("replay", "what ftpwalld would open and refuse, decided from packet captures");
  add_replay_options(*replay, replay_args);
  StatusOptions so;
  const StatusCommands status_cmds = add_status_commands(app, so);
  CheckOptions check_options;
  CLI::App* check = add_check_command(app, check_options);

  if (!args.empty() && !args.front().starts_with("-") && app.get_subcommands([&](CLI::App* sub) { return sub->get_name() == args.front(); }).empty()) {
    std::string names;
    for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
      names += (names.empty() ? "" : ", ") + sub->get_name();
    err << "ftpwall: error: unknown command '" << one_line(args.front()) << "' (commands: " << names
        << "; see ftpwall --help)\n";
    return exit_usage;
  }
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return exit_ok;
  } catch (const CLI::CallForAllHelp&) {
    out << app.help("", CLI::AppFormatMode::All);
    return exit_ok;
  } catch (const CLI::CallForVersion&) {
    out << "ftpwall " << version << "\n";
    return exit_ok;
  } catch (const CLI::ParseError& e) {
    err << "ftpwall: error: " << one_line(e.what()) << "\n";
    return exit_usage;
  }
  try {
    if (rules->parsed()) return run_rules(o, args, out, err);
    if (replay->parsed()) return run_replay(replay_args, out, err);
    if (int rc = run_status_commands(status_cmds, so, out, err); rc >= 0) return rc;
    if (check->parsed()) return run_check(check_options, out, err);
  } catch (const UsageError& e) {
    err << "ftpwall: error: " << one_line(e.message) << "\n";
    return exit_usage;
  }
  err << "ftpwall: error: no command given (try: ftpwall rules --help)\n";
  return exit_usage;
}

}  // namespace ftpwall::cli
