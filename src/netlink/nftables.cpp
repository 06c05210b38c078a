// SPDX-License-Identifier: GPL-2.0-or-later
// One nf_tables dump with libmnl: NFT_MSG_GETCHAIN, NLM_F_DUMP, family NFPROTO_UNSPEC (all).
#include "nftables.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <functional>
#include <cerrno>
#include <cstring>
#include <ctime>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#pragma GCC diagnostic pop

namespace ftpwall::netlink {
namespace {

struct Attrs {
  const nlattr* tb[NFTA_CHAIN_MAX + 1] = {};
};

int chain_attr(const nlattr* a, void* data) {
  auto* at = static_cast<Attrs*>(data);
  const auto type = mnl_attr_get_type(a);
  if (type > NFTA_CHAIN_MAX) return MNL_CB_OK;
  switch (type) {
    case NFTA_CHAIN_TABLE:
    case NFTA_CHAIN_NAME:
    case NFTA_CHAIN_TYPE:
      if (mnl_attr_validate(a, MNL_TYPE_STRING) < 0) return MNL_CB_ERROR;
      break;
    case NFTA_CHAIN_HOOK:
      if (mnl_attr_validate(a, MNL_TYPE_NESTED) < 0) return MNL_CB_ERROR;
      break;
    case NFTA_CHAIN_POLICY:
      if (mnl_attr_validate(a, MNL_TYPE_U32) < 0) return MNL_CB_ERROR;
      break;
    default:
      return MNL_CB_OK;  // unknown or unused: skipped
  }
  at->tb[type] = a;
  return MNL_CB_OK;
}

int hook_attr(const nlattr* a, void* data) {
  auto** tb = static_cast<const nlattr**>(data);
  const auto type = mnl_attr_get_type(a);
  if ((type == NFTA_HOOK_HOOKNUM || type == NFTA_HOOK_PRIORITY) && mnl_attr_validate(a, MNL_TYPE_U32) >= 0) tb[type] = a;
  return MNL_CB_OK;
}

int on_chain(const nlmsghdr* nlh, void* data) {
  auto* out = static_cast<std::vector<NftBaseChain>*>(data);
  const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
  Attrs at;
  if (mnl_attr_parse(nlh, sizeof(nfgenmsg), chain_attr, &at) < MNL_CB_STOP) return MNL_CB_ERROR;
  if (!at.tb[NFTA_CHAIN_HOOK] || !at.tb[NFTA_CHAIN_TABLE] || !at.tb[NFTA_CHAIN_NAME]) return MNL_CB_OK;  // not a base chain
  const nlattr* hook[NFTA_HOOK_MAX + 1] = {};
  mnl_attr_parse_nested(at.tb[NFTA_CHAIN_HOOK], hook_attr, hook);
  NftBaseChain c;
  c.family = nft_family_name(nfg->nfgen_family);
  c.table = mnl_attr_get_str(at.tb[NFTA_CHAIN_TABLE]);
  c.chain = mnl_attr_get_str(at.tb[NFTA_CHAIN_NAME]);
  if (at.tb[NFTA_CHAIN_TYPE]) c.type = mnl_attr_get_str(at.tb[NFTA_CHAIN_TYPE]);
  if (hook[NFTA_HOOK_HOOKNUM]) {
    const std::uint32_t h = ntohl(mnl_attr_get_u32(hook[NFTA_HOOK_HOOKNUM]));
    c.hook = h <= NF_INET_POST_ROUTING ? static_cast<Hook>(h) : Hook::unknown;
  }
  if (hook[NFTA_HOOK_PRIORITY]) c.priority = static_cast<std::int32_t>(ntohl(mnl_attr_get_u32(hook[NFTA_HOOK_PRIORITY])));
  if (at.tb[NFTA_CHAIN_POLICY]) c.policy_drop = ntohl(mnl_attr_get_u32(at.tb[NFTA_CHAIN_POLICY])) == NF_DROP;
  out->push_back(std::move(c));
  return MNL_CB_OK;
}

}  // namespace

std::string nft_family_name(std::uint32_t f) {
  switch (f) {
    case NFPROTO_IPV4: return "ip";
    case NFPROTO_IPV6: return "ip6";
    case NFPROTO_INET: return "inet";
    case NFPROTO_ARP: return "arp";
    case NFPROTO_BRIDGE: return "bridge";
    case NFPROTO_NETDEV: return "netdev";
    default: return "family" + std::to_string(f);
  }
}

std::string NftBaseChain::to_string() const {
  return family + " " + table + " " + chain + " (" + type + " " + std::string(name(hook)) + " priority " +
         std::to_string(priority) + " policy " + (policy_drop ? "drop" : "accept") + ")";
}

Result<void> nf_dump(const std::function<nlmsghdr*(char*, std::uint32_t)>& build,
                     const std::function<void(const nlmsghdr*)>& each) {
  mnl_socket* s = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (!s) return make_error(std::string("socket: ") + std::strerror(errno));
  struct Closer {
    mnl_socket* s;
    ~Closer() { mnl_socket_close(s); }
  } closer{s};
  if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) return make_error(std::string("bind: ") + std::strerror(errno));
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);  // libmnl 1.0.4 has no MNL_SOCKET_DUMP_SIZE
  const auto seq = static_cast<std::uint32_t>(time(nullptr));
  nlmsghdr* nlh = build(buf.data(), seq);
  if (mnl_socket_sendto(s, nlh, nlh->nlmsg_len) < 0) return make_error(std::string("send: ") + std::strerror(errno));
  const std::uint32_t portid = mnl_socket_get_portid(s);
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(s, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(std::string("receive: ") + std::strerror(errno));
    }
    const int r = mnl_cb_run(
        buf.data(), static_cast<std::size_t>(n), seq, portid,
        [](const nlmsghdr* m, void* d) -> int {
          (*static_cast<const std::function<void(const nlmsghdr*)>*>(d))(m);
          return MNL_CB_OK;
        },
        const_cast<std::function<void(const nlmsghdr*)>*>(&each));
    if (r == MNL_CB_ERROR) {
      if (errno == ENOENT || errno == EPROTONOSUPPORT) return {};
      // EINTR here: the ruleset changed during the dump; a caller may simply ask again.
      return make_error(std::string("dump: ") + std::strerror(errno));
    }
    if (r == MNL_CB_STOP) return {};
  }
}

Result<std::vector<NftBaseChain>> list_nft_base_chains() {
  std::vector<NftBaseChain> chains;
  auto r = nf_dump(
      [](char* buf, std::uint32_t seq) {
        nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        nlh->nlmsg_seq = seq;
        auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
        nfg->nfgen_family = NFPROTO_UNSPEC;
        nfg->version = NFNETLINK_V0;
        nfg->res_id = 0;
        return nlh;
      },
      [&](const nlmsghdr* m) { on_chain(m, &chains); });
  if (!r) return make_error("nftables: chain dump: " + r.error().message);
  return chains;
}

NftConflicts nft_conflicts(const std::vector<NftBaseChain>& chains, const std::vector<Hook>& hooks) {
  NftConflicts out;
  for (const auto& c : chains) {
    if ((c.family != "ip" && c.family != "inet") || c.type != "filter") continue;
    if (std::find(hooks.begin(), hooks.end(), c.hook) == hooks.end()) continue;
    (c.policy_drop ? out.dropping : out.filtering).push_back(c);
  }
  return out;
}

}  // namespace ftpwall::netlink
