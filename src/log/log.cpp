// SPDX-License-Identifier: GPL-2.0-or-later
#include "log.hpp"

#include <algorithm>
#include <cstdlib>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace ftpwall::log {

namespace {
spdlog::level::level_enum to_spdlog(config::LogLevel l) {
  switch (l) {
    case config::LogLevel::trace: return spdlog::level::trace;
    case config::LogLevel::debug: return spdlog::level::debug;
    case config::LogLevel::info: return spdlog::level::info;
    case config::LogLevel::warn: return spdlog::level::warn;
    case config::LogLevel::error: return spdlog::level::err;
    case config::LogLevel::critical: return spdlog::level::critical;
    case config::LogLevel::off: return spdlog::level::off;
  }
  return spdlog::level::info;
}
}  // namespace

void setup(config::LogLevel level) {
  spdlog::drop("ftpwalld");  // a second setup() replaces the logger instead of throwing
  auto logger = spdlog::stderr_logger_st("ftpwalld");
  // Under systemd, journald stamps every line; a second timestamp is noise.
  logger->set_pattern(std::getenv("JOURNAL_STREAM") ? "%l: %v" : "%Y-%m-%dT%H:%M:%S.%e %l: %v");
  logger->set_level(to_spdlog(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
}

void set_level(config::LogLevel level) { spdlog::set_level(to_spdlog(level)); }

RateLimiter::Decision RateLimiter::allow(std::uint32_t key, Clock::time_point now) {
  Bucket& b = buckets_[key];
  if (!b.used) {
    b.used = true;
    b.tokens = burst_;
    b.last = now;
  }
  if (interval_.count() > 0 && now > b.last) {
    const double refill = std::chrono::duration<double>(now - b.last) / std::chrono::duration<double>(interval_);
    b.tokens = std::min<double>(burst_, b.tokens + refill);
    b.last = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    Decision d{true, b.suppressed};
    b.suppressed = 0;
    return d;
  }
  ++b.suppressed;
  return Decision{false, 0};
}

}  // namespace ftpwall::log
