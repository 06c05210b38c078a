// SPDX-License-Identifier: GPL-2.0-or-later
// What the control socket answers (control.hpp): the daemon's state as JSON documents with stable
// field names (ftpwall(8), STATUS), built from the daemon's own tables; nothing here touches the
// kernel except reading /proc/net/netfilter/nfnetlink_queue.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "daemon/daemon.hpp"

namespace ftpwall::daemon {
namespace {

using json = nlohmann::ordered_json;

std::int64_t seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t).count();
}

// The kernel's line for one queue: queue_number peer_portid queue_total copy_mode copy_range
// queue_dropped user_dropped id_sequence 1.
json kernel_queue(std::uint16_t number) {
  std::ifstream f("/proc/net/netfilter/nfnetlink_queue");
  for (std::string line; std::getline(f, line);) {
    std::istringstream in(line);
    unsigned long long q, portid, total, mode, range, dropped, user_dropped, seq;
    if (!(in >> q >> portid >> total >> mode >> range >> dropped >> user_dropped >> seq)) continue;
    if (q != number) continue;
    return json{{"waiting", total}, {"queue_dropped", dropped}, {"user_dropped", user_dropped}, {"id_sequence", seq}};
  }
  return nullptr;
}

json endpoint(const Endpoint& e) { return json{{"address", e.addr.to_string()}, {"port", e.port}}; }

}  // namespace

std::string Daemon::answer(std::string_view request) {
  std::string out;
  if (request == "status") out = status_json();
  else if (request == "sessions") out = sessions_json();
  else if (request == "openings") out = openings_json();
  else if (request == "takeover") out = takeover_json();
  else if (request == "standby") out = standby_json();
  else out = json{{"error", "unknown request; ask status, sessions, openings, takeover or standby"}}.dump();
  return out + "\n";
}

