// SPDX-License-Identifier: GPL-2.0-or-later
// The state directory's checks (security review L9): owner, mode, no symbolic link as the
// directory, records created O_EXCL|O_NOFOLLOW, load_all reads only regular files of ours.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "daemon/privileges.hpp"
#include "daemon/state_dir.hpp"

using namespace ftpwall;
using namespace ftpwall::daemon;
namespace fs = std::filesystem;

namespace {

class StateDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ftpwall-statedir-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
  }
  void TearDown() override { fs::remove_all(base_); }

  // `reader` finds exactly one record, valid, whose key's source port is `port`.
  static void expect_one_with_port(const StateDir& reader, std::uint16_t port) {
    auto all = reader.load_all();
    ASSERT_EQ(all.size(), 1u);
    ASSERT_TRUE(all[0].second) << all[0].second.error().message;
    EXPECT_EQ(all[0].second->key.src.port, port);
  }
  static SessionRecord record(std::uint32_t id) {
    SessionRecord r;
    r.ct_id = id;
    return r;
  }
  std::string base_;
};

}  // namespace

TEST_F(StateDirTest, CreatesTheDirectory0700AndRoundTripsARecord) {
  StateDir d(base_ + "/state");
  auto p = d.prepare();
  ASSERT_TRUE(p) << p.error().message;
  struct stat st{};
  ASSERT_EQ(::lstat((base_ + "/state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  ASSERT_TRUE(d.save(record(42)));
  auto all = d.load_all();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].first, base_ + "/state/42.session");
  ASSERT_TRUE(all[0].second) << all[0].second.error().message;
  EXPECT_EQ(all[0].second->ct_id, 42u);
  d.remove(42);
  EXPECT_TRUE(d.load_all().empty());
}

TEST_F(StateDirTest, TheDefaultOwnerIsTheDaemonsUid) {
  EXPECT_EQ(StateDir(base_).owner(), daemon_uid());
  EXPECT_EQ(daemon_uid(), ::geteuid());  // no --user in this process
}

TEST_F(StateDirTest, RefusesADirectoryOwnedByAnotherUid) {
  const uid_t other = ::geteuid() + 1;
  StateDir d(base_, other);
  auto p = d.prepare();
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("state directory " + base_ + ": owned by uid " + std::to_string(::geteuid())),
            std::string::npos)
      << p.error().message;
  EXPECT_NE(p.error().message.find("not by ftpwalld's uid " + std::to_string(other)), std::string::npos);
  EXPECT_EQ(p.error().message.find('\n'), std::string::npos);
}

TEST_F(StateDirTest, RefusesADirectoryWritableByGroupOrOthers) {
  for (mode_t m : {01777, 0770, 0702}) {
    ASSERT_EQ(::chmod(base_.c_str(), m), 0);
    StateDir d(base_);
    auto p = d.prepare();
    ASSERT_FALSE(p) << std::oct << m;
    EXPECT_NE(p.error().message.find("writable by group or others"), std::string::npos) << p.error().message;
  }
  ASSERT_EQ(::chmod(base_.c_str(), 0755), 0);  // readable is fine
  StateDir d(base_);
  EXPECT_TRUE(d.prepare());
}

TEST_F(StateDirTest, RefusesASymbolicLinkAsTheDirectory) {
  ASSERT_EQ(::mkdir((base_ + "/real").c_str(), 0700), 0);
  ASSERT_EQ(::symlink((base_ + "/real").c_str(), (base_ + "/link").c_str()), 0);
  StateDir d(base_ + "/link");
  auto p = d.prepare();
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("symbolic link"), std::string::npos) << p.error().message;
}

TEST_F(StateDirTest, RefusesAFile) {
  std::ofstream(base_ + "/file") << "x";
  StateDir d(base_ + "/file");
  auto p = d.prepare();
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message.find("not a directory"), std::string::npos) << p.error().message;
}

