// From a decision to a record on disk: the sidecar drains the ring, names
// what the ring carries as numbers, carries a reservation's attributes to its
// later records, writes what the reclaimer settled, and numbers records on
// across restarts.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "audit_generated.h"
#include "audit_test_policy.h"
#include "clock.h"
#include "log_reader.h"
#include "record_attributes.h"
#include "sluice_fixture.h"

namespace sluice {
namespace {

using testing::SidecarHarness;
namespace fb = audit::fb;

const char* const kLimits = testing::kAuditTestPolicy;

SidecarOptions manual() {
  SidecarOptions o;
  o.audit = SidecarOptions::Audit::kManual;
  return o;
}

// A policy whose audit files go to a fresh directory of their own.
class AuditedSidecar {
 public:
  explicit AuditedSidecar(const std::string& tag, SidecarOptions options = manual())
      : dir_("/tmp/" + testing::unique_segment(tag) + "-audit"),
        h_(tag, std::string(kLimits) + "audit:\n  dir: " + dir_ + "\n", "", std::move(options)) {}
  ~AuditedSidecar() { std::filesystem::remove_all(dir_); }

  SidecarHarness& h() { return h_; }
  const std::string& dir() const { return dir_; }
  void pump() {
    while (h_.sidecar().audit()->pump(monotonic_ns()) != 0) {
    }
    ASSERT_TRUE(h_.sidecar().audit()->stop().ok());  // everything on disk
  }

 private:
  std::string dir_;
  SidecarHarness h_;
};

struct Row {
  std::uint64_t sequence;
  std::uint64_t reservation_id;
  fb::Event event;
  fb::Decision decision;
  std::string reason, limit;
  std::map<std::string, std::string> attrs;
  std::vector<std::string> shadows;
  std::uint64_t cost_nusd, est_input, est_output, actual_input, actual_output;
  std::uint32_t pid;
};

std::vector<Row> read_all(const std::string& dir) {
  std::vector<Row> rows;
  Result<audit::LogReader> r = audit::LogReader::open(dir);
  EXPECT_TRUE(r.ok()) << r.status().message();
  if (!r.ok()) return rows;
  for (;;) {
    Result<std::optional<audit::FrameRef>> f = r->next();
    EXPECT_TRUE(f.ok());
    if (!f.ok() || !f.value()) break;
    const std::span<const std::uint8_t> p = f.value()->payload;
    flatbuffers::Verifier v(p.data(), p.size());
    EXPECT_TRUE(fb::VerifyRecordBuffer(v));
    const fb::Record* rec = fb::GetRecord(p.data());
    Row row{rec->sequence(),
            rec->reservation_id(),
            rec->event(),
            rec->decision(),
            rec->reason() ? rec->reason()->str() : "",
            rec->limit() ? rec->limit()->str() : "",
            {},
            {},
            rec->cost_nusd(),
            rec->est_input_tokens(),
            rec->est_output_tokens(),
            rec->actual_input_tokens(),
            rec->actual_output_tokens(),
            rec->pid()};
    audit::for_each_attribute(*rec, [&](std::string_view n, std::string_view v) {
      row.attrs[std::string(n)] = std::string(v);
    });
    if (rec->shadow_rejects()) {
      for (const flatbuffers::String* s : *rec->shadow_rejects()) row.shadows.push_back(s->str());
    }
    rows.push_back(std::move(row));
  }
  EXPECT_TRUE(r->problems().empty());
  return rows;
}

TEST(AuditPipeline, EveryDecisionIsOnDiskWithNamesAndTheCallsAttributes) {
  AuditedSidecar a("pipe-names");
  Client c = a.h().attach();
  const Attribute search[] = {{"team", "search"}, {"feature", "chat"}, {"model", "cheap"}};
  Reservation r = c.reserve({search, 1000, 500});
  ASSERT_TRUE(r.admitted());
  const std::uint64_t id = r.id();
  ASSERT_TRUE(r.commit(900, 100).ok());
  const Attribute tiny[] = {{"team", "tiny"}, {"model", "cheap"}};
  Reservation first = c.reserve({tiny, 1, 1});
  ASSERT_TRUE(first.admitted());
  const Decision refused = c.reserve_raw({tiny, 1, 1});
  ASSERT_FALSE(refused.admitted);
  first.cancel();
  a.pump();

  const std::vector<Row> rows = read_all(a.dir());
  ASSERT_EQ(rows.size(), 5u);
  for (std::size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].sequence, i);
  const std::map<std::string, std::string> search_attrs = {
      {"team", "search"}, {"feature", "chat"}, {"model", "cheap"}};

