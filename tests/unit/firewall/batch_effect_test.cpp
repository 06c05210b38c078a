// SPDX-License-Identifier: GPL-2.0-or-later
// net_effect(): what one worker batch does to the kernel (security review finding L5).
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <vector>

#include "ftpwall/firewall/backend.hpp"

namespace ftpwall::firewall {
namespace {

Opening opening(std::uint64_t session, std::uint32_t n, std::uint16_t port) {
  Opening o;
  o.id = {session, n};
  o.source = Address::v4(198, 51, 100, 2);
  o.destination = {Address::v4(203, 0, 113, 1), port};
  return o;
}
Change open(std::uint64_t session, std::uint32_t n, std::uint16_t port = 50000) {
  return OpenStep{opening(session, n, port)};
}
Change close(std::uint64_t session, std::uint32_t n) { return CloseStep{OpeningId{session, n}}; }

std::vector<OpeningId> ids(const std::vector<Opening>& os) {
  std::vector<OpeningId> out;
  for (const auto& o : os) out.push_back(o.id);
  return out;
}

TEST(BatchEffect, OpenThenCloseOfOneIdInstallsNothing) {
  const std::vector<Change> b{open(7, 1), close(7, 1)};
  const auto e = net_effect(b);
  EXPECT_TRUE(e.installs.empty());
  EXPECT_EQ(e.touched, (std::vector<OpeningId>{{7, 1}}));  // an older rule of that id goes too
}

TEST(BatchEffect, CloseThenOpenReinstalls) {  // what check_kernel sends for every live opening
  const std::vector<Change> b{close(7, 1), open(7, 1), close(7, 2), open(7, 2)};
  const auto e = net_effect(b);
  EXPECT_EQ(ids(e.installs), (std::vector<OpeningId>{{7, 1}, {7, 2}}));
  EXPECT_EQ(e.touched, (std::vector<OpeningId>{{7, 1}, {7, 2}}));
}

TEST(BatchEffect, TheLastOpenOfAnIdWins) {
  const std::vector<Change> b{open(7, 1, 50000), open(7, 1, 50001)};
  const auto e = net_effect(b);
  ASSERT_EQ(e.installs.size(), 1u);
  EXPECT_EQ(e.installs[0].destination.port, 50001);
}

TEST(BatchEffect, OpenCloseOpenInstallsTheLastOpen) {
  const std::vector<Change> b{open(7, 1, 50000), close(7, 1), open(7, 1, 50002)};
  const auto e = net_effect(b);
  ASSERT_EQ(e.installs.size(), 1u);
  EXPECT_EQ(e.installs[0].destination.port, 50002);
}

TEST(BatchEffect, OtherIdsAreNotAffected) {
  const std::vector<Change> b{open(7, 1), open(9, 1), close(7, 1), close(3, 4), open(7, 2)};
  const auto e = net_effect(b);
  EXPECT_EQ(ids(e.installs), (std::vector<OpeningId>{{9, 1}, {7, 2}}));
  EXPECT_EQ(e.touched, (std::vector<OpeningId>{{7, 1}, {9, 1}, {3, 4}, {7, 2}}));
}

TEST(BatchEffect, InstallsFollowTheOrderOfTheirLastOpen) {
  const std::vector<Change> b{open(1, 1), open(2, 1), open(1, 1, 50003)};
  EXPECT_EQ(ids(net_effect(b).installs), (std::vector<OpeningId>{{2, 1}, {1, 1}}));
}

// Against the definition, written the obvious way (a map of each id's last open, a set of ids
// seen): random batches of opens and closes over a few ids.
TEST(BatchEffect, RandomBatchesMatchTheDefinition) {
  std::mt19937 rng(13);
  for (int round = 0; round < 2000; ++round) {
    std::vector<Change> b;
    const std::size_t n = rng() % 12;
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t s = 1 + rng() % 3;
      const std::uint32_t o = 1 + rng() % 2;
      b.push_back(rng() % 2 ? open(s, o, static_cast<std::uint16_t>(50000 + i)) : close(s, o));
    }
    std::vector<OpeningId> touched;
    std::set<OpeningId> seen;
    std::map<OpeningId, std::size_t> last_open;
    for (std::size_t i = 0; i < b.size(); ++i) {
      const auto* op = std::get_if<OpenStep>(&b[i]);
      const OpeningId id = op ? op->opening.id : std::get<CloseStep>(b[i]).id;
      if (seen.insert(id).second) touched.push_back(id);
      if (op) last_open[id] = i;
      else last_open.erase(id);
    }
    std::vector<std::size_t> order;
    for (const auto& [id, i] : last_open) order.push_back(i);
    std::sort(order.begin(), order.end());
    std::vector<std::uint16_t> ports;
    for (std::size_t i : order) ports.push_back(std::get<OpenStep>(b[i]).opening.destination.port);
    const auto e = net_effect(b);
    ASSERT_EQ(e.touched, touched) << "round " << round;
    std::vector<std::uint16_t> got;
    for (const auto& o : e.installs) got.push_back(o.destination.port);
    ASSERT_EQ(got, ports) << "round " << round;
  }
}

TEST(BatchEffect, EmptyBatch) {
  const auto e = net_effect({});
  EXPECT_TRUE(e.touched.empty());
  EXPECT_TRUE(e.installs.empty());
}

}  // namespace
}  // namespace ftpwall::firewall
