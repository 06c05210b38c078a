// SPDX-License-Identifier: GPL-2.0-or-later
// NFQUEUE with libmnl + libnetfilter_queue's nfq_nlmsg_* builders (M: examples/nf-queue.c).
#include "nfqueue.hpp"
#include "ct_parse.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#pragma GCC diagnostic pop

namespace ftpwall::netlink {

std::string_view name(Hook h) {
  switch (h) {
    case Hook::prerouting: return "PREROUTING";
    case Hook::input: return "INPUT";
    case Hook::forward: return "FORWARD";
    case Hook::output: return "OUTPUT";
    case Hook::postrouting: return "POSTROUTING";
    case Hook::unknown: break;
  }
  return "unknown";
}

namespace {

// Room for the largest message: a 64 KiB GSO packet plus its attributes.
constexpr std::size_t rx_buffer_size = 0xffff + 16384;
constexpr std::size_t tx_buffer_size = 0xffff + 16384;

std::string errno_text(int err) { return std::strerror(err); }

}  // namespace

NfQueue::NfQueue(const QueueOptions& options, mnl_socket* sock)
    : options_(options), sock_(sock), rx_(rx_buffer_size), tx_(tx_buffer_size) {}

NfQueue::~NfQueue() {
  if (sock_) mnl_socket_close(sock_);  // closing the socket unbinds the queue
}

int NfQueue::fd() const { return mnl_socket_get_fd(sock_); }

Result<std::unique_ptr<NfQueue>> NfQueue::open(const QueueOptions& options) {
  mnl_socket* s = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (!s) return make_error("NFQUEUE: netlink socket: " + errno_text(errno));
  if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) {
    const int err = errno;
    mnl_socket_close(s);
    return make_error("NFQUEUE: bind netlink socket: " + errno_text(err));
  }
  std::unique_ptr<NfQueue> q(new NfQueue(options, s));
  q->portid_ = mnl_socket_get_portid(s);

  // The kernel doubles the value; SO_RCVBUFFORCE ignores net.core.rmem_max (CAP_NET_ADMIN).
  const int fd = q->fd();
  int size = options.socket_buffer;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  socklen_t len = sizeof q->socket_buffer_;
  getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &q->socket_buffer_, &len);
  // Unicast delivery failures must reach us as ENOBUFS (counted), not be hidden.
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_BROADCAST_ERROR, &one, sizeof one);

  if (auto r = q->configure(); !r) return r.error();
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return make_error("NFQUEUE: non-blocking socket: " + errno_text(errno));
  }
  return q;
}

Result<void> NfQueue::send(const void* msg, std::size_t len) {
  if (mnl_socket_sendto(sock_, msg, len) < 0) return make_error(errno_text(errno));
  return {};
}

