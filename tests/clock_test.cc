// Wall-clock steps, end to end through the sidecar's tick: the wall time is
// injected (SidecarOptions::wall_clock) and published the way a real step
// would be, as the heartbeat's offset plus the window tables. Rate limits
// run on the monotonic clock and do not notice; budget windows follow the
// wall clock in their time zone, across DST, both ways, and a window's
// budget is never granted twice.
//
// Instants: `TZ=America/New_York date -d 'YYYY-MM-DD 00:00' +%s`. 2026-03-08
// (Sunday) springs forward at 02:00, 2026-11-01 falls back at 02:00.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "clock.h"
#include "segment.h"
#include "sluice/inspect.h"
#include "sluice/quota.h"
#include "sluice_fixture.h"

namespace sluice {
namespace {

using testing::SidecarHarness;

constexpr std::int64_t kHalfHour = 1800;
constexpr std::int64_t kHour = 3600;
constexpr std::int64_t kDay = 86400;
constexpr std::uint64_t kSecondNs = 1'000'000'000ull;

// Local midnights in America/New_York.
constexpr std::int64_t kMar01 = 1772341200;
constexpr std::int64_t kMar02 = 1772427600;  // Monday
constexpr std::int64_t kMar07 = 1772859600;
constexpr std::int64_t kMar08 = 1772946000;  // 23 hours long
constexpr std::int64_t kMar09 = 1773028800;  // Monday
constexpr std::int64_t kMar10 = 1773115200;
constexpr std::int64_t kMar17 = 1773720000;
constexpr std::int64_t kApr01 = 1775016000;
constexpr std::int64_t kNov01 = 1793505600;  // 25 hours long
constexpr std::int64_t kNov02 = 1793595600;

// The wall clock the sidecar reads. Set half a second past a whole second,
// so that the clients' coarse clock (up to a tick behind the precise one the
// offset was taken against) still reads the same second.
class SteppedWallClock {
 public:
  void set(std::int64_t unix_seconds) {
    ns_.store(static_cast<std::uint64_t>(unix_seconds) * kSecondNs + kSecondNs / 2);
  }
  void step(std::int64_t seconds) { set(seconds_now() + seconds); }
  std::int64_t seconds_now() const { return static_cast<std::int64_t>(ns_.load() / kSecondNs); }

  SidecarOptions options() {
    SidecarOptions o = testing::no_audit();
    o.wall_clock = [this] { return ns_.load(); };
    return o;
  }

