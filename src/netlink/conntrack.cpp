// SPDX-License-Identifier: GPL-2.0-or-later
// ctnetlink over libmnl, the messages built and parsed by libnetfilter_conntrack
// (nfct_nlmsg_build / nfct_nlmsg_parse / nfct_payload_parse, as its examples do over libmnl);
// sequence number and port id checked by mnl_cb_run. By hand only what libnetfilter_conntrack
// 1.0.9 cannot build: CTA_MARK_MASK, and a tuple for a GET by the reply tuple alone (put_tuple).
#include "conntrack.hpp"
#include "ct_parse.hpp"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_compat.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#pragma GCC diagnostic pop

namespace ftpwall::netlink {
namespace {

// ---- builders ----

nlmsghdr* put_header(std::vector<std::uint8_t>& buf, std::uint16_t msg, std::uint16_t flags, std::uint32_t seq,
                     Family family) {
  buf.assign(MNL_SOCKET_BUFFER_SIZE, 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = static_cast<std::uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | msg);
  nlh->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
  nlh->nlmsg_seq = seq;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = family == Family::v4 ? AF_INET : AF_INET6;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  return nlh;
}

// CTA_TUPLE_{ORIG,REPLY} { CTA_TUPLE_IP { src, dst }, CTA_TUPLE_PROTO { 6, sport, dport } }, by
// hand for GET requests only: nfct_nlmsg_build (1.0.9) writes a reply tuple only together with
// the original one, and a lookup by the reply tuple alone is what lookup_packet() needs.
void put_tuple(nlmsghdr* nlh, std::uint16_t type, const Tuple& t) {
  nlattr* tuple = mnl_attr_nest_start(nlh, type);
  nlattr* ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
  const bool v4 = t.src.addr.family == Family::v4;
  mnl_attr_put(nlh, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, v4 ? 4 : 16, t.src.addr.bytes.data());
  mnl_attr_put(nlh, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, v4 ? 4 : 16, t.dst.addr.bytes.data());
  mnl_attr_nest_end(nlh, ip);
  nlattr* proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
  mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(t.src.port));
  mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(t.dst.port));
  mnl_attr_nest_end(nlh, proto);
  mnl_attr_nest_end(nlh, tuple);
}

// One nf_conntrack object, freed with its scope.
using Ct = std::unique_ptr<nf_conntrack, decltype(&nfct_destroy)>;
Ct new_ct() { return Ct(nfct_new(), &nfct_destroy); }

// The tuple `t` as the original (or reply) tuple of `ct`: layer 3 and 4 protocol, addresses, ports.
void set_tuple(nf_conntrack* ct, const Tuple& t, bool reply) {
  const bool v4 = t.src.addr.family == Family::v4;
  nfct_set_attr_u8(ct, reply ? ATTR_REPL_L3PROTO : ATTR_ORIG_L3PROTO, v4 ? AF_INET : AF_INET6);
  nfct_set_attr_u8(ct, reply ? ATTR_REPL_L4PROTO : ATTR_ORIG_L4PROTO, IPPROTO_TCP);
  if (v4) {
    std::uint32_t src, dst;
    std::memcpy(&src, t.src.addr.bytes.data(), 4);
    std::memcpy(&dst, t.dst.addr.bytes.data(), 4);
    nfct_set_attr_u32(ct, reply ? ATTR_REPL_IPV4_SRC : ATTR_ORIG_IPV4_SRC, src);
    nfct_set_attr_u32(ct, reply ? ATTR_REPL_IPV4_DST : ATTR_ORIG_IPV4_DST, dst);
  } else {
    nfct_set_attr(ct, reply ? ATTR_REPL_IPV6_SRC : ATTR_ORIG_IPV6_SRC, t.src.addr.bytes.data());
    nfct_set_attr(ct, reply ? ATTR_REPL_IPV6_DST : ATTR_ORIG_IPV6_DST, t.dst.addr.bytes.data());
  }
  nfct_set_attr_u16(ct, reply ? ATTR_REPL_PORT_SRC : ATTR_ORIG_PORT_SRC, htons(t.src.port));
  nfct_set_attr_u16(ct, reply ? ATTR_REPL_PORT_DST : ATTR_ORIG_PORT_DST, htons(t.dst.port));
}

