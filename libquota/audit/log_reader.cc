#include "log_reader.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace sluice::audit {

namespace internal {

// One segment file read through a window of cached bytes (pread). Spans it
// returns stay valid until the next call that reads.
class FrameFile {
 public:
  FrameFile(int fd, std::string path, bool owns_fd, std::size_t chunk)
      : fd_(fd), owns_fd_(owns_fd), path_(std::move(path)), chunk_(chunk) {}
  FrameFile(const FrameFile&) = delete;
  FrameFile& operator=(const FrameFile&) = delete;
  ~FrameFile() {
    if (owns_fd_ && fd_ >= 0) ::close(fd_);
  }

  static Result<std::unique_ptr<FrameFile>> open(const std::string& path, std::size_t chunk) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return Status(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                    "cannot open audit file '" + path + "': " + std::strerror(errno) +
                        "; check that it exists and is readable");
    }
    return std::make_unique<FrameFile>(fd, path, true, chunk);
  }

  const std::string& path() const { return path_; }

  // Drops the cached bytes: the file may have changed since they were read.
  void forget() { len_ = 0; }

  // The cached bytes from `offset` on: at least `n` of them unless the file ends sooner.
  // A refill reads a chunk, or what the file holds when that is less, so that
  // a small file does not cost a chunk-sized buffer.
  Result<std::span<const std::uint8_t>> bytes_at(std::uint64_t offset, std::size_t n) {
    if (offset < start_ || offset + n > start_ + len_) {
      const std::size_t want =
          std::max<std::size_t>(n, std::min<std::uint64_t>(chunk_, held_from(offset)));
      if (capacity_ < want) {  // not zero-filled: only the bytes read are used
        buf_.reset(new std::uint8_t[want]);
        capacity_ = want;
      }
      std::size_t got = 0;
      while (got < want) {
        const ssize_t r =
            ::pread(fd_, buf_.get() + got, want - got, static_cast<off_t>(offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
          len_ = 0;
          return Status(ErrorCode::kIo, "reading audit file '" + path_ + "' at offset " +
                                            std::to_string(offset + got) + " failed: " +
                                            std::strerror(errno) + "; check the disk (dmesg)");
        }
        if (r == 0) break;
        got += static_cast<std::size_t>(r);
      }
      start_ = offset;
      len_ = got;
    }
    const std::size_t skip = static_cast<std::size_t>(offset - start_);
    return std::span<const std::uint8_t>(buf_.get() + skip, len_ - skip);
  }

  // Bytes the file holds from `offset` on as fstat sees them now (it may
  // grow); a chunk when fstat cannot say.
  std::uint64_t held_from(std::uint64_t offset) const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return chunk_;
    const auto size = static_cast<std::uint64_t>(st.st_size);
    return size > offset ? size - offset : 0;
  }

  Result<FrameView> frame_at(std::uint64_t offset) {
    Result<std::span<const std::uint8_t>> b = bytes_at(offset, kFrameHeaderBytes);
    if (!b.ok()) return b.status();
    FrameView v = decode_frame(b.value());
    if (v.check == FrameCheck::kTruncated && v.size > b.value().size()) {
      b = bytes_at(offset, v.size);
      if (!b.ok()) return b.status();
      v = decode_frame(b.value());
    }
    return v;
  }

  // Offset of the first non-zero byte at or after `offset`; nullopt if there is none.
  Result<std::optional<std::uint64_t>> next_nonzero(std::uint64_t offset) {
    while (true) {
      Result<std::span<const std::uint8_t>> b = bytes_at(offset, 1);
      if (!b.ok()) return b.status();
      const std::span<const std::uint8_t> s = b.value();
      if (s.empty()) return std::optional<std::uint64_t>();
      if (!all_zero(s)) {  // a preallocated tail is skipped at memcmp speed
        auto it = std::find_if(s.begin(), s.end(), [](std::uint8_t x) { return x != 0; });
        return std::optional<std::uint64_t>(offset + (it - s.begin()));
      }
      offset += s.size();
    }
  }

  static bool all_zero(std::span<const std::uint8_t> s) {
    static const std::uint8_t kZeros[4096] = {};
    for (std::size_t at = 0; at < s.size(); at += sizeof kZeros) {
      const std::size_t n = std::min(sizeof kZeros, s.size() - at);
      if (std::memcmp(s.data() + at, kZeros, n) != 0) return false;
    }
    return true;
  }

  // One past the last non-zero byte at or after `offset`; `offset` if there is none.
  Result<std::uint64_t> nonzero_end(std::uint64_t offset) {
    std::uint64_t end = offset;
    while (true) {
      Result<std::span<const std::uint8_t>> b = bytes_at(offset, 1);
      if (!b.ok()) return b.status();
      const std::span<const std::uint8_t> s = b.value();
      if (s.empty()) return end;
      if (all_zero(s)) {  // the common case: a preallocated tail, compared at memcmp speed
        offset += s.size();
        continue;
      }
      auto it = std::find_if(s.rbegin(), s.rend(), [](std::uint8_t x) { return x != 0; });
      if (it != s.rend()) end = offset + (s.rend() - it);
      offset += s.size();
    }
  }

 private:
  int fd_;
  bool owns_fd_;
  std::string path_;
  std::size_t chunk_;
  std::unique_ptr<std::uint8_t[]> buf_;
  std::size_t capacity_ = 0;
  std::uint64_t start_ = 0;
  std::size_t len_ = 0;
};

}  // namespace internal

