// SPDX-License-Identifier: GPL-2.0-or-later
// Every bound of the core, named once. Each has a unit test at the bound and one past it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ftpwall::limits {

// Longest announcement line (PORT/EPRT/227/229/LPRT/228), CRLF included. RFC 959 gives no bound;
// real lines are < 100 bytes. Longer lines that start with an announcing keyword are violations.
inline constexpr std::size_t max_announcement_line = 512;

}  // namespace ftpwall::limits
