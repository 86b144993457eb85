// Audit segment files: frames, the writer (io_uring and pwrite), recovery at
// every cut, verify, rotation, retention, the tail.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "audit_writer.h"
#include "frame.h"
#include "log_reader.h"

namespace sluice::audit {
namespace {

using Bytes = std::vector<std::uint8_t>;

// A directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/sluice-audit-test-XXXXXX";
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : "";
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Record `i` of `size` bytes; never a zero byte, so data is never taken for the zero tail.
Bytes record(std::size_t i, std::size_t size) {
  Bytes b(size);
  for (std::size_t k = 0; k < size; ++k) {
    b[k] = static_cast<std::uint8_t>(1 + (i * 31 + k * 7) % 255);
  }
  return b;
}

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

std::vector<Bytes> read_all(const std::string& dir) {
  std::vector<Bytes> out;
  Result<LogReader> r = LogReader::open(dir);
  EXPECT_TRUE(r.ok()) << r.status().message();
  if (!r.ok()) return out;
  while (true) {
    Result<std::optional<FrameRef>> f = r->next();
    EXPECT_TRUE(f.ok()) << f.status().message();
    if (!f.ok() || !f.value()) break;
    out.emplace_back(f.value()->payload.begin(), f.value()->payload.end());
  }
  EXPECT_TRUE(r->problems().empty()) << r->problems().front().message;
  return out;
}

std::vector<std::string> files_of(const std::string& dir) {
  Result<std::vector<std::string>> f = list_segment_files(dir);
  EXPECT_TRUE(f.ok()) << f.status().message();
  return f.ok() ? f.value() : std::vector<std::string>();
}

AuditWriterOptions small_options(const std::string& dir, bool io_uring = true) {
  AuditWriterOptions o;
  o.dir = dir;
  o.rotate_bytes = std::size_t{64} * 1024;
  o.batch_bytes = 4096;
  o.rotate_seconds = 0;
  o.retain_files = 0;
  o.use_io_uring = io_uring;
  return o;
}

struct Logged {
  std::vector<std::string> lines;
  AuditWriter::LogFn fn() {
    return [this](const std::string& l) { lines.push_back(l); };
  }
  std::size_t count(const std::string& word) const {
    return static_cast<std::size_t>(
        std::count_if(lines.begin(), lines.end(),
                      [&](const std::string& l) { return l.find(word) != std::string::npos; }));
  }
};

AuditWriter open_writer(const AuditWriterOptions& o, Logged* logged = nullptr) {
  Result<AuditWriter> w = AuditWriter::open(o, logged ? logged->fn() : AuditWriter::LogFn());
  EXPECT_TRUE(w.ok()) << w.status().message();
  return std::move(w).value();
}

void append_ok(AuditWriter& w, const Bytes& payload) {
  Status s = w.append(payload);
  ASSERT_TRUE(s.ok()) << s.message();
}

bool io_uring_works() {
  io_uring ring{};
  if (io_uring_queue_init(4, &ring, 0) < 0) return false;
  io_uring_queue_exit(&ring);
  return true;
}

// ---- frames ----

TEST(AuditFrame, RoundTripsEveryPayloadSizeAcrossEightByteBoundariesAndTheMaximum) {
  std::vector<std::size_t> sizes;
  for (std::size_t n = 1; n <= 80; ++n) sizes.push_back(n);
  for (std::size_t n = 4090; n <= 4105; ++n) sizes.push_back(n);
  for (std::size_t n = kMaxPayloadBytes - 9; n <= kMaxPayloadBytes; ++n) sizes.push_back(n);
  for (std::size_t n : sizes) {
    const Bytes payload = record(n, n);
    Bytes buf(frame_size(n) + 8, 0xEE);
    ASSERT_EQ(encode_frame(payload, buf), frame_size(n)) << n;
    EXPECT_EQ(frame_size(n) % 8, 0u);
    EXPECT_EQ(frame_size(n), ((16 + n + 7) / 8) * 8);
    EXPECT_EQ(buf[frame_size(n)], 0xEE) << "encode wrote past the frame, size " << n;
    const FrameView v = decode_frame(std::span(buf).first(frame_size(n)));
    ASSERT_EQ(v.check, FrameCheck::kOk) << n;
    EXPECT_EQ(v.length, n);
    EXPECT_EQ(v.size, frame_size(n));
    EXPECT_TRUE(std::equal(v.payload.begin(), v.payload.end(), payload.begin(), payload.end()));
  }
}

TEST(AuditFrame, HeaderLayoutIsLengthZeroWordThenSeededChecksum) {
  const Bytes payload = {1, 2, 3};
  Bytes buf(frame_size(3));
  ASSERT_EQ(encode_frame(payload, buf), 24u);
  EXPECT_EQ(Bytes(buf.begin(), buf.begin() + 8), (Bytes{3, 0, 0, 0, 0, 0, 0, 0}));
  std::uint64_t sum = 0;
  for (int i = 7; i >= 0; --i) sum = (sum << 8) | buf[8 + i];
  EXPECT_EQ(sum, frame_checksum(payload));
  EXPECT_EQ(Bytes(buf.begin() + 16, buf.end()), (Bytes{1, 2, 3, 0, 0, 0, 0, 0}));
}

TEST(AuditFrame, EncodeRefusesEmptyOversizedOrTooSmallOutput) {
  Bytes out(kMaxFrameBytes + 8);
  EXPECT_EQ(encode_frame({}, out), 0u);
  const Bytes big(kMaxPayloadBytes + 1, 1);
  EXPECT_EQ(encode_frame(big, out), 0u);
  const Bytes p(9, 1);
  EXPECT_EQ(encode_frame(p, std::span(out).first(frame_size(9) - 1)), 0u);
}

TEST(AuditFrame, ZeroHeaderOrOnlyZerosLeftIsTheEnd) {
  const Bytes zeros(64, 0);
  EXPECT_EQ(decode_frame(zeros).check, FrameCheck::kEnd);
  EXPECT_EQ(decode_frame(std::span(zeros).first(5)).check, FrameCheck::kEnd);
  EXPECT_EQ(decode_frame({}).check, FrameCheck::kEnd);
}

TEST(AuditFrame, EachBadHeaderFieldHasItsOwnVerdict) {
  const Bytes payload = record(1, 21);
  Bytes good(frame_size(21));
  encode_frame(payload, good);

  Bytes zero_len = good;
  zero_len[0] = 0;
  EXPECT_EQ(decode_frame(zero_len).check, FrameCheck::kBadLength);

  Bytes too_long = good;
  const std::uint32_t len = kMaxPayloadBytes + 1;
  std::memcpy(too_long.data(), &len, 4);
  EXPECT_EQ(decode_frame(too_long).check, FrameCheck::kBadLength);

  Bytes reserved = good;
  reserved[6] = 1;
  EXPECT_EQ(decode_frame(reserved).check, FrameCheck::kBadReserved);

  Bytes padding = good;
  padding.back() = 1;
  EXPECT_EQ(decode_frame(padding).check, FrameCheck::kBadReserved);

  Bytes payload_bit = good;
  payload_bit[20] ^= 0x10;
  EXPECT_EQ(decode_frame(payload_bit).check, FrameCheck::kBadChecksum);

  // 21 -> 22 keeps the frame size; the seed makes the checksum catch it.
  Bytes other_len = good;
  other_len[0] = 22;
  other_len[16 + 21] = 0;
  EXPECT_EQ(decode_frame(other_len).check, FrameCheck::kBadChecksum);

  for (std::size_t cut = 1; cut < good.size(); ++cut) {
    EXPECT_EQ(decode_frame(std::span(good).first(cut)).check, FrameCheck::kTruncated) << cut;
  }
}

// ---- writer and reader ----

class AuditWriterBothPaths : public ::testing::TestWithParam<bool> {};
INSTANTIATE_TEST_SUITE_P(IoPath, AuditWriterBothPaths, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "io_uring" : "pwrite"; });

TEST_P(AuditWriterBothPaths, RecordsComeBackInOrderAfterClose) {
  TempDir tmp;
  AuditWriter w = open_writer(small_options(tmp.path(), GetParam()));
  std::vector<Bytes> sent;
  for (std::size_t i = 0; i < 500; ++i) {
    sent.push_back(record(i, 1 + i % 300));
    append_ok(w, sent.back());
    if (i % 37 == 0) {
      ASSERT_TRUE(w.poll().ok());
    }
  }
  ASSERT_TRUE(w.close().ok());
  EXPECT_EQ(read_all(tmp.path()), sent);
  const AuditWriterStats st = w.stats();
  EXPECT_EQ(st.frames_appended, 500u);
  EXPECT_EQ(st.frames_written, 500u);
  EXPECT_EQ(st.unwritten_bytes, 0u);
  std::uint64_t on_disk = 0;
  for (const std::string& f : files_of(tmp.path())) on_disk += std::filesystem::file_size(f);
  EXPECT_EQ(st.bytes_on_disk, on_disk);
}

TEST_P(AuditWriterBothPaths, SyncedFlushPutsEverythingOnDiskAndStampsTheSyncTime) {
  TempDir tmp;
  AuditWriter w = open_writer(small_options(tmp.path(), GetParam()));
  for (std::size_t i = 0; i < 10; ++i) append_ok(w, record(i, 100));
  const std::uint64_t before =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
  ASSERT_TRUE(w.flush(true).ok());
  const AuditWriterStats st = w.stats();
  EXPECT_EQ(st.synced_offset, 10 * frame_size(100));
  EXPECT_EQ(st.current_offset, 10 * frame_size(100));
  EXPECT_EQ(st.frames_written, 10u);
  EXPECT_GE(st.last_sync_realtime_ns, before);
  // Preallocated: the file has its rotation size while it is written.
  EXPECT_EQ(std::filesystem::file_size(st.current_file), std::size_t{64} * 1024);
  ASSERT_TRUE(w.close().ok());
  EXPECT_EQ(std::filesystem::file_size(st.current_file), 10 * frame_size(100));
}

TEST_P(AuditWriterBothPaths, FailedWritesKeepTheRecordsAndWriteThemOnceTheDiskRecovers) {
  TempDir tmp;
  // RLIMIT_FSIZE makes writes past 8 KiB fail with EFBIG, like a full disk would.
  std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  rlimit small = old;
  small.rlim_cur = 8192;
  Logged logged;
  AuditWriter w = open_writer(small_options(tmp.path(), GetParam()), &logged);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::vector<Bytes> sent;
  for (std::size_t i = 0; i < 100; ++i) {
    sent.push_back(record(i, 200));
    append_ok(w, sent.back());  // 100 * 216 bytes: five batch buffers, so none is refused
  }
  Status failed = w.flush(true);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("File too large"), std::string::npos) << failed.message();
  EXPECT_NE(failed.message().find("kept"), std::string::npos) << failed.message();
  EXPECT_GT(w.stats().unwritten_bytes, 0u);
  EXPECT_GT(w.stats().write_errors, 0u);
  EXPECT_LT(w.stats().synced_offset, 100 * frame_size(200));

