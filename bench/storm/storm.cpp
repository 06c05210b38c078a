// SPDX-License-Identifier: GPL-2.0-or-later
// The announcement storm of issue 13: a load where the FTP helper on the gateway, not the peers, is
// the bottleneck. One program, three roles (epoll, non-blocking, one thread each):
//
//   storm server --listen IP:PORT --announce IP
//       greets every connection with 220 and answers each line at once: PASV -> 227 (the --announce
//       address, a port of the connection's own), EPSV -> 229, PORT/EPRT -> 200, QUIT -> 221 and close,
//       anything else -> 500. No data connection is ever made. Runs until killed. SO_REUSEPORT:
//       several servers on one address share its connections.
//   storm client --server IP:PORT --cmd pasv|epsv|port --conns N --seconds T [--self IP]
//                [--expect-addr A,B,C,D]
//       N control connections, each with exactly one command outstanding, for T seconds after all N
//       were greeted; prints key=value lines: announcements, rate (per second), p50_us, p99_us
//       (client-side send -> reply of each announcement), errors, unexpected_addr (227 replies whose
//       address is not --expect-addr: an unrewritten 227 behind DNAT).
//   storm idle --server IP:PORT --conns N --src IP[,IP...] [--hold S]
//       N connections (round robin over the source addresses), each greeted, then silent; prints
//       "connected=N" once all are greeted and holds them until SIGTERM or S seconds pass.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& m) {
  std::fprintf(stderr, "storm: %s%s%s\n", m.c_str(), errno ? ": " : "", errno ? std::strerror(errno) : "");
  std::exit(1);
}

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

sockaddr_in parse_ep(const std::string& s) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  const auto colon = s.rfind(':');
  const std::string host = colon == std::string::npos ? s : s.substr(0, colon);
  a.sin_port = htons(colon == std::string::npos ? 0 : static_cast<std::uint16_t>(std::stoul(s.substr(colon + 1))));
  if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
    errno = 0;
    die("not an IPv4 address: " + host);
  }
  return a;
}

void raise_nofile() {  // 100 000 idle connections: root may raise the hard limit up to fs.nr_open
  rlimit r{1 << 20, 1 << 20};
  if (setrlimit(RLIMIT_NOFILE, &r) == 0) return;
  r = {1 << 18, 1 << 18};
  if (setrlimit(RLIMIT_NOFILE, &r) == 0) return;
  getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  setrlimit(RLIMIT_NOFILE, &r);
}

struct Conn {
  int fd = -1;
  std::string in;          // bytes of an incomplete line
  std::uint32_t index = 0; // the connection's own ports: 10000 + 4 * index + k
  std::uint32_t count = 0; // announcements so far
  std::uint64_t sent_at = 0;
  bool greeted = false;
};

// Reads what is there; calls on_line for each complete line (without CRLF). false: closed/error.
template <class F>
bool read_lines(Conn& c, F&& on_line) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n > 0) {
      c.in.append(buf, static_cast<std::size_t>(n));
      std::size_t pos;
      while ((pos = c.in.find('\n')) != std::string::npos) {
        std::string line = c.in.substr(0, pos);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        c.in.erase(0, pos + 1);
        if (!on_line(line)) return false;
      }
      if (static_cast<std::size_t>(n) < sizeof buf) return true;
      continue;
    }
    if (n == 0) return false;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

bool send_all(int fd, std::string_view s) {  // control lines are tiny: the socket buffer takes them
  return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
}

std::uint16_t conn_port(const Conn& c) { return static_cast<std::uint16_t>(10000 + 4 * (c.index % 12000) + c.count % 4); }

// --- server ---------------------------------------------------------------------------------------

