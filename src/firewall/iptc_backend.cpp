// SPDX-License-Identifier: GPL-2.0-or-later
#include "iptc_backend.hpp"
#include "iptc_family.hpp"
#include "netlink/nftables.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

// The uapi headers use zero-length arrays (a GNU extension): fine for GCC, noisy under -Wpedantic.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_NFQUEUE.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netfilter/xt_connmark.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_tcpudp.h>
#include <linux/netfilter/xt_time.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#pragma GCC diagnostic pop

namespace ftpwall::firewall {

// xt_time compares the kernel's UTC seconds (64 bits) with date_stop (a u32) and matches while
// they are <= date_stop, i.e. until date_stop + 1 s. The floor of the stop time (plus a millisecond,
// so that a stop time a few microseconds below a whole second, after a monotonic round trip, keeps
// that second) therefore matches at least until `stop` and at most a second longer. iptables-save
// prints INT_MAX as "no --datestop": that second becomes the next one. Valid until 2106-02-07.
Result<std::uint32_t> kernel_date_stop(WallClock::time_point stop) {
  const auto secs =
      std::chrono::floor<std::chrono::seconds>(stop.time_since_epoch() + std::chrono::milliseconds(1)).count();
  if (secs <= 0 || secs > static_cast<std::int64_t>(UINT32_MAX))
    return make_error("opening expiry out of the kernel's range (-m time --datestop, 1970..2106): " +
                      std::to_string(secs));
  if (secs == INT_MAX) return static_cast<std::uint32_t>(INT_MAX) + 1;
  return static_cast<std::uint32_t>(secs);
}

namespace {

// ---- the xtables lock (iptables -w): flock on a shared file, polled until a deadline ----

std::string xtables_lock_path(const std::string& configured) {
  if (!configured.empty()) return configured;
  const char* env = std::getenv("XTABLES_LOCKFILE");
  return env && *env ? env : "/run/xtables.lock";
}

// The descriptor keep_xtables_lock_open() opened (a daemon that changes to a user who cannot open
// the root-only lock file). One open file description: flock does not exclude this process's own
// holders from each other, so the mutex does.
struct KeptLock {
  std::string path;
  int fd = -1;
  std::mutex in_process;
};
KeptLock& kept_lock() {
  static KeptLock k;
  return k;
}

class XtablesLock {
 public:
  static Result<XtablesLock> acquire(const std::string& configured, std::chrono::milliseconds timeout) {
    const std::string path = xtables_lock_path(configured);
    KeptLock& k = kept_lock();
    const bool kept = k.fd >= 0 && k.path == path;
    std::unique_lock<std::mutex> guard;
    int fd = -1;
    if (kept) {
      guard = std::unique_lock<std::mutex>(k.in_process);
      fd = k.fd;
    } else {
      fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
      if (fd < 0) return make_error("xtables lock " + path + ": " + std::strerror(errno));
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) {
        const int err = errno;
        if (!kept) ::close(fd);
        return make_error("xtables lock " + path + ": " + std::strerror(err));
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        if (!kept) ::close(fd);
        return make_error("xtables lock " + path + ": still held by another iptables user after " +
                          std::to_string(timeout.count()) + " ms");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return XtablesLock(fd, kept, std::move(guard));
  }
  XtablesLock(XtablesLock&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), kept_(o.kept_), guard_(std::move(o.guard_)) {}
  XtablesLock& operator=(XtablesLock&&) = delete;
  XtablesLock(const XtablesLock&) = delete;
  ~XtablesLock() {
    if (fd_ < 0) return;
    if (kept_) ::flock(fd_, LOCK_UN);  // the kept descriptor stays open for the next transaction
    else ::close(fd_);                 // closing the descriptor releases the flock
  }

 private:
  XtablesLock(int fd, bool kept, std::unique_lock<std::mutex> guard) : fd_(fd), kept_(kept), guard_(std::move(guard)) {}
  int fd_ = -1;
  bool kept_ = false;
  std::unique_lock<std::mutex> guard_;
};

}  // namespace

Result<void> keep_xtables_lock_open(const std::string& configured) {
  const std::string path = xtables_lock_path(configured);
  KeptLock& k = kept_lock();
  std::lock_guard<std::mutex> g(k.in_process);
  if (k.fd >= 0 && k.path == path) return {};
  const int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return make_error("xtables lock " + path + ": " + std::strerror(errno));
  if (k.fd >= 0) ::close(k.fd);
  k.path = path;
  k.fd = fd;
  return {};
}

// A deleted opening rule, kept so that a rollback can put it back (its bytes as the kernel gave
// them: a module target carries its name, so append_entry() takes it as it is). The same for
// both families: the bytes are an ipt_entry or an ip6t_entry, by the table they came from.
struct SavedRule {
  const char* chain;
  OpeningId id;
  std::vector<std::uint8_t> entry;
};

namespace {

using Handle = std::unique_ptr<xtc_handle, void (*)(xtc_handle*)>;

template <class F>
Handle open_table(const char* table) {
  return Handle(F::init(table), &F::free);
}
Handle no_handle() { return Handle(nullptr, nullptr); }

template <class F>
Error xtc_error(const std::string& what) {
  return make_error(what + ": " + F::strerror(errno));
}

// "filter" for IPv4 (the messages of the IPv4-only backend), "ip6tables-legacy filter" for IPv6.
template <class F>
std::string table_label(const char* table) {
  return F::family == Family::v4 ? std::string(table) : std::string(F::tool) + " " + table;
}

// ---- one rule as the kernel stores it: ipt_entry/ip6t_entry, matches, target (each XT_ALIGNed) ----

template <class F>
class RuleBuf {
 public:
  using Entry = typename F::Entry;
  RuleBuf() : b_(XT_ALIGN(sizeof(Entry))) { entry()->target_offset = static_cast<std::uint16_t>(b_.size()); }
  Entry* entry() { return reinterpret_cast<Entry*>(b_.data()); }

  void src(const Address& a) { F::set_source(*entry(), a); }
  void dst(const Address& a) { F::set_destination(*entry(), a); }
  void tcp() { F::set_tcp(*entry()); }

  template <class Info>
  void match(const char* name, std::uint8_t revision, const Info& info) {
    const std::size_t size = XT_ALIGN(sizeof(xt_entry_match)) + XT_ALIGN(sizeof(Info));
    const std::size_t off = b_.size();
    b_.resize(off + size);
    auto* m = reinterpret_cast<xt_entry_match*>(b_.data() + off);
    m->u.user.match_size = static_cast<std::uint16_t>(size);
    std::strncpy(m->u.user.name, name, sizeof(m->u.user.name) - 1);
    m->u.user.revision = revision;
    std::memcpy(m->data, &info, sizeof(Info));
    entry()->target_offset = static_cast<std::uint16_t>(b_.size());
  }

  // ACCEPT, DROP, RETURN or the name of a user chain: libiptc maps the label to a verdict/jump.
  void standard(const char* label) {
    xt_standard_target t{};
    target(label, 0, t, true);
  }

  template <class Info>
  void target(const char* name, std::uint8_t revision, const Info& info, bool standard = false) {
    const std::size_t size = standard ? XT_ALIGN(sizeof(xt_standard_target))
                                      : XT_ALIGN(sizeof(xt_entry_target)) + XT_ALIGN(sizeof(Info));
    const std::size_t off = b_.size();
    b_.resize(off + size);
    auto* t = reinterpret_cast<xt_entry_target*>(b_.data() + off);
    if (!standard) std::memcpy(t->data, &info, sizeof(Info));
    t->u.user.target_size = static_cast<std::uint16_t>(size);
    std::strncpy(t->u.user.name, name, sizeof(t->u.user.name) - 1);
    t->u.user.revision = revision;
    entry()->next_offset = static_cast<std::uint16_t>(b_.size());
  }

