// The chaos suite: real chaos_worker processes spend through a real sluiced
// and are killed at random, at the crash points of fault_point.h and at
// random moments; in some rounds sluiced itself is killed with SIGKILL and
// restarted. After every round, once sluiced has settled and drained:
//  - every reservation is committed, cancelled or settled as abandoned
//    exactly once, and every settlement has its reserve record;
//  - every budget cell's counter equals what the settlements on disk
//    charged (exactly, when processes die only at crash points; never less,
//    and at most one reservation more per kill, when SIGKILL lands between
//    a cell's CAS and its slot's mark: the protocol errs towards charging);
//  - the audit ring is empty again (never stuck), no record was dropped.
// SLUICE_CHAOS_ROUNDS scales the rounds of each test (tools/chaos --long).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "fault_point.h"
#include "segment.h"
#include "settled_ledger.h"
#include "sluice/inspect.h"
#include "sluice_fixture.h"
#include "sqlite_store.h"
#include "test_support.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using chaos::Charged;

constexpr const char* kTeams[] = {"a", "b"};

int rounds_scale() {
  const char* env = std::getenv("SLUICE_CHAOS_ROUNDS");
  const int n = env != nullptr ? std::atoi(env) : 1;
  return n > 0 ? n : 1;
}

// What a round did, for the figures each test prints.
struct Figures {
  int rounds = 0, workers = 0, crash_point_deaths = 0, random_kills = 0, sidecar_kills = 0;
  std::uint64_t reservations = 0, over_charged_cells = 0, records_lost = 0;
};

class ChaosTest : public ::testing::Test {
 protected:
  void SetUp() override {
    segment_ = testing::unique_segment("chaos");
    audit_dir_ = testing::test_audit_dir(segment_);
    policy_ = testing::write_policy(segment_,
                                    "models:\n"
                                    "  chaos-model: { input_usd_per_mtok: 2.50, "
                                    "output_usd_per_mtok: 10.00 }\n"
                                    "limits:\n"
                                    "  - { name: team-usd, match: { team: \"*\" }, "
                                    "usd_per_day: 1000000 }\n"
                                    "  - { name: team-tokens, match: { team: \"*\" }, "
                                    "tokens_per_day: 100000000000 }\n"
                                    "  - { name: team-input, match: { team: \"*\" }, "
                                    "input_tokens_per_day: 100000000000 }\n"
                                    "  - { name: team-output, match: { team: \"*\" }, "
                                    "output_tokens_per_day: 100000000000 }\n"
                                    "  - { name: team-rate, match: { team: \"*\" }, "
                                    "requests_per_second: 100000, burst_requests: 100000 }\n"
                                    "  - { name: team-token-rate, match: { team: \"*\" }, "
                                    "tokens_per_second: 1000000000, burst_tokens: 1000000000 }\n"
                                    "store:\n  path: " +
                                        testing::test_store_path(segment_) +
                                        "\n  host_id: chaos\n  sync_interval_ms: 50\n",
                                    "  max_keys: 1024\n  max_reservations: 512\n"
                                    "  audit_ring_bytes: 16MiB\n");
    log_ = "/tmp/" + segment_ + ".log";
    start_sidecar();
  }

  void TearDown() override {
    for (auto& [pid, team] : team_of_pid_) ::kill(static_cast<pid_t>(pid), SIGKILL);
    reap_workers();
    if (sidecar_ > 0) testing::stop_child(sidecar_);
    (void)SegmentMap::remove(segment_);
    std::remove(sidecar_lock_path(segment_).c_str());
    std::remove(policy_.c_str());
    std::remove(log_.c_str());
    std::filesystem::remove_all(audit_dir_);
    testing::remove_test_store(testing::test_store_path(segment_));
  }

  void start_sidecar() {
    sidecar_ = testing::spawn_child({testing::build_root() + "/sidecar/sluiced", "--foreground",
                                     "--config", policy_, "--tick-ms", "20"},
                                    log_ + ".tmp", log_ + ".tmp");
    ASSERT_GT(sidecar_, 0);
    ASSERT_TRUE(testing::eventually([&] {
      Result<SegmentStatus> s = read_status(segment_);
      return s.ok() && s->sidecar_alive && s->policy_generation != 0 && !s->audit_dir.empty();
    })) << testing::read_text(log_ + ".tmp");
  }

  void kill_sidecar() {
    ::kill(sidecar_, SIGKILL);
    ::waitpid(sidecar_, nullptr, 0);
    sidecar_ = -1;
  }