  Status retried = w.flush(true);
  ASSERT_TRUE(retried.ok()) << retried.message();
  EXPECT_EQ(w.stats().unwritten_bytes, 0u);
  ASSERT_TRUE(w.close().ok());
  EXPECT_EQ(read_all(tmp.path()), sent);
}

TEST(AuditWriter, PwriteFallbackWritesTheSameBytesAsIoUring) {
  TempDir a, b;
  for (bool io_uring : {true, false}) {
    AuditWriterOptions o = small_options(io_uring ? a.path() : b.path(), io_uring);
    o.rotate_bytes = std::size_t{16} * 1024;
    AuditWriter w = open_writer(o);
    for (std::size_t i = 0; i < 400; ++i) {
      // Mostly small records, now and then one larger than a batch buffer.
      append_ok(w, record(i, i % 50 == 7 ? 6000 + i : 1 + (i * 13) % 400));
      if (i % 10 == 0) {
        ASSERT_TRUE(w.poll().ok());
      }
      if (i % 99 == 0) {
        ASSERT_TRUE(w.flush(i % 2 == 0).ok());
      }
    }
    ASSERT_TRUE(w.close().ok());
  }
  const std::vector<std::string> fa = files_of(a.path()), fb = files_of(b.path());
  ASSERT_EQ(fa.size(), fb.size());
  ASSERT_GE(fa.size(), 5u);
  for (std::size_t i = 0; i < fa.size(); ++i) {
    EXPECT_EQ(read_file(fa[i]), read_file(fb[i])) << fa[i] << " vs " << fb[i];
  }
}

