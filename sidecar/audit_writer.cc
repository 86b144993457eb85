// The writer's bookkeeping, in file offsets of the current file:
//   synced_end <= (bytes written) <= file_end
// file_end is where the next frame goes; every byte below synced_end is on
// disk. A batch is a run of frames at [offset, offset + used); `written` of
// them are in the file. Batches are written in any order, so an fdatasync
// vouches for everything below its end only because it starts after every
// earlier write has completed: its write carries IOSQE_IO_DRAIN (the pwrite
// path is sequential anyway). A batch whose write fails stays in memory and
// is written again, at the same offset, until it succeeds.
#include "audit_writer.h"

#include <fcntl.h>
#include <liburing.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "frame.h"
#include "group_access.h"
#include "log_reader.h"

namespace sluice {
namespace {

constexpr std::uint64_t kSyncTag = 1ull << 63;  // user_data of an fsync: tag | offset it covers
constexpr std::uint64_t kRetryNs = 1'000'000'000;
constexpr std::uint64_t kMinRotateBytes = 4096;
constexpr std::size_t kMinBatchBytes = 4096;
constexpr std::size_t kMaxBatchBytes = 256u << 20;
constexpr std::size_t kMaxBatchesInFlight = 64;

std::uint64_t now_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

std::string err_text(int err) { return std::strerror(err); }

// ---- file names: audit-YYYYMMDDTHHMMSS-NNNNNN.sal (FORMAT.md) ----

constexpr std::string_view kNamePrefix = "audit-";
constexpr std::size_t kStampChars = 15;  // YYYYMMDDTHHMMSS
constexpr std::size_t kCounterChars = 6;
constexpr std::size_t kNameChars =
    kNamePrefix.size() + kStampChars + 1 + kCounterChars + audit::kSegmentFileSuffix.size();

struct SegmentName {
  std::string stamp;
  unsigned counter = 0;
};

std::string base_name(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<SegmentName> parse_name(std::string_view name) {
  if (name.size() != kNameChars || !name.starts_with(kNamePrefix) ||
      !name.ends_with(audit::kSegmentFileSuffix)) {
    return std::nullopt;
  }
  const std::string_view stamp = name.substr(kNamePrefix.size(), kStampChars);
  const std::string_view counter = name.substr(kNamePrefix.size() + kStampChars + 1, kCounterChars);
  if (stamp[8] != 'T' || !all_digits(stamp.substr(0, 8)) || !all_digits(stamp.substr(9)) ||
      name[kNamePrefix.size() + kStampChars] != '-' || !all_digits(counter)) {
    return std::nullopt;
  }
  return SegmentName{std::string(stamp), static_cast<unsigned>(std::stoul(std::string(counter)))};
}

std::string make_name(const SegmentName& n) {
  std::array<char, 8> counter{};
  std::snprintf(counter.data(), counter.size(), "%06u", n.counter);
  return std::string(kNamePrefix) + n.stamp + "-" + counter.data() +
         std::string(audit::kSegmentFileSuffix);
}

std::string stamp_of(std::uint64_t realtime_ns) {
  const time_t s = static_cast<time_t>(realtime_ns / 1'000'000'000ull);
  tm utc{};
  gmtime_r(&s, &utc);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y%m%dT%H%M%S", &utc);
  return buf.data();
}

std::uint64_t stamp_ns(const std::string& stamp) {
  tm utc{};
  if (strptime(stamp.c_str(), "%Y%m%dT%H%M%S", &utc) == nullptr) return 0;
  const time_t s = timegm(&utc);
  return s < 0 ? 0 : static_cast<std::uint64_t>(s) * 1'000'000'000ull;
}

Status invalid(const std::string& what) { return Status(ErrorCode::kInvalidArgument, what); }

Status validate(const AuditWriterOptions& o) {
  if (o.dir.empty()) return invalid("audit directory is empty; set a directory such as var/audit");
  if (o.rotate_bytes < kMinRotateBytes) {
    return invalid("audit rotate_bytes " + std::to_string(o.rotate_bytes) +
                   " is too small; use at least " + std::to_string(kMinRotateBytes));
  }
  if (o.batch_bytes < kMinBatchBytes || o.batch_bytes > kMaxBatchBytes) {
    return invalid("audit batch_bytes " + std::to_string(o.batch_bytes) + " is out of range; use " +
                   std::to_string(kMinBatchBytes) + ".." + std::to_string(kMaxBatchBytes));
  }
  if (o.batches_in_flight < 1 || o.batches_in_flight > kMaxBatchesInFlight) {
    return invalid("audit batches_in_flight " + std::to_string(o.batches_in_flight) +
                   " is out of range; use 1.." + std::to_string(kMaxBatchesInFlight));
  }
  return Status::Ok();
}

// Modes of what the writer creates (README, Security): sluiced's user
// writes; the group (segment.group: the clients) may read the trail with
// `sluice audit` but neither change nor delete any of it; others nothing.
// The directory's set-group-ID bit gives files made in it its group.
constexpr mode_t kDirMode = 02750;
constexpr mode_t kParentDirMode = 0750;  // directories made on the way to it
constexpr mode_t kFileMode = 0640;

// Creates `dir` and the directories above it that are missing, each with
// exactly its mode and given to `group`. Directories that exist are left
// as they are (check_dir_access looks at the audit directory itself).
Status make_dirs(std::string dir, std::optional<gid_t> group) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::string path;
  std::size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    path = dir.substr(0, pos);
    if (path.empty() || path == "/") continue;
    if (::mkdir(path.c_str(), 0700) != 0) {
      if (errno == EEXIST) continue;
      return Status(errno == EACCES ? ErrorCode::kPermissionDenied : ErrorCode::kIo,
                    "cannot create audit directory '" + path + "': " + err_text(errno) +
                        "; create it or choose another directory");
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      return Status(ErrorCode::kIo, "cannot open audit directory '" + path +
                                        "' just made: " + err_text(errno) + "; retry");
    }
    const Status s =
        set_file_access(fd, path, pos == std::string::npos ? kDirMode : kParentDirMode, group);
    ::close(fd);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

std::string octal_mode(mode_t mode) {
  std::array<char, 8> text{};
  std::snprintf(text.data(), text.size(), "%04o", static_cast<unsigned>(mode & 07777));
  return text.data();
}

}  // namespace

struct AuditWriter::Impl {
  enum class BatchState : std::uint8_t { kFree, kFilling, kInFlight, kFailed };
  struct Batch {
    std::vector<std::uint8_t> buf;
    std::uint64_t offset = 0;  // file offset of buf[0]
    std::size_t used = 0;
    std::size_t written = 0;
    std::uint64_t frames = 0;
    std::uint64_t first_frame = 0;  // frames appended before this batch's first
    BatchState state = BatchState::kFree;
  };

  AuditWriterOptions opt;
  LogFn log;
  std::optional<gid_t> group;  // opt.group's gid
  int dir_fd = -1;
  int fd = -1;
  std::string path;
  std::uint64_t created_ns = 0;  // CLOCK_REALTIME
  std::uint64_t file_end = 0;
  std::uint64_t synced_end = 0;
  std::uint64_t sync_asked_end = 0;       // a sync covering this far is in flight or done
  std::uint64_t last_sync_submit_ns = 0;  // CLOCK_MONOTONIC; 0: never
  std::uint64_t last_failure_ns = 0;      // CLOCK_MONOTONIC of the last failed write
  unsigned writes_in_flight = 0;
  unsigned syncs_in_flight = 0;
  std::vector<Batch> batches;
  int filling = -1;
  bool ring_ok = false;
  bool resubmit_ring = false;  // io_uring_submit failed; entries wait in the ring
  io_uring ring{};
  std::uint64_t closed_bytes = 0;  // data of the other audit files in the directory
  Status pending;                  // first I/O error not yet returned
  std::uint64_t more_errors = 0;
  AuditWriterStats st;
  bool closed = false;

  ~Impl() { release(); }

  void say(const std::string& line) const {
    if (log) log(line);
  }

  void note_error(Status s) {
    if (pending.ok()) {
      pending = std::move(s);
    } else {
      ++more_errors;
    }
  }

  Status take_pending() {
    Status s = std::move(pending);
    pending = Status::Ok();
    if (!s.ok() && more_errors > 0) {
      s = Status(s.code(), s.message() + " (and " + std::to_string(more_errors) + " more errors)");
    }
    more_errors = 0;
    return s;
  }

  void release() {
    // The kernel may still read batch buffers: let every request finish first.
    while (ring_ok && writes_in_flight + syncs_in_flight > 0) {
      if (!reap(true).ok()) break;
    }
    if (fd >= 0) ::close(fd);
    if (dir_fd >= 0) ::close(dir_fd);
    if (ring_ok) io_uring_queue_exit(&ring);
    fd = dir_fd = -1;
    ring_ok = false;
  }

  // ---- opening ----

  void setup_ring() {
    if (!opt.use_io_uring) {
      say("audit: io_uring disabled by option; writing with pwrite + fdatasync");
      return;
    }
    const unsigned entries = static_cast<unsigned>(2 * opt.batches_in_flight + 4);
    const int r = io_uring_queue_init(entries, &ring, 0);
    if (r < 0) {
      say("audit: io_uring unavailable (io_uring_queue_init: " + err_text(-r) +
          "); writing with pwrite + fdatasync instead");
      return;
    }
    io_uring_probe* probe = io_uring_get_probe_ring(&ring);
    const bool usable = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_WRITE) &&
                        io_uring_opcode_supported(probe, IORING_OP_FSYNC);
    if (probe != nullptr) io_uring_free_probe(probe);
    if (!usable) {
      io_uring_queue_exit(&ring);
      say("audit: io_uring lacks IORING_OP_WRITE/FSYNC (kernel older than 5.6); writing with "
          "pwrite + fdatasync instead");
      return;
    }
    ring_ok = true;
  }

  // The audit files of the directory (names this writer makes), oldest first.
  Result<std::vector<std::string>> own_files() const {
    Result<std::vector<std::string>> all = audit::list_segment_files(opt.dir);
    if (!all.ok()) return all.status();
    std::vector<std::string> own;
    for (std::string& p : all.value()) {
      if (parse_name(base_name(p))) own.push_back(std::move(p));
    }
    return own;
  }

  std::string at_dir(const std::string& name) const {
    return opt.dir.back() == '/' ? opt.dir + name : opt.dir + "/" + name;
  }

  void preallocate(std::uint64_t current_size) {
    if (current_size >= opt.rotate_bytes) return;
    const off_t len = static_cast<off_t>(opt.rotate_bytes);
    if (::fallocate(fd, 0, 0, len) == 0) return;
    int err = errno;
    if (err == EOPNOTSUPP || err == ENOSYS) {
      err = ::posix_fallocate(fd, 0, len);
      if (err == 0) return;
    }
    say("audit: cannot preallocate " + path + " (" + err_text(err) +
        "); appending without preallocation");
  }

  Status sync_dir() {
    if (::fsync(dir_fd) == 0) return Status::Ok();
    return Status(ErrorCode::kIo, "syncing audit directory '" + opt.dir +
                                      "' failed: " + err_text(errno) + "; check the disk (dmesg)");
  }

  void start_file(std::string file_path, std::uint64_t created, std::uint64_t end) {
    path = std::move(file_path);
    created_ns = created;
    file_end = synced_end = sync_asked_end = end;
  }

  Status create_file() {
    Result<std::vector<std::string>> files = own_files();
    if (!files.ok()) return files.status();
    const std::uint64_t now = now_ns(CLOCK_REALTIME);
    SegmentName name{stamp_of(now), 0};
    if (!files->empty()) {
      const SegmentName newest = *parse_name(base_name(files->back()));
      if (newest.stamp >= name.stamp) name = SegmentName{newest.stamp, newest.counter + 1};
    }
    for (int attempt = 0; attempt < 100; ++attempt, ++name.counter) {
      if (name.counter > 999999) break;
      const std::string file = make_name(name);
      const int f =
          ::openat(dir_fd, file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode);
      if (f < 0 && errno == EEXIST) continue;
      if (f < 0) {
        return Status(errno == EACCES ? ErrorCode::kPermissionDenied : ErrorCode::kIo,
                      "cannot create audit file '" + at_dir(file) + "': " + err_text(errno) +
                          "; check the directory's permissions and free space");
      }
      if (Status s = set_file_access(f, at_dir(file), kFileMode, group); !s.ok()) {
        ::close(f);
        ::unlinkat(dir_fd, file.c_str(), 0);
        return s;
      }
      fd = f;
      start_file(at_dir(file), now, 0);
      preallocate(0);
      ++st.files_created;
      return sync_dir();
    }
    return Status(ErrorCode::kIo, "cannot name a new audit file in '" + opt.dir +
                                      "': too many files in one second; remove stray audit-*.sal");
  }

  Status recover(const std::string& newest) {
    const int f = ::openat(dir_fd, base_name(newest).c_str(), O_RDWR | O_CLOEXEC);
    if (f < 0) {
      return Status(errno == EACCES ? ErrorCode::kPermissionDenied : ErrorCode::kIo,
                    "cannot open audit file '" + newest + "' for appending: " + err_text(errno) +
                        "; check its permissions");
    }
    fd = f;
    Result<audit::DataEnd> found = audit::find_data_end(fd, newest);
    if (!found.ok()) return found.status();
    const audit::DataEnd& e = found.value();
    start_file(newest, stamp_ns(parse_name(base_name(newest))->stamp), e.offset);
    st.recovered_frames = e.frames;
    if (e.nonzero_end > e.offset) {
      const std::uint64_t cut = e.nonzero_end - e.offset;
      if (Status s = zero_from(e.offset, e.file_size, e.nonzero_end); !s.ok()) return s;
      st.recovered_cut_bytes = cut;
      say("audit: recovered " + newest + ": kept " + std::to_string(e.frames) + " frames (" +
          std::to_string(e.offset) + " bytes), cut " + std::to_string(cut) +
          " bytes of incomplete data at offset " + std::to_string(e.offset) + " (" +
          std::string(audit::frame_check_name(e.stop)) + ")");
    }
    preallocate(e.file_size);
    // The zeroing must be on disk before new frames are (FORMAT.md, Recovery).
    if (::fsync(fd) != 0) {
      return Status(ErrorCode::kIo, "syncing recovered audit file '" + newest + "' failed: " +
                                        err_text(errno) + "; check the disk (dmesg)");
    }
    return Status::Ok();
  }

  Status zero_from(std::uint64_t from, std::uint64_t file_size, std::uint64_t nonzero_end) {
    if (::fallocate(fd, FALLOC_FL_ZERO_RANGE, static_cast<off_t>(from),
                    static_cast<off_t>(file_size - from)) == 0) {
      return Status::Ok();
    }
    static const std::array<std::uint8_t, std::size_t{64} * 1024> kZeros{};
    for (std::uint64_t at = from; at < nonzero_end;) {
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(kZeros.size(), nonzero_end - at));
      const ssize_t r = ::pwrite(fd, kZeros.data(), n, static_cast<off_t>(at));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        return Status(ErrorCode::kIo, "zeroing the incomplete end of audit file '" + path +
                                          "' failed: " + err_text(r < 0 ? errno : EIO) +
                                          "; check the disk (dmesg)");
      }
      at += static_cast<std::uint64_t>(r);
    }
    return Status::Ok();
  }

