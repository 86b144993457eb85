#include "audit_format.h"

#include <cstdio>
#include <ctime>
#include <string_view>

#include "output.h"
#include "record_attributes.h"
#include "sluice/quota.h"

namespace sluice::cli {
namespace {

namespace fb = audit::fb;
using nlohmann::json;

constexpr std::uint64_t kNsPerSecond = 1'000'000'000ull;

// Column widths; a longer value pushes the rest of its row right.
constexpr int kTimeWidth = 30;
constexpr int kEventWidth = 7;
constexpr int kDecisionWidth = 9;
constexpr int kReasonWidth = 36;
constexpr int kTokensWidth = 17;
constexpr int kCostWidth = 12;

std::string text(const flatbuffers::String* s) { return s != nullptr ? s->str() : std::string(); }

json text_or_null(const flatbuffers::String* s) {
  return s != nullptr && s->size() > 0 ? json(s->str()) : json(nullptr);
}

// The call report's numbers are 0 when not reported.
json number_or_null(std::uint64_t n) { return n != 0 ? json(n) : json(nullptr); }

// Control characters (a newline in an attribute value) would break a row.
std::string printable(const std::string& s) { return printable_text(s); }

std::string reason_and_limit(const fb::Record& r) {
  std::string out = text(r.reason());
  const std::string limit = text(r.limit());
  if (!limit.empty()) out += out.empty() ? limit : " (" + limit + ")";
  return out.empty() ? "-" : printable(out);
}

std::string attributes_text(const fb::Record& r) {
  std::string out;
  audit::for_each_attribute(r, [&](std::string_view name, std::string_view value) {
    if (!out.empty()) out += ',';
    out.append(name).append("=").append(value);
  });
  return out.empty() ? "-" : printable(out);
}

// Commits (and records that carry actual usage) show it; the rest the estimate.
std::string tokens_text(const fb::Record& r) {
  const bool actual = r.event() == fb::Event::Commit || r.actual_input_tokens() != 0 ||
                      r.actual_output_tokens() != 0;
  const std::uint64_t in = actual ? r.actual_input_tokens() : r.est_input_tokens();
  const std::uint64_t out = actual ? r.actual_output_tokens() : r.est_output_tokens();
  return std::to_string(in) + "/" + std::to_string(out);
}

// The outcome a record's call report names; "" when it reports none
// (absent, empty or "unreported").
std::string_view reported_outcome(const fb::Record& r) {
  const std::string_view name =
      r.outcome() != nullptr ? r.outcome()->string_view() : std::string_view();
  return name == to_string(Outcome::kUnreported) ? std::string_view() : name;
}

// "outcome=provider_error http=503 latency=9.812s ttft=0.410s version=gpt-4o-2024-08-06",
// without what the commit did not report; "" when it reported nothing.
std::string call_report_text(const fb::Record& r) {
  std::string out;
  const auto add = [&out](std::string_view key, const std::string& value) {
    if (!out.empty()) out += ' ';
    out.append(key).append("=").append(value);
  };
  if (const std::string_view outcome = reported_outcome(r); !outcome.empty()) {
    add("outcome", printable(std::string(outcome)));
  }
  if (r.http_status() != 0) add("http", std::to_string(r.http_status()));
  if (r.latency_ns() != 0) add("latency", format_seconds(r.latency_ns()) + "s");
  if (r.ttft_ns() != 0) add("ttft", format_seconds(r.ttft_ns()) + "s");
  if (const std::string version = text(r.model_version()); !version.empty()) {
    add("version", printable(version));
  }
  return out;
}

void print_line(const std::string& time, const std::string& event, const std::string& decision,
                const std::string& reason, const std::string& tokens, const std::string& cost,
                const std::string& attributes) {
  std::printf("%-*s  %-*s  %-*s  %-*s  %*s  %*s  %s\n", kTimeWidth, time.c_str(), kEventWidth,
              event.c_str(), kDecisionWidth, decision.c_str(), kReasonWidth, reason.c_str(),
              kTokensWidth, tokens.c_str(), kCostWidth, cost.c_str(), attributes.c_str());
}

}  // namespace

std::string rfc3339_ns(std::uint64_t unix_ns) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ns / kNsPerSecond);
  std::tm tm{};
  if (::gmtime_r(&seconds, &tm) == nullptr) return std::to_string(unix_ns);
  char date[24];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%09lluZ", date,
                static_cast<unsigned long long>(unix_ns % kNsPerSecond));
  return out;
}

