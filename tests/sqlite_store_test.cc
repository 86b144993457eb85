// The SQLite store: the arithmetic of store.h (duplicates, allotment,
// give-back, exposure, lease reclaim, rate shares), restore, the hash seed,
// two sidecars on one file, pruning, and the one-line errors.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sqlite_store.h"
#include "store.h"

namespace sluice {
namespace {

constexpr std::uint64_t kLongLeaseMs = 60'000;

// A directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/sluice-sqlite-test-XXXXXX";
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : "";
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::uint64_t now_unix() { return static_cast<std::uint64_t>(std::time(nullptr)); }

Result<std::unique_ptr<Store>> open_at(const std::string& path) {
  StoreSpec spec;
  spec.path = path;
  spec.timeout_ms = 5000;
  return open_sqlite_store(spec);
}

// Opens `path` or fails the test.
std::unique_ptr<Store> must_open(const std::string& path) {
  Result<std::unique_ptr<Store>> s = open_at(path);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? std::move(s).value() : nullptr;
}

// One window end for the whole run: cells built a second apart stay the same cell.
std::uint64_t window_end_of_this_run() {
  static const std::uint64_t end = now_unix() + 3600;
  return end;
}

StoreCell cell_named(std::uint64_t hash, std::uint64_t window_end = window_end_of_this_run()) {
  StoreCell c;
  c.hash = hash;
  c.limit_identity = 1000 + hash;
  c.window_start = window_end - 86'400;
  c.window_end = window_end;
  c.limit_name = "limit-" + std::to_string(hash);
  c.label = "team-" + std::to_string(hash) + "|gpt";
  return c;
}

CellUpdate local_budget(std::uint64_t hash, std::int64_t used_delta) {
  CellUpdate u;
  u.cell = cell_named(hash);
  u.kind = CellKind::kLocalBudget;
  u.used_delta = used_delta;
  return u;
}

CellUpdate global_budget(std::uint64_t hash, std::uint64_t budget, std::uint64_t want_allotted,
                         std::uint64_t want_exposed, std::int64_t used_delta = 0) {
  CellUpdate u;
  u.cell = cell_named(hash);
  u.kind = CellKind::kGlobalBudget;
  u.used_delta = used_delta;
  u.budget = budget;
  u.want_allotted = want_allotted;
  u.want_exposed = want_exposed;
  return u;
}

CellUpdate global_rate(std::uint64_t hash, std::uint64_t rate, std::uint64_t demand) {
  CellUpdate u;
  u.cell = cell_named(hash, 0);
  u.cell.window_start = 0;
  u.kind = CellKind::kGlobalRate;
  u.rate = rate;
  u.demand = demand;
  return u;
}

// Host `host` pushes `cells` as (session, seq); the states, or a failed test.
std::vector<CellState> push(Store& store, const std::string& host, std::uint64_t session,
                            std::uint64_t seq, std::vector<CellUpdate> cells,
                            std::uint64_t lease_ms = kLongLeaseMs) {
  Push p;
  p.host = host;
  p.session = session;
  p.seq = seq;
  p.lease_ms = lease_ms;
  p.cells = std::move(cells);
  Result<std::vector<CellState>> r = store.push(p);
  EXPECT_TRUE(r.ok()) << r.status().message();
  if (!r.ok()) return {};
  EXPECT_EQ(r->size(), p.cells.size());
  return std::move(r).value();
}

CellState push_one(Store& store, const std::string& host, std::uint64_t session, std::uint64_t seq,
                   const CellUpdate& cell, std::uint64_t lease_ms = kLongLeaseMs) {
  std::vector<CellState> states = push(store, host, session, seq, {cell}, lease_ms);
  return states.empty() ? CellState{} : states.front();
}

bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == std::string::npos; }

TEST(SqliteStore, WhereNamesTheFile) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->where(), "sqlite:" + dir.sub("sluice.db"));
}

TEST(SqliteStore, HashSeedIsTheFirstCallersAndSurvivesReopening) {
  TempDir dir;
  {
    std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
    ASSERT_NE(store, nullptr);
    Result<std::uint64_t> first = store->hash_seed(0xfeedface12345678ull);
    ASSERT_TRUE(first.ok()) << first.status().message();
    EXPECT_EQ(first.value(), 0xfeedface12345678ull);
    Result<std::uint64_t> second = store->hash_seed(42);
    ASSERT_TRUE(second.ok()) << second.status().message();
    EXPECT_EQ(second.value(), 0xfeedface12345678ull);
  }
  std::unique_ptr<Store> reopened = must_open(dir.sub("sluice.db"));
  ASSERT_NE(reopened, nullptr);
  Result<std::uint64_t> later = reopened->hash_seed(7);
  ASSERT_TRUE(later.ok()) << later.status().message();
  EXPECT_EQ(later.value(), 0xfeedface12345678ull);
}

