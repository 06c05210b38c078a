// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/decision.hpp"

namespace ftpwall {
namespace {

// Quoted, with non-printable bytes (and the quote and backslash) escaped, so that one decision is
// one log line whatever the wire carried.
std::string quoted(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string r = "\"";
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      r += static_cast<char>(c);
    } else {
      r += "\\x";
      r += hex[c >> 4];
      r += hex[c & 15];
    }
  }
  r += '"';
  return r;
}

std::string family_name(Family f) { return f == Family::v4 ? "v4" : "v6"; }

struct Printer {
  std::string operator()(const OpenData& o) const {
    return "open_data #" + std::to_string(o.opening) + " " + std::string(name(o.kind)) + " " + family_name(o.family) +
           " from " + o.source.to_string() + " to " + o.destination.to_string() + " inside " + o.inside.to_string();
  }
  std::string operator()(const Rewrite& r) const {
    return "rewrite " + std::string(name(r.direction)) + " @" + std::to_string(r.stream_offset) + " " +
           quoted(r.old_bytes) + " -> " + quoted(r.new_bytes);
  }
  std::string operator()(const Violation& v) const {
    return "violation " + std::string(name(v.reason)) + " " + std::string(name(v.direction)) + " @" +
           std::to_string(v.line_offset) + " " + quoted(v.bytes) + " " + std::string(name(v.action));
  }
  std::string operator()(const CloseData& c) const {
    return "close_data #" + std::to_string(c.opening) + " " + std::string(name(c.reason));
  }
  std::string operator()(const Encrypted& e) const { return "encrypted @" + std::to_string(e.line_offset); }
  std::string operator()(const SessionEnd& e) const { return "session_end " + std::string(name(e.reason)); }
  std::string operator()(const Cleartext& c) const {
    return "cleartext " + std::string(name(c.direction)) + " @" + std::to_string(c.offset);
  }
};

}  // namespace

std::string_view name(ViolationAction a) { return a == ViolationAction::pass ? "pass" : "reset"; }

std::string to_string(const Decision& d) { return std::visit(Printer{}, d); }

}  // namespace ftpwall
