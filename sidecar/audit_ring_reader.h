// The consumer half of the audit ring (protocol: AuditRing in
// shm-layout/segment_layout.h). One reader per segment: the sidecar's
// drain thread.
//
//   AuditRingReader ring(seg);
//   ring.poll(now, 4096, [&](std::span<const shm::Word> record) { ... });
//
// Each record is copied out of shared memory before anyone looks at it; its
// span is zeroed and the head moves past it as it is read (kOnRead) or when
// the caller says it is safe on disk (kExplicit, release()). A record whose
// producer is still writing is waited for; it is skipped only once the
// process that claimed it is proven dead and `skip_after_ns` has passed.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "segment.h"
#include "segment_layout.h"

namespace sluice {

struct AuditRingStats {
  std::uint64_t drained = 0;     // event records delivered
  std::uint64_t skipped = 0;     // records of producers that died mid-write
  std::uint64_t corrupt = 0;     // spans dropped because their header made no sense
  std::uint64_t high_water = 0;  // the most bytes seen waiting
  bool blocked = false;          // the last poll stopped at a record still being written
};

class AuditRingReader {
 public:
  using OnRecord = std::function<void(std::span<const shm::Word>)>;

  // kOnRead: a record's span is zeroed and head moves past it as it is read.
  // kExplicit: head moves only on release(), so what was read stays claimed
  // (and survives this process) until the caller has it on disk.
  enum class Release { kOnRead, kExplicit };

  explicit AuditRingReader(const SegmentMap& seg, std::uint64_t skip_after_ns = 100'000'000,
                           Release release = Release::kOnRead);

  // Delivers up to `max_records` records in ring order to `on_record` (a
  // private copy, valid during the call; its length is at least the fixed
  // part and at most kAuditMaxRecordBytes, nothing else is checked). Returns
  // how many were delivered. `now_ns` is the monotonic clock.
  std::size_t poll(std::uint64_t now_ns, std::size_t max_records, const OnRecord& on_record);

  // The ring position reading has reached; inside on_record, the position
  // just past the record being delivered.
  std::uint64_t read_position() const { return read_; }
  // kExplicit: zeroes what was read up to `up_to` (at most read_position())
  // and moves head there, giving the space back to producers.
  void release(std::uint64_t up_to);
  // Before the first poll: reading starts at `position` (the end of the last
  // record already on disk) rather than at head, which moves there. False,
  // and nothing changes, if `position` is not between head and tail.
  bool resume_at(std::uint64_t position);

  const AuditRingStats& stats() const { return stats_; }

 private:
  // The records at `head` is unpublished: skips its span if every process
  // claiming it is dead. Returns the new head (unchanged when waiting).
  std::uint64_t skip_dead_claim(std::uint64_t head, std::uint64_t tail);
  // Whether registration `client` (index + 1) is the actor of a SETTLING slot.
  bool settling(std::uint64_t client) const;
  void zero(std::uint64_t from, std::uint64_t to);
  // Reading moves on from `from` to `to`; kOnRead also zeroes it and moves head.
  void pass(std::uint64_t from, std::uint64_t to);

  const SegmentMap* seg_;
  std::uint64_t skip_after_ns_;
  Release release_;
  bool started_ = false;
  std::uint64_t read_ = 0;       // the read position (ring.head when started)
  std::uint64_t tail_seen_ = 0;  // the ring's tail when last read
  std::uint64_t blocked_at_ = ~std::uint64_t{0};
  std::uint64_t blocked_since_ns_ = 0;
  std::vector<shm::Word> copy_;
  AuditRingStats stats_;
};

}  // namespace sluice
