// The cross-process contract: the byte layout of a Sluice segment.
//
// The sidecar creates the segment; clients map it. Every record here is a
// plain struct of 64-bit words with static_asserted offsets, no pointers and
// no constructors: all-zero bytes are a valid empty state everywhere. Every
// word is read and written through shm/atomics.h. Region offsets in the
// header are integers from the start of the segment, and every reader
// bounds-checks them before use (see libquota/segment.cc).
//
// Segment = [SegmentHeader][policy slot 0][policy slot 1][key table]
//           [reservation slots][client registry][call stats][audit ring]
#pragma once

#include <cstddef>
#include <cstdint>

#include "atomics.h"

namespace sluice::shm {

inline constexpr Word kMagic = 0x3130454349554c53ULL;  // "SLUICE01" little-endian
inline constexpr Word kLayoutMajor = 4;  // 4: call outcomes (AuditRecord, ModelCallStats)
inline constexpr Word kLayoutMinor = 0;
inline constexpr Word kReadyValue = 0x5245414459ULL;  // "READY"
inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::size_t kLinePair = 128;

// ---------------------------------------------------------------------------
// Compiled policy: written by the sidecar into the inactive slot, then
// published by bumping SegmentHeader::policy_generation (slot = gen & 1).
// Attribute names, values and model names are xxh3 hashes under the
// segment's hash seed; names kept as text are for display only.

inline constexpr int kMaxLimits = 64;
inline constexpr int kMaxMatchTerms = 4;
inline constexpr int kMaxModels = 64;
inline constexpr int kMaxAllowedModels = 16;
inline constexpr int kWindowTable = 16;
inline constexpr int kNameWords = 6;      // 48 bytes
inline constexpr int kAttrNameWords = 2;  // 16 bytes

// CompiledLimit::kind
enum LimitKind : Word { kKindRate = 1, kKindBudget = 2, kKindModelAccess = 3 };
// CompiledLimit::measure: what one unit of the limit is.
enum Measure : Word {
  kMeasureRequests = 1,
  kMeasureTokens = 2,  // input + output
  kMeasureInputTokens = 3,
  kMeasureOutputTokens = 4,
  kMeasureNanoUsd = 5,
};
// CompiledLimit::flags
inline constexpr Word kFlagShadow = 1;
inline constexpr Word kFlagGlobal = 2;  // scope: global, served through the central store
// What a global limit does while the store is down (neither bit: fail_closed).
inline constexpr Word kFlagStoreDownLocalShare = 4;
inline constexpr Word kFlagStoreDownFailOpen = 8;

struct CompiledLimit {
  Word identity;  // stable cell identity: name, kind, measure, period, zone, match
  Word kind;
  Word measure;
  Word flags;
  Word period_seconds;  // rates: the period of the rate; budgets: nominal window length
  Word term_count;
  Word term_attr_hash[kMaxMatchTerms];
  Word term_value_hash[kMaxMatchTerms];  // 0 = wildcard "*"
  Word term_attr_name[kMaxMatchTerms][kAttrNameWords];
  Word emission_ns;  // rate: nanoseconds per unit (rounded up)
  Word capacity_ns;  // rate: burst * emission_ns (GCRA delay tolerance + one emission)
  Word burst;        // rate: units
  Word budget;       // budget: units per window
  Word amount;       // rate: units per period (as written in the policy)
  Word window_count;
  Word window_start[kWindowTable];  // budget: unix seconds, ascending
  Word allowed_count;
  Word allowed_model_hash[kMaxAllowedModels];
  Word name[kNameWords];
};
static_assert(sizeof(CompiledLimit) == 67 * sizeof(Word));
static_assert(offsetof(CompiledLimit, emission_ns) == 22 * sizeof(Word));

struct CompiledModel {
  Word name_hash;
  Word input_pusd_per_token;  // pico-dollars per token
  Word output_pusd_per_token;
  Word cached_pusd_per_token;
  Word stats_row;  // the model's ModelCallStats row (0: the row of calls without a priced model)
  Word reserved;
  Word name[kNameWords];
};
static_assert(sizeof(CompiledModel) == 12 * sizeof(Word));

// CompiledPolicy::flags
inline constexpr Word kPolicyAuditRequired = 1;  // a full audit ring refuses calls
inline constexpr Word kPolicyAuditOff = 2;       // clients write no audit records

struct CompiledPolicy {
  Word generation;
  Word limit_count;
  Word model_count;
  Word flags;
  Word compiled_at_unix;
  Word write_seq;  // seqlock: odd while the sidecar writes this slot
  Word reserved[2];
  CompiledModel models[kMaxModels];
  CompiledLimit limits[kMaxLimits];
};
static_assert(offsetof(CompiledPolicy, models) == 64);

// ---------------------------------------------------------------------------
// Key table: open addressing, insert-only. A key slot is claimed by a CAS of
// its hash (never 0) into an empty slot; the slot's cell starts at zero,
// which is a valid state for both cell kinds. The hot line holds only the
// cell, so contention on a hot key is one word; the cold line holds what the
// key is, for display, written once after the claim (`identity` last, with
// release). Decision counts live with each client (ClientSlot), not here.
//
// Global limits: the sidecar's sync loop writes what the central store
// granted this host into the hot line, so a decision reads it with the value.
// A global budget admits up to `ceiling` (units this host may reach in the
// window; 0 until the store has granted any). A global rate runs at
// `host_emission_ns` / `host_capacity_ns` (this host's share); while those
// are 0, or the store is down under local_share, at an even share.

struct KeySlot {
  // hot line
  Word hash;   // 0 = empty
  Word value;  // rate: GCRA theoretical arrival time (monotonic ns); budget: units used
  Word ceiling;
  Word host_emission_ns;
  Word host_capacity_ns;
  Word reserved_hot[3];
  // cold line
  Word identity;      // CompiledLimit::identity, 0 until the label is written
  Word window_start;  // budget window (unix seconds); 0 for rates
  Word label[6];      // matched attribute values joined by '|', truncated
};
static_assert(sizeof(KeySlot) == kLinePair);
static_assert(offsetof(KeySlot, identity) == kCacheLine);

// ---------------------------------------------------------------------------
// Reservation slots. State word = seq << 32 | owner << 20 | actor << 8 |
// status. owner is the client registry index + 1 of the process that holds
// the reservation (0 = detached: held until deadline_ns); actor is the one
// settling or extending it (0 when none). seq changes on every claim, so a
// reservation id (seq << 32 | slot) names one use of one slot. Whoever frees
// a slot zeroes its masks and settle_kind first, so a claimed slot starts
// clean. The sidecar settles slots whose owner (or actor) is proven dead or
// whose deadline passed, using the masks to touch each cell exactly once.

enum ReservationStatus : Word {
  kResFree = 0,
  kResReserving = 1,  // cells being debited; debited_mask says which
  kResActive = 2,     // admitted, waiting for commit / cancel / extend
  kResSettling = 3,   // commit, cancel or abandonment in progress; settled_mask says which
  kResExtending = 4,  // extend in progress; extend_mask says which cells took the extra
};
inline constexpr int kMaxCellsPerReservation = 8;
inline constexpr Word kNoOwner = 0;

struct ReservationCell {
  Word key;          // KeySlot index | kind << 32 | measure << 40 | flags << 48
  Word emission_ns;  // rates: nanoseconds per unit; budgets: 0
};

inline constexpr Word kSidecarActor = 0xfff;  // actor value while the sidecar settles a slot

inline constexpr Word make_state(Word seq, Word owner, Word actor, Word status) {
  return seq << 32 | (owner & 0xfff) << 20 | (actor & 0xfff) << 8 | (status & 0xff);
}
inline constexpr Word state_seq(Word s) { return s >> 32; }
inline constexpr Word state_owner(Word s) { return (s >> 20) & 0xfff; }
inline constexpr Word state_actor(Word s) { return (s >> 8) & 0xfff; }
inline constexpr Word state_status(Word s) { return s & 0xff; }

// Bits 56..63: the limit's index in the reserving client's policy.
inline constexpr Word make_cell_key(Word key_index, Word kind, Word measure, Word flags,
                                    Word limit = 0) {
  return (key_index & 0xffffffff) | (kind & 0xff) << 32 | (measure & 0xff) << 40 |
         (flags & 0xff) << 48 | (limit & 0xff) << 56;
}
inline constexpr Word cell_limit(Word k) { return k >> 56; }
inline constexpr Word cell_key_index(Word k) { return k & 0xffffffff; }
inline constexpr Word cell_kind(Word k) { return (k >> 32) & 0xff; }
inline constexpr Word cell_measure(Word k) { return (k >> 40) & 0xff; }

// ReservationSlot::telemetry: the model's ModelCallStats row in the low 16
// bits, the reserving client's counters_generation above them (so that a
// commit counts per limit only under the policy the limits were numbered by).
inline constexpr Word make_telemetry(Word stats_row, Word generation) {
  return (stats_row & 0xffff) | generation << 16;
}
inline constexpr Word telemetry_row(Word t) { return t & 0xffff; }
inline constexpr Word telemetry_generation(Word t) { return t >> 16; }

struct ReservationSlot {
  Word state;
  Word deadline_ns;  // monotonic; 0 = held while the owner lives
  Word telemetry;    // make_telemetry(model stats row, counters generation), set at reserve
  Word cell_count;
  Word debited_mask;   // cells the reserve has debited
  Word settled_mask;   // cells commit / cancel / abandonment has settled
  Word extend_mask;    // cells the running extend has debited
  Word extend_target;  // est_output once the running extend completes
  Word est_input;
  Word est_output;  // grows with every extend
  Word input_pusd;  // model prices copied at reserve time
  Word output_pusd;
  Word actual_input;
  Word actual_output;
  // The settler's audit record: its ring position + 1 (0 = none), set with
  // settle_kind. Tells the sidecar whether a dead settler published it.
  Word audit_at;
  Word settle_kind;  // set once actual_* are written: 1 commit, 2 cancel
  ReservationCell cells[kMaxCellsPerReservation];
};
static_assert(sizeof(ReservationSlot) == 256);
static_assert(offsetof(ReservationSlot, cells) == 128);

// ---------------------------------------------------------------------------
// Client registry: one slot per attached client (a Client object). The
// counters are written only by the owner (single writer: a load and a store,
// no read-modify-write), so counting costs no contention. Per-limit counters
// are indexed by the limit's position in policy `counters_generation`; the
// client moves them by limit identity when it adopts a new policy.

inline constexpr int kMaxClients = 1024;

// Decision latency, sampled: every kLatencySampleEvery-th reserve of a client
// is timed (monotonic clock, whole call) and counted in bucket i of its
// histogram, the first whose bound 32 << i ns it does not pass; the last
// bucket counts everything slower.
inline constexpr int kLatencyBuckets = 16;
inline constexpr Word kLatencySampleEvery = 128;
inline constexpr Word latency_bucket_bound_ns(int i) { return Word{32} << i; }

struct ClientSlot {
  // line pair: who
  Word pid;         // 0 = free; claimed by CAS
  Word start_time;  // /proc/<pid>/stat field 22: proves a pid was not reused
  Word attached_ns;
  Word departed;  // 1 once the Client detached; the sidecar then reclaims the slot
  Word counters_generation;
  Word reserved_cold[11];
  // line pair: totals
  Word admitted;
  Word rejected;
  Word audit_claim;  // the audit ring span this client is claiming or filling (see AuditRing)
  Word reserved_hot[13];
  // per limit
  Word limit_admitted[kMaxLimits];
  Word limit_rejected[kMaxLimits];  // enforced rejections
  Word limit_shadow_rejected[kMaxLimits];
  // line pair: sampled decision latency (see kLatencyBuckets)
  Word latency_hist[kLatencyBuckets];
  // per limit: commits, and those whose outcome was an error (provider_error, timeout)
  Word limit_committed[kMaxLimits];
  Word limit_failed[kMaxLimits];
};
static_assert(sizeof(ClientSlot) == 23 * kLinePair);
static_assert(offsetof(ClientSlot, admitted) == kLinePair);

// ---------------------------------------------------------------------------
// Call stats: what commits report of the model calls they settle, per model,
// added to by every client (relaxed fetch_add: exact, lock-free). Row 0
// counts calls without a priced model; the sidecar gives every priced model
// a row when it publishes a policy (CompiledModel::stats_row), keeps it for
// the segment's life, and writes the row's name_hash and name first.

// Call outcomes a commit may report (sluice::Outcome).
enum CallOutcome : Word {
  kOutcomeUnreported = 0,
  kOutcomeOk = 1,
  kOutcomeProviderError = 2,
  kOutcomeTimeout = 3,
  kOutcomeCancelledByClient = 4,
  kOutcomeCutOff = 5,  // a stream stopped because the budget was gone
};
inline constexpr int kCallOutcomes = 6;
inline constexpr bool outcome_is_error(Word o) {
  return o == kOutcomeProviderError || o == kOutcomeTimeout;
}

// Provider latency and time to first token: bucket i counts calls of at
// most call_latency_bound_ms(i); the last bucket counts everything slower.
inline constexpr int kCallLatencyBuckets = 20;
inline constexpr Word kCallLatencyBoundsMs[kCallLatencyBuckets - 1] = {
    5,    10,   25,   50,    100,   250,   500,   1000,  2000,  3000,
    4000, 6000, 8000, 10000, 15000, 20000, 30000, 60000, 120000};
inline constexpr Word call_latency_bound_ms(int i) { return kCallLatencyBoundsMs[i]; }
inline constexpr int call_latency_bucket(Word ns) {
  int b = 0;
  while (b < kCallLatencyBuckets - 1 && ns > kCallLatencyBoundsMs[b] * 1'000'000ull) ++b;
  return b;
}

inline constexpr int kModelStatsRows = 128;

struct ModelCallStats {
  // line: which model (written by the sidecar, name_hash last with release)
  Word name_hash;  // 0: row unused (row 0: calls without a priced model)
  Word name[kNameWords];
  Word reserved_name;
  // counts (clients add)
  Word calls[8];                           // commits by CallOutcome
  Word latency_hist[kCallLatencyBuckets];  // calls that reported a latency
  Word latency_sum_us;
  Word ttft_hist[kCallLatencyBuckets];  // calls that reported a time to first token
  Word ttft_sum_us;
  Word reserved[6];
};
static_assert(sizeof(ModelCallStats) == 64 * sizeof(Word));
static_assert(offsetof(ModelCallStats, calls) == kCacheLine);

// ---------------------------------------------------------------------------
// Audit ring: many producers (every client), one consumer (the sidecar), in
// the manner of Aeron's many-to-one ring buffer. The region is an
// AuditRingControl followed by `capacity` bytes (a power of two). Positions
// (tail, head) count bytes since creation; a record sits at position & (capacity
// - 1), 8-byte aligned, and never wraps: a producer that would cross the end
// claims the rest of the buffer as a padding record too.
//
// Producer: computes the span [tail, tail + padding + length), announces it
// in its ClientSlot::audit_claim, claims it with one CAS on `tail` (failing
// when it would pass head + capacity: the record is dropped and counted),
// writes the header with the length negated, the body, then the header with
// the length positive (release), and clears audit_claim (release).
// Consumer: at `head`, a positive length is a record: it copies it out,
// zeroes it, and moves head past it (release). A zero or negative length is
// a record still being written; it waits, unless the client whose claim
// covers the position is proven dead, when it zeroes the claimed span and
// moves past it (skipped). A span with no live claimant and no claim at all
// cannot exist: the sidecar frees a registration only once head has passed
// its claim.

inline constexpr Word kAuditRecordPadding = 1;
inline constexpr Word kAuditRecordEvent = 2;
inline constexpr Word kAuditAlign = 8;

// Record header word: length (bytes, including the header) as a signed 32-bit
// value in the low half, record type in the high half.
inline constexpr Word make_record_header(std::int32_t length, Word type) {
  return type << 32 | static_cast<std::uint32_t>(length);
}
inline constexpr std::int32_t record_length(Word header) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(header));
}
inline constexpr Word record_type(Word header) { return header >> 32; }

