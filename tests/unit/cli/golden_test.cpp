// SPDX-License-Identifier: GPL-2.0-or-later
// Every shipped example under rules/examples/ is the byte-exact output of the command its README
// line names: run that command in-process and compare. FTPWALL_UPDATE_GOLDEN=1 rewrites the files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cli/rules_cmd.hpp"

namespace {

const std::string examples = std::string(FTPWALL_SOURCE_DIR) + "/rules/examples/";

struct Example {
  std::string file;
  std::vector<std::string> args;  // without "ftpwall"
};

std::vector<Example> read_readme() {
  std::ifstream in(examples + "README.md");
  std::vector<Example> out;
  std::string line;
  const std::regex entry(R"(^- `([^`]+)`: `ftpwall ([^`]+)`$)");
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_match(line, m, entry)) continue;
    Example e{m[1], {}};
    std::istringstream words(m[2]);
    for (std::string w; words >> w;) e.args.push_back(w);
    out.push_back(e);
  }
  return out;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Golden, ReadmeListsTheRequiredExamples) {
  auto ex = read_readme();
  ASSERT_GE(ex.size(), 10u);
  std::vector<std::string> names;
  for (const auto& e : ex) names.push_back(e.file);
  for (const char* must : {"centos7-vsftpd-kernel.iptables", "centos7-vsftpd-none.iptables", "gateway-server-nat-kernel.iptables",
                           "gateway-server-nat-kernel.nft", "gateway-client-nat-kernel.nft", "firewalld-server-kernel.sh",
                           "ftpwalld-server.iptables", "vsftpd.conf", "proftpd.conf", "pure-ftpd.conf"})
    EXPECT_NE(std::find(names.begin(), names.end(), must), names.end()) << must;
}

TEST(Golden, EveryExampleIsTheOutputOfItsCommand) {
  const bool update = std::getenv("FTPWALL_UPDATE_GOLDEN") != nullptr;
  for (const auto& e : read_readme()) {
    std::ostringstream out, err;
    const int rc = ftpwall::cli::run(e.args, out, err);
    EXPECT_EQ(rc, 0) << e.file << ": " << err.str();
    EXPECT_EQ(err.str().find("warning"), std::string::npos) << e.file << ": examples should not warn: " << err.str();
    const std::string path = examples + e.file;
    if (update) {
      std::ofstream(path, std::ios::binary | std::ios::trunc) << out.str();
      continue;
    }
    EXPECT_EQ(out.str(), slurp(path)) << e.file << " differs from its command's output (FTPWALL_UPDATE_GOLDEN=1 rewrites)";
  }
}

// The examples are real rulesets: the kernel's own tools accept them (root only).
TEST(Golden, ToolsAcceptEveryRulesetExample) {
  int checked = 0;
  for (const auto& e : read_readme()) {
    using ftpwall::rules::Format;
    std::optional<Format> f;
    auto ends = [&](const char* suf) { return e.file.size() > std::strlen(suf) && e.file.ends_with(suf); };
    if (ends(".iptables") || ends(".ip6tables")) f = Format::iptables_save;
    if (ends(".nft")) f = Format::nft;
    if (!f) continue;
    const auto fam = ends(".ip6tables") ? ftpwall::Family::v6 : ftpwall::Family::v4;
    auto r = ftpwall::cli::check_text(*f, fam, slurp(examples + e.file));
    if (!r.ran) GTEST_SKIP() << r.message;
    EXPECT_TRUE(r.ok) << e.file << ": " << r.message;
    ++checked;
  }
  EXPECT_GE(checked, 8);
}

}  // namespace
