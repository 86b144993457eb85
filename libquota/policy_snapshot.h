// Reading the published policy out of a segment: a private copy of the
// current slot taken under the slot's seqlock, then checked so that every
// count and parameter a reader indexes or divides with is in range. Used by
// clients (engine.cc) and by tools (inspect.cc); never the hot path.
#pragma once

#include "segment.h"
#include "segment_layout.h"

namespace sluice {

enum class SnapshotResult { kOk, kNoPolicy, kBusy, kInvalid };

// Copies the policy of `generation` into `out`. kBusy: the sidecar was
// rewriting that slot; try again.
SnapshotResult snapshot_policy(const SegmentMap& seg, shm::Word generation,
                               shm::CompiledPolicy& out);

// The copy is internally consistent: counts within the layout's capacities,
// kinds and measures known, rates with a non-zero interval.
bool policy_valid(const shm::CompiledPolicy& p);

}  // namespace sluice
