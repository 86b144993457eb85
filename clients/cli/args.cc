#include "args.h"

#include <charconv>
#include <string_view>

namespace sluice::cli {
namespace {

Status invalid(std::string message) {
  return Status(ErrorCode::kInvalidArgument, std::move(message));
}

// Digits only (no sign, no space), fitting 64 bits.
bool parse_digits(std::string_view text, std::uint64_t* out) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

struct DurationUnit {
  std::string_view suffix;
  std::uint64_t ns;
};

// Longest suffix first, so "ms" is not read as "s".
constexpr DurationUnit kDurationUnits[] = {
    {"ms", 1'000'000ull},        {"s", 1'000'000'000ull},      {"m", 60'000'000'000ull},
    {"h", 3'600'000'000'000ull}, {"d", 86'400'000'000'000ull}, {"", 1'000'000'000ull},
};

constexpr std::uint64_t kMaxTtlNs = 30 * 86'400'000'000'000ull;

// "812", "812.5", "0.000001": whole milliseconds and up to 6 decimals, in
// nanoseconds; false for anything else or past 64 bits.
bool parse_milliseconds(std::string_view text, std::uint64_t* ns) {
  const std::size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view fraction =
      dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  std::uint64_t ms = 0, part = 0;
  if (!parse_digits(whole, &ms) || ms > ~std::uint64_t{0} / 1'000'000) return false;
  if (dot != std::string_view::npos) {
    if (fraction.size() > 6 || !parse_digits(fraction, &part)) return false;
    for (std::size_t i = fraction.size(); i < 6; ++i) part *= 10;
  }
  if (ms * 1'000'000 > ~std::uint64_t{0} - part) return false;
  *ns = ms * 1'000'000 + part;
  return true;
}

Result<std::uint64_t> parse_duration_ms(const std::string& flag, const std::string& text) {
  std::uint64_t ns = 0;
  if (!text.empty() && !parse_milliseconds(text, &ns)) {
    return invalid(flag + " '" + text +
                   "': must be milliseconds, 0 or more with at most 6 decimals, e.g. " + flag +
                   " 812.5");
  }
  return ns;
}

// "ok, provider_error, timeout, cancelled_by_client or cut_off".
std::string outcome_names() {
  std::string names;
  for (int o = static_cast<int>(Outcome::kOk); o <= static_cast<int>(Outcome::kCutOff); ++o) {
    if (!names.empty()) names += o == static_cast<int>(Outcome::kCutOff) ? " or " : ", ";
    names += to_string(static_cast<Outcome>(o));
  }
  return names;
}

}  // namespace

Result<std::uint64_t> parse_token_count(const std::string& flag, const std::string& text) {
  std::uint64_t n = 0;
  if (!parse_digits(text, &n) || n > kMaxTokenCount) {
    return invalid(flag + " '" + text + "': must be a whole number from 0 to " +
                   std::to_string(kMaxTokenCount) + ", e.g. " + flag + " 1200");
  }
  return n;
}

Result<std::uint64_t> parse_reservation_id(const std::string& text) {
  std::uint64_t id = 0;
  if (!parse_digits(text, &id)) {
    return invalid("reservation id '" + text +
                   "' is not a number; pass the id `sluice reserve` printed, e.g. "
                   "sluice commit 4294967296 --input-tokens 1200 --output-tokens 300");
  }
  return id;
}

Result<std::uint64_t> parse_ttl_ns(const std::string& text) {
  const std::string_view t(text);
  for (const DurationUnit& u : kDurationUnits) {
    if (t.size() <= u.suffix.size() || !t.ends_with(u.suffix)) continue;
    std::uint64_t n = 0;
    if (!parse_digits(t.substr(0, t.size() - u.suffix.size()), &n)) break;
    if (n == 0 || n > kMaxTtlNs / u.ns) break;
    return n * u.ns;
  }
  return invalid("--ttl '" + text +
                 "': use a positive duration of at most 30d, like 30s, 15m, 2h or 900 (seconds)");
}

Result<CallReport> parse_call_report(const CallReportFlags& flags) {
  CallReport report;
  Result<std::uint64_t> latency = parse_duration_ms("--latency-ms", flags.latency_ms);
  if (!latency.ok()) return latency.status();
  report.latency_ns = latency.value();
  Result<std::uint64_t> ttft = parse_duration_ms("--ttft-ms", flags.ttft_ms);
  if (!ttft.ok()) return ttft.status();
  report.ttft_ns = ttft.value();
  if (!flags.outcome.empty() && !parse_outcome(flags.outcome, &report.outcome)) {
    return invalid("--outcome '" + flags.outcome + "': must be " + outcome_names() +
                   ", e.g. --outcome ok");
  }
  if (!flags.http_status.empty()) {
    std::uint64_t status = 0;
    if (!parse_digits(flags.http_status, &status) || status > 999) {
      return invalid("--http-status '" + flags.http_status +
                     "': must be the provider's HTTP status, a whole number up to 999, e.g. "
                     "--http-status 200");
    }
    report.http_status = static_cast<std::uint16_t>(status);
  }
  if (flags.model_version.size() > kMaxModelVersionBytes) {
    return invalid("--model-version: " + std::to_string(flags.model_version.size()) +
                   " bytes, at most " + std::to_string(kMaxModelVersionBytes) +
                   "; pass the version the response named, e.g. --model-version "
                   "gpt-4o-2024-08-06");
  }
  report.model_version = flags.model_version;
  return report;
}

Result<AttributeList> parse_attributes(const std::vector<std::string>& pairs,
                                       const std::string& model) {
  AttributeList out;
  auto add = [&out](const std::string& flag, std::string name, std::string value) -> Status {
    if (name.empty()) return invalid(flag + ": empty attribute name; e.g. --attr team=pricing");
    if (value.empty()) return invalid(flag + ": empty value; e.g. --attr " + name + "=VALUE");
    for (const auto& [seen, unused] : out) {
      if (seen == name) {
        return invalid("attribute '" + name + "' given twice (--attr or --model); give it once");
      }
    }
    out.emplace_back(std::move(name), std::move(value));
    return Status::Ok();
  };
  for (const std::string& p : pairs) {
    const std::string flag = "--attr '" + p + "'";
    const std::size_t eq = p.find('=');
    if (eq == std::string::npos) {
      return invalid(flag + ": expected KEY=VALUE, e.g. --attr team=pricing");
    }
    if (Status s = add(flag, p.substr(0, eq), p.substr(eq + 1)); !s.ok()) return s;
  }
  if (!model.empty()) {
    if (Status s = add("--model '" + model + "'", "model", model); !s.ok()) return s;
  }
  if (out.size() > kMaxCallAttributes) {
    return invalid(std::to_string(out.size()) + " attributes given; a call carries at most " +
                   std::to_string(kMaxCallAttributes));
  }
  return out;
}

}  // namespace sluice::cli
