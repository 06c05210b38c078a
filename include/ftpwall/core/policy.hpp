// SPDX-License-Identifier: GPL-2.0-or-later
// The strict policy (issue 3 item 6): given the facts the Session gathered about one parsed
// announcement, say yes (Reason::none) or no with a stable Reason. Pure and stateless: the Session
// owns the state, the Policy owns the judgement, so every refusal is testable from facts alone.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "ftpwall/core/addr.hpp"
#include "ftpwall/core/conn.hpp"
#include "ftpwall/core/decision.hpp"
#include "ftpwall/core/ftp_wire.hpp"
#include "ftpwall/core/limits.hpp"
#include "ftpwall/core/reason.hpp"

namespace ftpwall {

struct PolicyConfig {
  // Lowest data port an announcement may name. Ports below 1024 are services (25, 139, 445...):
  // a PORT naming one turns the server into a relay against them (RFC 2577 3, "bounce").
  std::uint16_t port_floor = 1024;
  // Networks to which third-party transfers (FXP: an announced address that is not the sender's)
  // are allowed. Empty: none, every such announcement is address_not_sender.
  std::vector<Cidr> allow_third_party;
  // Count announcements only after a 230/232 to USER/PASS.
  bool require_login = false;
  // A client behind SNAT/MASQUERADE may name, in PORT/EPRT, the address the server sees for it
  // (the gateway's public address) instead of its own real address; the opening then DNATs to
  // the client. Off: only the real address counts, as nf_conntrack_ftp with loose=0 (every server
  // knows the public address, so it is what an injected PORT would name; NAT Slipstreaming had to
  // learn the victim's private address). On is weaker than the kernel helper; third-party
  // networks never stand in for it.
  bool allow_client_public_address = false;
  ViolationAction on_violation = ViolationAction::pass;
  // Holding a split announcement behind NAT (tracker.hpp): how long the packets carrying an
  // incomplete address may wait for the rest before its bytes seen so far are withheld.
  std::uint32_t hold_timeout_ms = static_cast<std::uint32_t>(limits::hold_timeout_ms);
};

// What the Session knows when an announcement arrives.
struct AnnouncementFacts {
  AnnouncementKind kind = AnnouncementKind::none;
  Direction from = Direction::client_to_server;
  bool greeted = false;             // the server's 220 greeting has been seen
  bool logged_in = false;           // 230/232 answered USER/PASS (and no REIN since)
  bool command_outstanding = false; // client: an earlier command is still unanswered
  bool answers_request = false;     // server: the oldest unanswered command is the matching one
  bool final_reply = true;          // server: "227 " rather than "227-"
  bool epsv_all = false;            // EPSV ALL was accepted earlier in the session
};

// Whether an address can be one remote host's (policy.cpp lists what is not).
bool is_unicast(const Address& a);

class Policy {
 public:
  Policy() = default;
  explicit Policy(PolicyConfig config) : config_(std::move(config)) {}

  const PolicyConfig& config() const { return config_; }
  ViolationAction on_violation() const { return config_.on_violation; }

  // The checks, in this order (the first failing one is the answer):
  //   wrong_direction, long_passive_unsupported, before_greeting, command_outstanding /
  //   reply_without_request, not_final_reply, not_logged_in, after_epsv_all, family_mismatch,
  //   address_not_unicast, address_not_sender, port_below_floor.
  // `announced` is what the line carried; for a 229 (no address) pass has_address = false.
  // The address must be the sender's real address (client_real(), server_real()), unless it lies
  // in allow_third_party: anything else would let a peer point the firewall's opening at a third
  // host (FTP bounce, NAT Slipstreaming pointing inside the LAN). The address the peer sees for
  // the sender counts too: always for a server (server_as_seen(), vsftpd pasv_address behind
  // DNAT), for a masqueraded client (client_as_seen()) only with allow_client_public_address.
  Reason check(const AnnouncementFacts& facts, const Endpoint& announced, bool has_address,
               const ConnTuples& tuples) const;

  bool third_party_allowed(const Address& a) const;

 private:
  PolicyConfig config_;
};

}  // namespace ftpwall
