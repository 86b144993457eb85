// `sluice audit` and `sluice audit verify` end to end: the real sluice
// binary run as a child process over audit segment files this test writes
// itself (FlatBuffers Records framed as FORMAT.md says), and `sluice status`
// over a live sidecar. Real values are asserted on the output and the exit
// status; waits poll with a deadline, nothing sleeps a fixed time.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "audit_generated.h"
#include "child_process.h"
#include "frame.h"
#include "sluice_fixture.h"
#include "test_support.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
namespace fb = audit::fb;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using testing::build_root;
using testing::eventually;
using testing::one_line;
using testing::read_text;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream s(text);
  for (std::string line; std::getline(s, line);) out.push_back(line);
  return out;
}

std::vector<std::string> words_of(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream s(line);
  for (std::string w; s >> w;) out.push_back(w);
  return out;
}

constexpr std::uint64_t kNsPerSecond = 1'000'000'000ull;

// 2026-11-23T00:00:00Z
constexpr std::uint64_t kDay = 1'795'392'000ull * kNsPerSecond;
constexpr std::uint64_t kHour = 3600 * kNsPerSecond;

std::uint64_t now_unix_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// One record as the sidecar would encode it.
struct RecordSpec {
  std::uint64_t sequence = 0;
  std::uint64_t time_unix_ns = 0;
  std::uint64_t reservation_id = 0;
  std::uint32_t pid = 4242;
  std::uint64_t start_time = 987654;
  fb::Event event = fb::Event::Reserve;
  fb::Decision decision = fb::Decision::Admitted;
  std::string reason;
  std::string limit;  // empty: absent
  std::vector<std::pair<std::string, std::string>> attributes;
  std::uint64_t est_input = 0;
  std::uint64_t est_output = 0;
  std::uint64_t actual_input = 0;
  std::uint64_t actual_output = 0;
  std::uint64_t cost_nusd = 0;
  std::uint64_t retry_after_ns = 0;
  std::vector<std::string> shadow_rejects;
  std::uint64_t policy_generation = 3;
  // The call report (commits); empty / 0: absent.
  std::string outcome;
  std::uint64_t latency_ns = 0;
  std::uint64_t ttft_ns = 0;
  std::uint16_t http_status = 0;
  std::string model_version;
};

std::vector<std::uint8_t> encode_record(const RecordSpec& r) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<flatbuffers::Offset<flatbuffers::String>> names, values;
  for (const auto& [name, value] : r.attributes) {
    names.push_back(fbb.CreateString(name));
    values.push_back(fbb.CreateString(value));
  }
  const auto names_vec = fbb.CreateVector(names);
  const auto values_vec = fbb.CreateVector(values);
  std::vector<flatbuffers::Offset<flatbuffers::String>> shadows;
  for (const std::string& s : r.shadow_rejects) shadows.push_back(fbb.CreateString(s));
  const auto shadow_vec = shadows.empty() ? 0 : fbb.CreateVector(shadows);
  const auto limit = r.limit.empty() ? 0 : fbb.CreateString(r.limit);
  const auto reason = fbb.CreateString(r.reason);
  const auto outcome = r.outcome.empty() ? 0 : fbb.CreateString(r.outcome);
  const auto version = r.model_version.empty() ? 0 : fbb.CreateString(r.model_version);
  fb::RecordBuilder b(fbb);
  b.add_sequence(r.sequence);
  b.add_time_unix_ns(r.time_unix_ns);
  b.add_reservation_id(r.reservation_id);
  b.add_pid(r.pid);
  b.add_start_time(r.start_time);
  b.add_event(r.event);
  b.add_decision(r.decision);
  b.add_reason(reason);
  if (!r.limit.empty()) b.add_limit(limit);
  b.add_attribute_names(names_vec);
  b.add_attribute_values(values_vec);
  b.add_est_input_tokens(r.est_input);
  b.add_est_output_tokens(r.est_output);
  b.add_actual_input_tokens(r.actual_input);
  b.add_actual_output_tokens(r.actual_output);
  b.add_cost_nusd(r.cost_nusd);
  b.add_retry_after_ns(r.retry_after_ns);
  if (!shadows.empty()) b.add_shadow_rejects(shadow_vec);
  b.add_policy_generation(r.policy_generation);
  if (!r.outcome.empty()) b.add_outcome(outcome);
  if (r.latency_ns != 0) b.add_latency_ns(r.latency_ns);
  if (r.ttft_ns != 0) b.add_ttft_ns(r.ttft_ns);
  if (r.http_status != 0) b.add_http_status(r.http_status);
  if (!r.model_version.empty()) b.add_model_version(version);
  fb::FinishRecordBuffer(fbb, b.Finish());
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

std::vector<std::uint8_t> frame_of(const std::vector<std::uint8_t>& payload) {
  std::vector<std::uint8_t> out(audit::frame_size(payload.size()));
  EXPECT_EQ(audit::encode_frame(payload, out), out.size());
  return out;
}

std::vector<std::uint8_t> framed(const RecordSpec& r) { return frame_of(encode_record(r)); }

