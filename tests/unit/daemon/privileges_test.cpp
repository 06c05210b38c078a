// SPDX-License-Identifier: GPL-2.0-or-later
// --user (security review L10): the user is looked up by name or uid. The change itself needs root
// and the kernel interfaces (a network namespace); it is not exercised here.
#include <gtest/gtest.h>

#include <unistd.h>

#include "daemon/privileges.hpp"

using namespace ftpwall::daemon;

TEST(Privileges, LooksUpUsersByNameAndUid) {
  auto root = lookup_user("root");
  ASSERT_TRUE(root) << root.error().message;
  EXPECT_EQ(root->uid, 0u);
  EXPECT_EQ(root->gid, 0u);
  auto by_uid = lookup_user("0");
  ASSERT_TRUE(by_uid);
  EXPECT_EQ(by_uid->name, "root");
  auto none = lookup_user("ftpwall-no-such-user");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no such user"), std::string::npos);
}

TEST(Privileges, DaemonUidFollowsRunAs) {
  EXPECT_EQ(daemon_uid(), ::geteuid());
  set_run_as(RunAs{"someone", 4242, 4242});
  EXPECT_EQ(daemon_uid(), 4242u);
  set_run_as(std::nullopt);
  EXPECT_EQ(daemon_uid(), ::geteuid());
}
