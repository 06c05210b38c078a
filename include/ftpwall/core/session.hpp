// SPDX-License-Identifier: GPL-2.0-or-later
// The session state machine (issue 3 item 5): pairs commands with their replies and turns accepted
// announcements into decisions. Input: complete lines per direction, in stream order; output:
// decisions appended to the caller's vector.
//
// Pairing model (RFC 959 4.2, 5.4): every command line of the client is queued; each final reply
// (2yz-5yz) answers the oldest queued command; 1yz replies are preliminary (RETR -> 150 -> 226);
// ABOR during a transfer gets 426 (answering the transfer) then 226 (answering ABOR), which the
// FIFO models without a special case. The server's first 220 is the greeting and answers nothing.
// A multi-line reply "227-..." ... "227 ..." is one reply; its lines in between are text.
//
// What counts (and the Reason otherwise, see Policy::check and docs/reasons.md):
//   PORT/EPRT only from the client, with no command outstanding, after the greeting;
//   227 only as the final reply to this client's PASV, 229 only to EPSV, only from the server;
//   LPRT/228 parsed and refused; announcement lines longer than limits::max_announcement_line refused.
// Effects: 4xx/5xx to PORT/EPRT/LPRT or a 421 -> CloseData; 234 to AUTH -> Encrypted (then the
// session reads nothing more: the stream is TLS, and CCC cannot be seen); 220 to REIN -> CloseData,
// login forgotten; 221 to QUIT or 421 -> SessionEnd; the final reply to a transfer command that had
// its 1yz -> CloseData (the opening is spent). One pending opening: a new one emits CloseData for
// the old one first.
//
// Usage (the Tracker):
//   Session s(tuples, policy);
//   std::vector<Decision> out;
//   s.on_line(Direction::client_to_server, "PORT 10,0,0,5,195,80", offset_of_line, out);
//
// Known servers that answer ABOR during a transfer with a single reply instead of RFC 959's two
// (426 + 226) would leave the ABOR outstanding forever; an ABOR queued behind a transfer that got
// a positive final reply is therefore answered only by 225/226/500-502, and silently dropped when
// another reply (or a 1yz) shows that its answer was merged.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/decision.hpp"
#include "ftpwall/core/ftp_wire.hpp"
#include "ftpwall/core/limits.hpp"
#include "ftpwall/core/policy.hpp"
#include "ftpwall/core/rewrite.hpp"

namespace ftpwall {

class Session {
 public:
  // fresh: tracked from the SYN, the 220 greeting is still to come.
  // mid_stream: picked up after a daemon restart at a line start. Nothing is assumed: every
  //   announcement is refused (pickup_unsynchronised) until the server gives a final reply to a
  //   command seen whole after the pick-up; that round trip sets greeted (and logged in when the
  //   command needs a login and the reply is positive), and that reply is judged as usual.
  enum class Start : std::uint8_t { fresh, mid_stream };

  // `policy` must outlive the Session (the Tracker owns one Policy for all sessions).
  Session(const ConnTuples& tuples, const Policy& policy, Start start = Start::fresh);

  // One complete line of `dir` without its CRLF (or LF); stream_offset = offset of its first byte
  // in that direction's stream. Appends 0..n decisions to `out`. Never throws on wire input.
  void on_line(Direction dir, std::string_view line, std::uint64_t stream_offset, std::vector<Decision>& out);
  // Bytes of `dir` were never seen (a stream gap). Commands may have been among them: after a gap
  // in the client's stream every client announcement counts as having a command outstanding
  // until the server's next final reply (missing bytes never help an attacker).
  void on_gap(Direction dir) {
    if (dir == Direction::client_to_server) client_gap_ = true;
  }

  // Client behind SNAT/MASQUERADE, active mode: the public port of the opening comes from
  // `chooser` (rewrite.hpp, "port in use"); none free -> Violation nat_port_exhausted, no opening.
  // Without a chooser the public port is the client's own.
  void set_port_chooser(PortChooser chooser) { chooser_ = std::move(chooser); }

  bool greeted() const { return greeted_; }
  bool synchronised() const { return !unsynchronised_; }
  bool logged_in() const { return logged_in_; }
  bool encrypted() const { return encrypted_; }
  // Implicit FTPS (a port where TLS starts at once): encrypted from the first byte; the 220
  // greeting is inside TLS.
  void start_encrypted() { encrypted_ = true; }
  // The TLS layer of `dir` ended (CCC, RFC 4217 12.3; the Tracker found the first byte that is
  // not a TLS record): that direction's lines are read again. The client's return resets the
  // pairing: the CCC and its 200 were inside TLS, so no command is outstanding, and the session
  // counts as greeted and logged in (CCC comes after login; nothing inside TLS can be checked).
  // When both directions are clear the session is no longer encrypted.
  void on_cleartext(Direction dir);
  bool reads(Direction dir) const { return !encrypted_ || clear_[static_cast<std::size_t>(dir)]; }
  bool ended() const { return ended_; }
  bool opening_pending() const { return opening_pending_; }
  std::size_t commands_outstanding() const { return count_ + lost_; }
  const ConnTuples& tuples() const { return tuples_; }

