// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/firewall/backend.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
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
std::string format_opening_comment(const OpeningId& id) {
  return "ftpwall s" + std::to_string(id.session) + (id.range ? " r" : " o") + std::to_string(id.opening);
}

BatchEffect net_effect(std::span<const Change> changes) {
  BatchEffect e;
  std::map<OpeningId, std::size_t> last_open;  // id -> index of its last OpenStep, if it is the id's last step
  std::set<OpeningId> named;
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const OpeningId id = std::visit(
        [](const auto& c) -> OpeningId {
          if constexpr (std::is_same_v<std::decay_t<decltype(c)>, OpenStep>) return c.opening.id;
          else return c.id;
        },
        changes[i]);
    if (named.insert(id).second) e.touched.push_back(id);
    if (std::holds_alternative<OpenStep>(changes[i])) last_open[id] = i;
    else last_open.erase(id);
  }
  std::vector<std::size_t> order;
  order.reserve(last_open.size());
  for (const auto& [id, i] : last_open) order.push_back(i);
  std::sort(order.begin(), order.end());
  e.installs.reserve(order.size());
  for (std::size_t i : order) e.installs.push_back(std::get<OpenStep>(changes[i]).opening);
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