  // Starts a worker for team kTeams[n % 2]; `die_at` arms a crash point.
  pid_t spawn_worker(int n, std::uint64_t calls, const std::string& die_at = "",
                     std::uint64_t after = 1) {
    std::vector<std::string> args = {testing::build_root() + "/tests/chaos/chaos_worker",
                                     "--segment",
                                     segment_,
                                     "--team",
                                     kTeams[n % 2],
                                     "--seed",
                                     std::to_string(rng_()),
                                     "--calls",
                                     std::to_string(calls),
                                     "--pause-us",
                                     calls == 0 ? "200" : "0"};
    if (!die_at.empty()) {
      args.insert(args.end(), {"--die-at", die_at, "--after", std::to_string(after)});
    }
    const pid_t pid = testing::spawn_child(args, "/dev/null", log_ + ".workers");
    team_of_pid_[static_cast<std::uint32_t>(pid)] = kTeams[n % 2];
    live_.push_back(pid);
    ++figures_.workers;
    return pid;
  }

  // Waits for every worker; counts those a crash point or a kill ended.
  void reap_workers() {
    for (pid_t pid : live_) {
      int status = 0;
      if (::waitpid(pid, &status, 0) != pid) continue;
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ++killed_;
      if (WIFEXITED(status)) {
        EXPECT_EQ(WEXITSTATUS(status), 0) << testing::read_text(log_ + ".workers");
      }
    }
    live_.clear();
  }

  // Every reservation settled and every record drained: the sidecar is done.
  void wait_settled() {
    SegmentStatus last;
    const bool done = testing::eventually(
        [&] {
          Result<SegmentStatus> s = read_status(segment_);
          if (!s.ok()) return false;
          last = s.value();
          Result<SegmentMap> m = SegmentMap::attach(segment_, SegmentMap::Access::kReadOnly);
          if (!m.ok()) return false;
          const shm::AuditRingControl& c = m->audit_control();
          return s->reservations_in_flight == 0 &&
                 shm::load_acquire(c.head) == shm::load_acquire(c.tail);
        },
        20s);
    ASSERT_TRUE(done) << "not settled: " << last.reservations_in_flight
                      << " reservations in flight, " << last.audit_ring_high_water_bytes
                      << " ring high water; sluiced log:\n"
                      << testing::read_text(log_ + ".tmp");
    EXPECT_EQ(last.audit_dropped, 0u);
  }

  // What each budget's cells hold, summed over windows, for `team`.
  Charged counters(const std::string& team) {
    Result<SegmentMap> m = SegmentMap::attach(segment_, SegmentMap::Access::kReadOnly);
    EXPECT_TRUE(m.ok()) << m.status().message();
    if (!m.ok()) return {};
    const shm::Word gen = shm::load_acquire(m->header().policy_generation);
    const shm::CompiledPolicy& p = m->policy_slot(static_cast<int>(gen & 1));
    std::map<shm::Word, std::string> limit_of;
    for (shm::Word i = 0; i < shm::load_relaxed(p.limit_count); ++i) {
      char name[sizeof(p.limits[i].name)];
      limit_of[shm::load_relaxed(p.limits[i].identity)] =
          std::string(name, shm::load_text(p.limits[i].name, name));
    }
    Charged c;
    for (std::uint64_t i = 0; i < m->key_capacity(); ++i) {
      const shm::KeySlot& k = m->keys()[i];
      if (shm::load_relaxed(k.hash) == 0) continue;
      char text[sizeof(k.label)];
      if (std::string(text, shm::load_text(k.label, text)) != team) continue;
      const std::string& limit = limit_of[shm::load_relaxed(k.identity)];
      const shm::Word v = shm::load_relaxed(k.value);
      if (limit == "team-usd") c.nusd += v;
      if (limit == "team-tokens") c.tokens += v;
      if (limit == "team-input") c.input += v;
      if (limit == "team-output") c.output += v;
    }
    return c;
  }

