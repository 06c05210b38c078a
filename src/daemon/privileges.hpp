// SPDX-License-Identifier: GPL-2.0-or-later
// ftpwalld keeps only what libiptc and netlink need once its sockets are open (issue 4 "Operation"):
// CAP_NET_ADMIN (iptables table replace, ctnetlink updates, NFQUEUE config) and CAP_NET_RAW (libiptc's
// raw socket, opened per commit), nothing in the bounding, inheritable or ambient sets, and
// PR_SET_NO_NEW_PRIVS (libcap-ng). Capabilities are per thread: call this before any thread starts
// (the backend worker inherits the reduced sets).
//
// By default the process stays uid 0, so the root-only /run/xtables.lock (0600, opened per commit)
// is still its own file. With --user NAME (set_run_as, before Daemon::start) it also changes to
// that user's uid and gid, without supplementary groups, keeping the two capabilities across the
// change (libcap-ng's capng_change_id: PR_SET_KEEPCAPS): uid 0's owner rights on root's files are
// gone. What still needs root is done before: the xtables lock is opened then and kept open
// (iptc_backend.hpp, keep_xtables_lock_open), the state directory is created for that user
// (state_dir.hpp). Under systemd with User= the process starts as that user with the two
// capabilities ambient; then no --user is needed (ftpwalld(8), CAVEATS, Privileges).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "ftpwall/core/result.hpp"

namespace ftpwall::daemon {

struct RunAs {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;  // the user's primary group
};

// The passwd entry of `name` (a user name or a numeric uid). Error: no such user.
Result<RunAs> lookup_user(const std::string& name);

// The identity keep_only_net_capabilities changes to (process-wide; main() sets it from --user).
void set_run_as(std::optional<RunAs> who);
const std::optional<RunAs>& run_as();
// The uid the daemon runs as once its privileges are dropped: run_as()'s, else the effective uid.
uid_t daemon_uid();

// Drops every capability but CAP_NET_ADMIN and CAP_NET_RAW, changes to run_as() if set, and sets
// no_new_privs. Errors: the two capabilities are not permitted, or the change was refused.
// `notes` collects what could not be dropped from the bounding set (no CAP_SETPCAP, e.g. already
// confined by systemd): not fatal, since no_new_privs and a process that never execs make the
// bounding set moot.
Result<void> keep_only_net_capabilities(std::vector<std::string>& notes);

}  // namespace ftpwall::daemon
