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
  std::array<std::uint64_t, 64> reasons{};  // per Reason, indexed by its value
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
    bool ended = false;                 // SessionEnd, RST, or both FINs: linger until conntrack forgets it
    bool dropping = false;              // a violation with action reset: drop what follows
    Clock::time_point ended_at{};
    std::optional<OpeningState> opening;  // at most one per session
    std::array<unsigned, 2> opens_in_flight{};   // per direction
    std::array<std::deque<Waiting>, 2> waiting{};
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
  void query_conntrack(SessionState& s, const Key& key, Direction dir);
  void act(SessionState& s, PacketOutcome& out, std::optional<std::uint32_t> id, Direction dir);
  void on_open(SessionState& s, const OpenData& od);
  void close_opening(SessionState& s, Reason why);
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
  void refuse(std::string_view reason, const std::string& what);

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
  std::deque<std::unique_ptr<Policy>> policies_;  // back() is current; trackers borrow older ones
  log::RateLimiter limiter_{5, std::chrono::seconds(10)};
  int signal_fd_ = -1;
  int timer_fd_ = -1;
  std::unique_ptr<netlink::Conntrack> ct_;
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