TEST(AuditWriter, UsesIoUringWhenTheKernelAllowsIt) {
  if (!io_uring_works()) GTEST_SKIP() << "io_uring_queue_init fails here (container policy?)";
  TempDir tmp;
  Logged logged;
  AuditWriter w = open_writer(small_options(tmp.path(), true), &logged);
  for (std::size_t i = 0; i < 100; ++i) append_ok(w, record(i, 120));
  ASSERT_TRUE(w.flush(true).ok());
  EXPECT_TRUE(w.stats().io_uring);
  EXPECT_GE(w.stats().io_uring_submissions, 4u);  // 3 full batches + the rest, with a sync
  EXPECT_TRUE(logged.lines.empty());
}

TEST(AuditWriter, ForcedPwriteSaysSoInExactlyOneLogLine) {
  TempDir tmp;
  Logged logged;
  AuditWriter w = open_writer(small_options(tmp.path(), false), &logged);
  for (std::size_t i = 0; i < 100; ++i) append_ok(w, record(i, 120));
  ASSERT_TRUE(w.close().ok());
  EXPECT_FALSE(w.stats().io_uring);
  EXPECT_EQ(w.stats().io_uring_submissions, 0u);
  ASSERT_EQ(logged.lines.size(), 1u);
  EXPECT_NE(logged.lines[0].find("pwrite"), std::string::npos) << logged.lines[0];
}

TEST(AuditWriter, RefusesBadOptionsAndBadRecordSizes) {
  TempDir tmp;
  AuditWriterOptions o = small_options(tmp.path());
  o.rotate_bytes = 100;
  Result<AuditWriter> bad = AuditWriter::open(o, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("rotate_bytes"), std::string::npos);

  AuditWriter w = open_writer(small_options(tmp.path()));
  EXPECT_EQ(w.append({}).code(), ErrorCode::kInvalidArgument);
  const Bytes big(kMaxPayloadBytes + 1, 1);
  EXPECT_EQ(w.append(big).code(), ErrorCode::kInvalidArgument);
  const Bytes max = record(1, kMaxPayloadBytes);
  append_ok(w, max);
  ASSERT_TRUE(w.close().ok());
  EXPECT_EQ(read_all(tmp.path()), std::vector<Bytes>{max});
  EXPECT_FALSE(w.append(max).ok());
}

