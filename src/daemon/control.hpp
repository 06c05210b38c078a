// SPDX-License-Identifier: GPL-2.0-or-later
// The control socket (`ftpwall status|sessions|openings`): a UNIX stream socket, root only (mode
// 0600, owned by the daemon's user), answered from the daemon's poll loop without ever delaying a
// verdict: every descriptor is non-blocking, a request is one short line, the answer is built in
// memory at once and written as far as the socket takes it; what is left waits for POLLOUT. A
// client that says nothing within two seconds, or more than 16 at once, is closed (chrony's
// cmdmon keeps its command socket on the same loop the same way).
//   request:  "status\n" | "sessions\n" | "openings\n"
//   answer:   one JSON document, then the daemon closes the connection.
#pragma once

#include <poll.h>

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ftpwall/core/result.hpp"

namespace ftpwall::daemon {

class ControlServer {
 public:
  using Clock = std::chrono::steady_clock;
  using Answer = std::function<std::string(std::string_view request)>;

  // Binds `path` (a stale socket file there is replaced; anything else is an error).
  static Result<std::unique_ptr<ControlServer>> open(const std::string& path);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  const std::string& path() const { return path_; }
  // The descriptors to poll: the listening socket first, then one per client.
  void poll_fds(std::vector<pollfd>& out) const;
  // After poll(): `fds` are the entries poll_fds() added, in that order.
  void on_events(std::span<const pollfd> fds, const Answer& answer);
  // Closes clients past their deadline (the loop's timer).
  void expire(Clock::time_point now);

 private:
  struct Client {
    int fd = -1;
    std::string in;
    std::string out;
    std::size_t sent = 0;
    bool answered = false;
    Clock::time_point deadline;
  };
  ControlServer(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  void accept_all();
  bool on_client(Client& c, short revents, const Answer& answer);  // false: close it

  int fd_ = -1;
  std::string path_;
  std::vector<Client> clients_;
};

}  // namespace ftpwall::daemon
