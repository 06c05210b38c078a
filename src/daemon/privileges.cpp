// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/privileges.hpp"

#include <cap-ng.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>

namespace ftpwall::daemon {

namespace {

constexpr int kept[] = {CAP_NET_ADMIN, CAP_NET_RAW};

std::optional<RunAs>& target() {
  static std::optional<RunAs> t;
  return t;
}

// The kernel's highest capability number: newer kernels know more than these headers.
int last_capability() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = CAP_LAST_CAP;
  if (in >> last && last >= 0 && last < 64) return last;
  return CAP_LAST_CAP;
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

Result<RunAs> lookup_user(const std::string& name) {
  errno = 0;
  const passwd* pw = ::getpwnam(name.c_str());
  if (!pw) {
    unsigned long id = 0;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
    if (ec == std::errc() && end == name.data() + name.size() && !name.empty()) pw = ::getpwuid(static_cast<uid_t>(id));
  }
  if (!pw) return make_error("--user " + name + ": no such user" + (errno ? std::string(" (") + std::strerror(errno) + ")" : ""));
  return RunAs{pw->pw_name, pw->pw_uid, pw->pw_gid};
}

void set_run_as(std::optional<RunAs> who) { target() = std::move(who); }
const std::optional<RunAs>& run_as() { return target(); }
uid_t daemon_uid() { return target() ? target()->uid : ::geteuid(); }

Result<void> keep_only_net_capabilities(std::vector<std::string>& notes) {
  capng_get_caps_process();
  for (int c : kept) {
    if (!capng_have_capability(CAPNG_PERMITTED, static_cast<unsigned>(c)))
      return make_error("ftpwalld needs CAP_NET_ADMIN and CAP_NET_RAW (run it as root, or grant both)");
  }

  // The bounding set first: dropping from it needs CAP_SETPCAP, which the change below removes.
  const int last = last_capability();
  for (int c = 0; c <= last; ++c) {
    if (c == CAP_NET_ADMIN || c == CAP_NET_RAW) continue;
    if (::prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 1) continue;
    if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) {
      notes.push_back("capability " + std::to_string(c) + " stays in the bounding set: " + std::strerror(errno));
    }
  }
  // Ambient capabilities would survive an execve; ftpwalld never execs, but leaves none behind.
  // EINVAL: a kernel before 4.3 without ambient capabilities.
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return make_error(errno_text("prctl(PR_CAP_AMBIENT_CLEAR_ALL)"));

  // Effective and permitted: the two, nothing inheritable. The bounding set is done above.
  capng_clear(CAPNG_SELECT_CAPS);
  for (int c : kept) capng_update(CAPNG_ADD, static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED), static_cast<unsigned>(c));
  const auto& who = target();
  if (who && (who->uid != ::getuid() || who->uid != ::geteuid() || who->gid != ::getgid())) {
    // setresgid, setgroups(0), setresuid with PR_SET_KEEPCAPS, then the sets above; needs
    // CAP_SETUID, CAP_SETGID and CAP_SETPCAP, which are not kept.
    if (const int rc = capng_change_id(static_cast<int>(who->uid), static_cast<int>(who->gid), CAPNG_DROP_SUPP_GRP); rc != 0)
      return make_error("changing to user " + who->name + " (uid " + std::to_string(who->uid) + ", gid " +
                        std::to_string(who->gid) + "): capng_change_id failed (" + std::to_string(rc) +
                        (errno ? std::string(", ") + std::strerror(errno) : std::string()) +
                        "); needs CAP_SETUID, CAP_SETGID and CAP_SETPCAP at start");
  } else if (capng_apply(CAPNG_SELECT_CAPS) != 0) {
    return make_error(errno_text("capset"));
  }
  if (who && (::getuid() != who->uid || ::geteuid() != who->uid || ::getgid() != who->gid || ::getegid() != who->gid))
    return make_error("changing to user " + who->name + ": the ids did not change");
  // What is left must be exactly the two (capng_change_id re-applies the sets it was given).
  capng_get_caps_process();
  for (int c : kept) {
    if (!capng_have_capability(CAPNG_EFFECTIVE, static_cast<unsigned>(c)))
      return make_error("capability " + std::to_string(c) + " lost while dropping privileges");
  }
  if (capng_have_capability(CAPNG_EFFECTIVE, CAP_SETUID) || capng_have_capability(CAPNG_PERMITTED, CAP_SYS_ADMIN) ||
      capng_have_capability(CAPNG_PERMITTED, CAP_DAC_OVERRIDE) || capng_have_capability(CAPNG_PERMITTED, CAP_SETPCAP))
    return make_error("capabilities beyond CAP_NET_ADMIN and CAP_NET_RAW remain after dropping privileges");
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return make_error(errno_text("prctl(PR_SET_NO_NEW_PRIVS)"));
  return {};
}

}  // namespace ftpwall::daemon
