// SPDX-License-Identifier: GPL-2.0-or-later
// The bare NFQUEUE accept loop of issue 13: the best a userspace helper could do on the same
// steering, i.e. the price of the queue itself. Binds queue Q (copy mode packet, 0xffff bytes, as
// ftpwalld; fail-open and GSO as ftpwalld's defaults), reads every message the socket holds per
// wakeup and accepts them all with one NFQNL_MSG_VERDICT_BATCH (the queue is FIFO, so the highest
// id covers the rest). It looks at each packet's header (length, IPv4 version) and nothing else.
//   storm_nfq --queue Q [--ready-file F]     runs until SIGTERM/SIGINT, then prints
//                                            packets=N wakeups=W batches=B
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t stop = 0;
void on_signal(int) { stop = 1; }

[[noreturn]] void die(const char* m) {
  std::fprintf(stderr, "storm_nfq: %s: %s\n", m, std::strerror(errno));
  std::exit(1);
}

struct State {
  std::uint32_t last_id = 0;
  std::uint64_t packets = 0;
  std::uint64_t bytes = 0;
};

int on_msg(const nlmsghdr* nlh, void* data) {
  auto* st = static_cast<State*>(data);
  nlattr* attr[NFQA_MAX + 1] = {};
  if (nfq_nlmsg_parse(nlh, attr) < 0) return MNL_CB_ERROR;
  if (!attr[NFQA_PACKET_HDR]) return MNL_CB_OK;
  const auto* ph = static_cast<const nfqnl_msg_packet_hdr*>(mnl_attr_get_payload(attr[NFQA_PACKET_HDR]));
  st->last_id = ntohl(ph->packet_id);
  if (attr[NFQA_PAYLOAD]) {
    const auto* p = static_cast<const std::uint8_t*>(mnl_attr_get_payload(attr[NFQA_PAYLOAD]));
    if (mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]) > 0 && (p[0] >> 4) == 4) st->bytes += mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
  }
  ++st->packets;
  return MNL_CB_OK;
}

void send_or_die(mnl_socket* nl, const nlmsghdr* nlh, const char* what) {
  if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) die(what);
}

}  // namespace

int main(int argc, char** argv) {
  unsigned queue = 0;
  std::string ready;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--queue") == 0) queue = static_cast<unsigned>(std::stoul(argv[i + 1]));
    else if (std::strcmp(argv[i], "--ready-file") == 0) ready = argv[i + 1];
  }
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);
  mnl_socket* nl = mnl_socket_open(NETLINK_NETFILTER);
  if (!nl) die("mnl_socket_open");
  if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) die("mnl_socket_bind");
  const unsigned portid = mnl_socket_get_portid(nl);
  int rcvbuf = 8 << 20;
  setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  int one = 1;
  setsockopt(mnl_socket_get_fd(nl), SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof one);

  std::vector<char> buf(0xffff + (MNL_SOCKET_BUFFER_SIZE / 2));
  nlmsghdr* nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, static_cast<int>(queue));
  nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
  send_or_die(nl, nlh, "bind queue");
  nlh = nfq_nlmsg_put(buf.data(), NFQNL_MSG_CONFIG, static_cast<int>(queue));
  nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, 0xffff);
  mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO));
  mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO));
  mnl_attr_put_u32(nlh, NFQA_CFG_QUEUE_MAXLEN, htonl(65536));  // as the bench configures ftpwalld
  send_or_die(nl, nlh, "queue params");
  if (!ready.empty()) {
    FILE* f = std::fopen(ready.c_str(), "w");
    if (f) {
      std::fprintf(f, "%d\n", getpid());
      std::fclose(f);
    }
  }

  const int fd = mnl_socket_get_fd(nl);
  std::vector<char> rx(1 << 20);  // many messages per recv: the kernel packs them into one skb list
  State st;
  std::uint64_t wakeups = 0, batches = 0;
  char vbuf[256];
  while (!stop) {
    pollfd p{fd, POLLIN, 0};
    const int pr = poll(&p, 1, 200);
    if (pr < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (pr == 0) continue;
    ++wakeups;
    const std::uint32_t before = static_cast<std::uint32_t>(st.packets);
    for (;;) {  // drain: every message waiting now, one verdict for all of them
      const ssize_t n = recv(fd, rx.data(), rx.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
        if (errno == ENOBUFS) continue;
        die("recv");
      }
      if (mnl_cb_run(rx.data(), static_cast<std::size_t>(n), 0, portid, on_msg, &st) < 0 && errno != 0 && errno != ENOENT) {
        // an ack or error message: ignore (the config acks)
      }
    }
    if (static_cast<std::uint32_t>(st.packets) != before) {
      nlmsghdr* v = nfq_nlmsg_put(vbuf, NFQNL_MSG_VERDICT_BATCH, static_cast<int>(queue));
      nfq_nlmsg_verdict_put(v, static_cast<int>(st.last_id), NF_ACCEPT);
      send_or_die(nl, v, "verdict batch");
      ++batches;
    }
  }
  std::printf("packets=%llu wakeups=%llu batches=%llu\n", static_cast<unsigned long long>(st.packets),
              static_cast<unsigned long long>(wakeups), static_cast<unsigned long long>(batches));
  std::fflush(stdout);
  mnl_socket_close(nl);
  return 0;
}
