// sluice_bench: every Sluice benchmark in one run, so the figures compared
// side by side (Sluice versus Redis, decisions versus the clock) share the
// machine's state. tools/bench runs it and summarizes the JSON it writes.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <string>

#include "bench_segment.h"
#include "latency.h"

int main(int argc, char** argv) {
  sluice::bench::install_cleanup_handlers();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const sluice::bench::TscTimer& timer = sluice::bench::TscTimer::get();
  benchmark::AddCustomContext("sample_timer", "lfence;rdtsc;lfence, calibrated vs CLOCK_MONOTONIC");
  benchmark::AddCustomContext("sample_timer_ns_per_tick", std::to_string(timer.ns_per_tick()));
  benchmark::AddCustomContext(
      "sample_timer_overhead_ns",
      std::to_string(timer.ns(static_cast<double>(timer.overhead_ticks()))));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  sluice::bench::release_shared_segment();
  return 0;
}
