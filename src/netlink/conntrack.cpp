// SPDX-License-Identifier: GPL-2.0-or-later
// ctnetlink with libmnl: a builder per message, a validate callback per attribute level, unknown
// attributes skipped, sequence number and port id checked by mnl_cb_run (M: nfct-*.c).
#include "conntrack.hpp"
#include "ct_parse.hpp"

#include <arpa/inet.h>
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
#include <linux/netfilter/nf_conntrack_tcp.h>
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

// CTA_TUPLE_{ORIG,REPLY} { CTA_TUPLE_IP { src, dst }, CTA_TUPLE_PROTO { 6, sport, dport } }
void put_tuple(nlmsghdr* nlh, std::uint16_t type, const Tuple& t) {
  nlattr* tuple = mnl_attr_nest_start(nlh, type);
  nlattr* ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
  if (t.src.addr.family == Family::v4) {
    mnl_attr_put(nlh, CTA_IP_V4_SRC, 4, t.src.addr.bytes.data());
    mnl_attr_put(nlh, CTA_IP_V4_DST, 4, t.dst.addr.bytes.data());
  } else {
    mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, t.src.addr.bytes.data());
    mnl_attr_put(nlh, CTA_IP_V6_DST, 16, t.dst.addr.bytes.data());
  }
  mnl_attr_nest_end(nlh, ip);
  nlattr* proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
  mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(t.src.port));
  mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(t.dst.port));
  mnl_attr_nest_end(nlh, proto);
  mnl_attr_nest_end(nlh, tuple);
}

// ---- validating parsers, one per attribute level ----

template <std::size_t N>
struct Level {
  std::array<const nlattr*, N + 1> tb{};
  const std::array<int, N + 1>* types = nullptr;  // mnl_attr_data_type per attribute, -1 = skip; 16 = 16 bytes
};

constexpr int t16 = 1000;  // a 16-byte binary (IPv6 address)
constexpr int t2 = 1001;   // a 2-byte binary (nf_ct_tcp_flags)

template <std::size_t N>
int collect(const nlattr* a, void* data) {
  auto* lv = static_cast<Level<N>*>(data);
  const auto type = mnl_attr_get_type(a);
  if (type > N) return MNL_CB_OK;  // unknown: skipped
  const int want = (*lv->types)[type];
  if (want < 0) return MNL_CB_OK;
  bool ok;
  if (want == t16) ok = mnl_attr_get_payload_len(a) == 16;
  else if (want == t2) ok = mnl_attr_get_payload_len(a) >= 2;
  else ok = mnl_attr_validate(a, static_cast<mnl_attr_data_type>(want)) >= 0;
  if (!ok) return MNL_CB_ERROR;
  lv->tb[type] = a;
  return MNL_CB_OK;
}

template <std::size_t N>
bool parse_nested(const nlattr* nest, Level<N>& lv) {
  return mnl_attr_parse_nested(nest, collect<N>, &lv) >= MNL_CB_STOP;
}

constexpr std::array<int, CTA_IP_MAX + 1> ip_types = [] {
  std::array<int, CTA_IP_MAX + 1> t{};
  t.fill(-1);
  t[CTA_IP_V4_SRC] = t[CTA_IP_V4_DST] = MNL_TYPE_U32;
  t[CTA_IP_V6_SRC] = t[CTA_IP_V6_DST] = t16;
  return t;
}();
constexpr std::array<int, CTA_PROTO_MAX + 1> proto_types = [] {
  std::array<int, CTA_PROTO_MAX + 1> t{};
  t.fill(-1);
  t[CTA_PROTO_NUM] = MNL_TYPE_U8;
  t[CTA_PROTO_SRC_PORT] = t[CTA_PROTO_DST_PORT] = MNL_TYPE_U16;
  return t;
}();
constexpr std::array<int, CTA_TUPLE_MAX + 1> tuple_types = [] {
  std::array<int, CTA_TUPLE_MAX + 1> t{};
  t.fill(-1);
  t[CTA_TUPLE_IP] = t[CTA_TUPLE_PROTO] = MNL_TYPE_NESTED;
  return t;
}();
constexpr std::array<int, CTA_PROTOINFO_MAX + 1> protoinfo_types = [] {
  std::array<int, CTA_PROTOINFO_MAX + 1> t{};
  t.fill(-1);
  t[CTA_PROTOINFO_TCP] = MNL_TYPE_NESTED;
  return t;
}();
constexpr std::array<int, CTA_PROTOINFO_TCP_MAX + 1> tcp_types = [] {
  std::array<int, CTA_PROTOINFO_TCP_MAX + 1> t{};
  t.fill(-1);
  t[CTA_PROTOINFO_TCP_STATE] = MNL_TYPE_U8;
  t[CTA_PROTOINFO_TCP_FLAGS_ORIGINAL] = t[CTA_PROTOINFO_TCP_FLAGS_REPLY] = t2;
  return t;
}();
constexpr std::array<int, CTA_HELP_MAX + 1> help_types = [] {
  std::array<int, CTA_HELP_MAX + 1> t{};
  t.fill(-1);
  t[CTA_HELP_NAME] = MNL_TYPE_NUL_STRING;
  return t;
}();
constexpr std::array<int, CTA_MAX + 1> ct_types = [] {
  std::array<int, CTA_MAX + 1> t{};
  t.fill(-1);
  t[CTA_TUPLE_ORIG] = t[CTA_TUPLE_REPLY] = t[CTA_PROTOINFO] = t[CTA_HELP] = MNL_TYPE_NESTED;
  t[CTA_STATUS] = t[CTA_MARK] = t[CTA_ID] = MNL_TYPE_U32;
  return t;
}();

