// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/daemon.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <variant>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "ftpwall/core/packet.hpp"
#include "ftpwall/core/rewrite.hpp"
#include "daemon/notify.hpp"
#include "log/prometheus.hpp"
#include "daemon/privileges.hpp"
#include "netlink/nftables.hpp"

namespace ftpwall::daemon {

namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

// Sessions that ended (221/421, FIN both ways, RST) stay known this long, so that the last ACKs
// and FINs are not mistaken for a session to pick up; conntrack's disappearance ends it sooner,
// and so does the exemption after a 221/421 (exempt_linger).
constexpr auto linger = std::chrono::seconds(30);
// An ended session whose connection left the queue (Daemon::exempt_ended): only a packet queued
// before the mark took effect can still come.
constexpr auto exempt_linger = std::chrono::seconds(2);
constexpr auto tick = std::chrono::milliseconds(100);
constexpr auto kernel_check_interval = std::chrono::seconds(2);
constexpr auto ct_check_interval = std::chrono::seconds(10);
constexpr auto range_check_interval = std::chrono::seconds(1);
// The whole session table once a second (a range opening's lifetime, lingering ended sessions);
// held packets and openings at every tick through Daemon::timed_.
constexpr auto sweep_interval = std::chrono::seconds(1);
constexpr auto status_interval = std::chrono::seconds(10);
// A TCP_CONNTRACK_ESTABLISHED entry (linux/netfilter/nf_conntrack_tcp.h); later states are closing.
constexpr std::uint8_t tcp_established = 3;
constexpr std::uint8_t tcp_time_wait = 7;
constexpr std::uint8_t tcp_close = 8;


std::string tuple_text(const Tuple& t) { return t.src.to_string() + " -> " + t.dst.to_string(); }

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// The ports whose connections are sessions: control_ports, and implicit FTPS ports in per-client mode.
bool is_control_port(const config::Config& cfg, std::uint16_t p) {
  return std::find(cfg.control_ports.begin(), cfg.control_ports.end(), p) != cfg.control_ports.end() ||
         cfg.implicit_tls(p);
}

firewall::Role to_firewall(config::Role r) {
  return r == config::Role::gateway ? firewall::Role::gateway : firewall::Role::server;
}

firewall::BackendKind to_firewall(config::BackendMode b) {
  switch (b) {
    case config::BackendMode::nftables: return firewall::BackendKind::nftables;
    case config::BackendMode::iptables_legacy: return firewall::BackendKind::iptables_legacy;
    case config::BackendMode::automatic: break;
  }
  return firewall::BackendKind::automatic;
}

}  // namespace

Daemon::Daemon(config::Config cfg, Options opts, unsigned shard)
    : shard_(shard), loaded_(std::move(cfg)), cfg_(queue_share(loaded_)), opts_(std::move(opts)) {
  next_session_ = shard_ + 1;
  policy_ = std::make_shared<const Policy>(cfg_.policy);
  apply_limits();
}

// Each queue's thread has its own tables: the daemon-wide caps (sessions, half-open sessions,
// openings) are divided among the queues. The per-source caps of sessions, openings and held bytes
// are checked against counts every queue shares (source_counts.hpp: a client's sessions to
// several servers may meet several queues); the half-open per-source cap applies per queue.
config::Config Daemon::queue_share(config::Config c) {
  const std::uint32_t n = std::max<std::uint32_t>(1, c.queue.count);
  const auto share = [n](std::uint32_t& v) { v = std::max<std::uint32_t>(1, (v + n - 1) / n); };
  share(c.openings.max_total);
  share(c.openings.max_sessions);
  share(c.openings.max_half_open);
  return c;
}

DaemonStats& DaemonStats::operator+=(const DaemonStats& o) {
  packets += o.packets;
  untracked += o.untracked;
  sessions += o.sessions;
  pickups += o.pickups;
  openings += o.openings;
  opening_failures += o.opening_failures;
  data_syns += o.data_syns;
  passed_syns += o.passed_syns;
  exempted += o.exempted;
  ct_queries += o.ct_queries;
  verdict_waits += o.verdict_waits;
  max_wait_us = std::max(max_wait_us, o.max_wait_us);
  half_open_expired += o.half_open_expired;
  ct_events += o.ct_events;
  ct_resyncs += o.ct_resyncs;
  ha_label_writes += o.ha_label_writes;
  ha_label_errors += o.ha_label_errors;
  ha_takeovers += o.ha_takeovers;
  ha_continued += o.ha_continued;
  for (std::size_t i = 0; i < reasons.size(); ++i) reasons[i] += o.reasons[i];
  return *this;
}

void Daemon::apply_limits() {
  half_open_.set_limits({cfg_.openings.max_half_open, cfg_.openings.max_half_open_per_source,
                         std::chrono::seconds(cfg_.openings.half_open_timeout_s)});
  openings_.set_limits({cfg_.openings.max_total, cfg_.openings.max_per_source});
}

Daemon::~Daemon() {
  if (signal_fd_ >= 0) ::close(signal_fd_);
  if (timer_fd_ >= 0) ::close(timer_fd_);
}

std::uint64_t Daemon::now_ms() const {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now().time_since_epoch()).count());
}

firewall::HookSpec Daemon::hook_spec() const {
  firewall::HookSpec spec;
  spec.role = to_firewall(cfg_.role);
  spec.control_ports = cfg_.steered_ports();
  spec.queue_num = cfg_.queue.number;
  spec.queues_total = cfg_.queue.count;
  spec.queue_bypass = cfg_.queue.bypass;
  spec.exempt_mark = cfg_.queue.exempt_mark;
  spec.nat = cfg_.role == config::Role::gateway;  // FTPWALL-DNAT / FTPWALL-SNAT (issue 5)
  spec.accept_mark = cfg_.queue.accept_mark;
  spec.labels = cfg_.ha.enabled;
  return spec;
}

Result<std::unique_ptr<Daemon>> Daemon::start(config::Config cfg, Options opts) {
  std::unique_ptr<Daemon> d(new Daemon(std::move(cfg), std::move(opts)));
  if (auto r = d->open_kernel(); !r) return r.error();
  return d;
}

// The descriptors every queue's thread has: its tick, its ctnetlink sockets, its queue.
Result<void> Daemon::open_timer() {
  timer_fd_ = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0) return make_error(std::string("timerfd: ") + std::strerror(errno));
  itimerspec its{};
  its.it_interval.tv_nsec = std::chrono::duration_cast<std::chrono::nanoseconds>(tick).count();
  its.it_value = its.it_interval;
  if (::timerfd_settime(timer_fd_, 0, &its, nullptr) < 0) return make_error(std::string("timerfd: ") + std::strerror(errno));
  return {};
}

Result<void> Daemon::open_conntrack() {
  auto ct = netlink::Conntrack::open();
  if (!ct) return make_error("ctnetlink: " + ct.error().message);
  ct_ = std::move(*ct);
  // Only the DESTROY events of connections to a steered port (the socket's BPF filter): every
  // other connection leaving conntrack on the host would wake this loop for nothing.
  const std::vector<std::uint16_t> ports = cfg_.steered_ports();
  if (auto ev = netlink::ConntrackEvents::open(static_cast<int>(cfg_.queue.socket_buffer), ports); ev) {
    ct_events_ = std::move(*ev);
    if (!ct_events_->filtered())
      spdlog::warn("{}: every connection that leaves conntrack reaches the daemon as an event", ct_events_->filter_error());
  } else {
    spdlog::warn("{}: sessions are checked against conntrack every {} s instead", ev.error().message,
                 ct_check_interval.count());
  }
  return {};
}

Result<void> Daemon::open_queue() {
  netlink::QueueOptions qo;
  qo.queue_num = queue_number();
  qo.max_queue_len = cfg_.queue.max_len;
  qo.socket_buffer = static_cast<int>(cfg_.queue.socket_buffer);
  qo.fail_open = cfg_.queue.fail_open;
  auto q = netlink::NfQueue::open(qo);
  if (!q) return q.error();
  queue_ = std::move(*q);
  return {};
}

Result<void> Daemon::open_kernel() {
  // The signals were blocked in main() before any thread existed; they arrive here only.
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, s);
  signal_fd_ = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (signal_fd_ < 0) return make_error(std::string("signalfd: ") + std::strerror(errno));
  if (auto r = open_timer(); !r) return r;

  auto choice = firewall::make_backend(to_firewall(cfg_.backend));
  if (!choice) return make_error("choosing the backend: " + choice.error().message);
  auto backend = std::move(choice->backend);
  backend_why_ = choice->why;
  if (cfg_.ha.enabled && backend->name() != "nftables")
    return make_error("[ha] enabled needs the nftables backend (its labels chain keeps conntrack labels available), "
                      "but this host runs " + std::string(backend->name()) + " (" + backend_why_ + ")");
  const firewall::HookSpec spec = hook_spec();
  auto warnings = backend->preflight(spec, cfg_.hooks == config::HooksMode::daemon);
  if (!warnings) return warnings.error();
  for (const auto& w : *warnings) spdlog::warn("{}", w);

  if (auto r = open_conntrack(); !r) return r;
  state_ = std::make_unique<StateDir>(opts_.state_dir);
  if (auto r = state_->prepare(); !r) return make_error(r.error().message + " (--state-dir)");
  {
    const std::string path = opts_.control_socket.empty() ? opts_.state_dir + "/control" : opts_.control_socket;
    auto c = ControlServer::open(path);
    if (!c) return make_error(c.error().message + " (--control-socket)");
    control_ = std::move(*c);
  }
  restore_records();

  if (auto r = open_queue(); !r) return r;
  // Several queues: the followers' descriptors are opened here, with the privileges they need, and
  // bound before the steering exists (as this queue), so no control packet meets a queue nobody reads.
  if (cfg_.queue.count > 1) {
    if (backend->name() != "nftables")
      return make_error("[queue] count = " + std::to_string(cfg_.queue.count) + " needs the nftables backend, but this host runs " +
                        std::string(backend->name()) + " (" + backend_why_ + ")");
    dnat_claims_ = std::make_shared<DnatClaims>();
    openings_.share_dnat(dnat_claims_);
    for (unsigned i = 1; i < cfg_.queue.count; ++i) {
      auto f = std::make_unique<Follower>();
      f->daemon.reset(new Daemon(loaded_, opts_, i));
      if (auto r = f->daemon->open_follower(*this); !r) return make_error("queue " + std::to_string(cfg_.queue.number + i) + ": " + r.error().message);
      followers_.push_back(std::move(f));
    }
  }

  // Everything that needs more than CAP_NET_ADMIN + CAP_NET_RAW is open; no thread exists yet, so
  // the backend worker started below inherits the reduced sets (privileges.hpp).
  std::vector<std::string> cap_notes;
  if (auto r = keep_only_net_capabilities(cap_notes); !r) return make_error("dropping privileges: " + r.error().message);
  for (const auto& n : cap_notes) spdlog::warn("{}", n);
  // From here the log lines go through a logging thread of their own; created only now, so that it
  // holds no more privileges than the rest of the daemon (a capability set is per thread).
  log::setup(cfg_.log_level, /*async=*/true);

  // Leftovers of an earlier instance (a SIGKILLed daemon) go first; the queue is bound before the
  // steering exists, so no control packet meets a queue without a reader.
  if (cfg_.hooks == config::HooksMode::daemon) {
    // Of either backend: an instance that ran with the other one leaves nothing behind either.
    if (auto r = firewall::remove_all_hooks(); !r) return make_error("removing leftovers: " + r.error().message);
    if (auto r = backend->install_hooks(spec); !r) return make_error("installing hooks: " + r.error().message);
  } else if (auto r = backend->flush_own(); !r) {
    return make_error("flushing FTPWALL chains: " + r.error().message);
  }
  backend_ = std::move(backend);
  // After the steering is in place: a connection whose SYN comes later is queued (its entry stays
  // unconfirmed until our verdict, so the dump cannot list it) and starts a session at its SYN.
  note_preexisting();
  // nftables commits take microseconds: a round's openings are committed in this thread
  // (backend_worker.hpp, inline); libiptc's take milliseconds and stay on the worker's thread.
  auto w = firewall::BackendWorker::start(*backend_, 256, backend_->name() == "nftables");
  if (!w) return w.error();
  worker_ = std::move(*w);
  next_kernel_check_ = Clock::now() + kernel_check_interval;
  next_ct_check_ = Clock::now() + ct_check_interval;
  start_followers();
  spdlog::info("ftpwalld {} started: {} role, backend {} ({}), steering {}, hooks by {}, queue {}, control ports {}, "
               "openings live {} s, FTPS {}, config {}",
               FTPWALL_VERSION, config::name(cfg_.role), backend_->name(), backend_why_, backend_->steering(),
               config::name(cfg_.hooks),
               cfg_.queue.count > 1 ? fmt::format("{}-{} ({} threads)", cfg_.queue.number, cfg_.queue.number + cfg_.queue.count - 1,
                                                  cfg_.queue.count)
                                    : std::to_string(cfg_.queue.number),
               [&] {
                 std::string s;
                 for (auto p : cfg_.steered_ports()) s += (s.empty() ? "" : ",") + std::to_string(p);
                 return s;
               }(),
               cfg_.openings.lifetime_s, config::name(cfg_.ftps.mode), cfg_.source);
  if (!opts_.ready_file.empty()) std::ofstream(opts_.ready_file) << ::getpid() << "\n";
  notify::ready(live_status());
  watchdog_every_ = notify::watchdog_interval();
  return {};
}

