// SPDX-License-Identifier: GPL-2.0-or-later
// ftpwalld: the NFQUEUE daemon (issue 4). One poll loop over four descriptors:
//   the NFQUEUE socket   every control packet (both directions) and every data SYN an opening queues
//   a signalfd           SIGTERM/SIGINT: remove everything and leave; SIGHUP: reload the configuration
//   a timerfd            hold expiry (Tracker::on_timer), opening expiry, the periodic checks
//   the worker's eventfd an opening is in the kernel: release the packet that announced it
// Signal handlers do no work: the signals are blocked and read from the signalfd (MODELS item 11).
//
// Members are declared in start-up order (configuration, logging, conntrack, queue, backend,
// worker, sessions), so C++ destroys them in reverse, like chrony's _Finalise; stop() removes the
// kernel objects before that.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ftpwall/config/config.hpp"
#include "ftpwall/core/containers.hpp"
#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/policy.hpp"
#include "ftpwall/core/reason.hpp"
#include "ftpwall/core/tracker.hpp"
#include "ftpwall/firewall/backend.hpp"
#include "daemon/control.hpp"
#include "daemon/half_open.hpp"
#include "daemon/mailbox.hpp"
#include "daemon/opening_book.hpp"
#include "daemon/session_table.hpp"
#include "daemon/state_dir.hpp"
#include "daemon/verdict_gate.hpp"
#include "firewall/backend_worker.hpp"
#include "log/log.hpp"
#include "netlink/conntrack.hpp"
#include "netlink/nfqueue.hpp"

namespace ftpwall::daemon {

inline constexpr std::size_t reason_count = [] {
  std::size_t n = 0;
#define FTPWALL_COUNT_REASON(r) ++n;
  FTPWALL_REASONS(FTPWALL_COUNT_REASON)
#undef FTPWALL_COUNT_REASON
  return n;
}();

// The command line (main.cpp parses it with CLI11); every field overrides the configuration file.
struct Options {
  std::optional<std::string> config_path;
  std::optional<config::LogLevel> log_level;
  std::optional<std::uint16_t> queue;
  std::optional<std::uint16_t> queues;  // --queues: [queue] count
  bool foreground = false;
  std::string ready_file;  // written once the hooks are in place (tests; systemd uses Type=simple)
  std::string state_dir = "/run/ftpwalld";  // session records across restarts (issue 5)
  std::string control_socket;                // `ftpwall status`; empty: <state_dir>/control
};

// Counters the daemon keeps (logged at stop; `ftpwall status` later).
struct DaemonStats {
  std::uint64_t packets = 0;
  std::uint64_t untracked = 0;        // IPv6, malformed, not TCP: accepted unseen
  std::uint64_t sessions = 0;         // sessions started (SYN or pick-up)
  std::uint64_t pickups = 0;
  std::uint64_t openings = 0;         // installed
  std::uint64_t opening_failures = 0; // the backend refused
  std::uint64_t data_syns = 0;        // data SYNs arbitrated
  std::uint64_t passed_syns = 0;      // queued SYNs no opening names, passed unmarked (queues_unnamed_syns)
  std::uint64_t ct_queries = 0;
  std::uint64_t exempted = 0;         // ended sessions (221/421) taken out of the queue (exempt_ended)
  std::uint64_t verdict_waits = 0;    // packets that waited for an opening
  std::uint64_t max_wait_us = 0;      // longest such wait
  std::uint64_t half_open_expired = 0;  // half-open sessions freed after openings.half_open_timeout
  std::uint64_t ct_events = 0;          // DESTROY events read (what the event socket delivered)
  std::uint64_t ct_resyncs = 0;         // dumps after lost events
  std::uint64_t ha_label_writes = 0;    // [ha]: HA labels written to conntrack entries
  std::uint64_t ha_label_errors = 0;    // ... that the kernel refused
  std::uint64_t ha_takeovers = 0;       // `ftpwall takeover` (and its two later passes)
  std::uint64_t ha_continued = 0;       // sessions continued from their HA labels
  std::array<std::uint64_t, reason_count> reasons{};  // per Reason, indexed by its value
  // The daemon's total over its queues (max_wait_us: the longest).
  DaemonStats& operator+=(const DaemonStats& o);
};

class Daemon {
 public:
  // Start-up: opens the kernel interfaces, removes an earlier instance's leftovers, installs the
  // hooks. Every error is one line; the caller exits 1.
  static Result<std::unique_ptr<Daemon>> start(config::Config cfg, Options opts);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // The poll loop; returns at SIGTERM/SIGINT after stop(). The exit status.
  int run();

