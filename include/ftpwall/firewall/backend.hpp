// SPDX-License-Identifier: GPL-2.0-or-later
// The firewall backend speaks in openings: "let exactly one data connection from A reach B:P until
// T". One implementation per kernel interface: IptcBackend (iptables-legacy through libiptc, this
// round) and NftBackend (a later issue: set elements with a timeout). The daemon calls it from its
// backend worker thread only; implementations are not thread-safe.
//
// Kernel objects the daemon owns (and nothing else), in the layout of issue 2:
//   mangle  FORWARD (gateway) or INPUT+OUTPUT (server), first rules, one per control port and side:
//             -p tcp --dport 21 [-m connmark ! --mark M/M] -m comment --comment "ftpwall hook"
//                 -j NFQUEUE --queue-num 0 [--queue-bypass]
//             -p tcp --sport 21 ...        (the same for the server's replies)
//   filter  FTPWALL-ACCEPT, jumped from FORWARD (gateway) or INPUT+OUTPUT (server), first rule:
//             -p tcp -m comment --comment "ftpwall hook" -j FTPWALL-ACCEPT
//   nat     FTPWALL-DNAT from PREROUTING, FTPWALL-SNAT from POSTROUTING (gateway), same form.
// One opening is one rule per part, each tagged "ftpwall s<session> o<opening>":
//   filter  -A FTPWALL-ACCEPT -s C/32 -d S/32 -p tcp -m tcp --dport P --tcp-flags FIN,SYN,RST,ACK SYN
//             -m time --datestop <UTC expiry> -m comment --comment "ftpwall s7 o1" -j ACCEPT
//   nat     -A FTPWALL-DNAT -s C/32 -d S/32 -p tcp -m tcp --dport P --tcp-flags FIN,SYN,RST,ACK SYN
//             -m time --datestop ... -m comment ... -j DNAT --to-destination I:Q     (issue 5)
//   nat     -A FTPWALL-SNAT -s C/32 -d I/32 -p tcp -m tcp --dport Q ... -j SNAT --to-source A (issue 5)
// The kernel enforces the lifetime too (-m time --datestop): a dead daemon leaves nothing open past
// it. The daemon's own expiry is on the monotonic clock (Opening::expires); the --datestop is the
// wall-clock (UTC) time that stands for it at install, a backstop only (xt_time's date_stop is a
// u32 of UTC seconds: valid until 2106). A retransmitted SYN of the admitted connection matches
// the same rule; the daemon closes the opening once the first data connection is up, so a second
// connection meets a closed door.
//
// How an nftables implementation fits the same interface (a later issue):
//   table ip ftpwall { set accept { type ipv4_addr . ipv4_addr . inet_service; flags timeout; }
//                      map dnat { type ipv4_addr . ipv4_addr . inet_service : ipv4_addr . inet_service;
//                                 flags timeout; } ... }
//   open  = add element with `timeout` (expires - now) and the comment "ftpwall s7 o1" as element
//           userdata; close = delete element; flush_own = flush set/map; list_own = dump elements;
//   apply = one nf_tables netlink batch (atomic across sets, so no table ordering is needed);
//   install_hooks = the table and its base chains; HookState the same questions about them.
#pragma once

#include <array>
#include <chrono>
#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ftpwall/core/addr.hpp"
#include "ftpwall/core/result.hpp"

