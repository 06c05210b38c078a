// SPDX-License-Identifier: GPL-2.0-or-later
#include "cli/pcap_reader.hpp"

#include <pcap/pcap.h>

namespace ftpwall::cli {

struct CaptureFile::Handle {
  pcap_t* p = nullptr;
  ~Handle() {
    if (p) pcap_close(p);
  }
};

namespace {
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}
}  // namespace

CaptureFile::CaptureFile(std::unique_ptr<Handle> h, std::string name, capture::LinkType link, int dlt)
    : h_(std::move(h)), name_(std::move(name)), link_(link), dlt_(dlt) {}
CaptureFile::CaptureFile(CaptureFile&&) noexcept = default;
CaptureFile& CaptureFile::operator=(CaptureFile&&) noexcept = default;
CaptureFile::~CaptureFile() = default;

Result<CaptureFile> CaptureFile::adopt(std::unique_ptr<Handle> h, const std::string& name) {
  const int dlt = pcap_datalink(h->p);
  const auto link = capture::link_type_from_dlt(dlt);
  if (!link) {
    const char* n = pcap_datalink_val_to_name(dlt);
    return make_error(name + ": link type " + (n ? n : "unknown") + " (" + std::to_string(dlt) +
                      ") is not supported (Ethernet, Linux cooked, raw IP, BSD loopback are)");
  }
  return CaptureFile(std::move(h), name, *link, dlt);
}

Result<CaptureFile> CaptureFile::open(const std::string& path) {
  char err[PCAP_ERRBUF_SIZE] = "";
  auto h = std::make_unique<Handle>();
  h->p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  if (!h->p) return make_error(path + ": " + one_line(err));
  return adopt(std::move(h), path);
}

Result<CaptureFile> CaptureFile::open(std::FILE* file, const std::string& name) {
  char err[PCAP_ERRBUF_SIZE] = "";
  auto h = std::make_unique<Handle>();
  h->p = pcap_fopen_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_NANO, err);
  if (!h->p) {
    std::fclose(file);
    return make_error(name + ": " + one_line(err));
  }
  return adopt(std::move(h), name);
}

std::optional<std::string> CaptureFile::read_all(replay::Replayer& replayer) {
  pcap_pkthdr* hdr = nullptr;
  const u_char* data = nullptr;
  for (;;) {
    const int rc = pcap_next_ex(h_->p, &hdr, &data);
    if (rc == PCAP_ERROR_BREAK) return std::nullopt;  // the end of the file
    if (rc != 1) {
      return "read stopped after packet " + std::to_string(frames_) + ": " + one_line(pcap_geterr(h_->p));
    }
    ++frames_;
    const std::uint64_t t = static_cast<std::uint64_t>(hdr->ts.tv_sec) * 1'000'000'000u +
                            static_cast<std::uint64_t>(hdr->ts.tv_usec);  // nanoseconds (precision NANO)
    replayer.on_frame(link_, t, frames_, {data, hdr->caplen});
  }
}

}  // namespace ftpwall::cli
