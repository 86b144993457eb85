// What commits report of their model calls: the segment's per-model call
// stats and per-limit commit counts match a scripted sequence exactly.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sluice/inspect.h"
#include "sluice_fixture.h"

namespace sluice {
namespace {

using testing::SidecarHarness;

constexpr std::uint64_t kMs = 1'000'000ull;

const char* const kPolicy = R"(
models:
  gpt-4o: { input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00 }
  cheap:  { input_usd_per_mtok: 1.00, output_usd_per_mtok: 1.00 }
limits:
  - name: pricing-daily
    match: { team: pricing }
    usd_per_day: 100
  - name: all-requests
    requests_per_minute: 100000
)";

std::uint64_t call(Client& c, const char* model, const CallReport& report) {
  const Attribute attrs[] = {{"team", "pricing"}, {"model", model}};
  const Decision d = c.reserve_raw({attrs, 100, 100});
  EXPECT_TRUE(d.admitted);
  return c.commit(d.reservation_id, 100, 50, report).ok() ? 1 : 0;
}

const ModelCallRow* row_of(const std::vector<ModelCallRow>& rows, const std::string& model) {
  for (const ModelCallRow& r : rows) {
    if (r.model == model) return &r;
  }
  return nullptr;
}

TEST(CallStats, ScriptedCommitsAddUpExactlyPerModelAndPerLimit) {
  SidecarHarness h("callstats", kPolicy);
  Client c = h.attach();
  std::uint64_t done = 0;
  for (int i = 0; i < 7; ++i) {  // 7 ok calls at 40 ms (bucket <= 50 ms), ttft 8 ms (<= 10 ms)
    done += call(c, "gpt-4o", {Outcome::kOk, 40 * kMs, 8 * kMs, 200, "gpt-4o-2024-08-06"});
  }
  done += call(c, "gpt-4o", {Outcome::kProviderError, 9000 * kMs, 0, 500, {}});  // <= 10 s
  done += call(c, "gpt-4o", {Outcome::kTimeout, 0, 0, 0, {}});                   // no latency
  done += call(c, "cheap", {Outcome::kCutOff, 2 * kMs, 1 * kMs, 200, {}});
  done += call(c, "gpt-4o", CallReport{});  // an old caller: nothing reported
  // A bad report is refused and counts nothing.
  const Attribute attrs[] = {{"team", "pricing"}, {"model", "gpt-4o"}};
  const Decision d = c.reserve_raw({attrs, 1, 1});
  ASSERT_TRUE(d.admitted);
  EXPECT_EQ(c.commit(d.reservation_id, 1, 1, {Outcome::kOk, 0, 0, 1000, {}}).error,
            SettleError::kInvalidArgument);
  EXPECT_EQ(
      c.commit(d.reservation_id, 1, 1, {Outcome::kOk, 0, 0, 200, std::string(129, 'v')}).error,
      SettleError::kInvalidArgument);
  EXPECT_EQ(c.commit(d.reservation_id, 1, 1, {static_cast<Outcome>(9), 0, 0, 0, {}}).error,
            SettleError::kInvalidArgument);
  ASSERT_TRUE(c.cancel(d.reservation_id).ok());  // cancels report nothing
  ASSERT_EQ(done, 11u);

  Result<std::vector<ModelCallRow>> rows = list_model_calls(h.seg().name());
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  const ModelCallRow* gpt = row_of(rows.value(), "gpt-4o");
  const ModelCallRow* cheap = row_of(rows.value(), "cheap");
  ASSERT_NE(gpt, nullptr);
  ASSERT_NE(cheap, nullptr);
  EXPECT_EQ(gpt->calls, (std::vector<std::uint64_t>{1, 7, 1, 1, 0, 0}));
  EXPECT_EQ(cheap->calls, (std::vector<std::uint64_t>{0, 0, 0, 0, 0, 1}));
  std::vector<std::uint64_t> latency(20, 0), ttft(20, 0);
  latency[3] = 7;   // 40 ms: (25, 50]
  latency[13] = 1;  // 9 s: (8, 10] s
  ttft[1] = 7;      // 8 ms: (5, 10]
  EXPECT_EQ(gpt->latency_counts, latency);
  EXPECT_EQ(gpt->ttft_counts, ttft);
  EXPECT_EQ(gpt->latency_sum_us, 7 * 40'000u + 9'000'000u);
  EXPECT_EQ(gpt->ttft_sum_us, 7 * 8'000u);
  EXPECT_EQ(gpt->latency_bounds_ms[3], 50u);
  EXPECT_EQ(gpt->latency_bounds_ms[19], ~std::uint64_t{0});
  EXPECT_EQ(cheap->latency_counts[0], 1u);  // 2 ms: <= 5 ms

  Result<std::vector<LimitRow>> limits = list_limits(h.seg().name());
  ASSERT_TRUE(limits.ok());
  for (const LimitRow& l : limits.value()) {
    EXPECT_EQ(l.committed, 11u) << l.limit;
    EXPECT_EQ(l.failed, 2u) << l.limit;  // provider_error and timeout
  }
}

TEST(CallStats, AModelKeepsItsRowAcrossAReloadThatReordersTheModels) {
  SidecarHarness h("callrows", kPolicy);
  {
    Client c = h.attach();
    call(c, "cheap", {Outcome::kOk, 1 * kMs, 0, 200, {}});
  }
  ASSERT_TRUE(h.rewrite(R"(
models:
  cheap:  { input_usd_per_mtok: 1.00, output_usd_per_mtok: 1.00 }
  new-one: { input_usd_per_mtok: 1.00, output_usd_per_mtok: 1.00 }
limits:
  - name: all-requests
    requests_per_minute: 100000
)")
                  .ok());
  Client c = h.attach();
  call(c, "cheap", {Outcome::kOk, 1 * kMs, 0, 200, {}});
  call(c, "new-one", {Outcome::kTimeout, 0, 0, 0, {}});
  Result<std::vector<ModelCallRow>> rows = list_model_calls(h.seg().name());
  ASSERT_TRUE(rows.ok());
  ASSERT_NE(row_of(rows.value(), "cheap"), nullptr);
  EXPECT_EQ(row_of(rows.value(), "cheap")->calls[1], 2u);
  ASSERT_NE(row_of(rows.value(), "new-one"), nullptr);
  EXPECT_EQ(row_of(rows.value(), "new-one")->calls[3], 1u);
  EXPECT_EQ(row_of(rows.value(), "gpt-4o")->calls[1], 0u);  // kept, never called
}

}  // namespace
}  // namespace sluice
