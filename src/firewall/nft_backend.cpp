// SPDX-License-Identifier: GPL-2.0-or-later
// The layout and the reasons are in nft_backend.hpp. Messages are built with libnftnl and sent
// over one libmnl socket; a batch is NFNL_MSG_BATCH_BEGIN, the messages, NFNL_MSG_BATCH_END, and
// the kernel processes it synchronously inside sendmsg(): every error (and the one acknowledgement
// asked for, on the last message) is in the socket when sendmsg() returns.
#include "nft_backend.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <unordered_set>
#include <utility>

#include "ftpwall/core/fnv.hpp"
#include "netlink/nftables.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <linux/netfilter/xt_comment.h>
#pragma GCC diagnostic pop

namespace ftpwall::firewall {

// Linux 6.3: delete if present, no ENOENT (the uapi headers of Debian 12 predate them).
#ifndef NFT_MSG_DESTROYTABLE
inline constexpr std::uint16_t NFT_MSG_DESTROYTABLE = 26;
#endif
#ifndef NFT_MSG_DESTROYSETELEM
inline constexpr std::uint16_t NFT_MSG_DESTROYSETELEM = 30;
#endif

std::string_view name(NftSteering s) {
  switch (s) {
    case NftSteering::queue: return "nft queue";
    case NftSteering::xt_nfqueue: return "xt NFQUEUE (nft compat)";
    case NftSteering::unknown: break;
  }
  return "not detected";
}

namespace {

constexpr const char* hook_comment_text = "ftpwall hook";
constexpr std::uint16_t family_inet = NFPROTO_INET;
constexpr std::uint8_t ct_dir_original = 0, ct_dir_reply = 1;

// nft's datatype numbers (src/datatype.h), for `nft list` to print the key and data types.
constexpr std::uint32_t type_ipv4_addr = 7, type_ipv6_addr = 8, type_inet_service = 13, type_bits = 6;

// What differs between the IPv4 and IPv6 maps and rules: names, types, header offsets.
struct FamilyLayout {
  Family family;
  const char* suffix;       // openings4, dnat4, snat4
  std::uint8_t nfproto;     // meta nfproto
  std::uint32_t addr_len;   // 4 | 16
  std::uint32_t saddr_off;  // in the network header
  std::uint32_t daddr_off;
  std::uint32_t addr_type;
  std::uint32_t key_len() const { return 2 * addr_len + 4; }
  std::uint32_t key_type() const {
    return (((addr_type << type_bits) | addr_type) << type_bits) | type_inet_service;
  }
  // pairs4/pairs6: source . destination, no port (NftOptions::pairs).
  std::uint32_t pair_len() const { return 2 * addr_len; }
  std::uint32_t pair_type() const { return (addr_type << type_bits) | addr_type; }
};
constexpr FamilyLayout layout_v4{Family::v4, "4", NFPROTO_IPV4, 4, 12, 16, type_ipv4_addr};
constexpr FamilyLayout layout_v6{Family::v6, "6", NFPROTO_IPV6, 16, 8, 24, type_ipv6_addr};
constexpr FamilyLayout families[] = {layout_v4, layout_v6};
// NAT66/NPTv6 is out of scope (issue 10): IPv6 has openings, never dnat6/snat6 maps or nat rules.
constexpr bool has_nat(const FamilyLayout& l) { return l.family == Family::v4; }

const FamilyLayout* layout_of(Family f) {
  for (const auto& l : families)
    if (l.family == f) return &l;
  return nullptr;
}

std::string map_name(const char* base, const FamilyLayout& l) { return std::string(base) + l.suffix; }
std::string queue_chain(std::uint16_t n) { return "to-queue-" + std::to_string(n); }
std::optional<std::uint16_t> parse_queue_chain(std::string_view c) {
  constexpr std::string_view p = "to-queue-";
  if (!c.starts_with(p)) return std::nullopt;
  c.remove_prefix(p.size());
  unsigned v = 0;
  if (c.empty() || c.size() > 5) return std::nullopt;
  for (char ch : c) {
    if (ch < '0' || ch > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(ch - '0');
  }
  if (v > 0xffff) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

// Every base chain this backend may create: the names install_hooks() replaces and hook_state()
// counts.
struct BaseChain {
  const char* name;
  const char* type;
  std::uint32_t hook;
  std::int32_t priority;
};
constexpr BaseChain chain_steer_forward{"steer-forward", "filter", NF_INET_FORWARD, -150};
constexpr BaseChain chain_steer_input{"steer-input", "filter", NF_INET_LOCAL_IN, -150};
constexpr BaseChain chain_steer_output{"steer-output", "filter", NF_INET_LOCAL_OUT, -150};
// The openings chains run at filter - 10, before the admin's filter chains (priority 0): the
// daemon's verdict on a data SYN sets queue.accept_mark there, and the admin's chains accept by it.
constexpr BaseChain chain_open_forward{"openings-forward", "filter", NF_INET_FORWARD, -10};
constexpr BaseChain chain_open_input{"openings-input", "filter", NF_INET_LOCAL_IN, -10};
constexpr BaseChain chain_open_output{"openings-output", "filter", NF_INET_LOCAL_OUT, -10};
// The nat chains run at dstnat - 10 and srcnat - 10, before the admin's nat chains (iptables-nft's
// ip nat PREROUTING/POSTROUTING are at dstnat/srcnat): the first nat chain that binds a connection
// wins, and between equal priorities the chain registered last runs first, so at equal priority an
// admin's `iptables-nft-restore` of its nat table (which recreates the table) would put its
// MASQUERADE before the exact-tuple SNAT of an opening (issue 5: the dialled address).
constexpr BaseChain chain_dnat{"dnat-prerouting", "nat", NF_INET_PRE_ROUTING, -110};
constexpr BaseChain chain_snat{"snat-postrouting", "nat", NF_INET_POST_ROUTING, 90};
constexpr const BaseChain* all_base_chains[] = {&chain_steer_forward, &chain_steer_input, &chain_steer_output,
                                                &chain_open_forward,  &chain_open_input,  &chain_open_output,
                                                &chain_dnat,          &chain_snat};
bool is_own_base_chain(std::string_view n) {
  return std::any_of(std::begin(all_base_chains), std::end(all_base_chains),
                     [&](const BaseChain* c) { return n == c->name; });
}

// ---- keys ----

using Key = NftBackend::Key;

Key make_key(const FamilyLayout& l, const Address& src, const Endpoint& dst) {
  Key k;
  k.family = l.family;
  k.len = static_cast<std::uint8_t>(l.key_len());
  std::memcpy(k.bytes.data(), src.bytes.data(), l.addr_len);
  std::memcpy(k.bytes.data() + l.addr_len, dst.addr.bytes.data(), l.addr_len);
  const std::uint16_t port = htons(dst.port);
  std::memcpy(k.bytes.data() + 2 * l.addr_len, &port, 2);
  return k;
}

// A pairs4/pairs6 key: the data SYN's source and destination addresses.
Key make_pair_key(const FamilyLayout& l, const Address& src, const Address& dst) {
  Key k;
  k.family = l.family;
  k.len = static_cast<std::uint8_t>(l.pair_len());
  std::memcpy(k.bytes.data(), src.bytes.data(), l.addr_len);
  std::memcpy(k.bytes.data() + l.addr_len, dst.bytes.data(), l.addr_len);
  return k;
}

struct KeyFields {
  Address src;
  Endpoint dst;
};
KeyFields split_key(const FamilyLayout& l, const std::uint8_t* b) {
  KeyFields f;
  f.src.family = f.dst.addr.family = l.family;
  std::memcpy(f.src.bytes.data(), b, l.addr_len);
  std::memcpy(f.dst.addr.bytes.data(), b + l.addr_len, l.addr_len);
  std::uint16_t port;
  std::memcpy(&port, b + 2 * l.addr_len, 2);
  f.dst.port = ntohs(port);
  return f;
}

// ---- libnftnl objects ----

template <class T, void (*Free)(const T*)>
struct Owned {
  T* p;
  explicit Owned(T* x) : p(x) {}
  Owned(Owned&& o) noexcept : p(std::exchange(o.p, nullptr)) {}
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  ~Owned() {
    if (p) Free(p);
  }
  T* get() const { return p; }
};
using RuleObj = Owned<nftnl_rule, nftnl_rule_free>;
using SetObj = Owned<nftnl_set, nftnl_set_free>;
using ChainObj = Owned<nftnl_chain, nftnl_chain_free>;
using TableObj = Owned<nftnl_table, nftnl_table_free>;

struct Udata {
  nftnl_udata_buf* b = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
  explicit Udata(const char* comment) { nftnl_udata_put_strz(b, NFTNL_UDATA_SET_ELEM_COMMENT, comment); }
  ~Udata() { nftnl_udata_buf_free(b); }
  Udata(const Udata&) = delete;
  Udata& operator=(const Udata&) = delete;
  const void* data() const { return nftnl_udata_buf_data(b); }
  std::uint32_t len() const { return nftnl_udata_buf_len(b); }
};
// NFTNL_UDATA_RULE_COMMENT and NFTNL_UDATA_SET_ELEM_COMMENT are both type 0.
static_assert(NFTNL_UDATA_RULE_COMMENT == 0 && NFTNL_UDATA_SET_ELEM_COMMENT == 0);

std::string comment_of(const void* data, std::uint32_t len) {
  if (!data || len == 0) return {};
  std::string out;
  nftnl_udata_parse(
      data, len,
      [](const nftnl_udata* a, void* d) -> int {
        if (nftnl_udata_type(a) == 0 && nftnl_udata_len(a) > 0) {
          const char* s = static_cast<const char*>(nftnl_udata_get(a));
          static_cast<std::string*>(d)->assign(s, strnlen(s, nftnl_udata_len(a)));
        }
        return MNL_CB_OK;
      },
      &out);
  return out;
}

void add(nftnl_rule* r, nftnl_expr* e) { nftnl_rule_add_expr(r, e); }

nftnl_expr* meta(std::uint32_t key, std::uint32_t dreg) {
  nftnl_expr* e = nftnl_expr_alloc("meta");
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
  return e;
}
nftnl_expr* cmp(std::uint32_t sreg, std::uint32_t op, const void* data, std::uint32_t len) {
  nftnl_expr* e = nftnl_expr_alloc("cmp");
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, sreg);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
  nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
  return e;
}
nftnl_expr* cmp_u8(std::uint32_t sreg, std::uint32_t op, std::uint8_t v) { return cmp(sreg, op, &v, 1); }
nftnl_expr* ct(std::uint32_t key, std::optional<std::uint8_t> dir, std::uint32_t dreg) {
  nftnl_expr* e = nftnl_expr_alloc("ct");
  nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
  if (dir) nftnl_expr_set_u8(e, NFTNL_EXPR_CT_DIR, *dir);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, dreg);
  return e;
}
nftnl_expr* bitwise(std::uint32_t reg, const void* mask, const void* xor_, std::uint32_t len) {
  nftnl_expr* e = nftnl_expr_alloc("bitwise");
  nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, reg);
  nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, reg);
  nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, len);
  nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, mask, len);
  nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, xor_, len);
  return e;
}
nftnl_expr* payload(std::uint32_t base, std::uint32_t offset, std::uint32_t len, std::uint32_t dreg) {
  nftnl_expr* e = nftnl_expr_alloc("payload");
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
  return e;
}
nftnl_expr* lookup(const std::string& set, std::uint32_t sreg, std::optional<std::uint32_t> dreg) {
  nftnl_expr* e = nftnl_expr_alloc("lookup");
  nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set.c_str());
  nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg);
  if (dreg) nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, *dreg);
  return e;
}
nftnl_expr* counter() { return nftnl_expr_alloc("counter"); }
// reg = data (a register value), or the verdict register = verdict.
nftnl_expr* immediate(std::uint32_t reg, const void* data, std::uint32_t len) {
  nftnl_expr* e = nftnl_expr_alloc("immediate");
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, reg);
  nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
  return e;
}
nftnl_expr* immediate_verdict(std::uint32_t verdict) {
  nftnl_expr* e = nftnl_expr_alloc("immediate");
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, verdict);
  return e;
}

// The verdict that hands a packet to NFQUEUE N: the nft queue expression, or the xt target
// NFQUEUE revision 3 through the compat layer (what iptables-nft -j NFQUEUE writes).
// total > 1: queues num .. num + total - 1, picked by the kernel's hash of the address pair.
nftnl_expr* queue_verdict(NftSteering how, std::uint16_t num, bool bypass, std::uint16_t total = 1) {
  if (how == NftSteering::queue) {
    nftnl_expr* e = nftnl_expr_alloc("queue");
    nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_NUM, num);
    nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_TOTAL, total);
    nftnl_expr_set_u16(e, NFTNL_EXPR_QUEUE_FLAGS, bypass ? NFT_QUEUE_FLAG_BYPASS : 0);
    return e;
  }
  nftnl_expr* e = nftnl_expr_alloc("target");
  nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE");
  nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, 3);
  // XT_ALIGN(sizeof(xt_NFQ_info_v3)) bytes, as iptables-nft sends them; libnftnl keeps a copy.
  std::array<std::uint8_t, (sizeof(xt_NFQ_info_v3) + 7) & ~std::size_t{7}> info{};
  xt_NFQ_info_v3 q{};
  q.queuenum = num;
  q.queues_total = total;
  q.flags = bypass ? NFQ_FLAG_BYPASS : 0;
  std::memcpy(info.data(), &q, sizeof q);
  void* copy = std::malloc(info.size());
  std::memcpy(copy, info.data(), info.size());
  nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, copy, static_cast<std::uint32_t>(info.size()));  // takes ownership
  return e;
}

