// sluiced's alerts end to end, in process, on an injected wall clock: a
// scripted workload of reported calls makes each alert kind fire and then
// resolve; every change is logged once, written to the telemetry file that
// `sluice status` reads, exported as metrics and posted to a webhook on
// loopback; a webhook that never answers holds up nothing.
#include "telemetry_monitor.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http_receiver.h"
#include "metrics.h"
#include "sluice/telemetry.h"
#include "sluice_fixture.h"
#include "test_support.h"

namespace sluice {
namespace {

using nlohmann::json;
using testing::LogLines;
using testing::Receiver;
using testing::SidecarHarness;

constexpr std::uint64_t kSecondNs = 1'000'000'000ull;
constexpr std::uint64_t kMs = 1'000'000ull;
constexpr std::uint64_t kT0 = 1'795'395'600ull * kSecondNs;  // 2026-11-23 01:00:00 UTC

std::string policy(const std::string& webhook_url, bool with_slow = true) {
  std::string p = R"(
models:
  gpt-4o: { input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00 }
limits:
  - name: pricing-daily-usd
    match: { team: pricing }
    usd_per_day: 0.10
)";
  if (!webhook_url.empty()) p += "alerts_webhook: " + webhook_url + "\n";
  p += R"(alerts:
  - { name: pricing-burn, budget: pricing-daily-usd, when: exhausts_within, value: 2h }
  - { name: errors, when: error_rate_above, value: 0.1, over: 1m, min_calls: 5 }
)";
  if (with_slow) {
    p += "  - { name: gpt4o-slow, model: gpt-4o, when: p99_latency_above, value: 8s, over: 1m, "
         "min_calls: 5 }\n";
  }
  return p;
}

// A sidecar whose wall clock the test sets, logging to `log`.
struct Rig {
  explicit Rig(const std::string& webhook_url, const std::string& tag = "telemetry")
      : clock(std::make_shared<std::atomic<std::uint64_t>>(kT0)),
        harness(tag, policy(webhook_url), "", options(clock, log)) {}