namespace {

using internal::FrameFile;

constexpr std::size_t kScanChunk = 4u << 20;  // >= 2 * kMaxFrameBytes: resync rarely rereads
constexpr std::size_t kTailChunk = 64u << 10;

std::string base_name(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

FrameProblem problem_of(FrameCheck check) {
  switch (check) {
    case FrameCheck::kTruncated:
      return FrameProblem::kTruncated;
    case FrameCheck::kBadLength:
      return FrameProblem::kBadLength;
    case FrameCheck::kBadReserved:
      return FrameProblem::kBadReserved;
    default:
      return FrameProblem::kBadChecksum;
  }
}

BadFrame bad_frame(const std::string& file, std::uint64_t offset, FrameProblem problem,
                   const std::string& what) {
  return BadFrame{file, offset, problem, file + " offset " + std::to_string(offset) + ": " + what};
}

BadFrame bad_frame(const std::string& file, std::uint64_t offset, const FrameView& v) {
  std::string what;
  switch (v.check) {
    case FrameCheck::kTruncated:
      what = v.size ? "truncated: a frame of " + std::to_string(v.size) +
                          " bytes runs past the end of the file"
                    : "truncated: the file ends inside a frame header";
      break;
    case FrameCheck::kBadLength:
      what = "bad length " + std::to_string(v.length) + " (must be 1.." +
             std::to_string(kMaxPayloadBytes) + ")";
      break;
    case FrameCheck::kBadReserved:
      what = "reserved word or padding is not zero";
      break;
    default:
      what = "checksum mismatch (payload of " + std::to_string(v.length) + " bytes)";
      break;
  }
  return bad_frame(file, offset, problem_of(v.check), what);
}

BadFrame unreadable(const std::string& file, const Status& why) {
  return BadFrame{file, 0, FrameProblem::kFileUnreadable, why.message()};
}

// First complete frame's offset at or after `from` (a multiple of 8), skipping
// zero runs; nullopt when the file has none.
Result<std::optional<std::uint64_t>> resync(FrameFile& f, std::uint64_t from) {
  std::uint64_t at = from;
  while (true) {
    Result<FrameView> v = f.frame_at(at);
    if (!v.ok()) return v.status();
    if (v->check == FrameCheck::kOk) return std::optional<std::uint64_t>(at);
    if (v->check == FrameCheck::kEnd) {
      Result<std::optional<std::uint64_t>> q = f.next_nonzero(at);
      if (!q.ok()) return q.status();
      if (!q.value()) return std::optional<std::uint64_t>();
      at = *q.value() & ~std::uint64_t{kFrameAlignment - 1};  // > at: the header at `at` is zero
      continue;
    }
    at += kFrameAlignment;
  }
}

void verify_into(const std::string& path, const PayloadValidator& validate, VerifyReport& report) {
  ++report.files;
  Result<std::unique_ptr<FrameFile>> opened = FrameFile::open(path, kScanChunk);
  if (!opened.ok()) {
    report.bad.push_back(unreadable(path, opened.status()));
    return;
  }
  FrameFile& f = *opened.value();
  std::uint64_t at = 0;
  while (true) {
    Result<FrameView> v = f.frame_at(at);
    if (!v.ok()) {
      report.bad.push_back(unreadable(path, v.status()));
      return;
    }
    if (v->check == FrameCheck::kOk) {
      std::string rejected = validate ? validate(v->payload) : std::string();
      if (rejected.empty()) {
        ++report.good_frames;
        report.good_bytes += v->size;
      } else {
        report.bad.push_back(
            bad_frame(path, at, FrameProblem::kPayloadRejected, "payload rejected: " + rejected));
      }
      at += v->size;
      continue;
    }
    if (v->check == FrameCheck::kEnd) {
      Result<std::optional<std::uint64_t>> q = f.next_nonzero(at);
      if (!q.ok()) {
        report.bad.push_back(unreadable(path, q.status()));
        return;
      }
      if (!q.value()) return;  // the zero tail: not an error
      const std::uint64_t more = *q.value() & ~std::uint64_t{kFrameAlignment - 1};
      report.bad.push_back(bad_frame(path, at, FrameProblem::kDataAfterEnd,
                                     "zero header, but data follows at offset " +
                                         std::to_string(more) +
                                         " (a hole: readers stop here, the writer cuts there)"));
      at = more;
      continue;
    }
    report.bad.push_back(bad_frame(path, at, v.value()));
    Result<std::optional<std::uint64_t>> next = resync(f, at + kFrameAlignment);
    if (!next.ok()) {
      report.bad.push_back(unreadable(path, next.status()));
      return;
    }
    if (!next.value()) return;
    at = *next.value();
  }
}

}  // namespace

Result<std::vector<std::string>> list_segment_files(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return Status(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                  "cannot read audit directory '" + dir + "': " + std::strerror(errno) +
                      "; check the path (sluiced creates it) and its permissions");
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name(e->d_name);
    if (e->d_type == DT_DIR || name.size() <= kSegmentFileSuffix.size() ||
        !name.ends_with(kSegmentFileSuffix)) {
      continue;
    }
    names.emplace_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  const std::string prefix = dir.empty() || dir.back() == '/' ? dir : dir + "/";
  for (std::string& n : names) n.insert(0, prefix);
  return names;
}

Result<DataEnd> find_data_end(int fd, const std::string& path) {
  FrameFile f(fd, path, false, kScanChunk);
  DataEnd end;
  while (true) {
    Result<FrameView> v = f.frame_at(end.offset);
    if (!v.ok()) return v.status();
    if (v->check != FrameCheck::kOk) {
      end.stop = v->check;
      break;
    }
    end.offset += v->size;
    ++end.frames;
  }
  Result<std::uint64_t> nz = f.nonzero_end(end.offset);
  if (!nz.ok()) return nz.status();
  end.nonzero_end = nz.value();
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return Status(ErrorCode::kIo, "cannot stat audit file '" + path + "': " + std::strerror(errno) +
                                      "; check the disk");
  }
  end.file_size = static_cast<std::uint64_t>(st.st_size);
  return end;
}

