// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/session.hpp"

#include "ftpwall/core/rewrite.hpp"

#include <utility>

namespace ftpwall {

// The memory goal: at most 1 KiB a tracked session (MODELS 6).
static_assert(sizeof(Session) <= 1024, "a Session must stay within 1 KiB");

namespace {

// The line plus its CRLF is what limits::max_announcement_line bounds.
bool too_long(std::string_view line) { return line.size() + 2 > limits::max_announcement_line; }

}  // namespace

Session::Session(const ConnTuples& tuples, const Policy& policy, Start start)
    : tuples_(tuples), policy_(&policy), unsynchronised_(start == Start::mid_stream) {}

// Every field of a Session is either in its Rest or empty at rest (the command queue): a new field
// must be added to both.
static_assert(sizeof(Session) == 176, "a Session field was added or removed: keep Session::Rest in step");

Session::Rest Session::rest() && {
  Rest r{std::move(tuples_), std::move(chooser_), opening_, 0};
  const std::pair<bool, RestFlag> bits[] = {
      {greeted_, rest_greeted},         {logged_in_, rest_logged_in},
      {encrypted_, rest_encrypted},     {ended_, rest_ended},
      {epsv_all_, rest_epsv_all},       {opening_pending_, rest_opening_pending},
      {overflow_reported_, rest_overflow_reported}, {unsynchronised_, rest_unsynchronised},
      {client_gap_, rest_client_gap},   {clear_[0], rest_clear_c2s},
      {clear_[1], rest_clear_s2c}};
  for (auto [on, bit] : bits)
    if (on) r.flags = static_cast<std::uint16_t>(r.flags | bit);
  return r;
}

Session::Session(Rest&& r, const Policy& policy)
    : tuples_(std::move(r.tuples)),
      policy_(&policy),
      chooser_(std::move(r.chooser)),
      opening_(r.opening),
      greeted_(r.flags & rest_greeted),
      logged_in_(r.flags & rest_logged_in),
      encrypted_(r.flags & rest_encrypted),
      ended_(r.flags & rest_ended),
      epsv_all_(r.flags & rest_epsv_all),
      opening_pending_(r.flags & rest_opening_pending),
      overflow_reported_(r.flags & rest_overflow_reported),
      unsynchronised_(r.flags & rest_unsynchronised),
      client_gap_(r.flags & rest_client_gap),
      clear_{static_cast<bool>(r.flags & rest_clear_c2s), static_cast<bool>(r.flags & rest_clear_s2c)} {}

// A picked-up session knows nothing of what came before: whether the server greeted, whether the
// client logged in, how many commands are still unanswered. Guessing any of it is what an attacker
// wants (a hostile server that makes the session look over and picked up again, a request body
// whose lines meet a queue assumed empty). So: no announcement counts until the server gives a
// final reply to a command seen in full after the pick-up (that reply itself is judged as usual:
// a 227 answering a PASV seen whole counts); the round trip shows the greeting is behind us, and a
// positive reply to a command that needs a login shows the login. A client's PORT/EPRT always
// counts only after it.
bool Session::shows_login(Verb v) {
  switch (v) {
    case Verb::pasv: case Verb::epsv: case Verb::lpsv: case Verb::port: case Verb::eprt: case Verb::lprt:
    case Verb::retr: case Verb::stor: case Verb::stou: case Verb::appe: case Verb::list: case Verb::nlst:
    case Verb::mlsd:
      return true;
    default:
      return false;
  }
}

void Session::on_line(Direction dir, std::string_view line, std::uint64_t off, std::vector<Decision>& out) {
  // Encrypted: the bytes are TLS records, not lines (until that direction leaves TLS). Ended:
  // nothing more can be announced.
  if (!reads(dir) || ended_) return;
  if (dir == Direction::client_to_server)
    on_client_line(line, off, out);
  else
    on_server_line(line, off, out);
}

void Session::on_cleartext(Direction dir) {
  if (!encrypted_) return;
  clear_[static_cast<std::size_t>(dir)] = true;
  if (dir == Direction::client_to_server) {
    head_ = count_ = 0;
    lost_ = 0;
    client_gap_ = false;
    unsynchronised_ = false;
    greeted_ = logged_in_ = true;
  } else {
    multiline_ = 0;
  }
  if (clear_[0] && clear_[1]) {
    encrypted_ = false;
    clear_[0] = clear_[1] = false;
  }
}

void Session::violation(Reason r, Direction dir, std::string_view line, std::uint64_t off,
                        std::vector<Decision>& out) const {
  out.emplace_back(Violation{r, dir, off, std::string(line.substr(0, limits::max_violation_bytes)),
                             policy_->on_violation()});
}

void Session::conceal(AnnouncementKind kind, Direction from, AnnouncementParser parse, std::string_view line,
                      std::size_t text_offset, std::uint64_t off, std::vector<Decision>& out) const {
  // The server's direction only: a refused client line passes as it was sent (the NAT
  // Slipstreaming tests: a browser's request body is not an FTP client's to rewrite).
  if (from != Direction::server_to_client || !parse || text_offset > line.size() || too_long(line)) return;
  if (!tuples_.server_nat()) return;
  const Address& real = tuples_.server_real();
  const Address& seen = tuples_.server_as_seen();
  auto a = parse(line.substr(text_offset));
  if (!a || !a->has_address || a->endpoint.addr != real || seen.family != real.family) return;
  const TextRange range = a->range.shifted(text_offset);
  Rewrite rw;
  rw.direction = from;
  rw.line_offset = off;
  rw.stream_offset = off + range.begin;
  rw.old_bytes = std::string(line.substr(range.begin, range.size()));
  rw.new_bytes = format_announced(kind, Endpoint{seen, a->endpoint.port}, a->delimiter);
  if (rw.old_bytes != rw.new_bytes) out.emplace_back(std::move(rw));
}

void Session::close_opening(Reason r, std::vector<Decision>& out) {
  if (!opening_pending_) return;
  opening_pending_ = false;
  out.emplace_back(CloseData{opening_, r});
}

void Session::push(Verb v, std::uint8_t flags, std::vector<Decision>& out, std::string_view line, std::uint64_t off) {
  if (count_ < queue_.size() && lost_ == 0) {
    queue_[(head_ + count_) % queue_.size()] = Pending{v, flags};
    ++count_;
    return;
  }
  // Pairing of the extra commands is lost; they still count as outstanding, so no announcement
  // is accepted until the server has answered them all.
  if (lost_ < UINT16_MAX) ++lost_;
  if (!overflow_reported_) {
    overflow_reported_ = true;
    violation(Reason::too_many_pending_commands, Direction::client_to_server, line, off, out);
  }
}

void Session::pop() {
  if (count_) {
    head_ = static_cast<std::uint8_t>((head_ + 1) % queue_.size());
    --count_;
  } else if (lost_) {
    --lost_;
  }
  if (count_ == 0 && lost_ == 0) overflow_reported_ = false;
}

void Session::on_client_line(std::string_view line, std::uint64_t off, std::vector<Decision>& out) {
  constexpr Direction dir = Direction::client_to_server;
  // Servers ignore empty lines; queueing one would wait forever for a reply.
  if (line.empty()) return;
  Command cmd = parse_command(line);
  const VerbRow* row = find_verb(cmd.word);

  if (row && row->announces != AnnouncementKind::none) {
    if (!cmd.well_formed) {
      // "PORT\t1,2,3,4,5,6": some server may still read it; nobody gets an opening for it.
      violation(Reason::bad_syntax, dir, line, off, out);
    } else if (unsynchronised_) {
      violation(Reason::pickup_unsynchronised, dir, line, off, out);
    } else {
      AnnouncementFacts f;
      f.kind = row->announces;
      f.from = dir;
      f.greeted = greeted_;
      f.logged_in = logged_in_;
      f.command_outstanding = client_gap_ || commands_outstanding() - (head_is_optional_abor() ? 1 : 0) > 0;
      f.epsv_all = epsv_all_;
      on_announcement(row->announces, dir, row->parse, line, cmd.args_offset, off, f, out);
    }
  } else if (auto r = parse_reply_line(line)) {
    // A client line that looks like a 227/228/229: trying to announce for the server.
    const ReplyRow* rr = find_reply(r->code);
    if (rr && rr->announces != AnnouncementKind::none && rr->from != dir)
      violation(Reason::wrong_direction, dir, line, off, out);
  }

  std::uint8_t flags = 0;
  if (cmd.verb == Verb::epsv && parse_epsv_args(cmd.args) == EpsvArg::all) flags |= epsv_all_flag;
  push(cmd.verb, flags, out, line, off);
}

void Session::on_server_line(std::string_view line, std::uint64_t off, std::vector<Decision>& out) {
  constexpr Direction dir = Direction::server_to_client;
  if (multiline_) {
    // Inside a multi-line reply only "<code> " ends it; everything else, "227 ..." under another
    // code or "227-..." included, is text.
    if (!ends_multiline(line, multiline_)) return;
    auto r = parse_reply_line(line);
    multiline_ = 0;
    on_final_reply(*r, line, off, out);
    return;
  }
  auto r = parse_reply_line(line);
  if (!r) {
    // A server line "PORT ..." tries to announce for the client.
    Command cmd = parse_command(line);
    const VerbRow* row = find_verb(cmd.word);
    if (row && row->announces != AnnouncementKind::none && row->from != dir)
      violation(Reason::wrong_direction, dir, line, off, out);
    return;
  }
  if (!r->final) {
    multiline_ = r->code;
    // "227-Entering Passive Mode (...)": a continuation line never counts; say so when it
    // carries what would have been an announcement.
    const ReplyRow* rr = find_reply(r->code);
    if (rr && rr->parse && rr->parse(r->text).ok()) violation(Reason::not_final_reply, dir, line, off, out);
    return;
  }
  on_final_reply(*r, line, off, out);
}

void Session::on_final_reply(const ReplyLine& r, std::string_view line, std::uint64_t off,
                             std::vector<Decision>& out) {
  constexpr Direction dir = Direction::server_to_client;
  const unsigned cls = r.code / 100;

  if (r.code == 421) {
    // RFC 959: service not available, closing the control connection; may come at any time.
    close_opening(Reason::service_closing, out);
    out.emplace_back(SessionEnd{Reason::service_closing});
    ended_ = true;
    return;
  }
  if (head_is_optional_abor()) {
    // ABOR never gets a 1yz and answers only 225/226 (or 500-502): anything else shows the
    // server merged the ABOR's reply into the transfer's.
    const bool abor_reply = r.code == 225 || r.code == 226 || (r.code >= 500 && r.code <= 502);
    if (!abor_reply) pop();
  }
  if (cls == 1) {
    // Preliminary: the command stays outstanding, its final reply follows.
    if (Pending* h = head()) h->flags |= preliminary_seen;
    return;
  }
  client_gap_ = false;  // a final reply: what the gap held is taken as answered from here
  if (!greeted_ && !unsynchronised_ && r.code == 220) {
    greeted_ = true;
    return;
  }

  const ReplyRow* rr = find_reply(r.code);
  Pending* h = head();
  if (unsynchronised_) {
    // A reply while no command seen since the pick-up is queued answers one sent before it: it
    // proves nothing and announces nothing. A final reply to a command seen whole is the first
    // round trip: from here the session is followed as usual, this reply included (a 227 that
    // answers a PASV seen whole counts like any other).
    if (!h) {
      if (rr && rr->announces != AnnouncementKind::none) {
        conceal(rr->announces, dir, rr->parse, line, r.text_offset, off, out);
        violation(Reason::pickup_unsynchronised, dir, line, off, out);
      }
      return;
    }
    unsynchronised_ = false;
    greeted_ = true;
    if (cls == 2 && shows_login(h->verb)) logged_in_ = true;
  }
  if (rr && rr->announces != AnnouncementKind::none) {
    AnnouncementFacts f;
    f.kind = rr->announces;
    f.from = dir;
    f.greeted = greeted_;
    f.logged_in = logged_in_;
    f.answers_request = h != nullptr && h->verb == rr->answers;
    f.final_reply = true;
    f.epsv_all = epsv_all_;
    on_announcement(rr->announces, dir, rr->parse, line, r.text_offset, off, f, out);
  }

  if (!h) {
    if (lost_) pop();
    return;  // unsolicited non-announcing replies are harmless: ignored
  }
  const Pending answered = *h;
  pop();
  const bool positive = cls == 2;
  switch (answered.verb) {
    case Verb::port:
    case Verb::eprt:
    case Verb::lprt:
      if (cls == 4 || cls == 5) close_opening(Reason::data_command_refused, out);
      break;
    case Verb::auth:
      if (r.code == 234) {
        encrypted_ = true;
        out.emplace_back(Encrypted{off});
      }
      break;
    case Verb::user:
    case Verb::pass:
      if (r.code == 230 || r.code == 232) logged_in_ = true;
      break;
    case Verb::rein:
      if (positive) {
        // RFC 959 REIN: all parameters back to defaults, login forgotten; the greeting stays.
        logged_in_ = false;
        epsv_all_ = false;
        close_opening(Reason::reinitialized, out);
      }
      break;
    case Verb::quit:
      if (positive) {
        close_opening(Reason::session_quit, out);
        out.emplace_back(SessionEnd{Reason::session_quit});
        ended_ = true;
      }
      break;
    case Verb::epsv:
      if (positive && (answered.flags & epsv_all_flag)) epsv_all_ = true;
      break;
    default:
      // A transfer that got its 1yz used the data connection; its final reply ends it, and the
      // opening must not let a second connection in.
      if (is_transfer(answered.verb) && (answered.flags & preliminary_seen)) close_opening(Reason::transfer_done, out);
      if (is_transfer(answered.verb) && positive) {
        if (Pending* next = head(); next && next->verb == Verb::abor) next->flags |= abor_reply_optional;
      }
      break;
  }
}

void Session::on_announcement(AnnouncementKind kind, Direction from, AnnouncementParser parse, std::string_view line,
                              std::size_t text_offset, std::uint64_t off, const AnnouncementFacts& facts,
                              std::vector<Decision>& out) {
  if (too_long(line)) {
    violation(Reason::line_too_long, from, line, off, out);
    return;
  }
  auto parsed = parse(line.substr(text_offset));
  if (!parsed) {
    violation(Reason::bad_syntax, from, line, off, out);
    return;
  }
  Announced a = *parsed;
  a.range = a.range.shifted(text_offset);
  if (!a.has_address) {
    // 229: the client dials the address it already uses for the control connection.
    a.endpoint.addr = tuples_.server_as_seen();
  }
  Reason why = policy_->check(facts, a.endpoint, a.has_address, tuples_);
  if (why != Reason::none) {
    conceal(kind, from, parse, line, text_offset, off, out);
    violation(why, from, line, off, out);
    return;
  }

  RewritePlan plan = plan_rewrite(tuples_, from, kind, a.endpoint);
  if (chooser_ && from == Direction::client_to_server && plan.inside != plan.announce) {
    // The opening DNATs (server, public address, port) back to the client; another live opening
    // may hold that match ("port in use", rewrite.hpp).
    const auto port = chooser_(plan.inside, plan.announce, tuples_.server_real());
    if (!port) {
      violation(Reason::nat_port_exhausted, from, line, off, out);
      return;
    }
    plan = plan_rewrite(tuples_, from, kind, a.endpoint, *port);
  }
  close_opening(Reason::opening_replaced, out);
  if (plan.rewrite) {
    Rewrite rw;
    rw.direction = from;
    rw.line_offset = off;
    rw.stream_offset = off + a.range.begin;
    rw.old_bytes = std::string(line.substr(a.range.begin, a.range.size()));
    rw.new_bytes = format_announced(kind, plan.announce, a.delimiter);
    out.emplace_back(std::move(rw));
  }
  OpenData o;
  o.opening = ++opening_;
  o.kind = kind;
  o.announced_by = from;
  o.family = tuples_.family();
  // Who connects: active mode the server (its real address is what the firewall sees arrive),
  // passive mode the client (likewise its real address, before any SNAT).
  o.source = from == Direction::client_to_server ? tuples_.server_real() : tuples_.client_real();
  o.destination = plan.announce;
  o.inside = plan.inside;
  out.emplace_back(o);
  opening_pending_ = true;
}

}  // namespace ftpwall
