// SPDX-License-Identifier: GPL-2.0-or-later
// FirewallBackend over nf_tables (libnftnl + libmnl). Everything ftpwalld owns is one table of its
// own, `table inet ftpwall`; openings and their NAT parts are elements of maps with per-element
// timeouts, so the kernel expires them when the daemon dies. Layout (gateway, with nat):
//
//   table inet ftpwall {
//     map openings4 { type ipv4_addr . ipv4_addr . inet_service : verdict; flags timeout; }
//     map dnat4     { type ipv4_addr . ipv4_addr . inet_service : ipv4_addr . inet_service; flags timeout; }
//     map snat4     { type ipv4_addr . ipv4_addr . inet_service : ipv4_addr; flags timeout; }
//     set pairs4    { type ipv4_addr . ipv4_addr; flags timeout; }            (NftOptions::pairs)
//     chain steer-forward { type filter hook forward priority mangle; policy accept;
//       meta l4proto tcp ct original proto-dst 21 [ct mark & M != M] counter queue num 5 [bypass]
//         comment "ftpwall hook"                                       (one rule per control port) }
//     chain openings-forward { type filter hook forward priority filter - 10; policy accept;
//       tcp flags syn / fin,syn,rst,ack ip saddr . ip daddr . tcp dport vmap @openings4 queue num 5
//         comment "ftpwall hook"
//       tcp flags syn / fin,syn,rst,ack ct original proto-dst != 21 ip saddr . ip daddr @pairs4 queue num 5
//         comment "ftpwall hook" }
//     chain dnat-prerouting { type nat hook prerouting priority dstnat - 10; policy accept;
//       tcp flags syn / fin,syn,rst,ack dnat ip to ip saddr . ip daddr . tcp dport map @dnat4 comment "ftpwall hook" }
//     chain snat-postrouting { type nat hook postrouting priority srcnat - 10; policy accept;
//       tcp flags syn / fin,syn,rst,ack snat ip to ip saddr . ip daddr . tcp dport map @snat4 comment "ftpwall hook" }
//   }
// (`queue num 5` is the nft queue expression or the xt NFQUEUE target, see Steering below; nft
// prints both alike, and warns that the table "is managed by iptables-nft" when it holds the
// target.)
// A server has steer-input (`ct direction original`) and steer-output (`ct direction reply`), and
// openings-input + openings-output, instead of the forward chains.
//
// One opening = one element per part, each with the timeout (expires - now) and the element
// comment "ftpwall s7 o1" (userdata, read back by list_own()); with NftOptions::pairs an opening
// queued to the openings rule's queue has no openings4 element but counts towards its address
// pair's one element in pairs4 (see NftOptions::pairs):
//   openings4  C . S' . P' : accept | continue | goto to-queue-M   (S':P' = accepted_destination())
//   dnat4      C . S . P   : I . Q                                 (Opening::dnat_to)
//   snat4      C . S' . P' : A                                     (Opening::snat_to)
// The element verdict: no Opening::queue -> accept (final in this table). Opening::queue equal to
// the openings rule's queue (HookSpec::queue_num, the daemon's) -> continue: the lookup matched
// and the rule goes on to its own `queue num N`, so the data SYN reaches the daemon, which admits
// it once. Any other queue M -> goto to-queue-M, a regular chain created on demand with one queue
// rule. That path is correct but slow: a vmap element that jumps or goes to a chain makes the
// kernel validate the table at commit, walking every element of the map (330 us per batch at
// 10 000 openings, against 7 us for accept/continue); the daemon never takes it.
//
// apply() is one nf_tables netlink batch (NFNL_MSG_BATCH_BEGIN ... END): the kernel applies all of
// it or nothing, across all maps. So the iptables-legacy half-states (a DNAT part without its
// ACCEPT, nat committed and filter refused) cannot exist, and the batch's net effect (net_effect())
// is computed first: every id it names loses its elements (NFT_MSG_DESTROYSETELEM: no error for an
// element that expired meanwhile), then the ids whose last step opens get theirs. An element key is
// unique in a map: a new opening whose key equals a live opening's replaces that opening entirely
// (all of its parts go in the same batch). The cost of an apply does not depend on the number of
// live openings (hash maps; no table rewrite): the backend remembers which keys belong to which id
// (after its own batches and list_own(); a fresh process reads the maps once, at its first close).
//
// Steering: the nft `queue` expression where the kernel has it; otherwise the xt NFQUEUE target
// (revision 3, xt_NFQ_info_v3) through nf_tables' compat layer, which is what `iptables-nft -j
// NFQUEUE` installs. detect_steering() tries a dry-run batch (no BATCH_END: the kernel validates
// and aborts) with a `queue` expression; ENOENT means no queue expression. steering() names the
// one in use, for the daemon's start line.
//
// IPv6 (next issue): sibling maps openings6/dnat6/snat6 of type ipv6_addr . ipv6_addr .
// inet_service, and in each chain a sibling rule `ip6 saddr . ip6 daddr . tcp dport vmap
// @openings6` (`dnat ip6 to ...`, `snat ip6 to ...`). Keys, map names and rules are built per
// Family already (nft_backend.cpp: FamilyLayout); only the v6 layout entries and their rules are
// missing. HookState::own_hooks then counts those rules too (see the report in the commit).
//
// An accept in this table is not final: every base chain at a hook runs, and a drop (or reject) in
// the admin's own tables at the same hook still drops a data connection this table accepted. So
// the openings chains run at priority filter - 10, before the admin's filter chains (priority 0),
// and the daemon's verdict on every data SYN an opening admits sets the packet-mark bit
// queue.accept_mark (default 0x20000000). A native nft admin's chain accepts by that bit with one
// line, before its drops:
//   meta mark & 0x20000000 == 0x20000000 accept comment "ftpwall openings"
// ftpwalld never edits the admin's table; preflight() (backend_select.cpp) refuses to start when a
// dropping chain at one of its hooks lacks the line, and names the chain and the line.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ftpwall/core/containers.hpp"
#include "ftpwall/firewall/backend.hpp"

