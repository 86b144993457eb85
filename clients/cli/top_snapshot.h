// What `sluice top` shows: two samples of the segment taken an interval
// apart, turned into rates. Per limit: requests/s from the admitted counts,
// rejections/s by reason (the limit's kind names it), shadow would-rejects/s
// and the burn of its budget keys. Per key: used, remaining, and for budget
// keys the burn rate (USD/hour or tokens/s, from the `used` delta) and the
// time until the budget runs out at that rate; beside them, sluiced's own
// view (telemetry_view.h): the key's 5-minute burn and when it runs out at
// it, and the policy's firing alerts.
//
//   Result<TopSample> a = take_top_sample("sluice-demo");
//   ... one interval later ...
//   Result<TopSample> b = take_top_sample("sluice-demo");
//   const TopSnapshot s = compare_samples(*a, *b);
//   std::fputs(top_text(s).c_str(), stdout);
//
// A rate key's bucket level moves with admissions and with time, at a pace
// the inspect view does not expose, so its burn is left unknown rather than
// guessed. The two burns answer different questions and both are shown: the
// interval's reacts within one redraw (a spender starting or stopping), the
// 5-minute one is steadier and is what exhausts_within alerts fire on.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sluice/inspect.h"
#include "sluice/status.h"
#include "sluice/telemetry.h"
#include "telemetry_view.h"

namespace sluice::cli {

struct TopSample {
  std::uint64_t steady_ns = 0;  // when it was taken (monotonic)
  std::uint64_t unix_ns = 0;
  SegmentStatus status;
  std::vector<LimitRow> limits;
  std::vector<KeyRow> keys;
  LiveTelemetry telemetry;  // what the live sluiced last wrote, if it did
};

// One read of status, limits, keys (each maps the segment read-only) and
// sluiced's telemetry file.
Result<TopSample> take_top_sample(const std::string& segment);

struct LimitRates {
  LimitRow row;                // as in the later sample (counts are totals)
  std::uint64_t admitted = 0;  // during the interval
  std::uint64_t rejected = 0;  // during the interval
  std::uint64_t shadow_rejected = 0;
  std::string reject_reason;  // rate_limited | budget_exhausted | model_not_allowed
  double requests_per_s = 0;
  double rejected_per_s = 0;
  double shadow_rejected_per_s = 0;
  // Budgets: the sum of its keys' burn, in units of row.unit (usd: nano-dollars) per second.
  std::optional<double> burn_per_s;
};

struct KeyRates {
  KeyRow row;  // as in the later sample
  // Budgets: units (usd: nano-dollars) spent per second over the interval,
  // at least 0. Rates: unknown.
  std::optional<double> burn_per_s;
  // Budgets burning (> 0): remaining / burn.
  std::optional<double> seconds_to_exhaustion;
  // Budgets, when sluiced's telemetry has the key: its 5m and 1h burn and
  // exhausts_in_s as sluiced computed them.
  std::optional<BurnRate> sidecar_burn;
};

struct TopSnapshot {
  std::string segment;
  bool sidecar_alive = false;
  std::uint64_t pid = 0;
  std::uint64_t policy_generation = 0;
  bool policy_changed = false;  // the samples saw different generations
  std::uint64_t unix_ns = 0;    // of the later sample
  double seconds = 0;           // between the samples
  double admitted_per_s = 0;    // every call, every limit
  double rejected_per_s = 0;
  std::vector<LimitRates> limits;  // policy order
  std::vector<KeyRates> keys;      // by limit (policy order), then attributes
  LiveTelemetry telemetry;         // of the later sample
};

// Counts that went down between the samples (a reload) count as zero.
TopSnapshot compare_samples(const TopSample& before, const TopSample& after);

// The plain snapshot: a header line, the calls line, the alerts (or why
// they are not available), the limits table and the keys table.
std::string top_text(const TopSnapshot& snapshot);
nlohmann::json top_json(const TopSnapshot& snapshot);

}  // namespace sluice::cli
