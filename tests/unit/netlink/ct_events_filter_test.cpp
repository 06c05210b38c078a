// SPDX-License-Identifier: GPL-2.0-or-later
// The control-port filter of ConntrackEvents, run by the kernel: attached to one end of a
// socketpair (a socket filter runs on any socket, and its netlink-attribute loads read any
// message), ctnetlink DESTROY messages sent through it as libnetfilter_conntrack builds them, and
// as the kernel writes them (CTA_TUPLE_ORIG after other attributes); what arrives is what the
// filter kept.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include <gtest/gtest.h>

#include "netlink/conntrack.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#pragma GCC diagnostic pop

namespace ftpwall::netlink {
namespace {

struct Pair {
  int fd[2] = {-1, -1};
  Pair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fd), 0); }
  ~Pair() {
    for (int f : fd)
      if (f >= 0) close(f);
  }
  // Sends `msg` from end 0; whether it arrives at end 1.
  bool passes(const std::vector<std::uint8_t>& msg) const {
    EXPECT_EQ(send(fd[0], msg.data(), msg.size(), 0), static_cast<ssize_t>(msg.size()));
    std::array<std::uint8_t, 4096> buf{};
    const ssize_t n = recv(fd[1], buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
      return false;
    }
    EXPECT_EQ(static_cast<std::size_t>(n), msg.size());
    return true;
  }
};

// A DESTROY event of one entry, built by libnetfilter_conntrack.
std::vector<std::uint8_t> destroy_event(int family, std::uint8_t proto, std::uint16_t dport, std::uint16_t sport = 40000) {
  std::vector<std::uint8_t> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = static_cast<std::uint8_t>(family);
  nfg->version = NFNETLINK_V0;
  nf_conntrack* ct = nfct_new();
  nfct_set_attr_u8(ct, ATTR_L3PROTO, static_cast<std::uint8_t>(family));
  if (family == AF_INET) {
    nfct_set_attr_u32(ct, ATTR_IPV4_SRC, inet_addr("192.0.2.10"));
    nfct_set_attr_u32(ct, ATTR_IPV4_DST, inet_addr("198.51.100.1"));
  } else {
    in6_addr a{}, b{};
    inet_pton(AF_INET6, "2001:db8::10", &a);
    inet_pton(AF_INET6, "2001:db8:1::1", &b);
    nfct_set_attr(ct, ATTR_IPV6_SRC, &a);
    nfct_set_attr(ct, ATTR_IPV6_DST, &b);
  }
  nfct_set_attr_u8(ct, ATTR_L4PROTO, proto);
  nfct_set_attr_u16(ct, ATTR_PORT_SRC, htons(sport));
  nfct_set_attr_u16(ct, ATTR_PORT_DST, htons(dport));
  nfct_set_attr_u32(ct, ATTR_ID, 77);
  nfct_set_attr_u32(ct, ATTR_MARK, 0x10);
  EXPECT_EQ(nfct_nlmsg_build(nlh, ct), 0);
  nfct_destroy(ct);
  buf.resize(nlh->nlmsg_len);
  return buf;
}

// The kernel's order (ctnetlink_conntrack_event): CTA_TUPLE_ORIG first; here a CTA_ID and a
// CTA_TUPLE_REPLY with port 21 come before it, so the filter must find the original tuple by
// type, and read the port of the original tuple, not the first port attribute of the message.
std::vector<std::uint8_t> reordered_event(std::uint16_t orig_dport, std::uint16_t reply_dport) {
  std::vector<std::uint8_t> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = AF_INET;
  mnl_attr_put_u32(nlh, CTA_ID, htonl(5));
  auto tuple = [&](std::uint16_t type, std::uint16_t dport) {
    nlattr* t = mnl_attr_nest_start(nlh, type);
    nlattr* ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
    mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, inet_addr("192.0.2.10"));
    mnl_attr_put_u32(nlh, CTA_IP_V4_DST, inet_addr("198.51.100.1"));
    mnl_attr_nest_end(nlh, ip);
    nlattr* pr = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
    mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
    mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(40000));
    mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dport));
    mnl_attr_nest_end(nlh, pr);
    mnl_attr_nest_end(nlh, t);
  };
  tuple(CTA_TUPLE_REPLY, reply_dport);
  tuple(CTA_TUPLE_ORIG, orig_dport);
  buf.resize(nlh->nlmsg_len);
  return buf;
}

