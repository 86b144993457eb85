// The policy: what a sidecar enforces, as read from a YAML file.
//
//   sluice::Result<sluice::Policy> p = sluice::load_policy_file("examples/policy.yaml");
//   if (!p.ok()) { std::fputs((p.status().message() + "\n").c_str(), stderr); return 2; }
//
// load_policy_file / parse_policy validate everything: a Policy that comes
// back is consistent and ready to compile into a segment. Every error names
// the file, the line, the field and the fix, in one line, e.g.
//   policy.yaml:14: limits[2].usd_per_day: must be positive, e.g. usd_per_day: 25.00
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/status.h"

namespace sluice {

enum class LimitKind { kRate, kBudget, kModelAccess };
// What one unit of a limit is.
enum class Measure { kRequests, kTokens, kInputTokens, kOutputTokens, kUsd };
enum class Period { kSecond, kMinute, kHour, kDay, kWeek, kMonth };
enum class Scope { kLocal, kGlobal };
enum class OnStoreDown { kFailClosed, kLocalShare, kFailOpen };

struct MatchTerm {
  std::string attribute;  // "team", "feature", "user", "model", ...
  std::string value;      // exact value; empty when wildcard
  bool wildcard = false;  // "*": matches any present value, one cell per distinct value
};

struct LimitSpec {
  std::string name;              // unique within the policy
  int line = 0;                  // line of the limit in the source file, for messages
  std::vector<MatchTerm> match;  // sorted by attribute name; empty matches every call
  LimitKind kind = LimitKind::kRate;
  Measure measure = Measure::kRequests;  // rates and budgets
  Period period = Period::kSecond;       // rates: second|minute|hour; budgets: day|week|month
  // Rates: units per period (requests or tokens). Budgets in tokens: tokens
  // per window. Budgets in USD: nano-dollars per window.
  std::uint64_t amount = 0;
  std::uint64_t burst = 0;          // rates: units; default one second's worth, at least 1
  std::string timezone = "UTC";     // budgets: IANA zone of the calendar windows
  std::vector<std::string> models;  // model access: the models allowed
  bool shadow = false;              // record would-rejects, admit anyway
  Scope scope = Scope::kLocal;
  OnStoreDown on_store_down = OnStoreDown::kFailClosed;
};

struct ModelPrice {
  std::string name;
  // Pico-dollars per token (1 USD per million tokens = 1'000'000 pUSD/token).
  std::uint64_t input_pusd_per_token = 0;
  std::uint64_t output_pusd_per_token = 0;
  std::uint64_t cached_pusd_per_token = 0;
};

struct SegmentSpec {
  std::string name = "sluice";  // shared-memory object name (no slash)
  std::uint64_t max_keys = 65536;
  std::uint64_t max_reservations = 16384;
  std::uint64_t audit_ring_bytes = 16ull << 20;
  std::string group;  // group owning the segment; empty = the sidecar's group
};

struct StoreSpec {
  std::string kind = "sqlite";  // sqlite | redis
  std::string path = "var/sluice.db";
  std::string url;                       // redis: redis://host:port[/db]
  std::string host_id = "host-a";        // names this host in the store
  std::uint64_t sync_interval_ms = 250;  // push usage and refresh leases this often
  std::uint64_t lease_ms = 5000;         // a host's unexposed allotment returns after this
  std::uint64_t timeout_ms = 500;        // every connect and command of a network store
};

struct AuditSpec {
  std::string dir = "var/audit";
  bool enabled = true;  // false: no audit records (for measuring what they cost)
  bool required = false;
  std::uint64_t fsync_interval_ms = 50;      // fdatasync at least this often
  std::uint64_t rotate_bytes = 64ull << 20;  // start a new file past this size
  std::uint64_t rotate_seconds = 3600;       // ... or past this age
  std::uint64_t retain_files = 24;           // keep this many files, delete older
  std::uint64_t retain_seconds = 0;          // delete files older than this; 0: no age limit
};

struct MetricsSpec {
  // "host:port" sluiced serves Prometheus metrics on (GET /metrics); empty:
  // no metrics block, nothing served. A block without listen means
  // 127.0.0.1:9464.
  std::string listen;
  std::uint64_t max_series = 1000;  // per metric family; the rest folds into one "other" series
};

enum class AlertKind : std::uint8_t { kExhaustsWithin, kP99LatencyAbove, kErrorRateAbove };

// One entry of alerts: what sluiced watches and reports when it starts or
// stops holding; sluiced evaluates it about once a second.
struct AlertSpec {
  std::string name;  // unique within the policy, [A-Za-z0-9_.-]{1,63}
  AlertKind kind = AlertKind::kExhaustsWithin;
  std::string budget;  // exhausts_within: a limit of kind kBudget
  std::string model;   // latency and error rate: a priced model; empty = all models together
  std::uint64_t value_ns = 0;               // exhausts_within, p99_latency_above: the threshold
  double rate = 0;                          // error_rate_above: the threshold, in (0, 1]
  std::uint64_t over_ns = 300'000'000'000;  // latency and error rate: the window, 1m..1h
  std::uint64_t min_calls = 10;  // latency and error rate: fewer calls in the window never fire

  friend bool operator==(const AlertSpec&, const AlertSpec&) = default;
};

struct Policy {
  std::string source;  // file name the policy came from, for messages
  SegmentSpec segment;
  StoreSpec store;
  AuditSpec audit;
  MetricsSpec metrics;
  std::vector<ModelPrice> models;
  std::vector<LimitSpec> limits;
  std::string alerts_webhook;  // http://host:port[/path] alert changes are POSTed to; empty: none
  std::vector<AlertSpec> alerts;
};

// Parses and validates YAML text. `source` names the file in messages.
Result<Policy> parse_policy(const std::string& yaml_text, const std::string& source);
// Reads and parses a file; a missing or unreadable file is a one-line error.
Result<Policy> load_policy_file(const std::string& path);

// Nominal length of a period (a month counts as 31 days).
std::uint64_t period_seconds(Period p);

const char* to_string(Measure m);
const char* to_string(Period p);
const char* to_string(AlertKind k);  // "exhausts_within", "p99_latency_above", "error_rate_above"

}  // namespace sluice
