// SPDX-License-Identifier: GPL-2.0-or-later
// Every refusal and notable decision has one stable machine name: the same word in the log line,
// the counter, the man page and the test name. Add a row here and in docs/reasons.md together.
#pragma once

#include <cstdint>
#include <string_view>

namespace ftpwall {

#define FTPWALL_REASONS(X)                                                                      \
  X(none)                          /* not a refusal */                                         \
  X(bad_syntax)                    /* announcement keyword, but the arguments do not parse */   \
  X(line_too_long)                 /* announcement line longer than limits::max_announcement_line */

enum class Reason : std::uint8_t {
#define FTPWALL_REASON_ENUM(n) n,
  FTPWALL_REASONS(FTPWALL_REASON_ENUM)
#undef FTPWALL_REASON_ENUM
};

constexpr std::string_view name(Reason r) {
  switch (r) {
#define FTPWALL_REASON_NAME(n) \
  case Reason::n:              \
    return #n;
    FTPWALL_REASONS(FTPWALL_REASON_NAME)
#undef FTPWALL_REASON_NAME
  }
  return "unknown";
}

}  // namespace ftpwall
