// SPDX-License-Identifier: GPL-2.0-or-later
// The command-line words the backend drivers (iptc_probe, nft_backend_probe) share: addresses,
// endpoints, one opening, a batch of steps, and the line an opening is printed as.
//   open SESSION OPENING SRC DST:PORT EXPIRES_UNIX [--dnat IP:PORT] [--snat IP] [--queue N] [--range-to LAST]
//   batch STEP [, STEP]...   STEP = open ... (as above) | close SESSION OPENING
// Addresses are IPv4 or IPv6; an IPv6 endpoint is written [2001:db8::1]:50000.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ftpwall/firewall/backend.hpp"

namespace ftpwall::probe {

// Each driver defines it: its name and the message on stderr, exit status 1.
[[noreturn]] void die(const std::string& msg);

inline void check(const Result<void>& r) {
  if (!r) die(r.error().message);
}

inline Address addr(std::string_view s) {
  auto a = Address::parse(s);
  if (!a) die("bad address " + std::string(s));
  return *a;
}

// 192.0.2.1:50000, [2001:db8::1]:50000
inline Endpoint endpoint(std::string_view s) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos) die("bad endpoint " + std::string(s));
  std::string_view host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return Endpoint{addr(host), static_cast<std::uint16_t>(std::stoul(std::string(s.substr(colon + 1))))};
}

inline firewall::OpeningId opening_id(const std::string& session, const std::string& number, bool range = false) {
  return {std::stoull(session), static_cast<std::uint32_t>(std::stoul(number)), range};
}

inline std::string show(const firewall::Opening& o) {
  std::string s = "s" + std::to_string(o.id.session) + (o.id.range ? " r" : " o") + std::to_string(o.id.opening) + " " +
                  o.source.to_string() + " -> " + o.destination.to_string() + " until " +
                  std::to_string(std::chrono::round<std::chrono::seconds>(firewall::wall_time(o.expires).time_since_epoch()).count());
  if (o.dnat_to) s += " dnat " + o.dnat_to->to_string();
  if (o.snat_to) s += " snat " + o.snat_to->to_string();
  if (o.queue) s += " queue " + std::to_string(*o.queue);
  if (o.is_range()) s += " range to " + std::to_string(o.port_last);
  return s;
}

// open ... from a[0] ("open"); EXPIRES_UNIX is UTC seconds, turned into the monotonic expiry.
inline firewall::Opening opening_of(const std::vector<std::string>& a) {
  if (a.size() < 6)
    die("open: SESSION OPENING SRC DST:PORT EXPIRES_UNIX [--dnat IP:PORT] [--snat IP] [--queue N] [--range-to LAST]");
  firewall::Opening o;
  o.id = opening_id(a[1], a[2]);
  o.source = addr(a[3]);
  o.family = o.source.family;
  o.destination = endpoint(a[4]);
  o.expires = firewall::monotonic_time(firewall::WallClock::time_point(std::chrono::seconds(std::stoll(a[5]))));
  for (std::size_t i = 6; i < a.size(); i += 2) {
    if (i + 1 >= a.size()) die("open: " + a[i] + " needs a value");
    if (a[i] == "--dnat") {
      o.dnat_to = endpoint(a[i + 1]);
    } else if (a[i] == "--snat") {
      o.snat_to = addr(a[i + 1]);
    } else if (a[i] == "--queue") {
      o.queue = static_cast<std::uint16_t>(std::stoul(a[i + 1]));
    } else if (a[i] == "--range-to") {  // a range opening (per-client FTPS): DST:PORT .. this port
      o.port_last = static_cast<std::uint16_t>(std::stoul(a[i + 1]));
      o.id.range = true;
    } else {
      die("open: unknown option " + a[i]);
    }
  }
  return o;
}

// batch STEP [, STEP]... from a[0] ("batch"): the steps of one apply().
inline std::vector<firewall::Change> batch_of(const std::vector<std::string>& a) {
  std::vector<firewall::Change> batch;
  std::vector<std::string> step;
  auto flush_step = [&] {
    if (step.empty()) die("batch: empty step");
    if (step[0] == "open") batch.push_back(firewall::OpenStep{opening_of(step)});
    else if (step[0] == "close" && step.size() == 3) batch.push_back(firewall::CloseStep{opening_id(step[1], step[2])});
    else die("batch: bad step " + step[0]);
    step.clear();
  };
  for (std::size_t i = 1; i < a.size(); ++i) {
    if (a[i] == ",") flush_step();
    else step.push_back(a[i]);
  }
  flush_step();
  return batch;
}

}  // namespace ftpwall::probe
