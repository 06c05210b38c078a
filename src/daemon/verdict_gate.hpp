// SPDX-License-Identifier: GPL-2.0-or-later
// The one owner of every packet that waits for a verdict outside the Tracker. A packet that
// announced an opening, and every later packet of that session's direction, waits until the
// opening is in the kernel (the data connection must find it), then they all leave in order; any
// other packet gets its verdict at once. Packets the Tracker holds (split announcements behind
// NAT) are the Tracker's until it releases them; then they come here like any other.
// The verdicts go to a VerdictSink (the NFQUEUE socket in the daemon, a recorder in tests). Pure.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/containers.hpp"

namespace ftpwall::daemon {

class VerdictSink {
 public:
  virtual ~VerdictSink() = default;
  // `bytes` empty: the packet as queued; otherwise its new content.
  virtual void verdict(std::uint32_t id, bool accept, std::span<const std::uint8_t> bytes) = 0;
};

class VerdictGate {
 public:
  using Clock = std::chrono::steady_clock;
  explicit VerdictGate(VerdictSink& sink) : sink_(sink) {}

  // A packet of `session`, direction `dir`, is ready to leave with `bytes` (empty: unmodified).
  void deliver(std::uint64_t session, Direction dir, std::uint32_t id, std::vector<std::uint8_t>&& bytes) {
    deliver(session, dir, id, bytes);
  }
  // The same, `bytes` moved from only when the packet must wait (the caller keeps its buffer else).
  void deliver(std::uint64_t session, Direction dir, std::uint32_t id, std::vector<std::uint8_t>& bytes);
  // An opening announced in direction `dir` is on its way into the kernel / is there (or failed).
  void opening_started(std::uint64_t session, Direction dir);
  void opening_done(std::uint64_t session, Direction dir, bool drop = false);
  // Every packet of the session still waiting leaves now (accepted, or dropped for a session being
  // reset). Openings in flight stay counted.
  void release(std::uint64_t session, bool drop);
  // No packet waits and no opening is in flight: the session may be forgotten.
  bool idle(std::uint64_t session) const { return !lanes_.contains(session); }

  std::uint64_t waits() const { return waits_; }          // packets that had to wait
  std::uint64_t max_wait_us() const { return max_wait_us_; }

 private:
  struct Waiting {
    std::uint32_t id;
    std::vector<std::uint8_t> bytes;
    Clock::time_point since;
  };
  // Made and dropped with every opening (issue 13): vectors, which allocate nothing while empty
  // (two deques allocated four blocks per announcement); flush() takes them whole, in order. A
  // dropped lane's node is kept with its vectors' capacity (LaneReset), and so are the vectors
  // flush() takes (spare_): an announcement that waits for its opening allocates nothing.
  struct Lane {
    std::array<std::vector<Waiting>, 2> waiting;
    std::array<unsigned, 2> in_flight{};
  };
  static constexpr std::size_t kept_capacity = 16;  // a longer vector is not kept (its memory)
  struct LaneReset {
    void operator()(Lane& l) const {
      for (auto& w : l.waiting) {
        if (w.capacity() > kept_capacity) w = {};
        w.clear();
      }
      l.in_flight = {};
    }
  };
  static std::size_t idx(Direction d) { return static_cast<std::size_t>(d); }
  void flush(std::uint64_t session, Lane& lane, Direction dir, bool drop);
  void tidy(std::unordered_map<std::uint64_t, Lane>::iterator it);

  VerdictSink& sink_;
  std::unordered_map<std::uint64_t, Lane> lanes_;  // only sessions with something waiting or in flight
  NodeSpares<std::unordered_map<std::uint64_t, Lane>, 128, LaneReset> spares_;  // a lane's node for the next
  std::vector<std::vector<Waiting>> spare_;  // emptied vectors of flush(), capacity kept (at most 8)
  std::uint64_t waits_ = 0;
  std::uint64_t max_wait_us_ = 0;
};

}  // namespace ftpwall::daemon
