// SPDX-License-Identifier: GPL-2.0-or-later
// The `ftpwall` command line: `ftpwall rules ...` (and --help, --version). Everything but main()
// lives here so tests run the real command in-process with string streams.
//
// Exit status: 0 done; 1 --check rejected the output, or --output could not be written;
// 2 bad input (options, --merge file), always as one line "ftpwall: error: ..." on stderr.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "ftpwall/core/addr.hpp"
#include "ftpwall/rules/ruleset.hpp"

namespace ftpwall::cli {

inline constexpr std::string_view version = FTPWALL_VERSION;  // project(VERSION) in CMakeLists.txt

inline constexpr int exit_ok = 0;
inline constexpr int exit_failed = 1;
inline constexpr int exit_usage = 2;

// args: without argv[0], e.g. {"rules", "--role", "server", ...}.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

// --check: validate `text` with the real tool (iptables-legacy-restore --test,
// ip6tables-legacy-restore --test, nft -c -f). `ran` tells whether a tool ran; `message` says why
// not, or what the tool reported.
struct CheckResult {
  bool ran = false;
  bool ok = false;
  std::string message;
};
CheckResult check_text(rules::Format format, Family family, const std::string& text);

}  // namespace ftpwall::cli