// ---------------------------------------------------------------------------------------------
// Several queues (issue 13)

// In the leader's thread, before the privileges are dropped: what the queue's thread reads. No
// hooks (the leader's), no signals, no control socket; the records of an earlier instance are the
// leader's copy (a session's packets reach one queue only, so only that queue claims its record).
Result<void> Daemon::open_follower(const Daemon& leader) {
  if (auto r = open_timer(); !r) return r;
  auto box = Mailbox::open();
  if (!box) return box.error();
  mailbox_ = std::move(*box);
  if (auto r = open_conntrack(); !r) return r;
  state_ = std::make_unique<StateDir>(opts_.state_dir);
  if (auto r = state_->prepare(); !r) return make_error(r.error().message + " (--state-dir)");
  restored_ = leader.restored_;
  dnat_claims_ = leader.dnat_claims_;
  openings_.share_dnat(dnat_claims_);
  // The per-source caps hold across the queues: the leader's counts are every queue's.
  sessions_.share_counts(leader.sessions_.session_counts(), leader.sessions_.held_counts());
  openings_.share_counts(leader.openings_.counts());
  auto choice = firewall::make_backend(to_firewall(config::BackendMode::nftables));
  if (!choice) return make_error("choosing the backend: " + choice.error().message);
  backend_ = std::move(choice->backend);
  backend_why_ = leader.backend_why_;
  if (auto r = open_queue(); !r) return r;
  return {};
}

// Once the hooks are in place and the privileges dropped: each follower gets the control
// connections from before the start, its backend worker and its thread.
void Daemon::start_followers() {
  for (auto& f : followers_) {
    Daemon& d = *f->daemon;
    d.preexisting_ = preexisting_;
    auto w = firewall::BackendWorker::start(*d.backend_, 256, true);
    if (!w) {
      spdlog::critical("queue {}: {}", d.queue_number(), w.error().message);
      follower_failed_ = true;
      stopping_ = true;
      continue;
    }
    d.worker_ = std::move(*w);
    d.next_ct_check_ = Clock::now() + ct_check_interval;
    f->thread = std::thread([f = f.get()] {
      f->rc = f->daemon->run();
      f->done = true;
    });
  }
}

// The leader's stop(), first: every follower releases its packets and ends; its openings go with
// the table (the leader's remove_hooks) or the leader's flush.
void Daemon::stop_followers() {
  for (auto& f : followers_)
    if (f->thread.joinable()) f->daemon->mailbox_->post([d = f->daemon.get()] { d->stopping_ = true; });
  for (auto& f : followers_) {
    if (f->thread.joinable()) f->thread.join();
    follower_failed_ = follower_failed_ || f->rc != 0;
  }
}

Daemon::Figures Daemon::figures() const {
  Figures f;
  f.queue = queue_number();
  f.stats = stats_;
  f.stats.verdict_waits = gate_.waits();
  f.stats.max_wait_us = gate_.max_wait_us();
  f.q = queue_->stats();
  f.sessions = sessions_.size();
  f.half_open = half_open_.size();
  f.openings = openings_.size();
  for (auto& [k, s] : sessions_) {
    if (s.opening && s.opening->installed) ++f.installed;
    if (s.range && s.range_installed) ++f.installed;
  }
  return f;
}

std::vector<Daemon::Figures> Daemon::all_figures() const {
  std::vector<Figures> all{figures()};
  for (const auto& f : followers_)
    if (auto x = f->daemon->mailbox_->call([d = f->daemon.get()] { return d->figures(); })) all.push_back(*x);
  return all;
}

Daemon::Figures& Daemon::Figures::operator+=(const Figures& o) {
  stats += o.stats;
  q.verdicts += o.q.verdicts;
  q.modified += o.q.modified;
  q.enobufs += o.q.enobufs;
  q.verdict_errors += o.q.verdict_errors;
  sessions += o.sessions;
  half_open += o.half_open;
  openings += o.openings;
  installed += o.installed;
  return *this;
}

Daemon::Figures Daemon::total_figures() const {
  Figures t;
  for (const auto& f : all_figures()) t += f;
  return t;
}

DaemonStats Daemon::total_stats() const { return total_figures().stats; }

void Daemon::reinstall_openings() {
  const std::vector<firewall::Change> again = reinstall_changes(live_openings());
  if (again.empty()) return;
  const std::uint64_t token = next_token_++;
  pending_[token] = Pending{Pending::Kind::reinstall, 0, Direction::client_to_server, {}, Clock::now()};
  worker_->call([again](firewall::FirewallBackend& b) { return b.apply(again); }, token);
  spdlog::warn("queue {}: {} openings reinstalled after the hooks were put back", queue_number(), again.size() / 2);
}

// ---------------------------------------------------------------------------------------------
// The loop

int Daemon::run() {
  while (!stopping_) {
    std::vector<pollfd> fds = {{queue_->fd(), POLLIN, 0},
                               {signal_fd_, POLLIN, 0},
                               {timer_fd_, POLLIN, 0},
                               {worker_->event_fd(), POLLIN, 0},
                               {ct_events_ ? ct_events_->fd() : -1, POLLIN, 0},
                               {mailbox_ ? mailbox_->fd() : -1, POLLIN, 0},
                               {state_ ? state_->watch_fd() : -1, POLLIN, 0}};
    if (control_) control_->poll_fds(fds);
    const int n = ::poll(fds.data(), fds.size(), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::critical("poll: {}", std::strerror(errno));
      break;
    }
    // A record's name touched under us: known before any save of this round (state_dir.hpp).
    if (fds[6].revents & POLLIN) state_->notice();
    // Completions first: they release waiting packets before new ones queue behind them.
    if (fds[3].revents & POLLIN) on_completions();
    if (fds[0].revents & POLLIN) on_queue();
    if (fds[4].revents & (POLLIN | POLLERR)) on_ct_events();
    if (fds[2].revents & POLLIN) on_timer();
    if (fds[1].revents & POLLIN) on_signal();
    if (fds[5].revents & POLLIN) mailbox_->run();
    // Last: an answer never stands between a packet and its verdict.
    if (control_) control_->on_events(std::span<const pollfd>(fds).subspan(7), [this](std::string_view r) { return answer(r); });
  }
  return stop();
}