  // The audit trail as it stands once the sidecar has written what it
  // settled. `exact`: wait until every reservation has its settlement and
  // the counters equal what the settlements charged (sets `why` if never).
  chaos::SettledLedger read_settled(bool exact, std::string* why) {
    chaos::SettledLedger ledger;
    const bool done = testing::eventually(
        [&] {
          Result<chaos::SettledLedger> l = chaos::read_ledger(audit_dir_, team_of_pid_);
          if (!l.ok()) {
            *why = l.status().message();
            return false;
          }
          ledger = std::move(l.value());
          why->clear();
          for (std::uint64_t id : ledger.admitted) {
            if (!ledger.settlements.count(id)) {
              *why = "reservation " + std::to_string(id) + " has no settlement record";
            }
          }
          for (const char* team : kTeams) {
            if (exact && !(counters(team) == ledger.charged[team])) {
              *why = std::string("team ") + team + "'s counters differ from its settlements";
            }
          }
          return why->empty();
        },
        10s);
    if (done) why->clear();
    return ledger;
  }

  // The round's checks. A process killed at a random moment may have been
  // between a cell's CAS and its slot's mark: the cell then keeps at most
  // one more reservation's charge, so counters may exceed the settlements by
  // that much per kill, never fall below them.
  void check_invariants(std::uint64_t random_kills, bool sidecar_killed) {
    wait_settled();
    std::string why;
    const chaos::SettledLedger ledger = read_settled(random_kills == 0 && !sidecar_killed, &why);
    for (const auto& [id, n] : ledger.settlements) {
      ASSERT_EQ(n, 1) << "reservation " << id << " settled " << n << " times";
    }
    EXPECT_EQ(ledger.bad_frames, 0u) << "an audit file did not recover";
    EXPECT_EQ(ledger.duplicate_reserves, 0u) << "reserve records written twice";
    figures_.reservations = ledger.admitted.size();
    if (sidecar_killed) {
      // Records leave the ring only once written: a killed sluiced loses none.
      figures_.records_lost = ledger.unreserved.size();
      for (std::uint64_t id : ledger.admitted)
        figures_.records_lost += !ledger.settlements.count(id);
      EXPECT_EQ(figures_.records_lost, 0u) << why;
    } else {
      EXPECT_TRUE(why.empty()) << why;
      EXPECT_TRUE(ledger.unreserved.empty())
          << ledger.unreserved.size() << " settlements without a reserve record, first "
          << ledger.unreserved.begin()->first << " (" << ledger.unreserved.begin()->second << ")";
    }
    // The most one reservation of the workers can charge a cell: input
    // 2250, output 4000 + 500 (four extends), at the model's prices.
    const std::uint64_t tokens = 2250 + 4500, nusd = (2250 * 2500 + 4500 * 10000) / 1000 + 1;
    for (const char* team : kTeams) {
      const Charged have = counters(team),
                    want = ledger.charged.count(team) ? ledger.charged.at(team) : Charged{};
      auto check = [&](const char* what, std::uint64_t h, std::uint64_t w, std::uint64_t most) {
        EXPECT_GE(h, w) << team << " " << what << ": a counter lost a settlement";
        EXPECT_LE(h, w + random_kills * most) << team << " " << what << ": over-charged";
        if (h != w) ++figures_.over_charged_cells;
      };
      check("input", have.input, want.input, tokens);
      check("output", have.output, want.output, tokens);
      check("tokens", have.tokens, want.tokens, tokens);
      check("usd", have.nusd, want.nusd, nusd);
    }
  }

  void print_figures(const char* test) {
    std::printf(
        "chaos %s: %d rounds, %d workers, %d crash-point deaths, %d random kills, %d sidecar "
        "kills, %llu reservations, %llu cells over-charged, %llu audit records lost, settled "
        "twice 0\n",
        test, figures_.rounds, figures_.workers, figures_.crash_point_deaths, figures_.random_kills,
        figures_.sidecar_kills, static_cast<unsigned long long>(figures_.reservations),
        static_cast<unsigned long long>(figures_.over_charged_cells),
        static_cast<unsigned long long>(figures_.records_lost));
  }

  std::string segment_, audit_dir_, policy_, log_;
  pid_t sidecar_ = -1;
  std::mt19937_64 rng_{std::random_device{}()};
  std::map<std::uint32_t, std::string> team_of_pid_;
  std::vector<pid_t> live_;
  int killed_ = 0;
  Figures figures_;
};

