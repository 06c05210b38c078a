// SPDX-License-Identifier: GPL-2.0-or-later
// firewalld (nftables backend) on an ftpwalld host: does firewalld's own table accept the data
// SYNs ftpwalld admits? An accept in table inet ftpwall is not final, and firewalld's filter_INPUT
// ends in a reject. firewalld 1.3.3 matches a packet mark only through an ipset of type
// hash:ip,mark; `ftpwall rules --helper ftpwalld --format firewalld` emits
//   ipset ftpwall-accept (hash:ip,mark) with entries <net>,<queue.accept_mark>
//   rule family="ipv4" source ipset="ftpwall-accept" accept
// which firewalld installs as  set ftpwall-accept { type ipv4_addr . mark; flags interval; }  and
// `ip saddr . meta mark @ftpwall-accept accept` in table inet firewalld. The entries are
// permanent, so firewall-cmd --reload puts them back itself: ftpwalld only checks, never writes
// into firewalld's table.
#pragma once

#include <cstdint>
#include <string>

#include "ftpwall/core/result.hpp"

namespace ftpwall::firewall {

inline constexpr const char* firewalld_table = "firewalld";         // family inet
inline constexpr const char* firewalld_accept_set = "ftpwall-accept";

struct FirewalldAccept {
  bool set = false;         // set ftpwall-accept exists in table inet firewalld
  bool mark_entry = false;  // ... with an element whose mark is accept_mark
  bool rule = false;        // ... and a rule of that table looks it up and accepts
  bool ok() const { return set && mark_entry && rule; }
  // What is missing, as one sentence naming the fix (empty when ok()).
  std::string missing(std::uint32_t accept_mark) const;
};

// Reads table inet firewalld (sets, the set's elements, the rules) over nf_tables netlink.
Result<FirewalldAccept> firewalld_accept_state(std::uint32_t accept_mark);

}  // namespace ftpwall::firewall
