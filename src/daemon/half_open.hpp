// SPDX-License-Identifier: GPL-2.0-or-later
// Half-open sessions (security review H1): a client's SYN and nothing after it yet. A SYN that the
// admin's filter drops, or that nobody answers, must cost the daemon a few bytes and never push out
// a real session, so half-open sessions live in a table of their own: capped globally and per
// client address, the oldest (of that address, or of all) evicted first, none kept past a
// timeout (conntrack's SYN_SENT timeout is 120 s). Pure: no I/O, the clock is an argument.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <vector>

#include "ftpwall/core/conn.hpp"

namespace ftpwall::daemon {

class HalfOpenTable {
 public:
  using Clock = std::chrono::steady_clock;
  using Key = Tuple;  // client -> server as the hook shows them
  struct Limits {
    std::size_t total = 16384;
    std::size_t per_source = 256;
    Clock::duration timeout = std::chrono::seconds(120);
  };

  HalfOpenTable() = default;
  explicit HalfOpenTable(Limits l) : limits_(l) {}
  void set_limits(Limits l) { limits_ = l; }

  bool contains(const Key& k) const { return entries_.contains(k); }
  std::size_t size() const { return entries_.size(); }
  std::size_t of_source(const Address& a) const;

  // Remembers the client's SYN (a retransmission or a new attempt on the same 4-tuple replaces the
  // copy). Returns the keys evicted to make room, oldest first.
  std::vector<Key> add(const Key& k, std::vector<std::uint8_t> syn, Clock::time_point now);
  // The connection answered: its SYN, and the entry is gone.
  std::optional<std::vector<std::uint8_t>> take(const Key& k);
  // Forgets every entry older than the timeout; how many.
  std::size_t expire(Clock::time_point now);

 private:
  struct Entry {
    std::vector<std::uint8_t> syn;
    Clock::time_point since;
    std::list<Key>::iterator order;
  };
  void erase(std::map<Key, Entry>::iterator it);

  Limits limits_;
  std::map<Key, Entry> entries_;
  std::list<Key> order_;  // oldest first
  std::map<Address, std::size_t> per_source_;
};

}  // namespace ftpwall::daemon