std::string Daemon::status_json() const {
  json j;
  j["version"] = FTPWALL_VERSION;
  j["uptime_s"] = seconds_since(started_);
  j["role"] = config::name(cfg_.role);
  j["backend"] = backend_->name();
  j["backend_why"] = backend_why_;
  j["steering"] = backend_->steering();
  j["hooks"] = config::name(cfg_.hooks);
  j["config"] = cfg_.source;
  // Every queue's figures, read in its own thread; with one queue, the leader's alone.
  const std::vector<Figures> all = all_figures();
  Figures t;
  json queues = json::array();
  json kernel = nullptr;
  for (const Figures& f : all) {
    t += f;
    json k = kernel_queue(f.queue);
    if (!k.is_null()) {
      if (kernel.is_null()) kernel = json{{"waiting", 0}, {"queue_dropped", 0}, {"user_dropped", 0}};
      for (const char* n : {"waiting", "queue_dropped", "user_dropped"}) kernel[n] = kernel[n].get<std::uint64_t>() + k[n].get<std::uint64_t>();
      if (all.size() == 1) kernel["id_sequence"] = k["id_sequence"];
    }
    queues.push_back(json{{"number", f.queue},
                          {"packets", f.stats.packets},
                          {"sessions", f.sessions},
                          {"openings", f.openings},
                          {"data_syns", f.stats.data_syns},
                          {"verdicts", f.q.verdicts},
                          {"enobufs", f.q.enobufs},
                          {"kernel", std::move(k)}});
  }
  const DaemonStats& st = t.stats;
  j["queue"] = json{{"number", cfg_.queue.number},
                    {"count", cfg_.queue.count},
                    {"verdicts", t.q.verdicts},
                    {"modified", t.q.modified},
                    {"enobufs", t.q.enobufs},
                    {"verdict_errors", t.q.verdict_errors},
                    {"kernel", kernel}};
  // Several queues: each one's share (the kernel spreads connections by their address pair).
  if (all.size() > 1) j["queues"] = std::move(queues);
  const auto& b = last_check_.backend;
  j["backend_stats"] = json{{"commits", b.commits},
                            {"commit_retries", b.commit_retries},
                            {"last_commit_us", b.last_commit_us},
                            {"last_apply_us", b.last_apply_us},
                            {"max_apply_us", b.max_apply_us}};
  j["kernel_check"] = last_check_.at == Clock::time_point{}
                          ? json(nullptr)
                          : json{{"ok", last_check_.ok}, {"result", last_check_.result}, {"age_s", seconds_since(last_check_.at)}};
  j["live"] = json{{"sessions", t.sessions},
                   {"half_open", t.half_open},
                   {"openings", t.openings},
                   {"openings_installed", t.installed}};
  j["counters"] = json{{"packets", st.packets},
                       {"untracked", st.untracked},
                       {"sessions", st.sessions},
                       {"pickups", st.pickups},
                       {"ha_label_writes", st.ha_label_writes},
                       {"ha_label_errors", st.ha_label_errors},
                       {"ha_takeovers", st.ha_takeovers},
                       {"ha_continued", st.ha_continued},
                       {"openings", st.openings},
                       {"opening_failures", st.opening_failures},
                       {"data_syns", st.data_syns},
                       {"passed_syns", st.passed_syns},
                       {"exempted", st.exempted},
                       {"ct_queries", st.ct_queries},
                       {"ct_events", st.ct_events},
                       {"ct_resyncs", st.ct_resyncs},
                       {"half_open_expired", st.half_open_expired},
                       {"verdict_waits", st.verdict_waits},
                       {"max_wait_us", st.max_wait_us}};
  json refusals = json::object();
#define FTPWALL_STATUS_REASON(n) \
  if (Reason::n != Reason::none) refusals[#n] = st.reasons[static_cast<std::size_t>(Reason::n)];
  FTPWALL_REASONS(FTPWALL_STATUS_REASON)
#undef FTPWALL_STATUS_REASON
  j["refusals"] = std::move(refusals);
  return j.dump();
}

// The leader's entries, then each follower's (asked in its thread).
std::string Daemon::joined(const char* key, std::string (Daemon::*list)() const) const {
  json all = json::parse((this->*list)());
  for (const auto& f : followers_)
    if (auto part = f->daemon->mailbox_->call([d = f->daemon.get(), list] { return (d->*list)(); }))
      for (auto& e : json::parse(*part)) all.push_back(std::move(e));
  return json{{key, std::move(all)}}.dump();
}

std::string Daemon::sessions_json() const { return joined("sessions", &Daemon::sessions_list); }
std::string Daemon::openings_json() const { return joined("openings", &Daemon::openings_list); }

std::string Daemon::sessions_list() const {
  json list = json::array();
  for (auto& [key, s] : sessions_) {
    json e;
    e["id"] = s.id;
    if (cfg_.queue.count > 1) e["queue"] = queue_number();
    e["client"] = endpoint(s.tuples.original.src);
    e["server"] = endpoint(s.tuples.original.dst);                 // as dialled
    e["server_real"] = endpoint(s.tuples.reply.src);               // behind DNAT
    e["client_as_seen"] = endpoint(s.tuples.reply.dst);            // behind SNAT
    e["state"] = s.dropping ? "dropping" : s.ended ? "ended" : !s.tracker ? "untouched" : "tracked";
    e["announcements"] = s.announcements;
    e["refusals"] = s.refusals;
    if (s.tracker) {
      e["corrections"] = json{{"client_to_server", s.tracker->corrections().corrections(Direction::client_to_server)},
                              {"server_to_client", s.tracker->corrections().corrections(Direction::server_to_client)}};
      e["encrypted"] = s.tracker->encrypted();
      e["at_rest"] = s.tracker->at_rest();  // idle: its compact state only (tracker.hpp)
    } else if (s.tracker_released) {
      e["corrections"] = json{{"client_to_server", 0}, {"server_to_client", 0}};
      e["encrypted"] = s.was_encrypted;
      e["tracker_released"] = true;  // ended, nothing left to correct: lingers in ~400 bytes
    }
    e["held_bytes"] = s.held;
    e["recorded"] = s.recorded;
    // [ha]: whether its HA label is in its conntrack entry, and whether it says enough to continue.
    if (cfg_.ha.enabled) {
      const auto l = s.label_set ? decode_label(s.label) : std::nullopt;
      e["ha_label"] = !l ? "none" : l->carried ? "carried" : "not_carried";
    }
    e["age_s"] = seconds_since(s.started);
    if (s.opening) e["opening"] = s.opening->opening.id.opening;
    if (s.range) e["range"] = s.range->id.opening;
    list.push_back(std::move(e));
  }
  return list.dump();
}

std::string Daemon::openings_list() const {
  json list = json::array();
  const auto now = firewall::Clock::now();
  auto entry = [&](const firewall::Opening& o, bool installed) {
    json e;
    e["session"] = o.id.session;
    if (cfg_.queue.count > 1) e["queue"] = queue_number();
    e["opening"] = o.id.opening;
    e["source"] = o.source.to_string();
    e["destination"] = o.destination.addr.to_string();
    e["port"] = o.destination.port;
    if (o.dnat_to) e["dnat_to"] = endpoint(*o.dnat_to);
    if (o.snat_to) e["snat_to"] = o.snat_to->to_string();
    e["installed"] = installed;
    e["expires_in_s"] = std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(o.expires - now).count());
    return e;
  };
  for (auto& [key, s] : sessions_) {
    if (s.opening) {
      json e = entry(s.opening->opening, s.opening->installed);
      e["used_by_port"] = s.opening->winner_port ? json(*s.opening->winner_port) : json(nullptr);
      list.push_back(std::move(e));
    }
    if (s.range) {  // per-client FTPS: the passive range, for the session's lifetime
      json e = entry(*s.range, s.range_installed);
      e["kind"] = "range";
      e["port_last"] = s.range->port_last;
      list.push_back(std::move(e));
    }
  }
  return list.dump();
}

}  // namespace ftpwall::daemon
