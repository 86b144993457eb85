// Policy files: YAML in, a validated Policy or one line naming file, line, field and fix out.
#include "sluice/policy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstddef>
#include <exception>
#include <map>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "calendar.h"
#include "yaml_document.h"

namespace sluice {
namespace {

constexpr std::size_t kMaxLimits = 64;
constexpr std::size_t kMaxModels = 64;
constexpr std::size_t kMaxModelsPerLimit = 16;
constexpr std::size_t kMaxNameLength = 48;
constexpr std::size_t kMaxMatchTerms = 4;
constexpr std::size_t kMaxAttributeLength = 15;
constexpr std::size_t kMaxMatchValueLength = 256;
constexpr std::size_t kMaxSegmentNameLength = 200;
constexpr std::uint64_t kMaxQuantity = 1'000'000'000'000'000;  // any count, rate or size
constexpr std::size_t kMaxFileBytes = 16u << 20;
constexpr int kPriceDecimals = 6;   // USD per million tokens -> pico-dollars per token
constexpr int kBudgetDecimals = 9;  // USD -> nano-dollars
constexpr std::size_t kMaxAlerts = 64;
constexpr std::size_t kMaxAlertNameLength = 63;
constexpr int kRateDecimals = 9;  // error_rate_above: billionths
constexpr std::uint64_t kNsPerSecond = 1'000'000'000;
constexpr std::uint64_t kMinAlertWindowNs = 60 * kNsPerSecond;
constexpr std::uint64_t kMaxAlertWindowNs = 3600 * kNsPerSecond;
// The last finite bound of the call latency histogram (shm::kCallLatencyBoundsMs):
// a p99 threshold at or past it can never be exceeded.
constexpr std::uint64_t kMaxLatencyAlertNs = 120 * kNsPerSecond;

struct MeasureKey {
  std::string_view key;
  LimitKind kind;
  Measure measure;
  Period period;
};

using K = LimitKind;
using M = Measure;
using P = Period;
constexpr MeasureKey kMeasureKeys[] = {
    {"requests_per_second", K::kRate, M::kRequests, P::kSecond},
    {"requests_per_minute", K::kRate, M::kRequests, P::kMinute},
    {"requests_per_hour", K::kRate, M::kRequests, P::kHour},
    {"tokens_per_second", K::kRate, M::kTokens, P::kSecond},
    {"tokens_per_minute", K::kRate, M::kTokens, P::kMinute},
    {"tokens_per_hour", K::kRate, M::kTokens, P::kHour},
    {"input_tokens_per_second", K::kRate, M::kInputTokens, P::kSecond},
    {"input_tokens_per_minute", K::kRate, M::kInputTokens, P::kMinute},
    {"input_tokens_per_hour", K::kRate, M::kInputTokens, P::kHour},
    {"output_tokens_per_second", K::kRate, M::kOutputTokens, P::kSecond},
    {"output_tokens_per_minute", K::kRate, M::kOutputTokens, P::kMinute},
    {"output_tokens_per_hour", K::kRate, M::kOutputTokens, P::kHour},
    {"usd_per_day", K::kBudget, M::kUsd, P::kDay},
    {"usd_per_week", K::kBudget, M::kUsd, P::kWeek},
    {"usd_per_month", K::kBudget, M::kUsd, P::kMonth},
    {"tokens_per_day", K::kBudget, M::kTokens, P::kDay},
    {"tokens_per_week", K::kBudget, M::kTokens, P::kWeek},
    {"tokens_per_month", K::kBudget, M::kTokens, P::kMonth},
    {"input_tokens_per_day", K::kBudget, M::kInputTokens, P::kDay},
    {"input_tokens_per_week", K::kBudget, M::kInputTokens, P::kWeek},
    {"input_tokens_per_month", K::kBudget, M::kInputTokens, P::kMonth},
    {"output_tokens_per_day", K::kBudget, M::kOutputTokens, P::kDay},
    {"output_tokens_per_week", K::kBudget, M::kOutputTokens, P::kWeek},
    {"output_tokens_per_month", K::kBudget, M::kOutputTokens, P::kMonth},
};

const char kMeasureChoices[] =
    "requests_per_{second,minute,hour}, {tokens,input_tokens,output_tokens}_per_{second,minute,"
    "hour}, usd_per_{day,week,month}, {tokens,input_tokens,output_tokens}_per_{day,week,month}, "
    "models";

using Keys = std::span<const std::string_view>;
constexpr std::string_view kTopKeys[] = {"segment", "store",   "models",         "limits",
                                         "audit",   "metrics", "alerts_webhook", "alerts"};
constexpr std::string_view kAlertKeys[] = {"name",  "when", "value",    "budget",
                                           "model", "over", "min_calls"};
constexpr std::string_view kAlertKinds[] = {"exhausts_within", "p99_latency_above",
                                            "error_rate_above"};  // in AlertKind order
constexpr std::string_view kMetricsKeys[] = {"listen", "max_series"};
constexpr std::string_view kSegmentKeys[] = {"name", "max_keys", "max_reservations",
                                             "audit_ring_bytes", "group"};
constexpr std::string_view kStoreKeys[] = {
    "kind", "path", "url", "host_id", "sync_interval_ms", "lease_ms", "timeout_ms"};
constexpr std::string_view kAuditKeys[] = {
    "dir",          "enabled",        "required",     "fsync_interval_ms",
    "rotate_bytes", "rotate_seconds", "retain_files", "retain_seconds"};
constexpr std::string_view kPriceKeys[] = {"input_usd_per_mtok", "output_usd_per_mtok",
                                           "cached_usd_per_mtok"};
constexpr std::string_view kStoreKinds[] = {"sqlite", "redis"};
constexpr std::string_view kScopes[] = {"local", "global"};  // in Scope order
constexpr std::string_view kOnStoreDown[] = {"fail_closed", "local_share",
                                             "fail_open"};  // in OnStoreDown order

const char kLimitKeysText[] =
    "name, match, requests_per_{second,minute,hour}, "
    "{tokens,input_tokens,output_tokens}_per_{second,minute,hour}, burst_requests, burst_tokens, "
    "usd_per_{day,week,month}, {tokens,input_tokens,output_tokens}_per_{day,week,month}, "
    "timezone, models, shadow, scope, on_store_down";

std::string join(Keys keys) {
  std::string out;
  for (std::string_view k : keys) {
    if (!out.empty()) out += ", ";
    out += k;
  }
  return out;
}

// A value from the file, safe to put in a one-line message.
std::string quoted(std::string_view s) {
  constexpr std::size_t kMaxShown = 40;
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  if (s.size() > kMaxShown) out += "...";
  return out + "'";
}

std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return s;
}

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Appends decimal digit `d` to `*v`; false on overflow.
bool push_digit(std::uint64_t* v, unsigned d) {
  return !__builtin_mul_overflow(*v, 10u, v) && !__builtin_add_overflow(*v, d, v);
}

enum class Parse { kOk, kMalformed, kTooPrecise, kOverflow };

Parse parse_uint(std::string_view s, std::uint64_t* out) {
  if (s.empty() || !all_digits(s)) return Parse::kMalformed;
  std::uint64_t v = 0;
  for (char c : s) {
    if (!push_digit(&v, static_cast<unsigned>(c - '0'))) return Parse::kOverflow;
  }
  *out = v;
  return Parse::kOk;
}

// "2.50" with scale 6 -> 2500000, exactly: the decimal text is scaled, never a double.
Parse parse_decimal(std::string_view s, int scale, std::uint64_t* out) {
  const std::size_t dot = s.find('.');
  const std::string_view whole = s.substr(0, dot);
  const std::string_view frac = dot == std::string_view::npos ? "" : s.substr(dot + 1);
  if (whole.empty() || !all_digits(whole) || !all_digits(frac)) return Parse::kMalformed;
  if (dot != std::string_view::npos && frac.empty()) return Parse::kMalformed;
  if (frac.size() > static_cast<std::size_t>(scale)) return Parse::kTooPrecise;
  std::uint64_t v = 0;
  for (char c : whole) {
    if (!push_digit(&v, static_cast<unsigned>(c - '0'))) return Parse::kOverflow;
  }
  for (std::size_t i = 0; i < static_cast<std::size_t>(scale); ++i) {
    const unsigned d = i < frac.size() ? static_cast<unsigned>(frac[i] - '0') : 0;
    if (!push_digit(&v, d)) return Parse::kOverflow;
  }
  *out = v;
  return Parse::kOk;
}

// 1-based line of a node, or `fallback` when yaml-cpp has no position for it.
int line_of(const YAML::Node& node, int fallback) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() || mark.line < 0 ? fallback : mark.line + 1;
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool is_plain_name(std::string_view s, std::size_t max_length) {
  return !s.empty() && s.size() <= max_length && std::all_of(s.begin(), s.end(), is_name_char);
}

bool is_model_name(std::string_view s) {
  return !s.empty() && s.size() <= kMaxNameLength &&
         std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

bool is_attribute_name(std::string_view s) {
  return !s.empty() && s.size() <= kMaxAttributeLength &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
         });
}

