// Calendar windows of budgets: day, week (Monday 00:00) and month (the 1st,
// 00:00), aligned to local time in an IANA time zone, DST included.
//
// A window is named by its start as unix seconds (UTC). Where local midnight
// does not exist (a DST jump at 00:00), the window starts at the first
// instant of that local day.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/policy.h"
#include "sluice/status.h"

namespace sluice {

// True when `zone` names a zone in the system's tz database.
bool is_known_timezone(const std::string& zone);

// The starts of `count` consecutive windows, the first being the window that
// contains `unix_seconds`. Period must be kDay, kWeek or kMonth.
Result<std::vector<std::int64_t>> window_starts(Period period, const std::string& zone,
                                                std::int64_t unix_seconds, int count);

}  // namespace sluice