 private:
  std::atomic<std::uint64_t> ns_{0};
};

std::string body(const std::string& limits) { return "limits:\n" + limits; }

// Reserves and commits calls of 100 tokens for `team` until one is refused
// (at most `most`); returns how many were admitted and the refusal.
struct Spent {
  int admitted = 0;
  Decision refused;
};

Spent spend(Client& c, const std::string& team, int most = 100) {
  const Attribute attrs[] = {{"team", team}};
  CallRequest req;
  req.attributes = attrs;
  req.input_tokens = 100;
  Spent s;
  for (int i = 0; i < most; ++i) {
    const Decision d = c.reserve_raw(req);
    if (!d.admitted) {
      s.refused = d;
      return s;
    }
    EXPECT_EQ(c.commit(d.reservation_id, 100, 0).error, SettleError::kNone);
    ++s.admitted;
  }
  return s;
}

std::uint64_t seconds(std::int64_t s) { return static_cast<std::uint64_t>(s) * kSecondNs; }

// The rows `sluice keys` shows for `limit`.
std::vector<KeyRow> keys_of(const std::string& segment, const std::string& limit) {
  Result<std::vector<KeyRow>> rows = list_keys(segment);
  EXPECT_TRUE(rows.ok()) << rows.status().message();
  std::vector<KeyRow> out;
  if (!rows.ok()) return out;
  for (const KeyRow& r : rows.value()) {
    if (r.limit == limit) out.push_back(r);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Rate limits

constexpr const char* kRateLimit = R"(
  - name: per-second
    match: { team: "*" }
    requests_per_minute: 60
    burst_requests: 5
)";

// The bucket is empty: the next call is refused by the rate, and may pass
// within one emission interval (1 s), whatever the wall clock says.
void expect_refused_by_the_rate(Client& c, const char* after, const std::string& team = "t") {
  const Spent s = spend(c, team);
  EXPECT_EQ(s.admitted, 0) << "extra burst after " << after;
  EXPECT_EQ(s.refused.reason, Reason::kRateLimited) << after;
  EXPECT_GT(s.refused.retry_after_ns, 0u) << after;
  EXPECT_LE(s.refused.retry_after_ns, kSecondNs) << "locked out after " << after;
}

TEST(ClockSteps, RateLimitsAdmitTheBurstThenTheRateWhateverTheWallClockDoes) {
  SteppedWallClock wall;
  wall.set(kMar08 + 12 * kHour);
  SidecarHarness h("clock-rate", body(kRateLimit), "", wall.options());
  Client c = h.attach();

  const Spent burst = spend(c, "t");
  EXPECT_EQ(burst.admitted, 5);
  expect_refused_by_the_rate(c, "the burst");

  const std::pair<std::int64_t, const char*> steps[] = {
      {kHour, "+1 h"}, {kDay, "+1 day"}, {-kHour, "-1 h"}, {-kDay, "-1 day"}, {-kDay, "-1 day"}};
  for (const auto& [by, name] : steps) {
    wall.step(by);
    h.sidecar().tick();  // publishes the stepped clock, and windows if due
    expect_refused_by_the_rate(c, name);
  }

  // The rate goes on: one call per emission interval, on either side of a step.
  for (const auto& [by, name] : {std::pair{-kDay, "-1 day"}, std::pair{kDay, "+1 day"}}) {
    const Spent before = spend(c, "t");
    ASSERT_EQ(before.admitted, 0);
    wall.step(by);
    h.sidecar().tick();
    std::this_thread::sleep_for(std::chrono::nanoseconds(before.refused.retry_after_ns) +
                                std::chrono::milliseconds(20));
    const Spent after = spend(c, "t");
    EXPECT_EQ(after.admitted, 1) << "one interval after " << name;
    EXPECT_EQ(after.refused.reason, Reason::kRateLimited);
  }
}

// ---------------------------------------------------------------------------
// Budgets in a time zone with DST

constexpr const char* kDailyLimit = R"(
  - name: daily
    match: { team: "*" }
    tokens_per_day: 1000
    timezone: America/New_York
)";

// The budget is spent: refused until the window ends `ends_in` seconds from now.
void expect_spent_until(Client& c, std::int64_t ends_in, const char* when) {
  const Spent s = spend(c, "t");
  EXPECT_EQ(s.admitted, 0) << when;
  EXPECT_EQ(s.refused.reason, Reason::kBudgetExhausted) << when;
  EXPECT_EQ(s.refused.retry_after_ns, seconds(ends_in)) << when;
}

TEST(ClockSteps, ADailyBudgetStartsAfreshAtLocalMidnightAndTheSpringForwardDayLasts23Hours) {
  SteppedWallClock wall;
  wall.set(kMar07 + 12 * kHour);  // Saturday 12:00 EST, the day before
  SidecarHarness h("clock-spring", body(kDailyLimit), "", wall.options());
  Client c = h.attach();

  Spent s = spend(c, "t");
  EXPECT_EQ(s.admitted, 10);
  EXPECT_EQ(s.refused.reason, Reason::kBudgetExhausted);
  EXPECT_EQ(s.refused.retry_after_ns, seconds(12 * kHour));
  std::vector<KeyRow> rows = keys_of(h.segment(), "daily");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].window_start_unix, static_cast<std::uint64_t>(kMar07));
  EXPECT_EQ(rows[0].window_end_unix, static_cast<std::uint64_t>(kMar08));
  EXPECT_EQ(rows[0].used, 1000u);

  wall.set(kMar08 + 1);  // Sunday 00:00:01 EST
  h.sidecar().tick();
  s = spend(c, "t");
  EXPECT_EQ(s.admitted, 10) << "a new window has the whole budget";
  EXPECT_EQ(s.refused.retry_after_ns, seconds(23 * kHour - 1));
  rows = keys_of(h.segment(), "daily");
  ASSERT_EQ(rows.size(), 1u) << "the past window is not shown";
  EXPECT_EQ(rows[0].window_start_unix, static_cast<std::uint64_t>(kMar08));
  EXPECT_EQ(rows[0].window_end_unix - rows[0].window_start_unix,
            static_cast<std::uint64_t>(23 * kHour));

  wall.set(kMar09 - kHalfHour);  // Sunday 23:30 EDT: still Sunday
  h.sidecar().tick();
  expect_spent_until(c, kHalfHour, "23:30 on the short day");

  wall.set(kMar09 + 1);  // Monday 00:00:01 EDT
  h.sidecar().tick();
  s = spend(c, "t");
  EXPECT_EQ(s.admitted, 10) << "Monday's window";
  EXPECT_EQ(s.refused.retry_after_ns, seconds(kMar10 - kMar09 - 1));
}

