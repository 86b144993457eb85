// A read-only view of a Sluice segment for tools (the `sluice` CLI, metrics
// exporters): what the sidecar is doing and what every live cell holds.
//
//   sluice::Result<sluice::SegmentStatus> st = sluice::read_status("sluice-demo");
//   if (!st.ok()) { std::fprintf(stderr, "%s\n", st.status().message().c_str()); return 2; }
//   std::printf("%llu keys\n", static_cast<unsigned long long>(st->keys_used));
//
// Both calls map the segment, copy what they need word by word and unmap it;
// they never register a client and never write a shared word. Every count
// read from the segment is bounds-checked. The figures are a snapshot taken
// while clients keep running, so totals may be off by calls in flight.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/status.h"

namespace sluice {

// A global budget limit on this host, summed over its keys in the current
// window, as the store last answered (units of `unit`; usd in nano-dollars).
struct GlobalLimitRow {
  std::string limit;
  std::string unit;
  std::uint64_t granted = 0;           // allotted to this host by the store
  std::uint64_t exposed = 0;           // of which this host's clients may spend
  std::uint64_t used = 0;              // spent on this host
  std::uint64_t held = 0;              // granted - used: the lease this host holds unspent
  std::uint64_t global_remaining = 0;  // budget - used over every host
};

struct SegmentStatus {
  std::string segment;
  // A sidecar pid is set, its heartbeat is under 2 s old and the process is alive.
  bool sidecar_alive = false;
  std::uint64_t pid = 0;  // the sidecar's pid as the header has it (0 = stopped)
  std::uint64_t heartbeat_age_ms = 0;
  std::uint64_t policy_generation = 0;  // 0 = no policy published yet
  std::uint64_t keys_used = 0;
  std::uint64_t keys_capacity = 0;  // the header's max_keys
  std::uint64_t reservations_in_flight = 0;
  std::uint64_t reservations_capacity = 0;
  std::uint64_t admitted_total = 0;  // departed clients + every registered client
  std::uint64_t rejected_total = 0;
  std::uint64_t abandoned_total = 0;  // reservations the sidecar settled at their estimate
  std::uint64_t clients_attached = 0;
  std::uint64_t segment_bytes = 0;
  // Sampled decision latency (one reserve in `latency_sample_every`, whole
  // call): latency_counts[i] samples took at most latency_bounds_ns[i] and
  // more than the bound before; the last bound is UINT64_MAX (the rest).
  std::uint64_t latency_sample_every = 0;
  std::vector<std::uint64_t> latency_bounds_ns;
  std::vector<std::uint64_t> latency_counts;

  // The audit trail, as sluiced and the clients count it (AuditRingControl).
  std::string audit_dir;            // absolute, as sluiced publishes it; empty until it does
  std::string audit_writer;         // "io_uring" | "pwrite" | "none" (no writer yet)
  std::uint64_t audit_drained = 0;  // records copied out of the ring
  std::uint64_t audit_written = 0;  // records on disk
  std::uint64_t audit_dropped = 0;  // records lost because the ring was full
  std::uint64_t audit_refused = 0;  // calls refused because audit is required and the ring was full
  std::uint64_t audit_skipped = 0;  // records of clients that died mid-write
  std::uint64_t audit_corrupt = 0;  // ring spans that were not a valid record
  std::uint64_t audit_ring_high_water_bytes = 0;  // the most bytes ever waiting in the ring
  std::uint64_t audit_ring_capacity_bytes = 0;
  std::uint64_t audit_bytes_on_disk = 0;
  std::uint64_t audit_last_fsync_unix_ns = 0;  // 0 = none yet
  std::uint64_t audit_last_fsync_age_ms = 0;   // meaningful when audit_last_fsync_unix_ns != 0