  // ftpwalld --cleanup: every ftpwall hook, chain and rule, without starting.
  static Result<void> cleanup();
  // --check-config: the steering rules in the kernel agree with the configuration.
  // Typed: the caller tells "they disagree" (exit 2) from "could not be read" (not checked).
  struct SteeringCheck {
    std::string disagreement;  // one line naming the rule and the key; empty: they agree
    std::string unreadable;    // why the rules could not be read; empty: they were read
  };
  static SteeringCheck check_steering(const config::Config& cfg);

 private:
  using Clock = std::chrono::steady_clock;
  using Key = Tuple;  // client endpoint -> server endpoint, as the hook shows them

  // What a worker completion token stands for.
  struct Pending {
    enum class Kind : std::uint8_t { open, close, check, reinstall } kind = Kind::open;
    std::uint64_t session = 0;
    Direction direction = Direction::client_to_server;
    firewall::OpeningId opening;
    std::chrono::steady_clock::time_point since;
  };
  // The NFQUEUE socket as the verdict gate's sink: full checksums for "checksum not ready" packets.
  class QueueSink final : public VerdictSink {
   public:
    explicit QueueSink(Daemon& d) : d_(d) {}
    void verdict(std::uint32_t id, bool accept, std::span<const std::uint8_t> bytes) override;

   private:
    Daemon& d_;
  };

  // shard: which of the [queue] count queues this instance reads (0: the leader, which also owns
  // the signals, the control socket, the hooks and the kernel check; issue 13).
  Daemon(config::Config cfg, Options opts, unsigned shard = 0);
  Result<void> open_kernel();
  Result<void> open_timer();
  Result<void> open_conntrack();
  Result<void> open_queue();
  int stop();

  // ---- several queues (issue 13) ----
  // A queue's thread beside the leader: its own NFQUEUE, ctnetlink sockets, timer, backend instance
  // and worker, sessions, openings and state records; the leader opens its descriptors (before
  // the privileges are dropped) and starts it once the hooks are in place.
  struct Follower {
    std::unique_ptr<Daemon> daemon;
    std::thread thread;
    std::atomic<bool> done{false};
    int rc = 0;
  };
  Result<void> open_follower(const Daemon& leader);
  void start_followers();
  void stop_followers();
  bool leader() const { return shard_ == 0; }
  std::uint16_t queue_number() const { return static_cast<std::uint16_t>(cfg_.queue.number + shard_); }
  // Unique across the queues (the openings' comments and the DNAT claims name sessions by it).
  std::uint64_t new_session_id() {
    const std::uint64_t id = next_session_;
    next_session_ += cfg_.queue.count;
    return id;
  }
  // This queue's share of the configuration: the daemon-wide caps divided among the queues.
  static config::Config queue_share(config::Config c);
  void apply_config(const config::Config& loaded);
  // What `ftpwall status` sums over the queues; read in the queue's own thread.
  struct Figures {
    std::uint16_t queue = 0;
    DaemonStats stats;
    netlink::QueueStats q;
    std::size_t sessions = 0, half_open = 0, openings = 0, installed = 0;
    Figures& operator+=(const Figures& o);  // the sums (the queue number stays)
  };
  Figures figures() const;
  std::vector<Figures> all_figures() const;  // the leader's, then each follower's
  Figures total_figures() const;
  DaemonStats total_stats() const;
  // The leader put removed hooks back: a follower puts its live openings back too.
  void reinstall_openings();
  std::vector<firewall::Opening> live_openings() const;
  static std::vector<firewall::Change> reinstall_changes(const std::vector<firewall::Opening>& live);

