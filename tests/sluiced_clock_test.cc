// A real sluiced whose wall clock is stepped mid-run by libfaketime
// (LD_PRELOAD, the fake time read from a file on every call, the monotonic
// clock left alone), with an unfaked client in the test process: the client
// sees the step only through the offset and window tables sluiced publishes.
// Budget windows follow the step, both ways, across local midnight in New
// York; the rate limit does not notice.
//
// Under ASan, sluiced is told not to insist on its runtime coming first in
// the library list. clock_test runs the same steps in process.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "child_process.h"
#include "segment.h"
#include "sidecar.h"
#include "sluice/inspect.h"
#include "sluice/quota.h"
#include "sluice_fixture.h"
#include "test_support.h"

namespace sluice {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

constexpr std::uint64_t kSecondNs = 1'000'000'000ull;
constexpr std::uint64_t kMinuteNs = 60 * kSecondNs;
constexpr std::uint64_t kHourNs = 60 * kMinuteNs;
constexpr std::uint64_t kMar07 = 1772859600;  // 2026-03-07 00:00 EST
constexpr std::uint64_t kMar08 = 1772946000;  // 2026-03-08 00:00 EST, 23 hours long

// libfaketime's multi-threaded build, wherever the multiarch directory is.
std::string libfaketime() {
  std::error_code ec;
  for (const auto& dir : std::filesystem::directory_iterator("/usr/lib", ec)) {
    const std::filesystem::path lib = dir.path() / "faketime" / "libfaketimeMT.so.1";
    if (std::filesystem::exists(lib, ec)) return lib.string();
  }
  return "";
}

struct Spent {
  int admitted = 0;
  Decision refused;
};

Spent spend(Client& c, const std::string& team) {
  const Attribute attrs[] = {{"team", team}};
  CallRequest req;
  req.attributes = attrs;
  req.input_tokens = 100;
  Spent s;
  for (int i = 0; i < 100; ++i) {
    const Decision d = c.reserve_raw(req);
    if (!d.admitted) {
      s.refused = d;
      break;
    }
    EXPECT_EQ(c.commit(d.reservation_id, 100, 0).error, SettleError::kNone);
    ++s.admitted;
  }
  return s;
}

// The start of the window `sluice keys` shows for the daily budget.
std::uint64_t shown_window(const std::string& segment) {
  Result<std::vector<KeyRow>> rows = list_keys(segment);
  if (!rows.ok()) return 0;
  for (const KeyRow& r : rows.value()) {
    if (r.limit == "daily") return r.window_start_unix;
  }
  return 0;
}

class SluicedUnderFaketime : public ::testing::Test {
 protected:
  void SetUp() override {
    lib_ = libfaketime();
    ASSERT_FALSE(lib_.empty()) << "libfaketime not found; run tools/bootstrap";
    segment_ = testing::unique_segment("faketime");
    policy_ = testing::write_policy(segment_, R"(limits:
  - name: daily
    match: { team: b }
    tokens_per_day: 1000
    timezone: America/New_York
  - name: per-second
    match: { team: r }
    requests_per_hour: 60
    burst_requests: 5
)");
    time_file_ = "/tmp/" + segment_ + ".faketime";
    log_ = "/tmp/" + segment_ + ".log";
  }
  void TearDown() override {
    testing::stop_child(pid_);
    (void)SegmentMap::remove(segment_);
    std::remove(sidecar_lock_path(segment_).c_str());
    for (const std::string& f : {policy_, time_file_, log_}) std::remove(f.c_str());
    std::filesystem::remove_all(testing::test_audit_dir(segment_));
    testing::remove_test_store(testing::test_store_path(segment_));
  }

  // The fake wall clock starts at `utc` ("2026-03-07 17:00:00") and runs on.
  void set_wall(const std::string& utc) { std::ofstream(time_file_) << "@" << utc << "\n"; }