void Daemon::on_signal() {
  signalfd_siginfo si;
  while (::read(signal_fd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    if (si.ssi_signo == SIGHUP) {
      reload();
    } else {
      spdlog::info("signal {}: stopping", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
      stopping_ = true;
    }
  }
}

void Daemon::reload() {
  notify::reloading();
  auto loaded = config::load(opts_.config_path);
  if (!loaded) {
    spdlog::error("reload failed, keeping the running configuration: {}", loaded.error().message);
    return;
  }
  config::Config next = std::move(*loaded);
  if (opts_.log_level) next.log_level = *opts_.log_level;
  if (opts_.queue) next.queue.number = *opts_.queue;
  if (opts_.queues) next.queue.count = *opts_.queues;
  // What the kernel's hooks and the bound queue embody changes only with a restart.
  if (next.role != cfg_.role || next.hooks != cfg_.hooks || next.steered_ports() != cfg_.steered_ports() ||
      !(next.queue == cfg_.queue) || next.ftps.mode != cfg_.ftps.mode) {
    spdlog::warn("reload: role, hooks, control_ports, ftps.mode, ftps.implicit_ports and [queue] take effect only at a "
                 "restart; keeping the running ones");
    next.role = cfg_.role;
    next.hooks = cfg_.hooks;
    next.control_ports = cfg_.control_ports;
    next.queue = cfg_.queue;
    next.ftps.mode = cfg_.ftps.mode;
    next.ftps.implicit_ports = cfg_.ftps.implicit_ports;
  }
  if (next.ha.enabled != cfg_.ha.enabled) {
    spdlog::warn("reload: [ha] enabled takes effect only at a restart; keeping the running one");
    next.ha = cfg_.ha;
  }
  apply_config(next);
  for (auto& f : followers_) f->daemon->mailbox_->post([d = f->daemon.get(), next] { d->apply_config(next); });
  log::set_level(cfg_.log_level);
  spdlog::info("configuration reloaded from {}", cfg_.source);
  notify::ready(live_status());
}

// Running sessions keep the policy they started with (their Tracker borrows it; the session's
// shared_ptr keeps it alive); the last session of an older one frees it. Each queue's thread
// applies it to itself.
void Daemon::apply_config(const config::Config& loaded) {
  loaded_ = loaded;
  cfg_ = queue_share(loaded_);
  policy_ = std::make_shared<const Policy>(cfg_.policy);
  apply_limits();
}

void Daemon::on_queue() {
  // The verdicts of one round go out together (one sendmsg); state records and be_liberal are
  // still written before the verdict that depends on them, which is sent after them.
  // The openings the round announces go to the worker together: one wakeup, one batch.
  // With an inline worker (nftables) release() commits them here, and the packets that waited for
  // them get their verdicts in the same datagram as the round's others.
  queue_->cork();
  worker_->hold();
  round_now_ = Clock::now();
  auto r = queue_->receive([this](const netlink::QueuedPacket& p) { on_packet(p); }, 64);
  round_now_.reset();
  if (!r) spdlog::error("NFQUEUE {}: {}", queue_number(), r.error().message);
  worker_->release();
  if (worker_->has_completions()) on_completions();
  if (auto u = queue_->uncork(); !u) spdlog::warn("{}", u.error().message);
}

void Daemon::verdict(std::uint32_t id, netlink::Verdict v, std::span<const std::uint8_t> bytes) {
  // nfqnl_mangle() marks a packet with a new payload CHECKSUM_NONE: its checksum field must then be
  // whole. A packet queued "checksum not ready" (locally generated with offload, e.g. over veth)
  // carried only the pseudo-header sum, which the core's incremental updates cannot turn into one.
  if (checksum_partial_.erase(id) && !bytes.empty() && v == netlink::Verdict::accept) {
    fixed_.assign(bytes.begin(), bytes.end());
    if (auto view = PacketView::parse(fixed_)) {
      view->fix_checksums();
      bytes = fixed_;
    }
  }
  auto r = queue_->verdict(id, v, bytes);
  if (!r) {
    auto d = limiter_.allow(1000, log::RateLimiter::Clock::now());
    if (d.log) spdlog::warn("verdict for packet {}: {}", id, r.error().message);
  }
}

void Daemon::QueueSink::verdict(std::uint32_t id, bool accept, std::span<const std::uint8_t> bytes) {
  d_.verdict(id, accept ? netlink::Verdict::accept : netlink::Verdict::drop, bytes);
}

namespace {
// A rate-limiter bucket: the kind (a Reason, or an info line's kind) and the source address.
std::uint32_t bucket(std::uint32_t kind, const Address& source) {
  std::uint32_t h = 2166136261u ^ kind;  // FNV-1a
  for (auto b : source.bytes) h = (h ^ b) * 16777619u;
  return h;
}
}  // namespace

void Daemon::refuse(Reason reason, const Address& source, const std::string& what) {
  if (cfg_.audit == config::AuditMode::summary) return;  // counted; the summary line says it
  if (cfg_.audit == config::AuditMode::full) {
    spdlog::warn("refused {}: {}", name(reason), what);
    return;
  }
  // Two buckets: per (reason, source), so one client's flood cannot hide another's refusals, and
  // per reason over all sources, so that a flood from many (spoofed) addresses cannot flood the
  // log either. The counters stay exact; the stop line and `suppressed` say how many went unlogged.
  const auto now = log::RateLimiter::Clock::now();
  auto d = limiter_.allow(bucket(static_cast<std::uint32_t>(reason), source), now);
  if (!d.log) return;
  if (!reason_limiter_.allow(static_cast<std::uint32_t>(reason), now).log) return;
  if (d.suppressed)
    spdlog::warn("refused {}: {} ({} more from {} suppressed)", name(reason), what, d.suppressed, source.to_string());
  else
    spdlog::warn("refused {}: {}", name(reason), what);
}

bool Daemon::info_allowed(std::uint32_t kind, const Address& source) {
  if (cfg_.audit == config::AuditMode::full) return true;
  if (cfg_.audit == config::AuditMode::summary) return spdlog::should_log(spdlog::level::debug);
  // With debug logging the admin asked for every line.
  if (spdlog::should_log(spdlog::level::debug)) return true;
  return info_limiter_.allow(bucket(0x10000u | kind, source), now()).log;
}

void Daemon::on_packet(const netlink::QueuedPacket& p) {
  ++stats_.packets;
  // IPv4 and IPv6 (issue 10); anything else, or a truncated copy, passes unseen.
  if (p.payload.empty() || ((p.payload[0] >> 4) != 4 && (p.payload[0] >> 4) != 6) || p.truncated()) {
    ++stats_.untracked;
    verdict(p.id, netlink::Verdict::accept);
    return;
  }
  buf_.assign(p.payload.begin(), p.payload.end());
  auto view = PacketView::parse(buf_);
  if (!view) {
    ++stats_.untracked;
    verdict(p.id, netlink::Verdict::accept);
    return;
  }
  const Endpoint src{view->src_address(), view->src_port()};
  const Endpoint dst{view->dst_address(), view->dst_port()};
  if (p.checksum_not_ready) checksum_partial_.insert(p.id);
  const bool syn = view->has_flag(tcp_flag::syn) && !view->has_flag(tcp_flag::ack);
  // The direction of a packet is never read from its port numbers (finding C1 of the security
  // review): a session is keyed client -> server as its first SYN showed it, and conntrack's
  // original direction is that SYN's. A packet of a known session is client -> server when it
  // travels as that key, server -> client when it travels against it.
  // One lookup per direction, handed on (issue 13: a packet's three lookups in the ordered table
  // were 1 % of the daemon).
  if (auto it = sessions_.find_it(Key{src, dst}); it != sessions_.end()) {
    on_control_packet(p.id, *view, Direction::client_to_server, Key{src, dst}, it);
  } else if (auto rit = sessions_.find_it(Key{dst, src}); rit != sessions_.end()) {
    on_control_packet(p.id, *view, Direction::server_to_client, Key{dst, src}, rit);
  } else if (half_open_.contains(Key{src, dst})) {
    if (syn) {
      start_half_open(p.id, *view, Key{src, dst});  // retransmitted, or a new attempt on the 4-tuple
    } else {
      promote(Key{src, dst});
      on_control_packet(p.id, *view, Direction::client_to_server, Key{src, dst});
    }
  } else if (half_open_.contains(Key{dst, src})) {
    promote(Key{dst, src});
    on_control_packet(p.id, *view, Direction::server_to_client, Key{dst, src});
  } else if (syn) {
    // A first SYN: of a new control connection (steered because its original destination port
    // is a control port), or of a data connection an opening queued.
    if (is_control_port(cfg_, dst.port) && !openings_.contains(src.addr, dst))
      start_half_open(p.id, *view, Key{src, dst});
    else
      on_data_syn(p.id, *view, p.mark);
  } else {
    on_unknown_packet(p.id, *view, src, dst);
  }
}

// ---- half-open sessions (security review H1) ----
// A SYN costs the daemon a copy of the SYN and small index entries, nothing else: SYNs that the
// admin's filter drops or that nobody answers never become sessions (half_open.hpp). The SYN
// passes at once either way.
void Daemon::start_half_open(std::uint32_t id, const PacketView& view, const Key& key) {
  for (const Key& k : half_open_.add(key, {view.bytes().begin(), view.bytes().end()}, now())) {
    count(Reason::half_open_evicted);
    refuse(Reason::half_open_evicted, k.src.addr, tuple_text(k) + ": half-open for a newer SYN");
  }
  verdict(id, netlink::Verdict::accept);
}

// The connection answered (or the client sent more): a session with its Tracker, the SYN
// replayed into it; NAT is learnt from conntrack at this packet (on_control_packet).
SessionState* Daemon::promote(const Key& key) {
  auto taken = half_open_.take(key);
  if (!taken) return nullptr;
  std::vector<std::uint8_t> syn = std::move(*taken);
  const Address& source = key.src.addr;
  if (sessions_.size() >= cfg_.openings.max_sessions) {
    count(Reason::session_limit);
    refuse(Reason::session_limit, source, tuple_text(key) + ": " + std::to_string(sessions_.size()) +
                                              " sessions tracked, passed untracked");
    return nullptr;
  }
  if (const std::size_t n = sessions_.of_client(source); n >= cfg_.openings.max_sessions_per_source) {
    count(Reason::source_session_limit);
    refuse(Reason::source_session_limit, source,
           tuple_text(key) + ": " + std::to_string(n) + " sessions of " + source.to_string() + ", passed untracked");
    return nullptr;
  }
  auto view = PacketView::parse(syn);
  if (!view) return nullptr;
  SessionState s;
  s.id = new_session_id();
  s.tuples = ConnTuples::without_nat(key.src, key.dst);  // NAT is learnt from conntrack right after
  s.policy = policy_;
  s.tracker = std::make_unique<Tracker>(s.tuples, *s.policy);
  if (cfg_.implicit_tls(key.dst.port)) s.tracker->start_implicit_tls();
  s.client_isn = view->seq();
  s.client_isn_known = true;
  s.tracker->on_packet(Direction::client_to_server, view->bytes(), now_ms());  // the SYN: nothing to decide
  s.syn = std::make_unique<std::vector<std::uint8_t>>(std::move(syn));
  return &add_session(key, std::move(s));
}

void Daemon::query_conntrack(SessionState& s, const Key& key, Direction dir) {
  s.ct_known = true;
  ++stats_.ct_queries;
  const Tuple seen = dir == Direction::client_to_server ? key : Tuple{key.dst, key.src};
  auto e = ct_->lookup_packet(seen);
  if (!e) {
    spdlog::debug("session s{}: conntrack query: {}", s.id, e.error().message);
    return;
  }
  if (!*e) {
    spdlog::debug("session s{}: no conntrack entry for {}", s.id, tuple_text(seen));
    return;
  }
  // The session was started by a SYN to a control port; its entry must say the same: the client
  // is the entry's original source and the original destination port is a control port.
  // Otherwise this is not a control connection (a simultaneous open, an admin's rule that queues
  // too much): passed through untouched, no announcement of it counts.
  if ((*e)->tuples.original.src != key.src || !is_control_port(cfg_, (*e)->tuples.original.dst.port)) {
    count(Reason::not_a_control_connection);
    refuse(Reason::not_a_control_connection, key.src.addr,
           tuple_text(key) + ": conntrack's original tuple is " + tuple_text((*e)->tuples.original) + ", passed untouched");
    s.tuples = (*e)->tuples;
    s.ct_id = (*e)->id;
    sessions_.set_original(s, s.tuples.original);
    s.tracker.reset();
    s.syn.reset();
    return;
  }
  s.tuples = (*e)->tuples;
  s.ct_id = (*e)->id;
  sessions_.set_original(s, s.tuples.original);
  if (s.tracker && translated_ipv6(s)) {
    s.tracker.reset();
    s.syn.reset();
    return;
  }
  if ((*e)->has_helper() && s.tracker) {
    spdlog::warn("session s{} {} carries the kernel helper \"{}\" (a leftover CT --helper rule?): passed through untouched",
                 s.id, tuple_text(s.tuples.original), (*e)->helper);
    s.tracker.reset();
  }
  // NAT (issue 5): the Tracker started from the SYN with the hook's view (no NAT known); the entry
  // says which side is translated, so the Tracker is rebuilt with the real tuples and the SYN
  // replayed into it (a SYN carries no stream bytes: nothing it decided can differ).
  if (s.tracker && s.syn && !s.syn->empty() && (s.tuples.client_nat() || s.tuples.server_nat())) {
    auto t = std::make_unique<Tracker>(s.tuples, *s.policy);
    if (cfg_.implicit_tls(s.tuples.original.dst.port)) t->start_implicit_tls();
    PacketOutcome replay = t->on_packet(Direction::client_to_server, *s.syn, now_ms());
    if (replay.modified || !replay.decisions.empty() || replay.verdict != PacketOutcome::Verdict::accept) {
      spdlog::warn("session s{}: SYN replay with NAT tuples was not clean: kept without NAT", s.id);
    } else {
      s.tracker = std::move(t);
      attach_port_chooser(s);
      if (info_allowed(1, key.src.addr))
        spdlog::info("session s{} {} behind NAT: client {} seen as {}, server {} dialled as {}", s.id,
                     tuple_text(s.tuples.original), s.tuples.client_real().to_string(),
                     s.tuples.client_as_seen().to_string(), s.tuples.server_real().to_string(),
                     s.tuples.server_as_seen().to_string());
    }
  }
  s.syn.reset();
  if (s.tracker) write_label(s);  // [ha]: a known session from now on, also for a backup
}

// A SYN on the 4-tuple of a live session (security review M4): conntrack passes a SYN in the
// original direction of an ESTABLISHED entry as IGNORE, whatever its sequence number, so an
// off-path host that knows the 4-tuple could otherwise tear the session down (opening closed,
// record deleted, corrections lost). The session is replaced only when it has ended on the wire
// (FIN both ways or RST) or conntrack no longer holds its entry as it was (gone, another id, or
// TIME_WAIT/CLOSE); otherwise the SYN is syn_mismatch and changes nothing.
SessionState* Daemon::find_or_replace(const Key& key, Direction dir, const PacketView& view,
                                      std::optional<SessionTable::Map::iterator> found) {
  const bool syn = view.has_flag(tcp_flag::syn) && !view.has_flag(tcp_flag::ack);
  auto it = found ? *found : sessions_.find_it(key);
  if (it == sessions_.end()) return nullptr;
  SessionState& s = it->second;
  if (!(syn && dir == Direction::client_to_server && (!s.client_isn_known || s.client_isn != view.seq()))) return &s;
  bool reused = s.tcp_ended;
  if (!reused) {
    ++stats_.ct_queries;
    auto e = s.ct_known ? ct_->get(s.tuples.original) : ct_->lookup_packet(key);
    reused = e && (!*e || (s.ct_id != 0 && (*e)->id != s.ct_id) || (*e)->tcp_state == tcp_time_wait ||
                   (*e)->tcp_state == tcp_close);
  }
  if (!reused) {
    count(Reason::syn_mismatch);
    refuse(Reason::syn_mismatch, key.src.addr,
           "s" + std::to_string(s.id) + " " + tuple_text(key) + ": a SYN on a live session (seq " +
               std::to_string(view.seq()) + "), passed, the session keeps going");
    return nullptr;
  }
  spdlog::debug("session s{}: 4-tuple reused by a new SYN", s.id);
  end_session(s, Reason::connection_closed);
  gate_.release(s.id, false);
  erase_session(it);
  return nullptr;  // the caller starts a half-open session for the new connection
}

SessionState& Daemon::add_session(const Key& key, SessionState s) {
  ++stats_.sessions;
  if (!s.policy) s.policy = policy_;
  spdlog::debug("session s{} {} started", s.id, tuple_text(s.tuples.original));
  return sessions_.add(key, std::move(s));
}

// The one way a session leaves the daemon: its state record, then the table's indexes.
SessionTable::Map::iterator Daemon::erase_session(SessionTable::Map::iterator it) {
  close_range(it->second, Reason::connection_closed);  // ended sessions closed theirs already
  forget(it->second);
  return sessions_.erase(it);
}

// A packet of a connection the daemon has no session for, and no SYN: the daemon restarted, or
// missed the SYN. Its conntrack entry decides everything (finding C1 of the security review):
//   * the packet's direction: client -> server travels as {original.src, reply.src} at the hook
//     (DNAT applied, SNAT not yet), server -> client as {reply.src, original.src};
//   * whether it is a control connection at all: the original destination port;
//   * whether it may be picked up: only a connection that already existed when this daemon
//     started (the conntrack dump at start), or one an earlier instance left a state record for.
//     A connection that started later had its SYN seen, unless it was never meant to be tracked.
// A connection that may not be picked up is remembered as a session without a Tracker, so its
// later packets pass untouched without asking conntrack again.
void Daemon::on_unknown_packet(std::uint32_t id, PacketView& view, const Endpoint& src, const Endpoint& dst) {
  const auto pass = [&] {
    ++stats_.untracked;
    verdict(id, netlink::Verdict::accept);
  };
  // Closing connections are not picked up: their last packets would start ghost sessions.
  if (view.has_flag(tcp_flag::fin) || view.has_flag(tcp_flag::rst)) return pass();
  if (sessions_.size() >= cfg_.openings.max_sessions) {
    count(Reason::session_limit);
    refuse(Reason::session_limit, src.addr, tuple_text(Tuple{src, dst}) + ": " + std::to_string(sessions_.size()) +
                                                " sessions tracked, passed untracked");
    return pass();
  }
  ++stats_.ct_queries;
  auto e = ct_->lookup_packet(Tuple{src, dst});
  if (!e || !*e || (*e)->tcp_state != tcp_established) return pass();
  const netlink::ConntrackEntry& ent = **e;
  Direction dir;
  Key key;
  if (src == ent.tuples.original.src && dst == ent.tuples.reply.src) {
    dir = Direction::client_to_server;
    key = Key{src, dst};
  } else if (src == ent.tuples.reply.src && dst == ent.tuples.original.src) {
    dir = Direction::server_to_client;
    key = Key{dst, src};
  } else {
    spdlog::debug("{}: conntrack entry {} does not fit the packet", tuple_text(Tuple{src, dst}),
                  tuple_text(ent.tuples.original));
    return pass();
  }
  SessionState s;
  s.id = new_session_id();
  s.tuples = ent.tuples;
  s.ct_known = true;
  s.ct_id = ent.id;
  const auto passed_untouched = [&](Reason why, const std::string& what) {
    count(why);
    refuse(why, key.src.addr, tuple_text(ent.tuples.original) + ": " + what + ", passed untouched");
    SessionState& known = add_session(key, std::move(s));
    deliver(known, dir, id, {});
  };
  if (!is_control_port(cfg_, ent.tuples.original.dst.port))
    return passed_untouched(Reason::not_a_control_connection, "the original destination port is not a control port");

  // A session an earlier instance corrected: its record names this very entry (same CTA_ID).
  // Without a record, the entry's flags are the only trace of corrections (security review M5):
  // the kernel's own seqadj sets IPS_SEQ_ADJUST, ftpwalld's corrections set BE_LIBERAL on both
  // directions before the first length-changing verdict. Either means the history is unknown.
  auto history = (ent.status & netlink::ConntrackEntry::status_seq_adjust) || ent.liberal()
                     ? PickupHistory::unknown
                     : PickupHistory::no_corrections;
  SeqAdjust saved;
  bool allowed = false;
  if (auto r = restored_.find(key); r != restored_.end()) {
    if (r->second.ct_id == s.ct_id && r->second.tuples == s.tuples) {
      history = PickupHistory::restored;
      saved = std::move(r->second.corrections);
      s.recorded = true;
      s.liberal = ent.liberal();
      allowed = true;
    } else {
      state_->remove(r->second.ct_id);
    }
    restored_.erase(r);
  }
  if (auto p = preexisting_.find(ent.tuples.original); p != preexisting_.end()) {
    allowed = allowed || p->second == ent.id;
    preexisting_.erase(p);
  }
  // [ha]: an entry conntrackd brought from the other gateway, its HA label naming the session.
  std::optional<HaLabel> label;
  if (!allowed && cfg_.ha.enabled) label = decode_label(ent.labels);
  if (label && is_control_port(cfg_, ent.tuples.original.dst.port)) {
    track(continue_session(std::move(s), key, ent, *label).session, id, view, dir);
    return;
  }
  if (!allowed)
    return passed_untouched(Reason::pickup_not_allowed, "seen mid-stream, but it started after ftpwalld and has no state record");
  if (s.tuples.family() == Family::v6 && (s.tuples.client_nat() || s.tuples.server_nat()))
    return passed_untouched(Reason::nat66_unsupported, "an IPv6 connection with address translation (NAT66/NPTv6)");
  if (const std::size_t n = sessions_.of_client(key.src.addr); n >= cfg_.openings.max_sessions_per_source)
    return passed_untouched(Reason::source_session_limit, std::to_string(n) + " sessions of this client");
  s.policy = policy_;

  auto t = Tracker::pick_up(s.tuples, *s.policy, history, std::move(saved));
  if (!t) {
    count(Reason::pickup_without_history);
    refuse(Reason::pickup_without_history, key.src.addr, tuple_text(s.tuples.original) + ": " + t.error().message);
  } else if (ent.has_helper()) {
    spdlog::warn("session {} carries the kernel helper \"{}\": passed through untouched", tuple_text(s.tuples.original),
                 ent.helper);
  } else {
    s.tracker = std::make_unique<Tracker>(std::move(*t));
  }
  ++stats_.pickups;
  if (info_allowed(2, key.src.addr))
    spdlog::info("session s{} {} picked up mid-stream{}; its announcements count after one command/reply round trip",
                 s.id, tuple_text(s.tuples.original),
                 history == PickupHistory::restored ? " with its recorded corrections" : "");
  SessionState& picked = add_session(key, std::move(s));
  attach_port_chooser(picked);
  track(picked, id, view, dir);
}

void Daemon::on_control_packet(std::uint32_t id, PacketView& view, Direction dir, const Key& key,
                               std::optional<SessionTable::Map::iterator> found) {
  SessionState* s = find_or_replace(key, dir, view, found);
  if (!s) {
    const bool syn = view.has_flag(tcp_flag::syn) && !view.has_flag(tcp_flag::ack);
    if (syn && dir == Direction::client_to_server && !sessions_.contains(key)) {
      start_half_open(id, view, key);  // the replaced session's 4-tuple, a new connection
      return;
    }
    ++stats_.untracked;
    verdict(id, netlink::Verdict::accept);
    return;
  }
  const bool client_syn = dir == Direction::client_to_server && view.has_flag(tcp_flag::syn);
  // The SYN's entry is not confirmed yet at this hook (conntrack confirms it after the last hook),
  // so the one query per session waits for the session's second packet.
  if (!s->ct_known && !client_syn) {
    query_conntrack(*s, key, dir);
    // Implicit FTPS: TLS from the first byte; the range opening as soon as the tuples are known.
    if (s->tracker && cfg_.implicit_tls(s->tuples.original.dst.port)) open_range(*s);
  }
  track(*s, id, view, dir);
}

void Daemon::track(SessionState& ss, std::uint32_t id, PacketView& view, Direction dir) {
  SessionState* s = &ss;
  if (s->dropping) {
    verdict(id, netlink::Verdict::drop);
    return;
  }
  // An ended session's last packets (ACK of the 221, FINs) still need its corrections.
  if (!s->tracker || (s->ended && s->tracker->corrections().empty())) {
    deliver(*s, dir, id, {});
    return;
  }
  // Held bytes are bounded per client address too (security review M6e): each held packet also
  // occupies a slot of the kernel's queue. A packet with payload that this session might hold is
  // dropped before the Tracker sees it, as if it was lost; its sender retransmits it.
  // Read only for a packet the session could hold (the count is shared by the queues: a lock).
  const Address& source = s->client();
  const std::size_t held_now =
      s->tracker->hold_enabled(dir) && !view.payload().empty() ? sessions_.held_of(source) : 0;
  if (held_now > 0 && held_now >= cfg_.openings.max_held_bytes_per_source) {
    count(Reason::source_hold_limit);
    refuse(Reason::source_hold_limit, source,
           "s" + std::to_string(s->id) + ": " + std::to_string(held_now) + " bytes held for " + source.to_string() +
               ", packet dropped (the sender retransmits)");
    verdict(id, netlink::Verdict::drop);
    return;
  }
  PacketOutcome out = take_outcome();
  s->tracker->on_packet(dir, view.bytes(), now_ms(), id, out);
  if (spdlog::should_log(spdlog::level::trace))
    for (const auto& d : out.decisions) spdlog::trace("s{}: {}", s->id, to_string(d));
  sessions_.account_held(*s);
  if (s->held > 0) timed_.insert(s->id);
  if (s->tracker->ended()) s->tcp_ended = true;
  act(*s, out, id, dir);
  give_outcome(std::move(out));
  if (s->label_retry) write_label(*s);
}

void Daemon::act(SessionState& s, PacketOutcome& out, std::optional<std::uint32_t> id, Direction dir) {
  in_act_ = true;
  bool end = false;
  bool rewrote = false;
  Reason end_reason = Reason::none;
  for (const Decision& d : out.decisions) {
    std::visit(Overloaded{
                   [&](const OpenData& od) {
                     // After a reset violation nothing of this packet is installed (review L7).
                     ++s.announcements;
                     if (!s.dropping) on_open(s, od);
                   },
                   [&](const CloseData& cd) {
                     if (s.opening && s.opening->opening.id.opening == cd.opening) close_opening(s, cd.reason);
                   },
                   [&](const Violation& v) {
                     ++s.refusals;
                     count(v.reason);
                     refuse(v.reason, s.client(),
                            "s" + std::to_string(s.id) + " " + std::string(name(v.direction)) + " \"" +
                                printable(v.bytes) + "\" (" + std::string(name(v.action)) + ")");
                     if (v.action == ViolationAction::reset) {
                       // Without a RST of our own, "reset" means: this and every later packet of the
                       // session are dropped; the peers time out.
                       s.dropping = true;
                       close_opening(s, v.reason);
                     }
                   },
                   [&](const Encrypted&) {
                     if (cfg_.ftps.mode == config::FtpsMode::per_client) {
                       // Stays queued: its end (FIN/RST), a CCC and its corrections are seen; the
                       // 234 waits for the range opening like an announcement for its opening.
                       open_range(s);
                       return;
                     }
                     spdlog::warn("session s{} {}: FTPS session: ftpwalld cannot see data ports; open a static passive "
                                  "range for it, or set ftps.mode = \"per-client\"",
                                  s.id, tuple_text(s.tuples.original));
                     // A session with corrections must stay queued (review L13): its later packets
                     // still need their sequence numbers shifted, TLS or not.
                     if (cfg_.queue.exempt_mark != 0 && s.tracker && !s.tracker->corrections().empty()) {
                       spdlog::info("session s{}: has corrections, stays queued (not exempted)", s.id);
                     } else if (cfg_.queue.exempt_mark != 0) {
                       auto r = ct_->set_mark(s.tuples.original, cfg_.queue.exempt_mark, cfg_.queue.exempt_mark);
                       if (!r) spdlog::warn("session s{}: connmark for the FTPS exemption: {}", s.id, r.error().message);
                     }
                   },
                   [&](const SessionEnd& e) {
                     end = true;
                     end_reason = e.reason;
                   },
                   [&](const Cleartext& c) {
                     if (c.direction != Direction::client_to_server) {
                       spdlog::debug("session s{}: the server's direction left TLS at offset {}", s.id, c.offset);
                       return;
                     }
                     if (info_allowed(6, s.client()))
                       spdlog::info("session s{} {}: clear command channel (CCC): announcements read and opened one by "
                                    "one again",
                                    s.id, tuple_text(s.tuples.original));
                     close_range(s, Reason::clear_command_channel);
                   },
                   [&](const Rewrite& rw) {
                     if (info_allowed(3, s.client()))
                       spdlog::info("session s{}: {}", s.id, to_string(Decision{rw}));
                     rewrote = true;
                     s.label_dirty = true;
                     // A length change shifts sequence numbers the kernel's window tracking does not
                     // know (it knows only its own seqadj): the peer's ACKs would look out of window,
                     // be marked INVALID, lose their NAT and land in the gateway's INPUT. One round
                     // trip, only for this connection, before the verdict of the changed packet
                     // (act() delivers after the decisions). Never the global
                     // nf_conntrack_tcp_be_liberal: that would end window checks for every connection.
                     if (rw.old_bytes.size() == rw.new_bytes.size() || s.liberal) return;
                     auto r = ct_->set_liberal(s.tuples.original);
                     if (r) {
                       s.liberal = true;
                       spdlog::info("session s{}: conntrack be_liberal set (sequence corrections follow)", s.id);
                     } else {
                       spdlog::error("session s{}: setting be_liberal on the conntrack entry: {} (its corrected "
                                     "packets may be marked INVALID)",
                                     s.id, r.error().message);
                     }
                   },
               },
               d);
  }
  in_act_ = false;
  // The history changed: recorded before the verdict of the packet that changed it (restarts),
  // and so is the HA label (failovers), which also names the announcement's opening.
  if (rewrote) record_corrections(s);
  if (s.label_dirty) write_label(s);
  if (s.dropping) {
    for (auto& r : out.released) verdict(static_cast<std::uint32_t>(r.tag), netlink::Verdict::drop);
    if (id && out.verdict == PacketOutcome::Verdict::accept) verdict(*id, netlink::Verdict::drop);
    return;
  }
  for (auto& r : out.released) {
    // A held packet past a hole when its hold ended: dropped, its sender retransmits it.
    if (r.drop) {
      verdict(static_cast<std::uint32_t>(r.tag), netlink::Verdict::drop);
      continue;
    }
    deliver(s, r.direction, static_cast<std::uint32_t>(r.tag), std::move(r.bytes));
  }
  if (id && out.verdict == PacketOutcome::Verdict::accept) {
    if (out.modified) deliver(s, dir, *id, out.bytes);
    else deliver(s, dir, *id, std::vector<std::uint8_t>{});
  }
  if (end) {
    end_session(s, end_reason);
    if (end_reason == Reason::session_quit || end_reason == Reason::service_closing) exempt_ended(s);
  }
}

// After a 221 (QUIT) or a 421 nothing of the control connection is read any more: its later lines
// would meet the ended session and pass untouched (review M2). So the connection leaves the queue
// (queue.exempt_mark on its entry, the FTPS stand-aside's bit), set before the 221's own verdict
// goes out (verdicts are sent at the round's end): the FIN, ACK and FIN/ACK that close it are not
// queued (issue 13: three of a whole session's 22 queued packets). Not for a session with
// corrections: its remaining packets still need their sequence numbers shifted.
void Daemon::exempt_ended(SessionState& s) {
  if (cfg_.queue.exempt_mark == 0 || s.exempted || !s.ct_known || s.tcp_ended) return;
  if (s.tracker && !s.tracker->corrections().empty()) return;
  if (auto r = ct_->set_mark(s.tuples.original, cfg_.queue.exempt_mark, cfg_.queue.exempt_mark); !r) {
    spdlog::debug("session s{}: connmark after its end: {} (it lingers until its connection ends)", s.id, r.error().message);
    return;
  }
  ++stats_.exempted;
  s.exempted = true;
  spdlog::debug("session s{}: out of the queue after its end (connmark {:#x})", s.id, cfg_.queue.exempt_mark);
}

// NAT66/NPTv6 is out of scope (issue 10): a translated IPv6 session is passed through untouched,
// its announcements neither rewritten nor opened, with one warning (nat66_unsupported).
bool Daemon::translated_ipv6(SessionState& s) {
  if (s.tuples.family() != Family::v6 || (!s.tuples.client_nat() && !s.tuples.server_nat())) return false;
  count(Reason::nat66_unsupported);
  refuse(Reason::nat66_unsupported, s.client(),
         "s" + std::to_string(s.id) + " " + tuple_text(s.tuples.original) + ": conntrack translates it to " +
             tuple_text(s.tuples.reply) + " (NAT66/NPTv6 is not supported), passed untouched");
  return true;
}

void Daemon::on_open(SessionState& s, const OpenData& od) {
  s.last = LastAnnouncement{od.kind, od.announced_by, od.destination.port, od.inside.port};
  s.label_dirty = true;
  if (s.opening) close_opening(s, Reason::opening_replaced);
  const Address& client = s.client();
  // Built only for a refusal: an accepted announcement costs no string.
  const auto what = [&] { return "s" + std::to_string(s.id) + " " + od.source.to_string() + " -> " + od.destination.to_string(); };
  // The data SYN reaches the arbitration (filter FORWARD) after nat PREROUTING: key by what it shows.
  const OpeningBook::Match match{od.source, od.nat() ? od.inside : od.destination};
  // opening_clash: one session never closes another's opening (review L8); clients that share
  // one address (CGNAT) would kill or take over each other's. The newer announcement gets none,
  // as nf_conntrack_ftp refuses an expectation that clashes with another master's.
  if (const Reason why = openings_.admit(s.id, client, match); why != Reason::none) {
    count(why);
    refuse(why, client,
           what() + ": " + std::to_string(openings_.size()) + " openings live, " +
               std::to_string(openings_.of_client(client)) + " of " + client.to_string());
    return;
  }
  firewall::Opening o;
  o.id = {s.id, od.opening};
  o.family = od.family;
  o.source = od.source;
  o.destination = od.destination;
  o.expires = now() + std::chrono::seconds(cfg_.openings.lifetime_s);  // monotonic (backend.hpp)
  o.queue = cfg_.queue.number;  // the data SYN comes to us: first SYN wins (on_data_syn)
  o = nat_parts(s, od, std::move(o));
  // Its DNAT match may have gone to another queue's session since the port was chosen (one
  // DnatClaims for all the daemon's queues).
  if (const Reason why = openings_.add(s.id, client, o); why != Reason::none) {
    count(why);
    refuse(why, client, what() + ": its DNAT match is another session's");
    return;
  }
  OpeningState st;
  st.opening = o;
  s.opening = std::make_unique<OpeningState>(std::move(st));
  timed_.insert(s.id);
  const std::uint64_t token = next_token_++;
  pending_[token] = Pending{Pending::Kind::open, s.id, od.announced_by, o.id, now()};
  gate_.opening_started(s.id, od.announced_by);
  worker_->submit(firewall::OpenStep{o}, token);
}

// Restarts keep sessions alive (issue 5): a session with corrections cannot be rebuilt from the
// wire, so its history is written (state_dir.hpp) before the verdict of the packet that changed
// it. Collapsing acknowledged corrections is not recorded: a restored history that still lists
// them maps every sequence number the same way and collapses them again on the next ACK.
void Daemon::record_corrections(SessionState& s) {
  if (!s.tracker) return;
  if (s.ct_id == 0) {
    spdlog::warn("session s{}: no conntrack id, its corrections are not recorded (a restart would lose them)", s.id);
    return;
  }
  if (auto w = state_->save(s.ct_id, s.tuples, s.key, s.tracker->corrections()); !w) {
    spdlog::error("session s{}: recording its corrections: {}", s.id, w.error().message);
    return;
  }
  s.recorded = true;
}

// ---- [ha]: an active/backup pair (issue 15) -------------------------------------------------------
// The state a backup needs travels in the control connection's conntrack labels, which conntrackd
// replicates with the entry (core/ha_label.hpp). Written when the session becomes known (its
// second packet), at every rewrite and whenever its opening comes or goes, before the verdict
// of the packet that changed it; one ctnetlink round trip, skipped when nothing changed.
void Daemon::write_label(SessionState& s) {
  s.label_dirty = false;
  if (!cfg_.ha.enabled || !s.tracker || s.ct_id == 0) return;
  const HaLabel l = make_label(s.tracker->corrections(), s.tuples, s.last, s.opening != nullptr);
  s.label_retry = !l.carried;
  const LabelBytes b = encode_label(l);
  if (s.label_set && b == s.label) return;
  ++stats_.ha_label_writes;
  if (auto r = ct_->set_labels(s.tuples.original, b); !r) {
    ++stats_.ha_label_errors;
    if (!s.label_failed)
      spdlog::error("session s{} {}: writing its HA label: {}; a backup could not continue it", s.id,
                    tuple_text(s.tuples.original), r.error().message);
    s.label_failed = true;
    return;
  }
  if (!l.carried && (!s.label_set || decode_label(s.label).value_or(HaLabel{}).carried))
    spdlog::info("session s{}: its correction history no longer fits its HA label: after a failover the new master "
                 "refuses it (pickup_without_history)", s.id);
  s.label = b;
  s.label_set = true;
}

std::unique_ptr<Tracker> Daemon::tracker_from_label(SessionState& s, const netlink::ConntrackEntry& e, const HaLabel& l) {
  s.tuples = e.tuples;
  s.ct_known = true;
  s.ct_id = e.id;
  s.liberal = e.liberal();
  s.label = e.labels;
  s.label_set = true;
  s.last = l.last;
  const auto refused = [&](const std::string& why) -> std::unique_ptr<Tracker> {
    count(Reason::pickup_without_history);
    refuse(Reason::pickup_without_history, s.tuples.client_real(), tuple_text(s.tuples.original) + ": " + why);
    return nullptr;
  };
  if (e.has_helper()) return refused("it carries the kernel helper \"" + e.helper + "\"");
  auto history = label_history(l, s.tuples);
  if (!history) return refused("its HA label: " + history.error().message);
  const PickupHistory h = history->empty() ? PickupHistory::no_corrections : PickupHistory::restored;
  auto t = Tracker::pick_up(s.tuples, *s.policy, h, std::move(*history), Tracker::LineStart::at_first_segment);
  if (!t) return refused(t.error().message);
  ++stats_.ha_continued;
  if (info_allowed(2, s.tuples.client_real()))
    spdlog::info("session s{} {} continued from its HA label (offset {} {}{}{}); its announcements count after one "
                 "command/reply round trip",
                 s.id, tuple_text(s.tuples.original), name(l.corrected), static_cast<std::int32_t>(l.base),
                 l.rewrite_pending ? ", one rewrite unacknowledged" : "", l.opening_live ? ", opening pending" : "");
  return std::make_unique<Tracker>(std::move(*t));
}

// A session of an entry with an HA label, added to the table: its Tracker from the label (none when
// refused), its port chooser, be_liberal and its live opening.
Daemon::Continued Daemon::continue_session(SessionState s, const Key& key, const netlink::ConntrackEntry& e,
                                           const HaLabel& l) {
  s.key = key;
  s.policy = policy_;
  s.tracker = tracker_from_label(s, e, l);
  ++stats_.pickups;
  SessionState& added = add_session(key, std::move(s));
  if (!added.tracker) return {added, false};
  attach_port_chooser(added);
  return {added, continue_from_label(added, e, l)};
}

// Returns whether an opening was put in place.
bool Daemon::continue_from_label(SessionState& s, const netlink::ConntrackEntry& e, const HaLabel& l) {
  // conntrackd carries the TCP state, not ftpwalld's be_liberal: without it the shifted ACKs of a
  // corrected session would be INVALID here.
  if (!s.tracker->corrections().empty() && !e.liberal()) {
    if (auto r = ct_->set_liberal(s.tuples.original); r) s.liberal = true;
    else spdlog::error("session s{}: be_liberal after the takeover: {}", s.id, r.error().message);
  }
  // The id stays clear of the Tracker's own (1, 2, ...): its CloseData never names this one; it
  // goes when the next announcement replaces it, at the session's end or at its lifetime.
  auto od = label_opening(l, s.tuples, 0x7fffffff);
  if (!od) return false;
  on_open(s, *od);
  s.label_dirty = false;  // the label already says so
  return s.opening != nullptr;
}

// `ftpwall takeover` (keepalived's notify script, after conntrackd -c): every entry with an HA
// label is a session this gateway continues; one this daemon knew from its own time as master is
// stale (the other gateway went on with it) and is replaced. Runs again 1 s and 3 s later.
Daemon::TakeoverCount Daemon::takeover() {
  TakeoverCount c;
  ++stats_.ha_takeovers;
  std::vector<netlink::ConntrackEntry> entries;
  const std::vector<std::uint16_t> ports = cfg_.steered_ports();
  for (const Family f : {Family::v4, Family::v6}) {
    auto n = ct_->dump(
        f,
        [&](const netlink::ConntrackEntry& e) {
          if (e.tcp_state == tcp_established && decode_label(e.labels)) entries.push_back(e);  // to a steered port
        },
        ports);
    if (!n) spdlog::error("takeover: conntrack dump (IPv{}): {}", static_cast<int>(f), n.error().message);
  }
  for (const auto& e : entries) {
    const HaLabel l = *decode_label(e.labels);
    const Key key{e.tuples.original.src, e.tuples.reply.src};
    if (auto it = sessions_.find_it(key); it != sessions_.end()) {
      // Continued by this takeover already, or started since: current.
      if (it->second.started >= takeover_started_ && it->second.ct_id == e.id) continue;
      // Its Tracker goes first: closing its opening must not write its stale label over the one
      // conntrackd brought.
      it->second.tracker.reset();
      end_session(it->second, Reason::opening_replaced);
      gate_.release(it->second.id, false);  // what waited for it goes on, as at a 4-tuple's reuse
      erase_session(it);
      ++c.replaced;
    }
    SessionState s;
    s.id = new_session_id();
    const Continued r = continue_session(std::move(s), key, e, l);
    if (!r.session.tracker) {
      ++c.refused;
      continue;
    }
    ++c.sessions;
    if (r.opened) ++c.openings;
  }
  spdlog::info("takeover: {} sessions continued from their HA labels, {} openings put in place, {} refused, {} stale "
               "sessions replaced",
               c.sessions, c.openings, c.refused, c.replaced);
  return c;
}

std::string Daemon::takeover_json() {
  if (!cfg_.ha.enabled)
    return nlohmann::json{{"error", "ftpwalld runs without [ha] enabled = true (" + cfg_.source + "): nothing to take over"}}
        .dump();
  takeover_started_ = Clock::now();
  const TakeoverCount c = takeover();
  takeover_again_ = {Clock::now() + std::chrono::seconds(1), Clock::now() + std::chrono::seconds(3)};
  return nlohmann::json{{"sessions", c.sessions}, {"openings", c.openings}, {"refused", c.refused}, {"replaced", c.replaced}}
      .dump();
}

// `ftpwall standby` (keepalived's notify on becoming backup or faulty): this gateway sees no more
// traffic; its sessions go (Tracker first: no label is written on the way out) and their openings
// with them, so nothing stale waits here for the next takeover. Should the gateway still get a
// session's packets, the session is continued from its label at the next one.
std::string Daemon::standby_json() {
  if (!cfg_.ha.enabled)
    return nlohmann::json{{"error", "ftpwalld runs without [ha] enabled = true (" + cfg_.source + "): nothing to hand over"}}
        .dump();
  takeover_again_.clear();
  unsigned sessions = 0, openings = 0;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second.opening) ++openings;
    it->second.tracker.reset();
    end_session(it->second, Reason::ha_standby);
    gate_.release(it->second.id, false);
    it = erase_session(it);
    ++sessions;
  }
  count(Reason::ha_standby);
  spdlog::info("standby ({}): {} sessions dropped, {} openings closed; the master continues them from their HA labels",
               name(Reason::ha_standby), sessions, openings);
  return nlohmann::json{{"sessions", sessions}, {"openings", openings}}.dump();
}

