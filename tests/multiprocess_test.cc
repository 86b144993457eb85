// Many processes on one segment: limits hold across processes, the work of
// a client killed with SIGKILL is settled by the sidecar, and counters
// survive a sidecar restart or crash.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "clock.h"
#include "reclaim.h"
#include "sluice/inspect.h"
#include "sluice_fixture.h"

namespace sluice {
namespace {

using testing::SidecarHarness;

const char* const kModels = R"(
models:
  cheap: { input_usd_per_mtok: 1.00, output_usd_per_mtok: 1.00 }
limits:
)";

struct ChildTotals {
  std::uint64_t admitted = 0;
  std::uint64_t rejected = 0;
  std::uint64_t cost_nusd = 0;
};

// Runs `body` in `n` forked children; each reports its totals through a pipe.
template <class Body>
std::vector<ChildTotals> run_children(int n, Body body) {
  std::vector<std::pair<pid_t, int>> kids;
  for (int i = 0; i < n; ++i) {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(fds[0]);
      ChildTotals t = body(i);
      const bool ok = ::write(fds[1], &t, sizeof t) == sizeof t;
      ::_exit(ok ? 0 : 3);
    }
    ::close(fds[1]);
    kids.emplace_back(pid, fds[0]);
  }
  std::vector<ChildTotals> out;
  for (auto [pid, fd] : kids) {
    ChildTotals t;
    EXPECT_EQ(::read(fd, &t, sizeof t), static_cast<ssize_t>(sizeof t));
    ::close(fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    out.push_back(t);
  }
  return out;
}

std::uint64_t limit_admitted(const std::string& segment, const std::string& limit) {
  Result<std::vector<LimitRow>> rows = list_limits(segment);
  EXPECT_TRUE(rows.ok()) << rows.status().message();
  for (const LimitRow& r : rows.value()) {
    if (r.limit == limit) return r.admitted;
  }
  ADD_FAILURE() << "no limit " << limit;
  return 0;
}

std::uint64_t in_flight(const SegmentMap& m) {
  std::uint64_t n = 0;
  for (std::uint64_t i = 0; i < m.reservation_count(); ++i) {
    n += shm::state_status(shm::load_relaxed(m.reservations()[i].state)) != shm::kResFree;
  }
  return n;
}

TEST(MultiProcess, HotKeyRateHoldsWithinTheGcraBoundAcrossProcesses) {
  SidecarHarness h("mp-rate", std::string(kModels) + R"(
  - name: hot
    match: { team: "*" }
    requests_per_second: 200
    burst_requests: 20
)");
  const std::uint64_t start = monotonic_ns();
  auto totals = run_children(4, [&](int) {
    ChildTotals t;
    Result<Client> c = Client::attach(h.segment());
    if (!c.ok()) ::_exit(4);
    Attribute a[] = {{"team", "hot"}};
    const std::uint64_t until = monotonic_ns() + 400'000'000;
    while (monotonic_ns() < until) {
      Decision d = c->reserve_raw({a, 0, 0});
      if (d.admitted) {
        ++t.admitted;
        if (!c->commit(d.reservation_id, 0, 0).ok()) ::_exit(5);
      } else {
        ++t.rejected;
      }
    }
    return t;
  });
  const std::uint64_t elapsed = monotonic_ns() - start;
  std::uint64_t admitted = 0, rejected = 0;
  for (const ChildTotals& t : totals) admitted += t.admitted, rejected += t.rejected;
  // GCRA: at most the burst plus one request per emission interval (5 ms).
  const std::uint64_t bound = 20 + elapsed / 5'000'000 + 1;
  EXPECT_LE(admitted, bound);
  EXPECT_GE(admitted, 20u + 300'000'000 / 5'000'000 / 2);  // it did run at about the rate
  EXPECT_GT(rejected, 0u);
  EXPECT_EQ(limit_admitted(h.segment(), "hot"), admitted);  // counts exact
  h.sidecar().tick();  // the children are gone: their counts move to the header
  EXPECT_EQ(h.sidecar().reclaimed().clients_freed, 4u);
  EXPECT_EQ(limit_admitted(h.segment(), "hot"), admitted);
  EXPECT_EQ(shm::load_relaxed(h.seg().header().admitted_departed), admitted);
}

TEST(MultiProcess, UsdBudgetIsNeverOverspentAndEqualsTheSumOfCommits) {
  // cheap: 1000 nUSD a token. Budget 0.05 USD = 50'000'000 nUSD.
  SidecarHarness h("mp-budget", std::string(kModels) + R"(
  - name: pricing-daily
    match: { team: pricing }
    usd_per_day: 0.05
)");
  auto totals = run_children(4, [&](int i) {
    ChildTotals t;
    Result<Client> c = Client::attach(h.segment());
    if (!c.ok()) ::_exit(4);
    Attribute a[] = {{"team", "pricing"}, {"model", "cheap"}};
    std::uint64_t x = 12345 + static_cast<std::uint64_t>(i);
    int refusals = 0;
    while (refusals < 200) {
      Decision d = c->reserve_raw({a, 100, 100});
      if (!d.admitted) {
        if (d.reason != Reason::kBudgetExhausted) ::_exit(6);
        ++refusals;
        continue;
      }
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      const std::uint64_t used = 1 + (x >> 33) % 200;  // 1..200 tokens
      Settlement s = c->commit(d.reservation_id, used / 2, used - used / 2);
      if (!s.ok()) ::_exit(5);
      ++t.admitted;
      t.cost_nusd += s.cost_nusd;
    }
    return t;
  });
  std::uint64_t cost = 0, admitted = 0;
  for (const ChildTotals& t : totals) cost += t.cost_nusd, admitted += t.admitted;
  const std::uint64_t used = h.cell_value("pricing-daily", "pricing");
  EXPECT_EQ(used, cost);  // to the nano-dollar
  EXPECT_LE(used, 50'000'000u);
  EXPECT_GT(used, 50'000'000u - 200'000u);  // stopped only when a worst case no longer fit
  EXPECT_GT(admitted, 250u);
}

TEST(MultiProcess, ClientKilledHoldingReservationsIsSettledAsAbandoned) {
  SidecarHarness h("mp-kill", std::string(kModels) + R"(
  - name: daily-tokens
    match: { team: "*" }
    tokens_per_day: 100000
)");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    Result<Client> c = Client::attach(h.segment());
    Attribute a[] = {{"team", "batch"}};
    int held = 0;
    for (int i = 0; i < 3; ++i) held += c.ok() && c->reserve_raw({a, 100, 900}).admitted;
    const char n = static_cast<char>(held);
    if (::write(ready[1], &n, 1) != 1) ::_exit(3);
    ::pause();
    ::_exit(0);
  }
  char held = 0;
  ASSERT_EQ(::read(ready[0], &held, 1), 1);
  ASSERT_EQ(held, 3);
  EXPECT_EQ(in_flight(h.seg()), 3u);
  h.sidecar().tick();  // the client is alive: nothing is touched
  EXPECT_EQ(in_flight(h.seg()), 3u);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  h.sidecar().tick();
  EXPECT_EQ(h.sidecar().reclaimed().abandoned, 3u);
  EXPECT_EQ(h.sidecar().reclaimed().clients_freed, 1u);
  EXPECT_EQ(in_flight(h.seg()), 0u);
  EXPECT_EQ(h.cell_value("daily-tokens", "batch"), 3000u);  // charged at the estimate
  EXPECT_EQ(shm::load_relaxed(h.seg().header().admitted_departed), 3u);
}

// Builds the state a client leaves when killed between two debits of one
// reservation, then checks the sidecar refunds exactly the debited cell.
TEST(MultiProcess, ClientKilledBetweenDebitsIsRefundedOnlyWhatItDebited) {
  SidecarHarness h("mp-half", std::string(kModels) + R"(
  - name: a
    match: { team: "*" }
    tokens_per_day: 1000
  - name: b
    match: { team: "*" }
    tokens_per_day: 1000
)");
  // A dead registration: a child that attached and died without detaching.
  const pid_t child = ::fork();
  if (child == 0) {
    Result<Client> c = Client::attach(h.segment());
    Attribute attrs[] = {{"team", "t"}};
    if (!c.ok() || !c->commit(c->reserve_raw({attrs, 1, 0}).reservation_id, 1, 0).ok()) ::_exit(3);
    ::_exit(0);  // no destructor: the registration stays, its process is gone
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_EQ(WEXITSTATUS(status), 0);
  const SegmentMap& m = h.seg();
  shm::Word owner = 0;
  for (shm::Word i = 0; i < m.client_count() && owner == 0; ++i) {
    if (shm::load_relaxed(m.clients()[i].pid) == static_cast<shm::Word>(child)) owner = i + 1;
  }
  ASSERT_NE(owner, 0u);
  // Cells "a|t" and "b|t" exist (values 1 each). Debit 100 on a only.
  std::uint64_t ka = ~0ull, kb = ~0ull;
  for (std::uint64_t i = 0; i < m.key_capacity(); ++i) {
    if (shm::load_relaxed(m.keys()[i].hash) == 0) continue;
    if (shm::load_relaxed(m.keys()[i].value) != 1) continue;
    (ka == ~0ull ? ka : kb) = i;
  }
  ASSERT_NE(kb, ~0ull);
  shm::ReservationSlot& r = m.reservations()[7];
  shm::store_relaxed(r.est_input, 100);
  shm::store_relaxed(r.cells[0].key,
                     shm::make_cell_key(ka, shm::kKindBudget, shm::kMeasureTokens, 0));
  shm::store_relaxed(r.cells[1].key,
                     shm::make_cell_key(kb, shm::kKindBudget, shm::kMeasureTokens, 0));
  shm::store_relaxed(r.cell_count, 2);
  shm::fetch_add(m.keys()[ka].value, 100);
  shm::store_relaxed(r.debited_mask, 1);
  shm::store_relaxed(r.state, shm::make_state(5, owner, 0, shm::kResReserving));

  h.sidecar().tick();
  EXPECT_EQ(h.sidecar().reclaimed().refunded_partial, 1u);
  EXPECT_EQ(shm::load_relaxed(m.keys()[ka].value), 1u);
  EXPECT_EQ(shm::load_relaxed(m.keys()[kb].value), 1u);
  EXPECT_EQ(shm::state_status(shm::load_relaxed(r.state)), shm::kResFree);
  EXPECT_EQ(shm::state_seq(shm::load_relaxed(r.state)), 5u);
}

TEST(MultiProcess, ClientKilledMidCommitHasItsCommitFinished) {
  SidecarHarness h("mp-midcommit", std::string(kModels) + R"(
  - name: a
    tokens_per_day: 1000
)");
  const SegmentMap& m = h.seg();
  Client c = h.attach();
  Decision d = c.reserve_raw({{}, 100, 100});
  ASSERT_TRUE(d.admitted);
  // Pose as a dead settler that wrote its usage (30 tokens) and then died.
  shm::ReservationSlot& r = m.reservations()[d.reservation_id & 0xffffffff];
  const shm::Word st = shm::load_relaxed(r.state);
  shm::store_relaxed(r.actual_input, 10);
  shm::store_relaxed(r.actual_output, 20);
  shm::store_relaxed(r.settle_kind, 1);
  shm::store_relaxed(r.state, shm::make_state(shm::state_seq(st), shm::state_owner(st),
                                              shm::kSidecarActor, shm::kResSettling));
  h.sidecar().tick();
  EXPECT_EQ(h.sidecar().reclaimed().finished, 1u);
  EXPECT_EQ(h.cell_value("a", ""), 30u);
  EXPECT_EQ(c.commit(d.reservation_id, 1, 1).error, SettleError::kUnknownReservation);
}

TEST(MultiProcess, SidecarRestartKeepsCountersAndClientsKeepWorking) {
  SidecarHarness h("mp-restart", std::string(kModels) + R"(
  - name: daily
    tokens_per_day: 1000
)");
  Client c = h.attach();
  ASSERT_TRUE(c.commit(c.reserve_raw({{}, 400, 0}).reservation_id, 400, 0).ok());
  h.stop();
  EXPECT_TRUE(c.reserve_raw({{}, 0, 0}).admitted);  // clients go on alone
  h.start();
  EXPECT_TRUE(h.sidecar().reopened());
  EXPECT_EQ(h.cell_value("daily", ""), 400u);
  EXPECT_FALSE(c.reserve_raw({{}, 601, 0}).admitted);
  EXPECT_TRUE(c.reserve_raw({{}, 600, 0}).admitted);
}

TEST(MultiProcess, SidecarKilledWithSigkillIsReplacedOnTheSameSegment) {
  testing::SidecarHarness h("mp-crash", std::string(kModels) + R"(
  - name: daily
    tokens_per_day: 1000
)");
  Client c = h.attach();
  ASSERT_TRUE(c.commit(c.reserve_raw({{}, 250, 0}).reservation_id, 250, 0).ok());
  h.stop();
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    Result<Sidecar> s = Sidecar::start(h.policy_path(), testing::no_audit());
    const char ok = s.ok() ? 1 : 0;
    if (::write(ready[1], &ok, 1) != 1) ::_exit(3);
    for (;;) ::pause();
  }
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  ASSERT_EQ(ok, 1);
  // The live sidecar holds the segment: a second one is refused, naming its pid.
  Result<Sidecar> second = Sidecar::start(h.policy_path(), testing::no_audit());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), ErrorCode::kAlreadyRunning);
  EXPECT_NE(second.status().message().find(std::to_string(child)), std::string::npos);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  h.start();
  EXPECT_TRUE(h.sidecar().reopened());
  EXPECT_EQ(h.cell_value("daily", ""), 250u);
  EXPECT_TRUE(c.reserve_raw({{}, 750, 0}).admitted);
  EXPECT_FALSE(c.reserve_raw({{}, 1, 0}).admitted);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// The sidecar treats the segment as untrusted input: a client that scribbles
