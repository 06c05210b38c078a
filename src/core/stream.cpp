// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/stream.hpp"

#include <algorithm>
#include <array>
#include <bitset>
#include <cstring>

#include "ftpwall/core/limits.hpp"

namespace ftpwall {

namespace {

// Signed distance b - a in sequence space (RFC 1982 serial arithmetic, as the kernel's before()).
std::int64_t seq_diff(std::uint32_t a, std::uint32_t b) {
  return static_cast<std::int32_t>(b - a);
}

}  // namespace

// Out-of-order bytes at offsets [next_off_, next_off_ + stream_reorder_bytes).
struct StreamAssembler::Reorder {
  static constexpr std::size_t size = limits::stream_reorder_bytes;
  std::array<std::uint8_t, size> bytes;  // read only where `present` says so: not zeroed on allocation
  std::bitset<size> present;
  std::size_t count = 0;

  // Drop the first n positions (the window moved forward by n).
  void shift(std::size_t n) {
    if (n >= size) {
      present.reset();
      count = 0;
      return;
    }
    std::memmove(bytes.data(), bytes.data() + n, size - n);
    present >>= n;
    count = present.count();
  }
};

StreamAssembler::StreamAssembler() = default;
StreamAssembler::~StreamAssembler() = default;
StreamAssembler::StreamAssembler(StreamAssembler&&) noexcept = default;
StreamAssembler& StreamAssembler::operator=(StreamAssembler&&) noexcept = default;

std::optional<StreamAssembler::Rest> StreamAssembler::rest() const {
  if (state_ != State::open || fin_off_ || reset_seen_ || reorder_ || !retained_.empty() || retained_off_ != next_off_ ||
      seen_end_ != next_off_)
    return std::nullopt;
  Rest r;
  r.next_off = next_off_;
  r.base_seq = base_seq_;
  r.peer_ack = peer_ack_;
  r.peer_window = peer_window_;
  r.isn = isn_.value_or(0);
  r.stats = stats_;
  r.state = state_;
  r.flags = static_cast<std::uint8_t>((pickup_allowed_ ? rest_pickup_allowed : 0) | (picked_up_ ? rest_picked_up : 0) |
                                      (peer_known_ ? rest_peer_known : 0) | (isn_ ? rest_isn : 0));
  return r;
}

StreamAssembler::StreamAssembler(const Rest& r)
    : state_(r.state),
      pickup_allowed_(r.flags & rest_pickup_allowed),
      picked_up_(r.flags & rest_picked_up),
      peer_known_(r.flags & rest_peer_known),
      base_seq_(r.base_seq),
      peer_ack_(r.peer_ack),
      peer_window_(r.peer_window),
      next_off_(r.next_off),
      seen_end_(r.next_off),
      retained_off_(r.next_off),
      stats_(r.stats) {
  if (r.flags & rest_isn) isn_ = r.isn;
}

Result<void> StreamAssembler::allow_pickup(PickupHistory history) {
  if (history == PickupHistory::unknown) {
    return make_error(Reason::pickup_without_history, "the session may carry corrections and their history is unknown");
  }
  pickup_allowed_ = true;
  return {};
}

void StreamAssembler::note(SegmentReport& r, Reason reason) {
  if (r.reason == Reason::none) r.reason = reason;
}

std::optional<std::uint64_t> StreamAssembler::offset_of(std::uint32_t seq) const {
  if (state_ == State::fresh) return std::nullopt;
  const std::int64_t off = static_cast<std::int64_t>(next_off_) + seq_diff(next_seq(), seq);
  if (off < 0) return std::nullopt;
  return static_cast<std::uint64_t>(off);
}

std::size_t StreamAssembler::heap_bytes() const {
  return (reorder_ ? sizeof(Reorder) : 0) + (retained_.capacity() > 15 ? retained_.capacity() : 0);
}

std::size_t StreamAssembler::buffered_bytes() const { return reorder_ ? reorder_->count : 0; }

void StreamAssembler::start(std::uint32_t base_seq) {
  state_ = State::open;
  base_seq_ = base_seq;
  next_off_ = 0;
  seen_end_ = 0;
  retained_off_ = 0;
  retained_.clear();
}

void StreamAssembler::on_peer_ack(std::uint32_t ack, std::uint32_t window) {
  peer_known_ = true;
  peer_ack_ = ack;
  peer_window_ = window;
  trim_retained();
}

bool StreamAssembler::seq_in_window(std::uint32_t seq) const {
  return !peer_known_ || seq_diff(peer_ack_ + peer_window_, seq) <= 0;
}

// Keep only delivered bytes the receiver has not acknowledged, at most stream_retained_bytes.
void StreamAssembler::trim_retained() {
  std::uint64_t keep_from = retained_off_;
  if (peer_known_ && state_ != State::fresh) {
    const std::int64_t ack_off = static_cast<std::int64_t>(next_off_) + seq_diff(next_seq(), peer_ack_);
    if (ack_off > static_cast<std::int64_t>(keep_from)) {
      keep_from = std::min<std::uint64_t>(static_cast<std::uint64_t>(ack_off), next_off_);
    }
  }
  if (next_off_ - keep_from > limits::stream_retained_bytes) keep_from = next_off_ - limits::stream_retained_bytes;
  if (keep_from > retained_off_) {
    retained_.erase(0, keep_from - retained_off_);
    retained_off_ = keep_from;
  }
  if (retained_.empty() && retained_.capacity() > 64) retained_.shrink_to_fit();
}

void StreamAssembler::deliver(std::uint64_t offset, std::span<const std::uint8_t> bytes, StreamSink& sink) {
  if (bytes.empty()) return;
  if (retained_off_ + retained_.size() != offset) {  // after a gap: retained bytes restart here
    retained_.clear();
    retained_off_ = offset;
  }
  retained_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  next_off_ = offset + bytes.size();
  stats_.delivered_bytes += bytes.size();
  sink.on_data(offset, bytes);
  trim_retained();
}

// Bytes at [offset, offset + size) all lie before next_off_: compare what is still retained.
void StreamAssembler::compare_retained(std::uint64_t offset, std::span<const std::uint8_t> bytes,
                                       SegmentReport& r) {
  r.duplicate_bytes += static_cast<std::uint32_t>(bytes.size());
  stats_.duplicate_bytes += static_cast<std::uint32_t>(bytes.size());
  const std::uint64_t lo = std::max(offset, retained_off_);
  const std::uint64_t hi = std::min<std::uint64_t>(offset + bytes.size(), retained_off_ + retained_.size());
  if (lo >= hi) return;
  if (std::memcmp(retained_.data() + (lo - retained_off_), bytes.data() + (lo - offset), hi - lo) != 0) {
    stats_.overlap_mismatches++;
    note(r, Reason::overlap_mismatch);
  }
}

// Store bytes that fit in the reorder window; the first copy of each byte wins.
void StreamAssembler::write_reorder(std::uint64_t offset, std::span<const std::uint8_t> bytes, SegmentReport& r) {
  // Allocated on the first out-of-order segment, freed when it drains: for_overwrite skips zeroing
  // 4 KiB each time (it showed as the top cost of out-of-order traffic in the fuzz profile).
  if (!reorder_) reorder_ = std::make_unique_for_overwrite<Reorder>();
  bool mismatch = false;
  std::uint32_t dup = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const std::size_t pos = offset - next_off_ + i;
    if (reorder_->present[pos]) {
      ++dup;
      mismatch |= reorder_->bytes[pos] != bytes[i];
    } else {
      reorder_->bytes[pos] = bytes[i];
      reorder_->present.set(pos);
      ++reorder_->count;
    }
  }
  r.duplicate_bytes += dup;
  r.new_bytes += static_cast<std::uint32_t>(bytes.size()) - dup;
  stats_.duplicate_bytes += dup;
  if (mismatch) {
    stats_.overlap_mismatches++;
    note(r, Reason::overlap_mismatch);
  }
}

