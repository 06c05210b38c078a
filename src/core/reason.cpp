// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/reason.hpp"

#include <string>

namespace ftpwall {

Error make_error(Reason r, std::string_view detail) {
  std::string m(name(r));
  m += ": ";
  m += detail;
  return Error{std::move(m)};
}

Reason reason_of(const Error& e) {
  std::string_view m = e.message;
  const auto colon = m.find(':');
  if (colon == std::string_view::npos) return Reason::none;
  m = m.substr(0, colon);
#define FTPWALL_REASON_MATCH(n) \
  if (m == #n) return Reason::n;
  FTPWALL_REASONS(FTPWALL_REASON_MATCH)
#undef FTPWALL_REASON_MATCH
  return Reason::none;
}

}  // namespace ftpwall
