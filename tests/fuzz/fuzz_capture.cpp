// SPDX-License-Identifier: GPL-2.0-or-later
// libFuzzer target for `ftpwall replay` (issue 12): one input is a capture file (pcap or pcapng)
// read by libpcap from memory, every frame through the link-layer decoder and the replay engine
// (sessions, Tracker, shadow line reader), both outputs written to nowhere. Then the input itself
// as one frame of every link type. Checks: no crash, no sanitizer report, the summary adds up.
// Seeds (corpus/fuzz_capture) are small hand-built captures of recorded sessions, one per link type.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <span>
#include <streambuf>

#include "cli/capture_decode.hpp"
#include "cli/pcap_reader.hpp"
#include "cli/replay.hpp"
#include "cli/replay_output.hpp"

namespace {

using namespace ftpwall::cli;

class NullBuf : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
  std::streamsize xsputn(const char*, std::streamsize n) override { return n; }
};

struct Both : replay::EventSink {
  Both(std::ostream& o) : text(o), json(o) {}
  replay::TextSink text;
  replay::JsonSink json;
  void on_event(const replay::Event& e) override {
    text.on_event(e);
    json.on_event(e);
  }
};

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  NullBuf nb;
  std::ostream out(&nb);
  {
    Both sink(out);
    replay::Options o;
    o.control_ports = {21, 2121};
    replay::Replayer r(o, sink);
    if (size > 0) {
      std::FILE* f = fmemopen(const_cast<std::uint8_t*>(data), size, "rb");
      if (f) {
        auto cap = CaptureFile::open(f, "fuzz");
        if (cap) (void)cap->read_all(r);
      }
    }
    r.finish();
    const replay::Summary& s = r.summary();
    check(s.ip_packets + s.not_ip + s.not_understood >= s.packets);
    check(s.tcp_packets <= s.ip_packets && s.control_packets <= s.tcp_packets);
    check(s.pickups <= s.sessions);
    replay::write_summary_text(out, s);
    replay::write_summary_json(out, s, false);
  }
  const std::span<const std::uint8_t> in(data, size);
  for (auto l : {capture::LinkType::ethernet, capture::LinkType::linux_sll, capture::LinkType::linux_sll2,
                 capture::LinkType::raw, capture::LinkType::null, capture::LinkType::loop}) {
    const capture::Decoded d = capture::decode(l, in);
    if (d.status == capture::DecodeStatus::ok) check(d.ip.data() >= in.data() && d.ip.data() + d.ip.size() == in.data() + in.size());
  }
  return 0;
}
