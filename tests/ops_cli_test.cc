// `sluice top` and `sluice report` end to end: a real sluiced on a segment
// of its own per test, a scripted workload with known tokens and prices (a
// Client in this process), the real sluice binary run as a child process,
// and real values asserted on its output: rates while a spender runs, exact
// remaining budgets, exact nano-dollar costs per team/feature/model, the
// SQLite ledger. Waits poll with a deadline; no test asserts a time.
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "sluice/inspect.h"
#include "sluice/quota.h"
#include "sluice/telemetry.h"
#include "test_support.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::build_root;
using testing::eventually;
using testing::one_line;
using testing::read_text;

constexpr std::uint64_t kNsPerSecond = 1'000'000'000ull;
constexpr std::uint64_t kDailyBudgetNusd = 100 * kNsPerSecond;  // usd_per_day: 100.00
constexpr std::uint64_t kTinyBudgetNusd = 10'000'000;           // usd_per_month: 0.01

// gpt-4o: $2.50 / $10.00 per million tokens = 2500 / 10000 nano-dollars a token.
// gpt-4o-mini: $0.15 / $0.60 = 150 / 600.
constexpr std::uint64_t cost_4o(std::uint64_t in, std::uint64_t out) {
  return in * 2500 + out * 10000;
}
constexpr std::uint64_t cost_mini(std::uint64_t in, std::uint64_t out) {
  return in * 150 + out * 600;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);) out.push_back(line);
  return out;
}

std::vector<std::string> words_of(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream s(line);
  for (std::string w; s >> w;) out.push_back(w);
  return out;
}

std::uint64_t now_unix_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// "2026-11-23T10:00:00.123456789Z".
std::string rfc3339(std::uint64_t unix_ns) {
  const std::time_t s = static_cast<std::time_t>(unix_ns / kNsPerSecond);
  std::tm tm{};
  ::gmtime_r(&s, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%09lluZ", date,
                static_cast<unsigned long long>(unix_ns % kNsPerSecond));
  return out;
}

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Reserves and commits (or leaves for the sidecar, or cancels) calls with known usage.
class Workload {
 public:
  explicit Workload(const std::string& segment) {
    Result<Client> c = Client::attach(segment);
    EXPECT_TRUE(c.ok()) << c.status().message();
    if (c.ok()) client_.emplace(std::move(c.value()));
  }

  // Reserves `in` + `max_out`, commits `in` + `out`; the cost charged.
  std::uint64_t commit(const std::vector<Attribute>& attrs, std::uint64_t in, std::uint64_t max_out,
                       std::uint64_t out) {
    const Decision d = client_->reserve_raw({attrs, in, max_out});
    EXPECT_TRUE(d.admitted) << to_string(d.reason);
    if (!d.admitted) return 0;
    const Settlement s = client_->commit(d.reservation_id, in, out);
    EXPECT_TRUE(s.ok());
    return s.cost_nusd;
  }

  // Reserves and lets the reservation run past its hold: the sidecar settles
  // it as abandoned, charged at its estimate.
  void abandon(const std::vector<Attribute>& attrs, std::uint64_t in, std::uint64_t max_out) {
    const Decision d = client_->reserve_raw({attrs, in, max_out, 200'000'000});
    EXPECT_TRUE(d.admitted) << to_string(d.reason);
  }

  void cancel(const std::vector<Attribute>& attrs, std::uint64_t in, std::uint64_t max_out) {
    const Decision d = client_->reserve_raw({attrs, in, max_out});
    ASSERT_TRUE(d.admitted) << to_string(d.reason);
    EXPECT_TRUE(client_->cancel(d.reservation_id).ok());
  }

  // Reserves and commits a call the provider failed (reported as provider_error).
  void fail(const std::vector<Attribute>& attrs, std::uint64_t in, std::uint64_t out) {
    const Decision d = client_->reserve_raw({attrs, in, out});
    ASSERT_TRUE(d.admitted) << to_string(d.reason);
    const CallReport failed{Outcome::kProviderError, 2 * kNsPerSecond, 0, 502, {}};
    EXPECT_TRUE(client_->commit(d.reservation_id, in, out, failed).ok());
  }

  Reason reject(const std::vector<Attribute>& attrs, std::uint64_t in, std::uint64_t max_out) {
    const Decision d = client_->reserve_raw({attrs, in, max_out});
    EXPECT_FALSE(d.admitted);
    return d.reason;
  }

 private:
  std::optional<Client> client_;
};

const std::vector<Attribute> kPricing = {
    {"team", "pricing"}, {"feature", "quote-agent"}, {"model", "gpt-4o"}};
const std::vector<Attribute> kSearch = {
    {"team", "search"}, {"feature", "ranker"}, {"model", "gpt-4o-mini"}};
const std::vector<Attribute> kSupportChat = {
    {"team", "support"}, {"feature", "chat"}, {"model", "gpt-4o-mini"}};
const std::vector<Attribute> kSupportNoFeature = {{"team", "support"}, {"model", "gpt-4o"}};
const std::vector<Attribute> kSpender = {{"team", "spender"}, {"model", "gpt-4o"}};
const std::vector<Attribute> kTiny = {{"team", "tiny"}, {"model", "gpt-4o"}};

class OpsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    segment_ = "sluice-opstest-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
    char tmpl[] = "/tmp/sluice-opstest-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    policy_ = dir_ / "policy.yaml";
    write_policy();
    start_sidecar();
  }

  void TearDown() override {
    stop_spender();
    stop_sidecar();
    ::unlink(("/dev/shm/" + segment_).c_str());
    ::unlink(("/dev/shm/" + segment_ + ".sluiced.lock").c_str());
    ::unlink(telemetry_path(segment_).c_str());
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void write_policy() {
    std::ofstream(policy_) << "segment:\n  name: " << segment_
                           << "\n  max_keys: 1024\n  max_reservations: 256\n"
                              "audit:\n  dir: "
                           << (dir_ / "audit").string()
                           << "\n  fsync_interval_ms: 10\n"
                              "store:\n  kind: sqlite\n  path: "
                           << (dir_ / "sluice.db").string()
                           << "\n  sync_interval_ms: 100\n"
                              "models:\n"
                              "  gpt-4o:      { input_usd_per_mtok: 2.50, output_usd_per_mtok: "
                              "10.00 }\n"
                              "  gpt-4o-mini: { input_usd_per_mtok: 0.15, output_usd_per_mtok: "
                              "0.60 }\n"
                              "limits:\n"
                              "  - name: team-daily-usd\n"
                              "    match: { team: \"*\" }\n"
                              "    usd_per_day: 100.00\n"
                              "  - name: team-daily-tokens\n"
                              "    match: { team: \"*\" }\n"
                              "    tokens_per_day: 100000000\n"
                              "  - name: spender-rps\n"
                              "    match: { team: spender }\n"
                              "    requests_per_second: 100\n"
                              "    burst_requests: 10\n"
                              "  - name: spender-shadow-rps\n"
                              "    match: { team: spender }\n"
                              "    requests_per_second: 5\n"
                              "    shadow: true\n"
                              "  - name: support-models\n"
                              "    match: { team: support }\n"
                              "    models: [gpt-4o-mini]\n"
                              "  - name: tiny-usd\n"
                              "    match: { team: tiny }\n"
                              "    usd_per_month: 0.01\n"
                              "alerts:\n"
                              "  - { name: errors, when: error_rate_above, value: 0.5, over: 1m, "
                              "min_calls: 2 }\n"
                              "  - { name: tiny-runs-out, budget: tiny-usd, when: exhausts_within, "
                              "value: 1h }\n";
  }

  void stop_sidecar() {
    testing::stop_child(sidecar_);
    sidecar_ = -1;
  }

  void start_sidecar() {
    sidecar_ = testing::spawn_child(
        {build_root() + "/sidecar/sluiced", "--foreground", "--config", policy_.string()},
        (dir_ / "sluiced.out").string(), (dir_ / "sluiced.log").string());
    ASSERT_GT(sidecar_, 0);
    const bool ready = eventually([&] {
      if (::waitpid(sidecar_, nullptr, WNOHANG) == sidecar_) {
        sidecar_ = -1;
        return true;  // exited: reported below
      }
      Result<SegmentStatus> s = read_status(segment_);
      return s.ok() && s->sidecar_alive && s->policy_generation >= 1 && !s->audit_dir.empty();
    });
    ASSERT_TRUE(ready && sidecar_ > 0)
        << "sluiced did not start: " << read_text(dir_ / "sluiced.log");
  }

  CliRun sluice(std::vector<std::string> args, const std::string& segment = "") {
    args.insert(args.begin(), build_root() + "/clients/cli/sluice");
    args.push_back("--segment");
    args.push_back(segment.empty() ? segment_ : segment);
    CliRun r;
    const fs::path out = dir_ / "cli.out";
    const fs::path err = dir_ / "cli.err";
    const pid_t pid = testing::spawn_child(args, out.string(), err.string());
    if (pid <= 0) return r;
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
  }

  json sluice_json(const std::vector<std::string>& args) {
    const CliRun r = sluice(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    json doc = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(doc.is_discarded()) << "not JSON: " << r.out << r.err;
    return doc;
  }

  // Every reservation settled and at least `records` audit records on disk.
  void wait_for_audit(std::uint64_t records) {
    const bool landed = eventually([&] {
      Result<SegmentStatus> s = read_status(segment_);
      return s.ok() && s->reservations_in_flight == 0 && s->audit_written >= records;
    });
    Result<SegmentStatus> s = read_status(segment_);
    ASSERT_TRUE(landed) << "audit records written: " << (s.ok() ? s->audit_written : 0)
                        << ", expected " << records;
  }

  // The scripted workload: part A, a boundary time, part B. 15 audit records.
  void run_workload() {
    Workload w(segment_);
    // A: pricing twice, search once, a support call refused by model access.
    EXPECT_EQ(w.commit(kPricing, 1000, 500, 400), cost_4o(1000, 400));
    EXPECT_EQ(w.commit(kPricing, 2000, 1000, 900), cost_4o(2000, 900));
    EXPECT_EQ(w.commit(kSearch, 10000, 2000, 1500), cost_mini(10000, 1500));
    EXPECT_EQ(w.reject(kSupportNoFeature, 100, 100), Reason::kModelNotAllowed);
    // Record times are the coarse clock plus the offset sluiced publishes:
    // leave a wide gap on both sides of the boundary.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    boundary_ns_ = now_unix_ns();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    // B: pricing once, search abandoned at its estimate, a cancel, support chat.
    EXPECT_EQ(w.commit(kPricing, 500, 500, 250), cost_4o(500, 250));
    w.abandon(kSearch, 400, 100);
    w.cancel(kPricing, 700, 700);
    EXPECT_EQ(w.commit(kSupportChat, 100, 100, 50), cost_mini(100, 50));
    wait_for_audit(15);
  }

  std::vector<std::string> report_args(std::vector<std::string> more) {
    std::vector<std::string> args = {"report"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }

  // A process spending on team=spender as fast as its rate limit lets it,
  // trying a model support may not use now and then, until killed.
  void start_spender() {
    const pid_t parent = ::getpid();
    spender_ = ::fork();
    ASSERT_GE(spender_, 0);
    if (spender_ != 0) return;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    Result<Client> c = Client::attach(segment_);
    if (!c.ok()) ::_exit(1);
    for (std::uint64_t i = 0;; ++i) {
      const Decision d = c->reserve_raw({kSpender, 100, 100});
      if (d.admitted) c->commit(d.reservation_id, 100, 100);
      if (i % 10 == 0) c->reserve_raw({kSupportNoFeature, 10, 10});
      const timespec pause{0, 2'000'000};
      ::nanosleep(&pause, nullptr);
    }
  }

  void stop_spender() {
    if (spender_ <= 0) return;
    ::kill(spender_, SIGKILL);
    ::waitpid(spender_, nullptr, 0);
    spender_ = -1;
  }

  // Polls the telemetry file until the running sluiced has written one that
  // satisfies `ready`.
  bool wait_for_telemetry(const std::function<bool(const Telemetry&)>& ready) {
    return eventually([&] {
      Result<Telemetry> t = read_telemetry(segment_);
      return t.ok() && t->sidecar_pid == static_cast<std::uint64_t>(sidecar_) && ready(t.value());
    });
  }

  // Makes both alerts of the policy fire: three failed calls (errors: 3 of 3
  // reported, above 50%) and team=tiny's $0.01 for the month spent whole
  // (tiny-runs-out: exhausted is within 1h).
  void fire_alerts() {
    // sluiced's first sample comes before the calls, so that they count.
    ASSERT_TRUE(wait_for_telemetry([](const Telemetry&) { return true; }));
    Workload w(segment_);
    for (int i = 0; i < 3; ++i) w.fail(kPricing, 100, 50);
    ASSERT_EQ(w.commit(kTiny, 2000, 500, 500), kTinyBudgetNusd);
    const bool fired = wait_for_telemetry([](const Telemetry& t) {
      bool tiny_exhausted = false;
      for (const BurnRate& b : t.burn) {
        tiny_exhausted |= b.limit == "tiny-usd" && b.exhausts_in_s == std::uint64_t{0};
      }
      return tiny_exhausted && t.alerts.size() == 2 && t.alerts[0].firing && t.alerts[1].firing;
    });
    Result<Telemetry> t = read_telemetry(segment_);
    ASSERT_TRUE(fired) << (t.ok() ? telemetry_json(t.value()) : t.status().message());
  }

  // Calls admitted so far, every client counted.
  std::uint64_t admitted_total() {
    Result<SegmentStatus> s = read_status(segment_);
    return s.ok() ? s->admitted_total : 0;
  }

  std::string segment_;
  fs::path dir_;
  fs::path policy_;
  pid_t sidecar_ = -1;
  std::uint64_t boundary_ns_ = 0;
  pid_t spender_ = -1;
};

constexpr std::uint64_t kPricingA = cost_4o(1000, 400) + cost_4o(2000, 900);  // 20,500,000
constexpr std::uint64_t kPricingB = cost_4o(500, 250);                        // 3,750,000
constexpr std::uint64_t kSearchA = cost_mini(10000, 1500);                    // 2,400,000
constexpr std::uint64_t kSearchB = cost_mini(400, 100);                       // 120,000
constexpr std::uint64_t kSupportB = cost_mini(100, 50);                       // 45,000
constexpr std::uint64_t kTotal = kPricingA + kPricingB + kSearchA + kSearchB + kSupportB;

// ---------------------------------------------------------------------------
// sluice top

json limit_of(const json& top, const std::string& name) {
  for (const json& l : top["limits"]) {
    if (l["limit"] == name) return l;
  }
  return nullptr;
}

json key_of(const json& top, const std::string& limit, const std::string& attributes) {
  for (const json& k : top["keys"]) {
    if (k["limit"] == limit && k["attributes"] == attributes) return k;
  }
  return nullptr;
}

TEST_F(OpsCliTest, TopSnapshotAsJsonShowsRatesBurnRemainingAndRejectionsByReason) {
  Workload w(segment_);
  const std::uint64_t pricing_spent =
      w.commit(kPricing, 1000, 500, 400) + w.commit(kPricing, 2000, 1000, 900);
  ASSERT_EQ(pricing_spent, kPricingA);
  const std::uint64_t before = admitted_total();
  start_spender();
  ASSERT_TRUE(eventually([&] { return admitted_total() >= before + 20; }));

  const json top = sluice_json({"top", "--interval", "1", "--json"});
  EXPECT_EQ(top["segment"], segment_);
  EXPECT_EQ(top["sidecar_alive"], true);
  EXPECT_GT(top["interval_seconds"].get<double>(), 0.9);
  EXPECT_GT(top["admitted_per_second"].get<double>(), 0);

  const json usd = limit_of(top, "team-daily-usd");
  ASSERT_FALSE(usd.is_null()) << top;
  EXPECT_EQ(usd["kind"], "budget");
  EXPECT_GT(usd["requests_per_second"].get<double>(), 0) << usd;
  EXPECT_GT(usd["admitted"].get<std::uint64_t>(), 0u);
  EXPECT_GT(usd["usd_per_hour"].get<double>(), 0) << usd;
  EXPECT_EQ(usd["rejected"]["reason"], "budget_exhausted");
  EXPECT_EQ(usd["rejected"]["count"], 0);

  const json rps = limit_of(top, "spender-rps");
  ASSERT_FALSE(rps.is_null());
  EXPECT_EQ(rps["kind"], "rate");
  EXPECT_GT(rps["requests_per_second"].get<double>(), 0);
  EXPECT_EQ(rps["rejected"]["reason"], "rate_limited");
  EXPECT_TRUE(rps["usd_per_hour"].is_null());
  const json shadow = limit_of(top, "spender-shadow-rps");
  ASSERT_FALSE(shadow.is_null());
  EXPECT_EQ(shadow["shadow"], true);
  EXPECT_GT(shadow["shadow_rejected"]["count"].get<std::uint64_t>(), 0u) << shadow;
  EXPECT_GT(shadow["shadow_rejected"]["per_second"].get<double>(), 0);
  const json models = limit_of(top, "support-models");
  ASSERT_FALSE(models.is_null());
  EXPECT_EQ(models["rejected"]["reason"], "model_not_allowed");
  EXPECT_GT(models["rejected"]["count"].get<std::uint64_t>(), 0u) << models;

  // The idle key: exactly the budget minus what was spent, not burning.
  const json pricing = key_of(top, "team-daily-usd", "team=pricing");
  ASSERT_FALSE(pricing.is_null()) << top;
  EXPECT_EQ(pricing["used_nusd"], kPricingA);
  EXPECT_EQ(pricing["remaining_nusd"], kDailyBudgetNusd - kPricingA);
  EXPECT_DOUBLE_EQ(pricing["remaining"].get<double>(), 99.9795);
  EXPECT_EQ(pricing["usd_per_hour"].get<double>(), 0);
  EXPECT_TRUE(pricing["seconds_to_exhaustion"].is_null());
  EXPECT_TRUE(pricing["exhausted_in"].is_null());

  // The spending key: burning dollars and tokens, with a time to exhaustion.
  const json spender = key_of(top, "team-daily-usd", "team=spender");
  ASSERT_FALSE(spender.is_null()) << top;
  const double usd_per_hour = spender["usd_per_hour"].get<double>();
  EXPECT_GT(usd_per_hour, 0) << spender;
  const double remaining = spender["remaining"].get<double>();
  EXPECT_GT(remaining, 0);
  EXPECT_EQ(spender["remaining_nusd"].get<std::uint64_t>(),
            kDailyBudgetNusd - spender["used_nusd"].get<std::uint64_t>());
  ASSERT_TRUE(spender["seconds_to_exhaustion"].is_number()) << spender;
  EXPECT_NEAR(spender["seconds_to_exhaustion"].get<double>(), remaining / usd_per_hour * 3600,
              1e-6 * spender["seconds_to_exhaustion"].get<double>());
  EXPECT_TRUE(spender["exhausted_in"].is_string());
  const json tokens = key_of(top, "team-daily-tokens", "team=spender");
  ASSERT_FALSE(tokens.is_null());
  EXPECT_GT(tokens["tokens_per_second"].get<double>(), 0) << tokens;
  EXPECT_TRUE(tokens["usd_per_hour"].is_null());
  // A rate key's burn is not guessed.
  const json bucket = key_of(top, "spender-rps", "team=spender");
  ASSERT_FALSE(bucket.is_null());
  EXPECT_TRUE(bucket["tokens_per_second"].is_null());
  EXPECT_TRUE(bucket["seconds_to_exhaustion"].is_null());
}

TEST_F(OpsCliTest, TopSnapshotOffATerminalIsOnePlainAlignedTable) {
  Workload w(segment_);
  ASSERT_EQ(w.commit(kPricing, 1000, 500, 400) + w.commit(kPricing, 2000, 1000, 900), kPricingA);
  const std::uint64_t before = admitted_total();
  start_spender();
  ASSERT_TRUE(eventually([&] { return admitted_total() >= before + 20; }));

  const CliRun r = sluice({"top", "--interval", "0.5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << "escape codes off a terminal";
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_GT(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0].rfind("segment " + segment_ + ", sidecar alive (pid ", 0), 0u) << lines[0];

  std::string limits_header, keys_header, usd_limit, rps_limit, pricing_key, spender_key;
  for (const std::string& line : lines) {
    if (line.rfind("LIMIT ", 0) == 0 && line.find("REQ/S") != std::string::npos) {
      limits_header = line;
    }
    if (line.rfind("LIMIT ", 0) == 0 && line.find("EXHAUSTED IN") != std::string::npos) {
      keys_header = line;
    }
    if (line.rfind("team-daily-usd ", 0) == 0 && line.find("team=") == std::string::npos) {
      usd_limit = line;
    }
    if (line.rfind("spender-rps ", 0) == 0 && line.find("team=") == std::string::npos) {
      rps_limit = line;
    }
    if (line.rfind("team-daily-usd ", 0) == 0 && line.find("team=pricing") != std::string::npos) {
      pricing_key = line;
    }
    if (line.rfind("team-daily-usd ", 0) == 0 && line.find("team=spender") != std::string::npos) {
      spender_key = line;
    }
  }
  ASSERT_FALSE(limits_header.empty()) << r.out;
  ASSERT_FALSE(keys_header.empty()) << r.out;
  // LIMIT KIND UNIT KEYS REQ/S ...: requests/s of the spent budget is above zero.
  const std::vector<std::string> usd_words = words_of(usd_limit);
  ASSERT_GE(usd_words.size(), 6u) << r.out;
  EXPECT_EQ(usd_words[1], "budget");
  EXPECT_GT(std::stod(usd_words[4]), 0) << usd_limit;
  EXPECT_NE(usd_limit.find("/h"), std::string::npos) << usd_limit;
  EXPECT_NE(rps_limit.find("rate_limited"), std::string::npos) << r.out;
  // Remaining is the budget minus what was spent; an idle key is not burning.
  EXPECT_NE(pricing_key.find(" $99.9795 "), std::string::npos) << pricing_key;
  EXPECT_NE(pricing_key.find(" $0.0205 "), std::string::npos) << pricing_key;
  // ... BURN, EXHAUSTED IN, then sluiced's BURN 5M and EXHAUSTED IN 5M.
  ASSERT_GE(words_of(pricing_key).size(), 9u) << pricing_key;
  EXPECT_EQ(words_of(pricing_key)[7], "$0/h") << pricing_key;
  EXPECT_EQ(words_of(pricing_key)[8], "—") << pricing_key;
  EXPECT_EQ(words_of(keys_header).size(), 15u) << keys_header;
  ASSERT_GE(words_of(spender_key).size(), 9u) << spender_key;
  EXPECT_NE(words_of(spender_key)[7].find("/h"), std::string::npos) << spender_key;
  EXPECT_NE(words_of(spender_key)[8], "—") << spender_key;
  // Right-aligned under its heading (— is one column wide).
  EXPECT_EQ(pricing_key.find(" $99.9795 ") + 9, keys_header.find("REMAINING") + 9) << r.out;
}

TEST_F(OpsCliTest, TopWithoutASegmentSaysIsSluicedRunning) {
  const CliRun r = sluice({"top", "--interval", "0.1"}, segment_ + "-missing");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("is sluiced running?"), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------
// Alerts and burn rates in `sluice status` and `sluice top`

// The lines `sluice status` prints after its fields and the blank line.
std::vector<std::string> status_sections(const std::string& out) {
  const std::vector<std::string> lines = lines_of(out);
  const auto blank = std::find(lines.begin(), lines.end(), "");
  if (blank == lines.end()) return {};
  return {blank + 1, lines.end()};
}

bool matches(const std::string& line, const std::string& pattern) {
  return std::regex_match(line, std::regex(pattern));
}

const char* const kErrorsFiring =
    R"(  errors \(error_rate_above\) firing for [0-9a-z]+: error rate of all models is 100% )"
    R"(over 1m \(3 of 3 calls\); alert above 50%)";
const char* const kTinyFiring =
    R"(  tiny-runs-out \(exhausts_within\) firing for [0-9a-z]+: budget tiny-usd \(team=tiny\) )"
    R"(is exhausted \(alert: exhausts within 1h\))";

TEST_F(OpsCliTest, StatusShowsFiringAlertsAndTheBudgetKeysSoonestToRunOut) {
  fire_alerts();
  const CliRun r = sluice({"status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const std::vector<std::string> sections = status_sections(r.out);
  ASSERT_GE(sections.size(), 5u) << r.out;
  EXPECT_EQ(sections[0], "alerts: 2 firing (2 defined)") << r.out;
  EXPECT_TRUE(matches(sections[1], kErrorsFiring)) << sections[1];
  EXPECT_TRUE(matches(sections[2], kTinyFiring)) << sections[2];
  // Five budget keys: team-daily-usd and team-daily-tokens of pricing and
  // tiny, and tiny-usd. How many of the daily ones run out before midnight
  // UTC at their rate depends on the hour; the exhausted one is first.
  std::smatch m;
  ASSERT_TRUE(std::regex_match(
      sections[3], m,
      std::regex(R"(burn: ([1-5]) of 5 budget keys on course to run out in their window, )"
                 R"(soonest first)")))
      << r.out;
  EXPECT_EQ(sections.size(), 4 + std::stoul(m[1].str())) << r.out;
  EXPECT_TRUE(matches(
      sections[4], R"(  tiny-usd team=tiny: \$[0-9.]+/h over 5m, \$[0-9.]+/h over 1h, exhausted)"))
      << sections[4];
  for (std::size_t i = 5; i < sections.size(); ++i) {
    EXPECT_TRUE(matches(sections[i], R"(  team-daily-(usd|tokens) team=(pricing|tiny): [^,]+ )"
                                     R"(over 5m, [^,]+ over 1h, runs out in [0-9a-z]+)"))
        << sections[i];
  }

  const json doc = sluice_json({"status", "--json"});
  EXPECT_TRUE(doc["telemetry_unavailable"].is_null()) << doc;
  EXPECT_GT(doc["telemetry_unix_ns"].get<std::uint64_t>(), 0u);
  ASSERT_EQ(doc["alerts"].size(), 2u) << doc;
  EXPECT_EQ(doc["alerts"][0]["name"], "errors");
  EXPECT_EQ(doc["alerts"][0]["kind"], "error_rate_above");
  EXPECT_EQ(doc["alerts"][0]["firing"], true);
  EXPECT_EQ(doc["alerts"][0]["observed"], 1.0);
  EXPECT_EQ(doc["alerts"][0]["since_unix_ns"], doc["alerts"][0]["started_firing_unix_ns"]);
  EXPECT_EQ(doc["alerts"][1]["name"], "tiny-runs-out");
  EXPECT_EQ(doc["alerts"][1]["labels"], json({{"budget", "tiny-usd"}, {"key", "team=tiny"}}));
  EXPECT_EQ(doc["alerts"][1]["observed"], 0.0);
  ASSERT_EQ(doc["burn"].size(), 5u) << doc;
  const json& tiny = doc["burn"][0];
  EXPECT_EQ(tiny["limit"], "tiny-usd");
  EXPECT_EQ(tiny["key"], "team=tiny");
  EXPECT_EQ(tiny["measure"], "usd");
  EXPECT_EQ(tiny["budget"], kTinyBudgetNusd);
  EXPECT_EQ(tiny["used"], kTinyBudgetNusd);
  EXPECT_EQ(tiny["exhausts_in_s"], 0);
  EXPECT_GT(tiny["per_second_5m"].get<double>(), 0);
}

TEST_F(OpsCliTest, StatusWithNoAlertFiringSaysSoInOneLine) {
  ASSERT_TRUE(wait_for_telemetry([](const Telemetry& t) { return t.alerts.size() == 2; }));
  const CliRun r = sluice({"status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(status_sections(r.out),
            (std::vector<std::string>{
                "alerts: none firing (2 defined)",
                "burn: none of 0 budget keys on course to run out in their window"}))
      << r.out;

  const json doc = sluice_json({"status", "--json"});
  ASSERT_EQ(doc["alerts"].size(), 2u) << doc;
  EXPECT_EQ(doc["alerts"][0]["firing"], false);
  EXPECT_EQ(doc["alerts"][1]["firing"], false);
  EXPECT_EQ(doc["burn"], json::array());
  EXPECT_TRUE(doc["telemetry_unavailable"].is_null());
}

TEST_F(OpsCliTest, StatusWithoutALiveSluicedSaysNotAvailableRatherThanShowTheLastFile) {
  fire_alerts();
  stop_sidecar();
  ASSERT_TRUE(read_telemetry(segment_).ok()) << "the stopped sluiced's file is left behind";
  const CliRun r = sluice({"status"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\nsidecar_alive:"), std::string::npos) << r.out;
  EXPECT_EQ(
      status_sections(r.out),
      (std::vector<std::string>{"alerts and burn rates: not available (sluiced not running)"}))
      << r.out;
  EXPECT_EQ(r.out.find("firing"), std::string::npos) << r.out;

  const json doc = sluice_json({"status", "--json"});
  EXPECT_EQ(doc["sidecar_alive"], false);
  EXPECT_TRUE(doc["alerts"].is_null()) << doc;
  EXPECT_TRUE(doc["burn"].is_null());
  EXPECT_TRUE(doc["telemetry_unix_ns"].is_null());
  EXPECT_EQ(doc["telemetry_unavailable"], "sluiced not running");
}

TEST_F(OpsCliTest, TopShowsFiringAlertsAndSluicedsBurnPerKey) {
  fire_alerts();
  const json top = sluice_json({"top", "--interval", "0.2", "--json"});
  EXPECT_TRUE(top["telemetry_unavailable"].is_null()) << top;
  ASSERT_EQ(top["alerts"].size(), 2u) << top;
  EXPECT_EQ(top["alerts"][0]["firing"], true);
  EXPECT_EQ(top["alerts"][1]["firing"], true);
  ASSERT_EQ(top["burn"].size(), 5u);
  const json tiny = key_of(top, "tiny-usd", "team=tiny");
  ASSERT_FALSE(tiny.is_null()) << top;
  EXPECT_EQ(tiny["sidecar_burn"]["exhausts_in_s"], 0) << tiny;
  EXPECT_EQ(tiny["sidecar_burn"]["used"], kTinyBudgetNusd);
  EXPECT_GT(tiny["sidecar_burn"]["per_second_5m"].get<double>(), 0);
  EXPECT_EQ(tiny["usd_per_hour"], 0.0);  // nothing spent during top's own interval
  EXPECT_TRUE(key_of(top, "team-daily-usd", "team=pricing")["sidecar_burn"].is_object());

  const CliRun r = sluice({"top", "--interval", "0.2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_GT(lines.size(), 6u) << r.out;
  EXPECT_EQ(lines[1].rfind("calls: ", 0), 0u) << r.out;
  EXPECT_EQ(lines[2], "alerts: 2 firing (2 defined)") << r.out;
  EXPECT_TRUE(matches(lines[3], kErrorsFiring)) << lines[3];
  EXPECT_TRUE(matches(lines[4], kTinyFiring)) << lines[4];
  EXPECT_EQ(lines[5], "");
  std::string keys_header, tiny_row;
  for (const std::string& line : lines) {
    if (line.rfind("LIMIT ", 0) == 0 && line.find("EXHAUSTED IN") != std::string::npos) {
      keys_header = line;
    }
    if (line.rfind("tiny-usd ", 0) == 0 && line.find("team=tiny") != std::string::npos) {
      tiny_row = line;
    }
  }
  EXPECT_EQ(
      words_of(keys_header),
      (std::vector<std::string>{"LIMIT", "KEY", "WINDOW", "USED", "LIMIT", "REMAINING", "UNIT",
                                "BURN", "EXHAUSTED", "IN", "BURN", "5M", "EXHAUSTED", "IN", "5M"}))
      << keys_header;
  // LIMIT KEY WINDOW USED LIMIT REMAINING UNIT BURN EXHAUSTED-IN BURN-5M EXHAUSTED-IN-5M.
  const std::vector<std::string> tiny_words = words_of(tiny_row);
  ASSERT_EQ(tiny_words.size(), 11u) << r.out;
  EXPECT_EQ(tiny_words[7], "$0/h") << tiny_row;
  EXPECT_EQ(tiny_words[8], "—") << tiny_row;
  EXPECT_TRUE(matches(tiny_words[9], R"(\$[0-9.]+/h)")) << tiny_row;
  EXPECT_EQ(tiny_words[10], "0s") << tiny_row;
}

TEST_F(OpsCliTest, TopWithoutALiveSluicedSaysAlertsAreNotAvailable) {
  fire_alerts();
  stop_sidecar();
  const CliRun r = sluice({"top", "--interval", "0.1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_GT(lines.size(), 3u) << r.out;
  EXPECT_NE(lines[0].find("sidecar NOT alive"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[2], "alerts and burn rates: not available (sluiced not running)") << r.out;
  EXPECT_EQ(r.out.find("BURN 5M"), std::string::npos) << r.out;

  const json top = sluice_json({"top", "--interval", "0.1", "--json"});
  EXPECT_TRUE(top["alerts"].is_null()) << top;
  EXPECT_TRUE(top["burn"].is_null());
  EXPECT_EQ(top["telemetry_unavailable"], "sluiced not running");
  EXPECT_TRUE(key_of(top, "tiny-usd", "team=tiny")["sidecar_burn"].is_null());
}

// `sluice top` on a pseudo-terminal: it redraws with escape codes, quits on a
// key or a signal, and leaves the terminal as it found it.
class TopOnATerminal {
 public:
  explicit TopOnATerminal(const std::string& segment) {
    if (::openpty(&master_, &slave_, nullptr, nullptr, nullptr) != 0) return;
    ::tcgetattr(slave_, &before_);
    const std::string sluice = build_root() + "/clients/cli/sluice";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setsid();
      ::ioctl(slave_, TIOCSCTTY, 0);
      ::dup2(slave_, STDIN_FILENO);
      ::dup2(slave_, STDOUT_FILENO);
      ::dup2(slave_, STDERR_FILENO);
      ::execl(sluice.c_str(), sluice.c_str(), "top", "--interval", "0.2", "--segment",
              segment.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~TopOnATerminal() {
    if (pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
    if (slave_ >= 0) ::close(slave_);
  }

  bool started() const { return pid_ > 0; }

  // Reads the terminal until `text` has been drawn `times` times.
  bool wait_for(const std::string& text, int times = 1) {
    return eventually([&] {
      drain();
      int seen = 0;
      for (std::size_t at = output_.find(text); at != std::string::npos;
           at = output_.find(text, at + 1)) {
        ++seen;
      }
      return seen >= times;
    });
  }

  void type(const std::string& keys) {
    EXPECT_EQ(::write(master_, keys.data(), keys.size()), static_cast<ssize_t>(keys.size()));
  }
  void signal(int sig) { ::kill(pid_, sig); }

  // The exit status, or -1 if it did not exit within 5 s.
  int exit_status() {
    int status = 0;
    if (!eventually([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; },
                    std::chrono::seconds(5))) {
      return -1;
    }
    pid_ = -1;
    drain();
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  // The terminal's modes are back to what they were before sluice top ran.
  bool restored() const {
    termios now{};
    if (::tcgetattr(slave_, &now) != 0) return false;
    return now.c_lflag == before_.c_lflag && now.c_cc[VMIN] == before_.c_cc[VMIN];
  }

  const std::string& output() const { return output_; }

 private:
  void drain() {
    for (;;) {
      pollfd p{master_, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) return;
      char buf[4096];
      const ssize_t n = ::read(master_, buf, sizeof buf);
      if (n <= 0) return;
      output_.append(buf, static_cast<std::size_t>(n));
    }
  }

  int master_ = -1;
  int slave_ = -1;
  pid_t pid_ = -1;
  termios before_{};
  std::string output_;
};

TEST_F(OpsCliTest, TopOnATerminalRedrawsAndQuitsOnQRestoringTheTerminal) {
  TopOnATerminal top(segment_);
  ASSERT_TRUE(top.started());
  ASSERT_TRUE(top.wait_for("\x1b[H\x1b[2J", 3)) << top.output();  // two frames after the first
  EXPECT_NE(top.output().find("\x1b[?25l"), std::string::npos);   // cursor hidden
  EXPECT_NE(top.output().find("REQ/S"), std::string::npos) << top.output();
  top.type("q");
  EXPECT_EQ(top.exit_status(), 0) << top.output();
  EXPECT_NE(top.output().find("\x1b[?25h"), std::string::npos);  // cursor shown again
  EXPECT_TRUE(top.restored());
}

TEST_F(OpsCliTest, TopOnATerminalQuitsOnCtrlCAndOnSigtermRestoringTheTerminal) {
  {
    TopOnATerminal top(segment_);
    ASSERT_TRUE(top.started());
    ASSERT_TRUE(top.wait_for("REQ/S")) << top.output();
    top.type("\x03");
    EXPECT_EQ(top.exit_status(), 0) << top.output();
    EXPECT_TRUE(top.restored());
  }
  {
    TopOnATerminal top(segment_);
    ASSERT_TRUE(top.started());
    ASSERT_TRUE(top.wait_for("REQ/S")) << top.output();
    top.signal(SIGTERM);
    EXPECT_EQ(top.exit_status(), 0) << top.output();
    EXPECT_NE(top.output().find("\x1b[?25h"), std::string::npos);
    EXPECT_TRUE(top.restored());
  }
}

// ---------------------------------------------------------------------------
// sluice report

json report_row(const json& report, const json& attributes) {
  for (const json& row : report["rows"]) {
    if (row["attributes"] == attributes) return row;
  }
  return nullptr;
}

TEST_F(OpsCliTest, ReportAsJsonAttributesEveryNanoDollarToTeamFeatureAndModel) {
  run_workload();
  const json r = sluice_json(report_args({"--format", "json"}));
  EXPECT_EQ(r["source"], "audit");
  EXPECT_EQ(r["audit_dir"], (dir_ / "audit").string());
  EXPECT_EQ(r["by"], json({"team", "feature", "model"}));
  EXPECT_TRUE(r["since"].is_null());
  ASSERT_EQ(r["rows"].size(), 4u) << r;

  // Most expensive first.
  const json& pricing = r["rows"][0];
  EXPECT_EQ(pricing["attributes"],
            json({{"team", "pricing"}, {"feature", "quote-agent"}, {"model", "gpt-4o"}}));
  EXPECT_EQ(pricing["calls"], 3);  // the cancelled reservation is not a call
  EXPECT_EQ(pricing["input_tokens"], 1000 + 2000 + 500);
  EXPECT_EQ(pricing["output_tokens"], 400 + 900 + 250);
  EXPECT_EQ(pricing["rejections"], 0);
  EXPECT_EQ(pricing["cost_nusd"], kPricingA + kPricingB);
  EXPECT_DOUBLE_EQ(pricing["cost_usd"].get<double>(), 0.02425);

  const json& search = r["rows"][1];
  EXPECT_EQ(search["attributes"],
            json({{"team", "search"}, {"feature", "ranker"}, {"model", "gpt-4o-mini"}}));
  EXPECT_EQ(search["calls"], 2);  // one commit, one abandoned at its estimate
  EXPECT_EQ(search["input_tokens"], 10000 + 400);
  EXPECT_EQ(search["output_tokens"], 1500 + 100);
  EXPECT_EQ(search["cost_nusd"], kSearchA + kSearchB);

  const json& chat = r["rows"][2];
  EXPECT_EQ(chat["attributes"],
            json({{"team", "support"}, {"feature", "chat"}, {"model", "gpt-4o-mini"}}));
  EXPECT_EQ(chat["calls"], 1);
  EXPECT_EQ(chat["cost_nusd"], kSupportB);

  // The refused call: no feature attribute (null), one rejection, no cost.
  const json& refused = r["rows"][3];
  EXPECT_EQ(refused["attributes"],
            json({{"team", "support"}, {"feature", nullptr}, {"model", "gpt-4o"}}));
  EXPECT_EQ(refused["calls"], 0);
  EXPECT_EQ(refused["rejections"], 1);
  EXPECT_EQ(refused["cost_nusd"], 0);

  EXPECT_EQ(r["total"]["calls"], 6);
  EXPECT_EQ(r["total"]["rejections"], 1);
  EXPECT_EQ(r["total"]["input_tokens"], 14000);
  EXPECT_EQ(r["total"]["output_tokens"], 3200);
  EXPECT_EQ(r["total"]["cost_nusd"], kTotal);
}

TEST_F(OpsCliTest, ReportAsCsvIsExactWithATotalRow) {
  run_workload();
  const CliRun r = sluice(report_args({"--format", "csv"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out,
            "team,feature,model,calls,input_tokens,output_tokens,rejections,cost_usd,cost_nusd,"
            "errors,outcomes_reported,error_rate,latency_calls,latency_p50_ns,latency_p95_ns,"
            "latency_p99_ns,ttft_calls,ttft_p50_ns,ttft_p99_ns\r\n"
            "pricing,quote-agent,gpt-4o,3,3500,1550,0,0.024250000,24250000,0,0,,0,,,,0,,\r\n"
            "search,ranker,gpt-4o-mini,2,10400,1600,0,0.002520000,2520000,0,0,,0,,,,0,,\r\n"
            "support,chat,gpt-4o-mini,1,100,50,0,0.000045000,45000,0,0,,0,,,,0,,\r\n"
            "support,-,gpt-4o,0,0,0,1,0.000000000,0,0,0,,0,,,,0,,\r\n"
            "TOTAL,,,6,14000,3200,1,0.026815000,26815000,0,0,,0,,,,0,,\r\n");
}

TEST_F(OpsCliTest, ReportAsATableIsAlignedAndEndsWithTheTotal) {
  run_workload();
  const CliRun r = sluice({"report"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 6u) << r.out;
  EXPECT_EQ(words_of(lines[0]),
            (std::vector<std::string>{"TEAM", "FEATURE", "MODEL", "CALLS", "INPUT", "TOKENS",
                                      "OUTPUT", "TOKENS", "REJECTIONS", "COST", "(USD)", "ERROR",
                                      "RATE", "P50", "(S)", "P99", "(S)"}));
  // The workload's commits report no outcome or latency: - in those columns.
  EXPECT_EQ(words_of(lines[1]),
            (std::vector<std::string>{"pricing", "quote-agent", "gpt-4o", "3", "3500", "1550", "0",
                                      "0.024250000", "-", "-", "-"}));
  EXPECT_EQ(words_of(lines[4]), (std::vector<std::string>{"support", "-", "gpt-4o", "0", "0", "0",
                                                          "1", "0.000000000", "-", "-", "-"}));
  EXPECT_EQ(words_of(lines[5]), (std::vector<std::string>{"TOTAL", "6", "14000", "3200", "1",
                                                          "0.026815000", "-", "-", "-"}));
  // The cost column is right-aligned under its heading on every row.
  for (const std::string& line : lines) EXPECT_EQ(line.size(), lines[0].size()) << r.out;
}

TEST_F(OpsCliTest, ReportSinceAndUntilSplitTheWorkloadAtTheBoundary) {
  run_workload();
  const std::string boundary = rfc3339(boundary_ns_);
  const json after = sluice_json(report_args({"--format", "json", "--since", boundary}));
  EXPECT_EQ(after["since"], boundary);
  ASSERT_EQ(after["rows"].size(), 3u) << after;
  const json pricing =
      report_row(after, {{"team", "pricing"}, {"feature", "quote-agent"}, {"model", "gpt-4o"}});
  EXPECT_EQ(pricing["calls"], 1);
  EXPECT_EQ(pricing["cost_nusd"], kPricingB);
  const json search =
      report_row(after, {{"team", "search"}, {"feature", "ranker"}, {"model", "gpt-4o-mini"}});
  EXPECT_EQ(search["calls"], 1);  // the abandoned one
  EXPECT_EQ(search["input_tokens"], 400);
  EXPECT_EQ(search["cost_nusd"], kSearchB);
  EXPECT_EQ(after["total"]["cost_nusd"], kPricingB + kSearchB + kSupportB);
  EXPECT_EQ(after["total"]["rejections"], 0);

  const json before = sluice_json(report_args({"--format", "json", "--until", boundary}));
  ASSERT_EQ(before["rows"].size(), 3u) << before;
  EXPECT_EQ(before["rows"][0]["cost_nusd"], kPricingA);
  EXPECT_EQ(before["rows"][0]["calls"], 2);
  EXPECT_EQ(before["rows"][1]["cost_nusd"], kSearchA);
  EXPECT_EQ(before["total"]["cost_nusd"], kPricingA + kSearchA);
  EXPECT_EQ(before["total"]["rejections"], 1);

  const json all = sluice_json(report_args({"--format", "json", "--since", "1h"}));
  EXPECT_EQ(all["total"]["cost_nusd"], kTotal);
  const json none = sluice_json(report_args({"--format", "json", "--until", "1h"}));
  EXPECT_EQ(none["rows"], json::array());
  EXPECT_EQ(none["total"]["cost_nusd"], 0);
}

TEST_F(OpsCliTest, ReportByOneAttributeAndByThreeInAnyOrder) {
  run_workload();
  const json by_model = sluice_json(report_args({"--format", "json", "--by", "model"}));
  ASSERT_EQ(by_model["rows"].size(), 2u) << by_model;
  EXPECT_EQ(by_model["rows"][0]["attributes"], json({{"model", "gpt-4o"}}));
  EXPECT_EQ(by_model["rows"][0]["calls"], 3);
  EXPECT_EQ(by_model["rows"][0]["rejections"], 1);
  EXPECT_EQ(by_model["rows"][0]["cost_nusd"], kPricingA + kPricingB);
  EXPECT_EQ(by_model["rows"][1]["attributes"], json({{"model", "gpt-4o-mini"}}));
  EXPECT_EQ(by_model["rows"][1]["calls"], 3);
  EXPECT_EQ(by_model["rows"][1]["cost_nusd"], kSearchA + kSearchB + kSupportB);

  const CliRun by_team = sluice(report_args({"--format", "csv", "--by", "team"}));
  ASSERT_EQ(by_team.exit_code, 0) << by_team.err;
  EXPECT_EQ(by_team.out,
            "team,calls,input_tokens,output_tokens,rejections,cost_usd,cost_nusd,errors,"
            "outcomes_reported,error_rate,latency_calls,latency_p50_ns,latency_p95_ns,"
            "latency_p99_ns,ttft_calls,ttft_p50_ns,ttft_p99_ns\r\n"
            "pricing,3,3500,1550,0,0.024250000,24250000,0,0,,0,,,,0,,\r\n"
            "search,2,10400,1600,0,0.002520000,2520000,0,0,,0,,,,0,,\r\n"
            "support,1,100,50,1,0.000045000,45000,0,0,,0,,,,0,,\r\n"
            "TOTAL,6,14000,3200,1,0.026815000,26815000,0,0,,0,,,,0,,\r\n");

  const CliRun three = sluice(report_args({"--format", "csv", "--by", "model,team,feature"}));
  ASSERT_EQ(three.exit_code, 0) << three.err;
  const std::vector<std::string> lines = lines_of(three.out);
  ASSERT_EQ(lines.size(), 6u) << three.out;
  EXPECT_EQ(lines[0],
            "model,team,feature,calls,input_tokens,output_tokens,rejections,cost_usd,"
            "cost_nusd,errors,outcomes_reported,error_rate,latency_calls,latency_p50_ns,"
            "latency_p95_ns,latency_p99_ns,ttft_calls,ttft_p50_ns,ttft_p99_ns\r");
  EXPECT_EQ(lines[1],
            "gpt-4o,pricing,quote-agent,3,3500,1550,0,0.024250000,24250000,0,0,,0,,,,0,,\r");
  EXPECT_EQ(lines[4], "gpt-4o,support,-,0,0,0,1,0.000000000,0,0,0,,0,,,,0,,\r");
}

TEST_F(OpsCliTest, ReportWithDirNeedsNoLiveSegment) {
  run_workload();
  const CliRun r = sluice(report_args({"--dir", (dir_ / "audit").string(), "--format", "json"}),
                          segment_ + "-missing");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json doc = json::parse(r.out);
  EXPECT_EQ(doc["total"]["cost_nusd"], kTotal);
  EXPECT_EQ(doc["total"]["calls"], 6);
}

TEST_F(OpsCliTest, ReportFromTheLedgerShowsWhatEachBudgetKeyUsed) {
  run_workload();
  const std::string ledger = (dir_ / "sluice.db").string();
  auto used = [&](const json& doc, const std::string& limit, const std::string& key) {
    for (const json& row : doc["rows"]) {
      if (row["limit"] == limit && row["key"] == key) return row;
    }
    return json(nullptr);
  };
  json doc;
  const bool pushed = eventually([&] {
    doc = sluice_json(report_args({"--ledger", ledger, "--format", "json"}));
    const json pricing = used(doc, "team-daily-usd", "pricing");
    const json search = used(doc, "team-daily-usd", "search");
    return !pricing.is_null() && pricing["used"] == kPricingA + kPricingB && !search.is_null() &&
           search["used"] == kSearchA + kSearchB;
  });
  ASSERT_TRUE(pushed) << doc;
  EXPECT_EQ(doc["source"], "ledger");
  const json pricing = used(doc, "team-daily-usd", "pricing");
  EXPECT_EQ(pricing["unit"], "usd");
  EXPECT_DOUBLE_EQ(pricing["used_usd"].get<double>(), 0.02425);
  EXPECT_EQ(pricing["scope"], "local");
  EXPECT_EQ(pricing["hosts"], 1);
  const std::uint64_t start = pricing["window_start_unix"].get<std::uint64_t>();
  EXPECT_EQ(pricing["window_end_unix"].get<std::uint64_t>(), start + 86400);
  EXPECT_LE(start * kNsPerSecond, now_unix_ns());
  EXPECT_EQ(used(doc, "team-daily-usd", "support")["used"], kSupportB);
  const json tokens = used(doc, "team-daily-tokens", "pricing");
  ASSERT_FALSE(tokens.is_null()) << doc;
  EXPECT_EQ(tokens["used"], 1000 + 400 + 2000 + 900 + 500 + 250);
  EXPECT_EQ(tokens["unit"], "tokens");
  EXPECT_TRUE(used(doc, "spender-rps", "pricing").is_null());  // rates keep no ledger

  // A window counts when it overlaps --since/--until.
  EXPECT_EQ(
      sluice_json(report_args({"--ledger", ledger, "--format", "json", "--since", "1h"}))["rows"]
          .size(),
      doc["rows"].size());
  EXPECT_EQ(sluice_json(report_args(
                {"--ledger", ledger, "--format", "json", "--until", "2000-01-01"}))["rows"],
            json::array());

  const CliRun csv = sluice(report_args({"--ledger", ledger, "--format", "csv"}));
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  const std::vector<std::string> lines = lines_of(csv.out);
  EXPECT_EQ(lines[0], "limit,key,window_start,window_end,scope,hosts,used,unit\r");
  bool found = false;
  for (const std::string& line : lines) {
    if (line.rfind("team-daily-usd,pricing,", 0) == 0) {
      found = true;
      EXPECT_NE(line.find(",local,1,0.024250000,usd\r"), std::string::npos) << line;
    }
  }
  EXPECT_TRUE(found) << csv.out;

  const CliRun table = sluice(report_args({"--ledger", ledger}));
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table.out.rfind("LIMIT", 0), 0u) << table.out;
  EXPECT_NE(table.out.find(" 0.024250000  usd\n"), std::string::npos) << table.out;

  // Without a live sluiced the units are unknown, the amounts still exact.
  const CliRun offline =
      sluice(report_args({"--ledger", ledger, "--format", "json"}), segment_ + "-missing");
  ASSERT_EQ(offline.exit_code, 0) << offline.err;
  const json off = json::parse(offline.out);
  EXPECT_EQ(used(off, "team-daily-usd", "pricing")["used"], kPricingA + kPricingB);
  EXPECT_TRUE(used(off, "team-daily-usd", "pricing")["unit"].is_null());

  // With no sidecar on the file, reading it leaves nothing beside it (no
  // -wal or -shm owned by whoever ran sluice).
  stop_sidecar();
  ASSERT_FALSE(fs::exists(ledger + "-wal"));
  const CliRun stopped = sluice(report_args({"--ledger", ledger, "--format", "json"}));
  ASSERT_EQ(stopped.exit_code, 0) << stopped.err;
  EXPECT_EQ(used(json::parse(stopped.out), "team-daily-usd", "pricing")["used"],
            kPricingA + kPricingB);
  EXPECT_FALSE(fs::exists(ledger + "-wal"));
  EXPECT_FALSE(fs::exists(ledger + "-shm"));
}

TEST_F(OpsCliTest, BadFlagsExitTwoWithOneLine) {
  const std::string db = (dir_ / "sluice.db").string();
  const std::vector<std::vector<std::string>> bad = {
      {"top", "--interval", "0"},
      {"top", "--interval", "abc"},
      {"top", "--interval", "-1"},
      {"top", "--interval", "5000"},
      {"top", "--frobnicate"},
      {"report", "--format", "xml"},
      {"report", "--by", ""},
      {"report", "--by", "team,,model"},
      {"report", "--by", "team,team"},
      {"report", "--by", "team=pricing"},
      {"report", "--since", "yesterday"},
      {"report", "--until", "2026-13-01"},
      {"report", "--since", "2026-11-24", "--until", "2026-11-23"},
      {"report", "--dir", (dir_ / "no-such-dir").string()},
      {"report", "--ledger", (dir_ / "no-such.db").string()},
      {"report", "--ledger", policy_.string()},
      {"report", "--ledger", db, "--by", "team"},
      {"report", "--ledger", db, "--dir", (dir_ / "audit").string()},
      {"report", "--frobnicate"},
  };
  for (const auto& args : bad) {
    const CliRun r = sluice(args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_TRUE(one_line(r.err)) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_EQ(r.err.rfind("sluice: ", 0), 0u) << r.err;
    EXPECT_EQ(r.out, "") << ::testing::PrintToString(args);
  }
}

TEST_F(OpsCliTest, HelpSaysWhatEachSourceCanAnswer) {
  const CliRun report = sluice({"report", "--help"});
  EXPECT_EQ(report.exit_code, 0);
  EXPECT_NE(report.out.find("--ledger"), std::string::npos) << report.out;
  EXPECT_NE(report.out.find("not call attributes, calls, rejections"), std::string::npos)
      << report.out;
  for (const char* column :
       {"ERROR RATE", "P50 (S)", "P99 (S)", "latency_p95_ns", "ttft_p99_ns", "nearest-rank"}) {
    EXPECT_NE(report.out.find(column), std::string::npos) << column << " in " << report.out;
  }
  const CliRun top = sluice({"top", "--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_NE(top.out.find("--interval"), std::string::npos) << top.out;
}

}  // namespace
}  // namespace sluice
