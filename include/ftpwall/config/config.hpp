// SPDX-License-Identifier: GPL-2.0-or-later
// ftpwalld's configuration: a TOML file (ftpwall.conf(5)), every key optional. No file at all is
// the common case: queue 0, control port 21, gateway, hooks installed by the daemon.
//
//   role = "gateway"              # gateway | server
//   hooks = "daemon"              # daemon (install and remove hooks) | admin (fill own chains only)
//   backend = "auto"              # auto | nftables | iptables-legacy
//   control_ports = [21]
//   log_level = "info"            # trace debug info warn error critical off
//   metrics_file = ""             # Prometheus textfile (node_exporter); empty = none
//   metrics_interval = 5          # seconds
//   audit = "limited"             # limited | full | summary (openings and refusals in the log)
//   audit_interval = 60           # seconds, for audit = "summary"
//   [queue]
//   number = 0                    # NFQUEUE number; the steering rule's --queue-num
//   bypass = false                # the steering rule's --queue-bypass (no daemon: accept)
//   fail_open = true              # NFQA_CFG_F_FAIL_OPEN (queue full: accept)
//   max_len = 4096                # packets waiting for a verdict
//   socket_buffer = 8388608       # bytes
//   exempt_mark = 0x10000000      # connmark bit that takes FTPS sessions out of the queue
//   accept_mark = 0x20000000      # packet-mark bit of the data SYNs openings admit
//   [openings]
//   lifetime = 30                 # seconds; also the kernel's -m time --datestop
//   max_total = 4096              # openings installed at once
//   max_sessions = 65536          # sessions tracked at once
//   max_per_source = 64           # live openings of one client address
//   max_sessions_per_source = 512 # sessions of one client address
//   max_held_bytes_per_source = 65536  # bytes held for split announcements, one client address
//   max_half_open = 16384         # SYN seen, no answer yet: evicted oldest first
//   max_half_open_per_source = 256
//   half_open_timeout = 120       # seconds
//   [policy]
//   port_floor = 1024
//   third_party_networks = []     # CIDRs FXP transfers may name
//   require_login = false
//   allow_client_public_address = false  # PORT/EPRT behind MASQUERADE may name the public address
//   hold_timeout_ms = 3000        # a split announcement's address behind NAT: wait this long
//   violation_action = "pass"     # pass | reset
//   [ftps]
//   mode = "stand-aside"          # stand-aside | per-client
//   passive_ports = ""            # "40000-40100": the servers' passive range (per-client)
//   implicit_ports = [990]        # TLS from the first byte (steered in per-client mode)
//   max_lifetime = 28800          # seconds a per-client range opening may live
//   [[ftps.server]]               # optional, first match wins: address and/or control_port
//   address = "10.0.0.10"         # the server's real address
//   control_port = 21
//   passive_ports = "50000-50100"
//
// Every error is one line: "FILE:LINE: key: message" (FILE:LINE only when known).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ftpwall/core/policy.hpp"
#include "ftpwall/core/result.hpp"