void set_comment(nftnl_rule* r, const char* text) {
  nftnl_udata_buf* b = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
  nftnl_udata_put_strz(b, NFTNL_UDATA_RULE_COMMENT, text);
  nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(b), nftnl_udata_buf_len(b));
  nftnl_udata_buf_free(b);
}

RuleObj new_rule(const std::string& chain) {
  RuleObj r(nftnl_rule_alloc());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, nft_table_name);
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain.c_str());
  nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, family_inet);
  return r;
}

// meta l4proto tcp tcp flags & (fin|syn|rst|ack) == syn meta nfproto F
void syn_prefix(nftnl_rule* r, const FamilyLayout& l) {
  add(r, meta(NFT_META_L4PROTO, NFT_REG_1));
  add(r, cmp_u8(NFT_REG_1, NFT_CMP_EQ, IPPROTO_TCP));
  add(r, payload(NFT_PAYLOAD_TRANSPORT_HEADER, 13, 1, NFT_REG_1));
  const std::uint8_t mask = 0x01 | 0x02 | 0x04 | 0x10, zero = 0;  // FIN SYN RST ACK
  add(r, bitwise(NFT_REG_1, &mask, &zero, 1));
  add(r, cmp_u8(NFT_REG_1, NFT_CMP_EQ, 0x02));
  add(r, meta(NFT_META_NFPROTO, NFT_REG_1));
  add(r, cmp_u8(NFT_REG_1, NFT_CMP_EQ, l.nfproto));
}
// F saddr . F daddr [. tcp dport] -> registers 32_00.., ready for a lookup
void addr_key(nftnl_rule* r, const FamilyLayout& l, bool port) {
  const std::uint32_t step = l.addr_len / 4;
  add(r, payload(NFT_PAYLOAD_NETWORK_HEADER, l.saddr_off, l.addr_len, NFT_REG32_00));
  add(r, payload(NFT_PAYLOAD_NETWORK_HEADER, l.daddr_off, l.addr_len, NFT_REG32_00 + step));
  if (port) add(r, payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_00 + 2 * step));
}
void syn_key_prefix(nftnl_rule* r, const FamilyLayout& l) {
  syn_prefix(r, l);
  addr_key(r, l, true);
}

// ... vmap @openings4 queue num N: an element's verdict `accept` is final; `continue` goes on to the
// rule's queue verdict (the daemon's queue, HookSpec::queue_num). Elements never jump or goto for
// that queue: a vmap element with a jump or goto makes the kernel validate the whole table at
// commit, walking every element of the map (measured: 330 us per batch at 10 000 openings).
// With several queues (HookSpec::queues_total) the rule balances as the steering does: the data SYN
// shows the address pair of its control connection (DNAT done, SNAT not yet), so the same hash
// sends it to the thread that holds the opening.
RuleObj openings_rule(const BaseChain& c, const FamilyLayout& l, const HookSpec& spec, NftSteering how) {
  RuleObj r = new_rule(c.name);
  syn_key_prefix(r.get(), l);
  add(r.get(), lookup(map_name("openings", l), NFT_REG32_00, NFT_REG_VERDICT));
  add(r.get(), queue_verdict(how, spec.queue_num, false, spec.queues_total));
  set_comment(r.get(), hook_comment_text);
  return r;
}

// ... @ranges4 meta mark set meta mark | M accept: a range opening admits every SYN it matches
// (no daemon verdict), so the rule itself sets queue.accept_mark for the admin's chains.
RuleObj ranges_rule(const BaseChain& c, const FamilyLayout& l, std::uint32_t accept_mark) {
  RuleObj r = new_rule(c.name);
  syn_key_prefix(r.get(), l);
  add(r.get(), lookup(map_name("ranges", l), NFT_REG32_00, std::nullopt));
  if (accept_mark != 0) {
    const std::uint32_t keep = ~accept_mark;
    add(r.get(), meta(NFT_META_MARK, NFT_REG_1));
    add(r.get(), bitwise(NFT_REG_1, &keep, &accept_mark, 4));
    nftnl_expr* e = nftnl_expr_alloc("meta");
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
    add(r.get(), e);
  }
  add(r.get(), counter());
  add(r.get(), immediate_verdict(NF_ACCEPT));
  set_comment(r.get(), hook_comment_text);
  return r;
}

// ... [ct original proto-dst != P]... ip saddr . ip daddr @pairs4 queue num N (NftOptions::pairs):
// a data SYN between two addresses that have an opening between them goes to the daemon, which
// keeps the openings themselves (their ports) and admits the one each names. The control
// connections' own SYNs are steered already and stay out (one `!=` per control port).
RuleObj pairs_rule(const BaseChain& c, const FamilyLayout& l, const HookSpec& spec, NftSteering how) {
  RuleObj r = new_rule(c.name);
  syn_prefix(r.get(), l);
  for (std::uint16_t port : spec.control_ports) {
    const std::uint16_t p = htons(port);
    add(r.get(), ct(NFT_CT_PROTO_DST, ct_dir_original, NFT_REG_1));
    add(r.get(), cmp(NFT_REG_1, NFT_CMP_NEQ, &p, 2));
  }
  addr_key(r.get(), l, false);
  add(r.get(), lookup(map_name("pairs", l), NFT_REG32_00, std::nullopt));
  add(r.get(), queue_verdict(how, spec.queue_num, false, spec.queues_total));
  set_comment(r.get(), hook_comment_text);
  return r;
}

// dnat ip to ip saddr . ip daddr . tcp dport map @rangednat4: the inside address, the port kept.
RuleObj range_dnat_rule(const FamilyLayout& l) {
  RuleObj r = new_rule(chain_dnat.name);
  syn_key_prefix(r.get(), l);
  add(r.get(), lookup(map_name("rangednat", l), NFT_REG32_00, NFT_REG_1));
  nftnl_expr* e = nftnl_expr_alloc("nat");
  nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
  nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, l.nfproto);
  nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
  add(r.get(), e);
  set_comment(r.get(), hook_comment_text);
  return r;
}

RuleObj nat_rule(bool dnat, const FamilyLayout& l) {
  RuleObj r = new_rule(dnat ? chain_dnat.name : chain_snat.name);
  syn_key_prefix(r.get(), l);
  add(r.get(), lookup(map_name(dnat ? "dnat" : "snat", l), NFT_REG32_00, NFT_REG_1));
  nftnl_expr* e = nftnl_expr_alloc("nat");
  nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, dnat ? NFT_NAT_DNAT : NFT_NAT_SNAT);
  nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, l.nfproto);
  nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
  if (dnat) nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG32_00 + l.addr_len / 4);
  add(r.get(), e);
  set_comment(r.get(), hook_comment_text);
  return r;
}

// meta l4proto tcp [ct direction D] ct original proto-dst P [ct mark & M != M] counter <queue N [bypass]>
RuleObj steer_rule(const BaseChain& c, const HookSpec& spec, std::uint16_t port, CtDir dir, NftSteering how) {
  RuleObj r = new_rule(c.name);
  add(r.get(), meta(NFT_META_L4PROTO, NFT_REG_1));
  add(r.get(), cmp_u8(NFT_REG_1, NFT_CMP_EQ, IPPROTO_TCP));
  if (dir != CtDir::any) {
    add(r.get(), ct(NFT_CT_DIRECTION, std::nullopt, NFT_REG_1));
    add(r.get(), cmp_u8(NFT_REG_1, NFT_CMP_EQ, dir == CtDir::original ? ct_dir_original : ct_dir_reply));
  }
  add(r.get(), ct(NFT_CT_PROTO_DST, ct_dir_original, NFT_REG_1));
  const std::uint16_t p = htons(port);
  add(r.get(), cmp(NFT_REG_1, NFT_CMP_EQ, &p, 2));
  if (spec.exempt_mark != 0) {
    const std::uint32_t m = spec.exempt_mark, zero = 0;
    add(r.get(), ct(NFT_CT_MARK, std::nullopt, NFT_REG_1));
    add(r.get(), bitwise(NFT_REG_1, &m, &zero, 4));
    add(r.get(), cmp(NFT_REG_1, NFT_CMP_NEQ, &m, 4));
  }
  add(r.get(), counter());
  add(r.get(), queue_verdict(how, spec.queue_num, spec.queue_bypass, spec.queues_total));
  set_comment(r.get(), hook_comment_text);
  return r;
}

// ct label & 127 != 0 ct label set 127: changes nothing (bit 127 is set only where it already is),
// but its `ct label set` makes the kernel give new conntrack entries their label extension.
constexpr const char* chain_labels = "ha-labels";
RuleObj labels_rule() {
  RuleObj r = new_rule(chain_labels);
  std::array<std::uint8_t, 16> bit127{}, zero{};
  bit127[15] = 0x80;  // the kernel's label bitmap: unsigned longs, little-endian here
  add(r.get(), ct(NFT_CT_LABELS, std::nullopt, NFT_REG_1));
  add(r.get(), bitwise(NFT_REG_1, bit127.data(), zero.data(), 16));
  add(r.get(), cmp(NFT_REG_1, NFT_CMP_NEQ, zero.data(), 16));
  add(r.get(), immediate(NFT_REG_1, bit127.data(), 16));
  nftnl_expr* set = nftnl_expr_alloc("ct");
  nftnl_expr_set_u32(set, NFTNL_EXPR_CT_KEY, NFT_CT_LABELS);
  nftnl_expr_set_u32(set, NFTNL_EXPR_CT_SREG, NFT_REG_1);
  add(r.get(), set);
  set_comment(r.get(), hook_comment_text);
  return r;
}

RuleObj queue_chain_rule(std::uint16_t n, NftSteering how) {
  RuleObj r = new_rule(queue_chain(n));
  add(r.get(), queue_verdict(how, n, false));
  return r;
}

// ---- the iptables-nft hook rules ----
//
// An accept in table inet ftpwall is not final against the drop policy of the admin's
// iptables-nft chains (table ip filter), so install_hooks() also inserts, as rule 1 of each of
// them at the daemon's hooks, the rule iptables-nft itself writes for
//   -A FORWARD -m mark --mark M/M -m comment --comment "ftpwall hook" -j ACCEPT
// expression for expression (iptables 1.8.9): `-m mark` natively (meta load mark, bitwise & M,
// cmp eq M), `-m comment` as the xt comment match (revision 0, struct xt_comment_info) through the
// compat layer, a counter, an immediate accept. So iptables-nft -L / -S / -C / -D and
// iptables-nft-save read it as their own, and iptables-nft-restore of that output writes it back
// unchanged. M is HookSpec::accept_mark: the daemon's verdict sets it on every data SYN an opening
// admits, in the openings chain (priority filter - 10), before the admin's chains (filter).
// The same for ip6tables-nft (`table ip6 filter`): IPv6 data SYNs meet its chains.
struct IptChain {
  const char* name;
  std::uint32_t hook;
  std::uint16_t family = NFPROTO_IPV4;  // table ip filter (iptables-nft) or ip6 filter (ip6tables-nft)
};
constexpr const char* ipt_table = "filter";
constexpr std::uint16_t ipt_families[] = {NFPROTO_IPV4, NFPROTO_IPV6};
const char* ipt_family_name(std::uint16_t f) { return f == NFPROTO_IPV6 ? "ip6" : "ip"; }
std::vector<IptChain> ipt_chains(Role role) {
  std::vector<IptChain> out;
  for (std::uint16_t f : ipt_families) {
    if (role == Role::gateway) {
      out.push_back({"FORWARD", NF_INET_FORWARD, f});
    } else {
      out.push_back({"INPUT", NF_INET_LOCAL_IN, f});
      out.push_back({"OUTPUT", NF_INET_LOCAL_OUT, f});
    }
  }
  return out;
}
bool is_ipt_hook_chain(std::string_view n) { return n == "FORWARD" || n == "INPUT" || n == "OUTPUT"; }

RuleObj ipt_hook_rule(const IptChain& c, std::uint32_t mark) {
  RuleObj r(nftnl_rule_alloc());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, ipt_table);
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, c.name);
  nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, c.family);
  const std::uint32_t zero = 0;
  add(r.get(), meta(NFT_META_MARK, NFT_REG_1));
  add(r.get(), bitwise(NFT_REG_1, &mark, &zero, 4));
  add(r.get(), cmp(NFT_REG_1, NFT_CMP_EQ, &mark, 4));
  nftnl_expr* m = nftnl_expr_alloc("match");
  nftnl_expr_set_str(m, NFTNL_EXPR_MT_NAME, "comment");
  nftnl_expr_set_u32(m, NFTNL_EXPR_MT_REV, 0);
  auto* info = static_cast<xt_comment_info*>(std::calloc(1, sizeof(xt_comment_info)));  // 256 bytes, XT_ALIGNed
  std::strncpy(info->comment, hook_comment_text, sizeof info->comment - 1);
  nftnl_expr_set(m, NFTNL_EXPR_MT_INFO, info, sizeof(xt_comment_info));  // takes ownership
  add(r.get(), m);
  add(r.get(), counter());
  add(r.get(), immediate_verdict(NF_ACCEPT));
  return r;
}

