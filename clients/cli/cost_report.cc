#include "cost_report.h"

#include <algorithm>
#include <bit>
#include <string_view>
#include <tuple>
#include <utility>

#include "record_attributes.h"
#include "sluice/quota.h"

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

// How the call went, as its commit reported it (cost_report.h).
struct CallOutcome {
  bool reported = false;
  bool error = false;
  std::uint64_t latency_ns = 0;
  std::uint64_t ttft_ns = 0;
};

CallOutcome outcome_of(const fb::Record& r) {
  const bool settled_call = r.event() == fb::Event::Commit ||
                            (r.event() == fb::Event::Abandon && reason_of(r) == "finished_commit");
  if (!settled_call) return {};
  CallOutcome o;
  o.latency_ns = r.latency_ns();
  o.ttft_ns = r.ttft_ns();
  const std::string_view name =
      r.outcome() != nullptr ? r.outcome()->string_view() : std::string_view();
  Outcome known = Outcome::kUnreported;
  const bool parsed = parse_outcome(name, &known);
  o.reported = !name.empty() && !(parsed && known == Outcome::kUnreported);
  o.error = parsed && is_error(known);
  return o;
}

void add_to(CostRow& row, const Charge& c, const CallOutcome& o) {
  row.calls += c.calls;
  row.input_tokens += c.input_tokens;
  row.output_tokens += c.output_tokens;
  row.cost_nusd += c.cost_nusd;
  row.rejections += c.rejections;
  row.outcomes_reported += o.reported ? 1 : 0;
  row.errors += o.error ? 1 : 0;
  if (o.latency_ns != 0) row.latency.add(o.latency_ns);
  if (o.ttft_ns != 0) row.ttft.add(o.ttft_ns);
}

// Values below 128 are their own bucket; above, the top 7 bits (the leading
// one and 6 more) and the shift pick it: 64 buckets per power of two.
std::uint32_t bucket_of(std::uint64_t ns) {
  if (ns < 128) return static_cast<std::uint32_t>(ns);
  const auto shift = static_cast<std::uint32_t>(std::bit_width(ns) - 7);  // 1 .. 57
  const auto top = static_cast<std::uint32_t>(ns >> shift);               // 64 .. 127
  return 128 + (shift - 1) * 64 + (top - 64);
}

}  // namespace

void DurationHistogram::add(std::uint64_t ns) {
  const std::uint32_t index = bucket_of(ns);
  auto it = std::lower_bound(buckets_.begin(), buckets_.end(), index,
                             [](const Bucket& b, std::uint32_t i) { return b.index < i; });
  if (it == buckets_.end() || it->index != index) {
    it = buckets_.insert(it, Bucket{index, 0, ns, ns});
  }
  ++it->count;
  it->least = std::min(it->least, ns);
  it->greatest = std::max(it->greatest, ns);
  ++count_;
}

std::optional<std::uint64_t> DurationHistogram::percentile(unsigned p) const {
  if (count_ == 0 || p == 0 || p > 100) return std::nullopt;
  const std::uint64_t rank = (p * count_ + 99) / 100;  // ceil(p * n / 100), 1-based
  std::uint64_t before = 0;                            // ranks in the buckets below
  for (const Bucket& b : buckets_) {
    if (rank > before + b.count) {
      before += b.count;
      continue;
    }
    if (rank == before + 1) return b.least;
    if (rank == before + b.count) return b.greatest;
    return b.least + (b.greatest - b.least) / 2;
  }
  return buckets_.back().greatest;  // not reached: the ranks add up to count_
}

std::optional<double> CostRow::error_rate() const {
  if (outcomes_reported == 0) return std::nullopt;
  return static_cast<double>(errors) / static_cast<double>(outcomes_reported);
}

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
  const CallOutcome o = outcome_of(record);
  add_to(row, c, o);
  add_to(total_, c, o);
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
