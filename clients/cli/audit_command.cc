// sluice audit [verify]: reads the audit trail sluiced writes to disk
// (libquota/audit/FORMAT.md). `audit` prints the verified records that pass
// the filters, once or following the directory; `audit verify` checks every
// byte of every segment file. Neither touches the segment beyond reading
// where sluiced writes (the audit dir it publishes in the header).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "audit_filter.h"
#include "audit_format.h"
#include "audit_generated.h"
#include "commands.h"
#include "frame.h"
#include "log_reader.h"
#include "output.h"
#include "sluice/inspect.h"

namespace sluice::cli {
namespace {

namespace fb = audit::fb;
using nlohmann::json;

constexpr const char* kDefaultAuditDir = "var/audit";
constexpr long kFollowPollNs = 100'000'000;  // 100 ms
constexpr int kSettleAttempts = 3;           // times kFollowPollNs for a write in flight to land

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
// Which directory

struct AuditDir {
  std::string path;
  std::string origin;  // how it was chosen, for error messages
};

// --dir, else what sluiced publishes in the segment header, else var/audit.
AuditDir resolve_dir(const Globals& g, const std::string& flag) {
  if (!flag.empty()) return {flag, "from --dir"};
  Result<SegmentStatus> s = read_status(g.segment);
  if (s.ok() && !s->audit_dir.empty()) {
    return {s->audit_dir, "published by sluiced on segment '" + g.segment + "'"};
  }
  return {kDefaultAuditDir,
          s.ok() ? "the default: sluiced on segment '" + g.segment + "' publishes no audit dir"
                 : "the default: no segment '" + g.segment + "' to ask"};
}

// Empty when `dir` is a readable directory, else the one-line error.
std::string check_dir(const AuditDir& dir) {
  struct stat st {};
  if (::stat(dir.path.c_str(), &st) != 0) {
    return "audit directory '" + dir.path + "' (" + dir.origin + "): " + std::strerror(errno) +
           "; pass --dir DIR, or start sluiced with audit.dir set in its policy";
  }
  if (!S_ISDIR(st.st_mode)) {
    return "audit path '" + dir.path + "' (" + dir.origin +
           ") is not a directory; pass the directory holding the *.sal files with --dir DIR";
  }
  return {};
}

// ---------------------------------------------------------------------------
// Payloads

// The FlatBuffers verifier as a PayloadValidator: "" if `payload` is a Record.
std::string check_record(std::span<const std::uint8_t> payload) {
  if (payload.size() < 8 || !fb::RecordBufferHasIdentifier(payload.data())) {
    return "not an audit Record (no \"" + std::string(fb::RecordIdentifier()) +
           "\" file identifier)";
  }
  flatbuffers::Verifier verifier(payload.data(), payload.size());
  if (!fb::VerifyRecordBuffer(verifier)) {
    return "the FlatBuffers verifier rejects the Record (offsets or lengths out of bounds)";
  }
  return {};
}

// "1 frame", "2 frames".
std::string counted(std::uint64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

// Counts what could not be shown, keeps the first of each kind for the summary.
struct Unshown {
  std::uint64_t rejected = 0;  // intact frames whose payload the verifier refused
  std::string first_rejected;
  std::uint64_t bad_frames = 0;  // damaged frames (they end their file's data)
  std::string first_bad;

  void reject(const audit::FrameRef& f, const std::string& why) {
    if (rejected++ == 0) {
      first_rejected = std::string(f.file) + " offset " + std::to_string(f.offset) + ": " + why;
    }
  }
  void damaged(const audit::BadFrame& b) {
    if (bad_frames++ == 0) first_bad = b.message;
  }
  bool any() const { return rejected + bad_frames > 0; }

  // One line on stderr; exit 1 if anything was not shown.
  int report(const std::string& dir) const {
    if (!any()) return kExitOk;
    std::string line = "audit records not shown:";
    if (rejected > 0) {
      line += " " + counted(rejected, "payload") +
              " the FlatBuffers verifier rejects (first: " + first_rejected + ")";
    }
    if (bad_frames > 0) {
      line += std::string(rejected > 0 ? ";" : "") + " " + counted(bad_frames, "damaged frame") +
              ", the rest of its file unread (first: " + first_bad + ")";
    }
    return fail(kExitRejected, line + "; run sluice audit verify --dir " + dir + " for every one");
  }
};

class RecordPrinter {
 public:
  RecordPrinter(const AuditFilter& filter, bool as_json) : filter_(filter), json_(as_json) {
    if (!json_) print_audit_table_header();
  }

  void deliver(const audit::FrameRef& f) {
    if (std::string why = check_record(f.payload); !why.empty()) {
      unshown_.reject(f, why);
      return;
    }
    const fb::Record* r = fb::GetRecord(f.payload.data());
    if (!filter_.matches(*r)) return;
    if (json_) {
      print_json(audit_record_json(*r));
    } else {
      print_audit_row(*r);
    }
  }

  Unshown& unshown() { return unshown_; }

 private:
  const AuditFilter& filter_;
  bool json_;
  Unshown unshown_;
};

// ---------------------------------------------------------------------------
// sluice audit

std::uint64_t realtime_now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// The frame at `offset` of `file` as it is now.
audit::FrameCheck frame_now(const std::string& file, std::uint64_t offset) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return audit::FrameCheck::kTruncated;
  std::vector<std::uint8_t> bytes(audit::kMaxFrameBytes);
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t r =
        ::pread(fd, bytes.data() + got, bytes.size() - got, static_cast<off_t>(offset + got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<std::size_t>(r);
  }
  ::close(fd);
  return audit::decode_frame(std::span<const std::uint8_t>(bytes.data(), got)).check;
}

// A bad frame in the newest file may be one sluiced is writing right now; it
// is damage only if it is still bad once a write in flight would have landed.
bool stays_bad(const audit::BadFrame& b) {
  for (int attempt = 0; attempt < kSettleAttempts; ++attempt) {
    const timespec pause{0, kFollowPollNs};
    ::nanosleep(&pause, nullptr);
    const audit::FrameCheck now = frame_now(b.file, b.offset);
    if (now == audit::FrameCheck::kOk || now == audit::FrameCheck::kEnd) return false;
  }
  return true;
}

int read_once(const std::string& dir, RecordPrinter& printer) {
  // Newest as of before the read, so a file created meanwhile counts as newest too.
  Result<std::vector<std::string>> files = audit::list_segment_files(dir);
  const std::string newest = files.ok() && !files->empty() ? files->back() : std::string();
  Result<audit::LogReader> reader = audit::LogReader::open(dir);
  if (!reader.ok()) return fail(kExitUsage, reader.status().message());
  for (;;) {
    Result<std::optional<audit::FrameRef>> f = reader->next();
    if (!f.ok()) {
      std::fflush(stdout);
      return fail(kExitRejected, f.status().message());
    }
    if (!f.value()) break;
    printer.deliver(*f.value());
  }
  std::fflush(stdout);
  for (const audit::BadFrame& b : reader->problems()) {
    const bool in_newest =
        !newest.empty() && b.file >= newest && b.problem != audit::FrameProblem::kFileUnreadable;
    if (!in_newest || stays_bad(b)) printer.unshown().damaged(b);
  }
  return printer.unshown().report(dir);
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
    Result<std::size_t> n = tail->poll([&](const audit::FrameRef& f) { printer.deliver(f); });
    std::fflush(stdout);
    if (!n.ok()) return fail(kExitRejected, n.status().message());
    if (g_stop_following != 0) break;
    const timespec pause{0, kFollowPollNs};
    ::nanosleep(&pause, nullptr);
  }
  for (const audit::BadFrame& b : tail->problems()) printer.unshown().damaged(b);
  return printer.unshown().report(dir);
}

int run_audit(const Globals& g, const AuditOptions& o) {
  Result<AuditFilter> filter = parse_audit_filter(o.filter, realtime_now_ns());
  if (!filter.ok()) return fail(kExitUsage, filter.status().message());
  const AuditDir dir = resolve_dir(g, o.dir);
  if (std::string bad = check_dir(dir); !bad.empty()) return fail(kExitUsage, bad);
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
  const AuditDir dir = resolve_dir(g, o.dir);
  if (std::string bad = check_dir(dir); !bad.empty()) return fail(kExitUsage, bad);
  Result<audit::VerifyReport> report = audit::verify_dir(dir.path, check_record);
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
  for (const char* flag : {"--follow", "--since", "--until", "--attr", "--decision"}) {
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
  audit->add_flag("--json", o->json, "one JSON object per record, one per line");
  audit->footer(
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
