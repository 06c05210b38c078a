// SPDX-License-Identifier: GPL-2.0-or-later
// Wrap-safe TCP sequence arithmetic (RFC 9293 §3.4; the kernel's before()/after()).
// Sequence numbers live on a 2^32 circle: a is "before" b when b - a, taken mod 2^32, is in
// (0, 2^31). Every comparison of sequence or acknowledgement numbers in ftpwall goes through these,
// never through <, so a stream that crosses 2^32 behaves like any other.
#pragma once

#include <cstdint>

namespace ftpwall {

// a - b as a signed distance: negative when a is before b. Only meaningful for |distance| < 2^31.
constexpr std::int32_t seq_diff(std::uint32_t a, std::uint32_t b) {
  return static_cast<std::int32_t>(a - b);
}
constexpr bool seq_before(std::uint32_t a, std::uint32_t b) { return seq_diff(a, b) < 0; }
constexpr bool seq_after(std::uint32_t a, std::uint32_t b) { return seq_diff(a, b) > 0; }
constexpr bool seq_before_eq(std::uint32_t a, std::uint32_t b) { return seq_diff(a, b) <= 0; }
constexpr bool seq_after_eq(std::uint32_t a, std::uint32_t b) { return seq_diff(a, b) >= 0; }

// The later / earlier of two sequence numbers.
constexpr std::uint32_t seq_max(std::uint32_t a, std::uint32_t b) { return seq_after(a, b) ? a : b; }
constexpr std::uint32_t seq_min(std::uint32_t a, std::uint32_t b) { return seq_before(a, b) ? a : b; }

// seq in [left, left + size): the receive-window test of RFC 9293 §3.10.7.4 for one octet.
constexpr bool seq_in_window(std::uint32_t seq, std::uint32_t left, std::uint32_t size) {
  return seq - left < size;
}
// lo <= seq <= hi on the circle (lo must not be after hi).
constexpr bool seq_between(std::uint32_t seq, std::uint32_t lo, std::uint32_t hi) {
  return seq - lo <= hi - lo;
}
// The segment [seq, seq + len) shares at least one octet with the window [left, left + size)
// (RFC 9293 §3.10.7.4: zero-length segments test only their first octet).
constexpr bool seq_segment_in_window(std::uint32_t seq, std::uint32_t len, std::uint32_t left, std::uint32_t size) {
  if (size == 0) return len == 0 && seq == left;
  if (len == 0) return seq_in_window(seq, left, size);
  return seq_in_window(seq, left, size) || seq_in_window(seq + len - 1, left, size) ||
         seq_in_window(left, seq, len);
}

}  // namespace ftpwall