TEST(ClockSteps, TheFallBackDayLasts25HoursAndItsRepeatedHourIsTheSameWindow) {
  SteppedWallClock wall;
  wall.set(kNov01 + kHalfHour);  // 00:30 EDT
  SidecarHarness h("clock-fall", body(kDailyLimit), "", wall.options());
  Client c = h.attach();

  Spent s = spend(c, "t");
  EXPECT_EQ(s.admitted, 10);
  EXPECT_EQ(s.refused.retry_after_ns, seconds(25 * kHour - kHalfHour));
  const std::vector<KeyRow> rows = keys_of(h.segment(), "daily");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].window_start_unix, static_cast<std::uint64_t>(kNov01));
  EXPECT_EQ(rows[0].window_end_unix, static_cast<std::uint64_t>(kNov02));
  EXPECT_EQ(rows[0].window_end_unix - rows[0].window_start_unix,
            static_cast<std::uint64_t>(25 * kHour));

  wall.set(kNov01 + 5 * kHour + kHalfHour);  // 01:30 EST, the second 01:30
  h.sidecar().tick();
  expect_spent_until(c, kNov02 - wall.seconds_now(), "the repeated hour");

  wall.set(kNov02 - kHalfHour);  // 23:30 EST
  h.sidecar().tick();
  expect_spent_until(c, kHalfHour, "23:30 on the long day");

  wall.set(kNov02 + 1);
  h.sidecar().tick();
  EXPECT_EQ(spend(c, "t").admitted, 10) << "the next day's window";
}

TEST(ClockSteps, WeekAndMonthWindowsAcrossSpringForwardAreAnHourShort) {
  SteppedWallClock wall;
  wall.set(kMar07 + 12 * kHour);  // Saturday
  SidecarHarness h("clock-week", body(R"(
  - name: weekly
    match: { team: weekly }
    tokens_per_week: 1000
    timezone: America/New_York
  - name: monthly
    match: { team: monthly }
    tokens_per_month: 1000
    timezone: America/New_York
)"),
                   "", wall.options());
  Client c = h.attach();
  Spent week = spend(c, "weekly"), month = spend(c, "monthly");
  EXPECT_EQ(week.admitted, 10);
  EXPECT_EQ(week.refused.retry_after_ns, seconds(kMar09 - wall.seconds_now()));
  EXPECT_EQ(month.admitted, 10);
  EXPECT_EQ(month.refused.retry_after_ns, seconds(kApr01 - wall.seconds_now()));
  std::vector<KeyRow> rows = keys_of(h.segment(), "weekly");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].window_start_unix, static_cast<std::uint64_t>(kMar02));
  EXPECT_EQ(rows[0].window_end_unix - rows[0].window_start_unix,
            static_cast<std::uint64_t>(7 * kDay - kHour));
  rows = keys_of(h.segment(), "monthly");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].window_start_unix, static_cast<std::uint64_t>(kMar01));
  EXPECT_EQ(rows[0].window_end_unix - rows[0].window_start_unix,
            static_cast<std::uint64_t>(31 * kDay - kHour));

  wall.set(kMar09 + 1);  // Monday 00:00:01 EDT: a new week, the same month
  h.sidecar().tick();
  week = spend(c, "weekly");
  month = spend(c, "monthly");
  EXPECT_EQ(week.admitted, 10);
  EXPECT_EQ(month.admitted, 0);
  EXPECT_EQ(month.refused.retry_after_ns, seconds(kApr01 - kMar09 - 1));
}

