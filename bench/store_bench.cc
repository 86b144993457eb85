// The central store's figures: what one sync costs the sidecar at 1k, 10k
// and 100k active global budget keys (every key spent on between syncs, so
// every key is pushed), on SQLite and on a real redis-server on loopback;
// the round trip of one lease request; and whether a reserve + commit on a
// global budget costs more while the store is down (the same cell, store up
// and store down interleaved in one run).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "clock.h"
#include "latency.h"
#include "redis_server.h"
#include "segment_layout.h"
#include "sidecar.h"
#include "sluice/quota.h"

namespace sluice::bench {
namespace {

enum StoreArg { kSqlite = 0, kRedis = 1 };

// An in-process sidecar with a manual store sync on a segment of its own,
// with one global USD budget per team, and everything it made removed at
// the end.
class StoreSetup {
 public:
  StoreSetup(const std::string& tag, StoreArg kind, std::uint64_t max_keys,
             SidecarOptions::Sync sync = SidecarOptions::Sync::kManual)
      : name_("sluice-bench-" + std::to_string(::getpid()) + "-" + tag) {
    std::string store;
    if (kind == kRedis) {
      redis_ = testing::RedisServer::start(&error_, testing::RedisServer::Persistence::kNone);
      if (!redis_) return;
      store = "  kind: redis\n  url: " + redis_->url() + "\n";
    } else {
      store = "  kind: sqlite\n  path: /tmp/" + name_ + ".db\n";
    }
    policy_ = "/tmp/" + name_ + ".yaml";
    std::ofstream(policy_)
        << "segment:\n  name: " << name_ << "\n  max_keys: " << max_keys
        << "\n  max_reservations: 1024\n  audit_ring_bytes: 1MiB\nstore:\n"
        << store << "  host_id: bench\n  lease_ms: 600000\naudit:\n  dir: /tmp/" << name_
        << "-audit\n  enabled: false\n"
        << "models:\n  m: { input_usd_per_mtok: 1.00, output_usd_per_mtok: 1.00 }\n"
        << "limits:\n  - name: team-usd\n    match: { team: \"*\" }\n    usd_per_day: 1000000\n"
        << "    scope: global\n    on_store_down: local_share\n";
    SidecarOptions o;
    o.audit = SidecarOptions::Audit::kOff;
    o.sync = sync;
    Result<Sidecar> s = Sidecar::start(policy_, o);
    if (!s.ok()) {
      error_ = s.status().message();
      return;
    }
    sidecar_ = std::make_unique<Sidecar>(std::move(s.value()));
    Result<Client> c = Client::attach(name_);
    if (!c.ok()) {
      error_ = c.status().message();
      return;
    }
    client_ = std::make_unique<Client>(std::move(c.value()));
  }
  ~StoreSetup() {
    client_.reset();
    sidecar_.reset();
    (void)SegmentMap::remove(name_);
    std::remove(sidecar_lock_path(name_).c_str());
    std::remove(policy_.c_str());
    for (const char* suffix : {".db", ".db-wal", ".db-shm"}) {
      std::remove(("/tmp/" + name_ + suffix).c_str());
    }
    std::filesystem::remove_all("/tmp/" + name_ + "-audit");
  }

  bool ok(benchmark::State& state) const {
    if (client_) return true;
    state.SkipWithError(error_.c_str());
    return false;
  }
  // One $0.001 call for `team`, committed; whether it was admitted.
  bool spend(const std::string& team) {
    const Attribute attrs[] = {{"team", team}, {"model", "m"}};
    CallRequest req;
    req.attributes = attrs;
    req.input_tokens = 1000;
    const Decision d = client_->reserve_raw(req);
    if (d.admitted) (void)client_->commit(d.reservation_id, 1000, 0);
    return d.admitted;
  }
  Status sync() { return sidecar_->store_sync()->sync_once(); }
  shm::SegmentHeader& header() { return sidecar_->segment().header(); }
  testing::RedisServer* redis() { return redis_.get(); }

