// SPDX-License-Identifier: GPL-2.0-or-later
// Which backend a daemon uses, and the checks before it installs anything.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <tuple>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#pragma GCC diagnostic pop

#include "ftpwall/firewall/backend.hpp"
#include "firewalld_accept.hpp"
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

namespace {
// ftpwalld's openings are one process's (its table is made new at each start): the kernel holds
// one element per address pair, not one per announcement (NftOptions::pairs, issue 13).
NftOptions daemon_options() {
  NftOptions o;
  o.pairs = true;
  return o;
}
}  // namespace

Result<BackendChoice> make_backend(BackendKind kind) {
  BackendChoice c;
  switch (kind) {
    case BackendKind::iptables_legacy:
      c.backend = std::make_unique<IptcBackend>();
      c.why = "configured";
      return c;
    case BackendKind::nftables:
      c.backend = std::make_unique<NftBackend>(daemon_options());
      c.why = "configured";
      return c;
    case BackendKind::automatic:
      break;
  }
  // The admin's rules decide: an iptables-legacy ruleset (IPv4 or IPv6: ip6tables-legacy tables
  // count the same) gets legacy openings (a legacy ACCEPT is what its own DROP rules can be
  // preceded by); anything else is nf_tables (iptables-nft, firewalld, nft), where ftpwalld writes
  // nothing into legacy tables.
  auto where = IptcBackend::admin_rules();
  if (!where) return where.error();
  if (!where->empty()) {
    c.backend = std::make_unique<IptcBackend>();
    c.why = "auto: rules in iptables-legacy tables (" + *where + ")";
  } else {
    c.backend = std::make_unique<NftBackend>(daemon_options());
    c.why = "auto: no rules in iptables-legacy tables";
  }
  return c;
}

Result<void> remove_all_hooks() {
  // Legacy tables only where they exist: looking at a missing one through libiptc creates it.
  // ip6tables-legacy's count too (IptcBackend removes the IPv6 hooks and chains with the IPv4 ones).
  if (!IptcBackend::existing_tables(Family::v4).empty() || !IptcBackend::existing_tables(Family::v6).empty()) {
    IptcBackend legacy;
    if (auto r = legacy.remove_hooks(); !r) return make_error("iptables-legacy: " + r.error().message);
  }
  NftBackend nft;
  if (auto r = nft.remove_hooks(); !r) return make_error("nftables: " + r.error().message);
  return {};
}

namespace {

// The one line a native nft admin adds to a filter chain at ftpwalld's hooks (ftpwalld(8) BACKENDS):
// the daemon's verdict sets `mark` on every data SYN an opening admits, in openings-* at priority
// filter - 10, before the admin's chains at priority 0 see the packet.
constexpr const char* openings_comment = "ftpwall openings";
constexpr std::int32_t openings_priority = -10;  // nft_backend.cpp: chain_open_*

std::string hex_mark(std::uint32_t m) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%08x", m);
  return b;
}

std::string openings_line(std::uint32_t mark) {
  const std::string m = hex_mark(mark);
  return "meta mark & " + m + " == " + m + " accept comment \"" + openings_comment + "\"";
}

// What preflight needs to know of one admin chain's rules, in order.
struct AdminRule {
  std::string comment;
  bool drops = false;          // a drop or reject verdict, a verdict map, a jump or goto (may drop)
  bool unconditional = false;  // nothing but counter/log/verdict: every packet reaching it gets it
  std::optional<std::uint32_t> mark_mask;  // meta mark & M == M ... (the openings line)
  bool accepts = false;
};
using ChainKey = std::tuple<std::string, std::string, std::string>;  // family, table, chain

std::string rule_family(std::uint32_t f) {
  switch (f) {
    case NFPROTO_IPV4: return "ip";
    case NFPROTO_IPV6: return "ip6";
    case NFPROTO_INET: return "inet";
    default: return "family" + std::to_string(f);
  }
}

// NFTNL_UDATA_RULE_COMMENT of a rule's userdata.
std::string rule_comment(const nftnl_rule* r) {
  if (!nftnl_rule_is_set(r, NFTNL_RULE_USERDATA)) return {};
  std::uint32_t len = 0;
  const void* data = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
  std::string out;
  if (!data || len == 0) return out;
  nftnl_udata_parse(
      data, len,
      [](const nftnl_udata* a, void* d) -> int {
        if (nftnl_udata_type(a) == NFTNL_UDATA_RULE_COMMENT && nftnl_udata_len(a) > 0) {
          const char* s = static_cast<const char*>(nftnl_udata_get(a));
          static_cast<std::string*>(d)->assign(s, strnlen(s, nftnl_udata_len(a)));
        }
        return 0;
      },
      &out);
  return out;
}