TEST(AuditWriter, ReopeningACleanDirectoryAppendsToTheNewestFile) {
  TempDir tmp;
  std::vector<Bytes> sent;
  for (int round = 0; round < 3; ++round) {
    Logged logged;
    AuditWriter w = open_writer(small_options(tmp.path()), &logged);
    EXPECT_EQ(w.stats().recovered_frames, sent.size());
    EXPECT_EQ(w.stats().recovered_cut_bytes, 0u);
    for (std::size_t i = 0; i < 5; ++i) {
      sent.push_back(record(sent.size(), 33));
      append_ok(w, sent.back());
    }
    ASSERT_TRUE(w.close().ok());
    EXPECT_EQ(logged.count("recovered"), 0u);
  }
  EXPECT_EQ(files_of(tmp.path()).size(), 1u);
  EXPECT_EQ(read_all(tmp.path()), sent);
}

// ---- recovery ----

// One file of frames, as a writer that crashed could have left it.
struct Written {
  std::string name;
  Bytes bytes;  // data only (the writer truncated it)
  std::vector<Bytes> records;
  std::vector<std::uint64_t> offsets;  // offsets[i]: frame i; offsets.back(): end
};

Written write_reference(const TempDir& tmp) {
  Written out;
  AuditWriter w = open_writer(small_options(tmp.path()));
  std::uint64_t at = 0;
  for (std::size_t i = 0; i < 12; ++i) {
    out.records.push_back(record(i, 1 + (i * 5) % 23));  // 1..23 bytes: every padding length
    out.offsets.push_back(at);
    at += frame_size(out.records.back().size());
    append_ok(w, out.records.back());
  }
  out.offsets.push_back(at);
  EXPECT_TRUE(w.close().ok());
  const std::vector<std::string> files = files_of(tmp.path());
  EXPECT_EQ(files.size(), 1u);
  out.name = std::filesystem::path(files.at(0)).filename();
  out.bytes = read_file(files[0]);
  EXPECT_EQ(out.bytes.size(), at);
  return out;
}

std::uint64_t nonzero_end(const Bytes& b, std::uint64_t from) {
  std::uint64_t end = from;
  for (std::uint64_t i = from; i < b.size(); ++i) {
    if (b[i] != 0) end = i + 1;
  }
  return end;
}

TEST(AuditRecovery, CutAtEveryByteOfTheLastFramesKeepsExactlyTheCompleteOnes) {
  TempDir ref_dir;
  const Written ref = write_reference(ref_dir);
  const std::size_t n = ref.records.size();
  const Bytes extra = record(1000, 17);
  for (std::uint64_t cut = ref.offsets[n - 3]; cut <= ref.bytes.size(); ++cut) {
    std::size_t complete = 0;
    while (complete < n && ref.offsets[complete + 1] <= cut) ++complete;
    const std::uint64_t end = ref.offsets[complete];

    TempDir tmp;
    const Bytes file(ref.bytes.begin(), ref.bytes.begin() + static_cast<std::ptrdiff_t>(cut));
    write_file(tmp.sub(ref.name), file);
    Logged logged;
    AuditWriter w = open_writer(small_options(tmp.path()), &logged);
    const AuditWriterStats st = w.stats();
    EXPECT_EQ(st.recovered_frames, complete) << "cut " << cut;
    EXPECT_EQ(st.current_offset, end) << "cut " << cut;
    EXPECT_EQ(st.recovered_cut_bytes, nonzero_end(file, end) - end) << "cut " << cut;
    EXPECT_EQ(logged.count("recovered"), st.recovered_cut_bytes > 0 ? 1u : 0u) << "cut " << cut;

    // The next records fill the place of the cut ones.
    const Bytes replacement = record(2000 + cut, complete < n ? ref.records[complete].size() : 5);
    append_ok(w, replacement);
    append_ok(w, extra);
    ASSERT_TRUE(w.close().ok());
    std::vector<Bytes> want(ref.records.begin(),
                            ref.records.begin() + static_cast<std::ptrdiff_t>(complete));
    want.push_back(replacement);
    want.push_back(extra);
    ASSERT_EQ(read_all(tmp.path()), want) << "cut " << cut;
    EXPECT_TRUE(verify_dir(tmp.path())->ok()) << "cut " << cut;
  }
}

