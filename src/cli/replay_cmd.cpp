// SPDX-License-Identifier: GPL-2.0-or-later
#include "cli/replay_cmd.hpp"

#include <CLI/CLI.hpp>
#include <charconv>
#include <ostream>

#include "cli/pcap_reader.hpp"
#include "cli/replay.hpp"
#include "cli/replay_output.hpp"
#ifdef FTPWALL_REPLAY_CONFIG
#include "ftpwall/config/config.hpp"
#endif

namespace ftpwall::cli {

namespace {

constexpr int replay_ok = 0;
constexpr int replay_error = 2;
constexpr std::size_t max_ports = 16;  // as config::bounds::max_control_ports

Result<std::vector<std::uint16_t>> parse_ports(const std::string& text) {
  std::vector<std::uint16_t> ports;
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t comma = std::min(text.find(',', at), text.size());
    const std::string_view item(text.data() + at, comma - at);
    unsigned v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc{} || p != item.data() + item.size() || v == 0 || v > 65535)
      return make_error("--ports: '" + std::string(item) + "' is not a port 1-65535");
    ports.push_back(static_cast<std::uint16_t>(v));
    at = comma + 1;
  }
  if (ports.size() > max_ports) return make_error("--ports: more than " + std::to_string(max_ports) + " ports");
  return ports;
}

Result<replay::Options> options_of(const ReplayArgs& a) {
  replay::Options o;
  if (!a.config.empty()) {
#ifdef FTPWALL_REPLAY_CONFIG
    auto c = config::load_file(a.config);
    if (!c) return c.error();
    o.policy = c->policy;
    o.control_ports = c->control_ports;
#else
    return make_error("--config: this ftpwall was built without toml++, it cannot read ftpwalld's configuration");
#endif
  }
  if (!a.ports.empty()) {
    auto p = parse_ports(a.ports);
    if (!p) return p.error();
    o.control_ports = *p;
  }
  return o;
}

}  // namespace

void add_replay_options(CLI::App& replay, ReplayArgs& a) {
  replay.add_option("--config", a.config,
                    "ftpwalld's configuration file (ftpwall.conf(5)): its [policy] and control_ports decide "
                    "(default: ftpwalld's built-in defaults)")
      ->type_name("FILE")
      ->group("Policy");
  replay.add_option("--ports", a.ports, "control ports, comma-separated (default: the configuration's, else 21)")
      ->type_name("PORT,...")
      ->group("Policy");
  replay.add_flag("--json", a.json, "JSON Lines: one object per event, then a summary object (default: text)")->group("Output");
  replay.add_option("captures", a.captures, "pcap or pcapng files (tcpdump -w), read in this order as one capture")
      ->type_name("CAPTURE")
      ->required();
}

int run_replay(const ReplayArgs& a, std::ostream& out, std::ostream& err) {
  auto options = options_of(a);
  if (!options) {
    err << "ftpwall replay: error: " << options.error().message << "\n";
    return replay_error;
  }
  // Every file must open before any output: an unreadable one is an error, not a finding.
  for (const std::string& path : a.captures) {
    auto f = CaptureFile::open(path);
    if (!f) {
      err << "ftpwall replay: error: " << f.error().message << "\n";
      return replay_error;
    }
  }
  replay::TextSink text(out);
  replay::JsonSink json(out);
  replay::EventSink& sink = a.json ? static_cast<replay::EventSink&>(json) : text;
  replay::Replayer replayer(std::move(*options), sink);
  bool truncated = false;
  for (const std::string& path : a.captures) {
    auto f = CaptureFile::open(path);
    if (!f) {  // removed or changed meanwhile
      err << "ftpwall replay: error: " << f.error().message << "\n";
      return replay_error;
    }
    json.set_capture(path);
    if (a.captures.size() > 1) text.set_capture(path);
    if (auto w = f->read_all(replayer)) {
      truncated = true;
      err << "ftpwall replay: warning: " << path << ": " << *w << "\n";
    }
  }
  replayer.finish();
  // A stream_gap offline is the capture's loss, never the wire's: say so once, where it is seen.
  if (const std::uint64_t missed = replayer.summary().missed_bytes; missed > 0)
    err << "ftpwall replay: warning: the capture lacks " << missed
        << " bytes of control connections that their receiver acknowledged (stream_gap): it dropped packets"
           " (tcpdump: \"packets dropped by kernel\") or does not see every path; ftpwalld on the path sees"
           " them, so its decisions around those gaps may differ\n";
  if (a.json)
    replay::write_summary_json(out, replayer.summary(), truncated);
  else
    replay::write_summary_text(out, replayer.summary());
  out.flush();
  return replay_ok;
}

}  // namespace ftpwall::cli