namespace ftpwall::firewall {

// Openings expire on the monotonic clock: a wall-clock step neither lengthens nor shortens them in
// the daemon. The kernel's -m time --datestop needs a UTC time; the backend derives it from the
// wall clock when it installs the rule (wall_time below).
using Clock = std::chrono::steady_clock;
using WallClock = std::chrono::system_clock;

// The wall-clock time that `t` of the monotonic clock stands for now, and the inverse.
inline WallClock::time_point wall_time(Clock::time_point t) {
  const auto mono = Clock::now();
  const auto wall = WallClock::now();
  return wall + std::chrono::duration_cast<WallClock::duration>(t - mono);
}
inline Clock::time_point monotonic_time(WallClock::time_point t) {
  const auto mono = Clock::now();
  const auto wall = WallClock::now();
  return mono + std::chrono::duration_cast<Clock::duration>(t - wall);
}

// Session number (the daemon's counter) and the opening's number within the session (the core's
// OpenData::opening). Printed as "s<session> o<opening>" in every rule's comment; a range opening
// (per-client FTPS, issue 14) has its own numbering, printed "s<session> r<number>".
struct OpeningId {
  std::uint64_t session = 0;
  std::uint32_t opening = 0;
  bool range = false;
  auto operator<=>(const OpeningId&) const = default;
};

// "ftpwall s7 o1" ("ftpwall s7 r1"): the comment every opening rule carries, and its inverse.
std::string format_opening_comment(const OpeningId& id);
// The same text without an allocation (the nftables elements of every announcement).
struct OpeningComment {
  std::array<char, 56> text{};  // "ftpwall s" + 20 digits + " o" + 10 digits, NUL-terminated
  const char* c_str() const { return text.data(); }
};
OpeningComment opening_comment(const OpeningId& id);
std::optional<OpeningId> parse_opening_comment(std::string_view comment);

// One data connection to admit. Addresses are as the data SYN shows them when it reaches the
// firewall, before NAT (the core's OpenData): source = the connecting side's real address,
// destination = where it dials. With server-side NAT (issue 5) dnat_to is the real endpoint
// behind the gateway; the ACCEPT part then matches the translated destination, because filter
// FORWARD sees the packet after nat PREROUTING.
struct Opening {
  OpeningId id;
  Family family = Family::v4;
  Address source;
  Endpoint destination;
  Clock::time_point expires;           // monotonic; the kernel's --datestop is derived at install
  std::optional<Endpoint> dnat_to;     // FTPWALL-DNAT part (issue 5)
  std::optional<Address> snat_to;      // FTPWALL-SNAT part: rewrite the source to this (issue 5)
  // The ACCEPT part's target: -j NFQUEUE --queue-num N instead of -j ACCEPT. The data SYN then
  // reaches the daemon, which admits the first connection and its retransmitted SYNs only (one-shot).
  std::optional<std::uint16_t> queue;
  // A range opening (per-client FTPS, issue 14; id.range set): every data connection from source
  // to destination.port .. port_last until expires or its close, never queued. The accept sets
  // HookSpec::accept_mark itself (no daemon verdict sees these SYNs); a DNAT part keeps the port
  // (dnat_to's port is destination.port). 0: one port, destination.port.
  std::uint16_t port_last = 0;
  bool is_range() const { return port_last != 0; }

