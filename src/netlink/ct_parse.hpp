// SPDX-License-Identifier: GPL-2.0-or-later
// Internal to src/netlink: the CTA_* parser shared by ctnetlink replies and NFQUEUE's NFQA_CT.
#pragma once

#include <optional>

#include "conntrack.hpp"

namespace ftpwall::netlink {

// `nest` is a `const struct nlattr*` whose payload holds CTA_* attributes (NFQA_CT). nullopt when
// the tuples are missing or malformed, or the connection is not TCP.
// `family`: the queued packet's (its IP version), the nest carries none.
std::optional<ConntrackEntry> parse_conntrack_nest(const void* nest, Family family);

}  // namespace ftpwall::netlink
