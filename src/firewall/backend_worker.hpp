// SPDX-License-Identifier: GPL-2.0-or-later
// The firewall backend on its own thread (issue 4: "the backend runs on its own worker thread with
// its own queue; only the announcing packet waits for it"). The poll loop submits changes with a
// token and goes on giving verdicts; the worker applies everything that queued up meanwhile as one
// batch (one commit per table), then posts one completion per token and makes event_fd()
// readable. The loop then releases the announcing packets whose openings are in the kernel.
//
// After construction only the worker thread touches the backend: everything else (flush, hooks,
// list) goes through call(), in submission order with the changes.
//
// Inline (issue 13, for a backend whose commit costs microseconds: nftables, ~8 us): release()
// applies the round's changes itself, in the caller's thread, when the worker is idle and nothing
// else is queued, and posts their completions at once. The hand-off (a futex wake, a context
// switch, the eventfd and another poll round) cost an announcement ~0.5 ms of waiting for a commit
// of a few microseconds. Tasks (the kernel check's listing) and changes queued behind a task or
// while the worker is busy still go to the worker, in order: the backend is never touched by two
// threads at once, and changes are applied in the order they were submitted.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>
#include <vector>

#include "ftpwall/core/containers.hpp"
#include "ftpwall/firewall/backend.hpp"

namespace ftpwall::firewall {

class BackendWorker {
 public:
  struct Completion {
    std::uint64_t token = 0;
    Result<void> result;
  };
  using Task = std::function<Result<void>(FirewallBackend&)>;

  // max_batch bounds one commit's size (and the latency of the first change in it).
  static Result<std::unique_ptr<BackendWorker>> start(FirewallBackend& backend, std::size_t max_batch = 256,
                                                      bool inline_apply = false);
  // Applies what is queued, then stops.
  ~BackendWorker();
  BackendWorker(const BackendWorker&) = delete;
  BackendWorker& operator=(const BackendWorker&) = delete;

  void submit(Change change, std::uint64_t token);
  void call(Task task, std::uint64_t token);
  // Between hold() and release() submissions only queue up: the worker is woken once, at release(),
  // and applies them as one batch (the poll loop holds it over one round of queued packets).
  void hold();
  void release();

  // Readable (eventfd) while completions wait; take_completions() drains it.
  int event_fd() const { return event_fd_; }
  std::vector<Completion> take_completions();
  // The same into `out` (emptied first; the two vectors trade places, their capacity kept).
  void take_completions(std::vector<Completion>& out);
  bool has_completions() const;

  std::uint64_t batches() const;  // apply() calls so far

 private:
  using Item = std::variant<Change, Task>;
  struct Queued {
    Item item;
    std::uint64_t token;
  };
  BackendWorker(FirewallBackend& backend, std::size_t max_batch, int event_fd, bool inline_apply);
  void run();
  void post(std::vector<Completion>& done);  // moved to the completions, `done` left empty
  // One run of consecutive changes as one batch (one by one when the batch fails): their
  // completions, appended to `done`. Runs in one thread at a time (busy_).
  void apply_changes(std::vector<Queued>& work, std::vector<Completion>& done);

  FirewallBackend& backend_;
  const std::size_t max_batch_;
  int event_fd_ = -1;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  Fifo<Queued> queue_;
  std::vector<Completion> completions_;
  // Scratch of release() (the inline path) and apply_changes(), kept from batch to batch (issue 13).
  std::vector<Queued> work_;
  std::vector<Completion> done_;
  std::vector<Change> batch_;
  std::uint64_t batches_ = 0;
  bool stopping_ = false;
  bool held_ = false;
  const bool inline_apply_;
  bool busy_ = false;  // work is being applied outside the lock (by the worker or inline)
  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace ftpwall::firewall
