// The hot path: reserve, commit, cancel, extend. Read it top to bottom.
//
// reserve: match the call against the policy (model access and prices
// first), find (or insert) each matched cell in the key table and check it
// with one load (the reject path ends there, having written only this
// client's own counters), then claim a reservation slot and debit each cell
// with a CAS, all or nothing. commit / cancel move every debited cell from
// the estimate to the actual usage with one fetch_add each. No allocation,
// lock, exception, system call (the clock is the vDSO) or virtual call on
// these paths; tests/hot_path_test.cc checks the first and the fourth.
// shm-layout/PROTOCOL.md describes the protocol and its crash cases.
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "audit_ring.h"
#include "call_rules.h"
#include "clock.h"
#include "fault_point.h"
#include "hashing.h"
#include "key_table.h"
#include "policy_snapshot.h"
#include "process.h"
#include "segment.h"
#include "segment_layout.h"
#include "settle.h"
#include "sluice/quota.h"

namespace sluice {

using shm::Word;
using namespace shm;  // NOLINT(google-build-using-namespace): the layout's names read best bare

inline constexpr int kMaxAttributes = static_cast<int>(kMaxCallAttributes);
inline constexpr int kMaxNames = 1 + kMaxLimits * kMaxMatchTerms;

// An attribute name as two zero-padded words: names the policy can match
// are at most 15 bytes, so two compares tell whether a call's attribute is
// one of them, with no hashing.
struct NameWords {
  Word w[2];
  bool operator==(const NameWords& o) const { return w[0] == o.w[0] && w[1] == o.w[1]; }
};

inline bool to_name_words(std::string_view name, NameWords* out) {
  if (name.size() > sizeof(out->w)) return false;
  char buf[sizeof(out->w)] = {};
  std::memcpy(buf, name.data(), name.size());
  std::memcpy(out->w, buf, sizeof buf);
  return true;
}

struct ClientState {
  explicit ClientState(SegmentMap mapped) : seg(std::move(mapped)) {}
  SegmentMap seg;
  Word seed = 0;
  Word me = 0;  // registry index + 1
  Word pid = 0;
  Word start_time = 0;
  Word cursor = 0;
  Word audit_head = 0;    // the audit ring's head as last seen
  Word until_sample = 1;  // reserves left until the next one is timed
  Word policy_generation = 0;
  bool policy_ok = false;
  CompiledPolicy policy{};    // process-local copy of the published policy
  CompiledPolicy incoming{};  // where a newly published policy is copied and checked
  // The attribute names the policy's terms use; entry 0 is "model".
  // term_name[l][t] is the entry of limit l's term t.
  int name_count = 0;
  NameWords names[kMaxNames];
  std::uint16_t term_name[kMaxLimits][kMaxMatchTerms];
};

const char* to_string(Outcome o) {
  switch (o) {
    case Outcome::kUnreported:
      return "unreported";
    case Outcome::kOk:
      return "ok";
    case Outcome::kProviderError:
      return "provider_error";
    case Outcome::kTimeout:
      return "timeout";
    case Outcome::kCancelledByClient:
      return "cancelled_by_client";
    case Outcome::kCutOff:
      return "cut_off";
  }
  return "unknown";
}

bool parse_outcome(std::string_view name, Outcome* out) {
  for (int o = 0; o < kCallOutcomes; ++o) {
    if (name == to_string(static_cast<Outcome>(o))) {
      *out = static_cast<Outcome>(o);
      return true;
    }
  }
  return false;
}

bool is_error(Outcome o) { return outcome_is_error(static_cast<Word>(o)); }

const char* to_string(Reason r) {
  switch (r) {
    case Reason::kNone:
      return "none";
    case Reason::kRateLimited:
      return "rate_limited";
    case Reason::kBudgetExhausted:
      return "budget_exhausted";
    case Reason::kModelNotAllowed:
      return "model_not_allowed";
    case Reason::kUnknownModelPrice:
      return "unknown_model_price";
    case Reason::kTableFull:
      return "table_full";
    case Reason::kTooManyReservations:
      return "too_many_reservations";
    case Reason::kRequestTooLarge:
      return "request_too_large";
    case Reason::kTooManyLimits:
      return "too_many_limits";
    case Reason::kNoPolicy:
      return "no_policy";
    case Reason::kPolicyStale:
      return "policy_stale";
    case Reason::kInvalidArgument:
      return "invalid_argument";
    case Reason::kAuditUnavailable:
      return "audit_unavailable";
    case Reason::kStoreUnavailable:
      return "store_unavailable";
  }
  return "unknown";
}

const char* to_string(SettleError e) {
  switch (e) {
    case SettleError::kNone:
      return "ok";
    case SettleError::kUnknownReservation:
      return "unknown_reservation";
    case SettleError::kInvalidArgument:
      return "invalid_argument";
    case SettleError::kNotReady:
      return "not_attached";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// Cell arithmetic (shared with the sidecar through settle.h).

namespace detail {

std::uint64_t cost_nusd(std::uint64_t input, std::uint64_t output, std::uint64_t input_pusd,
                        std::uint64_t output_pusd) {
  constexpr std::uint64_t k31 = std::uint64_t{1} << 31;
  if (input <= kMaxTokens && output <= kMaxTokens && input_pusd < k31 && output_pusd < k31) {
    return (input * input_pusd + output * output_pusd + 999) / 1000;  // fits in 64 bits
  }
  const unsigned __int128 pico = static_cast<unsigned __int128>(input) * input_pusd +
                                 static_cast<unsigned __int128>(output) * output_pusd;
  const unsigned __int128 nano = (pico + 999) / 1000;
  // Past 2^64 nano-dollars (absurd prices times 2^32 tokens): the most a
  // Word holds, which no budget admits, rather than a wrapped small amount.
  return nano > ~std::uint64_t{0} ? ~std::uint64_t{0} : static_cast<std::uint64_t>(nano);
}

std::uint64_t units_for(std::uint64_t measure, const Usage& u, std::uint64_t cost) {
  switch (measure) {
    case kMeasureRequests:
      return u.cancelled ? 0 : 1;
    case kMeasureTokens:
      return u.input + u.output;
    case kMeasureInputTokens:
      return u.input;
    case kMeasureOutputTokens:
      return u.output;
    case kMeasureNanoUsd:
      return cost;
  }
  return 0;
}

namespace {

// Adds a signed difference of units to a cell (rates in nanoseconds). A
// refund gives back part of what was debited, so it cannot wrap. A debt
// larger than kPlainDebt (absurd usage, or absurd prices) would wrap the
// cell round to a small value, refunding instead of charging: it saturates
// at kSaturatedCell, which rejects every call on the cell, instead.
void adjust_cell(const SegmentMap& seg, const ReservationCell& cell, std::uint64_t from_units,
                 std::uint64_t to_units) {
  const Word key = load_relaxed(cell.key);
  const Word index = cell_key_index(key);
  if (index >= seg.key_capacity() || from_units == to_units) return;
  Word scale = cell_kind(key) == kKindRate ? load_relaxed(cell.emission_ns) : 1;
  Word& value = seg.keys()[index].value;
  if (to_units < from_units) {
    fetch_add(value, Word{0} - (from_units - to_units) * scale);  // two's complement
    return;
  }
  Word debt = 0;
  if (!__builtin_mul_overflow(to_units - from_units, scale, &debt) && debt <= kPlainDebt) {
    fetch_add(value, debt);
    return;
  }
  Word seen = load_relaxed(value);
  Word next = 0;
  do {
    next = seen >= kSaturatedCell || kSaturatedCell - seen <= debt ? std::max(seen, kSaturatedCell)
                                                                   : seen + debt;
  } while (!compare_exchange(value, seen, next));
}

Word valid_cell_count(const ReservationSlot& slot) {
  return std::min<Word>(load_relaxed(slot.cell_count), kMaxCellsPerReservation);
}

}  // namespace

std::uint64_t settle_cells(const SegmentMap& seg, ReservationSlot& slot, const Usage& actual) {
  const Usage est{load_relaxed(slot.est_input), load_relaxed(slot.est_output), false};
  const Word in_p = load_relaxed(slot.input_pusd), out_p = load_relaxed(slot.output_pusd);
  const Word est_cost = cost_nusd(est.input, est.output, in_p, out_p);
  const Word actual_cost = cost_nusd(actual.input, actual.output, in_p, out_p);
  const Word debited = load_relaxed(slot.debited_mask);
  Word settled = load_relaxed(slot.settled_mask);
  const Word n = valid_cell_count(slot);
  for (Word i = 0; i < n; ++i) {
    const Word bit = Word{1} << i;
    if (!(debited & bit) || (settled & bit)) continue;
    const Word measure = cell_measure(load_relaxed(slot.cells[i].key));
    const Word from = units_for(measure, est, est_cost);
    const Word to = units_for(measure, actual, actual_cost);
    // Order the mark so that a crash between the two steps errs towards
    // charging: a refund is marked before it is given (a crash loses it), a
    // debt is marked after it is taken (a crash makes the sidecar take it again).
    settled |= bit;
    if (to < from) store_relaxed(slot.settled_mask, settled);
    adjust_cell(seg, slot.cells[i], from, to);
    if (to >= from) store_relaxed(slot.settled_mask, settled);
    if (i + 1 < n) SLUICE_FAULT_POINT(kSettleBetweenCells);
  }
  return actual_cost;
}

void refund_extension(const SegmentMap& seg, ReservationSlot& slot, std::uint64_t extra_output) {
  const Word in = load_relaxed(slot.est_input), out = load_relaxed(slot.est_output);
  const Word in_p = load_relaxed(slot.input_pusd), out_p = load_relaxed(slot.output_pusd);
  const Usage with{in, out + extra_output, false}, without{in, out, false};
  const Word cost_with = cost_nusd(in, out + extra_output, in_p, out_p);
  const Word cost_without = cost_nusd(in, out, in_p, out_p);
  const Word n = valid_cell_count(slot);
  Word mask = load_relaxed(slot.extend_mask);
  for (Word i = 0; i < n; ++i) {
    if (!(mask & (Word{1} << i))) continue;
    // Unmarked before it is given back: a crash between loses the refund
    // (the cell stays charged) rather than letting the sidecar give it twice.
    mask &= ~(Word{1} << i);
    store_relaxed(slot.extend_mask, mask);
    const Word measure = cell_measure(load_relaxed(slot.cells[i].key));
    adjust_cell(seg, slot.cells[i], units_for(measure, with, cost_with),
                units_for(measure, without, cost_without));
  }
}

void release_slot(ReservationSlot& slot, std::uint64_t seq) {
  store_relaxed(slot.debited_mask, 0);
  store_relaxed(slot.settled_mask, 0);
  store_relaxed(slot.extend_mask, 0);
  store_relaxed(slot.extend_target, 0);
  store_relaxed(slot.settle_kind, 0);
  store_relaxed(slot.audit_at, 0);
  store_relaxed(slot.cell_count, 0);
  store_relaxed(slot.deadline_ns, 0);
  store_release(slot.state, make_state(seq, 0, 0, kResFree));
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Policy: a process-local copy of the published block, refreshed when the
// header's generation moves (rare; not the hot path).

namespace {

// Moves this client's per-limit counters from the positions of the policy
// it held to those of `next`, by limit identity; counts of limits that are
// gone are dropped (the client's totals keep them).
void remap_counters(ClientState& s, const CompiledPolicy& next) {
  ClientSlot& me = s.seg.clients()[s.me - 1];
  Word* const counts[] = {me.limit_admitted, me.limit_rejected, me.limit_shadow_rejected,
                          me.limit_committed, me.limit_failed};
  constexpr int kCounts = sizeof counts / sizeof counts[0];
  Word moved[kCounts][kMaxLimits] = {};
  for (Word n = 0; n < next.limit_count; ++n) {
    for (Word o = 0; s.policy_ok && o < s.policy.limit_count; ++o) {
      if (s.policy.limits[o].identity != next.limits[n].identity) continue;
      for (int c = 0; c < kCounts; ++c) moved[c][n] = load_relaxed(counts[c][o]);
    }
  }
  store_relaxed(me.counters_generation, 0);  // readers: counts are moving
  for (int c = 0; c < kCounts; ++c) {
    for (int i = 0; i < kMaxLimits; ++i) store_relaxed(counts[c][i], moved[c][i]);
  }
  store_release(me.counters_generation, next.generation);
}

// Builds the name dictionary of the policy just adopted.
void index_names(ClientState& s) {
  s.name_count = 1;
  to_name_words("model", &s.names[0]);
  for (Word l = 0; l < s.policy.limit_count; ++l) {
    const CompiledLimit& L = s.policy.limits[l];
    for (Word t = 0; t < L.term_count; ++t) {
      const NameWords name{{L.term_attr_name[t][0], L.term_attr_name[t][1]}};
      int at = 0;
      while (at < s.name_count && !(s.names[at] == name)) ++at;
      if (at == s.name_count) s.names[s.name_count++] = name;
      s.term_name[l][t] = static_cast<std::uint16_t>(at);
    }
  }
}

void refresh_policy(ClientState& s, Word generation) {
  CompiledPolicy& next = s.incoming;  // preallocated: adopting a policy allocates nothing
  for (int attempt = 0; attempt < 64; ++attempt) {
    const SnapshotResult r = snapshot_policy(s.seg, generation, next);
    if (r == SnapshotResult::kBusy) continue;
    if (r == SnapshotResult::kOk) {
      remap_counters(s, next);
      s.policy = next;
      s.policy_ok = true;
      s.policy_generation = generation;
      index_names(s);
    } else if (r == SnapshotResult::kNoPolicy) {
      s.policy_ok = false;
      s.policy_generation = 0;
    }
    return;  // kInvalid: keep what we had and look again on the next call
  }
}

inline void ensure_policy(ClientState& s) {
  const Word generation = load_acquire(s.seg.header().policy_generation);
  if (generation != s.policy_generation) refresh_policy(s, generation);
}

// ---------------------------------------------------------------------------
// Key table and cells.

// One matched limit of a call. Deliberately without member initializers:
// reserve fills every field it reads, and zeroing eight of these on every
// call was measurable.
using detail::Text;

struct CellPlan {
  const CompiledLimit* limit_def;
  KeySlot* key;
  Word key_index;
  int limit;
  Word kind;
  Word measure;
  Word flags;
  Word emission_ns;
  Word capacity;  // rates: capacity_ns; budgets: units per window
  Word debit;     // rates: nanoseconds; budgets: units
  Word window;    // budgets: window start (unix seconds); rates: 0
  Word window_end_ns;
  Word seen;  // the cell's value when checked: the first CAS expects it
  Word value_hash[kMaxMatchTerms];
  Text matched[kMaxMatchTerms];
};

// Whether the call can never pass the cell. A global cell's capacity is
// this host's share, which grows: the call is too large only for the limit.
inline bool too_large(const CellPlan& c) {
  if (c.debit <= c.capacity) return false;
  if (!(c.flags & kFlagGlobal)) return true;
  return c.kind != kKindRate && c.debit > c.limit_def->budget;
}

// One load: would debiting `debit` at `value` exceed the cell? Sets the
// retry delay when it would.
inline bool cell_admits(const CellPlan& c, Word value, Word now, Word* next, Word* retry_after) {
  if (c.debit > c.capacity) {
    *retry_after = too_large(c) ? 0 : c.window_end_ns;
    return false;
  }
  if (c.kind == kKindRate) {
    const Word tat = std::max(value, now) + c.debit;
    if (tat - now > c.capacity) {
      *retry_after = tat - now - c.capacity;
      return false;
    }
    *next = tat;
    return true;
  }
  if (value + c.debit > c.capacity || value + c.debit < value) {
    *retry_after = c.window_end_ns;
    return false;
  }
  *next = value + c.debit;
  return true;
}

// What a global limit's cell does in this decision.
enum class GlobalTerms { kCheck, kSkip, kStoreDown };

// Puts the terms the central store granted this host into a global cell's
// plan: a budget admits up to the key's ceiling, a rate runs at the host's
// share (an even share until the store has sent one). While the store is
// down the limit's on_store_down decides: fail_closed rejects, fail_open
// admits (a budget still counts its usage, a rate is not checked), and
// local_share keeps spending the ceiling and runs rates at an even share.
inline GlobalTerms global_terms(const SegmentHeader& h, CellPlan& c, Word units, Word coarse_now) {
  const bool up = coarse_now < load_relaxed(h.store_up_until_ns);
  if (!up && !(c.flags & (kFlagStoreDownLocalShare | kFlagStoreDownFailOpen))) {
    return GlobalTerms::kStoreDown;
  }
  const bool open = !up && (c.flags & kFlagStoreDownFailOpen);
  const Word next_sync = load_relaxed(h.store_sync_interval_ns);
  if (c.kind != kKindRate) {
    c.capacity = open ? ~Word{0} : load_relaxed(c.key->ceiling);
    if (c.capacity < c.limit_def->budget) c.window_end_ns = std::min(c.window_end_ns, next_sync);
    return GlobalTerms::kCheck;
  }
  c.window_end_ns = next_sync;  // the retry hint when the share, not the rate, is what rejects
  if (open) return GlobalTerms::kSkip;
  const Word share_emission = up ? load_relaxed(c.key->host_emission_ns) : 0;
  if (share_emission != 0) {
    c.emission_ns = share_emission;
    c.capacity = load_relaxed(c.key->host_capacity_ns);
  } else {
    const Word hosts = std::max<Word>(load_relaxed(h.store_hosts), 1);
    c.emission_ns = c.emission_ns * hosts;
    c.capacity = std::max(c.capacity, c.emission_ns);  // burst / hosts, at least one unit
  }
  if (__builtin_mul_overflow(units, c.emission_ns, &c.debit)) c.debit = ~Word{0};
  return GlobalTerms::kCheck;
}

Reason reject_reason(const CellPlan& c) {
  if (too_large(c)) return Reason::kRequestTooLarge;
  return c.kind == kKindRate ? Reason::kRateLimited : Reason::kBudgetExhausted;
}

// Single-writer counters in this client's own registry slot.
inline void bump_own(Word& counter) { store_relaxed(counter, load_relaxed(counter) + 1); }

}  // namespace

// ---------------------------------------------------------------------------
// reserve

namespace {

// What a decision leaves for its audit record besides the Decision.
struct DecisionFacts {
  Word shadow_mask = 0;
  Word wall_ns = 0;  // the coarse wall clock, when the decision read it
  // Admitted: the slot, still RESERVING, and the state it becomes (ACTIVE)
  // once the reserve record is published.
  ReservationSlot* slot = nullptr;
  Word active_state = 0;
};

Decision decide(ClientState& s, const CallRequest& req, DecisionFacts* facts) {
  Decision d;
  ClientSlot& me = s.seg.clients()[s.me - 1];
  auto reject = [&](Reason r, int limit, Word retry_ns) {
    d.admitted = false;
    d.reason = r;
    d.limit_index = limit;
    d.retry_after_ns = retry_ns;
    bump_own(me.rejected);
    if (limit >= 0) bump_own(me.limit_rejected[limit]);
  };

  if (!s.policy_ok) {
    reject(Reason::kNoPolicy, -1, 0);
    return d;
  }
  if (!detail::request_is_valid(req)) {
    reject(Reason::kInvalidArgument, -1, 0);
    return d;
  }
  const std::size_t n_attrs = req.attributes.size();
  const CompiledPolicy& p = s.policy;

  // Name each attribute by its entry in the policy's name dictionary (-1:
  // no limit looks at it) and hash the values that matter, once.
  int name_of[kMaxAttributes];
  Word value_hash[kMaxAttributes];
  Word model_hash = 0;
  for (std::size_t a = 0; a < n_attrs; ++a) {
    NameWords name;
    name_of[a] = -1;
    if (!to_name_words(req.attributes[a].name, &name)) continue;
    for (int n = 0; n < s.name_count; ++n) {
      if (s.names[n] == name) {
        name_of[a] = n;
        break;
      }
    }
    if (name_of[a] < 0) continue;
    value_hash[a] = hash_text(s.seed, req.attributes[a].value);
    if (name_of[a] == 0) model_hash = value_hash[a];
  }
  Word in_p = 0, out_p = 0, stats_row = 0;
  bool priced = false;
  for (Word m = 0; m < p.model_count && model_hash != 0; ++m) {
    if (p.models[m].name_hash == model_hash) {
      in_p = p.models[m].input_pusd_per_token;
      out_p = p.models[m].output_pusd_per_token;
      stats_row = p.models[m].stats_row;
      priced = true;
      break;
    }
  }
  const detail::Usage est{req.input_tokens, req.max_output_tokens, false};
  d.estimated_cost_nusd = priced ? detail::cost_nusd(est.input, est.output, in_p, out_p) : 0;

  // Phase 1: match every limit. Model access and prices are settled here,
  // before the clock is read or any key is touched.
  CellPlan plan[kMaxCellsPerReservation];
  Word n_cells = 0;
  for (Word li = 0; li < p.limit_count; ++li) {
    const CompiledLimit& L = p.limits[li];
    const int limit = static_cast<int>(li);
    CellPlan& c = plan[n_cells < kMaxCellsPerReservation ? n_cells : 0];
    bool match = true;
    for (Word t = 0; t < L.term_count && match; ++t) {
      match = false;
      const int wanted = s.term_name[li][t];
      for (std::size_t a = 0; a < n_attrs; ++a) {
        if (name_of[a] != wanted) continue;
        match = L.term_value_hash[t] == 0 || L.term_value_hash[t] == value_hash[a];
        c.value_hash[t] = value_hash[a];
        c.matched[t] = {req.attributes[a].value.data(), req.attributes[a].value.size()};
        break;
      }
    }
    if (!match) continue;
    const bool shadow = L.flags & kFlagShadow;
    if (L.kind == kKindModelAccess) {
      bool allowed = false;
      for (Word m = 0; m < L.allowed_count; ++m) allowed |= L.allowed_model_hash[m] == model_hash;
      if (allowed) continue;
      if (!shadow) {
        reject(Reason::kModelNotAllowed, limit, 0);
        return d;
      }
      ++d.shadow_rejects;
      facts->shadow_mask |= Word{1} << limit;
      bump_own(me.limit_shadow_rejected[limit]);
      continue;
    }
    if (L.measure == kMeasureNanoUsd && !priced) {
      if (!shadow) {
        reject(Reason::kUnknownModelPrice, limit, 0);
        return d;
      }
      ++d.shadow_rejects;
      facts->shadow_mask |= Word{1} << limit;
      bump_own(me.limit_shadow_rejected[limit]);
      continue;
    }
    if (n_cells == kMaxCellsPerReservation) {
      reject(Reason::kTooManyLimits, limit, 0);
      return d;
    }
    c.limit_def = &L;
    c.limit = limit;
    c.kind = L.kind;
    c.measure = L.measure;
    c.flags = L.flags;
    ++n_cells;
  }

  // Phase 2: for each cell, its window, its key, and one load to check it.
  // The reject path ends here, having written only this client's counters.
  // The precise clock is read once, at the first rate cell; budget windows
  // only need the second.
  Word now = 0;
  Word wall_s = 0;
  Word coarse = 0;
  if (n_cells != 0) {
    coarse = coarse_monotonic_ns();
    facts->wall_ns = coarse + load_relaxed(s.seg.header().wall_offset_ns);
    wall_s = facts->wall_ns / 1'000'000'000ull;
  }
  Word kept = 0;
  for (Word i = 0; i < n_cells; ++i) {
    CellPlan& c = plan[i];
    const CompiledLimit& L = *c.limit_def;
    const Word units = detail::units_for(L.measure, est, d.estimated_cost_nusd);
    if (L.kind == kKindRate) {
      if (now == 0) now = monotonic_ns();
      c.emission_ns = L.emission_ns;
      c.capacity = L.capacity_ns;
      if (__builtin_mul_overflow(units, L.emission_ns, &c.debit)) c.debit = ~Word{0};  // too large
      c.window = 0;
      c.window_end_ns = 0;
    } else {
      Word w = 0;
      while (w + 1 < L.window_count && L.window_start[w + 1] <= wall_s) ++w;
      if (w + 1 >= L.window_count) {
        reject(Reason::kPolicyStale, c.limit, 0);
        return d;
      }
      c.emission_ns = 0;
      c.capacity = L.budget;
      c.debit = units;
      c.window = L.window_start[w];
      c.window_end_ns = (L.window_start[w + 1] - wall_s) * 1'000'000'000ull;
    }
    Word key_words[2 + kMaxMatchTerms];
    key_words[0] = L.identity;
    key_words[1] = c.window;
    for (Word t = 0; t < L.term_count; ++t) key_words[2 + t] = c.value_hash[t];
    const Word hash = hash_words(s.seed, key_words, 2 + static_cast<int>(L.term_count));
    c.key = detail::find_or_insert(s.seg, hash, &c.key_index, L.identity, c.window, c.matched,
                                   L.term_count);
    if (c.key == nullptr) {
      reject(Reason::kTableFull, c.limit, 0);
      return d;
    }
    if (c.flags & kFlagGlobal) {
      const GlobalTerms g = global_terms(s.seg.header(), c, units, coarse);
      if (g == GlobalTerms::kSkip) continue;  // dropped from the plan
      if (g == GlobalTerms::kStoreDown) {
        reject(Reason::kStoreUnavailable, c.limit,
               load_relaxed(s.seg.header().store_sync_interval_ns));
        return d;
      }
    }
    Word next = 0, retry = 0;
    c.seen = load_relaxed(c.key->value);
    if (!cell_admits(c, c.seen, now, &next, &retry)) {
      if (c.flags & kFlagShadow) {
        ++d.shadow_rejects;
        facts->shadow_mask |= Word{1} << c.limit;
        bump_own(me.limit_shadow_rejected[c.limit]);
        continue;  // not debited, dropped from the plan
      }
      const Reason why = reject_reason(c);
      reject(why, c.limit, why == Reason::kRequestTooLarge ? 0 : retry);
      return d;
    }
    if (kept != i) plan[kept] = c;
    ++kept;
  }
  n_cells = kept;

  // Phase 3: claim a reservation slot and debit every cell, all or nothing.
  // The search starts at the slot this client claimed last: usually free
  // again and still in this core's cache, and no other client's.
  ReservationSlot* slots = s.seg.reservations();
  const Word n_slots = s.seg.reservation_count();
  ReservationSlot* slot = nullptr;
  Word seq = 0, slot_index = s.cursor;
  for (Word probe = 0; probe < n_slots; ++probe) {
    if (probe != 0) slot_index = slot_index + 1 == n_slots ? 0 : slot_index + 1;
    ReservationSlot& r = slots[slot_index];
    Word st = load_relaxed(r.state);
    if (state_status(st) != kResFree) continue;
    seq = state_seq(st) + 1 == (Word{1} << 32) ? 1 : state_seq(st) + 1;
    if (compare_exchange_strong(r.state, st, make_state(seq, s.me, 0, kResReserving))) {
      slot = &r;
      s.cursor = slot_index;
      break;
    }
  }
  SLUICE_FAULT_POINT(kReserveSlotClaimed);
  if (slot == nullptr) {
    reject(Reason::kTooManyReservations, -1, 0);
    return d;
  }

  store_relaxed(slot->est_input, est.input);
  store_relaxed(slot->est_output, est.output);
  store_relaxed(slot->input_pusd, in_p);
  store_relaxed(slot->output_pusd, out_p);
  store_relaxed(slot->telemetry, make_telemetry(stats_row, s.policy_generation));
  for (Word i = 0; i < n_cells; ++i) {
    store_relaxed(slot->cells[i].key, make_cell_key(plan[i].key_index, plan[i].kind,
                                                    plan[i].measure, plan[i].flags, plan[i].limit));
    store_relaxed(slot->cells[i].emission_ns, plan[i].emission_ns);
  }
  store_release(slot->cell_count, n_cells);

  Word debited = 0;
  for (Word i = 0; i < n_cells; ++i) {
    CellPlan& c = plan[i];
    Word value = c.seen, next = 0, retry = 0;  // a stale value only costs one failed CAS
    bool ok = false;
    while ((ok = cell_admits(c, value, now, &next, &retry))) {
      if (compare_exchange(c.key->value, value, next)) break;
    }
    if (ok) {
      debited |= Word{1} << i;
      store_relaxed(slot->debited_mask, debited);
      if (i + 1 < n_cells) SLUICE_FAULT_POINT(kReserveBetweenDebits);
      continue;
    }
    if (c.flags & kFlagShadow) {
      ++d.shadow_rejects;
      facts->shadow_mask |= Word{1} << c.limit;
      bump_own(me.limit_shadow_rejected[c.limit]);
      continue;
    }
    // Refund what this reservation already debited, then give the slot back.
    // Each cell is unmarked before it is given back: a crash between loses
    // that refund rather than letting the sidecar give it a second time.
    for (Word j = 0; j < i; ++j) {
      if (!(debited & (Word{1} << j))) continue;
      store_relaxed(slot->debited_mask, debited &= ~(Word{1} << j));
      fetch_add(plan[j].key->value, Word{0} - plan[j].debit);
    }
    detail::release_slot(*slot, seq);
    reject(reject_reason(c), c.limit, retry);
    return d;
  }

  SLUICE_FAULT_POINT(kReserveDebited);
  if (req.hold_for_ns != 0) store_relaxed(slot->deadline_ns, monotonic_ns() + req.hold_for_ns);
  facts->slot = slot;
  facts->active_state = make_state(seq, req.hold_for_ns != 0 ? kNoOwner : s.me, 0, kResActive);
  bump_own(me.admitted);
  for (Word i = 0; i < n_cells; ++i) bump_own(me.limit_admitted[plan[i].limit]);
  d.admitted = true;
  d.reservation_id = seq << 32 | slot_index;
  return d;
}

// Unix time of a record: the coarse clock (a few ns to read, to the
// scheduler tick) plus the sidecar's published offset: a wall-clock step
// shows in records from the sidecar's next tick, backwards too; `sequence`
// orders them.
inline Word audit_time(const ClientState& s) {
  return coarse_monotonic_ns() + load_relaxed(s.seg.header().wall_offset_ns);
}

inline Word limit_byte(int limit) { return limit < 0 ? kAuditNoLimit : static_cast<Word>(limit); }

inline bool audit_required(const ClientState& s) {
  return s.policy_ok && (s.policy.flags & kPolicyAuditRequired);
}

inline bool audit_off(const ClientState& s) {
  return s.policy_ok && (s.policy.flags & kPolicyAuditOff);
}

inline AuditSlot claim_record(ClientState& s, ClientSlot& me, Word length) {
  if (audit_off(s)) return {};
  const AuditSlot slot = audit_claim(s.seg, me, &s.audit_head, length);
  if (slot.record == nullptr) {
    fetch_add_relaxed(s.seg.audit_control().dropped, 1);
  } else {
    SLUICE_FAULT_POINT(kAuditClaimed);
  }
  return slot;
}

}  // namespace

namespace {

// Counts a timed reserve in this client's own histogram (single writer).
void count_latency(ClientSlot& me, Word ns) {
  int b = 0;
  while (b + 1 < kLatencyBuckets && ns > latency_bucket_bound_ns(b)) ++b;
  bump_own(me.latency_hist[b]);
}

}  // namespace

// One reserve in kLatencySampleEvery is timed, for the metrics' histogram:
// two clock reads every 128 calls, well under a nanosecond a call.
Decision Client::reserve_raw(const CallRequest& req) {
  if (!s_) {
    Decision d;
    d.reason = Reason::kNoPolicy;
    return d;
  }
  if (--s_->until_sample != 0) return reserve_now(req);
  s_->until_sample = kLatencySampleEvery;
  const Word t0 = monotonic_ns();
  const Decision d = reserve_now(req);
  count_latency(s_->seg.clients()[s_->me - 1], monotonic_ns() - t0);
  return d;
}

// The record is claimed before the decision, so that a full ring can refuse
// the call when audit is required, and published after it but before the
// reservation becomes ACTIVE: a process that dies in between leaves a
// RESERVING slot, which the sidecar refunds, so an admitted reservation that
// can be spent always has its reserve record.
Decision Client::reserve_now(const CallRequest& req) {
  ClientState& s = *s_;
  ClientSlot& me = s.seg.clients()[s.me - 1];
  ensure_policy(s);
  AuditAttributes attrs;
  AuditSlot slot;
  if (!audit_off(s)) {
    const std::size_t n_attrs = std::min<std::size_t>(req.attributes.size(), kMaxAttributes);
    attrs = audit_attributes_size(req.attributes.data(), n_attrs);
    slot = claim_record(s, me, audit_record_length(attrs));
  }
  if (slot.record == nullptr && audit_required(s)) {
    fetch_add_relaxed(s.seg.audit_control().refused, 1);
    bump_own(me.rejected);
    Decision d;
    d.reason = Reason::kAuditUnavailable;
    return d;
  }
  DecisionFacts facts;
  const Decision d = decide(s, req, &facts);
  if (slot.record == nullptr) {
    if (facts.slot != nullptr) store_release(facts.slot->state, facts.active_state);
    return d;
  }
  // Every field is set here, as in commit and extend, rather than through a
  // shared helper returning a zero-initialized record: that measured +30 ns
  // at p50 (sluice_bench reserve_commit_audit_on_vs_off).
  AuditRecord r;
  r.time_unix_ns = facts.wall_ns != 0 ? facts.wall_ns : audit_time(s);
  r.reservation_id = d.reservation_id;
  r.pid = s.pid;
  r.start_time = s.start_time;
  r.info = make_audit_info(kAuditReserve, d.admitted ? kAuditAdmitted : kAuditRejected,
                           static_cast<Word>(d.reason), limit_byte(d.limit_index), attrs.count,
                           attrs.bytes);
  r.policy_generation = s.policy_generation;
  r.est_input = req.input_tokens;
  r.est_output = req.max_output_tokens;
  r.actual_input = 0;
  r.actual_output = 0;
  r.cost_nusd = d.estimated_cost_nusd;
  r.retry_after_ns = d.retry_after_ns;
  r.shadow_mask = facts.shadow_mask;
  r.call_info = 0;
  r.latency_ns = 0;
  r.ttft_ns = 0;
  audit_write_fixed(slot, r);
  audit_write_attributes(slot, req.attributes.data(), attrs);
  SLUICE_FAULT_POINT(kAuditWritten);
  audit_publish(me, slot);
  if (facts.slot != nullptr) store_release(facts.slot->state, facts.active_state);
  return d;
}

// ---------------------------------------------------------------------------
// commit / cancel / extend

namespace {

// Takes a live reservation for `me` to act on: ACTIVE -> `status`.
ReservationSlot* take(ClientState& s, std::uint64_t id, Word status, Word* seq_out,
                      Word* state_out) {
  const Word index = id & 0xffffffff, seq = id >> 32;
  if (seq == 0 || index >= s.seg.reservation_count()) return nullptr;
  ReservationSlot& r = s.seg.reservations()[index];
  Word st = load_acquire(r.state);
  do {
    if (state_seq(st) != seq || state_status(st) != kResActive) return nullptr;
    // A held reservation past its deadline belongs to the sidecar now.
    if (state_owner(st) == kNoOwner && load_relaxed(r.deadline_ns) != 0 &&
        monotonic_ns() > load_relaxed(r.deadline_ns)) {
      return nullptr;
    }
  } while (!compare_exchange(r.state, st, make_state(seq, state_owner(st), s.me, status)));
  *seq_out = seq;
  *state_out = st;
  return &r;
}

bool valid_report(const CallReport& r) {
  return r.outcome <= Outcome::kCutOff && r.http_status <= 999 &&
         r.model_version.size() <= kMaxModelVersionBytes;
}

// Adds a commit's report to its model's call stats (shared: relaxed
// fetch_add) and, under the policy its limits were numbered by, to this
// client's per-limit counts (single writer).
void count_call(ClientState& s, ClientSlot& me, const ReservationSlot& r,
                const CallReport& report) {
  const Word telemetry = load_relaxed(r.telemetry);
  const Word row = telemetry_row(telemetry);
  if (row < s.seg.model_stats_count()) {
    ModelCallStats& m = s.seg.model_stats()[row];
    fetch_add_relaxed(m.calls[static_cast<Word>(report.outcome)], 1);
    if (report.latency_ns != 0) {
      fetch_add_relaxed(m.latency_hist[call_latency_bucket(report.latency_ns)], 1);
      fetch_add_relaxed(m.latency_sum_us, report.latency_ns / 1000);
    }
    if (report.ttft_ns != 0) {
      fetch_add_relaxed(m.ttft_hist[call_latency_bucket(report.ttft_ns)], 1);
      fetch_add_relaxed(m.ttft_sum_us, report.ttft_ns / 1000);
    }
  }
  if (telemetry_generation(telemetry) !=
      telemetry_generation(make_telemetry(0, s.policy_generation))) {
    return;
  }
  const bool failed = outcome_is_error(static_cast<Word>(report.outcome));
  const Word n = std::min<Word>(load_relaxed(r.cell_count), kMaxCellsPerReservation);
  for (Word i = 0; i < n; ++i) {
    const Word limit = cell_limit(load_relaxed(r.cells[i].key));
    if (limit >= kMaxLimits) continue;
    bump_own(me.limit_committed[limit]);
    if (failed) bump_own(me.limit_failed[limit]);
  }
}

Settlement settle(ClientState* s, std::uint64_t id, const detail::Usage& actual, Word kind,
                  const CallReport& report) {
  if (s == nullptr) return {SettleError::kNotReady, 0};
  if (actual.input > detail::kMaxTokens || actual.output > detail::kMaxTokens ||
      !valid_report(report)) {
    return {SettleError::kInvalidArgument, 0};
  }
  Word seq = 0, st = 0;
  ReservationSlot* r = take(*s, id, kResSettling, &seq, &st);
  if (r == nullptr) return {SettleError::kUnknownReservation, 0};
  SLUICE_FAULT_POINT(kSettleTaken);
  ClientSlot& me = s->seg.clients()[s->me - 1];
  const Word version_bytes = report.model_version.size();
  const AuditSlot slot =
      claim_record(*s, me, sizeof(AuditRecord) + ((version_bytes + 7) & ~Word{7}));
  store_relaxed(r->actual_input, actual.input);
  store_relaxed(r->actual_output, actual.output);
  // Where this settlement's record goes: if this process dies before the
  // slot is free, the sidecar writes the record only if this one never got
  // published (reclaim.cc), so the settlement has exactly one.
  store_relaxed(r->audit_at, slot.record != nullptr ? slot.position + 1 : 0);
  store_release(r->settle_kind, kind);
  SLUICE_FAULT_POINT(kSettleKindStored);
  const Word est_input = load_relaxed(r->est_input), est_output = load_relaxed(r->est_output);
  const Word cost = detail::settle_cells(s->seg, *r, actual);
  SLUICE_FAULT_POINT(kSettleCellsDone);
  if (kind == 1) count_call(*s, me, *r, report);
  if (slot.record != nullptr) {
    AuditRecord a;
    a.time_unix_ns = audit_time(*s);
    a.reservation_id = id;
    a.pid = s->pid;
    a.start_time = s->start_time;
    a.info = make_audit_info(kind == 1 ? kAuditCommit : kAuditCancel, kAuditSettled, 0,
                             kAuditNoLimit, 0, 0);
    a.policy_generation = s->policy_generation;
    a.est_input = est_input;
    a.est_output = est_output;
    a.actual_input = actual.input;
    a.actual_output = actual.output;
    a.cost_nusd = cost;
    a.retry_after_ns = 0;
    a.shadow_mask = 0;
    a.call_info =
        make_call_info(static_cast<Word>(report.outcome), report.http_status, version_bytes);
    a.latency_ns = report.latency_ns;
    a.ttft_ns = report.ttft_ns;
    audit_write_fixed(slot, a);
    if (version_bytes != 0) audit_write_text(slot, report.model_version);
    SLUICE_FAULT_POINT(kAuditWritten);
    audit_publish(me, slot);
    SLUICE_FAULT_POINT(kSettlePublished);
  }
  detail::release_slot(*r, seq);
  return {SettleError::kNone, cost};
}

}  // namespace

Settlement Client::commit(std::uint64_t id, std::uint64_t input_tokens,
                          std::uint64_t output_tokens) {
  return settle(s_.get(), id, {input_tokens, output_tokens, false}, 1, CallReport{});
}

Settlement Client::commit(std::uint64_t id, std::uint64_t input_tokens, std::uint64_t output_tokens,
                          const CallReport& report) {
  return settle(s_.get(), id, {input_tokens, output_tokens, false}, 1, report);
}

Settlement Client::cancel(std::uint64_t id) {
  return settle(s_.get(), id, {0, 0, true}, 2, CallReport{});
}

Extension Client::extend(std::uint64_t id, std::uint64_t output_tokens) {
  Extension e;
  if (!s_) {
    e.error = SettleError::kNotReady;
    return e;
  }
  ClientState& s = *s_;
  Word seq = 0, st = 0;
  ReservationSlot* r = take(s, id, kResExtending, &seq, &st);
  if (r == nullptr) {
    e.error = SettleError::kUnknownReservation;
    return e;
  }
  const Word in = load_relaxed(r->est_input), out = load_relaxed(r->est_output);
  if (output_tokens > detail::kMaxTokens || out + output_tokens > detail::kMaxTokens) {
    store_release(r->state, st);
    e.error = SettleError::kInvalidArgument;
    return e;
  }
  const Word in_p = load_relaxed(r->input_pusd), out_p = load_relaxed(r->output_pusd);
  const Word cost_before = detail::cost_nusd(in, out, in_p, out_p);
  const Word cost_after = detail::cost_nusd(in, out + output_tokens, in_p, out_p);
  const Word now = monotonic_ns();
  ClientSlot& me = s.seg.clients()[s.me - 1];
  const AuditSlot slot = claim_record(s, me, sizeof(AuditRecord));
  if (slot.record == nullptr && audit_required(s)) {
    fetch_add_relaxed(s.seg.audit_control().refused, 1);
    store_release(r->state, st);
    e.reason = Reason::kAuditUnavailable;
    return e;
  }
  // One record for the extend, whatever its outcome.
  auto record = [&](const Extension& x) {
    if (slot.record == nullptr) return;
    AuditRecord a;
    a.time_unix_ns = audit_time(s);
    a.reservation_id = id;
    a.pid = s.pid;
    a.start_time = s.start_time;
    a.info = make_audit_info(kAuditExtend, x.admitted ? kAuditAdmitted : kAuditRejected,
                             static_cast<Word>(x.reason), limit_byte(x.limit_index), 0, 0);
    a.policy_generation = s.policy_generation;
    a.est_input = in;
    a.est_output = x.admitted ? out + output_tokens : out;
    a.actual_input = 0;
    a.actual_output = 0;
    a.cost_nusd = x.admitted ? cost_after : cost_before;
    a.retry_after_ns = x.retry_after_ns;
    a.shadow_mask = 0;
    a.call_info = 0;
    a.latency_ns = 0;
    a.ttft_ns = 0;
    audit_write_fixed(slot, a);
    audit_publish(me, slot);
  };
  store_relaxed(r->extend_target, out + output_tokens);
  const Word n = std::min<Word>(load_relaxed(r->cell_count), kMaxCellsPerReservation);
  const Word debited = load_relaxed(r->debited_mask);
  Word taken = 0;
  ensure_policy(s);
  for (Word i = 0; i < n; ++i) {
    if (!(debited & (Word{1} << i))) continue;
    const Word key = load_relaxed(r->cells[i].key);
    const Word index = cell_key_index(key);
    if (index >= s.seg.key_capacity()) continue;
    const Word measure = cell_measure(key);
    const Word extra = detail::units_for(measure, {in, out + output_tokens, false}, cost_after) -
                       detail::units_for(measure, {in, out, false}, cost_before);
    if (extra == 0) continue;
    CellPlan c{};
    c.limit = -1;
    c.kind = cell_kind(key);
    c.emission_ns = load_relaxed(r->cells[i].emission_ns);
    c.debit = extra;
    if (c.kind == kKindRate && __builtin_mul_overflow(extra, c.emission_ns, &c.debit)) {
      c.debit = ~Word{0};  // too large
    }
    // Capacity comes from the current policy; a limit gone from it no longer limits.
    c.capacity = ~Word{0};
    KeySlot& k = s.seg.keys()[index];
    const Word identity = load_relaxed(k.identity);
    for (Word li = 0; s.policy_ok && li < s.policy.limit_count; ++li) {
      const CompiledLimit& L = s.policy.limits[li];
      if (L.identity != identity) continue;
      c.capacity = c.kind == kKindRate ? L.capacity_ns : L.budget;
      c.limit = static_cast<int>(li);
      if (c.kind == kKindBudget) {
        const Word wall_s = (now + load_relaxed(s.seg.header().wall_offset_ns)) / 1'000'000'000ull;
        Word w = 0;
        while (w + 1 < L.window_count && L.window_start[w + 1] <= wall_s) ++w;
        c.window_end_ns =
            w + 1 < L.window_count ? (L.window_start[w + 1] - wall_s) * 1'000'000'000ull : 0;
      }
      if (L.flags & kFlagShadow) c.capacity = ~Word{0};
      break;
    }
    Word value = load_relaxed(k.value), next = 0, retry = 0;
    bool ok = false;
    while ((ok = cell_admits(c, value, now, &next, &retry))) {
      if (compare_exchange(k.value, value, next)) break;
    }
    if (!ok) {
      if (c.limit >= 0) bump_own(me.limit_rejected[c.limit]);
      detail::refund_extension(s.seg, *r, output_tokens);
      store_relaxed(r->extend_mask, 0);
      store_relaxed(r->extend_target, 0);
      store_release(r->state, st);
      e.reason = reject_reason(c) == Reason::kRequestTooLarge && c.kind == kKindRate
                     ? Reason::kRateLimited
                     : reject_reason(c);
      e.limit_index = c.limit;
      e.retry_after_ns = retry;
      record(e);
      return e;
    }
    taken |= Word{1} << i;
    store_relaxed(r->extend_mask, taken);
    SLUICE_FAULT_POINT(kExtendBetweenCells);
  }
  store_relaxed(r->est_output, out + output_tokens);  // the extend is complete from here
  store_relaxed(r->extend_mask, 0);
  store_relaxed(r->extend_target, 0);
  store_release(r->state, st);
  e.admitted = true;
  record(e);
  return e;
}

// ---------------------------------------------------------------------------
// Attach, detach, accessors (not the hot path).

Result<Client> Client::attach(const std::string& segment_name) {
  Result<SegmentMap> seg = SegmentMap::attach(segment_name);
  if (!seg.ok()) return seg.status();
  auto state = std::make_unique<ClientState>(std::move(seg.value()));
  state->seed = load_relaxed(state->seg.header().hash_seed);
  const pid_t pid = ::getpid();
  const Word start = process_start_time(pid);
  ClientSlot* clients = state->seg.clients();
  for (Word i = 0; i < state->seg.client_count(); ++i) {
    Word free = 0;
    if (!compare_exchange_strong(clients[i].pid, free, static_cast<Word>(pid))) continue;
    store_relaxed(clients[i].start_time, start);
    store_relaxed(clients[i].audit_claim, 0);
    state->pid = static_cast<Word>(pid);
    state->start_time = start;
    store_relaxed(clients[i].attached_ns, monotonic_ns());
    store_relaxed(clients[i].departed, 0);
    state->me = i + 1;
    // Clients start their slot search far apart, so they do not share lines.
    const Word n_slots = state->seg.reservation_count();
    state->cursor = i * std::max<Word>(1, n_slots / state->seg.client_count()) % n_slots;
    ensure_policy(*state);
    return Client(std::move(state));
  }
  return Status(ErrorCode::kIo, "segment '" + segment_name + "' has all " +
                                    std::to_string(state->seg.client_count()) +
                                    " client registrations in use; detach idle clients (one "
                                    "per thread, not per call) or wait for sluiced to reclaim "
                                    "dead ones");
}

Client::Client(std::unique_ptr<ClientState> state) : s_(std::move(state)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&& o) noexcept {
  if (this != &o) {
    Client gone(std::move(*this));
    s_ = std::move(o.s_);
  }
  return *this;
}

Client::~Client() {
  if (!s_) return;
  // The sidecar settles what this client left open and frees the slot.
  store_release(s_->seg.clients()[s_->me - 1].departed, 1);
}

Reservation Client::reserve(const CallRequest& request) {
  return Reservation(this, reserve_raw(request));
}

std::string_view Client::limit_name(int index) const {
  if (!s_ || !s_->policy_ok || index < 0 || static_cast<Word>(index) >= s_->policy.limit_count) {
    return {};
  }
  const Word(&words)[kNameWords] = s_->policy.limits[index].name;
  const char* text = reinterpret_cast<const char*>(words);
  return std::string_view(text, strnlen(text, sizeof words));
}

std::uint64_t Client::policy_generation() const { return s_ ? s_->policy_generation : 0; }

Reservation& Reservation::operator=(Reservation&& o) noexcept {
  if (this != &o) {
    cancel();
    client_ = o.client_;
    decision_ = o.decision_;
    o.client_ = nullptr;
  }
  return *this;
}

Settlement Reservation::commit(std::uint64_t input_tokens, std::uint64_t output_tokens,
                               const CallReport& report) {
  if (!live()) return {SettleError::kUnknownReservation, 0};
  Settlement st = client_->commit(decision_.reservation_id, input_tokens, output_tokens, report);
  if (st.error != SettleError::kInvalidArgument) client_ = nullptr;
  return st;
}

Settlement Reservation::commit(std::uint64_t input_tokens, std::uint64_t output_tokens) {
  if (!live()) return {SettleError::kUnknownReservation, 0};
  Settlement st = client_->commit(decision_.reservation_id, input_tokens, output_tokens);
  if (st.error != SettleError::kInvalidArgument) client_ = nullptr;
  return st;
}

Settlement Reservation::cancel() {
  if (!live()) return {SettleError::kUnknownReservation, 0};
  Settlement st = client_->cancel(decision_.reservation_id);
  client_ = nullptr;
  return st;
}

Extension Reservation::extend(std::uint64_t output_tokens) {
  if (!live()) return {SettleError::kUnknownReservation, false, Reason::kNone, -1, 0};
  return client_->extend(decision_.reservation_id, output_tokens);
}

}  // namespace sluice
