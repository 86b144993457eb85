// What sluiced makes of the calls it sees, for tools (`sluice status`,
// `sluice top`, the metrics endpoint): how fast each budget key is being
// spent and when it will run out, and the state of the policy's alerts.
//
// sluiced samples the segment about once a second, evaluates the alerts and
// writes the result to telemetry_path(segment), replacing the file whole (a
// rename), so a reader sees one evaluation or the next, never a mix. The file
// is JSON; its fields are those of the structs below.
//
//   sluice::Result<sluice::Telemetry> t = sluice::read_telemetry("sluice-demo");
//   if (t.ok()) {
//     for (const sluice::AlertStatus& a : t->alerts) {
//       if (a.firing) std::printf("%s: %s\n", a.name.c_str(), a.summary.c_str());
//     }
//   }
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/policy.h"
#include "sluice/status.h"

namespace sluice {

// How fast one budget key is being spent, in its units per second.
struct BurnRate {
  std::string limit, key;  // key: the attribute values, "team=pricing"
  double per_second_5m = 0, per_second_1h = 0;
  std::uint64_t budget = 0, used = 0;
  // Seconds until used reaches budget at per_second_5m: 0 if it already has;
  // none if the rate is 0 or the window ends first.
  std::optional<std::uint64_t> exhausts_in_s;
  // to_string(Measure) of the limit: "usd" means budget, used and the rates
  // are in nano-dollars; "" prints as "units".
  std::string measure;
};

// One alert's state.
struct AlertStatus {
  std::string name;
  AlertKind kind = AlertKind::kExhaustsWithin;
  bool firing = false;
  std::uint64_t since_unix_ns = 0;           // of the last change; 0 before the first
  std::uint64_t started_firing_unix_ns = 0;  // when it last started firing (kept once resolved)
  std::string summary;                       // one line: what was observed, and the threshold
  // exhausts_within: budget, and key (the one soonest to run out);
  // the others: model, when the alert names one.
  std::map<std::string, std::string> labels;
  // exhausts_within: seconds until the soonest key runs out (+inf if none
  // is on course to); p99_latency_above: seconds (0 without calls);
  // error_rate_above: errors / calls (0 without calls).
  double observed = 0;
};

// One evaluation, as sluiced wrote it.
struct Telemetry {
  std::uint64_t unix_ns = 0;        // when the segment was sampled
  std::uint64_t sidecar_pid = 0;    // the sluiced that wrote it
  std::vector<BurnRate> burn;       // every budget key in its current window
  std::vector<AlertStatus> alerts;  // every alert of the policy, in policy order
};

// /dev/shm/SEGMENT.telemetry.json
std::string telemetry_path(const std::string& segment);

std::string telemetry_json(const Telemetry& t);
// `where` names the text's source in errors.
Result<Telemetry> parse_telemetry(std::string_view json, const std::string& where);

// Replaces telemetry_path(segment) with `t` (a temporary file renamed over
// it), mode 0640, given to `group` when set.
Status write_telemetry(const std::string& segment, const Telemetry& t, std::optional<gid_t> group);
// kNotFound when sluiced has not written one (no sidecar since the machine
// started, or one older than telemetry).
Result<Telemetry> read_telemetry(const std::string& segment);

}  // namespace sluice
