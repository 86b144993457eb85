// What the SQLite ledger (store.kind sqlite, sidecar/sqlite_store.cc) says
// was spent, for `sluice report --ledger`: one row per budget cell (a key of
// a limit in one calendar window), summed over the hosts sharing the file.
// The ledger names limits and their matched values, not the attributes of
// calls, and has no times finer than a window.
//
//   Result<std::vector<LedgerRow>> rows = read_ledger("var/sluice.db", since, until);
//
// The file is opened read-only (a running sluiced keeps writing to it) and
// never changed; with no sidecar on it, nothing is created beside it either.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sluice/status.h"

namespace sluice::cli {

struct LedgerRow {
  std::string limit;
  std::string key;  // the matched values joined by '|' ("pricing|quote-agent")
  std::uint64_t window_start_unix = 0;
  std::uint64_t window_end_unix = 0;
  bool global = false;      // scope: global (one budget for every host)
  std::int64_t used = 0;    // in the limit's unit; USD in nano-dollars
  std::uint64_t hosts = 0;  // hosts that pushed usage to the cell
};

// Budget cells whose window overlaps [since, until] (Unix nanoseconds; an
// absent end is open), by limit, key and window. Errors are one line.
Result<std::vector<LedgerRow>> read_ledger(const std::string& path,
                                           std::optional<std::uint64_t> since_unix_ns,
                                           std::optional<std::uint64_t> until_unix_ns);

}  // namespace sluice::cli
