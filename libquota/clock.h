// Time on the hot path. Rate limits run on CLOCK_MONOTONIC (wall-clock
// steps cannot refill or drain a bucket), read once per decision and only
// when a rate limit applies. Budget windows need wall time only to the
// second, so clients derive it from CLOCK_MONOTONIC_COARSE plus the offset
// the sidecar publishes with its heartbeat: a wall-clock step reaches them
// with the sidecar's next tick, together with window tables that hold the
// new time (shm-layout/PROTOCOL.md, "Wall time"). Both are vDSO reads, no
// system call; measured here (bench/clock_bench.cc): MONOTONIC ~26 ns, COARSE ~3 ns,
// rdtsc ~11 ns. A calibrated TSC would save ~15 ns per rate decision but
// trusts the TSC to be invariant and synchronized across cores, which a VM
// does not promise; the vDSO clock already uses the TSC when it is safe.
#pragma once

#include <time.h>

#include <cstdint>

namespace sluice {

inline std::uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

// Monotonic to within a scheduler tick (a few ms), for calendar windows.
inline std::uint64_t coarse_monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

inline std::uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace sluice
