#include "cost_report.h"

#include <algorithm>
#include <string_view>
#include <tuple>
#include <utility>

#include "record_attributes.h"

namespace sluice::cli {
namespace {

namespace fb = audit::fb;

Status invalid(std::string message) {
  return Status(ErrorCode::kInvalidArgument, std::move(message));
}

// "--by 'TEXT': 'NAME' PROBLEM; give ...", or without NAME when it is empty.
Status bad_by(const std::string& text, const std::string& name, const std::string& problem) {
  std::string message = "--by '" + text + "': ";
  if (!name.empty()) message += "'" + name + "' ";
  message += problem;
  message += "; give attribute names separated by commas, e.g. --by team,model";
  return invalid(std::move(message));
}

std::string_view reason_of(const fb::Record& r) {
  return r.reason() != nullptr ? r.reason()->string_view() : std::string_view();
}

// What a record settles for good: calls, tokens and cost charged.
struct Charge {
  std::uint64_t calls = 0;
  std::uint64_t input_tokens = 0;
  std::uint64_t output_tokens = 0;
  std::uint64_t cost_nusd = 0;
  std::uint64_t rejections = 0;
};

Charge charge_of(const fb::Record& r) {
  Charge c;
  switch (r.event()) {
    case fb::Event::Commit:
      c = {1, r.actual_input_tokens(), r.actual_output_tokens(), r.cost_nusd(), 0};
      break;
    case fb::Event::Abandon:
      if (reason_of(r) == "charged_at_estimate") {
        c = {1, r.est_input_tokens(), r.est_output_tokens(), r.cost_nusd(), 0};
      } else if (reason_of(r) == "finished_commit") {
        c = {1, r.actual_input_tokens(), r.actual_output_tokens(), r.cost_nusd(), 0};
      }
      break;
    case fb::Event::Reserve:
      if (r.decision() == fb::Decision::Rejected) c.rejections = 1;
      break;
    case fb::Event::Cancel:
    case fb::Event::Extend:
      break;
  }
  return c;
}

void add_to(CostRow& row, const Charge& c) {
  row.calls += c.calls;
  row.input_tokens += c.input_tokens;
  row.output_tokens += c.output_tokens;
  row.cost_nusd += c.cost_nusd;
  row.rejections += c.rejections;
}

}  // namespace

Result<std::vector<std::string>> parse_report_by(const std::string& text) {
  std::vector<std::string> names;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    std::string name =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (name.empty()) return bad_by(text, "", "an attribute name is empty");
    if (name.find_first_of("= \t") != std::string::npos) {
      return bad_by(text, name, "is not an attribute name");
    }
    if (std::find(names.begin(), names.end(), name) != names.end()) {
      return bad_by(text, name, "is given twice");
    }
    names.push_back(std::move(name));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (names.size() > kMaxReportAttributes) {
    return bad_by(text, "", "at most " + std::to_string(kMaxReportAttributes) + " attributes");
  }
  return names;
}

void CostReport::add(const fb::Record& record) {
  const Charge c = charge_of(record);
  if (c.calls == 0 && c.rejections == 0) return;
  std::vector<std::optional<std::string>> values(by_.size());
  audit::for_each_attribute(record, [&](std::string_view name, std::string_view value) {
    for (std::size_t i = 0; i < by_.size(); ++i) {
      if (by_[i] == name && !values[i]) values[i] = std::string(value);
    }
  });
  CostRow& row = rows_[values];
  if (row.values.empty()) row.values = std::move(values);
  add_to(row, c);
  add_to(total_, c);
}

std::vector<CostRow> CostReport::rows() const {
  std::vector<CostRow> out;
  out.reserve(rows_.size());
  for (const auto& [values, row] : rows_) out.push_back(row);
  std::stable_sort(out.begin(), out.end(), [](const CostRow& a, const CostRow& b) {
    return std::tie(b.cost_nusd, b.calls) < std::tie(a.cost_nusd, a.calls);
  });
  return out;
}

}  // namespace sluice::cli