 private:
  std::vector<std::uint8_t> b_;
};

xt_comment_info comment_info(const std::string& text) {
  xt_comment_info c{};
  std::strncpy(c.comment, text.c_str(), sizeof(c.comment) - 1);
  return c;
}

// -p tcp -m tcp --dport P[:LAST] --tcp-flags FIN,SYN,RST,ACK SYN: only the first segment of a
// connection (and its retransmissions); a stray ACK or RST to the port never matches. LAST: a
// range opening (per-client FTPS).
xt_tcp tcp_syn_to(std::uint16_t port, std::uint16_t last = 0) {
  xt_tcp t{};
  t.spts[0] = 0;
  t.spts[1] = 0xffff;
  t.dpts[0] = port;
  t.dpts[1] = last ? last : port;
  t.flg_mask = 0x01 | 0x02 | 0x04 | 0x10;  // FIN SYN RST ACK
  t.flg_cmp = 0x02;                          // SYN
  return t;
}

// The --datestop that stands for the opening's monotonic expiry, from the wall clock now.
Result<xt_time_info> time_until(Clock::time_point expires) {
  auto stop = kernel_date_stop(wall_time(expires));
  if (!stop) return stop.error();
  xt_time_info t{};
  t.date_start = 0;
  t.date_stop = *stop;
  t.daytime_start = XT_TIME_MIN_DAYTIME;
  t.daytime_stop = XT_TIME_MAX_DAYTIME;
  t.monthdays_match = XT_TIME_ALL_MONTHDAYS;
  t.weekdays_match = XT_TIME_ALL_WEEKDAYS;
  t.flags = 0;  // UTC (no --kerneltz)
  return t;
}

std::uint32_t be32(const Address& a) {
  std::uint32_t v;
  std::memcpy(&v, a.bytes.data(), 4);
  return v;
}

Address from_be32(std::uint32_t v) {
  Address a;
  std::memcpy(a.bytes.data(), &v, 4);
  return a;
}

// The three parts of an opening. Each matches the first SYN as the packet shows it at that hook:
//   -s SOURCE -d DST -p tcp --dport PORT --tcp-flags FIN,SYN,RST,ACK SYN -m time --datestop EXPIRY
//   -m comment --comment "ftpwall sN oM"
// (/32 in iptables, /128 in ip6tables).
template <class F>
Result<RuleBuf<F>> opening_syn_rule(const Opening& o, const Endpoint& dst) {
  auto t = time_until(o.expires);
  if (!t) return t.error();
  RuleBuf<F> r;
  r.src(o.source);
  r.dst(dst.addr);
  r.tcp();
  r.match("tcp", 0, tcp_syn_to(dst.port, o.port_last));
  r.match("time", 0, *t);
  r.match("comment", 0, comment_info(format_opening_comment(o.id)));
  return r;
}

template <class F>
Result<RuleBuf<F>> accept_rule(const Opening& o) {
  auto rule = opening_syn_rule<F>(o, o.accepted_destination());
  if (!rule) return rule;
  RuleBuf<F>& r = *rule;
  if (o.queue) {  // -j NFQUEUE --queue-num N: the daemon arbitrates the data SYN (one-shot)
    xt_NFQ_info_v3 q{};
    q.queuenum = *o.queue;
    q.queues_total = 1;
    r.target("NFQUEUE", 3, q);
  } else {
    r.standard("ACCEPT");
  }
  return rule;
}

// -j DNAT --to-destination I:Q, revision 2 (nf_nat_range2, kernel >= 4.18), what iptables 1.8.9
// itself writes. Revision 0 (nf_nat_ipv4_multi_range_compat) is accepted by the kernel, but
// iptables >= 1.8.8 prints it as "DNAT [unsupported revision]", which iptables-restore refuses:
// an admin's iptables-save | iptables-restore would then fail on the daemon's rules. IPv4 only.
Result<RuleBuf<Ip4Tables>> dnat_rule(const Opening& o) {
  auto rule = opening_syn_rule<Ip4Tables>(o, o.destination);
  if (!rule) return rule;
  nf_nat_range2 nat{};
  nat.flags = NF_NAT_RANGE_MAP_IPS | (o.is_range() ? 0 : NF_NAT_RANGE_PROTO_SPECIFIED);  // a range keeps its ports
  nat.min_addr.ip = nat.max_addr.ip = be32(o.dnat_to->addr);
  if (!o.is_range()) nat.min_proto.tcp.port = nat.max_proto.tcp.port = htons(o.dnat_to->port);
  rule->target("DNAT", 2, nat);
  return rule;
}

// -j SNAT --to-source A, revision 0 (nf_nat_ipv4_multi_range_compat): what iptables-legacy 1.8.9
// writes for IPv4 SNAT, and the only SNAT revision its save prints (1 and 2 print as "SNAT
// [unsupported revision]"; for DNAT it is the other way round). POSTROUTING sees the destination
// after DNAT. IPv4 only.
Result<RuleBuf<Ip4Tables>> snat_rule(const Opening& o) {
  auto rule = opening_syn_rule<Ip4Tables>(o, o.accepted_destination());
  if (!rule) return rule;
  nf_nat_ipv4_multi_range_compat nat{};
  nat.rangesize = 1;
  nat.range[0].flags = NF_NAT_RANGE_MAP_IPS;
  nat.range[0].min_ip = nat.range[0].max_ip = be32(*o.snat_to);
  rule->target("SNAT", 0, nat);
  return rule;
}

// -p tcp -m comment --comment "ftpwall hook" -j <chain>
template <class F>
RuleBuf<F> jump_rule(const char* chain) {
  RuleBuf<F> r;
  r.tcp();
  r.match("comment", 0, comment_info(hook_comment));
  r.standard(chain);
  return r;
}

// -p tcp -m conntrack --ctorigdstport P [--ctdir ORIGINAL|REPLY] [-m connmark ! --mark M/M]
//   -m comment --comment "ftpwall hook" -j NFQUEUE --queue-num N [--queue-bypass]
// A connection is a control connection because conntrack's original tuple names a control port,
// never because some packet carries port 21: a connection *from* port 21 to another service
// (IMAP, a web server that echoes a line) must never reach the daemon as a session (finding C1 of
// the security review; nf_conntrack_ftp is attached the same way, by the original tuple). Packets
// without a conntrack entry (INVALID) never match. Revision 3 (xt_conntrack_mtinfo3): ports in
// host order as a range, what iptables 1.8 writes.
template <class F>
RuleBuf<F> steer_rule(const HookSpec& spec, std::uint16_t port, CtDir dir) {
  RuleBuf<F> r;
  r.tcp();
  xt_conntrack_mtinfo3 ct{};
  ct.match_flags = XT_CONNTRACK_ORIGDST_PORT;
  ct.origdst_port = ct.origdst_port_high = port;
  if (dir != CtDir::any) {
    ct.match_flags |= XT_CONNTRACK_DIRECTION;
    if (dir == CtDir::reply) ct.invert_flags |= XT_CONNTRACK_DIRECTION;
  }
  r.match("conntrack", 3, ct);
  if (spec.exempt_mark != 0) {
    xt_connmark_mtinfo1 cm{};
    cm.mark = cm.mask = spec.exempt_mark;
    cm.invert = 1;
    r.match("connmark", 1, cm);
  }
  r.match("comment", 0, comment_info(hook_comment));
  xt_NFQ_info_v3 q{};
  q.queuenum = spec.queue_num;
  q.queues_total = 1;
  q.flags = spec.queue_bypass ? NFQ_FLAG_BYPASS : 0;
  r.target("NFQUEUE", 3, q);
  return r;
}

// ---- reading rules back ----

template <class E, class Fn>
void for_each_match(const E* e, Fn&& f) {
  const auto* base = reinterpret_cast<const std::uint8_t*>(e);
  for (std::size_t i = sizeof(E); i < e->target_offset;) {
    const auto* m = reinterpret_cast<const xt_entry_match*>(base + i);
    if (m->u.match_size < sizeof(xt_entry_match)) break;
    f(*m);
    i += m->u.match_size;
  }
}

template <class E>
std::string comment_of(const E* e) {
  std::string out;
  for_each_match(e, [&](const xt_entry_match& m) {
    if (std::strcmp(m.u.user.name, "comment") == 0) {
      const auto* c = reinterpret_cast<const xt_comment_info*>(m.data);
      out.assign(c->comment, strnlen(c->comment, sizeof(c->comment)));
    }
  });
  return out;
}

template <class E>
const xt_entry_target* target_of(const E* e) {
  return reinterpret_cast<const xt_entry_target*>(reinterpret_cast<const std::uint8_t*>(e) + e->target_offset);
}

struct ParsedRule {
  OpeningId id;
  Address src;
  Endpoint dst;
  std::uint16_t port_last = 0;  // --dport P:LAST (a range opening)
  Clock::time_point expires;
  const xt_entry_target* target = nullptr;
};

template <class F>
std::optional<ParsedRule> parse_opening_rule(const typename F::Entry* e) {
  auto id = parse_opening_comment(comment_of(e));
  if (!id) return std::nullopt;
  ParsedRule p;
  p.id = *id;
  p.src = F::source(*e);
  p.dst.addr = F::destination(*e);
  for_each_match(e, [&](const xt_entry_match& m) {
    if (std::strcmp(m.u.user.name, "tcp") == 0) {
      const auto* t = reinterpret_cast<const xt_tcp*>(m.data);
      p.dst.port = t->dpts[0];
      if (t->dpts[1] != t->dpts[0]) p.port_last = t->dpts[1];
    } else if (std::strcmp(m.u.user.name, "time") == 0) {
      p.expires = monotonic_time(WallClock::time_point(
          std::chrono::seconds(reinterpret_cast<const xt_time_info*>(m.data)->date_stop)));
    }
  });
  p.target = target_of(e);
  return p;
}

// Deletes the rules of `chain` whose comment satisfies `pred`, highest index first so the indices
// of the rest stay valid. Returns how many were deleted; `saved`, if given, gets a copy of each
// deleted opening rule.
template <class F>
Result<unsigned> delete_where(xtc_handle* h, const char* chain, const std::function<bool(const std::string&)>& pred,
                              std::vector<SavedRule>* saved = nullptr) {
  std::vector<unsigned> doomed;
  unsigned index = 0;
  for (const auto* e = F::first_rule(chain, h); e; e = F::next_rule(e, h), ++index) {
    const std::string comment = comment_of(e);
    if (!pred(comment)) continue;
    doomed.push_back(index);
    if (auto id = parse_opening_comment(comment); id && saved) {
      const auto* b = reinterpret_cast<const std::uint8_t*>(e);
      SavedRule& r = saved->emplace_back(SavedRule{chain, *id, std::vector<std::uint8_t>(b, b + e->next_offset)});
      // A standard target (ACCEPT, a jump) comes back as a verdict without a name, which
      // append_entry() would take as a fall-through: its label goes back into the copy.
      auto* t = reinterpret_cast<xt_entry_target*>(r.entry.data() + e->target_offset);
      if (t->u.user.name[0] == '\0') std::strncpy(t->u.user.name, F::get_target(e, h), sizeof(t->u.user.name) - 1);
    }
  }
  for (auto it = doomed.rbegin(); it != doomed.rend(); ++it) {
    if (!F::delete_num_entry(chain, *it, h)) return xtc_error<F>(std::string("delete rule in ") + chain);
  }
  return static_cast<unsigned>(doomed.size());
}

bool is_hook(const std::string& c) { return c == hook_comment; }

// An NFQUEUE rule read back: the port from its tcp match (--dport/--sport, the admin's) or its
// conntrack match (--ctorigdstport, ours), the queue from any target revision (0: queuenum;
// 1: + queues_total; 2: + bypass; 3: + flags).
template <class F>
SteeringRule steering_of(const char* chain, const typename F::Entry* e, bool own) {
  SteeringRule r;
  r.chain = chain;
  r.own = own;
  r.family = F::family;
  for_each_match(e, [&](const xt_entry_match& m) {
    if (std::strcmp(m.u.user.name, "tcp") == 0) {
      const auto* t = reinterpret_cast<const xt_tcp*>(m.data);
      if (t->dpts[0] == t->dpts[1]) {
        r.port = t->dpts[0];
        r.match = SteerMatch::dport;
      } else if (t->spts[0] == t->spts[1]) {
        r.port = t->spts[0];
        r.match = SteerMatch::sport;
      }
    } else if (std::strcmp(m.u.user.name, "conntrack") == 0 && m.u.user.revision == 3 &&
               m.u.match_size >= XT_ALIGN(sizeof(xt_entry_match)) + sizeof(xt_conntrack_mtinfo3)) {
      const auto* ct = reinterpret_cast<const xt_conntrack_mtinfo3*>(m.data);
      if ((ct->match_flags & XT_CONNTRACK_ORIGDST_PORT) && !(ct->invert_flags & XT_CONNTRACK_ORIGDST_PORT) &&
          ct->origdst_port == ct->origdst_port_high) {
        r.port = ct->origdst_port;
        r.match = SteerMatch::ct_original_dport;
      }
      if (ct->match_flags & XT_CONNTRACK_DIRECTION)
        r.dir = (ct->invert_flags & XT_CONNTRACK_DIRECTION) ? CtDir::reply : CtDir::original;
    }
  });
  const xt_entry_target* t = target_of(e);
  const std::size_t data = t->u.target_size - XT_ALIGN(sizeof(xt_entry_target));
  const auto* d = reinterpret_cast<const std::uint16_t*>(t->data);  // all revisions start with u16 fields
  if (data >= 2) r.queue_num = d[0];
  if (t->u.user.revision >= 1 && data >= 4) r.queues_total = d[1];
  if (t->u.user.revision >= 2 && data >= 6) r.bypass = d[2] & NFQ_FLAG_BYPASS;
  return r;
}

const char* const builtin_chains[] = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"};

std::vector<std::string> read_table_names(const char* file) {
  std::vector<std::string> out;
  std::ifstream f(file);
  for (std::string t; std::getline(f, t);)
    if (!t.empty()) out.push_back(t);
  return out;
}

// Whether `table` exists in this namespace for family F: looking at a missing one through libiptc
// would create it (and a missing table holds no ftpwall rule).
template <class F>
bool table_exists(const char* table) {
  const auto names = read_table_names(F::tables_file);
  return std::find(names.begin(), names.end(), table) != names.end();
}

}  // namespace

// ---- table transactions ----

namespace {

// Runs `edit` on a snapshot of `table` and commits it if it changed anything; the caller holds the
// xtables lock. The first attempt edits `first` when given (a snapshot the caller already read
// under the same lock), later ones a fresh snapshot: on EAGAIN (another writer replaced the table
// between snapshot and commit) it starts again. `edit` returns whether it changed something;
// `committed`, if given, whether a commit went through.
template <class F>
Result<void> transact_locked(const IptcOptions& opt, BackendStats& stats, const char* table,
                             const std::function<Result<bool>(xtc_handle*)>& edit, Handle first = no_handle(),
                             bool* committed = nullptr) {
  if (committed) *committed = false;
  for (unsigned attempt = 1;; ++attempt) {
    Handle h = first ? std::move(first) : open_table<F>(table);
    if (!h) return xtc_error<F>(std::string(F::tool) + " table " + table);
    auto changed = edit(h.get());
    if (!changed) return changed.error();
    if (!*changed) return {};
    if (opt.fail_commit && opt.fail_commit(F::family == Family::v4 ? std::string(table) : std::string("ip6:") + table)) {
      return make_error("commit of table " + table_label<F>(table) + ": refused by IptcOptions::fail_commit (a test)");
    }
    const auto t0 = std::chrono::steady_clock::now();
    if (F::commit(h.get())) {
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
      ++stats.commits;
      stats.last_commit_us += static_cast<std::uint64_t>(us);
      if (committed) *committed = true;
      return {};
    }
    // EAGAIN: the table changed between our snapshot and SO_SET_REPLACE (its rule count differs).
    // EINVAL after a successful replace: libiptc's second step, SO_SET_ADD_COUNTERS, met a table
    // that a writer ignoring the lock had replaced again in between (seen in 200-adapter-iptc).
    // Every edit here is idempotent on a fresh snapshot (an open first deletes its own id), so
    // both are retried; a rule the kernel really refuses fails the same way every attempt.
    if ((errno != EAGAIN && errno != EINVAL) || attempt >= opt.max_commit_attempts) {
      return xtc_error<F>("commit of table " + table_label<F>(table) + " (attempt " + std::to_string(attempt) + ")");
    }
    ++stats.commit_retries;
  }
}

// The same, taking the xtables lock for this one table.
template <class F>
Result<void> transact(const IptcOptions& opt, BackendStats& stats, const char* table,
                      const std::function<Result<bool>(xtc_handle*)>& edit) {
  auto lock = XtablesLock::acquire(opt.lock_path, opt.lock_timeout);
  if (!lock) return lock.error();
  return transact_locked<F>(opt, stats, table, edit);
}

// The opening ids of the rules in `chain` (none if the chain is missing).
template <class F>
std::set<OpeningId> opening_ids(xtc_handle* h, const char* chain) {
  std::set<OpeningId> ids;
  if (!F::is_chain(chain, h)) return ids;
  for (const auto* e = F::first_rule(chain, h); e; e = F::next_rule(e, h)) {
    if (auto id = parse_opening_comment(comment_of(e))) ids.insert(*id);
  }
  return ids;
}

template <class F>
Result<void> require_chain(xtc_handle* h, const char* chain, const char* table) {
  if (F::is_chain(chain, h)) return {};
  return make_error(std::string(chain) + " is missing in table " + table_label<F>(table) +
                    " (hooks not installed, or removed by an " +
                    (F::family == Family::v4 ? "iptables-restore)" : "ip6tables-restore)"));
}

// The edit of FTPWALL-ACCEPT in one family's filter table for a batch: the rules of `doomed` ids
// go (copies into `removed`), `accept` is appended; `ids` gets the opening ids left in the chain.
template <class F>
Result<bool> edit_accept_chain(xtc_handle* h, const std::function<bool(const std::string&)>& doomed,
                               std::vector<RuleBuf<F>>& accept, std::vector<SavedRule>* removed,
                               std::set<OpeningId>* ids) {
  if (removed) removed->clear();
  if (ids) ids->clear();
  // Closes alone in a family without the chain (admin mode with an IPv4-only ruleset): nothing to do.
  if (accept.empty() && !F::is_chain(accept_chain, h)) return false;
  if (auto ok = require_chain<F>(h, accept_chain, "filter"); !ok) return ok.error();
  auto n = delete_where<F>(h, accept_chain, doomed, removed);
  if (!n) return n.error();
  for (auto& a : accept) {
    if (!F::append_entry(accept_chain, a.entry(), h)) return xtc_error<F>("append to FTPWALL-ACCEPT");
  }
  if (ids) *ids = opening_ids<F>(h, accept_chain);
  return *n > 0 || !accept.empty();
}

// install_hooks() for one family's filter and mangle tables: FTPWALL-ACCEPT and its jumps, then
// the steering last, so that nothing is queued before the chains exist.
template <class F>
Result<void> install_filter_and_steering(const IptcOptions& opt, BackendStats& stats, const HookSpec& spec) {
  const bool gateway = spec.role == Role::gateway;
  auto r = transact<F>(opt, stats, "filter", [&](xtc_handle* h) -> Result<bool> {
    if (!F::is_chain(accept_chain, h) && !F::create_chain(accept_chain, h))
      return xtc_error<F>("create FTPWALL-ACCEPT in " + table_label<F>("filter"));
    for (const char* b : {"INPUT", "FORWARD", "OUTPUT"}) {
      if (auto n = delete_where<F>(h, b, is_hook); !n) return n.error();
    }
    std::vector<const char*> hooks = gateway ? std::vector<const char*>{"FORWARD"} : std::vector<const char*>{"INPUT", "OUTPUT"};
    for (const char* b : hooks) {
      auto j = jump_rule<F>(accept_chain);
      if (!F::insert_entry(b, j.entry(), 0, h)) return xtc_error<F>("hook " + table_label<F>("filter") + " " + b);
    }
    return true;
  });
  if (!r) return r;
  return transact<F>(opt, stats, "mangle", [&](xtc_handle* h) -> Result<bool> {
    for (const char* b : builtin_chains) {
      if (auto n = delete_where<F>(h, b, is_hook); !n) return n.error();
    }
    // gateway: FORWARD sees both directions of a forwarded connection; server: INPUT the client's
    // side (conntrack's original direction), OUTPUT the server's (reply). On a server, the
    // direction match keeps the host's own outgoing FTP client connections out.
    struct Hook { const char* chain; CtDir dir; };
    std::vector<Hook> hooks = gateway ? std::vector<Hook>{{"FORWARD", CtDir::any}}
                                      : std::vector<Hook>{{"INPUT", CtDir::original}, {"OUTPUT", CtDir::reply}};
    // Inserted at the top in reverse, so they end up first and in the order listed.
    for (auto hk = hooks.rbegin(); hk != hooks.rend(); ++hk) {
      for (auto p = spec.control_ports.rbegin(); p != spec.control_ports.rend(); ++p) {
        auto s = steer_rule<F>(spec, *p, hk->dir);
        if (!F::insert_entry(hk->chain, s.entry(), 0, h))
          return xtc_error<F>("hook " + table_label<F>("mangle") + " " + hk->chain);
      }
    }
    return true;
  });
}

// remove_hooks() for one table of one family: own hooks out of the built-in chains, `chains`
// flushed and deleted (flushed only while the admin's jumps reference them). A table that does not
// exist holds nothing of ours and is not created by looking.
template <class F>
Result<void> remove_from_table(const IptcOptions& opt, BackendStats& stats, const char* table,
                               std::initializer_list<const char*> chains) {
  if (!table_exists<F>(table)) return {};
  return transact<F>(opt, stats, table, [&](xtc_handle* h) -> Result<bool> {
    bool changed = false;
    for (const char* b : builtin_chains) {
      if (!F::builtin(b, h)) continue;
      auto n = delete_where<F>(h, b, is_hook);
      if (!n) return n.error();
      changed |= *n > 0;
    }
    for (const char* c : chains) {
      if (!F::is_chain(c, h)) continue;
      if (F::first_rule(c, h)) {
        if (!F::flush_entries(c, h)) return xtc_error<F>(std::string("flush ") + c);
        changed = true;
      }
      unsigned refs = 0;
      if (!F::get_references(&refs, c, h)) return xtc_error<F>(std::string("references of ") + c);
      if (refs == 0) {  // the admin's jumps keep a chain alive (admin mode): flushed only
        if (!F::delete_chain(c, h)) return xtc_error<F>(std::string("delete ") + c);
        changed = true;
      }
    }
    return changed;
  });
}

// -F FTPWALL-ACCEPT (and the nat chains), the caller holding the lock.
template <class F>
Result<void> flush_chains(const IptcOptions& opt, BackendStats& stats, const char* table,
                          std::initializer_list<const char*> chains) {
  return transact_locked<F>(opt, stats, table, [&](xtc_handle* h) -> Result<bool> {
    bool changed = false;
    for (const char* c : chains) {
      if (!F::is_chain(c, h) || !F::first_rule(c, h)) continue;
      if (!F::flush_entries(c, h)) return xtc_error<F>(std::string("flush ") + c);
      changed = true;
    }
    return changed;
  });
}

// The openings of one family's FTPWALL-ACCEPT (the filter table must exist).
template <class F>
Result<void> read_accept_chain(std::map<OpeningId, Opening>& found, std::set<OpeningId>* ids) {
  Handle h = open_table<F>("filter");
  if (!h) return xtc_error<F>(std::string(F::tool) + " table filter");
  if (!F::is_chain(accept_chain, h.get())) return {};
  for (const auto* e = F::first_rule(accept_chain, h.get()); e; e = F::next_rule(e, h.get())) {
    auto p = parse_opening_rule<F>(e);
    if (!p) continue;
    Opening& o = found[p->id];
    o.id = p->id;
    o.family = F::family;
    o.source = p->src;
    o.destination = p->dst;
    o.port_last = p->port_last;
    o.expires = p->expires;
    if (std::strcmp(p->target->u.user.name, "NFQUEUE") == 0 && p->target->u.user.revision == 3 &&
        p->target->u.target_size >= XT_ALIGN(sizeof(xt_entry_target)) + sizeof(xt_NFQ_info_v3)) {
      o.queue = reinterpret_cast<const xt_NFQ_info_v3*>(p->target->data)->queuenum;
    }
    if (ids) ids->insert(p->id);
  }
  return {};
}

// What hook_state() counts in one table of one family.
struct TableCounts {
  unsigned own_hooks = 0, foreign_jumps = 0, foreign_queue = 0, openings = 0;
  bool accept_chain = false, dnat_chain = false, snat_chain = false;
};

template <class F>
Result<void> scan_table(const char* table, TableCounts& c, std::vector<SteeringRule>& steering) {
  Handle h = open_table<F>(table);
  if (!h) return xtc_error<F>(std::string(F::tool) + " table " + table);
  if (std::strcmp(table, "filter") == 0) {
    c.accept_chain = F::is_chain(accept_chain, h.get());
    if (c.accept_chain) {
      for (const auto* e = F::first_rule(accept_chain, h.get()); e; e = F::next_rule(e, h.get()))
        c.openings += parse_opening_comment(comment_of(e)).has_value();
    }
  } else if (std::strcmp(table, "nat") == 0) {
    c.dnat_chain = F::is_chain(dnat_chain, h.get());
    c.snat_chain = F::is_chain(snat_chain, h.get());
  }
  for (const char* ch = F::first_chain(h.get()); ch; ch = F::next_chain(h.get())) {
    for (const auto* e = F::first_rule(ch, h.get()); e; e = F::next_rule(e, h.get())) {
      const bool own = is_hook(comment_of(e));
      const std::string target = F::get_target(e, h.get());
      if (own) {
        ++c.own_hooks;
      } else if (target == accept_chain || target == dnat_chain || target == snat_chain) {
        ++c.foreign_jumps;
      } else if (target == "NFQUEUE" && !parse_opening_comment(comment_of(e))) {
        ++c.foreign_queue;
      }
      if (target == "NFQUEUE" && std::strcmp(table, "mangle") == 0) steering.push_back(steering_of<F>(ch, e, own));
    }
  }
  return {};
}

// Where the admin has rules in family F's legacy tables (IptcBackend::admin_rules()).
template <class F>
Result<std::string> admin_rules_of() {
  const std::string prefix = F::family == Family::v4 ? "" : "ip6tables ";
  for (const std::string& table : read_table_names(F::tables_file)) {
    Handle h = open_table<F>(table.c_str());
    if (!h) return xtc_error<F>(std::string(F::tool) + " table " + table);
    for (const char* c = F::first_chain(h.get()); c; c = F::next_chain(h.get())) {
      const std::string chain = c;
      if (chain == accept_chain || chain == dnat_chain || chain == snat_chain) continue;
      if (F::builtin(c, h.get())) {
        xt_counters counters{};
        const char* policy = F::get_policy(c, &counters, h.get());
        if (policy && std::strcmp(policy, "ACCEPT") != 0) return prefix + table + " " + chain + " policy " + policy;
      } else {
        return prefix + table + " chain " + chain;
      }
      unsigned rules = 0;
      for (const auto* e = F::first_rule(c, h.get()); e; e = F::next_rule(e, h.get())) rules += !is_hook(comment_of(e));
      if (rules > 0)
        return prefix + table + " " + chain + " " + std::to_string(rules) + (rules == 1 ? " rule" : " rules");
    }
  }
  return std::string{};
}

}  // namespace

// ---- IPv6: whether this host has ip6tables-legacy at all ----

Ip6Support classify_ip6tables_probe(int socket_errno, int getinfo_errno) {
  if (socket_errno == EAFNOSUPPORT)
    return {Ip6Support::State::unavailable, "the kernel has no IPv6 (AF_INET6 not supported: ipv6.disable=1?)"};
  if (socket_errno != 0)
    return {Ip6Support::State::error, std::string("ip6tables-legacy: raw IPv6 socket: ") + std::strerror(socket_errno)};
  // ENOENT: ip6_tables answered that the (empty) table name does not exist: it is there.
  if (getinfo_errno == 0 || getinfo_errno == ENOENT) return {Ip6Support::State::available, {}};
  if (getinfo_errno == ENOPROTOOPT)
    return {Ip6Support::State::unavailable,
            "the kernel has no ip6_tables (ip6tables-legacy; CONFIG_IP6_NF_IPTABLES[_LEGACY] off or the module missing)"};
  return {Ip6Support::State::error, std::string("ip6tables-legacy: ") + std::strerror(getinfo_errno)};
}

// One raw IPv6 socket and one IP6T_SO_GET_INFO for the empty table name: no table has it, so
// ip6_tables answers ENOENT, and nothing is created (asking for "filter" would instantiate it).
Ip6Support probe_ip6tables() {
  const int fd = ::socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  if (fd < 0) return classify_ip6tables_probe(errno, 0);
  ip6t_getinfo info{};
  socklen_t len = sizeof info;
  const int r = ::getsockopt(fd, IPPROTO_IPV6, IP6T_SO_GET_INFO, &info, &len);
  const int err = r == 0 ? 0 : errno;
  ::close(fd);
  return classify_ip6tables_probe(0, err);
}

IptcBackend::IptcBackend(IptcOptions options) : options_(std::move(options)) {}

Result<bool> IptcBackend::ip6_serves() {
  if (ip6_.state == Ip6Support::State::error || !ip6_known_) {
    ip6_ = options_.probe_ip6 ? options_.probe_ip6() : probe_ip6tables();
    ip6_known_ = ip6_.state != Ip6Support::State::error;
  }
  if (ip6_.state == Ip6Support::State::error) return make_error(ip6_.why);
  return ip6_.state == Ip6Support::State::available;
}

namespace {

bool one_family(const Opening& o) {
  const Family f = o.family;
  return o.source.family == f && o.destination.addr.family == f && (!o.dnat_to || o.dnat_to->addr.family == f) &&
         (!o.snat_to || o.snat_to->family == f);
}

Result<void> check_opening(const Opening& o) {
  const std::string name = "opening " + format_opening_comment(o.id).substr(8);
  if (!one_family(o)) return make_error("iptables-legacy backend: " + name + " mixes IPv4 and IPv6 addresses");
  if (o.family == Family::v6 && (o.dnat_to || o.snat_to))
    return make_error("iptables-legacy backend: IPv6 " + name + " has a NAT part: NAT66 is not supported");
  return {};
}

// An opening comment naming one of `ids`.
auto names_one_of(const std::set<OpeningId>& ids) {
  return [&ids](const std::string& comment) {
    auto id = parse_opening_comment(comment);
    return id && ids.contains(*id);
  };
}

bool any_of_ids(const std::set<OpeningId>& a, const std::set<OpeningId>& b) {
  return std::any_of(a.begin(), a.end(), [&](const OpeningId& id) { return b.contains(id); });
}

}  // namespace

// Whether a batch, a close or a flush must look at ip6tables filter: IPv6 openings may be there
// (the table exists), and the ids it names are there or the backend has not read it yet.
bool IptcBackend::ip6_touch(const std::set<OpeningId>& ids, bool installs) {
  if (installs) return true;
  if (ip6_ids_known_ && !any_of_ids(ids, ip6_ids_)) return false;
  return table_exists<Ip6Tables>("filter");
}

// One batch, as its net effect (net_effect(): L5 of the security review), under one hold of the
// xtables lock: a lock-respecting writer (iptables -w, iptables-restore -w) never sees, nor edits,
// the state between the commits. The order and the rollback are explained at Change in
// backend.hpp: nat first, then filter; if filter fails after nat was committed, the nat edit is
// undone (L6). IPv6 openings (ip6tables filter, no NAT parts) are committed before all of IPv4:
// if an IPv4 commit then fails, the ip6tables edit is undone too.
Result<void> IptcBackend::apply(std::span<const Change> changes) {
  bool any6 = false;
  for (const auto& c : changes) {
    const auto* o = std::get_if<OpenStep>(&c);
    if (!o) continue;
    if (auto ok = check_opening(o->opening); !ok) return ok;
    any6 |= o->opening.family == Family::v6;
  }
  if (any6) {
    auto serves = ip6_serves();
    if (!serves) return serves.error();
    if (!*serves) return make_error("iptables-legacy backend: IPv6 openings refused: " + ip6_.why);
  }
  const BatchEffect effect = net_effect(changes);
  if (effect.touched.empty()) return {};
  const std::set<OpeningId> touched(effect.touched.begin(), effect.touched.end());

  // Every rule first: an opening the kernel cannot express fails the batch before any commit.
  std::vector<RuleBuf<Ip4Tables>> accept, dnat, snat;
  std::vector<RuleBuf<Ip6Tables>> accept6;
  for (const auto& o : effect.installs) {
    if (o.family == Family::v6) {
      auto a = accept_rule<Ip6Tables>(o);
      if (!a) return a.error();
      accept6.push_back(std::move(*a));
      continue;
    }
    auto a = accept_rule<Ip4Tables>(o);
    if (!a) return a.error();
    accept.push_back(std::move(*a));
    if (o.dnat_to) {
      auto r = dnat_rule(o);
      if (!r) return r.error();
      dnat.push_back(std::move(*r));
    }
    if (o.snat_to) {
      auto r = snat_rule(o);
      if (!r) return r.error();
      snat.push_back(std::move(*r));
    }
  }

  const auto t0 = std::chrono::steady_clock::now();
  stats_.last_commit_us = 0;
  auto finish = [&](Result<void> r) {
    stats_.last_apply_us = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
    stats_.max_apply_us = std::max(stats_.max_apply_us, stats_.last_apply_us);
    return r;
  };

  auto lock = XtablesLock::acquire(options_.lock_path, options_.lock_timeout);
  if (!lock) return finish(lock.error());
  // The filter snapshot first: FTPWALL-ACCEPT must exist before anything goes to nat, and its
  // openings tell which NAT parts have lost their ACCEPT (they are removed with this batch's edit).
  Handle filter = open_table<Ip4Tables>("filter");
  if (!filter) return finish(xtc_error<Ip4Tables>("iptables-legacy table filter"));
  if (auto ok = require_chain<Ip4Tables>(filter.get(), accept_chain, "filter"); !ok) return finish(ok.error());
  const std::set<OpeningId> accepted = opening_ids<Ip4Tables>(filter.get(), accept_chain);

  auto doomed = names_one_of(touched);
  std::vector<SavedRule> removed6;  // what the ip6tables edit deleted: a rollback puts it back
  bool ip6_committed = false;
  if (ip6_touch(touched, !accept6.empty())) {
    std::set<OpeningId> ids6;
    auto r6 = transact_locked<Ip6Tables>(
        options_, stats_, "filter",
        [&](xtc_handle* h) { return edit_accept_chain<Ip6Tables>(h, doomed, accept6, &removed6, &ids6); }, no_handle(),
        &ip6_committed);
    if (!r6) return finish(r6);
    ip6_ids_ = std::move(ids6);
    ip6_ids_known_ = true;
  }
  // An IPv4 step failed after the ip6tables commit: that edit is undone, and both are reported.
  auto fail = [&](const std::string& message) {
    if (!ip6_committed) return finish(make_error(message));
    auto undo = rollback_ip6(touched, removed6);
    return finish(make_error(message + (undo ? std::string("; the batch's ip6tables edit was rolled back")
                                             : "; rolling back the batch's ip6tables edit failed too (" +
                                                   undo.error().message + ")")));
  };

  bool nat_needed = sweep_pending_ || !dnat.empty() || !snat.empty();
  // A backend that has not yet read the nat table (a new process) cannot know whether the openings
  // it closes have NAT parts: it looks once.
  for (const auto& id : touched) nat_needed |= !nat_parts_known_ || nat_parts_.contains(id);
  for (const auto& id : nat_parts_) nat_needed |= !accepted.contains(id);

  std::vector<SavedRule> removed;  // what the nat edit deleted: a rollback puts back what still has its ACCEPT
  bool nat_committed = false;
  if (nat_needed) {
    auto gone = [&](const std::string& comment) {
      auto id = parse_opening_comment(comment);
      return id && (touched.contains(*id) || !accepted.contains(*id));
    };
    std::set<OpeningId> seen;
    auto done = transact_locked<Ip4Tables>(
        options_, stats_, "nat",
        [&](xtc_handle* h) -> Result<bool> {
          seen.clear();
          removed.clear();
          if (dnat.empty() && snat.empty() && (!iptc_is_chain(dnat_chain, h) || !iptc_is_chain(snat_chain, h))) {
            return false;  // removals only, and no NAT chains: nothing to remove
          }
          if (auto ok = require_chain<Ip4Tables>(h, dnat_chain, "nat"); !ok) return ok.error();
          if (auto ok = require_chain<Ip4Tables>(h, snat_chain, "nat"); !ok) return ok.error();
          auto n1 = delete_where<Ip4Tables>(h, dnat_chain, gone, &removed);
          if (!n1) return n1.error();
          auto n2 = delete_where<Ip4Tables>(h, snat_chain, gone, &removed);
          if (!n2) return n2.error();
          for (auto& r : dnat) {
            if (!iptc_append_entry(dnat_chain, r.entry(), h)) return xtc_error<Ip4Tables>("append to FTPWALL-DNAT");
          }
          for (auto& r : snat) {
            if (!iptc_append_entry(snat_chain, r.entry(), h)) return xtc_error<Ip4Tables>("append to FTPWALL-SNAT");
          }
          for (const char* chain : {dnat_chain, snat_chain}) {
            for (auto& id : opening_ids<Ip4Tables>(h, chain)) seen.insert(id);
          }
          return *n1 + *n2 > 0 || !dnat.empty() || !snat.empty();
        },
        no_handle(), &nat_committed);
    if (!done) return fail(done.error().message);  // nothing of IPv4 was committed
    nat_parts_ = std::move(seen);  // exact after every nat transaction
    nat_parts_known_ = true;
    sweep_pending_ = false;
  }

  auto r = transact_locked<Ip4Tables>(
      options_, stats_, "filter",
      [&](xtc_handle* h) { return edit_accept_chain<Ip4Tables>(h, doomed, accept, nullptr, nullptr); },
      std::move(filter));
  if (r) return finish(r);
  if (!nat_committed) return fail(r.error().message);
  auto undo = rollback_nat(touched, removed);
  return fail(r.error().message +
              (undo ? std::string("; the batch's nat edit was rolled back")
                    : "; rolling back the batch's nat edit failed too (" + undo.error().message +
                          "): its NAT parts go with the next nat transaction"));
}

// An IPv4 commit of a batch failed after its ip6tables commit (the lock still held): the batch's
// ids lose their rules in ip6tables filter, and what the batch deleted there is put back.
Result<void> IptcBackend::rollback_ip6(const std::set<OpeningId>& touched, const std::vector<SavedRule>& removed) {
  ip6_ids_known_ = false;
  std::set<OpeningId> ids;
  auto r = transact_locked<Ip6Tables>(options_, stats_, "filter", [&](xtc_handle* h) -> Result<bool> {
    if (!ip6tc_is_chain(accept_chain, h)) return false;
    auto n = delete_where<Ip6Tables>(h, accept_chain, names_one_of(touched));
    if (!n) return n.error();
    for (const auto& s : removed) {
      if (!ip6tc_append_entry(s.chain, reinterpret_cast<const ip6t_entry*>(s.entry.data()), h))
        return xtc_error<Ip6Tables>(std::string("put back into ") + s.chain);
    }
    ids = opening_ids<Ip6Tables>(h, accept_chain);
    return *n > 0 || !removed.empty();
  });
  if (!r) return r;
  ip6_ids_ = std::move(ids);
  ip6_ids_known_ = true;
  return {};
}

// The filter commit of a batch failed after its nat commit (the lock still held): nat goes back to
// where it was, except for NAT parts whose ACCEPT is not in filter, which go in any case. So: the
// rules of the batch's ids are deleted, the NAT rules the batch deleted are put back if their
// ACCEPT is there, and every other NAT part without its ACCEPT is deleted.
Result<void> IptcBackend::rollback_nat(const std::set<OpeningId>& touched, const std::vector<SavedRule>& removed) {
  sweep_pending_ = true;  // until this succeeds
  nat_parts_known_ = false;
  Handle f = open_table<Ip4Tables>("filter");
  if (!f) return xtc_error<Ip4Tables>("iptables-legacy table filter");
  const std::set<OpeningId> accepted = opening_ids<Ip4Tables>(f.get(), accept_chain);
  auto gone = [&](const std::string& comment) {
    auto id = parse_opening_comment(comment);
    return id && (touched.contains(*id) || !accepted.contains(*id));
  };
  std::set<OpeningId> seen;
  auto r = transact_locked<Ip4Tables>(options_, stats_, "nat", [&](xtc_handle* h) -> Result<bool> {
    seen.clear();
    unsigned changed = 0;
    for (const char* chain : {dnat_chain, snat_chain}) {
      if (!iptc_is_chain(chain, h)) continue;
      auto n = delete_where<Ip4Tables>(h, chain, gone);
      if (!n) return n.error();
      changed += *n;
    }
    for (const auto& s : removed) {
      if (!accepted.contains(s.id) || !iptc_is_chain(s.chain, h)) continue;
      if (!iptc_append_entry(s.chain, reinterpret_cast<const ipt_entry*>(s.entry.data()), h))
        return xtc_error<Ip4Tables>(std::string("put back into ") + s.chain);
      ++changed;
    }
    for (const char* chain : {dnat_chain, snat_chain}) {
      for (auto& id : opening_ids<Ip4Tables>(h, chain)) seen.insert(id);
    }
    return changed > 0;
  });
  if (!r) return r;
  nat_parts_ = std::move(seen);
  nat_parts_known_ = true;
  sweep_pending_ = false;
  return {};
}

Result<void> IptcBackend::close_session(std::uint64_t session) {
  auto of_session = [session](const std::string& comment) {
    auto id = parse_opening_comment(comment);
    return id && id->session == session;
  };
  auto lock = XtablesLock::acquire(options_.lock_path, options_.lock_timeout);
  if (!lock) return lock.error();
  // IPv6 first: its openings have no NAT parts, nothing to roll back.
  std::set<OpeningId> of_session6;
  for (const auto& id : ip6_ids_)
    if (id.session == session) of_session6.insert(id);
  if ((!ip6_ids_known_ || !of_session6.empty()) && table_exists<Ip6Tables>("filter")) {
    std::set<OpeningId> ids6;
    auto r6 = transact_locked<Ip6Tables>(options_, stats_, "filter", [&](xtc_handle* h) -> Result<bool> {
      if (!ip6tc_is_chain(accept_chain, h)) return false;
      auto n = delete_where<Ip6Tables>(h, accept_chain, of_session);
      if (!n) return n.error();
      ids6 = opening_ids<Ip6Tables>(h, accept_chain);
      return *n > 0;
    });
    if (!r6) return r6;
    ip6_ids_ = std::move(ids6);
    ip6_ids_known_ = true;
  }
  Handle filter = open_table<Ip4Tables>("filter");
  if (!filter) return xtc_error<Ip4Tables>("iptables-legacy table filter");
  const std::set<OpeningId> accepted = opening_ids<Ip4Tables>(filter.get(), accept_chain);
  // nat first (see Change in backend.hpp), and rolled back as in apply() if filter then fails. NAT
  // parts without their ACCEPT go with the session's.
  bool nat = !nat_parts_known_ || sweep_pending_;
  for (const auto& id : nat_parts_) nat |= id.session == session || !accepted.contains(id);
  std::vector<SavedRule> removed;
  bool nat_committed = false;
  if (nat) {
    auto gone = [&](const std::string& comment) {
      auto id = parse_opening_comment(comment);
      return id && (id->session == session || !accepted.contains(*id));
    };
    std::set<OpeningId> seen;
    auto r = transact_locked<Ip4Tables>(options_, stats_, "nat", [&](xtc_handle* h) -> Result<bool> {
      seen.clear();
      removed.clear();
      unsigned total = 0;
      for (const char* chain : {dnat_chain, snat_chain}) {
        if (!iptc_is_chain(chain, h)) continue;
        auto n = delete_where<Ip4Tables>(h, chain, gone, &removed);
        if (!n) return n.error();
        total += *n;
        for (auto& id : opening_ids<Ip4Tables>(h, chain)) seen.insert(id);
      }
      return total > 0;
    }, no_handle(), &nat_committed);
    if (!r) return r;
    nat_parts_ = std::move(seen);
    nat_parts_known_ = true;
    sweep_pending_ = false;
  }
  auto r = transact_locked<Ip4Tables>(
      options_, stats_, "filter",
      [&](xtc_handle* h) -> Result<bool> {
        if (!iptc_is_chain(accept_chain, h)) return false;
        auto n = delete_where<Ip4Tables>(h, accept_chain, of_session);
        if (!n) return n.error();
        return *n > 0;
      },
      std::move(filter));
  if (r || !nat_committed) return r;
  auto undo = rollback_nat({}, removed);
  return make_error(r.error().message + (undo ? std::string("; the nat edit was rolled back")
                                              : "; rolling back the nat edit failed too (" + undo.error().message +
                                                    "): its NAT parts go with the next nat transaction"));
}

// nat first, then filter, under one hold of the lock (see Change in backend.hpp); ip6tables filter
// where it exists.
Result<void> IptcBackend::flush_own() {
  auto lock = XtablesLock::acquire(options_.lock_path, options_.lock_timeout);
  if (!lock) return lock.error();
  if (auto r = flush_chains<Ip4Tables>(options_, stats_, "nat", {dnat_chain, snat_chain}); !r) return r;
  nat_parts_.clear();
  nat_parts_known_ = true;
  sweep_pending_ = false;
  if (auto r = flush_chains<Ip4Tables>(options_, stats_, "filter", {accept_chain}); !r) return r;
  if (table_exists<Ip6Tables>("filter")) {
    if (auto r = flush_chains<Ip6Tables>(options_, stats_, "filter", {accept_chain}); !r) return r;
  }
  ip6_ids_.clear();
  ip6_ids_known_ = true;
  return {};
}

Result<std::vector<Opening>> IptcBackend::list_own() {
  // Under the lock: a batch of this or another ftpwall process is never seen half done (its DNAT
  // committed, its ACCEPT not yet), which would look like an orphan.
  auto lock = XtablesLock::acquire(options_.lock_path, options_.lock_timeout);
  if (!lock) return lock.error();
  std::map<OpeningId, Opening> found;
  if (auto r = read_accept_chain<Ip4Tables>(found, nullptr); !r) return r.error();
  if (table_exists<Ip6Tables>("filter")) {
    std::set<OpeningId> ids6;
    if (auto r = read_accept_chain<Ip6Tables>(found, &ids6); !r) return r.error();
    ip6_ids_ = std::move(ids6);
  } else {
    ip6_ids_.clear();
  }
  ip6_ids_known_ = true;
  Handle h = open_table<Ip4Tables>("nat");
  if (!h) return xtc_error<Ip4Tables>("iptables-legacy table nat");
  nat_parts_.clear();
  bool orphans = false;
  for (const char* chain : {dnat_chain, snat_chain}) {
    if (!iptc_is_chain(chain, h.get())) continue;
    for (const ipt_entry* e = iptc_first_rule(chain, h.get()); e; e = iptc_next_rule(e, h.get())) {
      auto p = parse_opening_rule<Ip4Tables>(e);
      if (!p) continue;
      auto it = found.find(p->id);
      if (it == found.end() || it->second.family != Family::v4) {  // a NAT part without its ACCEPT: removed below
        orphans = true;
        continue;
      }
      nat_parts_.insert(p->id);
      const std::size_t data = p->target->u.target_size - XT_ALIGN(sizeof(xt_entry_target));
      if (chain == dnat_chain && p->target->u.user.revision == 2 && data >= sizeof(nf_nat_range2)) {
        const auto* nat = reinterpret_cast<const nf_nat_range2*>(p->target->data);
        it->second.destination = p->dst;
        it->second.dnat_to = Endpoint{from_be32(nat->min_addr.ip), (nat->flags & NF_NAT_RANGE_PROTO_SPECIFIED)
                                                                        ? ntohs(nat->min_proto.tcp.port)
                                                                        : p->dst.port};
      } else if (chain == snat_chain && p->target->u.user.revision == 0 && data >= sizeof(nf_nat_ipv4_multi_range_compat)) {
        const auto* nat = reinterpret_cast<const nf_nat_ipv4_multi_range_compat*>(p->target->data);
        it->second.snat_to = from_be32(nat->range[0].min_ip);
      }
    }
  }
  nat_parts_known_ = true;
  if (orphans) {
    // A failed rollback, or the admin's restore of filter alone: a DNAT left without its ACCEPT
    // may admit what the daemon never arbitrates (L6). A failure here is not list_own()'s: the
    // next nat transaction removes them (sweep_pending_).
    h.reset();
    auto r = transact_locked<Ip4Tables>(options_, stats_, "nat", [&](xtc_handle* t) -> Result<bool> {
      unsigned n = 0;
      for (const char* chain : {dnat_chain, snat_chain}) {
        if (!iptc_is_chain(chain, t)) continue;
        auto d = delete_where<Ip4Tables>(t, chain, [&](const std::string& comment) {
          auto id = parse_opening_comment(comment);
          return id && !(found.contains(*id) && found.at(*id).family == Family::v4);
        });
        if (!d) return d.error();
        n += *d;
      }
      return n > 0;
    });
    sweep_pending_ = !r;
  }
  std::vector<Opening> out;
  out.reserve(found.size());
  for (auto& [id, o] : found) out.push_back(std::move(o));
  return out;
}

Result<void> IptcBackend::install_hooks(const HookSpec& spec) {
  // ip6tables first decides whether IPv6 is served at all (preflight() said so with a warning).
  auto serves6 = ip6_serves();
  if (!serves6) return serves6.error();
  // nat, then filter, then the steering last: nothing is queued before its chains exist.
  if (spec.nat) {
    auto r = transact<Ip4Tables>(options_, stats_, "nat", [&](xtc_handle* h) -> Result<bool> {
      for (const char* chain : {dnat_chain, snat_chain}) {
        if (!iptc_is_chain(chain, h) && !iptc_create_chain(chain, h))
          return xtc_error<Ip4Tables>(std::string("create ") + chain);
      }
      for (const char* b : {"PREROUTING", "POSTROUTING", "OUTPUT", "INPUT"}) {
        if (auto n = delete_where<Ip4Tables>(h, b, is_hook); !n) return n.error();
      }
      auto d = jump_rule<Ip4Tables>(dnat_chain);
      auto s = jump_rule<Ip4Tables>(snat_chain);
      if (!iptc_insert_entry("PREROUTING", d.entry(), 0, h)) return xtc_error<Ip4Tables>("hook nat PREROUTING");
      if (!iptc_insert_entry("POSTROUTING", s.entry(), 0, h)) return xtc_error<Ip4Tables>("hook nat POSTROUTING");
      return true;
    });
    if (!r) return r;
  }
  if (auto r = install_filter_and_steering<Ip4Tables>(options_, stats_, spec); !r) return r;
  // IPv6: the same filter chain, jumps and steering in ip6tables-legacy; no nat (NAT66 is not
  // supported, so IPv6 openings never have NAT parts).
  if (*serves6) {
    if (auto r = install_filter_and_steering<Ip6Tables>(options_, stats_, spec); !r) return r;
  }
  installed_ = spec;
  return {};
}

Result<void> IptcBackend::remove_hooks() {
  // The steering first (stop queueing), then nat before filter: a failure in between leaves ACCEPT
  // parts without their NAT parts, never a DNAT without its ACCEPT (see Change in backend.hpp).
  // Both families; a table that does not exist is not looked at (it would be created).
  if (auto r = remove_from_table<Ip4Tables>(options_, stats_, "mangle", {}); !r) return r;
  if (auto r = remove_from_table<Ip6Tables>(options_, stats_, "mangle", {}); !r) return r;
  if (auto r = remove_from_table<Ip4Tables>(options_, stats_, "nat", {dnat_chain, snat_chain}); !r) return r;
  nat_parts_.clear();
  nat_parts_known_ = true;
  sweep_pending_ = false;
  if (auto r = remove_from_table<Ip4Tables>(options_, stats_, "filter", {accept_chain}); !r) return r;
  if (auto r = remove_from_table<Ip6Tables>(options_, stats_, "filter", {accept_chain}); !r) return r;
  ip6_ids_.clear();
  ip6_ids_known_ = true;
  installed_.reset();
  return {};
}

Result<HookState> IptcBackend::hook_state() {
  HookState s;
  TableCounts c4;
  // nat, filter, mangle: the order install_hooks() creates them in, so that a preflight() in a
  // fresh namespace leaves them in the order an install alone would (iptables-save lists them so).
  for (const char* table : {"nat", "filter", "mangle"}) {
    if (auto r = scan_table<Ip4Tables>(table, c4, s.steering); !r) return r.error();
  }
  s.accept_chain = c4.accept_chain;
  s.dnat_chain = c4.dnat_chain;
  s.snat_chain = c4.snat_chain;
  s.own_hooks = c4.own_hooks;
  s.foreign_jumps = c4.foreign_jumps;
  s.foreign_queue = c4.foreign_queue;
  s.openings = c4.openings;
  auto serves6 = ip6_serves();
  if (!serves6) return serves6.error();
  if (*serves6) {
    // Only the ip6tables tables that exist: a missing one holds none of our rules.
    TableCounts c6;
    for (const char* table : {"filter", "mangle"}) {
      if (!table_exists<Ip6Tables>(table)) continue;
      if (auto r = scan_table<Ip6Tables>(table, c6, s.steering); !r) return r.error();
    }
    s.ip6 = FamilyHookState{c6.accept_chain, c6.own_hooks, c6.openings};
    s.own_hooks += c6.own_hooks;
    s.foreign_jumps += c6.foreign_jumps;
    s.foreign_queue += c6.foreign_queue;
    s.openings += c6.openings;
  }
  if (installed_) {
    // What the last install_hooks() of this process put in place, per family.
    HookSpec v6 = *installed_;
    v6.nat = false;
    bool complete = c4.accept_chain && c4.own_hooks >= expected_own_hooks(*installed_) &&
                    (!installed_->nat || (c4.dnat_chain && c4.snat_chain));
    if (s.ip6) complete = complete && s.ip6->accept_chain && s.ip6->own_hooks >= expected_own_hooks(v6);
    s.hooks_complete = complete;
  }
  return s;
}

std::vector<std::string> IptcBackend::existing_tables() { return read_table_names(Ip4Tables::tables_file); }
std::vector<std::string> IptcBackend::existing_tables(Family f) {
  return read_table_names(f == Family::v4 ? Ip4Tables::tables_file : Ip6Tables::tables_file);
}

Result<std::string> IptcBackend::admin_rules() {
  auto v4 = admin_rules_of<Ip4Tables>();
  if (!v4 || !v4->empty()) return v4;
  return admin_rules_of<Ip6Tables>();
}

Result<std::vector<std::string>> IptcBackend::preflight(const HookSpec& spec, bool daemon_hooks) {
  std::vector<std::string> warnings;
  if (spec.queues_total > 1)
    return make_error("iptables-legacy: more than one queue ([queue] count) needs the nftables backend: "
                      "libiptc commits replace whole tables, so only one thread may write them");
  auto serves6 = ip6_serves();
  if (!serves6) return make_error("iptables-legacy: " + serves6.error().message);
  if (!*serves6)
    warnings.push_back("ip6tables-legacy is not available: " + ip6_.why +
                       "; IPv6 FTP sessions are not steered to ftpwalld and IPv6 openings are refused (IPv4 only)");
  auto state = hook_state();
  if (!state) return make_error("iptables-legacy: " + state.error().message);
  const auto is_control = [&](std::uint16_t p) {
    return std::find(spec.control_ports.begin(), spec.control_ports.end(), p) != spec.control_ports.end();
  };
  if (daemon_hooks) {
    // One owner for hooks: the admin's jumps to FTPWALL-* or their own NFQUEUE steering next to
    // ours would queue or accept twice.
    if (state->foreign_jumps > 0)
      return make_error("hooks = \"daemon\", but the ruleset already jumps to FTPWALL-* itself (" +
                        std::to_string(state->foreign_jumps) +
                        " rules): both sets of hooks would be present; set hooks = \"admin\" or remove those jumps");
    for (const auto& st : state->steering) {
      if (!st.own && is_control(st.port))
        return make_error("hooks = \"daemon\", but " + std::string(st.family == Family::v6 ? "ip6tables " : "") +
                          "mangle " + st.chain + " already queues port " + std::to_string(st.port) + " (NFQUEUE " +
                          std::to_string(st.queue_num) +
                          ") without the \"ftpwall hook\" comment: both sets of hooks would be present");
    }
  } else if (!state->accept_chain) {
    return make_error("hooks = \"admin\", but the filter table has no FTPWALL-ACCEPT chain: load the ruleset "
                      "from `ftpwall rules --helper ftpwalld --hooks admin` first");
  } else if (state->ip6 && !state->ip6->accept_chain) {
    // An IPv4-only admin ruleset keeps working; its IPv6 openings would fail one by one.
    warnings.push_back("hooks = \"admin\", but the ip6tables-legacy filter table has no FTPWALL-ACCEPT chain: IPv6 "
                       "openings fail until the ip6tables ruleset declares it (`ftpwall rules --helper ftpwalld "
                       "--hooks admin --family 6`)");
  }
  // A legacy ACCEPT cannot override an nft DROP at the same hook.
  const std::vector<netlink::Hook> hooks = spec.role == Role::gateway
                                               ? std::vector<netlink::Hook>{netlink::Hook::forward}
                                               : std::vector<netlink::Hook>{netlink::Hook::input, netlink::Hook::output};
  if (auto chains = netlink::list_nft_base_chains(); chains) {
    auto c = netlink::nft_conflicts(*chains, hooks);
    if (!c.dropping.empty())
      return make_error("nftables chain " + c.dropping.front().to_string() +
                        " drops at the hook ftpwalld opens (an iptables-legacy ACCEPT cannot override an nft DROP): "
                        "use backend = \"nftables\", or move the FTP rules into one ruleset");
    for (const auto& f : c.filtering)
      warnings.push_back("nftables chain " + f.to_string() +
                         " filters at the same hook: its rules must accept ftpwalld's data connections");
  }
  return warnings;
}

}  // namespace ftpwall::firewall
