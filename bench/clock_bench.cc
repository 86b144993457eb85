// What reading the time costs, in the same run as the decisions it is part
// of (DESIGN: "reading the clock is a large share of a decision").
//
// The engine reads CLOCK_MONOTONIC once per reserve (libquota/clock.h),
// through the vDSO: no system call, but under kvm-clock a pvclock page read
// plus rdtsc and a scale, so it costs more than twice a bare rdtsc and is
// about a seventh of a reserve + commit (tools/bench prints the share). The
// alternatives, all measured here:
//   - CLOCK_MONOTONIC_COARSE: several times cheaper, but it advances only
//     once per kernel tick (1-4 ms). A GCRA cell at ns emission intervals
//     would hand out a tick's worth of burst at once and get retry_after
//     wrong by up to a tick. Good enough for budget windows, which only need
//     the second.
//   - CLOCK_REALTIME: the same cost as monotonic, but it steps (NTP, admins)
//     and would refill or drain every bucket; wall time is derived instead
//     as monotonic + the offset the sidecar publishes.
//   - rdtsc scaled by a calibration the sidecar publishes: cheapest, but only
//     sound on an invariant, synchronized TSC, needs a recalibration protocol
//     to follow NTP slewing, and under some hypervisors the guest TSC moves
//     in ~10 ns steps (see latency.h).
// So rates stay on the vDSO monotonic clock; a call that matches no rate
// (a budget, a model deny) could skip the fine read for a coarse one.
#include <benchmark/benchmark.h>
#include <time.h>
#include <x86intrin.h>

#include "clock.h"
#include "latency.h"

namespace sluice::bench {
namespace {

void clock_gettime_cost(benchmark::State& state, clockid_t id) {
  for (auto _ : state) {
    timespec ts;
    clock_gettime(id, &ts);
    benchmark::DoNotOptimize(ts);
  }
}
BENCHMARK_CAPTURE(clock_gettime_cost, monotonic, CLOCK_MONOTONIC);
BENCHMARK_CAPTURE(clock_gettime_cost, monotonic_coarse, CLOCK_MONOTONIC_COARSE);
BENCHMARK_CAPTURE(clock_gettime_cost, realtime, CLOCK_REALTIME);

void clock_rdtsc(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(__rdtsc());
}
BENCHMARK(clock_rdtsc);

void clock_rdtscp(benchmark::State& state) {
  for (auto _ : state) {
    unsigned aux;
    benchmark::DoNotOptimize(__rdtscp(&aux));
  }
}
BENCHMARK(clock_rdtscp);

// The bench's own per-sample timer (lfence; rdtsc; lfence).
void clock_bench_timer(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(TscTimer::now());
}
BENCHMARK(clock_bench_timer);

// What the engine calls: sluice::monotonic_ns().
void clock_sluice_monotonic_ns(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(monotonic_ns());
}
BENCHMARK(clock_sluice_monotonic_ns);

}  // namespace
}  // namespace sluice::bench