// A window is a key of its own (limit, match, window start), and keys are
// never reset: stepping the wall clock back returns to the earlier window
// with what it had spent, so no window's budget is granted twice. The
// sidecar republishes the window tables when a step puts the wall time
// before them; without that, clients would count the earlier time in the
// tables' first window, a later one, and spend its budget early.
TEST(ClockSteps, AStepBackAcrossMidnightReturnsToTheEarlierWindowWithWhatItSpent) {
  SteppedWallClock wall;
  wall.set(kMar08 - kHalfHour);  // Saturday 23:30 EST
  SidecarHarness h("clock-back", body(kDailyLimit), "", wall.options());
  Client c = h.attach();
  int total = 0;
  auto spend_some = [&](int n) {
    const Spent s = spend(c, "t", n);
    total += s.admitted;
    return s.admitted;
  };

  EXPECT_EQ(spend_some(4), 4);  // Saturday: 400 of 1000

  wall.step(kHour);  // Sunday 00:30
  h.sidecar().tick();
  EXPECT_EQ(spend_some(100), 10);

  wall.step(-kHour);  // Saturday 23:30 again: Saturday's window, 400 spent
  h.sidecar().tick();
  Spent s = spend(c, "t");
  total += s.admitted;
  EXPECT_EQ(s.admitted, 6);
  EXPECT_EQ(s.refused.retry_after_ns, seconds(kHalfHour));
  std::vector<KeyRow> rows = keys_of(h.segment(), "daily");
  ASSERT_EQ(rows.size(), 1u) << "only the window the wall clock is in";
  EXPECT_EQ(rows[0].window_start_unix, static_cast<std::uint64_t>(kMar07));

  wall.step(kHour);  // Sunday 00:30 again: spent
  h.sidecar().tick();
  expect_spent_until(c, kMar09 - wall.seconds_now(), "Sunday again");

  // Nine days on, past the middle of the window tables: republished from 17 March.
  wall.step(9 * kDay);
  h.sidecar().tick();
  ASSERT_GE(wall.seconds_now(), kMar17);
  EXPECT_EQ(spend_some(3), 3);

  // Back to Sunday 8 March, before every window the tables now hold: Sunday's
  // window again, spent, not 17 March's with 700 left.
  wall.step(-9 * kDay);
  h.sidecar().tick();
  expect_spent_until(c, kMar09 - wall.seconds_now(), "Sunday after nine days back");
  rows = keys_of(h.segment(), "daily");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].window_start_unix, static_cast<std::uint64_t>(kMar08));
  EXPECT_EQ(rows[0].window_end_unix, static_cast<std::uint64_t>(kMar09));
  EXPECT_EQ(rows[0].used, 1000u);

  wall.step(-kDay);  // Saturday 00:30: spent too
  h.sidecar().tick();
  expect_spent_until(c, kMar08 - wall.seconds_now(), "Saturday a day back");

  EXPECT_EQ(total, 10 + 10 + 3) << "Saturday, Sunday and 17 March, each once";
  Result<std::vector<KeyRow>> all = list_keys(h.segment(), /*all_windows=*/true);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
}

// With no sidecar ticking, no step reaches the clients: they run on the
// monotonic clock plus the last offset published, in the window they were
// in. A table the wall time has run past (a sidecar that published a step's
// offset and died before the tables) is refused as policy_stale, never
// counted in its last window; rate limits are unaffected. A sidecar that
// comes back publishes both, and the new window has its whole budget.
TEST(ClockSteps, WithTheSidecarGoneAStepReachesNoClientAndATableRunPastIsStale) {
  SteppedWallClock wall;
  wall.set(kMar08 + 12 * kHour);
  SidecarHarness h("clock-gone", body(R"(
  - name: daily
    match: { team: b }
    tokens_per_day: 1000
    timezone: America/New_York
  - name: per-second
    match: { team: r }
    requests_per_minute: 60
    burst_requests: 5
)"),
                   "", wall.options());
  Client c = h.attach();
  Spent s = spend(c, "b");
  EXPECT_EQ(s.admitted, 10);
  const std::uint64_t ends_in = s.refused.retry_after_ns;
  EXPECT_EQ(ends_in, seconds(kMar09 - wall.seconds_now()));

  h.stop();  // no more heartbeats, offsets or tables
  wall.step(kDay);
  s = spend(c, "b");
  EXPECT_EQ(s.admitted, 0) << "the step never reached the client";
  EXPECT_EQ(s.refused.reason, Reason::kBudgetExhausted);
  EXPECT_LE(s.refused.retry_after_ns, ends_in);
  EXPECT_GE(s.refused.retry_after_ns, ends_in - 2 * kSecondNs);

  // The state a sidecar leaves that published a 20-day step and died
  // before republishing the window tables (16 days long).
  Result<SegmentMap> seg = SegmentMap::attach(h.segment());
  ASSERT_TRUE(seg.ok()) << seg.status().message();
  shm::store_relaxed(seg->header().wall_offset_ns,
                     seconds(kMar08 + 12 * kHour + 20 * kDay) + kSecondNs / 2 - monotonic_ns());
  s = spend(c, "b");
  EXPECT_EQ(s.admitted, 0);
  EXPECT_EQ(s.refused.reason, Reason::kPolicyStale);
  EXPECT_EQ(c.limit_name(s.refused.limit_index), "daily");
  EXPECT_EQ(spend(c, "r").admitted, 5) << "rate limits do not read the wall clock";

  wall.set(kMar08 + 12 * kHour + 20 * kDay);
  h.start();  // reopens the segment, publishes the clock and fresh tables
  s = spend(c, "b");
  EXPECT_EQ(s.admitted, 10);
  EXPECT_EQ(s.refused.reason, Reason::kBudgetExhausted);
  expect_refused_by_the_rate(c, "the sidecar came back", "r");
}

}  // namespace
}  // namespace sluice