void Daemon::forget(SessionState& s) {
  if (s.recorded) state_->remove(s.ct_id);
  s.recorded = false;
}

// Records of an earlier instance: kept only when conntrack still has the entry they name (same
// original tuple, same CTA_ID: a reused 4-tuple is another connection). The session is picked up
// with them at its next packet.
void Daemon::restore_records() {
  for (auto& [path, rec] : state_->load_all()) {
    if (!rec) {
      spdlog::warn("state record {}: {}: removed", path, rec.error().message);
      ::unlink(path.c_str());
      continue;
    }
    ++stats_.ct_queries;
    auto e = ct_->get(rec->tuples.original);
    if (!e || !*e || (*e)->id != rec->ct_id) {
      spdlog::info("state record {}: {}: removed", path,
                   !e ? e.error().message : !*e ? std::string("connection gone") : std::string("4-tuple reused"));
      ::unlink(path.c_str());
      continue;
    }
    spdlog::info("session {} restored from {}: {} + {} corrections", tuple_text(rec->tuples.original), path,
                 rec->corrections.corrections(Direction::client_to_server),
                 rec->corrections.corrections(Direction::server_to_client));
    restored_[rec->key] = std::move(*rec);
  }
}

void Daemon::note_preexisting() {
  const std::vector<std::uint16_t> ports = cfg_.steered_ports();
  for (const Family f : {Family::v4, Family::v6}) {
    // The kernel walks the table and sends the entries to steered ports only (a gateway's table
    // may hold a million others).
    auto n = ct_->dump(f, [&](const netlink::ConntrackEntry& e) { preexisting_[e.tuples.original] = e.id; }, ports);
    if (!n) {
      spdlog::warn("conntrack dump (IPv{}) at start: {}: no such connection from before the start is picked up",
                   static_cast<int>(f), n.error().message);
      continue;
    }
  }
  spdlog::info("{} control connections from before the start may be picked up", preexisting_.size());
}

