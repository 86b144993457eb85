// Reclaiming the work of clients that are gone: the sidecar's half of the
// reservation protocol (see the ReservationSlot comment in segment_layout.h).
//
// A slot is touched only when its holder is proven dead (pid gone or reused,
// or the Client detached) or its hold deadline passed; a slow client is never
// touched. Half-made reservations are refunded, admitted ones are settled at
// their estimate (abandoned), interrupted commits are finished, interrupted
// extends are undone. Then dead registrations are folded into the header's
// totals and freed. Only one reclaimer may run per segment (the sidecar).
#pragma once

#include <cstdint>
#include <vector>

#include "segment.h"
#include "segment_layout.h"

namespace sluice {

struct ReclaimStats {
  std::uint64_t abandoned = 0;         // admitted, never settled: charged at the estimate
  std::uint64_t refunded_partial = 0;  // died while reserving: debits given back
  std::uint64_t finished = 0;          // died while committing / cancelling: completed
  std::uint64_t extends_undone = 0;    // died while extending: extra debit given back
  std::uint64_t clients_freed = 0;
};

// Appends one audit record (event abandon) per reservation it settled to
// `settled` when given; `now_unix_ns` stamps them.
ReclaimStats reclaim(const SegmentMap& seg, std::uint64_t now_monotonic_ns,
                     std::vector<shm::AuditRecord>* settled = nullptr,
                     std::uint64_t now_unix_ns = 0);

}  // namespace sluice
