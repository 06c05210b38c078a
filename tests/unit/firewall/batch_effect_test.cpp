// SPDX-License-Identifier: GPL-2.0-or-later
// net_effect(): what one worker batch does to the kernel (security review finding L5).
#include <gtest/gtest.h>

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

TEST(BatchEffect, EmptyBatch) {
  const auto e = net_effect({});
  EXPECT_TRUE(e.touched.empty());
  EXPECT_TRUE(e.installs.empty());
}

}  // namespace
}  // namespace ftpwall::firewall
