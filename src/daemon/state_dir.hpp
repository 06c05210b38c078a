// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's state directory (default /run/ftpwalld, --state-dir): one SessionRecord per session
// with corrections (core/session_record.hpp), named <conntrack id>.session. Written before the
// verdict of the packet that changed the history, read back at start and checked against
// conntrack. A record file has two slots (issue 13: the per-rewrite write was 27 % of the CPU
// behind DNAT): the first save of a session creates it (a temporary name renamed over the old
// one); every later save writes the older slot in place with one pwrite, {magic, generation,
// length, FNV-1a} then the text, and the reader takes the valid slot of the higher generation,
// so a daemon killed mid-write leaves the previous record or the new one, never half of one
// (a torn slot fails its checksum). A file kept open is sized to both slots (sparse) and mapped
// shared: a later save is a copy into the page cache, no pwrite (issue 13: the pwrite and the fstat
// were 7 % of the daemon under a DNAT storm). Whether the file is still the record (not removed,
// replaced or linked under the daemon) is asked of the kernel only when something happened to its
// name: an inotify watch on the directory (watch_fd(), read by notice() from the daemon's loop)
// marks the records it names, and only a marked one is fstat'ed before its next save (the fstat
// of every save was 2.3 % of the daemon under the DNAT storm). Without inotify every save
// fstats, as before. No fsync: the
// records must survive the daemon (the page cache does), not the machine (conntrack does not
// either, and /run is a tmpfs).
//
// The directory must belong to the daemon's uid (privileges.hpp: daemon_uid) and be writable by
// nobody else, and must not be a symbolic link: prepare() refuses it otherwise, with one line
// naming the path and what is wrong. Once prepared, every file is opened relative to the
// directory's descriptor: records are created O_EXCL|O_NOFOLLOW (a stale temporary file is
// removed first), and load_all reads only regular files owned by that uid with one link; any
// other *.session entry comes back as an error (the daemon logs and removes it).
#pragma once

#include <unordered_map>

#include <fcntl.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ftpwall/core/fnv.hpp"
#include "ftpwall/core/result.hpp"
#include "ftpwall/core/session_record.hpp"

namespace ftpwall::daemon {

class StateDir {
 public:
  // A record is a few hundred bytes; a text larger than this is not ours and is not read.
  static constexpr std::size_t max_record_bytes = 64 * 1024;
  // One slot: the header and at most max_record_bytes of text; a file holds two.
  static constexpr std::size_t slot_header_bytes = 24;
  static constexpr std::size_t slot_bytes = slot_header_bytes + max_record_bytes;
  static constexpr std::size_t max_file_bytes = 2 * slot_bytes;

  // owner: the uid the directory and its records must belong to; default daemon_uid().
  explicit StateDir(std::string path, std::optional<uid_t> owner = std::nullopt);
  ~StateDir();
  StateDir(const StateDir&) = delete;
  StateDir& operator=(const StateDir&) = delete;
  const std::string& path() const { return path_; }
  uid_t owner() const { return owner_; }

  // Creates the directory (mode 0700, handed to the owner when created by root) if needed, checks
  // it and keeps it open.
  Result<void> prepare();
  Result<void> save(const SessionRecord& r) const;
  // The same from the parts (the daemon's per-rewrite save: no copy of the correction history).
  Result<void> save(std::uint32_t ct_id, const ConnTuples& tuples, const Tuple& key, const SeqAdjust& corrections) const;
  void remove(std::uint32_t ct_id) const;
  // The directory's inotify watch (-1 without one): readable when a name in it was removed,
  // renamed over or relinked. notice() reads what is waiting and marks the records named, so that
  // their next save checks the file (and makes it anew when it is not ours any more). The daemon
  // calls it from its loop before it reads the queue; a save before the notice writes the old file,
  // as a save just before a removal would.
  int watch_fd() const { return watch_fd_; }
  void notice() const;
  // Every <id>.session file: its path and the parsed record (or why it could not be read).
  std::vector<std::pair<std::string, Result<SessionRecord>>> load_all() const;

 private:
  static std::string name(std::uint32_t ct_id) { return std::to_string(ct_id) + ".session"; }
  // Relative to the prepared directory, or by full path before prepare().
  int at() const { return dir_fd_ >= 0 ? dir_fd_ : AT_FDCWD; }
  std::string rel(const std::string& file) const { return dir_fd_ >= 0 ? file : full(file); }
  std::string full(const std::string& file) const { return path_ + "/" + file; }
  Result<SessionRecord> read_record(const std::string& file) const;
  struct Written {
    std::uint64_t gen = 0;  // the generation last written
    int fd = -1;            // the file, kept open (at most max_open_records of them), or -1
    char* map = nullptr;    // with fd: the file mapped shared (max_file_bytes), written in place
    bool suspect = false;   // its name was touched (notice()): fstat before the next save
    // The record's text before its corrections (append_session_record_prefix), as last formatted,
    // the FNV-1a state after it, and a tag of what it was formatted from (prefix_tag): a later
    // save of the same session copies it and hashes only the corrections (issue 13).
    std::string prefix;
    Fnv1a prefix_fnv;
    std::uint64_t prefix_tag = 0;
  };
  Result<void> create(const std::string& final_name, const std::string& slot, Written& w) const;
  bool overwrite(std::uint32_t ct_id, const std::string& slot, Written& w) const;
  void close_fd(Written& w) const;

  std::string path_;
  uid_t owner_;
  int dir_fd_ = -1;
  int watch_fd_ = -1;  // inotify on the directory, or -1: then every save fstats its file
  // Per record this instance created (not yet removed): its generation and open descriptor. A
  // rewrite then costs one pwrite; past max_open_records the file is opened for each write.
  static constexpr std::size_t max_open_records = 256;
  mutable std::unordered_map<std::uint32_t, Written> written_;
  mutable std::size_t open_records_ = 0;
  mutable std::string slot_;  // save()'s slot, its capacity kept (issue 13: two allocations per rewrite)
};

}  // namespace ftpwall::daemon
