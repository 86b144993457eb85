// sluice status | keys | limits | reload: what the segment holds, read without
// registering a client; reload signals the sidecar named in the header.
#include <signal.h>
#include <sys/types.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <tuple>

#include "commands.h"
#include "output.h"
#include "sluice/inspect.h"
#include "telemetry_view.h"

namespace sluice::cli {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------
// status

// The ring's high-water mark as a percentage of its capacity, one decimal.
double high_water_pct(const SegmentStatus& s) {
  if (s.audit_ring_capacity_bytes == 0) return 0;
  const double pct = 100.0 * static_cast<double>(s.audit_ring_high_water_bytes) /
                     static_cast<double>(s.audit_ring_capacity_bytes);
  return std::round(pct * 10) / 10;
}

std::string pct_text(double pct) {
  char out[32];
  std::snprintf(out, sizeof out, "%.1f", pct);
  return out;
}

std::string fsync_age_text(const SegmentStatus& s) {
  if (s.audit_last_fsync_unix_ns == 0) return "never";
  return std::to_string(s.audit_last_fsync_age_ms) + " ms ago";
}

json amount_json(const std::string& unit, std::uint64_t v) {
  return unit == "usd" ? json(usd(v)) : json(v);
}

std::string amount_text(const std::string& unit, std::uint64_t v) {
  return unit == "usd" ? format_usd_fixed(v) : std::to_string(v);
}

json store_json(const SegmentStatus& s) {
  if (s.store.empty()) return nullptr;
  json limits = json::array();
  for (const GlobalLimitRow& r : s.global_limits) {
    limits.push_back({{"limit", r.limit},
                      {"unit", r.unit},
                      {"held", amount_json(r.unit, r.held)},
                      {"granted", amount_json(r.unit, r.granted)},
                      {"exposed", amount_json(r.unit, r.exposed)},
                      {"used", amount_json(r.unit, r.used)},
                      {"global_remaining", amount_json(r.unit, r.global_remaining)}});
  }
  return {{"where", s.store},
          {"health", s.store_health},
          {"last_sync_age_ms",
           s.store_last_sync_unix_ns == 0 ? json(nullptr) : json(s.store_last_sync_age_ms)},
          {"syncs", s.store_syncs},
          {"failures", s.store_failures},
          {"retry_pending", s.store_retry_pending},
          {"last_sync_cpu_us", s.store_sync_cpu_us},
          {"cells", s.store_cells},
          {"hosts", s.store_hosts},
          {"last_error", s.store_last_error.empty() ? json(nullptr) : json(s.store_last_error)},
          {"global_limits", limits}};
}

json status_json(const SegmentStatus& s) {
  return {{"segment", s.segment},
          {"sidecar_alive", s.sidecar_alive},
          {"pid", s.pid},
          {"heartbeat_age_ms", s.heartbeat_age_ms},
          {"policy_generation", s.policy_generation},
          {"keys_used", s.keys_used},
          {"keys_capacity", s.keys_capacity},
          {"reservations_in_flight", s.reservations_in_flight},
          {"reservations_capacity", s.reservations_capacity},
          {"admitted_total", s.admitted_total},
          {"rejected_total", s.rejected_total},
          {"abandoned_total", s.abandoned_total},
          {"clients_attached", s.clients_attached},
          {"segment_bytes", s.segment_bytes},
          {"audit_dir", s.audit_dir.empty() ? json(nullptr) : json(s.audit_dir)},
          {"audit_writer", s.audit_writer},
          {"audit_drained", s.audit_drained},
          {"audit_written", s.audit_written},
          {"audit_dropped", s.audit_dropped},
          {"audit_refused", s.audit_refused},
          {"audit_skipped", s.audit_skipped},
          {"audit_corrupt", s.audit_corrupt},
          {"audit_ring_high_water_bytes", s.audit_ring_high_water_bytes},
          {"audit_ring_high_water_pct", high_water_pct(s)},
          {"audit_ring_capacity_bytes", s.audit_ring_capacity_bytes},
          {"audit_bytes_on_disk", s.audit_bytes_on_disk},
          {"audit_last_fsync_age_ms",
           s.audit_last_fsync_unix_ns == 0 ? json(nullptr) : json(s.audit_last_fsync_age_ms)},
          {"store", store_json(s)}};
}

// The store's lines of `sluice status`, after the audit's.
void add_store_fields(const SegmentStatus& s,
                      std::vector<std::pair<std::string, std::string>>* fields) {
  auto n = [](std::uint64_t v) { return std::to_string(v); };
  if (s.store.empty()) {
    fields->push_back({"store", "(none)"});
    return;
  }
  fields->insert(
      fields->end(),
      {{"store", s.store},
       {"store_health", s.store_health},
       {"store_last_sync",
        s.store_last_sync_unix_ns == 0 ? "never" : n(s.store_last_sync_age_ms) + " ms ago"},
       {"store_syncs", n(s.store_syncs)},
       {"store_failures", n(s.store_failures)},
       {"store_retry_pending", s.store_retry_pending ? "true" : "false"},
       {"store_last_sync_cpu", n(s.store_sync_cpu_us) + " us"},
       {"store_cells", n(s.store_cells)},
       {"store_hosts", n(s.store_hosts)},
       {"store_last_error", s.store_last_error.empty() ? "(none)" : s.store_last_error}});
  for (const GlobalLimitRow& r : s.global_limits) {
    fields->push_back(
        {"global " + r.limit, "held " + amount_text(r.unit, r.held) + ", granted " +
                                  amount_text(r.unit, r.granted) + ", used " +
                                  amount_text(r.unit, r.used) + ", global remaining " +
                                  amount_text(r.unit, r.global_remaining) + " " + r.unit});
  }
}

// How many of the budget keys soonest to run out `sluice status` lists.
constexpr std::size_t kStatusBurnKeys = 10;

void print_status(const SegmentStatus& s, const LiveTelemetry& live) {
  auto n = [](std::uint64_t v) { return std::to_string(v); };
  std::vector<std::pair<std::string, std::string>> fields{
      {"segment", s.segment},
      {"sidecar_alive", s.sidecar_alive ? "true" : "false"},
      {"pid", n(s.pid)},
      {"heartbeat_age_ms", n(s.heartbeat_age_ms)},
      {"policy_generation", n(s.policy_generation)},
      {"keys_used", n(s.keys_used)},
      {"keys_capacity", n(s.keys_capacity)},
      {"reservations_in_flight", n(s.reservations_in_flight)},
      {"reservations_capacity", n(s.reservations_capacity)},
      {"admitted_total", n(s.admitted_total)},
      {"rejected_total", n(s.rejected_total)},
      {"abandoned_total", n(s.abandoned_total)},
      {"clients_attached", n(s.clients_attached)},
      {"segment_bytes", n(s.segment_bytes)},
      {"audit_dir", s.audit_dir.empty() ? "(not published)" : s.audit_dir},
      {"audit_writer", s.audit_writer},
      {"audit_drained", n(s.audit_drained)},
      {"audit_written", n(s.audit_written)},
      {"audit_dropped", n(s.audit_dropped)},
      {"audit_refused", n(s.audit_refused)},
      {"audit_skipped", n(s.audit_skipped)},
      {"audit_corrupt", n(s.audit_corrupt)},
      {"audit_ring_high_water", n(s.audit_ring_high_water_bytes) + " bytes (" +
                                    pct_text(high_water_pct(s)) + "% of " +
                                    n(s.audit_ring_capacity_bytes) + ")"},
      {"audit_bytes_on_disk", n(s.audit_bytes_on_disk)},
      {"audit_last_fsync", fsync_age_text(s)}};
  add_store_fields(s, &fields);
  print_fields(fields);
  std::fputs("\n", stdout);
  if (!live.telemetry) {
    std::puts(unavailable_line(live).c_str());
    return;
  }
  std::fputs(alert_lines(*live.telemetry).c_str(), stdout);
  std::fputs(burn_lines(*live.telemetry, kStatusBurnKeys).c_str(), stdout);
}

int run_status(const Globals& g, bool as_json) {
  Result<SegmentStatus> s = read_status(g.segment);
  if (!s.ok()) return fail(kExitUsage, s.status().message());
  const LiveTelemetry live = read_live_telemetry(s.value());
  if (as_json) {
    json doc = status_json(s.value());
    add_telemetry_json(doc, live);
    print_json(doc);
  } else {
    print_status(s.value(), live);
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------
// keys

json amount_json(const KeyRow& r, std::uint64_t v) { return amount_json(r.unit, v); }

std::string amount_text(const KeyRow& r, std::uint64_t v) { return amount_text(r.unit, v); }

json key_json(const KeyRow& r) {
  return {{"limit", r.limit},
          {"attributes", r.attributes},
          {"window", r.window},
          {"used", amount_json(r, r.used)},
          {"limit_value", amount_json(r, r.limit_value)},
          {"remaining", amount_json(r, r.remaining)},
          {"unit", r.unit},
          {"shadow", r.shadow}};
}

void print_keys(const std::vector<KeyRow>& rows) {
  std::vector<std::vector<std::string>> cells;
  cells.reserve(rows.size());
  for (const KeyRow& r : rows) {
    cells.push_back({r.limit, printable_text(r.attributes), r.window, amount_text(r, r.used),
                     amount_text(r, r.limit_value), amount_text(r, r.remaining), r.unit});
  }
  print_table({"LIMIT", "ATTRIBUTES", "WINDOW", "USED", "LIMIT", "REMAINING", "UNIT"}, cells,
              {3, 4, 5});
}

int run_keys(const Globals& g, bool as_json, bool all_windows) {
  Result<std::vector<KeyRow>> rows = list_keys(g.segment, all_windows);
  if (!rows.ok()) return fail(kExitUsage, rows.status().message());
  std::vector<KeyRow>& r = rows.value();
  std::sort(r.begin(), r.end(), [](const KeyRow& a, const KeyRow& b) {
    return std::tie(a.limit, a.attributes, a.window_start_unix) <
           std::tie(b.limit, b.attributes, b.window_start_unix);
  });
  if (as_json) {
    json doc = json::array();
    for (const KeyRow& row : r) doc.push_back(key_json(row));
    print_json(doc);
  } else {
    print_keys(r);
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------
// limits

json limit_json(const LimitRow& r) {
  return {{"limit", r.limit},       {"kind", r.kind},
          {"unit", r.unit},         {"shadow", r.shadow},
          {"keys", r.keys},         {"admitted", r.admitted},
          {"rejected", r.rejected}, {"shadow_rejected", r.shadow_rejected}};
}

void print_limits(const std::vector<LimitRow>& rows) {
  std::vector<std::vector<std::string>> cells;
  cells.reserve(rows.size());
  for (const LimitRow& r : rows) {
    cells.push_back({r.limit, r.kind + (r.shadow ? " (shadow)" : ""), r.unit,
                     std::to_string(r.keys), std::to_string(r.admitted), std::to_string(r.rejected),
                     std::to_string(r.shadow_rejected)});
  }
  print_table({"LIMIT", "KIND", "UNIT", "KEYS", "ADMITTED", "REJECTED", "WOULD-REJECT"}, cells,
              {3, 4, 5, 6});
}

int run_limits(const Globals& g, bool as_json) {
  Result<std::vector<LimitRow>> rows = list_limits(g.segment);
  if (!rows.ok()) return fail(kExitUsage, rows.status().message());
  if (as_json) {
    json doc = json::array();
    for (const LimitRow& row : rows.value()) doc.push_back(limit_json(row));
    print_json(doc);
  } else {
    print_limits(rows.value());
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------
// reload

// Waits up to `wait` for the published generation to move past `from`.
std::uint64_t wait_generation(const std::string& segment, std::uint64_t from,
                              std::chrono::milliseconds wait) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    Result<SegmentStatus> s = read_status(segment);
    if (s.ok() && s->policy_generation != from) return s->policy_generation;
    if (std::chrono::steady_clock::now() >= deadline) return from;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int run_reload(const Globals& g) {
  Result<SegmentStatus> s = read_status(g.segment);
  if (!s.ok()) return fail(kExitUsage, s.status().message());
  if (!s->sidecar_alive) {
    return fail(kExitUsage, "no live sluiced on segment '" + g.segment +
                                "' (its heartbeat stopped); start it with: sluiced --config "
                                "POLICY.yaml");
  }
  const pid_t pid = static_cast<pid_t>(s->pid);
  if (::kill(pid, SIGHUP) != 0) {
    return fail(kExitUsage, "cannot signal sluiced (pid " + std::to_string(pid) +
                                "): " + std::strerror(errno) + "; run as the user of sluiced");
  }
  const std::uint64_t from = s->policy_generation;
  const std::uint64_t to = wait_generation(g.segment, from, std::chrono::seconds(3));
  if (to == from) {
    return fail(kExitRejected, "sluiced (pid " + std::to_string(pid) + ") kept policy generation " +
                                   std::to_string(from) +
                                   ": the reload was refused; run `sluice check POLICY.yaml` "
                                   "or see the sluiced log for why");
  }
  std::printf("policy reloaded by sluiced (pid %d): generation %llu -> %llu\n", pid,
              static_cast<unsigned long long>(from), static_cast<unsigned long long>(to));
  return kExitOk;
}

}  // namespace

void add_inspect_commands(CLI::App& app, const Globals& g, std::vector<Command>& out) {
  CLI::App* status = app.add_subcommand(
      "status", "sidecar liveness, policy, table use, totals, alerts, burn rates");
  auto status_json_flag = std::make_shared<bool>(false);
  status->add_flag("--json", *status_json_flag, "one JSON object");
  status->footer(
      "After the counters: the policy's firing alerts, and the budget keys on course to run out\n"
      "in their window at their 5-minute burn (soonest first, at most 10), as the live sluiced\n"
      "last evaluated them (about once a second). Without a live sluiced, or before it has\n"
      "written them, one line says they are not available: never an old sluiced's figures.\n"
      "--json: \"alerts\" (every alert), \"burn\" (every budget key, usd in nano-dollars),\n"
      "\"telemetry_unix_ns\"; all three null, and \"telemetry_unavailable\" says why, when not\n"
      "available.");
  out.push_back({status, [&g, status_json_flag] { return run_status(g, *status_json_flag); }});

  CLI::App* keys = app.add_subcommand("keys", "every live limit cell: used, limit, remaining");
  auto keys_json_flag = std::make_shared<bool>(false);
  auto all_windows = std::make_shared<bool>(false);
  keys->add_flag("--json", *keys_json_flag, "one JSON array");
  keys->add_flag("--all-windows", *all_windows, "include budget cells of past windows");
  keys->footer(
      "USED of a rate is what its bucket holds now (out of the burst); of a budget, what this\n"
      "window spent. USD amounts have nine decimals (nano-dollars).");
  out.push_back({keys, [&g, keys_json_flag, all_windows] {
                   return run_keys(g, *keys_json_flag, *all_windows);
                 }});

  CLI::App* limits = app.add_subcommand("limits", "every limit: keys, admitted, rejected");
  auto limits_json_flag = std::make_shared<bool>(false);
  limits->add_flag("--json", *limits_json_flag, "one JSON array");
  limits->footer(
      "Counts are summed over every client of the current policy; WOULD-REJECT counts the calls a\n"
      "shadow limit would have refused.");
  out.push_back({limits, [&g, limits_json_flag] { return run_limits(g, *limits_json_flag); }});

  CLI::App* reload = app.add_subcommand("reload", "make sluiced re-read its policy file (SIGHUP)");
  reload->footer("Exit status: 0 reloaded, 1 refused (the running policy is kept), 2 no sluiced.");
  out.push_back({reload, [&g] { return run_reload(g); }});
}

}  // namespace sluice::cli
