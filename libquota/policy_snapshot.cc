#include "policy_snapshot.h"

namespace sluice {

using namespace shm;  // NOLINT(google-build-using-namespace)

SnapshotResult snapshot_policy(const SegmentMap& seg, Word generation, CompiledPolicy& out) {
  if (generation == 0) return SnapshotResult::kNoPolicy;
  const CompiledPolicy& src = seg.policy_slot(static_cast<int>(generation & 1));
  const Word before = load_acquire(src.write_seq);
  if ((before & 1) != 0) return SnapshotResult::kBusy;
  const Word* from = reinterpret_cast<const Word*>(&src);
  Word* to = reinterpret_cast<Word*>(&out);
  // Acquire loads keep the closing read of write_seq after every data read.
  for (std::size_t i = 0; i < sizeof(CompiledPolicy) / sizeof(Word); ++i) {
    to[i] = load_acquire(from[i]);
  }
  if (load_relaxed(src.write_seq) != before || out.generation != generation) {
    return SnapshotResult::kBusy;
  }
  return policy_valid(out) ? SnapshotResult::kOk : SnapshotResult::kInvalid;
}

bool policy_valid(const CompiledPolicy& p) {
  if (p.limit_count > kMaxLimits || p.model_count > kMaxModels) return false;
  for (Word i = 0; i < p.limit_count; ++i) {
    const CompiledLimit& l = p.limits[i];
    if (l.term_count > kMaxMatchTerms || l.allowed_count > kMaxAllowedModels) return false;
    if (l.kind < kKindRate || l.kind > kKindModelAccess) return false;
    if (l.kind == kKindRate && (l.emission_ns == 0 || l.capacity_ns < l.emission_ns)) return false;
    if (l.kind == kKindBudget && (l.window_count < 2 || l.window_count > kWindowTable)) {
      return false;
    }
    if (l.kind != kKindModelAccess &&
        (l.measure < kMeasureRequests || l.measure > kMeasureNanoUsd)) {
      return false;
    }
  }
  return true;
}

}  // namespace sluice
