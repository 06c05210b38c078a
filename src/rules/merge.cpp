// SPDX-License-Identifier: GPL-2.0-or-later
// --merge FILE: update an existing /etc/sysconfig/iptables (or ip6tables) in place of rewriting it.
//
// The file is iptables-save text: "*table" blocks of ":CHAIN POLICY [p:b]" declarations, "-A"
// rules and "COMMIT", with "#" comment lines anywhere. The merge
//   1. drops every line an earlier run wrote: rules tagged --comment "ftpwall: ..." and the
//      "# ftpwall: ..." header lines;
//   2. inserts this run's rules except the stock ones (the file has its own ESTABLISHED, icmp,
//      loopback, ssh and REJECT lines): a filter rule goes right before its chain's first
//      unconditional "-A CHAIN -j REJECT|DROP" (the stock REJECT), an NFQUEUE steering rule and
//      --ha's INVALID drop first in its chain, anything else at the end of its table; missing chain declarations and
//      whole missing tables are added;
//   3. keeps every other byte as it was. Merging twice gives the same file.
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "ftpwall/rules/ruleset.hpp"

namespace ftpwall::rules {

namespace {

constexpr Table table_order[] = {Table::raw, Table::mangle, Table::nat, Table::filter};

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool ours(std::string_view line) {
  return line.find("--comment \"ftpwall:") != std::string_view::npos || line.find("--comment ftpwall:") != std::string_view::npos ||
         starts_with(line, "# ftpwall:");
}

// "-A INPUT -j REJECT --reject-with icmp-host-prohibited": a chain's unconditional end.
bool unconditional_end(std::string_view line, std::string_view chain) {
  const std::string head = "-A " + std::string(chain) + " -j ";
  if (!starts_with(line, head)) return false;
  auto target = line.substr(head.size());
  return starts_with(target, "REJECT") || starts_with(target, "DROP");
}

std::string chain_of(std::string_view line) {  // "-A NAME ..." or ":NAME POLICY ..."
  std::size_t start = starts_with(line, "-A ") ? 3 : 1;
  auto end = line.find(' ', start);
  return std::string(line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
}

struct Block {
  std::optional<Table> table;  // nullopt: *security and other tables, kept untouched
  std::size_t begin;   // index of "*table"
  std::size_t commit;  // index of "COMMIT"
};

std::string decl_line(const ChainDecl& c) { return ":" + c.name + (c.builtin ? " ACCEPT" : " -") + " [0:0]"; }

}  // namespace

Result<MergeResult> merge_iptables_save(std::string_view existing, const Ruleset& whole) {
  const Family fam = whole.first_family();
  const Ruleset rs = whole.only(fam);
  MergeResult res;
  // 1. Split and drop an earlier run's lines.
  std::vector<std::string> lines;
  {
    std::size_t pos = 0;
    while (pos < existing.size()) {
      auto nl = existing.find('\n', pos);
      std::string line(existing.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
      pos = nl == std::string_view::npos ? existing.size() : nl + 1;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!ours(line)) lines.push_back(std::move(line));
    }
  }

  auto find_blocks = [&]() -> Result<std::vector<Block>> {
    std::vector<Block> blocks;
    std::optional<Block> open;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const std::string& l = lines[i];
      if (starts_with(l, "*")) {
        if (open) return make_error("--merge: a table has no COMMIT before " + l);
        const std::string t = l.substr(1);
        std::optional<Table> tab;
        for (Table x : table_order)
          if (t == name(x)) tab = x;
        open = Block{tab, i, 0};
      } else if (l == "COMMIT") {
        if (!open) return make_error("--merge: COMMIT without a *table line");
        open->commit = i;
        if (open->table) blocks.push_back(*open);
        open.reset();
      }
    }
    if (open) return make_error("--merge: the last table has no COMMIT; is this an iptables-save file?");
    return blocks;
  };
  auto blocks0 = find_blocks();
  if (!blocks0) return blocks0.error();