  EXPECT_EQ(rows[0].event, fb::Event::Reserve);
  EXPECT_EQ(rows[0].decision, fb::Decision::Admitted);
  EXPECT_EQ(rows[0].reservation_id, id);
  EXPECT_EQ(rows[0].attrs, search_attrs);
  EXPECT_EQ(rows[0].cost_nusd, 2'000'000u);
  EXPECT_EQ(rows[0].pid, static_cast<std::uint32_t>(::getpid()));

  EXPECT_EQ(rows[1].event, fb::Event::Commit);
  EXPECT_EQ(rows[1].decision, fb::Decision::Settled);
  EXPECT_EQ(rows[1].attrs, search_attrs);  // carried from the reserve
  EXPECT_EQ(rows[1].actual_input, 900u);
  EXPECT_EQ(rows[1].actual_output, 100u);
  EXPECT_EQ(rows[1].cost_nusd, 1'100'000u);

  EXPECT_EQ(rows[2].decision, fb::Decision::Admitted);
  EXPECT_EQ(rows[2].shadows, std::vector<std::string>{"watch-only"});
  EXPECT_EQ(rows[3].event, fb::Event::Reserve);
  EXPECT_EQ(rows[3].decision, fb::Decision::Rejected);
  EXPECT_EQ(rows[3].reason, "rate_limited");
  EXPECT_EQ(rows[3].limit, "one-per-hour");
  EXPECT_EQ(rows[3].attrs.at("team"), "tiny");
  EXPECT_EQ(rows[4].event, fb::Event::Cancel);
  EXPECT_EQ(rows[4].attrs.at("team"), "tiny");