// over the reservation slots and the registry can corrupt counters, but the
// reclaimer and the inspection tools must neither crash nor read out of
// bounds (this suite also runs under ASan+UBSan).
TEST(MultiProcess, SidecarSurvivesAClientThatScribbledOverEverySlot) {
  SidecarHarness h("mp-garbage", std::string(kModels) + R"(
  - name: daily
    match: { team: "*" }
    tokens_per_day: 1000
)");
  Client c = h.attach();
  ASSERT_TRUE(c.reserve_raw({{}, 1, 1}).admitted);
  const SegmentMap& m = h.seg();
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  auto next = [&x] {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return x;
  };
  for (int round = 0; round < 20; ++round) {
    auto scribble = [&](void* base, std::size_t bytes) {
      auto* words = static_cast<shm::Word*>(base);
      for (std::size_t i = 0; i < bytes / 8; ++i) {
        shm::Word v = next();
        // Keep many statuses and owners plausible so every branch is reached.
        if (i % 32 == 0) v = (v & ~shm::Word{0xfffff}) | (v & 0x3ff) << 8 | (1 + v % 4);
        shm::store_relaxed(words[i], v);
      }
    };
    scribble(m.reservations(), m.reservation_count() * sizeof(shm::ReservationSlot));
    for (shm::Word i = 1; i < m.client_count(); ++i) {  // leave our own registration
      scribble(&m.clients()[i], sizeof(shm::ClientSlot));
    }
    h.sidecar().tick();
    EXPECT_TRUE(list_keys(h.segment()).ok());
    EXPECT_TRUE(list_limits(h.segment()).ok());
    EXPECT_TRUE(read_status(h.segment()).ok());
  }
  // The engine still decides.
  Decision d = c.reserve_raw({{}, 0, 0});
  EXPECT_TRUE(d.admitted || d.reason == Reason::kBudgetExhausted ||
              d.reason == Reason::kTooManyReservations);
}

}  // namespace
}  // namespace sluice