  static SidecarOptions options(const std::shared_ptr<std::atomic<std::uint64_t>>& clock,
                                const LogLines& log) {
    SidecarOptions o = testing::no_audit();
    o.wall_clock = [clock] { return clock->load(); };
    o.telemetry = SidecarOptions::Telemetry::kTick;
    o.log = log.fn();
    return o;
  }
  // Moves the wall clock to kT0 + `s` seconds and ticks.
  void at(std::uint64_t s) {
    clock->store(kT0 + s * kSecondNs);
    harness.sidecar().tick();
  }
  // One call of gpt-4o for team pricing, 100 input and 50 output tokens
  // ($0.00075), reporting `outcome` after 10 s.
  void call(Client& c, Outcome outcome) {
    const Attribute attrs[] = {{"team", "pricing"}, {"model", "gpt-4o"}};
    const Decision d = c.reserve_raw({attrs, 100, 50});
    ASSERT_TRUE(d.admitted);
    ASSERT_TRUE(c.commit(d.reservation_id, 100, 50, {outcome, 10'000 * kMs, 0, 200, {}}).ok());
  }
  std::map<std::string, bool> firing() {
    std::map<std::string, bool> out;
    for (const AlertStatus& a : harness.sidecar().telemetry().last().alerts) {
      out[a.name] = a.firing;
    }
    return out;
  }
  int lines_with(const std::string& text) const {
    int n = 0;
    for (const std::string& line : log.get()) n += line.find(text) != std::string::npos ? 1 : 0;
    return n;
  }

  LogLines log;
  std::shared_ptr<std::atomic<std::uint64_t>> clock;
  SidecarHarness harness;
};

// The sample of `name` with these labels in a metrics text, or "" if none.
std::string metric(const std::string& text, const std::string& series) {
  const std::size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return "";
  const std::size_t from = at + series.size() + 2;
  return text.substr(from, text.find('\n', from) - from);
}

// The workload every test below starts with: at 5 s, ten calls of 10 s, two
// of them provider errors, spending $0.0075 of the $0.10 budget.
void burst(Rig& rig) {
  Client c = rig.harness.attach();
  for (int i = 0; i < 8; ++i) rig.call(c, Outcome::kOk);
  for (int i = 0; i < 2; ++i) rig.call(c, Outcome::kProviderError);
  rig.at(5);
}

TEST(TelemetryMonitor, EachAlertKindFiresAndResolvesOnAScriptedWorkloadAndLogsEachChangeOnce) {
  Receiver receiver;
  Rig rig(receiver.url());
  EXPECT_EQ(rig.firing(), (std::map<std::string, bool>{
                              {"errors", false}, {"gpt4o-slow", false}, {"pricing-burn", false}}));
  burst(rig);
  // Over the 5 s since the first sample: 2 errors in 10 calls (0.2 > 0.1),
  // p99 near 10 s (> 8 s), and $0.0015/s against $0.0925 left: about 62 s.
  EXPECT_EQ(rig.firing(), (std::map<std::string, bool>{
                              {"errors", true}, {"gpt4o-slow", true}, {"pricing-burn", true}}));
  const Telemetry t = rig.harness.sidecar().telemetry().last();
  ASSERT_EQ(t.burn.size(), 1u);
  EXPECT_EQ(t.burn[0].limit, "pricing-daily-usd");
  EXPECT_EQ(t.burn[0].key, "team=pricing");
  EXPECT_EQ(t.burn[0].measure, "usd");
  EXPECT_EQ(t.burn[0].used, 7'500'000u);  // nano-dollars
  EXPECT_DOUBLE_EQ(t.burn[0].per_second_5m, 1'500'000.0);
  ASSERT_TRUE(t.burn[0].exhausts_in_s.has_value());
  EXPECT_NEAR(static_cast<double>(*t.burn[0].exhausts_in_s), 92'500'000.0 / 1'500'000.0, 1.0);

  // The file `sluice status` reads says the same.
  Result<Telemetry> file = read_telemetry(rig.harness.segment());
  ASSERT_TRUE(file.ok()) << file.status().message();
  EXPECT_EQ(file->unix_ns, kT0 + 5 * kSecondNs);
  EXPECT_EQ(file->sidecar_pid, static_cast<std::uint64_t>(::getpid()));
  ASSERT_EQ(file->alerts.size(), 3u);
  EXPECT_TRUE(file->alerts[0].firing);
  EXPECT_EQ(file->alerts[0].labels.at("key"), "team=pricing");
  EXPECT_EQ(file->burn[0].exhausts_in_s, t.burn[0].exhausts_in_s);

  // Calls stop. The 1-minute windows empty after a minute; the 5-minute burn
  // rate after five.
  for (std::uint64_t s = 15; s <= 45; s += 10) rig.at(s);
  EXPECT_EQ(rig.firing(), (std::map<std::string, bool>{
                              {"errors", true}, {"gpt4o-slow", true}, {"pricing-burn", true}}));
  for (std::uint64_t s = 55; s <= 125; s += 10) rig.at(s);
  EXPECT_EQ(rig.firing(), (std::map<std::string, bool>{
                              {"errors", false}, {"gpt4o-slow", false}, {"pricing-burn", true}}));
  for (std::uint64_t s = 135; s <= 425; s += 10) rig.at(s);
  EXPECT_EQ(rig.firing(), (std::map<std::string, bool>{
                              {"errors", false}, {"gpt4o-slow", false}, {"pricing-burn", false}}));

  for (const std::string name : {"errors", "gpt4o-slow", "pricing-burn"}) {
    EXPECT_EQ(rig.lines_with("alert '" + name + "' firing: "), 1) << name;
    EXPECT_EQ(rig.lines_with("alert '" + name + "' resolved: "), 1) << name;
  }

  // The webhook got each change once, firing before resolved.
  auto delivered = [&] {
    std::vector<std::string> changes;
    for (const testing::Received& r : receiver.received()) {
      const json message = json::parse(r.body);
      for (const json& a : message.at("alerts")) {
        changes.push_back(a.at("labels").at("alertname").get<std::string>() + " " +
                          a.at("status").get<std::string>());
      }
    }
    return changes;
  };
  ASSERT_TRUE(testing::eventually([&] { return delivered().size() >= 6; }));
  const std::vector<std::string> got = delivered();
  ASSERT_EQ(got.size(), 6u);
  for (const std::string name : {"errors", "gpt4o-slow", "pricing-burn"}) {
    const auto fired = std::find(got.begin(), got.end(), name + " firing");
    const auto resolved = std::find(got.begin(), got.end(), name + " resolved");
    EXPECT_NE(fired, got.end()) << name;
    EXPECT_NE(resolved, got.end()) << name;
    EXPECT_LT(fired, resolved) << name;
  }
}

TEST(TelemetryMonitor, MetricsExportBurnRateTimeToExhaustionAndFiringAlerts) {
  Rig rig("");
  burst(rig);
  Exposition exposition(100);
  const std::string text = exposition.render(read_segment(rig.harness.segment()), nullptr);
  EXPECT_EQ(metric(text, R"(sluice_budget_burn_rate{limit="pricing-daily-usd",key="team=pricing",)"
                         R"(unit="usd",window="5m"})"),
            "0.0015");
  // One sample 5 s old: the hour's rate is over the same 5 s.
  EXPECT_EQ(metric(text, R"(sluice_budget_burn_rate{limit="pricing-daily-usd",key="team=pricing",)"
                         R"(unit="usd",window="1h"})"),
            "0.0015");
  const std::uint64_t exhausts = *rig.harness.sidecar().telemetry().last().burn[0].exhausts_in_s;
  EXPECT_EQ(
      metric(text,
             R"(sluice_budget_exhaustion_seconds{limit="pricing-daily-usd",key="team=pricing"})"),
      std::to_string(exhausts));
  EXPECT_EQ(metric(text, R"(sluice_alert_firing{name="pricing-burn"})"), "1");
  EXPECT_EQ(metric(text, R"(sluice_alert_firing{name="gpt4o-slow"})"), "1");
  EXPECT_EQ(metric(text, R"(sluice_alert_firing{name="errors"})"), "1");
  EXPECT_NE(text.find("# TYPE sluice_alert_firing gauge"), std::string::npos);
}

TEST(TelemetryMonitor, AnAlertRemovedByAReloadWhileFiringIsResolvedOnce) {
  Rig rig("");
  burst(rig);
  ASSERT_TRUE(rig.firing().at("gpt4o-slow"));
  ASSERT_TRUE(rig.harness.rewrite(policy("", /*with_slow=*/false)).ok());
  rig.at(6);
  EXPECT_EQ(rig.firing().count("gpt4o-slow"), 0u);
  EXPECT_TRUE(rig.firing().at("errors"));  // unchanged, so still firing
  EXPECT_EQ(rig.lines_with("alert 'gpt4o-slow' resolved: "), 1);
  EXPECT_EQ(rig.lines_with("alert 'errors' firing: "), 1);
}

// A loopback port that accepts connections into its backlog and never
// answers them.
class SilentPort {
 public:
  SilentPort() : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentPort() { ::close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/alerts"; }

 private:
  int fd_;
  int port_ = 0;
};

TEST(TelemetryMonitor, AWebhookThatNeverAnswersHoldsUpNoTick) {
  SilentPort silent;
  Rig rig(silent.url());
  burst(rig);  // three changes queued for a receiver that never answers
  for (std::uint64_t s = 6; s <= 30; ++s) {
    rig.at(s);
    Result<Telemetry> file = read_telemetry(rig.harness.segment());
    ASSERT_TRUE(file.ok());
    EXPECT_EQ(file->unix_ns, kT0 + s * kSecondNs);
  }
  const std::optional<AlertWebhookStats> hook = rig.harness.sidecar().telemetry().webhook_stats();
  ASSERT_TRUE(hook.has_value());
  EXPECT_EQ(hook->queued, 3u);
  EXPECT_EQ(hook->sent, 0u);
}

TEST(TelemetryFile, RoundTripsEveryFieldAndRefusesTextItCannotRead) {
  Telemetry t;
  t.unix_ns = kT0;
  t.sidecar_pid = 4242;
  BurnRate b;
  b.limit = "pricing-daily-usd";
  b.key = "team=pricing";
  b.measure = "usd";
  b.budget = 25'000'000'000;
  b.used = 1'250'000'000;
  b.per_second_5m = 1234.5;
  b.per_second_1h = 99.25;
  b.exhausts_in_s = 19'230;
  t.burn.push_back(b);
  b.key = "team=search";
  b.exhausts_in_s.reset();
  t.burn.push_back(b);
  AlertStatus a;
  a.name = "pricing-burn";
  a.kind = AlertKind::kExhaustsWithin;
  a.firing = true;
  a.since_unix_ns = kT0 - 5;
  a.started_firing_unix_ns = kT0 - 5;
  a.summary = "pricing-daily-usd team=pricing runs out in 5h20m";
  a.labels = {{"budget", "pricing-daily-usd"}, {"key", "team=pricing"}};
  a.observed = std::numeric_limits<double>::infinity();
  t.alerts.push_back(a);

  Result<Telemetry> back = parse_telemetry(telemetry_json(t), "test");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->unix_ns, kT0);
  EXPECT_EQ(back->sidecar_pid, 4242u);
  ASSERT_EQ(back->burn.size(), 2u);
  EXPECT_EQ(back->burn[0].limit, "pricing-daily-usd");
  EXPECT_EQ(back->burn[0].key, "team=pricing");
  EXPECT_EQ(back->burn[0].measure, "usd");
  EXPECT_EQ(back->burn[0].budget, 25'000'000'000u);
  EXPECT_EQ(back->burn[0].used, 1'250'000'000u);
  EXPECT_EQ(back->burn[0].per_second_5m, 1234.5);
  EXPECT_EQ(back->burn[0].per_second_1h, 99.25);
  EXPECT_EQ(back->burn[0].exhausts_in_s, std::optional<std::uint64_t>(19'230));
  EXPECT_FALSE(back->burn[1].exhausts_in_s.has_value());
  ASSERT_EQ(back->alerts.size(), 1u);
  const AlertStatus& got = back->alerts[0];
  EXPECT_EQ(got.name, "pricing-burn");
  EXPECT_EQ(got.kind, AlertKind::kExhaustsWithin);
  EXPECT_TRUE(got.firing);
  EXPECT_EQ(got.since_unix_ns, kT0 - 5);
  EXPECT_EQ(got.started_firing_unix_ns, kT0 - 5);
  EXPECT_EQ(got.summary, a.summary);
  EXPECT_EQ(got.labels, a.labels);
  EXPECT_TRUE(std::isinf(got.observed));

  for (const char* bad : {"", "{", "[]", R"({"unix_ns": 1})",
                          R"({"unix_ns":1,"sidecar_pid":2,"burn":[],"alerts":[{"name":"a",)"
                          R"("kind":"soon","firing":true,"since_unix_ns":0,)"
                          R"("started_firing_unix_ns":0,"summary":"","labels":{},)"
                          R"("observed":1}]})"}) {
    Result<Telemetry> r = parse_telemetry(bad, "/dev/shm/x.telemetry.json");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kIncompatible);
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find("/dev/shm/x.telemetry.json"), std::string::npos);
  }
  EXPECT_EQ(read_telemetry(testing::unique_segment("none")).status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace sluice