  const shm::AuditRingControl& ctl = a.h().seg().audit_control();
  EXPECT_EQ(shm::load_relaxed(ctl.drained), 5u);
  EXPECT_EQ(shm::load_relaxed(ctl.written), 5u);
  EXPECT_GT(shm::load_relaxed(ctl.bytes_on_disk), 5 * 100u);
  EXPECT_NE(shm::load_relaxed(ctl.writer_kind), 0u);
  char dir[sizeof(a.h().seg().header().audit_dir)];
  EXPECT_EQ(std::string(dir, shm::load_text(a.h().seg().header().audit_dir, dir)), a.dir());
}

TEST(AuditPipeline, ACommitsCallReportIsOnDiskAndACommitWithoutOneHasNone) {
  AuditedSidecar a("pipe-report");
  Client c = a.h().attach();
  const Attribute call[] = {{"team", "search"}, {"model", "cheap"}};
  Reservation reported = c.reserve({call, 10, 10});
  ASSERT_TRUE(reported.admitted());
  ASSERT_TRUE(
      reported
          .commit(10, 5,
                  {Outcome::kProviderError, 1'250'000'000, 300'000'000, 503, "cheap-2026-11-01"})
          .ok());
  Reservation plain = c.reserve({call, 10, 10});
  ASSERT_TRUE(plain.admitted());
  ASSERT_TRUE(plain.commit(10, 5).ok());
  a.pump();

  std::vector<const fb::Record*> commits;
  std::vector<std::vector<std::uint8_t>> payloads;
  Result<audit::LogReader> r = audit::LogReader::open(a.dir());
  ASSERT_TRUE(r.ok());
  for (;;) {
    Result<std::optional<audit::FrameRef>> f = r->next();
    ASSERT_TRUE(f.ok());
    if (!f.value()) break;
    payloads.emplace_back(f.value()->payload.begin(), f.value()->payload.end());
  }
  for (const std::vector<std::uint8_t>& p : payloads) {
    const fb::Record* rec = fb::GetRecord(p.data());
    if (rec->event() == fb::Event::Commit) commits.push_back(rec);
  }
  ASSERT_EQ(commits.size(), 2u);
  ASSERT_NE(commits[0]->outcome(), nullptr);
  EXPECT_EQ(commits[0]->outcome()->str(), "provider_error");
  EXPECT_EQ(commits[0]->http_status(), 503u);
  EXPECT_EQ(commits[0]->latency_ns(), 1'250'000'000u);
  EXPECT_EQ(commits[0]->ttft_ns(), 300'000'000u);
  ASSERT_NE(commits[0]->model_version(), nullptr);
  EXPECT_EQ(commits[0]->model_version()->str(), "cheap-2026-11-01");
  EXPECT_EQ(commits[1]->outcome(), nullptr);
  EXPECT_EQ(commits[1]->http_status(), 0u);
  EXPECT_EQ(commits[1]->latency_ns(), 0u);
  EXPECT_EQ(commits[1]->model_version(), nullptr);
}

TEST(AuditPipeline, AKilledClientsReservationIsRecordedAsAbandonedWithItsAttributes) {
  AuditedSidecar a("pipe-abandon");
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    Result<Client> c = Client::attach(a.h().segment());
    if (!c.ok()) ::_exit(2);
    const Attribute attrs[] = {{"team", "search"}, {"model", "cheap"}};
    const Decision d = c->reserve_raw({attrs, 100, 100});
    const char ok = d.admitted ? 1 : 0;
    if (::write(ready[1], &ok, 1) != 1) ::_exit(3);
    for (;;) ::pause();
  }
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  ASSERT_EQ(ok, 1);
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);
  a.h().sidecar().tick();  // reclaims: the reservation is charged at its estimate
  a.pump();
  const std::vector<Row> rows = read_all(a.dir());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].event, fb::Event::Abandon);
  EXPECT_EQ(rows[1].decision, fb::Decision::Abandoned);
  EXPECT_EQ(rows[1].reason, "charged_at_estimate");
  EXPECT_EQ(rows[1].reservation_id, rows[0].reservation_id);
  EXPECT_EQ(rows[1].pid, static_cast<std::uint32_t>(child));
  EXPECT_EQ(rows[1].cost_nusd, 300'000u);  // 100 * $1/M + 100 * $2/M
  EXPECT_EQ(rows[1].attrs.at("team"), "search");
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST(AuditPipeline, SequenceNumbersGoOnAcrossASidecarRestart) {
  AuditedSidecar a("pipe-restart");
  {
    Client c = a.h().attach();
    const Attribute attrs[] = {{"team", "search"}};
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.reserve_raw({attrs, 1, 1}).admitted);
  }
  a.pump();
  a.h().stop();
  a.h().start();
  EXPECT_EQ(a.h().sidecar().audit()->next_sequence(), 3u);
  {
    Client c = a.h().attach();
    const Attribute attrs[] = {{"team", "search"}};
    ASSERT_TRUE(c.reserve_raw({attrs, 1, 1}).admitted);
  }
  a.pump();
  const std::vector<Row> rows = read_all(a.dir());
  // Three reserves, one after the restart, and the first three settled as
  // abandoned (their client detached without settling): numbered 0 to 6.
  ASSERT_EQ(rows.size(), 7u);
  for (std::size_t i = 0; i < rows.size(); ++i) EXPECT_EQ(rows[i].sequence, i);
  EXPECT_EQ(rows[3].event, fb::Event::Reserve);
  EXPECT_EQ(rows[6].event, fb::Event::Abandon);
}

TEST(AuditPipeline, TheDrainThreadWritesWithoutBeingAsked) {
  AuditedSidecar a("pipe-thread", SidecarOptions{});
  Client c = a.h().attach();
  const Attribute attrs[] = {{"team", "search"}};
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(c.reserve_raw({attrs, 1, 1}).admitted);
  const shm::AuditRingControl& ctl = a.h().seg().audit_control();
  for (int i = 0; i < 2000 && shm::load_acquire(ctl.drained) < 100; ++i) ::usleep(1000);
  EXPECT_EQ(shm::load_acquire(ctl.drained), 100u);
  a.h().sidecar().stop();  // drains and closes
  EXPECT_EQ(read_all(a.dir()).size(), 100u);
}

TEST(AuditPipeline, AuditOffWritesNothing) {
  const std::string dir = "/tmp/" + testing::unique_segment("pipe-off") + "-audit";
  SidecarHarness h("pipe-off",
                   std::string(kLimits) + "audit:\n  enabled: false\n  dir: " + dir + "\n", "",
                   manual());
  Client c = h.attach();
  const Attribute attrs[] = {{"team", "search"}};
  ASSERT_TRUE(c.reserve_raw({attrs, 1, 1}).admitted);
  EXPECT_EQ(h.sidecar().audit()->pump(monotonic_ns()), 0u);
  EXPECT_EQ(shm::load_relaxed(h.seg().audit_control().tail), 0u);
  EXPECT_EQ(shm::load_relaxed(h.seg().audit_control().dropped), 0u);
  std::filesystem::remove_all(dir);
}

TEST(AuditPipeline, AReloadThatMovesTheAuditFilesIsRefusedAndTheRunningPolicyKept) {
  AuditedSidecar a("pipe-reload");
  const Status s = a.h().rewrite(std::string(kLimits) + "audit:\n  dir: /tmp/elsewhere\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("restart it"), std::string::npos) << s.message();
  EXPECT_EQ(a.h().sidecar().policy().audit.dir, a.dir());
  // Settings clients read (required) do reload.
  EXPECT_TRUE(
      a.h()
          .rewrite(std::string(kLimits) + "audit:\n  dir: " + a.dir() + "\n  required: true\n")
          .ok());
  EXPECT_TRUE(a.h().sidecar().policy().audit.required);
}

// A drain killed after writing records but before giving their ring span
// back: the next one reads on after the last record its files hold, so every
// record is on disk exactly once.
TEST(AuditPipeline, DrainRestartedAfterACrashWritesEveryRecordOnce) {
  SidecarHarness h("pipe-crash", kLimits);
  const std::string dir = "/tmp/" + h.segment() + "-crash-audit";
  AuditSpec spec;
  spec.dir = dir;
  spec.fsync_interval_ms = 60'000;  // nothing is written before the flush below
  Client c = h.attach();
  const Attribute attrs[] = {{"team", "search"}, {"model", "cheap"}};
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.reserve({attrs, 1, 1}).admitted());  // + a cancel
  const shm::AuditRingControl& ring = h.seg().audit_control();
  const shm::Word head_before = shm::load_acquire(ring.head);

  const pid_t pid = ::fork();
  if (pid == 0) {
    Result<std::unique_ptr<AuditPipeline>> p = AuditPipeline::open(h.seg(), spec, "", nullptr);
    if (!p.ok()) ::_exit(1);
    (*p)->pump(monotonic_ns());
    ::_exit((*p)->flush(true).ok() ? 0 : 2);  // on disk; the ring not yet given back
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(shm::load_acquire(ring.head), head_before);  // still claimed
  EXPECT_EQ(read_all(dir).size(), 20u);

  Result<std::unique_ptr<AuditPipeline>> p =
      AuditPipeline::open(h.seg(), spec, "", [](const std::string&) {});
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_TRUE(c.reserve({attrs, 1, 1}).admitted());  // two records more, after the crash
  while ((*p)->pump(monotonic_ns()) != 0) {
  }
  ASSERT_TRUE((*p)->stop().ok());
  EXPECT_EQ(shm::load_acquire(ring.head), shm::load_acquire(ring.tail));
  const std::vector<Row> rows = read_all(dir);
  ASSERT_EQ(rows.size(), 22u);
  std::map<std::pair<std::uint64_t, fb::Event>, int> seen;
  for (const Row& r : rows) ++seen[{r.reservation_id, r.event}];
  for (const auto& [key, n] : seen) EXPECT_EQ(n, 1) << "reservation " << key.first;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice
