// SPDX-License-Identifier: GPL-2.0-or-later
// ftpwall(8): the command-line tool. See cli/rules_cmd.hpp.
#include <iostream>
#include <string>
#include <vector>

#include "cli/rules_cmd.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return ftpwall::cli::run(args, std::cout, std::cerr);
}
