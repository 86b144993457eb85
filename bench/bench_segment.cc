#include "bench_segment.h"

#include <signal.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "segment.h"

#ifndef SLUICE_BENCH_POLICY
#define SLUICE_BENCH_POLICY "bench/policy.yaml"
#endif

namespace sluice::bench {
namespace {

// Paths to unlink from a signal handler: fixed buffers, no allocation.
struct Leftover {
  std::atomic<bool> used{false};
  char paths[3][256] = {};
};
Leftover g_leftovers[4];

Leftover* remember(const std::string& a, const std::string& b, const std::string& c) {
  for (Leftover& l : g_leftovers) {
    bool expected = false;
    if (!l.used.compare_exchange_strong(expected, true)) continue;
    const std::string* all[3] = {&a, &b, &c};
    for (int i = 0; i < 3; ++i) std::snprintf(l.paths[i], sizeof l.paths[i], "%s", all[i]->c_str());
    return &l;
  }
  return nullptr;
}

void forget(const std::string& segment_path) {
  for (Leftover& l : g_leftovers) {
    if (l.used.load() && segment_path == l.paths[0]) l.used.store(false);
  }
}

void on_signal(int sig) {
  for (Leftover& l : g_leftovers) {
    if (!l.used.load()) continue;
    for (const char* p : l.paths) {
      if (p[0] != '\0') ::unlink(p);
    }
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

std::string policy_template() {
  const char* env = std::getenv("SLUICE_BENCH_POLICY");
  return env != nullptr && env[0] != '\0' ? env : SLUICE_BENCH_POLICY;
}

std::unique_ptr<BenchSegment> g_shared;
std::unique_ptr<BenchSegment> g_shared_no_audit;

std::string audit_dir_of(const std::string& segment) { return "/tmp/" + segment + "-audit"; }

}  // namespace

std::unique_ptr<BenchSegment> BenchSegment::start(const std::string& tag, std::uint64_t max_keys,
                                                  std::string* error, BenchAudit audit,
                                                  std::uint64_t audit_ring_bytes) {
  const std::string name = "sluice-bench-" + std::to_string(::getpid()) + "-" + tag;
  const std::string policy_path = "/tmp/" + name + ".yaml";
  const std::string from = policy_template();
  try {
    YAML::Node policy = YAML::LoadFile(from);
    policy["segment"]["name"] = name;
    if (max_keys != 0) policy["segment"]["max_keys"] = max_keys;
    policy["audit"]["dir"] = audit_dir_of(name);
    if (audit_ring_bytes != 0) policy["segment"]["audit_ring_bytes"] = audit_ring_bytes;
    if (audit == BenchAudit::kOff) policy["audit"]["enabled"] = false;
    YAML::Emitter out;
    out << policy;
    std::ofstream file(policy_path, std::ios::trunc);
    file << out.c_str() << "\n";
    if (!file.flush()) {
      *error = "cannot write " + policy_path;
      return nullptr;
    }
  } catch (const YAML::Exception& e) {
    *error = "cannot read the bench policy " + from + ": " + e.what() +
             "; run from the repository root or set SLUICE_BENCH_POLICY";
    return nullptr;
  }
  remember("/dev/shm/" + name, sidecar_lock_path(name), policy_path);
  SidecarOptions options;
  if (audit == BenchAudit::kManual) options.audit = SidecarOptions::Audit::kManual;
  options.sync = SidecarOptions::Sync::kOff;  // the engine figures need no store
  Result<Sidecar> sidecar = Sidecar::start(policy_path, options);
  if (!sidecar.ok()) {
    *error = sidecar.status().message();
    (void)SegmentMap::remove(name);
    ::unlink(sidecar_lock_path(name).c_str());
    ::unlink(policy_path.c_str());
    forget("/dev/shm/" + name);
    return nullptr;
  }
  return std::unique_ptr<BenchSegment>(
      new BenchSegment(name, policy_path, std::move(sidecar.value())));
}

BenchSegment::~BenchSegment() {
  sidecar_.stop();
  std::error_code ec;
  std::filesystem::remove_all(audit_dir_of(name_), ec);
  (void)SegmentMap::remove(name_);
  ::unlink(sidecar_lock_path(name_).c_str());
  ::unlink(policy_path_.c_str());
  forget("/dev/shm/" + name_);
}

BenchSegment* shared_segment(std::string* error, bool audit) {
  std::unique_ptr<BenchSegment>& seg = audit ? g_shared : g_shared_no_audit;
  if (!seg) {
    seg = BenchSegment::start(audit ? "main" : "noaudit", 0, error,
                              audit ? BenchAudit::kOn : BenchAudit::kOff);
  }
  return seg.get();
}

void wait_for_audit_drain(BenchSegment& seg) {
  const shm::AuditRingControl& ring = seg.sidecar().segment().audit_control();
  while (shm::load_acquire(ring.head) != shm::load_acquire(ring.tail)) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

void release_shared_segment() {
  g_shared.reset();
  g_shared_no_audit.reset();
}

void install_cleanup_handlers() {
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::signal(sig, on_signal);
}

}  // namespace sluice::bench
