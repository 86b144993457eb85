// A segment of the bench's own: bench/policy.yaml rewritten with a segment
// name unique to this process (sluice-bench-<pid>-<tag>), audit files in
// /tmp/<that name>-audit and, optionally, another max_keys, served by an
// in-process Sidecar. The destructor removes the segment, the sidecar's lock
// file, the audit files and the rewritten policy; a SIGINT / SIGTERM / SIGHUP
// removes all but the audit files, through install_cleanup_handlers().
//
//   std::unique_ptr<BenchSegment> seg = BenchSegment::start("main", 0, &error);
//   auto client = sluice::Client::attach(seg->name());
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sidecar.h"

namespace sluice::bench {

enum class BenchAudit {
  kOn,      // clients write records; the sidecar's thread drains them to disk
  kOff,     // audit.enabled: false
  kManual,  // clients write records; nothing drains until sidecar().audit()->pump()
};

class BenchSegment {
 public:
  // max_keys 0 keeps the policy's. nullptr on failure, with `error` set.
  static std::unique_ptr<BenchSegment> start(const std::string& tag, std::uint64_t max_keys,
                                             std::string* error, BenchAudit audit = BenchAudit::kOn,
                                             std::uint64_t audit_ring_bytes = 0);
  ~BenchSegment();
  BenchSegment(const BenchSegment&) = delete;
  BenchSegment& operator=(const BenchSegment&) = delete;

  const std::string& name() const { return name_; }
  Sidecar& sidecar() { return sidecar_; }

 private:
  BenchSegment(std::string name, std::string policy_path, Sidecar sidecar)
      : name_(std::move(name)),
        policy_path_(std::move(policy_path)),
        sidecar_(std::move(sidecar)) {}

  std::string name_;
  std::string policy_path_;
  Sidecar sidecar_;
};

// The segments the engine benchmarks share (audit on, audit off), created on
// first use; nullptr (with `error` set) if one cannot be created.
BenchSegment* shared_segment(std::string* error, bool audit = true);
// Waits until the sidecar has drained the audit ring of `seg` (so that a
// timed run never measures the path of a full ring).
void wait_for_audit_drain(BenchSegment& seg);
// Removes the shared segments; call once the benchmarks have run.
void release_shared_segment();

// Removes every live BenchSegment's files on SIGINT, SIGTERM and SIGHUP.
void install_cleanup_handlers();

}  // namespace sluice::bench
