// The embedded store: one SQLite database file, the default. Several
// sidecars on one machine may share the file, each pushing as its own host;
// SQLite's locking serializes their pushes (WAL journal, every push one
// BEGIN IMMEDIATE transaction, waiting up to spec.timeout_ms for the lock).
//
//   Result<std::unique_ptr<Store>> s = open_sqlite_store(policy.store);
//   if (!s.ok()) return s.status();  // one line: what is wrong, how to fix it
//   Result<std::vector<CellState>> states = (*s)->push(push);
//
// The schema (PRAGMA user_version 1):
//   meta(key, value)          the hash seed, under key 'hash_seed'
//   cells(hash, ...)          one row per cell: StoreCell, kind, and the
//                             cell's budget, global used and allotted, rate
//   host_cells(hash, host, ...) one row per host of a cell: its used,
//                             allotted, exposed, lease, last (session, seq)
//                             and demand
// Every u64 is stored as the int64 with the same bits. Cells whose window
// ended more than seven days ago (rates: whose hosts' leases did) are
// deleted by push, at most once a minute.
//
// A store object is used from one thread at a time.
#pragma once

#include <memory>

#include "sluice/policy.h"
#include "sluice/status.h"
#include "store.h"

namespace sluice {

// Opens (creating it and its missing parent directories if needed) the
// database at spec.path and creates the schema if the file has none.
Result<std::unique_ptr<Store>> open_sqlite_store(const StoreSpec& spec);

}  // namespace sluice
