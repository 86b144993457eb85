// sluice report: who spent what. From the audit trail (cost_report.h) by
// any call attributes, or from the SQLite ledger (ledger_report.h) by limit
// key and window; as a table, CSV or JSON.
#include <cctype>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "audit_filter.h"
#include "audit_format.h"
#include "audit_source.h"
#include "commands.h"
#include "cost_report.h"
#include "ledger_report.h"
#include "output.h"
#include "sluice/inspect.h"

namespace sluice::cli {
namespace {

namespace fb = audit::fb;
using nlohmann::json;

constexpr const char* kDefaultBy = "team,feature,model";
constexpr std::uint64_t kNsPerSecond = 1'000'000'000ull;

enum class Format { kTable, kCsv, kJson };

struct ReportOptions {
  std::string by;
  std::string since;
  std::string until;
  std::string format = "table";
  std::string dir;
  std::string ledger;
};

Result<Format> parse_format(const std::string& text) {
  if (text == "table") return Format::kTable;
  if (text == "csv") return Format::kCsv;
  if (text == "json") return Format::kJson;
  return Status(ErrorCode::kInvalidArgument, "--format '" + text + "': use table, csv or json");
}

json time_json(const std::optional<std::uint64_t>& unix_ns) {
  return unix_ns ? json(rfc3339_ns(*unix_ns)) : json(nullptr);
}

// ---------------------------------------------------------------------------
// From the audit trail

std::vector<std::string> row_numbers(const CostRow& r) {
  return {std::to_string(r.calls), std::to_string(r.input_tokens), std::to_string(r.output_tokens),
          std::to_string(r.rejections), format_usd_fixed(r.cost_nusd)};
}

// How the calls went: latency p50 / p95 / p99 and time to first token p50 /
// p99 (CSV and JSON; the table has latency p50 and p99). p95 rather than
// p90: it is the tail that latency objectives and dashboards usually name,
// so the figure compares with theirs as it is.
constexpr unsigned kLatencyPercentiles[] = {50, 95, 99};
constexpr unsigned kTtftPercentiles[] = {50, 99};

std::string optional_number(const std::optional<std::uint64_t>& n) {
  return n ? std::to_string(*n) : std::string();
}

// "2.300": seconds, to the millisecond (rounded); "-" when none.
std::string seconds_text(const std::optional<std::uint64_t>& ns) {
  return ns ? format_seconds(*ns) : "-";
}

// "12.50%"; "-" when no call reported an outcome.
std::string percent_text(const std::optional<double>& rate) {
  if (!rate) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.2f%%", *rate * 100);
  return text;
}

// The table's: ERROR RATE, P50 (S), P99 (S).
std::vector<std::string> row_calls_table(const CostRow& r) {
  return {percent_text(r.error_rate()), seconds_text(r.latency.percentile(50)),
          seconds_text(r.latency.percentile(99))};
}

std::vector<std::string> calls_csv_header() {
  std::vector<std::string> header = {"errors", "outcomes_reported", "error_rate", "latency_calls"};
  for (unsigned p : kLatencyPercentiles) header.push_back("latency_p" + std::to_string(p) + "_ns");
  header.emplace_back("ttft_calls");
  for (unsigned p : kTtftPercentiles) header.push_back("ttft_p" + std::to_string(p) + "_ns");
  return header;
}

std::vector<std::string> row_calls_csv(const CostRow& r) {
  std::string rate;
  if (const std::optional<double> e = r.error_rate()) {
    char text[32];
    std::snprintf(text, sizeof text, "%.6f", *e);
    rate = text;
  }
  std::vector<std::string> fields = {std::to_string(r.errors), std::to_string(r.outcomes_reported),
                                     rate, std::to_string(r.latency.count())};
  for (unsigned p : kLatencyPercentiles) fields.push_back(optional_number(r.latency.percentile(p)));
  fields.push_back(std::to_string(r.ttft.count()));
  for (unsigned p : kTtftPercentiles) fields.push_back(optional_number(r.ttft.percentile(p)));
  return fields;
}

json optional_json(const std::optional<std::uint64_t>& n) { return n ? json(*n) : json(nullptr); }

json row_numbers_json(const CostRow& r) {
  const std::optional<double> rate = r.error_rate();
  json out = {{"calls", r.calls},
              {"input_tokens", r.input_tokens},
              {"output_tokens", r.output_tokens},
              {"rejections", r.rejections},
              {"cost_nusd", r.cost_nusd},
              {"cost_usd", usd(r.cost_nusd)},
              {"errors", r.errors},
              {"outcomes_reported", r.outcomes_reported},
              {"error_rate", rate ? json(*rate) : json(nullptr)},
              {"latency_calls", r.latency.count()},
              {"ttft_calls", r.ttft.count()}};
  for (unsigned p : kLatencyPercentiles) {
    out["latency_p" + std::to_string(p) + "_ns"] = optional_json(r.latency.percentile(p));
  }
  for (unsigned p : kTtftPercentiles) {
    out["ttft_p" + std::to_string(p) + "_ns"] = optional_json(r.ttft.percentile(p));
  }
  return out;
}

void print_cost_table(const CostReport& report) {
  std::vector<std::string> header;
  for (const std::string& name : report.by()) {
    std::string upper = name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    header.push_back(upper);
  }
  const std::size_t n = header.size();
  for (const char* h : {"CALLS", "INPUT TOKENS", "OUTPUT TOKENS", "REJECTIONS", "COST (USD)",
                        "ERROR RATE", "P50 (S)", "P99 (S)"}) {
    header.emplace_back(h);
  }
  std::vector<std::vector<std::string>> cells;
  auto add = [&](std::vector<std::string> values, const CostRow& r) {
    for (std::string& number : row_numbers(r)) values.push_back(std::move(number));
    for (std::string& number : row_calls_table(r)) values.push_back(std::move(number));
    cells.push_back(std::move(values));
  };
  for (const CostRow& r : report.rows()) {
    std::vector<std::string> values;
    for (const std::optional<std::string>& v : r.values) values.push_back(v.value_or("-"));
    add(std::move(values), r);
  }
  std::vector<std::string> total(n);
  total[0] = "TOTAL";
  add(std::move(total), report.total());
  std::vector<std::size_t> right;
  for (std::size_t i = n; i < header.size(); ++i) right.push_back(i);
  print_table(header, cells, right);
}

void print_cost_csv(const CostReport& report) {
  std::vector<std::string> header = report.by();
  for (const char* h :
       {"calls", "input_tokens", "output_tokens", "rejections", "cost_usd", "cost_nusd"}) {
    header.emplace_back(h);
  }
  for (std::string& h : calls_csv_header()) header.push_back(std::move(h));
  std::string out = csv_line(header);
  auto add = [&](std::vector<std::string> fields, const CostRow& r) {
    for (std::string& number : row_numbers(r)) fields.push_back(std::move(number));
    fields.push_back(std::to_string(r.cost_nusd));
    for (std::string& number : row_calls_csv(r)) fields.push_back(std::move(number));
    out += csv_line(fields);
  };
  for (const CostRow& r : report.rows()) {
    std::vector<std::string> fields;
    for (const std::optional<std::string>& v : r.values) fields.push_back(v.value_or("-"));
    add(std::move(fields), r);
  }
  std::vector<std::string> total(report.by().size());
  total[0] = "TOTAL";
  add(std::move(total), report.total());
  std::fwrite(out.data(), 1, out.size(), stdout);
}

void print_cost_json(const CostReport& report, const AuditFilter& filter, const AuditDir& dir) {
  json rows = json::array();
  for (const CostRow& r : report.rows()) {
    json attributes = json::object();
    for (std::size_t i = 0; i < report.by().size(); ++i) {
      attributes[report.by()[i]] = r.values[i] ? json(*r.values[i]) : json(nullptr);
    }
    json row = {{"attributes", std::move(attributes)}};
    row.update(row_numbers_json(r));
    rows.push_back(std::move(row));
  }
  print_json({{"source", "audit"},
              {"audit_dir", dir.path},
              {"by", report.by()},
              {"since", time_json(filter.since_unix_ns)},
              {"until", time_json(filter.until_unix_ns)},
              {"rows", std::move(rows)},
              {"total", row_numbers_json(report.total())}});
}

int report_from_audit(const Globals& g, const ReportOptions& o, bool by_given,
                      const AuditFilter& filter, Format format) {
  Result<std::vector<std::string>> by = parse_report_by(by_given ? o.by : kDefaultBy);
  if (!by.ok()) return fail(kExitUsage, by.status().message());
  const AuditDir dir = resolve_audit_dir(g.segment, o.dir);
  if (std::string bad = check_audit_dir(dir); !bad.empty()) return fail(kExitUsage, bad);
  CostReport report(std::move(by.value()));
  AuditRecordSink sink(
      [&](const fb::Record& r) {
        if (filter.matches(r)) report.add(r);
      },
      "not counted");
  if (int status = read_audit_dir(dir.path, sink); status != kExitOk) return status;
  switch (format) {
    case Format::kTable:
      print_cost_table(report);
      break;
    case Format::kCsv:
      print_cost_csv(report);
      break;
    case Format::kJson:
      print_cost_json(report, filter, dir);
      break;
  }
  std::fflush(stdout);
  return sink.report(dir.path);
}

// ---------------------------------------------------------------------------
// From the ledger

// "2026-11-23T05:00:00Z".
std::string window_time(std::uint64_t unix_s) {
  return rfc3339_ns(unix_s * kNsPerSecond).substr(0, 19) + "Z";
}

// The unit of each limit of the policy sluiced runs on the segment, if one
// runs; the ledger itself does not record units.
std::unordered_map<std::string, std::string> live_units(const std::string& segment) {
  std::unordered_map<std::string, std::string> units;
  Result<std::vector<LimitRow>> limits = list_limits(segment);
  if (limits.ok()) {
    for (const LimitRow& l : limits.value()) units[l.limit] = l.unit;
  }
  return units;
}

std::string used_text(const std::string& unit, std::int64_t used) {
  if (unit != "usd") return std::to_string(used);
  const std::uint64_t magnitude =
      used < 0 ? 0 - static_cast<std::uint64_t>(used) : static_cast<std::uint64_t>(used);
  return (used < 0 ? "-" : "") + format_usd_fixed(magnitude);
}

int report_from_ledger(const Globals& g, const ReportOptions& o, const AuditFilter& filter,
                       Format format) {
  Result<std::vector<LedgerRow>> rows =
      read_ledger(o.ledger, filter.since_unix_ns, filter.until_unix_ns);
  if (!rows.ok()) return fail(kExitUsage, rows.status().message());
  const std::unordered_map<std::string, std::string> units = live_units(g.segment);
  auto unit_of = [&](const LedgerRow& r) {
    const auto it = units.find(r.limit);
    return it != units.end() ? it->second : std::string();
  };
  if (format == Format::kJson) {
    json out = json::array();
    for (const LedgerRow& r : rows.value()) {
      const std::string unit = unit_of(r);
      json row = {{"limit", r.limit},
                  {"key", r.key},
                  {"window_start", window_time(r.window_start_unix)},
                  {"window_end", window_time(r.window_end_unix)},
                  {"window_start_unix", r.window_start_unix},
                  {"window_end_unix", r.window_end_unix},
                  {"scope", r.global ? "global" : "local"},
                  {"hosts", r.hosts},
                  {"used", r.used},
                  {"unit", unit.empty() ? json(nullptr) : json(unit)}};
      if (unit == "usd") row["used_usd"] = static_cast<double>(r.used) / 1e9;
      out.push_back(std::move(row));
    }
    print_json({{"source", "ledger"},
                {"ledger", o.ledger},
                {"since", time_json(filter.since_unix_ns)},
                {"until", time_json(filter.until_unix_ns)},
                {"rows", std::move(out)}});
    return kExitOk;
  }
  std::vector<std::vector<std::string>> cells;
  for (const LedgerRow& r : rows.value()) {
    const std::string unit = unit_of(r);
    cells.push_back({r.limit, r.key, window_time(r.window_start_unix),
                     window_time(r.window_end_unix), r.global ? "global" : "local",
                     std::to_string(r.hosts), used_text(unit, r.used), unit.empty() ? "?" : unit});
  }
  if (format == Format::kCsv) {
    std::string out =
        csv_line({"limit", "key", "window_start", "window_end", "scope", "hosts", "used", "unit"});
    for (const std::vector<std::string>& row : cells) out += csv_line(row);
    std::fwrite(out.data(), 1, out.size(), stdout);
  } else {
    print_table({"LIMIT", "KEY", "WINDOW START", "WINDOW END", "SCOPE", "HOSTS", "USED", "UNIT"},
                cells, {5, 6});
  }
  return kExitOk;
}

int run_report(const Globals& g, const CLI::App& app, const ReportOptions& o) {
  Result<Format> format = parse_format(o.format);
  if (!format.ok()) return fail(kExitUsage, format.status().message());
  AuditFilterOptions window;
  window.since = o.since;
  window.until = o.until;
  Result<AuditFilter> filter = parse_audit_filter(window, realtime_now_ns());
  if (!filter.ok()) return fail(kExitUsage, filter.status().message());
  const bool by_given = app.count("--by") > 0;
  if (app.count("--ledger") == 0) return report_from_audit(g, o, by_given, filter.value(), *format);
  if (by_given) {
    return fail(kExitUsage,
                "--by does not apply to --ledger: the ledger knows limit keys and windows, not "
                "call attributes; drop --by, or drop --ledger to report from the audit trail");
  }
  if (app.count("--dir") > 0) {
    return fail(kExitUsage,
                "--dir and --ledger name two sources; give one (--dir: the audit trail, "
                "--ledger: the SQLite store file)");
  }
  if (o.ledger.empty()) {
    return fail(kExitUsage, "--ledger needs the store's file, e.g. --ledger var/sluice.db");
  }
  return report_from_ledger(g, o, filter.value(), *format);
}

}  // namespace

void add_report_command(CLI::App& app, const Globals& g, std::vector<Command>& out) {
  auto o = std::make_shared<ReportOptions>();
  CLI::App* report =
      app.add_subcommand("report",
                         "who spent what: cost, calls, tokens, rejections, errors and latency per "
                         "team/feature/model");
  report
      ->add_option("--by", o->by,
                   "attributes to group by, comma-separated; default " + std::string(kDefaultBy))
      ->type_name("A,B,...");
  report
      ->add_option("--since", o->since,
                   "from T on: 2026-11-23T10:00:00Z, 2026-11-23, or 10m / 2h / 1d ago")
      ->type_name("T");
  report->add_option("--until", o->until, "up to T (same forms as --since)")->type_name("T");
  report->add_option("--format", o->format, "table | csv | json; default table")->type_name("F");
  report
      ->add_option("--dir", o->dir,
                   "audit directory; default: the one sluiced publishes in the segment, else " +
                       std::string(kDefaultAuditDir))
      ->type_name("DIR");
  report
      ->add_option("--ledger", o->ledger,
                   "report from the SQLite store file (store.path) instead of the audit trail")
      ->type_name("PATH");
  report->footer(
      "Two sources:\n"
      "  the audit trail (default): every call with its attributes, so any --by works. COST is\n"
      "    what calls were charged: commits at their actual cost, reservations the sidecar\n"
      "    settled (abandoned) at what it charged. CALLS counts those; TOKENS are the ones\n"
      "    charged; REJECTIONS counts refused reserves. --since/--until (both inclusive) pick\n"
      "    records by time. A missing attribute shows as - (null in JSON). Rows by cost, most\n"
      "    first, then a TOTAL row. Needs the audit files: with --dir no segment is needed.\n"
      "    How the calls went, from what their commits reported (outcome, latency, time to first\n"
      "    token): ERROR RATE is errors (provider_error, timeout) over the calls that reported\n"
      "    an outcome; P50 (S) and P99 (S) are the latency percentiles in seconds of the calls\n"
      "    that reported a latency; - when none did. CSV and JSON add errors,\n"
      "    outcomes_reported, error_rate (a fraction), latency_calls, latency_p50_ns,\n"
      "    latency_p95_ns, latency_p99_ns, ttft_calls, ttft_p50_ns, ttft_p99_ns (empty in CSV,\n"
      "    null in JSON, when none). Percentiles are nearest-rank, exact or within 0.8%.\n"
      "  --ledger PATH: what each budget used, as the sidecar keeps it in its SQLite store, for\n"
      "    when there are no audit files. It knows limit keys (the matched values, KEY) and\n"
      "    calendar windows; not call attributes, calls, rejections, or the tokens behind a USD\n"
      "    amount, so --by does not apply. A window counts when it overlaps --since/--until, with\n"
      "    all it used. UNIT comes from the policy on the segment (? if it lacks the limit); JSON\n"
      "    \"used\" is exact (USD in nano-dollars). The file is opened read-only.\n"
      "USD has nine decimals (exact); JSON has cost_nusd (exact) and cost_usd.\n"
      "Exit status: 0 done, 1 audit records that could not be read (not counted; one line on\n"
      "stderr), 2 bad flags, no audit directory or no ledger.");
  out.push_back({report, [&g, o, report] { return run_report(g, *report, *o); }});
}

}  // namespace sluice::cli