// ClientSlot::audit_claim: bit 63 set, claim start / 8 (mod 2^35) in bits
// 28..62, claim length / 8 in bits 0..27 (a claim is at most the capacity, 1 GiB).
inline constexpr Word kClaimStartMask = (Word{1} << 35) - 1;
inline constexpr Word make_audit_claim(Word start, Word length) {
  return Word{1} << 63 | ((start >> 3) & kClaimStartMask) << 28 | ((length >> 3) & 0xfffffff);
}
// Whether `claim` covers byte position `pos`; sets `end` to the claim's end.
inline constexpr bool audit_claim_covers(Word claim, Word pos, Word* end) {
  if (!(claim >> 63)) return false;
  const Word start8 = (claim >> 28) & kClaimStartMask, len8 = claim & 0xfffffff;
  const Word into8 = ((pos >> 3) - start8) & kClaimStartMask;
  if (into8 >= len8) return false;
  *end = pos + (len8 - into8) * 8;
  return true;
}

// Whether the consumer's `head` has passed the whole of `claim`.
inline constexpr bool audit_claim_passed(Word claim, Word head) {
  if (!(claim >> 63)) return true;
  const Word start8 = (claim >> 28) & kClaimStartMask, len8 = claim & 0xfffffff;
  const Word past8 = ((head >> 3) - start8) & kClaimStartMask;
  return past8 >= len8 && past8 < (kClaimStartMask >> 1);  // ahead, not behind
}