  // 2. Insert this run's rules, table by table (indices shift, so re-find blocks after each edit).
  for (Table t : table_order) {
    std::vector<const Rule*> rules;
    auto blocks = *find_blocks();
    auto blk = std::find_if(blocks.begin(), blocks.end(), [&](const Block& b) { return b.table == t; });
    const bool fresh = blk == blocks.end();
    for (const auto& r : rs.rules)
      if (r.table == t && (fresh || r.purpose != Purpose::stock)) rules.push_back(&r);
    std::vector<ChainDecl> decls;
    for (const auto& c : rs.chains)
      if (c.table == t) decls.push_back(c);
    if (rules.empty() && std::none_of(decls.begin(), decls.end(), [](const ChainDecl& c) { return !c.builtin; })) continue;

    if (fresh) {
      // A whole new table, before the first existing table that comes later in iptables order.
      std::vector<std::string> block{"*" + std::string(name(t))};
      for (const auto& c : decls) block.push_back(decl_line(c));
      for (const Rule* r : rules)
        for (const auto& b : iptables_rule_bodies(*r, fam)) block.push_back("-A " + r->chain + " " + b);
      block.push_back("COMMIT");
      std::size_t at = lines.size();
      for (const auto& b : blocks)
        if (*b.table > t) at = std::min(at, b.begin);
      lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(at), block.begin(), block.end());
      continue;
    }

    // Missing declarations go after the block's last declaration.
    std::size_t last_decl = blk->begin;
    std::vector<std::string> declared;
    for (std::size_t i = blk->begin + 1; i < blk->commit; ++i)
      if (starts_with(lines[i], ":")) {
        last_decl = i;
        declared.push_back(chain_of(lines[i]));
      }
    std::vector<std::string> new_decls;
    for (const auto& c : decls)
      if (std::find(declared.begin(), declared.end(), c.name) == declared.end()) new_decls.push_back(decl_line(c));
    lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(last_decl + 1), new_decls.begin(), new_decls.end());
    blk->commit += new_decls.size();

    for (const Rule* r : rules)
    for (const auto& body : iptables_rule_bodies(*r, fam)) {
      const std::string text = "-A " + r->chain + " " + body;
      // Steering and the INVALID drop must see every packet: first in their chain.
      const bool first = r->action == Action::nfqueue || r->action == Action::drop;
      std::size_t at = blk->commit;  // default: end of the table
      for (std::size_t i = blk->begin + 1; i < blk->commit; ++i) {
        if (first && starts_with(lines[i], "-A " + r->chain + " ")) {
          at = i;
          break;
        }
        if (t == Table::filter && unconditional_end(lines[i], r->chain)) {
          at = i;
          break;
        }
      }
      if (first) {
        // Keep this run's steering rules in their own order: after the ones just inserted.
        while (at < blk->commit && ours(lines[at])) ++at;
      }
      lines.insert(lines.begin() + static_cast<std::ptrdiff_t>(at), text);
      ++blk->commit;
    }
  }

  // The file's own "RELATED,ESTABLISHED" accept comes first and admits every RELATED connection,
  // also toward privileged ports: ftpwall's narrower RELATED rule can only tighten after it goes.
  if (rs.needs_helper_modules) {
    const std::string chain = rs.role == Role::server ? "INPUT" : "FORWARD";
    for (const auto& l : lines)
      if (!ours(l) && starts_with(l, "-A " + chain + " ") && l.find("RELATED") != std::string::npos &&
          l.find("-j ACCEPT") != std::string::npos && l.find("--helper") == std::string::npos)
        res.warnings.push_back("--merge: the file's own rule '" + l +
                               "' accepts every RELATED connection before ftpwall's rules; change it to ESTABLISHED so that "
                               "RELATED is accepted only for the ftp helper, toward ports >= 1024");
  }

  // 3. This run's header on top, then the file.
  std::string out = header_comment(rs, "# ftpwall: ");
  for (const auto& l : lines) out += l + "\n";
  res.text = std::move(out);
  return res;
}

}  // namespace ftpwall::rules
