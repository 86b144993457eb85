// How `sluice audit` prints a verified FlatBuffers Record: one JSON object
// per line (--json), or one row of a fixed-width table, so rows line up even
// while --follow prints them as they come.
//
//   print_audit_table_header();
//   print_audit_row(*record);  // "2026-11-23T10:00:00.000000000Z  reserve  admitted ..."
//   print_json(audit_record_json(*record));
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "audit_generated.h"

namespace sluice::cli {

// "2026-11-23T10:00:00.123456789Z": RFC 3339, UTC, nanoseconds.
std::string rfc3339_ns(std::uint64_t unix_ns);

// reserve | commit | cancel | extend | abandon
const char* audit_event_name(audit::fb::Event event);
// admitted | rejected | settled | abandoned
const char* audit_decision_name(audit::fb::Decision decision);

// sequence, time, time_unix_ns, reservation_id, reservation_str, pid,
// start_time, event, decision, reason, limit, attributes {name: value},
// est/actual input/output tokens, cost_usd, cost_nusd, retry_after_ms,
// shadow_rejects [names], policy_generation, and the call report a commit
// may carry: outcome, http_status, latency_ns, ttft_ns, model_version.
// Absent strings are null, and so is what the call report leaves out
// (an "unreported" outcome, a 0 status or duration).
nlohmann::json audit_record_json(const audit::fb::Record& record);

void print_audit_table_header();
// TIME EVENT DECISION REASON/LIMIT TOKENS COST ATTRIBUTES; one line. A
// call report follows the attributes as "outcome=timeout http=504
// latency=30.000s ttft=1.250s version=V", without what it leaves out.
void print_audit_row(const audit::fb::Record& record);

}  // namespace sluice::cli