const char* audit_event_name(fb::Event event) {
  switch (event) {
    case fb::Event::Reserve:
      return "reserve";
    case fb::Event::Commit:
      return "commit";
    case fb::Event::Cancel:
      return "cancel";
    case fb::Event::Extend:
      return "extend";
    case fb::Event::Abandon:
      return "abandon";
  }
  return "unknown";
}

const char* audit_decision_name(fb::Decision decision) {
  switch (decision) {
    case fb::Decision::Admitted:
      return "admitted";
    case fb::Decision::Rejected:
      return "rejected";
    case fb::Decision::Settled:
      return "settled";
    case fb::Decision::Abandoned:
      return "abandoned";
  }
  return "unknown";
}

json audit_record_json(const fb::Record& r) {
  json attributes = json::object();
  audit::for_each_attribute(r, [&](std::string_view name, std::string_view value) {
    attributes[std::string(name)] = std::string(value);
  });
  json shadows = json::array();
  if (r.shadow_rejects() != nullptr) {
    for (const flatbuffers::String* s : *r.shadow_rejects()) shadows.push_back(text(s));
  }
  const std::string_view outcome = reported_outcome(r);
  return {{"sequence", r.sequence()},
          {"time", rfc3339_ns(r.time_unix_ns())},
          {"time_unix_ns", r.time_unix_ns()},
          {"reservation_id", r.reservation_id()},
          {"reservation_str", std::to_string(r.reservation_id())},
          {"pid", r.pid()},
          {"start_time", r.start_time()},
          {"event", audit_event_name(r.event())},
          {"decision", audit_decision_name(r.decision())},
          {"reason", text_or_null(r.reason())},
          {"limit", text_or_null(r.limit())},
          {"attributes", std::move(attributes)},
          {"est_input_tokens", r.est_input_tokens()},
          {"est_output_tokens", r.est_output_tokens()},
          {"actual_input_tokens", r.actual_input_tokens()},
          {"actual_output_tokens", r.actual_output_tokens()},
          {"cost_usd", usd(r.cost_nusd())},
          {"cost_nusd", r.cost_nusd()},
          {"retry_after_ms",
           r.retry_after_ns() / 1'000'000 + (r.retry_after_ns() % 1'000'000 != 0 ? 1 : 0)},
          {"shadow_rejects", std::move(shadows)},
          {"policy_generation", r.policy_generation()},
          {"outcome", outcome.empty() ? json(nullptr) : json(std::string(outcome))},
          {"http_status", number_or_null(r.http_status())},
          {"latency_ns", number_or_null(r.latency_ns())},
          {"ttft_ns", number_or_null(r.ttft_ns())},
          {"model_version", text_or_null(r.model_version())}};
}

void print_audit_table_header() {
  print_line("TIME", "EVENT", "DECISION", "REASON (LIMIT)", "TOKENS IN/OUT", "COST", "ATTRIBUTES");
}

void print_audit_row(const fb::Record& r) {
  std::string tail = attributes_text(r);
  if (std::string report = call_report_text(r); !report.empty()) tail += "  " + report;
  print_line(rfc3339_ns(r.time_unix_ns()), audit_event_name(r.event()),
             audit_decision_name(r.decision()), reason_and_limit(r), tokens_text(r),
             format_usd(r.cost_nusd()), tail);
}

}  // namespace sluice::cli