// One key of a YAML map, in file order.
struct Entry {
  std::string key;
  YAML::Node value;
  int line = 0;  // 1-based line of the key
};

// Reads a parsed YAML tree into a Policy; stops at the first error, kept as a one-line Status.
class PolicyReader {
 public:
  explicit PolicyReader(const std::string& source) : source_(source) {}

  bool read(const YAML::Node& root, Policy* policy);
  const Status& error() const { return error_; }

 private:
  bool fail(int line, const std::string& field, const std::string& what_and_fix) {
    error_ = Status(ErrorCode::kInvalidArgument, one_line(source_ + ":" + std::to_string(line) +
                                                          ": " + field + ": " + what_and_fix));
    return false;
  }

  bool fail_second_measure(const Entry& e, const std::string& field, const Entry& first) {
    return fail(e.line, field,
                "a limit has one measure and this one already has " + first.key + " (line " +
                    std::to_string(first.line) +
                    "); split them into two limits with the same match");
  }

  // The keys of map `node` (at `path`, on `line`); a null node is an empty map. `allowed`
  // empty means any key; otherwise an unknown key fails, listing `allowed_text`.
  bool entries(const YAML::Node& node, int line, const std::string& path, Keys allowed,
               const std::string& allowed_text, std::vector<Entry>* out);

  bool read_string(const Entry& e, const std::string& field, std::string* out,
                   std::string_view example);
  bool read_bool(const Entry& e, const std::string& field, bool* out);
  bool read_uint(const Entry& e, const std::string& field, std::uint64_t min, std::uint64_t max,
                 std::string_view example, std::uint64_t* out);
  bool read_decimal(const Entry& e, const std::string& field, int scale, bool positive,
                    std::string_view example, std::uint64_t* out);
  bool read_size(const Entry& e, const std::string& field, std::string_view example,
                 std::uint64_t* out);
  bool read_choice(const Entry& e, const std::string& field, Keys choices, std::size_t* out);
  bool read_duration(const Entry& e, const std::string& field, std::string_view example,
                     std::uint64_t* out_ns);

  bool read_segment(const Entry& section, SegmentSpec* segment);
  bool read_store(const Entry& section, StoreSpec* store);
  bool read_audit(const Entry& section, AuditSpec* audit);
  bool read_metrics(const Entry& section, MetricsSpec* metrics);
  bool read_models(const Entry& section, std::vector<ModelPrice>* models);
  bool read_limits(const Entry& section, std::vector<LimitSpec>* limits);
  bool read_limit(const YAML::Node& node, int line, const std::string& path, LimitSpec* limit);
  bool read_match(const Entry& e, const std::string& field, std::vector<MatchTerm>* match);
  bool read_model_list(const Entry& e, const std::string& field, std::vector<std::string>* out);
  bool read_webhook(const Entry& e, std::string* url);
  // After models and limits: alerts name them.
  bool read_alerts(const Entry& section, Policy* policy);
  bool read_alert(const YAML::Node& node, int line, const std::string& path, const Policy& policy,
                  AlertSpec* alert);

  std::string source_;
  Status error_;
};

bool PolicyReader::entries(const YAML::Node& node, int line, const std::string& path, Keys allowed,
                           const std::string& allowed_text, std::vector<Entry>* out) {
  out->clear();
  if (node.IsNull()) return true;
  if (!node.IsMap()) {
    return fail(line_of(node, line), path,
                "must be a map of key: value lines" +
                    (allowed.empty() ? std::string() : "; allowed keys: " + allowed_text));
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    const int key_line = line_of(it->first, line);
    if (!it->first.IsScalar()) {
      return fail(key_line, path, "a key is not a plain name; write key: value");
    }
    const std::string key = it->first.Scalar();
    const std::string field = path.empty() ? key : std::string(path).append(".").append(key);
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return fail(key_line, field, "unknown key; allowed: " + allowed_text);
    }
    for (const Entry& prev : *out) {
      if (prev.key == key) {
        return fail(key_line, field,
                    "appears twice (also on line " + std::to_string(prev.line) + "); keep one");
      }
    }
    out->push_back(Entry{key, it->second, key_line});
  }
  return true;
}

bool PolicyReader::read_string(const Entry& e, const std::string& field, std::string* out,
                               std::string_view example) {
  if (!e.value.IsScalar() || e.value.Scalar().empty()) {
    return fail(e.line, field,
                "must be a non-empty text value, e.g. " + e.key + ": " + std::string(example));
  }
  *out = e.value.Scalar();
  return true;
}

