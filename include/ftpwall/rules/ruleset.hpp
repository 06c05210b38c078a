// SPDX-License-Identifier: GPL-2.0-or-later
// The ruleset generator behind `ftpwall rules`: options (RulesetSpec) -> validate() -> a
// format-neutral Ruleset of tagged rules -> one emitter per format. Pure: strings in, strings out;
// no syscalls (the CLI runs the --check tools and writes files).
//
//   RulesetSpec --plan()--> Plan (one Validated part per family) --build_ruleset()--> Ruleset --emit_*()--> text
//                              \--emit_firewalld(), emit_server_config() (work from the plan)
// --family both: every rule of the Ruleset carries the family it serves (none = both); the
// iptables-save emitter writes one file per family (Ruleset::only), nft one inet table.
// --ha (issue 15): one gateway of a keepalived + conntrackd active/backup pair; the rules gain the
// INVALID drops and the sync/VRRP accepts, and emit_ha_files() writes the keepalived.conf,
// conntrackd.conf and notify script that agree with them (src/rules/ha.cpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ftpwall/core/addr.hpp"
#include "ftpwall/core/result.hpp"

namespace ftpwall::rules {

enum class Role : std::uint8_t { server, gateway };
// kernel: nf_conntrack_ftp attached explicitly; ftpwalld: the daemon's layout; none: static ranges.
enum class Helper : std::uint8_t { kernel, ftpwalld, none };
enum class Format : std::uint8_t { iptables_save, shell, nft, firewalld };
enum class ServerSoftware : std::uint8_t { none, vsftpd, proftpd, pure_ftpd };
// Who installs ftpwalld's hooks (NFQUEUE steering, jumps) and declares its chains.
enum class Hooks : std::uint8_t { daemon, admin };
// Whether the FTP server itself announces the public address in 227/229 replies.
enum class AnnouncePublic : std::uint8_t { automatic, yes, no };
// --family 4|6|both: the address families the ruleset serves. both: the iptables-save and
// ip6tables-save pair (two files), shell commands for both tools, one nft inet table for both.
enum class Families : std::uint8_t { v4, v6, both };

std::string_view name(Role r);
std::string_view name(Helper h);
std::string_view name(Format f);
std::string_view name(ServerSoftware s);
std::string_view name(Hooks h);
std::string_view name(AnnouncePublic a);
std::string_view name(Families f);  // "4", "6", "both"
bool includes(Families set, Family f);
// The families of a set, IPv4 first.
std::vector<Family> members(Families set);
// The CentOS sysconfig file of a family's iptables-save text: "iptables" or "ip6tables".
std::string_view sysconfig_name(Family f);

// An inclusive TCP port range, LOW-HIGH on the command line.
struct PortRange {
  std::uint16_t low = 0;
  std::uint16_t high = 0;
  std::size_t size() const { return static_cast<std::size_t>(high) - low + 1; }
  bool contains(std::uint16_t p) const { return p >= low && p <= high; }
  bool overlaps(const PortRange& o) const { return low <= o.high && o.low <= high; }
  std::string to_string(char sep = '-') const;  // 50000-50100; iptables wants ':', nft '-'
  auto operator<=>(const PortRange&) const = default;
};

// "50000-50100" or a single port "50000". Reversed ranges and port 0 are errors.
Result<PortRange> parse_port_range(std::string_view text);

// The Linux default ephemeral range (net.ipv4.ip_local_port_range): passive ranges should avoid it,
// or the server's (or the gateway's MASQUERADE) own outbound connections compete for the ports.
inline constexpr PortRange ephemeral_range{32768, 60999};
// Ports below this are privileged; opening them needs --force. RELATED is accepted only above.
inline constexpr std::uint16_t first_unprivileged_port = 1024;

// --ha: this gateway's half of an active/backup pair (IPv4; keepalived moves the two virtual
// addresses, conntrackd replicates the connections over a dedicated sync link). The public
// virtual address is the spec's --public-address.
struct HaSpec {
  bool enabled = false;                      // --ha
  std::optional<Address> inside_vip;         // --inside-vip: the inside hosts' gateway
  std::string inside_interface;              // --inside-interface: where the inside VIP lives
  std::optional<Address> self;               // --ha-self: this gateway on the sync link
  std::optional<Address> peer;               // --ha-peer: the other gateway on the sync link
  std::string sync_interface;                // --ha-sync-interface: conntrackd's sync and VRRP
  std::uint16_t sync_port = 3780;            // --ha-sync-port (conntrackd's UDP port)
  unsigned priority = 0;                     // --ha-priority 1-254; 0 = 150 if self < peer, else 100
  unsigned vrid = 51;                        // --ha-vrid: the public instance's VRID; inside = vrid + 1
  unsigned advert_centis = 100;              // --ha-advert-int in centiseconds (VRRPv3)
  std::vector<Address> ignore;               // --ha-ignore: more own addresses for Address Ignore
  std::string ftpwalld_socket;               // --ha-ftpwalld-socket: ftpwalld's control socket; empty = its default
};

// The options of `ftpwall rules`, as given. Defaults here are the defaults the CLI states in --help.
struct RulesetSpec {
  Role role = Role::server;
  Helper helper = Helper::kernel;
  Format format = Format::iptables_save;
  Families family = Families::v4;
  std::vector<std::uint16_t> control_ports;  // empty = {21}
  std::vector<PortRange> passive_ports;      // explicit ranges
  bool passive_auto = false;                 // --passive-ports auto
  unsigned sessions = 0;                     // --sessions N (0 = not given)
  double transfers_per_second = 0;           // --transfers-per-second R
  bool active = true;
  // Addresses of either family. Each family's part of the ruleset gets the ones of its family:
  // at most one public address, internal server and inside network per family.
  std::vector<Cidr> allow_from;              // empty = anyone (of every family)
  std::string interface;                     // the public-side interface; empty = any
  std::vector<Address> public_addresses;
  std::vector<Address> internal_servers;
  std::vector<Cidr> inside_networks;
  bool force = false;                        // allow ports below 1024
  Hooks hooks = Hooks::daemon;
  unsigned queue_num = 0;
  bool queue_bypass = false;
  std::uint32_t exempt_mark = 0x10000000;    // connmark bit of FTPS sessions (ftpwalld's queue.exempt_mark); 0 = none
  std::uint32_t accept_mark = 0x20000000;    // packet mark of the data SYNs ftpwalld admits (its queue.accept_mark)
  bool stock = true;                         // emit the stock CentOS rules (lo, icmp, ssh, final REJECT)
  std::uint16_t ssh_port = 22;               // 0 = no ssh accept
  ServerSoftware server = ServerSoftware::none;
  AnnouncePublic announce_public = AnnouncePublic::automatic;
  bool merging = false;                      // --merge FILE given (only iptables-save)
  HaSpec ha;                                 // --ha and its options
  std::string command_line;                  // echoed in the output header (deterministic)
};

// --passive-ports auto: the range, how many ports the rule asked for, and why (one sentence).
struct Sizing {
  PortRange range;
  std::size_t needed = 0;
  std::string reason;
};

// Ports a range must hold: max(2*N, N + ceil(R*T), 100), T = 60 s (TIME_WAIT on a server) or 120 s
// (conntrack TIME_WAIT on a gateway).
std::size_t ports_needed(Role role, unsigned sessions, double transfers_per_second, std::string* reason = nullptr);
// Picks a range outside 32768-60999: 61000 upwards if it fits, else just below 32768.
Result<Sizing> size_passive_range(Role role, unsigned sessions, double transfers_per_second);

// One family's part of a spec that passed validate(): that family's addresses, the control ports
// and passive range resolved, plus the warnings.
struct Validated {
  RulesetSpec spec;                          // as given (all families, all addresses)
  Family family = Family::v4;                // this part's family
  std::optional<Address> public_address;     // the spec's addresses of this family
  std::optional<Address> internal_server;
  std::optional<Cidr> inside_network;
  std::vector<Cidr> allow_from;
  bool no_clients = false;                   // --allow-from names only networks of the other family
  std::vector<std::uint16_t> control_ports;  // sorted, unique, never empty
  std::vector<PortRange> passive;            // sorted; may be empty with --helper kernel/ftpwalld
  std::optional<Sizing> sizing;              // set for --passive-ports auto
  std::vector<std::string> warnings;         // one line each, without the "ftpwall: warning: " prefix
  bool server_nat() const;                   // gateway DNATs a public address to an internal server
  bool routed_server() const;                // gateway routes to --internal-server without NAT
  bool client_nat() const;                   // gateway masquerades --inside-network (IPv4)
  bool routed_clients() const;               // gateway routes IPv6 --inside-network clients (no NAT66)
  bool inside_clients() const { return client_nat() || routed_clients(); }
  // The server (per the snippet) should put the public address into its 227 replies itself.
  bool server_announces_public() const;
};

// Every family's part of a validated spec, IPv4 first, and all warnings (each once).
struct Plan {
  RulesetSpec spec;
  std::vector<Validated> parts;
  std::vector<std::string> warnings;
  const Validated* part(Family f) const;
};

// All checks of the options; the error message is the one line after "ftpwall: error: ".
Result<Plan> plan(RulesetSpec spec);
// The one part of a single-family spec (--family 4 or 6), warnings included; --family both is
// refused here (use plan()).
Result<Validated> validate(RulesetSpec spec);

// ---- the format-neutral model ----

enum class Table : std::uint8_t { raw, mangle, nat, filter };
std::string_view name(Table t);

// Conntrack states a rule matches (bit set).
enum CtState : std::uint8_t { ct_none = 0, ct_new = 1, ct_established = 2, ct_related = 4, ct_invalid = 8 };

// icmp: IPv4 ICMP (in an IPv4-only nft table `meta l4proto { icmp, ipv6-icmp }`, as before);
// icmpv6: ICMPv6 of the types in Match::icmp_types (RFC 4890), one iptables line per type.
// udp: conntrackd's sync (--ha); vrrp: IP protocol 112, keepalived's adverts (--ha), printed as
// the number so that no /etc/protocols is needed.
enum class Proto : std::uint8_t { any, tcp, icmp, icmpv6, udp, vrrp };

struct Match {
  std::string in_iface;
  std::string out_iface;
  bool not_in_iface = false;
  std::optional<Cidr> src;
  std::optional<Cidr> dst;
  bool not_dst = false;
  Proto proto = Proto::any;
  std::vector<PortRange> dports;  // empty = any; one entry may be a single port
  std::vector<PortRange> sports;  // unused by ftpwall's own rules (kept for the emitters)
  // -m conntrack --ctorigdstport P [--ctdir ORIGINAL|REPLY]: ftpwalld's steering picks control
  // connections by conntrack's original tuple, never by a packet's port (a connection from port
  // 21 to another service is no control connection).
  std::optional<std::uint16_t> ct_orig_dport;
  enum class CtDir : std::uint8_t { any, original, reply } ct_dir = CtDir::any;
  std::uint32_t not_connmark = 0;  // -m connmark ! --mark M/M (FTPS sessions leave the queue); 0 = none
  std::uint8_t ct = ct_none;
  bool helper_ftp = false;        // the connection's master runs the ftp helper
  // meta mark & M == M: the packet carries ftpwalld's queue.accept_mark (--accept-mark); 0 = none.
  // nft prints such an accept as the documented line, commented "ftpwall openings" (ftpwalld(8)).
  std::uint32_t mark = 0;
  std::vector<std::uint8_t> icmp_types;  // Proto::icmpv6: these types (empty = every type)
  std::uint8_t hop_limit = 0;            // -m hl --hl-eq N / ip6 hoplimit N (ND: 255); 0 = any
};

enum class Action : std::uint8_t {
  accept,
  reject,      // stock REJECT with icmp(6) admin/host-prohibited
  drop,        // --ha: ctstate INVALID, silently (first in INPUT and FORWARD)
  ct_helper,   // raw: attach nf_conntrack_ftp explicitly
  dnat,        // to `address`
  snat,        // to `address`
  masquerade,
  nfqueue,     // queue_num, queue_bypass
  jump,        // to `chain_target`
};

// What a rule is for. Tags name it in every output ("ftpwall: ftp ..." for the FTP-specific ones,
// "ftpwall: base ..." for the rest); a negative control drops the "ftp" ones.
enum class Purpose : std::uint8_t { base, stock, ftp };

struct Rule {
  Table table = Table::filter;
  std::string chain;
  Match match;
  Action action = Action::accept;
  std::optional<Address> address;  // dnat/snat target
  std::string chain_target;        // jump
  unsigned queue_num = 0;
  bool queue_bypass = false;
  Purpose purpose = Purpose::ftp;  // stock: also in the stock CentOS file (--merge keeps the file's own)
  std::string tag;                 // without the "ftpwall: " prefix
  // The family the rule is for; nullopt = every family of the ruleset (a rule with the same
  // text for both: in both iptables-save files, unpinned in nft).
  std::optional<Family> family;
  bool serves(Family f) const { return !family || *family == f; }
};

struct ChainDecl {
  Table table = Table::filter;
  std::string name;
  bool builtin = true;  // builtin chains have policy ACCEPT here; user chains print "-"
  std::optional<Family> family;  // user chains of one family only (FTPWALL-DNAT/SNAT: IPv4)
};

// A header line; family set: only in that family's iptables-save file (IPTABLES_MODULES ...).
struct Note {
  std::optional<Family> family;
  std::string text;
};

struct Ruleset {
  Families family = Families::v4;
  Role role = Role::server;
  std::vector<ChainDecl> chains;   // in table order, builtin chains first (every family's)
  std::vector<Rule> rules;         // in evaluation order within each chain
  std::vector<Note> notes;         // comment lines (without "# "), printed in the header
  std::string command_line;
  bool needs_helper_modules = false;  // nf_conntrack_ftp (and nf_nat_ftp when nat_helper)
  bool nat_helper = false;
  bool uses_ftpwalld = false;
  std::vector<const Rule*> in(Table t, std::string_view chain) const;
  bool has_table(Table t) const;
  // One family's view: the rules serving f, the chains its file declares.
  Ruleset only(Family f) const;
  // The single family of an IPv4-only or IPv6-only ruleset (IPv4 for both).
  Family first_family() const { return family == Families::v6 ? Family::v6 : Family::v4; }
};

Ruleset build_ruleset(const Plan& p);
Ruleset build_ruleset(const Validated& v);  // a single-family part

// The comment text of a rule as it appears in every format: "ftpwall: <tag>".
std::string comment_of(const Rule& r);

// Match + action in iptables syntax, without "-A CHAIN" (shared by iptables-save and shell).
std::string iptables_rule_body(const Rule& r, Family f);
// The lines of a rule: one, or one per ICMPv6 type of a Proto::icmpv6 rule (icmp6 takes one type).
std::vector<std::string> iptables_rule_bodies(const Rule& r, Family f);

// One family's iptables-save file (a single-family ruleset: its family).
std::string emit_iptables_save(const Ruleset& rs, Family f);
std::string emit_iptables_save(const Ruleset& rs);
std::string emit_shell(const Ruleset& rs);
std::string emit_nft(const Ruleset& rs);
Result<std::string> emit_firewalld(const Plan& p);
Result<std::string> emit_firewalld(const Validated& v);
// vsftpd / proftpd / pure-ftpd settings that agree with the firewall (empty for ServerSoftware::none).
std::string emit_server_config(const Plan& p);
std::string emit_server_config(const Validated& v);

// --ha: the files that agree with the ruleset, under the names --ha-output-dir gives them; the
// configurations name each other by their installed paths (the *_path constants below).
struct HaFile {
  std::string name;         // keepalived.conf, conntrackd.conf, ftpwall-ha-notify
  std::string install_path; // /etc/keepalived/keepalived.conf, ...
  std::string text;
  bool executable = false;  // the notify script: mode 0755
};
inline constexpr std::string_view keepalived_conf_path = "/etc/keepalived/keepalived.conf";
inline constexpr std::string_view conntrackd_conf_path = "/etc/conntrackd/conntrackd.conf";
inline constexpr std::string_view ha_notify_path = "/etc/keepalived/ftpwall-ha-notify";
inline constexpr std::string_view ha_sysctl_path = "/etc/sysctl.d/99-ftpwall-ha.conf";
// The keepalived priority of this gateway (--ha-priority, or 150/100 by the sync addresses).
unsigned ha_priority(const HaSpec& ha);
// "1", "0.2", "0.25": --ha-advert-int as keepalived reads it.
std::string ha_advert_text(unsigned centis);
// Empty unless plan.spec.ha.enabled.
std::vector<HaFile> emit_ha_files(const Plan& plan);
// The header comment block shared by the formats ("# " prefixed lines); with `only`, the notes of
// that family's file (the others left out).
std::string header_comment(const Ruleset& rs, std::string_view prefix = "# ", std::optional<Family> only = std::nullopt);

// --merge: `existing` is an /etc/sysconfig/iptables (or ip6tables) file. Lines tagged by an earlier
// run ("ftpwall:" comments) are dropped, the new non-stock rules inserted (filter accepts before the
// chain's final unconditional REJECT/DROP), everything else kept byte for byte.
struct MergeResult {
  std::string text;
  std::vector<std::string> warnings;
};
Result<MergeResult> merge_iptables_save(std::string_view existing, const Ruleset& rs);

// The whole generator: the text for spec.format (+ the server snippet when asked for), or an error.
// iptables-save with --family both: two files; `text` holds both, each after a banner line
// ("# ==== /etc/sysconfig/iptables ====", for reading), `files` each alone (for --output-dir,
// --check). Every other format: one file, `files` holds it once with an empty name.
struct OutputFile {
  std::string name;  // "iptables" / "ip6tables" for iptables-save, else empty
  Family family = Family::v4;
  std::string text;
};
struct Output {
  std::string text;
  std::vector<OutputFile> files;
  std::string server_config;  // separate so the CLI can write it after the firewall part
  std::vector<HaFile> ha_files;  // --ha: keepalived.conf, conntrackd.conf, the notify script
  std::vector<std::string> warnings;
};
Result<Output> generate(const RulesetSpec& spec, std::optional<std::string_view> merge_input = std::nullopt);

}  // namespace ftpwall::rules