TEST(SqliteStore, MissingParentDirectoriesAreCreated) {
  TempDir dir;
  const std::string path = dir.sub("var/nested/sluice.db");
  std::unique_ptr<Store> store = must_open(path);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(std::filesystem::is_regular_file(path));
}

TEST(SqliteStore, BudgetPushAddsDeltasAndARetriedSeqIsNotCountedTwice) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);

  CellState s = push_one(*store, "host-a", 11, 1, local_budget(5, 10));
  EXPECT_FALSE(s.duplicate);
  EXPECT_EQ(s.host_used, 10);
  EXPECT_EQ(s.global_used, 10);

  s = push_one(*store, "host-a", 11, 2, local_budget(5, 5));
  EXPECT_FALSE(s.duplicate);
  EXPECT_EQ(s.host_used, 15);

  // The same push again (the caller did not see the answer), and an older one.
  s = push_one(*store, "host-a", 11, 2, local_budget(5, 5));
  EXPECT_TRUE(s.duplicate);
  EXPECT_EQ(s.host_used, 15);
  EXPECT_EQ(s.global_used, 15);
  s = push_one(*store, "host-a", 11, 1, local_budget(5, 10));
  EXPECT_TRUE(s.duplicate);
  EXPECT_EQ(s.host_used, 15);

  // A restarted sidecar (new session) starts its seq at 1 again.
  s = push_one(*store, "host-a", 12, 1, local_budget(5, 7));
  EXPECT_FALSE(s.duplicate);
  EXPECT_EQ(s.host_used, 22);
  EXPECT_EQ(s.global_used, 22);

  // Another host's usage adds to the cell, not to host-a.
  s = push_one(*store, "host-b", 21, 1, local_budget(5, 3));
  EXPECT_EQ(s.host_used, 3);
  EXPECT_EQ(s.global_used, 25);
  EXPECT_EQ(s.host_allotted, 0u);
  EXPECT_EQ(s.host_exposed, 0u);
}

TEST(SqliteStore, NegativeDeltasLowerUsage) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);

  push_one(*store, "host-a", 1, 1, local_budget(5, 10));
  CellState s = push_one(*store, "host-a", 1, 2, local_budget(5, -4));
  EXPECT_EQ(s.host_used, 6);
  EXPECT_EQ(s.global_used, 6);
  s = push_one(*store, "host-b", 2, 1, global_budget(6, 100, 0, 0, -3));
  EXPECT_EQ(s.host_used, -3);
  EXPECT_EQ(s.global_used, -3);
}

TEST(SqliteStore, OnePushAppliesEveryCellInOrder) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);

  std::vector<CellState> states =
      push(*store, "host-a", 1, 1,
           {local_budget(1, 4), global_budget(2, 100, 30, 10, 2), global_rate(3, 800, 5)});
  ASSERT_EQ(states.size(), 3u);
  EXPECT_EQ(states[0].host_used, 4);
  EXPECT_EQ(states[1].host_used, 2);
  EXPECT_EQ(states[1].host_allotted, 30u);
  EXPECT_EQ(states[1].host_exposed, 10u);
  EXPECT_EQ(states[2].host_share, 800u);
  EXPECT_EQ(states[2].hosts, 1u);
}

