// SPDX-License-Identifier: GPL-2.0-or-later
// A count per client address (sessions, held bytes, openings), the figure the per-source caps of
// [openings] are checked against (security review H1, M6). One per table; with several queues
// (issue 13) every queue's table shares the leader's, so a client whose sessions reach several
// servers, and so several queues, meets the same cap as with one queue. Locked: uncontended
// mostly, a few operations per session or opening. Pure.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>

#include "ftpwall/core/addr.hpp"

namespace ftpwall::daemon {

class SourceCounts {
 public:
  void add(const Address& a, std::size_t n = 1) {
    if (n == 0) return;
    std::lock_guard lock(m_);
    n_[a] += n;
  }
  // Never below zero; an address whose count reaches zero is forgotten.
  void sub(const Address& a, std::size_t n = 1) {
    if (n == 0) return;
    std::lock_guard lock(m_);
    auto it = n_.find(a);
    if (it == n_.end()) return;
    if (it->second <= n) n_.erase(it);
    else it->second -= n;
  }
  std::size_t of(const Address& a) const {
    std::lock_guard lock(m_);
    auto it = n_.find(a);
    return it == n_.end() ? 0 : it->second;
  }
  std::size_t addresses() const {
    std::lock_guard lock(m_);
    return n_.size();
  }

 private:
  mutable std::mutex m_;
  std::map<Address, std::size_t> n_;
};

}  // namespace ftpwall::daemon
