// SqliteStore: a push reads each cell's row and its hosts' rows, applies the
// arithmetic of store.h to them in C++ (apply_budget, share_rate below, which
// read like the comment in store.h), and writes back what changed, all in
// one BEGIN IMMEDIATE transaction: the write lock is taken before the first
// read, so no other sidecar's push interleaves with it.
#include "sqlite_store.h"

#include <sqlite3.h>
#include <time.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace sluice {
namespace {

constexpr std::int64_t kSchemaVersion = 1;
constexpr std::int64_t kPruneEveryMs = 60'000;
constexpr std::int64_t kKeepEndedSeconds = std::int64_t{7} * 86'400;

// The SQL below names kinds by number.
static_assert(static_cast<int>(CellKind::kLocalBudget) == 1);
static_assert(static_cast<int>(CellKind::kGlobalBudget) == 2);
static_assert(static_cast<int>(CellKind::kGlobalRate) == 3);

constexpr const char* kSchema = R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
CREATE TABLE cells (
  hash INTEGER PRIMARY KEY,
  limit_identity INTEGER NOT NULL,
  window_start INTEGER NOT NULL,
  window_end INTEGER NOT NULL,
  kind INTEGER NOT NULL,
  limit_name TEXT NOT NULL,
  label TEXT NOT NULL,
  budget INTEGER NOT NULL,
  used INTEGER NOT NULL,
  allotted INTEGER NOT NULL,
  rate INTEGER NOT NULL
);
CREATE INDEX cells_by_end ON cells (kind, window_end);
CREATE TABLE host_cells (
  hash INTEGER NOT NULL,
  host TEXT NOT NULL,
  used INTEGER NOT NULL,
  allotted INTEGER NOT NULL,
  exposed INTEGER NOT NULL,
  lease_until_ms INTEGER NOT NULL,
  session INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  demand INTEGER NOT NULL,
  PRIMARY KEY (hash, host)
) WITHOUT ROWID;
CREATE INDEX host_cells_by_host ON host_cells (host);
)sql";

// ---- the arithmetic of store.h, on rows in memory ----

struct CellRow {
  std::uint64_t budget = 0;
  std::int64_t used = 0;
  std::uint64_t allotted = 0;
  std::uint64_t rate = 0;
};

struct HostRow {
  enum class Change { kNone, kWrite, kDelete };
  std::string host;
  std::int64_t used = 0;
  std::uint64_t allotted = 0;
  std::uint64_t exposed = 0;
  std::int64_t lease_until_ms = 0;
  std::uint64_t session = 0;
  std::uint64_t seq = 0;
  std::uint64_t demand = 0;
  Change change = Change::kNone;
};

// now_ms + lease_ms, saturating: a huge lease never wraps into the past.
std::int64_t lease_end(std::int64_t now_ms, std::uint64_t lease_ms) {
  const std::uint64_t room =
      static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() - now_ms);
  return now_ms + static_cast<std::int64_t>(std::min(lease_ms, room));
}

CellState budget_state(const CellRow& cell, const HostRow& self, bool duplicate) {
  CellState s;
  s.duplicate = duplicate;
  s.host_used = self.used;
  s.host_allotted = self.allotted;
  s.host_exposed = self.exposed;
  s.global_used = cell.used;
  s.global_allotted = cell.allotted;
  return s;
}

