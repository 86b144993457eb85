// The sluiced binary's lifecycle: start, refuse a second instance, SIGHUP,
// SIGTERM (segment kept), SIGKILL + restart (counters kept), bad config.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "audit_generated.h"
#include "child_process.h"
#include "clock.h"
#include "log_reader.h"
#include "record_attributes.h"
#include "segment.h"
#include "sidecar.h"
#include "sluice/inspect.h"
#include "sluice/quota.h"
#include "sluice_fixture.h"
#include "test_support.h"

namespace sluice {
namespace {

const std::string kBuild = testing::build_root();

const char* const kLimits = R"(
limits:
  - name: daily
    tokens_per_day: 1000
)";

struct Spawned {
  pid_t pid = -1;
  std::string output_path;
  std::string output() const {
    std::ifstream in(output_path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

// Starts build/sidecar/sluiced with `args`, stdout and stderr to a file.
Spawned spawn_sluiced(const std::vector<std::string>& args) {
  static int n = 0;
  Spawned sp;
  sp.output_path = "/tmp/sluiced-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
  std::vector<std::string> argv{kBuild + "/sidecar/sluiced"};
  argv.insert(argv.end(), args.begin(), args.end());
  sp.pid = testing::spawn_child(argv, sp.output_path, sp.output_path);
  EXPECT_GT(sp.pid, 0);
  return sp;
}

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

using testing::eventually;

bool alive(const std::string& segment) {
  Result<SegmentStatus> s = read_status(segment);
  return s.ok() && s->sidecar_alive;
}

class Sluiced : public ::testing::Test {
 protected:
  void SetUp() override {
    segment_ = testing::unique_segment("sluiced");
    policy_ = testing::write_policy(segment_, kLimits);
  }
  void TearDown() override {
    for (pid_t p : started_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, WNOHANG);
    }
    (void)SegmentMap::remove(segment_);
    std::remove(sidecar_lock_path(segment_).c_str());
    std::remove(policy_.c_str());
    std::filesystem::remove_all(testing::test_audit_dir(segment_));
    testing::remove_test_store(testing::test_store_path(segment_));
    for (const std::string& f : outputs_) std::remove(f.c_str());
  }
  Spawned spawn(const std::vector<std::string>& args) {
    Spawned sp = spawn_sluiced(args);
    outputs_.push_back(sp.output_path);
    return sp;
  }
  Spawned start(const std::string& tick_ms = "20") {
    Spawned sp = spawn({"--foreground", "--config", policy_, "--tick-ms", tick_ms});
    started_.push_back(sp.pid);
    EXPECT_TRUE(eventually([&] { return alive(segment_); })) << sp.output();
    return sp;
  }
  std::uint64_t spend(std::uint64_t tokens) {
    Result<Client> c = Client::attach(segment_);
    EXPECT_TRUE(c.ok()) << c.status().message();
    Decision d = c->reserve_raw({{}, tokens, 0});
    EXPECT_TRUE(d.admitted);
    return c->commit(d.reservation_id, tokens, 0).ok() ? tokens : 0;
  }
  std::uint64_t used() {
    Result<std::vector<KeyRow>> rows = list_keys(segment_);
    EXPECT_TRUE(rows.ok());
    return rows.ok() && rows->size() == 1 ? rows.value()[0].used : ~0ull;
  }

  std::string segment_, policy_;
  std::vector<pid_t> started_;
  std::vector<std::string> outputs_;
};

TEST_F(Sluiced, SigtermExitsCleanlyAndLeavesTheSegmentAndItsCounters) {
  Spawned sp = start();
  spend(300);
  ::kill(sp.pid, SIGTERM);
  EXPECT_EQ(wait_exit(sp.pid), 0);
  EXPECT_TRUE(SegmentMap::exists(segment_));
  Result<SegmentStatus> st = read_status(segment_);
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(st->sidecar_alive);
  EXPECT_EQ(st->pid, 0u);
  EXPECT_EQ(used(), 300u);
  EXPECT_NE(sp.output().find("segment left in place"), std::string::npos) << sp.output();
}

TEST_F(Sluiced, RestartAfterSigkillReopensTheSegmentAndSettlesTheDeadClient) {
  Spawned first = start(/*tick_ms=*/"10000");  // too slow to settle anything itself
  spend(100);
  // A client that dies holding a reservation.
  const pid_t client = ::fork();
  if (client == 0) {
    Result<Client> c = Client::attach(segment_);
    ::_exit(c.ok() && c->reserve_raw({{}, 50, 50}).admitted ? 0 : 3);
  }
  ASSERT_EQ(wait_exit(client), 0);
  ::kill(first.pid, SIGKILL);
  wait_exit(first.pid);
  EXPECT_EQ(used(), 200u);
  Spawned second = start();
  EXPECT_TRUE(eventually([&] {
    Result<SegmentStatus> st = read_status(segment_);
    return st.ok() && st->abandoned_total == 1 && st->reservations_in_flight == 0;
  }));
  EXPECT_EQ(used(), 200u);  // the dead client's reservation was charged at its estimate
  // Logged once start() returns, after the first store sync: wait for it.
  EXPECT_TRUE(eventually([&] {
    return second.output().find("reopened segment") != std::string::npos;
  })) << second.output();
}

TEST_F(Sluiced, SecondInstanceOnTheSameSegmentIsRefusedInOneLine) {
  Spawned first = start();
  Spawned second = spawn({"--foreground", "--config", policy_});
  EXPECT_EQ(wait_exit(second.pid), 2);
  const std::string out = second.output();
  EXPECT_NE(out.find("another sluiced (pid " + std::to_string(first.pid) + ")"), std::string::npos)
      << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_TRUE(alive(segment_));
}

TEST_F(Sluiced, InvalidPolicyIsRefusedAtStartWithExitTwo) {
  std::ofstream(policy_) << "segment:\n  name: " << segment_ << "\nlimits:\n  - name: x\n"
                         << "    tokens_per_day: -1\n";
  Spawned sp = spawn({"--foreground", "--config", policy_});
  EXPECT_EQ(wait_exit(sp.pid), 2);
  const std::string out = sp.output();
  EXPECT_NE(out.find(policy_ + ":5:"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_FALSE(SegmentMap::exists(segment_));
}

TEST_F(Sluiced, SighupWithABrokenFileKeepsTheRunningPolicy) {
  Spawned sp = start();
  const std::uint64_t gen = read_status(segment_)->policy_generation;
  std::ofstream(policy_) << "segment:\n  name: " << segment_ << "\nlimits: 7\n";
  ::kill(sp.pid, SIGHUP);
  EXPECT_TRUE(eventually([&] { return sp.output().find("reload refused") != std::string::npos; }))
      << sp.output();
  EXPECT_EQ(read_status(segment_)->policy_generation, gen);
  EXPECT_EQ(spend(1000), 1000u);  // the old limit still applies: 1000 fits, no more
  Result<Client> c = Client::attach(segment_);
  EXPECT_FALSE(c->reserve_raw({{}, 1, 0}).admitted);
}

TEST_F(Sluiced, BackgroundModeReportsItsPidAndKeepsRunning) {
  const std::string log = "/tmp/" + segment_ + ".log";
  Spawned sp = spawn({"--config", policy_, "--log", log});
  EXPECT_EQ(wait_exit(sp.pid), 0) << sp.output();
  EXPECT_NE(sp.output().find("sluiced: started (pid "), std::string::npos) << sp.output();
  ASSERT_TRUE(eventually([&] { return alive(segment_); }));
  const pid_t daemon = static_cast<pid_t>(read_status(segment_)->pid);
  EXPECT_NE(daemon, sp.pid);
  ::kill(daemon, SIGTERM);
  EXPECT_TRUE(eventually([&] { return !alive(segment_); }));
  std::remove(log.c_str());
}

// Every record in the audit files of `dir`, in order, after a full verify.
struct AuditOnDisk {
  std::vector<std::uint64_t> sequences;
  std::size_t after_restart = 0;  // records of calls tagged phase=after
  std::size_t bad_frames = 0;
};

AuditOnDisk read_audit(const std::string& dir) {
  AuditOnDisk out;
  Result<audit::VerifyReport> v = audit::verify_dir(dir);
  EXPECT_TRUE(v.ok()) << v.status().message();
  if (v.ok()) {
    out.bad_frames = v->bad.size();
    for (const audit::BadFrame& b : v->bad) ADD_FAILURE() << b.message;
  }
  Result<audit::LogReader> r = audit::LogReader::open(dir);
  EXPECT_TRUE(r.ok());
  while (r.ok()) {
    Result<std::optional<audit::FrameRef>> f = r->next();
    if (!f.ok() || !f.value()) break;
    const audit::fb::Record* rec = audit::fb::GetRecord(f.value()->payload.data());
    out.sequences.push_back(rec->sequence());
    audit::for_each_attribute(*rec, [&](std::string_view n, std::string_view v) {
      out.after_restart += n == "phase" && v == "after";
    });
  }
  return out;
}

TEST_F(Sluiced, AuditFilesSurviveASigkillMidDrainAndNumberingGoesOn) {
  Spawned first = start();
  Result<Client> c = Client::attach(segment_);
  ASSERT_TRUE(c.ok());
  auto calls = [&](const char* phase, int n) {
    const Attribute attrs[] = {{"phase", phase}};
    for (int i = 0; i < n; ++i) {
      const Decision d = c->reserve_raw({attrs, 0, 0});
      ASSERT_TRUE(d.admitted);
      ASSERT_TRUE(c->cancel(d.reservation_id).ok());
    }
  };
  // Records stream to disk while the sidecar dies.
  std::thread killer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    ::kill(first.pid, SIGKILL);
  });
  calls("before", 50'000);
  killer.join();
  wait_exit(first.pid);
  calls("between", 1000);  // waits in the ring for the next sidecar
  Spawned second = start();
  calls("after", 1000);
  ::kill(second.pid, SIGTERM);  // drains the ring to disk
  EXPECT_EQ(wait_exit(second.pid), 0);

  const AuditOnDisk disk = read_audit(testing::test_audit_dir(segment_));
  EXPECT_EQ(disk.bad_frames, 0u);
  EXPECT_EQ(disk.after_restart, 2000u);  // a reserve and a cancel per call
  ASSERT_FALSE(disk.sequences.empty());
  for (std::size_t i = 1; i < disk.sequences.size(); ++i) {
    ASSERT_LT(disk.sequences[i - 1], disk.sequences[i]) << "at record " << i;
  }
  // Logged once start() returns, after the first store sync: wait for it.
  EXPECT_TRUE(eventually([&] {
    return second.output().find("reopened segment") != std::string::npos;
  })) << second.output();
}

}  // namespace
}  // namespace sluice
