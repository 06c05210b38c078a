// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/mailbox.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <thread>

namespace ftpwall::daemon {
namespace {

// The owner's loop: polls the box, runs what comes, until told to stop; then closes it.
void owner_loop(Mailbox& box, std::atomic<bool>& stop, std::thread::id& ran_on) {
  while (!stop) {
    pollfd p{box.fd(), POLLIN, 0};
    if (::poll(&p, 1, 1000) > 0) box.run();
  }
  ran_on = std::this_thread::get_id();
  box.close();
}

TEST(Mailbox, CallRunsInTheOwnersThreadAndAnswers) {
  auto box = Mailbox::open();
  ASSERT_TRUE(box.ok());
  std::atomic<bool> stop{false};
  std::thread::id loop_id;
  std::thread owner(owner_loop, std::ref(**box), std::ref(stop), std::ref(loop_id));
  std::thread::id where;
  auto answer = (*box)->call([&] {
    where = std::this_thread::get_id();
    return 42;
  });
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(*answer, 42);
  EXPECT_EQ(where, owner.get_id());
  EXPECT_TRUE((*box)->call([&] { stop = true; }).has_value()) << "a void call answers true";
  owner.join();
}

TEST(Mailbox, WorkPostedInOrderRunsInOrder) {
  auto box = Mailbox::open();
  ASSERT_TRUE(box.ok());
  std::vector<int> seen;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE((*box)->post([&seen, i] { seen.push_back(i); }));
  (*box)->run();
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(Mailbox, AClosedBoxRunsWhatIsLeftThenRefuses) {
  auto box = Mailbox::open();
  ASSERT_TRUE(box.ok());
  int ran = 0;
  EXPECT_TRUE((*box)->post([&] { ++ran; }));
  (*box)->close();
  EXPECT_EQ(ran, 1) << "close() runs what was posted before it";
  EXPECT_FALSE((*box)->post([&] { ++ran; }));
  // A call to a box whose loop has ended answers nothing instead of waiting for ever.
  EXPECT_FALSE((*box)->call([] { return 1; }).has_value());
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace ftpwall::daemon