// The NAT parts of an opening (issue 5), from the core's OpenData and the session's tuples:
//   inside != destination (passive to a DNATed server; active to a client behind MASQUERADE):
//     FTPWALL-DNAT  -s source -d destination --dport P -j DNAT --to-destination inside
//   active (PORT/EPRT) while the server is DNATed: the server's data connection must leave with
//   the address the client dialled, which plain MASQUERADE gets wrong when it is a secondary one:
//     FTPWALL-SNAT  -s server_real -d client --dport P -j SNAT --to-source server_as_seen
// "Port in use", as nf_nat_ftp (issue 5): two clients behind the same MASQUERADE announcing the
// same port to the same server would get two DNAT rules with one match
//   FTPWALL-DNAT -s server -d public --dport P -j DNAT --to-destination clientA:P / clientB:P
// and the first would take both data connections. A port is taken when another session's live
// opening (installed or in flight) DNATs that match; the session's own opening is about to be
// replaced, as the kernel replaces an expectation of the same master.
void Daemon::attach_port_chooser(SessionState& s) {
  if (!s.tracker) return;
  s.tracker->set_port_chooser(
      [this, id = s.id](const Endpoint& inside, const Endpoint& wanted, const Address& peer) -> std::optional<std::uint16_t> {
        // One look-up per port tried, not a scan of every session (review M6g).
        auto port = next_free_port(wanted.port, [&](std::uint16_t p) {
          return openings_.dnat_in_use(id, peer, Endpoint{wanted.addr, p});
        });
        if (port && *port != wanted.port)
          spdlog::info("session s{}: port in use: {} -> {} announced as {}:{}", id, peer.to_string(), wanted.to_string(),
                       wanted.addr.to_string(), *port);
        else if (!port)
          spdlog::warn("session s{}: {}: no free public port for {} from {}", id, name(Reason::nat_port_exhausted),
                       inside.to_string(), wanted.to_string());
        return port;
      });
}