// ---- the batch ----

struct Message {
  std::uint32_t seq;
  std::string what;
};

class Batch {
 public:
  // `buf`: the socket's, reused by every batch (a fresh 64 KiB buffer per batch cost 30 us in brk
  // and page faults, more than the kernel's commit).
  Batch(std::uint32_t& seq, std::vector<char>& buf) : seq_(seq), buf_(buf) {
    reserve();
    nlmsghdr* h = nftnl_batch_begin(buf_.data(), seq_++);
    len_ = NLMSG_ALIGN(h->nlmsg_len);
  }
  // A message of type `type` (NFT_MSG_*, family inet unless `family` says otherwise: the
  // iptables-nft hook rules are in family ip) whose payload `build` writes.
  template <class F>
  void add(std::uint16_t type, std::uint16_t flags, std::string what, F&& build, std::uint16_t family = family_inet) {
    reserve();
    const std::uint32_t seq = seq_++;
    nlmsghdr* h = nftnl_nlmsg_build_hdr(buf_.data() + len_, type, family, flags, seq);
    build(h);
    last_ = len_;
    len_ += NLMSG_ALIGN(h->nlmsg_len);
    msgs_.push_back({seq, std::move(what)});
  }
  bool empty() const { return msgs_.empty(); }
  std::size_t messages() const { return msgs_.size(); }
  const std::string* what(std::uint32_t seq) const {
    for (const auto& m : msgs_)
      if (m.seq == seq) return &m.what;
    return nullptr;
  }
  // The finished batch: the last message asks for an acknowledgement, then END (unless a dry run,
  // which the kernel validates and aborts).
  std::pair<const char*, std::size_t> finish(bool commit) {
    auto* last = reinterpret_cast<nlmsghdr*>(buf_.data() + last_);
    last->nlmsg_flags |= NLM_F_ACK;
    if (commit) {
      reserve();
      nlmsghdr* h = nftnl_batch_end(buf_.data() + len_, seq_++);
      len_ += NLMSG_ALIGN(h->nlmsg_len);
    }
    return {buf_.data(), len_};
  }
  std::uint32_t ack_seq() const { return msgs_.back().seq; }

 private:
  void reserve() {
    constexpr std::size_t headroom = 64 * 1024;  // more than one message ever needs
    if (buf_.size() < len_ + headroom) buf_.resize(std::max(buf_.size() * 2, len_ + headroom));
  }
  std::uint32_t& seq_;
  std::vector<char>& buf_;
  std::size_t len_ = 0;
  std::size_t last_ = 0;
  std::vector<Message> msgs_;
};

// Elements of one map, in messages of at most this many (the elements' nest length is a u16).
constexpr std::size_t elems_per_message = 128;

struct Elem {
  explicit Elem(const Key& k) : key(k) {}
  Elem(const Key& k, const OpeningComment& c, std::uint64_t ms) : key(k), comment(c), timeout_ms(ms) {}
  Key key;
  std::optional<Key> key_end;  // an interval's last key (range sets)
  std::optional<OpeningComment> comment;
  std::uint64_t timeout_ms = 0;
  // openings: a verdict; dnat/snat: data
  std::optional<std::uint32_t> verdict;
  std::string chain;  // with NFT_GOTO
  std::optional<Key> data;
};

// `base` + the family's suffix names the map; nothing is built for an empty `elems` (issue 13: most
// of a batch's twelve groups are empty, and their names were made all the same).
void add_elems(Batch& b, std::uint16_t type, std::uint16_t flags, const char* base, const FamilyLayout& l,
               const std::vector<Elem>& elems, std::string_view what) {
  if (elems.empty()) return;
  const std::string set = map_name(base, l);
  for (std::size_t i = 0; i < elems.size(); i += elems_per_message) {
    b.add(type, flags, std::string(what) + " " + set, [&](nlmsghdr* h) {
      SetObj s(nftnl_set_alloc());
      nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, nft_table_name);
      nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set.c_str());
      const std::size_t end = std::min(elems.size(), i + elems_per_message);
      for (std::size_t k = i; k < end; ++k) {
        const Elem& el = elems[k];
        nftnl_set_elem* e = nftnl_set_elem_alloc();
        nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, el.key.bytes.data(), el.key.len);
        if (el.key_end) nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY_END, el.key_end->bytes.data(), el.key_end->len);
        if (el.timeout_ms) nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, el.timeout_ms);
        if (el.comment) {
          Udata u(el.comment->c_str());
          nftnl_set_elem_set(e, NFTNL_SET_ELEM_USERDATA, u.data(), u.len());
        }
        if (el.verdict) {
          nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, *el.verdict);
          if (!el.chain.empty()) nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, el.chain.c_str());
        }
        if (el.data) nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, el.data->bytes.data(), el.data->len);
        nftnl_set_elem_add(s.get(), e);
      }
      nftnl_set_elems_nlmsg_build_payload(h, s.get());
    });
  }
}

void add_rule(Batch& b, const RuleObj& r, const std::string& what) {
  b.add(NFT_MSG_NEWRULE, NLM_F_APPEND | NLM_F_CREATE, what,
        [&](nlmsghdr* h) { nftnl_rule_nlmsg_build_payload(h, r.get()); });
}

void add_table(Batch& b) {
  b.add(NFT_MSG_NEWTABLE, NLM_F_CREATE, "table inet ftpwall", [](nlmsghdr* h) {
    TableObj t(nftnl_table_alloc());
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, nft_table_name);
    nftnl_table_nlmsg_build_payload(h, t.get());
  });
}

void add_chain(Batch& b, const std::string& name, const BaseChain* base) {
  b.add(NFT_MSG_NEWCHAIN, NLM_F_CREATE, "chain " + name, [&](nlmsghdr* h) {
    ChainObj c(nftnl_chain_alloc());
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, nft_table_name);
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, name.c_str());
    if (base) {
      nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, base->hook);
      nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, base->priority);
      nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, base->type);
      nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
    }
    nftnl_chain_nlmsg_build_payload(h, c.get());
  });
}

// Flush (DELRULE without a handle) and delete one of our chains.
void delete_chain(Batch& b, const std::string& name) {
  b.add(NFT_MSG_DELRULE, 0, "flush chain " + name, [&](nlmsghdr* h) {
    RuleObj r = new_rule(name);
    nftnl_rule_nlmsg_build_payload(h, r.get());
  });
  b.add(NFT_MSG_DELCHAIN, 0, "delete chain " + name, [&](nlmsghdr* h) {
    ChainObj c(nftnl_chain_alloc());
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, nft_table_name);
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, name.c_str());
    nftnl_chain_nlmsg_build_payload(h, c.get());
  });
}

// One set or map of the table, keyed by source . destination . port. `data`: a map's data type
// and length (NFT_DATA_VERDICT: a verdict map, no length); none: a set. `interval`: the keys are
// intervals, for range openings (per-client FTPS, issue 14): nft's pipapo set, flags interval and
// concat with the fields' lengths.
struct SetData {
  std::uint32_t type;
  std::uint32_t len;
};
void add_set(Batch& b, const std::string& name, const FamilyLayout& l, std::optional<SetData> data, bool interval,
             std::uint32_t id, bool pair = false) {
  b.add(NFT_MSG_NEWSET, NLM_F_CREATE, (data ? "map " : "set ") + name, [&](nlmsghdr* h) {
    SetObj s(nftnl_set_alloc());
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, nft_table_name);
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name.c_str());
    nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, family_inet);
    nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS,
                      NFT_SET_TIMEOUT | (data ? NFT_SET_MAP : 0) | (interval ? NFT_SET_INTERVAL | NFT_SET_CONCAT : 0));
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, pair ? l.pair_type() : l.key_type());
    nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, pair ? l.pair_len() : l.key_len());
    if (interval) {
      const std::uint8_t fields[] = {static_cast<std::uint8_t>(l.addr_len), static_cast<std::uint8_t>(l.addr_len), 2};
      nftnl_set_set_data(s.get(), NFTNL_SET_DESC_CONCAT, fields, sizeof fields);
    }
    if (data) {
      nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, data->type);
      if (data->type != NFT_DATA_VERDICT) nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_LEN, data->len);
    }
    nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
    nftnl_set_nlmsg_build_payload(h, s.get());
  });
}

// openings4 (a verdict map), ranges4 (a set of intervals: the rule accepts and sets the accept
// mark), pairs4 (address pairs whose data SYNs go to the daemon), and with NAT dnat4, snat4 and rangednat4 (intervals to the inside address, ports kept).
void add_maps(Batch& b, const FamilyLayout& l, bool nat) {
  // Set ids are unique within a batch: 1-3 and 7-8 for IPv4, 4-6 and 9 for IPv6.
  const std::uint32_t base = l.family == Family::v4 ? 0 : 3;
  add_set(b, map_name("openings", l), l, SetData{NFT_DATA_VERDICT, 0}, false, base + 1);
  add_set(b, map_name("ranges", l), l, std::nullopt, true, l.family == Family::v4 ? 7 : 9);
  add_set(b, map_name("pairs", l), l, std::nullopt, false, l.family == Family::v4 ? 10 : 11, /*pair=*/true);
  if (!nat || !has_nat(l)) return;
  add_set(b, map_name("dnat", l), l, SetData{(l.addr_type << type_bits) | type_inet_service, l.addr_len + 4}, false, base + 2);
  add_set(b, map_name("snat", l), l, SetData{l.addr_type, l.addr_len}, false, base + 3);
  add_set(b, map_name("rangednat", l), l, SetData{l.addr_type, l.addr_len}, true, 8);
}

}  // namespace

// ---- the socket ----

class NftBackend::Socket {
 public:
  static Result<std::unique_ptr<Socket>> open() {
    mnl_socket* s = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
    if (!s) return make_error(std::string("nftables: socket: ") + std::strerror(errno));
    auto sock = std::unique_ptr<Socket>(new Socket(s));
    if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0)
      return make_error(std::string("nftables: bind: ") + std::strerror(errno));
    const int one = 1;
    int cap = one;
    mnl_socket_setsockopt(s, NETLINK_CAP_ACK, &cap, sizeof cap);  // errors without the request's copy
    // Big batches (a reinstall of every opening) in one sendmsg; dumps of 10 000 elements.
    const int snd = 32 << 20, rcv = 8 << 20;
    const int fd = mnl_socket_get_fd(s);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof snd) < 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    sock->portid_ = mnl_socket_get_portid(s);
    sock->seq_ = static_cast<std::uint32_t>(std::chrono::system_clock::now().time_since_epoch().count());
    return sock;
  }
  ~Socket() { mnl_socket_close(s_); }
  std::uint32_t& seq() { return seq_; }
  std::vector<char>& buffer() { return batch_buf_; }

  struct Failure {
    int err = 0;
    std::string message;
  };

  // Sends the batch; nullopt when the kernel took every message (a dry run: validated them).
  std::optional<Failure> send(Batch& b, bool commit) {
    if (b.empty()) return std::nullopt;
    auto [data, len] = b.finish(commit);
    if (mnl_socket_sendto(s_, data, len) < 0) return Failure{errno, std::string("send: ") + std::strerror(errno)};
    const std::uint32_t ack = b.ack_seq();
    std::optional<Failure> first;
    bool acked = false;
    const int fd = mnl_socket_get_fd(s_);
    for (;;) {
      ssize_t n = ::recv(fd, rbuf_.data(), rbuf_.size(), MSG_DONTWAIT);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (acked || first) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 2000) <= 0) return Failure{ETIMEDOUT, "no acknowledgement from nf_tables"};
        continue;
      }
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == ENOBUFS) {  // acknowledgements lost: there were errors (only they are unasked)
          if (!first) first = Failure{ENOBUFS, "errors lost (ENOBUFS)"};
          continue;
        }
        return Failure{errno, std::string("receive: ") + std::strerror(errno)};
      }
      auto* h = reinterpret_cast<const nlmsghdr*>(rbuf_.data());
      int left = static_cast<int>(n);
      for (; mnl_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left)) {
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(h));
        if (e->error == 0) {
          if (h->nlmsg_seq == ack) acked = true;
          continue;
        }
        if (!first) {
          const std::string* what = b.what(h->nlmsg_seq);
          first = Failure{-e->error, (what ? *what : std::string("batch")) + ": " + std::strerror(-e->error)};
        }
      }
    }
    return first;
  }

  // One dump request; `each` gets every message. 0 or an errno (ENOENT: no such table/set).
  template <class Build, class Each>
  int dump(std::uint16_t type, std::uint16_t family, Build&& build, Each&& each) {
    std::vector<char> req(8192);
    const std::uint32_t seq = seq_++;
    nlmsghdr* h = nftnl_nlmsg_build_hdr(req.data(), type, family, NLM_F_DUMP, seq);
    build(h);
    if (mnl_socket_sendto(s_, h, h->nlmsg_len) < 0) return errno;
    auto cb = [](const nlmsghdr* m, void* d) -> int {
      (*static_cast<std::remove_reference_t<Each>*>(d))(m);
      return MNL_CB_OK;
    };
    for (;;) {
      const ssize_t n = mnl_socket_recvfrom(s_, rbuf_.data(), rbuf_.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      const int r = mnl_cb_run(rbuf_.data(), static_cast<std::size_t>(n), seq, portid_, cb, &each);
      if (r == MNL_CB_ERROR) return errno ? errno : EIO;
      if (r == MNL_CB_STOP) return 0;
    }
  }

 private:
  explicit Socket(mnl_socket* s) : s_(s), rbuf_(1 << 20) {}
  mnl_socket* s_;
  std::uint32_t portid_ = 0;
  std::uint32_t seq_ = 1;
  std::vector<char> rbuf_;
  std::vector<char> batch_buf_;
};

