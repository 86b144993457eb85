// Alert evaluation on scripted telemetry: burn rates and projected
// exhaustion, windowed call counts and p99, each alert kind firing and
// resolving exactly once, min_calls, policy reloads, and bounded memory.
// Time is injected; nothing sleeps.
#include "alert_rules.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace sluice {
namespace {

constexpr std::uint64_t kSec = 1'000'000'000;
constexpr std::uint64_t kT0 = 1'700'000'000;  // unix seconds of the scripts' start

std::uint64_t At(std::uint64_t s) { return (kT0 + s) * kSec; }

TelemetrySample::Budget Key(const std::string& limit, const std::string& key, std::uint64_t used,
                            std::uint64_t budget, std::uint64_t window_start = kT0,
                            std::uint64_t window_end = 0) {
  TelemetrySample::Budget b;
  b.limit = limit;
  b.key = key;
  b.used = used;
  b.budget = budget;
  b.window_start_unix = window_start;
  b.window_end_unix = window_end;
  return b;
}

TelemetrySample Spend(std::uint64_t s, std::vector<TelemetrySample::Budget> budgets) {
  TelemetrySample sample;
  sample.unix_ns = At(s);
  sample.budgets = std::move(budgets);
  return sample;
}

const BurnRate* FindRate(const std::vector<BurnRate>& rates, const std::string& key) {
  for (const BurnRate& r : rates) {
    if (r.key == key) return &r;
  }
  return nullptr;
}

AlertSpec Spec(const std::string& name, AlertKind kind) {
  AlertSpec s;
  s.name = name;
  s.kind = kind;
  return s;
}

// ---------------------------------------------------------------------------
// p99

TEST(LatencyQuantile, P99IsInterpolatedWithinTheBucketHoldingThe99thCall) {
  std::array<std::uint64_t, kLatencyBuckets> hist{};
  hist[4] = 50;   // (50ms, 100ms]
  hist[12] = 50;  // (6000ms, 8000ms]
  // rank 99: the 49th of 50 calls in (6s, 8s] -> 6000 + 2000 * 49 / 50 ms
  EXPECT_DOUBLE_EQ(*latency_quantile_s(0.99, hist), 7.96);
  EXPECT_DOUBLE_EQ(*latency_quantile_s(0.5, hist), 0.1);  // rank 50 ends bucket 4
}

TEST(LatencyQuantile, TheFirstBucketStartsAtZero) {
  std::array<std::uint64_t, kLatencyBuckets> hist{};
  hist[0] = 10;  // [0, 5ms]
  EXPECT_DOUBLE_EQ(*latency_quantile_s(0.99, hist), 0.00495);
}

TEST(LatencyQuantile, TheUnboundedBucketReportsItsLowerBound) {
  std::array<std::uint64_t, kLatencyBuckets> hist{};
  hist[3] = 1;
  hist[kLatencyBuckets - 1] = 99;
  EXPECT_DOUBLE_EQ(*latency_quantile_s(0.99, hist), 120.0);
}

TEST(LatencyQuantile, AnEmptyHistogramHasNoQuantile) {
  EXPECT_FALSE(latency_quantile_s(0.99, {}).has_value());
}

TEST(LatencyQuantile, UsesTheSegmentsBucketBounds) {
  EXPECT_EQ(kOutcomes, 6);
  EXPECT_EQ(kLatencyBuckets, 20);
  EXPECT_EQ(kLatencyBoundsMs[0], 5u);
  EXPECT_EQ(kLatencyBoundsMs[12], 8000u);
  EXPECT_EQ(kLatencyBoundsMs[18], 120000u);
}

// ---------------------------------------------------------------------------
// Burn rates

TEST(BurnRates, OverFiveMinutesAndAnHourMatchTheSpendBetweenSamples) {
  // A sample a minute for 70 minutes: 1 unit/s for 40 minutes, then 3 units/s.
  TelemetryHistory h;
  std::uint64_t used = 0;
  for (std::uint64_t i = 0; i <= 70; ++i) {
    if (i > 0) used += i <= 40 ? 60 : 180;
    h.add(Spend(i * 60, {Key("daily", "team=pricing", used, 100'000)}));
  }
  ASSERT_EQ(used, 7800u);
  const std::vector<BurnRate> rates = h.burn_rates(At(4200));
  ASSERT_EQ(rates.size(), 1u);
  const BurnRate& r = rates[0];
  EXPECT_EQ(r.limit, "daily");
  EXPECT_EQ(r.key, "team=pricing");
  EXPECT_EQ(r.budget, 100'000u);
  EXPECT_EQ(r.used, 7800u);
  EXPECT_DOUBLE_EQ(r.per_second_5m, 3.0);  // (7800 - 6900) / 300 s
  EXPECT_DOUBLE_EQ(r.per_second_1h, 2.0);  // (7800 - 600) / 3600 s
  ASSERT_TRUE(r.exhausts_in_s.has_value());
  EXPECT_EQ(*r.exhausts_in_s, 30733u);  // floor(92200 / 3)
}

TEST(BurnRates, StayExactForLinearSpendSampledEverySecondThroughThinning) {
  TelemetryHistory h;
  for (std::uint64_t s = 0; s <= 7200; ++s) {
    h.add(Spend(s, {Key("daily", "k", 7 * s, 1'000'000'000)}));
  }
  const std::vector<BurnRate> rates = h.burn_rates(At(7200));
  ASSERT_EQ(rates.size(), 1u);
  EXPECT_DOUBLE_EQ(rates[0].per_second_5m, 7.0);
  EXPECT_DOUBLE_EQ(rates[0].per_second_1h, 7.0);
}

TEST(BurnRates, ARefundGivesZeroNotANegativeRate) {
  TelemetryHistory h;
  h.add(Spend(0, {Key("daily", "k", 5000, 10'000)}));
  h.add(Spend(60, {Key("daily", "k", 4000, 10'000)}));
  const BurnRate r = h.burn_rates(At(60)).at(0);
  EXPECT_EQ(r.per_second_5m, 0.0);
  EXPECT_EQ(r.per_second_1h, 0.0);
  EXPECT_FALSE(r.exhausts_in_s.has_value());
}

TEST(BurnRates, ANewWindowStartsTheRateAgainInsteadOfGoingNegativeOrHuge) {
  TelemetryHistory h;
  const std::uint64_t day1 = kT0;
  const std::uint64_t day2 = kT0 + 600;
  const std::uint64_t day3 = day2 + 2 * 86400ull;
  for (std::uint64_t s = 0; s < 600; s += 10) {  // 15 units/s through the first window
    h.add(Spend(s, {Key("daily", "k", 15 * s, 1'000'000, day1, day2)}));
  }
  // The window turns over: used starts again from 0 under a new window_start.
  h.add(Spend(600, {Key("daily", "k", 0, 1'000'000, day2, day3)}));
  BurnRate r = h.burn_rates(At(600)).at(0);
  EXPECT_EQ(r.per_second_5m, 0.0);  // one sample in this window
  EXPECT_EQ(r.per_second_1h, 0.0);
  EXPECT_FALSE(r.exhausts_in_s.has_value());

  for (std::uint64_t s = 610; s <= 660; s += 10) {  // 10 units/s in the new window
    h.add(Spend(s, {Key("daily", "k", 10 * (s - 600), 1'000'000, day2, day3)}));
  }
  r = h.burn_rates(At(660)).at(0);
  EXPECT_DOUBLE_EQ(r.per_second_5m, 10.0);  // 600 units since the window began, 60 s ago
  EXPECT_DOUBLE_EQ(r.per_second_1h, 10.0);
  EXPECT_EQ(*r.exhausts_in_s, 99'940u);
}

TEST(BurnRates, ExhaustsInIsExactForLinearSpendAndNoneWhenTheWindowEndsFirst) {
  // 2 units/s from 0 against 10000, sampled every 5 s for 10 minutes: at 600 s,
  // 1200 used, 8800 left, 4400 s to go.
  const auto run = [](std::uint64_t window_end) {
    TelemetryHistory h;
    for (std::uint64_t s = 0; s <= 600; s += 5) {
      h.add(Spend(s, {Key("daily", "k", 2 * s, 10'000, kT0, window_end)}));
    }
    return h.burn_rates(At(600)).at(0);
  };
  BurnRate r = run(0);  // end unknown
  EXPECT_DOUBLE_EQ(r.per_second_5m, 2.0);
  ASSERT_TRUE(r.exhausts_in_s.has_value());
  EXPECT_EQ(*r.exhausts_in_s, 4400u);
  r = run(kT0 + 600 + 4400);  // runs out as the window ends
  ASSERT_TRUE(r.exhausts_in_s.has_value());
  EXPECT_EQ(*r.exhausts_in_s, 4400u);
  r = run(kT0 + 600 + 4399);  // the window resets a second before
  EXPECT_FALSE(r.exhausts_in_s.has_value());
  EXPECT_DOUBLE_EQ(r.per_second_5m, 2.0);
}

TEST(BurnRates, ExhaustsInIsZeroOnceUsedReachesTheBudgetAndNoneWithoutSpend) {
  TelemetryHistory h;
  h.add(Spend(0, {Key("daily", "spent", 10'000, 10'000), Key("daily", "idle", 10, 10'000)}));
  h.add(Spend(60, {Key("daily", "spent", 10'000, 10'000), Key("daily", "idle", 10, 10'000)}));
  const std::vector<BurnRate> rates = h.burn_rates(At(60));
  EXPECT_EQ(FindRate(rates, "spent")->exhausts_in_s, std::optional<std::uint64_t>(0));
  EXPECT_FALSE(FindRate(rates, "idle")->exhausts_in_s.has_value());
}

TEST(BurnRates, AOneSampleOrStaleHistoryGivesZeroOverFiveMinutes) {
  TelemetryHistory h;
  h.add(Spend(0, {Key("daily", "k", 100, 10'000)}));
  EXPECT_EQ(h.burn_rates(At(0)).at(0).per_second_5m, 0.0);
  for (std::uint64_t s = 5; s <= 600; s += 5) {
    h.add(Spend(s, {Key("daily", "k", 100 + s, 10'000)}));
  }
  // Sampling stopped 10 minutes ago: nothing within the last 5 minutes to compare with.
  const BurnRate r = h.burn_rates(At(1200)).at(0);
  EXPECT_EQ(r.per_second_5m, 0.0);
  EXPECT_DOUBLE_EQ(r.per_second_1h, 1.0);
  EXPECT_FALSE(r.exhausts_in_s.has_value());
}

// ---------------------------------------------------------------------------
// Windows

TelemetrySample::Model Model(const std::string& name) {
  TelemetrySample::Model m;
  m.name = name;
  return m;
}

TEST(Window, CountsWhatTheCountersGrewByOverTheWindow) {
  TelemetryHistory h;
  for (std::uint64_t s = 0; s <= 600; s += 5) {
    TelemetrySample sample;
    sample.unix_ns = At(s);
    TelemetrySample::Model big = Model("gpt-4o");
    big.calls = {7 * s, s, s / 5, s / 10, 0, 0};  // unreported, ok, provider_error, timeout
    big.latency_hist[7] = s;                      // (500ms, 1s]
    TelemetrySample::Model mini = Model("gpt-4o-mini");
    mini.calls = {0, 2 * s, 0, 0, s / 5, s / 5};  // ok, cancelled, cut off
    mini.latency_hist[7] = 2 * s;
    sample.models = {big, mini};
    h.add(sample);
  }
  TelemetryHistory::Window w = h.window("gpt-4o", 300 * kSec, At(600));
  EXPECT_EQ(w.calls, 390u);  // 300 ok + 60 provider errors + 30 timeouts
  EXPECT_EQ(w.errors, 90u);
  EXPECT_EQ(w.timed, 300u);
  ASSERT_TRUE(w.p99_s.has_value());
  EXPECT_DOUBLE_EQ(*w.p99_s, 0.995);  // 500 + 500 * 0.99 ms

  w = h.window("", 300 * kSec, At(600));
  EXPECT_EQ(w.calls, 390u + 600u + 60u + 60u);
  EXPECT_EQ(w.errors, 90u);
  EXPECT_EQ(w.timed, 900u);

  w = h.window("gpt-4o", 60 * kSec, At(600));
  EXPECT_EQ(w.calls, 78u);  // 60 + 12 + 6
  EXPECT_EQ(w.timed, 60u);
}

TEST(Window, ACounterThatGoesBackIsANewSegmentCountingFromZero) {
  TelemetryHistory h;
  const std::uint64_t ok[] = {1000, 1100, 5, 25};
  for (std::uint64_t i = 0; i < 4; ++i) {
    TelemetrySample sample;
    sample.unix_ns = At(60 * i);
    TelemetrySample::Model m = Model("gpt-4o");
    m.calls[1] = ok[i];
    m.latency_hist[2] = ok[i];
    sample.models = {m};
    h.add(sample);
  }
  const TelemetryHistory::Window w = h.window("gpt-4o", 300 * kSec, At(180));
  EXPECT_EQ(w.calls, 125u);  // 100, then 5 in the new segment, then 20
  EXPECT_EQ(w.timed, 125u);
}

TEST(Window, AnUnknownModelOrNoHistoryIsEmpty) {
  TelemetryHistory h;
  EXPECT_EQ(h.window("", 300 * kSec, At(0)).calls, 0u);
  TelemetrySample sample;
  sample.unix_ns = At(0);
  sample.models = {Model("gpt-4o")};
  h.add(sample);
  const TelemetryHistory::Window w = h.window("claude", 300 * kSec, At(0));
  EXPECT_EQ(w.calls, 0u);
  EXPECT_EQ(w.timed, 0u);
  EXPECT_FALSE(w.p99_s.has_value());
}

// ---------------------------------------------------------------------------
// Alerts

// Evaluates `book` at `s` and returns the names of what changed, "+name" firing, "-name" resolved.
std::vector<std::string> Changes(AlertBook& book, const TelemetryHistory& h, std::uint64_t s) {
  std::vector<std::string> out;
  for (const AlertStatus& c : book.evaluate(h, At(s))) {
    out.push_back((c.firing ? "+" : "-") + c.name);
  }
  return out;
}

using Names = std::vector<std::string>;

TEST(AlertBookTest, ExhaustsWithinFiresWhenAKeyWillRunOutInTimeAndResolvesWhenSpendingStops) {
  AlertSpec spec = Spec("pricing-burn", AlertKind::kExhaustsWithin);
  spec.budget = "daily";
  spec.value_ns = 3600 * kSec;
  AlertBook book({spec});
  TelemetryHistory h;
  // 25 USD a day in nano-dollars: pricing spends 100k nUSD/s, then 10M nUSD/s
  // from 600 s (0.6 USD/min), then nothing from 1200 s; search spends 100k nUSD/s.
  constexpr std::uint64_t kBudget = 25'000'000'000;
  std::uint64_t pricing = 0;
  std::uint64_t fired = 0;
  std::uint64_t resolved = 0;
  for (std::uint64_t s = 0; s <= 1800; s += 5) {
    if (s > 0) pricing += s <= 600 ? 500'000 : s <= 1200 ? 50'000'000 : 0;
    TelemetrySample::Budget p = Key("daily", "team=pricing", pricing, kBudget);
    TelemetrySample::Budget q = Key("daily", "team=search", 100'000 * s, kBudget);
    p.measure = q.measure = "usd";
    h.add(Spend(s, {p, q}));
    const Names changes = Changes(book, h, s);
    if (changes == Names{"+pricing-burn"}) {
      EXPECT_EQ(fired, 0u) << "fired twice";
      fired = s;
      const AlertStatus& st = book.status()[0];
      EXPECT_EQ(st.labels,
                (std::map<std::string, std::string>{{"budget", "daily"}, {"key", "team=pricing"}}));
      EXPECT_EQ(st.since_unix_ns, At(s));
      EXPECT_EQ(st.observed, 3517.0);
    } else if (changes == Names{"-pricing-burn"}) {
      EXPECT_EQ(resolved, 0u) << "resolved twice";
      resolved = s;
      EXPECT_EQ(book.status()[0].summary,
                "budget daily (team=pricing) exhausts in 1h1m at 0.31 USD/min (alert: exhausts "
                "within 1h)");
    } else {
      EXPECT_EQ(changes, Names{}) << "at " << s;
    }
    if (s == 1200) {
      EXPECT_TRUE(book.status()[0].firing);
      EXPECT_EQ(book.status()[0].summary,
                "budget daily (team=pricing) exhausts in 31m34s at 0.6 USD/min (alert: exhausts "
                "within 1h)");
      EXPECT_EQ(book.status()[0].observed, 1894.0);
    }
  }
  // At 795 s the 5-minute rate first projects under an hour (3517 s; at 790 s, 3616 s);
  // at 1345 s it no longer does (3665 s; at 1340 s, 3551 s).
  EXPECT_EQ(fired, 795u);
  EXPECT_EQ(resolved, 1345u);
  EXPECT_FALSE(book.status()[0].firing);
  EXPECT_EQ(book.status()[0].since_unix_ns, At(1345));
  EXPECT_EQ(book.status()[0].started_firing_unix_ns, At(795));
  EXPECT_EQ(book.status()[0].summary,
            "budget daily (team=search) exhausts in 2d20h at 0.006 USD/min (alert: exhausts "
            "within 1h)");
}

TEST(AlertBookTest, ExhaustsWithinFiresForABudgetAlreadySpent) {
  AlertSpec spec = Spec("burn", AlertKind::kExhaustsWithin);
  spec.budget = "daily";
  spec.value_ns = 60 * kSec;
  AlertBook book({spec});
  TelemetryHistory h;
  h.add(Spend(0, {Key("daily", "k", 500, 500)}));
  EXPECT_EQ(Changes(book, h, 0), Names{"+burn"});
  EXPECT_EQ(book.status()[0].summary, "budget daily (k) is exhausted (alert: exhausts within 1m)");
  EXPECT_EQ(book.status()[0].observed, 0.0);
  // The window turns over: nothing spent, nothing projected.
  h.add(Spend(10, {Key("daily", "k", 0, 500, kT0 + 10)}));
  EXPECT_EQ(Changes(book, h, 10), Names{"-burn"});
  EXPECT_EQ(book.status()[0].summary,
            "budget daily: no key is on course to run out in its window (alert: exhausts within "
            "1m)");
  EXPECT_EQ(book.status()[0].observed, std::numeric_limits<double>::infinity());
}

TEST(AlertBookTest, ExhaustsWithinNamesTheSoonestKeyAndCountsTheOthers) {
  AlertSpec spec = Spec("burn", AlertKind::kExhaustsWithin);
  spec.budget = "daily";
  spec.value_ns = 3600 * kSec;
  AlertBook book({spec});
  TelemetryHistory h;
  for (std::uint64_t s = 0; s <= 300; s += 60) {
    h.add(Spend(s, {Key("daily", "a", 2 * s, 10'000), Key("daily", "b", 4 * s, 10'000),
                    Key("daily", "c", 3 * s, 10'000), Key("other", "d", 9 * s, 10'000)}));
  }
  EXPECT_EQ(Changes(book, h, 300), Names{"+burn"});
  // a: 9400 left at 2/s, b: 8800 at 4/s, c: 9100 at 3/s (d is another budget).
  EXPECT_EQ(book.status()[0].summary,
            "budget daily (b) exhausts in 36m40s at 240 units/min (alert: exhausts within 1h); 1 "
            "more key also does");
  EXPECT_EQ(book.status()[0].observed, 2200.0);
  EXPECT_EQ(book.status()[0].labels.at("key"), "b");
}

// Two calls per 5-s sample for gpt-4o: in (500ms, 1s] before 600 s and from
// 1200 s on, in (8s, 10s] between; gpt-4o-mini is always slow.
TelemetrySample LatencySample(std::uint64_t s, std::uint64_t* fast, std::uint64_t* slow) {
  if (s > 0) (s >= 600 && s < 1200 ? *slow : *fast) += 2;
  TelemetrySample sample;
  sample.unix_ns = At(s);
  TelemetrySample::Model big = Model("gpt-4o");
  big.calls[1] = *fast + *slow;
  big.latency_hist[7] = *fast;
  big.latency_hist[13] = *slow;
  TelemetrySample::Model mini = Model("gpt-4o-mini");
  mini.calls[1] = 10 * s;
  mini.latency_hist[19] = 10 * s;
  sample.models = {big, mini};
  return sample;
}

TEST(AlertBookTest, P99LatencyFiresAboveTheThresholdAndResolvesWhenCallsSpeedUp) {
  AlertSpec spec = Spec("gpt4o-slow", AlertKind::kP99LatencyAbove);
  spec.model = "gpt-4o";
  spec.value_ns = 8 * kSec;
  AlertBook book({spec});
  TelemetryHistory h;
  std::uint64_t fast = 0;
  std::uint64_t slow = 0;
  std::vector<std::pair<std::uint64_t, Names>> changes;
  for (std::uint64_t s = 0; s <= 1800; s += 5) {
    h.add(LatencySample(s, &fast, &slow));
    const Names c = Changes(book, h, s);
    if (!c.empty()) changes.emplace_back(s, c);
    if (s == 600) {
      // 118 fast calls and 2 slow in the window: rank 118.8 is 0.8 of 2 into (8s, 10s].
      EXPECT_EQ(book.status()[0].summary,
                "p99 latency of gpt-4o is 8.8s over 5m (120 timed calls); alert above 8s");
      EXPECT_DOUBLE_EQ(book.status()[0].observed, 8.8);
      EXPECT_EQ(book.status()[0].labels, (std::map<std::string, std::string>{{"model", "gpt-4o"}}));
    }
    if (s == 1495) {
      EXPECT_EQ(book.status()[0].summary,
                "p99 latency of gpt-4o is 995ms over 5m (120 timed calls); alert above 8s");
    }
  }
  EXPECT_EQ(changes, (std::vector<std::pair<std::uint64_t, Names>>{{600, {"+gpt4o-slow"}},
                                                                   {1495, {"-gpt4o-slow"}}}));
}

TEST(AlertBookTest, P99LatencyOfAllModelsCountsEveryModel) {
  AlertSpec spec = Spec("slow", AlertKind::kP99LatencyAbove);
  spec.value_ns = 8 * kSec;
  AlertBook book({spec});
  TelemetryHistory h;
  std::uint64_t fast = 0;
  std::uint64_t slow = 0;
  h.add(LatencySample(0, &fast, &slow));
  h.add(LatencySample(5, &fast, &slow));
  EXPECT_EQ(Changes(book, h, 5), Names{"+slow"});  // gpt-4o-mini's 50 calls past 120 s
  EXPECT_EQ(book.status()[0].summary,
            "p99 latency of all models is 2m over 5m (52 timed calls); alert above 8s");
  EXPECT_TRUE(book.status()[0].labels.empty());
}

// Each 5-s sample: 10 calls, of which one provider error and one timeout
// between 600 s and 1200 s.
TelemetrySample ErrorSample(std::uint64_t s, std::uint64_t* ok, std::uint64_t* failed) {
  if (s > 0) {
    const bool failing = s >= 600 && s < 1200;
    *ok += failing ? 8 : 10;
    *failed += failing ? 1 : 0;
  }
  TelemetrySample sample;
  sample.unix_ns = At(s);
  TelemetrySample::Model m = Model("gpt-4o");
  m.calls = {3, *ok, *failed, *failed, 0, 0};
  sample.models = {m};
  return sample;
}

TEST(AlertBookTest, ErrorRateFiresAboveTheThresholdAndResolvesWhenErrorsStop) {
  AlertSpec spec = Spec("errors", AlertKind::kErrorRateAbove);
  spec.rate = 0.05;
  spec.min_calls = 20;
  AlertBook book({spec});
  TelemetryHistory h;
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
  std::vector<std::pair<std::uint64_t, Names>> changes;
  for (std::uint64_t s = 0; s <= 1800; s += 5) {
    h.add(ErrorSample(s, &ok, &failed));
    const Names c = Changes(book, h, s);
    if (!c.empty()) changes.emplace_back(s, c);
    if (s == 670) {
      EXPECT_EQ(book.status()[0].summary,
                "error rate of all models is 5% over 5m (30 of 600 calls); alert above 5%");
    }
    if (s == 675) {
      EXPECT_EQ(book.status()[0].summary,
                "error rate of all models is 5.33% over 5m (32 of 600 calls); alert above 5%");
      EXPECT_DOUBLE_EQ(book.status()[0].observed, 32.0 / 600.0);
    }
  }
  // Fires at the 16th failing sample in the window (32 errors > 30), resolves when 15 remain.
  EXPECT_EQ(changes, (std::vector<std::pair<std::uint64_t, Names>>{{675, {"+errors"}},
                                                                   {1420, {"-errors"}}}));
}

TEST(AlertBookTest, MinCallsKeepsAQuietWindowFromFiring) {
  AlertSpec errors = Spec("errors", AlertKind::kErrorRateAbove);
  errors.rate = 0.05;
  errors.min_calls = 10;
  AlertSpec slow = Spec("slow", AlertKind::kP99LatencyAbove);
  slow.value_ns = 1 * kSec;
  slow.min_calls = 10;
  AlertBook book({errors, slow});
  TelemetryHistory h;
  for (std::uint64_t s = 0; s <= 600; s += 60) {  // 9 calls in 5 minutes, every one failed and slow
    TelemetrySample sample;
    sample.unix_ns = At(s);
    TelemetrySample::Model m = Model("gpt-4o");
    m.calls[2] = 9 * s / 300;
    m.latency_hist[15] = 9 * s / 300;
    sample.models = {m};
    h.add(sample);
    EXPECT_EQ(Changes(book, h, s), Names{}) << "at " << s;
  }
  EXPECT_EQ(book.status()[0].summary,
            "error rate of all models: 9 calls over 5m, fewer than min_calls 10; alert above 5%");
  EXPECT_EQ(book.status()[1].summary,
            "p99 latency of all models: 9 timed calls over 5m, fewer than min_calls 10; alert "
            "above 1s");
  EXPECT_EQ(book.status()[0].observed, 1.0);

  // One more call in the window and both fire, once.
  TelemetrySample sample;
  sample.unix_ns = At(605);
  TelemetrySample::Model m = Model("gpt-4o");
  m.calls[2] = 19;
  m.latency_hist[15] = 19;
  sample.models = {m};
  h.add(sample);
  EXPECT_EQ(Changes(book, h, 605), (Names{"+errors", "+slow"}));
  EXPECT_EQ(Changes(book, h, 606), Names{});
}

TEST(AlertBookTest, EvaluateReportsAChangeOnceNotAgainWhileSteady) {
  AlertSpec spec = Spec("burn", AlertKind::kExhaustsWithin);
  spec.budget = "daily";
  spec.value_ns = 60 * kSec;
  AlertBook book({spec});
  EXPECT_EQ(book.status()[0].summary, "not evaluated yet");
  TelemetryHistory h;
  h.add(Spend(0, {Key("daily", "k", 500, 500)}));
  EXPECT_EQ(Changes(book, h, 0), Names{"+burn"});
  for (std::uint64_t s = 1; s < 100; ++s) {
    h.add(Spend(s, {Key("daily", "k", 500, 500)}));
    ASSERT_EQ(Changes(book, h, s), Names{}) << "at " << s;
  }
  EXPECT_EQ(book.status()[0].since_unix_ns, At(0));
}

TEST(AlertBookTest, ReplaceKeepsUnchangedAlertsAndResolvesRemovedOrRedefinedOnes) {
  const auto burn = [](const std::string& name, std::uint64_t within_s) {
    AlertSpec s = Spec(name, AlertKind::kExhaustsWithin);
    s.budget = "daily";
    s.value_ns = within_s * kSec;
    return s;
  };
  AlertBook book({burn("kept", 60), burn("redefined", 60), burn("removed", 60)});
  TelemetryHistory h;
  h.add(Spend(0, {Key("daily", "k", 500, 500)}));
  EXPECT_EQ(Changes(book, h, 0), (Names{"+kept", "+redefined", "+removed"}));

  book.replace({burn("added", 60), burn("redefined", 120), burn("kept", 60)});
  ASSERT_EQ(book.status().size(), 3u);
  EXPECT_EQ(book.status()[0].name, "added");
  EXPECT_FALSE(book.status()[0].firing);
  EXPECT_FALSE(book.status()[1].firing);  // a new definition starts over
  EXPECT_EQ(book.status()[2].name, "kept");
  EXPECT_TRUE(book.status()[2].firing);
  EXPECT_EQ(book.status()[2].since_unix_ns, At(0));

  const std::vector<AlertStatus> changes = book.evaluate(h, At(1));
  ASSERT_EQ(changes.size(), 4u);
  EXPECT_EQ(changes[0].name, "redefined");
  EXPECT_FALSE(changes[0].firing);
  EXPECT_EQ(changes[0].summary, "redefined: removed or redefined by a policy reload");
  EXPECT_EQ(changes[0].since_unix_ns, At(1));
  EXPECT_EQ(changes[0].started_firing_unix_ns, At(0));
  EXPECT_EQ(changes[1].name, "removed");
  EXPECT_FALSE(changes[1].firing);
  EXPECT_EQ(changes[2].name, "added");
  EXPECT_TRUE(changes[2].firing);
  EXPECT_EQ(changes[3].name, "redefined");
  EXPECT_TRUE(changes[3].firing);
  EXPECT_EQ(Changes(book, h, 2), Names{});
}

// ---------------------------------------------------------------------------
// Memory

TEST(TelemetryHistoryTest, MemoryStaysBoundedOverOneHundredThousandSamplesASecondApart) {
  TelemetryHistory h;
  TelemetryHistory::Size at_half;
  for (std::uint64_t s = 0; s < 100'000; ++s) {
    TelemetrySample sample;
    sample.unix_ns = At(s);
    for (const char* name : {"", "gpt-4o", "gpt-4o-mini"}) {
      TelemetrySample::Model m = Model(name);
      m.calls[1] = s;
      m.latency_hist[5] = s;
      sample.models.push_back(m);
    }
    // Ten steady keys and five that change name every ten minutes.
    for (std::uint64_t k = 0; k < 10; ++k) {
      sample.budgets.push_back(Key("daily", "team=" + std::to_string(k), s, 1'000'000'000));
    }
    for (std::uint64_t k = 0; k < 5; ++k) {
      sample.budgets.push_back(
          Key("daily", "user=" + std::to_string(s / 600 * 5 + k), s % 600, 1'000'000'000));
    }
    h.add(std::move(sample));
    if (s == 50'000) at_half = h.size();
  }
  const TelemetryHistory::Size size = h.size();
  // 10 minutes at one per 5 s, 55 more at one a minute, the newest: the same from hour two on.
  EXPECT_EQ(size.samples, 176u);
  EXPECT_EQ(size.samples, at_half.samples);
  EXPECT_EQ(size.models, 3u);
  EXPECT_EQ(size.model_points, 3 * size.samples);
  // The renamed keys of the last 65 minutes: at most 8 generations of 5.
  EXPECT_LE(size.budget_keys, 10u + 8 * 5);
  EXPECT_LE(size.budget_points, 15 * size.samples);
  EXPECT_EQ(size.untracked_budget_keys, 0u);
  // Rates still come out right at the end.
  const std::vector<BurnRate> rates = h.burn_rates(At(99'999));
  const BurnRate* r = FindRate(rates, "team=3");
  ASSERT_NE(r, nullptr);
  EXPECT_DOUBLE_EQ(r->per_second_5m, 1.0);
  EXPECT_DOUBLE_EQ(r->per_second_1h, 1.0);
  EXPECT_EQ(h.window("gpt-4o", 3600 * kSec, At(99'999)).calls,
            h.window("gpt-4o", 3600 * kSec, At(99'999)).timed);
}

TEST(TelemetryHistoryTest, BudgetKeysPastTheCapAreNotTrackedUntilOthersAgeOut) {
  TelemetryHistory h(/*keep_ns=*/600 * kSec, /*max_budget_keys=*/3);
  const auto keys = [](int first, int n) {
    std::vector<TelemetrySample::Budget> out;
    for (int k = first; k < first + n; ++k) out.push_back(Key("daily", std::to_string(k), 1, 10));
    return out;
  };
  h.add(Spend(0, keys(0, 5)));
  EXPECT_EQ(h.size().budget_keys, 3u);
  EXPECT_EQ(h.size().untracked_budget_keys, 2u);
  std::vector<BurnRate> rates = h.burn_rates(At(0));
  ASSERT_EQ(rates.size(), 3u);
  EXPECT_EQ(rates[0].key, "0");
  EXPECT_EQ(rates[2].key, "2");

  // Keys 0-4 stop appearing; once no kept sample mentions them, 5-7 get their places.
  for (std::uint64_t s = 60; s <= 660; s += 60) h.add(Spend(s, keys(5, 3)));
  EXPECT_EQ(h.size().budget_keys, 3u);
  EXPECT_EQ(h.size().untracked_budget_keys, 0u);
  rates = h.burn_rates(At(660));
  ASSERT_EQ(rates.size(), 3u);
  EXPECT_EQ(rates[0].key, "5");
}

TEST(TelemetryHistoryTest, AClockThatGoesBackStartsTheHistoryOver) {
  TelemetryHistory h;
  for (std::uint64_t s = 100; s <= 400; s += 60) h.add(Spend(s, {Key("daily", "k", s, 10'000)}));
  h.add(Spend(50, {Key("daily", "k", 460, 10'000)}));
  EXPECT_EQ(h.size().samples, 1u);
  EXPECT_EQ(h.burn_rates(At(50)).at(0).per_second_5m, 0.0);
}

}  // namespace
}  // namespace sluice
