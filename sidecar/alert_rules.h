// The policy's alerts (AlertSpec, sluice/policy.h) evaluated on telemetry
// the sidecar samples from the segment about once a second: budgets about to
// run out, slow calls, failing calls. Pure logic: no threads, no clocks, no
// I/O. Every time is passed in, so tests script time.
//
//   TelemetryHistory history;
//   AlertBook book(policy.alerts);
//   // about once a second, on one thread:
//   history.add(sample);  // a TelemetrySample read from the segment at sample.unix_ns
//   for (const AlertStatus& change : book.evaluate(history, now_unix_ns)) log_and_post(change);
//   // on a policy reload:
//   book.replace(new_policy.alerts);
//
// Neither class is thread-safe; nothing here keeps a reference to its inputs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "segment_layout.h"
#include "sluice/policy.h"
#include "sluice/telemetry.h"

namespace sluice {

// The segment's call counters (shm::ModelCallStats): outcomes 0 unreported,
// 1 ok, 2 provider_error, 3 timeout, 4 cancelled_by_client, 5 cut_off (errors
// are provider_error + timeout); latency bucket i counts calls of at most
// kLatencyBoundsMs[i], the last bucket everything slower.
inline constexpr int kOutcomes = shm::kCallOutcomes;
inline constexpr int kLatencyBuckets = shm::kCallLatencyBuckets;
inline constexpr const auto& kLatencyBoundsMs = shm::kCallLatencyBoundsMs;

// What the sidecar read from the segment at one instant.
struct TelemetrySample {
  std::uint64_t unix_ns = 0;
  // Cumulative since the segment was created: counts never decrease, except
  // that a new segment starts again from zero (a decrease is read as that).
  struct Model {
    std::string name;  // "" for the row of calls without a priced model
    std::array<std::uint64_t, kOutcomes> calls{};
    std::array<std::uint64_t, kLatencyBuckets> latency_hist{};
  };
  std::vector<Model> models;
  // One per budget key in its current window; `used` can go down (refunds).
  struct Budget {
    std::string limit;
    std::string key;  // the key's attribute values as people read them, e.g. "team=pricing"
    std::uint64_t budget = 0;
    std::uint64_t used = 0;
    std::uint64_t window_start_unix = 0;
    std::uint64_t window_end_unix = 0;  // 0: unknown
    // to_string(Measure) of the limit: "usd" means budget and used are
    // nano-dollars; "" prints as "units".
    std::string measure;
  };
  std::vector<Budget> budgets;
  // False when some keys could not be read: a key missing from a complete
  // sample had spent nothing in its window yet.
  bool budgets_complete = true;
};

// Prometheus histogram_quantile over the call latency buckets, in seconds:
// linear within the bucket holding the q-th call (the first bucket starts at
// 0); a quantile in the last, unbounded bucket is its lower bound (120 s).
// None when the histogram is empty.
std::optional<double> latency_quantile_s(double q,
                                         const std::array<std::uint64_t, kLatencyBuckets>& hist);

// The last ~65 minutes of samples, thinned so memory stays bounded: samples
// less than kFineStepNs apart replace one another (the newest is always
// kept), and past kFineSpanNs of age at most one per kCoarseStepNs is kept.
// Budget keys (at most max_budget_keys) and models (at most kMaxModels) are
// tracked by name; one that no kept sample mentions is forgotten, making
// room for another. A sample older than the previous one (the clock went
// back) starts the history over.
//
// "The sample nearest to T" below means the nearest kept sample taken at or
// after T - kCoarseStepNs, other than the latest; a `now` before the latest
// sample counts as the latest sample's time.
class TelemetryHistory {
 public:
  static constexpr std::uint64_t kFineStepNs = 5'000'000'000;
  static constexpr std::uint64_t kFineSpanNs = 600'000'000'000;
  static constexpr std::uint64_t kCoarseStepNs = 60'000'000'000;
  static constexpr std::size_t kMaxModels = 256;

  explicit TelemetryHistory(std::uint64_t keep_ns = 3'900'000'000'000 /*65 min*/,
                            std::uint64_t max_budget_keys = 1000);

  // Samples arrive in time order.
  void add(TelemetrySample sample);