namespace {

using Socket = NftBackend::Socket;

Error nl_error(const std::string& what, const Socket::Failure& f) {
  std::string hint;
  if (f.err == ENOENT) hint = " (table inet ftpwall or one of its maps/chains is missing: hooks not installed, or removed)";
  if (f.err == EPERM) hint = " (needs CAP_NET_ADMIN)";
  return make_error("nftables: " + what + ": " + f.message + hint);
}

// ---- reading the table back ----

struct ChainInfo {
  std::string name;
  bool base = false;
  std::uint32_t hook = 0;
  std::uint16_t family = NFPROTO_INET;
};

// The chains of one table (`base_only`: its base chains); none when the table does not exist.
int list_table_chains(Socket& nl, std::uint16_t family, const char* table, bool base_only, std::vector<ChainInfo>& out) {
  out.clear();
  const int err = nl.dump(
      NFT_MSG_GETCHAIN, family,
      [table](nlmsghdr* h) {
        ChainObj c(nftnl_chain_alloc());
        nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table);
        nftnl_chain_nlmsg_build_payload(h, c.get());
      },
      [&](const nlmsghdr* m) {
        ChainObj c(nftnl_chain_alloc());
        if (nftnl_chain_nlmsg_parse(m, c.get()) < 0) return;
        const char* t = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TABLE);
        if (!t || std::strcmp(t, table) != 0) return;
        ChainInfo i;
        i.family = family;
        i.name = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME);
        i.base = nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HOOKNUM);
        if (base_only && !i.base) return;
        if (i.base) i.hook = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_HOOKNUM);
        out.push_back(std::move(i));
      });
  return err == ENOENT ? 0 : err;  // no table: no chains
}

// The chains of table inet ftpwall.
int list_chains(Socket& nl, std::vector<ChainInfo>& out) { return list_table_chains(nl, family_inet, nft_table_name, false, out); }

int list_sets(Socket& nl, std::set<std::string>& out) {
  out.clear();
  const int err = nl.dump(
      NFT_MSG_GETSET, family_inet,
      [](nlmsghdr* h) {
        SetObj s(nftnl_set_alloc());
        nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, nft_table_name);
        nftnl_set_nlmsg_build_payload(h, s.get());
      },
      [&](const nlmsghdr* m) {
        SetObj s(nftnl_set_alloc());
        if (nftnl_set_nlmsg_parse(m, s.get()) < 0) return;
        const char* t = nftnl_set_get_str(s.get(), NFTNL_SET_TABLE);
        if (t && std::strcmp(t, nft_table_name) == 0) out.insert(nftnl_set_get_str(s.get(), NFTNL_SET_NAME));
      });
  return err == ENOENT ? 0 : err;
}

struct ElemInfo {
  Key key;
  std::optional<Key> key_end;
  std::string comment;
  std::optional<std::uint64_t> expiration_ms;
  std::uint32_t verdict = 0;
  std::string chain;
  std::vector<std::uint8_t> data;
};

// The elements of one map (ENOENT: the map does not exist, reported as such).
int list_elems(Socket& nl, const std::string& set, const FamilyLayout& l, std::vector<ElemInfo>& out, bool pair = false) {
  out.clear();
  return nl.dump(
      NFT_MSG_GETSETELEM, family_inet,
      [&](nlmsghdr* h) {
        SetObj s(nftnl_set_alloc());
        nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, nft_table_name);
        nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set.c_str());
        nftnl_set_elems_nlmsg_build_payload(h, s.get());
      },
      [&](const nlmsghdr* m) {
        SetObj s(nftnl_set_alloc());
        if (nftnl_set_elems_nlmsg_parse(m, s.get()) < 0) return;
        struct Ctx {
          const FamilyLayout& l;
          std::vector<ElemInfo>& out;
          std::uint32_t key_len;
        } ctx{l, out, pair ? l.pair_len() : l.key_len()};
        nftnl_set_elem_foreach(
            s.get(),
            [](nftnl_set_elem* e, void* d) -> int {
              auto& c = *static_cast<Ctx*>(d);
              std::uint32_t len = 0;
              const void* k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
              if (!k || len != c.key_len) return 0;
              ElemInfo i;
              i.key.family = c.l.family;
              i.key.len = static_cast<std::uint8_t>(len);
              std::memcpy(i.key.bytes.data(), k, len);
              std::uint32_t elen = 0;
              const void* ke = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_KEY_END) ? nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY_END, &elen)
                                                                                  : nullptr;
              if (ke && elen == len) {
                Key end = i.key;
                std::memcpy(end.bytes.data(), ke, elen);
                i.key_end = end;
              }
              std::uint32_t ulen = 0;
              const void* u = nftnl_set_elem_get(e, NFTNL_SET_ELEM_USERDATA, &ulen);
              i.comment = comment_of(u, ulen);
              if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_EXPIRATION))
                i.expiration_ms = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_EXPIRATION);
              if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT))
                i.verdict = nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT);
              if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN)) i.chain = nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN);
              std::uint32_t dlen = 0;
              const void* dd = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &dlen);
              if (dd && nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_DATA) && !nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT))
                i.data.assign(static_cast<const std::uint8_t*>(dd), static_cast<const std::uint8_t*>(dd) + dlen);
              c.out.push_back(std::move(i));
              return 0;
            },
            &ctx);
      });
}

// One rule read back, as far as hook_state() cares.
struct RuleInfo {
  std::string family, table, chain;
  std::uint64_t handle = 0;
  std::string comment;     // rule userdata (nft's comment)
  std::string xt_comment;  // an xt comment match through the compat layer (iptables-nft's -m comment)
  std::optional<std::uint32_t> mark_bits;  // meta mark & M == M (iptables-nft's -m mark --mark M/M)
  bool accepts = false;    // ends in an immediate accept
  bool queues = false;  // a queue expression or the NFQUEUE target
  SteeringRule steer;
};

// Every rule of every table (the admin's too: their queue rules are foreign steering).
int list_rules(Socket& nl, std::vector<RuleInfo>& out) {
  out.clear();
  const int err = nl.dump(NFT_MSG_GETRULE, NFPROTO_UNSPEC, [](nlmsghdr*) {}, [&](const nlmsghdr* m) {
    RuleObj r(nftnl_rule_alloc());
    if (nftnl_rule_nlmsg_parse(m, r.get()) < 0) return;
    RuleInfo i;
    i.family = netlink::nft_family_name(nftnl_rule_get_u32(r.get(), NFTNL_RULE_FAMILY));
    i.table = nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE);
    i.chain = nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN);
    i.handle = nftnl_rule_get_u64(r.get(), NFTNL_RULE_HANDLE);
    std::uint32_t ulen = 0;
    const void* u = nftnl_rule_get_data(r.get(), NFTNL_RULE_USERDATA, &ulen);
    if (nftnl_rule_is_set(r.get(), NFTNL_RULE_USERDATA)) i.comment = comment_of(u, ulen);
    // What the registers were last loaded from, for the cmp that follows.
    enum class Load { none, dport, sport, ct_orig_dport, ct_direction, mark, mark_masked } load = Load::none;
    std::uint32_t mark_mask = 0;
    struct Ctx {
      RuleInfo& i;
      Load& load;
      std::uint32_t& mark_mask;
    } ctx{i, load, mark_mask};
    nftnl_expr_foreach(
        r.get(),
        [](nftnl_expr* e, void* d) -> int {
          auto& c = *static_cast<Ctx*>(d);
          const std::string n = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
          if (n == "payload") {
            const auto base = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_BASE);
            const auto off = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET);
            const auto len = nftnl_expr_get_u32(e, NFTNL_EXPR_PAYLOAD_LEN);
            c.load = base == NFT_PAYLOAD_TRANSPORT_HEADER && len == 2 && (off == 0 || off == 2)
                         ? (off == 2 ? Load::dport : Load::sport)
                         : Load::none;
          } else if (n == "meta") {
            c.load = nftnl_expr_get_u32(e, NFTNL_EXPR_META_KEY) == NFT_META_MARK ? Load::mark : Load::none;
          } else if (n == "bitwise") {
            std::uint32_t len = 0, xlen = 0;
            const void* mk = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_MASK, &len);
            const void* x = nftnl_expr_get(e, NFTNL_EXPR_BITWISE_XOR, &xlen);
            std::uint32_t xv = 1;
            if (x && xlen == 4) std::memcpy(&xv, x, 4);
            if (c.load == Load::mark && mk && len == 4 && xv == 0) {
              std::memcpy(&c.mark_mask, mk, 4);
              c.load = Load::mark_masked;
            } else {
              c.load = Load::none;
            }
          } else if (n == "match") {
            const char* mt = nftnl_expr_get_str(e, NFTNL_EXPR_MT_NAME);
            std::uint32_t len = 0;
            const auto* info = static_cast<const char*>(nftnl_expr_get(e, NFTNL_EXPR_MT_INFO, &len));
            if (mt && std::strcmp(mt, "comment") == 0 && info) c.i.xt_comment.assign(info, strnlen(info, len));
          } else if (n == "immediate") {
            c.i.accepts = nftnl_expr_is_set(e, NFTNL_EXPR_IMM_VERDICT) &&
                          static_cast<int>(nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT)) == NF_ACCEPT;
          } else if (n == "ct") {
            const auto key = nftnl_expr_get_u32(e, NFTNL_EXPR_CT_KEY);
            const bool orig = !nftnl_expr_is_set(e, NFTNL_EXPR_CT_DIR) || nftnl_expr_get_u8(e, NFTNL_EXPR_CT_DIR) == ct_dir_original;
            c.load = key == NFT_CT_PROTO_DST && orig ? Load::ct_orig_dport
                     : key == NFT_CT_DIRECTION       ? Load::ct_direction
                                                     : Load::none;
          } else if (n == "cmp") {
            std::uint32_t len = 0;
            const auto* v = static_cast<const std::uint8_t*>(nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &len));
            const bool eq = nftnl_expr_get_u32(e, NFTNL_EXPR_CMP_OP) == NFT_CMP_EQ;
            if (v && eq && c.load == Load::mark_masked && len == 4) {
              std::uint32_t want;
              std::memcpy(&want, v, 4);
              if (want == c.mark_mask && want != 0) c.i.mark_bits = want;
            } else if (v && eq) {
              if ((c.load == Load::dport || c.load == Load::sport || c.load == Load::ct_orig_dport) && len == 2) {
                c.i.steer.port = static_cast<std::uint16_t>(v[0] << 8 | v[1]);
                c.i.steer.match = c.load == Load::dport   ? SteerMatch::dport
                                  : c.load == Load::sport ? SteerMatch::sport
                                                          : SteerMatch::ct_original_dport;
              } else if (c.load == Load::ct_direction && len == 1) {
                c.i.steer.dir = v[0] == ct_dir_original ? CtDir::original : CtDir::reply;
              }
            }
            c.load = Load::none;
          } else if (n == "queue") {
            c.i.queues = true;
            c.i.steer.queue_num = nftnl_expr_get_u16(e, NFTNL_EXPR_QUEUE_NUM);
            c.i.steer.queues_total = nftnl_expr_is_set(e, NFTNL_EXPR_QUEUE_TOTAL) ? nftnl_expr_get_u16(e, NFTNL_EXPR_QUEUE_TOTAL) : 1;
            c.i.steer.bypass = nftnl_expr_is_set(e, NFTNL_EXPR_QUEUE_FLAGS) &&
                               (nftnl_expr_get_u16(e, NFTNL_EXPR_QUEUE_FLAGS) & NFT_QUEUE_FLAG_BYPASS);
          } else if (n == "target") {
            const char* tg = nftnl_expr_get_str(e, NFTNL_EXPR_TG_NAME);
            if (tg && std::strcmp(tg, "NFQUEUE") == 0) {
              c.i.queues = true;
              const auto rev = nftnl_expr_get_u32(e, NFTNL_EXPR_TG_REV);
              std::uint32_t len = 0;
              const auto* info = static_cast<const std::uint8_t*>(nftnl_expr_get(e, NFTNL_EXPR_TG_INFO, &len));
              std::uint16_t f[3] = {0, 1, 0};
              if (info) std::memcpy(f, info, std::min<std::size_t>(len, sizeof f));
              c.i.steer.queue_num = f[0];
              if (rev >= 1 && len >= 4) c.i.steer.queues_total = f[1];
              if (rev >= 2 && len >= 6) c.i.steer.bypass = f[2] & NFQ_FLAG_BYPASS;
            }
          }
          return 0;
        },
        &ctx);
    out.push_back(std::move(i));
  });
  return err == ENOENT ? 0 : err;
}

