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
  shm::Word* const counts[] = {h.limit_admitted_departed, h.limit_rejected_departed,
                               h.limit_shadow_rejected_departed, h.limit_committed_departed,
                               h.limit_failed_departed};
  constexpr int kCounts = sizeof counts / sizeof counts[0];
  shm::Word moved[kCounts][kMaxLimits] = {};
  auto old = std::make_unique<shm::CompiledPolicy>();
  const bool have_old = shm::load_relaxed(h.limit_departed_generation) == old_generation &&
                        snapshot_policy(seg, old_generation, *old) == SnapshotResult::kOk;
  const shm::Word n_next = std::min<shm::Word>(shm::load_relaxed(next.limit_count), kMaxLimits);
  for (shm::Word n = 0; have_old && n < n_next; ++n) {
    for (shm::Word o = 0; o < old->limit_count; ++o) {
      if (old->limits[o].identity != shm::load_relaxed(next.limits[n].identity)) continue;
      for (int c = 0; c < kCounts; ++c) moved[c][n] = shm::load_relaxed(counts[c][o]);
    }
  }
  for (int c = 0; c < kCounts; ++c) {
    for (int i = 0; i < kMaxLimits; ++i) shm::store_relaxed(counts[c][i], moved[c][i]);
  }
  shm::store_release(h.limit_departed_generation, old_generation + 1);
}

// Gives every priced model of `slot` a call stats row: the one a model of
// that name had before, else the next unused one (rows are never given
// back, so a model keeps its counts across reloads); row 0 when all are taken.
void assign_stats_rows(const SegmentMap& seg, shm::CompiledPolicy& slot) {
  shm::ModelCallStats* rows = seg.model_stats();
  const shm::Word n_rows = seg.model_stats_count();
  const shm::Word n_models =
      std::min<shm::Word>(shm::load_relaxed(slot.model_count), shm::kMaxModels);
  for (shm::Word m = 0; m < n_models; ++m) {
    shm::CompiledModel& model = slot.models[m];
    const shm::Word hash = shm::load_relaxed(model.name_hash);
    shm::Word row = 0;
    for (shm::Word r = 1; r < n_rows && hash != 0; ++r) {
      const shm::Word taken = shm::load_acquire(rows[r].name_hash);
      if (taken == hash) {
        row = r;
        break;
      }
      if (taken == 0) {
        for (int w = 0; w < shm::kNameWords; ++w) {
          shm::store_relaxed(rows[r].name[w], shm::load_relaxed(model.name[w]));
        }
        shm::store_release(rows[r].name_hash, hash);
        row = r;
        break;
      }
    }
    shm::store_relaxed(model.stats_row, row);
  }
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
  if (s.ok()) assign_stats_rows(seg, slot);
  shm::store_release(slot.write_seq, (shm::load_relaxed(slot.write_seq) | 1) + 1);  // even: done
  if (!s.ok()) return s;
  shm::store_release(h.policy_generation, generation);
  move_departed_counts(seg, generation - 1, slot);
  return generation;
}

}  // namespace sluice
