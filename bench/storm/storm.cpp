// SPDX-License-Identifier: GPL-2.0-or-later
// The announcement storm of issue 13: a load where the FTP helper on the gateway, not the peers, is
// the bottleneck, and whole sessions through it. One program, four roles (epoll, non-blocking, one
// thread each):
//
//   storm server --listen IP:PORT --announce IP
//       greets every connection with 220 and answers each line at once: PASV -> 227 (the --announce
//       address, a port of the connection's own), EPSV -> 229, PORT/EPRT -> 200, QUIT -> 221 and close,
//       anything else -> 500. No data connection is ever made. Runs until killed. SO_REUSEPORT:
//       several servers on one address share its connections.
//   storm client --server IP:PORT --cmd pasv|epsv|port --conns N --seconds T [--self IP]
//                [--expect-addr A,B,C,D] [--src IP[,IP...]]
//       N control connections, each with exactly one command outstanding, for T seconds after all N
//       were greeted; prints key=value lines: announcements, rate (per second), p50_us, p99_us
//       (client-side send -> reply of each announcement), errors, unexpected_addr (227 replies whose
//       address is not --expect-addr: an unrewritten 227 behind DNAT).
//   storm server --data --listen IP:PORT --announce IP [--payload BYTES]
//       the responder of whole sessions: 220, USER -> 331, PASS -> 230, TYPE -> 200; PASV/EPSV listen
//       on an ephemeral port of the control connection's own address (227 names --announce); PORT
//       is connected back to on RETR; RETR -> 150, BYTES (default 65536) of a fixed pseudo-random
//       pattern over the data connection, its close, then 226; QUIT -> 221, and the close once the
//       client has closed (the client closes first and holds the TIME_WAIT: a client port that comes
//       back never meets a TIME_WAIT socket of ours).
//   storm sessions --server IP:PORT --cmd pasv|epsv|port --conns C --seconds T [--payload BYTES]
//                  [--self IP] [--expect-addr A,B,C,D] [--stall S] [--src IP[,IP...]]
//       C workers, each doing whole sessions one after another for T seconds: connect, 220, USER,
//       PASS, PASV (EPSV; PORT with a listener on --self), the data connection to the address the
//       227 names (trusted, as clients do; EPSV: the server's address), RETR, every byte checked
//       against the pattern and the length at the data connection's end, 226, QUIT, 221, close.
//       Prints key=value lines: sessions (completed within T), rate, p50_us/p99_us of a session's
//       time, errors (failed sessions: wrong reply, refused or stalled for S seconds (5), wrong
//       payload), unexpected_addr (227s not naming --expect-addr), bytes, late/unfinished (in flight
//       at T: finished within S + 1 seconds more, uncounted / abandoned then).
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
bool read_lines(int fd, std::string& in, F&& on_line) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      in.append(buf, static_cast<std::size_t>(n));
      std::size_t pos;
      while ((pos = in.find('\n')) != std::string::npos) {
        std::string line = in.substr(0, pos);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        in.erase(0, pos + 1);
        if (!on_line(line)) return false;
      }
      if (static_cast<std::size_t>(n) < sizeof buf) return true;
      continue;
    }
    if (n == 0) return false;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}
template <class F>
bool read_lines(Conn& c, F&& on_line) {
  return read_lines(c.fd, c.in, on_line);
}

bool send_all(int fd, std::string_view s) {  // control lines are tiny: the socket buffer takes them
  return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
}

std::uint16_t conn_port(const Conn& c) { return static_cast<std::uint16_t>(10000 + 4 * (c.index % 12000) + c.count % 4); }

// The responders' control-port listener: non-blocking, SO_REUSEPORT so that several servers on one
// port share the connections (a process may hold only so many files).
int control_listener(const std::string& listen_at) {
  const sockaddr_in la = parse_ep(listen_at);
  const int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(ls, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(ls, reinterpret_cast<const sockaddr*>(&la), sizeof la) != 0) die("bind " + listen_at);
  if (listen(ls, 65535) != 0) die("listen");
  return ls;
}

