// The hot path, against the shared bench segments (bench/policy.yaml, one
// with audit on and drained by the sidecar's thread, one with audit off):
//
//   reserve_commit_3_limits  reserve + commit of a call matching three limits,
//                            each pair timed alone (see latency.h); audit on
//   reserve_commit_3_limits_audit_off   the same without audit records
//   reserve_commit_reported_3_limits    reserve_commit_3_limits with a call
//                            report on the commit (outcome, latency, TTFT,
//                            HTTP status, model version)
//   reserve_only_3_limits    the reserve half of the same (commit untimed)
//   reject_budget_exhausted  a call whose budget is used up (first limit)
//   reject_budget_exhausted_audit_off
//   reject_model_denied      a call naming a model its team may not use
//   multiproc_hot_key        N processes hammering the same three cells
//   multiproc_distinct_keys  N processes, each on its own team's cells
//   multiproc_hot_key_audit  the hot key with audit on (ring full: records dropped)
//
// A decision in the multi-process runs is one reserve + commit pair. They
// run with audit off unless named _audit: two processes on two cores leave
// the drain thread no core, and a ring filled at 10 M records/s measures
// dropping, not writing. The single-thread figures with audit on stop every
// 16384 calls (untimed) until the drain thread has emptied the ring.
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <span>
#include <string>
#include <vector>

#include "bench_segment.h"
#include "latency.h"
#include "sluice/quota.h"

namespace sluice::bench {
namespace {

constexpr std::uint64_t kInput = 1000, kMaxOutput = 500;  // the estimate
constexpr std::uint64_t kActualInput = 900, kActualOutput = 300;
constexpr int kWarmup = 20'000;

// A call {team, feature: chat, model}; owns the strings its attributes view.
class Call {
 public:
  Call(std::string team, std::string model) : team_(std::move(team)), model_(std::move(model)) {
    attrs_[0] = {"team", team_};
    attrs_[1] = {"feature", "chat"};
    attrs_[2] = {"model", model_};
    request_.attributes = attrs_;
    request_.input_tokens = kInput;
    request_.max_output_tokens = kMaxOutput;
  }
  // A call that matches one limit only (lane-requests): one cell.
  explicit Call(std::string lane) : team_(std::move(lane)) {
    attrs_[0] = {"lane", team_};
    request_.attributes = std::span<const Attribute>(attrs_, 1);
    request_.input_tokens = kInput;
    request_.max_output_tokens = kMaxOutput;
  }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;
  const CallRequest& request() const { return request_; }

