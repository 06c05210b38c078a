// SPDX-License-Identifier: GPL-2.0-or-later
// `ftpwall status | sessions | openings`: ask a running ftpwalld through its control socket
// (default /run/ftpwalld/control, root only) and print what it says, as text (like `conntrack -L
// expect`), JSON (`--json`: the daemon's own document, field names in ftpwall(8)) or, for status,
// the Prometheus text format (`--prometheus`, names prefixed ftpwall_, every refusal reason
// present from zero). No daemon: one line on stderr, exit 1.
#pragma once

#include <iosfwd>
#include <string>

namespace CLI {
class App;
}

namespace ftpwall::cli {

struct StatusOptions {
  std::string socket = "/run/ftpwalld/control";
  bool json = false;
  bool prometheus = false;
};

struct StatusCommands {
  CLI::App* status = nullptr;
  CLI::App* sessions = nullptr;
  CLI::App* openings = nullptr;
  CLI::App* takeover = nullptr;  // [ha]: this gateway became master (keepalived's notify)
  CLI::App* standby = nullptr;   // [ha]: this gateway became backup
};
StatusCommands add_status_commands(CLI::App& app, StatusOptions& o);
// -1: none of them was given.
int run_status_commands(const StatusCommands& c, const StatusOptions& o, std::ostream& out, std::ostream& err);

// Asks the daemon's control socket one request ("status", "sessions", "openings") and reads the
// whole answer; false with `why` (one phrase) when no daemon answers. `ftpwall check` asks too.
bool ask_daemon(const std::string& path, const std::string& request, std::string& answer, std::string& why);

// The pure parts, for tests: a daemon answer (JSON text) in each output form.
std::string format_status(const std::string& json_text);
std::string format_prometheus(const std::string& json_text);
std::string format_sessions(const std::string& json_text);
std::string format_openings(const std::string& json_text);

}  // namespace ftpwall::cli
