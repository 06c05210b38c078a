// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/control.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <span>

namespace ftpwall::daemon {
namespace {
constexpr std::size_t max_clients = 16;
constexpr std::size_t max_request = 256;
constexpr auto client_time = std::chrono::seconds(2);
}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::open(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof sa.sun_path) return make_error("control socket " + path + ": path too long");
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return make_error("control socket " + path + ": exists and is not a socket");
    ::unlink(path.c_str());  // an earlier instance's
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return make_error(std::string("control socket: ") + std::strerror(errno));
  const mode_t old = ::umask(077);  // root only: the socket file is created 0600
  const int b = ::bind(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  const int err = errno;
  ::umask(old);
  if (b == 0) ::chmod(path.c_str(), 0600);
  if (b < 0 || ::listen(fd, 8) < 0) {
    const int e = b < 0 ? err : errno;
    ::close(fd);
    return make_error("control socket " + path + ": " + std::strerror(e));
  }
  return std::unique_ptr<ControlServer>(new ControlServer(fd, path));
}

ControlServer::~ControlServer() {
  for (auto& c : clients_) ::close(c.fd);
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
}

void ControlServer::poll_fds(std::vector<pollfd>& out) const {
  out.push_back({fd_, POLLIN, 0});
  for (const auto& c : clients_) out.push_back({c.fd, static_cast<short>(c.answered ? POLLOUT : POLLIN), 0});
}

void ControlServer::accept_all() {
  for (;;) {
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) return;  // EAGAIN, or an error the next poll shows again
    if (clients_.size() >= max_clients) {
      ::close(c);
      continue;
    }
    clients_.push_back(Client{c, {}, {}, 0, false, Clock::now() + client_time});
  }
}

bool ControlServer::on_client(Client& c, short revents, const Answer& answer) {
  if (revents & (POLLERR | POLLNVAL)) return false;
  if (!c.answered && (revents & (POLLIN | POLLHUP))) {
    char buf[max_request];
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) {
      if (c.in.empty()) return false;
    } else if (n > 0) {
      c.in.append(buf, static_cast<std::size_t>(n));
    }
    const auto nl = c.in.find('\n');
    if (nl == std::string::npos && c.in.size() < max_request && n > 0) return true;  // more to come
    std::string_view request(c.in.data(), nl == std::string::npos ? c.in.size() : nl);
    while (!request.empty() && (request.back() == '\r' || request.back() == ' ')) request.remove_suffix(1);
    c.out = answer(request);
    c.answered = true;
  }
  if (c.answered) {
    while (c.sent < c.out.size()) {
      const ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n < 0) return errno == EAGAIN || errno == EINTR;
      c.sent += static_cast<std::size_t>(n);
    }
    return false;  // all written: close
  }
  return true;
}

void ControlServer::on_events(std::span<const pollfd> fds, const Answer& answer) {
  if (fds.empty()) return;
  // Clients first (their entries follow the listening socket's, in order), then new ones.
  std::vector<Client> keep;
  for (std::size_t i = 0; i < clients_.size(); ++i) {
    Client& c = clients_[i];
    const short rev = i + 1 < fds.size() && fds[i + 1].fd == c.fd ? fds[i + 1].revents : 0;
    if (rev == 0 || on_client(c, rev, answer)) {
      keep.push_back(std::move(c));
    } else {
      ::close(c.fd);
    }
  }
  clients_ = std::move(keep);
  if (fds[0].revents & POLLIN) accept_all();
}

void ControlServer::expire(Clock::time_point now) {
  std::erase_if(clients_, [&](const Client& c) {
    if (now < c.deadline) return false;
    ::close(c.fd);
    return true;
  });
}

}  // namespace ftpwall::daemon
