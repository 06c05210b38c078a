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
#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ftpwall/config/config.hpp"
#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/policy.hpp"
#include "ftpwall/core/reason.hpp"
#include "ftpwall/core/tracker.hpp"
#include "ftpwall/firewall/backend.hpp"
#include "daemon/state_dir.hpp"
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
  bool foreground = false;
  std::string ready_file;  // written once the hooks are in place (tests; systemd uses Type=simple)
  std::string state_dir = "/run/ftpwalld";  // session records across restarts (issue 5)
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
  std::uint64_t ct_queries = 0;
  std::uint64_t verdict_waits = 0;    // packets that waited for an opening
  std::uint64_t max_wait_us = 0;      // longest such wait
  std::uint64_t half_open_expired = 0;  // half-open sessions freed after openings.half_open_timeout
  std::uint64_t ct_events = 0;          // DESTROY events read
  std::uint64_t ct_resyncs = 0;         // dumps after lost events
  std::array<std::uint64_t, reason_count> reasons{};  // per Reason, indexed by its value
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
  static Result<void> check_steering(const config::Config& cfg);

 private:
  using Clock = std::chrono::steady_clock;

  // One opening: the core's OpenData as installed (or being installed) for a session.
  struct OpeningState {
    firewall::Opening opening;
    bool installed = false;
    std::optional<std::uint16_t> winner_port;  // the data connection that took it (its source port)
  };
  // A packet whose verdict waits for an opening of its session (the announcing packet and later
  // packets of that direction).
  struct Waiting {
    std::uint32_t id;
    std::vector<std::uint8_t> bytes;  // empty: unmodified
    Clock::time_point since;
  };
  struct SessionState {
    std::uint64_t id = 0;
    ConnTuples tuples;
    std::unique_ptr<Tracker> tracker;  // empty: passed through untouched (kernel helper, FTPS, refused pick-up)
    std::optional<std::uint32_t> client_isn;
    // The client's SYN, kept until the ctnetlink query (the SYN's entry is unconfirmed at the hook):
    // when the entry shows NAT, the Tracker is rebuilt with the real tuples and the SYN replayed.
    std::vector<std::uint8_t> syn;
    bool ct_known = false;              // the ctnetlink query was made
    bool liberal = false;               // IP_CT_TCP_FLAG_BE_LIBERAL set on the entry (issue 5)
    std::uint32_t ct_id = 0;            // CTA_ID of the entry (0: unknown); names the state record
    bool recorded = false;              // a state record exists for it (state_dir.hpp)
    bool ended = false;                 // SessionEnd (221/421, QUIT), RST, or both FINs
    bool tcp_ended = false;             // RST or both FINs seen: only then may a new SYN replace it
    std::size_t held = 0;               // bytes its Tracker holds now (held_per_source_)
    std::shared_ptr<const Policy> policy;  // the one its Tracker borrows (kept alive across reloads)
    bool dropping = false;              // a violation with action reset: drop what follows
    Clock::time_point ended_at{};
    std::optional<OpeningState> opening;  // at most one per session
    std::array<unsigned, 2> opens_in_flight{};   // per direction
    std::array<std::deque<Waiting>, 2> waiting{};
  };
  // A client's SYN and nothing else yet (security review H1): a few bytes, in a table of its own,
  // the oldest evicted first. Promoted to a SessionState at the connection's next packet.
  struct HalfOpen {
    std::vector<std::uint8_t> syn;
    Clock::time_point since;
    std::list<Tuple>::iterator order;  // in half_open_order_ (a Key)
  };
  // What a worker completion token stands for.
  struct Pending {
    enum class Kind : std::uint8_t { open, close, check } kind = Kind::open;
    std::uint64_t session = 0;
    Direction direction = Direction::client_to_server;
    firewall::OpeningId opening;
    std::chrono::steady_clock::time_point since;
  };
  using Key = Tuple;  // client endpoint -> server endpoint, as the hook shows them

  Daemon(config::Config cfg, Options opts);
  Result<void> open_kernel();
  int stop();

  void on_queue();
  void on_packet(const netlink::QueuedPacket& p);
  void on_control_packet(std::uint32_t id, PacketView& view, Direction dir, const Key& key);
  void on_data_syn(std::uint32_t id, const PacketView& view);
  SessionState* find_or_start(const Key& key, Direction dir, const PacketView& view);
  SessionState* add_session(const Key& key, SessionState s);
  void on_unknown_packet(std::uint32_t id, PacketView& view, const Endpoint& src, const Endpoint& dst);
  void track(SessionState& s, std::uint32_t id, PacketView& view, Direction dir);
  void note_preexisting();
  void start_half_open(std::uint32_t id, const PacketView& view, const Key& key);
  void forget_half_open(std::map<Key, HalfOpen>::iterator it);
  SessionState* promote(const Key& key);
  std::map<Key, SessionState>::iterator erase_session(std::map<Key, SessionState>::iterator it);
  void on_ct_events();
  void resync_conntrack();
  void session_gone(const Tuple& original, std::uint32_t ct_id);
  void count(Reason r) { ++stats_.reasons[static_cast<std::size_t>(r)]; }
  void query_conntrack(SessionState& s, const Key& key, Direction dir);
  void act(SessionState& s, PacketOutcome& out, std::optional<std::uint32_t> id, Direction dir);
  void on_open(SessionState& s, const OpenData& od);
  void close_opening(SessionState& s, Reason why);
  void unindex_opening(SessionState& s);  // drops the opening from openings_, dnat_matches_ and the per-source count
  const Address& client_of(const SessionState& s) const { return session_keys_.at(s.id).src.addr; }
  void account_held(SessionState& s, const Address& source);
  void end_session(SessionState& s, Reason why);
  void deliver(SessionState& s, Direction dir, std::uint32_t id, std::vector<std::uint8_t> bytes);
  void release_waiting(SessionState& s, Direction dir);
  void verdict(std::uint32_t id, netlink::Verdict v, std::span<const std::uint8_t> bytes = {});
  void record_corrections(SessionState& s);
  void forget(SessionState& s);
  void restore_records();
  firewall::Opening nat_parts(const SessionState& s, const OpenData& od, firewall::Opening o) const;
  // "Port in use" (rewrite.hpp): the public port for session `session`'s client-NAT announcement.
  std::optional<std::uint16_t> public_port(std::uint64_t session, const Endpoint& wanted, const Address& peer) const;
  void attach_port_chooser(SessionState& s);
  // One warning per (reason, source) bucket: one client's flood cannot hide another's refusals.
  void refuse(Reason reason, const Address& source, const std::string& what);
  // Info lines of the packet path (openings, data connections, rewrites, pick-ups), limited per
  // (kind, source) likewise; the counters stay exact.
  bool info_allowed(std::uint32_t kind, const Address& source);

  void on_signal();
  void reload();
  void on_timer();
  void on_completions();
  void check_kernel();
  void check_conntrack();

  std::uint64_t now_ms() const;
  firewall::HookSpec hook_spec() const;
  SessionState* session_by_id(std::uint64_t id);

  // ---- start-up order ----
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
  // Records of an earlier instance whose conntrack entry still exists, by hook key: claimed by the
  // pick-up of their session (find_or_start).
  std::map<Key, SessionRecord> restored_;
  // Control connections conntrack had when this instance started (original tuple -> CTA_ID): the
  // only ones it picks up mid-stream without a record. Emptied as they are picked up.
  std::map<Tuple, std::uint32_t> preexisting_;
  std::unique_ptr<netlink::NfQueue> queue_;
  std::unique_ptr<firewall::FirewallBackend> backend_;
  std::unique_ptr<firewall::BackendWorker> worker_;
  std::map<Key, SessionState> sessions_;
  std::map<Key, HalfOpen> half_open_;
  std::list<Tuple> half_open_order_;  // Keys, oldest first
  std::map<Address, unsigned> half_open_per_source_;
  std::map<Address, unsigned> sessions_per_source_;
  std::map<Address, unsigned> openings_per_source_;  // live (installed or in flight), by the session's client
  std::map<Address, std::size_t> held_per_source_;   // bytes held by the sessions' Trackers
  std::map<Tuple, Key> by_original_;  // conntrack's original tuple -> session key (DESTROY events)
  // (source, destination) of every opening with a DNAT part -> its session: "port in use"
  std::map<std::pair<Address, Endpoint>, std::uint64_t> dnat_matches_;
  // ---- state of the loop ----
  std::map<std::uint64_t, Key> session_keys_;  // session id -> key
  // (source address, destination) of every opening -> its session: the data SYN arbitration
  std::map<std::pair<Address, Endpoint>, std::uint64_t> openings_;
  std::map<std::uint64_t, Pending> pending_;
  // Packets queued with NFQA_SKB_CSUMNOTREADY and still without a verdict: their TCP checksum field
  // holds only the pseudo-header sum, so a modified copy needs a full recomputation (verdict()).
  std::set<std::uint32_t> checksum_partial_;
  std::uint64_t next_session_ = 1;
  std::uint64_t next_token_ = 1;
  std::vector<std::uint8_t> buf_;
  Clock::time_point next_kernel_check_{};
  Clock::time_point next_ct_check_{};
  bool check_in_flight_ = false;
  bool stopping_ = false;
  DaemonStats stats_;
};

}  // namespace ftpwall::daemon