// The base chains of iptables-nft's `table ip filter` and ip6tables-nft's `table ip6 filter`
// (none of a table that does not exist).
int list_ipt_chains(Socket& nl, std::vector<ChainInfo>& out) {
  out.clear();
  for (std::uint16_t f : ipt_families) {
    std::vector<ChainInfo> part;
    if (int e = list_table_chains(nl, f, ipt_table, true, part); e) return e;
    out.insert(out.end(), part.begin(), part.end());
  }
  return 0;
}

// One of our accept_mark rules in an iptables-nft chain (install_hooks() writes them; an
// iptables-nft-restore of a file saved while the daemon ran writes the same rule back).
bool is_ipt_hook_rule(const RuleInfo& r) {
  return (r.family == "ip" || r.family == "ip6") && r.table == ipt_table && is_ipt_hook_chain(r.chain) &&
         (r.xt_comment == hook_comment_text || r.comment == hook_comment_text);
}

// The iptables-nft chains of `role` that exist (base chains at the right hook).
std::vector<IptChain> existing_ipt_chains(const std::vector<ChainInfo>& chains, Role role) {
  std::vector<IptChain> out;
  for (const IptChain& c : ipt_chains(role))
    if (std::any_of(chains.begin(), chains.end(),
                    [&](const ChainInfo& i) { return i.family == c.family && i.name == c.name && i.hook == c.hook; }))
      out.push_back(c);
  return out;
}

void delete_ipt_rule(Batch& b, const RuleInfo& r) {
  const std::uint16_t family = r.family == "ip6" ? NFPROTO_IPV6 : NFPROTO_IPV4;
  b.add(
      NFT_MSG_DELRULE, 0, "delete the ftpwall hook rule of " + r.family + " filter " + r.chain,
      [&](nlmsghdr* h) {
        RuleObj x(nftnl_rule_alloc());
        nftnl_rule_set_str(x.get(), NFTNL_RULE_TABLE, ipt_table);
        nftnl_rule_set_str(x.get(), NFTNL_RULE_CHAIN, r.chain.c_str());
        nftnl_rule_set_u32(x.get(), NFTNL_RULE_FAMILY, family);
        nftnl_rule_set_u64(x.get(), NFTNL_RULE_HANDLE, r.handle);
        nftnl_rule_nlmsg_build_payload(h, x.get());
      },
      family);
}

// NEWRULE without NLM_F_APPEND or a position: the rule goes first in the chain.
void insert_ipt_rule(Batch& b, const IptChain& c, std::uint32_t mark) {
  RuleObj r = ipt_hook_rule(c, mark);
  b.add(
      NFT_MSG_NEWRULE, NLM_F_CREATE, std::string("ftpwall hook rule 1 of ") + ipt_family_name(c.family) + " filter " + c.name,
      [&](nlmsghdr* h) { nftnl_rule_nlmsg_build_payload(h, r.get()); }, c.family);
}

std::uint64_t timeout_ms(Clock::time_point expires) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(expires - Clock::now()).count();
  return ms > 0 ? static_cast<std::uint64_t>(ms) : 0;
}

// NftOptions::fail_batch: one message the kernel refuses (a map that does not exist), last.
void maybe_fail(Batch& b, const NftOptions& o) {
  if (!o.fail_batch || !o.fail_batch()) return;
  Key k;
  k.len = static_cast<std::uint8_t>(layout_v4.key_len());
  add_elems(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE, "no-such-map", layout_v4, {Elem(k)}, "NftOptions::fail_batch (a test): add to");
}

}  // namespace

bool installs_iptables_nft_rule(const HookSpec& spec, std::string_view family, std::string_view table, std::string_view chain) {
  if (spec.accept_mark == 0 || (family != "ip" && family != "ip6") || table != ipt_table) return false;
  const auto chains = ipt_chains(spec.role);
  return std::any_of(chains.begin(), chains.end(),
                     [&](const IptChain& c) { return chain == c.name && family == ipt_family_name(c.family); });
}

NftBackend::NftBackend(NftOptions options) : options_(std::move(options)) {
  if (options_.steering == NftOptions::Steering::queue) steering_ = NftSteering::queue;
  if (options_.steering == NftOptions::Steering::xt_nfqueue) steering_ = NftSteering::xt_nfqueue;
}
NftBackend::~NftBackend() = default;

namespace {
Result<void> ensure_socket(std::unique_ptr<Socket>& nl) {
  if (nl) return {};
  auto s = Socket::open();
  if (!s) return s.error();
  nl = std::move(*s);
  return {};
}
}  // namespace

#define FTPWALL_NL_OR_RETURN()                          \
  do {                                                  \
    if (auto ok = ensure_socket(nl_); !ok) return ok.error(); \
  } while (0)

// A dry run: the kernel validates a rule with a `queue` expression in a table that is never
// committed. ENOENT: no such expression type (this kernel's nf_tables lacks nft_queue).
Result<NftSteering> NftBackend::detect_steering() {
  if (steering_ != NftSteering::unknown) return steering_;
  FTPWALL_NL_OR_RETURN();
  Batch b(nl_->seq(), nl_->buffer());
  add_table(b);
  add_chain(b, "steering-probe", nullptr);
  RuleObj r = new_rule("steering-probe");
  add(r.get(), queue_verdict(NftSteering::queue, 0, true));
  add_rule(b, r, "rule with a queue expression");
  auto f = nl_->send(b, /*commit=*/false);
  if (!f) {
    steering_ = NftSteering::queue;
  } else if (f->err == ENOENT) {
    steering_ = NftSteering::xt_nfqueue;
  } else {
    return nl_error("detecting the queue expression", *f);
  }
  return steering_;
}

// Over the key's bytes (equal keys have equal bytes: make_key zeroes what len does not cover).
std::size_t NftBackend::KeyHash::operator()(const Key& k) const noexcept {
  const std::size_t n = std::min<std::size_t>(k.len, k.bytes.size());
  return static_cast<std::size_t>(Fnv1a().add(static_cast<std::uint8_t>(k.family)).add(std::span(k.bytes).first(n)).value());
}

void NftBackend::clear_known() {
  known_.clear();
  accept_owner_.clear();
  dnat_owner_.clear();
  snat_owner_.clear();
  pairs_.clear();
}

void NftBackend::forget(const OpeningId& id) {
  auto it = known_.find(id);
  if (it == known_.end()) return;
  if (it->second.range) {  // range elements are the session's own: no key owner to keep
    known_spares_.erase(known_, it);
    return;
  }
  auto drop_owner = [this](std::unordered_map<Key, OpeningId, KeyHash>& m, const Key& k) {
    if (auto o = m.find(k); o != m.end()) owner_spares_.erase(m, o);
  };
  if (it->second.accept.len) drop_owner(accept_owner_, it->second.accept);
  if (it->second.dnat) drop_owner(dnat_owner_, *it->second.dnat);
  if (it->second.snat) drop_owner(snat_owner_, *it->second.snat);
  known_spares_.erase(known_, it);
}

void NftBackend::remember(const OpeningId& id, const Parts& p) {
  forget(id);
  known_spares_.put(known_, id, p);
  if (p.range) return;
  if (p.accept.len) owner_spares_.put(accept_owner_, p.accept, id);
  if (p.dnat) owner_spares_.put(dnat_owner_, *p.dnat, id);
  if (p.snat) owner_spares_.put(snat_owner_, *p.snat, id);
}

// NftOptions::pairs: our own openings that the kernel holds only as their pair, set aside while
// the maps are read again (a reading forgets everything else).
std::vector<std::pair<OpeningId, NftBackend::Parts>> NftBackend::take_steered() {
  std::vector<std::pair<OpeningId, Parts>> v;
  for (const auto& [id, p] : known_)
    if (p.pair && p.opening) v.emplace_back(id, p);
  return v;
}

// The pairs of family l in the kernel: those of the set-aside openings (still alive, their pair
// still there) remembered again with their counts; pairs that serve none of them are foreign.
// The restored openings go to `found` when given.
Result<void> NftBackend::restore_steered(Family family, const std::vector<std::pair<OpeningId, Parts>>& steered,
                                         std::map<OpeningId, Opening>* found) {
  const FamilyLayout& l = *layout_of(family);
  std::vector<ElemInfo> pairs;
  if (int e = list_elems(*nl_, map_name("pairs", l), l, pairs, /*pair=*/true); e && e != ENOENT)
    return make_error("nftables: list " + map_name("pairs", l) + ": " + std::strerror(e));
  const auto now = Clock::now();
  for (const auto& x : pairs) {
    Pair& p = pairs_[x.key];
    p.foreign = true;
    p.expires = x.expiration_ms ? now + std::chrono::milliseconds(*x.expiration_ms) : now + std::chrono::hours(24 * 365);
  }
  for (const auto& [id, parts] : steered) {
    if (parts.pair->family != l.family || parts.opening->expires <= now) continue;
    auto it = pairs_.find(*parts.pair);
    if (it == pairs_.end()) continue;  // its pair is gone: the opening no longer takes effect
    it->second.foreign = false;
    ++it->second.openings;
    remember(id, parts);
    if (found) (*found)[id] = *parts.opening;
  }
  return {};
}

// Every opening in the kernel, from the maps (list_own() without the sweep).
Result<void> NftBackend::refresh_known() {
  FTPWALL_NL_OR_RETURN();
  const auto steered = take_steered();
  clear_known();
  for (const auto& l : families) {
    if (auto r = restore_steered(l.family, steered, nullptr); !r) return r;
    std::vector<ElemInfo> acc, dn, sn;
    if (int e = list_elems(*nl_, map_name("openings", l), l, acc); e && e != ENOENT)
      return make_error("nftables: list " + map_name("openings", l) + ": " + std::strerror(e));
    if (int e = list_elems(*nl_, map_name("dnat", l), l, dn); e && e != ENOENT)
      return make_error("nftables: list " + map_name("dnat", l) + ": " + std::strerror(e));
    if (int e = list_elems(*nl_, map_name("snat", l), l, sn); e && e != ENOENT)
      return make_error("nftables: list " + map_name("snat", l) + ": " + std::strerror(e));
    for (const auto& a : acc)
      if (auto id = parse_opening_comment(a.comment)) remember(*id, Parts{a.key, {}, {}, false, {}, {}, {}, {}});
    // NAT parts: recorded under their id even without an accept part, so a close removes them.
    auto attach = [&](const std::vector<ElemInfo>& v, bool dnat) {
      for (const auto& x : v) {
        auto id = parse_opening_comment(x.comment);
        if (!id) continue;
        Parts p = known_.count(*id) ? known_[*id] : Parts{};
        (dnat ? p.dnat : p.snat) = x.key;
        if (!known_.count(*id)) p.accept.len = 0;  // no accept part
        remember(*id, p);
      }
    };
    attach(dn, true);
    attach(sn, false);
    if (auto r = read_ranges(l.family, nullptr, nullptr); !r) return r;
  }
  known_complete_ = true;
  return {};
}

// The range openings of family l in the kernel (ranges4/6 and rangednat4): remembered, and as
// Openings into `found` when given. A rangednat element without its accept part goes to `orphans`.
Result<void> NftBackend::read_ranges(Family family, std::map<OpeningId, Opening>* found, std::vector<Change>* orphans) {
  const FamilyLayout& l = *layout_of(family);
  std::vector<ElemInfo> acc, dn;
  if (int e = list_elems(*nl_, map_name("ranges", l), l, acc); e && e != ENOENT)
    return make_error("nftables: list " + map_name("ranges", l) + ": " + std::strerror(e));
  if (has_nat(l))
    if (int e = list_elems(*nl_, map_name("rangednat", l), l, dn); e && e != ENOENT)
      return make_error("nftables: list " + map_name("rangednat", l) + ": " + std::strerror(e));
  const auto now = Clock::now();
  for (const auto& a : acc) {
    auto id = parse_opening_comment(a.comment);
    if (!id || !id->range || !a.key_end) continue;
    Parts p;
    p.range = true;
    p.accept = a.key;
    p.accept_end = *a.key_end;
    remember(*id, p);
    if (!found) continue;
    const KeyFields f = split_key(l, a.key.bytes.data());
    Opening& o = (*found)[*id];
    o.id = *id;
    o.family = l.family;
    o.source = f.src;
    o.destination = f.dst;
    o.port_last = split_key(l, a.key_end->bytes.data()).dst.port;
    o.expires = a.expiration_ms ? now + std::chrono::milliseconds(*a.expiration_ms) : now + std::chrono::hours(24 * 365);
  }
  for (const auto& x : dn) {
    auto id = parse_opening_comment(x.comment);
    if (!id || !id->range || !x.key_end) continue;
    Parts p = known_.count(*id) ? known_[*id] : Parts{};
    const bool orphan = !known_.count(*id);
    p.range = true;
    p.dnat = x.key;
    p.dnat_end = *x.key_end;
    remember(*id, p);
    if (!found) continue;
    auto it = found->find(*id);
    if (orphan || it == found->end()) {
      if (orphans) orphans->push_back(CloseStep{*id});
      continue;
    }
    const KeyFields f = split_key(l, x.key.bytes.data());
    Endpoint to;
    to.addr.family = l.family;
    if (x.data.size() >= l.addr_len) std::memcpy(to.addr.bytes.data(), x.data.data(), l.addr_len);
    to.port = f.dst.port;
    it->second.destination = f.dst;
    it->second.dnat_to = to;
  }
  return {};
}