  // A directory that was already there keeps its mode and group: sluiced
  // changes nothing it did not create. One that anyone may write is
  // refused (anyone could delete the trail); a group-writable one, or one of
  // another group than segment.group, gets a line in the log.
  Status check_dir_access() const {
    struct stat st {};
    if (::fstat(dir_fd, &st) != 0) {
      return Status(ErrorCode::kIo, "cannot stat audit directory '" + opt.dir +
                                        "': " + err_text(errno) + "; check its permissions");
    }
    const std::string mode = octal_mode(st.st_mode);
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
      return Status(ErrorCode::kPermissionDenied,
                    "audit directory '" + opt.dir + "' is writable by every user (mode " + mode +
                        "), so anyone could delete the audit trail; chmod 2750 " + opt.dir +
                        ", or remove it so that sluiced creates it");
    }
    if (st.st_mode & S_IWGRP) {
      say("audit: directory " + opt.dir + " is group-writable (mode " + mode +
          "): members of group '" + group_name(st.st_gid) +
          "' could delete audit files; chmod g-w " + opt.dir);
    }
    if (group && st.st_gid != *group) {
      say("audit: directory " + opt.dir + " belongs to group '" + group_name(st.st_gid) +
          "', not segment.group '" + opt.group + "', whose members then cannot read it; chgrp " +
          opt.group + " " + opt.dir + " && chmod 2750 " + opt.dir);
    }
    return Status::Ok();
  }

  Status open_dir() {
    if (!opt.group.empty()) {
      Result<gid_t> gid = lookup_group(opt.group, "segment.group");
      if (!gid.ok()) return gid.status();
      group = gid.value();
    }
    if (Status s = make_dirs(opt.dir, group); !s.ok()) return s;
    dir_fd = ::open(opt.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
      return Status(ErrorCode::kIo, "cannot open audit directory '" + opt.dir +
                                        "': " + err_text(errno) + "; check its permissions");
    }
    if (Status s = check_dir_access(); !s.ok()) return s;
    batches.resize(opt.batches_in_flight + 1);
    setup_ring();
    Result<std::vector<std::string>> files = own_files();
    if (!files.ok()) return files.status();
    if (files->empty()) return create_file();
    for (std::size_t i = 0; i + 1 < files->size(); ++i) closed_bytes += file_size((*files)[i]);
    return recover(files->back());
  }

  std::uint64_t file_size(const std::string& p) const {
    struct stat s {};
    if (::fstatat(dir_fd, base_name(p).c_str(), &s, 0) != 0) return 0;
    return static_cast<std::uint64_t>(s.st_size);
  }

  // ---- batches ----

  std::uint64_t unwritten_from() const {
    std::uint64_t low = std::numeric_limits<std::uint64_t>::max();
    for (const Batch& b : batches) {
      if (b.state != BatchState::kFree) low = std::min(low, b.offset + b.written);
    }
    return low;
  }

  bool sync_due() const {
    return last_sync_submit_ns == 0 ||
           now_ns(CLOCK_MONOTONIC) - last_sync_submit_ns >= opt.fsync_interval_ms * 1'000'000ull;
  }

  bool any_failed() const {
    return std::any_of(batches.begin(), batches.end(),
                       [](const Batch& b) { return b.state == BatchState::kFailed; });
  }

  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    if (sqe == nullptr) {
      (void)io_uring_submit(&ring);
      sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
  }

  void submit_ring() {
    const int r = io_uring_submit(&ring);
    if (r >= 0) {
      st.io_uring_submissions += static_cast<std::uint64_t>(r);
      resubmit_ring = false;
    } else {
      resubmit_ring = true;  // the entries stay queued; poll() submits them again
    }
  }

  // Starts writing the rest of batch `i`; with_sync links an fdatasync after it.
  void start_write(int i, bool with_sync) {
    Batch& b = batches[static_cast<std::size_t>(i)];
    b.state = BatchState::kInFlight;
    ++writes_in_flight;
    const std::uint64_t end = b.offset + b.used;
    if (!ring_ok) {
      ssize_t r;
      do {
        r = ::pwrite(fd, b.buf.data() + b.written, b.used - b.written,
                     static_cast<off_t>(b.offset + b.written));
      } while (r < 0 && errno == EINTR);
      on_write(i, r < 0 ? -errno : static_cast<int>(r), false);
      if (with_sync && b.state == BatchState::kFree) sync_now(end);
      return;
    }
    io_uring_sqe* w = get_sqe();
    io_uring_sqe* s = with_sync && w != nullptr ? get_sqe() : nullptr;
    if (w == nullptr || (with_sync && s == nullptr)) {  // cannot happen: the ring fits them all
      on_write(i, -EBUSY, false);
      return;
    }
    io_uring_prep_write(w, fd, b.buf.data() + b.written, static_cast<unsigned>(b.used - b.written),
                        b.offset + b.written);
    io_uring_sqe_set_data64(w, static_cast<std::uint64_t>(i));
    if (with_sync) {
      w->flags |= IOSQE_IO_LINK | IOSQE_IO_DRAIN;
      io_uring_prep_fsync(s, fd, IORING_FSYNC_DATASYNC);
      io_uring_sqe_set_data64(s, kSyncTag | end);
      note_sync_submitted(end);
    }
    submit_ring();
  }

  void note_sync_submitted(std::uint64_t end) {
    ++syncs_in_flight;
    last_sync_submit_ns = now_ns(CLOCK_MONOTONIC);
    sync_asked_end = std::max(sync_asked_end, end);
  }

  // An fdatasync on its own, after everything submitted before it.
  void start_sync() {
    const std::uint64_t end =
        filling >= 0 ? batches[static_cast<std::size_t>(filling)].offset : file_end;
    if (!ring_ok) {
      sync_now(end);
      return;
    }
    io_uring_sqe* s = get_sqe();
    if (s == nullptr) return;  // cannot happen: the ring fits them all
    io_uring_prep_fsync(s, fd, IORING_FSYNC_DATASYNC);
    s->flags |= IOSQE_IO_DRAIN;
    io_uring_sqe_set_data64(s, kSyncTag | end);
    note_sync_submitted(end);
    submit_ring();
  }

  void sync_now(std::uint64_t end) {
    note_sync_submitted(end);
    on_sync(end, ::fdatasync(fd) == 0 ? 0 : -errno);
  }

  void on_write(int i, int res, bool from_ring) {
    Batch& b = batches[static_cast<std::size_t>(i)];
    --writes_in_flight;
    if (from_ring && (res == -EAGAIN || res == -EINTR)) {
      start_write(i, false);
      return;
    }
    if (res <= 0) {
      b.state = BatchState::kFailed;
      ++st.write_errors;
      last_failure_ns = now_ns(CLOCK_MONOTONIC);
      note_error(
          Status(ErrorCode::kIo, "audit: writing " + std::to_string(b.used - b.written) +
                                     " bytes at offset " + std::to_string(b.offset + b.written) +
                                     " of " + path + " failed: " + err_text(res < 0 ? -res : EIO) +
                                     "; the records are kept and written again every second; "
                                     "free space or fix the disk (dmesg)"));
      return;
    }
    b.written += static_cast<std::size_t>(res);
    if (b.written < b.used) {  // short write: the rest goes on its own
      start_write(i, false);
      return;
    }
    st.frames_written += b.frames;
    b.state = BatchState::kFree;
    b.used = b.written = 0;
    b.frames = 0;
  }

  void on_sync(std::uint64_t covered, int res) {
    --syncs_in_flight;
    if (res >= 0) {
      synced_end = std::max(synced_end, std::min(covered, unwritten_from()));
      st.last_sync_realtime_ns = now_ns(CLOCK_REALTIME);
      return;
    }
    sync_asked_end = synced_end;    // ask again
    if (res == -ECANCELED) return;  // its write failed or was short: reported there
    ++st.sync_errors;
    note_error(Status(ErrorCode::kIo, "audit: fdatasync of " + path + " failed: " + err_text(-res) +
                                          "; data after offset " + std::to_string(synced_end) +
                                          " may not be on disk; the sync is retried; check the "
                                          "disk (dmesg)"));
  }

  void handle(const io_uring_cqe* cqe) {
    const std::uint64_t data = io_uring_cqe_get_data64(cqe);
    if (data & kSyncTag) {
      on_sync(data & ~kSyncTag, cqe->res);
    } else {
      on_write(static_cast<int>(data), cqe->res, true);
    }
  }

  // Handles every completion there is; block: waits for at least one first.
  Status reap(bool block) {
    if (!ring_ok) return Status::Ok();
    if (resubmit_ring) submit_ring();
    io_uring_cqe* cqe = nullptr;
    if (block && writes_in_flight + syncs_in_flight > 0) {
      int r;
      do {
        r = io_uring_wait_cqe(&ring, &cqe);
      } while (r == -EINTR);
      if (r < 0) {
        return Status(ErrorCode::kIo, "audit: waiting for io_uring completions failed: " +
                                          err_text(-r) + "; restart sluiced");
      }
    }
    while (io_uring_peek_cqe(&ring, &cqe) == 0) {
      const io_uring_cqe copy = *cqe;
      io_uring_cqe_seen(&ring, cqe);
      handle(&copy);
    }
    return Status::Ok();
  }

  void retry_failed(bool now) {
    if (!any_failed()) return;
    if (!now && now_ns(CLOCK_MONOTONIC) - last_failure_ns < kRetryNs) return;
    for (std::size_t i = 0; i < batches.size(); ++i) {
      Batch& b = batches[i];
      if (b.state != BatchState::kFailed) continue;
      sync_asked_end = std::min(sync_asked_end, b.offset + b.written);
      start_write(static_cast<int>(i), false);
    }
  }

  // A batch to fill with at least `need` bytes of room; -1 with an error if
  // every buffer holds data that failed to write.
  Result<int> acquire(std::size_t need) {
    while (true) {
      for (std::size_t i = 0; i < batches.size(); ++i) {
        Batch& b = batches[i];
        if (b.state != BatchState::kFree) continue;
        if (b.buf.size() < std::max(opt.batch_bytes, need)) {
          b.buf.resize(std::max(opt.batch_bytes, need));
        }
        b.state = BatchState::kFilling;
        b.offset = file_end;
        b.used = b.written = 0;
        b.frames = 0;
        return static_cast<int>(i);
      }
      retry_failed(false);
      if (writes_in_flight == 0) {
        return Status(ErrorCode::kIo,
                      "audit: record not taken: all " + std::to_string(batches.size()) +
                          " batch buffers hold records whose write failed (" + path +
                          "); they are written again every second; free space or fix the disk");
      }
      if (Status s = reap(true); !s.ok()) return s;
    }
  }

  void submit_filling(bool with_sync) {
    if (filling < 0) return;
    const int i = filling;
    filling = -1;
    if (batches[static_cast<std::size_t>(i)].used == 0) {
      batches[static_cast<std::size_t>(i)].state = BatchState::kFree;
      return;
    }
    start_write(i, with_sync || sync_due());
  }

  // Waits until everything taken is on disk.
  Status sync_all() {
    submit_filling(true);
    for (int round = 0; round < 3 && synced_end < file_end; ++round) {
      retry_failed(round > 0);
      if (sync_asked_end < file_end) start_sync();
      while (synced_end < file_end && writes_in_flight + syncs_in_flight > 0) {
        if (Status s = reap(true); !s.ok()) return s;
      }
    }
    if (synced_end >= file_end) return Status::Ok();
    Status why = take_pending();
    return Status(ErrorCode::kIo, "audit: " + std::to_string(file_end - synced_end) + " bytes of " +
                                      path + " are not on disk yet" +
                                      (why.ok() ? std::string() : ": " + why.message()));
  }

  // ---- rotation and retention ----

  Status rotate() {
    if (Status s = sync_all(); !s.ok()) {
      return Status(s.code(), s.message() + " (rotation postponed)");
    }
    if (::ftruncate(fd, static_cast<off_t>(file_end)) != 0) {
      note_error(Status(ErrorCode::kIo, "audit: truncating " + path + " to its data failed: " +
                                            err_text(errno) + "; readers still stop at its end"));
    }
    ::close(fd);
    fd = -1;
    closed_bytes += file_end;
    if (Status s = create_file(); !s.ok()) return s;
    retain();
    return Status::Ok();
  }

  void retain() {
    Result<std::vector<std::string>> files = own_files();
    if (!files.ok()) {
      note_error(files.status());
      return;
    }
    std::vector<std::string> old;
    for (std::string& f : files.value()) {
      if (base_name(f) != base_name(path)) old.push_back(std::move(f));
    }
    std::size_t by_count = 0;
    if (opt.retain_files > 0 && old.size() + 1 > opt.retain_files) {
      by_count = static_cast<std::size_t>(old.size() + 1 - opt.retain_files);
    }
    const std::uint64_t now = now_ns(CLOCK_REALTIME);
    bool deleted = false;
    for (std::size_t i = 0; i < old.size(); ++i) {
      const std::string name = base_name(old[i]);
      struct stat s {};
      if (::fstatat(dir_fd, name.c_str(), &s, 0) != 0) continue;
      const std::uint64_t mtime = static_cast<std::uint64_t>(s.st_mtim.tv_sec) * 1'000'000'000ull +
                                  static_cast<std::uint64_t>(s.st_mtim.tv_nsec);
      const bool too_old = opt.retain_seconds > 0 && now > mtime &&
                           now - mtime > opt.retain_seconds * 1'000'000'000ull;
      if (i >= by_count && !too_old) continue;
      if (::unlinkat(dir_fd, name.c_str(), 0) != 0) {
        note_error(Status(ErrorCode::kIo, "audit: deleting old file " + old[i] +
                                              " failed: " + err_text(errno) +
                                              "; check the directory's permissions"));
        continue;
      }
      closed_bytes -= std::min(closed_bytes, static_cast<std::uint64_t>(s.st_size));
      ++st.files_deleted;
      deleted = true;
    }
    if (deleted) {
      if (Status s = sync_dir(); !s.ok()) note_error(std::move(s));
    }
  }

  Status need_file() {
    if (closed) {
      return Status(ErrorCode::kInvalidArgument, "audit writer is closed; open a new one");
    }
    if (fd >= 0) return Status::Ok();
    return create_file();  // the previous attempt, at rotation, failed
  }
};

