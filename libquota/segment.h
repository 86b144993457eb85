// A mapped Sluice segment, validated: the header's magic, version, ready
// word and every region bound were checked against the mapping's size
// before any accessor below can be called.
//
// The sidecar creates segments (create / reopen); clients and tools attach.
// A SegmentMap owns its mapping; pointers from it live as long as it does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "segment_layout.h"
#include "sluice/status.h"

namespace sluice {

struct SegmentSizes {
  std::uint64_t max_keys = 65536;
  std::uint64_t max_reservations = 16384;
  std::uint64_t audit_ring_bytes = 16ull << 20;
};

class SegmentMap {
 public:
  enum class Access { kReadWrite, kReadOnly };
  // Clients and tools: maps an existing, ready segment. Tools that only look
  // (sluice status, keys, limits) map it read-only: they need only read
  // permission and cannot write a shared word by mistake. Permission denied
  // names the segment's group to join.
  static Result<SegmentMap> attach(const std::string& name, Access access = Access::kReadWrite);
  // Sidecar: creates a new segment (fails if one exists), mode exactly 0660
  // whatever the umask; when `group` is not empty the segment is given to
  // that group (an error naming the fix if it does not exist or sluiced may
  // not use it). Keys are hashed with `hash_seed` (hosts sharing a store
  // share it); 0 picks a random one.
  static Result<SegmentMap> create(const std::string& name, const SegmentSizes& sizes,
                                   const std::string& group, std::uint64_t hash_seed = 0);
  // A random, non-zero hash seed.
  static std::uint64_t random_seed();
  // Sidecar: reopens an existing segment if it has this layout and sizes,
  // and sets its mode (0660) and group as create does.
  static Result<SegmentMap> reopen(const std::string& name, const SegmentSizes& sizes,
                                   const std::string& group = "");
  static bool exists(const std::string& name);
  static Status remove(const std::string& name);

  SegmentMap();  // maps nothing; assign the result of attach / create
  SegmentMap(SegmentMap&&) noexcept;
  SegmentMap& operator=(SegmentMap&&) noexcept;
  ~SegmentMap();

  shm::SegmentHeader& header() const { return *header_; }
  // Slot i & 1, where the header said at attach (a client may rewrite the header since).
  shm::CompiledPolicy& policy_slot(int i) const { return *policy_[i & 1]; }
  shm::KeySlot* keys() const { return keys_; }
  std::uint64_t key_capacity() const { return key_capacity_; }
  shm::ReservationSlot* reservations() const { return reservations_; }
  std::uint64_t reservation_count() const { return reservation_count_; }
  shm::ClientSlot* clients() const { return clients_; }
  std::uint64_t client_count() const { return client_count_; }
  shm::ModelCallStats* model_stats() const { return model_stats_; }
  std::uint64_t model_stats_count() const { return model_stats_count_; }
  shm::AuditRingControl& audit_control() const { return *audit_control_; }
  // The ring's bytes as words; capacity in bytes (a power of two).
  shm::Word* audit_ring() const { return audit_ring_; }
  std::uint64_t audit_capacity() const { return audit_capacity_; }
  std::uint64_t size() const { return size_; }
  const std::string& name() const { return name_; }

  // Bytes a segment with these sizes takes.
  static std::uint64_t bytes_for(const SegmentSizes& sizes);
  // Key-table slots for max_keys keys (load factor at most 0.8).
  static std::uint64_t key_capacity_for(std::uint64_t max_keys);

 private:
  struct Mapping;
  Status bind(bool require_ready);

  std::unique_ptr<Mapping> mapping_;
  std::string name_;
  std::uint64_t size_ = 0;
  shm::SegmentHeader* header_ = nullptr;
  shm::KeySlot* keys_ = nullptr;
  std::uint64_t key_capacity_ = 0;
  shm::ReservationSlot* reservations_ = nullptr;
  std::uint64_t reservation_count_ = 0;
  shm::ClientSlot* clients_ = nullptr;
  std::uint64_t client_count_ = 0;
  shm::ModelCallStats* model_stats_ = nullptr;
  std::uint64_t model_stats_count_ = 0;
  shm::AuditRingControl* audit_control_ = nullptr;
  shm::Word* audit_ring_ = nullptr;
  std::uint64_t audit_capacity_ = 0;
  shm::CompiledPolicy* policy_[2] = {nullptr, nullptr};
};

}  // namespace sluice
