// SPDX-License-Identifier: GPL-2.0-or-later
// The two outputs of `ftpwall replay` (ftpwall(8), REPLAY): one text line per event, or JSON Lines
// (one object per event, then one "summary" object). Field names are stable:
//   every event: event, time (UTC, RFC 3339 with microseconds), capture, packet, session, pickup,
//                client, client_port, server, server_port
//   announcement: from (client|server), kind, line, offset, [source, destination, port]
//   opening:      from, kind, opening, source, destination, port, line, offset
//   refused:      from, reason, action, line, offset, [kind, source, destination, port]
//   closed:       opening, reason
//   encrypted:    line, offset
//   anomaly:      from, reason, action, offset
//   session_end:  reason
// Absent values are left out, never null.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>

#include "cli/replay.hpp"

namespace ftpwall::cli::replay {

// RFC 3339 UTC with microseconds: 2025-11-23T12:04:18.123456Z.
std::string format_time(std::uint64_t time_ns);
// A JSON string literal (quotes included): control characters and bytes that are not UTF-8 as \u00XX.
std::string json_string(std::string_view s);

class TextSink final : public EventSink {
 public:
  explicit TextSink(std::ostream& out) : out_(out) {}
  void set_capture(std::string name) { capture_ = std::move(name); }
  void on_event(const Event& e) override;

 private:
  std::ostream& out_;
  std::string capture_;
};

class JsonSink final : public EventSink {
 public:
  explicit JsonSink(std::ostream& out) : out_(out) {}
  void set_capture(std::string name) { capture_ = std::move(name); }
  void on_event(const Event& e) override;

 private:
  std::ostream& out_;
  std::string capture_;
};

void write_summary_text(std::ostream& out, const Summary& s);
void write_summary_json(std::ostream& out, const Summary& s, bool truncated);

}  // namespace ftpwall::cli::replay
