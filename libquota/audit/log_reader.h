// Reading a directory of audit segment files (FORMAT.md): list them, iterate
// their verified frames in order, follow a directory a writer is appending
// to, verify every byte.
//
//   Result<LogReader> r = LogReader::open("var/audit");
//   while (true) {
//     Result<std::optional<FrameRef>> f = r->next();
//     if (!f.ok()) return f.status();
//     if (!f.value()) break;
//     decode(f.value()->payload);
//   }
//
//   Result<LogTail> tail = LogTail::open("var/audit", LogTail::Start::kNow);
//   tail->poll([](const FrameRef& f) { print(f.payload); });  // call again later
//
// Files are read with pread, never mapped: the writer truncates a file when
// it moves on to the next one, and a mapping would fault. A FrameRef's
// payload points into the reader's buffer and stays valid until the next
// call on the object that produced it. Errors are one-line Status values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "frame.h"
#include "sluice/status.h"

namespace sluice::audit {

inline constexpr std::string_view kSegmentFileSuffix = ".sal";

// The *.sal files of `dir` as full paths, sorted by name (= by age, FORMAT.md).
Result<std::vector<std::string>> list_segment_files(const std::string& dir);

// One verified frame: where it is and its payload.
struct FrameRef {
  std::string_view file;  // path of the segment file
  std::uint64_t offset = 0;
  std::span<const std::uint8_t> payload;
};

enum class FrameProblem : std::uint8_t {
  kTruncated,        // the frame runs past the end of the file
  kBadLength,        // length 0 or above kMaxPayloadBytes
  kBadReserved,      // reserved word or padding not zero
  kBadChecksum,      // checksum mismatch
  kDataAfterEnd,     // a zero header, but more data follows (a hole)
  kPayloadRejected,  // the frame is intact, the payload validator refused it
  kFileUnreadable,   // open/read failed (e.g. deleted by retention before it was read)
};

// A bad frame: where and what. `message` is one line naming file and offset.
struct BadFrame {
  std::string file;
  std::uint64_t offset = 0;
  FrameProblem problem = FrameProblem::kBadChecksum;
  std::string message;
};

// Where the data of one open file ends by the recovery rule: at the first
// frame that is not complete. Used by the writer to recover the newest file.
struct DataEnd {
  std::uint64_t offset = 0;            // end of the last complete frame
  std::uint64_t frames = 0;            // complete frames before `offset`
  FrameCheck stop = FrameCheck::kEnd;  // what is at `offset`
  std::uint64_t file_size = 0;
  std::uint64_t nonzero_end = 0;  // one past the last non-zero byte at or after `offset`,
                                  // `offset` when everything after it is zero
};
Result<DataEnd> find_data_end(int fd, const std::string& path);

namespace internal {
class FrameFile;
}

// Every complete frame of the files present at open, oldest file first.
class LogReader {
 public:
  static Result<LogReader> open(const std::string& dir);
  LogReader(LogReader&&) noexcept;
  LogReader& operator=(LogReader&&) noexcept;
  ~LogReader();

  // The next frame, or nullopt when all files are read. A bad frame ends its
  // file's data, as recovery would: it is recorded in problems() and reading
  // goes on with the next file (`verify` looks past it). A read error is
  // returned once (and recorded there too); the call after it goes on with
  // the next file.
  Result<std::optional<FrameRef>> next();
  const std::vector<BadFrame>& problems() const { return problems_; }

 private:
  LogReader() = default;
  std::vector<std::string> files_;
  std::size_t index_ = 0;
  std::uint64_t offset_ = 0;
  std::unique_ptr<internal::FrameFile> file_;
  std::vector<BadFrame> problems_;
};

// A place in the log: a file and the offset of the next frame to read there.
struct LogPosition {
  std::string file;  // full path; empty: before the oldest file
  std::uint64_t offset = 0;
};

// Follows a directory that a writer appends to. Each poll() delivers, in
// order and exactly once, every frame completed since the previous poll,
// moving on to newer files as they appear. A zero header (or a frame still
// being written, which does not verify yet) in the newest file means "look
// again later". A file is finished once a newer one exists (the writer only
// creates a file after completing the previous one); a bad frame in a
// finished file is recorded in problems() and following goes on with the
// next file.
class LogTail {
 public:
  enum class Start : std::uint8_t {
    kOldest,  // deliver everything in the directory, then what is appended
    kNow,     // deliver only frames completed after open
  };
  static Result<LogTail> open(const std::string& dir, Start start);
  // Continues from a position() saved earlier.
  static Result<LogTail> resume(const std::string& dir, LogPosition at);
  LogTail(LogTail&&) noexcept;
  LogTail& operator=(LogTail&&) noexcept;
  ~LogTail();

  // Calls `deliver` for each new frame (at most max_frames) and returns how
  // many it delivered. The FrameRef is valid during the call only.
  Result<std::size_t> poll(const std::function<void(const FrameRef&)>& deliver,
                           std::size_t max_frames = std::numeric_limits<std::size_t>::max());
  LogPosition position() const { return at_; }
  const std::vector<BadFrame>& problems() const { return problems_; }

 private:
  LogTail() = default;
  Status move_to(const std::string& file, std::uint64_t offset);

  std::string dir_;
  LogPosition at_;
  std::unique_ptr<internal::FrameFile> file_;
  std::vector<BadFrame> problems_;
};

// Returns an empty string when the payload is acceptable, else what is wrong
// with it (one line).
using PayloadValidator = std::function<std::string(std::span<const std::uint8_t>)>;

struct VerifyReport {
  std::size_t files = 0;
  std::uint64_t good_frames = 0;  // complete and accepted by the validator
  std::uint64_t good_bytes = 0;   // their frame bytes
  std::vector<BadFrame> bad;      // every problem, in file and offset order
  bool ok() const { return bad.empty(); }
};

// Scans every byte of every *.sal file of `dir` (or of one file). After a bad
// frame, resynchronizes on the next 8-byte offset where a frame verifies, so
// every bad frame is reported. The zero tail after a file's data is not an
// error. A file being written to may show a bad frame at its end.
Result<VerifyReport> verify_dir(const std::string& dir, const PayloadValidator& validate = {});
Result<VerifyReport> verify_file(const std::string& path, const PayloadValidator& validate = {});

}  // namespace sluice::audit
