// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/notify.hpp"

#include <systemd/sd-daemon.h>

#include <cstdint>

namespace ftpwall::daemon::notify {

void ready(const std::string& s) { sd_notifyf(0, "READY=1\nSTATUS=%s", s.c_str()); }
void status(const std::string& s) { sd_notifyf(0, "STATUS=%s", s.c_str()); }
void reloading() { sd_notify(0, "RELOADING=1"); }
void stopping() { sd_notify(0, "STOPPING=1"); }

std::optional<std::chrono::microseconds> watchdog_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

void watchdog() { sd_notify(0, "WATCHDOG=1"); }

}  // namespace ftpwall::daemon::notify
