// SPDX-License-Identifier: GPL-2.0-or-later
#include "cli/replay_output.hpp"

#include <ctime>
#include <ostream>

namespace ftpwall::cli::replay {

namespace {

// A line for the terminal: printable ASCII as is, everything else \xNN, quotes and backslashes escaped.
std::string quoted(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string r = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      r += '\\';
      r += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      r += static_cast<char>(c);
    } else {
      r += "\\x";
      r += hex[c >> 4];
      r += hex[c & 15];
    }
  }
  return r + "\"";
}

std::string_view side(Direction d) { return d == Direction::client_to_server ? "client" : "server"; }

// Length of the valid UTF-8 sequence at s[i] (0: not valid). RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  const auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xc0) == 0x80; };
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xe0 && b(1) < 0xa0) return 0;
    if (c == 0xed && b(1) > 0x9f) return 0;
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xf0 && b(1) < 0x90) return 0;
    if (c == 0xf4 && b(1) > 0x8f) return 0;
    return 4;
  }
  return 0;
}

class Json {
 public:
  explicit Json(std::ostream& out) : out_(out) { out_ << '{'; }
  void str(std::string_view key, std::string_view v) { sep(key); out_ << json_string(v); }
  void num(std::string_view key, std::uint64_t v) { sep(key); out_ << v; }
  void boolean(std::string_view key, bool v) { sep(key); out_ << (v ? "true" : "false"); }
  void raw(std::string_view key, std::string_view v) { sep(key); out_ << v; }
  void end() { out_ << "}\n"; }

 private:
  void sep(std::string_view key) {
    if (!first_) out_ << ',';
    first_ = false;
    out_ << json_string(key) << ':';
  }
  std::ostream& out_;
  bool first_ = true;
};

std::string reasons_object(const std::map<std::string, std::uint64_t>& m) {
  std::string r = "{";
  for (const auto& [k, v] : m) {
    if (r.size() > 1) r += ',';
    r += json_string(k) + ":" + std::to_string(v);
  }
  return r + "}";
}

}  // namespace

std::string format_time(std::uint64_t time_ns) {
  const std::time_t secs = static_cast<std::time_t>(time_ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof frac, ".%06uZ", static_cast<unsigned>((time_ns / 1000) % 1'000'000));
  return std::string(buf, n) + frac;
}

std::string json_string(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string r = "\"";
  for (std::size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      r += '\\';
      r += static_cast<char>(c);
      ++i;
    } else if (c >= 0x20 && c < 0x7f) {
      r += static_cast<char>(c);
      ++i;
    } else if (c >= 0x80) {
      if (const std::size_t n = utf8_length(s, i)) {
        r.append(s.substr(i, n));
        i += n;
      } else {
        r += "\\u00";  // a byte that is not UTF-8: as the Latin-1 character of that value
        r += hex[c >> 4];
        r += hex[c & 15];
        ++i;
      }
    } else {
      r += "\\u00";
      r += hex[c >> 4];
      r += hex[c & 15];
      ++i;
    }
  }
  return r + "\"";
}

void TextSink::on_event(const Event& e) {
  out_ << format_time(e.time_ns) << ' ' << capture_ << '#' << e.packet << " s" << e.session
       << (e.pickup ? " pickup " : " ") << name(e.kind);
  const auto who_what = [&] {
    if (e.source && e.destination)
      out_ << ' ' << e.source->to_string() << " -> " << e.destination->to_string();
  };
  switch (e.kind) {
    case EventKind::session:
      out_ << ' ' << e.client.to_string() << " -> " << e.server.to_string();
      if (e.pickup) out_ << " (no SYN in the capture: picked up as after a daemon restart)";
      break;
    case EventKind::announcement:
      out_ << ' ' << side(e.direction) << ' ' << name(e.announcement) << ' ' << quoted(e.line);
      break;
    case EventKind::opening:
      out_ << " #" << e.opening << ' ' << name(e.announcement);
      who_what();
      out_ << " by " << side(e.direction) << ' ' << quoted(e.line);
      break;
    case EventKind::refused:
      out_ << ' ' << e.reason << ' ' << side(e.direction) << ' ' << quoted(e.line);
      if (e.source && e.destination) {
        out_ << " (would have been";
        who_what();
        out_ << ')';
      }
      break;
    case EventKind::closed:
      out_ << " #" << e.opening << ' ' << e.reason;
      break;
    case EventKind::encrypted:
      out_ << ' ' << quoted(e.line);
      break;
    case EventKind::anomaly:
      out_ << ' ' << e.reason << ' ' << side(e.direction);
      if (e.offset) out_ << " at offset " << *e.offset;
      break;
    case EventKind::session_end:
      out_ << ' ' << e.reason;
      break;
  }
  out_ << '\n';
}

