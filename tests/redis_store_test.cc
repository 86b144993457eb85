// The Redis store against a real redis-server on loopback: store.h's
// arithmetic with exact numbers, retries, restore, and what a stopped or
// paused server does to a push.
#include "redis_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "redis_server.h"
#include "test_support.h"

namespace sluice {
namespace {

using testing::RedisServer;
using namespace std::chrono_literals;

constexpr std::uint64_t kLongLease = 60'000;

std::uint64_t now_unix() { return static_cast<std::uint64_t>(std::time(nullptr)); }

// One window end for the whole run: cells built a second apart stay the same cell.
std::uint64_t window_end_of_this_run() {
  static const std::uint64_t end = now_unix() + 3600;
  return end;
}

StoreCell cell(std::uint64_t hash, std::uint64_t window_end = window_end_of_this_run()) {
  return StoreCell{.hash = hash,
                   .limit_identity = hash ^ 0xabcdef,
                   .window_start = window_end - 86400,
                   .window_end = window_end,
                   .limit_name = "daily-spend",
                   .label = "team-" + std::to_string(hash)};
}

CellUpdate local_budget(std::uint64_t hash, std::int64_t used_delta) {
  return CellUpdate{.cell = cell(hash), .kind = CellKind::kLocalBudget, .used_delta = used_delta};
}

CellUpdate global_budget(std::uint64_t hash, std::int64_t used_delta, std::uint64_t budget,
                         std::uint64_t want_allotted, std::uint64_t want_exposed) {
  return CellUpdate{.cell = cell(hash),
                    .kind = CellKind::kGlobalBudget,
                    .used_delta = used_delta,
                    .budget = budget,
                    .want_allotted = want_allotted,
                    .want_exposed = want_exposed};
}

CellUpdate global_rate(std::uint64_t hash, std::uint64_t rate, std::uint64_t demand) {
  StoreCell c = cell(hash);
  c.window_start = c.window_end = 0;
  return CellUpdate{.cell = c, .kind = CellKind::kGlobalRate, .rate = rate, .demand = demand};
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    server_ = RedisServer::start(&error);
    ASSERT_NE(server_, nullptr) << error;
    store_ = open(server_->url());
  }

