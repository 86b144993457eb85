// What writing the audit trail costs: AuditWriter appending 120-byte records
// (136-byte frames) into a temporary directory, io_uring versus pwrite +
// fdatasync side by side in the same run, fdatasync every 50 ms, 1 MiB
// batches, 64 MiB files (rotation and retention included).
//
// One iteration appends kRecords records, polling every 256 as the sidecar
// would between drains, then flush(sync) so that every record is on disk
// before the clock stops. Counters: frames/s and MB/s of frame bytes.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <array>
#include <filesystem>
#include <string>

#include "audit_writer.h"
#include "frame.h"

namespace sluice::bench {
namespace {

constexpr std::size_t kPayloadBytes = 120;
constexpr std::uint64_t kRecords = 500'000;

void audit_append_120b(benchmark::State& state, bool io_uring) {
  std::string dir = "/tmp/sluice-audit-bench-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) {
    state.SkipWithError("mkdtemp under /tmp failed");
    return;
  }
  {
    AuditWriterOptions o;
    o.dir = dir;
    o.fsync_interval_ms = 50;
    o.retain_files = 4;
    o.use_io_uring = io_uring;
    Result<AuditWriter> w = AuditWriter::open(o, {});
    if (!w.ok()) {
      state.SkipWithError(w.status().message().c_str());
      std::filesystem::remove_all(dir);
      return;
    }
    if (w->stats().io_uring != io_uring) {
      state.SkipWithError("io_uring is not available here");
      std::filesystem::remove_all(dir);
      return;
    }
    std::array<std::uint8_t, kPayloadBytes> payload{};
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(i * 7);
    std::uint64_t n = 0;
    for (auto _ : state) {
      for (std::uint64_t i = 0; i < kRecords; ++i, ++n) {
        payload[0] = static_cast<std::uint8_t>(n);
        if (!w->append(payload).ok()) {
          state.SkipWithError("append failed");
          break;
        }
        if ((n & 255) == 0) (void)w->poll();
      }
      if (Status s = w->flush(true); !s.ok()) state.SkipWithError(s.message().c_str());
    }
    const double frames = static_cast<double>(state.iterations() * kRecords);
    state.counters["frames_per_s"] = benchmark::Counter(frames, benchmark::Counter::kIsRate);
    state.counters["MB_per_s"] =
        benchmark::Counter(frames * static_cast<double>(audit::frame_size(kPayloadBytes)) / 1e6,
                           benchmark::Counter::kIsRate);
    (void)w->close();
  }
  std::filesystem::remove_all(dir);
}
BENCHMARK_CAPTURE(audit_append_120b, io_uring, true)
    ->Iterations(5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(audit_append_120b, pwrite, false)
    ->Iterations(5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace sluice::bench