TEST_F(StateDirTest, AStaleTemporaryFileIsReplacedNotWrittenThrough) {
  StateDir d(base_);
  ASSERT_TRUE(d.prepare());
  // A temporary name that is a symbolic link to somewhere else: the target is never written.
  const std::string victim = base_ + "/victim";
  std::ofstream(victim) << "keep";
  ASSERT_EQ(::symlink(victim.c_str(), (base_ + "/7.session.tmp").c_str()), 0);
  ASSERT_TRUE(d.save(record(7)));
  std::ifstream in(victim);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "keep");
  struct stat st{};
  ASSERT_EQ(::lstat((base_ + "/7.session").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_NE(::access((base_ + "/7.session.tmp").c_str(), F_OK), 0);
}

TEST_F(StateDirTest, ARecordNameThatIsASymbolicLinkIsReplacedByTheRecord) {
  StateDir d(base_);
  ASSERT_TRUE(d.prepare());
  const std::string victim = base_ + "/victim";
  std::ofstream(victim) << "keep";
  ASSERT_EQ(::symlink(victim.c_str(), (base_ + "/8.session").c_str()), 0);
  ASSERT_TRUE(d.save(record(8)));
  struct stat st{};
  ASSERT_EQ(::lstat((base_ + "/8.session").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  std::ifstream in(victim);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "keep");
}

TEST_F(StateDirTest, LoadAllRefusesWhatIsNotARegularFileOfOurs) {
  StateDir d(base_);
  ASSERT_TRUE(d.prepare());
  ASSERT_TRUE(d.save(record(1)));
  const std::string victim = base_ + "/victim";
  {
    StateDir other(base_ + "/x");
    ASSERT_TRUE(other.prepare());
    ASSERT_TRUE(other.save(record(9)));
    fs::rename(base_ + "/x/9.session", victim);
  }
  ASSERT_EQ(::symlink(victim.c_str(), (base_ + "/2.session").c_str()), 0);  // a link to a valid record
  ASSERT_EQ(::mkfifo((base_ + "/3.session").c_str(), 0600), 0);              // must not block
  ASSERT_EQ(::mkdir((base_ + "/4.session").c_str(), 0700), 0);
  ASSERT_EQ(::link((base_ + "/1.session").c_str(), (base_ + "/5.session").c_str()), 0);  // two links
  std::map<std::string, std::string> seen;
  for (auto& [path, r] : d.load_all()) seen[fs::path(path).filename()] = r ? "ok" : r.error().message;
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(seen["2.session"], "a symbolic link, not a record");
  EXPECT_EQ(seen["3.session"], "not a regular file");
  EXPECT_EQ(seen["4.session"], "not a regular file");
  EXPECT_EQ(seen["1.session"], "has 2 hard links");
  EXPECT_EQ(seen["5.session"], "has 2 hard links");
}

TEST_F(StateDirTest, LoadAllRefusesRecordsOwnedByAnotherUid) {
  // Without root a file owned by someone else cannot be made: check against another expected owner
  // of the same directory instead (prepare() is not needed for reading).
  StateDir mine(base_);
  ASSERT_TRUE(mine.prepare());
  ASSERT_TRUE(mine.save(record(11)));
  StateDir theirs(base_, ::geteuid() + 1);
  auto all = theirs.load_all();
  ASSERT_EQ(all.size(), 1u);
  ASSERT_FALSE(all[0].second);
  EXPECT_NE(all[0].second.error().message.find("owned by uid " + std::to_string(::geteuid())), std::string::npos);
}

TEST_F(StateDirTest, OversizedRecordsAreNotRead) {
  StateDir d(base_);
  ASSERT_TRUE(d.prepare());
  {
    std::ofstream out(base_ + "/12.session");
    out << std::string(StateDir::max_file_bytes + 1, 'x');
  }
  ::chmod((base_ + "/12.session").c_str(), 0600);
  auto all = d.load_all();
  ASSERT_EQ(all.size(), 1u);
  ASSERT_FALSE(all[0].second);
  EXPECT_NE(all[0].second.error().message.find("larger than"), std::string::npos);
}

TEST_F(StateDirTest, LaterSavesAlternateSlotsAndTheNewestValidOneIsRead) {
  StateDir d(base_);
  ASSERT_TRUE(d.prepare());
  SessionRecord r = record(21);
  StateDir other(base_);  // another reader: a save is in the file at once (mapped, no msync)
  ASSERT_TRUE(other.prepare());
  for (std::uint16_t port = 1; port <= 5; ++port) {
    r.key.src.port = port;
    ASSERT_TRUE(d.save(r));
    expect_one_with_port(d, port);
    expect_one_with_port(other, port);
  }
  // The file kept open is sized to both slots and mapped (issue 13): a hole, so it costs only the
  // pages written; and mapped indeed (a failed mmap would fall back to pwrite silently).
  {
    struct stat st{};
    ASSERT_EQ(::stat((base_ + "/21.session").c_str(), &st), 0);
    EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), StateDir::max_file_bytes);
    EXPECT_LE(static_cast<std::uint64_t>(st.st_blocks) * 512, 64u * 1024) << "not sparse: " << st.st_blocks << " blocks";
    std::ifstream maps("/proc/self/maps");
    const std::string m((std::istreambuf_iterator<char>(maps)), {});
    EXPECT_NE(m.find("/21.session"), std::string::npos) << "the record is not mapped";
  }
  // The newest slot torn (a daemon killed in the middle of its pwrite): the previous record.
  const std::string path = base_ + "/21.session";
  const off_t newest = static_cast<off_t>(((5 - 1) % 2) * StateDir::slot_bytes);  // generation 5
  {
    const int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, "XX", 2, newest + static_cast<off_t>(StateDir::slot_header_bytes) + 3), 2);
    ::close(fd);
  }
  auto all = d.load_all();
  ASSERT_TRUE(all[0].second) << all[0].second.error().message;
  EXPECT_EQ(all[0].second->key.src.port, 4);
  // Replaced under the daemon by a link: the next save makes a new file of its own, never writes
  // through the link.
  const std::string victim = base_ + "/victim";
  std::ofstream(victim) << "keep";
  ::unlink(path.c_str());
  ASSERT_EQ(::symlink(victim.c_str(), path.c_str()), 0);
  d.notice();  // the daemon's loop, before its next save
  ASSERT_TRUE(d.save(r));
  std::ifstream in(victim);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), "keep");
  struct stat st{};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  // An older daemon's plain text record is still read.
  std::ofstream(base_ + "/22.session") << format_session_record(record(22));
  ::chmod((base_ + "/22.session").c_str(), 0600);
  bool seen = false;
  for (auto& [p, rec] : d.load_all())
    if (p.ends_with("/22.session")) seen = rec && rec->ct_id == 22u;
  EXPECT_TRUE(seen);
}

