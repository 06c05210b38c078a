// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's state directory (default /run/ftpwalld, --state-dir): one SessionRecord per session
// with corrections (core/session_record.hpp), named <conntrack id>.session. Written before the
// verdict of the packet that changed the history, read back at start and checked against
// conntrack. A record is written to a temporary name and renamed over the old one, so a daemon
// killed mid-write leaves the previous record or the new one, never half of one. No fsync: the
// records must survive the daemon (the page cache does), not the machine (conntrack does not
// either, and /run is a tmpfs).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ftpwall/core/result.hpp"
#include "ftpwall/core/session_record.hpp"

namespace ftpwall::daemon {

class StateDir {
 public:
  // A record is a few hundred bytes; anything larger than this is not ours and is not read.
  static constexpr std::size_t max_record_bytes = 64 * 1024;

  explicit StateDir(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }

  // Creates the directory (mode 0700) if needed.
  Result<void> prepare() const;
  Result<void> save(const SessionRecord& r) const;
  void remove(std::uint32_t ct_id) const;
  // Every <id>.session file: its path and the parsed record (or why it could not be read).
  std::vector<std::pair<std::string, Result<SessionRecord>>> load_all() const;

 private:
  std::string file(std::uint32_t ct_id) const { return path_ + "/" + std::to_string(ct_id) + ".session"; }
  std::string path_;
};

}  // namespace ftpwall::daemon
