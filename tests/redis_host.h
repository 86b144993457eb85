// Test support: a "host" for the tests that run several sluiced against one
// redis-server: its own segment, a policy syncing to the store every 50 ms
// with audit off and one model `m`, a log, and the sluiced process.
#pragma once

#include <signal.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "child_process.h"
#include "segment.h"
#include "sidecar.h"
#include "sluice_fixture.h"
#include "test_support.h"

namespace sluice::testing {

struct RedisHost {
  std::string id;  // the policy's store.host_id
  std::string segment;
  std::string policy;
  std::string log;
  pid_t pid = -1;
};

// Writes the policy of host `id` on a fresh segment: the store at
// `redis_url`, `lease_ms`, model `m` at `prices` ("input_usd_per_mtok: 1.00,
// output_usd_per_mtok: 1.00"), then `limits`.
inline RedisHost make_redis_host(const std::string& redis_url, const std::string& id,
                                 const std::string& limits, std::uint64_t lease_ms,
                                 const std::string& prices) {
  RedisHost h;
  h.id = id;
  h.segment = unique_segment("redis-" + id);
  const std::string body = "store:\n  kind: redis\n  url: " + redis_url + "\n  host_id: " + id +
                           "\n  sync_interval_ms: 50\n  lease_ms: " + std::to_string(lease_ms) +
                           "\n  timeout_ms: 200\naudit:\n  dir: " + test_audit_dir(h.segment) +
                           "\n  enabled: false\nmodels:\n  m: { " + prices + " }\n" + limits;
  h.policy = write_policy(h.segment, body);
  h.log = "/tmp/" + h.segment + ".log";
  return h;
}

// Starts the host's sluiced (20 ms ticks); its output goes to h.log.
inline void start_sluiced(RedisHost& h) {
  h.pid = spawn_child(
      {build_root() + "/sidecar/sluiced", "--foreground", "--config", h.policy, "--tick-ms", "20"},
      h.log, h.log);
}

// Kills the host's sluiced if it runs and removes everything it left.
inline void remove_redis_host(RedisHost& h) {
  if (h.pid > 0) {
    ::kill(h.pid, SIGKILL);
    ::waitpid(h.pid, nullptr, 0);
    h.pid = -1;
  }
  (void)SegmentMap::remove(h.segment);
  std::remove(sidecar_lock_path(h.segment).c_str());
  std::remove(h.policy.c_str());
  std::remove(h.log.c_str());
  std::filesystem::remove_all(test_audit_dir(h.segment));
}

}  // namespace sluice::testing
