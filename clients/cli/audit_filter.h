// Which audit records `sluice audit` prints: --since / --until times,
// --attr K=V pairs, --decision, and the call report's --outcome and
// --slower-than, parsed once and then matched against each verified
// FlatBuffers Record.
//
//   Result<AuditFilter> f = parse_audit_filter(options, realtime_now_ns);
//   if (!f.ok()) return fail(kExitUsage, f.status().message());
//   if (f->matches(*record)) print(*record);
//
// Every parse error is one line naming the flag, the bad value and what
// would be accepted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "audit_generated.h"
#include "sluice/status.h"

namespace sluice::cli {

// The flags as typed; empty strings are "not given".
struct AuditFilterOptions {
  std::string since;
  std::string until;
  std::vector<std::string> attrs;
  std::string decision;
  std::vector<std::string> outcomes;  // each "NAME[,NAME...]"
  std::string slower_than;
};

struct AuditFilter {
  std::optional<std::uint64_t> since_unix_ns;              // records at or after
  std::optional<std::uint64_t> until_unix_ns;              // records at or before
  std::vector<std::pair<std::string, std::string>> attrs;  // every pair must be on the record
  std::optional<audit::fb::Decision> decision;
  std::vector<std::string> outcomes;            // the record's outcome is one of these
  std::optional<std::uint64_t> slower_than_ns;  // latency_ns above (0, not reported, never is)

  bool matches(const audit::fb::Record& record) const;
};

// A point in time for --since / --until (named in the message by `flag`):
// "2026-11-23T10:00:00Z", "2026-11-23T10:00:00.5+01:00", "2026-11-23T10:00"
// (UTC), "2026-11-23" (midnight UTC), or a duration back from `now_unix_ns`:
// "90s", "10m", "2h", "1d", "500ms". Unix nanoseconds.
Result<std::uint64_t> parse_audit_time(const std::string& flag, const std::string& text,
                                       std::uint64_t now_unix_ns);

// admitted | rejected | settled | abandoned.
Result<audit::fb::Decision> parse_audit_decision(const std::string& text);

// The outcome names each --outcome "NAME[,NAME...]" gives: ok,
// provider_error, timeout, cancelled_by_client, cut_off, and error for
// provider_error and timeout.
Result<std::vector<std::string>> parse_audit_outcomes(const std::vector<std::string>& flags);

// A duration for `flag`: a whole number and a unit, "500ms", "8s", "2m",
// "1h"; nanoseconds.
Result<std::uint64_t> parse_audit_duration(const std::string& flag, const std::string& text);

Result<AuditFilter> parse_audit_filter(const AuditFilterOptions& options,
                                       std::uint64_t now_unix_ns);

}  // namespace sluice::cli