struct AuditRingControl {
  // line pair: producers
  Word tail;
  Word reserved_tail[15];
  // line pair: consumer
  Word head;
  Word reserved_head[15];
  // line pair: counts producers add to (rarely)
  Word dropped;  // records not written because the ring was full
  Word refused;  // calls rejected because audit is required and the ring was full
  Word reserved_drop[14];
  // line pair: the sidecar's drain and writer, for `sluice status`
  Word drained;        // records copied out of the ring
  Word written;        // records on disk (handed to the file writer)
  Word skipped;        // records of producers that died mid-write
  Word corrupt;        // spans dropped because their header was not a valid record
  Word high_water;     // the most bytes ever waiting in the ring
  Word bytes_on_disk;  // audit files in the audit dir
  Word last_fsync_unix_ns;
  Word writer_kind;  // 1 io_uring, 2 pwrite
  Word reserved_stats[8];
};
static_assert(sizeof(AuditRingControl) == 4 * kLinePair);
static_assert(offsetof(AuditRingControl, head) == kLinePair);

// The fixed part of an event record; the call's attributes follow it as
// [u8 name length][u8 value length][name][value]... padded to 8 bytes.
enum AuditEvent : Word {
  kAuditReserve = 0,
  kAuditCommit = 1,
  kAuditCancel = 2,
  kAuditExtend = 3,
  kAuditAbandon = 4,
};
enum AuditDecision : Word {
  kAuditAdmitted = 0,
  kAuditRejected = 1,
  kAuditSettled = 2,
  kAuditAbandoned = 3,
};
inline constexpr Word kAuditNoLimit = 0xff;
// The reason byte of an abandon record: what the sidecar did.
enum AuditAbandonKind : Word {
  kAbandonChargedEstimate = 1,  // admitted, never settled: charged at the estimate
  kAbandonRefunded = 2,         // died while reserving: the debits were given back
  kAbandonFinishedCommit = 3,   // died while committing: the commit was completed
  kAbandonFinishedCancel = 4,   // died while cancelling: the cancel was completed
};
inline constexpr std::size_t kAuditMaxAttributeBytes = 1024;
inline constexpr std::size_t kAuditMaxNameBytes = 63;
inline constexpr std::size_t kAuditMaxValueBytes = 255;

