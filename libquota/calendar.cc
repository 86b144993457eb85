// Calendar windows of budgets, computed with Howard Hinnant's date/tz over the system tzdata.
#include "calendar.h"

#include <chrono>
#include <exception>

#include <date/date.h>
#include <date/tz.h>

namespace sluice {
namespace {

using std::chrono::seconds;

// Years 0001..9999: far beyond any budget, and safe from overflow in date/tz.
constexpr std::int64_t kMinUnixSeconds = -62135596800;
constexpr std::int64_t kMaxUnixSeconds = 253402300799;
constexpr int kMaxCount = 100000;

// The local day on which the window containing local day `d` begins.
date::local_days window_first_day(Period period, date::local_days d) {
  if (period == Period::kWeek) return d - (date::weekday(d) - date::Monday);
  if (period == Period::kMonth) {
    const date::year_month_day ymd(d);
    return date::local_days{ymd.year() / ymd.month() / 1};
  }
  return d;
}

date::local_days next_window_first_day(Period period, date::local_days d) {
  if (period == Period::kWeek) return d + date::weeks(1);
  if (period == Period::kMonth) {
    const date::year_month_day ymd(d);
    return date::local_days{ymd.year() / ymd.month() / 1 + date::months(1)};
  }
  return d + date::days(1);
}

// First instant of local day `d`: its midnight, or the end of a DST gap that swallows midnight.
std::int64_t first_instant(const date::time_zone* tz, date::local_days d) {
  return tz->to_sys(date::local_seconds(d), date::choose::earliest).time_since_epoch().count();
}

Result<std::vector<std::int64_t>> compute_window_starts(Period period, const date::time_zone* tz,
                                                        std::int64_t unix_seconds, int count) {
  const date::sys_seconds now{seconds(unix_seconds)};
  date::local_days day = window_first_day(period, date::floor<date::days>(tz->to_local(now)));
  std::int64_t start = first_instant(tz, day);
  // A gap or overlap next to midnight can put the computed start after `now`; step back.
  while (start > unix_seconds) {
    day = window_first_day(period, day - date::days(1));
    start = first_instant(tz, day);
  }
  std::vector<std::int64_t> starts;
  starts.reserve(static_cast<std::size_t>(count));
  while (static_cast<int>(starts.size()) < count) {
    // A whole local day can be skipped (Pacific/Apia, 2011-12-30): it starts where the next does.
    if (starts.empty() || start > starts.back()) starts.push_back(start);
    day = next_window_first_day(period, day);
    start = first_instant(tz, day);
  }
  return starts;
}

}  // namespace

bool is_known_timezone(const std::string& zone) {
  if (zone.empty()) return false;
  try {
    return date::locate_zone(zone) != nullptr;
  } catch (...) {
    return false;
  }
}

Result<std::vector<std::int64_t>> window_starts(Period period, const std::string& zone,
                                                std::int64_t unix_seconds, int count) {
  if (period != Period::kDay && period != Period::kWeek && period != Period::kMonth) {
    return Status(ErrorCode::kInvalidArgument,
                  std::string("calendar windows are day, week or month, not ") + to_string(period) +
                      "; use a rate limit for shorter periods");
  }
  if (count < 0 || count > kMaxCount) {
    return Status(ErrorCode::kInvalidArgument, "window count " + std::to_string(count) +
                                                   " is out of range; use 0.." +
                                                   std::to_string(kMaxCount));
  }
  if (unix_seconds < kMinUnixSeconds || unix_seconds > kMaxUnixSeconds) {
    return Status(ErrorCode::kInvalidArgument, "time " + std::to_string(unix_seconds) +
                                                   " is outside years 1..9999; pass unix seconds");
  }
  const date::time_zone* tz = nullptr;
  try {
    tz = date::locate_zone(zone);
  } catch (...) {
    return Status(ErrorCode::kInvalidArgument,
                  "unknown time zone '" + zone +
                      "'; use an IANA name from /usr/share/zoneinfo, e.g. America/New_York or UTC");
  }
  try {
    return compute_window_starts(period, tz, unix_seconds, count);
  } catch (const std::exception& e) {
    return Status(ErrorCode::kInvalidArgument,
                  "cannot compute windows in time zone '" + zone + "': " + e.what());
  } catch (...) {
    return Status(ErrorCode::kInvalidArgument,
                  "cannot compute windows in time zone '" + zone + "'; check the tzdata install");
  }
}

}  // namespace sluice
