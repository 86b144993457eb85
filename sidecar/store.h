// The central store: where every host's usage per cell (one key of one limit
// in one window) is recorded, where global budgets are leased out, and where
// global rates are shared between hosts. Two implementations with the same
// arithmetic: SqliteStore (embedded, the default) and RedisStore (many
// hosts). Only the sidecar's sync thread calls a Store; admission never does.
//
// The arithmetic, per cell, applied atomically by the store at its own time
// `now_ms` (milliseconds since the epoch):
//
// Budgets (local and global):
//   1. If the cell has already applied a push from this host with the same
//      session and a sequence number >= seq, the update is a duplicate:
//      nothing changes and the cell's state is returned as it is.
//   2. Otherwise the cell records (session, seq) for the host, and
//      host_used += used_delta, global_used += used_delta.
// Global budgets, after 2:
//   3. budget := update.budget.
//   4. Every other host k whose lease has run out (lease_until_k < now_ms)
//      loses its unexposed allotment: global_allotted -= allotted_k -
//      exposed_k; allotted_k := exposed_k. (Exposed units may already be
//      spent without the store knowing; they are never taken back.)
//   5. want_allotted > allotted_h: allotted_h grows by min(want_allotted -
//      allotted_h, budget - global_allotted) (nothing when global_allotted >=
//      budget). want_allotted < allotted_h: the host gives back down to
//      max(want_allotted, exposed_h). global_allotted follows.
//   6. exposed_h := max(exposed_h, min(want_exposed, allotted_h)).
//   7. lease_until_h := now_ms + lease_ms.
//   So sum(allotted) <= budget, exposed_h <= allotted_h, and exposed_h
//   never shrinks: a host may let its clients spend up to exposed_h.
// Global rates (no sequence check: demand is a level, not a delta):
//   1. demand_h := demand, rate := update.rate, lease_until_h := now_ms + lease_ms.
//   2. Hosts whose lease ran out are forgotten. n = hosts left (>= 1).
//   3. floor = rate / (4 n); pool = rate - n floor; sum = sum of demands;
//      host_share = floor + (sum == 0 ? pool / n : pool * demand_h / sum).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sluice/policy.h"
#include "sluice/status.h"

namespace sluice {

enum class CellKind : std::uint8_t { kLocalBudget = 1, kGlobalBudget = 2, kGlobalRate = 3 };

// What names a cell, the same on every host (the hosts share the store's
// hash seed, so they hash a key alike).
struct StoreCell {
  std::uint64_t hash = 0;            // the key's hash: names the cell
  std::uint64_t limit_identity = 0;  // CompiledLimit::identity
  std::uint64_t window_start = 0;    // budgets: unix seconds; rates: 0
  std::uint64_t window_end = 0;      // budgets: unix seconds the window ends; rates: 0
  std::string limit_name;            // for display
  std::string label;                 // the matched values joined by '|', for display
};

struct CellUpdate {
  StoreCell cell;
  CellKind kind = CellKind::kLocalBudget;
  // Budgets: units used on this host since its previous push of this cell;
  // negative when commits came in below their estimates.
  std::int64_t used_delta = 0;
  // Global budgets: units per window, and what the host wants to hold,
  // cumulative over the window (want_exposed <= want_allotted).
  std::uint64_t budget = 0;
  std::uint64_t want_allotted = 0;
  std::uint64_t want_exposed = 0;
  // Global rates: units per period, and this host's demand in units per period.
  std::uint64_t rate = 0;
  std::uint64_t demand = 0;
};

struct CellState {
  bool duplicate = false;  // the update had been applied before (budgets)
  // Budgets.
  std::int64_t host_used = 0;
  std::uint64_t host_allotted = 0;
  std::uint64_t host_exposed = 0;
  std::int64_t global_used = 0;
  std::uint64_t global_allotted = 0;
  // Global rates.
  std::uint64_t host_share = 0;  // units per period this host may admit
  std::uint64_t hosts = 0;       // hosts sharing the rate
};

struct Push {
  std::string host;
  std::uint64_t session = 0;  // random per sidecar start, never 0
  std::uint64_t seq = 0;      // 1, 2, ... within a session; a retry reuses its seq
  std::uint64_t lease_ms = 0;
  std::vector<CellUpdate> cells;
};

// A budget cell of one host in a window that has not ended.
struct RestoredCell {
  StoreCell cell;
  CellKind kind = CellKind::kLocalBudget;
  std::int64_t host_used = 0;
  std::uint64_t host_exposed = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  // Where the store is, for `sluice status` and messages:
  // "sqlite:var/sluice.db", "redis://127.0.0.1:6379/0".
  virtual std::string where() const = 0;
  // The key-hash seed every host shares. The first caller's `proposal` is
  // stored and every later call returns it.
  virtual Result<std::uint64_t> hash_seed(std::uint64_t proposal) = 0;
  // Applies every update (see the arithmetic above); one CellState per
  // update, in order. On error nothing may be assumed applied or not: the
  // caller retries the same Push (same session and seq), which is safe.
  virtual Result<std::vector<CellState>> push(const Push& push) = 0;
  // The budget cells `host` has pushed whose window ends after `now_unix`.
  virtual Result<std::vector<RestoredCell>> restore(const std::string& host,
                                                    std::uint64_t now_unix) = 0;
};

// Opens the store the policy names. `timeout_ms` bounds every connect and
// command of a network store. Errors are one line.
Result<std::unique_ptr<Store>> open_store(const StoreSpec& spec);

}  // namespace sluice
