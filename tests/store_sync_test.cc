// The sync loop against the embedded SQLite store, in process: a window's
// spending survives a fresh segment; two hosts on one database share a
// global budget and never pass it; a global cell waits for its first lease;
// the lease sizing arithmetic.
#include <gtest/gtest.h>

#include <string>

#include "clock.h"
#include "lease_sizing.h"
#include "segment_layout.h"
#include "sidecar.h"
#include "sluice/inspect.h"
#include "sluice/quota.h"
#include "sluice_fixture.h"
#include "test_support.h"

namespace sluice {
namespace {

using testing::SidecarHarness;

SidecarOptions manual_sync() {
  SidecarOptions o = testing::no_audit();
  o.sync = SidecarOptions::Sync::kManual;
  return o;
}

// $1 per million tokens: a call of 1000 input tokens costs $0.001.
constexpr std::uint64_t kCallNusd = 1'000'000;
const char* kModels = "models:\n  m: { input_usd_per_mtok: 1.00, output_usd_per_mtok: 1.00 }\n";

std::string store_block(const std::string& path, const std::string& host) {
  return "store:\n  kind: sqlite\n  path: " + path + "\n  host_id: " + host + "\n";
}

Decision spend_one(Client& c, const std::string& team, bool commit = true) {
  const Attribute attrs[] = {{"team", team}, {"model", "m"}};
  CallRequest req;
  req.attributes = attrs;
  req.input_tokens = 1000;
  const Decision d = c.reserve_raw(req);
  if (d.admitted && commit) (void)c.commit(d.reservation_id, 1000, 0);
  return d;
}

std::uint64_t remaining_of(const std::string& segment, const std::string& limit) {
  Result<std::vector<KeyRow>> keys = list_keys(segment);
  EXPECT_TRUE(keys.ok()) << keys.status().message();
  if (!keys.ok()) return 0;
  for (const KeyRow& k : keys.value()) {
    if (k.limit == limit) return k.remaining;
  }
  return ~std::uint64_t{0};
}

TEST(StoreSync, AFreshSegmentStartsTheWindowWhereTheStoreLeftIt) {
  const std::string db = "/tmp/" + testing::unique_segment("restore") + ".db";
  const std::string limits =
      "limits:\n  - name: team-usd\n    match: { team: pricing }\n    usd_per_day: 1.00\n";
  SidecarHarness h("restore", store_block(db, "host-a") + kModels + limits, "", manual_sync());
  {
    Client c = h.attach();
    for (int i = 0; i < 37; ++i) ASSERT_TRUE(spend_one(c, "pricing").admitted);
  }
  const std::uint64_t before = remaining_of(h.segment(), "team-usd");
  EXPECT_EQ(before, 1'000'000'000 - 37 * kCallNusd);
  h.stop();  // the last push
  ASSERT_TRUE(SegmentMap::remove(h.segment()).ok());
  h.start();
  EXPECT_EQ(remaining_of(h.segment(), "team-usd"), before);
  Client c = h.attach();
  for (int i = 0; i < 963; ++i) ASSERT_TRUE(spend_one(c, "pricing").admitted) << i;
  EXPECT_EQ(spend_one(c, "pricing").reason, Reason::kBudgetExhausted);
  testing::remove_test_store(db);
}

TEST(StoreSync, TwoHostsOnOneDatabaseNeverAdmitMoreThanTheGlobalBudget) {
  const std::string db = "/tmp/" + testing::unique_segment("two-hosts") + ".db";
  const std::string limits =
      "limits:\n  - name: shared-usd\n    match: { team: pricing }\n    usd_per_day: 2.00\n"
      "    scope: global\n";
  SidecarHarness a("host-a", store_block(db, "host-a") + kModels + limits, "", manual_sync());
  SidecarHarness b("host-b", store_block(db, "host-b") + kModels + limits, "", manual_sync());
  Client ca = a.attach(), cb = b.attach();
  std::uint64_t admitted = 0;
  // Both hosts spend greedily between syncs until neither admits anything.
  for (int round = 0; round < 200; ++round) {
    std::uint64_t this_round = 0;
    for (Client* c : {&ca, &cb}) {
      while (spend_one(*c, "pricing").admitted) ++this_round;
    }
    admitted += this_round;
    ASSERT_TRUE(a.sidecar().store_sync()->sync_once().ok());
    ASSERT_TRUE(b.sidecar().store_sync()->sync_once().ok());
    if (this_round == 0 && round > 20) break;
  }
  EXPECT_LE(admitted * kCallNusd, 2'000'000'000u);
  EXPECT_GE(admitted, 1990u) << "the hosts left budget unspent";
  Result<SegmentStatus> st = read_status(a.segment());
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->global_limits.size(), 1u);
  EXPECT_EQ(st->global_limits[0].limit, "shared-usd");
  EXPECT_EQ(st->store_health, "up");
  EXPECT_EQ(st->store, "sqlite:" + db);
  testing::remove_test_store(db);
}

TEST(StoreSync, AHostThatStopsCleanlyGivesItsUnexposedAllotmentBackAtOnce) {
  const std::string db = "/tmp/" + testing::unique_segment("give-back") + ".db";
  // A lease of an hour: nothing returns by running out.
  const std::string limits =
      "limits:\n  - name: shared-usd\n    match: { team: pricing }\n    usd_per_day: 1.00\n"
      "    scope: global\n";
  const std::string store = "  sync_interval_ms: 250\n  lease_ms: 3600000\n";
  SidecarHarness a("give-a", store_block(db, "host-a") + store + kModels + limits, "",
                   manual_sync());
  SidecarHarness b("give-b", store_block(db, "host-b") + store + kModels + limits, "",
                   manual_sync());
  Client ca = a.attach(), cb = b.attach();
  // a spends greedily for a few syncs: its headroom doubles each time.
  for (int round = 0; round < 5; ++round) {
    while (spend_one(ca, "pricing").admitted) {
    }
    ASSERT_TRUE(a.sidecar().store_sync()->sync_once().ok());
  }
  Result<SegmentStatus> held = read_status(a.segment());
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->global_limits.size(), 1u);
  const GlobalLimitRow a_row = held->global_limits[0];
  ASSERT_GT(a_row.granted, a_row.exposed) << "a holds allotment beyond its exposure";
  spend_one(cb, "pricing");  // b's key, then b asks for as much as it can get
  std::uint64_t b_before = 0;
  for (int round = 0; round < 12; ++round) {
    ASSERT_TRUE(b.sidecar().store_sync()->sync_once().ok());
    while (spend_one(cb, "pricing").admitted) ++b_before;
  }
  EXPECT_EQ(b_before * kCallNusd, 1'000'000'000 - a_row.granted)
      << "b may spend only what a has not been granted";
  a.stop();  // the last push gives a's allotment back down to its exposure
  std::uint64_t b_after = 0;
  for (int round = 0; round < 12; ++round) {
    ASSERT_TRUE(b.sidecar().store_sync()->sync_once().ok());
    while (spend_one(cb, "pricing").admitted) ++b_after;
  }
  EXPECT_EQ(b_after * kCallNusd, a_row.granted - a_row.exposed);
  testing::remove_test_store(db);
}

TEST(StoreSync, WithTheStoreDownAGlobalRateFollowsItsOnStoreDown) {
  const std::string db = "/tmp/" + testing::unique_segment("rate-down") + ".db";
  const std::string limits =
      "limits:\n"
      "  - name: closed-rps\n    match: { team: closed }\n    requests_per_second: 10\n"
      "    burst_requests: 5\n    scope: global\n"
      "  - name: share-rps\n    match: { team: share }\n    requests_per_second: 10\n"
      "    burst_requests: 5\n    scope: global\n    on_store_down: local_share\n"
      "  - name: open-rps\n    match: { team: open }\n    requests_per_second: 10\n"
      "    burst_requests: 5\n    scope: global\n    on_store_down: fail_open\n";
  // No store sync at all: the store has never been up.
  SidecarHarness h("rate-down", store_block(db, "host-a") + kModels + limits);
  Client c = h.attach();
  auto admitted_of = [&](const std::string& team) {
    int n = 0;
    for (int i = 0; i < 100; ++i) n += spend_one(c, team).admitted;
    return n;
  };
  EXPECT_EQ(spend_one(c, "closed").reason, Reason::kStoreUnavailable);
  EXPECT_EQ(admitted_of("share"), 5) << "an even share of one host: the burst, then the rate";
  EXPECT_EQ(admitted_of("open"), 100);
  testing::remove_test_store(db);
}

TEST(StoreSync, AGlobalBudgetWaitsForItsFirstLeaseWithARetryHint) {
  const std::string db = "/tmp/" + testing::unique_segment("first-lease") + ".db";
  const std::string limits =
      "limits:\n  - name: shared-usd\n    match: { team: pricing }\n    usd_per_day: 5.00\n"
      "    scope: global\n    on_store_down: local_share\n";
  SidecarHarness h("first-lease", store_block(db, "host-a") + kModels + limits, "", manual_sync());
  Client c = h.attach();
  // A key the store has not seen has no lease yet: the next sync brings one.
  Decision d = spend_one(c, "pricing");
  EXPECT_EQ(d.reason, Reason::kBudgetExhausted);
  EXPECT_EQ(d.retry_after_ns, 250'000'000u) << "the next sync may bring a lease";
  ASSERT_TRUE(h.sidecar().store_sync()->sync_once().ok());
  // The first lease exposes budget / 1000: five calls of $0.001.
  int admitted = 0;
  while ((d = spend_one(c, "pricing")).admitted) ++admitted;
  EXPECT_EQ(admitted, 5);
  EXPECT_EQ(d.reason, Reason::kBudgetExhausted);
  ASSERT_TRUE(h.sidecar().store_sync()->sync_once().ok());
  admitted = 0;
  while ((d = spend_one(c, "pricing")).admitted) ++admitted;
  EXPECT_EQ(admitted, 10) << "demand used the whole headroom: it doubles";
  testing::remove_test_store(db);
}

// The rate share the store gave the host's one key of `limit`, in units per second.
double share_per_second(const SegmentMap& seg) {
  for (std::uint64_t i = 0; i < seg.key_capacity(); ++i) {
    const shm::KeySlot& k = seg.keys()[i];
    if (shm::load_relaxed(k.hash) == 0) continue;
    const shm::Word emission = shm::load_relaxed(k.host_emission_ns);
    return emission == 0 ? 0 : 1e9 / static_cast<double>(emission);
  }
  return -1;
}

TEST(StoreSync, AGlobalRateIsSharedByDemandWithAFloorForTheIdleHost) {
  const std::string db = "/tmp/" + testing::unique_segment("rate-share") + ".db";
  const std::string limits =
      "limits:\n  - name: shared-rps\n    match: { team: pricing }\n"
      "    requests_per_second: 100\n    burst_requests: 10\n    scope: global\n";
  SidecarHarness a("rate-a", store_block(db, "host-a") + kModels + limits, "", manual_sync());
  SidecarHarness b("rate-b", store_block(db, "host-b") + kModels + limits, "", manual_sync());
  Client ca = a.attach(), cb = b.attach();
  ASSERT_TRUE(spend_one(cb, "pricing").admitted) << "before any share: an even share";
  // a calls as fast as it can between syncs; b is idle.
  for (int round = 0; round < 6; ++round) {
    const std::uint64_t until = monotonic_ns() + 60'000'000;
    while (monotonic_ns() < until) spend_one(ca, "pricing");
    ASSERT_TRUE(a.sidecar().store_sync()->sync_once().ok());
    ASSERT_TRUE(b.sidecar().store_sync()->sync_once().ok());
  }
  // Two hosts: floor 100 / 8 = 12 each, the pool of 76 by demand, all a's.
  EXPECT_NEAR(share_per_second(a.seg()), 88, 1);
  EXPECT_NEAR(share_per_second(b.seg()), 12, 1);
  EXPECT_EQ(shm::load_relaxed(a.seg().header().store_hosts), 2u);
  testing::remove_test_store(db);
}

TEST(StoreSync, AFailClosedGlobalLimitRejectsWhenNoSyncHasSucceeded) {
  const std::string db = "/tmp/" + testing::unique_segment("closed") + ".db";
  const std::string limits =
      "limits:\n  - name: shared-usd\n    match: { team: pricing }\n    usd_per_day: 5.00\n"
      "    scope: global\n";
  SidecarHarness h("closed", store_block(db, "host-a") + kModels + limits);  // no store sync
  Client c = h.attach();
  const Decision d = spend_one(c, "pricing");
  EXPECT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, Reason::kStoreUnavailable);
  testing::remove_test_store(db);
}

TEST(StoreSync, ANewSegmentNeedsTheStoresSeedAndSaysSoWhenTheStoreIsDown) {
  const std::string limits = "limits:\n  - name: r\n    requests_per_second: 10\n";
  const std::string segment = testing::unique_segment("no-redis");
  const std::string path = testing::write_policy(
      segment,
      "store:\n  kind: redis\n  url: redis://127.0.0.1:1/0\n  host_id: host-a\n  timeout_ms: "
      "100\n" +
          limits);
  SidecarOptions o = testing::no_audit();
  o.sync = SidecarOptions::Sync::kManual;
  Result<Sidecar> s = Sidecar::start(path, o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("hash seed"), std::string::npos) << s.status().message();
  EXPECT_EQ(s.status().message().find('\n'), std::string::npos);
  EXPECT_FALSE(SegmentMap::exists(segment));
  std::remove(path.c_str());
  std::remove(sidecar_lock_path(segment).c_str());
}

TEST(LeaseSizing, HeadroomDoublesWhileDemandOutrunsItAndHalvesWhenIdle) {
  const std::uint64_t budget = 1'000'000;
  BudgetAsk a = size_budget_ask(0, 0, 0, budget);
  EXPECT_EQ(a.headroom, 1000u);
  EXPECT_EQ(a.want_exposed, 1000u);
  EXPECT_EQ(a.want_allotted, 4000u);
  a = size_budget_ask(1000, 600, a.headroom, budget);  // spent over half of it
  EXPECT_EQ(a.headroom, 2000u);
  EXPECT_EQ(a.want_exposed, 3000u);
  EXPECT_EQ(a.want_allotted, 9000u);
  a = size_budget_ask(1300, 300, a.headroom, budget);  // between an eighth and a half
  EXPECT_EQ(a.headroom, 2000u);
  a = size_budget_ask(1300, 0, a.headroom, budget);  // idle
  EXPECT_EQ(a.headroom, 1000u);
  a = size_budget_ask(999'500, 0, 0, budget);  // never past the budget
  EXPECT_EQ(a.want_exposed, budget);
  EXPECT_EQ(a.want_allotted, budget);
}

TEST(LeaseSizing, RateDemandCountsAdmittedUnitsPerPeriodAndDoublesWhenSaturated) {
  const std::uint64_t ms = 1'000'000, s = 1'000'000'000;
  // 10 ms per unit; over 100 ms the arrival time advanced 50 ms: 5 units,
  // 50 per second.
  EXPECT_EQ(rate_demand(0, 1000 * ms + 50 * ms, 1000 * ms, 1100 * ms, 10 * ms, 100 * ms, s), 50u);
  // Arrival time 80 ms ahead with a 100 ms burst: saturated.
  EXPECT_EQ(rate_demand(1000 * ms, 1180 * ms, 1000 * ms, 1100 * ms, 10 * ms, 100 * ms, s), 361u);
  EXPECT_EQ(rate_demand(0, 0, 1000 * ms, 1100 * ms, 10 * ms, 100 * ms, s), 0u);
  const ShareTerms t = share_terms(25, s, 100, 20);
  EXPECT_EQ(t.emission_ns, 40 * ms);
  EXPECT_EQ(t.capacity_ns, 200 * ms);  // 20 x 25 / 100 = 5 units of 40 ms
  EXPECT_EQ(share_terms(1, s, 100, 20).capacity_ns, s) << "at least one unit of burst";
}

}  // namespace
}  // namespace sluice
