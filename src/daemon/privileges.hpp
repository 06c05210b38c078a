// SPDX-License-Identifier: GPL-2.0-or-later
// ftpwalld keeps only what libiptc and netlink need once its sockets are open (issue 4 "Operation"):
// CAP_NET_ADMIN (iptables table replace, ctnetlink updates, NFQUEUE config) and CAP_NET_RAW (libiptc's
// raw socket, opened per commit), nothing in the bounding, inheritable or ambient sets, and
// PR_SET_NO_NEW_PRIVS. The process stays uid 0, so the root-only /run/xtables.lock (0600, opened per
// commit) is still its own file without CAP_DAC_OVERRIDE. Capabilities are per thread: call this
// before any thread starts (the backend worker inherits the reduced sets).
#pragma once

#include <string>
#include <vector>

#include "ftpwall/core/result.hpp"

namespace ftpwall::daemon {

// Drops every capability but CAP_NET_ADMIN and CAP_NET_RAW and sets no_new_privs. Errors: the two
// capabilities are not permitted, or capset/prctl refused. `notes` collects what could not be
// dropped from the bounding set (no CAP_SETPCAP, e.g. already confined by systemd): not fatal,
// since no_new_privs and a process that never execs make the bounding set moot.
Result<void> keep_only_net_capabilities(std::vector<std::string>& notes);

}  // namespace ftpwall::daemon