TEST(ControlPortFilter, KeepsTcpEntriesToAControlPortOnly) {
  Pair p;
  const std::uint16_t ports[] = {21, 2121};
  ASSERT_TRUE(attach_control_port_filter(p.fd[1], ports));
  EXPECT_TRUE(p.passes(destroy_event(AF_INET, IPPROTO_TCP, 21)));
  EXPECT_TRUE(p.passes(destroy_event(AF_INET, IPPROTO_TCP, 2121)));
  EXPECT_TRUE(p.passes(destroy_event(AF_INET6, IPPROTO_TCP, 21)));
  EXPECT_FALSE(p.passes(destroy_event(AF_INET, IPPROTO_TCP, 80)));
  EXPECT_FALSE(p.passes(destroy_event(AF_INET, IPPROTO_TCP, 20)));
  EXPECT_FALSE(p.passes(destroy_event(AF_INET6, IPPROTO_TCP, 443)));
  EXPECT_FALSE(p.passes(destroy_event(AF_INET, IPPROTO_UDP, 21)));
  EXPECT_FALSE(p.passes(destroy_event(AF_INET, IPPROTO_SCTP, 21)));
  // The client's (source) port is not what counts: a data connection from port 21 (active mode,
  // RFC 959's L-1) is not a session.
  EXPECT_FALSE(p.passes(destroy_event(AF_INET, IPPROTO_TCP, 40001, 21)));
}

TEST(ControlPortFilter, ReadsTheOriginalTupleWhereverItIs) {
  Pair p;
  const std::uint16_t ports[] = {21};
  ASSERT_TRUE(attach_control_port_filter(p.fd[1], ports));
  EXPECT_TRUE(p.passes(reordered_event(21, 40000)));
  EXPECT_FALSE(p.passes(reordered_event(8021, 21)));  // only the reply tuple names port 21
}

TEST(ControlPortFilter, DropsWhatItCannotRead) {
  Pair p;
  const std::uint16_t ports[] = {21};
  ASSERT_TRUE(attach_control_port_filter(p.fd[1], ports));
  auto ev = destroy_event(AF_INET, IPPROTO_TCP, 21);
  EXPECT_FALSE(p.passes(std::vector<std::uint8_t>(ev.begin(), ev.begin() + 24)));  // cut inside the first attribute
  EXPECT_FALSE(p.passes(std::vector<std::uint8_t>(20, 0)));                          // headers only
  EXPECT_FALSE(p.passes(std::vector<std::uint8_t>(3, 0xff)));
  EXPECT_TRUE(p.passes(ev));  // the whole one still passes after those
}

TEST(ControlPortFilter, WithoutTheFilterEverythingArrives) {  // the negative control of the above
  Pair p;
  EXPECT_TRUE(p.passes(destroy_event(AF_INET, IPPROTO_TCP, 80)));
  EXPECT_TRUE(p.passes(destroy_event(AF_INET, IPPROTO_UDP, 21)));
}

TEST(ControlPortFilter, RefusesAnEmptyOrOverlongPortList) {
  Pair p;
  EXPECT_FALSE(attach_control_port_filter(p.fd[1], {}));
  std::vector<std::uint16_t> many(65, 21);
  auto r = attach_control_port_filter(p.fd[1], many);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("1 to 64"), std::string::npos);
  std::vector<std::uint16_t> most(64);
  for (std::size_t i = 0; i < most.size(); ++i) most[i] = static_cast<std::uint16_t>(2000 + i);
  ASSERT_TRUE(attach_control_port_filter(p.fd[1], most));  // the longest program's jumps still reach
  EXPECT_TRUE(p.passes(destroy_event(AF_INET, IPPROTO_TCP, 2063)));
  EXPECT_FALSE(p.passes(destroy_event(AF_INET, IPPROTO_TCP, 2064)));
}

}  // namespace
}  // namespace ftpwall::netlink
