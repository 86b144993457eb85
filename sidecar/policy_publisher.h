// Publishes a compiled policy into a segment: compile into the inactive
// slot under its seqlock, then move the header's generation to it (release).
// Clients pick the new generation up on their next call.
#pragma once

#include <cstdint>

#include "segment.h"
#include "sluice/policy.h"
#include "sluice/status.h"

namespace sluice {

// Returns the generation published.
Result<std::uint64_t> publish_policy(const SegmentMap& seg, const Policy& policy,
                                     std::int64_t now_unix);

}  // namespace sluice