// Every crash point, in turn, in several workers at once: the counters
// match the audit trail exactly.
TEST_F(ChaosTest, ClientsKilledAtEveryCrashPointLeaveCountersEqualToSettlements) {
  const int points = static_cast<int>(fault::Point::kCount);
  const int rounds = 2 * points * rounds_scale();
  for (int round = 0; round < rounds; ++round) {
    killed_ = 0;
    for (int w = 0; w < 4; ++w) {
      const auto p = static_cast<fault::Point>((round + w * 3) % points);
      spawn_worker(w, 4000, fault::name(p), 1 + rng_() % 400);
    }
    spawn_worker(round, 2000);  // one that exits, leaving its reservations open
    reap_workers();
    figures_.crash_point_deaths += killed_;
    ++figures_.rounds;
    check_invariants(0, false);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(figures_.crash_point_deaths, rounds * 2);  // most armed points were reached
  print_figures("crash points");
}

// Workers killed with SIGKILL at random moments while others run.
TEST_F(ChaosTest, ClientsKilledAtRandomMomentsAreSettledOnceAndNeverUnderCharged) {
  const int rounds = 8 * rounds_scale();
  for (int round = 0; round < rounds; ++round) {
    for (int w = 0; w < 4; ++w) spawn_worker(w, 0);
    int kills = 0;
    for (int k = 0; k < 12; ++k) {
      std::this_thread::sleep_for(std::chrono::microseconds(500 + rng_() % 20000));
      const std::size_t victim = rng_() % live_.size();
      ::kill(live_[victim], SIGKILL);
      ++kills;
      spawn_worker(static_cast<int>(rng_() % 2), 0);
    }
    for (pid_t pid : live_) ::kill(pid, SIGKILL);
    kills += static_cast<int>(live_.size());
    reap_workers();
    figures_.random_kills += kills;
    ++figures_.rounds;
    check_invariants(static_cast<std::uint64_t>(figures_.random_kills), false);
    if (HasFatalFailure()) return;
  }
  print_figures("random kills");
}

// sluiced killed with SIGKILL under load and restarted: no reservation is
// settled twice, the counters keep every charge, the audit files recover
// (every frame on disk reads back) and, once it has run undisturbed, every
// reservation of the rounds since has its settlement on disk.
TEST_F(ChaosTest, SidecarKilledUnderLoadRestartsWithoutLosingOrDoublingCharges) {
  const int rounds = 6 * rounds_scale();
  for (int round = 0; round < rounds; ++round) {
    for (int w = 0; w < 4; ++w) spawn_worker(w, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng_() % 200));
    kill_sidecar();
    ++figures_.sidecar_kills;
    std::this_thread::sleep_for(std::chrono::milliseconds(rng_() % 100));
    for (int k = 0; k < 2; ++k) ::kill(live_[rng_() % live_.size()], SIGKILL);
    start_sidecar();
    if (HasFatalFailure()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng_() % 200));
    for (pid_t pid : live_) ::kill(pid, SIGKILL);
    figures_.random_kills += static_cast<int>(live_.size());
    reap_workers();
    ++figures_.rounds;
    check_invariants(static_cast<std::uint64_t>(figures_.random_kills), true);
    if (HasFatalFailure()) return;
  }
  // SIGTERM: sluiced pushes what it has not, and stops. Whatever the kills
  // interrupted, the store then holds exactly what every cell counts.
  testing::stop_child(sidecar_);
  sidecar_ = -1;
  StoreSpec spec;
  spec.path = testing::test_store_path(segment_);
  spec.host_id = "reader";
  Result<std::unique_ptr<Store>> store = open_sqlite_store(spec);
  ASSERT_TRUE(store.ok()) << store.status().message();
  Result<std::vector<RestoredCell>> cells =
      (*store)->restore("chaos", static_cast<std::uint64_t>(::time(nullptr)));
  ASSERT_TRUE(cells.ok()) << cells.status().message();
  for (const char* team : kTeams) {
    Charged pushed;
    for (const RestoredCell& c : cells.value()) {
      if (c.cell.label != team) continue;
      const auto used = static_cast<std::uint64_t>(c.host_used);
      if (c.cell.limit_name == "team-usd") pushed.nusd += used;
      if (c.cell.limit_name == "team-tokens") pushed.tokens += used;
      if (c.cell.limit_name == "team-input") pushed.input += used;
      if (c.cell.limit_name == "team-output") pushed.output += used;
    }
    const Charged counted = counters(team);
    EXPECT_EQ(pushed.tokens, counted.tokens) << "team " << team;
    EXPECT_EQ(pushed.nusd, counted.nusd) << "team " << team;
    EXPECT_EQ(pushed.input, counted.input) << "team " << team;
    EXPECT_EQ(pushed.output, counted.output) << "team " << team;
    EXPECT_GT(counted.tokens, 0u);
  }
  print_figures("sidecar kills");
}

}  // namespace
}  // namespace sluice