// Deliver the contiguous run of buffered bytes at next_off_.
void StreamAssembler::drain(StreamSink& sink) {
  if (!reorder_) return;
  std::size_t n = 0;
  while (n < Reorder::size && reorder_->present[n]) ++n;
  if (n > 0) {
    // Copy out first: deliver() may re-enter nothing, but shift() overwrites the buffer.
    std::array<std::uint8_t, Reorder::size> out;
    std::memcpy(out.data(), reorder_->bytes.data(), n);
    reorder_->shift(n);
    deliver(next_off_, std::span<const std::uint8_t>(out.data(), n), sink);
  }
  if (reorder_->count == 0) reorder_.reset();
}

// Give up waiting for the bytes before `target`: deliver what was buffered there, report the holes.
void StreamAssembler::jump_to(std::uint64_t target, SegmentReport& r, StreamSink& sink) {
  note(r, Reason::stream_gap);
  stats_.gaps++;
  while (next_off_ < target) {
    if (reorder_ && reorder_->present[0]) {
      drain(sink);
      continue;
    }
    std::uint64_t hole = target - next_off_;
    if (reorder_) {
      const std::uint64_t lim = std::min<std::uint64_t>(hole, Reorder::size);
      for (std::size_t i = 1; i < lim; ++i) {
        if (reorder_->present[i]) {
          hole = i;
          break;
        }
      }
      reorder_->shift(static_cast<std::size_t>(std::min<std::uint64_t>(hole, Reorder::size)));
      if (reorder_->count == 0) reorder_.reset();
    }
    sink.on_gap(next_off_, hole);
    stats_.gap_bytes += static_cast<std::uint32_t>(hole);
    next_off_ += hole;
    retained_.clear();
    retained_off_ = next_off_;
  }
}