bool PolicyReader::read_bool(const Entry& e, const std::string& field, bool* out) {
  const std::string s = e.value.IsScalar() ? e.value.Scalar() : "";
  if (s == "true" || s == "True" || s == "TRUE") {
    *out = true;
  } else if (s == "false" || s == "False" || s == "FALSE") {
    *out = false;
  } else {
    return fail(e.line, field, "must be true or false, e.g. " + e.key + ": true");
  }
  return true;
}

bool PolicyReader::read_uint(const Entry& e, const std::string& field, std::uint64_t min,
                             std::uint64_t max, std::string_view example, std::uint64_t* out) {
  const std::string fix = "e.g. " + e.key + ": " + std::string(example);
  if (!e.value.IsScalar()) return fail(e.line, field, "must be a positive integer, " + fix);
  const std::string s = e.value.Scalar();
  std::uint64_t v = 0;
  const Parse parsed = parse_uint(s, &v);
  if (parsed == Parse::kMalformed) {
    std::uint64_t ignored = 0;
    const char* what = !s.empty() && s[0] == '-' ? " is negative"
                       : parse_decimal(s, 18, &ignored) != Parse::kMalformed
                           ? " is not a whole number"
                           : " is not a number";
    return fail(e.line, field, quoted(s) + what + "; write a positive integer, " + fix);
  }
  if (parsed == Parse::kOk && v == 0 && min > 0) {
    return fail(e.line, field, "is zero; write a positive integer, " + fix);
  }
  if (parsed == Parse::kOverflow || v < min || v > max) {
    return fail(e.line, field,
                quoted(s) + " is out of range; use " + std::to_string(min) + ".." +
                    std::to_string(max) + ", " + fix);
  }
  *out = v;
  return true;
}

bool PolicyReader::read_decimal(const Entry& e, const std::string& field, int scale, bool positive,
                                std::string_view example, std::uint64_t* out) {
  const std::string kind = positive ? "a positive amount" : "an amount of zero or more";
  const std::string fix = "e.g. " + e.key + ": " + std::string(example);
  const std::string s = e.value.IsScalar() ? e.value.Scalar() : "";
  std::uint64_t v = 0;
  switch (parse_decimal(s, scale, &v)) {
    case Parse::kOk:
      break;
    case Parse::kTooPrecise:
      return fail(e.line, field,
                  quoted(s) + " has more than " + std::to_string(scale) +
                      " decimal places; round it to " + std::to_string(scale) + ", " + fix);
    case Parse::kOverflow:
      return fail(e.line, field, quoted(s) + " is too large; " + fix);
    case Parse::kMalformed:
      return fail(e.line, field, "must be " + kind + " in USD, " + fix);
  }
  if (positive && v == 0) return fail(e.line, field, "must be " + kind + ", " + fix);
  *out = v;
  return true;
}

// "16MiB", "64 KiB", "1GiB" or plain bytes.
bool PolicyReader::read_size(const Entry& e, const std::string& field, std::string_view example,
                             std::uint64_t* out) {
  const std::string fix =
      "write bytes or a size with KiB, MiB or GiB, e.g. " + e.key + ": " + std::string(example);
  const std::string s = e.value.IsScalar() ? e.value.Scalar() : "";
  const std::size_t end = s.find_first_not_of("0123456789");
  const std::string digits = s.substr(0, end);
  std::string suffix = end == std::string::npos ? "" : s.substr(end);
  suffix.erase(0, suffix.find_first_not_of(' '));
  std::uint64_t n = 0;
  if (parse_uint(digits, &n) == Parse::kMalformed) {
    return fail(e.line, field, quoted(s) + " is not a size; " + fix);
  }
  int shift = 0;
  if (suffix == "KiB") {
    shift = 10;
  } else if (suffix == "MiB") {
    shift = 20;
  } else if (suffix == "GiB") {
    shift = 30;
  } else if (!suffix.empty()) {
    return fail(e.line, field, quoted(s) + " has an unknown unit " + quoted(suffix) + "; " + fix);
  }
  if (n == 0 || n > (kMaxQuantity >> shift)) {
    return fail(e.line, field, quoted(s) + " is out of range; " + fix);
  }
  *out = n << shift;
  return true;
}

bool PolicyReader::read_choice(const Entry& e, const std::string& field, Keys choices,
                               std::size_t* out) {
  const std::string s = e.value.IsScalar() ? e.value.Scalar() : "";
  for (std::size_t i = 0; i < choices.size(); ++i) {
    if (s == choices[i]) {
      *out = i;
      return true;
    }
  }
  std::string list;
  for (std::size_t i = 0; i < choices.size(); ++i) {
    list += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + std::string(choices[i]);
  }
  return fail(e.line, field, quoted(s) + " is not a choice; use " + list);
}

// "500ms", "8s", "5m", "2h": a whole number and a unit, as nanoseconds.
bool PolicyReader::read_duration(const Entry& e, const std::string& field, std::string_view example,
                                 std::uint64_t* out_ns) {
  const std::string fix =
      "write a whole number and ms, s, m or h, e.g. " + e.key + ": " + std::string(example);
  if (!e.value.IsScalar()) return fail(e.line, field, "must be a duration; " + fix);
  const std::string s = e.value.Scalar();
  const std::size_t end = s.find_first_not_of("0123456789");
  const std::string unit = end == std::string::npos ? "" : s.substr(end);
  std::uint64_t scale = 0;
  if (unit == "ms") {
    scale = 1'000'000;
  } else if (unit == "s") {
    scale = kNsPerSecond;
  } else if (unit == "m") {
    scale = 60 * kNsPerSecond;
  } else if (unit == "h") {
    scale = 3600 * kNsPerSecond;
  }
  std::uint64_t n = 0;
  const Parse parsed = parse_uint(s.substr(0, end), &n);
  if (parsed == Parse::kOk && unit.empty()) {
    return fail(e.line, field, quoted(s) + " has no unit; " + fix);
  }
  if (parsed == Parse::kMalformed || scale == 0) {
    return fail(e.line, field, quoted(s) + " is not a duration; " + fix);
  }
  if (parsed == Parse::kOverflow || __builtin_mul_overflow(n, scale, out_ns)) {
    return fail(e.line, field, quoted(s) + " is too long; " + fix);
  }
  if (n == 0) return fail(e.line, field, quoted(s) + " is zero; " + fix);
  return true;
}