AdminRule parse_admin_rule(nftnl_rule* r) {
  AdminRule a;
  a.comment = rule_comment(r);
  struct Ctx {
    AdminRule& a;
    bool conditional = false;
    bool meta_mark = false;  // the last load was meta mark
    std::optional<std::uint32_t> mask;
  } ctx{a, false, false, std::nullopt};
  nftnl_expr_foreach(
      r,
      [](nftnl_expr* e, void* d) -> int {
        auto& c = *static_cast<Ctx*>(d);
        const std::string n = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
        if (n == "counter" || n == "log") return 0;
        if (n == "immediate" && nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT)) {
          const auto v = static_cast<std::int32_t>(nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT));
          if (v == NF_DROP || v == NFT_JUMP || v == NFT_GOTO) c.a.drops = true;
          if (v == NF_ACCEPT) c.a.accepts = true;
          return 0;
        }
        if (n == "reject") {
          c.a.drops = true;
          return 0;
        }
        if (n == "lookup" && nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_DREG) &&
            nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_DREG) == NFT_REG_VERDICT)
          c.a.drops = true;  // a verdict map: its elements may drop
        if (n == "meta") {
          c.meta_mark = nftnl_expr_is_set(e, NFTNL_EXPR_META_KEY) && nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY) == NFT_META_MARK &&
                        nftnl_expr_is_set(e, NFTNL_EXPR_META_DREG);
        } else if (n == "bitwise" && c.meta_mark) {
          std::uint32_t len = 0;
          const void* m = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &len);
          if (m && len == 4) {
            std::uint32_t v;
            std::memcpy(&v, m, 4);
            c.mask = v;  // host order: meta mark is a host-order register
          }
        } else if (n == "cmp" && c.mask) {
          std::uint32_t len = 0;
          const void* v = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len);
          std::uint32_t x = 0;
          if (v && len == 4) std::memcpy(&x, v, 4);
          if (nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP) == NFT_CMP_EQ && x == *c.mask) c.a.mark_mask = c.mask;
          c.mask.reset();
          c.meta_mark = false;
        } else {
          c.meta_mark = false;
        }
        c.conditional = true;
        return 0;
      },
      &ctx);
  a.unconditional = !ctx.conditional;
  return a;
}

// Every rule of every table, by chain (one NFT_MSG_GETRULE dump).
Result<std::map<ChainKey, std::vector<AdminRule>>> dump_admin_rules() {
  std::map<ChainKey, std::vector<AdminRule>> out;
  auto r = netlink::nf_dump(
      [](char* buf, std::uint32_t seq) { return nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_UNSPEC, NLM_F_DUMP, seq); },
      [&](const nlmsghdr* m) {
        nftnl_rule* rule = nftnl_rule_alloc();
        if (nftnl_rule_nlmsg_parse(m, rule) >= 0) {
          out[{rule_family(nftnl_rule_get_u32(rule, NFTNL_RULE_FAMILY)), nftnl_rule_get_str(rule, NFTNL_RULE_TABLE),
               nftnl_rule_get_str(rule, NFTNL_RULE_CHAIN)}]
              .push_back(parse_admin_rule(rule));
        }
        nftnl_rule_free(rule);
      });
  if (!r) return make_error("nftables: rule dump: " + r.error().message);
  return out;
}

// Tables iptables-nft manages (its builtin chains in ip/ip6 filter, mangle, raw, nat, security).
bool iptables_nft_chain(const netlink::NftBaseChain& c) {
  static constexpr const char* tables[] = {"filter", "nat", "mangle", "raw", "security"};
  static constexpr const char* chains[] = {"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"};
  return (c.family == "ip" || c.family == "ip6") &&
         std::find_if(std::begin(tables), std::end(tables), [&](const char* t) { return c.table == t; }) != std::end(tables) &&
         std::find_if(std::begin(chains), std::end(chains), [&](const char* n) { return c.chain == n; }) != std::end(chains);
}

}  // namespace

