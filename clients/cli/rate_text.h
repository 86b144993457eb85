// How `sluice top` and `sluice status` print a spend rate and a stretch of
// time, so that both views of the same budget key read alike.
//
//   burn_text("usd", 3'500'000.0);   // "$12.6/h" (nano-dollars per second in)
//   burn_text("tokens", 42.0);       // "42.00 tok/s"
//   duration_text(3900.0);           // "1h05m"
#pragma once

#include <optional>
#include <string>

namespace sluice::cli {

// "0.0421", "3.57", "1250": about three significant figures, no exponent.
std::string number_text(double v);

// A rate of `unit`s (usd: nano-dollars) per second as USD/hour for usd,
// "N tok/s" for tokens, "N UNIT/s" otherwise ("units" when `unit` is empty);
// "" when `per_s` is not set.
std::string burn_text(const std::string& unit, std::optional<double> per_s);

// "45s", "12m30s", "3h05m", "2d04h", ">1y"; "—" when `seconds` is not set.
std::string duration_text(std::optional<double> seconds);

}  // namespace sluice::cli
