// SPDX-License-Identifier: GPL-2.0-or-later
// `ftpwall replay [--config FILE] [--ports 21,2121] [--json] CAPTURE...` (issue 12, ftpwall(8) REPLAY):
// ftpwalld's decisions, offline, from packet captures (replay.hpp says how sessions are found).
// Exit 0 when the captures were read (refusals are findings, not errors; a capture cut short is
// read to its end with a warning on stderr), 2 with one line on stderr for a usage error, a
// configuration error, or a file that cannot be read or is not a capture.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace ftpwall::cli {

struct ReplayArgs {
  std::string config;  // empty: the built-in defaults (ftpwalld's defaults)
  std::string ports;   // empty: the configuration's control_ports
  bool json = false;
  std::vector<std::string> captures;
};

void add_replay_options(CLI::App& replay, ReplayArgs& a);
int run_replay(const ReplayArgs& a, std::ostream& out, std::ostream& err);

}  // namespace ftpwall::cli
