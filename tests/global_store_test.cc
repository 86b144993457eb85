// Global limits across hosts: three sluiced processes, each with its own
// segment and host id, share one redis-server (started here on a free
// loopback port); client processes on every host spend one global USD
// budget as fast as they can. What is admitted never passes the budget, to
// the nano-dollar; a killed host's unexposed allotment returns to the
// others; a store that goes away and comes back loses and doubles nothing.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "child_process.h"
#include "clock.h"
#include "redis_host.h"
#include "redis_server.h"
#include "redis_store.h"
#include "segment.h"
#include "sidecar.h"
#include "sluice/inspect.h"
#include "sluice/quota.h"
#include "sluice_fixture.h"
#include "test_support.h"

namespace sluice {
namespace {

using testing::eventually;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

// One call: 1000 input tokens of model m at $1 per million = $0.001.
constexpr std::uint64_t kCallNusd = 1'000'000;
constexpr std::uint64_t kCallTokens = 1000;
// Enough calls for many sync intervals, few enough to finish under a sanitizer.
constexpr std::uint64_t kBudgetCalls = kSanitized ? 20'000 : 400'000;
constexpr std::uint64_t kBudgetNusd = kBudgetCalls * kCallNusd;

std::string usd_text(std::uint64_t nusd) {
  char out[64];
  std::snprintf(out, sizeof out, "%llu.%09llu",
                static_cast<unsigned long long>(nusd / 1'000'000'000),
                static_cast<unsigned long long>(nusd % 1'000'000'000));
  return out;
}

// A host: a sluiced process on its own segment with its own host id.
using Host = testing::RedisHost;

class GlobalStore : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    redis_ = testing::RedisServer::start(&error);
    ASSERT_NE(redis_, nullptr) << error;
  }
  void TearDown() override {
    for (Host& h : hosts_) testing::remove_redis_host(h);
  }

  // `limits` is the policy's limits block; every host gets the same one.
  Host& add_host(const std::string& host_id, const std::string& limits,
                 std::uint64_t lease_ms = 1000) {
    hosts_.push_back(
        testing::make_redis_host(redis_->url(), host_id, limits, lease_ms,
                                 "input_usd_per_mtok: 1.00, output_usd_per_mtok: 1.00"));
    return hosts_.back();
  }

  void start(Host& h) {
    testing::start_sluiced(h);
    ASSERT_GT(h.pid, 0);
    ASSERT_TRUE(eventually([&] {
      Result<SegmentStatus> s = read_status(h.segment);
      return s.ok() && s->sidecar_alive && s->store_health == "up";
    })) << testing::read_text(h.log);
  }

  // SIGTERM: sluiced makes its last push and exits.
  void stop(Host& h) {
    ::kill(h.pid, SIGTERM);
    int status = 0;
    ::waitpid(h.pid, &status, 0);
    h.pid = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << testing::read_text(h.log);
  }

  // The usage every host has pushed for `team`'s cell, summed, and each
  // host's exposure, read back through a store of the test's own.
  struct StoreView {
    std::int64_t used = 0;
    std::uint64_t exposed = 0;
  };
  StoreView store_view(const std::string& host_id, const std::string& limit_name) {
    StoreSpec spec;
    spec.kind = "redis";
    spec.url = redis_->url();
    spec.host_id = "reader";
    Result<std::unique_ptr<Store>> store = open_redis_store(spec);
    EXPECT_TRUE(store.ok()) << store.status().message();
    StoreView v;
    if (!store.ok()) return v;
    Result<std::vector<RestoredCell>> cells =
        (*store)->restore(host_id, static_cast<std::uint64_t>(::time(nullptr)));
    EXPECT_TRUE(cells.ok()) << cells.status().message();
    if (!cells.ok()) return v;
    for (const RestoredCell& c : cells.value()) {
      if (c.cell.limit_name != limit_name) continue;
      v.used += c.host_used;
      v.exposed += c.host_exposed;
    }
    return v;
  }

  std::unique_ptr<testing::RedisServer> redis_;
  std::vector<Host> hosts_;
};

// What a spending process reports: cost committed and calls admitted.
struct Spent {
  std::uint64_t nusd = 0;
  std::uint64_t calls = 0;
};

// Forks a process that attaches to `segment` and reserves and commits calls
// for team `team` as fast as it can, until every call has been refused for
// `quiet_ms` in a row (the budget is gone), then reports on a pipe.
using Spender = testing::Reporter;

Spender spend(const std::string& segment, const std::string& team, std::uint64_t quiet_ms) {
  return testing::fork_reporter<Spent>([&](Spent* report) {
    Spent& spent = *report;
    Result<Client> c = Client::attach(segment);
    if (c.ok()) {
      const Attribute attrs[] = {{"team", team}, {"model", "m"}};
      CallRequest req;
      req.attributes = attrs;
      req.input_tokens = kCallTokens;
      std::uint64_t refused_since = 0;
      for (;;) {
        const Decision d = c->reserve_raw(req);
        if (d.admitted) {
          const Settlement s = c->commit(d.reservation_id, kCallTokens, 0);
          spent.nusd += s.cost_nusd;
          ++spent.calls;
          refused_since = 0;
          continue;
        }
        const std::uint64_t now = monotonic_ns();
        if (refused_since == 0) refused_since = now;
        if (now - refused_since > quiet_ms * 1'000'000ull) break;
        ::usleep(200);
      }
    }
    return c.ok() ? 0 : 3;
  });
}

Spent collect(const Spender& s) {
  int status = 0;
  const Spent out = testing::collect_report<Spent>(s, &status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  return out;
}

std::string budget_limit(const std::string& on_store_down = "fail_closed") {
  return "limits:\n  - name: shared-usd\n    match: { team: pricing }\n    usd_per_day: " +
         usd_text(kBudgetNusd) + "\n    scope: global\n    on_store_down: " + on_store_down + "\n";
}

TEST_F(GlobalStore, ThreeHostsNeverAdmitMoreThanTheBudgetAndUseNearlyAllOfIt) {
  for (const char* id : {"host-a", "host-b", "host-c"}) add_host(id, budget_limit());
  for (Host& h : hosts_) start(h);
  std::vector<Spender> spenders;
  for (Host& h : hosts_) {
    for (int i = 0; i < 2; ++i) spenders.push_back(spend(h.segment, "pricing", 1000));
  }
  Spent total;
  for (const Spender& s : spenders) {
    const Spent one = collect(s);
    total.nusd += one.nusd;
    total.calls += one.calls;
  }
  for (Host& h : hosts_) stop(h);

  EXPECT_LE(total.nusd, kBudgetNusd)
      << "admitted " << usd_text(total.nusd) << " of a " << usd_text(kBudgetNusd) << " budget";
  EXPECT_GE(total.nusd, kBudgetNusd / 100 * 95)
      << "only " << usd_text(total.nusd) << " of " << usd_text(kBudgetNusd) << " used";
  EXPECT_EQ(total.nusd, total.calls * kCallNusd);
  std::int64_t pushed = 0;
  for (const char* id : {"host-a", "host-b", "host-c"}) pushed += store_view(id, "shared-usd").used;
  EXPECT_EQ(pushed, static_cast<std::int64_t>(total.nusd))
      << "the store's usage is not the commits'";
  std::printf("[ figures ] three hosts used %.2f%% of the budget (%s of %s USD), overshoot 0\n",
              100.0 * static_cast<double>(total.nusd) / static_cast<double>(kBudgetNusd),
              usd_text(total.nusd).c_str(), usd_text(kBudgetNusd).c_str());
}

TEST_F(GlobalStore, AKilledHostsUnexposedAllotmentReturnsToTheOthersAfterItsLease) {
  for (const char* id : {"host-a", "host-b", "host-c"}) add_host(id, budget_limit(), 500);
  for (Host& h : hosts_) start(h);
  // Host c spends first, alone, so it holds a large allotment; then its
  // sidecar dies and its client stops.
  Spender early = spend(hosts_[2].segment, "pricing", 300);
  ASSERT_TRUE(eventually([&] {
    Result<SegmentStatus> s = read_status(hosts_[2].segment);
    return s.ok() && !s->global_limits.empty() && s->global_limits[0].granted > kBudgetNusd / 10;
  }));
  ::kill(hosts_[2].pid, SIGKILL);
  ::waitpid(hosts_[2].pid, nullptr, 0);
  hosts_[2].pid = -1;
  const Spent c = collect(early);

  std::vector<Spender> spenders;
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < 2; ++i) spenders.push_back(spend(hosts_[h].segment, "pricing", 1500));
  }
  Spent others;
  for (const Spender& s : spenders) others.nusd += collect(s).nusd;
  for (int h = 0; h < 2; ++h) stop(hosts_[h]);

  // c's clients could spend at most what c exposed; what c held beyond that
  // went back to the pool once its lease ran out, and a and b spent it.
  const StoreView cv = store_view("host-c", "shared-usd");
  EXPECT_LE(c.nusd, cv.exposed);
  EXPECT_LE(c.nusd + others.nusd, kBudgetNusd);
  const std::uint64_t stranded = cv.exposed - c.nusd;  // exposed to c's clients, never spent
  std::printf("[ figures ] killed host spent %s of %s exposed; the others spent %s of %s\n",
              usd_text(c.nusd).c_str(), usd_text(cv.exposed).c_str(), usd_text(others.nusd).c_str(),
              usd_text(kBudgetNusd).c_str());
  EXPECT_GE(c.nusd + others.nusd + stranded, kBudgetNusd / 100 * 95)
      << "c spent " << usd_text(c.nusd) << ", exposed " << usd_text(cv.exposed) << ", others "
      << usd_text(others.nusd);
}

TEST_F(GlobalStore, StoreDownThenBackFollowsOnStoreDownAndLosesNoUsage) {
  const std::string limits =
      "limits:\n"
      "  - name: closed-usd\n    match: { team: closed }\n    usd_per_day: 1000\n"
      "    scope: global\n    on_store_down: fail_closed\n"
      "  - name: share-usd\n    match: { team: share }\n    usd_per_day: 1000\n"
      "    scope: global\n    on_store_down: local_share\n"
      "  - name: open-usd\n    match: { team: open }\n    usd_per_day: 1000\n"
      "    scope: global\n    on_store_down: fail_open\n";
  Host& h = add_host("host-a", limits);
  start(h);
  Result<Client> c = Client::attach(h.segment);
  ASSERT_TRUE(c.ok()) << c.status().message();
  std::array<std::uint64_t, 3> committed{};
  const std::array<std::string, 3> teams{"closed", "share", "open"};
  auto call = [&](int t) {
    const Attribute attrs[] = {{"team", teams[t]}, {"model", "m"}};
    CallRequest req;
    req.attributes = attrs;
    req.input_tokens = kCallTokens;
    const Decision d = c->reserve_raw(req);
    if (d.admitted) committed[t] += c->commit(d.reservation_id, kCallTokens / 2, 0).cost_nusd;
    return d;
  };
  for (int t = 0; t < 3; ++t) {
    ASSERT_TRUE(eventually([&] { return call(t).admitted; })) << teams[t];
  }
  for (int i = 0; i < 50; ++i) {
    for (int t = 0; t < 3; ++t) call(t);
  }

  redis_->stop();
  ASSERT_TRUE(eventually([&] { return call(0).reason == Reason::kStoreUnavailable; }))
      << "fail_closed still admits with the store down";
  // local_share spends what is exposed and then stops at its budget cell;
  // fail_open goes on past it.
  Result<std::vector<KeyRow>> keys = list_keys(h.segment);
  ASSERT_TRUE(keys.ok());
  int share_admitted = 0, open_admitted = 0;
  Reason share_last = Reason::kNone;
  for (int i = 0; i < 20'000; ++i) {
    const Decision s = call(1);
    share_admitted += s.admitted;
    if (!s.admitted) share_last = s.reason;
    open_admitted += call(2).admitted;
  }
  EXPECT_EQ(share_last, Reason::kBudgetExhausted) << "local_share must stop at its exposure";
  EXPECT_LT(share_admitted, 20'000);
  EXPECT_EQ(open_admitted, 20'000) << "fail_open must admit while the store is down";
  Result<SegmentStatus> down = read_status(h.segment);
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(down->store_health, "down");
  EXPECT_FALSE(down->store_last_error.empty());

  std::string error;
  ASSERT_TRUE(redis_->restart(&error)) << error;
  ASSERT_TRUE(eventually([&] { return call(0).admitted; }))
      << "fail_closed after the store is back";
  for (int i = 0; i < 50; ++i) {
    for (int t = 0; t < 3; ++t) call(t);
  }
  c = Result<Client>(Status(ErrorCode::kNotFound, "detached"));
  stop(h);
  const std::array<std::string, 3> names{"closed-usd", "share-usd", "open-usd"};
  for (int t = 0; t < 3; ++t) {
    EXPECT_EQ(store_view("host-a", names[t]).used, static_cast<std::int64_t>(committed[t]))
        << names[t];
  }
}

}  // namespace
}  // namespace sluice