void append_bytes(const fs::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

// A ids past 2^53: exact only as reservation_str (or a 64-bit reader).
constexpr std::uint64_t kBigId = (0x12345678ull << 32) | 42;

// The four records every test below starts from: two in the older file, two
// in the newer one (which has a zero tail, as the writer preallocates).
RecordSpec reserve_pricing() {
  RecordSpec r;
  r.sequence = 1;
  r.time_unix_ns = kDay + 9 * kHour + 123'456'789;  // 2026-11-23T09:00:00.123456789Z
  r.reservation_id = kBigId;
  r.event = fb::Event::Reserve;
  r.decision = fb::Decision::Admitted;
  r.attributes = {{"team", "pricing"}, {"feature", "quote-agent"}, {"model", "gpt-4o"}};
  r.est_input = 1200;
  r.est_output = 800;
  r.cost_nusd = 11'000'000;  // $0.011
  return r;
}

RecordSpec reject_search() {
  RecordSpec r;
  r.sequence = 2;
  r.time_unix_ns = kDay + 9 * kHour + kHour / 2;  // 09:30
  r.reservation_id = 0;
  r.pid = 777;
  r.event = fb::Event::Reserve;
  r.decision = fb::Decision::Rejected;
  r.reason = "rate_limited";
  r.limit = "per-team-rpm";
  r.attributes = {{"team", "search"}};
  r.est_input = 50;
  r.est_output = 10;
  r.retry_after_ns = 1'500'001;  // rounds up to 2 ms
  r.shadow_rejects = {"shadow-daily", "shadow-hourly"};
  return r;
}

RecordSpec commit_pricing() {
  RecordSpec r = reserve_pricing();
  r.sequence = 3;
  r.time_unix_ns = kDay + 10 * kHour;  // 10:00
  r.event = fb::Event::Commit;
  r.decision = fb::Decision::Settled;
  r.actual_input = 1180;
  r.actual_output = 412;
  r.cost_nusd = 7'070'000;  // $0.00707
  return r;
}

RecordSpec abandon_search() {
  RecordSpec r;
  r.sequence = 4;
  r.time_unix_ns = kDay + 24 * kHour + 8 * kHour;  // 2026-11-24T08:00:00Z
  r.reservation_id = (9ull << 32) | 1;
  r.event = fb::Event::Abandon;
  r.decision = fb::Decision::Abandoned;
  r.reason = "charged_at_estimate";
  r.attributes = {{"team", "search"}, {"model", "gpt-4o-mini"}};
  r.est_input = 300;
  r.est_output = 200;
  r.cost_nusd = 150'000;
  return r;
}

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class AuditCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-auditcli-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    audit_ = dir_ / "audit";
    fs::create_directory(audit_);
    older_ = audit_ / "audit-20261123T090000-000000.sal";
    newer_ = audit_ / "audit-20261123T100000-000000.sal";
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // The four records in two files; returns the offsets of each frame.
  void write_standard_files() {
    const std::vector<std::uint8_t> f1 = framed(reserve_pricing());
    const std::vector<std::uint8_t> f2 = framed(reject_search());
    const std::vector<std::uint8_t> f3 = framed(commit_pricing());
    const std::vector<std::uint8_t> f4 = framed(abandon_search());
    append_bytes(older_, f1);
    append_bytes(older_, f2);
    append_bytes(newer_, f3);
    append_bytes(newer_, f4);
    append_bytes(newer_, std::vector<std::uint8_t>(4096, 0));  // preallocated, unwritten
    second_frame_offset_ = f1.size();
    good_bytes_ = f1.size() + f2.size() + f3.size() + f4.size();
  }

  CliRun sluice(std::vector<std::string> args) {
    args.insert(args.begin(), build_root() + "/clients/cli/sluice");
    // A segment that does not exist: nothing here may depend on a live sluiced.
    args.push_back("--segment");
    args.push_back("sluice-auditcli-none-" + std::to_string(::getpid()));
    CliRun r;
    const fs::path out = dir_ / "cli.out";
    const fs::path err = dir_ / "cli.err";
    const pid_t pid = sluice::testing::spawn_child(args, out.string(), err.string());
    if (pid <= 0) return r;
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
  }

  // `sluice audit --dir audit_ --json ARGS`: the sequence numbers printed.
  std::vector<std::uint64_t> sequences(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"audit", "--dir", audit_.string(), "--json"};
    all.insert(all.end(), args.begin(), args.end());
    const CliRun r = sluice(all);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    std::vector<std::uint64_t> out;
    for (const std::string& line : lines_of(r.out)) {
      const json doc = json::parse(line, nullptr, false);
      EXPECT_FALSE(doc.is_discarded()) << line;
      if (!doc.is_discarded()) out.push_back(doc["sequence"].get<std::uint64_t>());
    }
    return out;
  }

  fs::path dir_;
  fs::path audit_;
  fs::path older_;
  fs::path newer_;
  std::size_t second_frame_offset_ = 0;
  std::size_t good_bytes_ = 0;
};

using Seqs = std::vector<std::uint64_t>;

// ---------------------------------------------------------------------------
// Printing

