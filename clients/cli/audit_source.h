// Where `sluice audit` and `sluice report` read the audit trail, and how:
// the directory (--dir, else the one sluiced publishes in the segment), and
// every record whose frame and FlatBuffers payload verify, the rest counted.
//
//   const AuditDir dir = resolve_audit_dir(globals.segment, flag_dir);
//   if (std::string bad = check_audit_dir(dir); !bad.empty()) return fail(kExitUsage, bad);
//   AuditRecordSink sink([&](const audit::fb::Record& r) { use(r); }, "not counted");
//   if (int status = read_audit_dir(dir.path, sink); status != kExitOk) return status;
//   return sink.report(dir.path);  // 0, or 1 after one line on stderr
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "audit_generated.h"
#include "log_reader.h"

namespace sluice::cli {

inline constexpr const char* kDefaultAuditDir = "var/audit";

struct AuditDir {
  std::string path;
  std::string origin;  // how it was chosen, for error messages
};

// `dir_flag` if given, else what sluiced publishes in the header of
// `segment`, else var/audit.
AuditDir resolve_audit_dir(const std::string& segment, const std::string& dir_flag);

// Empty when `dir` is a readable directory, else the one-line error.
std::string check_audit_dir(const AuditDir& dir);

// The FlatBuffers verifier as an audit::PayloadValidator: "" if `payload` is a Record.
std::string check_audit_record(std::span<const std::uint8_t> payload);

// CLOCK_REALTIME in nanoseconds since the epoch.
std::uint64_t realtime_now_ns();

// Hands each verified Record to `deliver`; counts the payloads the verifier
// refuses and the damaged frames, keeping the first of each for the summary.
class AuditRecordSink {
 public:
  // `unshown` completes "audit records ...:" in the summary ("not shown").
  AuditRecordSink(std::function<void(const audit::fb::Record&)> deliver, std::string unshown);

  void deliver(const audit::FrameRef& frame);
  void damaged(const audit::BadFrame& bad);

  // One line on stderr if anything was not delivered (kExitRejected), else kExitOk.
  int report(const std::string& dir) const;

 private:
  std::function<void(const audit::fb::Record&)> deliver_;
  std::string unshown_;
  std::uint64_t rejected_ = 0;  // intact frames whose payload the verifier refused
  std::string first_rejected_;
  std::uint64_t bad_frames_ = 0;  // damaged frames (they end their file's data)
  std::string first_bad_;
};

// Delivers every verified record of `dir` once, oldest file first, and
// counts the damaged frames in `sink`. A bad frame at the end of the newest
// file counts only if it is still bad 300 ms later (it may be a write in
// flight). Returns kExitOk when every file was read (then sink.report()
// says whether anything was left out); otherwise one line is on stderr and
// the exit status is returned: 2 the directory cannot be opened, 1 a read
// error.
int read_audit_dir(const std::string& dir, AuditRecordSink& sink);

}  // namespace sluice::cli
