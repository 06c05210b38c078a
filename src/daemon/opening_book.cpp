// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/opening_book.hpp"

namespace ftpwall::daemon {

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
  ++per_client_[client];
}

void OpeningBook::remove_range(const Address& client) {
  if (ranges_) --ranges_;
  if (auto n = per_client_.find(client); n != per_client_.end() && --n->second == 0) per_client_.erase(n);
}

void OpeningBook::add(std::uint64_t session, const Address& client, const firewall::Opening& o) {
  by_match_[{o.source, o.accepted_destination()}] = session;
  if (o.dnat_to) dnat_[{o.source, o.destination}] = session;
  ++per_client_[client];
}

void OpeningBook::remove(std::uint64_t session, const Address& client, const firewall::Opening& o) {
  if (auto m = by_match_.find({o.source, o.accepted_destination()}); m != by_match_.end() && m->second == session)
    by_match_.erase(m);
  if (o.dnat_to) {
    if (auto d = dnat_.find({o.source, o.destination}); d != dnat_.end() && d->second == session) dnat_.erase(d);
  }
  if (auto n = per_client_.find(client); n != per_client_.end() && --n->second == 0) per_client_.erase(n);
}

std::optional<std::uint64_t> OpeningBook::owner(const Address& source, const Endpoint& destination) const {
  auto m = by_match_.find({source, destination});
  if (m == by_match_.end()) return std::nullopt;
  return m->second;
}

bool OpeningBook::dnat_in_use(std::uint64_t session, const Address& peer, const Endpoint& destination) const {
  auto m = dnat_.find({peer, destination});
  return m != dnat_.end() && m->second != session;
}

std::size_t OpeningBook::of_client(const Address& client) const {
  auto n = per_client_.find(client);
  return n == per_client_.end() ? 0 : n->second;
}

OpeningBook::Syn OpeningBook::arbitrate(std::optional<std::uint16_t>& winner, std::uint16_t source_port) {
  if (!winner) {
    winner = source_port;
    return Syn::first;
  }
  return *winner == source_port ? Syn::retransmission : Syn::taken;
}

}  // namespace ftpwall::daemon