TEST(SqliteStore, GlobalAllotmentNeverExceedsTheBudgetAcrossGreedyHosts) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);

  CellState a = push_one(*store, "host-a", 1, 1, global_budget(9, 100, 60, 0));
  EXPECT_EQ(a.host_allotted, 60u);
  EXPECT_EQ(a.global_allotted, 60u);
  CellState b = push_one(*store, "host-b", 2, 1, global_budget(9, 100, 60, 0));
  EXPECT_EQ(b.host_allotted, 40u);
  EXPECT_EQ(b.global_allotted, 100u);
  CellState c = push_one(*store, "host-c", 3, 1, global_budget(9, 100, 60, 60));
  EXPECT_EQ(c.host_allotted, 0u);
  EXPECT_EQ(c.host_exposed, 0u);
  EXPECT_EQ(c.global_allotted, 100u);

  // Asking again changes nothing while the others hold their leases.
  c = push_one(*store, "host-c", 3, 2, global_budget(9, 100, 1000, 0));
  EXPECT_EQ(c.host_allotted, 0u);
  EXPECT_EQ(c.global_allotted, 100u);

  // host-a gives 25 back; host-c gets exactly those.
  a = push_one(*store, "host-a", 1, 2, global_budget(9, 100, 35, 0));
  EXPECT_EQ(a.host_allotted, 35u);
  EXPECT_EQ(a.global_allotted, 75u);
  c = push_one(*store, "host-c", 3, 3, global_budget(9, 100, 1000, 0));
  EXPECT_EQ(c.host_allotted, 25u);
  EXPECT_EQ(c.global_allotted, 100u);
}

TEST(SqliteStore, ABudgetLoweredBelowWhatIsAllottedGrantsNothingMore) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);

  push_one(*store, "host-a", 1, 1, global_budget(9, 100, 80, 0));
  CellState b = push_one(*store, "host-b", 2, 1, global_budget(9, 50, 10, 0));
  EXPECT_EQ(b.host_allotted, 0u);
  EXPECT_EQ(b.global_allotted, 80u);
}

TEST(SqliteStore, GiveBackStopsAtTheExposedUnits) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);

  CellState s = push_one(*store, "host-a", 1, 1, global_budget(9, 100, 50, 30));
  EXPECT_EQ(s.host_allotted, 50u);
  EXPECT_EQ(s.host_exposed, 30u);

  s = push_one(*store, "host-a", 1, 2, global_budget(9, 100, 40, 0));
  EXPECT_EQ(s.host_allotted, 40u);
  EXPECT_EQ(s.global_allotted, 40u);

  s = push_one(*store, "host-a", 1, 3, global_budget(9, 100, 10, 0));
  EXPECT_EQ(s.host_allotted, 30u);
  EXPECT_EQ(s.host_exposed, 30u);
  EXPECT_EQ(s.global_allotted, 30u);
}

TEST(SqliteStore, ExposureNeverShrinksAndNeverPassesTheAllotment) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);

  CellState s = push_one(*store, "host-a", 1, 1, global_budget(9, 100, 40, 80));
  EXPECT_EQ(s.host_allotted, 40u);
  EXPECT_EQ(s.host_exposed, 40u);

  s = push_one(*store, "host-a", 1, 2, global_budget(9, 100, 60, 5));
  EXPECT_EQ(s.host_allotted, 60u);
  EXPECT_EQ(s.host_exposed, 40u);

  s = push_one(*store, "host-a", 1, 3, global_budget(9, 100, 60, 55));
  EXPECT_EQ(s.host_exposed, 55u);
}

TEST(SqliteStore, ALiveLeaseKeepsItsAllotment) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);

  push_one(*store, "host-a", 1, 1, global_budget(9, 100, 80, 30), kLongLeaseMs);
  CellState b = push_one(*store, "host-b", 2, 1, global_budget(9, 100, 100, 0));
  EXPECT_EQ(b.host_allotted, 20u);
  EXPECT_EQ(b.global_allotted, 100u);
}

TEST(SqliteStore, AnExpiredLeaseReturnsUnexposedAllotmentButNotExposedUnits) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);

  CellState a = push_one(*store, "host-a", 1, 1, global_budget(9, 100, 80, 30), /*lease_ms=*/20);
  EXPECT_EQ(a.host_allotted, 80u);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  CellState b = push_one(*store, "host-b", 2, 1, global_budget(9, 100, 100, 0));
  EXPECT_EQ(b.host_allotted, 70u);
  EXPECT_EQ(b.global_allotted, 100u);

  // host-a comes back: it still holds the 30 it exposed, and nothing is left.
  a = push_one(*store, "host-a", 1, 2, global_budget(9, 100, 80, 30));
  EXPECT_EQ(a.host_allotted, 30u);
  EXPECT_EQ(a.host_exposed, 30u);
  EXPECT_EQ(a.global_allotted, 100u);
}