  static std::unique_ptr<Store> open(const std::string& url) {
    StoreSpec spec{.kind = "redis", .url = url, .host_id = "host-a", .timeout_ms = 200};
    Result<std::unique_ptr<Store>> store = open_redis_store(spec);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // The push's single state; fails the test on an error.
  CellState push_one(const std::string& host, std::uint64_t session, std::uint64_t seq,
                     const CellUpdate& update, std::uint64_t lease_ms = kLongLease) {
    Result<std::vector<CellState>> states = store_->push(Push{
        .host = host, .session = session, .seq = seq, .lease_ms = lease_ms, .cells = {update}});
    EXPECT_TRUE(states.ok()) << states.status().message();
    if (!states.ok() || states->size() != 1) return CellState{};
    return (*states)[0];
  }

  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<Store> store_;
};

TEST_F(RedisStoreTest, HashSeedIsTheFirstCallersProposal) {
  Result<std::uint64_t> first = store_->hash_seed(0xfeedface12345678);
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(*first, 0xfeedface12345678u);
  std::unique_ptr<Store> other = open(server_->url());
  Result<std::uint64_t> second = other->hash_seed(42);
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ(*second, 0xfeedface12345678u);
}

TEST_F(RedisStoreTest, DatabasesInTheUrlAreSeparate) {
  ASSERT_TRUE(store_->hash_seed(7).ok());
  std::unique_ptr<Store> db1 = open(server_->url(1));
  Result<std::uint64_t> seed = db1->hash_seed(8);
  ASSERT_TRUE(seed.ok()) << seed.status().message();
  EXPECT_EQ(*seed, 8u);
  EXPECT_EQ(db1->where(), "redis://127.0.0.1:" + std::to_string(server_->port()) + "/1");
}

TEST_F(RedisStoreTest, BudgetPushAddsItsDeltaToHostAndGlobalUsed) {
  CellState a = push_one("host-a", 11, 1, local_budget(1, 100));
  EXPECT_FALSE(a.duplicate);
  EXPECT_EQ(a.host_used, 100);
  EXPECT_EQ(a.global_used, 100);
  CellState b = push_one("host-b", 22, 1, local_budget(1, 30));
  EXPECT_EQ(b.host_used, 30);
  EXPECT_EQ(b.global_used, 130);
  CellState refund = push_one("host-a", 11, 2, local_budget(1, -40));
  EXPECT_EQ(refund.host_used, 60);
  EXPECT_EQ(refund.global_used, 90);
  EXPECT_EQ(refund.host_allotted, 0u);
}

TEST_F(RedisStoreTest, RetriedPushIsADuplicateAndANewSessionApplies) {
  push_one("host-a", 11, 1, local_budget(1, 100));
  CellState retried = push_one("host-a", 11, 1, local_budget(1, 100));
  EXPECT_TRUE(retried.duplicate);
  EXPECT_EQ(retried.host_used, 100);
  EXPECT_EQ(retried.global_used, 100);
  push_one("host-a", 11, 2, local_budget(1, 50));
  CellState older = push_one("host-a", 11, 1, local_budget(1, 100));
  EXPECT_TRUE(older.duplicate);
  EXPECT_EQ(older.host_used, 150);
  // A restarted sidecar: new session, seq from 1 again.
  CellState restarted = push_one("host-a", 99, 1, local_budget(1, 7));
  EXPECT_FALSE(restarted.duplicate);
  EXPECT_EQ(restarted.host_used, 157);
  EXPECT_EQ(restarted.global_used, 157);
}

TEST_F(RedisStoreTest, SeqComparesAsANumberBeyondTheDoublesRange) {
  const std::uint64_t big = 18'446'744'073'709'551'000u;
  push_one("host-a", 18'446'744'073'709'551'615u, big, local_budget(1, 5));
  EXPECT_TRUE(
      push_one("host-a", 18'446'744'073'709'551'615u, big - 1, local_budget(1, 5)).duplicate);
  EXPECT_FALSE(
      push_one("host-a", 18'446'744'073'709'551'615u, big + 1, local_budget(1, 5)).duplicate);
  EXPECT_FALSE(push_one("host-a", 18'446'744'073'709'551'614u, 1, local_budget(1, 5)).duplicate);
}

TEST_F(RedisStoreTest, OneCellsRetryDoesNotBlockTheOthersInTheSamePush) {
  ASSERT_TRUE(store_
                  ->push(Push{.host = "host-a",
                              .session = 1,
                              .seq = 1,
                              .lease_ms = kLongLease,
                              .cells = {local_budget(1, 10)}})
                  .ok());
  Result<std::vector<CellState>> states =
      store_->push(Push{.host = "host-a",
                        .session = 1,
                        .seq = 1,
                        .lease_ms = kLongLease,
                        .cells = {local_budget(1, 10), local_budget(2, 20),
                                  global_budget(3, 0, 1000, 300, 100), global_rate(4, 80, 5)}});
  ASSERT_TRUE(states.ok()) << states.status().message();
  ASSERT_EQ(states->size(), 4u);
  EXPECT_TRUE((*states)[0].duplicate);
  EXPECT_EQ((*states)[0].host_used, 10);
  EXPECT_FALSE((*states)[1].duplicate);
  EXPECT_EQ((*states)[1].host_used, 20);
  EXPECT_EQ((*states)[2].host_allotted, 300u);
  EXPECT_EQ((*states)[2].host_exposed, 100u);
  EXPECT_EQ((*states)[3].host_share, 80u);
  EXPECT_EQ((*states)[3].hosts, 1u);
}

TEST_F(RedisStoreTest, ScriptsTheServerForgotAreSentAgain) {
  push_one("host-a", 1, 1, local_budget(1, 10));
  push_one("host-a", 1, 1, global_rate(4, 80, 5));
  std::string error;
  redisContext* admin = server_->connect(&error);
  ASSERT_NE(admin, nullptr) << error;
  freeReplyObject(redisCommand(admin, "SCRIPT FLUSH"));
  redisFree(admin);
  CellState budget = push_one("host-a", 1, 2, local_budget(1, 5));
  EXPECT_EQ(budget.host_used, 15);
  CellState rate = push_one("host-a", 1, 2, global_rate(4, 80, 5));
  EXPECT_EQ(rate.host_share, 80u);
}

TEST_F(RedisStoreTest, GlobalAllotmentNeverExceedsTheBudgetAcrossThreeGreedyHosts) {
  CellState a = push_one("host-a", 1, 1, global_budget(5, 0, 1000, 600, 0));
  EXPECT_EQ(a.host_allotted, 600u);
  EXPECT_EQ(a.global_allotted, 600u);
  CellState b = push_one("host-b", 2, 1, global_budget(5, 0, 1000, 600, 0));
  EXPECT_EQ(b.host_allotted, 400u);
  EXPECT_EQ(b.global_allotted, 1000u);
  CellState c = push_one("host-c", 3, 1, global_budget(5, 0, 1000, 600, 0));
  EXPECT_EQ(c.host_allotted, 0u);
  EXPECT_EQ(c.global_allotted, 1000u);
  // host-a gives back 500; host-c's next ask takes exactly that.
  CellState a2 = push_one("host-a", 1, 2, global_budget(5, 0, 1000, 100, 0));
  EXPECT_EQ(a2.host_allotted, 100u);
  EXPECT_EQ(a2.global_allotted, 500u);
  CellState c2 = push_one("host-c", 3, 2, global_budget(5, 0, 1000, 600, 0));
  EXPECT_EQ(c2.host_allotted, 500u);
  EXPECT_EQ(c2.global_allotted, 1000u);
  // A lower budget grants nothing more and takes nothing back.
  CellState b2 = push_one("host-b", 2, 2, global_budget(5, 0, 800, 900, 0));
  EXPECT_EQ(b2.host_allotted, 400u);
  EXPECT_EQ(b2.global_allotted, 1000u);
}

TEST_F(RedisStoreTest, GiveBackStopsAtTheLargerOfWantAndExposed) {
  CellState held = push_one("host-a", 1, 1, global_budget(5, 0, 1000, 600, 300));
  EXPECT_EQ(held.host_allotted, 600u);
  EXPECT_EQ(held.host_exposed, 300u);
  CellState to_want = push_one("host-a", 1, 2, global_budget(5, 0, 1000, 400, 300));
  EXPECT_EQ(to_want.host_allotted, 400u);
  EXPECT_EQ(to_want.global_allotted, 400u);
  CellState to_exposed = push_one("host-a", 1, 3, global_budget(5, 0, 1000, 0, 0));
  EXPECT_EQ(to_exposed.host_allotted, 300u);
  EXPECT_EQ(to_exposed.host_exposed, 300u);
  EXPECT_EQ(to_exposed.global_allotted, 300u);
}

TEST_F(RedisStoreTest, ExposureNeverShrinksAndNeverExceedsTheAllotment) {
  CellState capped = push_one("host-a", 1, 1, global_budget(5, 0, 500, 800, 800));
  EXPECT_EQ(capped.host_allotted, 500u);
  EXPECT_EQ(capped.host_exposed, 500u);
  CellState lower = push_one("host-a", 1, 2, global_budget(5, 0, 500, 500, 100));
  EXPECT_EQ(lower.host_exposed, 500u);
  CellState none = push_one("host-a", 1, 3, global_budget(5, 0, 500, 0, 0));
  EXPECT_EQ(none.host_allotted, 500u);
  EXPECT_EQ(none.host_exposed, 500u);
}

TEST_F(RedisStoreTest, ExpiredLeaseReturnsUnexposedAllotmentButKeepsExposedUnits) {
  CellState a = push_one("host-a", 1, 1, global_budget(5, 0, 1000, 600, 200), /*lease_ms=*/50);
  EXPECT_EQ(a.host_allotted, 600u);
  EXPECT_EQ(a.host_exposed, 200u);
  std::this_thread::sleep_for(150ms);
  CellState b = push_one("host-b", 2, 1, global_budget(5, 0, 1000, 1000, 0));
  EXPECT_EQ(b.host_allotted, 800u);  // 1000 minus host-a's 200 exposed
  EXPECT_EQ(b.global_allotted, 1000u);
  CellState back = push_one("host-a", 1, 2, global_budget(5, 0, 1000, 600, 200));
  EXPECT_EQ(back.host_allotted, 200u);
  EXPECT_EQ(back.host_exposed, 200u);
  EXPECT_EQ(back.global_allotted, 1000u);
}

TEST_F(RedisStoreTest, LiveLeaseOfAnotherHostIsNotReclaimed) {
  push_one("host-a", 1, 1, global_budget(5, 0, 1000, 600, 200));
  CellState b = push_one("host-b", 2, 1, global_budget(5, 0, 1000, 1000, 0));
  EXPECT_EQ(b.host_allotted, 400u);
  EXPECT_EQ(b.global_allotted, 1000u);
}

TEST_F(RedisStoreTest, RateSharesAreTheFloorPlusADemandProportionalPool) {
  CellState alone = push_one("host-a", 1, 1, global_rate(9, 1000, 300));
  EXPECT_EQ(alone.host_share, 1000u);  // 250 floor + the whole 750 pool
  EXPECT_EQ(alone.hosts, 1u);
  // n = 2: floor 1000 / 8 = 125, pool 750, demands 300 : 100.
  CellState b = push_one("host-b", 2, 1, global_rate(9, 1000, 100));
  EXPECT_EQ(b.host_share, 125u + 750u * 100 / 400);
  EXPECT_EQ(b.hosts, 2u);
  CellState a = push_one("host-a", 1, 2, global_rate(9, 1000, 300));
  EXPECT_EQ(a.host_share, 125u + 750u * 300 / 400);
  EXPECT_EQ(a.hosts, 2u);
}

TEST_F(RedisStoreTest, RateWithoutDemandSplitsThePoolEvenly) {
  push_one("host-a", 1, 1, global_rate(9, 1000, 0));
  CellState b = push_one("host-b", 2, 1, global_rate(9, 1000, 0));
  EXPECT_EQ(b.host_share, 125u + 750u / 2);
}

TEST_F(RedisStoreTest, RateHostWhoseLeaseRanOutIsForgotten) {
  push_one("host-a", 1, 1, global_rate(9, 1000, 300));
  push_one("host-b", 2, 1, global_rate(9, 1000, 100));
  CellState three = push_one("host-c", 3, 1, global_rate(9, 1000, 400), /*lease_ms=*/50);
  EXPECT_EQ(three.hosts, 3u);
  EXPECT_EQ(three.host_share, 1000u / 12 + (1000u - 3 * (1000u / 12)) * 400 / 800);
  std::this_thread::sleep_for(150ms);
  CellState a = push_one("host-a", 1, 2, global_rate(9, 1000, 300));
  EXPECT_EQ(a.hosts, 2u);
  EXPECT_EQ(a.host_share, 125u + 750u * 300 / 400);
}

TEST_F(RedisStoreTest, RateSharesAreExactForLargeRatesAndDemands) {
  const std::uint64_t rate = 1'000'000'000'000'000'000u;  // beyond 2^53
  push_one("host-a", 1, 1, global_rate(9, rate, 3'000'000'000'000'000'001u));
  CellState b = push_one("host-b", 2, 1, global_rate(9, rate, 1'000'000'000'000'000'000u));
  const std::uint64_t floor = rate / 8;
  const std::uint64_t pool = rate - 2 * floor;
  const auto expected =
      static_cast<std::uint64_t>(static_cast<unsigned __int128>(pool) * 1'000'000'000'000'000'000u /
                                 4'000'000'000'000'000'001u);
  EXPECT_EQ(b.host_share, floor + expected);
}

TEST_F(RedisStoreTest, RestoreReturnsTheHostsCellsOfWindowsNotEnded) {
  const std::uint64_t now = now_unix();
  CellUpdate current = global_budget(21, 250, 1000, 600, 400);
  CellUpdate local = local_budget(22, 70);
  CellUpdate ended = local_budget(23, 90);
  ended.cell = cell(23, now - 3600);
  ASSERT_TRUE(store_
                  ->push(Push{.host = "host-a",
                              .session = 1,
                              .seq = 1,
                              .lease_ms = kLongLease,
                              .cells = {current, local, ended, global_rate(24, 100, 1)}})
                  .ok());
  push_one("host-b", 2, 1, local_budget(25, 5));
  // The same cell as host-a's (one window), even if the clock ticked since.
  CellUpdate b21 = global_budget(21, 10, 1000, 100, 100);
  b21.cell = current.cell;
  push_one("host-b", 2, 2, b21);

  Result<std::vector<RestoredCell>> restored = store_->restore("host-a", now);
  ASSERT_TRUE(restored.ok()) << restored.status().message();
  ASSERT_EQ(restored->size(), 2u);
  std::vector<RestoredCell> cells = *restored;
  std::sort(cells.begin(), cells.end(),
            [](const RestoredCell& x, const RestoredCell& y) { return x.cell.hash < y.cell.hash; });
  EXPECT_EQ(cells[0].cell.hash, 21u);
  EXPECT_EQ(cells[0].cell.limit_identity, current.cell.limit_identity);
  EXPECT_EQ(cells[0].cell.window_start, current.cell.window_start);
  EXPECT_EQ(cells[0].cell.window_end, current.cell.window_end);
  EXPECT_EQ(cells[0].cell.limit_name, "daily-spend");
  EXPECT_EQ(cells[0].cell.label, "team-21");
  EXPECT_EQ(cells[0].kind, CellKind::kGlobalBudget);
  EXPECT_EQ(cells[0].host_used, 250);
  EXPECT_EQ(cells[0].host_exposed, 400u);
  EXPECT_EQ(cells[1].cell.hash, 22u);
  EXPECT_EQ(cells[1].kind, CellKind::kLocalBudget);
  EXPECT_EQ(cells[1].host_used, 70);
  EXPECT_EQ(cells[1].host_exposed, 0u);

  Result<std::vector<RestoredCell>> later = store_->restore("host-a", current.cell.window_end);
  ASSERT_TRUE(later.ok()) << later.status().message();
  EXPECT_TRUE(later->empty());
  Result<std::vector<RestoredCell>> stranger = store_->restore("host-z", now);
  ASSERT_TRUE(stranger.ok()) << stranger.status().message();
  EXPECT_TRUE(stranger->empty());
}

TEST_F(RedisStoreTest, AmountsOfTwoToThe53OrMoreAreRefused) {
  const std::uint64_t most = (std::uint64_t{1} << 53) - 1;
  const std::uint64_t too_big = most + 1;
  Result<std::vector<CellState>> states =
      store_->push(Push{.host = "host-a",
                        .session = 1,
                        .seq = 1,
                        .lease_ms = kLongLease,
                        .cells = {global_budget(5, 0, too_big, 1, 0)}});
  ASSERT_FALSE(states.ok());
  EXPECT_EQ(states.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(states.status().message().find("2^53"), std::string::npos);
  EXPECT_EQ(states.status().message().find('\n'), std::string::npos);
  // At the bound exactly, counting still works.
  CellState exact = push_one("host-a", 1, 1, local_budget(5, static_cast<std::int64_t>(most)));
  EXPECT_EQ(exact.host_used, static_cast<std::int64_t>(most));
  Result<std::vector<CellState>> beyond = store_->push(
      Push{.host = "host-a", .session = 1, .seq = 2, .lease_ms = 1, .cells = {local_budget(5, 1)}});
  ASSERT_FALSE(beyond.ok());
  EXPECT_NE(beyond.status().message().find("2^53"), std::string::npos);
}

TEST_F(RedisStoreTest, StoppedServerFailsThePushAndTheStoreReconnectsAfterRestart) {
  push_one("host-a", 1, 1, local_budget(1, 100));
  server_->stop();
  Result<std::vector<CellState>> down = store_->push(Push{
      .host = "host-a", .session = 1, .seq = 2, .lease_ms = 1, .cells = {local_budget(1, 50)}});
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), ErrorCode::kIo);
  EXPECT_NE(down.status().message().find("127.0.0.1:" + std::to_string(server_->port())),
            std::string::npos)
      << down.status().message();
  EXPECT_EQ(down.status().message().find('\n'), std::string::npos);
  Result<std::vector<CellState>> backing_off = store_->push(Push{
      .host = "host-a", .session = 1, .seq = 2, .lease_ms = 1, .cells = {local_budget(1, 50)}});
  ASSERT_FALSE(backing_off.ok());
  EXPECT_NE(backing_off.status().message().find("unreachable"), std::string::npos)
      << backing_off.status().message();
  EXPECT_NE(backing_off.status().message().find("retrying in"), std::string::npos);

