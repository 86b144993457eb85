// What users type, checked before anything touches a segment: token counts,
// reservation ids, --ttl durations, --attr K=V pairs and the call report
// flags. Every error is one line naming the flag, the bad value and what
// would be accepted.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sluice/quota.h"
#include "sluice/status.h"

namespace sluice::cli {

// The engine's bounds (sluice/quota.h): kMaxCallAttributes, the attribute
// sizes, and this many tokens per count.
inline constexpr std::uint64_t kMaxTokenCount = kMaxTokensPerCall;

// A whole number from 0 to 2^32, for `flag` (named in the message).
Result<std::uint64_t> parse_token_count(const std::string& flag, const std::string& text);

// A reservation id as `sluice reserve` printed it.
Result<std::uint64_t> parse_reservation_id(const std::string& text);

// "30s", "15m", "2h", "1d", "500ms" or plain seconds ("900"), in nanoseconds;
// positive and at most 30 days.
Result<std::uint64_t> parse_ttl_ns(const std::string& text);

// What --latency-ms, --ttft-ms, --outcome, --http-status and
// --model-version say of a finished call, as typed; "" where not given.
struct CallReportFlags {
  std::string latency_ms;
  std::string ttft_ms;
  std::string outcome;
  std::string http_status;
  std::string model_version;
};

// The report the flags make: milliseconds with up to 6 decimals ("812.5"),
// an outcome name ("ok", "timeout", ...), a status up to 999, a version of
// at most kMaxModelVersionBytes. Its model_version views `flags`.
Result<CallReport> parse_call_report(const CallReportFlags& flags);

using AttributeList = std::vector<std::pair<std::string, std::string>>;

// Each "K=V" of --attr, then model=M when `model` is not empty. Names must
// be non-empty and given once; values must be non-empty.
Result<AttributeList> parse_attributes(const std::vector<std::string>& pairs,
                                       const std::string& model);

}  // namespace sluice::cli