std::optional<Tuple> get_tuple(const nf_conntrack* ct, bool reply) {
  if (!nfct_attr_is_set(ct, reply ? ATTR_REPL_L4PROTO : ATTR_ORIG_L4PROTO) ||
      nfct_get_attr_u8(ct, reply ? ATTR_REPL_L4PROTO : ATTR_ORIG_L4PROTO) != IPPROTO_TCP ||
      !nfct_attr_is_set(ct, reply ? ATTR_REPL_PORT_SRC : ATTR_ORIG_PORT_SRC) ||
      !nfct_attr_is_set(ct, reply ? ATTR_REPL_PORT_DST : ATTR_ORIG_PORT_DST)) {
    return std::nullopt;
  }
  Tuple out;
  const std::uint8_t l3 = nfct_get_attr_u8(ct, reply ? ATTR_REPL_L3PROTO : ATTR_ORIG_L3PROTO);
  if (l3 == AF_INET && nfct_attr_is_set(ct, reply ? ATTR_REPL_IPV4_SRC : ATTR_ORIG_IPV4_SRC) &&
      nfct_attr_is_set(ct, reply ? ATTR_REPL_IPV4_DST : ATTR_ORIG_IPV4_DST)) {
    out.src.addr.family = out.dst.addr.family = Family::v4;
    const std::uint32_t src = nfct_get_attr_u32(ct, reply ? ATTR_REPL_IPV4_SRC : ATTR_ORIG_IPV4_SRC);
    const std::uint32_t dst = nfct_get_attr_u32(ct, reply ? ATTR_REPL_IPV4_DST : ATTR_ORIG_IPV4_DST);
    std::memcpy(out.src.addr.bytes.data(), &src, 4);
    std::memcpy(out.dst.addr.bytes.data(), &dst, 4);
  } else if (l3 == AF_INET6 && nfct_attr_is_set(ct, reply ? ATTR_REPL_IPV6_SRC : ATTR_ORIG_IPV6_SRC) &&
             nfct_attr_is_set(ct, reply ? ATTR_REPL_IPV6_DST : ATTR_ORIG_IPV6_DST)) {
    out.src.addr.family = out.dst.addr.family = Family::v6;
    std::memcpy(out.src.addr.bytes.data(), nfct_get_attr(ct, reply ? ATTR_REPL_IPV6_SRC : ATTR_ORIG_IPV6_SRC), 16);
    std::memcpy(out.dst.addr.bytes.data(), nfct_get_attr(ct, reply ? ATTR_REPL_IPV6_DST : ATTR_ORIG_IPV6_DST), 16);
  } else {
    return std::nullopt;
  }
  out.src.port = ntohs(nfct_get_attr_u16(ct, reply ? ATTR_REPL_PORT_SRC : ATTR_ORIG_PORT_SRC));
  out.dst.port = ntohs(nfct_get_attr_u16(ct, reply ? ATTR_REPL_PORT_DST : ATTR_ORIG_PORT_DST));
  return out;
}

// The entry as core types; nullopt when a tuple is missing or the connection is not TCP.
std::optional<ConntrackEntry> entry_from(const nf_conntrack* ct) {
  auto orig = get_tuple(ct, false);
  auto rep = get_tuple(ct, true);
  if (!orig || !rep) return std::nullopt;
  ConntrackEntry e;
  e.tuples = ConnTuples{*orig, *rep};
  if (nfct_attr_is_set(ct, ATTR_ID)) e.id = nfct_get_attr_u32(ct, ATTR_ID);
  if (nfct_attr_is_set(ct, ATTR_MARK)) e.mark = nfct_get_attr_u32(ct, ATTR_MARK);
  if (nfct_attr_is_set(ct, ATTR_STATUS)) e.status = nfct_get_attr_u32(ct, ATTR_STATUS);
  if (nfct_attr_is_set(ct, ATTR_HELPER_NAME)) e.helper = static_cast<const char*>(nfct_get_attr(ct, ATTR_HELPER_NAME));
  if (nfct_attr_is_set(ct, ATTR_TCP_STATE)) e.tcp_state = nfct_get_attr_u8(ct, ATTR_TCP_STATE);
  if (nfct_attr_is_set(ct, ATTR_TCP_FLAGS_ORIG)) e.tcp_flags_original = nfct_get_attr_u8(ct, ATTR_TCP_FLAGS_ORIG);
  if (nfct_attr_is_set(ct, ATTR_TCP_FLAGS_REPL)) e.tcp_flags_reply = nfct_get_attr_u8(ct, ATTR_TCP_FLAGS_REPL);
  if (nfct_attr_is_set(ct, ATTR_CONNLABELS)) {
    const auto* b = static_cast<const nfct_bitmask*>(nfct_get_attr(ct, ATTR_CONNLABELS));
    const unsigned max = b ? nfct_bitmask_maxbit(b) : 0;
    for (unsigned bit = 0; b && bit < 128 && bit <= max; ++bit)
      if (nfct_bitmask_test_bit(b, bit)) e.labels[bit / 8] |= static_cast<std::uint8_t>(1u << (bit % 8));
  }
  return e;
}

