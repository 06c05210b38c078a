// SPDX-License-Identifier: GPL-2.0-or-later
// Work handed to another thread's poll loop (issue 13: one thread per queue). The owner polls
// fd() and calls run(); any thread posts. call() waits for the answer: the leader asks each queue's
// thread for its figures (`ftpwall status`) and tells it to reload or stop; a queue's thread never
// waits for another, so no two threads wait for each other. Once the owner has closed the box
// (its loop ended), post() refuses and call() answers nothing instead of waiting forever.
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <vector>

#include "ftpwall/core/result.hpp"

namespace ftpwall::daemon {

class Mailbox {
 public:
  static Result<std::unique_ptr<Mailbox>> open();
  ~Mailbox();
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  int fd() const { return fd_; }
  // Any thread: queue `f` for the owner's loop. False once the box is closed.
  bool post(std::function<void()> f);
  // The owner's thread: runs everything posted so far.
  void run();
  // The owner's thread, when its loop ends: runs what is left, then refuses what comes.
  void close();

  // Any thread but the owner's: `f` run by the owner, its result; nothing if the box is closed.
  template <class F>
  auto call(F f) -> std::optional<std::conditional_t<std::is_void_v<std::invoke_result_t<F>>, bool, std::invoke_result_t<F>>> {
    using R = std::invoke_result_t<F>;
    std::packaged_task<R()> task(std::move(f));
    auto done = task.get_future();
    if (!post([&task] { task(); })) return std::nullopt;
    if constexpr (std::is_void_v<R>) {
      done.get();
      return true;
    } else {
      return done.get();
    }
  }

 private:
  explicit Mailbox(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::mutex m_;
  std::vector<std::function<void()>> work_;
  bool closed_ = false;
};

}  // namespace ftpwall::daemon