  void start() {
    std::vector<std::string> args = {"/usr/bin/env",        "TZ=UTC",
                                     "LD_PRELOAD=" + lib_,  "FAKETIME_TIMESTAMP_FILE=" + time_file_,
                                     "FAKETIME_NO_CACHE=1", "DONT_FAKE_MONOTONIC=1"};
    if (kAsan) {  // ASan checks that its runtime comes first in the library list
      const char* options = std::getenv("ASAN_OPTIONS");
      args.push_back("ASAN_OPTIONS=" + std::string(options != nullptr ? options : "") +
                     ":verify_asan_link_order=0");
    }
    const std::vector<std::string> sluiced = {testing::build_root() + "/sidecar/sluiced",
                                              "--foreground",
                                              "--config",
                                              policy_,
                                              "--tick-ms",
                                              "20"};
    args.insert(args.end(), sluiced.begin(), sluiced.end());
    pid_ = testing::spawn_child(args, log_, log_);
    ASSERT_GT(pid_, 0);
    ASSERT_TRUE(testing::eventually([&] {
      Result<SegmentStatus> s = read_status(segment_);
      return s.ok() && s->sidecar_alive;
    })) << testing::read_text(log_);
  }

  std::string lib_, segment_, policy_, time_file_, log_;
  pid_t pid_ = -1;
};

TEST_F(SluicedUnderFaketime, AWallStepMidRunMovesBudgetWindowsBothWaysAndLeavesRatesAlone) {
  set_wall("2026-03-07 17:00:00");  // Saturday 12:00 EST
  start();
  Result<Client> attached = Client::attach(segment_);
  ASSERT_TRUE(attached.ok()) << attached.status().message();
  Client& c = attached.value();
  ASSERT_EQ(shown_window(segment_), 0u);
  Spent b = spend(c, "b");
  EXPECT_EQ(b.admitted, 10);
  EXPECT_EQ(b.refused.reason, Reason::kBudgetExhausted);
  EXPECT_LE(b.refused.retry_after_ns, 12 * kHourNs) << "Saturday ends at midnight";
  EXPECT_GT(b.refused.retry_after_ns, 12 * kHourNs - 60 * kSecondNs);
  EXPECT_EQ(shown_window(segment_), kMar07);
  EXPECT_EQ(spend(c, "r").admitted, 5);

  set_wall("2026-03-08 05:00:01");  // Sunday 00:00:01 EST: 12 hours on
  ASSERT_TRUE(testing::eventually([&] { return shown_window(segment_) != kMar07; }))
      << testing::read_text(log_);
  b = spend(c, "b");
  EXPECT_EQ(b.admitted, 10) << "Sunday's window has the whole budget";
  EXPECT_LE(b.refused.retry_after_ns, 23 * kHourNs) << "the spring-forward day lasts 23 h";
  EXPECT_GT(b.refused.retry_after_ns, 23 * kHourNs - 60 * kSecondNs);
  EXPECT_EQ(shown_window(segment_), kMar08);
  Spent r = spend(c, "r");
  EXPECT_EQ(r.admitted, 0) << "no extra burst from a step forward";
  EXPECT_LE(r.refused.retry_after_ns, kMinuteNs);

  set_wall("2026-03-08 04:00:00");  // Saturday 23:00 EST: an hour back
  ASSERT_TRUE(testing::eventually([&] { return shown_window(segment_) == kMar07; }))
      << testing::read_text(log_);
  b = spend(c, "b");
  EXPECT_EQ(b.admitted, 0) << "Saturday's budget was spent before the step";
  EXPECT_EQ(b.refused.reason, Reason::kBudgetExhausted);
  EXPECT_LE(b.refused.retry_after_ns, kHourNs);
  EXPECT_GT(b.refused.retry_after_ns, kHourNs - 60 * kSecondNs);
  r = spend(c, "r");
  EXPECT_EQ(r.admitted, 0);
  EXPECT_EQ(r.refused.reason, Reason::kRateLimited);
  EXPECT_LE(r.refused.retry_after_ns, kMinuteNs) << "no lockout from a step back";

  attached = Result<Client>(Status(ErrorCode::kNotFound, "detached"));
  testing::stop_child(pid_);
  pid_ = -1;
}

}  // namespace
}  // namespace sluice
