// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/state_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>

#include "daemon/privileges.hpp"
#include "ftpwall/core/fnv.hpp"

namespace ftpwall::daemon {
namespace {

Error sys_error(const std::string& what) { return make_error(what + ": " + std::strerror(errno)); }

std::string octal_mode(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

}  // namespace

StateDir::StateDir(std::string path, std::optional<uid_t> owner)
    : path_(std::move(path)), owner_(owner ? *owner : daemon_uid()) {}

StateDir::~StateDir() {
  for (auto& [id, w] : written_) close_fd(w);
  if (dir_fd_ >= 0) ::close(dir_fd_);
  if (watch_fd_ >= 0) ::close(watch_fd_);
}

Result<void> StateDir::prepare() {
  const std::string what = "state directory " + path_;
  const bool created = ::mkdir(path_.c_str(), 0700) == 0;
  if (!created && errno != EEXIST) return sys_error(what);
  // O_NOFOLLOW: a symbolic link as the directory is refused, not followed.
  const int fd = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    struct stat st{};
    if (::lstat(path_.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
      return make_error(what + ": is a symbolic link (give the directory itself)");
    if (errno == ENOTDIR) return make_error(what + ": not a directory");
    return sys_error(what);
  }
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    auto e = sys_error(what);
    ::close(fd);
    return e;
  }
  // Created by root for a daemon that runs as another user (--user): hand it over.
  if (created && st.st_uid != owner_ && ::fchown(fd, owner_, static_cast<gid_t>(-1)) == 0) st.st_uid = owner_;
  std::string wrong;
  if (st.st_uid != owner_)
    wrong = "owned by uid " + std::to_string(st.st_uid) + ", not by ftpwalld's uid " + std::to_string(owner_);
  else if (st.st_mode & (S_IWGRP | S_IWOTH))
    wrong = "writable by group or others (mode " + octal_mode(st.st_mode) + "; chmod go-w it)";
  if (!wrong.empty()) {
    ::close(fd);
    return make_error(what + ": " + wrong);
  }
  if (dir_fd_ >= 0) ::close(dir_fd_);
  dir_fd_ = fd;
  // The watch on the directory just opened (by its descriptor: the path may have been swapped
  // since). What changes a record's name or its links: removal, rename from or over it, a link
  // count change (IN_ATTRIB). Without it (no inotify, or its limits reached) every save fstats.
  if (watch_fd_ >= 0) ::close(watch_fd_);
  watch_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (watch_fd_ >= 0) {
    const std::string self = "/proc/self/fd/" + std::to_string(dir_fd_);
    constexpr std::uint32_t mask = IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB | IN_ONLYDIR;
    if (::inotify_add_watch(watch_fd_, self.c_str(), mask) < 0) {
      ::close(watch_fd_);
      watch_fd_ = -1;
    }
  }
  // Records written before (a second prepare()) are checked at their next save.
  for (auto& [id, w] : written_) w.suspect = true;
  return {};
}

void StateDir::notice() const {
  if (watch_fd_ < 0) return;
  alignas(inotify_event) char buf[4096];
  for (;;) {
    const ssize_t n = ::read(watch_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // EAGAIN: nothing more
    for (ssize_t off = 0; off + static_cast<ssize_t>(sizeof(inotify_event)) <= n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
      if (e->mask & IN_Q_OVERFLOW) {  // events lost: any record may have been touched
        for (auto& [id, w] : written_) w.suspect = true;
        continue;
      }
      if (e->len == 0) continue;
      const std::string_view name(e->name);  // NUL-padded to e->len
      if (!name.ends_with(".session")) continue;
      std::uint32_t id = 0;
      const auto digits = name.substr(0, name.size() - 8);
      const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
      if (ec != std::errc{} || p != digits.data() + digits.size()) continue;
      if (auto w = written_.find(id); w != written_.end()) w->second.suspect = true;
    }
  }
}

namespace {

constexpr char slot_magic[4] = {'F', 'W', 'S', '2'};

std::uint64_t fnv1a(std::string_view s) { return Fnv1a().add(s).value(); }
std::uint64_t get_le(std::string_view s, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t{static_cast<unsigned char>(s[at + i])} << (8 * i);
  return v;
}

// A slot: "FWS2", generation (8), text length (4), FNV-1a of the text (8), the text; little-endian.
// The text is formatted straight after room for the header (issue 13: no copy of it), then sealed
// with its checksum (`sum`, the caller's: it may have hashed the prefix once for many saves).
void seal_slot(std::string& slot, std::uint64_t gen, std::uint64_t sum) {
  const std::size_t text_size = slot.size() - StateDir::slot_header_bytes;
  auto put = [&slot](std::size_t at, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) slot[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
  };
  std::copy(slot_magic, slot_magic + 4, slot.begin());
  put(4, gen, 8);
  put(12, text_size, 4);
  put(16, sum, 8);
}

// What a record's prefix is formatted from, folded into 64 bits (a cheap multiply-xor over the
// binary fields, not a checksum: it only tells a save whether the kept prefix is still this one).
std::uint64_t prefix_tag(std::uint32_t ct_id, const ConnTuples& tuples, const Tuple& key) {
  std::uint64_t h = 0x6a09e667f3bcc909ull ^ ct_id;
  auto mix = [&h](std::uint64_t v) {
    h = (h ^ v) * 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
  };
  auto endpoint = [&](const Endpoint& e) {
    std::uint64_t a = 0, b = 0;
    std::memcpy(&a, e.addr.bytes.data(), 8);
    std::memcpy(&b, e.addr.bytes.data() + 8, 8);
    mix(a);
    mix(b);
    mix(std::uint64_t{e.port} << 8 | static_cast<std::uint8_t>(e.addr.family));
  };
  for (const Tuple* t : {&tuples.original, &tuples.reply, &key}) {
    endpoint(t->src);
    endpoint(t->dst);
  }
  return h;
}

// All of `data` at offset `off` (pwrite: the descriptor's own offset stays); errno on false.
bool write_at(int fd, std::string_view data, off_t off) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, off + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

struct Slot {
  std::uint64_t gen = 0;
  std::string_view text;
};
std::optional<Slot> read_slot(std::string_view file, std::size_t at) {
  if (file.size() < at + StateDir::slot_header_bytes || file.compare(at, 4, std::string_view(slot_magic, 4)) != 0)
    return std::nullopt;
  const std::uint64_t len = get_le(file, at + 12, 4);
  if (len > StateDir::max_record_bytes || file.size() < at + StateDir::slot_header_bytes + len) return std::nullopt;
  const std::string_view text = file.substr(at + StateDir::slot_header_bytes, len);
  if (fnv1a(text) != get_le(file, at + 16, 8)) return std::nullopt;  // torn: killed mid-write
  return Slot{get_le(file, at + 4, 8), text};
}

}  // namespace

Result<void> StateDir::save(const SessionRecord& r) const { return save(r.ct_id, r.tuples, r.key, r.corrections); }

Result<void> StateDir::save(std::uint32_t ct_id, const ConnTuples& tuples, const Tuple& key,
                            const SeqAdjust& corrections) const {
  std::string& slot = slot_;
  slot.assign(slot_header_bytes, '\0');
  // The prefix (magic, ct, tuples, key) formatted and hashed once per session; every save after
  // the first copies it and hashes only the corrections. The slot's bytes and checksum are the
  // same as formatting it whole (unit test SavesWithAKeptPrefixAreTheSameBytes).
  const std::uint64_t tag = prefix_tag(ct_id, tuples, key);
  auto w = written_.find(ct_id);
  const bool kept = w != written_.end() && w->second.prefix_tag == tag && !w->second.prefix.empty();
  Fnv1a sum;
  if (kept) {
    slot += w->second.prefix;
    sum = w->second.prefix_fnv;
  } else {
    append_session_record_prefix(slot, ct_id, tuples, key);
    sum.add(std::string_view(slot).substr(slot_header_bytes));
  }
  const std::size_t prefix_end = slot.size();
  const Fnv1a prefix_fnv = sum;
  corrections.serialize_to(slot);
  if (slot.size() - slot_header_bytes > max_record_bytes) return make_error("state record of " + name(ct_id) + ": too large");
  sum.add(std::string_view(slot).substr(prefix_end));
  auto keep_prefix = [&](Written& to) {
    if (to.prefix_tag == tag && !to.prefix.empty()) return;
    to.prefix.assign(slot, slot_header_bytes, prefix_end - slot_header_bytes);
    to.prefix_fnv = prefix_fnv;
    to.prefix_tag = tag;
  };
  if (w != written_.end()) {
    seal_slot(slot, w->second.gen + 1, sum.value());
    if (overwrite(ct_id, slot, w->second)) {
      keep_prefix(w->second);
      return {};
    }
    close_fd(w->second);  // gone or replaced under us: made anew below
    written_.erase(w);
  }
  seal_slot(slot, 1, sum.value());
  Written nw;
  if (auto c = create(name(ct_id), slot, nw); !c) return c;
  keep_prefix(nw);
  written_[ct_id] = std::move(nw);
  return {};
}

void StateDir::close_fd(Written& w) const {
  if (w.map) ::munmap(w.map, max_file_bytes);
  w.map = nullptr;
  if (w.fd < 0) return;
  ::close(w.fd);
  w.fd = -1;
  --open_records_;
}

// A later save: the older slot of the file this instance created, in place (one pwrite). false
// when the file is not that file any more (removed, a link, another owner): the caller creates it.
bool StateDir::overwrite(std::uint32_t ct_id, const std::string& slot, Written& w) const {
  const std::uint64_t gen = w.gen + 1;
  int fd = w.fd;
  if (fd >= 0) {
    // Unlinked under us (the name removed or replaced): made anew by the caller. Asked only when
    // the watch named it since (or without a watch).
    if (w.suspect || watch_fd_ < 0) {
      struct stat st{};
      if (::fstat(fd, &st) != 0 || st.st_nlink != 1) return false;
      w.suspect = false;
    }
    if (w.map) {
      const std::size_t off = static_cast<std::size_t>((gen - 1) % 2) * slot_bytes;  // gen 1 (create) in slot 0
      std::memcpy(w.map + off, slot.data(), slot.size());
      w.gen = gen;
      return true;
    }
  } else {
    fd = ::openat(at(), rel(name(ct_id)).c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st{};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != owner_ || st.st_nlink != 1) {
      ::close(fd);
      return false;
    }
  }
  const off_t off = static_cast<off_t>(((gen - 1) % 2) * slot_bytes);  // gen 1 (create) in slot 0
  bool ok = write_at(fd, slot, off);
  if (w.fd < 0) {
    if (ok && open_records_ < max_open_records) {
      w.fd = fd;
      ++open_records_;
    } else if (::close(fd) != 0) {
      ok = false;
    }
  }
  if (ok) w.gen = gen;
  return ok;
}

// The first save: slot 0 of a new file, written under a temporary name and renamed over the
// final one (whatever it is: a stale record, a symbolic link); its descriptor stays open.
Result<void> StateDir::create(const std::string& final_name, const std::string& slot, Written& w) const {
  const std::string tmp = final_name + ".tmp";
  // O_EXCL and O_NOFOLLOW make sure the file written is a new one of ours, never a link's target.
  // A temporary file left by a daemon killed mid-write (or planted) is removed when met (EEXIST),
  // not before every first save: one system call less per session behind NAT (issue 13).
  constexpr int flags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;  // read too: mapped shared below
  int fd = ::openat(at(), rel(tmp).c_str(), flags, 0600);
  if (fd < 0 && errno == EEXIST) {
    if (::unlinkat(at(), rel(tmp).c_str(), 0) != 0 && errno != ENOENT) return sys_error("removing " + full(tmp));
    fd = ::openat(at(), rel(tmp).c_str(), flags, 0600);
  }
  if (fd < 0) return sys_error("writing " + full(tmp));
  if (!write_at(fd, slot, 0)) {
    auto e = sys_error("writing " + full(tmp));
    ::close(fd);
    ::unlinkat(at(), rel(tmp).c_str(), 0);
    return e;
  }
  // rename replaces whatever has the final name, a symbolic link included, without following it.
  if (::renameat(at(), rel(tmp).c_str(), at(), rel(final_name).c_str()) != 0) {
    auto e = sys_error("renaming " + full(tmp));
    ::close(fd);
    return e;
  }
  w.gen = 1;
  if (open_records_ < max_open_records) {
    w.fd = fd;
    ++open_records_;
    // Both slots' room (a hole: nothing allocated until written), mapped for the later saves. A
    // failure here only costs speed: the saves then go by pwrite.
    if (::ftruncate(fd, static_cast<off_t>(max_file_bytes)) == 0) {
      void* m = ::mmap(nullptr, max_file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      if (m != MAP_FAILED) w.map = static_cast<char*>(m);
    }
  } else if (::close(fd) != 0) {
    return sys_error("writing " + full(final_name));
  }
  return {};
}

void StateDir::remove(std::uint32_t ct_id) const {
  if (auto w = written_.find(ct_id); w != written_.end()) {
    close_fd(w->second);
    written_.erase(w);
  }
  ::unlinkat(at(), rel(name(ct_id)).c_str(), 0);
}

Result<SessionRecord> StateDir::read_record(const std::string& file) const {
  // O_NONBLOCK: a FIFO must not block the start; it is refused below.
  const int fd = ::openat(at(), rel(file).c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ELOOP) return make_error("a symbolic link, not a record");
    return sys_error("reading");
  }
  struct stat st{};
  std::string wrong;
  if (::fstat(fd, &st) != 0) wrong = std::string("fstat: ") + std::strerror(errno);
  else if (!S_ISREG(st.st_mode)) wrong = "not a regular file";
  else if (st.st_uid != owner_) wrong = "owned by uid " + std::to_string(st.st_uid) + ", not by ftpwalld's uid " + std::to_string(owner_);
  else if (st.st_nlink != 1) wrong = "has " + std::to_string(st.st_nlink) + " hard links";
  else if (static_cast<std::uint64_t>(st.st_size) > max_file_bytes) wrong = "larger than " + std::to_string(max_file_bytes) + " bytes";
  if (!wrong.empty()) {
    ::close(fd);
    return make_error(wrong);
  }
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      auto e = sys_error("reading");
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max_file_bytes) {
      ::close(fd);
      return make_error("larger than " + std::to_string(max_file_bytes) + " bytes");
    }
  }
  ::close(fd);
  // The two slots; the valid one of the higher generation. (A plain text record is an older
  // daemon's: read as it is.)
  if (text.rfind("ftpwalld-session ", 0) == 0) return parse_session_record(text);
  const auto a = read_slot(text, 0), b = read_slot(text, slot_bytes);
  if (!a && !b) return make_error("no valid slot (not a state record, or both slots torn)");
  const Slot& s = !b || (a && a->gen > b->gen) ? *a : *b;
  return parse_session_record(s.text);
}

std::vector<std::pair<std::string, Result<SessionRecord>>> StateDir::load_all() const {
  std::vector<std::pair<std::string, Result<SessionRecord>>> out;
  DIR* d = nullptr;
  if (dir_fd_ >= 0) {
    const int fd = ::openat(dir_fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0 && !(d = ::fdopendir(fd))) ::close(fd);
  } else {
    d = ::opendir(path_.c_str());
  }
  if (!d) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string file = e->d_name;
    constexpr std::string_view suffix = ".session";
    if (file.size() <= suffix.size() || file.compare(file.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    out.emplace_back(full(file), read_record(file));
  }
  ::closedir(d);
  return out;
}

}  // namespace ftpwall::daemon