  std::string error;
  ASSERT_TRUE(server_->restart(&error)) << error;
  Result<std::vector<CellState>> up = down;
  EXPECT_TRUE(testing::eventually(
      [&] {
        up = store_->push(Push{.host = "host-a",
                               .session = 1,
                               .seq = 2,
                               .lease_ms = 1,
                               .cells = {local_budget(1, 50)}});
        return up.ok();
      },
      5s))
      << up.status().message();
  ASSERT_TRUE(up.ok());
  EXPECT_EQ((*up)[0].host_used, 150);  // the first push survived the restart (append-only file)
}

TEST_F(RedisStoreTest, PausedServerFailsThePushWithinTheTimeoutAndARetryCountsOnce) {
  push_one("host-a", 1, 1, local_budget(1, 100));
  const Push retried{
      .host = "host-a", .session = 1, .seq = 2, .lease_ms = 1, .cells = {local_budget(1, 50)}};
  server_->pause();
  std::future<Result<std::vector<CellState>>> pending =
      std::async(std::launch::async, [&] { return store_->push(retried); });
  // Generous: the command timeout is 200 ms; only a hang would miss this.
  const bool returned = pending.wait_for(10s) == std::future_status::ready;
  server_->resume();
  ASSERT_TRUE(returned) << "push blocked on a paused server";
  Result<std::vector<CellState>> stalled = pending.get();
  ASSERT_FALSE(stalled.ok());
  EXPECT_NE(stalled.status().message().find("200 ms"), std::string::npos)
      << stalled.status().message();

  Result<std::vector<CellState>> again = stalled;
  EXPECT_TRUE(testing::eventually(
      [&] {
        again = store_->push(retried);
        return again.ok();
      },
      5s))
      << again.status().message();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[0].host_used, 150);  // applied once, whichever copy ran first
}

