// SPDX-License-Identifier: GPL-2.0-or-later
// FirewallBackend over libiptc: iptables-legacy (libip4tc) for IPv4 and ip6tables-legacy (libip6tc)
// for IPv6, one code for both (the differences are the traits of iptc_family.hpp). IPv6 gets the
// same mangle steering and filter FTPWALL-ACCEPT chain with its jumps, and its openings go to
// ip6tables filter; no nat chains there (NAT66 is not supported: an IPv6 opening with a NAT part is
// refused). A host without ip6tables-legacy (no IPv6 in the kernel, no ip6_tables) is served
// IPv4 only: preflight() says so in one warning, install_hooks() leaves IPv6 out, IPv6 openings are
// refused. net.ipv6.conf.*.disable_ipv6 = 1 does not count: the ip6tables tables work there. Rules are built by hand in the kernel's
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
#include <optional>
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

// Whether this host has ip6tables-legacy: available; unavailable (IPv4 only, `why` for the one
// warning); or an error that is not the kernel's lack of it (EPERM, ...): then the caller fails.
struct Ip6Support {
  enum class State : std::uint8_t { available, unavailable, error };
  State state = State::available;
  std::string why;
};
// The decision from the errno of socket(AF_INET6, SOCK_RAW) (0 = it worked) and of the
// IP6T_SO_GET_INFO that follows: EAFNOSUPPORT (no IPv6: ipv6.disable=1) and ENOPROTOOPT (no
// ip6_tables: CONFIG_IP6_NF_IPTABLES[_LEGACY] off) are unavailable; ENOENT (no such table) and
// 0 available; anything else an error.
Ip6Support classify_ip6tables_probe(int socket_errno, int getinfo_errno);
// Asks the kernel (one raw IPv6 socket, one IP6T_SO_GET_INFO for a table name no table has: no
// table is created).
Ip6Support probe_ip6tables();

struct IptcOptions {
  std::string lock_path;  // empty: $XTABLES_LOCKFILE, else /run/xtables.lock
  std::chrono::milliseconds lock_timeout{5000};
  unsigned max_commit_attempts = 8;  // attempts per table and batch (EAGAIN/EINVAL races)
  // Tests only (tests/adapters/iptc_probe --fail-commit TABLE): asked before every commit; true
  // makes that commit fail as a kernel refusal would, so that the rollback of a batch whose filter
  // commit fails after its nat commit can be tried against a real kernel. Empty in the daemon.
  // Table names as "filter", "nat", "mangle" for IPv4 and "ip6:filter", "ip6:mangle" for IPv6.
  std::function<bool(std::string_view table)> fail_commit;
  // Tests only: stands for probe_ip6tables() (unit tests of the IPv4-only degradation).
  std::function<Ip6Support()> probe_ip6;
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
  // The same for one family (v6: /proc/net/ip6_tables_names).
  static std::vector<std::string> existing_tables(Family f);
  // Where the admin has rules in iptables-legacy tables ("filter FORWARD policy DROP", "nat
  // PREROUTING 2 rules"; in ip6tables-legacy tables "ip6tables filter INPUT 3 rules"), ftpwalld's
  // own rules and chains not counted; empty when there are none.
  static Result<std::string> admin_rules();

 private:
  Result<void> rollback_nat(const std::set<OpeningId>& touched, const std::vector<SavedRule>& removed);
  Result<void> rollback_ip6(const std::set<OpeningId>& touched, const std::vector<SavedRule>& removed);
  // Whether ip6tables-legacy serves IPv6 here (probed once; an error is probed again next time).
  Result<bool> ip6_serves();
  bool ip6_touch(const std::set<OpeningId>& ids, bool installs);

  IptcOptions options_;
  BackendStats stats_;
  // Openings that have NAT parts, so that closing one without them costs no nat commit. Exact after
  // every nat transaction and list_own(); until the first, closes look at the nat table.
  std::set<OpeningId> nat_parts_;
  bool nat_parts_known_ = false;
  // NAT parts may have lost their ACCEPT (a rollback or a sweep failed): the next batch, close or
  // list looks at nat and removes them.
  bool sweep_pending_ = false;
  Ip6Support ip6_;
  bool ip6_known_ = false;
  // The openings in ip6tables filter, so that a batch of IPv4 ids costs no ip6tables snapshot.
  // Exact after every ip6tables transaction and list_own(); until then, batches look.
  std::set<OpeningId> ip6_ids_;
  bool ip6_ids_known_ = false;
  // The spec of this process's last install_hooks(): hook_state() judges completeness by it.
  std::optional<HookSpec> installed_;
};

}  // namespace ftpwall::firewall
