// SPDX-License-Identifier: GPL-2.0-or-later
// Prints nftables base chains and what would conflict with ftpwalld for a role, for
// tests/netns/203-adapter-nft-conflicts.
//   nft_probe gateway|server
#include <cstdio>
#include <string>

#include "netlink/nftables.hpp"

using namespace ftpwall::netlink;

int main(int argc, char** argv) {
  const std::string role = argc > 1 ? argv[1] : "gateway";
  auto chains = list_nft_base_chains();
  if (!chains) {
    std::fprintf(stderr, "nft_probe: %s\n", chains.error().message.c_str());
    return 1;
  }
  for (const auto& c : *chains) std::printf("chain %s\n", c.to_string().c_str());
  const auto hooks = role == "server" ? std::vector<Hook>{Hook::input, Hook::output} : std::vector<Hook>{Hook::forward};
  const auto conflicts = nft_conflicts(*chains, hooks);
  for (const auto& c : conflicts.dropping) std::printf("dropping %s\n", c.to_string().c_str());
  for (const auto& c : conflicts.filtering) std::printf("filtering %s\n", c.to_string().c_str());
  return 0;
}
