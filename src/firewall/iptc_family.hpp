// SPDX-License-Identifier: GPL-2.0-or-later
// What differs between iptables-legacy (libip4tc, IPv4) and ip6tables-legacy (libip6tc, IPv6) for
// IptcBackend: the entry type (ipt_entry with struct ipt_ip, ip6t_entry with struct ip6t_ip6),
// the libiptc function prefix (iptc_* / ip6tc_*), the address fields, and where the kernel lists
// the tables that exist. Everything else (xt matches and targets, the table editing, the
// transactions) is the same code, a template over one of these two structs (iptc_backend.cpp).
// Included by iptc_backend.cpp only: it pulls in the libiptc headers.
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <cstring>

#include "ftpwall/core/addr.hpp"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpedantic"
#include <libiptc/libiptc.h>
// libip6tc.h (iptables 1.8.9) opens no extern "C" block of its own, unlike libiptc.h.
extern "C" {
#include <libiptc/libip6tc.h>
}
#pragma GCC diagnostic pop

namespace ftpwall::firewall {

// The libiptc calls IptcBackend makes, forwarded to P##_name (P = iptc or ip6tc). One macro so
// that the two lists cannot drift apart.
#define FTPWALL_XTC_CALLS(P)                                                                                      \
  static xtc_handle* init(const char* table) { return P##_init(table); }                                        \
  static void free(xtc_handle* h) { P##_free(h); }                                                               \
  static const char* strerror(int err) { return P##_strerror(err); }                                             \
  static bool is_chain(const char* c, xtc_handle* h) { return P##_is_chain(c, h); }                             \
  static bool builtin(const char* c, xtc_handle* h) { return P##_builtin(c, h); }                               \
  static const char* first_chain(xtc_handle* h) { return P##_first_chain(h); }                                   \
  static const char* next_chain(xtc_handle* h) { return P##_next_chain(h); }                                     \
  static const Entry* first_rule(const char* c, xtc_handle* h) { return P##_first_rule(c, h); }                  \
  static const Entry* next_rule(const Entry* e, xtc_handle* h) { return P##_next_rule(e, h); }                   \
  static const char* get_target(const Entry* e, xtc_handle* h) { return P##_get_target(e, h); }                  \
  static const char* get_policy(const char* c, xt_counters* n, xtc_handle* h) { return P##_get_policy(c, n, h); } \
  static bool create_chain(const char* c, xtc_handle* h) { return P##_create_chain(c, h); }                     \
  static bool delete_chain(const char* c, xtc_handle* h) { return P##_delete_chain(c, h); }                     \
  static bool flush_entries(const char* c, xtc_handle* h) { return P##_flush_entries(c, h); }                   \
  static bool get_references(unsigned* n, const char* c, xtc_handle* h) { return P##_get_references(n, c, h); } \
  static bool insert_entry(const char* c, const Entry* e, unsigned i, xtc_handle* h) {                          \
    return P##_insert_entry(c, e, i, h);                                                                         \
  }                                                                                                              \
  static bool append_entry(const char* c, const Entry* e, xtc_handle* h) { return P##_append_entry(c, e, h); }  \
  static bool delete_num_entry(const char* c, unsigned i, xtc_handle* h) { return P##_delete_num_entry(c, i, h); } \
  static bool commit(xtc_handle* h) { return P##_commit(h); }

// A host address of N bytes with its all-ones mask (/32, /128), as ipt_ip and ip6t_ip6 hold it.
template <std::size_t N, Family F>
struct HostAddress {
  static void put(void* addr, void* mask, const Address& a) {
    std::memcpy(addr, a.bytes.data(), N);
    std::memset(mask, 0xff, N);
  }
  static Address get(const void* addr) {
    Address a;
    a.family = F;
    std::memcpy(a.bytes.data(), addr, N);
    return a;
  }
};

// iptables-legacy: struct ipt_ip, 4-byte addresses with masks, the protocol alone selects -p tcp.
struct Ip4Tables : HostAddress<4, Family::v4> {
  using Entry = ipt_entry;
  static constexpr Family family = Family::v4;
  static constexpr const char* tool = "iptables-legacy";
  static constexpr const char* tables_file = "/proc/net/ip_tables_names";
  FTPWALL_XTC_CALLS(iptc)

  static void set_source(Entry& e, const Address& a) { put(&e.ip.src, &e.ip.smsk, a); }
  static void set_destination(Entry& e, const Address& a) { put(&e.ip.dst, &e.ip.dmsk, a); }
  static void set_tcp(Entry& e) { e.ip.proto = IPPROTO_TCP; }
  static Address source(const Entry& e) { return get(&e.ip.src); }
  static Address destination(const Entry& e) { return get(&e.ip.dst); }
};

// ip6tables-legacy: struct ip6t_ip6, 16-byte addresses with masks; -p tcp is the protocol plus
// IP6T_F_PROTO (without the flag the kernel ignores the protocol and the tcp match is refused).
struct Ip6Tables : HostAddress<16, Family::v6> {
  using Entry = ip6t_entry;
  static constexpr Family family = Family::v6;
  static constexpr const char* tool = "ip6tables-legacy";
  static constexpr const char* tables_file = "/proc/net/ip6_tables_names";
  FTPWALL_XTC_CALLS(ip6tc)

  static void set_source(Entry& e, const Address& a) { put(&e.ipv6.src, &e.ipv6.smsk, a); }
  static void set_destination(Entry& e, const Address& a) { put(&e.ipv6.dst, &e.ipv6.dmsk, a); }
  static void set_tcp(Entry& e) {
    e.ipv6.proto = IPPROTO_TCP;
    e.ipv6.flags |= IP6T_F_PROTO;
  }
  static Address source(const Entry& e) { return get(&e.ipv6.src); }
  static Address destination(const Entry& e) { return get(&e.ipv6.dst); }
};

#undef FTPWALL_XTC_CALLS

}  // namespace ftpwall::firewall