  // A session at rest (issue 13: the compact state of an idle session, tracker.hpp): no command
  // outstanding, no multi-line reply in progress. What is left fits in a Rest, and
  // Session(rest, policy) goes on exactly as this one would.
  struct Rest {
    ConnTuples tuples;
    PortChooser chooser;
    std::uint32_t opening = 0;
    std::uint16_t flags = 0;  // rest_* below
  };
  bool at_rest() const { return count_ == 0 && lost_ == 0 && multiline_ == 0; }
  Rest rest() &&;  // at_rest() must hold
  Session(Rest&& rest, const Policy& policy);

 private:
  struct Pending {
    Verb verb = Verb::other;
    std::uint8_t flags = 0;  // preliminary_seen | epsv_all_flag | abor_reply_optional
  };
  static constexpr std::uint8_t preliminary_seen = 1;
  static constexpr std::uint8_t epsv_all_flag = 2;
  // An ABOR sent during a transfer whose final reply was positive: RFC 959 wants a second reply
  // (226/225) for the ABOR, but some servers send only one. Such an ABOR is not counted as
  // outstanding for announcements and is dropped when a reply arrives that it cannot have.
  static constexpr std::uint8_t abor_reply_optional = 4;
  enum RestFlag : std::uint16_t {
    rest_greeted = 1, rest_logged_in = 2, rest_encrypted = 4, rest_ended = 8, rest_epsv_all = 16,
    rest_opening_pending = 32, rest_overflow_reported = 64, rest_unsynchronised = 128, rest_client_gap = 256,
    rest_clear_c2s = 512, rest_clear_s2c = 1024,
  };

  void on_client_line(std::string_view line, std::uint64_t off, std::vector<Decision>& out);
  void on_server_line(std::string_view line, std::uint64_t off, std::vector<Decision>& out);
  void on_final_reply(const ReplyLine& r, std::string_view line, std::uint64_t off, std::vector<Decision>& out);
  void on_announcement(AnnouncementKind kind, Direction from, AnnouncementParser parse, std::string_view line,
                       std::size_t text_offset, std::uint64_t off, const AnnouncementFacts& facts,
                       std::vector<Decision>& out);
  void violation(Reason r, Direction dir, std::string_view line, std::uint64_t off, std::vector<Decision>& out) const;
  // A refused 227 that names its DNATed server's inside address still reaches the client with
  // the address the client dialled (a Rewrite, no OpenData): one answering a PASV sent before a
  // takeover or a restart, an unsolicited one. The port stays as sent. Nothing for any other
  // address, nothing in the client's direction (a refused client line passes as it was sent).
  void conceal(AnnouncementKind kind, Direction from, AnnouncementParser parse, std::string_view line,
               std::size_t text_offset, std::uint64_t off, std::vector<Decision>& out) const;
  void close_opening(Reason r, std::vector<Decision>& out);
  void push(Verb v, std::uint8_t flags, std::vector<Decision>& out, std::string_view line, std::uint64_t off);
  Pending* head() { return count_ ? &queue_[head_] : nullptr; }
  bool head_is_optional_abor() const { return count_ && (queue_[head_].flags & abor_reply_optional); }
  void pop();
  static bool shows_login(Verb v);

  ConnTuples tuples_;
  const Policy* policy_;
  PortChooser chooser_;
  std::array<Pending, limits::max_pending_commands> queue_{};
  std::uint32_t opening_ = 0;   // sequence number of the last opening
  std::uint16_t lost_ = 0;      // commands beyond the queue bound, not remembered
  std::uint16_t multiline_ = 0; // code of the multi-line reply in progress, 0 if none
  std::uint8_t head_ = 0;
  std::uint8_t count_ = 0;
  bool greeted_ = false;
  bool logged_in_ = false;
  bool encrypted_ = false;
  bool ended_ = false;
  bool epsv_all_ = false;
  bool opening_pending_ = false;
  bool overflow_reported_ = false;
  bool unsynchronised_ = false;  // picked up, no round trip seen yet
  bool client_gap_ = false;      // client bytes were lost since the last final reply
  bool clear_[2] = {false, false};  // encrypted: this direction left TLS (CCC)
};

}  // namespace ftpwall