std::optional<Tuple> parse_tuple(const nlattr* nest) {
  Level<CTA_TUPLE_MAX> t{.types = &tuple_types};
  if (!parse_nested(nest, t) || !t.tb[CTA_TUPLE_IP] || !t.tb[CTA_TUPLE_PROTO]) return std::nullopt;
  Level<CTA_IP_MAX> ip{.types = &ip_types};
  Level<CTA_PROTO_MAX> pr{.types = &proto_types};
  if (!parse_nested(t.tb[CTA_TUPLE_IP], ip) || !parse_nested(t.tb[CTA_TUPLE_PROTO], pr)) return std::nullopt;
  if (!pr.tb[CTA_PROTO_NUM] || mnl_attr_get_u8(pr.tb[CTA_PROTO_NUM]) != IPPROTO_TCP || !pr.tb[CTA_PROTO_SRC_PORT] ||
      !pr.tb[CTA_PROTO_DST_PORT]) {
    return std::nullopt;
  }
  Tuple out;
  if (ip.tb[CTA_IP_V4_SRC] && ip.tb[CTA_IP_V4_DST]) {
    out.src.addr.family = out.dst.addr.family = Family::v4;
    std::memcpy(out.src.addr.bytes.data(), mnl_attr_get_payload(ip.tb[CTA_IP_V4_SRC]), 4);
    std::memcpy(out.dst.addr.bytes.data(), mnl_attr_get_payload(ip.tb[CTA_IP_V4_DST]), 4);
  } else if (ip.tb[CTA_IP_V6_SRC] && ip.tb[CTA_IP_V6_DST]) {
    out.src.addr.family = out.dst.addr.family = Family::v6;
    std::memcpy(out.src.addr.bytes.data(), mnl_attr_get_payload(ip.tb[CTA_IP_V6_SRC]), 16);
    std::memcpy(out.dst.addr.bytes.data(), mnl_attr_get_payload(ip.tb[CTA_IP_V6_DST]), 16);
  } else {
    return std::nullopt;
  }
  out.src.port = ntohs(mnl_attr_get_u16(pr.tb[CTA_PROTO_SRC_PORT]));
  out.dst.port = ntohs(mnl_attr_get_u16(pr.tb[CTA_PROTO_DST_PORT]));
  return out;
}

// The CTA_* attributes of one entry (a ctnetlink message, or NFQUEUE's NFQA_CT nest).
std::optional<ConntrackEntry> entry_from(const Level<CTA_MAX>& ct) {
  if (!ct.tb[CTA_TUPLE_ORIG] || !ct.tb[CTA_TUPLE_REPLY]) return std::nullopt;
  auto orig = parse_tuple(ct.tb[CTA_TUPLE_ORIG]);
  auto rep = parse_tuple(ct.tb[CTA_TUPLE_REPLY]);
  if (!orig || !rep) return std::nullopt;
  ConntrackEntry e;
  e.tuples = ConnTuples{*orig, *rep};
  if (ct.tb[CTA_ID]) e.id = ntohl(mnl_attr_get_u32(ct.tb[CTA_ID]));
  if (ct.tb[CTA_MARK]) e.mark = ntohl(mnl_attr_get_u32(ct.tb[CTA_MARK]));
  if (ct.tb[CTA_STATUS]) e.status = ntohl(mnl_attr_get_u32(ct.tb[CTA_STATUS]));
  if (ct.tb[CTA_HELP]) {
    Level<CTA_HELP_MAX> help{.types = &help_types};
    if (parse_nested(ct.tb[CTA_HELP], help) && help.tb[CTA_HELP_NAME]) e.helper = mnl_attr_get_str(help.tb[CTA_HELP_NAME]);
  }
  if (ct.tb[CTA_PROTOINFO]) {
    Level<CTA_PROTOINFO_MAX> pi{.types = &protoinfo_types};
    Level<CTA_PROTOINFO_TCP_MAX> tcp{.types = &tcp_types};
    if (parse_nested(ct.tb[CTA_PROTOINFO], pi) && pi.tb[CTA_PROTOINFO_TCP] && parse_nested(pi.tb[CTA_PROTOINFO_TCP], tcp)) {
      if (tcp.tb[CTA_PROTOINFO_TCP_STATE]) e.tcp_state = mnl_attr_get_u8(tcp.tb[CTA_PROTOINFO_TCP_STATE]);
      if (tcp.tb[CTA_PROTOINFO_TCP_FLAGS_ORIGINAL]) {
        e.tcp_flags_original = static_cast<const nf_ct_tcp_flags*>(mnl_attr_get_payload(tcp.tb[CTA_PROTOINFO_TCP_FLAGS_ORIGINAL]))->flags;
      }
      if (tcp.tb[CTA_PROTOINFO_TCP_FLAGS_REPLY]) {
        e.tcp_flags_reply = static_cast<const nf_ct_tcp_flags*>(mnl_attr_get_payload(tcp.tb[CTA_PROTOINFO_TCP_FLAGS_REPLY]))->flags;
      }
    }
  }
  return e;
}

