// SPDX-License-Identifier: GPL-2.0-or-later
#include "firewall/backend_worker.hpp"

#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>

namespace ftpwall::firewall {
namespace {

using namespace std::chrono_literals;

// Records every apply() and keeps the installed openings as a kernel would (the batch's net
// effect); can be held shut so that submissions pile up behind a running batch, and refuses
// openings whose port is 666.
class FakeBackend final : public FirewallBackend {
 public:
  std::string_view name() const override { return "fake"; }
  Result<void> apply(std::span<const Change> changes) override {
    std::unique_lock lock(m_);
    ++entered_;
    entered_cv_.notify_all();
    gate_cv_.wait(lock, [this] { return open_; });
    batches_.push_back(changes.size());
    for (const auto& c : changes) {
      if (const auto* o = std::get_if<OpenStep>(&c); o && o->opening.destination.port == 666) {
        return make_error("port 666 refused");
      }
    }
    const BatchEffect e = net_effect(changes);
    for (const auto& id : e.touched) installed_.erase(id);
    for (const auto& o : e.installs) installed_.insert(o.id);
    return {};
  }
  Result<void> close_session(std::uint64_t) override { return {}; }
  Result<void> flush_own() override {
    std::lock_guard lock(m_);
    ++flushes_;
    return {};
  }
  Result<std::vector<Opening>> list_own() override { return std::vector<Opening>{}; }
  Result<void> install_hooks(const HookSpec&) override { return {}; }
  Result<void> remove_hooks() override { return {}; }
  Result<HookState> hook_state() override { return HookState{}; }
  Result<std::vector<std::string>> preflight(const HookSpec&, bool) override { return std::vector<std::string>{}; }
  BackendStats stats() const override { return {}; }

  void hold() { std::lock_guard lock(m_); open_ = false; }
  void release() {
    { std::lock_guard lock(m_); open_ = true; }
    gate_cv_.notify_all();
  }
  void wait_entered(int n) {
    std::unique_lock lock(m_);
    entered_cv_.wait(lock, [&] { return entered_ >= n; });
  }
  std::vector<std::size_t> batches() { std::lock_guard lock(m_); return batches_; }
  int flushes() { std::lock_guard lock(m_); return flushes_; }
  std::set<OpeningId> installed() { std::lock_guard lock(m_); return installed_; }