void JsonSink::on_event(const Event& e) {
  Json j(out_);
  j.str("event", name(e.kind));
  j.str("time", format_time(e.time_ns));
  j.str("capture", capture_);
  j.num("packet", e.packet);
  j.num("session", e.session);
  j.boolean("pickup", e.pickup);
  j.str("client", e.client.addr.to_string());
  j.num("client_port", e.client.port);
  j.str("server", e.server.addr.to_string());
  j.num("server_port", e.server.port);
  const bool from = e.kind == EventKind::announcement || e.kind == EventKind::opening ||
                    e.kind == EventKind::refused || e.kind == EventKind::anomaly;
  if (from) j.str("from", side(e.direction));
  if (e.announcement != AnnouncementKind::none) j.str("kind", name(e.announcement));
  if (e.kind == EventKind::opening || e.kind == EventKind::closed) j.num("opening", e.opening);
  if (e.source) j.str("source", e.source->to_string());
  if (e.destination) {
    j.str("destination", e.destination->addr.to_string());
    j.num("port", e.destination->port);
  }
  if (!e.reason.empty()) j.str("reason", e.reason);
  if (e.action) j.str("action", name(*e.action));
  if (e.kind != EventKind::session && e.kind != EventKind::closed && e.kind != EventKind::session_end &&
      e.kind != EventKind::anomaly)
    j.str("line", e.line);
  if (e.offset) j.num("offset", *e.offset);
  j.end();
}

void write_summary_text(std::ostream& out, const Summary& s) {
  out << "summary\n"
      << "  packets         " << s.packets << " (" << s.captured_bytes << " bytes; " << s.ip_packets << " IP, "
      << s.tcp_packets << " TCP, " << s.control_packets << " of control connections)\n"
      << "  sessions        " << s.sessions << " (" << s.pickups << " picked up; " << s.half_open
      << " SYNs never answered)\n"
      << "  announcements   " << s.announcements << "\n"
      << "  openings        " << s.openings << "\n"
      << "  refusals        " << s.refusals << "\n";
  for (const auto& [r, n] : s.refusals_by_reason) out << "    " << r << ' ' << n << "\n";
  out << "  encrypted       " << s.encrypted << "\n"
      << "  anomalies       " << s.anomalies << "\n";
  for (const auto& [r, n] : s.anomalies_by_reason) out << "    " << r << ' ' << n << "\n";
  if (s.missed_bytes > 0)
    out << "  missed          " << s.missed_bytes << " bytes acknowledged by their receiver, not in the capture\n";
  out << "  not understood  " << s.not_understood << " packets\n";
  for (const auto& [r, n] : s.not_understood_by_cause) out << "    " << r << ' ' << n << "\n";
}

void write_summary_json(std::ostream& out, const Summary& s, bool truncated) {
  Json j(out);
  j.str("event", "summary");
  j.num("packets", s.packets);
  j.num("captured_bytes", s.captured_bytes);
  j.num("ip_packets", s.ip_packets);
  j.num("tcp_packets", s.tcp_packets);
  j.num("control_packets", s.control_packets);
  j.num("sessions", s.sessions);
  j.num("pickups", s.pickups);
  j.num("half_open", s.half_open);
  j.num("announcements", s.announcements);
  j.num("openings", s.openings);
  j.num("refusals", s.refusals);
  j.raw("refusals_by_reason", reasons_object(s.refusals_by_reason));
  j.num("encrypted", s.encrypted);
  j.num("anomalies", s.anomalies);
  j.raw("anomalies_by_reason", reasons_object(s.anomalies_by_reason));
  j.num("missed_bytes", s.missed_bytes);
  j.num("not_understood", s.not_understood);
  j.raw("not_understood_by_cause", reasons_object(s.not_understood_by_cause));
  j.num("not_ip", s.not_ip);
  j.boolean("truncated", truncated);
  j.end();
}

}  // namespace ftpwall::cli::replay