std::optional<ConntrackEntry> entry_from(const nlmsghdr* nlh) {
  Ct ct = new_ct();
  if (!ct || nfct_nlmsg_parse(nlh, ct.get()) < 0) return std::nullopt;
  return entry_from(ct.get());
}

struct Reply {
  std::optional<ConntrackEntry> entry;
  bool malformed = false;
};

int on_entry(const nlmsghdr* nlh, void* data) {
  auto* reply = static_cast<Reply*>(data);
  reply->entry = entry_from(nlh);
  reply->malformed = !reply->entry;
  return MNL_CB_OK;
}

Tuple reversed(const Tuple& t) { return Tuple{t.dst, t.src}; }

// One message of a dump: entries that are not TCP (or not parseable as such) are skipped.
struct DumpSink {
  const std::function<void(const ConntrackEntry&)>* each = nullptr;
  std::size_t entries = 0;   // TCP entries, passed to `each`
  std::size_t messages = 0;  // every message, of any protocol
};

int on_dump_entry(const nlmsghdr* nlh, void* data) {
  auto* sink = static_cast<DumpSink*>(data);
  ++sink->messages;
  if (auto e = entry_from(nlh)) {
    ++sink->entries;
    (*sink->each)(*e);
  }
  return MNL_CB_OK;
}

}  // namespace

std::optional<ConntrackEntry> parse_conntrack_nest(const void* nest, Family family) {
  const auto* a = static_cast<const nlattr*>(nest);
  Ct ct = new_ct();
  if (!ct || nfct_payload_parse(mnl_attr_get_payload(a), mnl_attr_get_payload_len(a), family == Family::v4 ? AF_INET : AF_INET6,
                                  ct.get()) < 0)
    return std::nullopt;
  return entry_from(ct.get());
}

Conntrack::Conntrack(mnl_socket* sock) : sock_(sock), buf_(MNL_SOCKET_BUFFER_SIZE) {
  portid_ = mnl_socket_get_portid(sock);
  seq_ = static_cast<std::uint32_t>(time(nullptr));
}

Conntrack::~Conntrack() {
  if (sock_) mnl_socket_close(sock_);
}

Result<std::unique_ptr<Conntrack>> Conntrack::open() {
  mnl_socket* s = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (!s) return make_error(std::string("ctnetlink: socket: ") + std::strerror(errno));
  if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) {
    const int err = errno;
    mnl_socket_close(s);
    return make_error(std::string("ctnetlink: bind: ") + std::strerror(err));
  }
  return std::unique_ptr<Conntrack>(new Conntrack(s));
}

// Sends one request (with NLM_F_ACK) and reads until its acknowledgement: the entry for a GET,
// nothing for an update. ENOENT is "no such entry", not an error.
Result<std::optional<ConntrackEntry>> Conntrack::run(std::vector<std::uint8_t>& request, bool expect_entry,
                                                     bool* missing) {
  auto* nlh = reinterpret_cast<nlmsghdr*>(request.data());
  const std::uint32_t seq = nlh->nlmsg_seq;
  if (mnl_socket_sendto(sock_, nlh, nlh->nlmsg_len) < 0) {
    return make_error(std::string("ctnetlink: send: ") + std::strerror(errno));
  }
  Reply reply;
  for (;;) {
    const ssize_t n = mnl_socket_recvfrom(sock_, buf_.data(), buf_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(std::string("ctnetlink: receive: ") + std::strerror(errno));
    }
    const int r = mnl_cb_run(buf_.data(), static_cast<std::size_t>(n), seq, portid_, expect_entry ? on_entry : nullptr, &reply);
    if (r == MNL_CB_ERROR) {
      if (errno == ENOENT) {
        if (missing) *missing = true;
        return std::optional<ConntrackEntry>{};
      }
      if (errno == ESRCH) continue;  // a stale reply to an earlier request: skip it
      std::string why = std::strerror(errno);
      if (errno == EPERM) why += " (needs CAP_NET_ADMIN)";
      return make_error("ctnetlink: " + why);
    }
    if (r == MNL_CB_STOP) break;  // the acknowledgement
  }
  if (reply.malformed) return make_error("ctnetlink: malformed conntrack entry in reply");
  return std::move(reply.entry);
}

