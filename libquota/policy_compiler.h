// Compiles a validated Policy into the fixed-size block clients read from
// the segment: match terms and model names become hashes under the
// segment's seed, rates become GCRA emission intervals, budgets get a table
// of upcoming calendar windows starting with the one containing `now_unix`.
#pragma once

#include <cstdint>

#include "segment_layout.h"
#include "sluice/policy.h"
#include "sluice/status.h"

namespace sluice {

// Stable identity of a limit's cells: name, kind, measure, period, time zone
// and match. Amount, burst and shadow are not part of it, so changing them
// on reload keeps the counters (a raised budget keeps what was spent).
std::uint64_t limit_identity(const LimitSpec& limit);

// Writes `out` word by word. Fails only if the policy exceeds the layout's
// fixed capacities or a time zone cannot be resolved.
Status compile_policy(const Policy& policy, std::uint64_t seed, std::int64_t now_unix,
                      shm::Word generation, shm::CompiledPolicy& out);

// Whether every budget's window table holds `now_unix` with room to spare:
// at or after its first window and before its middle entry (index
// kWindowTable / 2). When it does not (wall time moved on, or was stepped
// back before the first window), the sidecar republishes the policy with
// tables that start at the window holding now, long before any runs out.
bool window_tables_hold(const shm::CompiledPolicy& compiled, std::int64_t now_unix);

}  // namespace sluice
