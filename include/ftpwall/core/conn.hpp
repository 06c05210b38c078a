// SPDX-License-Identifier: GPL-2.0-or-later
// A control connection as conntrack sees it, in core types (the daemon converts ctnetlink tuples
// at the border). With NAT, the two tuples differ:
//   original: client -> server as the client sent it   (src = client's real address, dst = what the client dialled)
//   reply:    server -> client as the server sends it   (src = server's real address, dst = what the server sees of the client)
// Without NAT, reply is original reversed.
#pragma once

#include <cstdint>
#include <string_view>

#include "ftpwall/core/addr.hpp"

namespace ftpwall {

// Direction of a byte stream of the control connection.
enum class Direction : std::uint8_t { client_to_server = 0, server_to_client = 1 };

constexpr Direction other(Direction d) {
  return d == Direction::client_to_server ? Direction::server_to_client : Direction::client_to_server;
}
constexpr std::string_view name(Direction d) {
  return d == Direction::client_to_server ? "client_to_server" : "server_to_client";
}

struct Tuple {
  Endpoint src;
  Endpoint dst;
  auto operator<=>(const Tuple&) const = default;
};

struct ConnTuples {
  Tuple original;
  Tuple reply;

  // Without NAT: reply = original reversed.
  static ConnTuples without_nat(const Endpoint& client, const Endpoint& server) {
    return {{client, server}, {server, client}};
  }
  Family family() const { return original.src.addr.family; }
  const Address& client_real() const { return original.src.addr; }      // the client's own address
  const Address& client_as_seen() const { return reply.dst.addr; }      // the client as the server sees it
  const Address& server_real() const { return reply.src.addr; }         // the server's own address
  const Address& server_as_seen() const { return original.dst.addr; }   // the server as the client sees it
  bool client_nat() const { return client_real() != client_as_seen(); } // SNAT/MASQUERADE of the client
  bool server_nat() const { return server_real() != server_as_seen(); } // DNAT to the server
  auto operator<=>(const ConnTuples&) const = default;
};

}  // namespace ftpwall
