// The policy the audit tests decide against: one generous rate every call
// matches, one that admits team "tiny" once an hour (limit 1, so the second
// call is a rejection naming it), and a shadow model allow-list that would
// refuse every call of team "tiny" (limit 2).
#pragma once

namespace sluice::testing {

inline constexpr const char* kAuditTestPolicy = R"(
models:
  cheap: { input_usd_per_mtok: 1.00, output_usd_per_mtok: 2.00 }
limits:
  - name: team-rate
    match: { team: "*" }
    tokens_per_minute: 100000000
  - name: one-per-hour
    match: { team: "tiny" }
    requests_per_hour: 1
  - name: watch-only
    match: { team: "tiny" }
    models: [pricey]
    shadow: true
)";

}  // namespace sluice::testing
