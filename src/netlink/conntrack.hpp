// SPDX-License-Identifier: GPL-2.0-or-later
// ctnetlink, plainly (M: libmnl examples/netfilter/nfct-*.c): one synchronous query per session
// (IPCTNL_MSG_CT_GET by tuple) and two updates of an existing entry (IPCTNL_MSG_CT_NEW without
// NLM_F_CREATE): TCP "be liberal" on both directions, and the connmark. Results come back as core
// types (ConnTuples); nothing from libmnl or the netfilter headers appears here.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/result.hpp"

struct mnl_socket;
struct nf_conntrack;
struct nlmsghdr;

namespace ftpwall::netlink {

// The conntrack entry of one connection, as ctnetlink reports it.
struct ConntrackEntry {
  ConnTuples tuples;
  std::uint32_t id = 0;        // CTA_ID: stable for the entry's life (a reused 4-tuple gets a new id)
  std::uint32_t mark = 0;      // CTA_MARK (connmark)
  std::uint32_t status = 0;    // CTA_STATUS, IPS_* bits
  std::string helper;          // CTA_HELP name ("ftp" when the kernel helper is attached); empty = none
  std::uint8_t tcp_state = 0;  // TCP_CONNTRACK_* (3 = ESTABLISHED)
  std::uint8_t tcp_flags_original = 0;  // IP_CT_TCP_FLAG_* of the original direction
  std::uint8_t tcp_flags_reply = 0;
  // CTA_LABELS, bit 8k+j as bit j of byte k; all zero when the entry has none (or no label
  // extension). ftpwalld's HA label lives here (core/ha_label.hpp).
  std::array<std::uint8_t, 16> labels{};

  static constexpr std::uint32_t status_seen_reply = 1u << 1;
  static constexpr std::uint32_t status_assured = 1u << 2;
  static constexpr std::uint32_t status_confirmed = 1u << 3;
  static constexpr std::uint32_t status_src_nat = 1u << 4;
  static constexpr std::uint32_t status_dst_nat = 1u << 5;
  static constexpr std::uint32_t status_seq_adjust = 1u << 6;
  static constexpr std::uint8_t tcp_flag_be_liberal = 0x08;

  bool has_helper() const { return !helper.empty(); }
  bool liberal() const {
    return (tcp_flags_original & tcp_flag_be_liberal) && (tcp_flags_reply & tcp_flag_be_liberal);
  }
};

// Conntrack's DESTROY events (NFNLGRP_CONNTRACK_DESTROY), on a socket of their own that the
// daemon's loop polls: a session ends when its connection leaves conntrack, without one
// synchronous query per session (security review M6). A full socket buffer loses events
// (ENOBUFS): read() says so, and the caller reconciles with a dump.
//
// Given control ports, the socket carries a classic BPF filter (attach_port_filter): the kernel
// delivers only the DESTROY events of TCP entries whose original destination port is one of them.
// Without it every connection that leaves conntrack on the host wakes the daemon (issue 13: on a
// gateway that is all of its traffic, 8 us of the daemon's CPU each, and enough of them at once
// would fill the buffer and force the dump).
class ConntrackEvents {
 public:
  // `filtered` tells whether the filter is attached (false: no ports given, or the kernel refused
  // it; every DESTROY event arrives, read() passes on the TCP ones as before).
  static Result<std::unique_ptr<ConntrackEvents>> open(int receive_buffer, std::span<const std::uint16_t> control_ports = {});
  bool filtered() const { return filtered_; }
  // Why the filter is not attached, when ports were given ("" otherwise).
  const std::string& filter_error() const { return filter_error_; }
  ~ConntrackEvents();
  ConntrackEvents(const ConntrackEvents&) = delete;
  ConntrackEvents& operator=(const ConntrackEvents&) = delete;
  int fd() const;
  struct Batch {
    std::size_t events = 0;  // messages read (of any protocol: without the filter, UDP too)
    bool lost = false;  // ENOBUFS: some events were dropped by the kernel
  };
  // Reads what is there without blocking; `destroyed` for every TCP entry that left conntrack.
  Result<Batch> read(const std::function<void(const ConntrackEntry&)>& destroyed);

