// Test support: a policy written to a temporary file, a segment with a
// unique name, and an in-process Sidecar over it. Removes the segment and
// its lock on destruction.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "segment.h"
#include "sidecar.h"
#include "sluice/quota.h"

namespace sluice::testing {

inline std::string unique_segment(const std::string& tag) {
  static int counter = 0;
  return "sluice-test-" + tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

// Where a test segment's audit files go unless its policy says otherwise.
inline std::string test_audit_dir(const std::string& segment) {
  return "/tmp/" + segment + "-audit";
}

// Where a test segment's store database goes unless its policy says otherwise.
inline std::string test_store_path(const std::string& segment) {
  return "/tmp/" + segment + "-store.db";
}

// Removes a test store database and SQLite's files beside it.
inline void remove_test_store(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    std::remove((path + suffix).c_str());
  }
}

// Writes `yaml_body` (limits, models, ...) under a segment block naming
// `segment`, with an audit block for test_audit_dir() and a store block for
// test_store_path() if the body has none.
inline std::string write_policy(const std::string& segment, const std::string& yaml_body,
                                const std::string& segment_extra = "") {
  std::string path = "/tmp/" + segment + ".yaml";
  std::ofstream out(path);
  out << "segment:\n  name: " << segment << "\n" << segment_extra << yaml_body;
  auto has = [&](const std::string& section) {
    return yaml_body.rfind(section + ":", 0) == 0 ||
           yaml_body.find("\n" + section + ":") != std::string::npos;
  };
  if (!has("audit")) {
    out << "\naudit:\n  dir: " << test_audit_dir(segment) << "\n";
  }
  if (!has("store")) {
    out << "\nstore:\n  path: " << test_store_path(segment) << "\n";
  }
  return path;
}

// The sidecar runs without an audit drain or a store unless `options` asks
// for them.
inline SidecarOptions no_audit() {
  SidecarOptions o;
  o.audit = SidecarOptions::Audit::kOff;
  o.sync = SidecarOptions::Sync::kOff;
  return o;
}

class SidecarHarness {
 public:
  SidecarHarness(const std::string& tag, const std::string& yaml_body,
                 const std::string& segment_extra = "", SidecarOptions options = no_audit())
      : segment_(unique_segment(tag)),
        path_(write_policy(segment_, yaml_body, segment_extra)),
        options_(std::move(options)) {
    start();
  }
  ~SidecarHarness() {
    sidecar_.reset();
    (void)SegmentMap::remove(segment_);
    std::remove(sidecar_lock_path(segment_).c_str());
    std::remove(path_.c_str());
    std::filesystem::remove_all(test_audit_dir(segment_));
    remove_test_store(test_store_path(segment_));
  }

  void start() {
    Result<Sidecar> s = Sidecar::start(path_, options_);
    ASSERT_TRUE(s.ok()) << s.status().message();
    sidecar_.emplace(std::move(s.value()));
  }
  void stop() {
    if (sidecar_) sidecar_->stop();
    sidecar_.reset();
  }
  // Replaces the policy file (same segment block) and reloads it.
  Status rewrite(const std::string& yaml_body, const std::string& segment_extra = "") {
    write_policy(segment_, yaml_body, segment_extra);
    return sidecar_->reload();
  }

  Sidecar& sidecar() { return *sidecar_; }
  const SegmentMap& seg() { return sidecar_->segment(); }
  const std::string& segment() const { return segment_; }
  const std::string& policy_path() const { return path_; }

  Client attach() {
    Result<Client> c = Client::attach(segment_);
    EXPECT_TRUE(c.ok()) << c.status().message();
    return std::move(c.value());
  }

  // The cell value (GCRA TAT or units used) of limit `limit`'s key whose
  // matched values are `label` ("pricing|quote-agent").
  std::uint64_t cell_value(const std::string& limit, const std::string& label) {
    const SegmentMap& m = seg();
    const shm::Word gen = shm::load_acquire(m.header().policy_generation);
    const shm::CompiledPolicy& p = m.policy_slot(static_cast<int>(gen & 1));
    shm::Word identity = 0;
    for (shm::Word i = 0; i < shm::load_relaxed(p.limit_count); ++i) {
      char name[sizeof(p.limits[i].name)];
      const std::size_t n = shm::load_text(p.limits[i].name, name);
      if (std::string(name, n) == limit) identity = shm::load_relaxed(p.limits[i].identity);
    }
    for (std::uint64_t i = 0; i < m.key_capacity(); ++i) {
      const shm::KeySlot& k = m.keys()[i];
      if (shm::load_relaxed(k.hash) == 0 || shm::load_relaxed(k.identity) != identity) continue;
      char text[sizeof(k.label)];
      const std::size_t n = shm::load_text(k.label, text);
      if (std::string(text, n) == label) return shm::load_relaxed(k.value);
    }
    ADD_FAILURE() << "no key of " << limit << " labelled " << label;
    return 0;
  }

 private:
  std::string segment_;
  std::string path_;
  SidecarOptions options_;
  std::optional<Sidecar> sidecar_;
};

}  // namespace sluice::testing
