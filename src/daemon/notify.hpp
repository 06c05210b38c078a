// SPDX-License-Identifier: GPL-2.0-or-later
// systemd's service protocol (sd_notify through libsystemd): READY=1 once the hooks are in place,
// STATUS= with live figures, RELOADING=1 around SIGHUP, STOPPING=1, and WATCHDOG=1 at half the
// unit's WatchdogSec=. Without NOTIFY_SOCKET (not under systemd, Type=simple) every call is a
// no-op.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace ftpwall::daemon::notify {

void ready(const std::string& status);
void status(const std::string& status);
void reloading();
void stopping();
// How often to send WATCHDOG=1 (half of WatchdogSec=), if the unit asks for it.
std::optional<std::chrono::microseconds> watchdog_interval();
void watchdog();

}  // namespace ftpwall::daemon::notify