struct AuditRecord {
  Word header;  // make_record_header(length, kAuditRecordEvent)
  Word time_unix_ns;
  Word reservation_id;
  Word pid;
  Word start_time;
  // event | decision << 8 | reason << 16 | limit << 24 | attribute count << 32
  // | attribute bytes << 40 (before padding)
  Word info;
  Word policy_generation;
  Word est_input;
  Word est_output;
  Word actual_input;
  Word actual_output;
  Word cost_nusd;
  Word retry_after_ns;
  Word shadow_mask;  // bit l: shadow limit l would have rejected
  // commits: what the caller reported of the model call (0 = not reported)
  Word call_info;  // make_call_info(outcome, http status, model version bytes)
  Word latency_ns;
  Word ttft_ns;
};
static_assert(sizeof(AuditRecord) == 17 * sizeof(Word));
// A commit's model version (call_info) follows its fixed part, padded to 8 bytes.
inline constexpr std::size_t kAuditMaxVersionBytes = 128;
inline constexpr std::size_t kAuditMaxRecordBytes = sizeof(AuditRecord) + kAuditMaxAttributeBytes;

inline constexpr Word make_call_info(Word outcome, Word http_status, Word version_bytes) {
  return (outcome & 0xff) | (http_status & 0xffff) << 8 | (version_bytes & 0xff) << 24;
}
inline constexpr Word call_outcome(Word c) { return c & 0xff; }
inline constexpr Word call_http_status(Word c) { return (c >> 8) & 0xffff; }
inline constexpr Word call_version_bytes(Word c) { return (c >> 24) & 0xff; }

