// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/line_framer.hpp"

#include <array>

#include "ftpwall/core/limits.hpp"

namespace ftpwall {

namespace {

// RFC 854 Telnet command bytes.
constexpr std::uint8_t iac = 255;
constexpr std::uint8_t will_ = 251;
constexpr std::uint8_t dont_ = 254;  // WILL 251, WONT 252, DO 253, DONT 254: followed by an option byte

constexpr std::array<std::string_view, 3> client_keywords{"PORT", "EPRT", "LPRT"};  // RFC 959, 2428, 1639
constexpr std::array<std::string_view, 3> server_keywords{"227", "228", "229"};

char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }
bool alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

// What may follow a keyword on an announcing line. Commands: anything but a letter or digit (a
// server tokenises at the space; "PORTX" is another verb). Replies: anything but '-', which marks
// a continuation line of a multi-line reply (RFC 959 §4.2), never the final one.
bool separator_ok(Direction dir, char c) {
  return dir == Direction::client_to_server ? !alnum(c) : c != '-';
}

// -1: the text cannot start with the keyword; 0: it is a prefix of it (undecided); 1: it does.
int keyword_match(Direction dir, std::string_view text, std::string_view kw) {
  const std::size_t n = std::min(text.size(), kw.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (upper(text[i]) != kw[i]) return -1;
  }
  if (text.size() < kw.size()) return 0;
  if (text.size() == kw.size()) return 1;  // keyword alone (a complete line without arguments)
  return separator_ok(dir, text[kw.size()]) ? 1 : -1;
}

template <class F>
bool any_keyword(Direction dir, F&& f) {
  const auto& kws = dir == Direction::client_to_server ? client_keywords : server_keywords;
  for (auto kw : kws) {
    if (f(kw)) return true;
  }
  return false;
}

}  // namespace

bool may_be_announcement(Direction dir, std::string_view prefix) {
  return any_keyword(dir, [&](std::string_view kw) { return keyword_match(dir, prefix, kw) >= 0; });
}

bool is_announcing(Direction dir, std::string_view text) {
  return any_keyword(dir, [&](std::string_view kw) { return keyword_match(dir, text, kw) == 1; });
}

bool LineFramer::partial_may_be_announcement() const {
  if (skipping_ || !in_line_) return false;
  // A line with a Telnet sequence can only end as telnet_in_announcement or as no announcement at
  // all: never rewritten, nothing to wait for (lftp's IAC IP, IAC DM before ABOR is not held).
  if (line_telnet_) return false;
  if (raw_len_ >= limits::max_announcement_line) return false;  // can only end as line_too_long
  return may_be_announcement(dir_, text_);
}

std::optional<LineFramer::Rest> LineFramer::rest() const {
  if (in_line_ || telnet_ != Telnet::data || line_telnet_ || truncated_ || last_cr_ || raw_len_ || decoded_len_ ||
      !text_.empty())
    return std::nullopt;
  return Rest{next_off_, skipped_, skipping_};
}

void LineFramer::push_text(std::uint8_t c) {
  ++decoded_len_;
  last_cr_ = c == '\r';
  if (text_.size() < limits::max_announcement_line) {
    text_.push_back(static_cast<char>(c));
  } else {
    truncated_ = true;
  }
}

void LineFramer::emit(LineSink& sink, bool complete) {
  if (complete && last_cr_) {  // CR LF: the CR belongs to the line end
    --decoded_len_;
    if (text_.size() > decoded_len_) text_.pop_back();
    truncated_ = decoded_len_ > text_.size();
  }
  Line line;
  line.offset = line_off_;
  line.raw_length = raw_len_;
  line.text = text_;
  line.complete = complete;
  line.truncated = truncated_;
  line.telnet = line_telnet_;
  line.announcing = is_announcing(dir_, text_);
  if (line.announcing) {
    if (raw_len_ > limits::max_announcement_line) {
      line.reason = Reason::line_too_long;
    } else if (line_telnet_) {
      line.reason = Reason::telnet_in_announcement;
    }
  }
  sink.on_line(line);
  in_line_ = false;
  line_telnet_ = false;
  truncated_ = false;
  last_cr_ = false;
  decoded_len_ = 0;
  raw_len_ = 0;
  text_.clear();
  if (text_.capacity() > 64) text_.shrink_to_fit();  // keep idle sessions small
  telnet_ = Telnet::data;
}

void LineFramer::gap(std::uint64_t next_offset, LineSink& sink) {
  if (in_line_) emit(sink, false);
  telnet_ = Telnet::data;
  skipping_ = true;
  next_off_ = next_offset;
}

void LineFramer::restart(std::uint64_t offset) {
  telnet_ = Telnet::data;
  skipping_ = in_line_ = line_telnet_ = truncated_ = last_cr_ = false;
  next_off_ = line_off_ = offset;
  raw_len_ = decoded_len_ = 0;
  text_.clear();
}

void LineFramer::end(LineSink& sink) {
  if (in_line_) emit(sink, false);
}

void LineFramer::feed(std::uint64_t offset, std::span<const std::uint8_t> bytes, LineSink& sink) {
  if (offset != next_off_) gap(offset, sink);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const std::uint8_t c = bytes[i];
    const std::uint64_t at = offset + i;
    if (skipping_) {
      ++skipped_;
      if (c == '\n') skipping_ = false;
      continue;
    }
    if (!in_line_) {
      in_line_ = true;
      line_off_ = at;
    }
    ++raw_len_;
    switch (telnet_) {
      case Telnet::data:
        if (c == iac) {
          telnet_ = Telnet::iac;
          line_telnet_ = true;
        } else if (c == '\n') {
          next_off_ = at + 1;
          emit(sink, true);
        } else {
          push_text(c);
        }
        break;
      case Telnet::iac:
        line_telnet_ = true;
        if (c == iac) {
          push_text(iac);
          telnet_ = Telnet::data;
        } else if (c >= will_ && c <= dont_) {
          telnet_ = Telnet::option;
        } else {
          telnet_ = Telnet::data;
        }
        break;
      case Telnet::option:
        telnet_ = Telnet::data;
        break;
    }
  }
  next_off_ = offset + bytes.size();
}

}  // namespace ftpwall
