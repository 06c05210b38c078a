// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/session_table.hpp"

#include <algorithm>

#include "ftpwall/core/fnv.hpp"

namespace ftpwall::daemon {

std::size_t TupleHash::operator()(const Tuple& t) const noexcept {
  Fnv1a h;
  for (const Endpoint* e : {&t.src, &t.dst})
    h.add(static_cast<std::uint8_t>(e->addr.family)).add(std::span(e->addr.bytes).first(e->addr.size())).add_u16(e->port);
  return static_cast<std::size_t>(h.value());
}

SessionState* SessionTable::find(const Key& k) {
  auto it = sessions_.find(k);
  return it == sessions_.end() ? nullptr : &it->second;
}

SessionState* SessionTable::by_id(std::uint64_t id) {
  auto k = by_id_.find(id);
  return k == by_id_.end() ? nullptr : &k->second->second;
}

SessionTable::Map::iterator SessionTable::by_original(const Tuple& original) {
  if (auto k = by_original_.find(original); k != by_original_.end()) return k->second;
  auto it = sessions_.find(original);
  if (it != sessions_.end() && it->second.by_original && it->second.tuples.original == original) return it;
  return sessions_.end();
}

void SessionTable::index_original(Map::iterator it) {
  SessionState& s = it->second;
  s.by_original = true;
  if (s.tuples.original != it->first) by_original_[s.tuples.original] = it;
}

SessionState& SessionTable::add(const Key& k, SessionState s) {
  s.key = k;
  const std::uint64_t id = s.id;
  const bool known = s.ct_known;
  if (auto old = sessions_.find(k); old != sessions_.end()) {
    // Replaced in place: its indexes go (they would point at the new session), its count with them.
    by_id_.erase(old->second.id);
    if (auto o = by_original_.find(old->second.tuples.original); o != by_original_.end() && o->second == old)
      by_original_.erase(o);
    per_client_->sub(k.src.addr);
    held_->sub(k.src.addr, old->second.held);
  }
  per_client_->add(k.src.addr);
  auto [it, inserted] = sessions_.insert_or_assign(k, std::move(s));
  (void)inserted;
  by_id_[id] = it;
  it->second.by_original = false;
  if (known) index_original(it);
  return it->second;
}

void SessionTable::set_original(SessionState& s, const Tuple& original) {
  if (auto it = sessions_.find(s.key); it != sessions_.end()) {
    s.tuples.original = original;
    index_original(it);
  }
}

SessionTable::Map::iterator SessionTable::erase(Map::iterator it) {
  SessionState& s = it->second;
  by_id_.erase(s.id);
  if (auto o = by_original_.find(s.tuples.original); o != by_original_.end() && o->second == it) by_original_.erase(o);
  per_client_->sub(it->first.src.addr);
  held_->sub(it->first.src.addr, s.held);
  return sessions_.erase(it);
}

void SessionTable::account_held(SessionState& s) {
  const std::size_t now = s.tracker ? s.tracker->held_bytes() : 0;
  if (now == s.held) return;
  if (now > s.held) held_->add(s.client(), now - s.held);
  else held_->sub(s.client(), s.held - now);
  s.held = static_cast<std::uint32_t>(now);
}

std::size_t SessionTable::held_of(const Address& client) const {
  return held_->of(client);
}

std::size_t SessionTable::of_client(const Address& client) const {
  return per_client_->of(client);
}

std::vector<Tuple> SessionTable::originals() const {
  std::vector<Tuple> out;
  for (const auto& [k, s] : sessions_)
    if (s.by_original) out.push_back(s.tuples.original);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace ftpwall::daemon
