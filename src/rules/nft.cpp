// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/rules/ruleset.hpp"
namespace ftpwall::rules {
std::string emit_nft(const Ruleset& rs) { return header_comment(rs) + "# nft: not yet\n"; }
}  // namespace ftpwall::rules