// The fstat before a save only when the watch named the record (issue 13): a record removed under
// the daemon is made anew at the save after notice(); a record whose name nothing touched is
// written in place; a save before the notice goes to the file it had (as a save just before the
// removal would), and the one after it makes the record again.
TEST_F(StateDirTest, ARecordRemovedUnderTheDaemonIsMadeAnewAfterTheWatchNamesIt) {
  StateDir d(base_);
  ASSERT_TRUE(d.prepare());
  ASSERT_GE(d.watch_fd(), 0) << "no inotify watch on the state directory";
  SessionRecord r = record(31), other = record(32);
  ASSERT_TRUE(d.save(r));
  ASSERT_TRUE(d.save(other));
  d.notice();  // its own creations (renames) mark them: one fstat each at the next save
  r.key.src.port = 1;
  ASSERT_TRUE(d.save(r));
  const std::string path = base_ + "/31.session";
  ASSERT_EQ(::unlink(path.c_str()), 0);
  r.key.src.port = 2;
  ASSERT_TRUE(d.save(r));  // not noticed yet: into the removed file
  EXPECT_FALSE(fs::exists(path));
  d.notice();
  r.key.src.port = 3;
  ASSERT_TRUE(d.save(r));
  ASSERT_TRUE(fs::exists(path)) << "a removed record was not made anew after notice()";
  // The other record, untouched, is still written in place (same inode).
  struct stat before{}, after{};
  ASSERT_EQ(::stat((base_ + "/32.session").c_str(), &before), 0);
  other.key.src.port = 9;
  ASSERT_TRUE(d.save(other));
  ASSERT_EQ(::stat((base_ + "/32.session").c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  StateDir reader(base_);
  ASSERT_TRUE(reader.prepare());
  std::map<std::uint32_t, std::uint16_t> ports;
  for (auto& [p, rec] : reader.load_all()) {
    ASSERT_TRUE(rec) << p << ": " << rec.error().message;
    ports[rec->ct_id] = rec->key.src.port;
  }
  EXPECT_EQ(ports, (std::map<std::uint32_t, std::uint16_t>{{31, 3}, {32, 9}}));
}

// A later save of the same session copies its prefix (magic, ct, tuples, key) as formatted at the
// first and hashes only the corrections (issue 13). Every slot must still be exactly what
// formatting the record whole gives, checksum included (load_all checks it), also when the
// corrections grow, and when the tuples under the same ct id change (the kept prefix is not used).
TEST_F(StateDirTest, SavesWithAKeptPrefixAreTheSameBytes) {
  StateDir d(base_);
  ASSERT_TRUE(d.prepare());
  const auto slot_text = [&](std::uint64_t gen) {
    std::ifstream in(base_ + "/77.session", std::ios::binary);
    const std::string file((std::istreambuf_iterator<char>(in)), {});
    const std::size_t at = static_cast<std::size_t>((gen - 1) % 2) * StateDir::slot_bytes;
    std::uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len |= std::uint32_t{static_cast<unsigned char>(file[at + 12 + i])} << (8 * i);
    return file.substr(at + StateDir::slot_header_bytes, len);
  };
  SessionRecord r;
  r.ct_id = 77;
  const Endpoint c{Address::parse("198.51.100.7").value(), 40000}, pub{Address::parse("203.0.113.1").value(), 21},
      in{Address::parse("10.1.1.2").value(), 21};
  r.tuples = {{c, pub}, {in, c}};
  r.key = {c, in};
  std::uint32_t pos = 100;
  for (std::uint64_t gen = 1; gen <= 6; ++gen) {
    if (gen == 5) {  // the same ct id, other tuples: formatted anew
      r.tuples.original.src.port = 40001;
      r.tuples.reply.dst.port = 40001;
      r.key.src.port = 40001;
    }
    const std::string a = "10,1,1,2", b = "203,0,113,1";
    ASSERT_TRUE(r.corrections
                    .record(Direction::server_to_client, pos, std::span(reinterpret_cast<const std::uint8_t*>(a.data()), a.size()),
                            std::span(reinterpret_cast<const std::uint8_t*>(b.data()), b.size()))
                    .ok());
    pos += 200;
    r.corrections.note_sent(Direction::server_to_client, pos);
    ASSERT_TRUE(d.save(r));
    EXPECT_EQ(slot_text(gen), format_session_record(r)) << "generation " << gen;
    auto all = d.load_all();
    ASSERT_EQ(all.size(), 1u);
    ASSERT_TRUE(all[0].second) << "generation " << gen << ": " << all[0].second.error().message;
    EXPECT_TRUE(*all[0].second == r) << "generation " << gen;
  }
}