Result<std::optional<ConntrackEntry>> Conntrack::get(const Tuple& t, TupleKind kind) {
  std::vector<std::uint8_t> req;
  nlmsghdr* nlh = put_header(req, IPCTNL_MSG_CT_GET, NLM_F_ACK, ++seq_, t.src.addr.family);
  put_tuple(nlh, kind == TupleKind::original ? CTA_TUPLE_ORIG : CTA_TUPLE_REPLY, t);
  auto r = run(req, true);
  if (!r) return r;
  if (r->has_value()) return r;
  return std::optional<ConntrackEntry>{};
}

Result<std::size_t> Conntrack::dump(Family family, const std::function<void(const ConntrackEntry&)>& each,
                                    std::span<const std::uint16_t> dst_ports) {
  // One run per port; without ports one run of the whole table.
  std::vector<std::optional<std::uint16_t>> runs(dst_ports.begin(), dst_ports.end());
  if (runs.empty()) runs.emplace_back();
  std::size_t total = 0;
  for (const auto& port : runs) {
    std::vector<std::uint8_t> req;
    nlmsghdr* nlh = put_header(req, IPCTNL_MSG_CT_GET, NLM_F_DUMP, ++seq_, family);
    if (port) {
      // CTA_TUPLE_ORIG { CTA_TUPLE_PROTO { tcp, dport } } and CTA_FILTER naming just those two
      // fields (libnetfilter_conntrack 1.0.9 has no CTA_FILTER).
      nlattr* tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
      nlattr* proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
      mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
      mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(*port));
      mnl_attr_nest_end(nlh, proto);
      mnl_attr_nest_end(nlh, tuple);
      // The kernel's CTA_FILTER_F_CTA_PROTO_NUM and _DST_PORT (net/netfilter/nf_internals.h:
      // not in the uapi headers, unchanged since 5.8).
      constexpr std::uint32_t filter_proto_num = 1u << 3, filter_proto_dst_port = 1u << 5;
      nlattr* filter = mnl_attr_nest_start(nlh, CTA_FILTER);
      mnl_attr_put_u32(nlh, CTA_FILTER_ORIG_FLAGS, filter_proto_num | filter_proto_dst_port);
      mnl_attr_put_u32(nlh, CTA_FILTER_REPLY_FLAGS, 0);
      mnl_attr_nest_end(nlh, filter);
    }
    const std::uint32_t seq = nlh->nlmsg_seq;
    if (mnl_socket_sendto(sock_, nlh, nlh->nlmsg_len) < 0)
      return make_error(std::string("ctnetlink: dump: send: ") + std::strerror(errno));
    const std::function<void(const ConntrackEntry&)> keep = [&](const ConntrackEntry& e) {
      if (!port || e.tuples.original.dst.port == *port) each(e);
    };
    DumpSink sink{&keep, 0};
    for (;;) {
      const ssize_t n = mnl_socket_recvfrom(sock_, buf_.data(), buf_.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return make_error(std::string("ctnetlink: dump: receive: ") + std::strerror(errno));
      }
      const int r = mnl_cb_run(buf_.data(), static_cast<std::size_t>(n), seq, portid_, on_dump_entry, &sink);
      if (r == MNL_CB_ERROR) {
        if (errno == ESRCH) continue;  // a stale reply to an earlier request
        return make_error(std::string("ctnetlink: dump: ") + std::strerror(errno));
      }
      if (r == MNL_CB_STOP) break;  // NLMSG_DONE
    }
    total += sink.entries;
  }
  return total;
}