namespace {
bool opening_supported(const Opening& o, std::string& why) {
  const FamilyLayout* l = layout_of(o.family);
  if (!l) {
    why = "nftables backend: an opening of an unknown address family";
    return false;
  }
  if (!has_nat(*l) && (o.dnat_to || o.snat_to)) {
    why = "nftables backend: no NAT for IPv6 openings (NAT66 is not supported)";
    return false;
  }
  auto same = [&](Family f) { return f == o.family; };
  if (!same(o.source.family) || !same(o.destination.addr.family) || (o.dnat_to && !same(o.dnat_to->addr.family)) ||
      (o.snat_to && !same(o.snat_to->family))) {
    why = "nftables backend: an opening mixes address families";
    return false;
  }
  return true;
}
}  // namespace

Result<void> NftBackend::apply(std::span<const Change> changes) {
  for (const auto& c : changes) {
    std::string why;
    if (const auto* o = std::get_if<OpenStep>(&c); o && !opening_supported(o->opening, why)) return make_error(why);
  }
  const BatchEffect effect = net_effect(changes);
  if (effect.touched.empty()) return {};
  FTPWALL_NL_OR_RETURN();
  const auto t0 = std::chrono::steady_clock::now();
  auto finish = [&](Result<void> r) {
    stats_.last_apply_us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
    stats_.max_apply_us = std::max(stats_.max_apply_us, stats_.last_apply_us);
    return r;
  };
  // A process that has not read the maps yet cannot know the keys of the ids it closes.
  if (!known_complete_) {
    for (const auto& id : effect.touched) {
      if (known_.count(id)) continue;
      if (auto r = refresh_known(); !r) return finish(r);
      break;
    }
  }

  if (!openings_queue_known_ &&
      std::any_of(effect.installs.begin(), effect.installs.end(), [](const Opening& o) { return o.queue.has_value(); }))
    if (auto r = learn_openings_queue(); !r) return finish(r);

  // The ids whose elements go: the touched ones, and every live one whose key a new opening takes.
  struct Install {
    Opening o;
    Parts parts;
  };
  std::vector<Install> installs;
  for (const auto& o : effect.installs) {
    const std::uint64_t ms = timeout_ms(o.expires);
    if (ms == 0) continue;  // already expired: nothing to admit (an element timeout of 0 would never expire)
    const FamilyLayout& l = *layout_of(o.family);
    Parts p;
    p.accept = make_key(l, o.source, o.accepted_destination());
    if (o.is_range()) {
      p.range = true;
      p.accept_end = make_key(l, o.source, {o.accepted_destination().addr, o.port_last});
      if (o.dnat_to) {
        p.dnat = make_key(l, o.source, o.destination);
        p.dnat_end = make_key(l, o.source, {o.destination.addr, o.port_last});
      }
      installs.push_back({o, p});
      continue;
    }
    if (o.dnat_to) p.dnat = make_key(l, o.source, o.destination);
    if (o.snat_to) p.snat = make_key(l, o.source, o.accepted_destination());
    if (options_.pairs && o.queue && openings_queue_ == o.queue) {
      p.pair = make_pair_key(l, o.source, o.accepted_destination().addr);
      p.opening = std::make_shared<const Opening>(o);
    }
    installs.push_back({o, p});
  }
  // Two installs of one batch with the same key: the later one wins. An install goes when any later
  // one (of the same kind, range or not) shares its accept, DNAT or SNAT key: every key of the batch
  // sorted once, the last install of each run of equal keys kept (a pairwise comparison was
  // quadratic in the batch: issue 13).
  if (installs.size() > 1) {
    struct KeyRef {
      std::uint8_t kind;  // 0 accept, 1 dnat, 2 snat; with the range flag in bit 2
      const Key* key;
      std::size_t index;
    };
    static thread_local std::vector<KeyRef> refs;
    static thread_local std::vector<char> superseded;
    refs.clear();
    superseded.assign(installs.size(), 0);
    for (std::size_t i = 0; i < installs.size(); ++i) {
      const Parts& p = installs[i].parts;
      const std::uint8_t r = p.range ? 4 : 0;
      refs.push_back({r, &p.accept, i});
      if (p.dnat) refs.push_back({static_cast<std::uint8_t>(r | 1), &*p.dnat, i});
      if (p.snat) refs.push_back({static_cast<std::uint8_t>(r | 2), &*p.snat, i});
    }
    std::sort(refs.begin(), refs.end(), [](const KeyRef& a, const KeyRef& b) {
      if (a.kind != b.kind) return a.kind < b.kind;
      if (const auto c = *a.key <=> *b.key; c != 0) return c < 0;
      return a.index < b.index;
    });
    for (std::size_t k = 0; k + 1 < refs.size(); ++k)
      if (refs[k].kind == refs[k + 1].kind && *refs[k].key == *refs[k + 1].key) superseded[refs[k].index] = 1;
    std::size_t out = 0;
    for (std::size_t i = 0; i < installs.size(); ++i)
      if (!superseded[i]) {
        if (out != i) installs[out] = std::move(installs[i]);
        ++out;
      }
    installs.erase(installs.begin() + static_cast<std::ptrdiff_t>(out), installs.end());
  }
  std::vector<OpeningId> doomed(effect.touched.begin(), effect.touched.end());
  for (const auto& in : installs) {
    if (in.parts.range) continue;
    if (auto it = accept_owner_.find(in.parts.accept); it != accept_owner_.end()) doomed.push_back(it->second);
    if (in.parts.dnat)
      if (auto it = dnat_owner_.find(*in.parts.dnat); it != dnat_owner_.end()) doomed.push_back(it->second);
    if (in.parts.snat)
      if (auto it = snat_owner_.find(*in.parts.snat); it != snat_owner_.end()) doomed.push_back(it->second);
  }
  std::sort(doomed.begin(), doomed.end());
  doomed.erase(std::unique(doomed.begin(), doomed.end()), doomed.end());

  // The pairs whose count changes (NftOptions::pairs): one element each, added when its first
  // opening comes (or when a new opening outlives it: renewed at twice that opening's lifetime),
  // destroyed when its last one goes. An opening replaced by one between the same addresses in the
  // same batch costs the kernel nothing.
  struct PairPlan {
    Key key;
    int delta = 0;
    Clock::time_point need{};  // the latest expiry among its new openings
    std::uint32_t next = 0;
    bool destroy = false, add = false;
    Clock::time_point expires{};
    bool again = false;  // an opening closed and opened in this batch: put back (the kernel check's reinstall)
  };
  std::vector<PairPlan> plans;
  for (const auto& id : doomed)
    if (auto it = known_.find(id); it != known_.end() && it->second.pair) plans.push_back({*it->second.pair, -1});
  for (const auto& in : installs)
    if (in.parts.pair)
      plans.push_back({*in.parts.pair, +1, in.o.expires, 0, false, false, {},
                       known_.count(in.o.id) > 0 && std::binary_search(doomed.begin(), doomed.end(), in.o.id)});
  if (!plans.empty()) {
    std::sort(plans.begin(), plans.end(), [](const PairPlan& a, const PairPlan& b) { return a.key < b.key; });
    std::size_t out = 0;
    for (std::size_t i = 0; i < plans.size(); ++i) {
      if (out && plans[out - 1].key == plans[i].key) {
        plans[out - 1].delta += plans[i].delta;
        plans[out - 1].need = std::max(plans[out - 1].need, plans[i].need);
        plans[out - 1].again = plans[out - 1].again || plans[i].again;
      } else {
        plans[out++] = plans[i];
      }
    }
    plans.resize(out);
    const auto now = Clock::now();
    for (auto& pl : plans) {
      const auto it = pairs_.find(pl.key);
      const std::int64_t cur = it == pairs_.end() ? 0 : it->second.openings;
      pl.next = static_cast<std::uint32_t>(std::max<std::int64_t>(0, cur + pl.delta));
      if (pl.next == 0) {
        pl.destroy = cur > 0;
        continue;
      }
      const bool renew = cur == 0 || it->second.foreign || it->second.stale || pl.again || pl.need > it->second.expires;
      if (!renew) continue;
      pl.destroy = it != pairs_.end();
      pl.add = true;
      pl.expires = pl.need + (pl.need > now ? pl.need - now : Clock::duration::zero());
    }
  }

  // Queue chains the new elements jump to.
  std::set<std::uint16_t> new_queue_chains;
  for (const auto& in : installs) {
    if (!in.o.queue || queue_chains_.count(*in.o.queue) || openings_queue_ == in.o.queue) continue;
    if (!chains_known_) {
      std::vector<ChainInfo> chains;
      if (int e = list_chains(*nl_, chains); e) return finish(make_error(std::string("nftables: list chains: ") + std::strerror(e)));
      for (const auto& c : chains)
        if (auto n = parse_queue_chain(c.name)) queue_chains_.insert(*n);
      chains_known_ = true;
      if (queue_chains_.count(*in.o.queue)) continue;
    }
    new_queue_chains.insert(*in.o.queue);
  }
  if (!new_queue_chains.empty()) {
    if (auto s = detect_steering(); !s) return finish(s.error());
  }

  // One group of element messages per family (openings4/dnat4/snat4, openings6).
  struct Group {
    std::vector<Elem> del_acc, del_dn, del_sn, add_acc, add_dn, add_sn;
    std::vector<Elem> del_racc, del_rdn, add_racc, add_rdn;  // range openings
    std::vector<Elem> del_pair, add_pair;                    // NftOptions::pairs
    // Empty for the next batch, the capacity kept (not after a large batch, a takeover: its memory).
    void clear() {
      for (auto* v : {&del_acc, &del_dn, &del_sn, &add_acc, &add_dn, &add_sn, &del_racc, &del_rdn, &add_racc,
                      &add_rdn, &del_pair, &add_pair}) {
        if (v->capacity() > 256) *v = {};
        v->clear();
      }
    }
  };
  auto interval = [](const Key& k, const Key& end) {
    Elem e(k);
    e.key_end = end;
    return e;
  };
  // `defensive`: every new key is destroyed before it is added, whoever holds it. Needed only when
  // the kernel may hold keys this process does not know of (its maps not read yet, or another
  // process's or queue's element under one of our keys): otherwise a destroy of a key that is not
  // there costs the kernel as much as a real removal (issue 13: half the element messages of a
  // replaced opening behind DNAT). A batch that meets such a key fails whole with EEXIST
  // (NLM_F_EXCL) and is sent again, defensive.
  std::optional<Socket::Failure> f;
  bool empty = false;
  auto attempt = [&](bool defensive) {
    // By family, IPv4 first (one slot each: no map for two keys). The groups' vectors are kept
    // from one batch to the next (one thread applies; cleared here): an announcement's elements
    // cost no allocation of their own.
    static thread_local std::array<Group, 2> groups;
    std::array<Group*, 2> group_of{};
    auto group = [&](Family fam) -> Group& {
      const std::size_t i = fam == Family::v4 ? 0 : 1;
      if (!group_of[i]) {
        groups[i].clear();
        group_of[i] = &groups[i];
      }
      return *group_of[i];
    };
    for (const auto& id : doomed) {
      auto it = known_.find(id);
      if (it == known_.end()) continue;
      Group& g = group(it->second.accept.len ? it->second.accept.family
                       : it->second.dnat        ? it->second.dnat->family
                       : it->second.snat        ? it->second.snat->family
                                                : Family::v4);
      if (it->second.range) {
        if (it->second.accept.len) g.del_racc.push_back(interval(it->second.accept, it->second.accept_end));
        if (it->second.dnat && it->second.dnat_end) g.del_rdn.push_back(interval(*it->second.dnat, *it->second.dnat_end));
        continue;
      }
      if (it->second.accept.len && !it->second.pair) g.del_acc.push_back(Elem(it->second.accept));
      if (it->second.dnat) g.del_dn.push_back(Elem(*it->second.dnat));
      if (it->second.snat) g.del_sn.push_back(Elem(*it->second.snat));
    }
    for (const auto& in : installs) {
      const FamilyLayout& l = *layout_of(in.o.family);
      Group& g = group(l.family);
      if (in.parts.pair && !in.parts.dnat && !in.parts.snat) {
        // No element of its own: its pair steers the SYN (plans above); only a key someone else
        // may hold goes.
        if (defensive) g.del_acc.push_back(Elem(in.parts.accept));
        continue;
      }
      const OpeningComment comment = opening_comment(in.o.id);
      const std::uint64_t ms = timeout_ms(in.o.expires);
      if (in.parts.range) {
        // The intervals themselves first, whoever holds them (a reinstall of the same id).
        g.del_racc.push_back(interval(in.parts.accept, in.parts.accept_end));
        if (in.parts.dnat && in.parts.dnat_end) g.del_rdn.push_back(interval(*in.parts.dnat, *in.parts.dnat_end));
        Elem a = interval(in.parts.accept, in.parts.accept_end);
        a.comment = comment;
        a.timeout_ms = ms;
        g.add_racc.push_back(std::move(a));
        if (in.parts.dnat && in.parts.dnat_end) {
          Elem d = interval(*in.parts.dnat, *in.parts.dnat_end);
          d.comment = comment;
          d.timeout_ms = ms;
          Key v;
          v.len = static_cast<std::uint8_t>(l.addr_len);
          std::memcpy(v.bytes.data(), in.o.dnat_to->addr.bytes.data(), l.addr_len);
          d.data = v;
          g.add_rdn.push_back(std::move(d));
        }
        continue;
      }
      // The keys themselves first, whoever holds them in the kernel (an element we do not know of).
      if (defensive) g.del_acc.push_back(Elem(in.parts.accept));
      Elem a{in.parts.accept, comment, ms};
      if (in.parts.pair) {
        // Kept here; its pair steers the SYN (plans above).
      } else if (in.o.queue && openings_queue_ == in.o.queue) {
        a.verdict = static_cast<std::uint32_t>(NFT_CONTINUE);  // on to the rule's queue verdict
      } else if (in.o.queue) {
        a.verdict = static_cast<std::uint32_t>(NFT_GOTO);  // another queue: correct, but validated per batch
        a.chain = queue_chain(*in.o.queue);
      } else {
        a.verdict = NF_ACCEPT;
      }
      if (!in.parts.pair) g.add_acc.push_back(std::move(a));
      if (in.parts.dnat) {
        if (defensive) g.del_dn.push_back(Elem(*in.parts.dnat));
        Elem d{*in.parts.dnat, comment, ms};
        Key v;
        v.len = static_cast<std::uint8_t>(l.addr_len + 4);
        std::memcpy(v.bytes.data(), in.o.dnat_to->addr.bytes.data(), l.addr_len);
        const std::uint16_t port = htons(in.o.dnat_to->port);
        std::memcpy(v.bytes.data() + l.addr_len, &port, 2);
        d.data = v;
        g.add_dn.push_back(std::move(d));
      }
      if (in.parts.snat) {
        if (defensive) g.del_sn.push_back(Elem(*in.parts.snat));
        Elem s{*in.parts.snat, comment, ms};
        Key v;
        v.len = static_cast<std::uint8_t>(l.addr_len);
        std::memcpy(v.bytes.data(), in.o.snat_to->bytes.data(), l.addr_len);
        s.data = v;
        g.add_sn.push_back(std::move(s));
      }
    }
    for (const auto& pl : plans) {
      Group& g = group(pl.key.family);
      if (pl.destroy || (pl.add && defensive)) g.del_pair.push_back(Elem(pl.key));
      if (pl.add) {
        Elem e(pl.key);
        e.timeout_ms = std::max<std::uint64_t>(1, timeout_ms(pl.expires));
        g.add_pair.push_back(std::move(e));
      }
    }
    auto dedupe = [](std::vector<Elem>& v) {
      std::sort(v.begin(), v.end(), [](const Elem& a, const Elem& b) { return a.key < b.key; });
      v.erase(std::unique(v.begin(), v.end(), [](const Elem& a, const Elem& b) { return a.key == b.key; }), v.end());
  };

  Batch b(nl_->seq(), nl_->buffer());
  for (std::uint16_t n : new_queue_chains) {
    add_chain(b, queue_chain(n), nullptr);
    add_rule(b, queue_chain_rule(n, steering_), "queue rule in " + queue_chain(n));
  }
  for (std::size_t gi = 0; gi < group_of.size(); ++gi) {
    if (!group_of[gi]) continue;
    Group& g = *group_of[gi];
    const FamilyLayout& l = *layout_of(gi == 0 ? Family::v4 : Family::v6);
    dedupe(g.del_acc);
    dedupe(g.del_dn);
    dedupe(g.del_sn);
    // Removals before additions: a key both removed and added is replaced within the transaction.
    add_elems(b, NFT_MSG_DESTROYSETELEM, 0, "dnat", l, g.del_dn, "destroy elements in");
    add_elems(b, NFT_MSG_DESTROYSETELEM, 0, "snat", l, g.del_sn, "destroy elements in");
    add_elems(b, NFT_MSG_DESTROYSETELEM, 0, "openings", l, g.del_acc, "destroy elements in");
    add_elems(b, NFT_MSG_DESTROYSETELEM, 0, "rangednat", l, g.del_rdn, "destroy elements in");
    add_elems(b, NFT_MSG_DESTROYSETELEM, 0, "ranges", l, g.del_racc, "destroy elements in");
    add_elems(b, NFT_MSG_DESTROYSETELEM, 0, "pairs", l, g.del_pair, "destroy elements in");
    add_elems(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL, "pairs", l, g.add_pair, "add elements to");
    add_elems(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL, "ranges", l, g.add_racc, "add elements to");
    add_elems(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL, "rangednat", l, g.add_rdn, "add elements to");
    add_elems(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL, "openings", l, g.add_acc, "add elements to");
    add_elems(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL, "dnat", l, g.add_dn, "add elements to");
    add_elems(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE | NLM_F_EXCL, "snat", l, g.add_sn, "add elements to");
  }
  maybe_fail(b, options_);
  if (b.empty()) {
    empty = true;
    return;
  }
  const auto c0 = std::chrono::steady_clock::now();
  f = nl_->send(b, true);
  stats_.last_commit_us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - c0).count());
  };
  attempt(!known_complete_);
  if (f && f->err == EEXIST && known_complete_) {
    ++stats_.commit_retries;
    f.reset();
    attempt(true);
  }
  if (!empty && f) {
    // Nothing of the batch happened; what we believe about the kernel still holds, except that a
    // missing map (table deleted) makes it stale.
    if (f->err == ENOENT) {
      known_complete_ = false;
      chains_known_ = false;
      queue_chains_.clear();
    }
    return finish(nl_error("apply", *f));
  }
  // An empty batch (an opening replaced by one between the same addresses, no NAT): nothing for
  // the kernel, the bookkeeping all the same.
  if (!empty) ++stats_.commits;
  queue_chains_.insert(new_queue_chains.begin(), new_queue_chains.end());
  for (const auto& id : doomed) forget(id);
  for (const auto& in : installs) remember(in.o.id, in.parts);
  for (const auto& pl : plans) {
    if (pl.next == 0) {
      pairs_.erase(pl.key);
      continue;
    }
    Pair& p = pairs_[pl.key];
    p.openings = pl.next;
    if (pl.add) p = Pair{pl.next, pl.expires, false, false};
  }
  return finish({});
}

