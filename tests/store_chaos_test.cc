// redis-server SIGKILLed and restarted under load: two sluiced hosts share
// one redis-server (append-only file, fsynced before every answer) while
// client processes on both spend local and global budgets, in USD and
// tokens, without pause. The server is killed and restarted several times at
// random moments, so kills land mid-pipeline, between a script and its
// fsync, and between the fsync and the answer. At the end the usage Redis
// holds for every host, limit and key is exactly what that host's clients
// committed, plus the estimates of the reservations they abandoned:
// nothing lost, nothing counted twice.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "child_process.h"
#include "clock.h"
#include "redis_host.h"
#include "redis_server.h"
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
constexpr int kKills = 5;
#else
constexpr int kKills = 8;
#endif
constexpr int kHosts = 2;
constexpr int kSpendersPerHost = 2;
constexpr int kTeams = 2;
const char* const kTeamNames[kTeams] = {"t0", "t1"};

// Every call matches all four: one key per team in each.
constexpr const char* kLimits = R"(limits:
  - name: local-usd
    match: { team: "*" }
    usd_per_day: 1000000
  - name: local-tokens
    match: { team: "*" }
    tokens_per_day: 1000000000000
  - name: global-usd
    match: { team: "*" }
    usd_per_day: 1000000
    scope: global
    on_store_down: fail_open
  - name: global-tokens
    match: { team: "*" }
    tokens_per_day: 1000000000000
    scope: global
    on_store_down: local_share
)";
const char* const kUsdLimits[] = {"local-usd", "global-usd"};
const char* const kTokenLimits[] = {"local-tokens", "global-tokens"};

// What one spending process charged, per team: commits at their cost, and
// the one reservation it leaves open at exit, which sluiced settles at its
// estimate.
struct Charged {
  std::uint64_t nusd[kTeams] = {};
  std::uint64_t tokens[kTeams] = {};
  std::uint64_t calls = 0;      // admitted
  std::uint64_t cancelled = 0;  // of which cancelled (charged nothing)
  std::uint64_t refused = 0;
  std::uint64_t abandoned_nusd = 0;  // included in nusd / tokens
  std::uint64_t abandoned_tokens = 0;
  int abandoned_team = -1;
};

using Spender = testing::Reporter;

// Spends until *stop, then reserves once more and exits without settling.
Spender spend(const std::string& segment, const std::atomic<int>* stop, std::uint32_t seed) {
  return testing::fork_reporter<Charged>([&](Charged* report) {
    Charged& out = *report;
    Result<Client> c = Client::attach(segment);
    if (c.ok()) {
      std::mt19937 rng(seed);
      auto call = [&](int team, std::uint64_t input, std::uint64_t max_output) {
        const Attribute attrs[] = {{"team", kTeamNames[team]}, {"model", "m"}};
        CallRequest req;
        req.attributes = attrs;
        req.input_tokens = input;
        req.max_output_tokens = max_output;
        return c->reserve_raw(req);
      };
      for (std::uint64_t n = 0; stop->load(std::memory_order_relaxed) == 0; ++n) {
        const int team = static_cast<int>(rng() % kTeams);
        const std::uint64_t input = 100 + rng() % 900, max_output = 500;
        const Decision d = call(team, input, max_output);
        if (!d.admitted) {
          ++out.refused;
          ::usleep(200);
          continue;
        }
        ++out.calls;
        if (rng() % 10 == 0) {
          (void)c->cancel(d.reservation_id);
          ++out.cancelled;
        } else {
          const std::uint64_t output = rng() % (max_output + 1);
          out.nusd[team] += c->commit(d.reservation_id, input, output).cost_nusd;
          out.tokens[team] += input + output;
        }
        if (n % 64 == 63) ::usleep(300);  // leave the two cores some room for redis and sluiced
      }
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (std::chrono::steady_clock::now() < deadline) {
        const int team = 0;
        const Decision d = call(team, 700, 300);
        if (!d.admitted) {
          ::usleep(1000);
          continue;
        }
        out.abandoned_team = team;
        out.abandoned_nusd = d.estimated_cost_nusd;
        out.abandoned_tokens = 700 + 300;
        out.nusd[team] += out.abandoned_nusd;
        out.tokens[team] += out.abandoned_tokens;
        break;
      }
    }
    return c.ok() && out.abandoned_team >= 0 ? 0 : 3;  // the open reservation stays open
  });
}

Charged collect(const Spender& s) {
  int status = 0;
  const Charged out = testing::collect_report<Charged>(s, &status);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "spender exited " << status;
  return out;
}

using Host = testing::RedisHost;