  // Per tracked budget key of the latest sample: (used now - used at the
  // sample nearest to now - W, in the same window) / the seconds between
  // them, for W = 5 min and 1 h; at least 0; 0 without such a sample. A
  // complete sample taken in the key's window without the key counts as
  // used 0 (its cell did not exist yet).
  std::vector<BurnRate> burn_rates(std::uint64_t now_unix_ns) const;

  // Calls over [now - over, now]: what the counters grew by between the
  // sample nearest to now - over and the latest, for `model` ("" = all).
  struct Window {
    std::uint64_t calls = 0;  // with a reported outcome
    std::uint64_t errors = 0;
    std::uint64_t timed = 0;  // calls in the latency histogram
    std::optional<double> p99_s;
  };
  Window window(const std::string& model, std::uint64_t over_ns, std::uint64_t now_unix_ns) const;

  // What is held, for checking that it stays bounded.
  struct Size {
    std::size_t samples = 0;
    std::size_t model_points = 0;   // per-model counters over all samples
    std::size_t budget_points = 0;  // per-key usage over all samples
    std::size_t models = 0;         // names tracked
    std::size_t budget_keys = 0;
    std::size_t untracked_models = 0;  // in the latest sample, for want of room
    std::size_t untracked_budget_keys = 0;
  };
  Size size() const;

 private:
  // Strings by small id; an id is reused once no kept sample can refer to it.
  class NameTable {
   public:
    explicit NameTable(std::size_t capacity) : capacity_(capacity) {}
    std::optional<std::uint32_t> intern(const std::string& name, std::uint64_t seen_ns);
    std::optional<std::uint32_t> find(const std::string& name) const;
    void forget_unseen_since(std::uint64_t ns);
    void clear();
    std::size_t size() const { return ids_.size(); }

   private:
    struct Slot {
      std::string name;
      std::uint64_t last_seen_ns = 0;
    };
    std::size_t capacity_;
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_;
    std::unordered_map<std::string, std::uint32_t> ids_;
  };
  struct ModelPoint {
    std::uint32_t id = 0;
    std::array<std::uint64_t, kOutcomes> calls{};
    std::array<std::uint64_t, kLatencyBuckets> hist{};
  };
  struct BudgetPoint {
    std::uint32_t id = 0;
    std::uint64_t used = 0;
    std::uint64_t window_start_unix = 0;
  };
  struct Snapshot {
    std::uint64_t unix_ns = 0;
    bool budgets_complete = true;      // every key in its window has a point
    std::vector<ModelPoint> models;    // by id
    std::vector<BudgetPoint> budgets;  // by id
  };
  struct LatestBudget {
    std::uint32_t id = 0;
    TelemetrySample::Budget budget;
  };

  template <class Usable>
  std::size_t base_index(std::uint64_t target_ns, const Usable& usable) const;
  void clear();

  std::uint64_t keep_ns_;
  std::deque<Snapshot> snapshots_;
  NameTable models_;
  NameTable budget_keys_;
  std::vector<LatestBudget> latest_budgets_;  // of snapshots_.back(), in its order
  std::size_t untracked_models_ = 0;
  std::size_t untracked_budget_keys_ = 0;
};

// The alerts of a policy and whether each holds. An alert fires while its
// condition holds at evaluation and resolves when it no longer does:
//   exhausts_within    some key of the budget has exhausts_in_s <= value
//   p99_latency_above  window(model, over).timed >= min_calls and p99 > value
//   error_rate_above   window(model, over).calls >= min_calls and errors / calls > value
class AlertBook {
 public:
  explicit AlertBook(std::vector<AlertSpec> specs);

  // Evaluates every alert at `now`; returns those whose firing state changed
  // (each change once), after any replace() retired while firing.
  std::vector<AlertStatus> evaluate(const TelemetryHistory& h, std::uint64_t now_unix_ns);
  // Every alert, in policy order.
  const std::vector<AlertStatus>& status() const { return status_; }
  // A policy reload: an alert whose name and definition are unchanged keeps
  // its state; one removed or redefined while firing is reported resolved by
  // the next evaluate(), and a redefined one starts again not firing.
  void replace(std::vector<AlertSpec> specs);

 private:
  std::vector<AlertSpec> specs_;
  std::vector<AlertStatus> status_;   // parallel to specs_
  std::vector<AlertStatus> retired_;  // for the next evaluate()
};

}  // namespace sluice