 private:
  std::string name_;
  std::string policy_;
  std::string error_;
  std::unique_ptr<testing::RedisServer> redis_;
  std::unique_ptr<Sidecar> sidecar_;
  std::unique_ptr<Client> client_;
};

// Args: keys, percent of them spent on between syncs, store (0 sqlite, 1
// redis). Time per iteration: one sync, wall clock; counters: the sync
// thread's CPU time and the cells pushed.
void store_sync_cost(benchmark::State& state) {
  const std::uint64_t keys = static_cast<std::uint64_t>(state.range(0));
  const std::uint64_t active = keys * static_cast<std::uint64_t>(state.range(1)) / 100;
  const auto kind = static_cast<StoreArg>(state.range(2));
  StoreSetup setup(
      "sync-" + std::to_string(keys) + "-" + std::to_string(active) + "-" + std::to_string(kind),
      kind, keys + 1024);
  if (!setup.ok(state)) return;
  std::vector<std::string> teams;
  for (std::uint64_t k = 0; k < keys; ++k) teams.push_back("team-" + std::to_string(k));
  for (const std::string& t : teams) setup.spend(t);  // creates the keys; no lease yet
  for (int round = 0; round < 2; ++round) {  // leases for every key, then every key spent once
    if (Status s = setup.sync(); !s.ok()) {
      state.SkipWithError(s.message().c_str());
      return;
    }
    for (const std::string& t : teams) setup.spend(t);
  }
  (void)setup.sync();
  double cpu_ns = 0;
  std::uint64_t admitted = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (std::uint64_t k = 0; k < active; ++k) admitted += setup.spend(teams[k]);
    state.ResumeTiming();
    const Status s = setup.sync();
    if (!s.ok()) {
      state.SkipWithError(s.message().c_str());
      return;
    }
    cpu_ns += static_cast<double>(shm::load_relaxed(setup.header().store_sync_cpu_ns));
  }
  state.counters["cpu_ms_per_sync"] = cpu_ns / 1e6 / static_cast<double>(state.iterations());
  state.counters["cells_per_sync"] =
      static_cast<double>(shm::load_relaxed(setup.header().store_cells));
  state.counters["admitted_between_syncs"] =
      static_cast<double>(admitted) / static_cast<double>(state.iterations());
}
BENCHMARK(store_sync_cost)
    ->ArgsProduct({{1000, 10000, 100000}, {100}, {kSqlite, kRedis}})
    ->Args({100000, 1, kSqlite})
    ->Args({100000, 1, kRedis})
    ->Iterations(5)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The round trip of one lease: a push of one global budget cell asking for
// more, through the Store the sidecar uses. Arg: store.
void store_lease_round_trip(benchmark::State& state) {
  const auto kind = static_cast<StoreArg>(state.range(0));
  StoreSetup setup("lease-" + std::to_string(kind), kind, 1024);
  if (!setup.ok(state)) return;
  setup.spend("solo");
  const TscTimer& timer = TscTimer::get();
  LatencySamples samples(state.max_iterations);
  for (auto _ : state) {
    state.PauseTiming();
    setup.spend("solo");
    state.ResumeTiming();
    const std::uint64_t t0 = TscTimer::now();
    const Status s = setup.sync();
    samples.add(TscTimer::now() - t0);
    if (!s.ok()) {
      state.SkipWithError(s.message().c_str());
      return;
    }
  }
  samples.report(state, timer);
}
BENCHMARK(store_lease_round_trip)->Arg(kSqlite)->Arg(kRedis)->Iterations(2000)->UseRealTime();

// Reserve + commit on one global budget cell, alternating blocks of calls
// with the store up and the store down (local_share: the cell keeps
// spending its exposure), so both see the same machine noise.
void global_reserve_commit_store_up_vs_down(benchmark::State& state) {
  StoreSetup setup("updown", kSqlite, 1024);
  if (!setup.ok(state)) return;
  setup.spend("solo");
  for (int i = 0; i < 4; ++i) {  // grow the exposure past the run's needs
    for (int j = 0; j < 2000; ++j) setup.spend("solo");
    (void)setup.sync();
  }
  shm::SegmentHeader& h = setup.header();
  const shm::Word up_until = ~shm::Word{0} >> 1;
  const TscTimer& timer = TscTimer::get();
  LatencySamples up(state.max_iterations), down(state.max_iterations);
  std::uint64_t refused = 0, i = 0;
  for (auto _ : state) {
    const bool store_up = (i++ / 1000) % 2 == 0;
    shm::store_relaxed(h.store_up_until_ns, store_up ? up_until : 0);
    const std::uint64_t t0 = TscTimer::now();
    const bool admitted = setup.spend("solo");
    const std::uint64_t t = TscTimer::now() - t0;
    (store_up ? up : down).add(t);
    refused += !admitted;
  }
  up.report(state, timer, "up_");
  down.report(state, timer, "down_");
  state.counters["refused"] = static_cast<double>(refused);
}
BENCHMARK(global_reserve_commit_store_up_vs_down)->Iterations(200'000);

// The same with a real outage: sluiced's sync thread against a
// redis-server that is up, then stopped (the thread failing and backing
// off, global limits past store_up_until_ns), then up again. Phases in
// order, not interleaved: the figure is whether the outage shows at all.
void global_reserve_commit_redis_up_stopped_up(benchmark::State& state) {
  StoreSetup setup("outage", kRedis, 1024, SidecarOptions::Sync::kThread);
  if (!setup.ok(state)) return;
  shm::SegmentHeader& h = setup.header();
  auto wait_for = [](auto done) {
    for (int i = 0; i < 500 && !done(); ++i) ::usleep(10'000);
    return done();
  };
  if (!wait_for([&] { return setup.spend("solo"); })) {
    state.SkipWithError("no lease within 5 s");
    return;
  }
  const TscTimer& timer = TscTimer::get();
  const std::uint64_t third = state.max_iterations / 3;
  LatencySamples before(third), during(third), after(state.max_iterations - 2 * third);
  std::uint64_t i = 0, refused = 0;
  std::string error;
  for (auto _ : state) {
    if (i == third || i == 2 * third) {
      state.PauseTiming();
      if (i == third) {
        setup.redis()->stop();
        wait_for([&] { return monotonic_ns() > shm::load_relaxed(h.store_up_until_ns); });
      } else if (!setup.redis()->restart(&error) ||
                 !wait_for([&] { return shm::load_relaxed(h.store_state) == shm::kStoreUp; })) {
        state.SkipWithError(("redis did not come back: " + error).c_str());
        return;
      }
      state.ResumeTiming();
    }
    const std::uint64_t t0 = TscTimer::now();
    refused += !setup.spend("solo");
    const std::uint64_t t = TscTimer::now() - t0;
    (i < third ? before : i < 2 * third ? during : after).add(t);
    ++i;
  }
  before.report(state, timer, "up_");
  during.report(state, timer, "stopped_");
  after.report(state, timer, "restarted_");
  state.counters["refused"] = static_cast<double>(refused);
}
BENCHMARK(global_reserve_commit_redis_up_stopped_up)->Iterations(300'000)->UseRealTime();

}  // namespace
}  // namespace sluice::bench