bool PolicyReader::read(const YAML::Node& root, Policy* policy) {
  if (root.IsNull()) {
    return fail(1, "policy",
                "the file is empty; write at least a limits: list, see examples/policy.yaml");
  }
  if (!root.IsMap()) {
    return fail(
        line_of(root, 1), "policy",
        "the top level must be a map with keys " + join(kTopKeys) + "; see examples/policy.yaml");
  }
  std::vector<Entry> sections;
  if (!entries(root, 1, "", kTopKeys, join(kTopKeys), &sections)) return false;
  bool has_limits = false;
  const Entry* alerts = nullptr;
  for (const Entry& s : sections) {
    bool ok = true;
    if (s.key == "alerts") {
      alerts = &s;
    } else if (s.key == "alerts_webhook") {
      ok = read_webhook(s, &policy->alerts_webhook);
    } else if (s.key == "segment") {
      ok = read_segment(s, &policy->segment);
    } else if (s.key == "store") {
      ok = read_store(s, &policy->store);
    } else if (s.key == "audit") {
      ok = read_audit(s, &policy->audit);
    } else if (s.key == "metrics") {
      ok = read_metrics(s, &policy->metrics);
    } else if (s.key == "models") {
      ok = read_models(s, &policy->models);
    } else {
      has_limits = true;
      ok = read_limits(s, &policy->limits);
    }
    if (!ok) return false;
  }
  if (!has_limits) {
    return fail(1, "limits", "missing; add a limits: list (limits: [] admits every call)");
  }
  return alerts == nullptr || read_alerts(*alerts, policy);
}

bool PolicyReader::read_metrics(const Entry& section, MetricsSpec* metrics) {
  std::vector<Entry> es;
  if (!entries(section.value, section.line, "metrics", kMetricsKeys, join(kMetricsKeys), &es)) {
    return false;
  }
  metrics->listen = "127.0.0.1:9464";  // a metrics block serves, on loopback unless it says
  for (const Entry& e : es) {
    const std::string field = "metrics." + e.key;
    bool ok = true;
    if (e.key == "listen") {
      ok = read_string(e, field, &metrics->listen, "127.0.0.1:9464");
      const std::size_t colon = metrics->listen.rfind(':');
      std::uint64_t port = 0;
      if (ok && (colon == std::string::npos || colon == 0 ||
                 parse_uint(metrics->listen.substr(colon + 1), &port) != Parse::kOk || port == 0 ||
                 port > 65535)) {
        ok = fail(
            e.line, field,
            quoted(metrics->listen) + " is not an address and port; write listen: 127.0.0.1:9464");
      }
    } else {
      ok = read_uint(e, field, 1, 1'000'000, "1000", &metrics->max_series);
    }
    if (!ok) return false;
  }
  return true;
}

bool PolicyReader::read_segment(const Entry& section, SegmentSpec* segment) {
  std::vector<Entry> es;
  if (!entries(section.value, section.line, "segment", kSegmentKeys, join(kSegmentKeys), &es)) {
    return false;
  }
  for (const Entry& e : es) {
    const std::string field = "segment." + e.key;
    bool ok = true;
    if (e.key == "name") {
      ok = read_string(e, field, &segment->name, "sluice-demo");
      if (ok && !is_plain_name(segment->name, kMaxSegmentNameLength)) {
        ok = fail(e.line, field,
                  quoted(segment->name) + " is not a shared-memory name; use up to " +
                      std::to_string(kMaxSegmentNameLength) +
                      " letters, digits, '.', '_' or '-' (no slash), e.g. name: sluice-demo");
      }
    } else if (e.key == "max_keys") {
      ok = read_uint(e, field, 1, 16777216, "65536", &segment->max_keys);
    } else if (e.key == "max_reservations") {
      ok = read_uint(e, field, 1, 1048576, "16384", &segment->max_reservations);
    } else if (e.key == "audit_ring_bytes") {
      std::uint64_t bytes = 0;
      ok = read_size(e, field, "16MiB", &bytes);
      if (ok && (bytes < (64u << 10) || bytes > (1u << 30) || (bytes & (bytes - 1)) != 0)) {
        ok = fail(e.line, field,
                  quoted(e.value.Scalar()) +
                      " must be a power of two from 64KiB to 1GiB, e.g. audit_ring_bytes: 16MiB");
      }
      segment->audit_ring_bytes = bytes;
    } else {
      ok = read_string(e, field, &segment->group, "sluice");
    }
    if (!ok) return false;
  }
  return true;
}

