// The `sluice` CLI end to end: a real sluiced on a segment of its own per
// test, the real sluice binary run as a child process, real values asserted
// on its output and exit status. Waits poll with a deadline; nothing sleeps
// a fixed time.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "sluice/inspect.h"
#include "test_support.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using testing::build_root;
using testing::eventually;
using testing::one_line;
using testing::read_text;

const std::string kExample = std::string(SLUICE_SOURCE_ROOT) + "/examples/policy.yaml";

// Starts `args` with stdout and stderr sent to files; returns its pid.
pid_t spawn(const std::vector<std::string>& args, const fs::path& out, const fs::path& err) {
  return sluice::testing::spawn_child(args, out.string(), err.string());
}

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    segment_ = "sluice-clitest-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    char tmpl[] = "/tmp/sluice-clitest-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    policy_ = dir_ / "policy.yaml";
    write_policy();
    start_sidecar();
  }

  void TearDown() override {
    stop_sidecar();
    ::unlink(("/dev/shm/" + segment_).c_str());
    ::unlink(("/dev/shm/" + segment_ + ".sluiced.lock").c_str());
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // The example policy on a segment of this test's own, state kept in dir_.
  void write_policy() {
    std::string text = read_text(kExample);
    const std::string from = "name: sluice-demo";
    const std::string path = "path: var/sluice.db";
    text.replace(text.find(from), from.size(), "name: " + segment_);
    text.replace(text.find(path), path.size(), "path: " + (dir_ / "sluice.db").string());
    text += "audit:\n  dir: " + (dir_ / "audit").string() + "\n";
    std::ofstream(policy_) << text;
  }

  // SIGTERM (SIGKILL if it takes more than 5 s).
  void stop_sidecar() {
    testing::stop_child(sidecar_);
    sidecar_ = -1;
  }

  void start_sidecar() {
    sidecar_ = spawn({build_root() + "/sidecar/sluiced", "--foreground", "--config", policy_},
                     dir_ / "sluiced.out", dir_ / "sluiced.log");
    ASSERT_GT(sidecar_, 0);
    const bool ready = eventually([&] {
      if (::waitpid(sidecar_, nullptr, WNOHANG) == sidecar_) {
        sidecar_ = -1;
        return true;  // exited: reported below
      }
      Result<SegmentStatus> s = read_status(segment_);
      return s.ok() && s->sidecar_alive && s->policy_generation >= 1;
    });
    ASSERT_TRUE(ready && sidecar_ > 0)
        << "sluiced did not start: " << read_text(dir_ / "sluiced.log");
  }

  CliRun sluice(std::vector<std::string> args, bool with_segment = true) {
    args.insert(args.begin(), build_root() + "/clients/cli/sluice");
    if (with_segment) {
      args.push_back("--segment");
      args.push_back(segment_);
    }
    CliRun r;
    const fs::path out = dir_ / "cli.out";
    const fs::path err = dir_ / "cli.err";
    const pid_t pid = spawn(args, out, err);
    if (pid <= 0) return r;
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
  }

  json sluice_json(const std::vector<std::string>& args) {
    std::vector<std::string> with_json = args;
    with_json.push_back("--json");
    const CliRun r = sluice(with_json);
    json doc = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(doc.is_discarded()) << "not JSON: " << r.out << r.err;
    return doc;
  }

  json status() { return sluice_json({"status"}); }

  // The keys --json row of `limit` with `attributes`, or null.
  json key_row(const std::string& limit, const std::string& attributes) {
    for (const json& row : sluice_json({"keys"})) {
      if (row["limit"] == limit && row["attributes"] == attributes) return row;
    }
    return nullptr;
  }

  json limit_row(const std::string& limit) {
    for (const json& row : sluice_json({"limits"})) {
      if (row["limit"] == limit) return row;
    }
    return nullptr;
  }

  double pricing_used() {
    const json row = key_row("pricing-daily-usd", "feature=quote-agent,team=pricing");
    return row.is_null() ? -1 : row["used"].get<double>();
  }

  static std::vector<std::string> pricing_call() {
    return {"--attr", "team=pricing", "--attr", "feature=quote-agent", "--model", "gpt-4o"};
  }

  static std::vector<std::string> with(std::vector<std::string> base,
                                       const std::vector<std::string>& more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  }

  std::string segment_;
  fs::path dir_;
  fs::path policy_;
  pid_t sidecar_ = -1;
};

