#include "policy_publisher.h"

#include <atomic>

#include "policy_compiler.h"

namespace sluice {

Result<std::uint64_t> publish_policy(const SegmentMap& seg, const Policy& policy,
                                     std::int64_t now_unix) {
  shm::SegmentHeader& h = seg.header();
  const shm::Word generation = shm::load_acquire(h.policy_generation) + 1;
  shm::CompiledPolicy& slot = seg.policy_slot(static_cast<int>(generation & 1));
  const shm::Word seq = shm::load_relaxed(slot.write_seq);
  shm::store_relaxed(slot.write_seq, (seq | 1) + ((seq & 1) ? 2 : 0));  // odd: writing
  std::atomic_thread_fence(std::memory_order_release);
  const Status s =
      compile_policy(policy, shm::load_relaxed(h.hash_seed), now_unix, generation, slot);
  shm::store_release(slot.write_seq, (shm::load_relaxed(slot.write_seq) | 1) + 1);  // even: done
  if (!s.ok()) return s;
  shm::store_release(h.policy_generation, generation);
  return generation;
}

}  // namespace sluice
