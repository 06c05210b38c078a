// SPDX-License-Identifier: GPL-2.0-or-later
// Every bound of the core, named once. Each has a unit test at the bound and one past it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ftpwall::limits {

// Longest announcement line (PORT/EPRT/227/229/LPRT/228), CRLF included. RFC 959 gives no bound;
// real lines are < 100 bytes. Longer lines that start with an announcing keyword are violations.
inline constexpr std::size_t max_announcement_line = 512;

// Out-of-order bytes kept per direction while waiting for a hole to fill (stream.hpp). A control
// connection rarely has more than a few segments in flight. Bytes that would not fit are not kept
// (Reason reorder_overflow) and end no wait: the hole is given up (Reason stream_gap, resynchronised
// at the next line) only once the receiver acknowledges past it, or at once while no ack of the
// receiver is known.
inline constexpr std::size_t stream_reorder_bytes = 4096;

// Delivered but not yet acknowledged bytes kept per direction to compare retransmissions against
// the first copy (stream.hpp). Beyond this, or once the peer has acknowledged them, retransmitted
// bytes are counted but not compared (the receiver drops bytes it already has).
inline constexpr std::size_t stream_retained_bytes = 4096;

// Holding (tracker.hpp): packets of one direction held while the address of a split announcement
// completes. Bounded in whole packet bytes and in time (hold_timeout_ms is the default of
// PolicyConfig::hold_timeout_ms, ftpwall.conf [policy] hold_timeout_ms); past either bound the held
// packets go out with the announcement's bytes seen so far withheld (Reason rewrite_split_timeout),
// never with the inside address. The default covers parts written 2 s apart.
inline constexpr std::size_t hold_bytes = 16384;
inline constexpr std::uint64_t hold_timeout_ms = 3000;

// Commands sent but not yet answered that a session remembers (RFC 959 lets a client send the next
// command before the reply; real clients pipeline a handful). Past the bound the extra commands are
// counted, not remembered: announcements are refused until the replies have caught up.
inline constexpr std::size_t max_pending_commands = 16;

// Offending bytes kept in a Violation: the log shows a bounded excerpt, never a whole attacker line.
inline constexpr std::size_t max_violation_bytes = 64;

// IPv6 extension headers skipped before the TCP header (packet.hpp). Real packets carry none
// or one; a longer chain is refused (packet_too_many_extension_headers) rather than walked.
inline constexpr std::size_t max_ipv6_extension_headers = 8;

// Corrections kept per direction (seq_adjust.hpp) that the peer has not yet acknowledged past.
// Acknowledged ones collapse into one cumulative offset; a rewrite that would exceed the bound is
// refused (correction_history_full) and the daemon resets the session: an offset is never dropped.
inline constexpr std::size_t max_corrections_per_direction = 64;

// Longest old or new byte string of one correction (seq_adjust.hpp): a rewrite replaces part of
// one announcement line, and a rewritten line may grow past max_announcement_line.
inline constexpr std::size_t max_correction_bytes = 1024;

// Public ports tried for a client-NAT active announcement whose port is already the DNAT match of
// another live opening (rewrite.hpp next_free_port): the announced port, then upward, wrapping
// within 1024-65535. The kernel's nf_nat_exp_find_port gives up after 128 attempts too; past the
// bound the announcement is refused (nat_port_exhausted).
inline constexpr std::size_t nat_port_tries = 128;

}  // namespace ftpwall::limits
