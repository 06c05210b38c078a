// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/rules/ruleset.hpp"
namespace ftpwall::rules {
std::string emit_server_config(const Validated&) { return {}; }
}  // namespace ftpwall::rules
