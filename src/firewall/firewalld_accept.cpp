// SPDX-License-Identifier: GPL-2.0-or-later
// firewalld_accept.hpp: three nf_tables dumps of table inet firewalld (set, its elements, rules).
#include "firewalld_accept.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <vector>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#pragma GCC diagnostic pop

#include "netlink/nftables.hpp"

namespace ftpwall::firewall {

namespace {

using netlink::nf_dump;

}  // namespace

std::string FirewalldAccept::missing(std::uint32_t accept_mark) const {
  char m[16];
  std::snprintf(m, sizeof m, "0x%08x", accept_mark);
  const std::string fix = "; run what `ftpwall rules --role server --helper ftpwalld --format firewalld --accept-mark " +
                          std::string(m) + "` emits (ftpwalld(8) BACKENDS)";
  if (!set) return std::string("firewalld has no ipset ") + firewalld_accept_set + fix;
  if (!mark_entry) return std::string("firewalld's ipset ") + firewalld_accept_set + " has no entry with mark " + m + fix;
  if (!rule) return std::string("no firewalld rule accepts ipset ") + firewalld_accept_set + " (rich rule source ipset=\"" +
                    firewalld_accept_set + "\" accept)" + fix;
  return {};
}

Result<FirewalldAccept> firewalld_accept_state(std::uint32_t accept_mark) {
  FirewalldAccept st;
  bool interval = false;
  auto sets = nf_dump(
      [](char* b, std::uint32_t seq) {
        nlmsghdr* h = nftnl_nlmsg_build_hdr(b, NFT_MSG_GETSET, NFPROTO_INET, NLM_F_DUMP | NLM_F_ACK, seq);
        nftnl_set* s = nftnl_set_alloc();
        nftnl_set_set_str(s, NFTNL_SET_TABLE, firewalld_table);
        nftnl_set_nlmsg_build_payload(h, s);
        nftnl_set_free(s);
        return h;
      },
      [&](const nlmsghdr* m) {
        nftnl_set* s = nftnl_set_alloc();
        if (nftnl_set_nlmsg_parse(m, s) >= 0 && nftnl_set_is_set(s, NFTNL_SET_NAME) &&
            std::strcmp(nftnl_set_get_str(s, NFTNL_SET_NAME), firewalld_accept_set) == 0) {
          st.set = true;
          interval = nftnl_set_is_set(s, NFTNL_SET_FLAGS) && (nftnl_set_get_u32(s, NFTNL_SET_FLAGS) & NFT_SET_INTERVAL);
        }
        nftnl_set_free(s);
      });
  if (!sets) return make_error("nftables: table inet firewalld sets: " + sets.error().message);
  if (!st.set) return st;

  // Elements: key ipv4_addr . mark (4 + 4 bytes). The mark is in host order, as meta mark loads
  // it, except in an interval set (firewalld's hash:ip,mark always is one): nft stores every field
  // of a range key big-endian there (measured: 0x20000000 as 20 00 00 00).
  auto elems = nf_dump(
      [](char* b, std::uint32_t seq) {
        nlmsghdr* h = nftnl_nlmsg_build_hdr(b, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP | NLM_F_ACK, seq);
        nftnl_set* s = nftnl_set_alloc();
        nftnl_set_set_str(s, NFTNL_SET_TABLE, firewalld_table);
        nftnl_set_set_str(s, NFTNL_SET_NAME, firewalld_accept_set);
        nftnl_set_elems_nlmsg_build_payload(h, s);
        nftnl_set_free(s);
        return h;
      },
      [&](const nlmsghdr* m) {
        nftnl_set* s = nftnl_set_alloc();
        if (nftnl_set_elems_nlmsg_parse(m, s) >= 0) {
          nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(s);
          for (nftnl_set_elem* e = it ? nftnl_set_elems_iter_next(it) : nullptr; e; e = nftnl_set_elems_iter_next(it)) {
            std::uint32_t len = 0;
            const auto* k = static_cast<const std::uint8_t*>(nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len));
            if (!k || len < 8) continue;
            std::uint32_t mark;
            std::memcpy(&mark, k + 4, 4);
            if (interval) mark = ntohl(mark);
            if (mark == accept_mark) st.mark_entry = true;
          }
          if (it) nftnl_set_elems_iter_destroy(it);
        }
        nftnl_set_free(s);
      });
  if (!elems) return make_error("nftables: set inet firewalld " + std::string(firewalld_accept_set) + ": " + elems.error().message);

  // A rule that looks the set up and accepts.
  auto rules = nf_dump(
      [](char* b, std::uint32_t seq) {
        nlmsghdr* h = nftnl_nlmsg_build_hdr(b, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP | NLM_F_ACK, seq);
        nftnl_rule* r = nftnl_rule_alloc();
        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, firewalld_table);
        nftnl_rule_nlmsg_build_payload(h, r);
        nftnl_rule_free(r);
        return h;
      },
      [&](const nlmsghdr* m) {
        nftnl_rule* r = nftnl_rule_alloc();
        if (nftnl_rule_nlmsg_parse(m, r) >= 0) {
          struct Seen {
            bool lookup = false, accept = false;
          } seen;
          nftnl_expr_foreach(
              r,
              [](nftnl_expr* e, void* d) -> int {
                auto& sn = *static_cast<Seen*>(d);
                const char* n = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
                if (std::strcmp(n, "lookup") == 0 && nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_SET) &&
                    std::strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET), firewalld_accept_set) == 0 &&
                    !(nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_FLAGS) && (nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_FLAGS) & NFT_LOOKUP_F_INV)))
                  sn.lookup = true;
                if (std::strcmp(n, "immediate") == 0 && nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT) &&
                    static_cast<std::int32_t>(nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT)) == NF_ACCEPT)
                  sn.accept = true;
                return 0;
              },
              &seen);
          if (seen.lookup && seen.accept) st.rule = true;
        }
        nftnl_rule_free(r);
      });
  if (!rules) return make_error("nftables: table inet firewalld rules: " + rules.error().message);
  return st;
}

}  // namespace ftpwall::firewall
