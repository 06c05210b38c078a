// SPDX-License-Identifier: GPL-2.0-or-later
// FirewallBackend over libiptc (iptables-legacy, IPv4). Rules are built by hand in the kernel's
// struct layouts (xt_tcp, xt_time_info, xt_comment_info, xt_connmark_mtinfo1, xt_NFQ_info_v3,
// nf_nat_range2 for DNAT, nf_nat_ipv4_multi_range_compat for SNAT: the revisions iptables 1.8.9 writes), so no libxtables plugin is loaded at run time; the
// iptables-legacy-save output of every rule is checked by tests/netns/200-adapter-iptc.
//
// libiptc reads a whole table, edits it in memory and replaces it in one setsockopt: a commit costs
// O(size of the table), and a commit fails with EAGAIN when another writer replaced the table in
// between. So: one commit per table per batch, all of a batch's tables under one hold of the
// xtables lock (the file iptables -w uses, /run/xtables.lock, or $XTABLES_LOCKFILE), rebuilt from
// a fresh snapshot and retried on EAGAIN (and on EINVAL from the counters step, see transact()).
// nat is committed before filter and rolled back if filter then fails (see Change in backend.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ftpwall/firewall/backend.hpp"

namespace ftpwall::firewall {

inline constexpr const char* accept_chain = "FTPWALL-ACCEPT";
inline constexpr const char* dnat_chain = "FTPWALL-DNAT";
inline constexpr const char* snat_chain = "FTPWALL-SNAT";
inline constexpr const char* hook_comment = "ftpwall hook";

struct IptcOptions {
  std::string lock_path;  // empty: $XTABLES_LOCKFILE, else /run/xtables.lock
  std::chrono::milliseconds lock_timeout{5000};
  unsigned max_commit_attempts = 8;  // attempts per table and batch (EAGAIN/EINVAL races)
  // Tests only (tests/adapters/iptc_probe --fail-commit TABLE): asked before every commit; true
  // makes that commit fail as a kernel refusal would, so that the rollback of a batch whose filter
  // commit fails after its nat commit can be tried against a real kernel. Empty in the daemon.
  std::function<bool(std::string_view table)> fail_commit;
};

// Opens the xtables lock now (as root) and keeps the descriptor for every later transaction of this
// process, which flocks and unlocks it instead of opening the file again: a daemon that then
// changes to a user who cannot open the root-only lock file (ftpwalld --user) still takes it.
// The file must stay the same (iptables never removes it; /run is cleared at boot only).
Result<void> keep_xtables_lock_open(const std::string& configured = {});

// The -m time --datestop value (UTC seconds, xt_time's u32) under which a rule matches at least until
// `stop` and at most a second longer. Error before 1970 or after 2106.
Result<std::uint32_t> kernel_date_stop(WallClock::time_point stop);

struct SavedRule;  // iptc_backend.cpp

class IptcBackend final : public FirewallBackend {
 public:
  explicit IptcBackend(IptcOptions options = {});
  std::string_view name() const override { return "iptables-legacy"; }

  Result<void> apply(std::span<const Change> changes) override;
  Result<void> close_session(std::uint64_t session) override;
  Result<void> flush_own() override;
  Result<std::vector<Opening>> list_own() override;
  Result<void> install_hooks(const HookSpec& spec) override;
  Result<void> remove_hooks() override;
  Result<HookState> hook_state() override;
  Result<std::vector<std::string>> preflight(const HookSpec& spec, bool daemon_hooks) override;
  BackendStats stats() const override { return stats_; }

  // The iptables-legacy tables that exist in this network namespace (/proc/net/ip_tables_names):
  // looking at them through libiptc would create the ones that do not.
  static std::vector<std::string> existing_tables();
  // Where the admin has rules in iptables-legacy tables ("filter FORWARD policy DROP", "nat
  // PREROUTING 2 rules"), ftpwalld's own rules and chains not counted; empty when there are none.
  static Result<std::string> admin_rules();

 private:
  Result<void> rollback_nat(const std::set<OpeningId>& touched, const std::vector<SavedRule>& removed);

  IptcOptions options_;
  BackendStats stats_;
  // Openings that have NAT parts, so that closing one without them costs no nat commit. Exact after
  // every nat transaction and list_own(); until the first, closes look at the nat table.
  std::set<OpeningId> nat_parts_;
  bool nat_parts_known_ = false;
  // NAT parts may have lost their ACCEPT (a rollback or a sweep failed): the next batch, close or
  // list looks at nat and removes them.
  bool sweep_pending_ = false;
};

}  // namespace ftpwall::firewall
