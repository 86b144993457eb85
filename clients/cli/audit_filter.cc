#include "audit_filter.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "args.h"
#include "record_attributes.h"
#include "sluice/quota.h"

namespace sluice::cli {
namespace {

namespace fb = audit::fb;

constexpr std::uint64_t kNsPerSecond = 1'000'000'000ull;

Status invalid(std::string message) {
  return Status(ErrorCode::kInvalidArgument, std::move(message));
}

// Reads exactly `width` digits at `at`, advancing it.
bool read_digits(std::string_view text, std::size_t& at, std::size_t width, int& out) {
  if (text.size() - at < width) return false;
  out = 0;
  for (std::size_t i = 0; i < width; ++i) {
    const char c = text[at + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  at += width;
  return true;
}

bool read_char(std::string_view text, std::size_t& at, std::string_view any_of) {
  if (at >= text.size() || any_of.find(text[at]) == std::string_view::npos) return false;
  ++at;
  return true;
}

// "YYYY-MM-DD[(T|t| )HH:MM[:SS[.fraction]][Z|z|+HH:MM|-HH:MM]]"; nullopt if it is not one.
std::optional<std::int64_t> parse_timestamp_ns(std::string_view t) {
  std::size_t at = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!read_digits(t, at, 4, year) || !read_char(t, at, "-") || !read_digits(t, at, 2, month) ||
      !read_char(t, at, "-") || !read_digits(t, at, 2, day)) {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year(year),
                                         std::chrono::month(static_cast<unsigned>(month)),
                                         std::chrono::day(static_cast<unsigned>(day))};
  if (!date.ok()) return std::nullopt;
  std::int64_t nanos = 0;
  std::int64_t offset_s = 0;
  if (at < t.size()) {
    if (!read_char(t, at, "Tt ") || !read_digits(t, at, 2, hour) || !read_char(t, at, ":") ||
        !read_digits(t, at, 2, minute)) {
      return std::nullopt;
    }
    if (read_char(t, at, ":")) {
      if (!read_digits(t, at, 2, second)) return std::nullopt;
      if (read_char(t, at, ".,")) {
        std::int64_t scale = 100'000'000;
        std::size_t digits = 0;
        while (at < t.size() && t[at] >= '0' && t[at] <= '9') {
          nanos += (t[at] - '0') * scale;
          scale /= 10;
          ++at;
          ++digits;
        }
        if (digits == 0 || digits > 9) return std::nullopt;
      }
    }
    if (hour > 23 || minute > 59 || second > 59) return std::nullopt;
    if (read_char(t, at, "+-")) {
      const bool east = t[at - 1] == '+';
      int oh = 0, om = 0;
      if (!read_digits(t, at, 2, oh) || !read_char(t, at, ":") || !read_digits(t, at, 2, om) ||
          oh > 23 || om > 59) {
        return std::nullopt;
      }
      offset_s = (east ? 1 : -1) * (std::int64_t{oh} * 3600 + std::int64_t{om} * 60);
    } else {
      read_char(t, at, "Zz");  // "Z" or nothing: UTC
    }
  }
  if (at != t.size()) return std::nullopt;
  const std::int64_t days = std::chrono::sys_days{date}.time_since_epoch().count();
  const std::int64_t seconds =
      days * 86400 + std::int64_t{hour} * 3600 + std::int64_t{minute} * 60 + second - offset_s;
  return seconds * static_cast<std::int64_t>(kNsPerSecond) + nanos;
}

struct DurationUnit {
  std::string_view suffix;
  std::uint64_t ns;
};

// Longest suffix first, so "ms" is not read as "s" (or "m").
constexpr DurationUnit kDurationUnits[] = {
    {"ms", 1'000'000ull},       {"s", kNsPerSecond},         {"m", 60 * kNsPerSecond},
    {"h", 3600 * kNsPerSecond}, {"d", 86400 * kNsPerSecond}, {"w", 7 * (86400 * kNsPerSecond)},
};

// "90s" is 90 of 1 s; kept apart so that each caller decides what overflow means.
struct Duration {
  std::uint64_t count = 0;
  std::uint64_t unit_ns = 0;
};

// nullopt if `t` is not a whole number and a unit.
std::optional<Duration> parse_duration(std::string_view t) {
  for (const DurationUnit& u : kDurationUnits) {
    if (t.size() <= u.suffix.size() || !t.ends_with(u.suffix)) continue;
    const std::string_view digits = t.substr(0, t.size() - u.suffix.size());
    if (digits.front() < '0' || digits.front() > '9') return std::nullopt;
    std::uint64_t n = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
    return Duration{n, u.ns};
  }
  return std::nullopt;
}

// "10m" back from `now`; nullopt if `t` is not a duration.
std::optional<std::uint64_t> parse_ago(std::string_view t, std::uint64_t now) {
  const std::optional<Duration> d = parse_duration(t);
  if (!d) return std::nullopt;
  if (d->count > now / d->unit_ns) return 0;  // before 1970: everything
  return now - d->count * d->unit_ns;
}

// The outcomes --outcome names; "unreported" is not one (no report is not an outcome).
constexpr Outcome kFilterOutcomes[] = {Outcome::kOk, Outcome::kProviderError, Outcome::kTimeout,
                                       Outcome::kCancelledByClient, Outcome::kCutOff};
constexpr std::string_view kAnyError = "error";

std::string outcome_choices() {
  std::string out;
  for (Outcome o : kFilterOutcomes) out.append(to_string(o)).append(", ");
  return out + "or error (provider_error or timeout)";
}

}  // namespace

bool AuditFilter::matches(const fb::Record& record) const {
  if (since_unix_ns && record.time_unix_ns() < *since_unix_ns) return false;
  if (until_unix_ns && record.time_unix_ns() > *until_unix_ns) return false;
  if (decision && record.decision() != *decision) return false;
  if (!outcomes.empty()) {
    const std::string_view outcome =
        record.outcome() != nullptr ? record.outcome()->string_view() : std::string_view();
    if (std::find(outcomes.begin(), outcomes.end(), outcome) == outcomes.end()) return false;
  }
  if (slower_than_ns && record.latency_ns() <= *slower_than_ns) return false;
  if (attrs.empty()) return true;
  for (const auto& pair : attrs) {  // not a structured binding: clang 14 cannot capture one
    const std::string& name = pair.first;
    const std::string& value = pair.second;
    bool found = false;
    audit::for_each_attribute(
        record, [&](std::string_view n, std::string_view v) { found |= n == name && v == value; });
    if (!found) return false;
  }
  return true;
}

Result<std::uint64_t> parse_audit_time(const std::string& flag, const std::string& text,
                                       std::uint64_t now_unix_ns) {
  if (std::optional<std::uint64_t> ago = parse_ago(text, now_unix_ns)) return *ago;
  if (std::optional<std::int64_t> at = parse_timestamp_ns(text)) {
    if (*at < 0) {
      return invalid(flag + " '" + text + "' is before 1970; give a later time");
    }
    return static_cast<std::uint64_t>(*at);
  }
  return invalid(flag + " '" + text +
                 "': use an RFC 3339 time like 2026-11-23T10:00:00Z, a date like 2026-11-23 "
                 "(UTC), or a time back from now like 10m, 2h or 1d");
}

Result<fb::Decision> parse_audit_decision(const std::string& text) {
  if (text == "admitted") return fb::Decision::Admitted;
  if (text == "rejected") return fb::Decision::Rejected;
  if (text == "settled") return fb::Decision::Settled;
  if (text == "abandoned") return fb::Decision::Abandoned;
  return invalid("--decision '" + text + "': use admitted, rejected, settled or abandoned");
}

Result<std::vector<std::string>> parse_audit_outcomes(const std::vector<std::string>& flags) {
  std::vector<std::string> out;
  for (const std::string& flag : flags) {
    std::string_view rest(flag);
    while (true) {
      const std::size_t comma = rest.find(',');
      const std::string_view name = rest.substr(0, comma);
      Outcome o = Outcome::kUnreported;
      if (name == kAnyError) {
        for (Outcome e : kFilterOutcomes) {
          if (is_error(e)) out.emplace_back(to_string(e));
        }
      } else if (parse_outcome(name, &o) && o != Outcome::kUnreported) {
        out.emplace_back(name);
      } else {
        const std::string shown = name.empty() ? flag : std::string(name);
        return invalid("--outcome '" + shown + "': use " + outcome_choices() +
                       ", several separated by commas");
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return out;
}

Result<std::uint64_t> parse_audit_duration(const std::string& flag, const std::string& text) {
  const std::optional<Duration> d = parse_duration(text);
  if (!d || d->count > UINT64_MAX / d->unit_ns) {
    return invalid(flag + " '" + text + "': use a whole number and a unit, like 500ms, 8s or 2m");
  }
  return d->count * d->unit_ns;
}

Result<AuditFilter> parse_audit_filter(const AuditFilterOptions& options,
                                       std::uint64_t now_unix_ns) {
  AuditFilter f;
  if (!options.since.empty()) {
    Result<std::uint64_t> t = parse_audit_time("--since", options.since, now_unix_ns);
    if (!t.ok()) return t.status();
    f.since_unix_ns = t.value();
  }
  if (!options.until.empty()) {
    Result<std::uint64_t> t = parse_audit_time("--until", options.until, now_unix_ns);
    if (!t.ok()) return t.status();
    f.until_unix_ns = t.value();
  }
  if (f.since_unix_ns && f.until_unix_ns && *f.since_unix_ns > *f.until_unix_ns) {
    return invalid("--since '" + options.since + "' is after --until '" + options.until +
                   "': nothing could match; swap them");
  }
  if (!options.attrs.empty()) {
    Result<AttributeList> attrs = parse_attributes(options.attrs, "");
    if (!attrs.ok()) return attrs.status();
    f.attrs = std::move(attrs.value());
  }
  if (!options.decision.empty()) {
    Result<fb::Decision> d = parse_audit_decision(options.decision);
    if (!d.ok()) return d.status();
    f.decision = d.value();
  }
  if (!options.outcomes.empty()) {
    Result<std::vector<std::string>> outcomes = parse_audit_outcomes(options.outcomes);
    if (!outcomes.ok()) return outcomes.status();
    f.outcomes = std::move(outcomes.value());
  }
  if (!options.slower_than.empty()) {
    Result<std::uint64_t> t = parse_audit_duration("--slower-than", options.slower_than);
    if (!t.ok()) return t.status();
    f.slower_than_ns = t.value();
  }
  return f;
}

}  // namespace sluice::cli