// A native nft admin's filter chain at one of ftpwalld's hooks passes the daemon's data connections
// only by the openings line (openings_line()): an accept in table inet ftpwall is not final.
//   policy drop, or an unconditional drop/reject rule, and no line before it -> error (refuse to
//     start), naming the chain and the exact line with the configured queue.accept_mark;
//   the line with another mark, or in a chain that runs before openings-* (priority <= filter - 10)
//     -> error;
//   policy accept with conditional drops (or jumps) and no line -> warning.
Result<std::vector<std::string>> NftBackend::preflight(const HookSpec& spec, bool daemon_hooks) {
  std::vector<std::string> warnings;
  const std::vector<netlink::Hook> hooks = spec.role == Role::gateway
                                               ? std::vector<netlink::Hook>{netlink::Hook::forward}
                                               : std::vector<netlink::Hook>{netlink::Hook::input, netlink::Hook::output};
  auto chains = netlink::list_nft_base_chains();
  if (!chains) return make_error("nftables: " + chains.error().message);
  std::vector<netlink::NftBaseChain> others, legacy_style, firewalld;
  for (const auto& ch : *chains) {
    if (ch.family == "inet" && ch.table == nft_table_name) continue;
    // iptables-nft's filter chains at our hooks get ftpwalld's own accept-mark rule (install_hooks).
    if (daemon_hooks && installs_iptables_nft_rule(spec, ch.family, ch.table, ch.chain)) continue;
    // firewalld's table accepts by its ipset ftpwall-accept (firewalld_accept.hpp), not by the line.
    if (ch.family == "inet" && ch.table == firewalld_table) {
      firewalld.push_back(ch);
      continue;
    }
    // The iptables-nft tables are handled by the iptables-nft path (ftpwalld's chain jumped from
    // them); the openings line is for native nft tables only.
    (iptables_nft_chain(ch) ? legacy_style : others).push_back(ch);
  }
  // Legacy tables run beside nf_tables, and a drop there is final too (backend = "nftables" on
  // a host with an iptables-legacy or ip6tables-legacy ruleset; auto would have chosen legacy).
  if (auto legacy = IptcBackend::admin_rules(); legacy && !legacy->empty())
    warnings.push_back("rules in iptables-legacy tables (" + *legacy +
                       "): the nftables backend's openings do not override their drops; use backend = \"auto\" or "
                       "\"iptables-legacy\", or accept ftpwalld's data connections there (mark " + hex_mark(spec.accept_mark) + ")");
  for (const auto& d : netlink::nft_conflicts(legacy_style, hooks).dropping)
    warnings.push_back("nftables chain " + d.to_string() +
                       " (iptables-nft) drops at a hook where ftpwalld opens: an accept in table inet ftpwall does not "
                       "override it, so its rules must accept ftpwalld's data connections");
  if (const auto fc = netlink::nft_conflicts(firewalld, hooks); !fc.dropping.empty() || !fc.filtering.empty()) {
    auto st = firewalld_accept_state(spec.accept_mark);
    if (!st) return st.error();
    if (!st->ok())
      return make_error("firewalld's table inet firewalld rejects ftpwalld's data connections: " + st->missing(spec.accept_mark));
  }
  const auto c = netlink::nft_conflicts(others, hooks);
  if (c.dropping.empty() && c.filtering.empty()) return warnings;
  auto rules = dump_admin_rules();
  if (!rules) return rules.error();
  const std::string line = openings_line(spec.accept_mark);
  std::vector<std::string> errors;
  auto check = [&](const netlink::NftBaseChain& ch) {
    const auto it = rules->find({ch.family, ch.table, ch.chain});
    static const std::vector<AdminRule> none;
    const auto& rs = it == rules->end() ? none : it->second;
    // drops: every packet not accepted earlier is dropped (policy drop, or an unconditional drop or
    // reject rule); line_late: such a rule comes before the line.
    bool drops = ch.policy_drop, line_found = false, line_late = false, any_drop = false;
    std::optional<std::uint32_t> other_mark;
    for (const auto& r : rs) {
      if (r.comment == openings_comment) {
        if (r.mark_mask && *r.mark_mask == spec.accept_mark && r.accepts) {
          line_found = true;
        } else {
          other_mark = r.mark_mask.value_or(0);
        }
        continue;
      }
      if (r.drops) {
        any_drop = true;
        if (r.unconditional) {
          drops = true;
          line_late = line_late || !line_found;
        }
      }
    }
    if (!line_found) line_late = false;
    const std::string name = "nftables chain " + ch.to_string();
    if (line_found && spec.accept_mark != 0 && ch.priority <= openings_priority && (drops || any_drop)) {
      errors.push_back(name + " runs at priority " + std::to_string(ch.priority) +
                       ", not after ftpwalld's openings chains (priority filter - 10): give it priority filter (0)");
      return;
    }
    if (line_found && !line_late && spec.accept_mark != 0) return;
    if (!drops && !any_drop) return;  // accepts everything: nothing to add
    std::string why = other_mark ? " has the \"" + std::string(openings_comment) + "\" rule with mark " + hex_mark(*other_mark) +
                                       ", not queue.accept_mark " + hex_mark(spec.accept_mark)
                      : line_late ? " drops before its \"" + std::string(openings_comment) + "\" rule"
                                  : " lacks the openings line";
    if (spec.accept_mark == 0) {
      errors.push_back(name + ": queue.accept_mark is 0, so ftpwalld marks no data connection and this chain's drops "
                              "cannot be passed; set accept_mark (default 0x20000000) and add " + openings_line(0x20000000));
      return;
    }
    const std::string fix = name + why + ": add `" + line + "` to it, before its drops";
    if (drops)
      errors.push_back(fix);
    else
      warnings.push_back(fix + " (its rules may drop ftpwalld's data connections; an accept in table inet ftpwall is not final)");
  };
  for (const auto& d : c.dropping) check(d);
  for (const auto& f : c.filtering) check(f);
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : "; ") + e;
    return make_error(all + " (an accept in table inet ftpwall is not final; see ftpwalld(8) BACKENDS)");
  }
  return warnings;
}

}  // namespace ftpwall::firewall
