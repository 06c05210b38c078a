// SPDX-License-Identifier: GPL-2.0-or-later
// The Prometheus text format of ftpwalld's status document (introspect.cpp): `ftpwall status
// --prometheus` prints it, the daemon's metrics_file holds it (node_exporter's textfile collector).
// Names prefixed ftpwall_; ftpwall_refusals_total{reason="..."} for every reason, from zero.
#pragma once

#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

namespace ftpwall::log {

inline std::string prometheus_text(const std::string& status_json) {
  using json = nlohmann::ordered_json;
  const json j = json::parse(status_json);
  std::ostringstream o;
  const auto gauge = [&](const char* name, const char* help, const json& v) {
    o << "# HELP ftpwall_" << name << " " << help << "\n# TYPE ftpwall_" << name << " gauge\nftpwall_" << name << " "
      << v.dump() << "\n";
  };
  const auto counter = [&](const std::string& name, const json& v) {
    o << "# TYPE ftpwall_" << name << "_total counter\nftpwall_" << name << "_total " << v.dump() << "\n";
  };
  o << "# HELP ftpwall_info ftpwalld's version, backend and role\n# TYPE ftpwall_info gauge\n"
    << "ftpwall_info{version=\"" << j.at("version").get<std::string>() << "\",backend=\""
    << j.at("backend").get<std::string>() << "\",role=\"" << j.at("role").get<std::string>() << "\"} 1\n";
  gauge("uptime_seconds", "seconds since ftpwalld started", j.at("uptime_s"));
  gauge("sessions", "control sessions tracked now", j.at("live").at("sessions"));
  gauge("half_open_sessions", "SYN-only sessions now", j.at("live").at("half_open"));
  gauge("openings", "openings live now (installed or on their way)", j.at("live").at("openings"));
  for (const auto& [k, v] : j.at("counters").items()) {
    if (k == "max_wait_us") {
      gauge("max_verdict_wait_microseconds", "longest wait of a packet for its opening", v);
      continue;
    }
    counter(k, v);
  }
  const json& q = j.at("queue");
  counter("queue_verdicts", q.at("verdicts"));
  counter("queue_enobufs", q.at("enobufs"));
  counter("queue_verdict_errors", q.at("verdict_errors"));
  if (j.contains("backend_stats")) {
    counter("backend_commits", j["backend_stats"].at("commits"));
    gauge("backend_last_apply_microseconds", "the backend's last batch", j["backend_stats"].at("last_apply_us"));
    gauge("backend_max_apply_microseconds", "the backend's longest batch", j["backend_stats"].at("max_apply_us"));
  }
  // Several queues ([queue] count): each one's share, labelled by its number.
  if (j.contains("queues")) {
    o << "# HELP ftpwall_queue_packets_total packets each queue's thread got\n# TYPE ftpwall_queue_packets_total counter\n";
    for (const auto& x : j["queues"])
      o << "ftpwall_queue_packets_total{queue=\"" << x.at("number").dump() << "\"} " << x.at("packets").dump() << "\n";
    o << "# HELP ftpwall_queue_sessions sessions each queue's thread tracks now\n# TYPE ftpwall_queue_sessions gauge\n";
    for (const auto& x : j["queues"])
      o << "ftpwall_queue_sessions{queue=\"" << x.at("number").dump() << "\"} " << x.at("sessions").dump() << "\n";
  }
  o << "# HELP ftpwall_refusals_total refusals by reason (ftpwalld(8), REFUSAL REASONS)\n"
    << "# TYPE ftpwall_refusals_total counter\n";
  for (const auto& [k, v] : j.at("refusals").items()) o << "ftpwall_refusals_total{reason=\"" << k << "\"} " << v.dump() << "\n";
  return o.str();
}

}  // namespace ftpwall::log
