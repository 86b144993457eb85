#include "telemetry_view.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "rate_text.h"
#include "sluice/policy.h"

namespace sluice::cli {
namespace {

using nlohmann::json;

constexpr double kNsPerSecond = 1e9;

std::string not_written_by(std::uint64_t pid) {
  return "not written by the running sluiced (pid " + std::to_string(pid) + ")";
}

// The line of one burning key, after its two-space indent.
std::string burn_line(const BurnRate& b) {
  std::string out = b.limit + (b.key.empty() ? "" : " " + b.key) + ": " +
                    burn_text(b.measure, b.per_second_5m) + " over 5m, " +
                    burn_text(b.measure, b.per_second_1h) + " over 1h, ";
  if (b.exhausts_in_s && *b.exhausts_in_s == 0) return out + "exhausted";
  return out + "runs out in " + duration_text(exhausts_in_seconds(b));
}

}  // namespace

LiveTelemetry live_telemetry(const SegmentStatus& status, const Result<Telemetry>& file) {
  LiveTelemetry live;
  if (!status.sidecar_alive) {
    live.unavailable = "sluiced not running";
  } else if (!file.ok()) {
    live.unavailable = file.status().code() == ErrorCode::kNotFound ? not_written_by(status.pid)
                                                                    : file.status().message();
  } else if (file->sidecar_pid != status.pid) {
    live.unavailable = not_written_by(status.pid);
  } else {
    live.telemetry = file.value();
  }
  return live;
}

LiveTelemetry read_live_telemetry(const SegmentStatus& status) {
  if (!status.sidecar_alive) return live_telemetry(status, Telemetry{});
  return live_telemetry(status, read_telemetry(status.segment));
}

std::string unavailable_line(const LiveTelemetry& live) {
  return "alerts and burn rates: not available (" + live.unavailable + ")";
}

std::string alert_lines(const Telemetry& t) {
  std::size_t firing = 0;
  for (const AlertStatus& a : t.alerts) firing += a.firing ? 1 : 0;
  const std::string defined = " (" + std::to_string(t.alerts.size()) + " defined)\n";
  if (firing == 0) return "alerts: none firing" + defined;
  std::string out = "alerts: " + std::to_string(firing) + " firing" + defined;
  for (const AlertStatus& a : t.alerts) {
    if (!a.firing) continue;
    const std::uint64_t since =
        a.started_firing_unix_ns != 0 ? a.started_firing_unix_ns : a.since_unix_ns;
    const double for_s =
        t.unix_ns > since ? static_cast<double>(t.unix_ns - since) / kNsPerSecond : 0.0;
    out += "  " + a.name + " (" + to_string(a.kind) + ") firing for " + duration_text(for_s) +
           ": " + a.summary + "\n";
  }
  return out;
}

std::optional<double> exhausts_in_seconds(const BurnRate& b) {
  if (!b.exhausts_in_s) return std::nullopt;
  return static_cast<double>(*b.exhausts_in_s);
}

std::vector<BurnRate> soonest_first(const std::vector<BurnRate>& burn) {
  std::vector<BurnRate> out = burn;
  std::stable_sort(out.begin(), out.end(), [](const BurnRate& a, const BurnRate& b) {
    if (!a.exhausts_in_s || !b.exhausts_in_s) return a.exhausts_in_s && !b.exhausts_in_s;
    return *a.exhausts_in_s < *b.exhausts_in_s;
  });
  return out;
}

std::string burn_lines(const Telemetry& t, std::size_t max_keys) {
  const std::vector<BurnRate> sorted = soonest_first(t.burn);
  const auto burning = static_cast<std::size_t>(std::count_if(
      sorted.begin(), sorted.end(), [](const BurnRate& b) { return b.exhausts_in_s.has_value(); }));
  const std::string of =
      " of " + std::to_string(sorted.size()) + " budget keys on course to run out in their window";
  if (burning == 0) return "burn: none" + of + "\n";
  std::string out = "burn: " + std::to_string(burning) + of + ", soonest first\n";
  const std::size_t shown = std::min(burning, max_keys);
  for (std::size_t i = 0; i < shown; ++i) out += "  " + burn_line(sorted[i]) + "\n";
  if (burning > shown) out += "  and " + std::to_string(burning - shown) + " more\n";
  return out;
}

void add_telemetry_json(json& doc, const LiveTelemetry& live) {
  if (!live.telemetry) {
    doc["telemetry_unix_ns"] = nullptr;
    doc["alerts"] = nullptr;
    doc["burn"] = nullptr;
    doc["telemetry_unavailable"] = live.unavailable;
    return;
  }
  json alerts = json::array();
  for (const AlertStatus& a : live.telemetry->alerts) alerts.push_back(alert_json(a));
  json burn = json::array();
  for (const BurnRate& b : soonest_first(live.telemetry->burn)) burn.push_back(burn_json(b));
  doc["telemetry_unix_ns"] = live.telemetry->unix_ns;
  doc["alerts"] = std::move(alerts);
  doc["burn"] = std::move(burn);
  doc["telemetry_unavailable"] = nullptr;
}

}  // namespace sluice::cli