// ---- LogReader ----

LogReader::LogReader(LogReader&&) noexcept = default;
LogReader& LogReader::operator=(LogReader&&) noexcept = default;
LogReader::~LogReader() = default;

Result<LogReader> LogReader::open(const std::string& dir) {
  Result<std::vector<std::string>> files = list_segment_files(dir);
  if (!files.ok()) return files.status();
  LogReader r;
  r.files_ = std::move(files.value());
  return r;
}

Result<std::optional<FrameRef>> LogReader::next() {
  while (index_ < files_.size()) {
    if (!file_) {
      Result<std::unique_ptr<FrameFile>> f = FrameFile::open(files_[index_], kScanChunk);
      if (!f.ok()) {
        problems_.push_back(unreadable(files_[index_], f.status()));
        ++index_;
        continue;
      }
      file_ = std::move(f.value());
      offset_ = 0;
    }
    Result<FrameView> v = file_->frame_at(offset_);
    if (!v.ok()) {  // reported once; the next call goes on with the next file
      problems_.push_back(unreadable(file_->path(), v.status()));
      file_.reset();
      ++index_;
      return v.status();
    }
    if (v->check == FrameCheck::kOk) {
      FrameRef ref{file_->path(), offset_, v->payload};
      offset_ += v->size;
      return std::optional<FrameRef>(ref);
    }
    if (v->check != FrameCheck::kEnd) problems_.push_back(bad_frame(file_->path(), offset_, *v));
    file_.reset();
    ++index_;
  }
  return std::optional<FrameRef>();
}