  // What filter sees: destination after DNAT.
  Endpoint accepted_destination() const { return dnat_to ? *dnat_to : destination; }
  bool operator==(const Opening&) const = default;
};

// One step of a batch. Batches are applied with one kernel transaction per table (libiptc rewrites
// whole tables per commit; nftables would use one netlink batch). What a batch does is its net
// effect (BatchEffect below), never "all closes, then all opens".
//
// The order of the table commits (iptables-legacy): nat, then filter, for installs and removals
// alike. What matters is which half-state can exist between the two commits, and after a failure:
//   a DNAT part without its ACCEPT: dangerous. The SYN is translated in nat PREROUTING and then
//     meets the admin's FORWARD rules without ever reaching the daemon; an admin who accepts
//     `--ctstate DNAT` (common for port forwards) lets every matching SYN through, a multi-use
//     opening the daemon does not arbitrate (review finding L6).
//   an ACCEPT part without its NAT parts: harmless. It matches the translated destination, which
//     the untranslated SYN does not show; what it matches goes to the daemon (NFQUEUE), which
//     refuses openings it no longer has, and admits the connection it is installing.
// Removal, nat first: a DNAT part never outlives its ACCEPT. Install, nat first: no SYN the ACCEPT
// admits misses its translation (an SNAT part missing would send it out with the wrong source);
// the DNAT stands without its ACCEPT only during the filter commit, for a port nobody has been
// told yet (the announcement waits for the batch), and if the filter commit fails the nat edit
// is rolled back before apply() returns. Every NAT part whose ACCEPT is not in filter (a failed
// rollback, the admin's filter-only restore) is removed by the next nat transaction, list_own()
// and flush_own().
struct OpenStep {
  Opening opening;
};
struct CloseStep {
  OpeningId id;
};
using Change = std::variant<OpenStep, CloseStep>;

// The net effect of a batch applied in order (review finding L5). Every id the batch names loses
// the rules it has in the kernel; an id whose last step is an OpenStep is then installed with that
// step's opening. So an open followed by a close of one id installs nothing (and removes an older
// rule of that id), and a close followed by an open (a reinstall, as the daemon's check_kernel
// sends) installs the opening.
struct BatchEffect {
  std::vector<OpeningId> touched;  // every id named, in the order first named: rules to delete
  std::vector<Opening> installs;   // ids whose last step opens, in the order of those steps
};
BatchEffect net_effect(std::span<const Change> changes);

enum class Role : std::uint8_t { gateway, server };
std::string_view name(Role r);

// What install_hooks() puts in place (daemon mode; in admin mode the admin writes the same rules).
struct HookSpec {
  Role role = Role::gateway;
  std::vector<std::uint16_t> control_ports{21};
  std::uint16_t queue_num = 0;
  // Queues queue_num .. queue_num + queues_total - 1 (--queue-balance; [queue] count, issue 13):
  // the kernel picks one by a hash of the sorted address pair and the protocol, the same for both
  // directions of a connection and for its data SYN at the openings rule. nftables only.
  std::uint16_t queues_total = 1;
  bool queue_bypass = false;       // --queue-bypass: accept when no daemon listens
  std::uint32_t exempt_mark = 0;   // connmark bits that take a connection out of the queue (FTPS); 0 = none
  bool nat = false;                // install the nat chains and jumps (gateway; issue 5)
  std::uint32_t accept_mark = 0;   // packet-mark bit the daemon's verdict sets on admitted data SYNs (queue.accept_mark)
  // [ha] enabled: keep conntrack labels available. The kernel gives a new entry its label
  // extension only while some rule uses labels (nf_connlabels_get), and ftpwalld's HA label
  // (core/ha_label.hpp) and conntrackd's commit on a backup both need it. nftables: a chain of
  // its own, never jumped to, with `ct label 127 ct label set 127` (a no-op); iptables-legacy:
  // `-m connlabel --label 127` in FTPWALL-ACCEPT after its last rule.
  bool labels = false;
};

// One NFQUEUE rule in mangle, the daemon's or the admin's: --check-config compares it with the
// configured queue number and bypass setting (they must agree, or packets go to a queue nobody
// reads, or are dropped when the daemon is down although the admin expected a bypass).
// How a steering rule picks its packets: the admin's older rules by a TCP port of the packet,
// ftpwalld's by the original destination port of the packet's conntrack entry (both directions).
enum class SteerMatch : std::uint8_t { none, dport, sport, ct_original_dport };
// -m conntrack --ctdir: which direction of the connection a rule matches.
enum class CtDir : std::uint8_t { any, original, reply };

struct SteeringRule {
  std::string chain;             // FORWARD, INPUT, OUTPUT, ...
  std::uint16_t port = 0;        // the single TCP port matched; 0 = none or a range
  SteerMatch match = SteerMatch::none;
  CtDir dir = CtDir::any;
  std::uint16_t queue_num = 0;
  std::uint16_t queues_total = 1;
  bool bypass = false;
  bool own = false;              // commented "ftpwall hook"
  Family family = Family::v4;    // iptables-legacy: v6 for a rule in ip6tables' mangle
  bool operator==(const SteeringRule&) const = default;
};

// One family's share of a HookState, where a backend keeps that family in tables of its own
// (iptables-legacy: IPv6 in the ip6tables tables).
struct FamilyHookState {
  bool accept_chain = false;  // FTPWALL-ACCEPT exists in that family's filter table
  unsigned own_hooks = 0;     // its rules commented "ftpwall hook"
  unsigned openings = 0;      // its opening rules
  bool operator==(const FamilyHookState&) const = default;
};

// What is present in the kernel right now: for start-up checks ("both sets of hooks present") and
// for noticing that an iptables-restore wiped the daemon's rules.
struct HookState {
  bool accept_chain = false;   // FTPWALL-ACCEPT exists in filter
  bool dnat_chain = false;     // FTPWALL-DNAT exists in nat
  bool snat_chain = false;     // FTPWALL-SNAT exists in nat
  unsigned own_hooks = 0;      // rules commented "ftpwall hook" (installed by a daemon)
  unsigned foreign_jumps = 0;  // jumps to FTPWALL-* without that comment (the admin's hooks)
  unsigned foreign_queue = 0;  // NFQUEUE rules in mangle without that comment (the admin's steering)
  unsigned openings = 0;       // opening rules in FTPWALL-ACCEPT
  unsigned pairs = 0;          // nftables: elements of pairs4/pairs6 (the daemon's queued openings, by address pair)
  std::vector<SteeringRule> steering;  // every NFQUEUE rule in mangle, in table order (IPv4, then IPv6)
  // iptables-legacy where ip6tables-legacy serves IPv6: the ip6tables tables' part alone. The
  // counts above (own_hooks, foreign_*, openings) are of both families; accept_chain, dnat_chain
  // and snat_chain of the IPv4 tables. Unset: no separate IPv6 tables (nftables' inet table, or
  // a host without ip6tables-legacy).
  std::optional<FamilyHookState> ip6;
  // The backend's own judgement, where a count cannot say it (nftables: its accept_mark rule in
  // each iptables-nft chain at its hooks that exists, which may appear after the install): false =
  // something the last install_hooks() of this process put in place is missing, reinstall. Unset
  // (no install in this process, or a backend that does not judge): compare own_hooks with
  // expected_own_hooks().
  std::optional<bool> hooks_complete;
};

// Kernel interface counters, for `ftpwall status` and the benchmark in the issue note.
struct BackendStats {
  std::uint64_t commits = 0;
  std::uint64_t commit_retries = 0;      // rebuilt and retried: EAGAIN (iptables-legacy: the table changed under us),
                                         // EEXIST (nftables: a new key held by an element it did not know of)
  std::uint64_t last_commit_us = 0;      // the kernel commits of the last batch (all its tables)
  std::uint64_t last_apply_us = 0;       // the whole last batch: lock, snapshots, edits, commits
  std::uint64_t max_apply_us = 0;
};

// How many rules install_hooks(spec) adds: steering (1 per control port on a gateway, 2 on a
// server), filter jumps (1 on a
// gateway, 2 on a server), nat jumps (2 with spec.nat). HookState::own_hooks below it means an
// iptables-restore (or an admin) removed some: the daemon reinstalls them.
unsigned expected_own_hooks(const HookSpec& spec);
// The same for the state a backend reports: with HookState::ip6 set, the IPv6 tables' hooks too
// (steering and filter jumps; no nat there). Compare HookState::own_hooks with this one.
unsigned expected_own_hooks(const HookSpec& spec, const HookState& state);

// The openings half of a backend: open, close, flush and list its own openings, in batches.
class OpeningStore {
 public:
  virtual ~OpeningStore() = default;

