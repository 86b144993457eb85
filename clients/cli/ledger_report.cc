#include "ledger_report.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

namespace sluice::cli {
namespace {

constexpr std::int64_t kLedgerSchemaVersion = 1;  // sidecar/sqlite_store.cc kSchemaVersion
constexpr int kBusyTimeoutMs = 2000;
constexpr std::uint64_t kNsPerSecond = 1'000'000'000ull;

// Budget cells (kinds 1 local, 2 global; 3 is a global rate, which spends nothing).
constexpr const char* kSelectCells =
    "SELECT c.limit_name, c.label, c.window_start, c.window_end, c.kind, c.used,"
    " (SELECT count(*) FROM host_cells AS h WHERE h.hash = c.hash)"
    " FROM cells AS c WHERE c.kind IN (1, 2)"
    " ORDER BY c.limit_name, c.label, c.window_start";

struct CloseDb {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct FinalizeStatement {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};

std::string column_text(sqlite3_stmt* s, int col) {
  const unsigned char* t = sqlite3_column_text(s, col);
  if (t == nullptr) return {};
  return {reinterpret_cast<const char*>(t), static_cast<std::size_t>(sqlite3_column_bytes(s, col))};
}

Status failure(const std::string& path, sqlite3* db, const std::string& doing) {
  const std::string says = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
  return Status(ErrorCode::kIo, "ledger '" + path + "': " + doing + ": " + says +
                                    "; pass the store.path of sluiced's policy (kind: sqlite)");
}

// How to open the ledger without leaving anything behind. While a sidecar
// has it open its write-ahead log (PATH-wal) exists and a read-only reader
// shares it. With no -wal there is no writer: a read-only open would still
// create -wal and -shm, owned by whoever runs sluice (root, say), which a
// sidecar running as another user could then not open. So then the main
// file alone, which holds every commit, is read as immutable.
std::string open_uri(const std::string& path) {
  std::string uri = "file:";
  for (const char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", static_cast<unsigned char>(c));
      uri += hex;
    } else {
      uri += c;
    }
  }
  struct stat st {};
  if (::stat((path + "-wal").c_str(), &st) != 0) uri += "?immutable=1";
  return uri;
}

}  // namespace

Result<std::vector<LedgerRow>> read_ledger(const std::string& path,
                                           std::optional<std::uint64_t> since_unix_ns,
                                           std::optional<std::uint64_t> until_unix_ns) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return Status(ErrorCode::kNotFound, "ledger '" + path + "': " + std::strerror(errno) +
                                            "; pass the store.path of sluiced's policy "
                                            "(default var/sluice.db)");
  }
  if (!S_ISREG(st.st_mode)) {
    return Status(ErrorCode::kInvalidArgument,
                  "ledger '" + path + "' is not a file; pass the store.path of sluiced's policy");
  }
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(open_uri(path).c_str(), &raw,
                                 SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr);
  const std::unique_ptr<sqlite3, CloseDb> db(raw);
  if (rc != SQLITE_OK) return failure(path, db.get(), "cannot open");
  sqlite3_busy_timeout(db.get(), kBusyTimeoutMs);

  sqlite3_stmt* version_raw = nullptr;
  if (sqlite3_prepare_v2(db.get(), "PRAGMA user_version", -1, &version_raw, nullptr) != SQLITE_OK) {
    return failure(path, db.get(), "cannot read");
  }
  const std::unique_ptr<sqlite3_stmt, FinalizeStatement> version(version_raw);
  if (sqlite3_step(version.get()) != SQLITE_ROW) return failure(path, db.get(), "cannot read");
  const std::int64_t schema = sqlite3_column_int64(version.get(), 0);
  if (schema != kLedgerSchemaVersion) {
    return Status(ErrorCode::kIncompatible,
                  "ledger '" + path + "' is not a sluice ledger of schema version " +
                      std::to_string(kLedgerSchemaVersion) + " (it has " + std::to_string(schema) +
                      "); pass the store.path of sluiced's policy, read by the matching sluice");
  }

  sqlite3_stmt* cells_raw = nullptr;
  if (sqlite3_prepare_v2(db.get(), kSelectCells, -1, &cells_raw, nullptr) != SQLITE_OK) {
    return failure(path, db.get(), "cannot read the cells");
  }
  const std::unique_ptr<sqlite3_stmt, FinalizeStatement> cells(cells_raw);
  std::vector<LedgerRow> rows;
  int step = SQLITE_ROW;
  while ((step = sqlite3_step(cells.get())) == SQLITE_ROW) {
    LedgerRow r;
    r.limit = column_text(cells.get(), 0);
    r.key = column_text(cells.get(), 1);
    r.window_start_unix = static_cast<std::uint64_t>(sqlite3_column_int64(cells.get(), 2));
    r.window_end_unix = static_cast<std::uint64_t>(sqlite3_column_int64(cells.get(), 3));
    r.global = sqlite3_column_int64(cells.get(), 4) == 2;
    r.used = sqlite3_column_int64(cells.get(), 5);
    r.hosts = static_cast<std::uint64_t>(sqlite3_column_int64(cells.get(), 6));
    // The window [start, end) overlaps [since, until].
    if (since_unix_ns && r.window_end_unix * kNsPerSecond <= *since_unix_ns) continue;
    if (until_unix_ns && r.window_start_unix * kNsPerSecond > *until_unix_ns) continue;
    rows.push_back(std::move(r));
  }
  if (step != SQLITE_DONE) return failure(path, db.get(), "cannot read the cells");
  return rows;
}

}  // namespace sluice::cli
