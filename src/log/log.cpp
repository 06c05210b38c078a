// SPDX-License-Identifier: GPL-2.0-or-later
#include "log.hpp"

#include <algorithm>
#include <cstdlib>

#include <spdlog/async.h>
#include <spdlog/pattern_formatter.h>
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
// %* : the line's syslog priority as journald reads it from a stream ("<3>" ... "<7>", sd-daemon.h),
// so that `journalctl -p warning` finds the warnings.
class PriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& m, const std::tm&, spdlog::memory_buf_t& dest) override {
    const std::string_view p = priority_prefix(m.level);
    dest.append(p.data(), p.data() + p.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<PriorityFlag>(); }
};

}  // namespace

std::string_view priority_prefix(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
    case spdlog::level::debug: return "<7>";
    case spdlog::level::info: return "<6>";
    case spdlog::level::warn: return "<4>";
    case spdlog::level::err: return "<3>";
    case spdlog::level::critical: return "<2>";
    default: return "<6>";
  }
}

void setup(config::LogLevel level, bool async) {
  spdlog::drop("ftpwalld");  // a second setup() replaces the logger instead of throwing
  std::shared_ptr<spdlog::logger> logger;
  if (async) {
    // The daemon's lines are formatted and written by one thread of their own: an opening's or a
    // refusal's line costs the packet path a queue push, not a write(2). The queue blocks when
    // full rather than lose a line of the audit trail. The caller blocks its signals first, so
    // the thread never takes one.
    if (!spdlog::thread_pool()) spdlog::init_thread_pool(8192, 1);
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_st>();
    logger = std::make_shared<spdlog::async_logger>("ftpwalld", std::move(sink), spdlog::thread_pool(),
                                                    spdlog::async_overflow_policy::block);
    spdlog::register_logger(logger);
  } else {
    logger = spdlog::stderr_logger_st("ftpwalld");
  }
  // Under systemd, journald stamps every line (a second timestamp is noise) and takes each line's
  // priority from its "<N>" prefix.
  if (std::getenv("JOURNAL_STREAM")) {
    auto f = std::make_unique<spdlog::pattern_formatter>();
    f->add_flag<PriorityFlag>('*').set_pattern("%*%l: %v");
    logger->set_formatter(std::move(f));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l: %v");
  }
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
