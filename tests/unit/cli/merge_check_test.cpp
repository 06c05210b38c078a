// SPDX-License-Identifier: GPL-2.0-or-later
// --merge against the stock CentOS 6 and 7 /etc/sysconfig/iptables (and CentOS 7 ip6tables), and
// --check with the real tools on good and deliberately broken output.
#include <gtest/gtest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace {

using ftpwall::cli::test::CliRun;
using ftpwall::cli::test::run_ftpwall;
using ftpwall::cli::test::slurp;

const std::string data = std::string(FTPWALL_SOURCE_DIR) + "/tests/unit/cli/data/";

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The merged file without this run's lines and without the tables the stock file did not have
// (*raw, *nat): what must be left is the stock file, byte for byte.
std::vector<std::string> without_ours(const std::string& s, const std::string& stock) {
  std::vector<std::string> out;
  bool skip_table = false;
  for (auto& l : lines_of(s)) {
    if (l.starts_with("*")) skip_table = stock.find("\n" + l + "\n") == std::string::npos;
    const bool end = l == "COMMIT";
    if (!skip_table && l.find("ftpwall:") == std::string::npos) out.push_back(l);
    if (end) skip_table = false;
  }
  return out;
}

std::size_t index_of(const std::vector<std::string>& v, const std::string& needle) {
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i].find(needle) != std::string::npos) return i;
  return v.size();
}

struct TempFile {
  std::string path;
  explicit TempFile(const std::string& text) {
    char p[] = "/tmp/ftpwall-merge-XXXXXX";
    int fd = mkstemp(p);
    close(fd);
    path = p;
    FILE* f = std::fopen(p, "wb");
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  ~TempFile() { std::remove(path.c_str()); }
};

CliRun merge(const std::string& file, std::vector<std::string> extra = {}) {
  std::vector<std::string> a{"rules", "--passive-ports", "61000-61100"};
  a.insert(a.end(), extra.begin(), extra.end());
  a.push_back("--merge");
  a.push_back(file);
  return run_ftpwall(a);
}

class MergeStock : public ::testing::TestWithParam<const char*> {};

TEST_P(MergeStock, KeepsEveryStockLineAndInsertsBeforeTheReject) {
  const std::string stock = slurp(data + GetParam());
  CliRun r = merge(data + GetParam());
  ASSERT_EQ(r.status, 0) << r.err;
  // Everything the file had is still there, in its order.
  EXPECT_EQ(without_ours(r.out, stock), lines_of(stock));
  auto l = lines_of(r.out);
  const auto control = index_of(l, "ftpwall: ftp control 21");
  const auto related = index_of(l, "ftpwall: ftp data related");
  const auto reject = index_of(l, "-A INPUT -j REJECT --reject-with icmp-host-prohibited");
  const auto ssh = index_of(l, "--dport 22 -j ACCEPT");
  ASSERT_LT(reject, l.size());
  EXPECT_LT(ssh, control);
  EXPECT_EQ(control + 1, related);
  EXPECT_EQ(related + 1, reject);
  // The raw table is new and comes before *filter.
  EXPECT_LT(index_of(l, "*raw"), index_of(l, "*filter"));
  EXPECT_NE(r.out.find("-A PREROUTING -p tcp -m tcp --dport 21 -m comment --comment \"ftpwall: ftp helper 21\" -j CT --helper ftp"),
            std::string::npos);
  // No duplicate of the stock rules the file already has.
  EXPECT_EQ(r.out.find("ftpwall: base"), std::string::npos);
  // The stock RELATED,ESTABLISHED accept defeats the helper narrowing: say so.
  EXPECT_NE(r.err.find("ftpwall: warning: --merge: the file's own rule"), std::string::npos) << r.err;
}

TEST_P(MergeStock, MergingTwiceGivesTheSameFile) {
  CliRun first = merge(data + GetParam());
  ASSERT_EQ(first.status, 0);
  TempFile f(first.out);
  CliRun second = merge(f.path);
  ASSERT_EQ(second.status, 0) << second.err;
  // Only the echoed command (it names the merged file) may differ.
  auto a = lines_of(first.out), b = lines_of(second.out);
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].find("--merge") == std::string::npos) {
      EXPECT_EQ(a[i], b[i]) << i;
    }
}

TEST_P(MergeStock, ANewRunReplacesTheEarlierRunsLines) {
  CliRun first = merge(data + GetParam());
  TempFile f(first.out);
  CliRun second = merge(f.path, {"--helper", "none"});
  ASSERT_EQ(second.status, 0) << second.err;
  EXPECT_EQ(second.out.find("CT --helper ftp"), std::string::npos);
  EXPECT_EQ(second.out.find("ftp data related"), std::string::npos);
  EXPECT_NE(second.out.find("--dport 61000:61100 -m comment --comment \"ftpwall: ftp passive 61000-61100\" -j ACCEPT"), std::string::npos);
  const std::string stock = slurp(data + GetParam());
  EXPECT_EQ(without_ours(second.out, stock), lines_of(stock));
}

