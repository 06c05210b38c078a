// SPDX-License-Identifier: GPL-2.0-or-later
// Every refusal and notable decision has one stable machine name: the same word in the log line,
// the counter, the man page and the test name. Add a row here and in docs/reasons.md together.
#pragma once

#include <cstdint>
#include <string_view>

#include "ftpwall/core/result.hpp"

namespace ftpwall {

#define FTPWALL_REASONS(X)                                                                      \
  X(none)                          /* not a refusal */                                         \
  X(bad_syntax)                    /* announcement keyword, but the arguments do not parse */   \
  X(line_too_long)                 /* announcement line longer than limits::max_announcement_line */ \
  X(packet_truncated)              /* a header or the IP length runs past the captured bytes */ \
  X(packet_bad_header)             /* IPv4 IHL < 5, wrong version, IP length < headers, TCP data offset < 5 (a bad TCP option ends option parsing, as in the kernel) */ \
  X(packet_not_tcp)                /* the IP payload is not TCP (or an unsupported IPv6 extension header) */ \
  X(packet_fragment)               /* a non-first IP fragment (no TCP header), or a fragment that would be rewritten */ \
  X(packet_too_many_extension_headers) /* more IPv6 extension headers than limits::max_ipv6_extension_headers */ \
  X(packet_too_large)              /* a rewritten packet would not fit the IP length field */ \
  X(correction_history_full)       /* limits::max_corrections_per_direction unacknowledged corrections: reset the session */ \
  X(correction_invalid)            /* a rewrite overlapping an earlier one, empty, too long, or before acknowledged bytes */ \
  X(correction_mismatch)           /* retransmitted bytes inside a rewritten region differ from the recorded old bytes */ \
  X(stream_gap)                    /* bytes of the stream were never seen (the receiver acknowledged past them, or no ack known and the reorder buffer full); resynchronised at the next line */ \
  X(reorder_overflow)              /* segment bytes limits::stream_reorder_bytes or more past the first missing byte: not buffered, taken when they come again */ \
  X(overlap_mismatch)              /* a retransmitted or overlapping segment differs from the first copy */ \
  X(out_of_window)                 /* segment (data or FIN) outside the receiver's window: ignored, never merged */ \
  X(syn_mismatch)                  /* SYN whose sequence number differs from the connection's initial one */ \
  X(segment_before_syn)            /* segment of a connection whose SYN was not seen, pick-up not allowed */ \
  X(pickup_without_history)        /* pick-up refused: the session may carry corrections whose history is unknown */ \
  X(pickup_unsynchronised)         /* announcement of a picked-up session before one whole command/reply round trip was seen */ \
  X(pickup_not_allowed)            /* daemon: a connection seen mid-stream that neither existed at start nor has a state record */ \
  X(not_a_control_connection)      /* daemon: the conntrack entry's original destination port is not a control port */ \
  X(telnet_in_announcement)        /* announcement line containing Telnet IAC sequences (receivers decode them differently) */ \
  X(rewrite_split_timeout)         /* split announcement's hold ended before its address was complete: released with those bytes withheld */ \
  X(address_not_sender)            /* announced address is neither the sender's real nor its as-seen address (bounce) */ \
  X(port_below_floor)              /* announced port below PolicyConfig::port_floor */ \
  X(reply_without_request)         /* 227/228/229 that is not the final reply to this session's PASV/LPSV/EPSV */ \
  X(wrong_direction)               /* PORT/EPRT/LPRT from the server, or 227/228/229 from the client */ \
  X(not_final_reply)               /* announcement in a continuation line ("227-") of a multi-line reply */ \
  X(before_greeting)               /* announcement before the server's 220 greeting (NAT Slipstreaming) */ \
  X(command_outstanding)           /* client announcement while an earlier command is still unanswered */ \
  X(family_mismatch)               /* announced address family differs from the control connection's */ \
  X(long_passive_unsupported)      /* LPRT or 228: recognised, never opened */ \
  X(not_logged_in)                 /* announcement before 230 while PolicyConfig::require_login is set */ \
  X(after_epsv_all)                /* PORT/EPRT/LPRT or a 227 after EPSV ALL (RFC 2428 section 4 forbids them) */ \
  X(too_many_pending_commands)     /* more unanswered commands than limits::max_pending_commands */ \
  X(opening_replaced)              /* CloseData: a newer announcement of the session replaces the pending opening */ \
  X(data_command_refused)          /* CloseData: the server answered PORT/EPRT with 4xx/5xx */ \
  X(transfer_done)                 /* CloseData: the transfer command that used the opening got its final reply */ \
  X(reinitialized)                 /* CloseData: REIN answered with 220, data parameters reset */ \
  X(service_closing)               /* CloseData/SessionEnd: 421 from the server */ \
  X(session_quit)                  /* CloseData/SessionEnd: QUIT answered with 221 */ \
  X(connection_closed)             /* SessionEnd: both directions ended with FIN before any 221/421 */ \
  X(connection_reset)              /* SessionEnd: an accepted RST (exact sequence number) ended the connection */ \
  X(opening_limit)                 /* daemon: openings.max_total live openings reached, no opening */ \
  X(session_limit)                 /* daemon: openings.max_sessions tracked, the connection passes untracked */ \
  X(opening_used)                  /* daemon: a second data connection to a one-shot opening */ \
  X(opening_gone)                  /* daemon: a data SYN whose opening was closed meanwhile */ \
  X(nat_port_exhausted)            /* client-NAT active announcement: no free public port within limits::nat_port_tries */ \
  X(source_opening_limit)          /* daemon: openings.max_per_source live openings of this client address, no opening */ \
  X(source_session_limit)          /* daemon: openings.max_sessions_per_source sessions of this client address, passes untracked */ \
  X(source_hold_limit)             /* daemon: openings.max_held_bytes_per_source held for this client address: packet dropped untracked */ \
  X(half_open_evicted)             /* daemon: a half-open session forgotten for a newer one at max_half_open(_per_source) */ \
  X(opening_clash)                 /* daemon: another session's live opening has the same source and destination: no opening */ \
  X(address_not_unicast)           /* announced address is unspecified, multicast, broadcast, loopback, link-local or IPv4-mapped, and not the sender's own */ \
  X(nat66_unsupported)             /* daemon: an IPv6 control connection with address translation (NAT66/NPTv6): passed untouched */ \
  X(clear_command_channel)         /* range opening closed: the session left TLS (CCC, RFC 4217 12.3), one-shot openings again */ \
  X(ftps_lifetime_ended)           /* range opening closed: ftps.max_lifetime reached */ \
  X(ftps_range_missing)            /* per-client FTPS: no passive range configured for this server, nothing opened */ \
  X(ha_standby)                    /* daemon [ha]: this gateway became backup (ftpwall standby): its sessions and openings dropped, the master continues them from their HA labels */

enum class Reason : std::uint8_t {
#define FTPWALL_REASON_ENUM(n) n,
  FTPWALL_REASONS(FTPWALL_REASON_ENUM)
#undef FTPWALL_REASON_ENUM
};

constexpr std::string_view name(Reason r) {
  switch (r) {
#define FTPWALL_REASON_NAME(n) \
  case Reason::n:              \
    return #n;
    FTPWALL_REASONS(FTPWALL_REASON_NAME)
#undef FTPWALL_REASON_NAME
  }
  return "unknown";
}

// Errors of the core carry the Reason's name as the first word of the message ("packet_truncated:
// IPv4 total length 60 > 40 captured bytes"), so one Error type serves every layer and a caller can
// still count and log by name.
Error make_error(Reason r, std::string_view detail);
// The Reason an Error names; Reason::none if its message does not start with a known name and ':'.
Reason reason_of(const Error& e);

}  // namespace ftpwall
