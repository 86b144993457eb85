// The engine in one process: GCRA bounds, budget exactness, settlement,
// rejection reasons, reservation lifetimes, reload.
#include <gtest/gtest.h>

#include <vector>

#include "clock.h"
#include "policy_publisher.h"
#include "sluice/inspect.h"
#include "sluice_fixture.h"

namespace sluice {
namespace {

using testing::SidecarHarness;

constexpr std::uint64_t kSecond = 1'000'000'000ull;

const char* const kModels = R"(
models:
  gpt-4o:      { input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00 }
  cheap:       { input_usd_per_mtok: 1.00, output_usd_per_mtok: 1.00 }
  tiny:        { input_usd_per_mtok: 0.0025, output_usd_per_mtok: 0.010 }
)";

std::string policy(const std::string& limits) {
  return std::string(kModels) + "limits:\n" + limits;
}

Decision reserve(Client& c, std::vector<Attribute> attrs, std::uint64_t in, std::uint64_t out,
                 std::uint64_t hold_ns = 0) {
  CallRequest r;
  r.attributes = attrs;
  r.input_tokens = in;
  r.max_output_tokens = out;
  r.hold_for_ns = hold_ns;
  return c.reserve_raw(r);
}

TEST(Engine, RequestRateAdmitsExactlyTheBurstThenGivesRetryAfter) {
  SidecarHarness h("gcra", policy(R"(
  - name: slow
    match: { team: "*" }
    requests_per_hour: 1
    burst_requests: 5
)"));
  Client c = h.attach();
  int admitted = 0;
  Decision last;
  for (int i = 0; i < 50; ++i) {
    Decision d = reserve(c, {{"team", "a"}}, 0, 0);
    if (d.admitted) {
      ++admitted;
      ASSERT_TRUE(c.commit(d.reservation_id, 0, 0).ok());
    } else {
      last = d;
    }
  }
  EXPECT_EQ(admitted, 5);
  EXPECT_EQ(last.reason, Reason::kRateLimited);
  EXPECT_EQ(c.limit_name(last.limit_index), "slow");
  // The sixth request may pass one emission interval (an hour) after the first.
  EXPECT_LE(last.retry_after_ns, 3600 * kSecond);
  EXPECT_GT(last.retry_after_ns, 3599 * kSecond);
}

TEST(Engine, OneReserveIn128IsTimedAndTheHistogramOutlivesTheClient) {
  SidecarHarness h("latency", policy(R"(
  - name: many
    requests_per_second: 1000000000
    burst_requests: 1000000000
)"));
  auto samples = [&] {
    Result<SegmentStatus> st = read_status(h.segment());
    EXPECT_TRUE(st.ok());
    std::uint64_t n = 0;
    for (std::uint64_t c : st->latency_counts) n += c;
    EXPECT_EQ(st->latency_counts.size(), st->latency_bounds_ns.size());
    EXPECT_EQ(st->latency_bounds_ns.front(), 32u);
    EXPECT_EQ(st->latency_bounds_ns.back(), ~std::uint64_t{0});
    return n;
  };
  {
    Client c = h.attach();
    for (int i = 0; i < 1000; ++i) reserve(c, {{"team", "a"}}, 0, 0);  // calls 1, 129, ..., 897
    EXPECT_EQ(samples(), 8u);
  }
  h.sidecar().tick();  // folds the departed client's counts into the header
  EXPECT_EQ(samples(), 8u);
}

TEST(Engine, OtherKeyOfAWildcardLimitHasItsOwnCell) {
  SidecarHarness h("wild", policy(R"(
  - name: slow
    match: { team: "*" }
    requests_per_hour: 1
    burst_requests: 1
)"));
  Client c = h.attach();
  EXPECT_TRUE(reserve(c, {{"team", "a"}}, 0, 0).admitted);
  EXPECT_FALSE(reserve(c, {{"team", "a"}}, 0, 0).admitted);
  EXPECT_TRUE(reserve(c, {{"team", "b"}}, 0, 0).admitted);
  // A call without the attribute does not match the limit at all.
  EXPECT_TRUE(reserve(c, {{"feature", "x"}}, 0, 0).admitted);
}

TEST(Engine, TokenRateCommitRefundsTheUnusedEstimate) {
  SidecarHarness h("tokrate", policy(R"(
  - name: toks
    match: { team: "*" }
    tokens_per_hour: 3600
    burst_tokens: 100
)"));
  Client c = h.attach();
  Decision a = reserve(c, {{"team", "t"}}, 30, 30);  // 60 of 100
  ASSERT_TRUE(a.admitted);
  Decision b = reserve(c, {{"team", "t"}}, 25, 25);  // 110 > 100
  EXPECT_FALSE(b.admitted);
  EXPECT_EQ(b.reason, Reason::kRateLimited);
  ASSERT_TRUE(c.commit(a.reservation_id, 5, 5).ok());  // uses 10: 50 back
  EXPECT_TRUE(reserve(c, {{"team", "t"}}, 25, 25).admitted);
}

TEST(Engine, CallLargerThanTheBurstCanNeverPass) {
  SidecarHarness h("toolarge", policy(R"(
  - name: toks
    tokens_per_minute: 1000
    burst_tokens: 100
)"));
  Client c = h.attach();
  Decision d = reserve(c, {{"team", "t"}}, 60, 60);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, Reason::kRequestTooLarge);
  EXPECT_EQ(d.retry_after_ns, 0u);
}

TEST(Engine, UsdBudgetIsExactToTheNanoDollar) {
  // cheap: 1 USD per million tokens = 1000 nano-dollars a token; budget 10'000'000 nUSD.
  SidecarHarness h("budget", policy(R"(
  - name: daily
    match: { team: pricing }
    usd_per_day: 0.01
)"));
  Client c = h.attach();
  std::vector<Attribute> call = {{"team", "pricing"}, {"model", "cheap"}};
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 3; ++i) {
    Decision d = reserve(c, call, 3000, 0);
    ASSERT_TRUE(d.admitted);
    EXPECT_EQ(d.estimated_cost_nusd, 3'000'000u);
    ids.push_back(d.reservation_id);
  }
  Decision over = reserve(c, call, 1001, 0);  // 9'000'000 + 1'001'000 > 10'000'000
  EXPECT_FALSE(over.admitted);
  EXPECT_EQ(over.reason, Reason::kBudgetExhausted);
  EXPECT_GT(over.retry_after_ns, 0u);
  EXPECT_LE(over.retry_after_ns, 86400 * kSecond);
  for (std::uint64_t id : ids) EXPECT_EQ(c.commit(id, 2999, 0).cost_nusd, 2'999'000u);
  EXPECT_EQ(h.cell_value("daily", "pricing"), 8'997'000u);
  Decision last = reserve(c, call, 1003, 0);  // exactly the budget
  ASSERT_TRUE(last.admitted);
  EXPECT_EQ(h.cell_value("daily", "pricing"), 10'000'000u);
  EXPECT_FALSE(reserve(c, call, 1, 0).admitted);
  EXPECT_EQ(c.commit(last.reservation_id, 1003, 0).cost_nusd, 1'003'000u);
  EXPECT_EQ(h.cell_value("daily", "pricing"), 10'000'000u);
}

TEST(Engine, CommitCostRoundsUpToTheNextNanoDollar) {
  SidecarHarness h("round", policy(R"(
  - name: daily
    usd_per_day: 100
)"));
  Client c = h.attach();
  Decision d = reserve(c, {{"model", "tiny"}}, 1, 1);
  ASSERT_TRUE(d.admitted);
  // 1 token at 0.0025 USD/M = 2.5 nUSD, 1 at 0.01 USD/M = 10 nUSD: 12.5 -> 13.
  EXPECT_EQ(c.commit(d.reservation_id, 1, 1).cost_nusd, 13u);
  EXPECT_EQ(h.cell_value("daily", ""), 13u);
}

TEST(Engine, CancelRefundsEveryCellIncludingTheRequest) {
  SidecarHarness h("cancel", policy(R"(
  - name: reqs
    match: { team: "*" }
    requests_per_hour: 1
    burst_requests: 1
  - name: daily
    match: { team: "*" }
    tokens_per_day: 100
)"));
  Client c = h.attach();
  Decision d = reserve(c, {{"team", "t"}}, 40, 60);
  ASSERT_TRUE(d.admitted);
  EXPECT_EQ(h.cell_value("daily", "t"), 100u);
  EXPECT_TRUE(c.cancel(d.reservation_id).ok());
  EXPECT_EQ(h.cell_value("daily", "t"), 0u);
  EXPECT_TRUE(reserve(c, {{"team", "t"}}, 40, 60).admitted);  // the request came back too
}

TEST(Engine, DroppedReservationCancelsItself) {
  SidecarHarness h("raii", policy(R"(
  - name: daily
    tokens_per_day: 100
)"));
  Client c = h.attach();
  Attribute a[] = {{"team", "t"}};
  {
    Reservation r = c.reserve({a, 50, 50});
    ASSERT_TRUE(r.admitted());
    EXPECT_EQ(h.cell_value("daily", ""), 100u);
  }
  EXPECT_EQ(h.cell_value("daily", ""), 0u);
  Reservation r = c.reserve({a, 10, 10});
  EXPECT_EQ(r.commit(5, 5).cost_nusd, 0u);
  EXPECT_EQ(h.cell_value("daily", ""), 10u);
  EXPECT_FALSE(r.commit(5, 5).ok());  // settled once
}

TEST(Engine, SecondCommitOfTheSameReservationIsRefusedAndChargesNothing) {
  SidecarHarness h("double", policy(R"(
  - name: daily
    tokens_per_day: 1000
)"));
  Client c = h.attach();
  Decision d = reserve(c, {}, 100, 100);
  ASSERT_TRUE(d.admitted);
  EXPECT_TRUE(c.commit(d.reservation_id, 50, 50).ok());
  EXPECT_EQ(c.commit(d.reservation_id, 500, 500).error, SettleError::kUnknownReservation);
  EXPECT_EQ(c.cancel(d.reservation_id).error, SettleError::kUnknownReservation);
  EXPECT_EQ(h.cell_value("daily", ""), 100u);
  EXPECT_EQ(c.commit(0, 1, 1).error, SettleError::kUnknownReservation);
  EXPECT_EQ(c.commit(~0ull, 1, 1).error, SettleError::kUnknownReservation);
}

TEST(Engine, OutOfRangeTokenCountsAreRejectedWithoutCharging) {
  SidecarHarness h("range", policy(R"(
  - name: daily
    tokens_per_day: 1000
)"));
  Client c = h.attach();
  Decision big = reserve(c, {}, 1ull << 40, 0);
  EXPECT_FALSE(big.admitted);
  EXPECT_EQ(big.reason, Reason::kInvalidArgument);
  Decision d = reserve(c, {}, 10, 10);
  ASSERT_TRUE(d.admitted);
  EXPECT_EQ(c.commit(d.reservation_id, 1ull << 40, 0).error, SettleError::kInvalidArgument);
  EXPECT_EQ(h.cell_value("daily", ""), 20u);  // still the estimate, still live
  EXPECT_TRUE(c.commit(d.reservation_id, 10, 10).ok());
}

TEST(Engine, ExtendDebitsMoreUntilTheBudgetIsGone) {
  SidecarHarness h("extend", policy(R"(
  - name: daily
    match: { feature: stream }
    usd_per_day: 0.0001
)"));
  // cheap: 1000 nUSD a token; budget 100'000 nUSD = 100 tokens.
  Client c = h.attach();
  Decision d = reserve(c, {{"feature", "stream"}, {"model", "cheap"}}, 20, 20);
  ASSERT_TRUE(d.admitted);
  int chunks = 0;
  for (;;) {
    Extension e = c.extend(d.reservation_id, 25);
    ASSERT_EQ(e.error, SettleError::kNone);
    if (!e.admitted) {
      EXPECT_EQ(e.reason, Reason::kBudgetExhausted);
      break;
    }
    ++chunks;
  }
  EXPECT_EQ(chunks, 2);  // 40 + 25 + 25 = 90; another 25 would be 115
  EXPECT_EQ(h.cell_value("daily", "stream"), 90'000u);
  EXPECT_EQ(c.commit(d.reservation_id, 20, 65).cost_nusd, 85'000u);
  EXPECT_EQ(h.cell_value("daily", "stream"), 85'000u);
}

TEST(Engine, ModelOutsideTheAllowListIsRejected) {
  SidecarHarness h("models", policy(R"(
  - name: team-requests
    match: { team: "*" }
    requests_per_second: 10
  - name: support-models
    match: { team: support }
    models: [cheap]
)"));
  Client c = h.attach();
  Decision d = reserve(c, {{"team", "support"}, {"model", "gpt-4o"}}, 1, 1);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, Reason::kModelNotAllowed);
  EXPECT_EQ(c.limit_name(d.limit_index), "support-models");
  EXPECT_EQ(shm::load_relaxed(h.seg().header().keys_used), 0u);  // a refused call adds no keys
  EXPECT_TRUE(reserve(c, {{"team", "support"}, {"model", "cheap"}}, 1, 1).admitted);
  EXPECT_TRUE(reserve(c, {{"team", "sales"}, {"model", "gpt-4o"}}, 1, 1).admitted);
}

TEST(Engine, UsdLimitOnAModelWithoutAPriceRejects) {
  SidecarHarness h("noprice", policy(R"(
  - name: daily
    usd_per_day: 10
)"));
  Client c = h.attach();
  Decision d = reserve(c, {{"model", "mystery"}}, 1, 1);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, Reason::kUnknownModelPrice);
  Decision none = reserve(c, {{"team", "x"}}, 1, 1);  // no model at all: no price either
  EXPECT_EQ(none.reason, Reason::kUnknownModelPrice);
}

TEST(Engine, ShadowLimitCountsWouldRejectsAndAdmits) {
  SidecarHarness h("shadow", policy(R"(
  - name: user-requests
    match: { user: "*" }
    requests_per_hour: 1
    burst_requests: 2
    shadow: true
)"));
  Client c = h.attach();
  std::uint32_t shadow = 0;
  for (int i = 0; i < 5; ++i) {
    Decision d = reserve(c, {{"user", "u"}}, 0, 0);
    ASSERT_TRUE(d.admitted);
    shadow += d.shadow_rejects;
  }
  EXPECT_EQ(shadow, 3u);
}

TEST(Engine, FullKeyTableRejectsWithTableFull) {
  SidecarHarness h("full", policy(R"(
  - name: per-team
    match: { team: "*" }
    requests_per_second: 100
)"),
                   "  max_keys: 4\n");
  Client c = h.attach();
  for (int i = 0; i < 4; ++i) {
    std::string team = "t" + std::to_string(i);
    EXPECT_TRUE(reserve(c, {{"team", team}}, 0, 0).admitted) << i;
  }
  Decision d = reserve(c, {{"team", "t9"}}, 0, 0);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, Reason::kTableFull);
  EXPECT_TRUE(reserve(c, {{"team", "t0"}}, 0, 0).admitted);  // known keys still work
}

TEST(Engine, TooManyReservationsInFlightRejects) {
  SidecarHarness h("slots", policy(R"(
  - name: reqs
    requests_per_second: 1000
)"),
                   "  max_reservations: 2\n");
  Client c = h.attach();
  Decision a = reserve(c, {}, 0, 0), b = reserve(c, {}, 0, 0), d = reserve(c, {}, 0, 0);
  EXPECT_TRUE(a.admitted && b.admitted);
  EXPECT_EQ(d.reason, Reason::kTooManyReservations);
  EXPECT_TRUE(c.commit(a.reservation_id, 0, 0).ok());
  EXPECT_TRUE(reserve(c, {}, 0, 0).admitted);
}

TEST(Engine, HeldReservationExpiresAndIsSettledAsAbandonedAtItsEstimate) {
  SidecarHarness h("hold", policy(R"(
  - name: daily
    tokens_per_day: 1000
)"));
  Client c = h.attach();
  Decision d = reserve(c, {}, 100, 100, /*hold_ns=*/1);
  ASSERT_TRUE(d.admitted);
  const std::uint64_t until = monotonic_ns() + 1'000'000;
  while (monotonic_ns() < until) {
  }
  // Past its deadline the reservation is the sidecar's, even before it acts.
  EXPECT_EQ(c.commit(d.reservation_id, 1, 1).error, SettleError::kUnknownReservation);
  h.sidecar().tick();
  EXPECT_EQ(h.sidecar().reclaimed().abandoned, 1u);
  EXPECT_EQ(shm::load_relaxed(h.seg().header().abandoned_total), 1u);
  EXPECT_EQ(h.cell_value("daily", ""), 200u);
}

TEST(Engine, HeldReservationCanBeCommittedByAnotherClient) {
  SidecarHarness h("hold2", policy(R"(
  - name: daily
    tokens_per_day: 1000
)"));
  Client a = h.attach();
  Decision d = reserve(a, {}, 100, 100, 60 * kSecond);
  ASSERT_TRUE(d.admitted);
  Client b = h.attach();
  EXPECT_TRUE(b.commit(d.reservation_id, 10, 10).ok());
  EXPECT_EQ(h.cell_value("daily", ""), 20u);
}

TEST(Engine, ReloadKeepsCountersOfLimitsWhoseIdentityDidNotChange) {
  SidecarHarness h("reload", policy(R"(
  - name: daily
    tokens_per_day: 1000
)"));
  Client c = h.attach();
  Decision d = reserve(c, {}, 300, 0);
  ASSERT_TRUE(c.commit(d.reservation_id, 300, 0).ok());
  const std::uint64_t gen = c.policy_generation();
  // Raising the amount keeps what was spent.
  ASSERT_TRUE(h.rewrite(policy(R"(
  - name: daily
    tokens_per_day: 500
)"))
                  .ok());
  EXPECT_FALSE(reserve(c, {}, 201, 0).admitted);
  EXPECT_GT(c.policy_generation(), gen);
  EXPECT_TRUE(reserve(c, {}, 200, 0).admitted);
  // A renamed limit is a new limit with fresh cells.
  ASSERT_TRUE(h.rewrite(policy(R"(
  - name: daily-v2
    tokens_per_day: 500
)"))
                  .ok());
  EXPECT_TRUE(reserve(c, {}, 500, 0).admitted);
}

TEST(Engine, InvalidPolicyOnReloadIsRefusedAndTheRunningPolicyStays) {
  SidecarHarness h("badreload", policy(R"(
  - name: daily
    tokens_per_day: 100
)"));
  Client c = h.attach();
  const Status s = h.rewrite(policy(R"(
  - name: daily
    tokens_per_day: -5
)"));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
  EXPECT_TRUE(reserve(c, {}, 100, 0).admitted);
  EXPECT_FALSE(reserve(c, {}, 1, 0).admitted);
}

TEST(Engine, BudgetWindowsThatRanOutAreRefusedUntilTheSidecarRefreshesThem) {
  SidecarHarness h("stale", policy(R"(
  - name: daily
    match: { team: "*" }
    tokens_per_day: 1000
)"));
  // A policy compiled 20 days ago: its 16 daily windows ended 4 days ago.
  Result<Policy> p = load_policy_file(h.policy_path());
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(publish_policy(h.seg(), p.value(), ::time(nullptr) - 20 * 86400).ok());
  Client c = h.attach();
  Decision d = reserve(c, {{"team", "t"}}, 1, 1);
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, Reason::kPolicyStale);
  EXPECT_EQ(c.limit_name(d.limit_index), "daily");
  h.sidecar().tick();  // sees the tables past their middle and republishes
  EXPECT_TRUE(reserve(c, {{"team", "t"}}, 1, 1).admitted);
}

TEST(Engine, BudgetWindowTableHoldsTheCurrentWindowFirst) {
  SidecarHarness h("windows", policy(R"(
  - name: daily
    tokens_per_day: 1000
    timezone: America/New_York
)"));
  const shm::Word gen = shm::load_acquire(h.seg().header().policy_generation);
  const shm::CompiledLimit& l = h.seg().policy_slot(static_cast<int>(gen & 1)).limits[0];
  const auto now = static_cast<shm::Word>(::time(nullptr));
  EXPECT_LE(shm::load_relaxed(l.window_start[0]), now);
  EXPECT_GT(shm::load_relaxed(l.window_start[1]), now);
  for (int w = 1; w < shm::kWindowTable; ++w) {
    const shm::Word len =
        shm::load_relaxed(l.window_start[w]) - shm::load_relaxed(l.window_start[w - 1]);
    EXPECT_TRUE(len == 82800 || len == 86400 || len == 90000) << len;  // 23, 24 or 25 hours
  }
}

}  // namespace
}  // namespace sluice
