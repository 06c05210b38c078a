// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/state_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ftpwall::daemon {
namespace {

Error sys_error(const std::string& what) { return make_error(what + ": " + std::strerror(errno)); }

}  // namespace

Result<void> StateDir::prepare() const {
  if (::mkdir(path_.c_str(), 0700) == 0 || errno == EEXIST) {
    struct stat st{};
    if (::stat(path_.c_str(), &st) != 0) return sys_error("state directory " + path_);
    if (!S_ISDIR(st.st_mode)) return make_error("state directory " + path_ + ": not a directory");
    return {};
  }
  return sys_error("state directory " + path_);
}

Result<void> StateDir::save(const SessionRecord& r) const {
  const std::string text = format_session_record(r);
  const std::string final_name = file(r.ct_id);
  const std::string tmp = final_name + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return sys_error("writing " + tmp);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto e = sys_error("writing " + tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return e;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) return sys_error("writing " + tmp);
  if (::rename(tmp.c_str(), final_name.c_str()) != 0) return sys_error("renaming " + tmp);
  return {};
}

void StateDir::remove(std::uint32_t ct_id) const { ::unlink(file(ct_id).c_str()); }

std::vector<std::pair<std::string, Result<SessionRecord>>> StateDir::load_all() const {
  std::vector<std::pair<std::string, Result<SessionRecord>>> out;
  DIR* d = ::opendir(path_.c_str());
  if (!d) return out;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    constexpr std::string_view suffix = ".session";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    const std::string path = path_ + "/" + name;
    std::string text;
    bool too_big = false;
    if (std::FILE* f = std::fopen(path.c_str(), "re")) {
      char buf[4096];
      std::size_t n;
      while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        text.append(buf, n);
        if (text.size() > max_record_bytes) {
          too_big = true;
          break;
        }
      }
      std::fclose(f);
    } else {
      out.emplace_back(path, sys_error("reading " + path));
      continue;
    }
    if (too_big)
      out.emplace_back(path, make_error("larger than " + std::to_string(max_record_bytes) + " bytes"));
    else
      out.emplace_back(path, parse_session_record(text));
  }
  ::closedir(d);
  return out;
}

}  // namespace ftpwall::daemon
