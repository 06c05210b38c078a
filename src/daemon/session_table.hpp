// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's sessions: one SessionState per control connection the daemon has seen past its SYN,
// keyed client -> server as the hook shows them (the first SYN's orientation, conntrack's original
// direction), with the indexes that must stay in step with it: by session id, by conntrack's
// original tuple (DESTROY events), sessions and held bytes per client address. One way in (add),
// one way out (erase). Pure: the Tracker and the policy are values it holds.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <memory>
#include <optional>
#include <vector>

#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/policy.hpp"
#include "ftpwall/core/ha_label.hpp"
#include "ftpwall/core/tracker.hpp"
#include "ftpwall/firewall/backend.hpp"
#include "daemon/source_counts.hpp"

namespace ftpwall::daemon {

// One opening: the core's OpenData as installed (or being installed) for a session.
struct OpeningState {
  firewall::Opening opening;
  bool installed = false;
  std::optional<std::uint16_t> winner_port;  // the data connection that took it (its source port)
};

// Fields grouped by size (issue 13: no padding; 256 bytes, a 336-byte map node with its key).
struct SessionState {
  using Clock = std::chrono::steady_clock;
  std::uint64_t id = 0;
  Tuple key;                         // client -> server as the hook shows them
  ConnTuples tuples;
  std::unique_ptr<Tracker> tracker;  // empty: passed through untouched (kernel helper, FTPS, refused pick-up)
  std::shared_ptr<const Policy> policy;  // the one its Tracker borrows (kept alive across reloads)
  // The client's SYN, kept until the ctnetlink query (the SYN's entry is unconfirmed at the hook):
  // when the entry shows NAT, the Tracker is rebuilt with the real tuples and the SYN replayed.
  std::unique_ptr<std::vector<std::uint8_t>> syn;
  Clock::time_point started = Clock::now();
  Clock::time_point ended_at{};
  // At most one per session; out of line (most sessions have none most of the time: 120 bytes
  // less per idle session, issue 13).
  std::unique_ptr<OpeningState> opening;
  // Per-client FTPS (issue 14): the range opening of the session while it is encrypted, from its
  // client to its server's passive range; `ranges` numbers them (a CCC, then AUTH TLS again).
  std::unique_ptr<firewall::Opening> range;
  LabelBytes label{};               // [ha] (issue 15): the HA label last written to the entry
  std::uint32_t ct_id = 0;          // CTA_ID of the entry (0: unknown); names the state record
  std::uint32_t held = 0;           // bytes its Tracker holds now (at most limits::hold_bytes)
  std::uint32_t announcements = 0;  // that opened (OpenData)
  std::uint32_t refusals = 0;       // its Violations
  std::uint32_t ranges = 0;
  std::uint32_t client_isn = 0;     // the first SYN's sequence number (client_isn_known)
  // [ha]: the last announcement (written again only when the label changes; core/ha_label.hpp).
  std::optional<LastAnnouncement> last;
  bool client_isn_known = false;
  bool ct_known = false;     // the ctnetlink query was made
  bool by_original = false;  // SessionTable::by_original() finds it (its entry's tuples are known)
  // Ended, nothing held, no correction: its Tracker is gone (Daemon::on_timer; the packets of an
  // ended session without corrections pass untouched anyway), and with it what status shows.
  bool tracker_released = false;
  bool was_encrypted = false;
  // After its 221/421, queue.exempt_mark on its entry: nothing more of the connection is queued
  // (Daemon::exempt_ended), and it is forgotten `exempt_linger` later, not after both FINs.
  bool exempted = false;
  bool liberal = false;      // IP_CT_TCP_FLAG_BE_LIBERAL set on the entry
  bool recorded = false;     // a state record exists for it (state_dir.hpp)
  bool ended = false;        // SessionEnd (221/421, QUIT), RST, or both FINs
  bool tcp_ended = false;    // RST or both FINs seen (or the entry left conntrack)
  bool dropping = false;     // a violation with action reset: drop what follows
  bool range_installed = false;
  bool label_set = false;
  bool label_dirty = false;   // an opening closed: written at the end of the packet's decisions
  bool label_failed = false;  // a write failed (logged once)
  bool label_retry = false;   // the last label was carried = false: tried again after each packet
                              // (an acknowledgement may have collapsed what did not fit)

  const Address& client() const { return key.src.addr; }
};

// Hash of a tuple for the original-tuple index (FNV-1a over the addresses' bytes and the ports).
struct TupleHash {
  std::size_t operator()(const Tuple& t) const noexcept;
};

class SessionTable {
 public:
  using Key = Tuple;
  using Map = std::map<Key, SessionState>;

  SessionState* find(const Key& k);
  Map::iterator find_it(const Key& k) { return sessions_.find(k); }
  bool contains(const Key& k) const { return sessions_.contains(k); }
  SessionState* by_id(std::uint64_t id);
  // The session conntrack knows by this original tuple (and, when both are known, this CTA_ID).
  Map::iterator by_original(const Tuple& original);

  // Several queues: the per-client counts of every queue's table are the leader's (source_counts.hpp).
  void share_counts(std::shared_ptr<SourceCounts> sessions, std::shared_ptr<SourceCounts> held) {
    per_client_ = std::move(sessions);
    held_ = std::move(held);
  }
  const std::shared_ptr<SourceCounts>& session_counts() const { return per_client_; }
  const std::shared_ptr<SourceCounts>& held_counts() const { return held_; }

  SessionState& add(const Key& k, SessionState s);
  // The entry's tuples became known (the conntrack query at the session's second packet).
  void set_original(SessionState& s, const Tuple& original);
  Map::iterator erase(Map::iterator it);

  // Bytes the session's Tracker holds now: kept per client address.
  void account_held(SessionState& s);
  std::size_t held_of(const Address& client) const;
  std::size_t of_client(const Address& client) const;
  std::size_t size() const { return sessions_.size(); }
  std::vector<Tuple> originals() const;  // of every session whose entry is known

  Map::iterator begin() { return sessions_.begin(); }
  Map::iterator end() { return sessions_.end(); }
  Map::const_iterator begin() const { return sessions_.begin(); }
  Map::const_iterator end() const { return sessions_.end(); }

 private:
  void index_original(Map::iterator it);

  Map sessions_;
  // Indexes into sessions_ (std::map iterators stay valid until their element is erased, and
  // erase() drops them first): 8 bytes each instead of a copy of the 40-byte key (issue 13).
  std::unordered_map<std::uint64_t, Map::iterator> by_id_;
  // Only the sessions whose original tuple is not their key (NAT before the hook: DNAT); the
  // others are found in sessions_ itself (issue 13: 128 bytes less per session without NAT).
  std::unordered_map<Tuple, Map::iterator, TupleHash> by_original_;
  std::shared_ptr<SourceCounts> per_client_ = std::make_shared<SourceCounts>();  // sessions
  std::shared_ptr<SourceCounts> held_ = std::make_shared<SourceCounts>();        // bytes held
};

}  // namespace ftpwall::daemon