// Budgets, steps 1-7 of store.h. `self` is the pushing host's row in `hosts`.
CellState apply_budget(const Push& push, const CellUpdate& u, std::int64_t now_ms, CellRow& cell,
                       std::vector<HostRow>& hosts, HostRow& self) {
  if (self.session == push.session && self.seq >= push.seq) {
    return budget_state(cell, self, /*duplicate=*/true);
  }
  self.session = push.session;
  self.seq = push.seq;
  self.used += u.used_delta;
  cell.used += u.used_delta;
  self.change = HostRow::Change::kWrite;
  if (u.kind != CellKind::kGlobalBudget) return budget_state(cell, self, false);

  cell.budget = u.budget;
  for (HostRow& k : hosts) {
    if (&k == &self || k.lease_until_ms >= now_ms || k.allotted == k.exposed) continue;
    cell.allotted -= k.allotted - k.exposed;  // exposed units may be spent: never taken back
    k.allotted = k.exposed;
    k.change = HostRow::Change::kWrite;
  }
  if (u.want_allotted > self.allotted) {
    const std::uint64_t room = cell.budget > cell.allotted ? cell.budget - cell.allotted : 0;
    const std::uint64_t grant = std::min(u.want_allotted - self.allotted, room);
    self.allotted += grant;
    cell.allotted += grant;
  } else if (u.want_allotted < self.allotted) {
    const std::uint64_t keep = std::max(u.want_allotted, self.exposed);
    cell.allotted -= self.allotted - keep;
    self.allotted = keep;
  }
  self.exposed = std::max(self.exposed, std::min(u.want_exposed, self.allotted));
  self.lease_until_ms = lease_end(now_ms, push.lease_ms);
  return budget_state(cell, self, false);
}

// Global rates, steps 1-3 of store.h. Hosts whose lease ran out are marked
// for deletion; `self` has just renewed its lease, so n >= 1.
CellState share_rate(const Push& push, const CellUpdate& u, std::int64_t now_ms, CellRow& cell,
                     std::vector<HostRow>& hosts, HostRow& self) {
  self.demand = u.demand;
  self.lease_until_ms = lease_end(now_ms, push.lease_ms);
  self.change = HostRow::Change::kWrite;
  cell.rate = u.rate;

  std::uint64_t n = 0;
  unsigned __int128 demand_sum = 0;
  for (HostRow& k : hosts) {
    if (&k != &self && k.lease_until_ms < now_ms) {
      k.change = HostRow::Change::kDelete;
      continue;
    }
    ++n;
    demand_sum += k.demand;
  }
  const std::uint64_t floor = cell.rate / (4 * n);
  const std::uint64_t pool = cell.rate - n * floor;
  // pool * demand may need 128 bits; the quotient is at most pool.
  const std::uint64_t above_floor =
      demand_sum == 0 ? pool / n
                      : static_cast<std::uint64_t>(static_cast<unsigned __int128>(pool) *
                                                   self.demand / demand_sum);
  CellState s;
  s.host_share = floor + above_floor;
  s.hosts = n;
  return s;
}

// ---- SQLite plumbing ----

std::int64_t bits(std::uint64_t v) { return static_cast<std::int64_t>(v); }
std::uint64_t unbits(std::int64_t v) { return static_cast<std::uint64_t>(v); }

std::int64_t realtime_ms() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