TEST_P(MergeStock, TheMergedFileLoads) {
  CliRun r = merge(data + GetParam(), {"--role", "gateway", "--public-address", "203.0.113.1", "--internal-server", "10.0.0.2"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto l = lines_of(r.out);
  // Gateway rules go into FORWARD before its REJECT; the nat table is added.
  EXPECT_LT(index_of(l, "ftpwall: ftp control 21"), index_of(l, "-A FORWARD -j REJECT"));
  EXPECT_LT(index_of(l, "*nat"), index_of(l, "*filter"));
  auto c = ftpwall::cli::check_text(ftpwall::rules::Format::iptables_save, ftpwall::Family::v4, r.out);
  if (!c.ran) GTEST_SKIP() << c.message;
  EXPECT_TRUE(c.ok) << c.message;
}

INSTANTIATE_TEST_SUITE_P(CentOS, MergeStock, ::testing::Values("centos6-iptables", "centos7-iptables"));

TEST(Merge, Ip6tablesStockFile) {
  CliRun r = merge(data + "centos7-ip6tables", {"--family", "6", "--helper", "none"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto l = lines_of(r.out);
  EXPECT_EQ(index_of(l, "ftpwall: ftp passive 61000-61100") + 1, index_of(l, "-A INPUT -j REJECT --reject-with icmp6-adm-prohibited"));
  auto c = ftpwall::cli::check_text(ftpwall::rules::Format::iptables_save, ftpwall::Family::v6, r.out);
  if (!c.ran) GTEST_SKIP() << c.message;
  EXPECT_TRUE(c.ok) << c.message;
}

TEST(Merge, RefusesAFileThatIsNotIptablesSave) {
  TempFile f("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n");
  CliRun r = merge(f.path);
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("ftpwall: error: --merge: the last table has no COMMIT"), std::string::npos) << r.err;
}

// ---- --check ----

TEST(Check, AcceptsGoodIptablesOutput) {
  CliRun r = run_ftpwall({"rules", "--passive-ports", "61000-61100", "--check"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto c = ftpwall::cli::check_text(ftpwall::rules::Format::iptables_save, ftpwall::Family::v4, r.out);
  if (!c.ran) {
    EXPECT_NE(r.err.find("ftpwall: note: --check did not check: "), std::string::npos);
    GTEST_SKIP() << c.message;
  }
  EXPECT_NE(r.err.find("ftpwall: note: --check: iptables-legacy-restore --test accepted the output"), std::string::npos) << r.err;
}

TEST(Check, AcceptsGoodNftOutput) {
  CliRun r = run_ftpwall({"rules", "--format", "nft", "--check"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto c = ftpwall::cli::check_text(ftpwall::rules::Format::nft, ftpwall::Family::v4, r.out);
  if (!c.ran) GTEST_SKIP() << c.message;
  EXPECT_TRUE(c.ok) << c.message;
}

TEST(Check, RejectsBrokenIptablesOutput) {
  auto c = ftpwall::cli::check_text(ftpwall::rules::Format::iptables_save, ftpwall::Family::v4,
                                    "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 21 -j NO-SUCH-TARGET\nCOMMIT\n");
  if (!c.ran) GTEST_SKIP() << c.message;
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.message.find("iptables-legacy-restore"), std::string::npos) << c.message;
  EXPECT_EQ(c.message.find("/tmp/ftpwall-check-"), std::string::npos) << c.message;
}

TEST(Check, RejectsBrokenIp6tablesOutput) {
  auto c = ftpwall::cli::check_text(ftpwall::rules::Format::iptables_save, ftpwall::Family::v6,
                                    "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 192.0.2.0/24 -j ACCEPT\nCOMMIT\n");
  if (!c.ran) GTEST_SKIP() << c.message;
  EXPECT_FALSE(c.ok) << c.message;
}

TEST(Check, RejectsBrokenNftOutput) {
  auto c = ftpwall::cli::check_text(ftpwall::rules::Format::nft, ftpwall::Family::v4,
                                    "table inet ftpwall {\n\tchain input {\n\t\ttcp dport 21 acept\n\t}\n}\n");
  if (!c.ran) GTEST_SKIP() << c.message;
  EXPECT_FALSE(c.ok);
}

TEST(Check, SaysWhyItDoesNotCheckFirewalld) {
  CliRun r = run_ftpwall({"rules", "--format", "firewalld", "--check"});
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.err.find("ftpwall: note: --check did not check: firewalld output needs firewalld"), std::string::npos) << r.err;
}

}  // namespace