// The receiver acknowledged bytes this assembler never saw (they went around it, or it did not
// keep them: beyond the reorder buffer). The sender never retransmits acknowledged bytes, so the
// holes before the ack point are lost for good: give them up now, and only now. The ack counts only
// if the sender was seen to send that far (`seen_end`, the end of the segment at hand, or an
// earlier accepted one): an ack of bytes never sent is ignored by the sender and INVALID for
// conntrack, and honouring it would let a forged ack hide the real bytes of a hole the way a
// far-ahead segment did. A real one is confirmed by the sender's next segment, which starts at or
// after it.
void StreamAssembler::settle_acked_hole(std::uint64_t seen_end, SegmentReport& r, StreamSink& sink) {
  if (state_ != State::open || !peer_known_) return;
  const std::int64_t ack_off = static_cast<std::int64_t>(next_off_) + seq_diff(next_seq(), peer_ack_);
  if (ack_off <= static_cast<std::int64_t>(next_off_)) return;
  std::uint64_t target = static_cast<std::uint64_t>(ack_off);
  if (fin_off_) target = std::min(target, *fin_off_);  // the ack of the FIN itself is one past it
  if (target > std::max(seen_end_, seen_end)) return;
  if (target > next_off_) jump_to(target, r, sink);
}

void StreamAssembler::take_payload(std::uint64_t off, std::span<const std::uint8_t> bytes, SegmentReport& r,
                                   StreamSink& sink) {
  while (!bytes.empty()) {
    const std::uint64_t end = off + bytes.size();
    if (end <= next_off_) {
      compare_retained(off, bytes, r);
      return;
    }
    if (off < next_off_) {
      const std::size_t old = static_cast<std::size_t>(next_off_ - off);
      compare_retained(off, bytes.first(old), r);
      bytes = bytes.subspan(old);
      off = next_off_;
    }
    if (!reorder_ && off == next_off_) {  // the common case: in order, nothing waiting
      r.new_bytes += static_cast<std::uint32_t>(bytes.size());
      deliver(off, bytes, sink);
      return;
    }
    if (off - next_off_ >= Reorder::size) {
      if (peer_known_) {
        // Beyond the buffer: not kept, and no reason to give up the hole (see stream.hpp). The
        // sender retransmits these bytes, or the receiver's ack past them makes them a gap.
        stats_.reorder_overflows++;
        note(r, Reason::reorder_overflow);
        return;
      }
      jump_to(off, r, sink);  // no ack known yet: the bound is all there is
      continue;
    }
    const std::size_t fit = std::min<std::size_t>(bytes.size(), next_off_ + Reorder::size - off);
    write_reorder(off, bytes.first(fit), r);
    drain(sink);
    bytes = bytes.subspan(fit);
    off += fit;
  }
}

void StreamAssembler::check_end(StreamSink& sink) {
  if (state_ == State::open && fin_off_ && next_off_ == *fin_off_) {
    state_ = State::closed;
    reorder_.reset();
    sink.on_end(*fin_off_, false);
  }
}

