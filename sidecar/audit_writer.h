// AuditWriter appends audit records (opaque payloads) as frames to segment
// files in one directory, durably (libquota/audit/FORMAT.md).
//
//   Result<AuditWriter> w = AuditWriter::open(options, [](const std::string& line) { log(line); });
//   if (!w.ok()) return w.status();
//   for (...) if (Status s = w->append(payload); !s.ok()) keep(payload);  // not taken
//   if (Status s = w->poll(); !s.ok()) log(s.message());  // often: reaps, syncs, rotates
//   Status s = w->close();  // all on disk, file truncated to its data
//
// Records are copied into a batch buffer; a full batch (or what is batched
// when the fsync interval has passed, or on flush) is written at an explicit
// file offset through io_uring, with a linked fdatasync when the interval has
// passed. Several batches are in flight; a buffer is reused once its write
// completes. Where io_uring is unavailable or refused (or use_io_uring is
// false) the same bytes are written with pwrite + fdatasync, and the log
// callback gets one line saying so. Files are preallocated to rotate_bytes,
// rotated by size and age, and old ones deleted by count and age.
//
// Opening recovers the newest file: its data ends at the first frame that is
// not complete; the rest is zeroed and appending continues there.
//
// Use from one thread. append() returns an error only when it did not take
// the payload (the caller keeps it). Write or sync failures are returned by
// the poll(), flush() or close() that sees them; the batch that failed is
// kept and its write retried, never dropped (stats().unwritten_bytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "sluice/status.h"

namespace sluice {

struct AuditWriterOptions {
  std::string dir = "var/audit";
  // The group given the directories and files the writer creates (dir 2750,
  // files 0640: the group reads, only sluiced writes); empty: sluiced's own.
  std::string group;
  std::uint64_t fsync_interval_ms = 50;  // 0: every batch is synced
  std::uint64_t rotate_bytes = 64ull << 20;
  std::uint64_t rotate_seconds = 3600;  // 0: no rotation by age
  std::uint64_t retain_files = 24;      // including the current file; 0: no count limit
  std::uint64_t retain_seconds = 0;     // files whose last write is older are deleted; 0: none
  std::size_t batch_bytes = 1 << 20;    // a frame larger than this is written alone
  std::size_t batches_in_flight = 4;
  bool use_io_uring = true;  // false: pwrite + fdatasync
};

struct AuditWriterStats {
  std::uint64_t frames_appended = 0;  // taken by append() since open
  std::uint64_t frames_written = 0;   // their writes completed
  std::uint64_t unwritten_bytes = 0;  // taken but not written yet (batched, in flight, failed)
  std::uint64_t bytes_on_disk = 0;    // data of the directory's audit files as written
  std::uint64_t last_sync_realtime_ns = 0;  // CLOCK_REALTIME of the last fdatasync done; 0: none
  bool io_uring = false;                    // false: pwrite + fdatasync
  std::uint64_t io_uring_submissions = 0;   // entries submitted to the ring
  std::string current_file;
  std::uint64_t current_offset = 0;  // data end of the current file (taken frames)
  std::uint64_t synced_offset = 0;   // below this, the current file is on disk
  std::uint64_t files_created = 0;
  std::uint64_t files_deleted = 0;
  std::uint64_t recovered_frames = 0;     // complete frames found in the file recovered at open
  std::uint64_t recovered_cut_bytes = 0;  // incomplete data cut from it
  std::uint64_t write_errors = 0;
  std::uint64_t sync_errors = 0;
};

class AuditWriter {
 public:
  using LogFn = std::function<void(const std::string&)>;

  // Creates the directory if needed (mode 2750, and `group`), recovers its
  // newest file (or creates one, 0640) and sets up io_uring or the pwrite
  // fallback. An existing directory is not changed; one writable by every
  // user is refused.
  static Result<AuditWriter> open(const AuditWriterOptions& options, LogFn log);

  AuditWriter(AuditWriter&&) noexcept;
  // Both close the writer being replaced or destroyed if it is still open; a
  // failure then goes to the log callback, with the bytes it could not write.
  AuditWriter& operator=(AuditWriter&&) noexcept;
  ~AuditWriter();

  // Takes a copy of 1..kMaxPayloadBytes bytes as the next frame. May rotate
  // (waiting for in-flight I/O) or wait for a batch buffer to come back.
  Status append(std::span<const std::uint8_t> payload);
  // Submits what is batched. sync: also waits until everything taken is on
  // disk (fdatasync done).
  Status flush(bool sync);
  // Submits what is batched, without waiting or syncing.
  Status submit();
  // Reaps completions without blocking, syncs if the interval has passed,
  // rotates by age, retries failed writes. Call often (every few ms).
  Status poll();
  // Everything on disk, the file truncated to its data, descriptors closed.
  Status close();

  AuditWriterStats stats() const;
  // How many of the frames appended since open are written (in the page
  // cache, so they outlive this process), counting from the first: frame k
  // (0-based) is written when k < written_through().
  std::uint64_t written_through() const;

 private:
  struct Impl;
  explicit AuditWriter(std::unique_ptr<Impl> impl);
  void close_or_log();
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
