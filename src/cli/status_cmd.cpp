// SPDX-License-Identifier: GPL-2.0-or-later
#include "cli/status_cmd.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ostream>
#include <sstream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "ftpwall/core/reason.hpp"
#include "log/prometheus.hpp"

namespace ftpwall::cli {
namespace {

using json = nlohmann::ordered_json;

}  // namespace

// One request, the whole answer (the daemon closes the connection after it).
bool ask_daemon(const std::string& path, const std::string& request, std::string& answer, std::string& why) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.size() >= sizeof sa.sun_path) {
    why = "socket path too long";
    return false;
  }
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    why = std::strerror(errno);
    return false;
  }
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) < 0) {
    why = std::strerror(errno);
    ::close(fd);
    return false;
  }
  const std::string line = request + "\n";
  if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) < 0) {
    why = std::strerror(errno);
    ::close(fd);
    return false;
  }
  char buf[65536];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      why = errno == EAGAIN ? "no answer within 5 s" : std::strerror(errno);
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return true;
}

namespace {

std::string ep(const json& e) { return e.at("address").get<std::string>() + ":" + std::to_string(e.at("port").get<int>()); }

}  // namespace

std::string format_status(const std::string& text) {
  const json j = json::parse(text);
  std::ostringstream o;
  o << "ftpwalld " << j.at("version").get<std::string>() << ", up " << j.at("uptime_s").get<long>() << " s, "
    << j.at("role").get<std::string>() << " role, backend " << j.at("backend").get<std::string>() << " ("
    << j.at("backend_why").get<std::string>() << "), steering " << j.at("steering").get<std::string>() << ", hooks by "
    << j.at("hooks").get<std::string>() << "\n";
  const json& q = j.at("queue");
  const int count = q.contains("count") ? q["count"].get<int>() : 1;
  o << "queue " << q.at("number").get<int>();
  if (count > 1) o << "-" << q.at("number").get<int>() + count - 1 << " (" << count << " threads)";
  o << ": " << q.at("verdicts").get<unsigned long long>() << " verdicts ("
    << q.at("modified").get<unsigned long long>() << " modified), " << q.at("enobufs").get<unsigned long long>()
    << " lost to ENOBUFS, " << q.at("verdict_errors").get<unsigned long long>() << " verdict errors";
  if (q.at("kernel").is_object())
    o << "; kernel: " << q["kernel"].at("waiting").get<unsigned long long>() << " waiting, "
      << q["kernel"].at("queue_dropped").get<unsigned long long>() << " dropped (queue full), "
      << q["kernel"].at("user_dropped").get<unsigned long long>() << " dropped (socket full)";
  o << "\n";
  // Several queues: each one's share of the connections (the kernel's hash of the address pair).
  if (j.contains("queues"))
    for (const auto& x : j["queues"]) {
      o << "  queue " << x.at("number").get<int>() << ": " << x.at("packets").get<unsigned long long>() << " packets, "
        << x.at("sessions").get<unsigned long long>() << " sessions, " << x.at("openings").get<unsigned long long>()
        << " openings, " << x.at("data_syns").get<unsigned long long>() << " data SYNs";
      if (x.at("kernel").is_object())
        o << "; kernel: " << x["kernel"].at("waiting").get<unsigned long long>() << " waiting, "
          << x["kernel"].at("queue_dropped").get<unsigned long long>() + x["kernel"].at("user_dropped").get<unsigned long long>()
          << " dropped";
      o << "\n";
    }
  if (j.contains("kernel_check") && j["kernel_check"].is_object())
    o << "kernel check " << j["kernel_check"].at("age_s").get<long>() << " s ago: "
      << j["kernel_check"].at("result").get<std::string>() << "\n";
  if (j.contains("backend_stats"))
    o << "backend: " << j["backend_stats"].at("commits").get<unsigned long long>() << " commits, last apply "
      << j["backend_stats"].at("last_apply_us").get<unsigned long long>() << " us, longest "
      << j["backend_stats"].at("max_apply_us").get<unsigned long long>() << " us\n";
  const json& l = j.at("live");
  o << "live: " << l.at("sessions").get<unsigned long long>() << " sessions, " << l.at("half_open").get<unsigned long long>()
    << " half-open, " << l.at("openings").get<unsigned long long>() << " openings ("
    << l.at("openings_installed").get<unsigned long long>() << " in the kernel)\n";
  o << "counters:";
  for (const auto& [k, v] : j.at("counters").items()) o << " " << k << "=" << v.dump();
  o << "\nrefusals:";
  bool any = false;
  for (const auto& [k, v] : j.at("refusals").items()) {
    if (v.get<unsigned long long>() == 0) continue;
    o << " " << k << "=" << v.dump();
    any = true;
  }
  o << (any ? "\n" : " none\n");
  return o.str();
}

std::string format_prometheus(const std::string& text) { return log::prometheus_text(text); }

