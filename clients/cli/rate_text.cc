#include "rate_text.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace sluice::cli {
namespace {

constexpr double kNanoPerUsd = 1e9;
constexpr double kSecondsPerHour = 3600;

}  // namespace

std::string number_text(double v) {
  if (v == 0) return "0";
  char out[32];
  if (v >= 100) {
    std::snprintf(out, sizeof out, "%.0f", v);
  } else if (v >= 1) {
    std::snprintf(out, sizeof out, "%.2f", v);
  } else {
    std::snprintf(out, sizeof out, "%.4f", v);
  }
  return out;
}

std::string burn_text(const std::string& unit, std::optional<double> per_s) {
  if (!per_s) return "";
  if (unit == "usd") return "$" + number_text(*per_s * kSecondsPerHour / kNanoPerUsd) + "/h";
  const std::string shown = unit.empty() ? "units" : unit == "tokens" ? "tok" : unit;
  return number_text(*per_s) + " " + shown + "/s";
}

std::string duration_text(std::optional<double> seconds) {
  if (!seconds) return "—";
  if (*seconds >= 365.0 * 86400) return ">1y";
  const auto s = static_cast<std::uint64_t>(std::llround(std::max(*seconds, 0.0)));
  char out[32];
  if (s < 60) {
    std::snprintf(out, sizeof out, "%llus", static_cast<unsigned long long>(s));
  } else if (s < 3600) {
    std::snprintf(out, sizeof out, "%llum%02llus", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  } else if (s < 86400) {
    std::snprintf(out, sizeof out, "%lluh%02llum", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s % 3600 / 60));
  } else {
    std::snprintf(out, sizeof out, "%llud%02lluh", static_cast<unsigned long long>(s / 86400),
                  static_cast<unsigned long long>(s % 86400 / 3600));
  }
  return out;
}

}  // namespace sluice::cli