firewall::Opening Daemon::nat_parts(const SessionState& s, const OpenData& od, firewall::Opening o) const {
  if (od.nat()) o.dnat_to = od.inside;
  if (od.announced_by == Direction::client_to_server && s.tuples.server_nat() && od.source == s.tuples.server_real())
    o.snat_to = s.tuples.server_as_seen();
  return o;
}

// Per-client FTPS (issue 14): one range opening for an encrypted session, from its client's real
// address to its server's passive range (with the DNAT to the inside server behind the gateway,
// ports kept), for the session's lifetime (at most ftps.max_lifetime). Counted against the same
// limits as one-shot openings; its SYNs are not queued (any number of data connections).
void Daemon::open_range(SessionState& s) {
  if (s.range || s.dropping) return;
  const Address& client = s.client();
  const config::PortRange pr = cfg_.ftps.range_for(s.tuples.server_real(), s.tuples.reply.src.port);
  const std::string what = "s" + std::to_string(s.id) + " " + tuple_text(s.tuples.original);
  if (pr.empty()) {
    count(Reason::ftps_range_missing);
    refuse(Reason::ftps_range_missing, client,
           what + ": no ftps.passive_ports (or [[ftps.server]]) for server " + s.tuples.server_real().to_string() +
               ", nothing opened");
    return;
  }
  if (const Reason why = openings_.admit_range(client); why != Reason::none) {
    count(why);
    refuse(why, client,
           what + ": range opening: " + std::to_string(openings_.size()) + " openings live, " +
               std::to_string(openings_.of_client(client)) + " of " + client.to_string());
    return;
  }
  firewall::Opening o;
  o.family = s.tuples.family();
  o.source = s.tuples.client_real();
  o.destination = {s.tuples.server_as_seen(), pr.first};
  o.port_last = pr.last;
  if (s.tuples.server_nat()) o.dnat_to = Endpoint{s.tuples.server_real(), pr.first};
  o.expires = firewall::Clock::now() + std::chrono::seconds(cfg_.ftps.max_lifetime_s);
  // Another session of this client to this server has the same range: it joins that range
  // opening (installed again with the later expiry) instead of replacing it in the kernel.
  auto [share, fresh] = range_shares_.try_emplace(range_key(o));
  if (fresh) share->second.id = {s.id, ++s.ranges, true};
  o.id = share->second.id;
  share->second.expires = std::max(share->second.expires, o.expires);
  o.expires = share->second.expires;
  share->second.sessions.insert(s.id);
  openings_.add_range(client);
  s.range = std::make_unique<firewall::Opening>(o);
  s.range_installed = false;
  const std::uint64_t token = next_token_++;
  const Direction held = Direction::server_to_client;  // the 234
  pending_[token] = Pending{Pending::Kind::open, s.id, held, o.id, now()};
  // The 234 (explicit FTPS) waits for it; on an implicit port the server's first packets do.
  gate_.opening_started(s.id, held);
  worker_->submit(firewall::OpenStep{o}, token);
}

void Daemon::close_range(SessionState& s, Reason why) {
  if (!s.range) return;
  const firewall::Opening& o = *s.range;
  openings_.remove_range(s.client());
  auto share = range_shares_.find(range_key(o));
  if (share != range_shares_.end()) {
    share->second.sessions.erase(s.id);
    if (!share->second.sessions.empty()) {  // other sessions of the client still use it
      if (info_allowed(7, s.client()))
        spdlog::info("range opening s{} r{}: session s{} ended ({}), kept for {} more", o.id.session, o.id.opening, s.id,
                     name(why), share->second.sessions.size());
      s.range.reset();
      s.range_installed = false;
      return;
    }
    range_shares_.erase(share);
  }
  if (info_allowed(7, s.client()))
    spdlog::info("range opening s{} r{} closed: {}", o.id.session, o.id.opening, name(why));
  submit_close(s.id, o.id);
  s.range.reset();
  s.range_installed = false;
}

// An opening's rules or elements go (a close is never an error when they are already gone).
void Daemon::submit_close(std::uint64_t session, const firewall::OpeningId& id) {
  const std::uint64_t token = next_token_++;
  pending_[token] = Pending{Pending::Kind::close, session, Direction::client_to_server, id, now()};
  worker_->submit(firewall::CloseStep{id}, token);
}

void Daemon::close_opening(SessionState& s, Reason why) {
  if (!s.opening) return;
  const firewall::Opening& o = s.opening->opening;
  openings_.remove(s.id, s.client(), o);
  if (o.dnat_to && backend_->queues_unnamed_syns()) dnat_gone_.add({o.source, *o.dnat_to}, now(), std::chrono::seconds(1));
  spdlog::debug("opening s{} o{} closed: {}", o.id.session, o.id.opening, name(why));
  submit_close(s.id, o.id);
  s.opening.reset();
  s.label_dirty = true;
  if (!in_act_) write_label(s);
}

void Daemon::end_session(SessionState& s, Reason why) {
  if (s.ended) return;
  close_opening(s, why);
  close_range(s, why);
  s.ended = true;
  s.ended_at = now();
  spdlog::debug("session s{} {} ended: {}", s.id, tuple_text(s.tuples.original), name(why));
}

void Daemon::deliver(SessionState& s, Direction dir, std::uint32_t id, std::vector<std::uint8_t>& bytes) {
  gate_.deliver(s.id, dir, id, bytes);
}

PacketOutcome Daemon::take_outcome() {
  if (outcome_spares_.empty()) return {};
  PacketOutcome out = std::move(outcome_spares_.back());
  outcome_spares_.pop_back();
  return out;
}

void Daemon::give_outcome(PacketOutcome&& out) {
  if (outcome_spares_.size() >= 4 || out.bytes.capacity() > 8192 || out.decisions.capacity() > 16 ||
      out.released.capacity() > 16)
    return;  // a large one is not kept (its memory)
  out.clear();
  outcome_spares_.push_back(std::move(out));
}

// A data connection's first SYN, queued by an opening's rule (-j NFQUEUE instead of ACCEPT). The
// first SYN wins; its retransmissions (same source port) pass; any other connection to the same
// opening is dropped: one opening, one data connection. The rule stays until the core closes the
// opening (transfer done, replaced, session over) or it expires, so a lost SYN can be sent again.
void Daemon::on_data_syn(std::uint32_t id, const PacketView& view, std::uint32_t mark) {
  const Address src = view.src_address();
  const Endpoint dst{view.dst_address(), view.dst_port()};
  // Built only for a log line: a SYN passed on or admitted without one costs no string.
  const auto what = [&] { return Endpoint{src, view.src_port()}.to_string() + " -> " + dst.to_string(); };
  const auto owner = openings_.owner(src, dst);
  SessionState* s = owner ? sessions_.by_id(*owner) : nullptr;
  // Past its lifetime an opening admits nothing, also before the tick closes it.
  const bool named = s && s->opening;
  const bool live = named && now() < s->opening->opening.expires;
  if (!live || !view.has_flag(tcp_flag::syn) || view.has_flag(tcp_flag::ack)) {
    if (!named && backend_->queues_unnamed_syns() && !dnat_gone_.contains({src, dst}, now())) {
      // The pairs rule queues every new connection between two addresses with an opening between
      // them: one that no opening names (nor a DNAT part closed a moment ago, which may have
      // translated it) is not ours to judge. Accepted without queue.accept_mark, it meets the
      // admin's rules as if no rule of ours had seen it.
      ++stats_.passed_syns;
      verdict(id, netlink::Verdict::accept);
      return;
    }
    ++stats_.data_syns;
    count(Reason::opening_gone);
    refuse(Reason::opening_gone, src, what());
    verdict(id, netlink::Verdict::drop);
    return;
  }
  ++stats_.data_syns;
  OpeningState& o = *s->opening;
  switch (OpeningBook::arbitrate(o.winner_port, view.src_port())) {
    case OpeningBook::Syn::first:
      if (info_allowed(5, src)) spdlog::info("data connection s{} o{} {}", o.opening.id.session, o.opening.id.opening, what());
      admit(id, mark);
      return;
    case OpeningBook::Syn::retransmission:
      admit(id, mark);  // the same connection's SYN, retransmitted
      return;
    case OpeningBook::Syn::taken:
      break;
  }
  {
    count(Reason::opening_used);
    refuse(Reason::opening_used, src, "s" + std::to_string(s->id) + " o" + std::to_string(o.opening.id.opening) + " " + what() +
                             ": taken by source port " + std::to_string(*o.winner_port));
    verdict(id, netlink::Verdict::drop);
  }
}

