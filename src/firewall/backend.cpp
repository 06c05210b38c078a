// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/firewall/backend.hpp"

#include <algorithm>
#include <charconv>
#include <string>
#include <type_traits>

namespace ftpwall::firewall {

std::string_view name(Role r) { return r == Role::gateway ? "gateway" : "server"; }

unsigned expected_own_hooks(const HookSpec& spec) {
  const auto ports = static_cast<unsigned>(spec.control_ports.size());
  const unsigned per_port = spec.role == Role::gateway ? 1 : 2;  // FORWARD | INPUT + OUTPUT
  return per_port * ports + (spec.role == Role::gateway ? 1 : 2) + (spec.nat ? 2 : 0);
}

unsigned expected_own_hooks(const HookSpec& spec, const HookState& state) {
  if (!state.ip6) return expected_own_hooks(spec);
  HookSpec v6 = spec;
  v6.nat = false;  // NAT66 is not supported: no nat jumps in ip6tables
  return expected_own_hooks(spec) + expected_own_hooks(v6);
}

// "ftpwall s<session> o<opening>", decimal, no leading zeros: the tag that names the daemon's rules
// in the kernel (iptables-save shows it; a restarted daemon reads it back).
OpeningComment opening_comment(const OpeningId& id) {
  OpeningComment c;
  constexpr std::string_view head = "ftpwall s";
  char* p = std::copy(head.begin(), head.end(), c.text.data());
  char* const last = c.text.data() + c.text.size() - 1;  // the NUL stays
  p = std::to_chars(p, last, id.session).ptr;
  if (last - p < 3) return c;  // cannot happen: 9 + 20 + 2 + 10 characters fit
  *p++ = ' ';
  *p++ = id.range ? 'r' : 'o';
  std::to_chars(p, last, id.opening);
  return c;
}

std::string format_opening_comment(const OpeningId& id) { return opening_comment(id).c_str(); }

// One sorted vector instead of a map and a set per batch (issue 13: two allocations per step, on
// the packet path of every announcement). Sorted by id, then by position: each id's group gives its
// first step (touched order) and its last (an install when that one opens).
BatchEffect net_effect(std::span<const Change> changes) {
  BatchEffect e;
  // Scratch kept by the thread that applies (one per backend): no allocation per batch but the
  // result's own two vectors.
  static thread_local std::vector<std::pair<OpeningId, std::size_t>> steps;
  static thread_local std::vector<std::pair<std::size_t, OpeningId>> first;  // (first position, id)
  static thread_local std::vector<std::size_t> opens;                         // positions of installs
  steps.clear();
  first.clear();
  opens.clear();
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const OpeningId id = std::visit(
        [](const auto& c) -> OpeningId {
          if constexpr (std::is_same_v<std::decay_t<decltype(c)>, OpenStep>) return c.opening.id;
          else return c.id;
        },
        changes[i]);
    steps.emplace_back(id, i);
  }
  std::sort(steps.begin(), steps.end());
  for (std::size_t k = 0; k < steps.size();) {
    std::size_t end = k + 1;
    while (end < steps.size() && steps[end].first == steps[k].first) ++end;
    first.emplace_back(steps[k].second, steps[k].first);
    const std::size_t last = steps[end - 1].second;
    if (std::holds_alternative<OpenStep>(changes[last])) opens.push_back(last);
    k = end;
  }
  std::sort(first.begin(), first.end());
  std::sort(opens.begin(), opens.end());
  e.touched.reserve(first.size());
  for (const auto& [pos, id] : first) e.touched.push_back(id);
  e.installs.reserve(opens.size());
  for (std::size_t i : opens) e.installs.push_back(std::get<OpenStep>(changes[i]).opening);
  return e;
}

namespace {
template <class T>
bool parse_decimal(std::string_view s, T& out) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}
}  // namespace

std::optional<OpeningId> parse_opening_comment(std::string_view c) {
  constexpr std::string_view prefix = "ftpwall s";
  if (!c.starts_with(prefix)) return std::nullopt;
  c.remove_prefix(prefix.size());
  const auto sp = c.find(' ');
  if (sp == std::string_view::npos || sp + 1 >= c.size() || (c[sp + 1] != 'o' && c[sp + 1] != 'r')) return std::nullopt;
  OpeningId id;
  id.range = c[sp + 1] == 'r';
  if (!parse_decimal(c.substr(0, sp), id.session) || !parse_decimal(c.substr(sp + 2), id.opening)) return std::nullopt;
  return id;
}

}  // namespace ftpwall::firewall
