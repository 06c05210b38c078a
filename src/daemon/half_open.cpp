// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/half_open.hpp"

namespace ftpwall::daemon {

std::size_t HalfOpenTable::of_source(const Address& a) const {
  auto it = per_source_.find(a);
  return it == per_source_.end() ? 0 : it->second;
}

std::vector<HalfOpenTable::Key> HalfOpenTable::add(const Key& k, std::vector<std::uint8_t> syn, Clock::time_point now) {
  std::vector<Key> evicted;
  if (auto it = entries_.find(k); it != entries_.end()) {
    it->second.syn = std::move(syn);  // the latest SYN counts; its age stays
    return evicted;
  }
  // Oldest first, of this source when its cap is the one reached. The scan stops at the first
  // match: for a flood from one address that is the front of the list.
  const auto evict_oldest = [&](const Address* of) {
    for (auto o = order_.begin(); o != order_.end(); ++o) {
      if (of && o->src.addr != *of) continue;
      evicted.push_back(*o);
      erase(entries_.find(*o));
      return;
    }
  };
  if (of_source(k.src.addr) >= limits_.per_source) evict_oldest(&k.src.addr);
  if (entries_.size() >= limits_.total) evict_oldest(nullptr);
  order_.push_back(k);
  entries_.emplace(k, Entry{std::move(syn), now, std::prev(order_.end())});
  ++per_source_[k.src.addr];
  return evicted;
}

std::optional<std::vector<std::uint8_t>> HalfOpenTable::take(const Key& k) {
  auto it = entries_.find(k);
  if (it == entries_.end()) return std::nullopt;
  std::vector<std::uint8_t> syn = std::move(it->second.syn);
  erase(it);
  return syn;
}

std::size_t HalfOpenTable::expire(Clock::time_point now) {
  std::size_t n = 0;
  while (!order_.empty()) {
    auto it = entries_.find(order_.front());
    if (it == entries_.end() || now - it->second.since < limits_.timeout) break;
    erase(it);
    ++n;
  }
  return n;
}

void HalfOpenTable::erase(std::map<Key, Entry>::iterator it) {
  if (it == entries_.end()) return;
  auto n = per_source_.find(it->first.src.addr);
  if (n != per_source_.end() && --n->second == 0) per_source_.erase(n);
  order_.erase(it->second.order);
  entries_.erase(it);
}

}  // namespace ftpwall::daemon