// The admitted data SYN carries queue.accept_mark from here on (its other mark bits kept): the
// admin's chains in other tables accept it by that bit (an accept in ours is not final).
void Daemon::admit(std::uint32_t id, std::uint32_t mark) {
  if (cfg_.queue.accept_mark == 0) {
    verdict(id, netlink::Verdict::accept);
    return;
  }
  auto r = queue_->verdict(id, netlink::Verdict::accept, {}, mark | cfg_.queue.accept_mark);
  checksum_partial_.erase(id);
  if (!r) {
    auto d = limiter_.allow(1000, log::RateLimiter::Clock::now());
    if (d.log) spdlog::warn("verdict for packet {}: {}", id, r.error().message);
  }
}

void Daemon::on_completions() {
  // The vector trades places with the worker's (capacity kept); taken from the member so that a
  // nested call would get a vector of its own.
  std::vector<firewall::BackendWorker::Completion> done = std::move(completions_);
  worker_->take_completions(done);
  const auto now = Clock::now();
  for (auto& c : done) {
    auto it = pending_.find(c.token);
    if (it == pending_.end()) continue;
    const Pending p = it->second;
    pending_.erase(it);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - p.since).count();
    if (p.kind == Pending::Kind::reinstall) {
      if (!c.result) spdlog::error("queue {}: reinstalling openings: {}", queue_number(), c.result.error().message);
      continue;
    }
    if (p.kind == Pending::Kind::check) {
      check_in_flight_ = false;
      if (!c.result) spdlog::error("kernel check: {}", c.result.error().message);
      if (check_repair_ && !check_repair_->repair.empty()) {
        spdlog::warn("{}", check_repair_->repair);
        for (auto& f : followers_) f->daemon->mailbox_->post([d = f->daemon.get()] { d->reinstall_openings(); });
      }
      last_check_.at = Clock::now();
      last_check_.ok = c.result.ok();
      last_check_.result = !c.result ? c.result.error().message
                           : check_repair_ && !check_repair_->repair.empty() ? check_repair_->repair
                                                                           : "hooks complete";
      if (check_repair_) last_check_.backend = check_repair_->backend;
      check_repair_.reset();
      continue;
    }
    if (p.kind == Pending::Kind::close) {
      if (!c.result)
        spdlog::warn("closing opening s{} {}{}: {}", p.opening.session, p.opening.range ? "r" : "o", p.opening.opening,
                     c.result.error().message);
      continue;
    }
    SessionState* s = sessions_.by_id(p.session);
    if (p.opening.range) {
      const bool current_range = s && s->range && s->range->id == p.opening;
      if (!c.result) {
        ++stats_.opening_failures;
        spdlog::error("range opening s{} r{} not installed: {}", p.opening.session, p.opening.opening,
                      c.result.error().message);
        // Every session sharing it loses it (the kernel may hold part of it: closed below).
        if (current_range)
          if (auto share = range_shares_.find(range_key(*s->range)); share != range_shares_.end()) {
            for (std::uint64_t id : share->second.sessions)
              if (SessionState* o = sessions_.by_id(id); o && o->range) {
                openings_.remove_range(o->client());
                o->range.reset();
              }
            range_shares_.erase(share);
          }
        submit_close(p.session, p.opening);
      } else {
        ++stats_.openings;
        if (current_range) {
          s->range_installed = true;
          const auto& o = *s->range;
          if (info_allowed(4, s->client()))
            spdlog::info("range opening s{} r{} {} -> {}:{}-{}{} for the FTPS session, at most {} s (in the kernel after "
                         "{} us); active mode (PORT/EPRT) inside TLS cannot be opened",
                         o.id.session, o.id.opening, o.source.to_string(),
                         o.destination.addr.family == Family::v6 ? "[" + o.destination.addr.to_string() + "]"
                                                                 : o.destination.addr.to_string(),
                         o.destination.port, o.port_last,
                         o.dnat_to ? " dnat to " + o.dnat_to->addr.to_string() : std::string(), cfg_.ftps.max_lifetime_s, us);
        }
      }
      gate_.opening_done(p.session, p.direction, s && s->dropping);
      continue;
    }
    const bool current = s && s->opening && s->opening->opening.id == p.opening;
    if (!c.result) {
      ++stats_.opening_failures;
      spdlog::error("opening s{} o{} not installed: {}", p.opening.session, p.opening.opening, c.result.error().message);
      if (current) {
        openings_.remove(s->id, s->client(), s->opening->opening);
        s->opening.reset();
      }
      // Whatever part of it a partial failure left in the kernel goes (review L6): closing an
      // opening that is not there is no error.
      submit_close(p.session, p.opening);
    } else {
      ++stats_.openings;
      if (current) {
        s->opening->installed = true;
        const auto& o = s->opening->opening;
        if (info_allowed(4, s->client())) {  // the text only for a line that is written (issue 13)
          std::string nat;
          if (o.dnat_to) nat += " dnat to " + o.dnat_to->to_string();
          if (o.snat_to) nat += " snat to " + o.snat_to->to_string();
          spdlog::info("opening s{} o{} {} -> {}{} for {} s (in the kernel after {} us)", o.id.session, o.id.opening,
                       o.source.to_string(), o.destination.to_string(), nat, cfg_.openings.lifetime_s, us);
        }
      }
    }
    gate_.opening_done(p.session, p.direction, s && s->dropping);
  }
  done.clear();
  completions_ = std::move(done);
}

// The periodic work that speaks for the whole daemon: the leader's only.
void Daemon::leader_timer(Clock::time_point now) {
  if (watchdog_every_ && now >= next_watchdog_) {
    next_watchdog_ = now + *watchdog_every_;
    notify::watchdog();
  }
  if (now >= next_status_) {
    next_status_ = now + status_interval;
    notify::status(live_status());
  }
  if (!cfg_.metrics_file.empty() && now >= next_metrics_) {
    next_metrics_ = now + std::chrono::seconds(cfg_.metrics_interval_s);
    write_metrics();
  }
  if (cfg_.audit == config::AuditMode::summary && now >= next_audit_) {
    if (next_audit_ != Clock::time_point{}) audit_summary();
    next_audit_ = now + std::chrono::seconds(cfg_.audit_interval_s);
  }
  if (now >= next_kernel_check_ && !check_in_flight_) {
    next_kernel_check_ = now + kernel_check_interval;
    check_kernel();
  }
}

void Daemon::on_timer() {
  std::uint64_t expirations;
  while (::read(timer_fd_, &expirations, sizeof expirations) == static_cast<ssize_t>(sizeof expirations)) {
  }
  const auto now = Clock::now();
  const std::uint64_t ms = now_ms();
  const auto mono = firewall::Clock::now();  // opening expiry: monotonic, not the wall clock
  if (!takeover_again_.empty() && takeover_again_.front() <= now) {
    takeover_again_.erase(takeover_again_.begin());
    takeover();
  }
  // What is due to the tenth of a second: held packets and openings. Only the sessions in timed_
  // are visited at each tick (issue 13: a scan of every session ten times a second was ~3 % of the
  // daemon under whole sessions, where ~60 000 ended ones linger, and grows with idle sessions);
  // the whole table once a second, which also rebuilds timed_ (nothing is missed for longer).
  const auto due = [&](SessionState& s) {
    if (s.tracker && !s.ended) {
      if (auto at = s.tracker->next_deadline(); at && *at <= ms) {
        PacketOutcome out = s.tracker->on_timer(ms);
        sessions_.account_held(s);
        act(s, out, std::nullopt, Direction::client_to_server);
      }
    }
    if (s.opening && mono >= s.opening->opening.expires) {
      spdlog::info("opening s{} o{} expired{}", s.id, s.opening->opening.id.opening, s.opening->winner_port ? "" : " unused");
      close_opening(s, Reason::none);
    }
  };
  const auto still_timed = [](const SessionState& s) { return s.opening || s.held > 0; };
  if (now < next_sweep_) {
    const std::vector<std::uint64_t> ids(timed_.begin(), timed_.end());
    for (std::uint64_t id : ids) {
      SessionState* s = sessions_.by_id(id);
      if (s) due(*s);
      if (!s || !still_timed(*s)) timed_.erase(id);
    }
  } else {
    next_sweep_ = now + sweep_interval;
    timed_.clear();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      SessionState& s = it->second;
      due(s);
      if (s.range && mono >= s.range->expires) close_range(s, Reason::ftps_lifetime_ended);
      const bool idle = gate_.idle(s.id);
      // An ended session is forgotten only once the connection ended on the wire as well (FIN
      // both ways, RST) or left conntrack (session_gone): after a 221/421 the TCP connection may
      // stay open, and its later lines must meet the ended session, never a pick-up (review M2).
      // Or once the connection left the queue (exempt_ended): its later lines never come.
      if (s.ended && idle && ((s.tcp_ended && now - s.ended_at >= linger) || (s.exempted && now - s.ended_at >= exempt_linger))) {
        it = erase_session(it);
      } else {
        // An ended session lingers (up to `linger` once its TCP connection ended too, longer while
        // it stays open); without corrections nothing of it needs its Tracker any more (on_packet
        // passes its packets untouched): ~1 KiB less per lingering session, which under churn
        // (thousands of sessions a second, 30 s each) is most of the daemon's memory.
        if (s.ended && s.tracker && idle && s.held == 0 && s.tracker->corrections().empty()) {
          s.was_encrypted = s.tracker->encrypted();
          s.tracker_released = true;
          s.tracker.reset();
          s.policy.reset();
        }
        if (still_timed(s)) timed_.insert(s.id);
        ++it;
      }
    }
  }
  // Half-open sessions nobody answered: oldest first, so the scan stops at the first young one.
  stats_.half_open_expired += half_open_.expire(now);
  if (control_) control_->expire(now);
  for (const auto& f : followers_)
    if (f->done && !stopping_) {
      spdlog::critical("queue {}'s thread ended: stopping", f->daemon->queue_number());
      follower_failed_ = true;
      stopping_ = true;
    }
  if (leader()) leader_timer(now);
  if (ct_events_lost_) {
    ct_events_lost_ = false;
    resync_conntrack();
  }
  if (!ct_events_ && now >= next_ct_check_) {  // no event socket: the old periodic check
    next_ct_check_ = now + ct_check_interval;
    check_conntrack();
  }
  if (now >= next_range_check_) {
    next_range_check_ = now + range_check_interval;
    check_ranges();
  }
}

// A range opening admits a whole port range for as long as its session lasts, so its end must
// not wait for a DESTROY event (a CLOSE entry lives 10 s, TIME_WAIT 120 s): the last packets of a
// TLS session may not reach the queue at all (a FIN that conntrack marks INVALID after the peer's
// RST carries no entry, and the steering matches none). Once a second, the entry of every session
// with a range opening is asked for: gone, another connection, TIME_WAIT or CLOSE ends the session.
void Daemon::check_ranges() {
  std::vector<std::uint64_t> ended;
  for (auto& [key, s] : sessions_) {
    if (!s.range || s.ended || s.ct_id == 0) continue;
    ++stats_.ct_queries;
    auto e = ct_->get(s.tuples.original);
    if (!e) continue;  // ctnetlink trouble: the DESTROY event or the next round decides
    if (!*e || (*e)->id != s.ct_id || (*e)->tcp_state == tcp_time_wait || (*e)->tcp_state == tcp_close) ended.push_back(s.id);
  }
  for (std::uint64_t id : ended)
    if (SessionState* s = sessions_.by_id(id)) {
      end_session(*s, Reason::connection_closed);
      s->tcp_ended = true;
    }
}

// Conntrack's DESTROY events: the connection left conntrack (closed, timed out, flushed).
void Daemon::on_ct_events() {
  auto b = ct_events_->read([&](const netlink::ConntrackEntry& e) { session_gone(sessions_.by_original(e.tuples.original), &e); });
  if (!b) {
    spdlog::error("{}", b.error().message);
    return;
  }
  stats_.ct_events += b->events;
  if (b->lost) {
    spdlog::warn("conntrack events were lost (socket buffer full): checking every session against a dump");
    ct_events_lost_ = true;
  }
}

