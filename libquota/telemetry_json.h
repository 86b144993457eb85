// The JSON of one burn rate and one alert state (sluice/telemetry.h), as the
// telemetry file holds them and tools print them (`sluice status --json`).
// Kept out of the public header so that it does not pull in nlohmann/json.
#pragma once

#include <nlohmann/json.hpp>

#include "sluice/telemetry.h"

namespace sluice {

// exhausts_in_s is null when none.
nlohmann::json burn_json(const BurnRate& b);
// observed is null when infinite (no key on course to run out).
nlohmann::json alert_json(const AlertStatus& a);

}  // namespace sluice
