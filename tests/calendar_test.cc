// Calendar windows of budgets; expected instants come from `date -d 'TZ="zone" YYYY-MM-DD' +%s`.
#include "calendar.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace sluice {
namespace {

std::vector<std::int64_t> starts(Period period, const std::string& zone, std::int64_t t,
                                 int count) {
  Result<std::vector<std::int64_t>> r = window_starts(period, zone, t, count);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r.value() : std::vector<std::int64_t>{};
}

constexpr std::int64_t kHour = 3600;
constexpr std::int64_t kDay = 86400;

TEST(CalendarTest, UtcDayStartsAtMidnightAndLasts24Hours) {
  // 2026-03-08 15:30 UTC.
  EXPECT_EQ(starts(Period::kDay, "UTC", 1772983800, 2),
            (std::vector<std::int64_t>{1772928000, 1773014400}));
}

TEST(CalendarTest, InstantAtMidnightOpensNewDaySecondBeforeBelongsToPrevious) {
  EXPECT_EQ(starts(Period::kDay, "UTC", 1773014400, 1), std::vector<std::int64_t>{1773014400});
  EXPECT_EQ(starts(Period::kDay, "UTC", 1773014399, 1), std::vector<std::int64_t>{1772928000});
}

TEST(CalendarTest, NewYorkSpringForwardDayLasts23Hours) {
  // 2026-03-08 12:00 EDT; the day starts 00:00 EST and the next 00:00 EDT.
  const auto s = starts(Period::kDay, "America/New_York", 1772985600, 2);
  EXPECT_EQ(s, (std::vector<std::int64_t>{1772946000, 1773028800}));
  EXPECT_EQ(s[1] - s[0], 23 * kHour);
}

TEST(CalendarTest, NewYorkFallBackDayLasts25Hours) {
  // 2026-11-01 01:30 EDT (the first of the two 01:30s).
  const auto s = starts(Period::kDay, "America/New_York", 1793511000, 2);
  EXPECT_EQ(s, (std::vector<std::int64_t>{1793505600, 1793595600}));
  EXPECT_EQ(s[1] - s[0], 25 * kHour);
  // The second 01:30 (EST), an hour later, is in the same day.
  EXPECT_EQ(starts(Period::kDay, "America/New_York", 1793511000 + kHour, 1),
            std::vector<std::int64_t>{1793505600});
}

TEST(CalendarTest, SundayBelongsToWeekStartingPreviousMonday) {
  // Sunday 2026-03-15 23:00 UTC -> Monday 2026-03-09, next Monday 2026-03-16.
  EXPECT_EQ(starts(Period::kWeek, "UTC", 1773615600, 2),
            (std::vector<std::int64_t>{1773014400, 1773619200}));
}

TEST(CalendarTest, MondayMidnightStartsItsOwnWeek) {
  EXPECT_EQ(starts(Period::kWeek, "UTC", 1773014400, 1), std::vector<std::int64_t>{1773014400});
}

TEST(CalendarTest, NewYorkWeekAcrossSpringForwardLasts7DaysLessAnHour) {
  // Monday 2026-03-02 00:00 EST to Monday 2026-03-09 00:00 EDT.
  const auto s = starts(Period::kWeek, "America/New_York", 1772946000, 2);
  EXPECT_EQ(s, (std::vector<std::int64_t>{1772427600, 1773028800}));
  EXPECT_EQ(s[1] - s[0], 7 * kDay - kHour);
}

TEST(CalendarTest, January31EndsAtFebruaryFirst) {
  // 2026-01-31 23:59:59 UTC.
  EXPECT_EQ(starts(Period::kMonth, "UTC", 1769903999, 2),
            (std::vector<std::int64_t>{1767225600, 1769904000}));
}

TEST(CalendarTest, April30IsInAprilWhichEndsAtMayFirst) {
  // 2026-04-30 12:00 UTC.
  EXPECT_EQ(starts(Period::kMonth, "UTC", 1777550400, 2),
            (std::vector<std::int64_t>{1775001600, 1777593600}));
}

TEST(CalendarTest, NewYorkMonthFollowsLocalMidnights) {
  // 2026-03-31 23:59:59 EDT: March started at 00:00 EST, April starts at 00:00 EDT.
  EXPECT_EQ(starts(Period::kMonth, "America/New_York", 1775015999, 2),
            (std::vector<std::int64_t>{1772341200, 1775016000}));
}

TEST(CalendarTest, LeapDay2028IsInFebruaryOf29Days) {
  // 2028-02-29 12:00 UTC.
  const auto s = starts(Period::kMonth, "UTC", 1835438400, 2);
  EXPECT_EQ(s, (std::vector<std::int64_t>{1832976000, 1835481600}));
  EXPECT_EQ(s[1] - s[0], 29 * kDay);
}

TEST(CalendarTest, February2027Has28Days) {
  const auto s = starts(Period::kMonth, "UTC", 1801440000 + 10 * kDay, 2);
  EXPECT_EQ(s, (std::vector<std::int64_t>{1801440000, 1803859200}));
  EXPECT_EQ(s[1] - s[0], 28 * kDay);
}

TEST(CalendarTest, Year2100IsNotLeapFebruaryHas28Days) {
  // 2100-02-28 12:00 UTC.
  const auto s = starts(Period::kMonth, "UTC", 4105123200 + 27 * kDay + 12 * kHour, 2);
  EXPECT_EQ(s, (std::vector<std::int64_t>{4105123200, 4107542400}));
  EXPECT_EQ(s[1] - s[0], 28 * kDay);
}

TEST(CalendarTest, SaoPauloDayWithoutMidnightStartsAtOneAm) {
  // 2018-11-04: clocks jumped from 00:00 to 01:00 (-03 -> -02); the day starts 03:00 UTC.
  const auto s = starts(Period::kDay, "America/Sao_Paulo", 1541340000, 2);
  EXPECT_EQ(s, (std::vector<std::int64_t>{1541300400, 1541383200}));
  EXPECT_EQ(s[1] - s[0], 23 * kHour);
  // Seen from the day before, the window after 2018-11-03 is the same instant.
  EXPECT_EQ(starts(Period::kDay, "America/Sao_Paulo", 1541214000, 2),
            (std::vector<std::int64_t>{1541214000, 1541300400}));
}

TEST(CalendarTest, AsuncionDayWithoutMidnightStartsAtOneAm) {
  // 2010-10-03 12:00 local; 00:00 -04 did not exist, 01:00 -03 is 04:00 UTC.
  EXPECT_EQ(starts(Period::kDay, "America/Asuncion", 1286118000, 1),
            std::vector<std::int64_t>{1286078400});
}

TEST(CalendarTest, ConsecutiveWindowsAreStrictlyAscending) {
  for (const char* zone : {"UTC", "America/New_York", "America/Sao_Paulo", "Pacific/Apia"}) {
    for (Period p : {Period::kDay, Period::kWeek, Period::kMonth}) {
      const auto s =
          starts(p, zone, 1293840000, 800);  // from 2011-01-01, across DST and Apia's skip
      ASSERT_EQ(s.size(), 800u) << zone << " " << to_string(p);
      EXPECT_LE(s[0], 1293840000) << zone << " " << to_string(p);
      for (std::size_t i = 1; i < s.size(); ++i) {
        ASSERT_LT(s[i - 1], s[i]) << zone << " " << to_string(p) << " at " << i;
      }
    }
  }
}

TEST(CalendarTest, ApiaSkippedDayIsNotAWindow) {
  // Samoa skipped 2011-12-30: 2011-12-29 00:00 -10 (1325152800) is followed by 2011-12-31
  // 00:00 +14 (1325239200).
  EXPECT_EQ(starts(Period::kDay, "Pacific/Apia", 1325152800, 2),
            (std::vector<std::int64_t>{1325152800, 1325239200}));
}

TEST(CalendarTest, UnknownZoneIsAnError) {
  Result<std::vector<std::int64_t>> r = window_starts(Period::kDay, "Mars/Olympus", 0, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("Mars/Olympus"), std::string::npos);
}

TEST(CalendarTest, SecondMinuteAndHourHaveNoCalendarWindows) {
  for (Period p : {Period::kSecond, Period::kMinute, Period::kHour}) {
    Result<std::vector<std::int64_t>> r = window_starts(p, "UTC", 0, 1);
    ASSERT_FALSE(r.ok()) << to_string(p);
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(CalendarTest, NegativeCountIsAnError) {
  EXPECT_FALSE(window_starts(Period::kDay, "UTC", 0, -1).ok());
}

TEST(CalendarTest, KnownTimezones) {
  EXPECT_TRUE(is_known_timezone("UTC"));
  EXPECT_TRUE(is_known_timezone("America/New_York"));
  EXPECT_TRUE(is_known_timezone("Europe/Paris"));
  EXPECT_FALSE(is_known_timezone("America/New_Yrok"));
  EXPECT_FALSE(is_known_timezone(""));
  EXPECT_FALSE(is_known_timezone("../../etc/passwd"));
}

}  // namespace
}  // namespace sluice
