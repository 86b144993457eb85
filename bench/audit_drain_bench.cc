// The sidecar's audit drain: how many records a second go from the ring to
// disk. Each iteration fills the ring with reserve + commit records of a
// 3-attribute call (no drain running, untimed), then times the pipeline
// copying them out, encoding them as FlatBuffers, framing them and writing
// them through io_uring, up to an fdatasync of the last one.
//
//   audit_drain   records_per_s (to disk, synced), drain_cpu_records_per_s (copied,
//                 encoded and handed to io_uring, not waiting for the disk),
//                 bytes_per_record (on disk, frame included)
#include <benchmark/benchmark.h>

#include <chrono>

#include "bench_segment.h"
#include "clock.h"
#include "sluice/quota.h"

namespace sluice::bench {
namespace {

// 800k records, about 110 MiB of a 128 MiB ring: long enough that the final
// fdatasync is a small part of the time.
constexpr std::size_t kCallsPerFill = 400'000;
constexpr std::uint64_t kRingBytes = 128ull << 20;

void audit_drain(benchmark::State& state) {
  std::string error;
  std::unique_ptr<BenchSegment> seg =
      BenchSegment::start("drain", 0, &error, BenchAudit::kManual, kRingBytes);
  if (!seg) {
    state.SkipWithError(error.c_str());
    return;
  }
  Result<Client> client = Client::attach(seg->name());
  if (!client.ok()) {
    state.SkipWithError(client.status().message().c_str());
    return;
  }
  AuditPipeline& audit = *seg->sidecar().audit();
  const Attribute attrs[] = {{"team", "alpha"}, {"feature", "chat"}, {"model", "gpt-4o"}};
  const CallRequest call{attrs, 1000, 500};
  double seconds = 0, pump_seconds = 0, records = 0;
  bool ok = true;
  for (auto _ : state) {
    for (std::size_t i = 0; i < kCallsPerFill; ++i) {
      const Decision d = client->reserve_raw(call);
      ok &= d.admitted && client->commit(d.reservation_id, 900, 300).ok();
    }
    const std::uint64_t t0 = monotonic_ns();
    std::size_t n = 0, got = 0;
    while ((got = audit.pump(monotonic_ns(), 1 << 16)) != 0) n += got;
    pump_seconds += static_cast<double>(monotonic_ns() - t0) / 1e9;
    ok &= audit.flush(/*sync=*/true).ok();
    seconds += static_cast<double>(monotonic_ns() - t0) / 1e9;
    records += static_cast<double>(n);
    ok &= n == 2 * kCallsPerFill;
  }
  if (!ok) state.SkipWithError("a call was refused, a record lost or the flush failed");
  const AuditWriterStats w = audit.writer_stats();
  state.counters["records_per_s"] = records / seconds;
  // Without waiting for the disk: what the drain thread's CPU alone allows.
  state.counters["drain_cpu_records_per_s"] = records / pump_seconds;
  state.counters["bytes_per_record"] =
      static_cast<double>(w.bytes_on_disk) / static_cast<double>(w.frames_written);
  state.counters["io_uring"] = w.io_uring ? 1 : 0;
}
BENCHMARK(audit_drain)->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sluice::bench
