// SPDX-License-Identifier: GPL-2.0-or-later
// ftpwalld(8): options, configuration, start-up; the work is in daemon.cpp.
//   ftpwalld [-c FILE] [--foreground] [--log-level L] [--queue N] [--user NAME]   run
//   ftpwalld --check-config [-c FILE]                               load, check, exit 0 or 2
//   ftpwalld --cleanup                                              remove every ftpwall rule, exit
// Exit status: 0 ok, 1 runtime failure (kernel interfaces), 2 bad configuration or options.
#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "daemon/daemon.hpp"
#include "daemon/privileges.hpp"
#include "firewall/iptc_backend.hpp"

using namespace ftpwall;

namespace {

std::optional<config::LogLevel> parse_level(const std::string& s) {
  for (auto l : {config::LogLevel::trace, config::LogLevel::debug, config::LogLevel::info, config::LogLevel::warn,
                 config::LogLevel::error, config::LogLevel::critical, config::LogLevel::off}) {
    if (config::name(l) == s) return l;
  }
  return std::nullopt;
}

// Not --foreground: fork now, before any thread exists; the parent waits for the child's start-up
// to succeed or fail and exits with that status (chrony does the same), so an init script sees
// the real result. Returns the write end of the pipe in the child, -1 with --foreground.
int detach() {
  int p[2];
  if (::pipe(p) < 0) return -1;
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid > 0) {
    ::close(p[1]);
    unsigned char status = 1;
    if (::read(p[0], &status, 1) != 1) status = 1;
    std::_Exit(status);
  }
  ::close(p[0]);
  ::setsid();
  return p[1];
}