std::string lowercase_first(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

struct CloseDb {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbHandle = std::unique_ptr<sqlite3, CloseDb>;

// A statement compiled once and reused. Each use binds parameters and steps;
// the statement is reset when the use ends, so no use leaves a read open.
class Statement {
 public:
  class Use {
   public:
    explicit Use(sqlite3_stmt* stmt) : stmt_(stmt) {}
    ~Use() {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;

    Use& bind(int i, std::int64_t v) {
      keep(sqlite3_bind_int64(stmt_, i, v));
      return *this;
    }
    Use& bind(int i, const std::string& v) {
      keep(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
      return *this;
    }
    // SQLITE_ROW, SQLITE_DONE or an error code.
    int step() { return bind_rc_ != SQLITE_OK ? bind_rc_ : sqlite3_step(stmt_); }
    std::int64_t i64(int col) const { return sqlite3_column_int64(stmt_, col); }
    std::uint64_t u64(int col) const { return unbits(i64(col)); }
    std::string text(int col) const {
      const unsigned char* t = sqlite3_column_text(stmt_, col);
      if (t == nullptr) return {};
      return {reinterpret_cast<const char*>(t),
              static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))};
    }

   private:
    void keep(int rc) {
      if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
    }
    sqlite3_stmt* stmt_;
    int bind_rc_ = SQLITE_OK;
  };

  Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  // SQLITE_OK or the error code; the statement lives as long as this object.
  int prepare(sqlite3* db, const char* sql) {
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  }
  Use use() { return Use(stmt_); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteStore final : public Store {
 public:
  static Result<std::unique_ptr<Store>> open(const StoreSpec& spec);

  std::string where() const override { return "sqlite:" + path_; }
  Result<std::uint64_t> hash_seed(std::uint64_t proposal) override;
  Result<std::vector<CellState>> push(const Push& push) override;
  Result<std::vector<RestoredCell>> restore(const std::string& host,
                                            std::uint64_t now_unix) override;

 private:
  SqliteStore(const StoreSpec& spec, DbHandle db)
      : path_(spec.path), timeout_ms_(spec.timeout_ms), db_(std::move(db)) {}

  Status configure();
  Status create_schema();
  Status prepare_statements();
  Result<std::vector<CellState>> apply_all(const Push& push, std::int64_t now_ms, bool prune_first);
  Result<CellState> apply(const Push& push, const CellUpdate& u, std::int64_t now_ms);
  Status load(const CellUpdate& u, const std::string& host, CellRow& cell,
              std::vector<HostRow>& hosts, std::size_t& self);
  Status save(const CellUpdate& u, const CellRow& cell, const std::vector<HostRow>& hosts);
  Status prune(std::int64_t now_ms);
  Status exec(const char* sql, const char* doing);
  void rollback();
  // One line for SQLite error `rc` while `doing`: what is wrong and how to fix it.
  Status failure(const char* doing, int rc) const;
  std::string prefix() const { return "store.path '" + path_ + "': "; }

  std::string path_;
  std::uint64_t timeout_ms_;
  std::int64_t last_prune_ms_ = 0;
  DbHandle db_;  // outlives the statements below, which are destroyed first
  Statement begin_, commit_, rollback_;
  Statement select_cell_, select_hosts_, upsert_cell_, upsert_host_, delete_host_;
  Statement prune_ended_hosts_, prune_ended_cells_, prune_idle_rate_hosts_, prune_empty_rates_;
  Statement restore_, insert_seed_, select_seed_;
};

Status SqliteStore::failure(const char* doing, int rc) const {
  const int sys = db_ ? sqlite3_system_errno(db_.get()) : 0;
  const std::string what = prefix() + doing + ": ";
  const std::string sqlite_says = db_ ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(rc);
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status(ErrorCode::kIo,
                    what + "the database stayed locked longer than store.timeout_ms (" +
                        std::to_string(timeout_ms_) +
                        " ms); raise store.timeout_ms or stop the process holding the file");
    case SQLITE_NOTADB:
      return Status(ErrorCode::kIncompatible,
                    what +
                        "not an SQLite database; point store.path at a new file or at a "
                        "sluice database");
    case SQLITE_CORRUPT:
      return Status(ErrorCode::kIncompatible,
                    what +
                        "the database is corrupt; restore it from a backup or point "
                        "store.path at a new file");
    case SQLITE_FULL:
      return Status(ErrorCode::kIo,
                    what + "the disk is full; free space on the disk holding store.path");
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return Status(ErrorCode::kPermissionDenied,
                    what + "permission denied; point store.path at a writable file");
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR: {
      const bool denied = sys == EACCES || sys == EPERM || sys == EROFS;
      const bool io = (rc & 0xff) == SQLITE_IOERR && !denied;
      return Status(denied ? ErrorCode::kPermissionDenied : ErrorCode::kIo,
                    what + (sys != 0 ? lowercase_first(std::strerror(sys)) : sqlite_says) +
                        (io ? "; check the disk holding store.path"
                            : "; point store.path at a file this user can create and write"));
    }
    default:
      return Status(ErrorCode::kIo, what + sqlite_says + "; check store.path");
  }
}

Status SqliteStore::exec(const char* sql, const char* doing) {
  const int rc = sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr);
  return rc == SQLITE_OK ? Status::Ok() : failure(doing, rc);
}

void SqliteStore::rollback() {
  if (sqlite3_get_autocommit(db_.get()) == 0) rollback_.use().step();
}

// synchronous=FULL. In WAL mode NORMAL is durable against a crash of any
// process, but a power loss can lose every commit since the last checkpoint
// (the WAL is synced only then, every ~1000 pages: tens of seconds of usage
// forgotten, as much overspend). FULL syncs the WAL at each commit, so a
// power loss loses only the usage not yet pushed. It costs one fdatasync per
// push, off the hot path, once per sync interval per sidecar. Measured (ext4
// on a virtio disk): a push of 1 / 100 / 1000 cells takes 0.04 / 0.4 / 4.3 ms
// with NORMAL and 0.3 / 0.8 / 8.2 ms with FULL.
Status SqliteStore::configure() {
  sqlite3_extended_result_codes(db_.get(), 1);
  sqlite3_busy_timeout(db_.get(), static_cast<int>(std::min<std::uint64_t>(timeout_ms_, INT_MAX)));
  if (sqlite3_db_readonly(db_.get(), "main") == 1) return failure("cannot open", SQLITE_READONLY);
  if (Status s = exec("PRAGMA journal_mode = WAL", "cannot open"); !s.ok()) return s;
  if (Status s = exec("PRAGMA synchronous = FULL", "cannot open"); !s.ok()) return s;
  return Status::Ok();
}

// Creates the schema in a file that has none, under the write lock so that
// sidecars opening a new file together create it once.
Status SqliteStore::create_schema() {
  constexpr const char* kDoing = "cannot create the schema";
  if (Status s = exec("BEGIN IMMEDIATE", kDoing); !s.ok()) return s;
  auto read_int = [&](const char* sql, std::int64_t& out) {
    Statement q;
    int rc = q.prepare(db_.get(), sql);
    if (rc != SQLITE_OK) return rc;
    Statement::Use use = q.use();
    rc = use.step();
    if (rc != SQLITE_ROW) return rc;
    out = use.i64(0);
    return SQLITE_OK;
  };
  std::int64_t version = 0;
  std::int64_t tables = 0;
  int rc = read_int("PRAGMA user_version", version);
  if (rc == SQLITE_OK && version == 0) {
    rc = read_int("SELECT count(*) FROM sqlite_master WHERE type = 'table'", tables);
  }
  Status status;
  if (rc != SQLITE_OK) {
    status = failure(kDoing, rc);
  } else if (version == 0 && tables > 0) {
    status = Status(ErrorCode::kIncompatible,
                    prefix() +
                        "not a sluice database (it holds other tables); point store.path "
                        "at a new file");
  } else if (version == 0) {
    status = exec(kSchema, kDoing);
    if (status.ok()) {
      status = exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str(), kDoing);
    }
    if (status.ok()) status = exec("COMMIT", kDoing);
  } else if (version != kSchemaVersion) {
    status = Status(ErrorCode::kIncompatible,
                    prefix() + "schema version " + std::to_string(version) +
                        ", this sluice reads version " + std::to_string(kSchemaVersion) +
                        "; run the matching sluice or point store.path at a new file");
  } else {
    status = exec("COMMIT", kDoing);
  }
  if (sqlite3_get_autocommit(db_.get()) == 0) {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
  return status;
}

Status SqliteStore::prepare_statements() {
  const std::pair<Statement*, const char*> all[] = {
      {&begin_, "BEGIN IMMEDIATE"},
      {&commit_, "COMMIT"},
      {&rollback_, "ROLLBACK"},
      {&select_cell_, "SELECT budget, used, allotted, rate FROM cells WHERE hash = ?1"},
      {&select_hosts_,
       "SELECT host, used, allotted, exposed, lease_until_ms, session, seq, demand"
       " FROM host_cells WHERE hash = ?1"},
      {&upsert_cell_,
       "INSERT INTO cells (hash, limit_identity, window_start, window_end, kind, limit_name,"
       " label, budget, used, allotted, rate) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
       " ON CONFLICT (hash) DO UPDATE SET budget = excluded.budget, used = excluded.used,"
       " allotted = excluded.allotted, rate = excluded.rate"},
      {&upsert_host_,
       "INSERT INTO host_cells (hash, host, used, allotted, exposed, lease_until_ms, session, seq,"
       " demand) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
       " ON CONFLICT (hash, host) DO UPDATE SET used = excluded.used,"
       " allotted = excluded.allotted, exposed = excluded.exposed,"
       " lease_until_ms = excluded.lease_until_ms, session = excluded.session,"
       " seq = excluded.seq, demand = excluded.demand"},
      {&delete_host_, "DELETE FROM host_cells WHERE hash = ?1 AND host = ?2"},
      {&prune_ended_hosts_,
       "DELETE FROM host_cells WHERE hash IN"
       " (SELECT hash FROM cells WHERE kind IN (1, 2) AND window_end < ?1)"},
      {&prune_ended_cells_, "DELETE FROM cells WHERE kind IN (1, 2) AND window_end < ?1"},
      {&prune_idle_rate_hosts_,
       "DELETE FROM host_cells WHERE lease_until_ms < ?1 AND hash IN"
       " (SELECT hash FROM cells WHERE kind = 3)"},
      {&prune_empty_rates_,
       "DELETE FROM cells WHERE kind = 3 AND NOT EXISTS"
       " (SELECT 1 FROM host_cells AS h WHERE h.hash = cells.hash)"},
      {&restore_,
       "SELECT c.hash, c.limit_identity, c.window_start, c.window_end, c.limit_name, c.label,"
       " c.kind, h.used, h.exposed FROM host_cells AS h JOIN cells AS c ON c.hash = h.hash"
       " WHERE h.host = ?1 AND c.kind IN (1, 2) AND c.window_end > ?2 ORDER BY c.hash"},
      {&insert_seed_,
       "INSERT INTO meta (key, value) VALUES ('hash_seed', ?1) ON CONFLICT (key) DO NOTHING"},
      {&select_seed_, "SELECT value FROM meta WHERE key = 'hash_seed'"},
  };
  for (const auto& [statement, sql] : all) {
    if (const int rc = statement->prepare(db_.get(), sql); rc != SQLITE_OK) {
      return failure("cannot prepare statements", rc);
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<Store>> SqliteStore::open(const StoreSpec& spec) {
  if (spec.path.empty()) {
    return Status(ErrorCode::kInvalidArgument,
                  "store.path is empty; set it to a database file such as var/sluice.db");
  }
  const std::filesystem::path parent = std::filesystem::path(spec.path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      const ErrorCode code =
          ec == std::errc::permission_denied ? ErrorCode::kPermissionDenied : ErrorCode::kIo;
      return Status(code, "store.path '" + spec.path + "': cannot create directory '" +
                              parent.string() + "': " + lowercase_first(ec.message()) +
                              "; point store.path at a writable directory");
    }
  }
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(spec.path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  std::unique_ptr<SqliteStore> store(new SqliteStore(spec, DbHandle(raw)));
  if (rc != SQLITE_OK) return store->failure("cannot open", rc);
  if (Status s = store->configure(); !s.ok()) return s;
  if (Status s = store->create_schema(); !s.ok()) return s;
  if (Status s = store->prepare_statements(); !s.ok()) return s;
  return std::unique_ptr<Store>(std::move(store));
}

Result<std::uint64_t> SqliteStore::hash_seed(std::uint64_t proposal) {
  constexpr const char* kDoing = "cannot read the hash seed";
  {
    Statement::Use insert = insert_seed_.use();
    if (const int rc = insert.bind(1, bits(proposal)).step(); rc != SQLITE_DONE) {
      return failure(kDoing, rc);
    }
  }
  Statement::Use select = select_seed_.use();
  const int rc = select.step();
  if (rc != SQLITE_ROW) return failure(kDoing, rc);
  return select.u64(0);
}

Result<std::vector<CellState>> SqliteStore::push(const Push& push) {
  if (push.host.empty()) {
    return Status(ErrorCode::kInvalidArgument, "store push has no host; set store.host_id");
  }
  const std::int64_t now_ms = realtime_ms();
  if (const int rc = begin_.use().step(); rc != SQLITE_DONE) return failure("cannot push", rc);
  const bool prune_due = now_ms - last_prune_ms_ >= kPruneEveryMs;
  Result<std::vector<CellState>> states = apply_all(push, now_ms, prune_due);
  if (states.ok()) {
    const int rc = commit_.use().step();
    if (rc == SQLITE_DONE) {
      if (prune_due) last_prune_ms_ = now_ms;
      return states;
    }
    states = failure("cannot push", rc);
  }
  rollback();
  return states;
}

Result<std::vector<CellState>> SqliteStore::apply_all(const Push& push, std::int64_t now_ms,
                                                      bool prune_first) {
  if (prune_first) {
    if (Status s = prune(now_ms); !s.ok()) return s;
  }
  std::vector<CellState> states;
  states.reserve(push.cells.size());
  for (const CellUpdate& u : push.cells) {
    Result<CellState> state = apply(push, u, now_ms);
    if (!state.ok()) return state.status();
    states.push_back(state.value());
  }
  return states;
}

Result<CellState> SqliteStore::apply(const Push& push, const CellUpdate& u, std::int64_t now_ms) {
  if (u.kind != CellKind::kLocalBudget && u.kind != CellKind::kGlobalBudget &&
      u.kind != CellKind::kGlobalRate) {
    return Status(ErrorCode::kInvalidArgument,
                  "store push: cell '" + u.cell.limit_name + "' has unknown kind " +
                      std::to_string(static_cast<int>(u.kind)) +
                      "; push local budgets, global budgets or global rates");
  }
  CellRow cell;
  std::vector<HostRow> hosts;
  std::size_t self = 0;
  if (Status s = load(u, push.host, cell, hosts, self); !s.ok()) return s;
  const CellState state = u.kind == CellKind::kGlobalRate
                              ? share_rate(push, u, now_ms, cell, hosts, hosts[self])
                              : apply_budget(push, u, now_ms, cell, hosts, hosts[self]);
  if (!state.duplicate) {
    if (Status s = save(u, cell, hosts); !s.ok()) return s;
  }
  return state;
}

// The cell's row (zeros if new) and its hosts' rows, `hosts[self]` being
// `host`'s (added if new).
Status SqliteStore::load(const CellUpdate& u, const std::string& host, CellRow& cell,
                         std::vector<HostRow>& hosts, std::size_t& self) {
  constexpr const char* kDoing = "cannot push";
  {
    Statement::Use q = select_cell_.use();
    const int rc = q.bind(1, bits(u.cell.hash)).step();
    if (rc == SQLITE_ROW) {
      cell = CellRow{q.u64(0), q.i64(1), q.u64(2), q.u64(3)};
    } else if (rc != SQLITE_DONE) {
      return failure(kDoing, rc);
    }
  }
  Statement::Use q = select_hosts_.use();
  q.bind(1, bits(u.cell.hash));
  int rc = SQLITE_ROW;
  while ((rc = q.step()) == SQLITE_ROW) {
    hosts.push_back(HostRow{q.text(0), q.i64(1), q.u64(2), q.u64(3), q.i64(4), q.u64(5), q.u64(6),
                            q.u64(7), HostRow::Change::kNone});
  }
  if (rc != SQLITE_DONE) return failure(kDoing, rc);
  const auto it =
      std::find_if(hosts.begin(), hosts.end(), [&](const HostRow& h) { return h.host == host; });
  self = static_cast<std::size_t>(it - hosts.begin());
  if (it == hosts.end()) hosts.push_back(HostRow{.host = host});
  return Status::Ok();
}

Status SqliteStore::save(const CellUpdate& u, const CellRow& cell,
                         const std::vector<HostRow>& hosts) {
  constexpr const char* kDoing = "cannot push";
  const std::int64_t hash = bits(u.cell.hash);
  {
    Statement::Use q = upsert_cell_.use();
    q.bind(1, hash)
        .bind(2, bits(u.cell.limit_identity))
        .bind(3, bits(u.cell.window_start))
        .bind(4, bits(u.cell.window_end))
        .bind(5, static_cast<std::int64_t>(u.kind))
        .bind(6, u.cell.limit_name)
        .bind(7, u.cell.label)
        .bind(8, bits(cell.budget))
        .bind(9, cell.used)
        .bind(10, bits(cell.allotted))
        .bind(11, bits(cell.rate));
    if (const int rc = q.step(); rc != SQLITE_DONE) return failure(kDoing, rc);
  }
  for (const HostRow& h : hosts) {
    int rc = SQLITE_DONE;
    if (h.change == HostRow::Change::kWrite) {
      Statement::Use q = upsert_host_.use();
      rc = q.bind(1, hash)
               .bind(2, h.host)
               .bind(3, h.used)
               .bind(4, bits(h.allotted))
               .bind(5, bits(h.exposed))
               .bind(6, h.lease_until_ms)
               .bind(7, bits(h.session))
               .bind(8, bits(h.seq))
               .bind(9, bits(h.demand))
               .step();
    } else if (h.change == HostRow::Change::kDelete) {
      rc = delete_host_.use().bind(1, hash).bind(2, h.host).step();
    }
    if (rc != SQLITE_DONE) return failure(kDoing, rc);
  }
  return Status::Ok();
}

// Budget cells whose window ended, and rate hosts whose lease ran out, more
// than kKeepEndedSeconds ago; then rate cells left with no host.
Status SqliteStore::prune(std::int64_t now_ms) {
  const std::int64_t cutoff_unix = now_ms / 1000 - kKeepEndedSeconds;
  const std::int64_t cutoff_ms = now_ms - kKeepEndedSeconds * 1000;
  const std::pair<Statement*, std::int64_t> steps[] = {
      {&prune_ended_hosts_, cutoff_unix},
      {&prune_ended_cells_, cutoff_unix},
      {&prune_idle_rate_hosts_, cutoff_ms},
  };
  for (const auto& [statement, cutoff] : steps) {
    if (const int rc = statement->use().bind(1, cutoff).step(); rc != SQLITE_DONE) {
      return failure("cannot delete old cells", rc);
    }
  }
  if (const int rc = prune_empty_rates_.use().step(); rc != SQLITE_DONE) {
    return failure("cannot delete old cells", rc);
  }
  return Status::Ok();
}

Result<std::vector<RestoredCell>> SqliteStore::restore(const std::string& host,
                                                       std::uint64_t now_unix) {
  std::vector<RestoredCell> cells;
  Statement::Use q = restore_.use();
  q.bind(1, host).bind(2, bits(now_unix));
  int rc = SQLITE_ROW;
  while ((rc = q.step()) == SQLITE_ROW) {
    RestoredCell r;
    r.cell = StoreCell{q.u64(0), q.u64(1), q.u64(2), q.u64(3), q.text(4), q.text(5)};
    r.kind = static_cast<CellKind>(q.i64(6));
    r.host_used = q.i64(7);
    r.host_exposed = q.u64(8);
    cells.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return failure("cannot restore", rc);
  return cells;
}

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const StoreSpec& spec) {
  return SqliteStore::open(spec);
}

}  // namespace sluice