TEST(RedisStoreOpen, OpensWithoutAServerAndFailsEachPushWithOneLine) {
  // A loopback port nothing listens on: the helper's server, stopped.
  std::string error;
  std::unique_ptr<RedisServer> server = RedisServer::start(&error);
  ASSERT_NE(server, nullptr) << error;
  server->stop();
  Result<std::unique_ptr<Store>> store = open_redis_store(
      StoreSpec{.kind = "redis", .url = server->url(), .host_id = "host-a", .timeout_ms = 200});
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ((*store)->where(), server->url());
  Result<std::uint64_t> seed = (*store)->hash_seed(1);
  ASSERT_FALSE(seed.ok());
  EXPECT_NE(seed.status().message().find("unreachable"), std::string::npos);
  EXPECT_EQ(seed.status().message().find('\n'), std::string::npos);
}

TEST(RedisStoreOpen, BadUrlsGiveOneLineSayingWhatToWrite) {
  const std::vector<std::string> bad = {"",
                                        "http://127.0.0.1:6379/0",
                                        "rediss://127.0.0.1:6379/0",
                                        "redis://",
                                        "redis://:6379/0",
                                        "redis://127.0.0.1:abc/0",
                                        "redis://127.0.0.1:/0",
                                        "redis://127.0.0.1:0/0",
                                        "redis://127.0.0.1:70000/0",
                                        "redis://127.0.0.1:6379/zero",
                                        "redis://127.0.0.1:6379/0/1",
                                        "redis://user:secret@127.0.0.1:6379/0",
                                        "redis://127.0.0.1:6379/0?timeout=1",
                                        "redis://::1:6379/0",
                                        "redis://[::1:6379/0"};
  for (const std::string& url : bad) {
    Result<std::unique_ptr<Store>> store =
        open_redis_store(StoreSpec{.kind = "redis", .url = url, .host_id = "host-a"});
    ASSERT_FALSE(store.ok()) << url;
    EXPECT_EQ(store.status().code(), ErrorCode::kInvalidArgument) << url;
    const std::string& message = store.status().message();
    EXPECT_TRUE(message.starts_with("store.url '" + url + "': ")) << message;
    EXPECT_NE(message.find("write url: redis://host:6379/0"), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
  Result<std::unique_ptr<Store>> port =
      open_redis_store(StoreSpec{.kind = "redis", .url = "redis://x:abc", .host_id = "host-a"});
  EXPECT_EQ(port.status().message(),
            "store.url 'redis://x:abc': port is not a number; write url: redis://host:6379/0");
}

TEST(RedisStoreOpen, UrlWithoutPortOrDatabaseMeans6379AndDatabase0) {
  Result<std::unique_ptr<Store>> plain =
      open_redis_store(StoreSpec{.kind = "redis", .url = "redis://127.0.0.1", .host_id = "host-a"});
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_EQ((*plain)->where(), "redis://127.0.0.1:6379/0");
  Result<std::unique_ptr<Store>> v6 = open_redis_store(
      StoreSpec{.kind = "redis", .url = "redis://[::1]:7000/3", .host_id = "host-a"});
  ASSERT_TRUE(v6.ok()) << v6.status().message();
  EXPECT_EQ((*v6)->where(), "redis://[::1]:7000/3");
}

TEST(RedisStoreOpen, EmptyHostIdOrZeroTimeoutIsRefused) {
  Result<std::unique_ptr<Store>> no_host = open_redis_store(
      StoreSpec{.kind = "redis", .url = "redis://127.0.0.1:6379/0", .host_id = ""});
  ASSERT_FALSE(no_host.ok());
  EXPECT_TRUE(no_host.status().message().starts_with("store.host_id is empty"))
      << no_host.status().message();
  Result<std::unique_ptr<Store>> no_time = open_redis_store(StoreSpec{
      .kind = "redis", .url = "redis://127.0.0.1:6379/0", .host_id = "a", .timeout_ms = 0});
  ASSERT_FALSE(no_time.ok());
  EXPECT_TRUE(no_time.status().message().starts_with("store.timeout_ms 0"))
      << no_time.status().message();
}

}  // namespace
}  // namespace sluice