TEST_F(AuditCliTest, JsonPrintsEveryRecordInFileOrderWithExactValues) {
  write_standard_files();
  const CliRun r = sluice({"audit", "--dir", audit_.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;

  const json a = json::parse(lines[0]);
  EXPECT_EQ(a["sequence"], 1);
  EXPECT_EQ(a["time"], "2026-11-23T09:00:00.123456789Z");
  EXPECT_EQ(a["time_unix_ns"].get<std::uint64_t>(), kDay + 9 * kHour + 123'456'789);
  EXPECT_EQ(a["reservation_id"].get<std::uint64_t>(), kBigId);
  EXPECT_EQ(a["reservation_str"], "1311768464867721258");
  EXPECT_EQ(a["pid"], 4242);
  EXPECT_EQ(a["start_time"], 987654);
  EXPECT_EQ(a["event"], "reserve");
  EXPECT_EQ(a["decision"], "admitted");
  EXPECT_TRUE(a["reason"].is_null());
  EXPECT_TRUE(a["limit"].is_null());
  EXPECT_EQ(a["attributes"],
            json({{"team", "pricing"}, {"feature", "quote-agent"}, {"model", "gpt-4o"}}));
  EXPECT_EQ(a["est_input_tokens"], 1200);
  EXPECT_EQ(a["est_output_tokens"], 800);
  EXPECT_EQ(a["actual_input_tokens"], 0);
  EXPECT_EQ(a["actual_output_tokens"], 0);
  EXPECT_EQ(a["cost_nusd"], 11'000'000);
  EXPECT_DOUBLE_EQ(a["cost_usd"].get<double>(), 0.011);
  EXPECT_EQ(a["retry_after_ms"], 0);
  EXPECT_EQ(a["shadow_rejects"], json::array());
  EXPECT_EQ(a["policy_generation"], 3);

  const json b = json::parse(lines[1]);
  EXPECT_EQ(b["sequence"], 2);
  EXPECT_EQ(b["time"], "2026-11-23T09:30:00.000000000Z");
  EXPECT_EQ(b["reservation_id"], 0);
  EXPECT_EQ(b["reservation_str"], "0");
  EXPECT_EQ(b["pid"], 777);
  EXPECT_EQ(b["decision"], "rejected");
  EXPECT_EQ(b["reason"], "rate_limited");
  EXPECT_EQ(b["limit"], "per-team-rpm");
  EXPECT_EQ(b["attributes"], json({{"team", "search"}}));
  EXPECT_EQ(b["retry_after_ms"], 2);
  EXPECT_EQ(b["shadow_rejects"], json({"shadow-daily", "shadow-hourly"}));

  const json c = json::parse(lines[2]);
  EXPECT_EQ(c["sequence"], 3);
  EXPECT_EQ(c["event"], "commit");
  EXPECT_EQ(c["decision"], "settled");
  EXPECT_EQ(c["actual_input_tokens"], 1180);
  EXPECT_EQ(c["actual_output_tokens"], 412);
  EXPECT_EQ(c["cost_nusd"], 7'070'000);

  const json d = json::parse(lines[3]);
  EXPECT_EQ(d["sequence"], 4);
  EXPECT_EQ(d["time"], "2026-11-24T08:00:00.000000000Z");
  EXPECT_EQ(d["event"], "abandon");
  EXPECT_EQ(d["decision"], "abandoned");
  EXPECT_EQ(d["reason"], "charged_at_estimate");
  EXPECT_EQ(d["reservation_str"], std::to_string((9ull << 32) | 1));
}

TEST_F(AuditCliTest, TablePrintsAHeaderAndOneLinePerRecord) {
  write_standard_files();
  const CliRun r = sluice({"audit", "--dir", audit_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 5u) << r.out;
  EXPECT_EQ(lines[0].rfind("TIME", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find("ATTRIBUTES"), std::string::npos);
  EXPECT_EQ(lines[1].rfind("2026-11-23T09:00:00.123456789Z  reserve  admitted ", 0), 0u)
      << lines[1];
  EXPECT_NE(lines[1].find(" 1200/800 "), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find(" $0.011 "), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("team=pricing,feature=quote-agent,model=gpt-4o"), std::string::npos);
  EXPECT_NE(lines[2].find("rate_limited (per-team-rpm)"), std::string::npos) << lines[2];
  EXPECT_NE(lines[3].find(" commit "), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find(" 1180/412 "), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find(" $0.00707 "), std::string::npos) << lines[3];
  EXPECT_NE(lines[4].find("charged_at_estimate"), std::string::npos) << lines[4];
  // Aligned: the attributes column starts at the same place on every row.
  const std::size_t at = lines[1].find("team=");
  EXPECT_EQ(lines[2].find("team="), at);
  EXPECT_EQ(lines[3].find("team="), at);
  EXPECT_EQ(lines[0].find("ATTRIBUTES"), at);
}

TEST_F(AuditCliTest, AnEmptyDirectoryPrintsNothingAndSucceeds) {
  const CliRun r = sluice({"audit", "--dir", audit_.string(), "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "");
}

// ---------------------------------------------------------------------------
// Filters

TEST_F(AuditCliTest, SinceAndUntilKeepRecordsInTheClosedInterval) {
  write_standard_files();
  EXPECT_EQ(sequences({"--since", "2026-11-23T09:30:00Z"}), (Seqs{2, 3, 4}));
  EXPECT_EQ(sequences({"--since", "2026-11-23T09:30:00.000000001Z"}), (Seqs{3, 4}));
  EXPECT_EQ(sequences({"--until", "2026-11-23T10:00:00Z"}), (Seqs{1, 2, 3}));
  EXPECT_EQ(sequences({"--since", "2026-11-23T09:15:00Z", "--until", "2026-11-23T10:00:00Z"}),
            (Seqs{2, 3}));
  EXPECT_EQ(sequences({"--since", "2026-11-24"}), (Seqs{4}));
  EXPECT_EQ(sequences({"--until", "2026-11-23"}), (Seqs{}));
  // An offset is converted to UTC: 10:30+01:00 is 09:30Z.
  EXPECT_EQ(sequences({"--since", "2026-11-23T10:30:00+01:00", "--until", "2026-11-23T09:30Z"}),
            (Seqs{2}));
  EXPECT_EQ(sequences({"--until", "2026-11-23T10:29:59.999+01:00"}), (Seqs{1}));
  EXPECT_EQ(sequences({"--since", "2026-11-23 09:30"}), (Seqs{2, 3, 4}));
}

TEST_F(AuditCliTest, RelativeSinceAndUntilCountBackFromNow) {
  const std::uint64_t now = now_unix_ns();
  RecordSpec old = reserve_pricing();
  old.time_unix_ns = now - 3 * kHour;
  RecordSpec recent = reject_search();
  recent.time_unix_ns = now - kHour / 2;
  append_bytes(older_, framed(old));
  append_bytes(older_, framed(recent));
  EXPECT_EQ(sequences({"--since", "2h"}), (Seqs{2}));
  EXPECT_EQ(sequences({"--since", "120m"}), (Seqs{2}));
  EXPECT_EQ(sequences({"--until", "1h"}), (Seqs{1}));
  EXPECT_EQ(sequences({"--since", "1d"}), (Seqs{1, 2}));
  EXPECT_EQ(sequences({"--since", "10m"}), (Seqs{}));
}

TEST_F(AuditCliTest, AttrFiltersRequireEveryPairOnTheRecord) {
  write_standard_files();
  EXPECT_EQ(sequences({"--attr", "team=pricing"}), (Seqs{1, 3}));
  EXPECT_EQ(sequences({"--attr", "team=search"}), (Seqs{2, 4}));
  EXPECT_EQ(sequences({"--attr", "team=pricing", "--attr", "model=gpt-4o"}), (Seqs{1, 3}));
  EXPECT_EQ(sequences({"--attr", "team=search", "--attr", "model=gpt-4o-mini"}), (Seqs{4}));
  EXPECT_EQ(sequences({"--attr", "team=pricing", "--attr", "feature=other"}), (Seqs{}));
  EXPECT_EQ(sequences({"--attr", "model=gpt-4o"}), (Seqs{1, 3}));  // not gpt-4o-mini
}

TEST_F(AuditCliTest, DecisionFilterKeepsOnlyThatDecision) {
  write_standard_files();
  EXPECT_EQ(sequences({"--decision", "admitted"}), (Seqs{1}));
  EXPECT_EQ(sequences({"--decision", "rejected"}), (Seqs{2}));
  EXPECT_EQ(sequences({"--decision", "settled"}), (Seqs{3}));
  EXPECT_EQ(sequences({"--decision", "abandoned"}), (Seqs{4}));
  EXPECT_EQ(sequences({"--decision", "rejected", "--attr", "team=pricing"}), (Seqs{}));
  EXPECT_EQ(
      sequences({"--decision", "abandoned", "--since", "2026-11-24", "--attr", "team=search"}),
      (Seqs{4}));
}

// ---------------------------------------------------------------------------
// The call report commits carry

// Commits reporting every field, some fields, nothing, or "unreported"; and
// a reserve. Latencies: 9.812 s, 1.2 s, 30 s, exactly 8 s, 0.5 ms.
void write_call_report_records(const fs::path& file) {
  RecordSpec failed = commit_pricing();
  failed.sequence = 20;
  failed.outcome = "provider_error";
  failed.http_status = 503;
  failed.latency_ns = 9'812'000'000;
  failed.ttft_ns = 410'000'000;
  failed.model_version = "gpt-4o-2024-08-06";
  RecordSpec ok = commit_pricing();
  ok.sequence = 21;
  ok.outcome = "ok";
  ok.http_status = 200;
  ok.latency_ns = 1'200'000'000;
  RecordSpec timeout = commit_pricing();
  timeout.sequence = 22;
  timeout.outcome = "timeout";
  timeout.latency_ns = 30'000'000'000;
  RecordSpec cut = commit_pricing();
  cut.sequence = 23;
  cut.outcome = "cut_off";
  cut.latency_ns = 8'000'000'000;
  cut.ttft_ns = 249'999'999;  // rounds to 0.250
  RecordSpec plain = commit_pricing();
  plain.sequence = 24;
  RecordSpec reserve = reserve_pricing();
  reserve.sequence = 25;
  RecordSpec unreported = commit_pricing();
  unreported.sequence = 26;
  unreported.outcome = "unreported";
  RecordSpec cancelled = commit_pricing();
  cancelled.sequence = 27;
  cancelled.outcome = "cancelled_by_client";
  cancelled.latency_ns = 500'000;  // half a millisecond rounds up to 0.001
  cancelled.model_version = "v2";
  for (const RecordSpec& r : {failed, ok, timeout, cut, plain, reserve, unreported, cancelled}) {
    append_bytes(file, framed(r));
  }
}

TEST_F(AuditCliTest, TableRowsEndWithWhatTheCommitsCallReportSaid) {
  write_call_report_records(older_);
  const CliRun r = sluice({"audit", "--dir", audit_.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 9u) << r.out;
  const std::string attrs = "  team=pricing,feature=quote-agent,model=gpt-4o";
  const std::string tails[] = {
      attrs +
          "  outcome=provider_error http=503 latency=9.812s ttft=0.410s "
          "version=gpt-4o-2024-08-06",
      attrs + "  outcome=ok http=200 latency=1.200s",
      attrs + "  outcome=timeout latency=30.000s",
      attrs + "  outcome=cut_off latency=8.000s ttft=0.250s",
      attrs,  // a commit without a report
      attrs,  // a reserve
      attrs,  // "unreported" is no report
      attrs + "  outcome=cancelled_by_client latency=0.001s version=v2",
  };
  for (std::size_t i = 0; i < std::size(tails); ++i) {
    EXPECT_TRUE(lines[i + 1].ends_with(tails[i])) << "want ..." << tails[i] << "\n" << lines[i + 1];
  }
  for (std::size_t i : {5u, 6u, 7u}) {
    EXPECT_EQ(lines[i].find("outcome="), std::string::npos) << lines[i];
    EXPECT_EQ(lines[i].find("latency="), std::string::npos) << lines[i];
  }
  // The report does not move the columns: attributes start where the header says.
  for (std::size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].find("team="), lines[0].find("ATTRIBUTES")) << lines[i];
  }
}

TEST_F(AuditCliTest, JsonHasTheCallReportFieldsAndNullWhereNotReported) {
  write_call_report_records(older_);
  const CliRun r = sluice({"audit", "--dir", audit_.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 8u) << r.out;
  const json failed = json::parse(lines[0]);
  EXPECT_EQ(failed["sequence"], 20);
  EXPECT_EQ(failed["outcome"], "provider_error");
  EXPECT_EQ(failed["http_status"], 503);
  EXPECT_EQ(failed["latency_ns"], 9'812'000'000);
  EXPECT_EQ(failed["ttft_ns"], 410'000'000);
  EXPECT_EQ(failed["model_version"], "gpt-4o-2024-08-06");

  const json ok = json::parse(lines[1]);
  EXPECT_EQ(ok["outcome"], "ok");
  EXPECT_EQ(ok["http_status"], 200);
  EXPECT_EQ(ok["latency_ns"], 1'200'000'000);
  EXPECT_TRUE(ok["ttft_ns"].is_null()) << ok;
  EXPECT_TRUE(ok["model_version"].is_null()) << ok;

  const json cut = json::parse(lines[3]);
  EXPECT_EQ(cut["outcome"], "cut_off");
  EXPECT_TRUE(cut["http_status"].is_null()) << cut;
  EXPECT_EQ(cut["latency_ns"], 8'000'000'000);
  EXPECT_EQ(cut["ttft_ns"], 249'999'999);

  // A plain commit, a reserve and an "unreported" commit: every key, all null.
  for (std::size_t i : {4u, 5u, 6u}) {
    const json doc = json::parse(lines[i]);
    for (const char* key : {"outcome", "http_status", "latency_ns", "ttft_ns", "model_version"}) {
      ASSERT_TRUE(doc.contains(key)) << key << " in " << doc;
      EXPECT_TRUE(doc[key].is_null()) << key << " in " << doc;
    }
  }
  const json cancelled = json::parse(lines[7]);
  EXPECT_EQ(cancelled["outcome"], "cancelled_by_client");
  EXPECT_EQ(cancelled["latency_ns"], 500'000);
  EXPECT_EQ(cancelled["model_version"], "v2");
}

TEST_F(AuditCliTest, OutcomeFilterKeepsTheRecordsThatReportedThoseOutcomes) {
  write_call_report_records(older_);
  EXPECT_EQ(sequences({"--outcome", "ok"}), (Seqs{21}));
  EXPECT_EQ(sequences({"--outcome", "provider_error"}), (Seqs{20}));
  EXPECT_EQ(sequences({"--outcome", "timeout"}), (Seqs{22}));
  EXPECT_EQ(sequences({"--outcome", "cut_off"}), (Seqs{23}));
  EXPECT_EQ(sequences({"--outcome", "cancelled_by_client"}), (Seqs{27}));
  EXPECT_EQ(sequences({"--outcome", "error"}), (Seqs{20, 22}));
  EXPECT_EQ(sequences({"--outcome", "ok,cut_off"}), (Seqs{21, 23}));
  EXPECT_EQ(sequences({"--outcome", "ok", "--outcome", "error"}), (Seqs{20, 21, 22}));
  EXPECT_EQ(sequences({"--outcome", "error", "--decision", "admitted"}), (Seqs{}));
  EXPECT_EQ(sequences({"--outcome", "ok", "--attr", "team=search"}), (Seqs{}));
}

TEST_F(AuditCliTest, SlowerThanKeepsTheRecordsThatReportedALongerLatency) {
  write_call_report_records(older_);
  EXPECT_EQ(sequences({"--slower-than", "8s"}), (Seqs{20, 22}));  // 8 s exactly is not slower
  EXPECT_EQ(sequences({"--slower-than", "7999ms"}), (Seqs{20, 22, 23}));
  EXPECT_EQ(sequences({"--slower-than", "1s"}), (Seqs{20, 21, 22, 23}));
  EXPECT_EQ(sequences({"--slower-than", "0ms"}), (Seqs{20, 21, 22, 23, 27}));
  EXPECT_EQ(sequences({"--slower-than", "1m"}), (Seqs{}));
  EXPECT_EQ(sequences({"--slower-than", "10s", "--outcome", "error"}), (Seqs{22}));
  EXPECT_EQ(sequences({"--slower-than", "2s", "--outcome", "ok"}), (Seqs{}));
}

TEST_F(AuditCliTest, HelpDocumentsTheCallReportFiltersAndFields) {
  const CliRun r = sluice({"audit", "--help"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* needle :
       {"--outcome", "ok | provider_error | timeout | cancelled_by_client | cut_off | error",
        "--slower-than", "500ms, 8s, 2m",
        "outcome=provider_error http=503 latency=9.812s ttft=0.410s version=gpt-4o-2024-08-06",
        "http_status", "latency_ns", "ttft_ns", "model_version"}) {
    EXPECT_NE(r.out.find(needle), std::string::npos) << needle << " in\n" << r.out;
  }
}

// ---------------------------------------------------------------------------
// Bad input

TEST_F(AuditCliTest, BadFlagValuesAreOneLineAndExit2) {
  write_standard_files();
  const std::string d = audit_.string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"audit", "--dir", d, "--since", "yesterday"}, "--since 'yesterday'"},
      {{"audit", "--dir", d, "--until", "2026-13-01"}, "--until '2026-13-01'"},
      {{"audit", "--dir", d, "--since", "2026-02-30"}, "--since '2026-02-30'"},
      {{"audit", "--dir", d, "--since", "2026-11-23T25:00:00Z"}, "--since"},
      {{"audit", "--dir", d, "--since", "-5m"}, "--since '-5m'"},
      {{"audit", "--dir", d, "--since", "5x"}, "--since '5x'"},
      {{"audit", "--dir", d, "--since", "2026-11-24", "--until", "2026-11-23"}, "swap them"},
      {{"audit", "--dir", d, "--decision", "maybe"}, "--decision 'maybe'"},
      {{"audit", "--dir", d, "--attr", "team"}, "KEY=VALUE"},
      {{"audit", "--dir", d, "--attr", "=pricing"}, "empty attribute name"},
      {{"audit", "--dir", d, "--bogus"}, "--bogus"},
      {{"audit", "verify", "--dir", d, "--follow"}, "--follow does not apply"},
      {{"audit", "verify", "--dir", d, "--since", "1h"}, "--since does not apply"},
      {{"audit", "--dir", d, "--outcome", "failed"},
       "--outcome 'failed': use ok, provider_error, timeout, cancelled_by_client, cut_off, or "
       "error (provider_error or timeout)"},
      {{"audit", "--dir", d, "--outcome", "unreported"}, "--outcome 'unreported'"},
      {{"audit", "--dir", d, "--outcome", "ok,Timeout"}, "--outcome 'Timeout'"},
      {{"audit", "--dir", d, "--outcome", "ok,"}, "--outcome 'ok,'"},
      {{"audit", "--dir", d, "--outcome", ""}, "--outcome ''"},
      {{"audit", "--dir", d, "--slower-than", "8"},
       "--slower-than '8': use a whole number and a unit, like 500ms, 8s or 2m"},
      {{"audit", "--dir", d, "--slower-than", "1.5s"}, "--slower-than '1.5s'"},
      {{"audit", "--dir", d, "--slower-than", "-1s"}, "--slower-than '-1s'"},
      {{"audit", "--dir", d, "--slower-than", "99999999999999999999ms"}, "--slower-than"},
      {{"audit", "--dir", d, "--slower-than", "3000000000w"}, "--slower-than '3000000000w'"},
      {{"audit", "verify", "--dir", d, "--outcome", "ok"}, "--outcome does not apply"},
      {{"audit", "verify", "--dir", d, "--slower-than", "1s"}, "--slower-than does not apply"},
  };
  for (const auto& [args, needle] : cases) {
    const CliRun r = sluice(args);
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.err;
    EXPECT_TRUE(one_line(r.err)) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "") << args.back();
  }
}

TEST_F(AuditCliTest, AMissingDirectoryIsOneLineNamingItAndTheFix) {
  const std::string missing = (dir_ / "nope").string();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"audit", "--dir", missing},
        std::vector<std::string>{"audit", "verify", "--dir", missing},
        std::vector<std::string>{"audit", "--dir", missing, "--follow"}}) {
    const CliRun r = sluice(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_TRUE(one_line(r.err)) << r.err;
    EXPECT_NE(r.err.find("'" + missing + "'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--dir"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(AuditCliTest, WithoutDirAndWithoutSegmentItLooksInVarAudit) {
  // var/audit is relative to the cwd, which the child inherits: run it in
  // the test's own directory, where there is none.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  const CliRun r = sluice({"audit"});
  fs::current_path(cwd);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("'var/audit'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no segment"), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------
// Damage

TEST_F(AuditCliTest, VerifyOnACleanDirectoryCountsFilesFramesAndBytes) {
  write_standard_files();
  const CliRun r = sluice({"audit", "verify", "--dir", audit_.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_EQ(r.out, audit_.string() + ": 2 files, 4 good frames, " + std::to_string(good_bytes_) +
                       " bytes, 0 bad frames\n");
  EXPECT_EQ(r.err, "");

  const CliRun j = sluice({"audit", "verify", "--dir", audit_.string(), "--json"});
  EXPECT_EQ(j.exit_code, 0) << j.err;
  const json doc = json::parse(j.out);
  EXPECT_EQ(doc["ok"], true);
  EXPECT_EQ(doc["files"], 2);
  EXPECT_EQ(doc["good_frames"], 4);
  EXPECT_EQ(doc["good_bytes"], good_bytes_);
  EXPECT_EQ(doc["bad_frames"], 0);
  EXPECT_EQ(doc["bad"], json::array());
}

TEST_F(AuditCliTest, AFlippedBitIsReportedWithFileAndOffsetAndExits1) {
  write_standard_files();
  {
    std::fstream f(older_, std::ios::in | std::ios::out | std::ios::binary);
    const auto at =
        static_cast<std::streamoff>(second_frame_offset_ + audit::kFrameHeaderBytes + 5);
    f.seekg(at);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x10);
    f.seekp(at);
    f.write(&c, 1);
  }
  const CliRun v = sluice({"audit", "verify", "--dir", audit_.string()});
  EXPECT_EQ(v.exit_code, 1) << v.err;
  const std::vector<std::string> lines = lines_of(v.out);
  ASSERT_EQ(lines.size(), 2u) << v.out;
  EXPECT_NE(lines[0].find("3 good frames"), std::string::npos) << lines[0];
  EXPECT_TRUE(lines[0].ends_with(", 1 bad frame")) << lines[0];
  EXPECT_EQ(lines[1].rfind(older_.string() + " offset " + std::to_string(second_frame_offset_) +
                               ": checksum mismatch",
                           0),
            0u)
      << lines[1];

  const CliRun j = sluice({"audit", "verify", "--dir", audit_.string(), "--json"});
  EXPECT_EQ(j.exit_code, 1);
  const json doc = json::parse(j.out);
  EXPECT_EQ(doc["ok"], false);
  ASSERT_EQ(doc["bad"].size(), 1u);
  EXPECT_EQ(doc["bad"][0]["file"], older_.string());
  EXPECT_EQ(doc["bad"][0]["offset"], second_frame_offset_);
  EXPECT_EQ(doc["bad"][0]["problem"], "bad_checksum");

  // Reading stops at the damage in that file and goes on with the next one.
  const CliRun r = sluice({"audit", "--dir", audit_.string(), "--json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(lines_of(r.out).size(), 3u) << r.out;
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("audit records not shown: 1 damaged frame, the rest of its file unread"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(older_.string() + " offset " + std::to_string(second_frame_offset_)),
            std::string::npos)
      << r.err;
}

TEST_F(AuditCliTest, DamageInTheNewestFileThatStaysIsReportedToo) {
  const std::vector<std::uint8_t> first = framed(reserve_pricing());
  std::vector<std::uint8_t> second = framed(reject_search());
  second[audit::kFrameHeaderBytes + 3] ^= 0x01;
  append_bytes(older_, first);
  append_bytes(older_, second);
  append_bytes(older_, framed(commit_pricing()));
  const CliRun r = sluice({"audit", "--dir", audit_.string(), "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(lines_of(r.out).size(), 1u) << r.out;
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find(older_.string() + " offset " + std::to_string(first.size()) +
                       ": checksum mismatch"),
            std::string::npos)
      << r.err;
}

TEST_F(AuditCliTest, AWellFramedPayloadThatIsNotARecordIsRejectedByTheVerifier) {
  write_standard_files();
  // Intact frames around garbage: a root offset far out of bounds behind the
  // right file identifier, and bytes with no identifier at all.
  std::vector<std::uint8_t> bad_root = {0x00, 0x00, 0xff, 0x7f, 'S', 'L', 'A', 'U',
                                        0,    0,    0,    0,    0,   0,   0,   0};
  std::vector<std::uint8_t> no_identifier(40, 0xab);
  const std::size_t garbage_at = fs::file_size(older_);
  append_bytes(older_, frame_of(bad_root));
  append_bytes(older_, frame_of(no_identifier));
  RecordSpec after = reject_search();
  after.sequence = 9;
  append_bytes(older_, framed(after));

  const CliRun v = sluice({"audit", "verify", "--dir", audit_.string(), "--json"});
  EXPECT_EQ(v.exit_code, 1) << v.err;
  const json doc = json::parse(v.out);
  EXPECT_EQ(doc["good_frames"], 5);
  ASSERT_EQ(doc["bad"].size(), 2u) << v.out;
  EXPECT_EQ(doc["bad"][0]["problem"], "payload_rejected");
  EXPECT_EQ(doc["bad"][0]["offset"], garbage_at);
  EXPECT_NE(doc["bad"][0]["message"].get<std::string>().find("FlatBuffers verifier"),
            std::string::npos);
  EXPECT_EQ(doc["bad"][1]["problem"], "payload_rejected");
  EXPECT_NE(doc["bad"][1]["message"].get<std::string>().find("SLAU"), std::string::npos);

  // The records around the garbage are printed; the garbage is counted once, on one line.
  const CliRun r = sluice({"audit", "--dir", audit_.string(), "--json"});
  EXPECT_EQ(r.exit_code, 1);
  std::vector<std::uint64_t> seqs;
  for (const std::string& line : lines_of(r.out)) seqs.push_back(json::parse(line)["sequence"]);
  EXPECT_EQ(seqs, (Seqs{1, 2, 9, 3, 4}));
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("audit records not shown: 2 payloads the FlatBuffers verifier rejects"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(older_.string() + " offset " + std::to_string(garbage_at)),
            std::string::npos)
      << r.err;
}

// ---------------------------------------------------------------------------
// sluice report: how the calls went

// Four pricing commits that report how they went (one timeout), search calls
// that report nothing, and a rejection.
void write_reported_calls(const fs::path& file) {
  struct Call {
    const char* outcome;
    std::uint64_t latency_ns;
    std::uint64_t ttft_ns;
  };
  const Call calls[] = {{"ok", 1'200'000'000, 300'000'000},
                        {"ok", 812'345'678, 210'000'000},
                        {"timeout", 2'500'000'000, 0},
                        {"ok", 400'000'000, 100'000'000}};
  std::uint64_t sequence = 10;
  for (const Call& c : calls) {
    RecordSpec r = commit_pricing();  // 1180 + 412 tokens, $0.00707
    r.sequence = sequence++;
    r.outcome = c.outcome;
    r.latency_ns = c.latency_ns;
    r.ttft_ns = c.ttft_ns;
    append_bytes(file, framed(r));
  }
  append_bytes(file, framed(reject_search()));
  append_bytes(file, framed(abandon_search()));  // 300 + 200 tokens, $0.00015
  RecordSpec plain = abandon_search();
  plain.event = fb::Event::Commit;
  plain.decision = fb::Decision::Settled;
  plain.reason = "";
  plain.actual_input = 50;
  plain.actual_output = 20;
  plain.cost_nusd = 30'000;
  append_bytes(file, framed(plain));
}

// Latencies 0.4, 0.812345678, 1.2, 2.5 s: nearest rank 2 of 4 is the p50,
// rank 4 the p95 and p99. TTFT 0.1, 0.21, 0.3 s.
TEST_F(AuditCliTest, ReportCsvHasErrorRateAndExactLatencyPercentilesPerRowAndInTheTotal) {
  write_reported_calls(older_);
  const CliRun r = sluice({"report", "--dir", audit_.string(), "--by", "team", "--format", "csv"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out,
            "team,calls,input_tokens,output_tokens,rejections,cost_usd,cost_nusd,errors,"
            "outcomes_reported,error_rate,latency_calls,latency_p50_ns,latency_p95_ns,"
            "latency_p99_ns,ttft_calls,ttft_p50_ns,ttft_p99_ns\r\n"
            "pricing,4,4720,1648,0,0.028280000,28280000,1,4,0.250000,4,812345678,2500000000,"
            "2500000000,3,210000000,300000000\r\n"
            "search,2,350,220,1,0.000180000,180000,0,0,,0,,,,0,,\r\n"
            "TOTAL,6,5070,1868,1,0.028460000,28460000,1,4,0.250000,4,812345678,2500000000,"
            "2500000000,3,210000000,300000000\r\n");
}

TEST_F(AuditCliTest, ReportJsonHasTheCallFieldsWithNullWhereNoCallReported) {
  write_reported_calls(older_);
  const CliRun r = sluice({"report", "--dir", audit_.string(), "--by", "team", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json doc = json::parse(r.out);
  ASSERT_EQ(doc["rows"].size(), 2u) << r.out;
  for (const json& row : {doc["rows"][0], doc["total"]}) {
    EXPECT_EQ(row["errors"], 1) << row;
    EXPECT_EQ(row["outcomes_reported"], 4);
    EXPECT_DOUBLE_EQ(row["error_rate"].get<double>(), 0.25);
    EXPECT_EQ(row["latency_calls"], 4);
    EXPECT_EQ(row["latency_p50_ns"], 812'345'678);
    EXPECT_EQ(row["latency_p95_ns"], 2'500'000'000);
    EXPECT_EQ(row["latency_p99_ns"], 2'500'000'000);
    EXPECT_EQ(row["ttft_calls"], 3);
    EXPECT_EQ(row["ttft_p50_ns"], 210'000'000);
    EXPECT_EQ(row["ttft_p99_ns"], 300'000'000);
  }
  const json& search = doc["rows"][1];
  EXPECT_EQ(search["attributes"], json({{"team", "search"}}));
  EXPECT_EQ(search["calls"], 2);
  EXPECT_EQ(search["errors"], 0);
  EXPECT_EQ(search["outcomes_reported"], 0);
  EXPECT_TRUE(search["error_rate"].is_null()) << search;
  EXPECT_EQ(search["latency_calls"], 0);
  for (const char* key :
       {"latency_p50_ns", "latency_p95_ns", "latency_p99_ns", "ttft_p50_ns", "ttft_p99_ns"}) {
    EXPECT_TRUE(search[key].is_null()) << key << " in " << search;
  }
}

TEST_F(AuditCliTest, ReportTableShowsErrorRateAndLatencyP50AndP99InSeconds) {
  write_reported_calls(older_);
  const CliRun r = sluice({"report", "--dir", audit_.string(), "--by", "team"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  using Words = std::vector<std::string>;
  EXPECT_EQ(words_of(lines[0]),
            (Words{"TEAM", "CALLS", "INPUT", "TOKENS", "OUTPUT", "TOKENS", "REJECTIONS", "COST",
                   "(USD)", "ERROR", "RATE", "P50", "(S)", "P99", "(S)"}));
  EXPECT_EQ(words_of(lines[1]), (Words{"pricing", "4", "4720", "1648", "0", "0.028280000", "25.00%",
                                       "0.812", "2.500"}));
  EXPECT_EQ(words_of(lines[2]),
            (Words{"search", "2", "350", "220", "1", "0.000180000", "-", "-", "-"}));
  EXPECT_EQ(words_of(lines[3]),
            (Words{"TOTAL", "6", "5070", "1868", "1", "0.028460000", "25.00%", "0.812", "2.500"}));
  for (const std::string& line : lines) EXPECT_EQ(line.size(), lines[0].size()) << r.out;
}

// ---------------------------------------------------------------------------
// Follow

class FollowingCli {
 public:
  FollowingCli(const std::vector<std::string>& args, const fs::path& out, const fs::path& err)
      : out_(out), err_(err) {
    std::vector<std::string> all = args;
    all.insert(all.begin(), build_root() + "/clients/cli/sluice");
    pid_ = sluice::testing::spawn_child(all, out.string(), err.string());
  }
  ~FollowingCli() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool prints(const std::string& needle) {
    return eventually([&] { return read_text(out_).find(needle) != std::string::npos; });
  }
  // Sends `signal` and returns the exit status (or -1 if it does not exit in time).
  int stop(int signal) {
    ::kill(pid_, signal);
    int status = 0;
    const bool gone = eventually([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; });
    if (!gone) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string out() const { return read_text(out_); }
  std::string err() const { return read_text(err_); }

 private:
  fs::path out_;
  fs::path err_;
  pid_t pid_ = -1;
};

TEST_F(AuditCliTest, FollowPrintsRecordsAppendedAfterItStartedUntilSigterm) {
  append_bytes(older_, framed(reserve_pricing()));
  FollowingCli cli({"audit", "--dir", audit_.string(), "--follow"}, dir_ / "follow.out",
                   dir_ / "follow.err");
  // The header is printed once the tail is open at the end of the files.
  ASSERT_TRUE(cli.prints("ATTRIBUTES\n")) << cli.err();
  append_bytes(older_, framed(reject_search()));
  ASSERT_TRUE(cli.prints("rate_limited (per-team-rpm)")) << cli.out() << cli.err();
  // A new file (rotation): followed too.
  append_bytes(newer_, framed(commit_pricing()));
  ASSERT_TRUE(cli.prints(" 1180/412 ")) << cli.out() << cli.err();
  EXPECT_EQ(cli.stop(SIGTERM), 0);
  const std::vector<std::string> lines = lines_of(cli.out());
  ASSERT_EQ(lines.size(), 3u) << cli.out();  // header, the two appended; not the one before
  EXPECT_NE(lines[1].find("09:30:00"), std::string::npos);
  EXPECT_EQ(cli.err(), "");
}

TEST_F(AuditCliTest, FollowFromSincePrintsTheHistoryFirstAndStopsOnSigint) {
  append_bytes(older_, framed(reserve_pricing()));
  append_bytes(older_, framed(reject_search()));
  FollowingCli cli({"audit", "--dir", audit_.string(), "--follow", "--json", "--since",
                    "2026-11-23T09:10:00Z", "--attr", "team=search"},
                   dir_ / "follow.out", dir_ / "follow.err");
  ASSERT_TRUE(cli.prints("\"sequence\":2")) << cli.err();
  append_bytes(older_, framed(commit_pricing()));  // filtered out
  append_bytes(older_, framed(abandon_search()));
  ASSERT_TRUE(cli.prints("\"sequence\":4")) << cli.out() << cli.err();
  EXPECT_EQ(cli.stop(SIGINT), 0);
  std::vector<std::uint64_t> seqs;
  for (const std::string& line : lines_of(cli.out())) seqs.push_back(json::parse(line)["sequence"]);
  EXPECT_EQ(seqs, (Seqs{2, 4}));
  EXPECT_EQ(cli.err(), "");
}

// ---------------------------------------------------------------------------
// A live sidecar

const char* const kLivePolicy = R"(
models:
  cheap: { input_usd_per_mtok: 1.00, output_usd_per_mtok: 2.00 }
limits:
  - name: team-rate
    match: { team: "*" }
    requests_per_minute: 1000
)";

class LiveAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sluice-auditlive-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    audit_ = dir_ / "audit";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  CliRun sluice(std::vector<std::string> args, const std::string& segment) {
    args.insert(args.begin(), build_root() + "/clients/cli/sluice");
    args.push_back("--segment");
    args.push_back(segment);
    CliRun r;
    const pid_t pid = sluice::testing::spawn_child(args, (dir_ / "cli.out").string(),
                                                   (dir_ / "cli.err").string());
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = read_text(dir_ / "cli.out");
    r.err = read_text(dir_ / "cli.err");
    return r;
  }

  std::string audit_block() const { return "audit:\n  dir: " + audit_.string() + "\n"; }

  fs::path dir_;
  fs::path audit_;
};

TEST_F(LiveAuditTest, StatusJsonHasTheAuditFields) {
  testing::SidecarHarness h("auditcli-status", std::string(kLivePolicy) + audit_block(), "",
                            SidecarOptions{});  // with the audit drain thread
  const CliRun r = sluice({"status", "--json"}, h.segment());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json s = json::parse(r.out);
  for (const char* key :
       {"audit_drained", "audit_written", "audit_dropped", "audit_refused", "audit_skipped",
        "audit_corrupt", "audit_ring_high_water_bytes", "audit_bytes_on_disk"}) {
    EXPECT_TRUE(s[key].is_number_unsigned()) << key << " in " << r.out;
  }
  EXPECT_EQ(s["audit_ring_capacity_bytes"], 16u << 20);  // the default ring
  EXPECT_TRUE(s["audit_ring_high_water_pct"].is_number()) << r.out;
  EXPECT_LE(s["audit_ring_high_water_pct"].get<double>(), 100.0);
  EXPECT_TRUE(s["audit_last_fsync_age_ms"].is_null() ||
              s["audit_last_fsync_age_ms"].is_number_unsigned())
      << r.out;
  const std::string writer = s["audit_writer"];
  EXPECT_TRUE(writer == "io_uring" || writer == "pwrite" || writer == "none") << writer;
  EXPECT_EQ(s["audit_dir"], audit_.string()) << r.out;

  const CliRun text = sluice({"status"}, h.segment());
  ASSERT_EQ(text.exit_code, 0) << text.err;
  for (const char* key : {"\naudit_dir:", "\naudit_writer:", "\naudit_written:", "\naudit_dropped:",
                          "\naudit_skipped:", "\naudit_ring_high_water:", "\naudit_bytes_on_disk:",
                          "\naudit_last_fsync:"}) {
    EXPECT_NE(text.out.find(key), std::string::npos) << key << " in " << text.out;
  }
  EXPECT_NE(text.out.find("% of 16777216)"), std::string::npos) << text.out;
}

TEST_F(LiveAuditTest, AuditWithoutDirReadsWhereTheSidecarWrites) {
  testing::SidecarHarness h("auditcli-live", std::string(kLivePolicy) + audit_block(), "",
                            SidecarOptions{});
  const CliRun charge = sluice({"charge", "--attr", "team=pricing", "--model", "cheap",
                                "--input-tokens", "1000", "--output-tokens", "500"},
                               h.segment());
  ASSERT_EQ(charge.exit_code, 0) << charge.err;
  CliRun r;
  const bool landed = eventually([&] {
    r = sluice({"audit", "--json", "--attr", "team=pricing"}, h.segment());
    return r.exit_code == 0 && lines_of(r.out).size() == 2;
  });
  ASSERT_TRUE(landed) << r.exit_code << " " << r.out << r.err;
  const json reserve = json::parse(lines_of(r.out)[0]);
  const json commit = json::parse(lines_of(r.out)[1]);
  EXPECT_EQ(reserve["event"], "reserve");
  EXPECT_EQ(reserve["decision"], "admitted");
  EXPECT_EQ(commit["event"], "commit");
  EXPECT_EQ(commit["decision"], "settled");
  EXPECT_EQ(commit["reservation_str"], reserve["reservation_str"]);
  EXPECT_EQ(commit["actual_input_tokens"], 1000);
  EXPECT_EQ(commit["actual_output_tokens"], 500);
  EXPECT_EQ(commit["cost_nusd"], 2'000'000);  // 1000 * $1/Mtok + 500 * $2/Mtok
  EXPECT_EQ(commit["attributes"], json({{"team", "pricing"}, {"model", "cheap"}}));

  const CliRun v = sluice({"audit", "verify"}, h.segment());
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_EQ(v.out.rfind(audit_.string() + ": 1 file, 2 good frames", 0), 0u) << v.out;
}

TEST_F(LiveAuditTest, ReportCountsTheCallReportsCommitsCarryThroughTheSidecar) {
  testing::SidecarHarness h("auditcli-report", std::string(kLivePolicy) + audit_block(), "",
                            SidecarOptions{});
  Result<Client> client = Client::attach(h.segment());
  ASSERT_TRUE(client.ok()) << client.status().message();
  const std::vector<Attribute> attrs = {{"team", "pricing"}, {"model", "cheap"}};
  const CallReport reports[] = {
      {Outcome::kOk, 2'300'000'000, 410'000'000, 200, "cheap-2026-11"},
      {Outcome::kProviderError, 900'000'000, 0, 502, ""},
      {Outcome::kUnreported, 0, 0, 0, ""},
  };
  for (const CallReport& report : reports) {
    const Decision d = client->reserve_raw({attrs, 1000, 500});
    ASSERT_TRUE(d.admitted) << to_string(d.reason);
    ASSERT_TRUE(client->commit(d.reservation_id, 1000, 500, report).ok());
  }
  json doc;
  const bool landed = eventually([&] {
    const CliRun r = sluice({"report", "--by", "team", "--format", "json"}, h.segment());
    if (r.exit_code != 0) return false;
    doc = json::parse(r.out, nullptr, false);
    return !doc.is_discarded() && doc["total"]["calls"] == 3;
  });
  ASSERT_TRUE(landed) << doc;
  const json& row = doc["rows"][0];
  EXPECT_EQ(row["attributes"], json({{"team", "pricing"}}));
  EXPECT_EQ(row["outcomes_reported"], 2);
  EXPECT_EQ(row["errors"], 1);
  EXPECT_DOUBLE_EQ(row["error_rate"].get<double>(), 0.5);
  EXPECT_EQ(row["latency_calls"], 2);
  EXPECT_EQ(row["latency_p50_ns"], 900'000'000);
  EXPECT_EQ(row["latency_p99_ns"], 2'300'000'000);
  EXPECT_EQ(row["ttft_calls"], 1);
  EXPECT_EQ(row["ttft_p50_ns"], 410'000'000);
}

TEST_F(LiveAuditTest, AuditShowsAndFiltersTheCallReportsCommitsCarryThroughTheSidecar) {
  testing::SidecarHarness h("auditcli-callrep", std::string(kLivePolicy) + audit_block(), "",
                            SidecarOptions{});
  Result<Client> client = Client::attach(h.segment());
  ASSERT_TRUE(client.ok()) << client.status().message();
  const std::vector<Attribute> attrs = {{"team", "pricing"}, {"model", "cheap"}};
  const CallReport reports[] = {
      {Outcome::kProviderError, 9'812'000'000, 410'000'000, 503, "gpt-4o-2024-08-06"},
      {Outcome::kUnreported, 0, 0, 0, ""},
  };
  for (const CallReport& report : reports) {
    const Decision d = client->reserve_raw({attrs, 1000, 500});
    ASSERT_TRUE(d.admitted) << to_string(d.reason);
    ASSERT_TRUE(client->commit(d.reservation_id, 1000, 500, report).ok());
  }
  CliRun r;
  const bool landed = eventually([&] {
    r = sluice({"audit", "--json", "--decision", "settled"}, h.segment());
    return r.exit_code == 0 && lines_of(r.out).size() == 2;
  });
  ASSERT_TRUE(landed) << r.exit_code << " " << r.out << r.err;
  const json reported = json::parse(lines_of(r.out)[0]);
  EXPECT_EQ(reported["outcome"], "provider_error");
  EXPECT_EQ(reported["http_status"], 503);
  EXPECT_EQ(reported["latency_ns"], 9'812'000'000);
  EXPECT_EQ(reported["ttft_ns"], 410'000'000);
  EXPECT_EQ(reported["model_version"], "gpt-4o-2024-08-06");
  const json plain = json::parse(lines_of(r.out)[1]);
  for (const char* key : {"outcome", "http_status", "latency_ns", "ttft_ns", "model_version"}) {
    EXPECT_TRUE(plain[key].is_null()) << key << " in " << plain;
  }

  const CliRun text = sluice({"audit", "--outcome", "error", "--slower-than", "9s"}, h.segment());
  ASSERT_EQ(text.exit_code, 0) << text.err;
  const std::vector<std::string> lines = lines_of(text.out);
  ASSERT_EQ(lines.size(), 2u) << text.out;  // the header and the failed commit
  EXPECT_TRUE(lines[1].ends_with(
      "team=pricing,model=cheap  outcome=provider_error http=503 latency=9.812s ttft=0.410s "
      "version=gpt-4o-2024-08-06"))
      << lines[1];
  EXPECT_NE(lines[1].find(" commit "), std::string::npos) << lines[1];
}

}  // namespace
}  // namespace sluice
