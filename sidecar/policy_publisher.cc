#include "policy_publisher.h"

#include <algorithm>
#include <memory>

#include "policy_compiler.h"
#include "policy_snapshot.h"

namespace sluice {

namespace {

// The per-limit counts folded in from departed clients are indexed by policy
// position: move them to the positions of the new policy, by limit identity.
void move_departed_counts(const SegmentMap& seg, shm::Word old_generation,
                          const shm::CompiledPolicy& next) {
  using shm::kMaxLimits;
  shm::SegmentHeader& h = seg.header();
  shm::Word admitted[kMaxLimits] = {}, rejected[kMaxLimits] = {}, shadow[kMaxLimits] = {};
  auto old = std::make_unique<shm::CompiledPolicy>();
  const bool have_old = shm::load_relaxed(h.limit_departed_generation) == old_generation &&
                        snapshot_policy(seg, old_generation, *old) == SnapshotResult::kOk;
  const shm::Word n_next = std::min<shm::Word>(shm::load_relaxed(next.limit_count), kMaxLimits);
  for (shm::Word n = 0; have_old && n < n_next; ++n) {
    for (shm::Word o = 0; o < old->limit_count; ++o) {
      if (old->limits[o].identity != shm::load_relaxed(next.limits[n].identity)) continue;
      admitted[n] = shm::load_relaxed(h.limit_admitted_departed[o]);
      rejected[n] = shm::load_relaxed(h.limit_rejected_departed[o]);
      shadow[n] = shm::load_relaxed(h.limit_shadow_rejected_departed[o]);
    }
  }
  for (int i = 0; i < kMaxLimits; ++i) {
    shm::store_relaxed(h.limit_admitted_departed[i], admitted[i]);
    shm::store_relaxed(h.limit_rejected_departed[i], rejected[i]);
    shm::store_relaxed(h.limit_shadow_rejected_departed[i], shadow[i]);
  }
  shm::store_release(h.limit_departed_generation, old_generation + 1);
}

}  // namespace

Result<std::uint64_t> publish_policy(const SegmentMap& seg, const Policy& policy,
                                     std::int64_t now_unix) {
  shm::SegmentHeader& h = seg.header();
  const shm::Word generation = shm::load_acquire(h.policy_generation) + 1;
  shm::CompiledPolicy& slot = seg.policy_slot(static_cast<int>(generation & 1));
  // Odd while writing. The read-modify-write orders every store below after it.
  const shm::Word seq = shm::load_relaxed(slot.write_seq);
  shm::fetch_add(slot.write_seq, (seq & 1) ? 2 : 1);
  const Status s =
      compile_policy(policy, shm::load_relaxed(h.hash_seed), now_unix, generation, slot);
  shm::store_release(slot.write_seq, (shm::load_relaxed(slot.write_seq) | 1) + 1);  // even: done
  if (!s.ok()) return s;
  shm::store_release(h.policy_generation, generation);
  move_departed_counts(seg, generation - 1, slot);
  return generation;
}

}  // namespace sluice
