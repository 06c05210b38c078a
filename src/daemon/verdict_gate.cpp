// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/verdict_gate.hpp"

#include <algorithm>

namespace ftpwall::daemon {

void VerdictGate::deliver(std::uint64_t session, Direction dir, std::uint32_t id, std::vector<std::uint8_t>& bytes) {
  auto it = lanes_.find(session);
  if (it != lanes_.end()) {
    Lane& l = it->second;
    if (l.in_flight[idx(dir)] > 0 || !l.waiting[idx(dir)].empty()) {
      ++waits_;
      l.waiting[idx(dir)].push_back(Waiting{id, std::move(bytes), Clock::now()});
      return;
    }
  }
  sink_.verdict(id, true, bytes);
}

void VerdictGate::opening_started(std::uint64_t session, Direction dir) {
  ++spares_.get(lanes_, session)->second.in_flight[idx(dir)];
}

void VerdictGate::opening_done(std::uint64_t session, Direction dir, bool drop) {
  auto it = lanes_.find(session);
  if (it == lanes_.end()) return;
  Lane& l = it->second;
  if (l.in_flight[idx(dir)] > 0 && --l.in_flight[idx(dir)] == 0) flush(session, l, dir, drop);
  tidy(it);
}

void VerdictGate::release(std::uint64_t session, bool drop) {
  auto it = lanes_.find(session);
  if (it == lanes_.end()) return;
  for (Direction d : {Direction::client_to_server, Direction::server_to_client}) flush(session, it->second, d, drop);
  tidy(it);
}

void VerdictGate::flush(std::uint64_t, Lane& lane, Direction dir, bool drop) {
  // Taken whole, in order (and again, should a verdict ever add to the lane).
  while (!lane.waiting[idx(dir)].empty()) {
    std::vector<Waiting> w;
    if (!spare_.empty()) {
      w = std::move(spare_.back());
      spare_.pop_back();
    }
    w.swap(lane.waiting[idx(dir)]);  // the lane keeps an empty vector with capacity
    const auto now = Clock::now();
    for (const Waiting& x : w) {
      const auto us = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - x.since).count());
      max_wait_us_ = std::max(max_wait_us_, us);
      sink_.verdict(x.id, !drop, x.bytes);
    }
    w.clear();
    if (spare_.size() < 8 && w.capacity() <= kept_capacity) spare_.push_back(std::move(w));
  }
}

void VerdictGate::tidy(std::unordered_map<std::uint64_t, Lane>::iterator it) {
  const Lane& l = it->second;
  if (l.in_flight[0] == 0 && l.in_flight[1] == 0 && l.waiting[0].empty() && l.waiting[1].empty()) spares_.erase(lanes_, it);
}

}  // namespace ftpwall::daemon
