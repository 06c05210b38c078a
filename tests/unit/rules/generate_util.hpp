// SPDX-License-Identifier: GPL-2.0-or-later
// Shared by the rules tests: generate() that must succeed, and the one-line error of one that must not.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "ftpwall/rules/ruleset.hpp"

namespace ftpwall::rules::test {

inline Output gen(const RulesetSpec& s) {
  auto o = generate(s);
  EXPECT_TRUE(o.ok()) << (o.ok() ? "" : o.error().message);
  return o.ok() ? *o : Output{};
}

inline std::string error_of(const RulesetSpec& s) {
  auto o = generate(s);
  return o.ok() ? std::string("(accepted)") : o.error().message;
}

}  // namespace ftpwall::rules::test