bool PolicyReader::read_store(const Entry& section, StoreSpec* store) {
  std::vector<Entry> es;
  if (!entries(section.value, section.line, "store", kStoreKeys, join(kStoreKeys), &es)) {
    return false;
  }
  int kind_line = section.line;
  const Entry* path = nullptr;
  const Entry* url = nullptr;
  for (const Entry& e : es) {
    const std::string field = "store." + e.key;
    bool ok = true;
    if (e.key == "kind") {
      std::size_t choice = 0;
      ok = read_choice(e, field, kStoreKinds, &choice);
      store->kind = choice == 0 ? "sqlite" : "redis";
      kind_line = e.line;
    } else if (e.key == "path") {
      ok = read_string(e, field, &store->path, "var/sluice.db");
      path = &e;
    } else if (e.key == "url") {
      ok = read_string(e, field, &store->url, "redis://localhost:6379");
      if (ok && store->url.rfind("redis://", 0) != 0) {
        ok = fail(e.line, field,
                  quoted(store->url) + " is not a redis URL; write url: redis://host:6379");
      }
      url = &e;
    } else if (e.key == "sync_interval_ms") {
      ok = read_uint(e, field, 1, 3'600'000, "250", &store->sync_interval_ms);
    } else if (e.key == "lease_ms") {
      ok = read_uint(e, field, 1, 86'400'000, "5000", &store->lease_ms);
    } else if (e.key == "timeout_ms") {
      ok = read_uint(e, field, 1, 60'000, "500", &store->timeout_ms);
    } else {
      ok = read_string(e, field, &store->host_id, "host-a");
      if (ok && !is_plain_name(store->host_id, kMaxNameLength)) {
        ok = fail(e.line, field,
                  quoted(store->host_id) + " is not a host id; use up to " +
                      std::to_string(kMaxNameLength) + " letters, digits, '.', '_' or '-'");
      }
    }
    if (!ok) return false;
  }
  if (store->kind == "redis") {
    if (url == nullptr) {
      return fail(kind_line, "store.url", "missing; kind: redis needs url: redis://host:6379");
    }
    if (path != nullptr) {
      return fail(path->line, "store.path", "is for kind: sqlite; remove it or set kind: sqlite");
    }
  } else if (url != nullptr) {
    return fail(url->line, "store.url", "is for kind: redis; remove it or set kind: redis");
  }
  if (store->lease_ms <= store->sync_interval_ms) {
    return fail(section.line, "store.lease_ms",
                "must be longer than sync_interval_ms (" + std::to_string(store->sync_interval_ms) +
                    "), or leases run out between syncs; e.g. lease_ms: " +
                    std::to_string(store->sync_interval_ms * 20));
  }
  return true;
}

bool PolicyReader::read_audit(const Entry& section, AuditSpec* audit) {
  std::vector<Entry> es;
  if (!entries(section.value, section.line, "audit", kAuditKeys, join(kAuditKeys), &es)) {
    return false;
  }
  for (const Entry& e : es) {
    const std::string field = "audit." + e.key;
    bool ok = true;
    if (e.key == "dir") {
      ok = read_string(e, field, &audit->dir, "var/audit");
    } else if (e.key == "enabled") {
      ok = read_bool(e, field, &audit->enabled);
    } else if (e.key == "required") {
      ok = read_bool(e, field, &audit->required);
    } else if (e.key == "fsync_interval_ms") {
      ok = read_uint(e, field, 1, kMaxQuantity, "50", &audit->fsync_interval_ms);
    } else if (e.key == "rotate_bytes") {
      ok = read_size(e, field, "64MiB", &audit->rotate_bytes);
    } else if (e.key == "rotate_seconds") {
      ok = read_uint(e, field, 1, kMaxQuantity, "3600", &audit->rotate_seconds);
    } else if (e.key == "retain_files") {
      ok = read_uint(e, field, 1, kMaxQuantity, "24", &audit->retain_files);
    } else {
      ok = read_uint(e, field, 0, kMaxQuantity, "604800", &audit->retain_seconds);
    }
    if (!ok) return false;
  }
  if (audit->required && !audit->enabled) {
    return fail(section.line, "audit.required",
                "is true while audit.enabled is false; enable audit or drop required");
  }
  return true;
}

bool PolicyReader::read_models(const Entry& section, std::vector<ModelPrice>* models) {
  std::vector<Entry> names;
  if (!entries(section.value, section.line, "models", {}, "", &names)) return false;
  if (names.size() > kMaxModels) {
    return fail(names[kMaxModels].line, "models",
                "more than " + std::to_string(kMaxModels) + " models; price only those you use");
  }
  const std::string price_keys_text =
      join(kPriceKeys) + " (USD per million tokens, e.g. input_usd_per_mtok: 2.50)";
  for (const Entry& model : names) {
    const std::string path = "models." + model.key;
    if (!is_model_name(model.key)) {
      return fail(model.line, path,
                  "is not a model name; use up to " + std::to_string(kMaxNameLength) +
                      " characters without spaces, e.g. gpt-4o-mini");
    }
    std::vector<Entry> prices;
    if (!entries(model.value, model.line, path, kPriceKeys, price_keys_text, &prices)) {
      return false;
    }
    ModelPrice price;
    price.name = model.key;
    bool has_input = false;
    bool has_output = false;
    for (const Entry& e : prices) {
      std::uint64_t* slot = &price.cached_pusd_per_token;
      if (e.key == "input_usd_per_mtok") {
        slot = &price.input_pusd_per_token;
        has_input = true;
      } else if (e.key == "output_usd_per_mtok") {
        slot = &price.output_pusd_per_token;
        has_output = true;
      }
      if (!read_decimal(e, path + "." + e.key, kPriceDecimals, false, "2.50", slot)) return false;
    }
    if (!has_input || !has_output) {
      const char* missing = has_input ? "output_usd_per_mtok" : "input_usd_per_mtok";
      return fail(model.line, path + "." + missing,
                  std::string("missing; every model needs input_usd_per_mtok and "
                              "output_usd_per_mtok, e.g. ") +
                      "{ input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00 }");
    }
    models->push_back(std::move(price));
  }
  return true;
}

bool PolicyReader::read_limits(const Entry& section, std::vector<LimitSpec>* limits) {
  if (section.value.IsNull()) return true;
  if (!section.value.IsSequence()) {
    return fail(line_of(section.value, section.line), "limits",
                "must be a list of limits, each starting with '- name: ...'; see "
                "examples/policy.yaml");
  }
  std::map<std::string, int> name_lines;
  std::size_t index = 0;
  for (const YAML::Node& node : section.value) {
    const int line = line_of(node, section.line);
    const std::string path = "limits[" + std::to_string(index) + "]";
    if (index == kMaxLimits) {
      return fail(line, path,
                  "more than " + std::to_string(kMaxLimits) + " limits; merge or remove some");
    }
    LimitSpec limit;
    if (!read_limit(node, line, path, &limit)) return false;
    const auto [it, inserted] = name_lines.emplace(limit.name, line);
    if (!inserted) {
      return fail(line, path + ".name",
                  quoted(limit.name) + " is also the name of the limit on line " +
                      std::to_string(it->second) + "; give each limit its own name");
    }
    limits->push_back(std::move(limit));
    ++index;
  }
  return true;
}

bool PolicyReader::read_limit(const YAML::Node& node, int line, const std::string& path,
                              LimitSpec* limit) {
  if (!node.IsMap()) {
    return fail(line, path, "must be a map such as {name: team-tokens, tokens_per_minute: 1000}");
  }
  std::vector<Entry> es;
  if (!entries(node, line, path, {}, "", &es)) return false;  // keys checked below
  limit->line = line;
  const Entry* name = nullptr;
  const Entry* measure = nullptr;
  const Entry* burst = nullptr;
  const Entry* timezone = nullptr;
  const Entry* scope = nullptr;
  const Entry* on_store_down = nullptr;
  for (const Entry& e : es) {
    const std::string field = path + "." + e.key;
    bool ok = true;
    std::size_t choice = 0;
    if (e.key == "name") {
      name = &e;
      ok = read_string(e, field, &limit->name, "team-tokens");
      if (ok && !is_plain_name(limit->name, kMaxNameLength)) {
        ok = fail(e.line, field,
                  quoted(limit->name) + " is not a limit name; use up to " +
                      std::to_string(kMaxNameLength) +
                      " letters, digits, '.', '_' or '-', e.g. name: team-tokens");
      }
    } else if (e.key == "match") {
      ok = read_match(e, field, &limit->match);
    } else if (e.key == "shadow") {
      ok = read_bool(e, field, &limit->shadow);
    } else if (e.key == "scope") {
      scope = &e;
      ok = read_choice(e, field, kScopes, &choice);
      limit->scope = static_cast<Scope>(choice);
    } else if (e.key == "on_store_down") {
      on_store_down = &e;
      ok = read_choice(e, field, kOnStoreDown, &choice);
      limit->on_store_down = static_cast<OnStoreDown>(choice);
    } else if (e.key == "timezone") {
      timezone = &e;
      ok = read_string(e, field, &limit->timezone, "America/New_York");
    } else if (e.key == "burst_requests" || e.key == "burst_tokens") {
      if (burst != nullptr) {
        return fail(e.line, field,
                    "a limit has one burst and this one already has " + burst->key + " (line " +
                        std::to_string(burst->line) + "); keep one");
      }
      burst = &e;
      ok = read_uint(e, field, 1, kMaxQuantity, "100", &limit->burst);
    } else if (e.key == "models") {
      if (measure != nullptr) return fail_second_measure(e, field, *measure);
      measure = &e;
      limit->kind = LimitKind::kModelAccess;
      ok = read_model_list(e, field, &limit->models);
    } else {
      const MeasureKey* m = std::find_if(std::begin(kMeasureKeys), std::end(kMeasureKeys),
                                         [&](const MeasureKey& k) { return k.key == e.key; });
      if (m == std::end(kMeasureKeys)) {
        return fail(e.line, field, "unknown key; allowed: " + std::string(kLimitKeysText));
      }
      if (measure != nullptr) return fail_second_measure(e, field, *measure);
      measure = &e;
      limit->kind = m->kind;
      limit->measure = m->measure;
      limit->period = m->period;
      if (m->measure == Measure::kUsd) {
        ok = read_decimal(e, field, kBudgetDecimals, true, "25.00", &limit->amount);
      } else {
        ok = read_uint(e, field, 1, kMaxQuantity, m->kind == LimitKind::kRate ? "1000" : "1000000",
                       &limit->amount);
      }
    }
    if (!ok) return false;
  }
  if (name == nullptr) {
    return fail(line, path + ".name",
                "missing; every limit needs a unique name, e.g. name: team-tokens");
  }
  if (measure == nullptr) {
    return fail(line, path, "has no measure; add one of " + std::string(kMeasureChoices));
  }
  const bool is_rate = limit->kind == LimitKind::kRate;
  const bool counts_requests = is_rate && limit->measure == Measure::kRequests;
  if (burst != nullptr) {
    const bool wants_requests = burst->key == "burst_requests";
    if (!is_rate || counts_requests != wants_requests) {
      const std::string fix = is_rate ? "; this limit is " + measure->key + ", use " +
                                            (counts_requests ? "burst_requests" : "burst_tokens")
                                      : "; remove it, " + measure->key + " has no burst";
      return fail(burst->line, path + "." + burst->key,
                  std::string("applies only to ") +
                      (wants_requests ? "request rates (requests_per_second|minute|hour)"
                                      : "token rates ({tokens,input_tokens,output_tokens}_per_"
                                        "{second,minute,hour})") +
                      fix);
    }
  } else if (is_rate) {
    const std::uint64_t per_second = period_seconds(limit->period);
    limit->burst = std::max<std::uint64_t>(1, (limit->amount + per_second - 1) / per_second);
  }
  if (scope != nullptr && limit->scope == Scope::kGlobal &&
      limit->kind == LimitKind::kModelAccess) {
    return fail(scope->line, path + ".scope",
                "model access is the same on every host and needs no store; remove scope: global");
  }
  if (on_store_down != nullptr && limit->scope != Scope::kGlobal) {
    return fail(on_store_down->line, path + ".on_store_down",
                "applies only to limits shared through the store; add scope: global or remove it");
  }
  if (timezone != nullptr) {
    const std::string field = path + ".timezone";
    if (limit->kind != LimitKind::kBudget) {
      return fail(timezone->line, field,
                  "only budgets (..._per_day|week|month) have calendar windows; remove timezone "
                  "from " +
                      measure->key);
    }
    if (!is_known_timezone(limit->timezone)) {
      return fail(timezone->line, field,
                  "unknown time zone " + quoted(limit->timezone) +
                      "; use an IANA name such as America/New_York or UTC");
    }
  }
  return true;
}

bool PolicyReader::read_match(const Entry& e, const std::string& field,
                              std::vector<MatchTerm>* match) {
  std::vector<Entry> terms;
  if (!entries(e.value, e.line, field, {}, "", &terms)) return false;
  if (terms.size() > kMaxMatchTerms) {
    return fail(e.line, field,
                std::to_string(terms.size()) + " terms, at most " + std::to_string(kMaxMatchTerms) +
                    " are allowed; match fewer attributes or split the limit");
  }
  for (const Entry& t : terms) {
    const std::string term_field = field + "." + t.key;
    if (!is_attribute_name(t.key)) {
      return fail(t.line, term_field,
                  "is not an attribute name; use 1 to " + std::to_string(kMaxAttributeLength) +
                      " of a-z, 0-9 and '_', e.g. team");
    }
    const std::string value = t.value.IsScalar() ? t.value.Scalar() : "";
    const bool has_control = std::any_of(value.begin(), value.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    });
    if (value.empty() || value.size() > kMaxMatchValueLength || has_control) {
      return fail(t.line, term_field,
                  "must be a value of 1 to " + std::to_string(kMaxMatchValueLength) +
                      " printable bytes, or \"*\" for any value, e.g. " + t.key + ": pricing");
    }
    if (value != "*" && value.find('*') != std::string::npos) {
      return fail(t.line, term_field,
                  quoted(value) +
                      " mixes '*' with text; \"*\" alone matches any value, "
                      "otherwise the value must match exactly");
    }
    const bool wildcard = value == "*";
    match->push_back(MatchTerm{t.key, wildcard ? "" : value, wildcard});
  }
  std::sort(match->begin(), match->end(),
            [](const MatchTerm& a, const MatchTerm& b) { return a.attribute < b.attribute; });
  return true;
}