TEST(SqliteStore, RateSharesAreTheFloorPlusADemandProportionalPool) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);

  CellState a = push_one(*store, "host-a", 1, 1, global_rate(4, 1000, 3));
  EXPECT_EQ(a.hosts, 1u);
  EXPECT_EQ(a.host_share, 1000u);  // floor 250 + the whole pool of 750

  // Two hosts: floor 1000 / 8 = 125, pool 750 split 3:1.
  CellState b = push_one(*store, "host-b", 2, 1, global_rate(4, 1000, 1));
  EXPECT_EQ(b.hosts, 2u);
  EXPECT_EQ(b.host_share, 125u + 187u);
  a = push_one(*store, "host-a", 1, 2, global_rate(4, 1000, 3));
  EXPECT_EQ(a.hosts, 2u);
  EXPECT_EQ(a.host_share, 125u + 562u);

  // No demand anywhere: the pool is split evenly.
  push_one(*store, "host-a", 1, 3, global_rate(4, 1000, 0));
  b = push_one(*store, "host-b", 2, 2, global_rate(4, 1000, 0));
  EXPECT_EQ(b.host_share, 125u + 375u);
}

TEST(SqliteStore, RateSharesDoNotOverflowWithLargeRatesAndDemands) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);

  const std::uint64_t rate = 1ull << 62;
  push_one(*store, "host-a", 1, 1, global_rate(4, rate, 3ull << 40));
  CellState b = push_one(*store, "host-b", 2, 1, global_rate(4, rate, 1ull << 40));
  EXPECT_EQ(b.host_share, 5ull << 58);  // 2^59 + 3 * 2^60 / 4
  CellState a = push_one(*store, "host-a", 1, 2, global_rate(4, rate, 3ull << 40));
  EXPECT_EQ(a.host_share, 11ull << 58);  // 2^59 + 3 * 2^60 * 3 / 4
}

TEST(SqliteStore, AHostWhoseRateLeaseRanOutIsForgotten) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);

  push_one(*store, "host-a", 1, 1, global_rate(4, 1000, 3), /*lease_ms=*/500);
  CellState b = push_one(*store, "host-b", 2, 1, global_rate(4, 1000, 1));
  EXPECT_EQ(b.hosts, 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));

  b = push_one(*store, "host-b", 2, 2, global_rate(4, 1000, 1));
  EXPECT_EQ(b.hosts, 1u);
  EXPECT_EQ(b.host_share, 1000u);
}

TEST(SqliteStore, AHugeLeaseNeverWrapsIntoThePast) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);
  constexpr std::uint64_t kHuge = ~std::uint64_t{0};

  CellState r = push_one(*store, "host-a", 1, 1, global_rate(4, 1000, 3), kHuge);
  EXPECT_EQ(r.hosts, 1u);
  EXPECT_EQ(r.host_share, 1000u);
  r = push_one(*store, "host-b", 2, 1, global_rate(4, 1000, 1));
  EXPECT_EQ(r.hosts, 2u);

  push_one(*store, "host-a", 1, 2, global_budget(9, 100, 80, 0), kHuge);
  CellState b = push_one(*store, "host-b", 2, 2, global_budget(9, 100, 100, 0));
  EXPECT_EQ(b.host_allotted, 20u);
}

TEST(SqliteStore, RestoreReturnsTheHostsCurrentBudgetCellsAfterReopening) {
  TempDir dir;
  const std::uint64_t now = now_unix();
  {
    std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
    ASSERT_NE(store, nullptr);
    CellUpdate ended = local_budget(3, 9);
    ended.cell = cell_named(3, now - 10);
    push(*store, "host-a", 1, 1,
         {local_budget(1, 12), global_budget(2, 100, 50, 20, 7), ended, global_rate(4, 10, 1)});
    push(*store, "host-a", 1, 2, {local_budget(1, 3)});
    push(*store, "host-b", 2, 1, {local_budget(1, 100), local_budget(5, 1)});
  }
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);
  Result<std::vector<RestoredCell>> r = store->restore("host-a", now);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->size(), 2u);

  const RestoredCell& local = r.value()[0];
  const StoreCell want_local = local_budget(1, 0).cell;
  EXPECT_EQ(local.kind, CellKind::kLocalBudget);
  EXPECT_EQ(local.cell.hash, 1u);
  EXPECT_EQ(local.cell.limit_identity, 1001u);
  EXPECT_EQ(local.cell.window_start, want_local.window_start);
  EXPECT_EQ(local.cell.window_end, want_local.window_end);
  EXPECT_EQ(local.cell.limit_name, "limit-1");
  EXPECT_EQ(local.cell.label, "team-1|gpt");
  EXPECT_EQ(local.host_used, 15);
  EXPECT_EQ(local.host_exposed, 0u);

  const RestoredCell& global = r.value()[1];
  EXPECT_EQ(global.kind, CellKind::kGlobalBudget);
  EXPECT_EQ(global.cell.hash, 2u);
  EXPECT_EQ(global.cell.limit_name, "limit-2");
  EXPECT_EQ(global.host_used, 7);
  EXPECT_EQ(global.host_exposed, 20u);

  Result<std::vector<RestoredCell>> unknown = store->restore("host-z", now);
  ASSERT_TRUE(unknown.ok()) << unknown.status().message();
  EXPECT_TRUE(unknown->empty());
}

