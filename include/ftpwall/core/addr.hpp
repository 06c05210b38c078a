// SPDX-License-Identifier: GPL-2.0-or-later
// Addresses and endpoints of both families, as plain values (network byte order inside).
#pragma once

#include <array>
#include <bit>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "ftpwall/core/result.hpp"

namespace ftpwall {

enum class Family : std::uint8_t { v4 = 4, v6 = 6 };

// An IPv4 or IPv6 address. bytes[0..3] hold an IPv4 address, the rest stay zero.
struct Address {
  Family family = Family::v4;
  std::array<std::uint8_t, 16> bytes{};

  static Address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    Address r;
    r.family = Family::v4;
    r.bytes = {a, b, c, d};
    return r;
  }
  static Address v4_from_u32(std::uint32_t host_order);
  std::uint32_t v4_u32() const;  // host byte order; only for family v4
  std::size_t size() const { return family == Family::v4 ? 4 : 16; }

  // Strict textual forms: dotted quad without leading zeros, or RFC 4291 text.
  static Result<Address> parse(std::string_view text);
  static Result<Address> parse(std::string_view text, Family family);
  std::string to_string() const;

  // The order of (family, bytes) compared byte by byte, as a defaulted operator would give, but as
  // two 64-bit words: every session, opening and element lookup compares addresses, and the
  // defaulted form was a memcmp call each time (issue 13).
  std::strong_ordering operator<=>(const Address& o) const {
    if (family != o.family) return family <=> o.family;
    const auto [a0, a1] = words();
    const auto [b0, b1] = o.words();
    if (a0 != b0) return a0 <=> b0;
    return a1 <=> b1;
  }
  bool operator==(const Address& o) const {
    std::uint64_t a[2], b[2];
    std::memcpy(a, bytes.data(), 16);
    std::memcpy(b, o.bytes.data(), 16);
    return family == o.family && a[0] == b[0] && a[1] == b[1];
  }

 private:
  // bytes[0..7] and bytes[8..15] as numbers whose order is the bytes' order (big-endian).
  std::pair<std::uint64_t, std::uint64_t> words() const {
    std::uint64_t w[2];
    std::memcpy(w, bytes.data(), 16);
    if constexpr (std::endian::native == std::endian::little) return {__builtin_bswap64(w[0]), __builtin_bswap64(w[1])};
    else return {w[0], w[1]};
  }
};

struct Endpoint {
  Address addr;
  std::uint16_t port = 0;
  std::string to_string() const;  // 192.0.2.1:21, [2001:db8::1]:21
  void append_to(std::string& out) const;  // the same, appended
  auto operator<=>(const Endpoint&) const = default;
};

// A network prefix such as 198.51.100.0/24.
struct Cidr {
  Address addr;
  std::uint8_t prefix = 0;
  static Result<Cidr> parse(std::string_view text);
  bool contains(const Address& a) const;
  std::string to_string() const;
  auto operator<=>(const Cidr&) const = default;
};

}  // namespace ftpwall