bool PolicyReader::read_model_list(const Entry& e, const std::string& field,
                                   std::vector<std::string>* out) {
  const std::string fix = "e.g. models: [gpt-4o-mini]";
  if (!e.value.IsSequence() || e.value.size() == 0) {
    return fail(e.line, field, "must be a non-empty list of model names, " + fix);
  }
  if (e.value.size() > kMaxModelsPerLimit) {
    return fail(e.line, field,
                std::to_string(e.value.size()) + " models, at most " +
                    std::to_string(kMaxModelsPerLimit) + " per limit; split the limit");
  }
  std::size_t i = 0;
  for (const YAML::Node& item : e.value) {
    const std::string item_field = field + "[" + std::to_string(i++) + "]";
    const int line = line_of(item, e.line);
    const std::string name = item.IsScalar() ? item.Scalar() : "";
    if (!is_model_name(name)) {
      return fail(line, item_field,
                  "is not a model name; use up to " + std::to_string(kMaxNameLength) +
                      " characters without spaces, " + fix);
    }
    if (std::find(out->begin(), out->end(), name) != out->end()) {
      return fail(line, item_field, quoted(name) + " is listed twice; keep one");
    }
    out->push_back(name);
  }
  return true;
}

bool PolicyReader::read_webhook(const Entry& e, std::string* url) {
  const std::string example = "http://127.0.0.1:9093/hook";
  if (!read_string(e, "alerts_webhook", url, example)) return false;
  const std::string_view u = *url;
  const bool printable = std::all_of(
      u.begin(), u.end(), [](char c) { return static_cast<unsigned char>(c) > 0x20 && c != 0x7f; });
  const std::string_view scheme = "http://";
  const std::string_view rest = u.substr(std::min(u.size(), scheme.size()));
  const std::string_view authority = rest.substr(0, rest.find('/'));
  const std::size_t colon = authority.rfind(':');
  const std::string_view host = authority.substr(0, colon);
  const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  const bool host_ok = bracketed
                           ? std::all_of(host.begin() + 1, host.end() - 1,
                                         [](char c) {
                                           return std::isxdigit(static_cast<unsigned char>(c)) ||
                                                  c == ':' || c == '.';
                                         })
                           : is_plain_name(host, 253);
  std::uint64_t port = 0;
  const bool port_ok = colon != std::string_view::npos &&
                       parse_uint(authority.substr(colon + 1), &port) == Parse::kOk && port > 0 &&
                       port <= 65535;
  std::string what;
  if (!printable) {
    what = " has a space or control character";
  } else if (u.rfind(scheme, 0) != 0) {
    what = " is not an http:// URL (sluiced posts plain HTTP)";
  } else if (!host_ok || !port_ok) {
    what = " needs a host and a port";
  }
  if (what.empty()) return true;
  return fail(e.line, "alerts_webhook", quoted(u) + what + "; write alerts_webhook: " + example);
}

