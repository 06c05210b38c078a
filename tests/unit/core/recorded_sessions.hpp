// SPDX-License-Identifier: GPL-2.0-or-later
// The recorded control sessions of tests/data/sessions/ (format in its README): one message per
// line, "C " (client -> server) or "S " (server -> client) then the bytes with C escapes
// (\r \n \t \\ \xHH); one message = one segment as captured. Shared by the ftp_wire and tracker
// tests (and the same format is read by bench/core_bench.cpp and tests/fuzz/fuzz_stream.cpp).
#pragma once

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "ftpwall/core/conn.hpp"

namespace ftpwall::test {

struct Turn {
  Direction dir;
  std::string bytes;
};

inline int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline std::string unescape(std::string_view s) {
  std::string o;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      o += s[i];
      continue;
    }
    const char c = s[++i];
    if (c == 'r') {
      o += '\r';
    } else if (c == 'n') {
      o += '\n';
    } else if (c == 't') {
      o += '\t';
    } else if (c == 'x' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
      o += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
      i += 2;
    } else {
      o += c;
    }
  }
  return o;
}

inline std::vector<Turn> parse_session(std::string_view text) {
  std::vector<Turn> turns;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 2 || line[0] == '#') continue;
    turns.push_back({line[0] == 'C' ? Direction::client_to_server : Direction::server_to_client,
                     unescape(std::string_view(line).substr(2))});
  }
  return turns;
}

// One recording and the real addresses of its ends (the bench's: client 192.0.2.10, server
// 198.51.100.10; its announcements carry them).
struct Recording {
  std::string name;
  std::vector<Turn> turns;
  std::string client = "192.0.2.10", server = "198.51.100.10";

  // The whole byte stream of one direction.
  std::string stream(Direction d) const {
    std::string s;
    for (const Turn& t : turns)
      if (t.dir == d) s += t.bytes;
    return s;
  }
};

// Every *.txt under tests/data/sessions/, sorted by name.
inline std::vector<Recording> recordings() {
  std::vector<Recording> all;
  const std::filesystem::path dir = std::filesystem::path(FTPWALL_SOURCE_DIR) / "tests/data/sessions";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".txt") continue;
    std::ifstream f(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    auto t = parse_session(ss.str());
    if (!t.empty()) all.push_back({e.path().filename().string(), std::move(t)});
  }
  std::sort(all.begin(), all.end(), [](const Recording& a, const Recording& b) { return a.name < b.name; });
  return all;
}

// The lines (without CR LF / LF) of a direction's stream, with their stream offsets.
struct StreamLine {
  std::size_t offset;
  std::string text;
};
inline std::vector<StreamLine> lines_of(const std::string& stream) {
  std::vector<StreamLine> v;
  std::size_t at = 0;
  while (at < stream.size()) {
    std::size_t nl = stream.find('\n', at);
    if (nl == std::string::npos) break;
    std::size_t end = nl > at && stream[nl - 1] == '\r' ? nl - 1 : nl;
    v.push_back({at, stream.substr(at, end - at)});
    at = nl + 1;
  }
  return v;
}

}  // namespace ftpwall::test