TEST(SqliteStore, TwoStoresOnOneFileSeeEachOthersAllotments) {
  TempDir dir;
  std::unique_ptr<Store> first = must_open(dir.sub("sluice.db"));
  std::unique_ptr<Store> second = must_open(dir.sub("sluice.db"));
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);

  Result<std::uint64_t> seed_a = first->hash_seed(111);
  Result<std::uint64_t> seed_b = second->hash_seed(222);
  ASSERT_TRUE(seed_a.ok() && seed_b.ok());
  EXPECT_EQ(seed_b.value(), 111u);

  CellState a = push_one(*first, "host-a", 1, 1, global_budget(9, 100, 70, 10, 5));
  EXPECT_EQ(a.host_allotted, 70u);
  CellState b = push_one(*second, "host-b", 2, 1, global_budget(9, 100, 70, 10, 8));
  EXPECT_EQ(b.host_allotted, 30u);
  EXPECT_EQ(b.global_allotted, 100u);
  EXPECT_EQ(b.global_used, 13);
  a = push_one(*first, "host-a", 1, 2, global_budget(9, 100, 70, 10, 1));
  EXPECT_EQ(a.global_used, 14);
  EXPECT_EQ(a.global_allotted, 100u);
}

TEST(SqliteStore, ConcurrentPushesFromTwoStoresOnOneFileAreSerialized) {
  TempDir dir;
  std::unique_ptr<Store> first = must_open(dir.sub("sluice.db"));
  std::unique_ptr<Store> second = must_open(dir.sub("sluice.db"));
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  constexpr int kPushes = 100;
  auto run = [](Store& store, const std::string& host, std::uint64_t session) {
    for (int i = 1; i <= kPushes; ++i) {
      push_one(store, host, session, static_cast<std::uint64_t>(i),
               global_budget(9, 1000, static_cast<std::uint64_t>(i) * 10, 0, 1));
    }
  };
  std::thread a(run, std::ref(*first), "host-a", 1);
  std::thread b(run, std::ref(*second), "host-b", 2);
  a.join();
  b.join();

  CellState s = push_one(*first, "host-a", 1, kPushes + 1, global_budget(9, 1000, 0, 0, 0));
  EXPECT_EQ(s.global_used, 2 * kPushes);
  EXPECT_EQ(s.host_used, kPushes);
  EXPECT_EQ(s.host_allotted, 0u);
  EXPECT_LE(s.global_allotted, 1000u);
  s = push_one(*second, "host-b", 2, kPushes + 1, global_budget(9, 1000, 1000, 0, 0));
  EXPECT_EQ(s.host_allotted, 1000u);
  EXPECT_EQ(s.global_allotted, 1000u);
  EXPECT_EQ(s.global_used, 2 * kPushes);
}

TEST(SqliteStore, APushWithABadCellChangesNothing) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);

  CellUpdate bad = local_budget(2, 1);
  bad.kind = static_cast<CellKind>(7);
  Push p;
  p.host = "host-a";
  p.session = 1;
  p.seq = 1;
  p.lease_ms = kLongLeaseMs;
  p.cells = {local_budget(1, 10), bad};
  Result<std::vector<CellState>> r = store->push(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(one_line(r.status().message())) << r.status().message();

  // The first cell was rolled back: the same seq applies, once.
  CellState s = push_one(*store, "host-a", 1, 1, local_budget(1, 10));
  EXPECT_FALSE(s.duplicate);
  EXPECT_EQ(s.host_used, 10);
}