// "h1,h2,h3,h4" of the address a 227 announces.
std::string pasv_address(const std::string& announce) {
  const sockaddr_in an = parse_ep(announce);
  const auto* ab = reinterpret_cast<const unsigned char*>(&an.sin_addr);
  char addr227[32];
  std::snprintf(addr227, sizeof addr227, "%u,%u,%u,%u", ab[0], ab[1], ab[2], ab[3]);
  return addr227;
}

// --- server ---------------------------------------------------------------------------------------

int run_server(const std::string& listen_at, const std::string& announce) {
  raise_nofile();
  const int ls = control_listener(listen_at);
  const std::string addr227 = pasv_address(announce);
  int one = 1;
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
          std::snprintf(out, sizeof out, "227 Entering Passive Mode (%s,%u,%u).\r\n", addr227.c_str(), p >> 8, p & 0xff);
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

// --src IP[,IP...]: the client's source addresses (several queues: the kernel spreads connections
// by their address pair, so one source address would put every connection in one queue).
std::vector<sockaddr_in> parse_sources(const std::string& srcs) {
  std::vector<sockaddr_in> src;
  for (std::size_t pos = 0; pos <= srcs.size();) {
    const auto comma = srcs.find(',', pos);
    const std::string one = srcs.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (!one.empty()) src.push_back(parse_ep(one));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return src;
}

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
               const std::string& expect_addr, const std::string& srcs) {
  const std::vector<sockaddr_in> src = parse_sources(srcs);
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
    cs[i].fd = connect_to(srv, src.empty() ? nullptr : &src[i % src.size()]);
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
  const std::vector<sockaddr_in> src = parse_sources(srcs);
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

// --- whole sessions: the responder with data, and the sessions client ------------------------------

// The payload both sides know: deterministic bytes (xorshift64), so the client checks every byte
// it receives, in order, against the same buffer, and the length at the data connection's end.
std::vector<unsigned char> make_payload(std::size_t n) {
  std::vector<unsigned char> v(n);
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<unsigned char>(x >> 29);
  }
  return v;
}

bool parse_227(const std::string& line, sockaddr_in& to, std::string& addr_commas) {
  const auto open = line.find('(');
  if (open == std::string::npos) return false;
  unsigned h[4], p[2];
  if (std::sscanf(line.c_str() + open + 1, "%u,%u,%u,%u,%u,%u", &h[0], &h[1], &h[2], &h[3], &p[0], &p[1]) != 6) return false;
  for (unsigned v : h)
    if (v > 255) return false;
  if (p[0] > 255 || p[1] > 255) return false;
  to = {};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = htonl(h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3]);
  to.sin_port = htons(static_cast<std::uint16_t>(p[0] << 8 | p[1]));
  addr_commas = std::to_string(h[0]) + "," + std::to_string(h[1]) + "," + std::to_string(h[2]) + "," + std::to_string(h[3]);
  return true;
}