 private:
  std::mutex m_;
  std::condition_variable gate_cv_, entered_cv_;
  bool open_ = true;
  int entered_ = 0;
  int flushes_ = 0;
  std::vector<std::size_t> batches_;
  std::set<OpeningId> installed_;
};

Change open_to(std::uint16_t port, std::uint32_t n) {
  Opening o;
  o.id = {1, n};
  o.source = Address::v4(198, 51, 100, 2);
  o.destination = {Address::v4(203, 0, 113, 1), port};
  return OpenStep{o};
}

// Waits (poll on event_fd) until `n` completions have arrived.
std::vector<BackendWorker::Completion> collect(BackendWorker& w, std::size_t n) {
  std::vector<BackendWorker::Completion> all;
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (all.size() < n && std::chrono::steady_clock::now() < deadline) {
    pollfd p{w.event_fd(), POLLIN, 0};
    if (poll(&p, 1, 100) > 0) {
      for (auto& c : w.take_completions()) all.push_back(std::move(c));
    }
  }
  return all;
}

TEST(BackendWorker, ChangesQueuedDuringACommitBecomeOneBatch) {
  FakeBackend b;
  auto w = BackendWorker::start(b);
  ASSERT_TRUE(w.ok());
  b.hold();
  (*w)->submit(open_to(5000, 1), 1);
  b.wait_entered(1);  // the worker is inside apply() with the first change
  for (std::uint32_t i = 2; i <= 4; ++i) (*w)->submit(open_to(static_cast<std::uint16_t>(5000 + i), i), i);
  b.release();
  auto done = collect(**w, 4);
  ASSERT_EQ(done.size(), 4u);
  for (std::size_t i = 0; i < done.size(); ++i) {
    EXPECT_EQ(done[i].token, i + 1);
    EXPECT_TRUE(done[i].result.ok());
  }
  EXPECT_EQ(b.batches(), (std::vector<std::size_t>{1, 3}));
}

TEST(BackendWorker, MaxBatchBoundsABatch) {
  FakeBackend b;
  auto w = BackendWorker::start(b, 2);
  ASSERT_TRUE(w.ok());
  b.hold();
  (*w)->submit(open_to(5000, 0), 0);
  b.wait_entered(1);
  for (std::uint32_t i = 1; i <= 3; ++i) (*w)->submit(open_to(static_cast<std::uint16_t>(5000 + i), i), i);
  b.release();
  ASSERT_EQ(collect(**w, 4).size(), 4u);
  EXPECT_EQ(b.batches(), (std::vector<std::size_t>{1, 2, 1}));
}

TEST(BackendWorker, ABadChangeFailsAloneNotItsBatch) {
  FakeBackend b;
  auto w = BackendWorker::start(b);
  ASSERT_TRUE(w.ok());
  b.hold();
  (*w)->submit(open_to(5000, 0), 10);
  b.wait_entered(1);
  (*w)->submit(open_to(5001, 1), 11);
  (*w)->submit(open_to(666, 2), 12);
  (*w)->submit(open_to(5003, 3), 13);
  b.release();
  auto done = collect(**w, 4);
  ASSERT_EQ(done.size(), 4u);
  EXPECT_TRUE(done[0].result.ok());
  EXPECT_TRUE(done[1].result.ok());
  ASSERT_FALSE(done[2].result.ok());
  EXPECT_EQ(done[2].result.error().message, "port 666 refused");
  EXPECT_TRUE(done[3].result.ok());
  // the batch of three failed, then each was applied alone
  EXPECT_EQ(b.batches(), (std::vector<std::size_t>{1, 3, 1, 1, 1}));
}

TEST(BackendWorker, TasksRunInOrderBetweenBatches) {
  FakeBackend b;
  auto w = BackendWorker::start(b);
  ASSERT_TRUE(w.ok());
  b.hold();
  (*w)->submit(open_to(5000, 0), 1);
  b.wait_entered(1);
  (*w)->submit(open_to(5001, 1), 2);
  (*w)->call([](FirewallBackend& fb) { return fb.flush_own(); }, 3);
  (*w)->submit(open_to(5002, 2), 4);
  b.release();
  auto done = collect(**w, 4);
  ASSERT_EQ(done.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(done[i].token, i + 1);
  EXPECT_EQ(b.batches(), (std::vector<std::size_t>{1, 1, 1}));  // the flush splits the changes
  EXPECT_EQ(b.flushes(), 1);
}

// Security review L5: a close queued behind its own open, while the worker is busy, lands in the
// same batch; the batch's net effect installs nothing. A close + open (a reinstall) installs.
TEST(BackendWorker, AnOpenAndItsCloseInOneBatchCancelOut) {
  FakeBackend b;
  auto w = BackendWorker::start(b);
  ASSERT_TRUE(w.ok());
  b.hold();
  (*w)->submit(open_to(5000, 0), 1);
  b.wait_entered(1);
  (*w)->submit(open_to(5001, 1), 2);
  (*w)->submit(CloseStep{OpeningId{1, 1}}, 3);
  (*w)->submit(CloseStep{OpeningId{1, 0}}, 4);
  (*w)->submit(open_to(5000, 0), 5);
  b.release();
  auto done = collect(**w, 5);
  ASSERT_EQ(done.size(), 5u);
  for (const auto& c : done) EXPECT_TRUE(c.result.ok());
  EXPECT_EQ(b.batches(), (std::vector<std::size_t>{1, 4}));
  EXPECT_EQ(b.installed(), (std::set<OpeningId>{{1, 0}}));
}

TEST(BackendWorker, DestructorAppliesWhatIsQueued) {
  FakeBackend b;
  {
    auto w = BackendWorker::start(b);
    ASSERT_TRUE(w.ok());
    for (std::uint32_t i = 0; i < 5; ++i) (*w)->submit(open_to(static_cast<std::uint16_t>(5000 + i), i), i);
  }
  std::size_t total = 0;
  for (auto n : b.batches()) total += n;
  EXPECT_EQ(total, 5u);
}

// Inline (nftables): a held round's changes are committed by release() in the caller's thread, as
// one batch, and their completions are there when release() returns.
TEST(BackendWorker, InlineReleaseCommitsTheRoundInTheCallersThread) {
  FakeBackend b;
  auto w = BackendWorker::start(b, 256, true);
  ASSERT_TRUE(w.ok());
  (*w)->hold();
  for (std::uint32_t i = 1; i <= 3; ++i) (*w)->submit(open_to(static_cast<std::uint16_t>(5000 + i), i), i);
  EXPECT_TRUE(b.batches().empty()) << "nothing applied while held";
  (*w)->release();
  EXPECT_EQ(b.batches(), (std::vector<std::size_t>{3}));
  ASSERT_TRUE((*w)->has_completions());
  auto done = (*w)->take_completions();
  ASSERT_EQ(done.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(done[i].token, i + 1);
  EXPECT_FALSE((*w)->has_completions());
  EXPECT_EQ(b.installed().size(), 3u);
}

// Never two threads on the backend, never out of order: while the worker runs a task (the kernel
// check), a round's changes wait for it instead of being applied inline beside it.
TEST(BackendWorker, InlineWaitsBehindARunningTask) {
  FakeBackend b;
  auto w = BackendWorker::start(b, 256, true);
  ASSERT_TRUE(w.ok());
  std::mutex m;
  std::condition_variable cv;
  bool in_task = false, let_go = false;
  (*w)->call(
      [&](FirewallBackend&) -> Result<void> {
        std::unique_lock lock(m);
        in_task = true;
        cv.notify_all();
        cv.wait(lock, [&] { return let_go; });
        return {};
      },
      1);
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return in_task; });
  }
  (*w)->hold();
  (*w)->submit(open_to(5001, 1), 2);
  (*w)->release();
  EXPECT_TRUE(b.batches().empty()) << "applied beside the running task";
  {
    std::lock_guard lock(m);
    let_go = true;
  }
  cv.notify_all();
  auto done = collect(**w, 2);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].token, 1u);
  EXPECT_EQ(done[1].token, 2u);
  EXPECT_EQ(b.batches(), (std::vector<std::size_t>{1}));
}

