// SPDX-License-Identifier: GPL-2.0-or-later
#include "backend_worker.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <cstring>
#include <string>

namespace ftpwall::firewall {

Result<std::unique_ptr<BackendWorker>> BackendWorker::start(FirewallBackend& backend, std::size_t max_batch,
                                                            bool inline_apply) {
  const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return make_error(std::string("backend worker: eventfd: ") + std::strerror(errno));
  return std::unique_ptr<BackendWorker>(new BackendWorker(backend, max_batch, fd, inline_apply));
}

BackendWorker::BackendWorker(FirewallBackend& backend, std::size_t max_batch, int event_fd, bool inline_apply)
    : backend_(backend), max_batch_(max_batch == 0 ? 1 : max_batch), event_fd_(event_fd), inline_apply_(inline_apply) {
  thread_ = std::thread([this] { run(); });
}

BackendWorker::~BackendWorker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  ::close(event_fd_);
}

void BackendWorker::submit(Change change, std::uint64_t token) {
  bool wake;
  {
    std::lock_guard lock(mutex_);
    queue_.push_back({std::move(change), token});
    wake = !held_;
  }
  if (wake) wake_.notify_one();
}

void BackendWorker::call(Task task, std::uint64_t token) {
  bool wake;
  {
    std::lock_guard lock(mutex_);
    queue_.push_back({std::move(task), token});
    wake = !held_;
  }
  if (wake) wake_.notify_one();
}

void BackendWorker::hold() {
  std::lock_guard lock(mutex_);
  held_ = true;
}

void BackendWorker::release() {
  std::vector<Queued>& work = work_;  // only this thread touches it (busy_ below)
  work.clear();
  {
    std::lock_guard lock(mutex_);
    held_ = false;
    const auto is_change = [](const Queued& q) { return std::holds_alternative<Change>(q.item); };
    if (inline_apply_ && !busy_ && !queue_.empty() && queue_.size() <= max_batch_ &&
        std::all_of(queue_.begin(), queue_.end(), is_change)) {
      busy_ = true;  // the worker finds the queue empty and stays asleep
      work.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
    } else if (queue_.empty()) {
      return;
    }
  }
  if (work.empty()) {
    wake_.notify_one();
    return;
  }
  apply_changes(work, done_);
  work.clear();
  bool more;
  {
    std::lock_guard lock(mutex_);
    busy_ = false;
    more = !queue_.empty();
  }
  post(done_);
  if (more) wake_.notify_one();
}

std::vector<BackendWorker::Completion> BackendWorker::take_completions() {
  std::vector<Completion> out;
  take_completions(out);
  return out;
}

void BackendWorker::take_completions(std::vector<Completion>& out) {
  std::uint64_t n;
  while (::read(event_fd_, &n, sizeof n) == sizeof n) {
  }
  out.clear();
  std::lock_guard lock(mutex_);
  out.swap(completions_);
}

bool BackendWorker::has_completions() const {
  std::lock_guard lock(mutex_);
  return !completions_.empty();
}

std::uint64_t BackendWorker::batches() const {
  std::lock_guard lock(mutex_);
  return batches_;
}

void BackendWorker::post(std::vector<Completion>& done) {
  {
    std::lock_guard lock(mutex_);
    for (auto& c : done) completions_.push_back(std::move(c));
  }
  done.clear();
  const std::uint64_t one = 1;
  (void)!::write(event_fd_, &one, sizeof one);
}

void BackendWorker::apply_changes(std::vector<Queued>& work, std::vector<Completion>& done) {
  std::vector<Change>& batch = batch_;
  batch.clear();
  for (auto& q : work) batch.push_back(std::move(std::get<Change>(q.item)));
  auto r = backend_.apply(batch);
  std::uint64_t applies = 1;
  if (r || batch.size() == 1) {
    for (auto& q : work) done.push_back({q.token, r});
  } else {
    // One bad change must not fail its neighbours: apply them one by one to find it.
    for (std::size_t i = 0; i < batch.size(); ++i) {
      done.push_back({work[i].token, backend_.apply(std::span<const Change>(&batch[i], 1))});
      ++applies;
    }
  }
  batch.clear();
  std::lock_guard lock(mutex_);
  batches_ += applies;
}

void BackendWorker::run() {
  for (;;) {
    std::vector<Queued> work;
    {
      std::unique_lock lock(mutex_);
      // busy_: release() is applying a round inline; what queues meanwhile waits for its end.
      wake_.wait(lock, [this] { return !busy_ && (stopping_ || !queue_.empty()); });
      if (queue_.empty()) return;  // stopping, and everything was applied
      busy_ = true;
      // A run of consecutive changes becomes one batch; a task runs alone, in order.
      if (std::holds_alternative<Task>(queue_.front().item)) {
        work.push_back(std::move(queue_.front()));
        queue_.pop_front();
      } else {
        while (!queue_.empty() && work.size() < max_batch_ && std::holds_alternative<Change>(queue_.front().item)) {
          work.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
    }
    std::vector<Completion> done;
    if (std::holds_alternative<Task>(work.front().item)) {
      done.push_back({work.front().token, std::get<Task>(work.front().item)(backend_)});
    } else {
      apply_changes(work, done);
    }
    {
      std::lock_guard lock(mutex_);
      busy_ = false;
    }
    post(done);
  }
}

}  // namespace ftpwall::firewall