  // The central store, as the sidecar's sync loop publishes it.
  std::string store;         // "sqlite:var/sluice.db", "redis://host:port/db"; empty: none
  std::string store_health;  // up | down | unknown (no sync yet)
  std::uint64_t store_last_sync_unix_ns = 0;  // 0 = none yet
  std::uint64_t store_last_sync_age_ms = 0;
  std::uint64_t store_syncs = 0;
  std::uint64_t store_failures = 0;
  bool store_retry_pending = false;     // a failed push waits to be sent again
  std::uint64_t store_sync_cpu_us = 0;  // CPU time of the last sync
  std::uint64_t store_cells = 0;        // cells in the last sync
  std::uint64_t store_hosts = 0;        // hosts sharing the global rates
  std::string store_last_error;
  std::vector<GlobalLimitRow> global_limits;
};

// One live cell: a key of a limit in the current policy.
struct KeyRow {
  std::string limit;       // the limit's name
  std::string attributes;  // matched attributes, "feature=quote-agent,team=pricing"
  std::string window;      // budgets: window start, ISO-8601 UTC; rates: "rolling"
  std::string unit;        // requests | tokens | input_tokens | output_tokens | usd
  bool rate = false;
  bool shadow = false;
  std::uint64_t window_start_unix = 0;  // budgets
  // Budgets: where the window ends (the next one starts), from the policy's
  // window table: 23 or 25 hours after the start on a DST day. 0 for a
  // window the table no longer holds.
  std::uint64_t window_end_unix = 0;
  // In units of `unit`; usd in nano-dollars. Rates: units in the bucket now,
  // out of `limit` = the burst. Budgets: units spent this window, out of the budget.
  std::uint64_t used = 0;
  std::uint64_t limit_value = 0;
  std::uint64_t remaining = 0;  // limit - used, at least 0
};

// Decision counts of one limit of the current policy, summed over every
// client (each counts its own, without contention) and departed clients.
struct LimitRow {
  std::string limit;
  std::string kind;  // rate | budget | model_access
  std::string unit;  // as KeyRow::unit; empty for model access
  bool shadow = false;
  std::uint64_t keys = 0;             // live cells of the limit
  std::uint64_t admitted = 0;         // reservations the limit took part in
  std::uint64_t rejected = 0;         // calls the limit refused
  std::uint64_t shadow_rejected = 0;  // calls a shadow limit would have refused
  std::uint64_t committed = 0;        // its reservations committed
  std::uint64_t failed = 0;           // of which the caller reported provider_error or timeout
};

// What commits reported of the calls to one model (sluice::CallReport),
// counted since the segment was created.
struct ModelCallRow {
  std::string model;  // "" for calls without a priced model
  // Commits by outcome, indexed by sluice::Outcome (0 unreported, 1 ok,
  // 2 provider_error, 3 timeout, 4 cancelled_by_client, 5 cut_off).
  std::vector<std::uint64_t> calls;
  // latency_counts[i] calls took at most latency_bounds_ms[i] and more than
  // the bound before; the last bound is UINT64_MAX (the rest). Likewise ttft.
  std::vector<std::uint64_t> latency_bounds_ms;
  std::vector<std::uint64_t> latency_counts;
  std::uint64_t latency_sum_us = 0;
  std::vector<std::uint64_t> ttft_counts;
  std::uint64_t ttft_sum_us = 0;
};

// Liveness, policy generation, table use and call totals of `segment`.
Result<SegmentStatus> read_status(const std::string& segment);

// Every live cell of the current policy, in key-table order. Budget cells of
// any window but the one holding the segment's wall time (past windows, and
// later ones after the wall clock was stepped back) are left out unless
// `all_windows`.
Result<std::vector<KeyRow>> list_keys(const std::string& segment, bool all_windows = false);

// Every limit of the current policy, in policy order, with its counts.
Result<std::vector<LimitRow>> list_limits(const std::string& segment);

// Every model with call stats, in row order: row 0 (calls without a priced
// model) first, then each model the policy has priced since the segment was made.
Result<std::vector<ModelCallRow>> list_model_calls(const std::string& segment);

}  // namespace sluice
