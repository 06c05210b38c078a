// SPDX-License-Identifier: GPL-2.0-or-later
#include "ftpwall/core/addr.hpp"

#include <arpa/inet.h>  // inet_pton/inet_ntop: pure libc text conversion, no syscall

#include <charconv>

namespace ftpwall {

Address Address::v4_from_u32(std::uint32_t h) {
  return v4(static_cast<std::uint8_t>(h >> 24), static_cast<std::uint8_t>(h >> 16),
            static_cast<std::uint8_t>(h >> 8), static_cast<std::uint8_t>(h));
}

std::uint32_t Address::v4_u32() const {
  return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
         std::uint32_t{bytes[3]};
}

Result<Address> Address::parse(std::string_view text, Family family) {
  if (text.empty() || text.size() > 45) return make_error("not an IP address: '" + std::string(text) + "'");
  std::string s(text);
  Address a;
  a.family = family;
  if (family == Family::v4) {
    if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
    return make_error("not an IPv4 address: '" + s + "'");
  }
  if (s.find(':') != std::string::npos && inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) return a;
  return make_error("not an IPv6 address: '" + s + "'");
}

Result<Address> Address::parse(std::string_view text) {
  return parse(text, text.find(':') != std::string_view::npos ? Family::v6 : Family::v4);
}

// IPv4 by hand: glibc's inet_ntop formats each octet with sprintf, and an address is formatted
// for every state record a rewrite writes (issue 13: 2 % of the daemon behind DNAT).
std::string Address::to_string() const {
  if (family == Family::v4) {
    char buf[16];
    char* p = buf;
    for (int i = 0; i < 4; ++i) {
      if (i) *p++ = '.';
      p = std::to_chars(p, buf + sizeof buf, bytes[static_cast<std::size_t>(i)]).ptr;
    }
    return std::string(buf, p);
  }
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

std::string Endpoint::to_string() const {
  std::string s;
  s.reserve(48);
  append_to(s);
  return s;
}

void Endpoint::append_to(std::string& s) const {
  if (addr.family == Family::v6) s += '[';
  s += addr.to_string();  // IPv4 fits the string's own buffer: no allocation
  if (addr.family == Family::v6) s += ']';
  s += ':';
  char buf[8];
  s.append(buf, std::to_chars(buf, buf + sizeof buf, port).ptr);
}

Result<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  auto a = Address::parse(text.substr(0, slash));
  if (!a) return make_error("not a network: '" + std::string(text) + "'");
  Cidr c{*a, static_cast<std::uint8_t>(a->family == Family::v4 ? 32 : 128)};
  if (slash != std::string_view::npos) {
    auto p = text.substr(slash + 1);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || v > c.prefix || (p.size() > 1 && p[0] == '0'))
      return make_error("bad prefix length in '" + std::string(text) + "'");
    c.prefix = static_cast<std::uint8_t>(v);
  }
  // Canonical form: host bits must be zero (198.51.100.7/24 is almost always a typo).
  for (std::size_t bit = c.prefix; bit < c.addr.size() * 8; ++bit)
    if (c.addr.bytes[bit / 8] & (0x80u >> (bit % 8)))
      return make_error("host bits set in '" + std::string(text) + "'");
  return c;
}

bool Cidr::contains(const Address& a) const {
  if (a.family != addr.family) return false;
  for (std::size_t bit = 0; bit < prefix; ++bit) {
    unsigned m = 0x80u >> (bit % 8);
    if ((a.bytes[bit / 8] & m) != (addr.bytes[bit / 8] & m)) return false;
  }
  return true;
}

std::string Cidr::to_string() const { return addr.to_string() + "/" + std::to_string(prefix); }

}  // namespace ftpwall