  // ---- the packet path ----
  void on_queue();
  void on_packet(const netlink::QueuedPacket& p);
  // `found`: the session's place in the table when the caller looked it up already.
  void on_control_packet(std::uint32_t id, PacketView& view, Direction dir, const Key& key,
                         std::optional<SessionTable::Map::iterator> found = std::nullopt);
  void on_unknown_packet(std::uint32_t id, PacketView& view, const Endpoint& src, const Endpoint& dst);
  void on_data_syn(std::uint32_t id, const PacketView& view, std::uint32_t mark);
  void admit(std::uint32_t id, std::uint32_t mark);
  void start_half_open(std::uint32_t id, const PacketView& view, const Key& key);
  SessionState* promote(const Key& key);
  SessionState* find_or_replace(const Key& key, Direction dir, const PacketView& view,
                                std::optional<SessionTable::Map::iterator> found = std::nullopt);
  SessionState& add_session(const Key& key, SessionState s);
  SessionTable::Map::iterator erase_session(SessionTable::Map::iterator it);
  void query_conntrack(SessionState& s, const Key& key, Direction dir);
  void track(SessionState& s, std::uint32_t id, PacketView& view, Direction dir);
  void act(SessionState& s, PacketOutcome& out, std::optional<std::uint32_t> id, Direction dir);
  // `bytes` (empty: as queued) is moved from only when the packet must wait for an opening.
  void deliver(SessionState& s, Direction dir, std::uint32_t id, std::vector<std::uint8_t>& bytes);
  void deliver(SessionState& s, Direction dir, std::uint32_t id, std::vector<std::uint8_t>&& bytes) {
    deliver(s, dir, id, bytes);
  }
  // Outcomes reused packet after packet (their buffers kept; a few, for nested tracking).
  PacketOutcome take_outcome();
  void give_outcome(PacketOutcome&& out);
  void verdict(std::uint32_t id, netlink::Verdict v, std::span<const std::uint8_t> bytes = {});

  // ---- openings ----
  bool translated_ipv6(SessionState& s);
  void on_open(SessionState& s, const OpenData& od);
  void close_opening(SessionState& s, Reason why);
  void submit_close(std::uint64_t session, const firewall::OpeningId& id);
  void open_range(SessionState& s);
  void close_range(SessionState& s, Reason why);
  void check_ranges();
  void end_session(SessionState& s, Reason why);
  firewall::Opening nat_parts(const SessionState& s, const OpenData& od, firewall::Opening o) const;
  void attach_port_chooser(SessionState& s);

  // ---- state records, conntrack ----
  void record_corrections(SessionState& s);
  // [ha] (issue 15): the session's HA label into its conntrack entry, when it changed.
  void write_label(SessionState& s);
  // A session of an entry whose HA label names it (after a failover): its Tracker from the label.
  std::unique_ptr<Tracker> tracker_from_label(SessionState& s, const netlink::ConntrackEntry& e, const HaLabel& l);
  // The rest of continuing it: be_liberal when it has corrections, its pending opening.
  bool continue_from_label(SessionState& s, const netlink::ConntrackEntry& e, const HaLabel& l);
  // Both, for the takeover and for a labelled entry seen mid-stream.
  struct Continued {
    SessionState& session;
    bool opened;
  };
  Continued continue_session(SessionState s, const Key& key, const netlink::ConntrackEntry& e, const HaLabel& l);
  struct TakeoverCount {
    unsigned sessions = 0, openings = 0, refused = 0, replaced = 0;
  };
  TakeoverCount takeover();
  std::string takeover_json();
  std::string standby_json();
  void forget(SessionState& s);
  void restore_records();
  void note_preexisting();
  void on_ct_events();
  void exempt_ended(SessionState& s);
  void resync_conntrack();
  void session_gone(SessionTable::Map::iterator it, const netlink::ConntrackEntry* destroyed);
  void check_conntrack();