TEST_F(CliTest, CheckAcceptsTheExamplePolicy) {
  const CliRun r = sluice({"check", kExample}, false);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, kExample + ": ok (5 limits, 2 models, segment sluice-demo)\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(CliTest, CheckRejectsABadPolicyWithOneLineNamingFileAndLine) {
  const fs::path bad = dir_ / "bad.yaml";
  std::ofstream(bad) << "segment:\n  name: x\nlimits:\n  - name: l\n    match: { team: a }\n"
                        "    usd_per_day: -5\n";
  const CliRun r = sluice({"check", bad.string()}, false);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_EQ(r.err.rfind(bad.string() + ":6: limits[0].usd_per_day", 0), 0u) << r.err;
}

TEST_F(CliTest, StatusAfterStartShowsALiveSidecarAndAnEmptyTable) {
  const json s = status();
  EXPECT_EQ(s["sidecar_alive"], true);
  EXPECT_EQ(s["pid"], sidecar_);
  EXPECT_GE(s["policy_generation"].get<int>(), 1);
  EXPECT_EQ(s["keys_used"], 0);
  EXPECT_EQ(s["keys_capacity"], 65536);
  EXPECT_EQ(s["reservations_in_flight"], 0);
  EXPECT_EQ(s["admitted_total"], 0);
  EXPECT_EQ(s["rejected_total"], 0);
}