  // Applies a batch's net effect (net_effect()) in one transaction per table. Fails as a whole: if
  // a later table's commit fails, the edit of the table committed before it is rolled back (as far
  // as a rollback can succeed: NAT parts whose ACCEPT is missing are removed in any case), and the
  // failure is reported. Closing an opening that is not installed is not an error.
  virtual Result<void> apply(std::span<const Change> changes) = 0;

  // -A FTPWALL-ACCEPT -s C -d S -p tcp --dport P --tcp-flags ... SYN -m time --datestop T -j ACCEPT
  Result<void> open(const Opening& o) {
    const Change c = OpenStep{o};
    return apply(std::span<const Change>(&c, 1));
  }
  // -D FTPWALL-ACCEPT <the rule commented "ftpwall s<session> o<opening>"> (and its NAT parts)
  Result<void> close(const OpeningId& id) {
    const Change c = CloseStep{id};
    return apply(std::span<const Change>(&c, 1));
  }
  // Every opening of one session.
  virtual Result<void> close_session(std::uint64_t session) = 0;
  // -F FTPWALL-ACCEPT, -F FTPWALL-DNAT, -F FTPWALL-SNAT (chains that exist). Start and stop.
  virtual Result<void> flush_own() = 0;
  // The openings in the kernel, read back from the rules (a restarted daemon finds its leftovers).
  // NAT parts without their ACCEPT part are not openings: they are removed.
  virtual Result<std::vector<Opening>> list_own() = 0;

