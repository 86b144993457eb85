// Cost attribution from the audit trail, for `sluice report`: one row per
// distinct combination of the chosen attributes' values, summing what the
// calls were charged.
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
#pragma once

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

struct CostRow {
  std::vector<std::optional<std::string>> values;  // one per attribute; nullopt: absent
  std::uint64_t cost_nusd = 0;
  std::uint64_t calls = 0;
  std::uint64_t input_tokens = 0;
  std::uint64_t output_tokens = 0;
  std::uint64_t rejections = 0;
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