TEST(AuditRecovery, StaleFramesBehindATornOneAreNeverResurrected) {
  // A torn frame (its bytes from `cut` on never reached the disk) with later,
  // complete frames behind it in the preallocated zero tail: batches can land
  // out of order. Recovery cuts at the torn frame and zeroes the stale ones, so
  // a record that ends exactly where a stale frame starts does not revive it.
  TempDir ref_dir;
  const Written ref = write_reference(ref_dir);
  const std::size_t n = ref.records.size();
  for (std::uint64_t cut = ref.offsets[n - 4]; cut < ref.offsets[n - 1]; ++cut) {
    std::size_t torn = 0;
    while (ref.offsets[torn + 1] <= cut) ++torn;
    const auto from = ref.bytes.begin() + static_cast<std::ptrdiff_t>(cut);
    const auto to = ref.bytes.begin() + static_cast<std::ptrdiff_t>(ref.offsets[torn + 1]);
    if (std::all_of(from, to, [](std::uint8_t x) { return x == 0; })) {
      continue;  // only padding lost: the frame is still complete
    }
    Bytes file = ref.bytes;
    std::fill(file.begin() + static_cast<std::ptrdiff_t>(cut),
              file.begin() + static_cast<std::ptrdiff_t>(ref.offsets[torn + 1]), 0);
    file.resize(std::size_t{64} * 1024, 0);
    TempDir tmp;
    write_file(tmp.sub(ref.name), file);
    Logged logged;
    AuditWriter w = open_writer(small_options(tmp.path()), &logged);
    EXPECT_EQ(w.stats().recovered_frames, torn) << "cut " << cut;
    EXPECT_EQ(w.stats().recovered_cut_bytes,
              nonzero_end(file, ref.offsets[torn]) - ref.offsets[torn])
        << "cut " << cut;
    EXPECT_GT(w.stats().recovered_cut_bytes, 0u);
    EXPECT_EQ(logged.count("recovered"), 1u);
    EXPECT_EQ(logged.count("cut " + std::to_string(w.stats().recovered_cut_bytes) + " bytes"), 1u);

    const Bytes same_size = record(3000 + cut, ref.records[torn].size());
    append_ok(w, same_size);
    ASSERT_TRUE(w.close().ok());
    std::vector<Bytes> want(ref.records.begin(),
                            ref.records.begin() + static_cast<std::ptrdiff_t>(torn));
    want.push_back(same_size);
    ASSERT_EQ(read_all(tmp.path()), want) << "cut " << cut;
  }
}

// ---- verify ----

struct FlipSetup {
  std::string file;                    // the middle one of three files
  std::vector<std::uint64_t> offsets;  // frames of that file
  std::vector<std::size_t> lengths;
  std::uint64_t total_frames = 0;
};

FlipSetup three_files(const TempDir& tmp) {
  AuditWriterOptions o = small_options(tmp.path());
  o.rotate_bytes = 4096;
  AuditWriter w = open_writer(o);
  FlipSetup s;
  for (std::size_t i = 0; i < 200; ++i) append_ok(w, record(i, 10 + i % 90));
  EXPECT_TRUE(w.close().ok());
  s.total_frames = 200;
  const std::vector<std::string> files = files_of(tmp.path());
  EXPECT_GE(files.size(), 3u);
  s.file = files.at(1);
  Result<LogReader> r = LogReader::open(tmp.path());
  while (true) {
    Result<std::optional<FrameRef>> f = r->next();
    if (!f.ok() || !f.value()) break;
    if (f.value()->file != s.file) continue;
    s.offsets.push_back(f.value()->offset);
    s.lengths.push_back(f.value()->payload.size());
  }
  return s;
}

void flip(const std::string& file, std::uint64_t byte, int bit) {
  const int fd = ::open(file.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  std::uint8_t b = 0;
  ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(byte)), 1);
  b ^= static_cast<std::uint8_t>(1u << bit);
  ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(byte)), 1);
  ::close(fd);
}

TEST(AuditVerify, FindsAFlippedBitAnywhereInAFrameAndStillFindsTheNextBadFrame) {
  TempDir tmp;
  const FlipSetup s = three_files(tmp);
  ASSERT_GE(s.offsets.size(), 8u);
  const std::uint64_t victim = s.offsets[2];
  const std::size_t victim_size = frame_size(s.lengths[2]);
  const std::uint64_t later = s.offsets[6] + 16 + 3;  // a payload byte of a later frame
  flip(s.file, later, 0);
  for (std::uint64_t byte = victim; byte < victim + victim_size; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      flip(s.file, byte, bit);
      Result<VerifyReport> r = verify_dir(tmp.path());
      flip(s.file, byte, bit);
      ASSERT_TRUE(r.ok());
      const std::string where =
          "byte " + std::to_string(byte - victim) + " bit " + std::to_string(bit);
      ASSERT_EQ(r->bad.size(), 2u) << where;
      EXPECT_EQ(r->bad[0].file, s.file) << where;
      EXPECT_EQ(r->bad[0].offset, victim) << where;
      EXPECT_NE(r->bad[0].message.find(s.file + " offset " + std::to_string(victim)),
                std::string::npos);
      EXPECT_EQ(r->bad[1].offset, s.offsets[6]) << where;
      EXPECT_EQ(r->bad[1].problem, FrameProblem::kBadChecksum) << where;
      EXPECT_EQ(r->good_frames, s.total_frames - 2) << where;
      EXPECT_GE(r->files, 3u);
      const std::uint64_t at = byte - victim;
      const FrameProblem p = r->bad[0].problem;
      if (at < 4) {
        EXPECT_TRUE(p == FrameProblem::kBadLength || p == FrameProblem::kTruncated ||
                    p == FrameProblem::kBadChecksum)
            << where;
      } else if (at < 8 || at >= 16 + s.lengths[2]) {
        EXPECT_EQ(p, FrameProblem::kBadReserved) << where;
      } else {
        EXPECT_EQ(p, FrameProblem::kBadChecksum) << where;
      }
    }
  }
}

