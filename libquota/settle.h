// Cell arithmetic and the settlement of reservation slots, shared by the
// client hot path (engine.cc, where it is defined) and the sidecar's
// reclaimer (reclaim.cc). Everything read from a slot is bounds-checked.
#pragma once

#include <cstdint>

#include "segment.h"
#include "segment_layout.h"
#include "sluice/quota.h"

namespace sluice::detail {

inline constexpr std::uint64_t kMaxTokens = kMaxTokensPerCall;  // per call, per field

// A debt up to kPlainDebt is one fetch_add; a larger one (only absurd usage
// or prices make one) saturates the cell at kSaturatedCell rather than wrap
// it round. Far below 2^64, so plain debts landing on a saturated cell
// cannot wrap it either.
inline constexpr std::uint64_t kPlainDebt = std::uint64_t{1} << 48;
inline constexpr std::uint64_t kSaturatedCell = std::uint64_t{1} << 63;

struct Usage {
  std::uint64_t input = 0;
  std::uint64_t output = 0;
  bool cancelled = false;  // a cancelled call refunds its request too
};

// Nano-dollars for a call, rounded up.
std::uint64_t cost_nusd(std::uint64_t input, std::uint64_t output, std::uint64_t input_pusd,
                        std::uint64_t output_pusd);

// Units a cell of `measure` is charged for `usage` whose cost is `cost_nusd`
// (for rates, before multiplying by the emission interval).
std::uint64_t units_for(std::uint64_t measure, const Usage& usage, std::uint64_t cost_nusd);

// Moves every debited, not yet settled cell of `slot` from the estimate to
// `actual`, marking each in settled_mask. Returns the actual cost.
std::uint64_t settle_cells(const SegmentMap& seg, shm::ReservationSlot& slot, const Usage& actual);

// Gives back, on the cells in the slot's extend_mask (clearing each bit
// first), `extra_output` output tokens more than est_output: the part of an
// extend that did not complete.
void refund_extension(const SegmentMap& seg, shm::ReservationSlot& slot,
                      std::uint64_t extra_output);

// Zeroes the slot's bookkeeping, then frees it (state FREE, same seq).
void release_slot(shm::ReservationSlot& slot, std::uint64_t seq);

}  // namespace sluice::detail