// ---- LogTail ----

LogTail::LogTail(LogTail&&) noexcept = default;
LogTail& LogTail::operator=(LogTail&&) noexcept = default;
LogTail::~LogTail() = default;

Result<LogTail> LogTail::open(const std::string& dir, Start start) {
  Result<std::vector<std::string>> files = list_segment_files(dir);
  if (!files.ok()) return files.status();
  LogTail t;
  t.dir_ = dir;
  if (start == Start::kNow && !files->empty()) {
    const std::string& newest = files->back();
    Result<std::unique_ptr<FrameFile>> f = FrameFile::open(newest, kScanChunk);
    if (!f.ok()) return f.status();
    std::uint64_t at = 0;
    while (true) {
      Result<FrameView> v = f.value()->frame_at(at);
      if (!v.ok()) return v.status();
      if (v->check != FrameCheck::kOk) break;
      at += v->size;
    }
    t.at_ = LogPosition{newest, at};
  }
  return t;
}

Result<LogTail> LogTail::resume(const std::string& dir, LogPosition at) {
  Result<std::vector<std::string>> files = list_segment_files(dir);
  if (!files.ok()) return files.status();
  LogTail t;
  t.dir_ = dir;
  t.at_ = std::move(at);
  return t;
}

Status LogTail::move_to(const std::string& file, std::uint64_t offset) {
  at_ = LogPosition{file, offset};
  Result<std::unique_ptr<FrameFile>> f = FrameFile::open(file, kTailChunk);
  if (!f.ok()) {
    file_.reset();
    return f.status();
  }
  file_ = std::move(f.value());
  return Status::Ok();
}

Result<std::size_t> LogTail::poll(const std::function<void(const FrameRef&)>& deliver,
                                  std::size_t max_frames) {
  std::size_t delivered = 0;
  while (delivered < max_frames) {
    // List before reading: if a newer file exists now, the current one was
    // complete before we read it.
    Result<std::vector<std::string>> files = list_segment_files(dir_);
    if (!files.ok()) return files.status();
    const std::string current = base_name(at_.file);
    auto newer = std::find_if(files->begin(), files->end(), [&](const std::string& p) {
      return at_.file.empty() || base_name(p) > current;
    });
    if (at_.file.empty()) {
      if (newer == files->end()) return delivered;
      (void)move_to(*newer, 0);
      continue;
    }
    if (!file_) {
      Status s = move_to(at_.file, at_.offset);
      if (!s.ok()) {  // e.g. deleted by retention before it was read
        problems_.push_back(unreadable(at_.file, s));
        if (newer == files->end()) return delivered;
        (void)move_to(*newer, 0);
        continue;
      }
    }
    file_->forget();
    FrameView stop;
    while (delivered < max_frames) {
      Result<FrameView> v = file_->frame_at(at_.offset);
      if (!v.ok()) return v.status();
      stop = v.value();
      if (stop.check != FrameCheck::kOk) break;
      deliver(FrameRef{at_.file, at_.offset, stop.payload});
      at_.offset += stop.size;
      ++delivered;
    }
    if (delivered == max_frames || newer == files->end()) return delivered;
    if (stop.check != FrameCheck::kEnd) problems_.push_back(bad_frame(at_.file, at_.offset, stop));
    (void)move_to(*newer, 0);
  }
  return delivered;
}

// ---- verify ----

Result<VerifyReport> verify_file(const std::string& path, const PayloadValidator& validate) {
  VerifyReport report;
  verify_into(path, validate, report);
  return report;
}

Result<VerifyReport> verify_dir(const std::string& dir, const PayloadValidator& validate) {
  Result<std::vector<std::string>> files = list_segment_files(dir);
  if (!files.ok()) return files.status();
  VerifyReport report;
  for (const std::string& f : files.value()) verify_into(f, validate, report);
  return report;
}

}  // namespace sluice::audit
