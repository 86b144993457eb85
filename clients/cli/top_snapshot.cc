#include "top_snapshot.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "audit_format.h"
#include "output.h"
#include "rate_text.h"

namespace sluice::cli {
namespace {

using nlohmann::json;

constexpr double kNanoPerUsd = 1e9;
constexpr double kSecondsPerHour = 3600;

std::uint64_t steady_now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t unix_now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t grew_by(std::uint64_t before, std::uint64_t after) {
  return after > before ? after - before : 0;
}

// What a limit of `kind` says when it refuses a call.
const char* reject_reason(const std::string& kind) {
  if (kind == "rate") return "rate_limited";
  if (kind == "budget") return "budget_exhausted";
  return "model_not_allowed";
}

bool is_usd(const std::string& unit) { return unit == "usd"; }

// A key is the same cell in both samples when limit, attributes and window match.
using KeyId = std::tuple<std::string, std::string, std::uint64_t>;

KeyId key_id(const KeyRow& r) { return {r.limit, r.attributes, r.window_start_unix}; }

std::string per_second_text(double v) {
  char out[32];
  std::snprintf(out, sizeof out, "%.1f", v);
  return out;
}

std::string amount_text(const std::string& unit, std::uint64_t v) {
  return is_usd(unit) ? format_usd(v) : std::to_string(v);
}

json amount_json(const std::string& unit, std::uint64_t v) {
  return is_usd(unit) ? json(usd(v)) : json(v);
}

json optional_json(std::optional<double> v) { return v ? json(*v) : json(nullptr); }

// The burn as JSON fields: usd_per_hour for USD budgets, tokens_per_second
// for token budgets (input, output or both), null otherwise.
void add_burn_json(json& doc, const std::string& unit, std::optional<double> per_s) {
  const bool usd_unit = is_usd(unit);
  doc["usd_per_hour"] =
      per_s && usd_unit ? json(*per_s * kSecondsPerHour / kNanoPerUsd) : json(nullptr);
  doc["tokens_per_second"] = per_s && !usd_unit ? json(*per_s) : json(nullptr);
}

}  // namespace

Result<TopSample> take_top_sample(const std::string& segment) {
  TopSample s;
  s.steady_ns = steady_now_ns();
  s.unix_ns = unix_now_ns();
  Result<SegmentStatus> status = read_status(segment);
  if (!status.ok()) return status.status();
  Result<std::vector<LimitRow>> limits = list_limits(segment);
  if (!limits.ok()) return limits.status();
  Result<std::vector<KeyRow>> keys = list_keys(segment);
  if (!keys.ok()) return keys.status();
  s.status = std::move(status.value());
  s.limits = std::move(limits.value());
  s.keys = std::move(keys.value());
  s.telemetry = read_live_telemetry(s.status);
  return s;
}

TopSnapshot compare_samples(const TopSample& before, const TopSample& after) {
  TopSnapshot t;
  t.segment = after.status.segment;
  t.sidecar_alive = after.status.sidecar_alive;
  t.pid = after.status.pid;
  t.policy_generation = after.status.policy_generation;
  t.policy_changed = before.status.policy_generation != after.status.policy_generation;
  t.unix_ns = after.unix_ns;
  t.seconds = static_cast<double>(grew_by(before.steady_ns, after.steady_ns)) / 1e9;
  const double seconds = std::max(t.seconds, 1e-9);
  auto per_s = [&](std::uint64_t n) { return static_cast<double>(n) / seconds; };
  t.admitted_per_s = per_s(grew_by(before.status.admitted_total, after.status.admitted_total));
  t.rejected_per_s = per_s(grew_by(before.status.rejected_total, after.status.rejected_total));
  t.telemetry = after.telemetry;
  std::map<std::pair<std::string, std::string>, const BurnRate*> sidecar_burn;
  if (t.telemetry.telemetry) {
    for (const BurnRate& b : t.telemetry.telemetry->burn) sidecar_burn[{b.limit, b.key}] = &b;
  }

  std::map<KeyId, std::uint64_t> used_before;
  for (const KeyRow& k : before.keys) used_before[key_id(k)] = k.used;
  std::unordered_map<std::string, double> limit_burn;
  std::unordered_map<std::string, std::size_t> limit_order;
  for (std::size_t i = 0; i < after.limits.size(); ++i) limit_order[after.limits[i].limit] = i;

  for (const KeyRow& k : after.keys) {
    KeyRates r;
    r.row = k;
    if (!k.rate) {
      // A cell first seen in the later sample started the interval at 0.
      const auto it = used_before.find(key_id(k));
      const std::uint64_t was = it != used_before.end() ? it->second : 0;
      const double burn = per_s(grew_by(was, k.used));
      r.burn_per_s = burn;
      limit_burn[k.limit] += burn;
      if (burn > 0) r.seconds_to_exhaustion = static_cast<double>(k.remaining) / burn;
      if (const auto b = sidecar_burn.find({k.limit, k.attributes}); b != sidecar_burn.end()) {
        r.sidecar_burn = *b->second;
      }
    }
    t.keys.push_back(std::move(r));
  }
  std::sort(t.keys.begin(), t.keys.end(), [&](const KeyRates& a, const KeyRates& b) {
    const auto order = [&](const KeyRates& k) {
      const auto it = limit_order.find(k.row.limit);
      return it != limit_order.end() ? it->second : limit_order.size();
    };
    return std::make_tuple(order(a), a.row.attributes, a.row.window_start_unix) <
           std::make_tuple(order(b), b.row.attributes, b.row.window_start_unix);
  });

  std::unordered_map<std::string, const LimitRow*> limits_before;
  for (const LimitRow& l : before.limits) limits_before[l.limit] = &l;
  for (const LimitRow& l : after.limits) {
    LimitRates r;
    r.row = l;
    const auto it = limits_before.find(l.limit);
    if (it != limits_before.end()) {
      r.admitted = grew_by(it->second->admitted, l.admitted);
      r.rejected = grew_by(it->second->rejected, l.rejected);
      r.shadow_rejected = grew_by(it->second->shadow_rejected, l.shadow_rejected);
    } else {  // new with a reload between the samples: counted from 0
      r.admitted = l.admitted;
      r.rejected = l.rejected;
      r.shadow_rejected = l.shadow_rejected;
    }
    r.reject_reason = reject_reason(l.kind);
    r.requests_per_s = per_s(r.admitted);
    r.rejected_per_s = per_s(r.rejected);
    r.shadow_rejected_per_s = per_s(r.shadow_rejected);
    if (l.kind == "budget") r.burn_per_s = limit_burn[l.limit];
    t.limits.push_back(std::move(r));
  }
  return t;
}

std::string top_text(const TopSnapshot& t) {
  char interval[32];
  std::snprintf(interval, sizeof interval, "%.2f", t.seconds);
  std::string out = "segment " + t.segment + ", sidecar " +
                    (t.sidecar_alive ? "alive (pid " + std::to_string(t.pid) + ")" : "NOT alive") +
                    ", policy generation " + std::to_string(t.policy_generation) +
                    (t.policy_changed ? " (reloaded during the interval)" : "") + ", " +
                    rfc3339_ns(t.unix_ns).substr(0, 19) + "Z, over " + interval + " s\n";
  out += "calls: " + per_second_text(t.admitted_per_s) + "/s admitted, " +
         per_second_text(t.rejected_per_s) + "/s rejected\n";
  out += t.telemetry.telemetry ? alert_lines(*t.telemetry.telemetry)
                               : unavailable_line(t.telemetry) + "\n";
  out += "\n";

  std::vector<std::vector<std::string>> limits;
  for (const LimitRates& l : t.limits) {
    limits.push_back({l.row.limit, l.row.kind + (l.row.shadow ? " (shadow)" : ""), l.row.unit,
                      std::to_string(l.row.keys), per_second_text(l.requests_per_s),
                      burn_text(l.row.unit, l.burn_per_s), per_second_text(l.rejected_per_s),
                      l.rejected > 0 ? l.reject_reason : "",
                      per_second_text(l.shadow_rejected_per_s)});
  }
  out += format_table(
      {"LIMIT", "KIND", "UNIT", "KEYS", "REQ/S", "BURN", "REJECTED/S", "REASON", "WOULD-REJECT/S"},
      limits, {3, 4, 5, 6, 8});
  out += "\n";

  // sluiced's columns only when its telemetry is there to fill them.
  const bool sidecar = t.telemetry.telemetry.has_value();
  std::vector<std::vector<std::string>> keys;
  for (const KeyRates& k : t.keys) {
    keys.push_back({k.row.limit, k.row.attributes.empty() ? "-" : k.row.attributes, k.row.window,
                    amount_text(k.row.unit, k.row.used), amount_text(k.row.unit, k.row.limit_value),
                    amount_text(k.row.unit, k.row.remaining), k.row.unit,
                    burn_text(k.row.unit, k.burn_per_s),
                    k.row.rate ? "" : duration_text(k.seconds_to_exhaustion)});
    if (!sidecar) continue;
    if (const std::optional<BurnRate>& b = k.sidecar_burn) {
      keys.back().push_back(burn_text(k.row.unit, b->per_second_5m));
      keys.back().push_back(duration_text(exhausts_in_seconds(*b)));
    } else {
      keys.back().insert(keys.back().end(), {"", ""});
    }
  }
  std::vector<std::string> header = {"LIMIT",     "KEY",  "WINDOW", "USED",        "LIMIT",
                                     "REMAINING", "UNIT", "BURN",   "EXHAUSTED IN"};
  std::vector<std::size_t> right = {3, 4, 5, 7, 8};
  if (sidecar) {
    header.insert(header.end(), {"BURN 5M", "EXHAUSTED IN 5M"});
    right.insert(right.end(), {9, 10});
  }
  out += format_table(header, keys, right);
  return out;
}

json top_json(const TopSnapshot& t) {
  json limits = json::array();
  for (const LimitRates& l : t.limits) {
    json row = {
        {"limit", l.row.limit},
        {"kind", l.row.kind},
        {"unit", l.row.unit},
        {"shadow", l.row.shadow},
        {"keys", l.row.keys},
        {"admitted", l.admitted},
        {"requests_per_second", l.requests_per_s},
        {"rejected",
         {{"reason", l.reject_reason}, {"count", l.rejected}, {"per_second", l.rejected_per_s}}},
        {"shadow_rejected",
         {{"count", l.shadow_rejected}, {"per_second", l.shadow_rejected_per_s}}}};
    add_burn_json(row, l.row.unit, l.burn_per_s);
    limits.push_back(std::move(row));
  }
  json keys = json::array();
  for (const KeyRates& k : t.keys) {
    json row = {{"limit", k.row.limit},
                {"attributes", k.row.attributes},
                {"window", k.row.window},
                {"unit", k.row.unit},
                {"rate", k.row.rate},
                {"shadow", k.row.shadow},
                {"used", amount_json(k.row.unit, k.row.used)},
                {"limit_value", amount_json(k.row.unit, k.row.limit_value)},
                {"remaining", amount_json(k.row.unit, k.row.remaining)}};
    if (is_usd(k.row.unit)) {
      row["used_nusd"] = k.row.used;
      row["remaining_nusd"] = k.row.remaining;
    }
    add_burn_json(row, k.row.unit, k.burn_per_s);
    row["seconds_to_exhaustion"] = optional_json(k.seconds_to_exhaustion);
    row["exhausted_in"] =
        k.seconds_to_exhaustion ? json(duration_text(k.seconds_to_exhaustion)) : json(nullptr);
    row["sidecar_burn"] = k.sidecar_burn ? burn_json(*k.sidecar_burn) : json(nullptr);
    keys.push_back(std::move(row));
  }
  json doc = {{"segment", t.segment},
              {"sidecar_alive", t.sidecar_alive},
              {"pid", t.pid},
              {"policy_generation", t.policy_generation},
              {"policy_changed", t.policy_changed},
              {"time", rfc3339_ns(t.unix_ns)},
              {"interval_seconds", t.seconds},
              {"admitted_per_second", t.admitted_per_s},
              {"rejected_per_second", t.rejected_per_s},
              {"limits", std::move(limits)},
              {"keys", std::move(keys)}};
  add_telemetry_json(doc, t.telemetry);
  return doc;
}

}  // namespace sluice::cli
