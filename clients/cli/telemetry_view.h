// sluiced's burn rates and alert states (sluice/telemetry.h) as `sluice
// status` and `sluice top` show them: only what the segment's live sidecar
// wrote, never a file left by a sluiced that has since stopped.
//
//   const LiveTelemetry live = read_live_telemetry(status);
//   if (!live.telemetry) std::puts(unavailable_line(live).c_str());
//   else std::fputs((alert_lines(*live.telemetry) + burn_lines(*live.telemetry, 10)).c_str(),
//   stdout);
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sluice/inspect.h"
#include "sluice/status.h"
#include "sluice/telemetry.h"
#include "telemetry_json.h"  // burn_json, alert_json: the raw fields, as the telemetry file has them

namespace sluice::cli {

// The telemetry of the segment's live sidecar, or why there is none.
struct LiveTelemetry {
  std::optional<Telemetry> telemetry;
  // When telemetry is empty, in a few words: "sluiced not running",
  // "not written by the running sluiced (pid 1234)", or the read error.
  std::string unavailable;
};

// `file` (what read_telemetry returned) counts only when `status` has a live
// sidecar and the file names that sidecar's pid.
LiveTelemetry live_telemetry(const SegmentStatus& status, const Result<Telemetry>& file);
// Reads telemetry_path(status.segment) and judges it as live_telemetry does.
LiveTelemetry read_live_telemetry(const SegmentStatus& status);

// "alerts and burn rates: not available (sluiced not running)".
std::string unavailable_line(const LiveTelemetry& live);

// "alerts: none firing (3 defined)", or "alerts: 2 firing (3 defined)" and
// one indented line per firing alert, in policy order:
//   "  errors (error_rate_above) firing for 3m12s: error rate of ...".
// Times are relative to when sluiced sampled (t.unix_ns). Lines end in '\n'.
std::string alert_lines(const Telemetry& t);

// The budget keys on course to run out in their window at their 5m rate,
// soonest first, at most `max_keys` of them then "  and N more":
//   "burn: 2 of 6 budget keys on course to run out in their window, soonest first"
//   "  team-daily-usd team=spender: $450/h over 5m, $12.6/h over 1h, runs out in 1h05m"
// An exhausted key ends in "exhausted"; none: "burn: none of 6 budget keys ...".
std::string burn_lines(const Telemetry& t, std::size_t max_keys);

// b.exhausts_in_s as seconds, for duration_text.
std::optional<double> exhausts_in_seconds(const BurnRate& b);

// Every budget key, those on course to run out first (soonest first), the
// rest in sluiced's order.
std::vector<BurnRate> soonest_first(const std::vector<BurnRate>& burn);

// Adds "telemetry_unix_ns", "alerts" (every alert, policy order), "burn"
// (soonest_first) and "telemetry_unavailable" (why not, else null) to `doc`;
// the first three are null when the telemetry is not available.
void add_telemetry_json(nlohmann::json& doc, const LiveTelemetry& live);

}  // namespace sluice::cli