// A round with a task in it goes to the worker whole, in order.
TEST(BackendWorker, InlineLeavesTasksToTheWorker) {
  FakeBackend b;
  auto w = BackendWorker::start(b, 256, true);
  ASSERT_TRUE(w.ok());
  (*w)->hold();
  (*w)->submit(open_to(5001, 1), 1);
  (*w)->call([](FirewallBackend& fb) { return fb.flush_own(); }, 2);
  (*w)->submit(open_to(5002, 2), 3);
  (*w)->release();
  auto done = collect(**w, 3);
  ASSERT_EQ(done.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(done[i].token, i + 1);
  EXPECT_EQ(b.flushes(), 1);
  EXPECT_EQ(b.batches(), (std::vector<std::size_t>{1, 1}));
}

TEST(OpeningComment, RoundTrip) {
  const OpeningId id{18446744073709551615ull, 4294967295u};
  EXPECT_EQ(format_opening_comment(id), "ftpwall s18446744073709551615 o4294967295");
  EXPECT_EQ(parse_opening_comment(format_opening_comment(id)), id);
  EXPECT_EQ(parse_opening_comment("ftpwall s7 o1"), (OpeningId{7, 1}));
  EXPECT_EQ(parse_opening_comment("ftpwall s7 r1"), (OpeningId{7, 1, true}));
  EXPECT_EQ(format_opening_comment(OpeningId{7, 2, true}), "ftpwall s7 r2");
  EXPECT_STREQ(opening_comment(id).c_str(), "ftpwall s18446744073709551615 o4294967295");  // the longest
  EXPECT_STREQ(opening_comment(OpeningId{0, 0, false}).c_str(), "ftpwall s0 o0");
}

TEST(OpeningComment, RejectsOtherComments) {
  for (const char* c : {"ftpwall hook", "ftpwall s7", "ftpwall s07 o1", "ftpwall s7 o", "ftpwall s7 o1x", "ftpwall s-1 o1",
                        "ftpwall s18446744073709551616 o1", "FTPWALL s7 o1", "", "ftpwall: 21 accept"}) {
    EXPECT_FALSE(parse_opening_comment(c).has_value()) << c;
  }
}

TEST(HookSpec, ExpectedOwnHooks) {
  HookSpec g;  // gateway, port 21, no nat: 1 steering (--ctorigdstport, both directions) + 1 jump
  EXPECT_EQ(expected_own_hooks(g), 2u);
  g.control_ports = {21, 2121};
  g.nat = true;  // the layout 200-adapter-iptc installs: 2 + 1 + 2
  EXPECT_EQ(expected_own_hooks(g), 5u);
  HookSpec s;
  s.role = Role::server;  // INPUT --ctdir ORIGINAL + OUTPUT --ctdir REPLY, INPUT and OUTPUT jumps
  EXPECT_EQ(expected_own_hooks(s), 4u);
}

TEST(Opening, AcceptedDestinationIsAfterDnat) {
  Opening o;
  o.destination = {Address::v4(203, 0, 113, 1), 50000};
  EXPECT_EQ(o.accepted_destination(), o.destination);
  o.dnat_to = Endpoint{Address::v4(10, 0, 0, 2), 50001};
  EXPECT_EQ(o.accepted_destination(), *o.dnat_to);
}

}  // namespace
}  // namespace ftpwall::firewall