  // ---- logging and counting ----
  void count(Reason r) { ++stats_.reasons[static_cast<std::size_t>(r)]; }
  // One warning per (reason, source) bucket: one client's flood cannot hide another's refusals.
  void refuse(Reason reason, const Address& source, const std::string& what);
  // Info lines of the packet path (openings, data connections, rewrites, pick-ups), limited per
  // (kind, source) likewise, unless debug logging; the counters stay exact.
  bool info_allowed(std::uint32_t kind, const Address& source);

  // ---- the loop's other sources ----
  // ---- introspection (control.hpp; introspect.cpp) ----
  std::string answer(std::string_view request);
  std::string status_json() const;
  std::string sessions_json() const;
  std::string openings_json() const;
  // One queue's entries, a JSON array (the leader joins every queue's).
  std::string sessions_list() const;
  std::string openings_list() const;
  std::string joined(const char* key, std::string (Daemon::*list)() const) const;

  void on_signal();
  void reload();
  void apply_limits();  // the tables' caps from cfg_ (start, SIGHUP)
  std::string live_status() const;  // sd_notify STATUS=
  void write_metrics();             // metrics_file
  void audit_summary();             // audit = "summary"
  void on_timer();
  void leader_timer(Clock::time_point now);
  void on_completions();
  void check_kernel();

  std::uint64_t now_ms() const;
  // The time of the round: while on_queue() reads a batch of packets, the moment it began reading
  // (every packet of the batch was in the kernel's queue by then); otherwise the clock. One clock
  // read per batch instead of several per packet (issue 13).
  Clock::time_point now() const { return round_now_ ? *round_now_ : Clock::now(); }
  firewall::HookSpec hook_spec() const;

