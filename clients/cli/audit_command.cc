// sluice audit [verify]: reads the audit trail sluiced writes to disk
// (libquota/audit/FORMAT.md). `audit` prints the verified records that pass
// the filters, once or following the directory; `audit verify` checks every
// byte of every segment file. Neither touches the segment beyond reading
// where sluiced writes (the audit dir it publishes in the header).
#include <signal.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "audit_filter.h"
#include "audit_format.h"
#include "audit_generated.h"
#include "audit_source.h"
#include "commands.h"
#include "log_reader.h"
#include "output.h"

namespace sluice::cli {
namespace {

namespace fb = audit::fb;
using nlohmann::json;

constexpr long kFollowPollNs = 100'000'000;  // 100 ms

struct AuditOptions {
  std::string dir;
  bool follow = false;
  AuditFilterOptions filter;
  bool json = false;
};

struct VerifyOptions {
  std::string dir;
  bool json = false;
};

// ---------------------------------------------------------------------------
// Printing

class RecordPrinter {
 public:
  RecordPrinter(const AuditFilter& filter, bool as_json)
      : filter_(filter),
        json_(as_json),
        sink_([this](const fb::Record& r) { print(r); }, "not shown") {
    if (!json_) print_audit_table_header();
  }
  RecordPrinter(const RecordPrinter&) = delete;
  RecordPrinter& operator=(const RecordPrinter&) = delete;

  AuditRecordSink& sink() { return sink_; }

 private:
  void print(const fb::Record& r) const {
    if (!filter_.matches(r)) return;
    if (json_) {
      print_json(audit_record_json(r));
    } else {
      print_audit_row(r);
    }
  }