std::string format_sessions(const std::string& text) {
  const json j = json::parse(text);
  std::ostringstream o;
  for (const auto& s : j.at("sessions")) {
    o << "s" << s.at("id").get<unsigned long long>() << " " << s.at("state").get<std::string>() << " " << ep(s.at("client"))
      << " -> " << ep(s.at("server"));
    if (s.at("server_real") != s.at("server")) o << " (server " << ep(s.at("server_real")) << ")";
    if (s.at("client_as_seen") != s.at("client")) o << " (client seen as " << ep(s.at("client_as_seen")) << ")";
    o << " announcements=" << s.at("announcements").dump() << " refusals=" << s.at("refusals").dump();
    if (s.contains("corrections"))
      o << " corrections=" << s["corrections"].at("client_to_server").dump() << "/"
        << s["corrections"].at("server_to_client").dump();
    o << " held=" << s.at("held_bytes").dump() << " age=" << s.at("age_s").dump() << "s";
    if (s.contains("opening")) o << " opening=o" << s["opening"].dump();
    if (s.contains("ha_label")) o << " ha_label=" << s["ha_label"].get<std::string>();
    if (s.contains("queue")) o << " queue=" << s["queue"].dump();
    o << "\n";
  }
  o << j.at("sessions").size() << " sessions\n";
  return o.str();
}

std::string format_openings(const std::string& text) {
  const json j = json::parse(text);
  std::ostringstream o;
  for (const auto& e : j.at("openings")) {
    // kind "range": a per-client FTPS range opening (ports port..port_last, any number of connections).
    const bool range = e.value("kind", std::string()) == "range";
    o << "s" << e.at("session").dump() << (range ? " r" : " o") << e.at("opening").dump() << " "
      << e.at("source").get<std::string>() << " -> " << e.at("destination").get<std::string>() << ":"
      << e.at("port").dump();
    if (range) o << "-" << e.at("port_last").dump();
    if (e.contains("dnat_to")) o << " dnat to " << (range ? e["dnat_to"].at("address").get<std::string>() : ep(e["dnat_to"]));
    if (e.contains("snat_to")) o << " snat to " << e["snat_to"].get<std::string>();
    o << (e.at("installed").get<bool>() ? "" : " (being installed)");
    if (range) o << " for the FTPS session";
    if (e.contains("used_by_port") && !e.at("used_by_port").is_null()) o << " used by port " << e["used_by_port"].dump();
    o << " expires in " << e.at("expires_in_s").dump() << " s\n";
  }
  o << j.at("openings").size() << " openings\n";
  return o.str();
}

StatusCommands add_status_commands(CLI::App& app, StatusOptions& o) {
  StatusCommands c;
  c.status = app.add_subcommand("status", "what a running ftpwalld is doing: backend, queue, live sessions and openings, "
                                          "every counter, refusals by reason");
  c.sessions = app.add_subcommand("sessions", "each session of a running ftpwalld: tuples, state, announcements, "
                                              "corrections, held bytes, age");
  c.openings = app.add_subcommand("openings", "each live opening of a running ftpwalld, like conntrack -L expect");
  c.takeover = app.add_subcommand("takeover", "[ha] this gateway just became master: ftpwalld continues the sessions "
                                              "conntrackd committed (their HA labels) and puts their pending openings in "
                                              "place; keepalived's notify script calls it after conntrackd -c");
  c.standby = app.add_subcommand("standby", "[ha] this gateway just became backup (or faulty): ftpwalld drops its sessions "
                                            "and closes their openings; the master continues them from their HA labels");
  for (CLI::App* s : {c.status, c.sessions, c.openings, c.takeover, c.standby}) {
    s->add_option("--socket", o.socket, "the daemon's control socket (default: /run/ftpwalld/control)")
        ->type_name("PATH")
        ->group("Daemon");
    s->add_flag("--json", o.json, "the daemon's JSON document (field names: ftpwall(8)) instead of text (default: text)")
        ->group("Output");
  }
  c.status->add_flag("--prometheus", o.prometheus, "the Prometheus text format (ftpwall_*; refusals by reason) instead of text")
      ->group("Output");
  return c;
}

int run_status_commands(const StatusCommands& c, const StatusOptions& o, std::ostream& out, std::ostream& err) {
  const char* request = c.status->parsed()     ? "status"
                        : c.sessions->parsed() ? "sessions"
                        : c.openings->parsed() ? "openings"
                        : c.takeover->parsed() ? "takeover"
                        : c.standby->parsed()  ? "standby"
                                               : nullptr;
  if (!request) return -1;
  std::string answer, why;
  if (!ask_daemon(o.socket, request, answer, why)) {
    err << "ftpwall: error: no ftpwalld answers at " << o.socket << ": " << why << "\n";
    return 1;
  }
  try {
    if (o.json) out << answer;
    else if (o.prometheus) out << format_prometheus(answer);
    else if (c.status->parsed()) out << format_status(answer);
    else if (c.sessions->parsed()) out << format_sessions(answer);
    else if (c.takeover->parsed() || c.standby->parsed()) {
      const json j = json::parse(answer);
      if (j.contains("error")) {
        err << "ftpwall: error: " << j.at("error").get<std::string>() << "\n";
        return 1;
      }
      if (c.standby->parsed()) {
        out << "standby: " << j.at("sessions").get<unsigned>() << " sessions dropped, " << j.at("openings").get<unsigned>()
            << " openings closed\n";
        return 0;
      }
      out << "takeover: " << j.at("sessions").get<unsigned>() << " sessions continued from their HA labels, "
          << j.at("openings").get<unsigned>() << " openings put in place, " << j.at("refused").get<unsigned>()
          << " refused (pickup_without_history), " << j.at("replaced").get<unsigned>() << " stale sessions replaced\n";
    }
    else out << format_openings(answer);
  } catch (const std::exception& e) {
    err << "ftpwall: error: " << o.socket << " answered something that is not ftpwalld's: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace ftpwall::cli
