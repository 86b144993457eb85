// A segment of the bench's own: bench/policy.yaml rewritten with a segment
// name unique to this process (sluice-bench-<pid>-<tag>) and, optionally,
// another max_keys, served by an in-process Sidecar. The destructor removes
// the segment, the sidecar's lock file and the rewritten policy; so does a
// SIGINT / SIGTERM / SIGHUP, through install_cleanup_handlers().
//
//   std::unique_ptr<BenchSegment> seg = BenchSegment::start("main", 0, &error);
//   auto client = sluice::Client::attach(seg->name());
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sidecar.h"

namespace sluice::bench {

class BenchSegment {
 public:
  // max_keys 0 keeps the policy's. nullptr on failure, with `error` set.
  static std::unique_ptr<BenchSegment> start(const std::string& tag, std::uint64_t max_keys,
                                             std::string* error);
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

// The segment the engine benchmarks share, created on first use; nullptr
// (with `error` set) if it cannot be created.
BenchSegment* shared_segment(std::string* error);
// Removes the shared segment; call once the benchmarks have run.
void release_shared_segment();

// Removes every live BenchSegment's files on SIGINT, SIGTERM and SIGHUP.
void install_cleanup_handlers();

}  // namespace sluice::bench