  virtual BackendStats stats() const = 0;
  // True when the kernel may also queue data SYNs that no opening names (NftOptions::pairs: every
  // new connection between two addresses with an opening between them). The daemon's verdict on
  // such a SYN is accept without queue.accept_mark, so the admin's rules judge it as if no rule
  // of ours had seen it. False: every queued data SYN was named by an opening, and one whose
  // opening is gone is dropped (an accept from iptables' FTPWALL-ACCEPT would be final).
  virtual bool queues_unnamed_syns() const { return false; }
};

// The kernel-layout half: the hooks and chains the openings live in, and whether they can take
// effect under the ruleset the backend finds.
class KernelLayout {
 public:
  virtual ~KernelLayout() = default;

  // Daemon mode: creates the chains and inserts the hooks above (idempotent: existing own hooks
  // are replaced). Admin mode never calls it.
  virtual Result<void> install_hooks(const HookSpec& spec) = 0;
  // Removes own hooks (comment "ftpwall hook") and deletes the chains, nat before filter.
  // Chains still referenced by the admin's jumps are flushed, not deleted.
  virtual Result<void> remove_hooks() = 0;
  virtual Result<HookState> hook_state() = 0;
  // Before anything is installed: an error (one line, naming what to change) when openings could
  // not take effect under the ruleset found, or when the admin's hooks and the daemon's would both
  // be present; warnings otherwise.
  virtual Result<std::vector<std::string>> preflight(const HookSpec& spec, bool daemon_hooks) = 0;
  // How control packets reach the queue, for the start line.
  virtual std::string_view steering() const { return "xt NFQUEUE"; }
};

class FirewallBackend : public OpeningStore, public KernelLayout {
 public:
  virtual std::string_view name() const = 0;
};

// Which backend: `backend` in ftpwall.conf(5).
enum class BackendKind : std::uint8_t { automatic, nftables, iptables_legacy };
std::string_view name(BackendKind k);

struct BackendChoice {
  std::unique_ptr<FirewallBackend> backend;
  std::string why;  // for the start line: "configured", "rules in legacy tables (filter FORWARD)", ...
};
// `automatic` follows the host's firewall: rules in iptables-legacy tables -> iptables-legacy;
// otherwise nftables (iptables-nft, firewalld and native nft rulesets are all nf_tables). Looking
// never creates a legacy table.
Result<BackendChoice> make_backend(BackendKind kind);
// Every ftpwall object of both backends, wherever one exists (ftpwalld --cleanup).
Result<void> remove_all_hooks();

}  // namespace ftpwall::firewall
