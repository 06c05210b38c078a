// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/opening_book.hpp"

#include <span>

#include "ftpwall/core/fnv.hpp"

namespace ftpwall::daemon {

std::size_t SynMatchHash::operator()(const SynMatch& m) const noexcept {
  // As the session table's TupleHash: FNV-1a over the families, the addresses' bytes and the port.
  Fnv1a h;
  h.add(static_cast<std::uint8_t>(m.first.family)).add(std::span(m.first.bytes).first(m.first.size()));
  const Address& d = m.second.addr;
  h.add(static_cast<std::uint8_t>(d.family)).add(std::span(d.bytes).first(d.size())).add_u16(m.second.port);
  return static_cast<std::size_t>(h.value());
}

void RecentDnat::add(const Match& m, Clock::time_point now, Clock::duration grace) {
  prune(now);
  spares_.put(until_, m, now + grace);
  order_.emplace_back(now + grace, m);
}

void RecentDnat::prune(Clock::time_point now) {
  while (!order_.empty() && order_.front().first <= now) {
    auto it = until_.find(order_.front().second);
    if (it != until_.end() && it->second <= now) spares_.erase(until_, it);
    order_.pop_front();
  }
}

bool RecentDnat::contains(const Match& m, Clock::time_point now) {
  prune(now);
  auto it = until_.find(m);
  return it != until_.end() && it->second > now;
}

Reason OpeningBook::admit(std::uint64_t session, const Address& client, const Match& match) const {
  if (auto other = by_match_.find(match); other != by_match_.end() && other->second != session)
    return Reason::opening_clash;
  if (size() >= limits_.total) return Reason::opening_limit;
  if (of_client(client) >= limits_.per_client) return Reason::source_opening_limit;
  return Reason::none;
}

Reason OpeningBook::admit_range(const Address& client) const {
  if (size() >= limits_.total) return Reason::opening_limit;
  if (of_client(client) >= limits_.per_client) return Reason::source_opening_limit;
  return Reason::none;
}

void OpeningBook::add_range(const Address& client) {
  ++ranges_;
  per_client_->add(client);
}

void OpeningBook::remove_range(const Address& client) {
  if (ranges_) --ranges_;
  per_client_->sub(client);
}

bool DnatClaims::claim(std::uint64_t session, const Match& m) {
  std::lock_guard lock(m_);
  if (auto it = owners_.find(m); it != owners_.end()) return it->second == session;
  spares_.put(owners_, m, session);
  return true;
}

void DnatClaims::release(std::uint64_t session, const Match& m) {
  std::lock_guard lock(m_);
  if (auto it = owners_.find(m); it != owners_.end() && it->second == session) spares_.erase(owners_, it);
}

bool DnatClaims::taken_by_other(std::uint64_t session, const Match& m) const {
  std::lock_guard lock(m_);
  auto it = owners_.find(m);
  return it != owners_.end() && it->second != session;
}

Reason OpeningBook::add(std::uint64_t session, const Address& client, const firewall::Opening& o) {
  if (o.dnat_to && !dnat_->claim(session, {o.source, o.destination})) return Reason::opening_clash;
  spares_.put(by_match_, Match{o.source, o.accepted_destination()}, session);
  per_client_->add(client);
  return Reason::none;
}

void OpeningBook::remove(std::uint64_t session, const Address& client, const firewall::Opening& o) {
  if (auto m = by_match_.find({o.source, o.accepted_destination()}); m != by_match_.end() && m->second == session)
    spares_.erase(by_match_, m);
  if (o.dnat_to) dnat_->release(session, {o.source, o.destination});
  per_client_->sub(client);
}

std::optional<std::uint64_t> OpeningBook::owner(const Address& source, const Endpoint& destination) const {
  auto m = by_match_.find({source, destination});
  if (m == by_match_.end()) return std::nullopt;
  return m->second;
}

bool OpeningBook::dnat_in_use(std::uint64_t session, const Address& peer, const Endpoint& destination) const {
  return dnat_->taken_by_other(session, {peer, destination});
}

std::size_t OpeningBook::of_client(const Address& client) const {
  return per_client_->of(client);
}

OpeningBook::Syn OpeningBook::arbitrate(std::optional<std::uint16_t>& winner, std::uint16_t source_port) {
  if (!winner) {
    winner = source_port;
    return Syn::first;
  }
  return *winner == source_port ? Syn::retransmission : Syn::taken;
}

}  // namespace ftpwall::daemon
