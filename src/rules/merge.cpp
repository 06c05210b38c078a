// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/rules/ruleset.hpp"
namespace ftpwall::rules {
Result<MergeResult> merge_iptables_save(std::string_view, const Ruleset&) { return make_error("--merge: not yet implemented"); }
}  // namespace ftpwall::rules