// ---- AuditWriter ----

AuditWriter::AuditWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AuditWriter::AuditWriter(AuditWriter&&) noexcept = default;

AuditWriter& AuditWriter::operator=(AuditWriter&& other) noexcept {
  if (this != &other) {
    close_or_log();
    impl_ = std::move(other.impl_);
  }
  return *this;
}

AuditWriter::~AuditWriter() { close_or_log(); }

void AuditWriter::close_or_log() {
  if (!impl_ || impl_->closed) return;
  if (Status s = close(); !s.ok()) {
    impl_->say("audit: closing the writer: " + s.message() + "; " +
               std::to_string(stats().unwritten_bytes) + " bytes of records are lost");
  }
}

Result<AuditWriter> AuditWriter::open(const AuditWriterOptions& options, LogFn log) {
  if (Status s = validate(options); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->log = std::move(log);
  if (Status s = impl->open_dir(); !s.ok()) return s;
  return AuditWriter(std::move(impl));
}

Status AuditWriter::append(std::span<const std::uint8_t> payload) {
  Impl& w = *impl_;
  if (payload.empty() || payload.size() > audit::kMaxPayloadBytes) {
    return invalid("audit record of " + std::to_string(payload.size()) +
                   " bytes not taken: a record must be 1.." +
                   std::to_string(audit::kMaxPayloadBytes) + " bytes");
  }
  if (Status s = w.need_file(); !s.ok()) return s;
  const std::size_t size = audit::frame_size(payload.size());
  if (w.file_end > 0 && w.file_end + size > w.opt.rotate_bytes) {
    if (Status s = w.rotate(); !s.ok()) return s;
  }
  if (w.filling >= 0) {
    if (w.batches[static_cast<std::size_t>(w.filling)].used + size > w.opt.batch_bytes) {
      w.submit_filling(false);
    }
  }
  if (w.filling < 0) {
    Result<int> i = w.acquire(size);
    if (!i.ok()) return i.status();
    w.filling = i.value();
  }
  Impl::Batch& b = w.batches[static_cast<std::size_t>(w.filling)];
  if (b.frames == 0) b.first_frame = w.st.frames_appended;
  audit::encode_frame(payload, std::span<std::uint8_t>(b.buf.data() + b.used, size));
  b.used += size;
  ++b.frames;
  w.file_end += size;
  ++w.st.frames_appended;
  if (b.used >= w.opt.batch_bytes) w.submit_filling(false);
  return Status::Ok();
}

Status AuditWriter::submit() {
  Impl& w = *impl_;
  if (Status s = w.need_file(); !s.ok()) return s;
  w.submit_filling(false);
  return w.take_pending();
}

std::uint64_t AuditWriter::written_through() const {
  const Impl& w = *impl_;
  std::uint64_t through = w.st.frames_appended;
  for (const Impl::Batch& b : w.batches) {
    if (b.state != Impl::BatchState::kFree && b.frames != 0) {
      through = std::min(through, b.first_frame);
    }
  }
  return through;
}

Status AuditWriter::flush(bool sync) {
  Impl& w = *impl_;
  if (Status s = w.need_file(); !s.ok()) return s;
  if (Status s = w.reap(false); !s.ok()) return s;
  w.retry_failed(true);
  if (sync) {
    if (Status s = w.sync_all(); !s.ok()) return s;
  } else {
    w.submit_filling(false);
  }
  return w.take_pending();
}

Status AuditWriter::poll() {
  Impl& w = *impl_;
  if (Status s = w.need_file(); !s.ok()) return s;
  if (Status s = w.reap(false); !s.ok()) return s;
  w.retry_failed(false);
  if (w.opt.rotate_seconds > 0 && w.file_end > 0 && !w.any_failed() &&
      now_ns(CLOCK_REALTIME) >= w.created_ns + w.opt.rotate_seconds * 1'000'000'000ull) {
    if (Status s = w.rotate(); !s.ok()) w.note_error(std::move(s));
  }
  if (w.synced_end < w.file_end && w.sync_due()) {
    if (w.filling >= 0) {
      w.submit_filling(true);
    } else if (w.sync_asked_end < w.file_end && w.syncs_in_flight == 0) {
      w.start_sync();
    }
  }
  return w.take_pending();
}

Status AuditWriter::close() {
  Impl& w = *impl_;
  if (w.closed) return Status::Ok();
  if (w.fd >= 0) {
    if (Status s = w.sync_all(); !s.ok()) return s;
    if (::ftruncate(w.fd, static_cast<off_t>(w.file_end)) != 0) {
      w.note_error(Status(ErrorCode::kIo, "audit: truncating " + w.path +
                                              " to its data failed: " + std::strerror(errno) +
                                              "; readers still stop at its end"));
    }
  }
  w.release();
  w.closed = true;
  return w.take_pending();
}

AuditWriterStats AuditWriter::stats() const {
  const Impl& w = *impl_;
  AuditWriterStats s = w.st;
  for (const Impl::Batch& b : w.batches) {
    if (b.state != Impl::BatchState::kFree) s.unwritten_bytes += b.used - b.written;
  }
  s.io_uring = w.ring_ok;
  s.current_file = w.path;
  s.current_offset = w.file_end;
  s.synced_offset = w.synced_end;
  s.bytes_on_disk = w.closed_bytes + w.file_end - s.unwritten_bytes;
  return s;
}

}  // namespace sluice