// The filter, instruction by instruction. The kernel's netlink-attribute loads do the parsing:
// `ld [SKF_AD_NLATTR]` gives the offset of the attribute of type X among those from offset A on
// (0: none), `ld [SKF_AD_NLATTR_NEST]` the same inside the nested attribute at offset A; both
// ignore NLA_F_NESTED. A message the program cannot read (too short, nonlinear) finds nothing and
// is dropped, as is every entry that is not TCP or not to a control port: a session is always
// the original tuple of a TCP connection to a steered port. libnetfilter_conntrack's nfct_filter
// builds such programs too, but matches protocol, state, addresses and mark only, not ports.
Result<void> attach_control_port_filter(int fd, std::span<const std::uint16_t> ports) {
  if (ports.empty() || ports.size() > 64) return make_error("ctnetlink events: filter: 1 to 64 control ports");
  std::vector<sock_filter> f;
  struct Jump {
    std::size_t at;
    bool if_false;  // the jump to patch is jf (else jt)
  };
  std::vector<Jump> to_drop, to_keep;  // jumps to the final `ret #0` / `ret #-1`, patched below
  auto op = [&](std::uint16_t code, std::uint32_t k) { f.push_back(sock_filter{code, 0, 0, k}); };
  auto jeq = [&](std::uint32_t k, std::vector<Jump>& to, bool if_false) {
    to.push_back({f.size(), if_false});
    op(BPF_JMP | BPF_JEQ | BPF_K, k);
  };
  auto found_or_drop = [&] { jeq(0, to_drop, false); };  // A == 0: the attribute is missing
  const std::uint32_t nlattr = static_cast<std::uint32_t>(SKF_AD_OFF + SKF_AD_NLATTR);
  const std::uint32_t nest = static_cast<std::uint32_t>(SKF_AD_OFF + SKF_AD_NLATTR_NEST);
  op(BPF_LD | BPF_IMM, NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)));  // the first attribute
  op(BPF_LDX | BPF_IMM, CTA_TUPLE_ORIG);
  op(BPF_LD | BPF_W | BPF_ABS, nlattr);
  found_or_drop();
  op(BPF_LDX | BPF_IMM, CTA_TUPLE_PROTO);
  op(BPF_LD | BPF_W | BPF_ABS, nest);
  found_or_drop();
  op(BPF_ST, 0);  // M[0]: the CTA_TUPLE_PROTO nest
  op(BPF_LDX | BPF_IMM, CTA_PROTO_NUM);
  op(BPF_LD | BPF_W | BPF_ABS, nest);
  found_or_drop();
  op(BPF_MISC | BPF_TAX, 0);
  op(BPF_LD | BPF_B | BPF_IND, NLA_HDRLEN);  // its u8
  jeq(IPPROTO_TCP, to_drop, true);
  op(BPF_LD | BPF_MEM, 0);
  op(BPF_LDX | BPF_IMM, CTA_PROTO_DST_PORT);
  op(BPF_LD | BPF_W | BPF_ABS, nest);
  found_or_drop();
  op(BPF_MISC | BPF_TAX, 0);
  op(BPF_LD | BPF_H | BPF_IND, NLA_HDRLEN);  // big-endian u16, loaded as its value
  for (std::uint16_t p : ports) jeq(p, to_keep, false);
  const std::size_t drop = f.size();
  op(BPF_RET | BPF_K, 0);
  const std::size_t keep = f.size();
  op(BPF_RET | BPF_K, 0xffffffffu);
  auto patch = [&](const std::vector<Jump>& js, std::size_t target) {
    for (const Jump& j : js) (j.if_false ? f[j.at].jf : f[j.at].jt) = static_cast<std::uint8_t>(target - j.at - 1);
  };
  patch(to_drop, drop);
  patch(to_keep, keep);
  sock_fprog prog{static_cast<unsigned short>(f.size()), f.data()};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0)
    return make_error(std::string("ctnetlink events: attach the control-port filter: ") + std::strerror(errno));
  return {};
}

Result<std::unique_ptr<ConntrackEvents>> ConntrackEvents::open(int receive_buffer, std::span<const std::uint16_t> control_ports) {
  mnl_socket* s = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (!s) return make_error(std::string("ctnetlink events: socket: ") + std::strerror(errno));
  if (mnl_socket_bind(s, NF_NETLINK_CONNTRACK_DESTROY, MNL_SOCKET_AUTOPID) < 0) {
    const int err = errno;
    mnl_socket_close(s);
    return make_error(std::string("ctnetlink events: bind: ") + std::strerror(err));
  }
  // SO_RCVBUFFORCE (CAP_NET_ADMIN) past rmem_max; SO_RCVBUF otherwise.
  const int fd = mnl_socket_get_fd(s);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer, sizeof receive_buffer) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  std::unique_ptr<ConntrackEvents> ev(new ConntrackEvents(s));
  if (!control_ports.empty()) {
    if (auto r = attach_control_port_filter(fd, control_ports); r)
      ev->filtered_ = true;
    else
      ev->filter_error_ = r.error().message;
  }
  return ev;
}

ConntrackEvents::~ConntrackEvents() {
  if (sock_) mnl_socket_close(sock_);
}

int ConntrackEvents::fd() const { return mnl_socket_get_fd(sock_); }