struct Reply {
  std::optional<ConntrackEntry> entry;
  bool malformed = false;
};

int on_entry(const nlmsghdr* nlh, void* data) {
  auto* reply = static_cast<Reply*>(data);
  Level<CTA_MAX> ct{.types = &ct_types};
  if (mnl_attr_parse(nlh, sizeof(nfgenmsg), collect<CTA_MAX>, &ct) < MNL_CB_STOP) {
    reply->malformed = true;
    return MNL_CB_OK;
  }
  reply->entry = entry_from(ct);
  reply->malformed = !reply->entry;
  return MNL_CB_OK;
}

Tuple reversed(const Tuple& t) { return Tuple{t.dst, t.src}; }

// One message of a dump: entries that are not TCP (or not parseable as such) are skipped.
struct DumpSink {
  const std::function<void(const ConntrackEntry&)>* each = nullptr;
  std::size_t entries = 0;
};

int on_dump_entry(const nlmsghdr* nlh, void* data) {
  auto* sink = static_cast<DumpSink*>(data);
  Level<CTA_MAX> ct{.types = &ct_types};
  if (mnl_attr_parse(nlh, sizeof(nfgenmsg), collect<CTA_MAX>, &ct) < MNL_CB_STOP) return MNL_CB_OK;
  if (auto e = entry_from(ct)) {
    ++sink->entries;
    (*sink->each)(*e);
  }
  return MNL_CB_OK;
}

}  // namespace

std::optional<ConntrackEntry> parse_conntrack_nest(const void* nest) {
  Level<CTA_MAX> ct{.types = &ct_types};
  if (!parse_nested(static_cast<const nlattr*>(nest), ct)) return std::nullopt;
  return entry_from(ct);
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

Result<std::size_t> Conntrack::dump(Family family, const std::function<void(const ConntrackEntry&)>& each) {
  std::vector<std::uint8_t> req;
  nlmsghdr* nlh = put_header(req, IPCTNL_MSG_CT_GET, NLM_F_DUMP, ++seq_, family);
  const std::uint32_t seq = nlh->nlmsg_seq;
  if (mnl_socket_sendto(sock_, nlh, nlh->nlmsg_len) < 0)
    return make_error(std::string("ctnetlink: dump: send: ") + std::strerror(errno));
  DumpSink sink{&each, 0};
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
  return sink.entries;
}

Result<std::unique_ptr<ConntrackEvents>> ConntrackEvents::open(int receive_buffer) {
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
  return std::unique_ptr<ConntrackEvents>(new ConntrackEvents(s));
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
  b.events = sink.entries;
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

Result<void> Conntrack::set_liberal(const Tuple& original) {
  std::vector<std::uint8_t> req;
  // No NLM_F_CREATE: update the existing entry, ENOENT if it is gone.
  nlmsghdr* nlh = put_header(req, IPCTNL_MSG_CT_NEW, NLM_F_ACK, ++seq_, original.src.addr.family);
  put_tuple(nlh, CTA_TUPLE_ORIG, original);
  nlattr* pi = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
  nlattr* tcp = mnl_attr_nest_start(nlh, CTA_PROTOINFO_TCP);
  const nf_ct_tcp_flags liberal{IP_CT_TCP_FLAG_BE_LIBERAL, IP_CT_TCP_FLAG_BE_LIBERAL};
  mnl_attr_put(nlh, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, sizeof liberal, &liberal);
  mnl_attr_put(nlh, CTA_PROTOINFO_TCP_FLAGS_REPLY, sizeof liberal, &liberal);
  mnl_attr_nest_end(nlh, tcp);
  mnl_attr_nest_end(nlh, pi);
  bool missing = false;
  auto r = run(req, false, &missing);
  if (!r) return r.error();
  if (missing) return make_error("ctnetlink: no conntrack entry for " + original.src.to_string() + " -> " + original.dst.to_string());
  return {};
}

Result<void> Conntrack::set_mark(const Tuple& original, std::uint32_t mark, std::uint32_t mask) {
  std::vector<std::uint8_t> req;
  nlmsghdr* nlh = put_header(req, IPCTNL_MSG_CT_NEW, NLM_F_ACK, ++seq_, original.src.addr.family);
  put_tuple(nlh, CTA_TUPLE_ORIG, original);
  mnl_attr_put_u32(nlh, CTA_MARK, htonl(mark & mask));
  mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(mask));
  bool missing = false;
  auto r = run(req, false, &missing);
  if (!r) return r.error();
  if (missing) return make_error("ctnetlink: no conntrack entry for " + original.src.to_string() + " -> " + original.dst.to_string());
  return {};
}

}  // namespace ftpwall::netlink
