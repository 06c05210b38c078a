// SPDX-License-Identifier: GPL-2.0-or-later
// What nftables hooks into the same netfilter hooks as ftpwalld's iptables-legacy rules. A packet
// passes a hook only if every base chain there accepts it: an ACCEPT in FTPWALL-ACCEPT cannot
// override a DROP in an nft chain (or an iptables-nft rule, which is an nft chain too). ftpwalld
// refuses to start when such a chain would drop what it opens, and names the chain.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ftpwall/core/result.hpp"
#include "nfqueue.hpp"  // Hook

struct nlmsghdr;

namespace ftpwall::netlink {

struct NftBaseChain {
  std::string family;  // ip, ip6, inet, arp, bridge, netdev
  std::string table;
  std::string chain;
  std::string type;    // filter, nat, route
  Hook hook = Hook::unknown;
  std::int32_t priority = 0;
  bool policy_drop = false;
  std::string to_string() const;  // "inet f fw (filter forward priority 0 policy drop)"
};

// nft's name of a netfilter family (NFPROTO_*): "ip", "ip6", "inet", ...; "familyN" for others.
std::string nft_family_name(std::uint32_t family);

// One NLM_F_DUMP request on a socket of its own: `build` writes the request into the buffer it is
// given (with the sequence number it is given) and returns its header; every reply message goes to
// `each`. A kernel without nf_tables (EPROTONOSUPPORT) or a missing table or set (ENOENT) is an
// empty dump. The one-shot dumps of the start checks (chains, rules, firewalld's sets) all use it.
Result<void> nf_dump(const std::function<nlmsghdr*(char*, std::uint32_t)>& build,
                     const std::function<void(const nlmsghdr*)>& each);

// Every base chain of every table (one NFT_MSG_GETCHAIN dump). Regular chains are skipped.
Result<std::vector<NftBaseChain>> list_nft_base_chains();

// The chains that filter IPv4 at one of `hooks` (families ip and inet, type filter): with policy
// drop they are conflicts (first vector), with policy accept their rules may still drop
// (second vector: warnings).
struct NftConflicts {
  std::vector<NftBaseChain> dropping;
  std::vector<NftBaseChain> filtering;
};
NftConflicts nft_conflicts(const std::vector<NftBaseChain>& chains, const std::vector<Hook>& hooks);

}  // namespace ftpwall::netlink
