// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/privileges.hpp"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>

namespace ftpwall::daemon {

namespace {

constexpr std::uint64_t bit(int cap) { return std::uint64_t{1} << cap; }
constexpr std::uint64_t keep = bit(CAP_NET_ADMIN) | bit(CAP_NET_RAW);

// The kernel's highest capability number: newer kernels know more than these headers.
int last_capability() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = CAP_LAST_CAP;
  if (in >> last && last >= 0 && last < 64) return last;
  return CAP_LAST_CAP;
}

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

}  // namespace

Result<void> keep_only_net_capabilities(std::vector<std::string>& notes) {
  // capget/capset with _LINUX_CAPABILITY_VERSION_3: two 32-bit words per set, pid 0 = this thread.
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0) return make_error(errno_text("capget"));
  const std::uint64_t permitted = data[0].permitted | (std::uint64_t{data[1].permitted} << 32);
  if ((permitted & keep) != keep)
    return make_error("ftpwalld needs CAP_NET_ADMIN and CAP_NET_RAW (run it as root, or grant both)");

  // The bounding set first: dropping from it needs CAP_SETPCAP, which the capset below removes.
  const int last = last_capability();
  for (int c = 0; c <= last; ++c) {
    if (keep & bit(c)) continue;
    if (::prctl(PR_CAPBSET_READ, c, 0, 0, 0) != 1) continue;
    if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) {
      notes.push_back("capability " + std::to_string(c) + " stays in the bounding set: " + std::strerror(errno));
    }
  }
  // Ambient capabilities would survive an execve; ftpwalld never execs, but leaves none behind.
  // EINVAL: a kernel before 4.3 without ambient capabilities.
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return make_error(errno_text("prctl(PR_CAP_AMBIENT_CLEAR_ALL)"));

  data[0] = {};
  data[1] = {};
  data[0].effective = data[0].permitted = static_cast<std::uint32_t>(keep);
  if (::syscall(SYS_capset, &hdr, data) != 0) return make_error(errno_text("capset"));
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return make_error(errno_text("prctl(PR_SET_NO_NEW_PRIVS)"));
  return {};
}

}  // namespace ftpwall::daemon
