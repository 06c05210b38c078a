// SPDX-License-Identifier: GPL-2.0-or-later
// IptcBackend and IPv6 without a kernel: the decision whether ip6tables-legacy serves IPv6 (the
// IPv4-only degradation), the refusals that come before any table is read (NAT66, mixed families,
// IPv6 openings on a host without ip6tables), and the hook count with the IPv6 tables. The rules
// themselves are checked against the kernel by tests/netns/200-adapter-iptc.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "firewall/iptc_backend.hpp"

using namespace ftpwall;
using namespace ftpwall::firewall;

namespace {

Address a(const char* s) { return *Address::parse(s); }

Opening v6_opening() {
  Opening o;
  o.id = {7, 1};
  o.family = Family::v6;
  o.source = a("2001:db8:1::2");
  o.destination = Endpoint{a("2001:db8:2::2"), 50000};
  o.expires = Clock::now() + std::chrono::minutes(1);
  return o;
}

// A backend whose probe must not be asked, or says what `s` says. An apply that reached the kernel
// would fail differently (no xtables lock file at this path, which is never created).
IptcBackend offline(std::optional<Ip6Support> s) {
  IptcOptions opt;
  opt.lock_path = "/nonexistent-ftpwall-test/xtables.lock";
  opt.lock_timeout = std::chrono::milliseconds(1);
  opt.probe_ip6 = [s] {
    if (!s) ADD_FAILURE() << "the IPv6 probe was asked";
    return s.value_or(Ip6Support{});
  };
  return IptcBackend(opt);
}

std::string apply_error(IptcBackend& b, const Opening& o) {
  auto r = b.open(o);
  return r ? std::string("ok") : r.error().message;
}

}  // namespace

TEST(Ip6tablesProbe, KernelWithoutIpv6IsIpv4Only) {
  const auto s = classify_ip6tables_probe(EAFNOSUPPORT, 0);
  EXPECT_EQ(s.state, Ip6Support::State::unavailable);
  EXPECT_NE(s.why.find("no IPv6"), std::string::npos) << s.why;
}

TEST(Ip6tablesProbe, KernelWithoutIp6TablesIsIpv4Only) {
  const auto s = classify_ip6tables_probe(0, ENOPROTOOPT);
  EXPECT_EQ(s.state, Ip6Support::State::unavailable);
  EXPECT_NE(s.why.find("ip6_tables"), std::string::npos) << s.why;
}

TEST(Ip6tablesProbe, NoSuchTableMeansIp6TablesAnswered) {
  EXPECT_EQ(classify_ip6tables_probe(0, ENOENT).state, Ip6Support::State::available);
  EXPECT_EQ(classify_ip6tables_probe(0, 0).state, Ip6Support::State::available);
}

TEST(Ip6tablesProbe, OtherFailuresAreErrorsNotADegradation) {
  // Not root, or something else wrong: the start must fail, not silently lose IPv6.
  for (int err : {EPERM, EACCES, ENOMEM}) {
    EXPECT_EQ(classify_ip6tables_probe(err, 0).state, Ip6Support::State::error) << err;
    EXPECT_EQ(classify_ip6tables_probe(0, err).state, Ip6Support::State::error) << err;
  }
}

TEST(IptcBackendIpv6, Nat66IsRefusedBeforeTheKernel) {
  auto b = offline(std::nullopt);
  Opening o = v6_opening();
  o.dnat_to = Endpoint{a("2001:db8:3::2"), 50001};
  EXPECT_NE(apply_error(b, o).find("NAT66 is not supported"), std::string::npos) << apply_error(b, o);
  o.dnat_to.reset();
  o.snat_to = a("2001:db8:2::1");
  EXPECT_NE(apply_error(b, o).find("NAT66 is not supported"), std::string::npos) << apply_error(b, o);
}

TEST(IptcBackendIpv6, MixedFamiliesAreRefused) {
  auto b = offline(std::nullopt);
  Opening o = v6_opening();
  o.source = Address::v4(198, 51, 100, 2);
  EXPECT_NE(apply_error(b, o).find("mixes IPv4 and IPv6"), std::string::npos) << apply_error(b, o);
  Opening v4;
  v4.id = {7, 2};
  v4.source = Address::v4(198, 51, 100, 2);
  v4.destination = Endpoint{a("2001:db8:2::2"), 50000};
  EXPECT_NE(apply_error(b, v4).find("mixes IPv4 and IPv6"), std::string::npos) << apply_error(b, v4);
}

TEST(IptcBackendIpv6, Ipv6OpeningsRefusedWhereIp6tablesIsMissing) {
  auto b = offline(Ip6Support{Ip6Support::State::unavailable, "the kernel has no ip6_tables"});
  const std::string e = apply_error(b, v6_opening());
  EXPECT_NE(e.find("IPv6 openings refused: the kernel has no ip6_tables"), std::string::npos) << e;
}

TEST(IptcBackendIpv6, AProbeErrorFailsTheBatchAndIsAskedAgain) {
  int asked = 0;
  IptcOptions opt;
  opt.probe_ip6 = [&asked] {
    ++asked;
    return Ip6Support{Ip6Support::State::error, "ip6tables-legacy: Operation not permitted"};
  };
  IptcBackend b(opt);
  EXPECT_EQ(apply_error(b, v6_opening()), "ip6tables-legacy: Operation not permitted");
  EXPECT_EQ(apply_error(b, v6_opening()), "ip6tables-legacy: Operation not permitted");
  EXPECT_EQ(asked, 2);
}

TEST(ExpectedOwnHooks, CountsTheIpv6TablesWhereTheyServe) {
  HookSpec gw;
  gw.control_ports = {21, 2121};
  gw.nat = true;
  HookState st;
  EXPECT_EQ(expected_own_hooks(gw, st), expected_own_hooks(gw));  // 2 steering + 1 jump + 2 nat
  EXPECT_EQ(expected_own_hooks(gw), 5u);
  st.ip6 = FamilyHookState{};
  EXPECT_EQ(expected_own_hooks(gw, st), 5u + 3u);  // IPv6: 2 steering + 1 jump, no nat
  HookSpec server;
  server.role = Role::server;
  EXPECT_EQ(expected_own_hooks(server, st), 4u + 4u);  // INPUT+OUTPUT steering and jumps, each family
}