TEST(AuditVerify, ZeroTailIsCleanButAHoleBeforeMoreFramesIsReported) {
  TempDir tmp;
  AuditWriter w = open_writer(small_options(tmp.path()));
  for (std::size_t i = 0; i < 20; ++i) append_ok(w, record(i, 40));
  ASSERT_TRUE(w.flush(true).ok());
  const std::string file = w.stats().current_file;
  Result<VerifyReport> clean = verify_dir(tmp.path());  // preallocated: 64 KiB, mostly zeros
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->ok());
  EXPECT_EQ(clean->good_frames, 20u);
  EXPECT_EQ(clean->good_bytes, 20 * frame_size(40));

  const std::uint64_t hole = 5 * frame_size(40);
  const int fd = ::open(file.c_str(), O_RDWR);
  const Bytes zeros(frame_size(40), 0);
  ASSERT_EQ(::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(hole)),
            static_cast<ssize_t>(zeros.size()));
  ::close(fd);
  Result<VerifyReport> holed = verify_file(file);
  ASSERT_TRUE(holed.ok());
  ASSERT_EQ(holed->bad.size(), 1u);
  EXPECT_EQ(holed->bad[0].problem, FrameProblem::kDataAfterEnd);
  EXPECT_EQ(holed->bad[0].offset, hole);
  EXPECT_EQ(holed->good_frames, 19u);
}

TEST(AuditVerify, ValidatorRejectionsAreBadFramesWithTheValidatorsMessage) {
  TempDir tmp;
  AuditWriter w = open_writer(small_options(tmp.path()));
  for (std::size_t i = 0; i < 10; ++i) append_ok(w, Bytes{static_cast<std::uint8_t>(i), 1, 2});
  ASSERT_TRUE(w.close().ok());
  Result<VerifyReport> r = verify_dir(tmp.path(), [](std::span<const std::uint8_t> p) {
    return p[0] % 4 == 3 ? std::string("not a Record: bad vtable") : std::string();
  });
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->good_frames, 8u);
  ASSERT_EQ(r->bad.size(), 2u);
  EXPECT_EQ(r->bad[0].problem, FrameProblem::kPayloadRejected);
  EXPECT_EQ(r->bad[0].offset, 3 * frame_size(3));
  EXPECT_EQ(r->bad[1].offset, 7 * frame_size(3));
  EXPECT_NE(r->bad[0].message.find("not a Record: bad vtable"), std::string::npos);
}

TEST(AuditVerify, MissingDirectoryIsAOneLineError) {
  Result<VerifyReport> r = verify_dir("/tmp/sluice-audit-test-does-not-exist");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
}

// ---- rotation and retention ----

TEST(AuditRotation, AFrameThatWouldPassRotateBytesStartsANewFile) {
  TempDir tmp;
  AuditWriterOptions o = small_options(tmp.path());
  o.rotate_bytes = 4096;
  AuditWriter w = open_writer(o);
  std::vector<Bytes> sent;
  for (std::size_t i = 0; i < 50; ++i) {
    sent.push_back(record(i, 200));  // 216-byte frames: 18 fit in 4096
    append_ok(w, sent.back());
  }
  ASSERT_TRUE(w.close().ok());
  const std::vector<std::string> files = files_of(tmp.path());
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(std::filesystem::file_size(files[0]), 18 * 216u);
  EXPECT_EQ(std::filesystem::file_size(files[1]), 18 * 216u);
  EXPECT_EQ(std::filesystem::file_size(files[2]), 14 * 216u);
  EXPECT_EQ(w.stats().files_created, 3u);
  EXPECT_EQ(w.stats().bytes_on_disk, 50 * 216u);
  EXPECT_EQ(read_all(tmp.path()), sent);
  for (const std::string& f : files) {
    EXPECT_EQ(std::filesystem::path(f).filename().string().rfind("audit-", 0), 0u) << f;
  }
}

