// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/mailbox.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

namespace ftpwall::daemon {

Result<std::unique_ptr<Mailbox>> Mailbox::open() {
  const int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return make_error(std::string("eventfd: ") + std::strerror(errno));
  return std::unique_ptr<Mailbox>(new Mailbox(fd));
}

Mailbox::~Mailbox() {
  if (fd_ >= 0) ::close(fd_);
}

bool Mailbox::post(std::function<void()> f) {
  {
    std::lock_guard lock(m_);
    if (closed_) return false;
    work_.push_back(std::move(f));
  }
  const std::uint64_t one = 1;
  (void)!::write(fd_, &one, sizeof one);
  return true;
}

void Mailbox::run() {
  std::uint64_t n;
  (void)!::read(fd_, &n, sizeof n);
  std::vector<std::function<void()>> work;
  {
    std::lock_guard lock(m_);
    work.swap(work_);
  }
  for (auto& f : work) f();
}

void Mailbox::close() {
  std::vector<std::function<void()>> work;
  {
    std::lock_guard lock(m_);
    closed_ = true;
    work.swap(work_);
  }
  for (auto& f : work) f();
}

}  // namespace ftpwall::daemon
