// SPDX-License-Identifier: GPL-2.0-or-later
// Runs `ftpwall ARGS` in-process and keeps what it printed.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/rules_cmd.hpp"

namespace ftpwall::cli::test {

struct CliRun {
  int status = -1;
  std::string out;
  std::string err;
};

inline CliRun run_ftpwall(std::vector<std::string> args) {
  std::ostringstream out, err;
  CliRun r;
  r.status = ftpwall::cli::run(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::size_t count_lines(const std::string& s) {
  std::size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace ftpwall::cli::test