Result<ConntrackEvents::Batch> ConntrackEvents::read(const std::function<void(const ConntrackEntry&)>& destroyed) {
  Batch b;
  DumpSink sink{&destroyed, 0};
  for (;;) {
    const ssize_t n = recv(mnl_socket_get_fd(sock_), buf_.data(), buf_.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == ENOBUFS) {
        b.lost = true;
        continue;
      }
      return make_error(std::string("ctnetlink events: receive: ") + std::strerror(errno));
    }
    // Events carry sequence number 0 and port id 0.
    mnl_cb_run(buf_.data(), static_cast<std::size_t>(n), 0, 0, on_dump_entry, &sink);
  }
  b.events = sink.messages;
  return b;
}

Result<std::optional<ConntrackEntry>> Conntrack::lookup_packet(const Tuple& seen) {
  const std::pair<Tuple, TupleKind> tries[] = {
      {seen, TupleKind::original},
      {reversed(seen), TupleKind::reply},
      {seen, TupleKind::reply},
      {reversed(seen), TupleKind::original},
  };
  for (const auto& [t, kind] : tries) {
    auto r = get(t, kind);
    if (!r || r->has_value()) return r;
  }
  return std::optional<ConntrackEntry>{};
}

Result<void> Conntrack::update(const Tuple& original, const std::function<bool(nf_conntrack*)>& fill,
                               const std::function<void(nlmsghdr*)>& raw, const char* context) {
  std::vector<std::uint8_t> req;
  // No NLM_F_CREATE: update the existing entry, ENOENT if it is gone.
  nlmsghdr* nlh = put_header(req, IPCTNL_MSG_CT_NEW, NLM_F_ACK, ++seq_, original.src.addr.family);
  Ct ct = new_ct();
  if (!ct || !fill(ct.get())) return make_error("ctnetlink: out of memory");
  set_tuple(ct.get(), original, false);
  nfct_nlmsg_build(nlh, ct.get());
  if (raw) raw(nlh);
  bool missing = false;
  auto r = run(req, false, &missing);
  if (!r) return context ? make_error(r.error().message + " (" + context + ")") : r.error();
  if (missing) return make_error("ctnetlink: no conntrack entry for " + original.src.to_string() + " -> " + original.dst.to_string());
  return {};
}

Result<void> Conntrack::set_liberal(const Tuple& original) {
  return update(original, [](nf_conntrack* ct) {
    nfct_set_attr_u8(ct, ATTR_TCP_FLAGS_ORIG, ConntrackEntry::tcp_flag_be_liberal);
    nfct_set_attr_u8(ct, ATTR_TCP_MASK_ORIG, ConntrackEntry::tcp_flag_be_liberal);
    nfct_set_attr_u8(ct, ATTR_TCP_FLAGS_REPL, ConntrackEntry::tcp_flag_be_liberal);
    nfct_set_attr_u8(ct, ATTR_TCP_MASK_REPL, ConntrackEntry::tcp_flag_be_liberal);
    return true;
  });
}

Result<void> Conntrack::set_mark(const Tuple& original, std::uint32_t mark, std::uint32_t mask) {
  return update(
      original,
      [&](nf_conntrack* ct) {
        nfct_set_attr_u32(ct, ATTR_MARK, mark & mask);
        return true;
      },
      [&](nlmsghdr* nlh) { mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(mask)); });  // not in libnetfilter_conntrack 1.0.9
}

Result<void> Conntrack::set_labels(const Tuple& original, const std::array<std::uint8_t, 16>& labels) {
  return update(
      original,
      [&](nf_conntrack* ct) {
        nfct_bitmask* value = nfct_bitmask_new(127);
        nfct_bitmask* mask = nfct_bitmask_new(127);
        if (!value || !mask) {
          if (value) nfct_bitmask_destroy(value);
          if (mask) nfct_bitmask_destroy(mask);
          return false;
        }
        for (unsigned bit = 0; bit < 128; ++bit) {
          nfct_bitmask_set_bit(mask, bit);
          if (labels[bit / 8] & (1u << (bit % 8))) nfct_bitmask_set_bit(value, bit);
        }
        nfct_set_attr(ct, ATTR_CONNLABELS, value);  // the entry owns both now
        nfct_set_attr(ct, ATTR_CONNLABELS_MASK, mask);
        return true;
      },
      {}, "setting conntrack labels: the entry has no label extension unless a rule used labels when it was created");
}

}  // namespace ftpwall::netlink