// A listener for one data connection on a port of our own choosing: the next of [lo, hi) in turn,
// SO_REUSEADDR (the data connections inherit it). Not bind(port 0): every data connection closed
// first on this side leaves a TIME_WAIT on its port, and the kernel's search for a free port walks
// past all of them (with SO_REUSEADDR it keeps to half the range): after ~25 000 sessions the
// responder spent its time in bind(). An explicit port is taken over its TIME_WAITs at once.
int data_listener(sockaddr_in a, std::uint32_t& next, std::uint32_t lo, std::uint32_t hi) {
  const int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (l < 0) return -1;
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  for (int tries = 0; tries < 256; ++tries) {
    a.sin_port = htons(static_cast<std::uint16_t>(lo + next++ % (hi - lo)));
    if (bind(l, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0 && listen(l, 4) == 0) return l;
  }
  close(l);
  return -1;
}

bool parse_port_arg(const std::string& line, sockaddr_in& to) {  // "PORT h1,h2,h3,h4,p1,p2"
  const auto sp = line.find(' ');
  if (sp == std::string::npos) return false;
  std::string a = "(" + line.substr(sp + 1);
  std::string ignored;
  return parse_227(a, to, ignored);
}

struct DSess;
struct DEp {  // what an epoll event names: kind 0 the control listener, 1 control, 2 PASV listener, 3 data
  int kind;
  DSess* s;
};
struct DSess {
  DEp ctrl{1, this}, lis{2, this}, data{3, this};
  int fd = -1, lfd = -1, dfd = -1;
  std::string in;
  sockaddr_in local{};    // the control connection's own address: the PASV listener binds it
  sockaddr_in port_to{};  // PORT's address, connected to on RETR
  bool active = false;    // a PORT is pending
  bool retr = false;      // RETR received, its transfer not finished
  bool connecting = false;
  bool sending = false;
  bool quit = false;      // 221 sent: the client closes first (its TIME_WAIT, not ours), then we do
  std::size_t off = 0;
  bool dead = false;
};

int run_data_server(const std::string& listen_at, const std::string& announce, std::size_t payload_size) {
  raise_nofile();
  const std::vector<unsigned char> payload = make_payload(payload_size);
  const int ls = control_listener(listen_at);
  const std::string addr227 = pasv_address(announce);
  int one = 1;
  const int ep = epoll_create1(0);
  DEp lep{0, nullptr};
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &lep;
  epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
  std::vector<DSess*> graveyard;  // freed after the batch of events that may still name them
  std::uint32_t next_port = static_cast<std::uint32_t>(now_ns() / 1000 % 55000);
  auto set_events = [&](int fd, std::uint32_t events, DEp* d, int op) {
    epoll_event e{};
    e.events = events;
    e.data.ptr = d;
    epoll_ctl(ep, op, fd, &e);
  };
  auto close_fd = [&](int& fd) {
    if (fd < 0) return;
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);  // unsent payload still goes out, then the FIN
    fd = -1;
  };
  auto close_data = [&](DSess* s) {
    close_fd(s->lfd);
    close_fd(s->dfd);
    s->connecting = s->sending = false;
    s->off = 0;
  };
  auto kill = [&](DSess* s) {
    if (s->dead) return;
    s->dead = true;
    close_data(s);
    close_fd(s->fd);
    graveyard.push_back(s);
  };
  auto end_transfer = [&](DSess* s, const char* reply) {
    close_data(s);
    s->retr = false;
    if (!send_all(s->fd, reply)) kill(s);
  };
  auto pump = [&](DSess* s) {
    while (s->off < payload.size()) {
      const ssize_t n = ::send(s->dfd, payload.data() + s->off, payload.size() - s->off, MSG_NOSIGNAL);
      if (n > 0) {
        s->off += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // EPOLLOUT brings us back
      end_transfer(s, "426 Connection closed; transfer aborted.\r\n");
      return;
    }
    end_transfer(s, "226 Transfer complete.\r\n");
  };
  auto start_sending = [&](DSess* s) {
    s->sending = true;
    s->off = 0;
    set_events(s->dfd, EPOLLOUT, &s->data, EPOLL_CTL_MOD);
    pump(s);
  };
  std::vector<epoll_event> evs(1024);
  for (;;) {
    const int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      auto* d = static_cast<DEp*>(evs[static_cast<std::size_t>(i)].data.ptr);
      if (d->kind == 0) {
        for (;;) {
          const int fd = accept4(ls, nullptr, nullptr, SOCK_NONBLOCK);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          auto* s = new DSess;
          s->fd = fd;
          socklen_t sl = sizeof s->local;
          getsockname(fd, reinterpret_cast<sockaddr*>(&s->local), &sl);
          set_events(fd, EPOLLIN, &s->ctrl, EPOLL_CTL_ADD);
          if (!send_all(fd, "220 storm ready\r\n")) kill(s);
        }
        continue;
      }
      DSess* s = d->s;
      if (s->dead) continue;
      if (d->kind == 2) {  // the PASV listener: one data connection, then it goes
        const int fd = accept4(s->lfd, nullptr, nullptr, SOCK_NONBLOCK);
        if (fd < 0) continue;
        close_fd(s->lfd);
        close_fd(s->dfd);
        s->dfd = fd;
        set_events(fd, 0, &s->data, EPOLL_CTL_ADD);
        if (s->retr) start_sending(s);
        continue;
      }
      if (d->kind == 3) {
        if (s->connecting) {  // PORT: our connect finished, or failed
          int err = 0;
          socklen_t el = sizeof err;
          getsockopt(s->dfd, SOL_SOCKET, SO_ERROR, &err, &el);
          if (err != 0) {
            end_transfer(s, "425 Can't open data connection.\r\n");
            continue;
          }
          s->connecting = false;
          start_sending(s);
        } else if (s->sending) {
          pump(s);
        } else {
          close_fd(s->dfd);  // closed by the peer before any RETR
        }
        continue;
      }
      const bool alive = read_lines(s->fd, s->in, [&](const std::string& line) {
        if (s->quit) return true;
        char out[160];
        std::string verb = line.substr(0, line.find(' '));
        for (auto& ch : verb) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        if (verb == "USER") {
          std::snprintf(out, sizeof out, "331 Password required.\r\n");
        } else if (verb == "PASS") {
          std::snprintf(out, sizeof out, "230 Logged in.\r\n");
        } else if (verb == "TYPE") {
          std::snprintf(out, sizeof out, "200 Switching to Binary mode.\r\n");
        } else if (verb == "PASV" || verb == "EPSV") {
          close_data(s);
          s->active = false;
          const int l = data_listener(s->local, next_port, 10000, 65000);
          sockaddr_in a{};
          socklen_t al = sizeof a;
          if (l < 0 || getsockname(l, reinterpret_cast<sockaddr*>(&a), &al) != 0) {
            if (l >= 0) close(l);
            std::snprintf(out, sizeof out, "425 Can't open passive connection.\r\n");
          } else {
            s->lfd = l;
            set_events(l, EPOLLIN, &s->lis, EPOLL_CTL_ADD);
            const unsigned p = ntohs(a.sin_port);
            if (verb == "PASV")
              std::snprintf(out, sizeof out, "227 Entering Passive Mode (%s,%u,%u).\r\n", addr227.c_str(), p >> 8, p & 0xff);
            else
              std::snprintf(out, sizeof out, "229 Entering Extended Passive Mode (|||%u|)\r\n", p);
          }
        } else if (verb == "PORT") {
          close_data(s);
          if (parse_port_arg(line, s->port_to)) {
            s->active = true;
            std::snprintf(out, sizeof out, "200 PORT command successful.\r\n");
          } else {
            std::snprintf(out, sizeof out, "501 Bad PORT.\r\n");
          }
        } else if (verb == "RETR") {
          if (!s->active && s->lfd < 0 && s->dfd < 0) {
            std::snprintf(out, sizeof out, "425 Use PORT or PASV first.\r\n");
          } else {
            std::snprintf(out, sizeof out, "150 Opening BINARY mode data connection (%zu bytes).\r\n", payload.size());
            if (!send_all(s->fd, out)) return false;
            s->retr = true;
            if (s->active) {
              s->active = false;
              const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
              if (fd < 0 ||
                  (connect(fd, reinterpret_cast<const sockaddr*>(&s->port_to), sizeof s->port_to) != 0 && errno != EINPROGRESS)) {
                if (fd >= 0) close(fd);
                s->retr = false;
                return send_all(s->fd, "425 Can't open data connection.\r\n");
              }
              s->dfd = fd;
              s->connecting = true;
              set_events(fd, EPOLLOUT, &s->data, EPOLL_CTL_ADD);
            } else if (s->dfd >= 0) {
              start_sending(s);
            }
            return !s->dead;
          }
        } else if (verb == "QUIT") {
          close_data(s);
          s->quit = true;
          return send_all(s->fd, "221 Goodbye.\r\n");
        } else {
          std::snprintf(out, sizeof out, "500 Unknown command.\r\n");
        }
        return send_all(s->fd, out);
      });
      if (!alive) kill(s);
    }
    for (auto* s : graveyard) delete s;
    graveyard.clear();
  }
}