int run_server(const std::string& listen_at, const std::string& announce) {
  raise_nofile();
  const sockaddr_in la = parse_ep(listen_at);
  const sockaddr_in an = parse_ep(announce);
  const auto* ab = reinterpret_cast<const unsigned char*>(&an.sin_addr);
  char addr227[32];
  std::snprintf(addr227, sizeof addr227, "%u,%u,%u,%u", ab[0], ab[1], ab[2], ab[3]);
  const int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // Several servers on one port share the connections (a process may hold only so many files).
  setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(ls, reinterpret_cast<const sockaddr*>(&la), sizeof la) != 0) die("bind " + listen_at);
  if (listen(ls, 65535) != 0) die("listen");
  const int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  std::uint32_t next_index = 0;
  std::vector<epoll_event> evs(1024);
  for (;;) {
    const int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      if (evs[static_cast<std::size_t>(i)].data.ptr == nullptr) {
        for (;;) {
          const int fd = accept4(ls, nullptr, nullptr, SOCK_NONBLOCK);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          auto* c = new Conn;
          c->fd = fd;
          c->index = next_index++;
          epoll_event e{};
          e.events = EPOLLIN;
          e.data.ptr = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
          send_all(fd, "220 storm ready\r\n");
        }
        continue;
      }
      auto* c = static_cast<Conn*>(evs[static_cast<std::size_t>(i)].data.ptr);
      const bool alive = read_lines(*c, [&](const std::string& line) {
        char out[128];
        std::string verb = line.substr(0, line.find(' '));
        for (auto& ch : verb) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        const std::uint16_t p = conn_port(*c);
        if (verb == "PASV") {
          std::snprintf(out, sizeof out, "227 Entering Passive Mode (%s,%u,%u).\r\n", addr227, p >> 8, p & 0xff);
        } else if (verb == "EPSV") {
          std::snprintf(out, sizeof out, "229 Entering Extended Passive Mode (|||%u|)\r\n", p);
        } else if (verb == "PORT" || verb == "EPRT") {
          std::snprintf(out, sizeof out, "200 PORT command successful.\r\n");
        } else if (verb == "QUIT") {
          send_all(c->fd, "221 Goodbye.\r\n");
          return false;
        } else {
          std::snprintf(out, sizeof out, "500 Unknown command.\r\n");
        }
        ++c->count;
        return send_all(c->fd, out);
      });
      if (!alive) {
        close(c->fd);
        delete c;
      }
    }
  }
}

// --- clients --------------------------------------------------------------------------------------

int connect_to(const sockaddr_in& srv, const sockaddr_in* src) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (src) {
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, reinterpret_cast<const sockaddr*>(src), sizeof *src) != 0) die("bind source");
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&srv), sizeof srv) != 0 && errno != EINPROGRESS) die("connect");
  return fd;
}

std::string command(const std::string& cmd, const Conn& c, const std::string& self_commas) {
  if (cmd == "pasv") return "PASV\r\n";
  if (cmd == "epsv") return "EPSV\r\n";
  const std::uint16_t p = conn_port(c);
  return "PORT " + self_commas + "," + std::to_string(p >> 8) + "," + std::to_string(p & 0xff) + "\r\n";
}

double pct(std::vector<std::uint32_t>& v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

int run_client(const std::string& server, const std::string& cmd, int conns, double seconds, const std::string& self,
               const std::string& expect_addr) {
  raise_nofile();
  if (cmd != "pasv" && cmd != "epsv" && cmd != "port") {
    errno = 0;
    die("--cmd pasv|epsv|port");
  }
  const sockaddr_in srv = parse_ep(server);
  std::string self_commas = self;
  std::replace(self_commas.begin(), self_commas.end(), '.', ',');
  const std::string want_code = cmd == "pasv" ? "227" : cmd == "epsv" ? "229" : "200";
  const int ep = epoll_create1(0);
  std::vector<Conn> cs(static_cast<std::size_t>(conns));
  for (std::size_t i = 0; i < cs.size(); ++i) {
    cs[i].fd = connect_to(srv, nullptr);
    cs[i].index = static_cast<std::uint32_t>(i);
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &e);
  }
  std::vector<std::uint32_t> lat;
  lat.reserve(1 << 22);
  std::uint64_t errors = 0, unexpected = 0, announcements = 0;
  int greeted = 0;
  std::uint64_t t0 = 0, t_end = 0;
  const std::uint64_t greet_deadline = now_ns() + 10'000'000'000ull;
  bool done = false;
  std::vector<epoll_event> evs(1024);
  while (!done) {
    const int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 100);
    const std::uint64_t now = now_ns();
    if (t0 == 0 && now > greet_deadline) {
      errno = 0;
      die("only " + std::to_string(greeted) + " of " + std::to_string(conns) + " connections greeted within 10 s");
    }
    if (t0 != 0 && now >= t_end) break;
    for (int i = 0; i < n; ++i) {
      Conn& c = cs[evs[static_cast<std::size_t>(i)].data.u64];
      const bool alive = read_lines(c, [&](const std::string& line) {
        const std::uint64_t at = now_ns();
        if (!c.greeted) {
          if (line.rfind("220", 0) != 0) return false;
          c.greeted = true;
          if (++greeted == conns) {  // every connection is up: the clock starts, every one sends
            t0 = at;
            t_end = t0 + static_cast<std::uint64_t>(seconds * 1e9);
            for (auto& o : cs) {
              o.sent_at = now_ns();
              send_all(o.fd, command(cmd, o, self_commas));
            }
          }
          return true;
        }
        if (line.rfind(want_code, 0) == 0) {
          ++announcements;
          lat.push_back(static_cast<std::uint32_t>(std::min<std::uint64_t>((at - c.sent_at) / 1000, UINT32_MAX)));
          if (!expect_addr.empty() && cmd == "pasv" && line.find("(" + expect_addr + ",") == std::string::npos) ++unexpected;
        } else {
          ++errors;
        }
        ++c.count;
        if (at >= t_end) {
          done = true;
          return true;
        }
        c.sent_at = now_ns();
        return send_all(c.fd, command(cmd, c, self_commas));
      });
      if (!alive) {
        errno = 0;
        die("a control connection closed or failed during the storm");
      }
    }
  }
  const double wall = static_cast<double>(now_ns() - t0) / 1e9;
  std::printf("conns=%d\nseconds=%.3f\nannouncements=%llu\nrate=%.0f\np50_us=%.0f\np99_us=%.0f\nerrors=%llu\n"
              "unexpected_addr=%llu\n",
              conns, wall, static_cast<unsigned long long>(announcements), static_cast<double>(announcements) / wall,
              pct(lat, 0.50), pct(lat, 0.99), static_cast<unsigned long long>(errors),
              static_cast<unsigned long long>(unexpected));
  for (auto& c : cs) send_all(c.fd, "QUIT\r\n");
  for (auto& c : cs) close(c.fd);
  return 0;
}

