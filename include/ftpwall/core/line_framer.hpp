// SPDX-License-Identifier: GPL-2.0-or-later
// LineFramer: the in-order byte stream of one direction -> FTP lines (RFC 959 §4.1, §4.2).
//
// Wire format: lines end with CR LF; a bare LF also ends a line (some servers send it, and every
// server we follow accepts it from clients), a CR not followed by LF is data. The control
// connection is a Telnet NVT stream (RFC 959 §4.1, RFC 854), decoded as proftpd and pure-ftpd do:
//   IAC IAC                         -> one 0xFF data byte
//   IAC WILL/WONT/DO/DONT <option>  -> skipped (3 bytes)
//   IAC <any other byte>            -> skipped (2 bytes): IP (244), DM (242), NOP, ...
// lftp aborts with  IAC IP, IAC DM (the DM sent as TCP urgent data), then "ABOR\r\n". The servers
// we follow read urgent data inline (SO_OOBINLINE), so the urgent byte is in the stream and the IAC
// DM rule above skips it; the line's text is "ABOR".
//
// Each line is reported with its stream offset and exact raw length (IAC sequences and the line end
// included) so that a rewrite can replace exactly those bytes. Lines of any length and with any
// bytes pass through unparsed: only a prefix of limits::max_announcement_line decoded bytes is kept.
// A line is *announcing* when it starts with a keyword that announces an address from its
// direction: PORT/EPRT/LPRT from the client, 227/228/229 final replies from the server
// (case-insensitive). Only announcing lines can be violations here:
//   raw length > limits::max_announcement_line  -> Reason line_too_long
//   any Telnet sequence inside the line          -> Reason telnet_in_announcement (receivers
//     decode IAC differently, so the text we parse might not be the text the receiver parses)
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/reason.hpp"

namespace ftpwall {

struct Line {
  std::uint64_t offset = 0;      // stream offset of the line's first raw byte
  std::uint64_t raw_length = 0;  // raw bytes: Telnet sequences and CR LF / LF included
  std::string_view text;         // Telnet-decoded, without the line end; a prefix when truncated
  bool complete = true;          // ended by LF (false: the stream ended or had a gap mid-line)
  bool truncated = false;        // text holds only the first limits::max_announcement_line bytes
  bool announcing = false;       // starts with an announcing keyword of its direction
  bool telnet = false;           // contained at least one Telnet sequence
  Reason reason = Reason::none;  // line_too_long or telnet_in_announcement (announcing lines only)
};

class LineSink {
 public:
  virtual ~LineSink() = default;
  virtual void on_line(const Line& line) = 0;
};

// Whether a line whose decoded text begins with `prefix` may turn out to be an announcement from
// `dir`: the prefix is empty, a prefix of a keyword, or a keyword followed by a separator.
// "P", "port", "PORT 1" and "" may be; "PORTS", "USER" and "227-" may not (a 227- line is a
// continuation of a multi-line reply, never its final line).
bool may_be_announcement(Direction dir, std::string_view prefix);
// Whether a complete line text is announcing (same keywords; an empty argument counts).
bool is_announcing(Direction dir, std::string_view text);

class LineFramer {
 public:
  explicit LineFramer(Direction dir) : dir_(dir) {}

  // Bytes at `offset`. An offset other than the expected next one is a gap: the partial line is
  // dropped and the framer resynchronises at the next line start.
  void feed(std::uint64_t offset, std::span<const std::uint8_t> bytes, LineSink& sink);
  // The bytes before `offset` will never come (StreamSink::on_gap): drop the partial line,
  // resynchronise at the next line start. A dropped partial line is reported with complete=false.
  void gap(std::uint64_t next_offset, LineSink& sink);
  // Skip everything up to and including the next LF (pick-up mid-stream: we cannot know whether
  // the first byte seen starts a line).
  void resync() { skipping_ = true; }
  // A line starts at `offset` (the first byte after the TLS layer ended, CCC): whatever was
  // framed before is dropped silently, nothing is skipped.
  void restart(std::uint64_t offset);
  // The stream ended: report the partial line, if any, with complete=false.
  void end(LineSink& sink);

  Direction direction() const { return dir_; }
  bool skipping() const { return skipping_; }
  bool in_line() const { return in_line_; }
  std::uint64_t line_offset() const { return line_off_; }
  std::uint64_t partial_raw_length() const { return raw_len_; }
  std::string_view partial_text() const { return text_; }
  std::uint64_t next_offset() const { return next_off_; }
  // The current partial line may still become an announcement that fits the bound and has no
  // Telnet sequence (one that has can only be refused, never rewritten): worth holding.
  bool partial_may_be_announcement() const;
  std::uint64_t skipped_bytes() const { return skipped_; }
  std::size_t heap_bytes() const { return text_.capacity() > 15 ? text_.capacity() : 0; }

  // A framer at rest (issue 13, tracker.hpp): between lines, no Telnet sequence open. What is left
  // fits in a Rest, and LineFramer(dir, rest) goes on exactly as this one would.
  struct Rest {
    std::uint64_t next_off = 0;
    std::uint64_t skipped = 0;
    bool skipping = false;
  };
  std::optional<Rest> rest() const;
  LineFramer(Direction dir, const Rest& rest)
      : dir_(dir), skipping_(rest.skipping), next_off_(rest.next_off), line_off_(rest.next_off), skipped_(rest.skipped) {}

 private:
  enum class Telnet : std::uint8_t { data, iac, option };
  void emit(LineSink& sink, bool complete);
  void push_text(std::uint8_t c);

  Direction dir_;
  Telnet telnet_ = Telnet::data;
  bool skipping_ = false;
  bool in_line_ = false;
  bool line_telnet_ = false;
  bool truncated_ = false;
  bool last_cr_ = false;
  std::uint64_t next_off_ = 0;
  std::uint64_t line_off_ = 0;
  std::uint64_t raw_len_ = 0;
  std::uint64_t decoded_len_ = 0;
  std::uint64_t skipped_ = 0;
  std::string text_;
};

}  // namespace ftpwall