TEST(AuditRotation, AgeRotationStartsANewFileOnPoll) {
  TempDir tmp;
  AuditWriterOptions o = small_options(tmp.path());
  o.rotate_seconds = 1;
  AuditWriter w = open_writer(o);
  append_ok(w, record(1, 50));
  ASSERT_TRUE(w.poll().ok());
  const std::string first = w.stats().current_file;
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_TRUE(w.poll().ok());
  EXPECT_NE(w.stats().current_file, first);
  EXPECT_EQ(std::filesystem::file_size(first), frame_size(50));  // truncated to its data
  append_ok(w, record(2, 60));
  ASSERT_TRUE(w.close().ok());
  const std::vector<std::string> files = files_of(tmp.path());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0], first);
  EXPECT_EQ(read_all(tmp.path()), (std::vector<Bytes>{record(1, 50), record(2, 60)}));
  EXPECT_EQ(std::filesystem::file_size(files[1]), frame_size(60));
}

TEST(AuditRotation, ARecoveredFileOlderThanRotateSecondsIsRotatedOnTheFirstPoll) {
  TempDir tmp;
  const std::string old = tmp.sub("audit-20200101T000000-000000.sal");
  Bytes frame(frame_size(30));
  encode_frame(record(1, 30), frame);
  write_file(old, frame);
  AuditWriterOptions o = small_options(tmp.path());
  o.rotate_seconds = 3600;
  AuditWriter w = open_writer(o);
  EXPECT_EQ(w.stats().current_file, old);
  ASSERT_TRUE(w.poll().ok());
  EXPECT_NE(w.stats().current_file, old);
  EXPECT_EQ(std::filesystem::file_size(old), frame.size());
  ASSERT_TRUE(w.close().ok());
}

TEST(AuditRotation, NewNamesNeverSortBeforeTheNewestEvenWhenTheClockIsBehind) {
  TempDir tmp;
  // The newest file is named in the future, as after the clock stepped back.
  write_file(tmp.sub("audit-29991231T235959-000005.sal"), Bytes());
  AuditWriterOptions o = small_options(tmp.path());
  o.rotate_bytes = 4096;
  AuditWriter w = open_writer(o);
  for (std::size_t i = 0; i < 40; ++i) append_ok(w, record(i, 200));  // two rotations
  ASSERT_TRUE(w.close().ok());
  std::vector<std::string> names;
  for (const std::string& f : files_of(tmp.path())) {
    names.push_back(std::filesystem::path(f).filename());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"audit-29991231T235959-000005.sal",
                                             "audit-29991231T235959-000006.sal",
                                             "audit-29991231T235959-000007.sal"}));
}

TEST(AuditRetention, KeepsOnlyTheNewestRetainFiles) {
  TempDir tmp;
  AuditWriterOptions o = small_options(tmp.path());
  o.rotate_bytes = 4096;
  o.retain_files = 3;
  AuditWriter w = open_writer(o);
  std::vector<Bytes> sent;
  for (std::size_t i = 0; i < std::size_t{18} * 7;
       ++i) {  // 7 full files, then one record into an 8th
    sent.push_back(record(i, 200));
    append_ok(w, sent.back());
  }
  sent.push_back(record(999, 200));
  append_ok(w, sent.back());
  ASSERT_TRUE(w.close().ok());
  EXPECT_EQ(files_of(tmp.path()).size(), 3u);
  EXPECT_EQ(w.stats().files_created, 8u);
  EXPECT_EQ(w.stats().files_deleted, 5u);
  EXPECT_EQ(w.stats().bytes_on_disk, (2 * 18 + 1) * 216u);
  EXPECT_EQ(read_all(tmp.path()), std::vector<Bytes>(sent.end() - 37, sent.end()));
}

TEST(AuditRetention, DeletesFilesWhoseLastWriteIsOlderThanRetainSeconds) {
  TempDir tmp;
  AuditWriterOptions o = small_options(tmp.path());
  o.rotate_bytes = 4096;
  {
    AuditWriter w = open_writer(o);
    for (std::size_t i = 0; i < std::size_t{18} * 3; ++i) append_ok(w, record(i, 200));
    ASSERT_TRUE(w.close().ok());
  }
  std::vector<std::string> files = files_of(tmp.path());
  ASSERT_EQ(files.size(), 3u);
  const timespec two_hours_ago[2] = {{::time(nullptr) - 7200, 0}, {::time(nullptr) - 7200, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, files[0].c_str(), two_hours_ago, 0), 0);
  ASSERT_EQ(::utimensat(AT_FDCWD, files[1].c_str(), two_hours_ago, 0), 0);

  o.retain_seconds = 3600;
  AuditWriter w = open_writer(o);
  append_ok(w, record(100, 200));  // the reopened third file is full: rotates
  ASSERT_TRUE(w.close().ok());
  const std::vector<std::string> left = files_of(tmp.path());
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0], files[2]);
  EXPECT_EQ(w.stats().files_deleted, 2u);
}

// ---- tail ----