class StoreChaos : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    redis_ = testing::RedisServer::start(&error, testing::RedisServer::Persistence::kAppendOnly);
    ASSERT_NE(redis_, nullptr) << error;
    void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(page, MAP_FAILED);
    stop_ = new (page) std::atomic<int>(0);
  }
  void TearDown() override {
    if (stop_ != nullptr) {
      stop_->store(1);
      for (const Spender& s : spenders_) {
        if (s.pid > 0) ::kill(s.pid, SIGKILL);
      }
      ::munmap(stop_, 4096);
    }
    for (Host& h : hosts_) {
      testing::stop_child(h.pid);
      h.pid = -1;
      testing::remove_redis_host(h);
    }
  }

  Host& add_host(const std::string& id) {
    hosts_.push_back(testing::make_redis_host(
        redis_->url(), id, kLimits, 1000, "input_usd_per_mtok: 1.00, output_usd_per_mtok: 2.00"));
    return hosts_.back();
  }

  void start(Host& h) {
    testing::start_sluiced(h);
    ASSERT_GT(h.pid, 0);
    ASSERT_TRUE(eventually([&] { return synced(h); })) << testing::read_text(h.log);
  }

  // The store is up and no failed push waits to be sent again.
  static bool synced(const Host& h) {
    Result<SegmentStatus> s = read_status(h.segment);
    return s.ok() && s->sidecar_alive && s->store_health == "up" && !s->store_retry_pending;
  }

  // Per (limit, label, host): the usage Redis holds, over every window.
  using Usage = std::map<std::tuple<std::string, std::string, std::string>, std::int64_t>;
  Usage read_redis() {
    Usage usage;
    std::string error;
    redisContext* c = redis_->connect(&error);
    EXPECT_NE(c, nullptr) << error;
    if (c == nullptr) return usage;
    auto* keys = static_cast<redisReply*>(redisCommand(c, "KEYS sluice:{*}"));
    EXPECT_TRUE(keys != nullptr && keys->type == REDIS_REPLY_ARRAY);
    for (std::size_t i = 0; keys != nullptr && i < keys->elements; ++i) {
      auto* cell = static_cast<redisReply*>(redisCommand(c, "HGETALL %s", keys->element[i]->str));
      if (cell == nullptr || cell->type != REDIS_REPLY_ARRAY) continue;
      std::map<std::string, std::string> f;
      for (std::size_t j = 0; j + 1 < cell->elements; j += 2) {
        f[cell->element[j]->str] = cell->element[j + 1]->str;
      }
      for (const Host& h : hosts_) {
        const auto used = f.find("u:" + h.id);
        if (used != f.end()) usage[{f["limit"], f["label"], h.id}] += std::stoll(used->second);
      }
      freeReplyObject(cell);
    }
    if (keys != nullptr) freeReplyObject(keys);
    redisFree(c);
    return usage;
  }

  std::unique_ptr<testing::RedisServer> redis_;
  std::vector<Host> hosts_;
  std::atomic<int>* stop_ = nullptr;
  std::vector<Spender> spenders_;
};

