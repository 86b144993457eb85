// How `sluice status` and `sluice top` print sluiced's telemetry: only the
// live sidecar's file counts, firing alerts and the budget keys soonest to
// run out read as one line each, and the JSON carries the raw fields.
#include "telemetry_view.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rate_text.h"

namespace sluice::cli {
namespace {

using nlohmann::json;

constexpr std::uint64_t kSecondNs = 1'000'000'000ull;
constexpr std::uint64_t kT0 = 1'795'395'600ull * kSecondNs;  // 2026-11-23 01:00:00 UTC

SegmentStatus live_sidecar(std::uint64_t pid) {
  SegmentStatus s;
  s.segment = "sluice-view";
  s.sidecar_alive = true;
  s.pid = pid;
  return s;
}

Telemetry written_by(std::uint64_t pid) {
  Telemetry t;
  t.unix_ns = kT0;
  t.sidecar_pid = pid;
  return t;
}

AlertStatus alert(const std::string& name, AlertKind kind, bool firing,
                  std::uint64_t started_firing_unix_ns, const std::string& summary) {
  AlertStatus a;
  a.name = name;
  a.kind = kind;
  a.firing = firing;
  a.since_unix_ns = started_firing_unix_ns;
  a.started_firing_unix_ns = started_firing_unix_ns;
  a.summary = summary;
  return a;
}

BurnRate burn(const std::string& limit, const std::string& key, const std::string& measure,
              double per_second_5m, double per_second_1h,
              std::optional<std::uint64_t> exhausts_in_s) {
  BurnRate b;
  b.limit = limit;
  b.key = key;
  b.measure = measure;
  b.per_second_5m = per_second_5m;
  b.per_second_1h = per_second_1h;
  b.budget = 100;
  b.used = 40;
  b.exhausts_in_s = exhausts_in_s;
  return b;
}

// Five budget keys: four on course to run out (one already has), one not.
Telemetry five_keys() {
  Telemetry t = written_by(42);
  t.burn = {
      burn("team-daily-usd", "team=spender", "usd", 3'500'000, 1'000'000, 3900),
      burn("team-daily-tokens", "team=spender", "tokens", 42, 0, 2 * 86400 + 4 * 3600),
      burn("team-daily-usd", "team=pricing", "usd", 0, 5'000, std::nullopt),
      burn("tiny-usd", "team=tiny", "usd", 10'000, 2'500, 0),
      burn("calls-per-day", "", "requests", 0.5, 0.25, 45),
  };
  return t;
}

// ---------------------------------------------------------------------------
// Which telemetry counts

TEST(LiveTelemetry, TheLiveSidecarsOwnFileIsShown) {
  const LiveTelemetry live = live_telemetry(live_sidecar(42), written_by(42));
  ASSERT_TRUE(live.telemetry.has_value());
  EXPECT_EQ(live.telemetry->unix_ns, kT0);
  EXPECT_EQ(live.unavailable, "");
}

TEST(LiveTelemetry, WithoutALiveSidecarAFileLeftBehindIsNotShown) {
  SegmentStatus stopped = live_sidecar(42);
  stopped.sidecar_alive = false;  // heartbeat stopped: the pid in the header is stale
  const LiveTelemetry live = live_telemetry(stopped, written_by(42));
  EXPECT_FALSE(live.telemetry.has_value());
  EXPECT_EQ(unavailable_line(live), "alerts and burn rates: not available (sluiced not running)");
}

TEST(LiveTelemetry, AFileOfAnEarlierSluicedIsNotShown) {
  const LiveTelemetry live = live_telemetry(live_sidecar(43), written_by(42));
  EXPECT_FALSE(live.telemetry.has_value());
  EXPECT_EQ(unavailable_line(live),
            "alerts and burn rates: not available (not written by the running sluiced (pid 43))");
}

TEST(LiveTelemetry, AMissingFileWithALiveSidecarSaysItIsNotWrittenYet) {
  const Result<Telemetry> missing = Status(ErrorCode::kNotFound, "no telemetry at /dev/shm/x");
  const LiveTelemetry live = live_telemetry(live_sidecar(43), missing);
  EXPECT_FALSE(live.telemetry.has_value());
  EXPECT_EQ(live.unavailable, "not written by the running sluiced (pid 43)");
}

TEST(LiveTelemetry, AnUnreadableFileSaysWhyInOneLine) {
  const Result<Telemetry> denied =
      Status(ErrorCode::kPermissionDenied, "cannot open /dev/shm/x.telemetry.json: add yourself");
  const LiveTelemetry live = live_telemetry(live_sidecar(43), denied);
  EXPECT_EQ(unavailable_line(live),
            "alerts and burn rates: not available (cannot open /dev/shm/x.telemetry.json: add "
            "yourself)");
}

TEST(LiveTelemetry, ReadingASegmentWithoutTelemetryIsNotAvailable) {
  SegmentStatus s = live_sidecar(43);
  s.segment = "sluice-view-test-no-such-segment";
  EXPECT_EQ(read_live_telemetry(s).unavailable, "not written by the running sluiced (pid 43)");
  s.sidecar_alive = false;
  EXPECT_EQ(read_live_telemetry(s).unavailable, "sluiced not running");
}

// ---------------------------------------------------------------------------
// Alerts

TEST(AlertLines, NoneFiringIsOneLineWithTheNumberDefined) {
  Telemetry t = written_by(42);
  EXPECT_EQ(alert_lines(t), "alerts: none firing (0 defined)\n");
  t.alerts = {alert("errors", AlertKind::kErrorRateAbove, false, 0, "not evaluated yet"),
              // Resolved: started_firing_unix_ns is kept, but it is not shown.
              alert("slow", AlertKind::kP99LatencyAbove, false, kT0 - 60 * kSecondNs, "ok now")};
  EXPECT_EQ(alert_lines(t), "alerts: none firing (2 defined)\n");
}

TEST(AlertLines, EachFiringAlertIsOneLineWithKindHowLongAndSummary) {
  Telemetry t = written_by(42);
  t.unix_ns = kT0 + 192 * kSecondNs;
  t.alerts = {
      alert("errors", AlertKind::kErrorRateAbove, true, kT0,
            "error rate of all models is 20% over 1m (2 of 10 calls); alert above 10%"),
      alert("slow", AlertKind::kP99LatencyAbove, false, 0, "p99 latency of gpt-4o is 2s"),
      alert("pricing-burn", AlertKind::kExhaustsWithin, true, kT0 + 180 * kSecondNs,
            "budget pricing-daily-usd (team=pricing) exhausts in 1m2s at 0.09 USD/min (alert: "
            "exhausts within 2h)"),
      // Sampled a moment before it started firing by another clock: never negative.
      alert("late", AlertKind::kExhaustsWithin, true, kT0 + 200 * kSecondNs, "x"),
  };
  EXPECT_EQ(alert_lines(t),
            "alerts: 3 firing (4 defined)\n"
            "  errors (error_rate_above) firing for 3m12s: error rate of all models is 20% over "
            "1m (2 of 10 calls); alert above 10%\n"
            "  pricing-burn (exhausts_within) firing for 12s: budget pricing-daily-usd "
            "(team=pricing) exhausts in 1m2s at 0.09 USD/min (alert: exhausts within 2h)\n"
            "  late (exhausts_within) firing for 0s: x\n");
}

// ---------------------------------------------------------------------------
// Burn

TEST(BurnLines, KeysOnCourseToRunOutSoonestFirstInTheirOwnUnits) {
  EXPECT_EQ(burn_lines(five_keys(), 10),
            "burn: 4 of 5 budget keys on course to run out in their window, soonest first\n"
            "  tiny-usd team=tiny: $0.0360/h over 5m, $0.0090/h over 1h, exhausted\n"
            "  calls-per-day: 0.5000 requests/s over 5m, 0.2500 requests/s over 1h, runs out in "
            "45s\n"
            "  team-daily-usd team=spender: $12.60/h over 5m, $3.60/h over 1h, runs out in 1h05m\n"
            "  team-daily-tokens team=spender: 42.00 tok/s over 5m, 0 tok/s over 1h, runs out in "
            "2d04h\n");
}

TEST(BurnLines, BeyondTheMostShownTheRestAreCounted) {
  EXPECT_EQ(burn_lines(five_keys(), 2),
            "burn: 4 of 5 budget keys on course to run out in their window, soonest first\n"
            "  tiny-usd team=tiny: $0.0360/h over 5m, $0.0090/h over 1h, exhausted\n"
            "  calls-per-day: 0.5000 requests/s over 5m, 0.2500 requests/s over 1h, runs out in "
            "45s\n"
            "  and 2 more\n");
}

TEST(BurnLines, NoKeyOnCourseIsOneLine) {
  Telemetry t = written_by(42);
  EXPECT_EQ(burn_lines(t, 10),
            "burn: none of 0 budget keys on course to run out in their window\n");
  t.burn = {burn("team-daily-usd", "team=pricing", "usd", 0, 5'000, std::nullopt)};
  EXPECT_EQ(burn_lines(t, 10),
            "burn: none of 1 budget keys on course to run out in their window\n");
}

TEST(BurnLines, SoonestFirstKeepsTheKeysNotRunningOutLastInSluicedsOrder) {
  Telemetry t = five_keys();
  t.burn.push_back(burn("z-last", "team=a", "usd", 0, 0, std::nullopt));
  std::vector<std::string> order;
  for (const BurnRate& b : soonest_first(t.burn)) order.push_back(b.limit + " " + b.key);
  EXPECT_EQ(order,
            (std::vector<std::string>{
                "tiny-usd team=tiny", "calls-per-day ", "team-daily-usd team=spender",
                "team-daily-tokens team=spender", "team-daily-usd team=pricing", "z-last team=a"}));
}

// ---------------------------------------------------------------------------
// JSON

TEST(TelemetryJson, NotAvailableIsNullWithTheReason) {
  SegmentStatus stopped = live_sidecar(42);
  stopped.sidecar_alive = false;
  json doc = {{"segment", "sluice-view"}};
  add_telemetry_json(doc, live_telemetry(stopped, written_by(42)));
  EXPECT_EQ(doc, json::parse(R"({"segment":"sluice-view","telemetry_unix_ns":null,"alerts":null,
                                 "burn":null,"telemetry_unavailable":"sluiced not running"})"));
}

TEST(TelemetryJson, AvailableHasEveryAlertAndEveryKeyWithRawFields) {
  Telemetry t = five_keys();
  t.burn.resize(3);  // spender usd, spender tokens, pricing (not on course)
  t.alerts = {alert("errors", AlertKind::kErrorRateAbove, true, kT0, "error rate is 20%"),
              alert("pricing-burn", AlertKind::kExhaustsWithin, false, 0, "no key")};
  t.alerts[0].observed = 0.2;
  t.alerts[0].labels = {{"model", "gpt-4o"}};
  t.alerts[1].observed = std::numeric_limits<double>::infinity();
  t.alerts[1].labels = {{"budget", "team-daily-usd"}};
  json doc = json::object();
  add_telemetry_json(doc, live_telemetry(live_sidecar(42), t));
  EXPECT_EQ(doc, json::parse(R"({
    "telemetry_unix_ns": 1795395600000000000,
    "telemetry_unavailable": null,
    "alerts": [
      {"name": "errors", "kind": "error_rate_above", "firing": true,
       "since_unix_ns": 1795395600000000000, "started_firing_unix_ns": 1795395600000000000,
       "summary": "error rate is 20%", "labels": {"model": "gpt-4o"}, "observed": 0.2},
      {"name": "pricing-burn", "kind": "exhausts_within", "firing": false,
       "since_unix_ns": 0, "started_firing_unix_ns": 0,
       "summary": "no key", "labels": {"budget": "team-daily-usd"}, "observed": null}],
    "burn": [
      {"limit": "team-daily-usd", "key": "team=spender", "measure": "usd", "budget": 100,
       "used": 40, "per_second_5m": 3500000.0, "per_second_1h": 1000000.0, "exhausts_in_s": 3900},
      {"limit": "team-daily-tokens", "key": "team=spender", "measure": "tokens", "budget": 100,
       "used": 40, "per_second_5m": 42.0, "per_second_1h": 0.0, "exhausts_in_s": 187200},
      {"limit": "team-daily-usd", "key": "team=pricing", "measure": "usd", "budget": 100,
       "used": 40, "per_second_5m": 0.0, "per_second_1h": 5000.0, "exhausts_in_s": null}]
  })"))
      << doc.dump(2);
}

// ---------------------------------------------------------------------------
// The shared formatting

TEST(RateText, BurnIsUsdPerHourOrUnitsPerSecond) {
  EXPECT_EQ(burn_text("usd", 3'500'000.0), "$12.60/h");
  EXPECT_EQ(burn_text("usd", 0.0), "$0/h");
  EXPECT_EQ(burn_text("tokens", 1250.4), "1250 tok/s");
  EXPECT_EQ(burn_text("input_tokens", 0.5), "0.5000 input_tokens/s");
  EXPECT_EQ(burn_text("", 2.0), "2.00 units/s");
  EXPECT_EQ(burn_text("usd", std::nullopt), "");
}

TEST(RateText, DurationsReadAsTheLargestTwoUnits) {
  EXPECT_EQ(duration_text(std::nullopt), "—");
  EXPECT_EQ(duration_text(0.0), "0s");
  EXPECT_EQ(duration_text(-3.0), "0s");
  EXPECT_EQ(duration_text(45.0), "45s");
  EXPECT_EQ(duration_text(750.0), "12m30s");
  EXPECT_EQ(duration_text(3900.0), "1h05m");
  EXPECT_EQ(duration_text(187200.0), "2d04h");
  EXPECT_EQ(duration_text(366.0 * 86400), ">1y");
}

}  // namespace
}  // namespace sluice::cli
