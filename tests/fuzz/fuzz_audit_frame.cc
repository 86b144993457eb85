// libFuzzer target: the audit frame and log readers (libquota/audit/frame.cc,
// log_reader.cc) and the writer's recovery (sidecar/audit_writer.cc) on an
// audit segment file holding arbitrary bytes.
//
// The input is decoded in memory frame by frame, then written as the only
// *.sal file of a private directory and read by everything that reads one:
// verify, LogReader, LogTail, find_data_end, the sidecar's next sequence
// number, and AuditWriter::open, which recovers it. After recovery the file
// must hold exactly the frames the readers found, and verify clean.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <span>
#include <string>

#include "audit_generated.h"
#include "audit_pipeline.h"
#include "audit_writer.h"
#include "frame.h"
#include "log_reader.h"

namespace {

namespace audit = sluice::audit;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_audit_frame: %s\n", what.c_str());
  std::abort();
}

// Removed after each input.
const std::string& work_dir() {
  static const std::string dir = "/dev/shm/sluice-fuzz-audit-" + std::to_string(::getpid());
  return dir;
}

void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0640);
  if (fd < 0) fail("cannot create " + path);
  if (size > 0 && ::write(fd, data, size) != static_cast<ssize_t>(size)) fail("short write");
  ::close(fd);
}

std::string validate(std::span<const std::uint8_t> payload) {
  flatbuffers::Verifier v(payload.data(), payload.size());
  return audit::fb::VerifyRecordBuffer(v) ? std::string() : std::string("not a Record");
}

// Frames from offset 0 until the first that is not complete, as every reader counts them.
std::uint64_t decode_in_memory(std::span<const std::uint8_t> bytes) {
  std::uint64_t frames = 0;
  std::size_t at = 0;
  for (;;) {
    const audit::FrameView f = audit::decode_frame(bytes.subspan(at));
    if (f.check != audit::FrameCheck::kOk) return frames;
    if (f.size == 0 || f.size > bytes.size() - at) fail("a complete frame with a bad size");
    (void)audit::frame_check_name(f.check);
    ++frames;
    at += f.size;
  }
}

std::uint64_t read_all(const std::string& dir) {
  sluice::Result<audit::LogReader> reader = audit::LogReader::open(dir);
  if (!reader.ok()) fail(reader.status().message());
  std::uint64_t frames = 0;
  for (;;) {
    sluice::Result<std::optional<audit::FrameRef>> f = reader->next();
    if (!f.ok()) fail(f.status().message());
    if (!f.value()) return frames;
    (void)validate(f.value()->payload);
    ++frames;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& dir = work_dir();
  const std::string file = dir + "/audit-20260101T000000-000000.sal";
  std::filesystem::create_directories(dir);
  write_file(file, data, size);

  const std::uint64_t frames = decode_in_memory({data, size});
  if (read_all(dir) != frames) fail("LogReader and decode_frame disagree");

  sluice::Result<audit::VerifyReport> report = audit::verify_file(file, validate);
  if (!report.ok()) fail(report.status().message());
  if (report->good_frames + report->bad.size() < frames) fail("verify lost frames");

  sluice::Result<audit::LogTail> tail = audit::LogTail::open(dir, audit::LogTail::Start::kOldest);
  if (!tail.ok()) fail(tail.status().message());
  std::uint64_t tailed = 0;
  sluice::Result<std::size_t> polled = tail->poll([&](const audit::FrameRef&) { ++tailed; });
  if (!polled.ok() || tailed != frames) fail("LogTail and decode_frame disagree");

  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  sluice::Result<audit::DataEnd> end = audit::find_data_end(fd, file);
  ::close(fd);
  if (!end.ok() || end->frames != frames) fail("find_data_end and decode_frame disagree");

  (void)sluice::next_audit_sequence(dir);

  // Recovery: the writer keeps the complete frames and zeroes the rest.
  sluice::AuditWriterOptions o;
  o.dir = dir;
  o.rotate_bytes = 64 << 10;
  o.retain_files = 0;
  o.use_io_uring = false;
  {
    sluice::Result<sluice::AuditWriter> w = sluice::AuditWriter::open(o, [](const std::string&) {});
    if (!w.ok()) fail(w.status().message());
    if (w->stats().recovered_frames != frames) fail("recovery kept another number of frames");
    if (sluice::Status s = w->close(); !s.ok()) fail(s.message());
  }
  sluice::Result<audit::VerifyReport> after = audit::verify_file(file);
  if (!after.ok() || !after->ok() || after->good_frames != frames) {
    fail("the recovered file does not verify clean");
  }
  std::filesystem::remove_all(dir);
  return 0;
}