inline constexpr Word make_audit_info(Word event, Word decision, Word reason, Word limit,
                                      Word attr_count, Word attr_bytes) {
  return (event & 0xff) | (decision & 0xff) << 8 | (reason & 0xff) << 16 | (limit & 0xff) << 24 |
         (attr_count & 0xff) << 32 | (attr_bytes & 0xffff) << 40;
}
inline constexpr Word info_event(Word i) { return i & 0xff; }
inline constexpr Word info_decision(Word i) { return (i >> 8) & 0xff; }
inline constexpr Word info_reason(Word i) { return (i >> 16) & 0xff; }
inline constexpr Word info_limit(Word i) { return (i >> 24) & 0xff; }
inline constexpr Word info_attr_count(Word i) { return (i >> 32) & 0xff; }
inline constexpr Word info_attr_bytes(Word i) { return (i >> 40) & 0xffff; }

// ---------------------------------------------------------------------------
// Header at offset 0.

struct Region {
  Word offset;
  Word size;   // bytes
  Word count;  // records (slots, entries); bytes for the audit ring
};

inline constexpr int kAuditDirWords = 32;  // 256 bytes

struct SegmentHeader {
  Word magic;
  Word layout_major;
  Word layout_minor;
  Word ready;  // kReadyValue, written last by the sidecar at creation
  Word segment_size;
  Word hash_seed;
  Word created_unix;
  Word max_keys;  // keys_used may not pass this (table capacity is larger)
  Region policy[2];
  Region keys;
  Region reservations;
  Region clients;
  Region audit;
  Word instance;  // random, non-zero, set at creation: names this segment in audit files
  Region calls;   // ModelCallStats rows
  Word reserved0[2];
  // line pair: sidecar liveness and clock calibration
  Word sidecar_pid;
  Word sidecar_start_time;
  Word heartbeat_ns;    // monotonic
  Word wall_offset_ns;  // CLOCK_REALTIME - CLOCK_MONOTONIC, refreshed with the heartbeat
  // Central store, as global limits see it: up until this monotonic time
  // (moved on by every successful sync), and how many hosts share the global
  // rates (the even share's divisor; 0 counts as 1).
  Word store_up_until_ns;
  Word store_hosts;
  Word store_sync_interval_ns;  // a global cell's retry hint: more may come at the next sync
  Word reserved1[9];
  // line pair: policy
  Word policy_generation;  // 0 = none published yet
  Word reserved2[15];
  // line pair: table use and totals folded in from departed clients
  Word keys_used;
  Word admitted_departed;
  Word rejected_departed;
  Word abandoned_total;
  Word limit_departed_generation;  // policy the per-limit counts below refer to
  Word fold_seq;  // odd while the sidecar moves a departed client's counts into the header
  Word reserved3[10];
  // per-limit counts folded in from departed clients
  Word limit_admitted_departed[kMaxLimits];
  Word limit_rejected_departed[kMaxLimits];
  Word limit_shadow_rejected_departed[kMaxLimits];
  // line pair: where the sidecar writes the audit trail (absolute path, text)
  Word audit_dir[kAuditDirWords];
  // line pair: the central store, for `sluice status` (written by the sync loop)
  Word store_kind;               // StoreKind
  Word store_state;              // StoreState
  Word store_last_sync_unix_ns;  // the last successful sync
  Word store_last_failure_unix_ns;
  Word store_syncs;
  Word store_failures;
  Word store_pending;           // pushes waiting to be retried
  Word store_sync_cpu_ns;       // CPU time of the last sync
  Word store_limit_generation;  // policy the per-limit figures below refer to
  Word store_cells;             // cells in the last sync
  Word reserved4[6];
  Word store_where[kAuditDirWords];  // "sqlite:var/sluice.db", "redis://127.0.0.1:6379/0" (text)
  Word store_last_error[kAuditDirWords];  // the last failure, one line (text)
  // per global budget limit, summed over its keys in the current window (units)
  Word store_allotted[kMaxLimits];     // granted to this host
  Word store_exposed[kMaxLimits];      // of which clients may spend
  Word store_host_used[kMaxLimits];    // used on this host
  Word store_global_left[kMaxLimits];  // budget - used over all hosts
  // line pair: sampled decision latency folded in from departed clients
  Word latency_departed[kLatencyBuckets];
  // per-limit commit counts folded in from departed clients (ClientSlot::limit_committed, _failed)
  Word limit_committed_departed[kMaxLimits];
  Word limit_failed_departed[kMaxLimits];
};
static_assert(offsetof(SegmentHeader, sidecar_pid) == 256);
static_assert(offsetof(SegmentHeader, policy_generation) == 384);
static_assert(offsetof(SegmentHeader, keys_used) == 512);
static_assert(offsetof(SegmentHeader, store_kind) == 640 + sizeof(Word[3][kMaxLimits]) + 256);
static_assert(sizeof(SegmentHeader) == 640 + sizeof(Word[9][kMaxLimits]) + 256 + 128 +
                                           sizeof(Word[2][kAuditDirWords]) + kLinePair);

enum StoreKind : Word { kStoreNone = 0, kStoreSqlite = 1, kStoreRedis = 2 };
enum StoreState : Word { kStoreUnknown = 0, kStoreUp = 1, kStoreDown = 2 };

inline constexpr std::size_t kHeaderBytes = 8192;  // header region, page-aligned
static_assert(sizeof(SegmentHeader) <= kHeaderBytes);

}  // namespace sluice::shm