 private:
  std::string team_, model_;
  Attribute attrs_[3];
  CallRequest request_;
};

constexpr int kDrainEvery = 16384;

// Attaches a client to a shared segment, or skips the benchmark.
bool attach(benchmark::State& state, std::unique_ptr<Client>* out, bool audit = true,
            BenchSegment** seg_out = nullptr) {
  std::string error;
  BenchSegment* seg = shared_segment(&error, audit);
  if (seg == nullptr) {
    state.SkipWithError(error.c_str());
    return false;
  }
  if (seg_out != nullptr) *seg_out = seg;
  Result<Client> client = Client::attach(seg->name());
  if (!client.ok()) {
    state.SkipWithError(client.status().message().c_str());
    return false;
  }
  *out = std::make_unique<Client>(std::move(client.value()));
  return true;
}

// One admitted reserve + commit; false if either failed.
inline bool decide(Client& client, const CallRequest& request) {
  const Decision d = client.reserve_raw(request);
  const Settlement s = client.commit(d.reservation_id, kActualInput, kActualOutput);
  return d.admitted && s.ok();
}

// Runs `op` once per iteration on a warmed-up client calling as team alpha
// on gpt-4o; `op` times what it measures into the samples and returns
// whether the call was admitted and settled.
template <class Op>
void time_admitted_calls(benchmark::State& state, Op op, bool audit = true) {
  std::unique_ptr<Client> client;
  BenchSegment* seg = nullptr;
  if (!attach(state, &client, audit, &seg)) return;
  const Call call("alpha", "gpt-4o");
  for (int i = 0; i < kWarmup; ++i) (void)decide(*client, call.request());
  const TscTimer& timer = TscTimer::get();
  LatencySamples samples(state.max_iterations);
  const shm::AuditRingControl& ring = seg->sidecar().segment().audit_control();
  wait_for_audit_drain(*seg);
  const shm::Word dropped = shm::load_relaxed(ring.dropped);
  bool ok = true;
  int n = 0;
  for (auto _ : state) {
    ok &= op(*client, call.request(), samples);
    if (++n % kDrainEvery == 0) wait_for_audit_drain(*seg);
  }
  if (!ok) state.SkipWithError("a reserve + commit was not admitted; check bench/policy.yaml");
  samples.report(state, timer);
  state.counters["audit_dropped"] = static_cast<double>(shm::load_relaxed(ring.dropped) - dropped);
}

void reserve_commit_3_limits(benchmark::State& state) {
  time_admitted_calls(state, [](Client& c, const CallRequest& r, LatencySamples& samples) {
    const std::uint64_t t0 = TscTimer::now();
    const bool admitted = decide(c, r);
    const std::uint64_t t1 = TscTimer::now();
    samples.add(t1 - t0);
    return admitted;
  });
}
BENCHMARK(reserve_commit_3_limits)->Iterations(1'000'000);

void reserve_commit_3_limits_audit_off(benchmark::State& state) {
  time_admitted_calls(
      state,
      [](Client& c, const CallRequest& r, LatencySamples& samples) {
        const std::uint64_t t0 = TscTimer::now();
        const bool admitted = decide(c, r);
        const std::uint64_t t1 = TscTimer::now();
        samples.add(t1 - t0);
        return admitted;
      },
      /*audit=*/false);
}
BENCHMARK(reserve_commit_3_limits_audit_off)->Iterations(1'000'000);

// What a call report adds to the commit: the per-model outcome count and
// latency and TTFT histograms, the per-limit committed count, and the audit
// record's call fields and version text.
void reserve_commit_reported_3_limits(benchmark::State& state) {
  const CallReport report{Outcome::kOk, 812'000'000, 140'000'000, 200, "gpt-4o-2024-08-06"};
  time_admitted_calls(state, [&](Client& c, const CallRequest& r, LatencySamples& samples) {
    const std::uint64_t t0 = TscTimer::now();
    const Decision d = c.reserve_raw(r);
    const Settlement s = c.commit(d.reservation_id, kActualInput, kActualOutput, report);
    const std::uint64_t t1 = TscTimer::now();
    samples.add(t1 - t0);
    return d.admitted && s.ok();
  });
}
BENCHMARK(reserve_commit_reported_3_limits)->Iterations(1'000'000);

// What audit adds, measured call by call: each iteration times one
// reserve + commit on the audit-on segment and one on the audit-off segment,
// in alternating order, so both see the same machine at the same moment.
void reserve_commit_audit_on_vs_off(benchmark::State& state) {
  std::unique_ptr<Client> on, off;
  BenchSegment* seg = nullptr;
  if (!attach(state, &on, true, &seg) || !attach(state, &off, false)) return;
  const Call call("alpha", "gpt-4o");
  for (int i = 0; i < kWarmup; ++i)
    (void)(decide(*on, call.request()) && decide(*off, call.request()));
  const TscTimer& timer = TscTimer::get();
  LatencySamples with(state.max_iterations), without(state.max_iterations);
  wait_for_audit_drain(*seg);
  bool ok = true;
  int n = 0;
  for (auto _ : state) {
    Client* first = (n & 1) ? off.get() : on.get();
    Client* second = (n & 1) ? on.get() : off.get();
    const std::uint64_t t0 = TscTimer::now();
    ok &= decide(*first, call.request());
    const std::uint64_t t1 = TscTimer::now();
    ok &= decide(*second, call.request());
    const std::uint64_t t2 = TscTimer::now();
    ((n & 1) ? without : with).add(t1 - t0);
    ((n & 1) ? with : without).add(t2 - t1);
    if (++n % kDrainEvery == 0) wait_for_audit_drain(*seg);
  }
  if (!ok) state.SkipWithError("a reserve + commit was not admitted; check bench/policy.yaml");
  with.report(state, timer, "on_");
  without.report(state, timer, "off_");
}
BENCHMARK(reserve_commit_audit_on_vs_off)->Iterations(1'000'000);

void reserve_only_3_limits(benchmark::State& state) {
  time_admitted_calls(state, [](Client& c, const CallRequest& r, LatencySamples& samples) {
    const std::uint64_t t0 = TscTimer::now();
    const Decision d = c.reserve_raw(r);
    const std::uint64_t t1 = TscTimer::now();
    samples.add(t1 - t0);
    return d.admitted && c.commit(d.reservation_id, kActualInput, kActualOutput).ok();
  });
}
BENCHMARK(reserve_only_3_limits)->Iterations(1'000'000);

// Times rejections of `call`, each of which must be rejected for `why`.
void measure_rejects(benchmark::State& state, BenchSegment& seg, Client& client, const Call& call,
                     Reason why) {
  for (int i = 0; i < kWarmup; ++i) (void)client.reserve_raw(call.request());
  const TscTimer& timer = TscTimer::get();
  LatencySamples samples(state.max_iterations);
  wait_for_audit_drain(seg);
  bool ok = true;
  int n = 0;
  for (auto _ : state) {
    const std::uint64_t t0 = TscTimer::now();
    const Decision d = client.reserve_raw(call.request());
    const std::uint64_t t1 = TscTimer::now();
    samples.add(t1 - t0);
    ok &= !d.admitted && d.reason == why;
    if (++n % kDrainEvery == 0) wait_for_audit_drain(seg);
  }
  if (!ok) state.SkipWithError("a call meant to be rejected was not (or for another reason)");
  samples.report(state, timer);
}

void reject_budget_exhausted_on(benchmark::State& state, bool audit) {
  std::unique_ptr<Client> client;
  BenchSegment* seg = nullptr;
  if (!attach(state, &client, audit, &seg)) return;
  const Call call("exhausted", "gpt-4o");
  // Use the budget up: commit at the estimate until the next call is refused.
  for (int i = 0; i < 1000; ++i) {
    const Decision d = client->reserve_raw(call.request());
    if (!d.admitted) break;
    (void)client->commit(d.reservation_id, kInput, kMaxOutput);
  }
  measure_rejects(state, *seg, *client, call, Reason::kBudgetExhausted);
}
void reject_budget_exhausted(benchmark::State& state) { reject_budget_exhausted_on(state, true); }
BENCHMARK(reject_budget_exhausted)->Iterations(1'000'000);
void reject_budget_exhausted_audit_off(benchmark::State& state) {
  reject_budget_exhausted_on(state, false);
}
BENCHMARK(reject_budget_exhausted_audit_off)->Iterations(1'000'000);

void reject_model_denied(benchmark::State& state) {
  std::unique_ptr<Client> client;
  BenchSegment* seg = nullptr;
  if (!attach(state, &client, true, &seg)) return;
  const Call call("guest", "gpt-4o");
  measure_rejects(state, *seg, *client, call, Reason::kModelNotAllowed);
}
BENCHMARK(reject_model_denied)->Iterations(1'000'000);

// ---------------------------------------------------------------------------
// Several processes on one segment. Each child attaches its own client, warms
// up, waits for the start signal, then counts decisions for kRunNs.

constexpr std::uint64_t kRunNs = 1'500'000'000;
constexpr int kMaxProcs = 8;

struct Race {  // in a MAP_SHARED anonymous mapping, shared across fork
  std::atomic<int> ready;
  std::atomic<int> go;
  std::atomic<int> failed;
  std::uint64_t decisions[kMaxProcs];
  std::uint64_t elapsed_ns[kMaxProcs];
  std::uint64_t cpu_ns[kMaxProcs];  // CPU time the child got while counting
};

[[noreturn]] void run_child(const std::string& segment, const std::string& team, bool one_cell,
                            Race* race, int index) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  Result<Client> client = Client::attach(segment);
  if (!client.ok()) {
    race->failed.fetch_add(1);
    race->ready.fetch_add(1);
    ::_exit(1);
  }
  const Call three_cells(team, "gpt-4o");
  const Call single_cell(team);
  const Call& call = one_cell ? single_cell : three_cells;
  bool ok = true;
  for (int i = 0; i < kWarmup; ++i) ok &= decide(*client, call.request());
  race->ready.fetch_add(1);
  while (race->go.load(std::memory_order_acquire) == 0) {
  }
  const std::uint64_t cpu_start = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  const std::uint64_t start = clock_ns(CLOCK_MONOTONIC);
  std::uint64_t n = 0, now = start;
  while (now - start < kRunNs) {
    for (int i = 0; i < 64; ++i) ok &= decide(*client, call.request());
    n += 64;
    now = clock_ns(CLOCK_MONOTONIC);
  }
  race->decisions[index] = n;
  race->elapsed_ns[index] = now - start;
  race->cpu_ns[index] = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu_start;
  if (!ok) race->failed.fetch_add(1);
  ::_exit(ok ? 0 : 1);
}

// Total decisions per second of one child per team, all started together.
void race(benchmark::State& state, const std::vector<std::string>& teams, bool one_cell = false,
          bool audit = false) {
  std::string error;
  BenchSegment* seg = shared_segment(&error, audit);
  if (seg == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  seg->sidecar().tick();  // frees the registrations of earlier children
  void* mem =
      ::mmap(nullptr, sizeof(Race), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    state.SkipWithError("mmap failed");
    return;
  }
  Race* r = new (mem) Race{};
  const int n = static_cast<int>(teams.size());
  std::vector<pid_t> children;
  for (int i = 0; i < n; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) run_child(seg->name(), teams[i], one_cell, r, i);
    if (pid > 0) children.push_back(pid);
  }
  for (auto _ : state) {
    const std::uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + 20'000'000'000ull;
    while (r->ready.load() < static_cast<int>(children.size()) &&
           clock_ns(CLOCK_MONOTONIC) < deadline) {
      ::usleep(1000);
    }
    r->go.store(1, std::memory_order_release);
    for (pid_t pid : children) ::waitpid(pid, nullptr, 0);
  }
  // Rates are per child over its own run; the CPU share says how much of
  // its wall time the child actually ran (the machine is shared).
  double total = 0, decisions = 0, cpu_s = 0, wall_s = 0;
  for (int i = 0; i < n; ++i) {
    if (r->elapsed_ns[i] == 0) continue;
    total += static_cast<double>(r->decisions[i]) * 1e9 / static_cast<double>(r->elapsed_ns[i]);
    decisions += static_cast<double>(r->decisions[i]);
    cpu_s += static_cast<double>(r->cpu_ns[i]) / 1e9;
    wall_s += static_cast<double>(r->elapsed_ns[i]) / 1e9;
  }
  if (static_cast<int>(children.size()) != n || r->failed.load() != 0) {
    state.SkipWithError("a child failed to fork, attach or be admitted");
  }
  state.counters["procs"] = n;
  state.counters["decisions_per_s"] = total;
  state.counters["per_proc_decisions_per_s"] = total / n;
  state.counters["cpu_share"] = wall_s > 0 ? cpu_s / wall_s : 0;
  state.counters["decisions_per_cpu_s"] = cpu_s > 0 ? decisions / cpu_s : 0;
  ::munmap(mem, sizeof(Race));
  seg->sidecar().tick();
}

void multiproc_hot_key(benchmark::State& state) {
  race(state, std::vector<std::string>(static_cast<std::size_t>(state.range(0)), "hot"));
}
BENCHMARK(multiproc_hot_key)->ArgName("procs")->Arg(1)->Arg(2)->Iterations(1)->UseRealTime();

// The same, on a call that matches a single limit: one hot cell.
void multiproc_hot_cell(benchmark::State& state) {
  race(state, std::vector<std::string>(static_cast<std::size_t>(state.range(0)), "hot"),
       /*one_cell=*/true);
}
BENCHMARK(multiproc_hot_cell)->ArgName("procs")->Arg(1)->Arg(2)->Iterations(1)->UseRealTime();

void multiproc_distinct_keys(benchmark::State& state) {
  std::vector<std::string> teams;
  teams.reserve(static_cast<std::size_t>(state.range(0)));
  for (int i = 0; i < state.range(0); ++i) teams.push_back("distinct-" + std::to_string(i));
  race(state, teams);
}
BENCHMARK(multiproc_distinct_keys)->ArgName("procs")->Arg(1)->Arg(2)->Iterations(1)->UseRealTime();

void multiproc_hot_key_audit(benchmark::State& state) {
  race(state, std::vector<std::string>(static_cast<std::size_t>(state.range(0)), "hot"),
       /*one_cell=*/false, /*audit=*/true);
}
BENCHMARK(multiproc_hot_key_audit)->ArgName("procs")->Arg(2)->Iterations(1)->UseRealTime();

}  // namespace
}  // namespace sluice::bench
