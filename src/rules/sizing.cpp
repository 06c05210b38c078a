// SPDX-License-Identifier: GPL-2.0-or-later
// --passive-ports auto: how many passive ports N concurrent sessions need, and where to put them.
//
//   ports = max(2 x N, N + ceil(R x T), 100)
//   2 x N     a session may already hold its next passive port while the previous data
//             connection is still closing (vsftpd/proftpd listen before the last one is gone).
//   N + R x T N ports in use plus every port freed in the last T seconds: a finished data
//             connection keeps its port pair for T s. T = 60 s on a server (Linux TCP_TIMEWAIT_LEN,
//             the socket of the side that closed first); T = 120 s on a gateway
//             (net.netfilter.nf_conntrack_tcp_timeout_time_wait, the conntrack entry the next
//             connection to the same port would collide with).
//   100       the floor: RFC 2577 §7 (port stealing) asks for random passive ports, which are only
//             hard to guess in a range that is not tiny.
// The range avoids 32768-60999, Linux's default ip_local_port_range, where the host's own outbound
// connections (and a gateway's MASQUERADE source ports) would compete for the same numbers.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "ftpwall/rules/ruleset.hpp"

namespace ftpwall::rules {

namespace {
inline constexpr std::size_t min_passive_ports = 100;
inline constexpr unsigned server_time_wait_s = 60;    // TCP_TIMEWAIT_LEN
inline constexpr unsigned gateway_time_wait_s = 120;  // nf_conntrack_tcp_timeout_time_wait

std::string format_rate(double r) {
  char buf[32];
  if (r == std::floor(r)) std::snprintf(buf, sizeof buf, "%.0f", r);
  else std::snprintf(buf, sizeof buf, "%.2g", r);
  return buf;
}
}  // namespace

std::size_t ports_needed(Role role, unsigned sessions, double tps, std::string* reason) {
  const unsigned t = role == Role::server ? server_time_wait_s : gateway_time_wait_s;
  const std::size_t n = sessions;
  const std::size_t twice = 2 * n;
  const auto cooling = static_cast<std::size_t>(std::ceil(tps * t));
  const std::size_t churn = n + cooling;
  const std::size_t need = std::max({twice, churn, min_passive_ports});
  if (reason) {
    if (need == min_passive_ports && twice < min_passive_ports && churn < min_passive_ports)
      *reason = "the 100-port floor: random passive ports (RFC 2577 section 7, port stealing) are hard to guess only in a range that is not tiny; " +
                std::to_string(n) + " sessions alone need " + std::to_string(std::max(twice, churn));
    else if (churn > twice)
      *reason = std::to_string(n) + " sessions + " + std::to_string(cooling) + " ports cooling down (" + format_rate(tps) +
                " transfers/s x " + std::to_string(t) + " s: " +
                (role == Role::server ? "a closed data connection keeps its port pair in TCP TIME_WAIT for 60 s on the server"
                                      : "the gateway's conntrack keeps each closed data connection 120 s in TIME_WAIT") +
                ")";
    else
      *reason = "2 x " + std::to_string(n) + " sessions: a session may open its next passive port while the previous data connection is still closing";
  }
  return need;
}

Result<Sizing> size_passive_range(Role role, unsigned sessions, double tps) {
  if (sessions == 0) return make_error("--sessions must be at least 1");
  Sizing s;
  s.needed = ports_needed(role, sessions, tps, &s.reason);
  constexpr std::size_t above = 65535 - 61000 + 1;                            // 61000-65535
  constexpr std::size_t below = ephemeral_range.low - first_unprivileged_port;  // 1024-32767
  if (s.needed <= above) {
    s.range = {61000, static_cast<std::uint16_t>(61000 + s.needed - 1)};
    s.reason = std::to_string(s.needed) + " ports for " + s.reason + "; placed above the ephemeral range 32768-60999";
  } else if (s.needed <= below) {
    s.range = {static_cast<std::uint16_t>(ephemeral_range.low - s.needed), static_cast<std::uint16_t>(ephemeral_range.low - 1)};
    s.reason = std::to_string(s.needed) + " ports for " + s.reason + "; placed below the ephemeral range 32768-60999 (61000-65535 holds only 4536)";
  } else {
    return make_error(std::to_string(sessions) + " sessions need " + std::to_string(s.needed) +
                      " passive ports, more than fit outside the ephemeral range 32768-60999 (1024-32767 holds 31744)");
  }
  return s;
}

}  // namespace ftpwall::rules
