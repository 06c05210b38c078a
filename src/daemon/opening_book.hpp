// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's book of live openings (installed or being installed), independent of any backend:
// which session owns which (source, destination) match, the DNAT matches that make a public port
// "in use", how many openings each client address has, and the admission rules over them. One
// place keeps these indexes in step (the code review's six hand-kept indexes). Pure.
//   admit()   opening_clash        another session's opening has the same match (one session never
//                                  closes another's: clients sharing one address, review L8)
//             opening_limit        openings.max_total are live
//             source_opening_limit openings.max_per_source are live for this client address
// The data SYN an opening queues is arbitrated here too: the first SYN wins, retransmissions of
// it (same source port) pass, any other connection is refused (one-shot = one source port).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>

#include "ftpwall/core/containers.hpp"
#include "ftpwall/core/addr.hpp"
#include "ftpwall/core/reason.hpp"
#include "ftpwall/firewall/backend.hpp"
#include "daemon/source_counts.hpp"

namespace ftpwall::daemon {

// (source, destination) of a data SYN, hashed for the books below (issue 13: ordered maps of them,
// compared with memcmp, were 2 % of the daemon under a DNAT storm; nothing walks them in order).
using SynMatch = std::pair<Address, Endpoint>;
struct SynMatchHash {
  std::size_t operator()(const SynMatch& m) const noexcept;
};

// The DNAT matches of every live opening of the daemon, across its queues' threads (issue 13): the
// only match two threads can both want. Two clients behind one MASQUERADE announcing the same port
// to one server (or one client reaching two DNATed servers behind one address) have control
// connections with different address pairs, which the kernel may hash to different queues, while
// their DNAT parts would share one key. A claim is atomic, so "port in use" holds across threads.
class DnatClaims {
 public:
  using Match = SynMatch;
  // False: another session holds it.
  bool claim(std::uint64_t session, const Match& m);
  void release(std::uint64_t session, const Match& m);
  bool taken_by_other(std::uint64_t session, const Match& m) const;

 private:
  mutable std::mutex m_;
  std::unordered_map<Match, std::uint64_t, SynMatchHash> owners_;
  NodeSpares<std::unordered_map<Match, std::uint64_t, SynMatchHash>> spares_;  // under m_
};

// DNAT parts closed lately (nftables: FirewallBackend::queues_unnamed_syns). The kernel may have
// translated a data SYN with one whose removal was not committed yet when the SYN passed nat
// PREROUTING, and the daemon reads it after the close. Named by no live opening, such a SYN would
// be passed on unmarked, and an admin who accepts `ct status dnat` would let a closed opening admit
// (review finding L6): the daemon drops it instead (opening_gone) for a short grace after the close.
class RecentDnat {
 public:
  using Clock = std::chrono::steady_clock;
  using Match = SynMatch;  // (source, inside destination) as the data SYN shows them
  void add(const Match& m, Clock::time_point now, Clock::duration grace);
  bool contains(const Match& m, Clock::time_point now);  // forgets what is past its grace
  std::size_t size() const { return until_.size(); }

 private:
  void prune(Clock::time_point now);
  std::deque<std::pair<Clock::time_point, Match>> order_;  // in the order added (one grace for all)
  std::unordered_map<Match, Clock::time_point, SynMatchHash> until_;
  NodeSpares<std::unordered_map<Match, Clock::time_point, SynMatchHash>> spares_;
};

class OpeningBook {
 public:
  struct Limits {
    std::size_t total = 4096;
    std::size_t per_client = 64;
  };
  using Match = SynMatch;  // (source, destination as the data SYN shows it)

  OpeningBook() = default;
  explicit OpeningBook(Limits l) : limits_(l) {}
  void set_limits(Limits l) { limits_ = l; }
  // The daemon's queues share one (set before the first add); otherwise the book has its own.
  void share_dnat(std::shared_ptr<DnatClaims> c) { dnat_ = std::move(c); }
  // ... and their per-client counts (openings.max_per_source holds across the queues).
  void share_counts(std::shared_ptr<SourceCounts> c) { per_client_ = std::move(c); }
  const std::shared_ptr<SourceCounts>& counts() const { return per_client_; }

  // Reason::none if session `session` of `client` may add an opening with this match.
  Reason admit(std::uint64_t session, const Address& client, const Match& match) const;
  // After admit(): Reason::opening_clash if its DNAT match went to another queue's session since
  // (nothing added then), else Reason::none.
  Reason add(std::uint64_t session, const Address& client, const firewall::Opening& o);
  void remove(std::uint64_t session, const Address& client, const firewall::Opening& o);

  // The session whose opening admits a data SYN from `source` to `destination`.
  std::optional<std::uint64_t> owner(const Address& source, const Endpoint& destination) const;
  bool contains(const Address& source, const Endpoint& destination) const {
    return by_match_.contains({source, destination});
  }
  // "Port in use" (rewrite.hpp): another session's live opening DNATs (peer, destination).
  bool dnat_in_use(std::uint64_t session, const Address& peer, const Endpoint& destination) const;

  // Range openings (per-client FTPS, issue 14): never arbitrated (their SYNs are not queued), but
  // they count against the same limits as one-shot openings.
  Reason admit_range(const Address& client) const;
  void add_range(const Address& client);
  void remove_range(const Address& client);
  std::size_t ranges() const { return ranges_; }

  std::size_t size() const { return by_match_.size() + ranges_; }
  std::size_t of_client(const Address& client) const;

  enum class Syn : std::uint8_t { first, retransmission, taken };
  // A data SYN from `source_port` for an opening whose winner so far is `winner`.
  static Syn arbitrate(std::optional<std::uint16_t>& winner, std::uint16_t source_port);

 private:
  Limits limits_;
  std::unordered_map<Match, std::uint64_t, SynMatchHash> by_match_;
  // Its nodes across an opening's remove() and its successor's add() (issue 13).
  NodeSpares<std::unordered_map<Match, std::uint64_t, SynMatchHash>> spares_;
  std::shared_ptr<DnatClaims> dnat_ = std::make_shared<DnatClaims>();
  std::shared_ptr<SourceCounts> per_client_ = std::make_shared<SourceCounts>();
  std::size_t ranges_ = 0;
};

}  // namespace ftpwall::daemon
