#include "store_sync.h"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <random>

#include "clock.h"
#include "key_table.h"
#include "lease_sizing.h"
#include "policy_snapshot.h"
#include "segment_layout.h"

namespace sluice {

using shm::Word;

// What the sync remembers about one key slot.
struct StoreSync::Tracked {
  Word hash = 0;
  // Budgets: the value the pushes built so far add up to (relative to what
  // the store had for this host when the session began).
  Word queued = 0;
  Word last_value = 0;  // budgets: units; rates: arrival time
  Word last_now = 0;    // rates: monotonic ns of last_value
  // Global budgets: the ask, and the store's last answer.
  Word headroom = 0;
  Word renewed_ns = 0;  // monotonic: the store last answered for this cell
  Word allotted = 0;
  Word exposed = 0;
  Word global_left = 0;
  Word limit = 0;       // in the policy of `generation`
  Word generation = 0;  // 0: not a global budget cell of a current window
};

namespace {

std::uint64_t thread_cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t new_session() {
  std::random_device rd;
  const std::uint64_t s = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return s == 0 ? 1 : s;
}

template <std::size_t N>
std::string text_of(const Word (&words)[N]) {
  char buf[N * sizeof(Word)];
  const std::size_t n = shm::load_text(words, buf);
  return std::string(buf, n);
}

// The policy the clients decide with, copied out of the segment.
bool live_policy(const SegmentMap& seg, shm::CompiledPolicy* out, Word* generation) {
  for (int attempt = 0; attempt < 64; ++attempt) {
    *generation = shm::load_acquire(seg.header().policy_generation);
    const SnapshotResult r = snapshot_policy(seg, *generation, *out);
    if (r == SnapshotResult::kOk) return true;
    if (r != SnapshotResult::kBusy) return false;
  }
  return false;
}

// The window a budget key belongs to ends at the next window start.
Word window_end(const shm::CompiledLimit& l, Word start) {
  const Word n = std::min<Word>(l.window_count, shm::kWindowTable);
  for (Word w = 0; w + 1 < n; ++w) {
    if (l.window_start[w] == start) return l.window_start[w + 1];
  }
  return start + l.period_seconds;
}

Word current_window(const shm::CompiledLimit& l, Word now_unix) {
  const Word n = std::min<Word>(l.window_count, shm::kWindowTable);
  Word current = 0;
  for (Word w = 0; w < n && l.window_start[w] <= now_unix; ++w) current = l.window_start[w];
  return current;
}

}  // namespace

StoreSync::StoreSync(const SegmentMap& seg, const StoreSpec& spec, std::unique_ptr<Store> store,
                     LogFn log)
    : seg_(seg), spec_(spec), store_(std::move(store)), log_(std::move(log)) {}

Result<std::unique_ptr<StoreSync>> StoreSync::open(const SegmentMap& seg, const StoreSpec& spec,
                                                   std::unique_ptr<Store> store, LogFn log,
                                                   bool fresh) {
  std::unique_ptr<StoreSync> s(new StoreSync(seg, spec, std::move(store), std::move(log)));
  s->session_ = new_session();
  s->policy_ = std::make_unique<shm::CompiledPolicy>();
  s->fresh_ = fresh;
  shm::SegmentHeader& h = seg.header();
  shm::store_relaxed(h.store_kind, spec.kind == "redis" ? shm::kStoreRedis : shm::kStoreSqlite);
  const std::string where = s->store_->where();
  shm::store_text(h.store_where, where.data(), where.size());
  shm::store_relaxed(h.store_sync_interval_ns, spec.sync_interval_ms * 1'000'000ull);
  if (Status r = s->restore(fresh); !r.ok()) {
    s->log_("store " + where + " unreachable at start (" + r.message() +
            "); global limits wait for it, usage is pushed once it answers");
  }
  return s;
}

StoreSync::~StoreSync() {
  try {
    stop();
  } catch (...) {  // out of memory building the last push: its lease returns the allotment
  }
}

// What the store has of this host's current windows. On a fresh segment it
// is written into the key table first: a local budget starts at what was
// used, a global budget at what was exposed (the old segment's clients
// could have spent all of it; the difference is charged at the first push).
Status StoreSync::restore(bool fresh) {
  Result<std::vector<RestoredCell>> cells =
      store_->restore(spec_.host_id, static_cast<std::uint64_t>(realtime_ns() / 1'000'000'000ull));
  if (!cells.ok()) return cells.status();
  std::size_t full = 0;
  for (const RestoredCell& r : cells.value()) {
    pushed_before_[r.cell.hash] = r.host_used;
    if (!fresh) continue;
    const detail::Text label{r.cell.label.data(), r.cell.label.size()};
    Word index = 0;
    shm::KeySlot* k = detail::find_or_insert(seg_, r.cell.hash, &index, r.cell.limit_identity,
                                             r.cell.window_start, &label, 1);
    if (k == nullptr) {
      ++full;
      continue;
    }
    const bool global = r.kind == CellKind::kGlobalBudget;
    const Word start = global ? std::max<Word>(r.host_exposed, r.host_used)
                              : static_cast<Word>(std::max<std::int64_t>(r.host_used, 0));
    // Added, not stored: when the store did not answer at start, clients
    // have been deciding on this segment since (nothing is pushed meanwhile).
    shm::fetch_add(k->value, start);
    if (global) shm::fetch_add(k->ceiling, start);
  }
  if (full != 0) {
    log_("key table full: " + std::to_string(full) +
         " cells of the store's current windows not restored; raise segment.max_keys");
  }
  restored_ = true;
  return Status::Ok();
}

StoreSync::Outgoing StoreSync::build_push(bool releasing) {
  Outgoing out;
  Push& push = out.push;
  push.host = spec_.host_id;
  push.session = session_;
  push.seq = next_seq_++;
  push.lease_ms = spec_.lease_ms;
  if (!live_policy(seg_, policy_.get(), &out.generation)) return out;
  const shm::CompiledPolicy& p = *policy_;
  const Word now_unix = realtime_ns() / 1'000'000'000ull;
  const Word now = monotonic_ns();
  const Word hosts = std::max<Word>(shm::load_relaxed(seg_.header().store_hosts), 1);

  const Word cap = seg_.key_capacity();
  for (Word i = 0; i < cap; ++i) {
    shm::KeySlot& k = seg_.keys()[i];
    const Word hash = shm::load_acquire(k.hash);
    if (hash == 0) continue;
    const Word identity = shm::load_acquire(k.identity);
    if (identity == 0) continue;  // still being labelled
    int li = -1;
    for (Word l = 0; l < p.limit_count; ++l) {
      if (p.limits[l].identity == identity) li = static_cast<int>(l);
    }
    if (li < 0) continue;  // a limit the live policy no longer has
    const shm::CompiledLimit& L = p.limits[li];
    const bool global = L.flags & shm::kFlagGlobal;
    if (L.kind == shm::kKindRate && !global) continue;
    if (L.kind != shm::kKindRate && L.kind != shm::kKindBudget) continue;

    Tracked& t = cells_[i];
    const Word value = shm::load_relaxed(k.value);
    if (t.hash != hash) {
      t = Tracked{};
      t.hash = hash;
      const auto before = pushed_before_.find(hash);
      t.queued = before == pushed_before_.end() ? 0 : static_cast<Word>(before->second);
      t.last_value = L.kind == shm::kKindRate ? value : t.queued;
      t.last_now = now;
    }
    CellUpdate u;
    u.cell.hash = hash;
    u.cell.limit_identity = identity;
    if (L.kind == shm::kKindRate) {
      const Word own = shm::load_relaxed(k.host_emission_ns);
      const Word emission = own != 0 ? own : L.emission_ns * hosts;
      const Word capacity = own != 0 ? shm::load_relaxed(k.host_capacity_ns) : L.capacity_ns;
      u.kind = CellKind::kGlobalRate;
      u.rate = L.amount;
      u.demand = rate_demand(t.last_value, value, t.last_now, now, emission, capacity,
                             L.period_seconds * 1'000'000'000ull);
      t.last_value = value;
      t.last_now = now;
    } else {
      const Word start = shm::load_relaxed(k.window_start);
      const bool current = start == current_window(L, now_unix);
      u.cell.window_start = start;
      u.cell.window_end = window_end(L, start);
      u.used_delta = static_cast<std::int64_t>(value - t.queued);
      u.kind = global ? CellKind::kGlobalBudget : CellKind::kLocalBudget;
      u.budget = L.budget;
      t.generation = global && current ? out.generation : 0;
      t.limit = static_cast<Word>(li);
      // A cell goes when it has usage to push. A global cell of the current
      // window also goes when it wants more exposed than its clients have,
      // or when its lease is a third of the way to running out; an idle one
      // costs nothing in between.
      bool send = u.used_delta != 0;
      if (global && current && !releasing) {
        const Word spent = value > t.last_value ? value - t.last_value : 0;
        const BudgetAsk ask = size_budget_ask(value, spent, t.headroom, L.budget);
        u.want_exposed = ask.want_exposed;
        u.want_allotted = ask.want_allotted;
        send = send || ask.want_exposed > shm::load_relaxed(k.ceiling) ||
               now - t.renewed_ns >= spec_.lease_ms * 1'000'000ull / 3;
        if (send) t.headroom = ask.headroom;
      }
      send = send || (global && current && releasing);
      if (!send) continue;
      t.queued = value;
      t.last_value = value;
    }
    u.cell.limit_name = text_of(L.name);
    u.cell.label = text_of(k.label);
    push.cells.push_back(std::move(u));
    out.slots.push_back(
        {i, hash, static_cast<Word>(li), L.period_seconds * 1'000'000'000ull, L.burst});
  }
  return out;
}

void StoreSync::apply(const Outgoing& out, const std::vector<CellState>& states) {
  const Push& push = out.push;
  shm::SegmentHeader& h = seg_.header();
  Word hosts = 0;
  const Word now = monotonic_ns();
  const std::size_t n = std::min({push.cells.size(), states.size(), out.slots.size()});
  for (std::size_t c = 0; c < n; ++c) {
    const CellUpdate& u = push.cells[c];
    const CellState& s = states[c];
    const SlotRef& ref = out.slots[c];
    shm::KeySlot& k = seg_.keys()[ref.index];
    if (shm::load_relaxed(k.hash) != ref.hash) continue;
    if (u.kind == CellKind::kGlobalBudget) {
      if (s.host_exposed > shm::load_relaxed(k.ceiling)) {
        shm::store_relaxed(k.ceiling, s.host_exposed);
      }
      Tracked& t = cells_[ref.index];
      t.renewed_ns = now;
      t.allotted = s.host_allotted;
      t.exposed = s.host_exposed;
      const Word g = s.global_used < 0 ? 0 : static_cast<Word>(s.global_used);
      t.global_left = u.budget > g ? u.budget - g : 0;
    } else if (u.kind == CellKind::kGlobalRate) {
      const ShareTerms terms = share_terms(s.host_share, ref.period_ns, u.rate, ref.burst);
      shm::store_relaxed(k.host_emission_ns, terms.emission_ns);
      shm::store_relaxed(k.host_capacity_ns, terms.capacity_ns);
      hosts = std::max<Word>(hosts, s.hosts);
    }
  }
  if (hosts != 0) shm::store_relaxed(h.store_hosts, hosts);
  publish_limits(out.generation);
  shm::store_relaxed(h.store_cells, n);
}

// Per global budget limit, the sums `sluice status` shows, over the cells of
// current windows, pushed this time or not.
void StoreSync::publish_limits(std::uint64_t generation) {
  if (generation == 0) return;
  shm::SegmentHeader& h = seg_.header();
  Word allotted[shm::kMaxLimits] = {}, exposed[shm::kMaxLimits] = {}, used[shm::kMaxLimits] = {},
       left[shm::kMaxLimits] = {};
  for (const auto& [index, t] : cells_) {
    if (t.generation != generation || t.limit >= shm::kMaxLimits) continue;
    const shm::KeySlot& k = seg_.keys()[index];
    if (shm::load_relaxed(k.hash) != t.hash) continue;
    allotted[t.limit] += t.allotted;
    exposed[t.limit] += t.exposed;
    used[t.limit] += shm::load_relaxed(k.value);
    left[t.limit] += t.global_left;
  }
  shm::store_relaxed(h.store_limit_generation, 0);  // readers: figures are moving
  for (int l = 0; l < shm::kMaxLimits; ++l) {
    shm::store_relaxed(h.store_allotted[l], allotted[l]);
    shm::store_relaxed(h.store_exposed[l], exposed[l]);
    shm::store_relaxed(h.store_host_used[l], used[l]);
    shm::store_relaxed(h.store_global_left[l], left[l]);
  }
  shm::store_release(h.store_limit_generation, generation);
}

void StoreSync::publish_status(const Status& result, std::uint64_t cpu_ns) {
  shm::SegmentHeader& h = seg_.header();
  const Word wall = realtime_ns();
  shm::store_relaxed(h.store_sync_cpu_ns, cpu_ns);
  shm::store_relaxed(h.store_pending, pending_ ? 1 : 0);
  if (result.ok()) {
    const Word grace = 2 * spec_.sync_interval_ms + spec_.timeout_ms;
    shm::store_relaxed(h.store_up_until_ns, monotonic_ns() + grace * 1'000'000ull);
    shm::store_relaxed(h.store_last_sync_unix_ns, wall);
    shm::store_relaxed(h.store_state, shm::kStoreUp);
    shm::fetch_add_relaxed(h.store_syncs, 1);
    if (!was_up_) log_("store " + store_->where() + " answers again; sync resumed");
    was_up_ = true;
    return;
  }
  shm::store_relaxed(h.store_last_failure_unix_ns, wall);
  shm::store_relaxed(h.store_state, shm::kStoreDown);
  shm::fetch_add_relaxed(h.store_failures, 1);
  const std::string& m = result.message();
  shm::store_text(h.store_last_error, m.data(), m.size());
  if (was_up_) log_("store sync failed: " + m + "; retrying every interval");
  was_up_ = false;
}

Status StoreSync::send() {
  Result<std::vector<CellState>> states = store_->push(pending_->push);
  if (!states.ok()) return states.status();
  apply(*pending_, states.value());
  pending_.reset();
  return Status::Ok();
}

Status StoreSync::sync(bool releasing) {
  const std::uint64_t cpu0 = thread_cpu_ns();
  Status result = restored_ ? Status::Ok() : restore(fresh_);
  // A push that failed goes again as it was, then one with what accrued since.
  if (result.ok() && pending_) result = send();
  if (result.ok()) {
    pending_ = build_push(releasing);
    result = send();
  }
  ++syncs_;
  publish_status(result, thread_cpu_ns() - cpu0);
  return result;
}

Status StoreSync::sync_once() { return sync(false); }

void StoreSync::start() {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      wake_.wait_for(lock, std::chrono::milliseconds(spec_.sync_interval_ms));
      if (stopping_) break;
      lock.unlock();
      (void)sync(false);
      lock.lock();
    }
  });
}

void StoreSync::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (Status s = sync(true); !s.ok()) {
    log_("last store sync failed (" + s.message() +
         "); this host's allotment returns to the others when its lease runs out");
  }
}

}  // namespace sluice
