// Time on the hot path. Rate limits run on CLOCK_MONOTONIC (wall-clock
// steps cannot refill or drain a bucket); budget windows need wall time,
// which clients derive as monotonic + the offset the sidecar publishes with
// its heartbeat, so a decision reads one clock. On Linux x86-64 both clocks
// are served by the vDSO: no system call (see bench/ for what it costs).
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

inline std::uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace sluice
