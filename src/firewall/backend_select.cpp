// SPDX-License-Identifier: GPL-2.0-or-later
// Which backend a daemon uses, and the checks before it installs anything.
#include <algorithm>

#include "ftpwall/firewall/backend.hpp"
#include "iptc_backend.hpp"
#include "netlink/nftables.hpp"
#include "nft_backend.hpp"

namespace ftpwall::firewall {

std::string_view name(BackendKind k) {
  switch (k) {
    case BackendKind::automatic: return "auto";
    case BackendKind::nftables: return "nftables";
    case BackendKind::iptables_legacy: return "iptables-legacy";
  }
  return "auto";
}

Result<BackendChoice> make_backend(BackendKind kind) {
  BackendChoice c;
  switch (kind) {
    case BackendKind::iptables_legacy:
      c.backend = std::make_unique<IptcBackend>();
      c.why = "configured";
      return c;
    case BackendKind::nftables:
      c.backend = std::make_unique<NftBackend>();
      c.why = "configured";
      return c;
    case BackendKind::automatic:
      break;
  }
  // The admin's rules decide: an iptables-legacy ruleset gets legacy openings (a legacy ACCEPT is
  // what its own DROP rules can be preceded by); anything else is nf_tables (iptables-nft,
  // firewalld, nft), where ftpwalld writes nothing into legacy tables.
  auto where = IptcBackend::admin_rules();
  if (!where) return where.error();
  if (!where->empty()) {
    c.backend = std::make_unique<IptcBackend>();
    c.why = "auto: rules in iptables-legacy tables (" + *where + ")";
  } else {
    c.backend = std::make_unique<NftBackend>();
    c.why = "auto: no rules in iptables-legacy tables";
  }
  return c;
}

Result<void> remove_all_hooks() {
  // Legacy tables only where they exist: looking at a missing one through libiptc creates it.
  if (!IptcBackend::existing_tables().empty()) {
    IptcBackend legacy;
    if (auto r = legacy.remove_hooks(); !r) return make_error("iptables-legacy: " + r.error().message);
  }
  NftBackend nft;
  if (auto r = nft.remove_hooks(); !r) return make_error("nftables: " + r.error().message);
  return {};
}

Result<std::vector<std::string>> NftBackend::preflight(const HookSpec& spec, bool) {
  std::vector<std::string> warnings;
  const std::vector<netlink::Hook> hooks = spec.role == Role::gateway
                                               ? std::vector<netlink::Hook>{netlink::Hook::forward}
                                               : std::vector<netlink::Hook>{netlink::Hook::input, netlink::Hook::output};
  auto chains = netlink::list_nft_base_chains();
  if (!chains) return make_error("nftables: " + chains.error().message);
  std::vector<netlink::NftBaseChain> others;
  for (const auto& ch : *chains)
    if (!(ch.family == "inet" && ch.table == nft_table_name)) others.push_back(ch);
  const auto c = netlink::nft_conflicts(others, hooks);
  for (const auto& d : c.dropping)
    warnings.push_back("nftables chain " + d.to_string() +
                       " drops at a hook where ftpwalld opens: an accept in table inet ftpwall does not override it, "
                       "so its rules must accept ftpwalld's data connections");
  for (const auto& f : c.filtering)
    warnings.push_back("nftables chain " + f.to_string() +
                       " filters at the same hook: its rules must accept ftpwalld's data connections");
  return warnings;
}

}  // namespace ftpwall::firewall