void report(int fd, unsigned char status) {
  if (fd < 0) return;
  (void)!::write(fd, &status, 1);
  ::close(fd);
  if (status == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      ::close(null);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ftpwalld: FTP data connections through a netfilter firewall, one opening at a time", "ftpwalld"};
  std::string config_path, level, ready, state_dir = "/run/ftpwalld", user, control_socket;
  int queue = -1, queues = -1;
  bool check = false, cleanup = false, foreground = false;
  // Option groups, in the order --help shows them.
  const std::string configuration = "Configuration", running = "Running", once = "Instead of running";
  app.add_option("-c,--config", config_path,
                 "configuration file, ftpwall.conf(5) (default: /etc/ftpwall/ftpwalld.conf if present, else built-in defaults)")
      ->type_name("FILE")
      ->group(configuration);
  app.add_option("--log-level", level,
                 "trace, debug, info, warn, error, critical or off; overrides log_level (default: the configuration's, info)")
      ->type_name("LEVEL")
      ->group(configuration);
  app.add_option("--queue", queue, "NFQUEUE number 0-65535; overrides queue.number (default: the configuration's, 0)")
      ->check(CLI::Range(0, 65535).description(""))
      ->type_name("N")
      ->group(configuration);
  app.add_option("--queues", queues,
                 "read N queues (--queue-balance), one thread each; nftables backend only; overrides queue.count "
                 "(default: the configuration's, 1)")
      ->check(CLI::Range(1, 64).description(""))
      ->type_name("N")
      ->group(configuration);
  app.add_flag("--foreground", foreground, "do not detach (systemd, tests) (default: detach once started)")->group(running);
  app.add_option("--user", user,
                 "run as this user (and its primary group) once the kernel interfaces are open, keeping only CAP_NET_ADMIN "
                 "and CAP_NET_RAW (default: stay the user that started it)")
      ->type_name("USER")
      ->group(running);
  app.add_option("--state-dir", state_dir, "where sessions with corrections are recorded across restarts (default: /run/ftpwalld)")
      ->type_name("DIR")
      ->group(running);
  app.add_option("--control-socket", control_socket,
                 "the socket `ftpwall status` asks, root only (default: STATE_DIR/control, /run/ftpwalld/control)")
      ->type_name("PATH")
      ->group(running);
  app.add_option("--ready-file", ready, "write the pid to FILE once the hooks are in place (default: none)")
      ->type_name("FILE")
      ->group(running);
  app.add_flag("--check-config", check, "load the configuration, compare it with the kernel's steering rules, exit")->group(once);
  app.add_flag("--cleanup", cleanup, "remove every ftpwall hook, chain and rule, then exit (ExecStopPost=)")->group(once);
  app.set_version_flag("--version", std::string("ftpwalld ") + FTPWALL_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "ftpwalld: %s\n", e.what());
    return 2;
  }

  daemon::Options opts;
  if (!config_path.empty()) opts.config_path = config_path;
  if (!level.empty()) {
    opts.log_level = parse_level(level);
    if (!opts.log_level) {
      std::fprintf(stderr, "ftpwalld: --log-level: %s is not one of trace debug info warn error critical off\n", level.c_str());
      return 2;
    }
  }
  if (queue >= 0) opts.queue = static_cast<std::uint16_t>(queue);
  if (queues >= 0) opts.queues = static_cast<std::uint16_t>(queues);
  opts.foreground = foreground;
  opts.ready_file = ready;
  opts.state_dir = state_dir;
  opts.control_socket = control_socket;

  if (cleanup) {
    auto r = daemon::Daemon::cleanup();
    if (!r) {
      std::fprintf(stderr, "ftpwalld: cleanup: %s\n", r.error().message.c_str());
      return 1;
    }
    return 0;
  }

  auto cfg = config::load(opts.config_path);
  if (!cfg) {
    std::fprintf(stderr, "ftpwalld: %s\n", cfg.error().message.c_str());
    return 2;
  }
  if (opts.log_level) cfg->log_level = *opts.log_level;
  if (opts.queue) cfg->queue.number = *opts.queue;
  if (opts.queues) cfg->queue.count = *opts.queues;
  if (cfg->queue.number + cfg->queue.count - 1 > config::bounds::max_queue_number) {
    std::fprintf(stderr, "ftpwalld: queues %u .. %u go past 65535\n", unsigned{cfg->queue.number},
                 unsigned{cfg->queue.number} + cfg->queue.count - 1);
    return 2;
  }
  if (const std::string why = config::queue_count_conflict(*cfg); !why.empty()) {
    std::fprintf(stderr, "ftpwalld: %s: queue.count = %u: %s\n", cfg->source.c_str(), unsigned{cfg->queue.count}, why.c_str());
    return 2;
  }

  if (!check && !user.empty()) {
    // Resolved now, changed to in Daemon::start after the sockets are open (privileges.hpp). The
    // root-only xtables lock is opened first and kept: that user could not open it per commit.
    auto who = daemon::lookup_user(user);
    if (!who) {
      std::fprintf(stderr, "ftpwalld: %s\n", who.error().message.c_str());
      return 2;
    }
    if (auto r = firewall::keep_xtables_lock_open(); !r) {
      std::fprintf(stderr, "ftpwalld: --user %s: %s\n", user.c_str(), r.error().message.c_str());
      return 1;
    }
    daemon::set_run_as(std::move(*who));
  }

  if (check) {
    // The steering rules (ours or the admin's) must name the configured queue and bypass setting:
    // otherwise packets go to a queue nobody reads, or the bypass the admin expects is not there.
    const auto r = daemon::Daemon::check_steering(*cfg);
    if (!r.disagreement.empty()) {
      std::fprintf(stderr, "ftpwalld: %s: %s\n", cfg->source.c_str(), r.disagreement.c_str());
      return 2;
    }
    if (!r.unreadable.empty()) {
      std::printf("%s: configuration ok (steering rules not checked: %s)\n", cfg->source.c_str(), r.unreadable.c_str());
      return 0;
    }
    std::printf("%s: configuration ok\n", cfg->source.c_str());
    return 0;
  }

  // Signals are read from a signalfd in the poll loop: block them before any thread exists, so the
  // backend worker inherits the mask and never takes one.
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, s);
  ::sigprocmask(SIG_BLOCK, &mask, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  const int ready_fd = foreground ? -1 : detach();
  log::setup(cfg->log_level);  // synchronous until the privileges are dropped (Daemon::open_kernel)
  auto d = daemon::Daemon::start(std::move(*cfg), std::move(opts));
  if (!d) {
    spdlog::critical("{}", d.error().message);
    spdlog::shutdown();
    report(ready_fd, 1);
    return 1;
  }
  report(ready_fd, 0);
  const int rc = (*d)->run();
  d->reset();
  spdlog::shutdown();  // the logging thread writes what is queued, then ends
  return rc;
}
