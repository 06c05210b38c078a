// SPDX-License-Identifier: GPL-2.0-or-later
// The state record of one session with corrections (issue 5: restarts keep sessions alive). A
// session whose stream was rewritten cannot be rebuilt from the wire: a restarted daemon that did
// not know the shift would pass the peers' packets with sequence numbers neither expects. ftpwalld
// writes this record before the verdict of every packet that changes the history, and reads it
// back on start, where the conntrack entry must still exist with the same id (a reused 4-tuple is
// another connection with another id).
//
//   ftpwalld-session 1
//   ct 3188460011                                         CTA_ID of the entry
//   original 192.0.2.10:40312 203.0.113.1:21              conntrack's original tuple
//   reply 10.0.0.10:21 192.0.2.10:40312                   conntrack's reply tuple
//   key 192.0.2.10:40312 10.0.0.10:21                     client -> server as the daemon's hook shows them
//   ftpwall-seqadj 1                                      SeqAdjust::serialize(), to the end
//   dir c2s base 0 acked - sent 1000 n 0
//   dir s2c base 0 acked 77 sent 77 n 1
//   corr 242 31302c302c302c3130 3230332c302c3131332c31
//
// Pure text in, text out (the daemon does the file I/O); parse(format(r)) == r.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/result.hpp"
#include "ftpwall/core/seq_adjust.hpp"

namespace ftpwall {

struct SessionRecord {
  std::uint32_t ct_id = 0;
  ConnTuples tuples;
  Tuple key;
  SeqAdjust corrections;
  bool operator==(const SessionRecord&) const = default;
};

std::string format_session_record(const SessionRecord& r);
// The same text appended to `out`, from the parts (the daemon writes a record at every rewrite:
// no copy of the history, no temporary strings; issue 13).
void append_session_record(std::string& out, std::uint32_t ct_id, const ConnTuples& tuples, const Tuple& key,
                           const SeqAdjust& corrections);
// Its first part, everything before the corrections (the magic line, ct, original, reply, key):
// append_session_record is this followed by corrections.serialize_to(out). A session's prefix
// does not change, so the daemon keeps it formatted (StateDir).
void append_session_record_prefix(std::string& out, std::uint32_t ct_id, const ConnTuples& tuples, const Tuple& key);
inline void append_session_record(std::string& out, const SessionRecord& r) {
  append_session_record(out, r.ct_id, r.tuples, r.key, r.corrections);
}
Result<SessionRecord> parse_session_record(std::string_view text);

// "192.0.2.1:21", "[2001:db8::1]:21" (Endpoint::to_string) and back.
Result<Endpoint> parse_endpoint(std::string_view text);

}  // namespace ftpwall
