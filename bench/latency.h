// Per-operation latency for the bench: a TSC timer and a sample vector that
// reports percentiles as Google Benchmark counters.
//
// Timer: rdtsc fenced by lfence on both sides (so the read neither starts
// before the previous instructions finish nor lets the timed work start
// early), converted to nanoseconds with a ratio calibrated against
// CLOCK_MONOTONIC over 50 ms. The median cost of a back-to-back pair of reads
// (the timer's own overhead) is measured at calibration and subtracted from
// every sample. The TSC is invariant here (constant_tsc, nonstop_tsc).
// Some hypervisors make the guest TSC advance in steps (21 ticks, about
// 10 ns, on the KVM guests this was written on): that step is the
// resolution of every percentile, so compare figures at that granularity.
//
//   const TscTimer& t = TscTimer::get();
//   LatencySamples s(n);
//   const std::uint64_t t0 = t.now(); work(); s.add(t.now() - t0);
//   s.report(state, t);  // p50_ns, p90_ns, p99_ns, p999_ns, max_ns, mean_ns
#pragma once

#include <benchmark/benchmark.h>
#include <time.h>
#include <x86intrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice::bench {

inline std::uint64_t clock_ns(clockid_t id) {
  timespec ts;
  clock_gettime(id, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

class TscTimer {
 public:
  static const TscTimer& get() {
    static const TscTimer timer;
    return timer;
  }

  static std::uint64_t now() {
    _mm_lfence();
    const std::uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
  }

  double ns(double ticks) const { return ticks * ns_per_tick_; }
  double ns_per_tick() const { return ns_per_tick_; }
  std::uint64_t overhead_ticks() const { return overhead_ticks_; }

 private:
  TscTimer() {
    const std::uint64_t m0 = clock_ns(CLOCK_MONOTONIC);
    const std::uint64_t c0 = now();
    while (clock_ns(CLOCK_MONOTONIC) - m0 < 50'000'000) {
    }
    const std::uint64_t m1 = clock_ns(CLOCK_MONOTONIC);
    const std::uint64_t c1 = now();
    ns_per_tick_ = static_cast<double>(m1 - m0) / static_cast<double>(c1 - c0);
    std::vector<std::uint64_t> pairs(100'000);
    for (std::uint64_t& p : pairs) {
      const std::uint64_t a = now();
      p = now() - a;
    }
    std::nth_element(pairs.begin(), pairs.begin() + static_cast<std::ptrdiff_t>(pairs.size() / 2),
                     pairs.end());
    overhead_ticks_ = pairs[pairs.size() / 2];
  }

  double ns_per_tick_ = 1.0;
  std::uint64_t overhead_ticks_ = 0;
};

class LatencySamples {
 public:
  explicit LatencySamples(std::size_t capacity) { ticks_.reserve(capacity); }

  // `ticks` is the raw difference of two TscTimer::now() reads.
  void add(std::uint64_t ticks) { ticks_.push_back(ticks); }
  std::size_t size() const { return ticks_.size(); }

  // Sorts the samples, subtracts the timer overhead and sets the counters
  // (named `prefix` + "p50_ns" and so on).
  void report(benchmark::State& state, const TscTimer& timer, const std::string& prefix = "") {
    if (ticks_.empty()) return;
    std::sort(ticks_.begin(), ticks_.end());
    const std::uint64_t overhead = timer.overhead_ticks();
    auto at = [&](double q) {
      const std::size_t i = std::min(
          ticks_.size() - 1, static_cast<std::size_t>(q * static_cast<double>(ticks_.size())));
      const std::uint64_t t = ticks_[i];
      return timer.ns(static_cast<double>(t > overhead ? t - overhead : 0));
    };
    double sum = 0;
    for (std::uint64_t t : ticks_) sum += static_cast<double>(t > overhead ? t - overhead : 0);
    state.counters[prefix + "p50_ns"] = at(0.50);
    state.counters[prefix + "p90_ns"] = at(0.90);
    state.counters[prefix + "p99_ns"] = at(0.99);
    state.counters[prefix + "p999_ns"] = at(0.999);
    state.counters[prefix + "max_ns"] = at(1.0);
    state.counters[prefix + "mean_ns"] = timer.ns(sum / static_cast<double>(ticks_.size()));
    state.counters[prefix + "samples"] = static_cast<double>(ticks_.size());
    state.counters["timer_overhead_ns"] = timer.ns(static_cast<double>(overhead));
  }

 private:
  std::vector<std::uint64_t> ticks_;
};

}  // namespace sluice::bench