namespace ftpwall::config {

// Accepted ranges of the numeric keys, each named once and tested at the bound and past it.
namespace bounds {
inline constexpr std::int64_t max_queue_number = 65535;
// [queue] count: queues (and threads) the daemon reads, number .. number + count - 1 (issue 13).
inline constexpr std::int64_t max_queue_count = 64;
inline constexpr std::int64_t min_lifetime_s = 1;
inline constexpr std::int64_t max_lifetime_s = 3600;  // an unused opening must not outlive an hour
inline constexpr std::int64_t max_openings = 1'000'000;
inline constexpr std::int64_t max_sessions = 1'000'000;
inline constexpr std::int64_t max_held_bytes = 64 * 1024 * 1024;
inline constexpr std::int64_t max_half_open_timeout_s = 600;
inline constexpr std::int64_t max_queue_len = 1'048'576;
inline constexpr std::int64_t min_socket_buffer = 64 * 1024;
inline constexpr std::int64_t max_socket_buffer = 1024 * 1024 * 1024;
inline constexpr std::size_t max_control_ports = 16;
inline constexpr std::int64_t min_hold_timeout_ms = 50;
inline constexpr std::int64_t max_hold_timeout_ms = 60'000;
inline constexpr std::int64_t max_ftps_lifetime_s = 7 * 86400;
inline constexpr std::size_t max_ftps_servers = 256;
}  // namespace bounds

enum class Role : std::uint8_t { gateway, server };
enum class HooksMode : std::uint8_t { daemon, admin };
// Which firewall the openings go into: auto follows the host (rules in iptables-legacy tables ->
// iptables-legacy, otherwise nftables).
enum class BackendMode : std::uint8_t { automatic, nftables, iptables_legacy };
enum class AuditMode : std::uint8_t { limited, full, summary };
enum class LogLevel : std::uint8_t { trace, debug, info, warn, error, critical, off };
std::string_view name(Role r);
std::string_view name(HooksMode h);
std::string_view name(BackendMode b);
std::string_view name(AuditMode a);
std::string_view name(LogLevel l);

struct QueueConfig {
  std::uint16_t number = 0;
  bool bypass = false;
  bool fail_open = true;
  std::uint32_t max_len = 4096;
  std::uint32_t socket_buffer = 8 * 1024 * 1024;
  std::uint32_t exempt_mark = 0x10000000;
  // Packet-mark bit set on every data SYN an opening admits (the verdict carries it): the one
  // thing an admin's own nftables/iptables-nft chain needs to accept ftpwalld's data connections
  // (`meta mark & 0x20000000 == 0x20000000 accept`), since an accept in another table is not
  // final. 0 = none.
  std::uint32_t accept_mark = 0x20000000;
  // Queues number .. number + count - 1, one thread and one share of the sessions each (issue 13).
  // The steering spreads connections over them by the kernel's hash of the address pair
  // (--queue-balance), so both directions of a connection and its data SYN meet the same thread.
  std::uint16_t count = 1;
  bool operator==(const QueueConfig&) const = default;
};

struct OpeningsConfig {
  std::uint32_t lifetime_s = 30;
  std::uint32_t max_total = 4096;
  std::uint32_t max_sessions = 65536;
  // Per source (the client's address as the daemon sees it), so that one host cannot take what
  // every other needs (security review H1, M6): live openings, sessions, bytes held for rewrites.
  std::uint32_t max_per_source = 64;
  std::uint32_t max_sessions_per_source = 512;
  std::uint32_t max_held_bytes_per_source = 65536;
  // Half-open sessions (a client's SYN seen, nothing else yet) cost a few bytes and live in a
  // table of their own: never more than these, the oldest evicted first, none older than
  // half_open_timeout (conntrack's SYN_SENT timeout is 120 s).
  std::uint32_t max_half_open = 16384;
  std::uint32_t max_half_open_per_source = 256;
  std::uint32_t half_open_timeout_s = 120;
  bool operator==(const OpeningsConfig&) const = default;
};

// FTPS (issue 14). stand-aside: after AUTH TLS the control connection leaves the queue (connmark
// queue.exempt_mark) and nothing is opened for it; the admin opens a static passive range.
// per-client: the session stays queued; from its 234 (or its first byte on an implicit port) to its
// end (or CCC, or max_lifetime) one *range opening* admits that client's address, and only it, to
// the server's passive range.
enum class FtpsMode : std::uint8_t { stand_aside, per_client };
std::string_view name(FtpsMode m);

struct PortRange {
  std::uint16_t first = 0, last = 0;  // 0: none
  bool empty() const { return first == 0; }
  std::string to_string() const { return std::to_string(first) + "-" + std::to_string(last); }
  bool operator==(const PortRange&) const = default;
};

struct FtpsServer {
  std::optional<Address> address;            // the server's real address (behind DNAT: the inside one)
  std::optional<std::uint16_t> control_port;
  PortRange passive;
  bool operator==(const FtpsServer&) const = default;
};

struct FtpsConfig {
  FtpsMode mode = FtpsMode::stand_aside;
  PortRange passive;
  std::vector<std::uint16_t> implicit_ports{990};
  std::uint32_t max_lifetime_s = 28800;
  std::vector<FtpsServer> servers;
  // The passive range of a session's server: the first [[ftps.server]] whose address and control
  // port (those given) match, else passive_ports; empty when neither says.
  PortRange range_for(const Address& server_real, std::uint16_t control_port) const;
  bool operator==(const FtpsConfig&) const = default;
};

// [ha] (issue 15): an active/backup gateway pair with keepalived and conntrackd. enabled: every
// tracked session keeps its state in its conntrack entry's labels (core/ha_label.hpp), which
// conntrackd replicates; `ftpwall takeover` (keepalived's notify on becoming master) makes a
// backup continue those sessions. Needs the nftables backend (its labels chain).
struct HaConfig {
  bool enabled = false;
  bool operator==(const HaConfig&) const = default;
};

struct Config {
  std::string source = "(built-in defaults)";  // the file it came from
  Role role = Role::gateway;
  HooksMode hooks = HooksMode::daemon;
  BackendMode backend = BackendMode::automatic;
  std::vector<std::uint16_t> control_ports{21};
  LogLevel log_level = LogLevel::info;
  // The Prometheus text (ftpwall status --prometheus), written atomically every metrics_interval
  // seconds for node_exporter's textfile collector; empty = none.
  std::string metrics_file;
  std::uint32_t metrics_interval_s = 5;
  // The audit trail of openings and refusals: "limited" (every one, at most a few lines per reason
  // and client address per 10 s, the rest counted), "full" (every line, no limit), "summary" (one
  // line per audit_interval with the counts).
  AuditMode audit = AuditMode::limited;
  std::uint32_t audit_interval_s = 60;
  QueueConfig queue;
  OpeningsConfig openings;
  PolicyConfig policy;
  FtpsConfig ftps;
  HaConfig ha;

  // The ports whose connections are steered to the queue: control_ports, and in per-client FTPS
  // mode the implicit FTPS ports.
  std::vector<std::uint16_t> steered_ports() const;
  bool implicit_tls(std::uint16_t port) const;
};

inline constexpr const char* default_path = "/etc/ftpwall/ftpwalld.conf";

// Why [queue] count > 1 cannot work with the rest of `c` (one line), or empty.
std::string queue_count_conflict(const Config& c);
// Parses TOML text; `name` is the file name used in error messages.
Result<Config> parse(std::string_view text, std::string_view name);
// Reads and parses a file; a missing file is an error (the admin named it).
Result<Config> load_file(const std::string& path);
// The daemon's start-up: the named file if given, else default_path if it exists, else defaults.
Result<Config> load(const std::optional<std::string>& path, const std::string& fallback = default_path);

}  // namespace ftpwall::config