 private:
  explicit ConntrackEvents(mnl_socket* sock) : sock_(sock), buf_(1 << 16) {}
  mnl_socket* sock_ = nullptr;
  std::vector<std::uint8_t> buf_;
  bool filtered_ = false;
  std::string filter_error_;
};

// ConntrackEvents' filter on any socket `fd` (its unit test uses a socketpair): a classic BPF
// program that keeps a ctnetlink message whose CTA_TUPLE_ORIG has CTA_PROTO_NUM tcp and
// CTA_PROTO_DST_PORT one of `ports` (1 to 64 of them), and drops any other.
Result<void> attach_control_port_filter(int fd, std::span<const std::uint16_t> ports);

// Which of the entry's two tuples a lookup names.
enum class TupleKind : std::uint8_t { original, reply };

class Conntrack {
 public:
  static Result<std::unique_ptr<Conntrack>> open();
  ~Conntrack();
  Conntrack(const Conntrack&) = delete;
  Conntrack& operator=(const Conntrack&) = delete;

  // TCP entry whose original (or reply) tuple is `t`. nullopt when there is none (ENOENT).
  Result<std::optional<ConntrackEntry>> get(const Tuple& t, TupleKind kind = TupleKind::original);

  // The entry of a packet (src, dst as a hook shows it). Mid-path (mangle FORWARD) a packet has
  // DNAT applied and SNAT not yet, so client -> server shows {original.src, reply.src} and
  // server -> client its reverse. Tried in this order: as the original tuple (no NAT, or client
  // NAT, client side), as the reply tuple reversed (server NAT, client side), as the reply tuple
  // (server side), as the original reversed (client NAT, server side). At most four queries, once
  // per session. With both DNAT and SNAT on one connection none matches: nullopt.
  Result<std::optional<ConntrackEntry>> lookup_packet(const Tuple& seen);

  // Every TCP entry of `family` (IPCTNL_MSG_CT_GET with NLM_F_DUMP), one call of `each` per entry;
  // the number of entries. Never on the packet path: at start (the connections it may pick up),
  // after lost events, at a takeover, and in `ftpwall check`.
  // With `dst_ports`, only the entries whose original destination port is one of them: one dump
  // per port, filtered by the kernel (CTA_FILTER, Linux 5.8: the rest of the table is walked but
  // never sent) and again here (a kernel without CTA_FILTER ignores it and sends everything).
  Result<std::size_t> dump(Family family, const std::function<void(const ConntrackEntry&)>& each,
                           std::span<const std::uint16_t> dst_ports = {});

  // Sets IP_CT_TCP_FLAG_BE_LIBERAL on both directions (CTA_PROTOINFO_TCP flags + mask): conntrack
  // stops judging TCP windows for this connection, needed once ftpwalld shifts sequence numbers
  // that the kernel does not know about. Entry named by its original tuple.
  Result<void> set_liberal(const Tuple& original);

  // connmark = (connmark & ~mask) | (mark & mask) (CTA_MARK + CTA_MARK_MASK). FTPS sessions get
  // the steering rule's exempt bit so that their packets stop being queued.
  Result<void> set_mark(const Tuple& original, std::uint32_t mark, std::uint32_t mask);

  // All 128 label bits of the entry = `labels` (CTA_LABELS + CTA_LABELS_MASK of all ones). Fails
  // when the entry has no label extension: the kernel adds one to new entries only while some
  // rule uses labels (the backends' HA steering does, firewall/backend.hpp HookSpec::labels).
  Result<void> set_labels(const Tuple& original, const std::array<std::uint8_t, 16>& labels);

 private:
  explicit Conntrack(mnl_socket* sock);
  Result<std::optional<ConntrackEntry>> run(std::vector<std::uint8_t>& request, bool expect_entry,
                                            bool* missing = nullptr);
  // One update of the existing entry whose original tuple is `original` (IPCTNL_MSG_CT_NEW without
  // NLM_F_CREATE: ENOENT when it is gone): `fill` sets the attributes, `raw` adds what
  // libnetfilter_conntrack cannot build; `context` is added to the kernel's refusal.
  Result<void> update(const Tuple& original, const std::function<bool(nf_conntrack*)>& fill,
                      const std::function<void(nlmsghdr*)>& raw = {}, const char* context = nullptr);

  mnl_socket* sock_ = nullptr;
  std::uint32_t portid_ = 0;
  std::uint32_t seq_ = 0;
  std::vector<std::uint8_t> buf_;
};

}  // namespace ftpwall::netlink