// The sessions client: C workers, each doing whole sessions one after another for T seconds.
struct Worker {
  enum St { Off, Greet, User, Pass, Announce, DataConn, Retr, Transfer, Quit } st = Off;
  int cfd = -1, dfd = -1, lfd = -1;
  std::string in;
  std::uint64_t started = 0, progress = 0, phase = 0;
  std::uint64_t spent[9] = {};  // ns in each state, this session
  std::size_t got = 0;
  bool got226 = false, data_eof = false, done = false;
};

const char* state_name(Worker::St s) {
  static const char* names[] = {"off", "greeting", "USER", "PASS", "announcement", "data connect", "RETR", "transfer", "QUIT"};
  return names[s];
}

int connect_nb(const sockaddr_in& to, const sockaddr_in* src = nullptr) {  // -1 when it cannot even start (no port left ...)
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (src) {
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, reinterpret_cast<const sockaddr*>(src), sizeof *src) != 0) {
      close(fd);
      return -1;
    }
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0 && errno != EINPROGRESS) {
    close(fd);
    return -1;
  }
  return fd;
}

int run_sessions(const std::string& server, const std::string& cmd, int conns, double seconds, const std::string& self,
                 const std::string& expect_addr, std::size_t payload_size, double stall_s, const std::string& srcs) {
  raise_nofile();
  // --src: worker i's control and data connections come from address i mod n (PASV/EPSV only).
  const std::vector<sockaddr_in> src = parse_sources(srcs);
  const auto src_of = [&](std::size_t i) { return src.empty() ? nullptr : &src[i % src.size()]; };
  if (cmd != "pasv" && cmd != "epsv" && cmd != "port") {
    errno = 0;
    die("--cmd pasv|epsv|port");
  }
  const sockaddr_in srv = parse_ep(server);
  const sockaddr_in self_a = parse_ep(self);
  std::string self_commas = self;
  std::replace(self_commas.begin(), self_commas.end(), '.', ',');
  const std::vector<unsigned char> payload = make_payload(payload_size);
  const int ep = epoll_create1(0);
  std::vector<Worker> ws(static_cast<std::size_t>(conns));
  // epoll names a worker and which of its sockets: index * 4 + 0 control, 1 data, 2 PORT listener
  auto add = [&](int fd, std::uint32_t events, std::size_t w, int k, int op = EPOLL_CTL_ADD) {
    epoll_event e{};
    e.events = events;
    e.data.u64 = w * 4 + static_cast<std::uint64_t>(k);
    epoll_ctl(ep, op, fd, &e);
  };
  auto close_fd = [&](int& fd) {
    if (fd < 0) return;
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    fd = -1;
  };
  std::vector<std::uint32_t> lat;
  lat.reserve(1 << 20);
  std::uint64_t sessions = 0, errors = 0, unexpected = 0, late = 0, bytes = 0, shown = 0;
  std::uint64_t t0 = 0, t_end = 0;
  bool stopping = false;
  // Where a completed session's time went, summed over the sessions counted (a slow step shows here).
  std::uint64_t phase_sum[9] = {};
  auto enter = [&](Worker& w, Worker::St st) {
    const std::uint64_t t = now_ns();
    w.spent[w.st] += t - w.phase;
    w.phase = t;
    w.st = st;
  };
  auto stop_worker = [&](Worker& w) {
    close_fd(w.dfd);
    close_fd(w.lfd);
    close_fd(w.cfd);
    w.st = Worker::Off;
  };
  // A worker that ends a session (done or failed) is Off until the batch of events is through, and
  // starts its next session then: no event of the batch can reach the new one's sockets.
  std::vector<std::size_t> restart;
  std::uint32_t next_port = 0;  // the PORT listeners' ports, in turn
  auto fail = [&](std::size_t i, const std::string& why) {
    Worker& w = ws[i];
    ++errors;
    if (shown++ < 5) std::fprintf(stderr, "storm sessions: worker %zu, %s: %s\n", i, state_name(w.st), why.c_str());
    stop_worker(w);
    restart.push_back(i);
  };
  auto start = [&](std::size_t i) {
    Worker& w = ws[i];
    if (stopping) return;
    w = Worker{};
    w.started = w.progress = w.phase = now_ns();
    w.cfd = connect_nb(srv, src_of(i));
    if (w.cfd < 0) {
      ++errors;
      if (shown++ < 5) std::fprintf(stderr, "storm sessions: worker %zu: connect: %s\n", i, std::strerror(errno));
      return;  // the stall check restarts it
    }
    w.st = Worker::Greet;
    add(w.cfd, EPOLLIN, i, 0);
  };
  auto send_ctl = [&](std::size_t i, const std::string& line) {
    if (!send_all(ws[i].cfd, line)) {
      fail(i, "send: " + std::string(std::strerror(errno)));
      return false;
    }
    return true;
  };
  auto data_connect = [&](std::size_t i, const sockaddr_in& to) {
    Worker& w = ws[i];
    w.dfd = connect_nb(to, src_of(i));
    if (w.dfd < 0) return fail(i, "data connect: " + std::string(std::strerror(errno)));
    enter(w, Worker::DataConn);
    add(w.dfd, EPOLLOUT, i, 1);
  };
  auto transfer_done = [&](std::size_t i) {  // the payload whole and the 226: QUIT
    Worker& w = ws[i];
    if (w.got != payload.size()) return fail(i, "payload " + std::to_string(w.got) + " bytes, not " + std::to_string(payload.size()));
    bytes += w.got;
    enter(w, Worker::Quit);
    send_ctl(i, "QUIT\r\n");
  };
  auto on_line = [&](std::size_t i, const std::string& line) -> bool {  // false: the worker was stopped
    Worker& w = ws[i];
    w.progress = now_ns();
    if (line.size() >= 4 && line[3] == '-') return true;  // a continuation line
    auto is = [&](const char* code) { return line.rfind(code, 0) == 0; };
    switch (w.st) {
      case Worker::Greet:
        if (!is("220")) break;
        enter(w, Worker::User);
        return send_ctl(i, "USER anonymous\r\n");
      case Worker::User:
        if (!is("331") && !is("230")) break;
        if (is("331")) {
          enter(w, Worker::Pass);
          return send_ctl(i, "PASS storm@\r\n");
        }
        [[fallthrough]];
      case Worker::Pass: {
        if (!is("230")) break;
        enter(w, Worker::Announce);
        if (cmd == "pasv") return send_ctl(i, "PASV\r\n");
        if (cmd == "epsv") return send_ctl(i, "EPSV\r\n");
        // Below the ephemeral range (the harness sets 10000-65000): no control connection's port.
        w.lfd = data_listener(self_a, next_port, 2000, 10000);
        sockaddr_in a{};
        socklen_t al = sizeof a;
        if (w.lfd < 0 || getsockname(w.lfd, reinterpret_cast<sockaddr*>(&a), &al) != 0) {
          fail(i, "PORT listener: " + std::string(std::strerror(errno)));
          return false;
        }
        add(w.lfd, EPOLLIN, i, 2);
        const unsigned p = ntohs(a.sin_port);
        return send_ctl(i, "PORT " + self_commas + "," + std::to_string(p >> 8) + "," + std::to_string(p & 0xff) + "\r\n");
      }
      case Worker::Announce: {
        if (cmd == "port") {
          if (!is("200")) break;
          enter(w, Worker::Retr);
          return send_ctl(i, "RETR storm.bin\r\n");
        }
        sockaddr_in to{};
        if (cmd == "pasv") {
          std::string commas;
          if (!is("227") || !parse_227(line, to, commas)) break;
          if (!expect_addr.empty() && commas != expect_addr && unexpected++ < 3)  // trusted all the same
            std::fprintf(stderr, "storm sessions: worker %zu: a 227 not naming %s: %s\n", i, expect_addr.c_str(), line.c_str());
        } else {
          const auto bar = line.find("|||");
          if (!is("229") || bar == std::string::npos) break;
          to = srv;
          to.sin_port = htons(static_cast<std::uint16_t>(std::strtoul(line.c_str() + bar + 3, nullptr, 10)));
        }
        data_connect(i, to);
        return w.st != Worker::Off;
      }
      case Worker::Retr:
        if (!is("150") && !is("125")) break;
        enter(w, Worker::Transfer);
        return true;
      case Worker::Transfer:
        if (!is("226")) break;
        w.got226 = true;
        if (w.data_eof) transfer_done(i);
        return w.st != Worker::Off;
      case Worker::Quit: {
        if (!is("221")) break;
        const std::uint64_t at = now_ns();
        if (at <= t_end) {
          ++sessions;
          w.spent[Worker::Quit] += at - w.phase;
          for (int k = 0; k < 9; ++k) phase_sum[k] += w.spent[k];
          lat.push_back(static_cast<std::uint32_t>(std::min<std::uint64_t>((at - w.started) / 1000, UINT32_MAX)));
        } else {
          ++late;
        }
        stop_worker(w);
        restart.push_back(i);
        return false;
      }
      default:
        break;
    }
    fail(i, "unexpected reply \"" + line.substr(0, 80) + "\"");
    return false;
  };
  auto on_data = [&](std::size_t i) {
    Worker& w = ws[i];
    static thread_local std::vector<unsigned char> buf(1 << 16);
    for (;;) {
      const ssize_t n = ::read(w.dfd, buf.data(), buf.size());
      if (n > 0) {
        w.progress = now_ns();
        const auto k = static_cast<std::size_t>(n);
        if (w.got + k > payload.size()) return fail(i, "payload longer than " + std::to_string(payload.size()) + " bytes");
        if (std::memcmp(buf.data(), payload.data() + w.got, k) != 0)
          return fail(i, "payload differs within bytes " + std::to_string(w.got) + ".." + std::to_string(w.got + k));
        w.got += k;
        continue;
      }
      if (n == 0) {
        w.data_eof = true;
        close_fd(w.dfd);
        if (w.got226) transfer_done(i);
        return;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      return fail(i, "data read: " + std::string(std::strerror(errno)));
    }
  };

  t0 = now_ns();
  t_end = t0 + static_cast<std::uint64_t>(seconds * 1e9);
  for (std::size_t i = 0; i < ws.size(); ++i) start(i);
  const std::uint64_t stall = static_cast<std::uint64_t>(stall_s * 1e9);
  // Sessions in flight at the end may finish (uncounted), or stall long enough to count as errors.
  const std::uint64_t drain_end = t_end + stall + 1'000'000'000ull;
  std::vector<epoll_event> evs(1024);
  std::uint64_t last_scan = t0;
  for (;;) {
    const int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 50);
    const std::uint64_t now = now_ns();
    if (!stopping && now >= t_end) stopping = true;
    for (int e = 0; e < n; ++e) {
      const std::uint64_t tag = evs[static_cast<std::size_t>(e)].data.u64;
      const std::size_t i = tag / 4;
      const int k = static_cast<int>(tag % 4);
      Worker& w = ws[i];
      if (w.st == Worker::Off) continue;
      if (k == 0) {
        if (w.cfd < 0) continue;
        const int fd = w.cfd;
        const bool alive = read_lines(fd, w.in, [&](const std::string& line) { return on_line(i, line); });
        if (!alive && w.cfd == fd && w.st != Worker::Off) fail(i, "control connection closed");
      } else if (k == 1) {
        if (w.dfd < 0) continue;
        if (w.st == Worker::DataConn) {
          int err = 0;
          socklen_t el = sizeof err;
          getsockopt(w.dfd, SOL_SOCKET, SO_ERROR, &err, &el);
          if (err != 0) {
            fail(i, "data connect: " + std::string(std::strerror(err)));
            continue;
          }
          add(w.dfd, EPOLLIN, i, 1, EPOLL_CTL_MOD);
          enter(w, Worker::Retr);
          w.progress = now;
          if (!send_ctl(i, "RETR storm.bin\r\n")) continue;
        }
        on_data(i);
      } else {
        if (w.lfd < 0) continue;
        const int fd = accept4(w.lfd, nullptr, nullptr, SOCK_NONBLOCK);
        if (fd < 0) continue;
        close_fd(w.lfd);
        w.dfd = fd;
        add(fd, EPOLLIN, i, 1);
        on_data(i);
      }
    }
    for (const std::size_t i : restart) start(i);
    restart.clear();
    if (now - last_scan > 100'000'000ull) {  // stalled sessions (a data SYN nobody admitted ...)
      last_scan = now;
      for (std::size_t i = 0; i < ws.size(); ++i) {
        if (ws[i].st == Worker::Off) {
          start(i);  // a connect that could not start
        } else if (now > ws[i].progress + stall) {
          fail(i, "stalled for " + std::to_string(stall_s) + " s");
        }
      }
    }
    if (stopping) {
      const bool idle = std::all_of(ws.begin(), ws.end(), [](const Worker& w) { return w.st == Worker::Off; });
      if (idle || now >= drain_end) break;
    }
  }
  std::uint64_t unfinished = 0;
  for (auto& w : ws)
    if (w.st != Worker::Off) {
      ++unfinished;
      stop_worker(w);
    }
  const double wall = seconds;
  std::printf("conns=%d\nseconds=%.3f\nsessions=%llu\nrate=%.0f\np50_us=%.0f\np99_us=%.0f\nerrors=%llu\n"
              "unexpected_addr=%llu\npayload=%zu\nbytes=%llu\nlate=%llu\nunfinished=%llu\n",
              conns, wall, static_cast<unsigned long long>(sessions), static_cast<double>(sessions) / wall, pct(lat, 0.50),
              pct(lat, 0.99), static_cast<unsigned long long>(errors), static_cast<unsigned long long>(unexpected),
              payload.size(), static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(late),
              static_cast<unsigned long long>(unfinished));
  std::printf("phases_us=");  // mean per session: connect+220, USER, PASS, announcement, data connect, RETR->150, transfer+226, QUIT->221
  for (int k = 1; k < 9; ++k)
    std::printf("%s%s:%.0f", k > 1 ? "," : "", state_name(static_cast<Worker::St>(k)),
                sessions ? static_cast<double>(phase_sum[k]) / 1e3 / static_cast<double>(sessions) : 0.0);
  std::printf("\n");
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
    std::fprintf(stderr, "usage: storm server|client|sessions|idle ... (see the source's header)\n");
    return 2;
  }
  const std::string role = argv[1];
  if (role == "server") {
    bool data = false;
    for (int i = 2; i < argc; ++i) data = data || std::strcmp(argv[i], "--data") == 0;
    if (data)
      return run_data_server(arg(argc, argv, "--listen", nullptr), arg(argc, argv, "--announce", nullptr),
                             std::stoul(arg(argc, argv, "--payload", "65536")));
    return run_server(arg(argc, argv, "--listen", nullptr), arg(argc, argv, "--announce", nullptr));
  }
  if (role == "sessions")
    return run_sessions(arg(argc, argv, "--server", nullptr), arg(argc, argv, "--cmd", "pasv"),
                        std::stoi(arg(argc, argv, "--conns", "32")), std::stod(arg(argc, argv, "--seconds", "5")),
                        arg(argc, argv, "--self", "0.0.0.0"), arg(argc, argv, "--expect-addr", ""),
                        std::stoul(arg(argc, argv, "--payload", "65536")), std::stod(arg(argc, argv, "--stall", "5")),
                        arg(argc, argv, "--src", ""));
  if (role == "client")
    return run_client(arg(argc, argv, "--server", nullptr), arg(argc, argv, "--cmd", "pasv"),
                      std::stoi(arg(argc, argv, "--conns", "64")), std::stod(arg(argc, argv, "--seconds", "5")),
                      arg(argc, argv, "--self", "0.0.0.0"), arg(argc, argv, "--expect-addr", ""),
                      arg(argc, argv, "--src", ""));
  if (role == "idle")
    return run_idle(arg(argc, argv, "--server", nullptr), std::stoi(arg(argc, argv, "--conns", "1000")),
                    arg(argc, argv, "--src", nullptr), std::stod(arg(argc, argv, "--hold", "600")));
  std::fprintf(stderr, "storm: unknown role %s\n", role.c_str());
  return 2;
}