SegmentReport StreamAssembler::on_segment(const Segment& seg, StreamSink& sink) {
  SegmentReport r;
  if (seg.rst) {
    if (state_ == State::closed) {
      // After this side's FIN the connection may still be open the other way; an RST carrying
      // the FIN's own sequence number (the peer's data acknowledged only up to the FIN) or the
      // one after it (the FIN acknowledged) is what a TCP sends when data arrives after it closed
      // (e.g. a TLS close_notify): the connection is reset (SegmentReport::reset_after_fin; the
      // stream's end was reported with the FIN). Any other RST after a FIN, and every RST after an
      // RST, changes nothing.
      if (fin_off_ && !reset_seen_ && next_off_ == *fin_off_ &&
          (seg.seq == next_seq() || seg.seq == next_seq() + 1)) {
        reset_seen_ = true;
        r.reset_after_fin = true;
      }
      return r;
    }
    // RFC 5961 §3.2: only an RST carrying exactly the next expected sequence number resets; one
    // elsewhere in the window draws a challenge ACK and changes nothing. Before the stream started
    // (an RST answering a SYN) the connection never existed: accept it.
    if (state_ == State::open) {  // the exact sequence number may lie past a hole the receiver acknowledged
      const std::int64_t at = static_cast<std::int64_t>(next_off_) + seq_diff(next_seq(), seg.seq);
      if (at > 0) settle_acked_hole(static_cast<std::uint64_t>(at), r, sink);
    }
    if (state_ == State::fresh || (state_ == State::open && seg.seq == next_seq())) {
      const std::uint64_t at = state_ == State::fresh ? 0 : next_off_;
      state_ = State::closed;
      reset_seen_ = true;
      reorder_.reset();
      sink.on_end(at, true);
      return r;
    }
    stats_.ignored_rsts++;
    r.accepted = false;
    note(r, Reason::out_of_window);
    return r;
  }

  std::uint32_t data_seq = seg.seq;
  if (seg.syn) {
    if (state_ == State::fresh) {
      start(seg.seq + 1);
      isn_ = seg.seq;
    } else if (isn_ && seg.seq == *isn_) {
      // A retransmitted SYN (or SYN-ACK): same initial sequence number, nothing new.
    } else {
      r.accepted = false;
      note(r, Reason::syn_mismatch);
      return r;
    }
    data_seq = seg.seq + 1;
  } else if (state_ == State::fresh) {
    if (!pickup_allowed_) {
      r.accepted = false;
      note(r, Reason::segment_before_syn);
      return r;
    }
    start(seg.seq);
    picked_up_ = true;
  }

  if (seg.payload.empty() && !seg.fin) return r;

  const std::int64_t start_off = static_cast<std::int64_t>(next_off_) + seq_diff(next_seq(), data_seq);
  if (start_off >= 0) r.offset = static_cast<std::uint64_t>(start_off);

  // RFC 793 §3.3 segment acceptability, right edge: a segment starting at or beyond
  // ack + window is dropped by the receiver. A zero-window probe (one byte at the edge) is too.
  // A FIN occupies a sequence number like a byte: a bare FIN past the edge is dropped as well
  // (otherwise one a million bytes ahead would pin the stream's end). At the edge Linux takes a
  // bare FIN only in order (at rcv_nxt, even with a zero window: tcp_data_queue), so do we.
  if (peer_known_) {
    const std::int64_t past_edge = seq_diff(peer_ack_ + peer_window_, data_seq);
    const bool outside = !seg.payload.empty() ? past_edge >= 0 : past_edge > 0 || (past_edge == 0 && data_seq != next_seq());
    if (outside) {
      stats_.out_of_window_segments++;
      r.accepted = false;
      note(r, Reason::out_of_window);
      return r;
    }
  }
  if (state_ == State::closed) {
    // After FIN or RST the receiver takes nothing new; retransmissions of old bytes are harmless.
    const std::int64_t end_off = start_off + static_cast<std::int64_t>(seg.payload.size());
    if (end_off > static_cast<std::int64_t>(next_off_)) {
      stats_.out_of_window_segments++;
      r.accepted = false;
      note(r, Reason::out_of_window);
    } else {
      r.duplicate_bytes = static_cast<std::uint32_t>(seg.payload.size());
      stats_.duplicate_bytes += static_cast<std::uint32_t>(seg.payload.size());
    }
    return r;
  }

  std::span<const std::uint8_t> bytes = seg.payload;
  std::int64_t off = start_off;
  if (off < 0) {  // bytes before the stream's start (before the SYN, or before a pick-up point)
    const std::size_t skip = static_cast<std::size_t>(std::min<std::int64_t>(-off, static_cast<std::int64_t>(bytes.size())));
    r.duplicate_bytes += static_cast<std::uint32_t>(skip);
    bytes = bytes.subspan(skip);
    off = 0;
  }
  const std::uint64_t end = static_cast<std::uint64_t>(off) + bytes.size();
  settle_acked_hole(end, r, sink);
  // A segment that starts beyond the reorder buffer is not kept and changes nothing else (no FIN
  // position, no gap): a blind guess inside the window must not move the stream (see stream.hpp).
  // Without a known ack the bound ends the wait instead (take_payload).
  if (peer_known_ && static_cast<std::uint64_t>(off) >= next_off_ + Reorder::size) {
    stats_.reorder_overflows++;
    r.accepted = false;
    note(r, Reason::reorder_overflow);
    return r;
  }
  if (seg.fin) {
    if (!fin_off_) {
      if (end >= next_off_) fin_off_ = end;
    } else if (*fin_off_ != end) {
      note(r, Reason::overlap_mismatch);  // a second FIN at another place
      stats_.overlap_mismatches++;
    }
  }
  // Bytes past an announced FIN are never taken by the receiver.
  if (fin_off_ && end > *fin_off_) {
    const std::uint64_t keep = *fin_off_ > static_cast<std::uint64_t>(off) ? *fin_off_ - static_cast<std::uint64_t>(off) : 0;
    bytes = bytes.first(static_cast<std::size_t>(std::min<std::uint64_t>(keep, bytes.size())));
    note(r, Reason::out_of_window);
  }
  take_payload(static_cast<std::uint64_t>(off), bytes, r, sink);
  seen_end_ = std::max(seen_end_, static_cast<std::uint64_t>(off) + bytes.size());
  check_end(sink);
  return r;
}

}  // namespace ftpwall
