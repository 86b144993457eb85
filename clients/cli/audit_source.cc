#include "audit_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <optional>
#include <utility>
#include <vector>

#include "commands.h"
#include "frame.h"
#include "output.h"
#include "sluice/inspect.h"

namespace sluice::cli {
namespace {

namespace fb = audit::fb;

constexpr long kSettlePollNs = 100'000'000;  // 100 ms
constexpr int kSettleAttempts = 3;           // times kSettlePollNs for a write in flight to land

// The frame at `offset` of `file` as it is now.
audit::FrameCheck frame_now(const std::string& file, std::uint64_t offset) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return audit::FrameCheck::kTruncated;
  std::vector<std::uint8_t> bytes(audit::kMaxFrameBytes);
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t r =
        ::pread(fd, bytes.data() + got, bytes.size() - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  ::close(fd);
  return audit::decode_frame(std::span<const std::uint8_t>(bytes.data(), got)).check;
}

// A bad frame in the newest file may be one sluiced is writing right now; it
// is damage only if it is still bad once a write in flight would have landed.
bool stays_bad(const audit::BadFrame& b) {
  for (int attempt = 0; attempt < kSettleAttempts; ++attempt) {
    const timespec pause{0, kSettlePollNs};
    ::nanosleep(&pause, nullptr);
    const audit::FrameCheck now = frame_now(b.file, b.offset);
    if (now == audit::FrameCheck::kOk || now == audit::FrameCheck::kEnd) return false;
  }
  return true;
}

}  // namespace

AuditDir resolve_audit_dir(const std::string& segment, const std::string& dir_flag) {
  if (!dir_flag.empty()) return {dir_flag, "from --dir"};
  Result<SegmentStatus> s = read_status(segment);
  if (s.ok() && !s->audit_dir.empty()) {
    return {s->audit_dir, "published by sluiced on segment '" + segment + "'"};
  }
  return {kDefaultAuditDir,
          s.ok() ? "the default: sluiced on segment '" + segment + "' publishes no audit dir"
                 : "the default: no segment '" + segment + "' to ask"};
}

std::string check_audit_dir(const AuditDir& dir) {
  struct stat st {};
  if (::stat(dir.path.c_str(), &st) != 0) {
    return "audit directory '" + dir.path + "' (" + dir.origin + "): " + std::strerror(errno) +
           "; pass --dir DIR, or start sluiced with audit.dir set in its policy";
  }
  if (!S_ISDIR(st.st_mode)) {
    return "audit path '" + dir.path + "' (" + dir.origin +
           ") is not a directory; pass the directory holding the *.sal files with --dir DIR";
  }
  return {};
}

std::string check_audit_record(std::span<const std::uint8_t> payload) {
  if (payload.size() < 8 || !fb::RecordBufferHasIdentifier(payload.data())) {
    return "not an audit Record (no \"" + std::string(fb::RecordIdentifier()) +
           "\" file identifier)";
  }
  flatbuffers::Verifier verifier(payload.data(), payload.size());
  if (!fb::VerifyRecordBuffer(verifier)) {
    return "the FlatBuffers verifier rejects the Record (offsets or lengths out of bounds)";
  }
  return {};
}

std::uint64_t realtime_now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

AuditRecordSink::AuditRecordSink(std::function<void(const fb::Record&)> deliver,
                                 std::string unshown)
    : deliver_(std::move(deliver)), unshown_(std::move(unshown)) {}

void AuditRecordSink::deliver(const audit::FrameRef& frame) {
  if (std::string why = check_audit_record(frame.payload); !why.empty()) {
    if (rejected_++ == 0) {
      first_rejected_ =
          std::string(frame.file) + " offset " + std::to_string(frame.offset) + ": " + why;
    }
    return;
  }
  deliver_(*fb::GetRecord(frame.payload.data()));
}

void AuditRecordSink::damaged(const audit::BadFrame& bad) {
  if (bad_frames_++ == 0) first_bad_ = bad.message;
}

int AuditRecordSink::report(const std::string& dir) const {
  if (rejected_ + bad_frames_ == 0) return kExitOk;
  std::string line = "audit records " + unshown_ + ":";
  if (rejected_ > 0) {
    line += " " + counted(rejected_, "payload") +
            " the FlatBuffers verifier rejects (first: " + first_rejected_ + ")";
  }
  if (bad_frames_ > 0) {
    line += std::string(rejected_ > 0 ? ";" : "") + " " + counted(bad_frames_, "damaged frame") +
            ", the rest of its file unread (first: " + first_bad_ + ")";
  }
  return fail(kExitRejected, line + "; run sluice audit verify --dir " + dir + " for every one");
}

int read_audit_dir(const std::string& dir, AuditRecordSink& sink) {
  // Newest as of before the read, so a file created meanwhile counts as newest too.
  Result<std::vector<std::string>> files = audit::list_segment_files(dir);
  const std::string newest = files.ok() && !files->empty() ? files->back() : std::string();
  Result<audit::LogReader> reader = audit::LogReader::open(dir);
  if (!reader.ok()) return fail(kExitUsage, reader.status().message());
  for (;;) {
    Result<std::optional<audit::FrameRef>> f = reader->next();
    if (!f.ok()) {
      std::fflush(stdout);
      return fail(kExitRejected, f.status().message());
    }
    if (!f.value()) break;
    sink.deliver(*f.value());
  }
  std::fflush(stdout);
  for (const audit::BadFrame& b : reader->problems()) {
    const bool in_newest =
        !newest.empty() && b.file >= newest && b.problem != audit::FrameProblem::kFileUnreadable;
    if (!in_newest || stays_bad(b)) sink.damaged(b);
  }
  return kExitOk;
}

}  // namespace sluice::cli
