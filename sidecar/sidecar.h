// sluiced's lifecycle on one segment: own it (one sidecar per segment, held
// by an flock), create or reopen it, publish the policy, then tick:
// heartbeat and clock calibration, reclaiming the work of dead clients,
// refreshing budget windows, reloading the policy on SIGHUP.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "reclaim.h"
#include "segment.h"
#include "sluice/policy.h"
#include "sluice/status.h"

namespace sluice {

class Sidecar {
 public:
  // Loads and validates the policy, takes the segment's lock, creates or
  // reopens the segment and publishes the policy. Errors are one line.
  static Result<Sidecar> start(const std::string& policy_path);

  Sidecar(Sidecar&&) noexcept;
  Sidecar& operator=(Sidecar&&) noexcept;
  ~Sidecar();

  // One tick: heartbeat, clock offset, reclaim, window refresh.
  void tick();
  // Re-reads the policy file; on error keeps the running policy.
  Status reload();
  // Marks the segment as having no live sidecar (counters stay).
  void stop();

  const SegmentMap& segment() const { return seg_; }
  const Policy& policy() const { return policy_; }
  bool reopened() const { return reopened_; }
  const ReclaimStats& reclaimed() const { return reclaimed_; }

 private:
  Sidecar() = default;
  Status publish();

  std::string policy_path_;
  Policy policy_;
  SegmentMap seg_;
  int lock_fd_ = -1;
  bool reopened_ = false;
  ReclaimStats reclaimed_;
};

// The lock file that makes one sidecar per segment.
std::string sidecar_lock_path(const std::string& segment_name);

}  // namespace sluice