// Config messages, each acknowledged: BIND, PARAMS (copy whole packets), QUEUE_MAXLEN, FLAGS.
// Packets can be queued as soon as BIND is processed, before we read the acknowledgements: those
// are accepted at once (the daemon is not tracking anything yet; the same as fail-open).
Result<void> NfQueue::configure() {
  const std::uint32_t q = options_.queue_num;
  char* buf = reinterpret_cast<char*>(tx_.data());
  mnl_nlmsg_batch* batch = mnl_nlmsg_batch_start(buf, tx_.size());
  std::uint32_t seq = static_cast<std::uint32_t>(time(nullptr));
  const std::uint32_t first_seq = seq;
  auto next = [&]() {
    auto* nlh = nfq_nlmsg_put(static_cast<char*>(mnl_nlmsg_batch_current(batch)), NFQNL_MSG_CONFIG, q);
    nlh->nlmsg_flags |= NLM_F_ACK;
    nlh->nlmsg_seq = seq++;
    return nlh;
  };
  nfq_nlmsg_cfg_put_cmd(next(), AF_INET, NFQNL_CFG_CMD_BIND);
  mnl_nlmsg_batch_next(batch);
  nfq_nlmsg_cfg_put_params(next(), NFQNL_COPY_PACKET, 0xffff);
  mnl_nlmsg_batch_next(batch);
  nfq_nlmsg_cfg_put_qmaxlen(next(), options_.max_queue_len);
  mnl_nlmsg_batch_next(batch);
  {
    auto* nlh = next();
    std::uint32_t flags = 0;
    if (options_.fail_open) flags |= NFQA_CFG_F_FAIL_OPEN;
    if (options_.gso) flags |= NFQA_CFG_F_GSO;
    if (options_.conntrack) flags |= NFQA_CFG_F_CONNTRACK;
    mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(flags));
    mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO | NFQA_CFG_F_CONNTRACK));
    mnl_nlmsg_batch_next(batch);
  }
  const auto sent = send(mnl_nlmsg_batch_head(batch), mnl_nlmsg_batch_size(batch));
  mnl_nlmsg_batch_stop(batch);
  if (!sent) return make_error("NFQUEUE " + std::to_string(q) + ": configure: " + sent.error().message);

  static constexpr const char* steps[] = {"bind", "copy mode", "queue length", "flags"};
  unsigned acked = 0;
  while (acked < 4) {
    const ssize_t n = mnl_socket_recvfrom(sock_, rx_.data(), rx_.size());
    if (n < 0) {
      if (errno == ENOBUFS || errno == EINTR) continue;
      return make_error("NFQUEUE " + std::to_string(q) + ": configure: " + errno_text(errno));
    }
    auto* nlh = reinterpret_cast<const nlmsghdr*>(rx_.data());
    for (int left = static_cast<int>(n); mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        const std::uint32_t i = nlh->nlmsg_seq - first_seq;
        if (e->error != 0) {
          const int err = -e->error;
          std::string why = errno_text(err);
          // The kernel answers EPERM both without CAP_NET_ADMIN and when another socket holds the
          // queue (nfqnl_recv_config checks the peer's portid before the command).
          if (err == EPERM) why += " (another process is bound to this queue, or CAP_NET_ADMIN is missing)";
          if (err == EBUSY) why += " (this socket is bound to the queue already)";
          // nfnetlink_queue refuses F_CONNTRACK without the ctnetlink glue in the kernel.
          if (err == EOPNOTSUPP && i == 3 && options_.conntrack) {
            why += " (NFQA_CFG_F_CONNTRACK needs CONFIG_NETFILTER_NETLINK_GLUE_CT: query ctnetlink per session instead)";
          }
          return make_error("NFQUEUE " + std::to_string(q) + ": " + (i < 4 ? steps[i] : "config") + ": " + why);
        }
        ++acked;
      } else if ((nlh->nlmsg_type & 0xff) == NFQNL_MSG_PACKET) {
        handle_packet_message(nlh, [this](const QueuedPacket& p) {
          ++stats_.accepted_at_setup;
          (void)verdict(p.id, Verdict::accept);
        });
      }
    }
  }
  return {};
}

bool NfQueue::handle_packet_message(const void* msg, const std::function<void(const QueuedPacket&)>& on_packet) {
  const auto* nlh = static_cast<const nlmsghdr*>(msg);
  nlattr* attr[NFQA_MAX + 1] = {};
  if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR] || !attr[NFQA_PAYLOAD] ||
      mnl_attr_get_payload_len(attr[NFQA_PACKET_HDR]) < sizeof(nfqnl_msg_packet_hdr)) {
    ++stats_.malformed;
    return false;
  }
  const auto* ph = static_cast<const nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
  QueuedPacket p;
  p.id = ntohl(ph->packet_id);
  p.hw_protocol = ntohs(ph->hw_protocol);
  p.hook = ph->hook <= NF_INET_POST_ROUTING ? static_cast<Hook>(ph->hook) : Hook::unknown;
  p.payload = {static_cast<const std::uint8_t*>(mnl_attr_get_payload(attr[NFQA_PAYLOAD])),
               mnl_attr_get_payload_len(attr[NFQA_PAYLOAD])};
  p.original_length = attr[NFQA_CAP_LEN] ? ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN]))
                                         : static_cast<std::uint32_t>(p.payload.size());
  if (attr[NFQA_IFINDEX_INDEV]) p.indev = ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_INDEV]));
  if (attr[NFQA_IFINDEX_OUTDEV]) p.outdev = ntohl(mnl_attr_get_u32(attr[NFQA_IFINDEX_OUTDEV]));
  if (attr[NFQA_MARK]) p.mark = ntohl(mnl_attr_get_u32(attr[NFQA_MARK]));
  if (attr[NFQA_SKB_INFO]) {
    const std::uint32_t info = ntohl(mnl_attr_get_u32(attr[NFQA_SKB_INFO]));
    p.checksum_not_ready = info & NFQA_SKB_CSUMNOTREADY;
    p.gso = info & NFQA_SKB_GSO;
  }
  if (attr[NFQA_CT])
    p.conntrack = parse_conntrack_nest(attr[NFQA_CT], !p.payload.empty() && (p.payload[0] >> 4) == 6 ? Family::v6 : Family::v4);
  if (attr[NFQA_CT_INFO] && mnl_attr_get_payload_len(attr[NFQA_CT_INFO]) >= 4) {
    p.ctinfo = static_cast<std::uint8_t>(ntohl(mnl_attr_get_u32(attr[NFQA_CT_INFO])));
  }
  ++stats_.packets;
  on_packet(p);
  return true;
}