int run_idle(const std::string& server, int conns, const std::string& srcs, double hold) {
  raise_nofile();
  const sockaddr_in srv = parse_ep(server);
  std::vector<sockaddr_in> src;
  for (std::size_t pos = 0; pos <= srcs.size();) {
    const auto comma = srcs.find(',', pos);
    const std::string one = srcs.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!one.empty()) src.push_back(parse_ep(one));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (src.empty()) {
    errno = 0;
    die("--src: at least one address");
  }
  const int ep = epoll_create1(0);
  std::vector<Conn> cs(static_cast<std::size_t>(conns));
  int greeted = 0, started = 0;
  const std::uint64_t deadline = now_ns() + 600'000'000'000ull;
  std::vector<epoll_event> evs(1024);
  // Connections in flight at once: no SYN backlog overflow, and (several clients together) fewer
  // packets waiting in the gateway's queue than its max_len (fail-open would let the rest pass unseen).
  constexpr int window = 128;
  while (greeted < conns) {
    while (started < conns && started - greeted < window) {
      auto& c = cs[static_cast<std::size_t>(started)];
      c.fd = connect_to(srv, &src[static_cast<std::size_t>(started) % src.size()]);
      epoll_event e{};
      e.events = EPOLLIN;
      e.data.u64 = static_cast<std::uint64_t>(started);
      epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &e);
      ++started;
    }
    const int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 100);
    if (now_ns() > deadline) {
      errno = 0;
      die("only " + std::to_string(greeted) + " of " + std::to_string(conns) + " greeted within 600 s");
    }
    for (int i = 0; i < n; ++i) {
      Conn& c = cs[evs[static_cast<std::size_t>(i)].data.u64];
      const bool alive = read_lines(c, [&](const std::string& line) {
        if (!c.greeted && line.rfind("220", 0) == 0) {
          c.greeted = true;
          ++greeted;
          epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        }
        return true;
      });
      if (!alive) {
        errno = 0;
        die("connection " + std::to_string(evs[static_cast<std::size_t>(i)].data.u64) + " closed before its 220");
      }
    }
  }
  std::printf("connected=%d\n", greeted);
  std::fflush(stdout);
  // Hold: until the harness stops us (SIGTERM) or the hold time passes.
  const std::uint64_t until = now_ns() + static_cast<std::uint64_t>(hold * 1e9);
  while (now_ns() < until) usleep(100000);
  return 0;
}

std::string arg(int argc, char** argv, const char* name, const char* def) {
  for (int i = 2; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  if (!def) {
    errno = 0;
    die(std::string("missing ") + name);
  }
  return def;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: storm server|client|idle ... (see the source's header)\n");
    return 2;
  }
  const std::string role = argv[1];
  if (role == "server") return run_server(arg(argc, argv, "--listen", nullptr), arg(argc, argv, "--announce", nullptr));
  if (role == "client")
    return run_client(arg(argc, argv, "--server", nullptr), arg(argc, argv, "--cmd", "pasv"),
                      std::stoi(arg(argc, argv, "--conns", "64")), std::stod(arg(argc, argv, "--seconds", "5")),
                      arg(argc, argv, "--self", "0.0.0.0"), arg(argc, argv, "--expect-addr", ""));
  if (role == "idle")
    return run_idle(arg(argc, argv, "--server", nullptr), std::stoi(arg(argc, argv, "--conns", "1000")),
                    arg(argc, argv, "--src", nullptr), std::stod(arg(argc, argv, "--hold", "600")));
  std::fprintf(stderr, "storm: unknown role %s\n", role.c_str());
  return 2;
}
