// SPDX-License-Identifier: GPL-2.0-or-later
// generate(): validate, build, emit in the chosen format; the one entry point the CLI calls.
#include "ftpwall/rules/ruleset.hpp"

namespace ftpwall::rules {

Result<Output> generate(const RulesetSpec& spec, std::optional<std::string_view> merge_input) {
  RulesetSpec s = spec;
  s.merging = merge_input.has_value();
  auto v = validate(std::move(s));
  if (!v) return v.error();
  Output out;
  out.warnings = v->warnings;
  const Ruleset rs = build_ruleset(*v);
  switch (v->spec.format) {
    case Format::iptables_save:
      if (merge_input) {
        auto m = merge_iptables_save(*merge_input, rs);
        if (!m) return m.error();
        out.text = std::move(m->text);
        out.warnings.insert(out.warnings.end(), m->warnings.begin(), m->warnings.end());
      } else {
        out.text = emit_iptables_save(rs);
      }
      break;
    case Format::shell: out.text = emit_shell(rs); break;
    case Format::nft: out.text = emit_nft(rs); break;
    case Format::firewalld: {
      auto f = emit_firewalld(*v);
      if (!f) return f.error();
      out.text = std::move(*f);
      break;
    }
  }
  out.server_config = emit_server_config(*v);
  return out;
}

}  // namespace ftpwall::rules
