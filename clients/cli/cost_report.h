// Cost attribution from the audit trail, for `sluice report`: one row per
// distinct combination of the chosen attributes' values, summing what the
// calls were charged and how the model calls went (errors, latency).
//
//   Result<std::vector<std::string>> by = parse_report_by("team,model");
//   CostReport report(*by);
//   for each verified record in --since/--until: report.add(record);
//   for (const CostRow& row : report.rows()) ...;  // most expensive first
//
// What each record adds (shm-layout/audit.fbs):
// - commit: a call; its cost_nusd and actual tokens.
// - abandon charged_at_estimate: a call; the cost and the estimated tokens
//   it was charged at. abandon finished_commit: a call; its cost and actual
//   tokens. Other abandons (refunded_partial, finished_cancel) charged
//   nothing and are not calls.
// - reserve rejected: a rejection.
// Everything else (admitted reserves, extends, cancels) moves no money for good.
//
// How a call went comes from the call report a commit may carry (outcome,
// latency_ns, ttft_ns), read from commit records and abandon finished_commit
// records; the sidecar writes none on abandons today (libquota/reclaim.cc),
// so in practice commits only. An outcome other than "unreported" (or
// absent) is reported; provider_error and timeout are errors, and an outcome
// this sluice does not know is reported but not an error. A latency or TTFT
// of 0 is not reported and not counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "audit_generated.h"
#include "sluice/status.h"

namespace sluice::cli {

inline constexpr std::size_t kMaxReportAttributes = 8;

// "team,feature,model": attribute names, comma-separated, each once, at most
// kMaxReportAttributes.
Result<std::vector<std::string>> parse_report_by(const std::string& text);

// The durations (ns) of many calls in bounded memory, for percentiles.
//
//   DurationHistogram h;
//   for each call: h.add(latency_ns);
//   std::optional<std::uint64_t> p99 = h.percentile(99);  // nullopt: no calls
//
// Values below 128 ns have a bucket each; above, each power of two is split
// into 64 buckets, so a bucket's greatest value is less than 1/64 above its
// least. Each bucket keeps its count and its least and greatest value: at
// most kMaxBuckets buckets of 32 bytes (under 120 KiB) however many calls,
// and only the buckets some call fell in (1 ms .. 2 min spans ~1100).
//
// percentile(p) is the nearest rank: of the n values sorted ascending, the
// k-th with k = ceil(p * n / 100), 1 <= p <= 100 (so p100 is the greatest).
// It answers with the bucket that holds rank k: its least value when k is
// the bucket's first rank, its greatest when k is its last, else the mean of
// the two rounded down. The answer is exact when that bucket holds one
// distinct value or k is at either end of it, and otherwise at most 1/128
// (0.79%) of the exact value away from it.
class DurationHistogram {
 public:
  static constexpr std::size_t kMaxBuckets = 128 + 57 * 64;

  void add(std::uint64_t ns);
  std::uint64_t count() const { return count_; }
  std::optional<std::uint64_t> percentile(unsigned p) const;
  std::size_t bucket_count() const { return buckets_.size(); }

 private:
  struct Bucket {
    std::uint32_t index = 0;
    std::uint64_t count = 0;
    std::uint64_t least = 0;
    std::uint64_t greatest = 0;
  };
  std::vector<Bucket> buckets_;  // by index, ascending
  std::uint64_t count_ = 0;
};

struct CostRow {
  std::vector<std::optional<std::string>> values;  // one per attribute; nullopt: absent
  std::uint64_t cost_nusd = 0;
  std::uint64_t calls = 0;
  std::uint64_t input_tokens = 0;
  std::uint64_t output_tokens = 0;
  std::uint64_t rejections = 0;
  // Of those calls, the ones that reported an outcome, and the errors among them.
  std::uint64_t outcomes_reported = 0;
  std::uint64_t errors = 0;
  DurationHistogram latency;  // latency_ns of the calls that reported one
  DurationHistogram ttft;     // ttft_ns likewise

  // errors / outcomes_reported; nullopt when no call reported an outcome.
  std::optional<double> error_rate() const;
};

class CostReport {
 public:
  explicit CostReport(std::vector<std::string> by) : by_(std::move(by)) {}

  void add(const audit::fb::Record& record);

  const std::vector<std::string>& by() const { return by_; }
  // By cost, most first; then by calls, most first; then by values.
  std::vector<CostRow> rows() const;
  CostRow total() const { return total_; }

 private:
  std::vector<std::string> by_;
  std::map<std::vector<std::optional<std::string>>, CostRow> rows_;
  CostRow total_;
};

}  // namespace sluice::cli
