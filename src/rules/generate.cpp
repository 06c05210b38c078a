// SPDX-License-Identifier: GPL-2.0-or-later
// generate(): validate, build, emit in the chosen format; the one entry point the CLI calls.
// iptables-save with --family both is two files (iptables and ip6tables, the CentOS sysconfig
// pair): `files` holds each, `text` both one after the other, each after a banner line, for
// reading (neither restore tool loads the other family's file).
#include "ftpwall/rules/ruleset.hpp"

namespace ftpwall::rules {

Result<Output> generate(const RulesetSpec& spec, std::optional<std::string_view> merge_input) {
  RulesetSpec s = spec;
  s.merging = merge_input.has_value();
  auto p = plan(std::move(s));
  if (!p) return p.error();
  Output out;
  out.warnings = p->warnings;
  const Ruleset rs = build_ruleset(*p);
  auto one = [&](std::string text) {
    out.text = text;
    out.files.push_back({"", rs.first_family(), std::move(text)});
  };
  switch (p->spec.format) {
    case Format::iptables_save:
      if (merge_input) {
        auto m = merge_iptables_save(*merge_input, rs);
        if (!m) return m.error();
        out.warnings.insert(out.warnings.end(), m->warnings.begin(), m->warnings.end());
        out.text = m->text;
        out.files.push_back({std::string(sysconfig_name(rs.first_family())), rs.first_family(), std::move(m->text)});
      } else {
        const auto fams = members(rs.family);
        for (Family f : fams) {
          std::string text = emit_iptables_save(rs, f);
          if (fams.size() > 1)
            out.text += "# ==== /etc/sysconfig/" + std::string(sysconfig_name(f)) + " (" +
                        (f == Family::v4 ? "IPv4, iptables-restore" : "IPv6, ip6tables-restore") +
                        "; --output-dir DIR writes each file alone) ====\n";
          out.text += text;
          out.files.push_back({std::string(sysconfig_name(f)), f, std::move(text)});
        }
      }
      break;
    case Format::shell: one(emit_shell(rs)); break;
    case Format::nft: one(emit_nft(rs)); break;
    case Format::firewalld: {
      auto f = emit_firewalld(*p);
      if (!f) return f.error();
      one(std::move(*f));
      break;
    }
  }
  out.server_config = emit_server_config(*p);
  out.ha_files = emit_ha_files(*p);
  return out;
}

}  // namespace ftpwall::rules
