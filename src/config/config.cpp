// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/config/config.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/stat.h>

#include <toml++/toml.h>

namespace ftpwall::config {

std::string_view name(Role r) { return r == Role::gateway ? "gateway" : "server"; }
std::string_view name(HooksMode h) { return h == HooksMode::daemon ? "daemon" : "admin"; }
std::string_view name(AuditMode a) {
  return a == AuditMode::limited ? "limited" : a == AuditMode::full ? "full" : "summary";
}
std::string_view name(BackendMode b) {
  return b == BackendMode::automatic ? "auto" : b == BackendMode::nftables ? "nftables" : "iptables-legacy";
}
std::string_view name(FtpsMode m) { return m == FtpsMode::per_client ? "per-client" : "stand-aside"; }

PortRange FtpsConfig::range_for(const Address& server_real, std::uint16_t control_port) const {
  for (const FtpsServer& s : servers) {
    if (s.address && *s.address != server_real) continue;
    if (s.control_port && *s.control_port != control_port) continue;
    return s.passive;
  }
  return passive;
}

std::vector<std::uint16_t> Config::steered_ports() const {
  std::vector<std::uint16_t> out = control_ports;
  if (ftps.mode == FtpsMode::per_client)
    for (auto p : ftps.implicit_ports)
      if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  return out;
}

bool Config::implicit_tls(std::uint16_t port) const {
  return ftps.mode == FtpsMode::per_client &&
         std::find(ftps.implicit_ports.begin(), ftps.implicit_ports.end(), port) != ftps.implicit_ports.end();
}

std::string_view name(LogLevel l) {
  static constexpr std::string_view names[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  return names[static_cast<int>(l)];
}

namespace {

// Collects the first error; every check reports "FILE:LINE: key: message".
class Reader {
 public:
  explicit Reader(std::string_view file) : file_(file) {}

  bool failed() const { return error_.has_value(); }
  Error error() const { return *error_; }

  void fail(const toml::source_region& where, std::string_view key, const std::string& message) {
    if (error_) return;
    std::string out(file_);
    if (where.begin.line > 0) out += ":" + std::to_string(where.begin.line);
    out += ": ";
    out += key;
    out += ": " + message;
    error_ = make_error(std::move(out));
  }

  // Unknown keys are errors: a misspelt key must not silently keep its default.
  void only(const toml::table& t, std::string_view prefix, std::initializer_list<std::string_view> known) {
    for (auto&& [k, v] : t) {
      if (std::find(known.begin(), known.end(), k.str()) == known.end()) {
        fail(k.source(), qualified(prefix, k.str()), "unknown key");
      }
    }
  }

  template <class T>
  void integer(const toml::table& t, std::string_view prefix, std::string_view key, std::int64_t lo, std::int64_t hi,
               T& out) {
    const toml::node* n = t.get(key);
    if (!n) return;
    const auto* v = n->as_integer();
    if (!v) return fail(n->source(), qualified(prefix, key), "expected an integer");
    const std::int64_t x = v->get();
    if (x < lo || x > hi) {
      return fail(n->source(), qualified(prefix, key),
                  std::to_string(x) + " is out of range " + std::to_string(lo) + "-" + std::to_string(hi));
    }
    out = static_cast<T>(x);
  }

  void boolean(const toml::table& t, std::string_view prefix, std::string_view key, bool& out) {
    const toml::node* n = t.get(key);
    if (!n) return;
    const auto* v = n->as_boolean();
    if (!v) return fail(n->source(), qualified(prefix, key), "expected true or false");
    out = v->get();
  }

  template <class E, std::size_t N>
  void choice(const toml::table& t, std::string_view prefix, std::string_view key,
              const std::pair<std::string_view, E> (&options)[N], E& out) {
    const toml::node* n = t.get(key);
    if (!n) return;
    const auto* v = n->as_string();
    std::string list;
    for (const auto& [word, value] : options) list += (list.empty() ? "" : "|") + std::string(word);
    if (!v) return fail(n->source(), qualified(prefix, key), "expected a string: " + list);
    for (const auto& [word, value] : options) {
      if (v->get() == word) {
        out = value;
        return;
      }
    }
    fail(n->source(), qualified(prefix, key), "\"" + v->get() + "\" is not one of " + list);
  }

  const toml::table* section(const toml::table& root, std::string_view key) {
    const toml::node* n = root.get(key);
    if (!n) return nullptr;
    if (!n->as_table()) {
      fail(n->source(), key, "expected a table ([" + std::string(key) + "])");
      return nullptr;
    }
    return n->as_table();
  }

  // An array of distinct TCP ports, 1 to `max` of them (`empty_ok`: none is fine too).
  void ports(const toml::table& t, std::string_view prefix, std::string_view key, std::size_t max, bool empty_ok,
             std::vector<std::uint16_t>& out) {
    const toml::node* n = t.get(key);
    if (!n) return;
    const std::string k = qualified(prefix, key);
    const auto* arr = n->as_array();
    if (!arr) return fail(n->source(), k, "expected an array of ports, e.g. [21]");
    if ((arr->empty() && !empty_ok) || arr->size() > max)
      return fail(n->source(), k, "needs " + std::string(empty_ok ? "0" : "1") + " to " + std::to_string(max) + " ports");
    std::vector<std::uint16_t> got;
    for (const toml::node& e : *arr) {
      const auto* v = e.as_integer();
      const auto& where = e.source().begin.line ? e.source() : n->source();
      if (!v || v->get() < 1 || v->get() > 65535) return fail(where, k, "ports are integers 1-65535");
      const auto p = static_cast<std::uint16_t>(v->get());
      if (std::find(got.begin(), got.end(), p) != got.end()) return fail(where, k, std::to_string(p) + " is listed twice");
      got.push_back(p);
    }
    out = std::move(got);
  }

  // "L-H", 1024 <= L <= H <= 65535 (a passive range never holds service ports).
  void port_range(const toml::table& t, std::string_view prefix, std::string_view key, PortRange& out) {
    const toml::node* n = t.get(key);
    if (!n) return;
    const std::string k = qualified(prefix, key);
    const auto* v = n->as_string();
    const std::string text = v ? v->get() : std::string();
    if (v && text.empty()) {  // "": none
      out = {};
      return;
    }
    const auto dash = text.find('-');
    unsigned long lo = 0, hi = 0;
    bool ok = v && dash != std::string::npos && dash > 0 && dash + 1 < text.size() &&
              text.find_first_not_of("0123456789-") == std::string::npos && text.find('-', dash + 1) == std::string::npos &&
              dash <= 5 && text.size() - dash - 1 <= 5;
    if (ok) {
      lo = std::stoul(text.substr(0, dash));
      hi = std::stoul(text.substr(dash + 1));
      ok = lo >= 1024 && lo <= hi && hi <= 65535;
    }
    if (!ok) return fail(n->source(), k, "expected a port range \"L-H\" with 1024 <= L <= H <= 65535, e.g. \"40000-40100\"");
    out = {static_cast<std::uint16_t>(lo), static_cast<std::uint16_t>(hi)};
  }

  static std::string qualified(std::string_view prefix, std::string_view key) {
    return prefix.empty() ? std::string(key) : std::string(prefix) + "." + std::string(key);
  }

 private:
  std::string_view file_;
  std::optional<Error> error_;
};

}  // namespace

// Several queues: every thread writes its own openings into the kernel at once, which only
// nftables' per-element transactions allow (libiptc replaces whole tables); the steering with
// --queue-balance is the daemon's own; an HA takeover cannot tell which thread a session's
// packets will reach (the kernel's queue hash has a random seed).
std::string queue_count_conflict(const Config& c) {
  if (c.queue.count <= 1) return {};
  if (c.backend == BackendMode::iptables_legacy)
    return "more than one queue needs backend = \"nftables\" (or \"auto\" on a host with nftables): "
           "iptables-legacy commits replace whole tables, so only one thread may write them";
  if (c.hooks == HooksMode::admin)
    return "more than one queue needs hooks = \"daemon\": the daemon's own steering spreads connections over its "
           "queues (--queue-balance)";
  if (c.ha.enabled)
    return "more than one queue cannot be combined with [ha] enabled: a takeover could not tell which queue a "
           "session's packets will reach";
  return {};
}

Result<Config> parse(std::string_view text, std::string_view file) {
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    std::string out(file);
    if (e.source().begin.line > 0) out += ":" + std::to_string(e.source().begin.line);
    return make_error(out + ": syntax: " + std::string(e.description()));
  }

  Config c;
  c.source = std::string(file);
  Reader r(file);
  r.only(root, "", {"role", "hooks", "backend", "control_ports", "log_level", "metrics_file", "metrics_interval", "audit",
                    "audit_interval", "queue", "openings", "policy", "ftps", "ha"});

  static constexpr std::pair<std::string_view, Role> roles[] = {{"gateway", Role::gateway}, {"server", Role::server}};
  static constexpr std::pair<std::string_view, HooksMode> hooks[] = {{"daemon", HooksMode::daemon},
                                                                      {"admin", HooksMode::admin}};
  static constexpr std::pair<std::string_view, LogLevel> levels[] = {
      {"trace", LogLevel::trace}, {"debug", LogLevel::debug}, {"info", LogLevel::info},   {"warn", LogLevel::warn},
      {"error", LogLevel::error}, {"critical", LogLevel::critical}, {"off", LogLevel::off}};
  static constexpr std::pair<std::string_view, ViolationAction> actions[] = {{"pass", ViolationAction::pass},
                                                                             {"reset", ViolationAction::reset}};
  r.choice(root, "", "role", roles, c.role);
  r.choice(root, "", "hooks", hooks, c.hooks);
  static constexpr std::pair<std::string_view, BackendMode> backends[] = {
      {"auto", BackendMode::automatic}, {"nftables", BackendMode::nftables}, {"iptables-legacy", BackendMode::iptables_legacy}};
  r.choice(root, "", "backend", backends, c.backend);
  static constexpr std::pair<std::string_view, AuditMode> audits[] = {
      {"limited", AuditMode::limited}, {"full", AuditMode::full}, {"summary", AuditMode::summary}};
  r.choice(root, "", "audit", audits, c.audit);
  r.integer(root, "", "audit_interval", 1, 86400, c.audit_interval_s);
  r.integer(root, "", "metrics_interval", 1, 3600, c.metrics_interval_s);
  if (const toml::node* n = root.get("metrics_file")) {
    if (auto v = n->value<std::string>(); v && (v->empty() || v->front() == '/'))
      c.metrics_file = *v;
    else
      r.fail(n->source(), "metrics_file", "expected an absolute path, e.g. \"/var/lib/prometheus/node-exporter/ftpwall.prom\"");
  }
  r.choice(root, "", "log_level", levels, c.log_level);

  r.ports(root, "", "control_ports", bounds::max_control_ports, false, c.control_ports);

  if (const toml::table* q = r.section(root, "queue")) {
    r.only(*q, "queue", {"number", "count", "bypass", "fail_open", "max_len", "socket_buffer", "exempt_mark", "accept_mark"});
    r.integer(*q, "queue", "number", 0, bounds::max_queue_number, c.queue.number);
    r.integer(*q, "queue", "count", 1, bounds::max_queue_count, c.queue.count);
    if (!r.failed() && c.queue.number + c.queue.count - 1 > bounds::max_queue_number)
      r.fail(q->get("count")->source(), "queue.count", "queues " + std::to_string(c.queue.number) + " .. " +
                                             std::to_string(c.queue.number + c.queue.count - 1) + " go past 65535");
    r.boolean(*q, "queue", "bypass", c.queue.bypass);
    r.boolean(*q, "queue", "fail_open", c.queue.fail_open);
    r.integer(*q, "queue", "max_len", 1, bounds::max_queue_len, c.queue.max_len);
    r.integer(*q, "queue", "socket_buffer", bounds::min_socket_buffer, bounds::max_socket_buffer, c.queue.socket_buffer);
    r.integer(*q, "queue", "exempt_mark", 0, 0xffffffffLL, c.queue.exempt_mark);
    r.integer(*q, "queue", "accept_mark", 0, 0xffffffffLL, c.queue.accept_mark);
  }
  if (const toml::table* o = r.section(root, "openings")) {
    r.only(*o, "openings",
           {"lifetime", "max_total", "max_sessions", "max_per_source", "max_sessions_per_source",
            "max_held_bytes_per_source", "max_half_open", "max_half_open_per_source", "half_open_timeout"});
    r.integer(*o, "openings", "lifetime", bounds::min_lifetime_s, bounds::max_lifetime_s, c.openings.lifetime_s);
    r.integer(*o, "openings", "max_total", 1, bounds::max_openings, c.openings.max_total);
    r.integer(*o, "openings", "max_sessions", 1, bounds::max_sessions, c.openings.max_sessions);
    r.integer(*o, "openings", "max_per_source", 1, bounds::max_openings, c.openings.max_per_source);
    r.integer(*o, "openings", "max_sessions_per_source", 1, bounds::max_sessions, c.openings.max_sessions_per_source);
    r.integer(*o, "openings", "max_held_bytes_per_source", 0, bounds::max_held_bytes, c.openings.max_held_bytes_per_source);
    r.integer(*o, "openings", "max_half_open", 1, bounds::max_sessions, c.openings.max_half_open);
    r.integer(*o, "openings", "max_half_open_per_source", 1, bounds::max_sessions, c.openings.max_half_open_per_source);
    r.integer(*o, "openings", "half_open_timeout", 1, bounds::max_half_open_timeout_s, c.openings.half_open_timeout_s);
  }
  if (const toml::table* p = r.section(root, "policy")) {
    r.only(*p, "policy",
           {"port_floor", "third_party_networks", "require_login", "allow_client_public_address", "violation_action",
            "hold_timeout_ms"});
    r.integer(*p, "policy", "port_floor", 1, 65535, c.policy.port_floor);
    r.boolean(*p, "policy", "require_login", c.policy.require_login);
    r.boolean(*p, "policy", "allow_client_public_address", c.policy.allow_client_public_address);
    r.integer(*p, "policy", "hold_timeout_ms", bounds::min_hold_timeout_ms, bounds::max_hold_timeout_ms,
              c.policy.hold_timeout_ms);
    r.choice(*p, "policy", "violation_action", actions, c.policy.on_violation);
    if (const toml::node* n = p->get("third_party_networks")) {
      const auto* arr = n->as_array();
      if (!arr) {
        r.fail(n->source(), "policy.third_party_networks", "expected an array of CIDR strings");
      } else {
        for (const toml::node& e : *arr) {
          const auto* s = e.as_string();
          auto cidr = s ? Cidr::parse(s->get()) : Result<Cidr>(make_error("expected a CIDR string"));
          if (!cidr) {
            r.fail(e.source().begin.line ? e.source() : n->source(), "policy.third_party_networks",
                   (s ? "\"" + s->get() + "\": " : std::string()) + cidr.error().message);
            break;
          }
          c.policy.allow_third_party.push_back(*cidr);
        }
      }
    }
  }
  if (const toml::table* f = r.section(root, "ftps")) {
    static constexpr std::pair<std::string_view, FtpsMode> modes[] = {{"stand-aside", FtpsMode::stand_aside},
                                                                     {"per-client", FtpsMode::per_client}};
    r.only(*f, "ftps", {"mode", "passive_ports", "implicit_ports", "max_lifetime", "server"});
    r.choice(*f, "ftps", "mode", modes, c.ftps.mode);
    r.port_range(*f, "ftps", "passive_ports", c.ftps.passive);
    r.ports(*f, "ftps", "implicit_ports", bounds::max_control_ports, true, c.ftps.implicit_ports);
    r.integer(*f, "ftps", "max_lifetime", 60, bounds::max_ftps_lifetime_s, c.ftps.max_lifetime_s);
    if (const toml::node* n = f->get("server")) {
      const auto* arr = n->as_array();
      if (!arr || !arr->is_array_of_tables()) {
        r.fail(n->source(), "ftps.server", "expected [[ftps.server]] tables");
      } else if (arr->size() > bounds::max_ftps_servers) {
        r.fail(n->source(), "ftps.server", "at most " + std::to_string(bounds::max_ftps_servers) + " entries");
      } else {
        for (const toml::node& e : *arr) {
          const toml::table& t = *e.as_table();
          FtpsServer s;
          r.only(t, "ftps.server", {"address", "control_port", "passive_ports"});
          if (const toml::node* a = t.get("address")) {
            const auto* v = a->as_string();
            auto addr = v ? Address::parse(v->get()) : Result<Address>(make_error("expected an address string"));
            if (!addr) {
              r.fail(a->source(), "ftps.server.address", (v ? "\"" + v->get() + "\": " : std::string()) + addr.error().message);
              break;
            }
            s.address = *addr;
          }
          if (t.get("control_port")) {
            std::uint16_t p = 0;
            r.integer(t, "ftps.server", "control_port", 1, 65535, p);
            s.control_port = p;
          }
          r.port_range(t, "ftps.server", "passive_ports", s.passive);
          if (s.passive.empty() && !r.failed())
            r.fail(t.source(), "ftps.server.passive_ports", "required in every [[ftps.server]]");
          c.ftps.servers.push_back(std::move(s));
        }
      }
    }
    if (c.ftps.mode == FtpsMode::per_client && c.ftps.passive.empty() && c.ftps.servers.empty() && !r.failed())
      r.fail(f->source(), "ftps.passive_ports", "required with mode = \"per-client\" (or one [[ftps.server]])");
    for (auto p : c.ftps.implicit_ports)
      if (c.ftps.mode == FtpsMode::per_client &&
          std::find(c.control_ports.begin(), c.control_ports.end(), p) != c.control_ports.end() && !r.failed())
        r.fail(f->source(), "ftps.implicit_ports", std::to_string(p) + " is a control port too (explicit FTPS starts with AUTH TLS)");
  }
  if (const toml::table* h = r.section(root, "ha")) {
    r.only(*h, "ha", {"enabled"});
    r.boolean(*h, "ha", "enabled", c.ha.enabled);
    if (c.ha.enabled && c.backend == BackendMode::iptables_legacy)
      r.fail(h->source(), "ha.enabled", "needs backend = \"nftables\" (or \"auto\" on a host with nftables): "
                                        "the labels conntrackd carries are kept available by a chain of its table");
  }
  if (!r.failed())
    if (const std::string why = queue_count_conflict(c); !why.empty()) {
      const toml::table* q = root.get("queue") ? root.get("queue")->as_table() : nullptr;
      const toml::node* n = q ? q->get("count") : nullptr;
      r.fail(n ? n->source() : toml::source_region{}, "queue.count", why);
    }
  if (r.failed()) return r.error();
  return c;
}

Result<Config> load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(path + ": cannot read the configuration file");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

Result<Config> load(const std::optional<std::string>& path, const std::string& fallback) {
  if (path) return load_file(*path);
  struct stat st {};
  if (::stat(fallback.c_str(), &st) != 0) return Config{};
  return load_file(fallback);
}

}  // namespace ftpwall::config