namespace ftpwall::firewall {

inline constexpr const char* nft_table_name = "ftpwall";

enum class NftSteering : std::uint8_t { unknown, queue, xt_nfqueue };
std::string_view name(NftSteering s);

struct NftOptions {
  // Which verdict the steering and the to-queue-N chains use. auto_detect asks the kernel once
  // (detect_steering()); the others force one (tests).
  enum class Steering : std::uint8_t { auto_detect, queue, xt_nfqueue } steering = Steering::auto_detect;
  // Tests only (tests/adapters/nft_backend_probe --fail-batch): true makes every apply()/
  // close_session()/flush_own() batch end with one message the kernel refuses (an element for a
  // map that does not exist), so that the atomicity of a batch can be tried against a real kernel.
  std::function<bool()> fail_batch;
  // An opening whose data SYN the daemon arbitrates (Opening::queue = the openings rule's queue)
  // is kept by this process, not by an element of its own: the kernel holds one element per
  // address pair in pairs4/pairs6 (counted here, shared by every such opening between the two
  // addresses), and the pairs rule queues every new connection between them to the daemon, which
  // admits the one an opening names (FirewallBackend::queues_unnamed_syns). Issue 13: no element
  // message per announcement while a pair stays in use. Only the process that made such an
  // opening can close or list it (a restarted daemon makes a new table); ftpwalld's backend has
  // it on (make_backend), nft_backend_probe with --pairs.
  bool pairs = false;
};

// Whether install_hooks(spec) inserts its accept_mark rule (rule 1, "ftpwall hook") into this
// chain when it exists: iptables-nft's `ip filter FORWARD` on a gateway, `INPUT` and `OUTPUT` on a
// server; never with spec.accept_mark 0. With hooks = "daemon" such a chain needs nothing from the
// admin (preflight()).
bool installs_iptables_nft_rule(const HookSpec& spec, std::string_view family, std::string_view table, std::string_view chain);

class NftBackend final : public FirewallBackend {
 public:
  explicit NftBackend(NftOptions options = {});
  ~NftBackend() override;
  NftBackend(const NftBackend&) = delete;
  NftBackend& operator=(const NftBackend&) = delete;

  std::string_view name() const override { return "nftables"; }
  // "nft queue", "xt NFQUEUE (nft compat)", or "not detected" before the first install_hooks()
  // / detect_steering().
  std::string_view steering() const { return firewall::name(steering_); }
  Result<NftSteering> detect_steering();