TEST(AuditTail, DeliversEachFrameAppendedAfterItStartedOnceAcrossRotations) {
  TempDir tmp;
  AuditWriterOptions o = small_options(tmp.path());
  o.rotate_bytes = 4096;
  AuditWriter w = open_writer(o);
  for (std::size_t i = 0; i < 5; ++i) append_ok(w, record(i, 200));
  ASSERT_TRUE(w.flush(true).ok());

  Result<LogTail> tail = LogTail::open(tmp.path(), LogTail::Start::kNow);
  ASSERT_TRUE(tail.ok()) << tail.status().message();
  std::vector<Bytes> got;
  auto collect = [&](const FrameRef& f) { got.emplace_back(f.payload.begin(), f.payload.end()); };
  ASSERT_EQ(tail->poll(collect).value(), 0u);

  std::vector<Bytes> sent;
  for (std::size_t i = 5; i < 80; ++i) {  // 80 frames: crosses four rotations
    sent.push_back(record(i, 200));
    append_ok(w, sent.back());
    if (i % 7 == 0) {
      ASSERT_TRUE(w.flush(false).ok());
      ASSERT_TRUE(tail->poll(collect).ok());
    }
  }
  ASSERT_TRUE(w.flush(true).ok());
  ASSERT_TRUE(tail->poll(collect).ok());
  EXPECT_EQ(got, sent);
  EXPECT_EQ(tail->poll(collect).value(), 0u);
  EXPECT_TRUE(tail->problems().empty());
  EXPECT_EQ(tail->position().file, w.stats().current_file);
  EXPECT_EQ(tail->position().offset, w.stats().current_offset);

  // Resumed from a saved position, it goes on with the next frame only.
  Result<LogTail> resumed = LogTail::resume(tmp.path(), tail->position());
  ASSERT_TRUE(resumed.ok());
  append_ok(w, record(500, 30));
  ASSERT_TRUE(w.close().ok());
  std::vector<Bytes> more;
  ASSERT_EQ(
      resumed
          ->poll([&](const FrameRef& f) { more.emplace_back(f.payload.begin(), f.payload.end()); })
          .value(),
      1u);
  EXPECT_EQ(more, std::vector<Bytes>{record(500, 30)});
}

TEST(AuditTail, FromTheOldestDeliversEverythingThenWaitsForMore) {
  TempDir tmp;
  AuditWriterOptions o = small_options(tmp.path());
  o.rotate_bytes = 4096;
  AuditWriter w = open_writer(o);
  std::vector<Bytes> sent;
  for (std::size_t i = 0; i < 40; ++i) {
    sent.push_back(record(i, 100));
    append_ok(w, sent.back());
  }
  ASSERT_TRUE(w.flush(true).ok());
  Result<LogTail> tail = LogTail::open(tmp.path(), LogTail::Start::kOldest);
  ASSERT_TRUE(tail.ok());
  std::vector<Bytes> got;
  auto collect = [&](const FrameRef& f) { got.emplace_back(f.payload.begin(), f.payload.end()); };
  ASSERT_EQ(tail->poll(collect, 10).value(), 10u);  // at most max_frames per poll
  ASSERT_EQ(tail->poll(collect).value(), 30u);
  ASSERT_EQ(tail->poll(collect).value(), 0u);
  sent.push_back(record(40, 100));
  append_ok(w, sent.back());
  ASSERT_TRUE(w.flush(true).ok());
  ASSERT_EQ(tail->poll(collect).value(), 1u);
  EXPECT_EQ(got, sent);
  ASSERT_TRUE(w.close().ok());
}

TEST(AuditTail, AFrameBeingWrittenIsDeliveredOnlyOnceItIsComplete) {
  TempDir tmp;
  const std::string path = tmp.sub("audit-20250101T000000-000000.sal");
  Bytes frame(frame_size(100));
  encode_frame(record(7, 100), frame);
  Bytes file(8192, 0);
  write_file(path, file);
  Result<LogTail> tail = LogTail::open(tmp.path(), LogTail::Start::kNow);
  ASSERT_TRUE(tail.ok());
  std::size_t delivered = 0;
  auto count = [&](const FrameRef&) { ++delivered; };
  const int fd = ::open(path.c_str(), O_RDWR);
  // Header only, half a header, part of the payload, all but the last payload byte.
  for (std::size_t written :
       {std::size_t{8}, std::size_t{16}, std::size_t{64}, std::size_t{16 + 99}}) {
    ASSERT_EQ(::pwrite(fd, frame.data(), written, 0), static_cast<ssize_t>(written));
    ASSERT_EQ(tail->poll(count).value(), 0u) << written;
  }
  ASSERT_EQ(::pwrite(fd, frame.data(), frame.size(), 0), static_cast<ssize_t>(frame.size()));
  ::close(fd);
  EXPECT_EQ(tail->poll(count).value(), 1u);
  EXPECT_EQ(tail->poll(count).value(), 0u);
  EXPECT_EQ(tail->position().offset, frame.size());
}

}  // namespace
}  // namespace sluice::audit
