// SPDX-License-Identifier: GPL-2.0-or-later
// FNV-1a, 64 bit: the state records' checksum (a file format: the value must never change) and the
// hash of the daemon's tables keyed by tuples and nftables element keys.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace ftpwall {

class Fnv1a {
 public:
  Fnv1a& add(std::uint8_t byte) {
    h_ = (h_ ^ byte) * prime;
    return *this;
  }
  Fnv1a& add(std::span<const std::uint8_t> bytes) {
    for (std::uint8_t b : bytes) add(b);
    return *this;
  }
  Fnv1a& add(std::string_view text) {
    for (char c : text) add(static_cast<std::uint8_t>(c));
    return *this;
  }
  Fnv1a& add_u16(std::uint16_t v) { return add(static_cast<std::uint8_t>(v >> 8)).add(static_cast<std::uint8_t>(v)); }
  std::uint64_t value() const { return h_; }

 private:
  static constexpr std::uint64_t prime = 0x100000001b3ull;
  std::uint64_t h_ = 0xcbf29ce484222325ull;  // the offset basis
};

}  // namespace ftpwall
