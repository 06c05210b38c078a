// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/rules/ruleset.hpp"
namespace ftpwall::rules {
Result<std::string> emit_firewalld(const Validated&) { return make_error("--format firewalld: not yet implemented"); }
}  // namespace ftpwall::rules