  // ---- start-up order ----
  unsigned shard_ = 0;
  config::Config loaded_;  // as loaded (and overridden by the options); cfg_ is this queue's share
  config::Config cfg_;
  Options opts_;
  std::shared_ptr<const Policy> policy_;  // the current one; sessions hold the one they started with
  log::RateLimiter limiter_{5, std::chrono::seconds(10)};
  log::RateLimiter info_limiter_{20, std::chrono::seconds(10)};
  log::RateLimiter reason_limiter_{50, std::chrono::seconds(10)};
  int signal_fd_ = -1;
  int timer_fd_ = -1;
  std::unique_ptr<netlink::Conntrack> ct_;
  std::unique_ptr<netlink::ConntrackEvents> ct_events_;
  bool ct_events_lost_ = false;
  std::unique_ptr<StateDir> state_;
  std::unique_ptr<ControlServer> control_;
  Clock::time_point started_ = Clock::now();
  // Records of an earlier instance whose conntrack entry still exists, by hook key: claimed by the
  // pick-up of their session (on_unknown_packet).
  std::map<Key, SessionRecord> restored_;
  // Control connections conntrack had when this instance started (original tuple -> CTA_ID): the
  // only ones it picks up mid-stream without a record. Emptied as they are picked up.
  std::map<Tuple, std::uint32_t> preexisting_;
  std::unique_ptr<netlink::NfQueue> queue_;
  std::unique_ptr<firewall::FirewallBackend> backend_;
  std::string backend_why_;  // why this backend (the start line)
  std::unique_ptr<firewall::BackendWorker> worker_;
  // ---- the daemon's parts ----
  SessionTable sessions_;
  HalfOpenTable half_open_;
  OpeningBook openings_;
  RecentDnat dnat_gone_;  // nftables: DNAT parts closed in the last second (opening_book.hpp)
  // Range openings shared by the sessions of one client to one server (per-client FTPS): the
  // kernel holds one element (nftables) or rule per key, so a second session of that client joins
  // the first's range opening, and the last session to end removes it.
  struct RangeKey {
    Address source;
    Endpoint destination;
    std::uint16_t last = 0;
    std::optional<Endpoint> dnat_to;
    auto operator<=>(const RangeKey&) const = default;
  };
  struct RangeShare {
    firewall::OpeningId id;
    std::set<std::uint64_t> sessions;
    firewall::Clock::time_point expires;
  };
  static RangeKey range_key(const firewall::Opening& o) { return {o.source, o.destination, o.port_last, o.dnat_to}; }
  std::map<RangeKey, RangeShare> range_shares_;
  QueueSink sink_{*this};
  VerdictGate gate_{sink_};
  // ---- state of the loop ----
  FlatMap<std::uint64_t, Pending> pending_;  // tokens increase: a sorted vector, no node per opening
  // Packets queued with NFQA_SKB_CSUMNOTREADY and still without a verdict: their TCP checksum field
  // holds only the pseudo-header sum, so a modified copy needs a full recomputation (verdict()).
  FlatSet<std::uint32_t> checksum_partial_;  // ids increase: a sorted vector (issue 13)
  std::uint64_t next_session_ = 1;
  std::uint64_t next_token_ = 1;
  std::vector<std::uint8_t> buf_;
  std::vector<std::uint8_t> fixed_;  // verdict(): a modified copy with its checksums made whole
  std::optional<Clock::time_point> round_now_;  // now(): set while on_queue() reads a batch
  std::vector<PacketOutcome> outcome_spares_;   // take_outcome() / give_outcome()
  std::vector<firewall::BackendWorker::Completion> completions_;  // on_completions()' vector, kept
  Clock::time_point next_kernel_check_{};
  Clock::time_point next_ct_check_{};
  Clock::time_point next_range_check_{};
  // Sessions with held packets or an opening: what on_timer visits at every tick (the rest once a
  // second, when it is rebuilt). Ids, not iterators: a session it names may be gone.
  std::set<std::uint64_t> timed_;
  Clock::time_point next_sweep_{};
  bool check_in_flight_ = false;
  // What the running kernel check (in the worker's thread) reports back, read at its completion.
  struct CheckNote {
    std::string repair;             // what it put back; empty: nothing was missing
    firewall::BackendStats backend; // the backend's figures, read in the worker's thread
  };
  std::shared_ptr<CheckNote> check_repair_;
  struct LastCheck {
    Clock::time_point at{};
    bool ok = false;
    std::string result;
    firewall::BackendStats backend;
  } last_check_;  // `ftpwall status`
  std::optional<std::chrono::microseconds> watchdog_every_;  // systemd WatchdogSec= / 2
  Clock::time_point next_watchdog_{};
  Clock::time_point next_status_{};
  Clock::time_point next_metrics_{};
  Clock::time_point next_audit_{};
  DaemonStats audit_mark_;  // the counters at the last audit summary
  bool stopping_ = false;
  bool in_act_ = false;  // act() writes a session's HA label once, after all its decisions
  // [ha]: a takeover runs again 1 s and 3 s later (conntrackd's commit is asynchronous).
  std::vector<Clock::time_point> takeover_again_;
  Clock::time_point takeover_started_{};
  DaemonStats stats_;
  // ---- several queues (issue 13) ----
  std::unique_ptr<Mailbox> mailbox_;                   // a follower's: the leader's requests
  std::vector<std::unique_ptr<Follower>> followers_;   // the leader's
  std::shared_ptr<DnatClaims> dnat_claims_;            // every queue's book shares the leader's
  bool follower_failed_ = false;
};

}  // namespace ftpwall::daemon