bool PolicyReader::read_alerts(const Entry& section, Policy* policy) {
  if (section.value.IsNull()) return true;
  if (!section.value.IsSequence()) {
    return fail(line_of(section.value, section.line), "alerts",
                "must be a list of alerts, each starting with '- name: ...', e.g. "
                "- { name: errors, when: error_rate_above, value: 0.05 }");
  }
  std::map<std::string, int> name_lines;
  std::size_t index = 0;
  for (const YAML::Node& node : section.value) {
    const int line = line_of(node, section.line);
    const std::string path = "alerts[" + std::to_string(index) + "]";
    if (index == kMaxAlerts) {
      return fail(line, path,
                  "more than " + std::to_string(kMaxAlerts) + " alerts; merge or remove some");
    }
    AlertSpec alert;
    if (!read_alert(node, line, path, *policy, &alert)) return false;
    const auto [it, inserted] = name_lines.emplace(alert.name, line);
    if (!inserted) {
      return fail(line, path + ".name",
                  quoted(alert.name) + " is also the name of the alert on line " +
                      std::to_string(it->second) + "; give each alert its own name");
    }
    policy->alerts.push_back(std::move(alert));
    ++index;
  }
  return true;
}

bool PolicyReader::read_alert(const YAML::Node& node, int line, const std::string& path,
                              const Policy& policy, AlertSpec* alert) {
  if (!node.IsMap()) {
    return fail(line, path,
                "must be a map such as {name: errors, when: error_rate_above, value: 0.05}");
  }
  std::vector<Entry> es;
  if (!entries(node, line, path, kAlertKeys, join(kAlertKeys), &es)) return false;
  const auto find = [&](std::string_view key) -> const Entry* {
    for (const Entry& e : es) {
      if (e.key == key) return &e;
    }
    return nullptr;
  };
  const Entry* name = find("name");
  const Entry* when = find("when");
  const Entry* value = find("value");
  const Entry* budget = find("budget");
  const Entry* model = find("model");
  const Entry* over = find("over");
  const Entry* min_calls = find("min_calls");

  if (name == nullptr) {
    return fail(line, path + ".name",
                "missing; every alert needs a unique name, e.g. name: pricing-burn");
  }
  if (!read_string(*name, path + ".name", &alert->name, "pricing-burn")) return false;
  if (!is_plain_name(alert->name, kMaxAlertNameLength)) {
    return fail(name->line, path + ".name",
                quoted(alert->name) + " is not an alert name; use up to " +
                    std::to_string(kMaxAlertNameLength) +
                    " letters, digits, '.', '_' or '-', e.g. name: pricing-burn");
  }
  if (when == nullptr) {
    return fail(line, path + ".when",
                "missing; write when: exhausts_within, p99_latency_above or error_rate_above");
  }
  std::size_t choice = 0;
  if (!read_choice(*when, path + ".when", kAlertKinds, &choice)) return false;
  alert->kind = static_cast<AlertKind>(choice);
  const std::string kind(kAlertKinds[choice]);
  const bool on_budget = alert->kind == AlertKind::kExhaustsWithin;

  if (on_budget) {
    if (model != nullptr) {
      return fail(model->line, path + ".model",
                  "exhausts_within watches a budget, not a model; remove model");
    }
    if (over != nullptr) {
      return fail(over->line, path + ".over",
                  "exhausts_within projects the last 5 minutes of spend and takes no window; "
                  "remove over");
    }
    if (min_calls != nullptr) {
      return fail(min_calls->line, path + ".min_calls",
                  "applies only to p99_latency_above and error_rate_above; remove it");
    }
  } else if (budget != nullptr) {
    return fail(budget->line, path + ".budget",
                "only exhausts_within watches a budget; remove budget (" + kind +
                    " watches calls; model: narrows it to one model)");
  }

  const char* value_example = alert->kind == AlertKind::kExhaustsWithin    ? "2h"
                              : alert->kind == AlertKind::kP99LatencyAbove ? "8s"
                                                                           : "0.05";
  if (value == nullptr) {
    return fail(line, path + ".value",
                "missing; " + kind + " needs a threshold, e.g. value: " + value_example);
  }
  const std::string value_field = path + ".value";
  if (alert->kind == AlertKind::kErrorRateAbove) {
    const std::string s = value->value.IsScalar() ? value->value.Scalar() : "";
    std::uint64_t billionths = 0;
    if (parse_decimal(s, kRateDecimals, &billionths) != Parse::kOk || billionths == 0 ||
        billionths > kNsPerSecond) {
      return fail(
          value->line, value_field,
          quoted(s) + " is not a fraction above 0 and at most 1; write e.g. value: 0.05 for 5%");
    }
    alert->rate = static_cast<double>(billionths) / static_cast<double>(kNsPerSecond);
  } else {
    if (!read_duration(*value, value_field, value_example, &alert->value_ns)) return false;
    if (alert->kind == AlertKind::kP99LatencyAbove && alert->value_ns >= kMaxLatencyAlertNs) {
      return fail(value->line, value_field,
                  quoted(value->value.Scalar()) +
                      " can never be exceeded: call latency is measured up to 120s; use a "
                      "smaller value, e.g. value: 8s");
    }
  }

  if (on_budget) {
    std::string budgets;
    for (const LimitSpec& l : policy.limits) {
      if (l.kind == LimitKind::kBudget) budgets += (budgets.empty() ? "" : ", ") + l.name;
    }
    const std::string fix =
        budgets.empty()
            ? "this policy has no budget; add a limit with usd_per_day, tokens_per_month, ..."
            : "name a budget: " + budgets;
    if (budget == nullptr) {
      return fail(line, path + ".budget",
                  "missing; exhausts_within needs the budget to watch; " + fix);
    }
    if (!read_string(*budget, path + ".budget", &alert->budget, "pricing-daily-usd")) {
      return false;
    }
    const auto limit = std::find_if(policy.limits.begin(), policy.limits.end(),
                                    [&](const LimitSpec& l) { return l.name == alert->budget; });
    if (limit == policy.limits.end()) {
      return fail(budget->line, path + ".budget",
                  quoted(alert->budget) + " is not a limit in limits:; " + fix);
    }
    if (limit->kind != LimitKind::kBudget) {
      return fail(budget->line, path + ".budget",
                  quoted(alert->budget) + " is a " +
                      (limit->kind == LimitKind::kRate ? "rate" : "model access") +
                      " limit (line " + std::to_string(limit->line) + "), which never runs out; " +
                      fix);
    }
    return true;
  }

  if (model != nullptr) {
    if (!read_string(*model, path + ".model", &alert->model, "gpt-4o")) return false;
    const bool priced = std::any_of(policy.models.begin(), policy.models.end(),
                                    [&](const ModelPrice& m) { return m.name == alert->model; });
    if (!priced) {
      std::string names;
      for (const ModelPrice& m : policy.models) names += (names.empty() ? "" : ", ") + m.name;
      return fail(model->line, path + ".model",
                  quoted(alert->model) +
                      " is not in models: (the price table, where calls are counted); " +
                      (names.empty() ? "add it there" : "name one of " + names) +
                      ", or remove model to watch all models");
    }
  }
  if (over != nullptr) {
    if (!read_duration(*over, path + ".over", "5m", &alert->over_ns)) return false;
    if (alert->over_ns < kMinAlertWindowNs || alert->over_ns > kMaxAlertWindowNs) {
      return fail(over->line, path + ".over",
                  quoted(over->value.Scalar()) + " is out of range; use 1m to 1h, e.g. over: 5m");
    }
  }
  if (min_calls != nullptr &&
      !read_uint(*min_calls, path + ".min_calls", 1, kMaxQuantity, "20", &alert->min_calls)) {
    return false;
  }
  return true;
}