TEST_F(CliTest, StatusForHumansPrintsAlignedKeyValueLines) {
  const CliRun r = sluice({"status"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\nsidecar_alive:          true\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nreservations_in_flight: 0\n"), std::string::npos) << r.out;
}

TEST_F(CliTest, StatusShowsTheStoreAndItsLastSync) {
  ASSERT_TRUE(eventually([&] { return status()["store"]["syncs"].get<int>() >= 1; }));
  const json store = status()["store"];
  EXPECT_EQ(store["where"], "sqlite:" + (dir_ / "sluice.db").string());
  EXPECT_EQ(store["health"], "up");
  EXPECT_EQ(store["failures"], 0);
  EXPECT_TRUE(store["last_error"].is_null());
  EXPECT_TRUE(store["global_limits"].empty());  // the example's limits are all local
  const CliRun r = sluice({"status"});
  EXPECT_NE(r.out.find("\nstore_health:           up\n"), std::string::npos) << r.out;
}

TEST_F(CliTest, ASpentBudgetSurvivesARestartOnAFreshSegment) {
  const json c = sluice_json(
      with({"charge"}, with(pricing_call(), {"--input-tokens", "1000", "--output-tokens", "500"})));
  ASSERT_EQ(c["admitted"], true);
  stop_sidecar();  // the last push
  ::unlink(("/dev/shm/" + segment_).c_str());
  start_sidecar();
  const json row = key_row("pricing-daily-usd", "feature=quote-agent,team=pricing");
  ASSERT_FALSE(row.is_null());
  EXPECT_EQ(row["used"].get<double>(), 0.0075);
  EXPECT_EQ(row["remaining"].get<double>(), 24.9925);
}

TEST_F(CliTest, ChargeCostsTheModelPriceExactlyAndShowsInKeys) {
  const json c = sluice_json(
      with({"charge"}, with(pricing_call(), {"--input-tokens", "1000", "--output-tokens", "500"})));
  EXPECT_EQ(c["admitted"], true);
  EXPECT_EQ(c["cost_usd"].get<double>(), 0.0075);  // 1000 x $2.50/M + 500 x $10/M
  EXPECT_GT(c["reservation"].get<std::uint64_t>(), 0u);

  const json row = key_row("pricing-daily-usd", "feature=quote-agent,team=pricing");
  ASSERT_FALSE(row.is_null());
  EXPECT_EQ(row["used"].get<double>(), 0.0075);
  EXPECT_EQ(row["limit_value"].get<double>(), 25.0);
  EXPECT_EQ(row["remaining"].get<double>(), 24.9925);
  EXPECT_EQ(row["unit"], "usd");
  const json limit = limit_row("pricing-daily-usd");
  ASSERT_FALSE(limit.is_null());
  EXPECT_EQ(limit["admitted"], 1);
  EXPECT_EQ(limit["rejected"], 0);
  EXPECT_EQ(limit["keys"], 1);
  EXPECT_EQ(limit["kind"], "budget");
  EXPECT_EQ(status()["keys_used"], 3);  // team-tokens, team-requests, pricing-daily-usd
}

TEST_F(CliTest, ChargeForHumansPrintsTheCost) {
  const CliRun r = sluice(
      with({"charge"}, with(pricing_call(), {"--input-tokens", "1000", "--output-tokens", "500"})));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("charged $0.0075 (reservation ", 0), 0u) << r.out;
}

TEST_F(CliTest, ReserveThenCommitFromAnotherProcessSettlesExactlyOnce) {
  const json res = sluice_json(
      with({"reserve", "--ttl", "10m"},
           with(pricing_call(), {"--input-tokens", "1000", "--max-output-tokens", "500"})));
  ASSERT_EQ(res["admitted"], true) << res;
  EXPECT_EQ(res["estimated_cost_usd"].get<double>(), 0.0075);
  const std::string id = std::to_string(res["reservation"].get<std::uint64_t>());
  EXPECT_EQ(res["reservation_str"], id);
  EXPECT_EQ(status()["reservations_in_flight"], 1);  // held after the reserving process exited

  const CliRun commit = sluice({"commit", id, "--input-tokens", "1000", "--output-tokens", "200"});
  EXPECT_EQ(commit.exit_code, 0) << commit.err;
  EXPECT_EQ(commit.out, "committed reservation " + id + ": $0.0045\n");
  EXPECT_EQ(pricing_used(), 0.0045);  // settled from the estimate to the actual usage
  EXPECT_EQ(status()["reservations_in_flight"], 0);

  const CliRun again = sluice({"commit", id, "--input-tokens", "1000", "--output-tokens", "200"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_EQ(again.err, "sluice: reservation " + id +
                           " is not live (unknown, already settled, or abandoned after its "
                           "--ttl); nothing was charged: check the id `sluice reserve` printed\n");
  EXPECT_EQ(pricing_used(), 0.0045);
}

TEST_F(CliTest, CancelRefundsTheWholeReservation) {
  ASSERT_EQ(sluice(with({"charge"},
                        with(pricing_call(), {"--input-tokens", "1000", "--output-tokens", "500"})))
                .exit_code,
            0);
  const json res = sluice_json(
      with({"reserve"},
           with(pricing_call(), {"--input-tokens", "2000", "--max-output-tokens", "1000"})));
  ASSERT_EQ(res["admitted"], true) << res;
  EXPECT_EQ(pricing_used(), 0.0225);  // 0.0075 charged + 0.015 held
  const std::string id = std::to_string(res["reservation"].get<std::uint64_t>());

  const json cancel = sluice_json({"cancel", id});
  EXPECT_EQ(cancel["cancelled"], true);
  EXPECT_EQ(pricing_used(), 0.0075);
  EXPECT_EQ(sluice({"cancel", id}).exit_code, 1);
}

TEST_F(CliTest, SupportTeamOnGpt4oIsRejectedAsModelNotAllowed) {
  const std::vector<std::string> call = {
      "reserve",        "--attr", "team=support",        "--model", "gpt-4o",
      "--input-tokens", "100",    "--max-output-tokens", "100"};
  const CliRun human = sluice(call);
  EXPECT_EQ(human.exit_code, 1);
  EXPECT_EQ(human.out, "");
  EXPECT_TRUE(one_line(human.err)) << human.err;
  EXPECT_NE(human.err.find("rejected by limit 'support-models': model_not_allowed"),
            std::string::npos)
      << human.err;

  std::vector<std::string> json_call = call;
  json_call.push_back("--json");
  const CliRun r = sluice(json_call);
  EXPECT_EQ(r.exit_code, 1);
  const json doc = json::parse(r.out);
  EXPECT_EQ(doc["admitted"], false);
  EXPECT_EQ(doc["reason"], "model_not_allowed");
  EXPECT_EQ(doc["limit"], "support-models");
  EXPECT_FALSE(doc.contains("retry_after_ms"));
}

TEST_F(CliTest, RateLimitedCallReportsWhenToRetry) {
  // team-tokens: 200000 tokens/min (300 us a token), burst 50000 tokens.
  const std::vector<std::string> call = {
      "charge", "--attr", "team=batch", "--input-tokens", "30000", "--output-tokens", "0"};
  ASSERT_EQ(sluice(call).exit_code, 0);
  const json doc = sluice_json(call);
  EXPECT_EQ(doc["admitted"], false);
  EXPECT_EQ(doc["reason"], "rate_limited");
  EXPECT_EQ(doc["limit"], "team-tokens");
  // 60000 tokens would be 18 s ahead, 3 s past the 15 s the burst allows.
  EXPECT_GT(doc["retry_after_ms"].get<int>(), 0);
  EXPECT_LE(doc["retry_after_ms"].get<int>(), 3000);
}

TEST_F(CliTest, ReservationPastItsTtlIsSettledAsAbandoned) {
  const json res = sluice_json(
      with({"reserve", "--ttl", "1s"},
           with(pricing_call(), {"--input-tokens", "1000", "--max-output-tokens", "500"})));
  ASSERT_EQ(res["admitted"], true) << res;
  const bool settled =
      eventually([&] { return status()["reservations_in_flight"] == 0; }, std::chrono::seconds(5));
  EXPECT_TRUE(settled);
  EXPECT_EQ(status()["abandoned_total"], 1);
  EXPECT_EQ(pricing_used(), 0.0075);  // charged at its estimate
  const std::string id = std::to_string(res["reservation"].get<std::uint64_t>());
  EXPECT_EQ(sluice({"commit", id, "--input-tokens", "1", "--output-tokens", "1"}).exit_code, 1);
}

TEST_F(CliTest, BadInputsExitTwoWithOneLineAndChargeNothing) {
  const std::vector<std::vector<std::string>> bad = {
      {"charge", "--attr", "team", "--input-tokens", "1", "--output-tokens", "1"},
      {"charge", "--attr", "=pricing", "--input-tokens", "1", "--output-tokens", "1"},
      {"charge", "--attr", "team=pricing", "--input-tokens", "-5", "--output-tokens", "1"},
      {"charge", "--attr", "team=pricing", "--input-tokens=-5", "--output-tokens", "1"},
      {"charge", "--attr", "team=pricing", "--input-tokens", "lots", "--output-tokens", "1"},
      {"charge", "--attr", "team=pricing", "--input-tokens", "4294967297", "--output-tokens", "1"},
      {"reserve", "--attr", "team=pricing", "--input-tokens", "1", "--max-output-tokens", "1",
       "--ttl", "15 minutes"},
      {"reserve", "--attr", "team=pricing", "--input-tokens", "1"},
      {"charge", "--attr", "team=pricing", "--input-tokens", "18446744073709551616",
       "--output-tokens", "1"},
      {"charge", "--attr", "team=", "--input-tokens", "1", "--output-tokens", "1"},
      {"charge", "--attr", "team=" + std::string(256, 'x'), "--input-tokens", "1",
       "--output-tokens", "1"},
      {"charge", "--attr", std::string(64, 'k') + "=v", "--input-tokens", "1", "--output-tokens",
       "1"},
      {"commit", "abc", "--input-tokens", "1", "--output-tokens", "1"},
      {"commit", "-1", "--input-tokens", "1", "--output-tokens", "1"},
      {"commit", "18446744073709551616", "--input-tokens", "1", "--output-tokens", "1"},
      {"commit", "4294967296", "--input-tokens", "4294967297", "--output-tokens", "1"},
      {"cancel", "12x"},
      {"frobnicate"},
  };
  for (const auto& args : bad) {
    const CliRun r = sluice(args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_TRUE(one_line(r.err)) << r.err;
    EXPECT_EQ(r.err.rfind("sluice: ", 0), 0u) << r.err;
    EXPECT_EQ(r.out, "");
  }
  const json s = status();
  EXPECT_EQ(s["keys_used"], 0);
  EXPECT_EQ(s["admitted_total"], 0);
  EXPECT_EQ(s["rejected_total"], 0);  // refused before the segment was touched
  EXPECT_EQ(s["reservations_in_flight"], 0);
}

TEST_F(CliTest, BadInputMessagesSayWhatIsWrongAndHowToFixIt) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--attr", "team=", "--input-tokens", "1", "--output-tokens", "1"},
       "sluice: --attr 'team=': empty value; e.g. --attr team=VALUE\n"},
      {{"--attr", "=pricing", "--input-tokens", "1", "--output-tokens", "1"},
       "sluice: --attr '=pricing': empty attribute name; e.g. --attr team=pricing\n"},
      {{"--attr", "team=" + std::string(256, 'x'), "--input-tokens", "1", "--output-tokens", "1"},
       "sluice: attribute 'team' has a value of 256 bytes, at most 255; pass a shorter value "
       "(e.g. an id or a hash)\n"},
      {{"--attr", "a=" + std::string(250, 'x'), "--attr", "b=" + std::string(250, 'x'), "--attr",
        "c=" + std::string(250, 'x'), "--attr", "d=" + std::string(250, 'x'), "--attr",
        "e=" + std::string(250, 'x'), "--input-tokens", "1", "--output-tokens", "1"},
       "sluice: attributes take 1265 bytes (names and values, 2 more each), at most 1024; leave "
       "out those no limit matches or shorten them\n"},
      {{"--attr", "team=pricing", "--input-tokens", "-1", "--output-tokens", "1"},
       "sluice: --input-tokens '-1': must be a whole number from 0 to 4294967296, e.g. "
       "--input-tokens 1200\n"},
      {{"--attr", "team=pricing", "--input-tokens", "1", "--output-tokens", "18446744073709551616"},
       "sluice: --output-tokens '18446744073709551616': must be a whole number from 0 to "
       "4294967296, e.g. --output-tokens 1200\n"},
  };
  for (const auto& [args, want] : cases) {
    const CliRun r = sluice(with({"charge"}, args));
    EXPECT_EQ(r.exit_code, 2) << want;
    EXPECT_EQ(r.err, want);
  }
  // 255 bytes is a value like any other.
  EXPECT_EQ(sluice({"charge", "--attr", "team=" + std::string(255, 'x'), "--input-tokens", "1",
                    "--output-tokens", "1"})
                .exit_code,
            0);
  EXPECT_EQ(status()["admitted_total"], 1);
}

TEST_F(CliTest, UnknownAndSettledReservationsExitOneChargingNothing) {
  const json res = sluice_json(with(
      {"reserve"}, with(pricing_call(), {"--input-tokens", "0", "--max-output-tokens", "100"})));
  ASSERT_EQ(res["admitted"], true) << res;
  const std::string id = std::to_string(res["reservation"].get<std::uint64_t>());
  EXPECT_EQ(pricing_used(), 0.001);  // 100 gpt-4o output tokens held
  const CliRun too_many =
      sluice({"commit", id, "--input-tokens", "0", "--output-tokens", "4294967297"});
  EXPECT_EQ(too_many.exit_code, 2);
  EXPECT_EQ(too_many.err,
            "sluice: --output-tokens '4294967297': must be a whole number from 0 to 4294967296, "
            "e.g. --output-tokens 1200\n");
  EXPECT_EQ(pricing_used(), 0.001);  // still held, still live
  for (const std::string& unknown : {std::string("0"), std::string("1"), id + "1"}) {
    const CliRun r = sluice({"commit", unknown, "--input-tokens", "1", "--output-tokens", "1"});
    EXPECT_EQ(r.exit_code, 1) << unknown;
    EXPECT_EQ(r.err, "sluice: reservation " + unknown +
                         " is not live (unknown, already settled, or abandoned after its "
                         "--ttl); nothing was charged: check the id `sluice reserve` printed\n");
  }
  EXPECT_EQ(sluice({"commit", id, "--input-tokens", "0", "--output-tokens", "50"}).exit_code, 0);
  EXPECT_EQ(pricing_used(), 0.0005);
  EXPECT_EQ(sluice({"commit", id, "--input-tokens", "0", "--output-tokens", "50"}).exit_code, 1);
  EXPECT_EQ(sluice({"cancel", id}).exit_code, 1);  // cancel after commit refunds nothing
  EXPECT_EQ(pricing_used(), 0.0005);
  EXPECT_EQ(status()["reservations_in_flight"], 0);
}

// The call stats row of `model` in this test's segment; calls empty if none.
ModelCallRow model_calls(const std::string& segment, const std::string& model) {
  Result<std::vector<ModelCallRow>> rows = list_model_calls(segment);
  EXPECT_TRUE(rows.ok()) << rows.status().message();
  if (!rows.ok()) return {};
  for (const ModelCallRow& r : rows.value()) {
    if (r.model == model) return r;
  }
  return {};
}

TEST_F(CliTest, CommitAndChargeReportHowTheCallWentToThePerModelStats) {
  const json res = sluice_json(with(
      {"reserve"}, with(pricing_call(), {"--input-tokens", "1000", "--max-output-tokens", "500"})));
  ASSERT_EQ(res["admitted"], true) << res;
  const std::string id = std::to_string(res["reservation"].get<std::uint64_t>());
  const json commit = sluice_json({"commit", id, "--input-tokens", "1000", "--output-tokens", "200",
                                   "--latency-ms", "812.5", "--ttft-ms", "95", "--outcome", "ok",
                                   "--http-status", "200", "--model-version", "gpt-4o-2024-08-06"});
  EXPECT_EQ(commit, json({{"committed", true},
                          {"reservation", res["reservation"]},
                          {"reservation_str", id},
                          {"cost_usd", 0.0045}}));
  const CliRun timeout =
      sluice(with({"charge"}, with(pricing_call(),
                                   {"--input-tokens", "100", "--output-tokens", "0", "--latency-ms",
                                    "30000", "--outcome", "timeout", "--http-status", "504"})));
  EXPECT_EQ(timeout.exit_code, 0) << timeout.err;
  EXPECT_EQ(timeout.out.rfind("charged $0.00025 (reservation ", 0), 0u) << timeout.out;
  const CliRun plain = sluice(
      with({"charge"}, with(pricing_call(), {"--input-tokens", "1", "--output-tokens", "1"})));
  EXPECT_EQ(plain.exit_code, 0) << plain.err;

  const ModelCallRow gpt = model_calls(segment_, "gpt-4o");
  // unreported, ok, provider_error, timeout, cancelled_by_client, cut_off
  EXPECT_EQ(gpt.calls, (std::vector<std::uint64_t>{1, 1, 0, 1, 0, 0}));
  std::vector<std::uint64_t> latency(20, 0), ttft(20, 0);
  latency[7] = 1;   // 812.5 ms: (500, 1000]
  latency[16] = 1;  // 30 s: (20, 30] s
  ttft[4] = 1;      // 95 ms: (50, 100]
  EXPECT_EQ(gpt.latency_counts, latency);
  EXPECT_EQ(gpt.latency_sum_us, 812'500u + 30'000'000u);
  EXPECT_EQ(gpt.ttft_counts, ttft);
  EXPECT_EQ(gpt.ttft_sum_us, 95'000u);
  EXPECT_EQ(pricing_used(), 0.0047625);  // 0.0045 + 0.00025 + 0.0000125
}

TEST_F(CliTest, BadReportFlagsExitTwoNamingTheFlagAndChargeNothing) {
  const json res = sluice_json(with(
      {"reserve"}, with(pricing_call(), {"--input-tokens", "0", "--max-output-tokens", "100"})));
  ASSERT_EQ(res["admitted"], true) << res;
  const std::string id = std::to_string(res["reservation"].get<std::uint64_t>());
  const std::string ms = "must be milliseconds, 0 or more with at most 6 decimals, e.g. ";
  const std::string http_status =
      "must be the provider's HTTP status, a whole number up to 999, e.g. "
      "--http-status 200\n";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--latency-ms=-5"}, "--latency-ms '-5': " + ms + "--latency-ms 812.5\n"},
      {{"--latency-ms", "812,5"}, "--latency-ms '812,5': " + ms + "--latency-ms 812.5\n"},
      {{"--latency-ms", "1e3"}, "--latency-ms '1e3': " + ms + "--latency-ms 812.5\n"},
      {{"--latency-ms", ".5"}, "--latency-ms '.5': " + ms + "--latency-ms 812.5\n"},
      {{"--latency-ms", "5."}, "--latency-ms '5.': " + ms + "--latency-ms 812.5\n"},
      {{"--latency-ms", "0.0000001"}, "--latency-ms '0.0000001': " + ms + "--latency-ms 812.5\n"},
      {{"--latency-ms", "18446744073709.551616"},
       "--latency-ms '18446744073709.551616': " + ms + "--latency-ms 812.5\n"},
      {{"--ttft-ms", "fast"}, "--ttft-ms 'fast': " + ms + "--ttft-ms 812.5\n"},
      {{"--outcome", "success"},
       "--outcome 'success': must be ok, provider_error, timeout, cancelled_by_client or "
       "cut_off, e.g. --outcome ok\n"},
      {{"--outcome", "OK"},
       "--outcome 'OK': must be ok, provider_error, timeout, cancelled_by_client or cut_off, "
       "e.g. --outcome ok\n"},
      {{"--http-status", "1000"}, "--http-status '1000': " + http_status},
      {{"--http-status=-1"}, "--http-status '-1': " + http_status},
      {{"--http-status", "65736"}, "--http-status '65736': " + http_status},
      {{"--model-version", std::string(129, 'v')},
       "--model-version: 129 bytes, at most 128; pass the version the response named, e.g. "
       "--model-version gpt-4o-2024-08-06\n"},
  };
  for (const auto& [flags, want] : cases) {
    const CliRun commit =
        sluice(with({"commit", id, "--input-tokens", "0", "--output-tokens", "50"}, flags));
    EXPECT_EQ(commit.exit_code, 2) << want;
    EXPECT_EQ(commit.err, "sluice: " + want);
    EXPECT_EQ(commit.out, "");
    const CliRun charge = sluice(with(
        {"charge"},
        with(pricing_call(), with({"--input-tokens", "1000", "--output-tokens", "500"}, flags))));
    EXPECT_EQ(charge.exit_code, 2) << want;
    EXPECT_EQ(charge.err, "sluice: " + want);
  }
  EXPECT_EQ(pricing_used(), 0.001);  // the reservation alone, still held
  const json s = status();
  EXPECT_EQ(s["admitted_total"], 1);  // charge refused before the segment was touched
  EXPECT_EQ(s["reservations_in_flight"], 1);
  // The bounds themselves are taken, and the reservation commits once.
  const CliRun ok = sluice({"commit", id, "--input-tokens", "0", "--output-tokens", "50",
                            "--latency-ms", "0.000001", "--outcome", "cut_off", "--http-status",
                            "999", "--model-version", std::string(128, 'v')});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(pricing_used(), 0.0005);
  EXPECT_EQ(model_calls(segment_, "gpt-4o").calls, (std::vector<std::uint64_t>{0, 0, 0, 0, 0, 1}));
}

TEST_F(CliTest, ValuesThatAreNotUtf8AreChargedAndPrintedAsValidJson) {
  const std::string odd = "caf\xe9\xff";  // Latin-1 bytes, not UTF-8
  ASSERT_EQ(sluice({"charge", "--attr", "team=" + odd, "--model", "gpt-4o", "--input-tokens", "0",
                    "--output-tokens", "100"})
                .exit_code,
            0);
  // Its own cell (team-tokens matches every team), shown with U+FFFD in JSON.
  const json row = key_row("team-tokens", "team=caf\xef\xbf\xbd\xef\xbf\xbd");
  EXPECT_FALSE(row.is_null());
  std::string lines;
  ASSERT_TRUE(eventually([&] {
    lines = sluice({"audit", "--json", "--attr", "team=" + odd}).out;
    return std::count(lines.begin(), lines.end(), '\n') == 2;  // reserve and commit
  })) << lines;
  std::istringstream in(lines);
  for (std::string line; std::getline(in, line);) {
    const json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(record.is_discarded()) << line;
    EXPECT_EQ(record["attributes"]["team"], "caf\xef\xbf\xbd\xef\xbf\xbd");
  }
  // The table prints the bytes that are not UTF-8 as '?'.
  const std::string table = sluice({"audit", "--attr", "team=" + odd}).out;
  EXPECT_NE(table.find("team=caf??,model=gpt-4o"), std::string::npos) << table;
}

TEST_F(CliTest, AttachToAMissingSegmentExitsTwoAskingWhetherSluicedRuns) {
  const std::vector<std::vector<std::string>> commands = {{"status"}, {"keys"}, {"cancel", "1"}};
  for (const auto& args : commands) {
    std::vector<std::string> missing = args;
    missing.push_back("--segment");
    missing.push_back(segment_ + "-missing");
    const CliRun r = sluice(missing, false);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_TRUE(one_line(r.err)) << r.err;
    EXPECT_NE(r.err.find("is sluiced running?"), std::string::npos) << r.err;
  }
}

TEST_F(CliTest, KeysForHumansIsAnAlignedTable) {
  ASSERT_EQ(sluice(with({"charge"},
                        with(pricing_call(), {"--input-tokens", "1000", "--output-tokens", "500"})))
                .exit_code,
            0);
  const CliRun r = sluice({"keys"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string header;
  std::string row;
  std::getline(lines, header);
  EXPECT_EQ(header.rfind("LIMIT", 0), 0u) << r.out;
  bool found = false;
  while (std::getline(lines, row)) {
    if (row.rfind("pricing-daily-usd", 0) != 0) continue;
    found = true;
    EXPECT_NE(row.find("0.007500000"), std::string::npos) << row;
    EXPECT_NE(row.find("24.992500000"), std::string::npos) << row;
    // Numbers are right-aligned under their heading.
    EXPECT_EQ(row.find("24.992500000") + 12, header.find("REMAINING") + 9)
        << "columns not aligned:\n"
        << r.out;
  }
  EXPECT_TRUE(found) << r.out;
}

TEST_F(CliTest, ReloadMakesSluicedPublishANewGeneration) {
  const int before = status()["policy_generation"].get<int>();
  const CliRun r = sluice({"reload"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(status()["policy_generation"].get<int>(), before + 1);
}

TEST_F(CliTest, HelpOnASubcommandExitsZero) {
  const CliRun r = sluice({"reserve", "--help"}, false);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--max-output-tokens"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--ttl"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("--outcome"), std::string::npos) << r.out;  // reported on commit
  for (const char* command : {"commit", "charge"}) {
    const CliRun help = sluice({command, "--help"}, false);
    EXPECT_EQ(help.exit_code, 0);
    for (const char* flag :
         {"--latency-ms", "--ttft-ms", "--outcome", "--http-status", "--model-version"}) {
      EXPECT_NE(help.out.find(flag), std::string::npos) << command << " " << flag << help.out;
    }
    EXPECT_NE(help.out.find("ok, provider_error, timeout, cancelled_by_client or"),
              std::string::npos)
        << help.out;
  }
}

}  // namespace
}  // namespace sluice