Result<std::size_t> NfQueue::receive(const std::function<void(const QueuedPacket&)>& on_packet,
                                     std::size_t max_datagrams) {
  std::size_t delivered = 0;
  for (std::size_t d = 0; d < max_datagrams; ++d) {
    const ssize_t n = mnl_socket_recvfrom(sock_, rx_.data(), rx_.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {  // raise queue socket_buffer, or rely on fail-open
        ++stats_.enobufs;
        continue;
      }
      return make_error("NFQUEUE " + std::to_string(options_.queue_num) + ": receive: " + errno_text(errno));
    }
    auto* nlh = reinterpret_cast<const nlmsghdr*>(rx_.data());
    for (int left = static_cast<int>(n); mnl_nlmsg_ok(nlh, left); nlh = mnl_nlmsg_next(nlh, &left)) {
      if (nlh->nlmsg_pid != 0) continue;  // only the kernel speaks to us
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        // A verdict the kernel refused (no ack requested, so errors only).
        const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
        if (e->error != 0) ++stats_.verdict_errors;
        continue;
      }
      if ((nlh->nlmsg_type & 0xff) != NFQNL_MSG_PACKET || (nlh->nlmsg_type >> 8) != NFNL_SUBSYS_QUEUE) continue;
      delivered += handle_packet_message(nlh, on_packet);
    }
  }
  return delivered;
}

Result<void> NfQueue::verdict(std::uint32_t id, Verdict v, std::span<const std::uint8_t> new_payload,
                              std::optional<std::uint32_t> mark) {
  if (new_payload.size() > 0xffff) return make_error("NFQUEUE: replacement packet larger than 65535 bytes");
  char* buf = reinterpret_cast<char*>(tx_.data());
  nlmsghdr* nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT, options_.queue_num);
  nfq_nlmsg_verdict_put(nlh, static_cast<int>(id), v == Verdict::accept ? NF_ACCEPT : NF_DROP);
  if (mark) nfq_nlmsg_verdict_put_mark(nlh, *mark);
  if (!new_payload.empty()) nfq_nlmsg_verdict_put_pkt(nlh, new_payload.data(), static_cast<std::uint32_t>(new_payload.size()));
  if (corked_) {
    const std::size_t len = NLMSG_ALIGN(nlh->nlmsg_len);
    if (corked_msgs_.size() + len > 256 * 1024) {
      if (auto r = uncork(); !r) return r;
      corked_ = true;
    }
    const auto* b = reinterpret_cast<const std::uint8_t*>(nlh);
    corked_msgs_.insert(corked_msgs_.end(), b, b + nlh->nlmsg_len);
    corked_msgs_.resize(corked_msgs_.size() + (len - nlh->nlmsg_len), 0);
    ++corked_count_;
    ++stats_.verdicts;
    if (!new_payload.empty()) ++stats_.modified;
    return {};
  }
  if (auto r = send(nlh, nlh->nlmsg_len); !r) {
    ++stats_.verdict_errors;
    return make_error("NFQUEUE " + std::to_string(options_.queue_num) + ": verdict for packet " + std::to_string(id) +
                      ": " + r.error().message);
  }
  ++stats_.verdicts;
  if (!new_payload.empty()) ++stats_.modified;
  return {};
}

Result<void> NfQueue::uncork() {
  corked_ = false;
  if (corked_msgs_.empty()) return {};
  auto r = send(corked_msgs_.data(), corked_msgs_.size());
  const std::size_t n = corked_count_;
  corked_msgs_.clear();
  corked_count_ = 0;
  if (!r) {
    stats_.verdict_errors += n;
    return make_error("NFQUEUE " + std::to_string(options_.queue_num) + ": " + std::to_string(n) +
                      " verdicts: " + r.error().message);
  }
  return {};
}

}  // namespace ftpwall::netlink