  const AuditFilter& filter_;
  bool json_;
  AuditRecordSink sink_;
};

// ---------------------------------------------------------------------------
// sluice audit

int read_once(const std::string& dir, RecordPrinter& printer) {
  if (int status = read_audit_dir(dir, printer.sink()); status != kExitOk) return status;
  return printer.sink().report(dir);
}

volatile std::sig_atomic_t g_stop_following = 0;

void stop_following(int /*signal*/) { g_stop_following = 1; }

int follow(const std::string& dir, bool from_oldest, RecordPrinter& printer) {
  struct sigaction sa {};
  sa.sa_handler = stop_following;  // no SA_RESTART: the sleep below ends early
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  Result<audit::LogTail> tail = audit::LogTail::open(
      dir, from_oldest ? audit::LogTail::Start::kOldest : audit::LogTail::Start::kNow);
  if (!tail.ok()) return fail(kExitUsage, tail.status().message());
  std::fflush(stdout);
  while (g_stop_following == 0) {
    Result<std::size_t> n =
        tail->poll([&](const audit::FrameRef& f) { printer.sink().deliver(f); });
    std::fflush(stdout);
    if (!n.ok()) return fail(kExitRejected, n.status().message());
    if (g_stop_following != 0) break;
    const timespec pause{0, kFollowPollNs};
    ::nanosleep(&pause, nullptr);
  }
  for (const audit::BadFrame& b : tail->problems()) printer.sink().damaged(b);
  return printer.sink().report(dir);
}

int run_audit(const Globals& g, const AuditOptions& o) {
  Result<AuditFilter> filter = parse_audit_filter(o.filter, realtime_now_ns());
  if (!filter.ok()) return fail(kExitUsage, filter.status().message());
  const AuditDir dir = resolve_audit_dir(g.segment, o.dir);
  if (std::string bad = check_audit_dir(dir); !bad.empty()) return fail(kExitUsage, bad);
  RecordPrinter printer(filter.value(), o.json);
  // Following from --since reads the history first; otherwise only what lands from now on.
  if (o.follow) return follow(dir.path, filter->since_unix_ns.has_value(), printer);
  return read_once(dir.path, printer);
}

// ---------------------------------------------------------------------------
// sluice audit verify

const char* problem_name(audit::FrameProblem p) {
  switch (p) {
    case audit::FrameProblem::kTruncated:
      return "truncated";
    case audit::FrameProblem::kBadLength:
      return "bad_length";
    case audit::FrameProblem::kBadReserved:
      return "bad_reserved";
    case audit::FrameProblem::kBadChecksum:
      return "bad_checksum";
    case audit::FrameProblem::kDataAfterEnd:
      return "data_after_end";
    case audit::FrameProblem::kPayloadRejected:
      return "payload_rejected";
    case audit::FrameProblem::kFileUnreadable:
      return "file_unreadable";
  }
  return "unknown";
}

int run_verify(const Globals& g, const VerifyOptions& o) {
  const AuditDir dir = resolve_audit_dir(g.segment, o.dir);
  if (std::string bad = check_audit_dir(dir); !bad.empty()) return fail(kExitUsage, bad);
  Result<audit::VerifyReport> report = audit::verify_dir(dir.path, check_audit_record);
  if (!report.ok()) return fail(kExitUsage, report.status().message());
  const audit::VerifyReport& r = report.value();
  if (o.json) {
    json bad = json::array();
    for (const audit::BadFrame& b : r.bad) {
      bad.push_back({{"file", b.file},
                     {"offset", b.offset},
                     {"problem", problem_name(b.problem)},
                     {"message", b.message}});
    }
    print_json({{"dir", dir.path},
                {"ok", r.ok()},
                {"files", r.files},
                {"good_frames", r.good_frames},
                {"good_bytes", r.good_bytes},
                {"bad_frames", r.bad.size()},
                {"bad", std::move(bad)}});
  } else {
    std::printf("%s: %s, %s, %s, %s\n", dir.path.c_str(), counted(r.files, "file").c_str(),
                counted(r.good_frames, "good frame").c_str(), counted(r.good_bytes, "byte").c_str(),
                counted(r.bad.size(), "bad frame").c_str());
    for (const audit::BadFrame& b : r.bad) std::printf("%s\n", b.message.c_str());
  }
  return r.ok() ? kExitOk : kExitRejected;
}

// Options of `audit` reach `audit verify` through fallthrough; refuse those
// that mean nothing there instead of ignoring them.
std::string misplaced_flag(const CLI::App& audit) {
  for (const char* flag :
       {"--follow", "--since", "--until", "--attr", "--decision", "--outcome", "--slower-than"}) {
    if (audit.count(flag) > 0) {
      return std::string(flag) +
             " does not apply to sluice audit verify (it checks every frame); "
             "drop it, or use it with sluice audit";
    }
  }
  return {};
}

}  // namespace

void add_audit_commands(CLI::App& app, const Globals& g, std::vector<Command>& out) {
  auto o = std::make_shared<AuditOptions>();
  CLI::App* audit = app.add_subcommand("audit", "print the audit trail sluiced writes to disk");
  audit
      ->add_option("--dir", o->dir,
                   "audit directory; default: the one sluiced publishes in the segment, else " +
                       std::string(kDefaultAuditDir))
      ->type_name("DIR");
  audit->add_flag("--follow", o->follow,
                  "keep printing records as they land, until SIGINT/SIGTERM (from --since if "
                  "given, else from now)");
  audit
      ->add_option("--since", o->filter.since,
                   "records at or after T: 2026-11-23T10:00:00Z, 2026-11-23, or 10m / 2h / 1d ago")
      ->type_name("T");
  audit->add_option("--until", o->filter.until, "records at or before T (same forms as --since)")
      ->type_name("T");
  audit->add_option("--attr", o->filter.attrs, "records carrying attribute KEY=VALUE (repeat: all)")
      ->type_name("K=V")
      ->allow_extra_args(false);
  audit->add_option("--decision", o->filter.decision, "admitted | rejected | settled | abandoned")
      ->type_name("D");
  audit
      ->add_option("--outcome", o->filter.outcomes,
                   "commits whose call report says NAME: ok | provider_error | timeout | "
                   "cancelled_by_client | cut_off | error (provider_error or timeout); several: "
                   "ok,timeout or repeat")
      ->type_name("NAME[,NAME]")
      ->allow_extra_args(false);
  audit
      ->add_option("--slower-than", o->filter.slower_than,
                   "commits that reported a latency above DURATION: 500ms, 8s, 2m")
      ->type_name("DURATION");
  audit->add_flag("--json", o->json, "one JSON object per record, one per line");
  audit->footer(
      "A commit's row ends with what its call report said, leaving out what it did not:\n"
      "  outcome=provider_error http=503 latency=9.812s ttft=0.410s version=gpt-4o-2024-08-06\n"
      "(latency and ttft in seconds, to the millisecond); --json has outcome, http_status,\n"
      "latency_ns, ttft_ns and model_version, null where not reported.\n"
      "\n"
      "Only records whose frame and FlatBuffers payload verify are printed; the others are\n"
      "counted in one line on stderr. Exit status: 0 done, 1 records not shown (damaged or\n"
      "rejected), 2 bad flags or no audit directory.");
  audit->require_subcommand(0, 1);

  auto v = std::make_shared<VerifyOptions>();
  CLI::App* verify =
      audit->add_subcommand("verify", "check every frame of every audit file; list the bad ones");
  verify->add_option("--dir", v->dir, "audit directory (default as for sluice audit)")
      ->type_name("DIR");
  verify->add_flag("--json", v->json, "one JSON object");
  verify->footer("Exit status: 0 every frame verifies, 1 bad frames (listed), 2 no directory.");

  out.push_back({audit, [&g, o, v, audit, verify] {
                   if (!verify->parsed()) return run_audit(g, *o);
                   if (std::string bad = misplaced_flag(*audit); !bad.empty()) {
                     return fail(kExitUsage, bad);
                   }
                   VerifyOptions merged = *v;
                   if (merged.dir.empty()) merged.dir = o->dir;
                   merged.json = merged.json || o->json;
                   return run_verify(g, merged);
                 }});
}

}  // namespace sluice::cli
