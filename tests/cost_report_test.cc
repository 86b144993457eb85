// `sluice report`'s arithmetic (clients/cli/cost_report.h): DurationHistogram
// percentiles against the exact nearest rank, its memory bound, and what a
// CostReport counts of each record's call report (errors, outcomes
// reported, latency, TTFT), built from Records encoded here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "audit_generated.h"
#include "cost_report.h"

namespace sluice::cli {
namespace {

namespace fb = audit::fb;

constexpr std::uint64_t kMs = 1'000'000;

// The nearest-rank percentile of `values`, sorted ascending, computed exactly.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& values, unsigned p) {
  const std::size_t rank = (p * values.size() + 99) / 100;
  return values[rank - 1];
}

TEST(DurationHistogramTest, AnEmptyHistogramHasNoPercentiles) {
  DurationHistogram h;
  EXPECT_EQ(h.count(), 0u);
  for (unsigned p : {1u, 50u, 99u, 100u}) EXPECT_EQ(h.percentile(p), std::nullopt) << p;
}

TEST(DurationHistogramTest, PercentilesOutsideOneToHundredHaveNoValue) {
  DurationHistogram h;
  h.add(5 * kMs);
  EXPECT_EQ(h.percentile(0), std::nullopt);
  EXPECT_EQ(h.percentile(101), std::nullopt);
  EXPECT_EQ(h.percentile(1), 5 * kMs);
  EXPECT_EQ(h.percentile(100), 5 * kMs);
}

TEST(DurationHistogramTest, DistinctValuesFarApartGiveTheExactNearestRank) {
  // Ten values, each more than 1/64 from the next, added out of order.
  const std::vector<std::uint64_t> values = {700'000'001, 100'000'003, 1'000'000'000, 300'000'000,
                                             900'000'007, 200'000'000, 500'000'005,   400'000'000,
                                             800'000'000, 600'000'000};
  DurationHistogram h;
  for (std::uint64_t v : values) h.add(v);
  EXPECT_EQ(h.count(), 10u);
  EXPECT_EQ(h.percentile(1), 100'000'003u);   // rank ceil(0.1) = 1
  EXPECT_EQ(h.percentile(10), 100'000'003u);  // rank 1
  EXPECT_EQ(h.percentile(11), 200'000'000u);  // rank ceil(1.1) = 2
  EXPECT_EQ(h.percentile(50), 500'000'005u);  // rank 5
  EXPECT_EQ(h.percentile(51), 600'000'000u);  // rank ceil(5.1) = 6
  EXPECT_EQ(h.percentile(90), 900'000'007u);  // rank 9
  EXPECT_EQ(h.percentile(95), 1'000'000'000u);
  EXPECT_EQ(h.percentile(99), 1'000'000'000u);
  EXPECT_EQ(h.percentile(100), 1'000'000'000u);
}

TEST(DurationHistogramTest, ValuesBelow128NanosecondsAreExactEvenSideBySide) {
  DurationHistogram h;
  for (std::uint64_t v = 1; v <= 127; ++v) h.add(v);
  EXPECT_EQ(h.bucket_count(), 127u);
  EXPECT_EQ(h.percentile(50), 64u);   // rank ceil(63.5) = 64
  EXPECT_EQ(h.percentile(99), 126u);  // rank ceil(125.73) = 126
}

TEST(DurationHistogramTest, ManyCallsOfOneLatencyTakeOneBucketAndStayExact) {
  DurationHistogram h;
  for (int i = 0; i < 1'000'000; ++i) h.add(812'345'678);
  EXPECT_EQ(h.count(), 1'000'000u);
  EXPECT_EQ(h.bucket_count(), 1u);
  for (unsigned p : {1u, 50u, 95u, 99u, 100u}) EXPECT_EQ(h.percentile(p), 812'345'678u) << p;
}

TEST(DurationHistogramTest, AnyPercentileIsWithinOne128thOfTheExactValue) {
  // Log-uniform from 1 ms to 2 minutes, dense enough that buckets hold many
  // distinct values.
  std::mt19937_64 random(20261123);
  std::uniform_real_distribution<double> exponent(std::log(1e6), std::log(120e9));
  std::vector<std::uint64_t> values;
  DurationHistogram h;
  for (int i = 0; i < 200'000; ++i) {
    const auto v = static_cast<std::uint64_t>(std::exp(exponent(random)));
    values.push_back(v);
    h.add(v);
  }
  std::sort(values.begin(), values.end());
  for (unsigned p = 1; p <= 100; ++p) {
    const std::uint64_t exact = exact_percentile(values, p);
    const std::uint64_t got = h.percentile(p).value();
    const std::uint64_t off = got > exact ? got - exact : exact - got;
    EXPECT_LE(off, exact / 128) << "p" << p << ": " << got << " vs exact " << exact;
  }
  EXPECT_EQ(h.percentile(100), values.back());
  // 1 ms .. 2 min spans 17 powers of two, 64 buckets each.
  EXPECT_LE(h.bucket_count(), 17u * 64 + 64);
}

TEST(DurationHistogramTest, TheWholeRangeOfNanosecondsFitsInTheBucketBound) {
  DurationHistogram h;
  for (int shift = 0; shift < 64; ++shift) {
    const std::uint64_t base = std::uint64_t{1} << shift;
    h.add(base);
    h.add(base + base / 2);
    h.add(base * 2 - 1);
  }
  h.add(std::numeric_limits<std::uint64_t>::max());
  EXPECT_LE(h.bucket_count(), DurationHistogram::kMaxBuckets);
  EXPECT_EQ(h.percentile(1), 1u);
  EXPECT_EQ(h.percentile(100), std::numeric_limits<std::uint64_t>::max());
}

// ---------------------------------------------------------------------------
// CostReport

struct CallSpec {
  fb::Event event = fb::Event::Commit;
  std::string reason;
  std::vector<std::pair<std::string, std::string>> attributes;
  std::uint64_t cost_nusd = 1000;
  std::string outcome;  // empty: absent
  std::uint64_t latency_ns = 0;
  std::uint64_t ttft_ns = 0;
};

// Adds `c` to `report` as the sidecar would have encoded it.
void add_record(CostReport& report, const CallSpec& c) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<flatbuffers::String>> names, values;
  for (const auto& [name, value] : c.attributes) {
    names.push_back(fbb.CreateString(name));
    values.push_back(fbb.CreateString(value));
  }
  const auto names_vec = fbb.CreateVector(names);
  const auto values_vec = fbb.CreateVector(values);
  const auto reason = c.reason.empty() ? 0 : fbb.CreateString(c.reason);
  const auto outcome = c.outcome.empty() ? 0 : fbb.CreateString(c.outcome);
  fb::RecordBuilder b(fbb);
  b.add_event(c.event);
  b.add_decision(c.event == fb::Event::Abandon ? fb::Decision::Abandoned : fb::Decision::Settled);
  if (!reason.IsNull()) b.add_reason(reason);
  b.add_attribute_names(names_vec);
  b.add_attribute_values(values_vec);
  b.add_actual_input_tokens(10);
  b.add_actual_output_tokens(5);
  b.add_cost_nusd(c.cost_nusd);
  if (!outcome.IsNull()) b.add_outcome(outcome);
  if (c.latency_ns != 0) b.add_latency_ns(c.latency_ns);
  if (c.ttft_ns != 0) b.add_ttft_ns(c.ttft_ns);
  fb::FinishRecordBuffer(fbb, b.Finish());
  report.add(*fb::GetRecord(fbb.GetBufferPointer()));
}

const std::vector<std::pair<std::string, std::string>> kPricing = {{"team", "pricing"}};
const std::vector<std::pair<std::string, std::string>> kSearch = {{"team", "search"}};

CallSpec commit(const std::vector<std::pair<std::string, std::string>>& attrs, std::string outcome,
                std::uint64_t latency_ns, std::uint64_t ttft_ns = 0) {
  CallSpec c;
  c.attributes = attrs;
  c.outcome = std::move(outcome);
  c.latency_ns = latency_ns;
  c.ttft_ns = ttft_ns;
  return c;
}

const CostRow& row_of(const std::vector<CostRow>& rows, const std::string& team) {
  for (const CostRow& r : rows) {
    if (r.values.at(0) == team) return r;
  }
  static const CostRow kNone;
  ADD_FAILURE() << "no row for team " << team;
  return kNone;
}

TEST(CostReportTest, ErrorsAreProviderErrorsAndTimeoutsOverTheCallsThatReportedAnOutcome) {
  CostReport report({"team"});
  add_record(report, commit(kPricing, "ok", 400 * kMs, 100 * kMs));
  add_record(report, commit(kPricing, "ok", 800 * kMs, 200 * kMs));
  add_record(report, commit(kPricing, "provider_error", 1200 * kMs));
  add_record(report, commit(kPricing, "timeout", 30'000 * kMs));
  add_record(report, commit(kPricing, "cut_off", 2500 * kMs, 500 * kMs));
  add_record(report, commit(kPricing, "cancelled_by_client", 0));
  add_record(report, commit(kPricing, "a_future_outcome", 0));  // reported, not an error
  add_record(report, commit(kPricing, "unreported", 0));        // not reported
  add_record(report, commit(kPricing, "", 0));                  // not reported
  add_record(report, commit(kPricing, "", 600 * kMs));  // a latency without an outcome counts

  const CostRow pricing = row_of(report.rows(), "pricing");
  EXPECT_EQ(pricing.calls, 10u);
  EXPECT_EQ(pricing.outcomes_reported, 7u);
  EXPECT_EQ(pricing.errors, 2u);
  EXPECT_EQ(pricing.error_rate(), 2.0 / 7.0);
  // Latencies 400, 600, 800, 1200, 2500, 30000 ms.
  EXPECT_EQ(pricing.latency.count(), 6u);
  EXPECT_EQ(pricing.latency.percentile(50), 800 * kMs);  // rank 3
  EXPECT_EQ(pricing.latency.percentile(95), 30'000 * kMs);
  EXPECT_EQ(pricing.latency.percentile(99), 30'000 * kMs);
  EXPECT_EQ(pricing.ttft.count(), 3u);
  EXPECT_EQ(pricing.ttft.percentile(50), 200 * kMs);
  EXPECT_EQ(pricing.ttft.percentile(99), 500 * kMs);
}

TEST(CostReportTest, ARowWithoutReportsHasNoErrorRateAndNoLatency) {
  CostReport report({"team"});
  add_record(report, commit(kSearch, "", 0));
  add_record(report, commit(kSearch, "unreported", 0));
  const CostRow search = row_of(report.rows(), "search");
  EXPECT_EQ(search.calls, 2u);
  EXPECT_EQ(search.outcomes_reported, 0u);
  EXPECT_EQ(search.errors, 0u);
  EXPECT_EQ(search.error_rate(), std::nullopt);
  EXPECT_EQ(search.latency.count(), 0u);
  EXPECT_EQ(search.latency.percentile(50), std::nullopt);
  EXPECT_EQ(search.ttft.percentile(50), std::nullopt);
}

TEST(CostReportTest, OnlyCommitsAndFinishedCommitsCountTheirReport) {
  CostReport report({"team"});
  CallSpec finished = commit(kPricing, "timeout", 900 * kMs);
  finished.event = fb::Event::Abandon;
  finished.reason = "finished_commit";
  add_record(report, finished);
  // Records that carry a report they should not: counted as calls (or not
  // at all), never for errors or latency.
  CallSpec estimate = commit(kPricing, "provider_error", 700 * kMs);
  estimate.event = fb::Event::Abandon;
  estimate.reason = "charged_at_estimate";
  add_record(report, estimate);
  CallSpec cancel = commit(kPricing, "provider_error", 700 * kMs);
  cancel.event = fb::Event::Cancel;
  add_record(report, cancel);

  const CostRow pricing = row_of(report.rows(), "pricing");
  EXPECT_EQ(pricing.calls, 2u);
  EXPECT_EQ(pricing.outcomes_reported, 1u);
  EXPECT_EQ(pricing.errors, 1u);
  EXPECT_EQ(pricing.latency.count(), 1u);
  EXPECT_EQ(pricing.latency.percentile(50), 900 * kMs);
}

TEST(CostReportTest, TheTotalTakesPercentilesOverEveryCallNotOverTheRows) {
  CostReport report({"team"});
  add_record(report, commit(kPricing, "ok", 100 * kMs));
  add_record(report, commit(kPricing, "ok", 200 * kMs));
  add_record(report, commit(kPricing, "ok", 300 * kMs));
  add_record(report, commit(kSearch, "timeout", 5000 * kMs));
  add_record(report, commit(kSearch, "", 0));

  const CostRow total = report.total();
  EXPECT_EQ(total.calls, 5u);
  EXPECT_EQ(total.outcomes_reported, 4u);
  EXPECT_EQ(total.errors, 1u);
  EXPECT_EQ(total.error_rate(), 0.25);
  EXPECT_EQ(total.latency.count(), 4u);
  EXPECT_EQ(total.latency.percentile(50), 200 * kMs);  // rank 2 of 100, 200, 300, 5000
  EXPECT_EQ(total.latency.percentile(95), 5000 * kMs);
  EXPECT_EQ(row_of(report.rows(), "search").error_rate(), 1.0);
}

}  // namespace
}  // namespace sluice::cli
