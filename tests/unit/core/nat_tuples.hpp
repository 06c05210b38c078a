// SPDX-License-Identifier: GPL-2.0-or-later
// The two NAT placements the policy, rewrite and session tests use, with the addresses named:
//   client_snat(): client 10.0.0.5 behind SNAT to 203.0.113.1, server 198.51.100.9 without NAT;
//   server_dnat(): client 198.51.100.7, server 10.1.1.2 behind DNAT from 203.0.113.1.
#pragma once

#include "ftpwall/core/addr.hpp"
#include "ftpwall/core/conn.hpp"

namespace ftpwall::test {

inline const Address client_real = Address::v4(10, 0, 0, 5);
inline const Address client_public = Address::v4(203, 0, 113, 1);
inline const Address server_addr = Address::v4(198, 51, 100, 9);
inline const Address server_inside = Address::v4(10, 1, 1, 2);
inline const Address server_public = Address::v4(203, 0, 113, 1);
inline const Address remote_client = Address::v4(198, 51, 100, 7);

inline ConnTuples client_snat() {
  return {{{client_real, 40000}, {server_addr, 21}}, {{server_addr, 21}, {client_public, 40000}}};
}
inline ConnTuples server_dnat() {
  return {{{remote_client, 40000}, {server_public, 21}}, {{server_inside, 21}, {remote_client, 40000}}};
}

}  // namespace ftpwall::test