// The queue of the openings rules (`vmap @openings4 queue num N`), from the kernel: a process that
// did not install the hooks.
Result<void> NftBackend::learn_openings_queue() {
  FTPWALL_NL_OR_RETURN();
  std::vector<RuleInfo> rules;
  if (int e = list_rules(*nl_, rules); e) return make_error(std::string("nftables: list rules: ") + std::strerror(e));
  openings_queue_.reset();
  for (const auto& r : rules)
    if (r.family == "inet" && r.table == nft_table_name && r.chain.starts_with("openings-") && r.queues)
      openings_queue_ = r.steer.queue_num;
  openings_queue_known_ = true;
  return {};
}

Result<void> NftBackend::close_session(std::uint64_t session) {
  FTPWALL_NL_OR_RETURN();
  if (!known_complete_)
    if (auto r = refresh_known(); !r) return r;
  std::vector<Change> closes;
  for (const auto& [id, p] : known_)
    if (id.session == session) closes.push_back(CloseStep{id});
  if (closes.empty()) return {};
  return apply(closes);
}

Result<void> NftBackend::flush_own() {
  FTPWALL_NL_OR_RETURN();
  std::set<std::string> sets;
  if (int e = list_sets(*nl_, sets); e) return make_error(std::string("nftables: list sets: ") + std::strerror(e));
  Batch b(nl_->seq(), nl_->buffer());
  for (const auto& l : families) {
    for (const char* m : {"dnat", "snat", "openings", "rangednat", "ranges", "pairs"}) {
      const std::string n = map_name(m, l);
      if (!sets.count(n)) continue;
      // NFT_MSG_DELSETELEM without elements flushes the map.
      b.add(NFT_MSG_DELSETELEM, 0, "flush " + n, [&](nlmsghdr* h) {
        SetObj s(nftnl_set_alloc());
        nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, nft_table_name);
        nftnl_set_set_str(s.get(), NFTNL_SET_NAME, n.c_str());
        nftnl_set_elems_nlmsg_build_payload(h, s.get());
      });
    }
  }
  maybe_fail(b, options_);
  if (auto f = nl_->send(b, true)) return nl_error("flush", *f);
  if (!b.empty()) ++stats_.commits;
  clear_known();
  known_complete_ = true;
  return {};
}

Result<std::vector<Opening>> NftBackend::list_own() {
  FTPWALL_NL_OR_RETURN();
  std::map<OpeningId, Opening> found;
  std::vector<Change> orphans;
  const auto steered = take_steered();
  clear_known();
  // One read per map. Batches are atomic, so no read sees half of one; a batch between two reads
  // can make an opening look incomplete for this call only (its NAT part is then attached by the
  // next list, or removed below if its accept part really is gone).
  if (!openings_queue_known_)
    if (auto r = learn_openings_queue(); !r) return r.error();
  for (const auto& l : families) {
    std::vector<ElemInfo> acc, dn, sn;
    for (auto [m, v] : {std::pair{"openings", &acc}, std::pair{"dnat", &dn}, std::pair{"snat", &sn}}) {
      if (int e = list_elems(*nl_, map_name(m, l), l, *v); e && e != ENOENT)
        return make_error("nftables: list " + map_name(m, l) + ": " + std::strerror(e));
    }
    if (auto r = restore_steered(l.family, steered, &found); !r) return r.error();
    const auto now = Clock::now();
    for (const auto& a : acc) {
      auto id = parse_opening_comment(a.comment);
      if (!id) continue;
      const KeyFields f = split_key(l, a.key.bytes.data());
      Opening& o = found[*id];
      o.id = *id;
      o.family = l.family;
      o.source = f.src;
      o.destination = f.dst;
      // An element without a timeout (not ours: someone added it by hand) never expires.
      o.expires = a.expiration_ms ? now + std::chrono::milliseconds(*a.expiration_ms) : now + std::chrono::hours(24 * 365);
      if (static_cast<int>(a.verdict) == NFT_GOTO || static_cast<int>(a.verdict) == NFT_JUMP) o.queue = parse_queue_chain(a.chain);
      if (static_cast<int>(a.verdict) == NFT_CONTINUE) o.queue = openings_queue_;
      remember(*id, Parts{a.key, {}, {}, false, {}, {}, {}, {}});
    }
    for (auto [v, dnat] : {std::pair{&dn, true}, std::pair{&sn, false}}) {
      for (const auto& x : *v) {
        auto id = parse_opening_comment(x.comment);
        if (!id) continue;
        auto it = found.find(*id);
        if (it == found.end()) {  // a NAT part without its accept part: not an opening, removed below
          Parts p = known_.count(*id) ? known_[*id] : Parts{};
          (dnat ? p.dnat : p.snat) = x.key;
          remember(*id, p);
          orphans.push_back(CloseStep{*id});
          continue;
        }
        Parts p = known_[*id];
        (dnat ? p.dnat : p.snat) = x.key;
        remember(*id, p);
        if (dnat && x.data.size() >= l.addr_len + 2) {
          it->second.destination = split_key(l, x.key.bytes.data()).dst;
          Endpoint to;
          to.addr.family = l.family;
          std::memcpy(to.addr.bytes.data(), x.data.data(), l.addr_len);
          std::uint16_t port;
          std::memcpy(&port, x.data.data() + l.addr_len, 2);
          to.port = ntohs(port);
          it->second.dnat_to = to;
        } else if (!dnat && x.data.size() >= l.addr_len) {
          Address a;
          a.family = l.family;
          std::memcpy(a.bytes.data(), x.data.data(), l.addr_len);
          it->second.snat_to = a;
        }
      }
    }
    if (auto r = read_ranges(l.family, &found, &orphans); !r) return r.error();
  }
  known_complete_ = true;
  if (!orphans.empty()) {
    // A failure here is not list_own()'s: the elements expire with their timeout in any case.
    (void)apply(orphans);
  }
  std::vector<Opening> out;
  out.reserve(found.size());
  for (auto& [id, o] : found) out.push_back(std::move(o));
  return out;
}