  Result<void> apply(std::span<const Change> changes) override;
  Result<void> close_session(std::uint64_t session) override;
  Result<void> flush_own() override;
  Result<std::vector<Opening>> list_own() override;
  Result<void> install_hooks(const HookSpec& spec) override;
  Result<void> remove_hooks() override;
  Result<HookState> hook_state() override;
  // backend_select.cpp: the admin's base chains at the same hooks (an accept in table inet ftpwall
  // is not final; a drop elsewhere still drops).
  Result<std::vector<std::string>> preflight(const HookSpec& spec, bool daemon_hooks) override;
  BackendStats stats() const override { return stats_; }
  bool queues_unnamed_syns() const override { return options_.pairs; }

  // One map element key or value as the kernel stores it (concatenations are 32-bit aligned).
  struct Key {
    Family family = Family::v4;
    std::uint8_t len = 0;
    std::array<std::uint8_t, 36> bytes{};
    auto operator<=>(const Key&) const = default;
  };
  class Socket;  // nft_backend.cpp

 private:
  // The elements of one opening in the kernel, by map (the key only: enough to destroy them).
  struct Parts {
    Key accept;
    std::optional<Key> dnat, snat;
    // A range opening (per-client FTPS): accept in ranges4/6 and dnat in rangednat4, each element
    // an interval from its key to these ends.
    bool range = false;
    Key accept_end;
    std::optional<Key> dnat_end;
    // NftOptions::pairs: the accept part is this process's only (accept is its key, not in
    // openings4); `pair` counts it in pairs_; `opening` is what list_own() reports of it.
    std::optional<Key> pair;
    std::shared_ptr<const Opening> opening;
  };
  // One element of pairs4/pairs6: how many of our openings it serves, and when the kernel expires
  // it (at twice an opening's lifetime when added, so a stream of openings between the same two
  // addresses renews it once per lifetime; `stale`: hook_state() found it missing).
  struct Pair {
    std::uint32_t openings = 0;
    Clock::time_point expires{};
    bool foreign = false;  // read from the kernel (refresh_known()), not ours: replaced when needed
    bool stale = false;
  };
  Result<void> refresh_known();  // reads the maps: known_ exact
  std::vector<std::pair<OpeningId, Parts>> take_steered();
  Result<void> restore_steered(Family family, const std::vector<std::pair<OpeningId, Parts>>& steered,
                               std::map<OpeningId, Opening>* found);
  Result<void> read_ranges(Family family, std::map<OpeningId, Opening>* found, std::vector<Change>* orphans);
  void forget(const OpeningId& id);
  void clear_known();
  void remember(const OpeningId& id, const Parts& p);

  NftOptions options_;
  std::unique_ptr<Socket> nl_;
  NftSteering steering_ = NftSteering::unknown;
  BackendStats stats_;
  // Hash tables (issue 13: ordered maps were a tenth of the daemon's time under a PASV storm).
  struct IdHash {
    std::size_t operator()(const OpeningId& id) const noexcept {
      return std::hash<std::uint64_t>{}(id.session * 0x9e3779b97f4a7c15ull ^ (std::uint64_t{id.opening} << 1 | id.range));
    }
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;
  };
  std::unordered_map<OpeningId, Parts, IdHash> known_;
  std::unordered_map<Key, OpeningId, KeyHash> accept_owner_, dnat_owner_, snat_owner_;
  // Their nodes, kept across an opening's forget() and its successor's remember() (issue 13).
  NodeSpares<std::unordered_map<OpeningId, Parts, IdHash>> known_spares_;
  NodeSpares<std::unordered_map<Key, OpeningId, KeyHash>, 256> owner_spares_;  // three keys an opening, 64 a batch
  std::unordered_map<Key, Pair, KeyHash> pairs_;
  bool known_complete_ = false;  // known_ holds every opening in the kernel (as far as we can tell)
  std::set<std::uint16_t> queue_chains_;  // to-queue-N chains that exist
  bool chains_known_ = false;
  // N of the openings rules' `queue num N` (HookSpec::queue_num): openings queued there get the
  // element verdict `continue`, others `goto to-queue-M`.
  Result<void> learn_openings_queue();
  std::optional<std::uint16_t> openings_queue_;
  bool openings_queue_known_ = false;
  // What the last install_hooks() of this process put in place: hook_state() says from it whether
  // all of it is still there (HookState::hooks_complete).
  std::optional<HookSpec> installed_spec_;
};

}  // namespace ftpwall::firewall
