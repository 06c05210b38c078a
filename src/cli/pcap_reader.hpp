// SPDX-License-Identifier: GPL-2.0-or-later
// Capture files for `ftpwall replay`, read by libpcap (pcap and pcapng, any byte order, micro- or
// nanosecond timestamps). The only file in ftpwall that includes <pcap.h>.
#pragma once

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "cli/capture_decode.hpp"
#include "cli/replay.hpp"
#include "ftpwall/core/result.hpp"

namespace ftpwall::cli {

class CaptureFile {
 public:
  // Errors are one line: "FILE: what libpcap said" or "FILE: link type NAME (N) is not supported".
  static Result<CaptureFile> open(const std::string& path);
  // A capture already open as a stdio stream (the fuzz target's fmemopen); libpcap closes it.
  static Result<CaptureFile> open(std::FILE* file, const std::string& name);
  CaptureFile(CaptureFile&&) noexcept;
  CaptureFile& operator=(CaptureFile&&) noexcept;
  ~CaptureFile();

  capture::LinkType link() const { return link_; }
  int dlt() const { return dlt_; }
  const std::string& name() const { return name_; }

  // Every frame to `replayer`, in file order. A read error after the file header (a capture cut
  // short, a damaged record) ends the file: the frames before it were read, and the warning
  // (one line, without the file name) says where it stopped.
  std::optional<std::string> read_all(replay::Replayer& replayer);
  std::uint64_t frames() const { return frames_; }

 private:
  struct Handle;
  CaptureFile(std::unique_ptr<Handle> h, std::string name, capture::LinkType link, int dlt);
  static Result<CaptureFile> adopt(std::unique_ptr<Handle> h, const std::string& name);

  std::unique_ptr<Handle> h_;
  std::string name_;
  capture::LinkType link_;
  int dlt_;
  std::uint64_t frames_ = 0;
};

}  // namespace ftpwall::cli
