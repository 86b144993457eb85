// sluiced's lifecycle on one segment: own it (one sidecar per segment, held
// by an flock), create or reopen it, publish the policy, then tick:
// heartbeat and clock calibration, reclaiming the work of dead clients,
// refreshing budget windows, evaluating the policy's alerts, reloading the
// policy on SIGHUP; and, with a
// metrics block in the policy, serving Prometheus metrics on threads of
// their own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "audit_pipeline.h"
#include "metrics.h"
#include "metrics_server.h"
#include "reclaim.h"
#include "segment.h"
#include "sluice/policy.h"
#include "sluice/status.h"
#include "store_sync.h"
#include "telemetry_monitor.h"

namespace sluice {

struct SidecarOptions {
  enum class Audit {
    kThread,  // a thread drains the audit ring to the audit files (sluiced)
    kManual,  // the audit files are opened; audit()->pump() drains (tests)
    kOff,     // nothing drains the ring (tests of other things)
  };
  Audit audit = Audit::kThread;
  enum class Sync {
    kThread,  // a thread syncs with the central store every store.sync_interval_ms
    kManual,  // the store is opened and restored from; store_sync()->sync_once() syncs (tests)
    kOff,     // no store: local limits only, nothing restored (tests of other things)
  };
  Sync sync = Sync::kThread;
  enum class Telemetry {
    kThread,  // a thread samples the segment and evaluates the alerts every second (sluiced)
    kTick,    // tick() does, when a second has passed on wall_clock (tests)
  };
  Telemetry telemetry = Telemetry::kThread;
  std::function<void(const std::string&)> log = [](const std::string&) {};
  // Unix time in nanoseconds; empty: CLOCK_REALTIME. The wall clock the
  // sidecar publishes to clients (as an offset from the monotonic clock) and
  // computes budget windows from. Tests inject one to step it.
  std::function<std::uint64_t()> wall_clock;
};

class Sidecar {
 public:
  // Loads and validates the policy, takes the segment's lock, binds
  // metrics.listen, creates or reopens the segment, opens the audit files,
  // publishes the policy and starts serving metrics. Errors are one line.
  static Result<Sidecar> start(const std::string& policy_path, SidecarOptions options = {});

  Sidecar(Sidecar&&) noexcept;
  Sidecar& operator=(Sidecar&&) noexcept;
  ~Sidecar();

  // One tick: heartbeat, clock offset, window refresh, reclaim.
  void tick();
  // Re-reads the policy file; on error keeps the running policy.
  Status reload();
  // Stops serving metrics, drains the audit ring to disk and marks the
  // segment as having no live sidecar (counters stay).
  void stop();
  // The audit drain; nullptr with SidecarOptions::Audit::kOff.
  AuditPipeline* audit() const { return audit_.get(); }
  // The sync with the central store; nullptr with SidecarOptions::Sync::kOff.
  StoreSync* store_sync() const { return sync_.get(); }
  // The metrics endpoint; nullptr when the policy has no metrics block.
  const MetricsServer* metrics() const { return metrics_.get(); }
  // Burn rates and alerts, evaluated about once a second.
  const TelemetryMonitor& telemetry() const { return *telemetry_; }

  const SegmentMap& segment() const { return *seg_; }
  const Policy& policy() const { return policy_; }
  bool reopened() const { return reopened_; }
  const ReclaimStats& reclaimed() const { return reclaimed_; }

 private:
  Sidecar() = default;
  std::uint64_t wall_ns() const;
  Status publish();
  // Republishes the policy when a budget's window table no longer holds
  // `wall_ns` with room to spare (window_tables_hold).
  void refresh_windows(std::uint64_t wall_ns);

  std::string policy_path_;
  Policy policy_;
  std::unique_ptr<SegmentMap> seg_;  // owned here so that the audit drain can point at it
  int lock_fd_ = -1;
  bool reopened_ = false;
  ReclaimStats reclaimed_;
  std::function<void(const std::string&)> log_;
  std::function<std::uint64_t()> wall_clock_;  // empty: CLOCK_REALTIME
  std::unique_ptr<AuditTally> tally_;          // what the audit drain saw, for the metrics
  std::unique_ptr<AuditPipeline> audit_;
  std::unique_ptr<StoreSync> sync_;
  std::unique_ptr<MetricsServer> metrics_;
  std::unique_ptr<TelemetryMonitor> telemetry_;
  bool telemetry_by_tick_ = false;  // SidecarOptions::Telemetry::kTick
};

// The lock file that makes one sidecar per segment.
std::string sidecar_lock_path(const std::string& segment_name);

}  // namespace sluice
