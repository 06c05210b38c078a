// SPDX-License-Identifier: GPL-2.0-or-later
// Logging for ftpwalld: spdlog to stderr (journald adds the timestamp and the unit), and a rate
// limiter so that a peer repeating a refused announcement cannot flood the log. Every line about a
// refusal carries the Reason's stable name (MODELS item 4).
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>
#include <unordered_map>

#include <spdlog/common.h>

#include "ftpwall/config/config.hpp"

namespace ftpwall::log {

// Installs the process-wide logger ("ftpwalld") at `level`; the pattern has no timestamp when
// stderr goes to journald (JOURNAL_STREAM set), one otherwise.
// `async`: the lines are written by a logging thread of their own (the daemon).
void setup(config::LogLevel level, bool async = false);
void set_level(config::LogLevel level);  // SIGHUP
// "<7>" debug and trace, "<6>" info, "<4>" warnings, "<3>" errors, "<2>" critical: what journald
// reads as a line's priority when stderr is its stream (JOURNAL_STREAM set).
std::string_view priority_prefix(spdlog::level::level_enum l);

// Token bucket per key: `burst` lines at once, then one per `interval`. Keys are small integers
// (a Reason, a counter id). Not thread-safe: one per thread.
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  struct Decision {
    bool log = false;
    std::uint64_t suppressed = 0;  // lines dropped for this key since the last one logged
  };

  RateLimiter(unsigned burst, Clock::duration interval) : burst_(burst), interval_(interval) {}
  Decision allow(std::uint32_t key, Clock::time_point now);

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last{};
    std::uint64_t suppressed = 0;
    bool used = false;
  };
  unsigned burst_;
  Clock::duration interval_;
  std::unordered_map<std::uint32_t, Bucket> buckets_;
};

}  // namespace ftpwall::log