Status read_file(const std::string& path, std::string* text) {
  const auto failed = [&](int err) {
    const ErrorCode code = err == ENOENT                     ? ErrorCode::kNotFound
                           : (err == EACCES || err == EPERM) ? ErrorCode::kPermissionDenied
                                                             : ErrorCode::kIo;
    const char* fix =
        code == ErrorCode::kPermissionDenied ? "; check its permissions" : "; check the path";
    return Status(code, one_line("cannot read policy file " + path + ": " +
                                 std::generic_category().message(err) + fix));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return failed(errno);
  struct stat st {};
  int err = 0;
  if (::fstat(fd, &st) != 0) {
    err = errno;
  } else if (S_ISDIR(st.st_mode)) {
    err = EISDIR;
  } else if (st.st_size > static_cast<off_t>(kMaxFileBytes)) {
    err = EFBIG;
  }
  char buf[65536];
  while (err == 0) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n <= 0) break;
    text->append(buf, static_cast<std::size_t>(n));
    if (text->size() > kMaxFileBytes) err = EFBIG;
  }
  ::close(fd);
  return err == 0 ? Status::Ok() : failed(err);
}

}  // namespace

std::uint64_t period_seconds(Period p) {
  switch (p) {
    case Period::kSecond:
      return 1;
    case Period::kMinute:
      return 60;
    case Period::kHour:
      return 3600;
    case Period::kDay:
      return 86400;
    case Period::kWeek:
      return 7 * 86400ull;
    case Period::kMonth:
      return 31 * 86400ull;
  }
  return 1;
}

Result<Policy> parse_policy(const std::string& yaml_text, const std::string& source) {
  try {
    int second_line = 0;
    const YAML::Node root = detail::load_first_document(yaml_text, &second_line);
    PolicyReader reader(source);
    if (second_line != 0) {
      return Status(ErrorCode::kInvalidArgument,
                    source + ":" + std::to_string(second_line) +
                        ": policy: a second YAML document starts here; keep one policy per file");
    }
    Policy policy;
    policy.source = source;
    if (!reader.read(root, &policy)) return reader.error();
    return policy;
  } catch (const YAML::Exception& e) {
    const int line = e.mark.is_null() ? 1 : e.mark.line + 1;
    const bool alias = e.msg.find("alias") != std::string::npos;
    const bool unclosed = e.msg.find("flow not found") != std::string::npos;
    return Status(ErrorCode::kInvalidArgument,
                  one_line(source + ":" + std::to_string(line) + ": YAML syntax: " + e.msg +
                           (alias      ? "; a bare * starts an alias, write \"*\" for a wildcard"
                            : unclosed ? "; a '{' or '[' above is not closed"
                                       : "; fix the YAML at this line")));
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInvalidArgument,
                  one_line(source + ":1: policy: cannot be read: " + e.what()));
  } catch (...) {
    return Status(ErrorCode::kInvalidArgument, source + ":1: policy: cannot be read");
  }
}

Result<Policy> load_policy_file(const std::string& path) {
  std::string text;
  try {
    Status status = read_file(path, &text);
    if (!status.ok()) return status;
  } catch (...) {
    return Status(ErrorCode::kIo, "cannot read policy file " + path + "; check the path");
  }
  return parse_policy(text, path);
}

const char* to_string(Measure m) {
  switch (m) {
    case Measure::kRequests:
      return "requests";
    case Measure::kTokens:
      return "tokens";
    case Measure::kInputTokens:
      return "input_tokens";
    case Measure::kOutputTokens:
      return "output_tokens";
    case Measure::kUsd:
      return "usd";
  }
  return "unknown";
}

const char* to_string(AlertKind k) {
  switch (k) {
    case AlertKind::kExhaustsWithin:
      return "exhausts_within";
    case AlertKind::kP99LatencyAbove:
      return "p99_latency_above";
    case AlertKind::kErrorRateAbove:
      return "error_rate_above";
  }
  return "unknown";
}

const char* to_string(Period p) {
  switch (p) {
    case Period::kSecond:
      return "second";
    case Period::kMinute:
      return "minute";
    case Period::kHour:
      return "hour";
    case Period::kDay:
      return "day";
    case Period::kWeek:
      return "week";
    case Period::kMonth:
      return "month";
  }
  return "unknown";
}

}  // namespace sluice