TEST(SqliteStore, APushWithoutAHostIsRejected) {
  TempDir dir;
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);
  Push p;
  p.session = 1;
  p.seq = 1;
  p.cells = {local_budget(1, 10)};
  Result<std::vector<CellState>> r = store->push(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(one_line(r.status().message())) << r.status().message();
}

TEST(SqliteStore, CellsAreDeletedAWeekAfterTheirWindowEnds) {
  TempDir dir;
  const std::uint64_t now = now_unix();
  constexpr std::uint64_t kDay = 86'400;
  {
    std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
    ASSERT_NE(store, nullptr);
    CellUpdate old = local_budget(1, 5);
    old.cell = cell_named(1, now - 8 * kDay);
    CellUpdate recent = local_budget(2, 5);
    recent.cell = cell_named(2, now - 6 * kDay);
    push(*store, "host-a", 1, 1, {old, recent});
    Result<std::vector<RestoredCell>> before = store->restore("host-a", 0);
    ASSERT_TRUE(before.ok()) << before.status().message();
    EXPECT_EQ(before->size(), 2u);
  }
  // A store prunes on its first push.
  std::unique_ptr<Store> store = must_open(dir.sub("sluice.db"));
  ASSERT_NE(store, nullptr);
  push(*store, "host-b", 2, 1, {local_budget(3, 1)});
  Result<std::vector<RestoredCell>> after = store->restore("host-a", 0);
  ASSERT_TRUE(after.ok()) << after.status().message();
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ(after.value()[0].cell.hash, 2u);
}

TEST(SqliteStore, APathInADirectoryThatCannotBeCreatedIsAOneLineError) {
  Result<std::unique_ptr<Store>> r = open_at("/proc/sluice-no-such-dir/sub/sluice.db");
  ASSERT_FALSE(r.ok());
  const std::string& m = r.status().message();
  EXPECT_TRUE(one_line(m)) << m;
  EXPECT_NE(m.find("store.path '/proc/sluice-no-such-dir/sub/sluice.db'"), std::string::npos) << m;
  EXPECT_NE(m.find("cannot create directory"), std::string::npos) << m;
}

TEST(SqliteStore, APathThatIsADirectoryIsAOneLineError) {
  TempDir dir;
  std::filesystem::create_directory(dir.sub("a-directory"));
  Result<std::unique_ptr<Store>> r = open_at(dir.sub("a-directory"));
  ASSERT_FALSE(r.ok());
  const std::string& m = r.status().message();
  EXPECT_TRUE(one_line(m)) << m;
  EXPECT_NE(m.find("cannot open"), std::string::npos) << m;
}

TEST(SqliteStore, AFileThatIsNotADatabaseIsAOneLineError) {
  TempDir dir;
  const std::string path = dir.sub("notes.db");
  std::ofstream(path) << "these are not the pages you are looking for\n"
                      << std::string(4096, 'x') << "\n";
  Result<std::unique_ptr<Store>> r = open_at(path);
  ASSERT_FALSE(r.ok());
  const std::string& m = r.status().message();
  EXPECT_TRUE(one_line(m)) << m;
  EXPECT_EQ(r.status().code(), ErrorCode::kIncompatible);
  EXPECT_NE(m.find("not an SQLite database"), std::string::npos) << m;
}

TEST(SqliteStore, ADatabaseOfAnotherApplicationIsAOneLineError) {
  TempDir dir;
  const std::string path = dir.sub("other.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE invoices (id INTEGER)", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);

  Result<std::unique_ptr<Store>> r = open_at(path);
  ASSERT_FALSE(r.ok());
  const std::string& m = r.status().message();
  EXPECT_TRUE(one_line(m)) << m;
  EXPECT_NE(m.find("not a sluice database"), std::string::npos) << m;
}

TEST(SqliteStore, ANewerSchemaVersionIsAOneLineError) {
  TempDir dir;
  const std::string path = dir.sub("sluice.db");
  ASSERT_NE(must_open(path), nullptr);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 9", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  Result<std::unique_ptr<Store>> r = open_at(path);
  ASSERT_FALSE(r.ok());
  const std::string& m = r.status().message();
  EXPECT_TRUE(one_line(m)) << m;
  EXPECT_NE(m.find("schema version 9"), std::string::npos) << m;
}

TEST(SqliteStore, AnEmptyPathIsAOneLineError) {
  Result<std::unique_ptr<Store>> r = open_at("");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(one_line(r.status().message())) << r.status().message();
}

}  // namespace
}  // namespace sluice
