// A segment sized for one million keys: its bytes (default reservation
// slots, 16 MiB audit ring) and the time Client::attach takes on it once the
// sidecar has created it and its key table is resident.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <vector>

#include "bench_segment.h"
#include "latency.h"
#include "segment.h"
#include "sluice/quota.h"

namespace sluice::bench {
namespace {

constexpr std::uint64_t kKeys = 1'000'000;
constexpr int kAttaches = 21;

void segment_1m_keys(benchmark::State& state) {
  SegmentSizes sizes;
  sizes.max_keys = kKeys;
  sizes.audit_ring_bytes = 16ull << 20;
  const std::uint64_t bytes = SegmentMap::bytes_for(sizes);

  std::string error;
  std::unique_ptr<BenchSegment> seg = BenchSegment::start("1m", kKeys, &error);
  if (!seg) {
    state.SkipWithError(error.c_str());
    return;
  }
  const SegmentMap& map = seg->sidecar().segment();
  if (map.size() != bytes) {
    state.SkipWithError("the sidecar's segment is not bytes_for() the policy's sizes");
    return;
  }
  // Make the key table resident, as in a segment that has been in use: one
  // write of the (already zero) hash word per page.
  constexpr std::uint64_t kSlotsPerPage = 4096 / sizeof(shm::KeySlot);
  for (std::uint64_t i = 0; i < map.key_capacity(); i += kSlotsPerPage) {
    shm::store_relaxed(map.keys()[i].hash, 0);
  }

  std::vector<double> attach_us;
  bool ok = true;
  for (auto _ : state) {
    for (int i = 0; i < kAttaches; ++i) {
      const std::uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
      Result<Client> client = Client::attach(seg->name());
      const std::uint64_t t1 = clock_ns(CLOCK_MONOTONIC);
      ok &= client.ok();
      attach_us.push_back(static_cast<double>(t1 - t0) / 1e3);
    }
    seg->sidecar().tick();  // frees the registrations the clients left
  }
  if (!ok) state.SkipWithError("Client::attach failed on the 1M-key segment");
  std::sort(attach_us.begin(), attach_us.end());
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["mib"] = static_cast<double>(bytes) / (1 << 20);
  state.counters["key_capacity"] = static_cast<double>(map.key_capacity());
  state.counters["attach_median_us"] = attach_us[attach_us.size() / 2];
  state.counters["attach_min_us"] = attach_us.front();
  state.counters["attach_max_us"] = attach_us.back();
}
BENCHMARK(segment_1m_keys)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sluice::bench