// One batch: the table, the maps (kept with their elements if they exist), our base chains
// replaced (flushed, deleted, created again with the spec's rules), the queue chain of the spec's
// queue. Steering chains last in the batch; the batch is atomic anyway.
Result<void> NftBackend::install_hooks(const HookSpec& spec) {
  FTPWALL_NL_OR_RETURN();
  auto how = detect_steering();
  if (!how) return how.error();
  std::vector<ChainInfo> chains;
  if (int e = list_chains(*nl_, chains); e) return make_error(std::string("nftables: list chains: ") + std::strerror(e));
  std::set<std::string> sets;
  if (int e = list_sets(*nl_, sets); e) return make_error(std::string("nftables: list sets: ") + std::strerror(e));
  std::vector<RuleInfo> rules;
  if (int e = list_rules(*nl_, rules); e) return make_error(std::string("nftables: list rules: ") + std::strerror(e));
  std::vector<ChainInfo> ipt;
  if (int e = list_ipt_chains(*nl_, ipt); e) return make_error(std::string("nftables: list chains of ip/ip6 filter: ") + std::strerror(e));
  const bool gateway = spec.role == Role::gateway;
  Batch b(nl_->seq(), nl_->buffer());
  add_table(b);
  for (const auto& c : chains)
    if (is_own_base_chain(c.name)) delete_chain(b, c.name);
  for (const auto& l : families) {
    add_maps(b, l, spec.nat);
    if (!spec.nat) {
      for (const char* m : {"dnat", "snat", "rangednat"}) {
        const std::string n = map_name(m, l);
        if (!sets.count(n)) continue;
        b.add(NFT_MSG_DELSET, 0, "delete map " + n, [&](nlmsghdr* h) {
          SetObj s(nftnl_set_alloc());
          nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, nft_table_name);
          nftnl_set_set_str(s.get(), NFTNL_SET_NAME, n.c_str());
          nftnl_set_nlmsg_build_payload(h, s.get());
        });
      }
    }
  }
  // The to-queue-N chains of openings for other queues than the spec's: their rule rewritten (the
  // steering may have changed).
  for (const auto& c : chains) {
    auto n = parse_queue_chain(c.name);
    if (!n) continue;
    b.add(NFT_MSG_DELRULE, 0, "flush chain " + c.name, [&](nlmsghdr* h) {
      RuleObj r = new_rule(c.name);
      nftnl_rule_nlmsg_build_payload(h, r.get());
    });
    add_rule(b, queue_chain_rule(*n, *how), "queue rule in " + c.name);
  }

  if (spec.labels) {
    add_chain(b, chain_labels, nullptr);
    b.add(NFT_MSG_DELRULE, 0, std::string("flush chain ") + chain_labels, [&](nlmsghdr* h) {
      RuleObj r = new_rule(chain_labels);
      nftnl_rule_nlmsg_build_payload(h, r.get());
    });
    add_rule(b, labels_rule(), std::string("rule in ") + chain_labels);
  }

  const std::vector<const BaseChain*> open_chains = gateway ? std::vector<const BaseChain*>{&chain_open_forward}
                                                            : std::vector<const BaseChain*>{&chain_open_input, &chain_open_output};
  for (const BaseChain* c : open_chains) {
    add_chain(b, c->name, c);
    for (const auto& l : families) {
      add_rule(b, openings_rule(*c, l, spec, *how), std::string("rule in ") + c->name);
      add_rule(b, ranges_rule(*c, l, spec.accept_mark), std::string("range rule in ") + c->name);
      add_rule(b, pairs_rule(*c, l, spec, *how), std::string("pairs rule in ") + c->name);
    }
  }
  if (spec.nat) {
    add_chain(b, chain_dnat.name, &chain_dnat);
    add_chain(b, chain_snat.name, &chain_snat);
    for (const auto& l : families) {
      if (!has_nat(l)) continue;
      add_rule(b, nat_rule(true, l), std::string("rule in ") + chain_dnat.name);
      add_rule(b, range_dnat_rule(l), std::string("range rule in ") + chain_dnat.name);
      add_rule(b, nat_rule(false, l), std::string("rule in ") + chain_snat.name);
    }
  }
  struct Hook {
    const BaseChain* chain;
    CtDir dir;
  };
  const std::vector<Hook> hooks = gateway ? std::vector<Hook>{{&chain_steer_forward, CtDir::any}}
                                          : std::vector<Hook>{{&chain_steer_input, CtDir::original},
                                                              {&chain_steer_output, CtDir::reply}};
  for (const auto& hk : hooks) {
    add_chain(b, hk.chain->name, hk.chain);
    for (std::uint16_t p : spec.control_ports)
      add_rule(b, steer_rule(*hk.chain, spec, p, hk.dir, *how),
               std::string("steering rule in ") + hk.chain->name + " (" + std::string(firewall::name(*how)) + ")");
  }
  // The iptables-nft chains at our hooks (ip filter FORWARD, or INPUT and OUTPUT): our
  // accept_mark rule as rule 1 of each that exists, older ones of ours (anywhere) replaced.
  for (const auto& r : rules)
    if (is_ipt_hook_rule(r)) delete_ipt_rule(b, r);
  if (spec.accept_mark != 0)
    for (const IptChain& c : existing_ipt_chains(ipt, spec.role)) insert_ipt_rule(b, c, spec.accept_mark);
  if (auto f = nl_->send(b, true)) return nl_error("install_hooks", *f);
  ++stats_.commits;
  installed_spec_ = spec;
  // A table that did not exist had no openings; the maps' contents are otherwise kept.
  if (chains.empty() && sets.empty()) {
    clear_known();
    known_complete_ = true;
  }
  queue_chains_.clear();
  for (const auto& c : chains)
    if (auto n = parse_queue_chain(c.name)) queue_chains_.insert(*n);
  chains_known_ = true;
  openings_queue_ = spec.queue_num;
  openings_queue_known_ = true;
  return {};
}

// The whole table in one message: chains, rules, maps and their elements; in the same batch our
// accept_mark rules in iptables-nft's chains, and nothing else of ip filter.
Result<void> NftBackend::remove_hooks() {
  FTPWALL_NL_OR_RETURN();
  std::vector<RuleInfo> rules;
  if (int e = list_rules(*nl_, rules); e) return make_error(std::string("nftables: list rules: ") + std::strerror(e));
  auto ipt_deletes = [&](Batch& x) {
    for (const auto& r : rules)
      if (is_ipt_hook_rule(r)) delete_ipt_rule(x, r);
  };
  Batch b(nl_->seq(), nl_->buffer());
  ipt_deletes(b);
  b.add(NFT_MSG_DESTROYTABLE, 0, "destroy table inet ftpwall", [](nlmsghdr* h) {
    TableObj t(nftnl_table_alloc());
    nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, nft_table_name);
    nftnl_table_nlmsg_build_payload(h, t.get());
  });
  auto f = nl_->send(b, true);
  if (f && f->err == EINVAL) {
    // A kernel before 6.3 (no NFT_MSG_DESTROYTABLE): delete, and a missing table is no error.
    Batch d(nl_->seq(), nl_->buffer());
    ipt_deletes(d);
    d.add(NFT_MSG_DELTABLE, 0, "delete table inet ftpwall", [](nlmsghdr* h) {
      TableObj t(nftnl_table_alloc());
      nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, nft_table_name);
      nftnl_table_nlmsg_build_payload(h, t.get());
    });
    f = nl_->send(d, true);
    if (f && f->err == ENOENT) {
      Batch e(nl_->seq(), nl_->buffer());
      ipt_deletes(e);
      f = nl_->send(e, true);
    }
  }
  if (f) return nl_error("remove_hooks", *f);
  ++stats_.commits;
  installed_spec_.reset();
  clear_known();
  known_complete_ = true;
  queue_chains_.clear();
  chains_known_ = true;
  openings_queue_.reset();
  openings_queue_known_ = false;
  return {};
}

Result<HookState> NftBackend::hook_state() {
  FTPWALL_NL_OR_RETURN();
  HookState s;
  std::vector<ChainInfo> chains;
  if (int e = list_chains(*nl_, chains); e) return make_error(std::string("nftables: list chains: ") + std::strerror(e));
  std::set<std::string> sets;
  if (int e = list_sets(*nl_, sets); e) return make_error(std::string("nftables: list sets: ") + std::strerror(e));
  auto has_chain = [&](const char* n) {
    return std::any_of(chains.begin(), chains.end(), [&](const ChainInfo& c) { return c.name == n; });
  };
  const FamilyLayout& l4 = layout_v4;
  const bool open_chains =
      has_chain(chain_open_forward.name) || has_chain(chain_open_input.name) || has_chain(chain_open_output.name);
  s.accept_chain = open_chains && std::all_of(std::begin(families), std::end(families), [&](const FamilyLayout& l) {
                     return sets.count(map_name("openings", l)) > 0 && sets.count(map_name("pairs", l)) > 0;
                   });
  s.dnat_chain = sets.count(map_name("dnat", l4)) && has_chain(chain_dnat.name);
  s.snat_chain = sets.count(map_name("snat", l4)) && has_chain(chain_snat.name);
  for (const auto& l : families) {
    for (const char* m : {"openings", "ranges"}) {
      if (!sets.count(map_name(m, l))) continue;
      std::vector<ElemInfo> acc;
      if (int e = list_elems(*nl_, map_name(m, l), l, acc); e && e != ENOENT)
        return make_error("nftables: list " + map_name(m, l) + ": " + std::strerror(e));
      for (const auto& a : acc) s.openings += parse_opening_comment(a.comment).has_value();
    }
    // Our openings that the kernel holds as their pair (NftOptions::pairs) count while their pair
    // is there; a pair found missing is marked, so that the reinstall puts it back.
    if (!sets.count(map_name("pairs", l))) continue;
    std::vector<ElemInfo> pairs;
    if (int e = list_elems(*nl_, map_name("pairs", l), l, pairs, /*pair=*/true); e && e != ENOENT)
      return make_error("nftables: list " + map_name("pairs", l) + ": " + std::strerror(e));
    s.pairs += static_cast<unsigned>(pairs.size());
    if (pairs_.empty()) continue;
    std::unordered_set<Key, KeyHash> present;
    for (const auto& x : pairs) present.insert(x.key);
    for (auto& [k, p] : pairs_)
      if (k.family == l.family && !p.foreign) p.stale = !present.count(k);
    for (const auto& [id, parts] : known_)
      if (parts.pair && parts.pair->family == l.family && present.count(*parts.pair)) ++s.openings;
  }
  std::vector<RuleInfo> rules;
  if (int e = list_rules(*nl_, rules); e) return make_error(std::string("nftables: list rules: ") + std::strerror(e));
  std::vector<ChainInfo> ipt;
  if (int e = list_ipt_chains(*nl_, ipt); e) return make_error(std::string("nftables: list chains of ip/ip6 filter: ") + std::strerror(e));
  unsigned table_hooks = 0;                 // in table inet ftpwall
  std::map<std::string, std::uint32_t> ipt_marks;  // "ip FORWARD" -> the mark our rule there accepts
  for (auto& r : rules) {
    const bool ours = r.family == "inet" && r.table == nft_table_name;
    if (is_ipt_hook_rule(r)) {
      ++s.own_hooks;
      if (r.mark_bits && r.accepts) ipt_marks[r.family + " " + r.chain] = *r.mark_bits;
    } else if (ours) {
      if (!is_own_base_chain(r.chain)) continue;  // to-queue-N: an opening's verdict, not a hook
      const bool own = r.comment == hook_comment_text;
      s.own_hooks += own;
      table_hooks += own;
      if (r.queues && r.chain.starts_with("steer-")) {
        r.steer.chain = "inet ftpwall " + r.chain;
        r.steer.own = own;
        s.steering.push_back(r.steer);
      }
    } else if (r.queues) {
      // The admin's steering (an nft or iptables-nft table); no rule elsewhere can jump into
      // ours (nft jumps stay within a table), so foreign_jumps stays 0.
      ++s.foreign_queue;
      r.steer.chain = r.family + " " + r.table + " " + r.chain;
      s.steering.push_back(r.steer);
    }
  }
  // What install_hooks() put in place, all of it: the table's hooks, and the accept_mark rule in
  // every iptables-nft chain at our hooks that exists now (also one created after the install,
  // or recreated by an iptables-nft-restore, which replaces the whole table ip filter).
  if (installed_spec_) {
    const HookSpec& spec = *installed_spec_;
    bool complete = table_hooks >= expected_own_hooks(spec) && s.accept_chain && (!spec.nat || (s.dnat_chain && s.snat_chain));
    if (spec.accept_mark != 0)
      for (const IptChain& c : existing_ipt_chains(ipt, spec.role)) {
        auto it = ipt_marks.find(std::string(ipt_family_name(c.family)) + " " + c.name);
        complete = complete && it != ipt_marks.end() && it->second == spec.accept_mark;
      }
    s.hooks_complete = complete;
  }
  return s;
}

}  // namespace ftpwall::firewall