void Daemon::session_gone(SessionTable::Map::iterator it, const netlink::ConntrackEntry* destroyed) {
  if (it == sessions_.end()) return;
  SessionState& s = it->second;
  const std::uint32_t ct_id = destroyed ? destroyed->id : 0;
  if (ct_id != 0 && s.ct_id != 0 && ct_id != s.ct_id) return;  // an earlier connection of that 4-tuple
  // The same id is no proof (bench/storm sessions on reused client ports): a SYN in TIME_WAIT makes
  // conntrack kill the old entry and make a new one, which the slab allocator puts where the old
  // one was, so CTA_ID (a hash of the entry's address and tuple) comes out the same, and the old
  // entry's DESTROY arrives after the new session learnt that id. A DESTROY in TIME_WAIT or CLOSE
  // for a session whose connection has not ended on the wire is checked against conntrack: a live
  // entry of that id there means the DESTROY was its predecessor's.
  if (destroyed && s.ct_known && !s.tcp_ended &&
      (destroyed->tcp_state == tcp_time_wait || destroyed->tcp_state == tcp_close)) {
    ++stats_.ct_queries;
    auto e = ct_->get(s.tuples.original);
    if (e && *e && (*e)->id == s.ct_id && (*e)->tcp_state != tcp_time_wait && (*e)->tcp_state != tcp_close) return;
  }
  // A session whose own entry was not looked up yet (its SYN seen, its second packet not): a
  // DESTROY naming an entry is of the connection this 4-tuple had before, whose TIME_WAIT entry
  // the SYN made conntrack kill (the new entry is not even confirmed while the SYN is queued).
  // Its own end shows on the wire or in its idle expiry. (bench/storm sessions found it: 0.1-0.7 %
  // of sessions on reused client ports were ended here and then passed untouched as
  // pickup_not_allowed.)
  if (ct_id != 0 && !s.ct_known) return;
  end_session(s, Reason::connection_closed);
  s.tcp_ended = true;
  s.ended_at = Clock::now() - linger;  // nothing of it can come any more: forgotten once idle
  if (gate_.idle(s.id)) erase_session(it);
}

// After lost events: one dump, and every session whose entry is not in it is gone.
void Daemon::resync_conntrack() {
  ++stats_.ct_resyncs;
  std::set<Tuple> alive;
  // Only the connections to steered ports, as the event socket: the kernel sends no other entry.
  const std::vector<std::uint16_t> ports = cfg_.steered_ports();
  for (const Family f : {Family::v4, Family::v6}) {
    auto n = ct_->dump(f, [&](const netlink::ConntrackEntry& e) { alive.insert(e.tuples.original); }, ports);
    if (!n) {
      spdlog::error("conntrack dump (IPv{}) after lost events: {}", static_cast<int>(f), n.error().message);
      return;
    }
  }
  for (const Tuple& t : sessions_.originals())
    if (!alive.contains(t)) session_gone(sessions_.by_original(t), nullptr);
}

// An iptables-restore of the admin's ruleset replaces whole tables and with them our hooks, chains
// and openings: put them back (daemon mode), and the live openings with them.
// The openings of this queue that are in the kernel (a shared range opening once).
std::vector<firewall::Opening> Daemon::live_openings() const {
  std::vector<firewall::Opening> live;
  std::set<firewall::OpeningId> ranges;
  for (const auto& [k, s] : sessions_) {
    if (s.opening && s.opening->installed) live.push_back(s.opening->opening);
    if (s.range && s.range_installed && ranges.insert(s.range->id).second) live.push_back(*s.range);
  }
  return live;
}

// Putting them back: each one not past its lifetime closed (whatever is left of it) and opened.
std::vector<firewall::Change> Daemon::reinstall_changes(const std::vector<firewall::Opening>& live) {
  std::vector<firewall::Change> again;
  for (const auto& o : live)
    if (o.expires > firewall::Clock::now()) again.push_back(firewall::CloseStep{o.id}), again.push_back(firewall::OpenStep{o});
  return again;
}

void Daemon::check_kernel() {
  const std::vector<firewall::Opening> live = live_openings();
  const bool daemon_mode = cfg_.hooks == config::HooksMode::daemon;
  const firewall::HookSpec spec = hook_spec();
  const std::uint64_t token = next_token_++;
  pending_[token] = Pending{Pending::Kind::check, 0, Direction::client_to_server, {}, Clock::now()};
  check_in_flight_ = true;
  // A repair is no error: the task says what it put back through this note, read at completion.
  check_repair_ = std::make_shared<CheckNote>();
  worker_->call(
      [daemon_mode, spec, live, note = check_repair_](firewall::FirewallBackend& b) -> Result<void> {
        note->backend = b.stats();  // read here, in the worker's thread, for `ftpwall status`
        auto st = b.hook_state();
        if (!st) return st.error();
        const bool incomplete = st->hooks_complete ? !*st->hooks_complete
                                                   : st->own_hooks < firewall::expected_own_hooks(spec, *st) || !st->accept_chain;
        const bool hooks_gone = daemon_mode && incomplete;
        if (!hooks_gone && st->openings >= live.size()) return {};
        if (hooks_gone) {
          if (auto r = b.install_hooks(spec); !r) return make_error("reinstalling hooks: " + r.error().message);
        } else if (!st->accept_chain) {
          return make_error("FTPWALL-ACCEPT is gone (hooks = \"admin\": reload the ruleset that declares it)");
        }
        if (auto r = b.apply(reinstall_changes(live)); !r) return make_error("reinstalling openings: " + r.error().message);
        note->repair = std::string("ftpwall rules were removed by someone else (") + (hooks_gone ? "hooks" : "openings") +
                       "): put back, " + std::to_string(live.size()) + " openings reinstalled";
        return {};
      },
      token);
}

// Conntrack forgot the connection (it closed, timed out, or was flushed): the session is over.
void Daemon::check_conntrack() {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    SessionState& s = it->second;
    bool gone = false;
    if (s.ct_known) {
      ++stats_.ct_queries;
      auto e = ct_->get(s.tuples.original);
      gone = e && !*e;
    }
    if (gone && gate_.idle(s.id)) {
      end_session(s, Reason::connection_closed);
      it = erase_session(it);
    } else {
      ++it;
    }
  }
}

// metrics_file: the Prometheus text, written to a temporary file beside it and renamed over it, so
// node_exporter never reads half a file. Readable by others (0644): node_exporter is not root.
void Daemon::write_metrics() {
  const std::string tmp = cfg_.metrics_file + ".tmp";
  const std::string text = log::prometheus_text(status_json());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  bool ok = fd >= 0;
  if (ok) {
    ::fchmod(fd, 0644);  // whatever the umask (the unit's is 0077)
    ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ok = ::close(fd) == 0 && ok;
  }
  ok = ok && ::rename(tmp.c_str(), cfg_.metrics_file.c_str()) == 0;
  if (!ok) {
    const int err = errno;
    if (fd >= 0) ::unlink(tmp.c_str());
    auto d = limiter_.allow(1001, log::RateLimiter::Clock::now());
    if (d.log) spdlog::warn("metrics_file {}: {}", cfg_.metrics_file, std::strerror(err));
  }
}

// audit = "summary": one line per interval instead of a line per opening and refusal.
void Daemon::audit_summary() {
  const DaemonStats total = total_stats();  // every queue's
  std::string reasons;
  std::uint64_t refused = 0;
  for (std::size_t i = 1; i < total.reasons.size(); ++i) {
    const std::uint64_t n = total.reasons[i] - audit_mark_.reasons[i];
    if (n == 0) continue;
    refused += n;
    reasons += (reasons.empty() ? " (" : ", ") + std::string(name(static_cast<Reason>(i))) + "=" + std::to_string(n);
  }
  if (!reasons.empty()) reasons += ")";
  spdlog::info("audit: {} openings installed, {} data connections, {} refused{} in the last {} s",
               total.openings - audit_mark_.openings, total.data_syns - audit_mark_.data_syns, refused, reasons,
               cfg_.audit_interval_s);
  audit_mark_ = total;
}

// The unit's STATUS= line (systemctl status): what an admin wants at a glance.
std::string Daemon::live_status() const {
  const Figures t = total_figures();
  std::uint64_t refusals = 0;
  for (std::size_t i = 1; i < t.stats.reasons.size(); ++i) refusals += t.stats.reasons[i];
  return std::string(backend_ ? backend_->name() : "") + ": " + std::to_string(t.sessions) + " sessions, " +
         std::to_string(t.openings) + " openings, " + std::to_string(t.stats.openings) + " opened, " +
         std::to_string(refusals) + " refused";
}

int Daemon::stop() {
  if (leader()) {
    notify::stopping();
    stop_followers();
  }
  // Every packet still waiting gets its verdict; held ones are released unmodified.
  const std::uint64_t far = now_ms() + 3'600'000;
  for (auto& [k, s] : sessions_) {
    if (s.tracker) {
      PacketOutcome out = s.tracker->on_timer(far);
      // A hold that ends here may withhold bytes (a correction): recorded before the verdicts, so
      // that the next start continues the session with it.
      if (!s.tracker->corrections().empty()) record_corrections(s);
      for (auto& r : out.released) {
        if (r.drop) {
          verdict(static_cast<std::uint32_t>(r.tag), netlink::Verdict::drop);
          continue;
        }
        gate_.deliver(s.id, r.direction, static_cast<std::uint32_t>(r.tag), std::move(r.bytes));
      }
    }
    gate_.release(s.id, false);
  }
  stats_.verdict_waits = gate_.waits();
  stats_.max_wait_us = gate_.max_wait_us();
  worker_.reset();  // applies what is queued, then joins
  int rc = follower_failed_ ? 1 : 0;
  if (!leader()) {
    // Its openings go with the leader's table; what may still post to it is refused from here.
    mailbox_->close();
  } else if (cfg_.hooks == config::HooksMode::daemon) {
    if (auto r = backend_->remove_hooks(); !r) {
      spdlog::error("removing hooks and chains: {}", r.error().message);
      rc = 1;
    }
  } else if (auto r = backend_->flush_own(); !r) {
    spdlog::error("flushing FTPWALL chains: {}", r.error().message);
    rc = 1;
  }
  const auto& q = queue_->stats();
  std::string reasons;
#define FTPWALL_DAEMON_REASON(n) \
  if (stats_.reasons[static_cast<std::size_t>(Reason::n)]) reasons += " " #n "=" + std::to_string(stats_.reasons[static_cast<std::size_t>(Reason::n)]);
  FTPWALL_REASONS(FTPWALL_DAEMON_REASON)
#undef FTPWALL_DAEMON_REASON
  spdlog::info("{}stopped: packets={} sessions={} pickups={} openings={} opening_failures={} data_syns={} passed_syns={} "
               "exempted={} ct_queries={} ct_events={} ct_resyncs={} half_open_expired={} verdict_waits={} max_wait_us={} "
               "enobufs={} verdict_errors={}{}{}",
               cfg_.queue.count > 1 ? fmt::format("queue {} ", queue_number()) : std::string(), stats_.packets, stats_.sessions, stats_.pickups, stats_.openings, stats_.opening_failures, stats_.data_syns,
               stats_.passed_syns, stats_.exempted, stats_.ct_queries, stats_.ct_events, stats_.ct_resyncs, stats_.half_open_expired,
               stats_.verdict_waits, stats_.max_wait_us, q.enobufs, q.verdict_errors,
               cfg_.ha.enabled ? fmt::format(" ha_label_writes={} ha_label_errors={} ha_takeovers={} ha_continued={}",
                                             stats_.ha_label_writes, stats_.ha_label_errors, stats_.ha_takeovers,
                                             stats_.ha_continued)
                               : std::string(),
               reasons);
  return rc;
}

Result<void> Daemon::cleanup() { return firewall::remove_all_hooks(); }

Daemon::SteeringCheck Daemon::check_steering(const config::Config& cfg) {
  SteeringCheck out;
  auto b = firewall::make_backend(to_firewall(cfg.backend));
  if (!b) {
    out.unreadable = b.error().message;
    return out;
  }
  auto st = b->backend->hook_state();
  if (!st) {
    out.unreadable = st.error().message;
    return out;
  }
  const bool legacy = b->backend->name() == "iptables-legacy";
  for (const auto& r : st->steering) {
    if (!is_control_port(cfg, r.port)) continue;
    const std::string where =
        (legacy ? (r.family == Family::v6 ? "ip6tables mangle " : "mangle ") : "nftables chain ") + r.chain + " NFQUEUE rule for port " + std::to_string(r.port);
    if (r.queue_num != cfg.queue.number) {
      out.disagreement = where + " uses queue " + std::to_string(r.queue_num) + ", but queue.number = " +
                         std::to_string(cfg.queue.number);
      return out;
    }
    if (r.queues_total != cfg.queue.count) {
      out.disagreement = where + " spreads over " + std::to_string(r.queues_total) + (r.queues_total == 1 ? " queue" : " queues") +
                         ", but queue.count = " + std::to_string(cfg.queue.count);
      return out;
    }
    if (r.bypass != cfg.queue.bypass) {
      out.disagreement = where + (r.bypass ? " has" : " lacks") + " --queue-bypass, but queue.bypass = " +
                         (cfg.queue.bypass ? "true" : "false");
      return out;
    }
  }
  return out;
}

}  // namespace ftpwall::daemon
