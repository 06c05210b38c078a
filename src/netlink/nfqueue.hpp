// SPDX-License-Identifier: GPL-2.0-or-later
// One NFQUEUE queue over libnetfilter_queue's libmnl-based API (nfnetlink_queue, kernel >= 3.8).
// Packets leave this file as QueuedPacket (core-side types only); nothing from libmnl or the
// netfilter headers appears here.
//
// Two different "let it pass" mechanisms, often confused (both documented in ftpwalld(8)):
//   * NFQA_CFG_F_FAIL_OPEN (QueueOptions::fail_open, set here): while the daemon runs, a packet that
//     does not fit the queue (max_queue_len) or the socket buffer is accepted instead of dropped.
//   * --queue-bypass (on the iptables NFQUEUE rule): when no process is bound to the queue at all
//     (daemon stopped or crashed), packets are accepted instead of dropped.
// Either way such packets were not seen: an announcement among them opens nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "ftpwall/core/result.hpp"
#include "conntrack.hpp"

struct mnl_socket;

namespace ftpwall::netlink {

// The netfilter hook a packet was queued from (NF_INET_*).
enum class Hook : std::uint8_t { prerouting = 0, input = 1, forward = 2, output = 3, postrouting = 4, unknown = 255 };
std::string_view name(Hook h);

struct QueueOptions {
  std::uint16_t queue_num = 0;
  // Packets the kernel keeps waiting for a verdict (NFQA_CFG_QUEUE_MAXLEN; kernel default 1024).
  std::uint32_t max_queue_len = 4096;
  // Receive buffer of the netlink socket (SO_RCVBUFFORCE with CAP_NET_ADMIN, else SO_RCVBUF, which
  // net.core.rmem_max caps). A burst of full-size segments must fit while the daemon is busy.
  int socket_buffer = 8 * 1024 * 1024;
  bool fail_open = true;  // NFQA_CFG_F_FAIL_OPEN
  // NFQA_CFG_F_GSO: GSO/GRO super-packets arrive whole (up to 64 KiB) instead of being segmented
  // for us, and their checksums may be partial (QueuedPacket::checksum_not_ready).
  bool gso = true;
  // NFQA_CFG_F_CONNTRACK: every packet carries its conntrack entry (QueuedPacket::conntrack) and
  // its ctinfo (direction, NEW/ESTABLISHED). Costs a few hundred bytes per packet; it finds the
  // entry where a lookup by tuple cannot (DNAT and SNAT on the same connection). Kernels built
  // without CONFIG_NETFILTER_NETLINK_GLUE_CT (the one this was developed on) refuse it: open()
  // fails with EOPNOTSUPP and says so.
  bool conntrack = false;
};

// One queued packet. `payload` starts at the IP header and points into the queue's receive buffer:
// valid only during the callback of receive().
struct QueuedPacket {
  std::uint32_t id = 0;              // for verdict()
  Hook hook = Hook::unknown;
  std::uint16_t hw_protocol = 0;     // ethertype, host order (0x0800 IPv4, 0x86dd IPv6)
  std::span<const std::uint8_t> payload;
  std::uint32_t original_length = 0; // the packet's length; > payload.size() when truncated
  std::uint32_t indev = 0;           // ifindex, 0 = none
  std::uint32_t outdev = 0;
  std::uint32_t mark = 0;
  // NFQA_SKB_CSUMNOTREADY: the TCP checksum field holds only the pseudo-header sum (locally
  // generated packet with checksum offload). A rewritten packet needs a full checksum computation.
  bool checksum_not_ready = false;
  bool gso = false;                  // NFQA_SKB_GSO: a super-packet larger than the MTU
  // With QueueOptions::conntrack (NFQA_CT, NFQA_CT_INFO); absent for untracked packets.
  std::optional<ConntrackEntry> conntrack;
  std::optional<std::uint8_t> ctinfo;  // enum ip_conntrack_info: 0 established, 1 related, 2 new, +3 reply
  bool truncated() const { return original_length > payload.size(); }
  // The packet travels in the connection's reply direction (server -> client for a session).
  bool reply_direction() const { return ctinfo && *ctinfo >= 3; }
};

enum class Verdict : std::uint8_t { accept, drop };

struct QueueStats {
  std::uint64_t packets = 0;
  std::uint64_t verdicts = 0;
  std::uint64_t modified = 0;           // verdicts that carried a new payload
  std::uint64_t enobufs = 0;            // the socket buffer overflowed: messages were lost
  std::uint64_t verdict_errors = 0;     // the kernel refused a verdict (unknown id, bad payload)
  std::uint64_t accepted_at_setup = 0;  // packets that arrived while binding: accepted unseen
  std::uint64_t malformed = 0;          // messages without id or payload: skipped
};

class NfQueue {
 public:
  // Binds the queue. Fails with a message naming the remedy (EPERM: another process holds the
  // queue, or CAP_NET_ADMIN is missing).
  static Result<std::unique_ptr<NfQueue>> open(const QueueOptions& options);
  ~NfQueue();
  NfQueue(const NfQueue&) = delete;
  NfQueue& operator=(const NfQueue&) = delete;

  int fd() const;  // non-blocking; poll it for POLLIN
  const QueueOptions& options() const { return options_; }

  // Reads what is waiting (at most `max_datagrams` reads) and calls `on_packet` for each packet.
  // Returns the number of packets delivered; 0 when nothing was waiting. ENOBUFS is counted and
  // is not an error: the daemon goes on (the lost packets were accepted if fail_open is set).
  Result<std::size_t> receive(const std::function<void(const QueuedPacket&)>& on_packet,
                              std::size_t max_datagrams = 16);

  // The verdict for packet `id`. A non-empty `new_payload` replaces the packet (from the IP header
  // on; lengths and checksums must already be right). `mark` sets the packet mark.
  Result<void> verdict(std::uint32_t id, Verdict v, std::span<const std::uint8_t> new_payload = {},
                       std::optional<std::uint32_t> mark = std::nullopt);
  // Between cork() and uncork() verdicts are collected and go to the kernel together, in one
  // datagram (nfnetlink processes every message of a datagram, in order): one sendmsg per receive
  // round instead of one per packet. uncork() sends what is collected; order is kept.
  void cork() { corked_ = true; }
  Result<void> uncork();

  const QueueStats& stats() const { return stats_; }
  int socket_buffer() const { return socket_buffer_; }  // what the kernel granted (bytes)

 private:
  NfQueue(const QueueOptions& options, mnl_socket* sock);
  Result<void> configure();
  Result<void> send(const void* msg, std::size_t len);
  bool handle_packet_message(const void* nlh, const std::function<void(const QueuedPacket&)>& on_packet);

  QueueOptions options_;
  mnl_socket* sock_ = nullptr;
  std::uint32_t portid_ = 0;
  int socket_buffer_ = 0;
  std::vector<std::uint8_t> rx_;
  std::vector<std::uint8_t> tx_;
  std::vector<std::uint8_t> corked_msgs_;  // verdicts collected while corked
  std::size_t corked_count_ = 0;
  bool corked_ = false;
  QueueStats stats_;
};

}  // namespace ftpwall::netlink