TEST_F(StoreChaos, RedisKilledAndRestartedUnderLoadLosesAndDoublesNoUsage) {
  for (const char* id : {"host-a", "host-b"}) add_host(id);
  for (Host& h : hosts_) start(h);
  const std::uint32_t seed = std::random_device{}();
  std::mt19937 rng(seed);
  std::vector<int> host_of;
  for (int h = 0; h < kHosts; ++h) {
    for (int i = 0; i < kSpendersPerHost; ++i) {
      spenders_.push_back(spend(hosts_[h].segment, stop_, static_cast<std::uint32_t>(rng())));
      ASSERT_GT(spenders_.back().pid, 0);
      host_of.push_back(h);
    }
  }

  int kills = 0;
  std::uint64_t down_ms = 0;
  for (int k = 0; k < kKills; ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 501));
    redis_->kill();
    ++kills;
    const auto at = std::chrono::steady_clock::now();
    std::string error;
    ASSERT_TRUE(redis_->restart(&error)) << error;
    down_ms += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - at)
            .count());
  }
  for (const Host& h : hosts_) {
    ASSERT_TRUE(eventually([&] { return synced(h); }, std::chrono::seconds(20)))
        << h.id << ": " << testing::read_text(h.log);
  }

  // Clients stop; each leaves one reservation open, which its sidecar settles.
  stop_->store(1);
  std::vector<Charged> charged;
  for (const Spender& s : spenders_) charged.push_back(collect(s));
  spenders_.clear();
  struct Figures {
    std::uint64_t syncs = 0, failed = 0;
  };
  std::vector<Figures> figures(kHosts);
  for (int h = 0; h < kHosts; ++h) {
    const Host& host = hosts_[h];
    ASSERT_TRUE(eventually([&] {
      Result<SegmentStatus> s = read_status(host.segment);
      return s.ok() && s->reservations_in_flight == 0 &&
             s->abandoned_total == static_cast<std::uint64_t>(kSpendersPerHost);
    })) << host.id
        << " did not settle its abandoned reservations";
    Result<SegmentStatus> before = read_status(host.segment);
    ASSERT_TRUE(before.ok());
    ASSERT_TRUE(eventually([&] {
      Result<SegmentStatus> s = read_status(host.segment);
      return s.ok() && s->store_syncs >= before->store_syncs + 2 && synced(host);
    })) << host.id
        << " did not sync after its clients stopped";
    Result<SegmentStatus> after = read_status(host.segment);
    ASSERT_TRUE(after.ok());
    figures[h] = {after->store_syncs, after->store_failures};
  }
  for (Host& h : hosts_) {
    ::kill(h.pid, SIGTERM);  // the last push
    int status = 0;
    ::waitpid(h.pid, &status, 0);
    h.pid = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << testing::read_text(h.log);
  }

  // What each host's clients charged, per team, against what Redis holds,
  // per limit: USD limits in nano-dollars, token limits in tokens.
  const Usage held = read_redis();
  std::uint64_t lost = 0, doubled = 0, calls = 0, refused = 0, cancelled = 0;
  std::uint64_t total_nusd = 0, total_tokens = 0, abandoned_nusd = 0;
  std::map<std::pair<int, int>, std::pair<std::uint64_t, std::uint64_t>> want;  // nusd, tokens
  for (std::size_t s = 0; s < charged.size(); ++s) {
    const Charged& c = charged[s];
    calls += c.calls;
    refused += c.refused;
    cancelled += c.cancelled;
    abandoned_nusd += c.abandoned_nusd;
    EXPECT_GE(c.abandoned_team, 0) << "spender " << s << " left no reservation open";
    for (int t = 0; t < kTeams; ++t) {
      want[{host_of[s], t}].first += c.nusd[t];
      want[{host_of[s], t}].second += c.tokens[t];
      total_nusd += c.nusd[t];
      total_tokens += c.tokens[t];
    }
  }
  std::uint64_t held_nusd = 0, held_tokens = 0;
  auto compare = [&](const char* limit, int h, int t, std::uint64_t expected) {
    const auto at = held.find({limit, kTeamNames[t], hosts_[h].id});
    const std::int64_t got = at == held.end() ? 0 : at->second;
    const auto exp = static_cast<std::int64_t>(expected);
    EXPECT_EQ(got, exp) << limit << " team " << kTeamNames[t] << " on " << hosts_[h].id;
    if (got < exp) lost += static_cast<std::uint64_t>(exp - got);
    if (got > exp) doubled += static_cast<std::uint64_t>(got - exp);
    return static_cast<std::uint64_t>(got);
  };
  for (int h = 0; h < kHosts; ++h) {
    for (int t = 0; t < kTeams; ++t) {
      for (const char* l : kUsdLimits) held_nusd += compare(l, h, t, want[{h, t}].first);
      for (const char* l : kTokenLimits) held_tokens += compare(l, h, t, want[{h, t}].second);
    }
  }
  EXPECT_GT(calls, 0u);
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(doubled, 0u);

  std::printf("[ figures ] seed %u: %d SIGKILLs of redis-server (restarts took %" PRIu64
              " ms in all); %" PRIu64 " calls admitted (%" PRIu64 " cancelled), %" PRIu64
              " refused, %d abandoned\n",
              seed, kills, down_ms, calls, cancelled, refused, kHosts * kSpendersPerHost);
  for (int h = 0; h < kHosts; ++h) {
    std::printf("[ figures ] %s: %" PRIu64 " syncs, %" PRIu64
                " failed and retried with the same push\n",
                hosts_[h].id.c_str(), figures[h].syncs, figures[h].failed);
  }
  std::printf("[ figures ] charged %" PRIu64 " nano-USD (%" PRIu64 " abandoned) and %" PRIu64
              " tokens per limit; Redis holds %" PRIu64 " nano-USD and %" PRIu64
              " tokens over 2 limits each; lost %" PRIu64 ", counted twice %" PRIu64 "\n",
              total_nusd, abandoned_nusd, total_tokens, held_nusd, held_tokens, lost, doubled);
  EXPECT_EQ(held_nusd, 2 * total_nusd);
  EXPECT_EQ(held_tokens, 2 * total_tokens);
}

}  // namespace
}  // namespace sluice
