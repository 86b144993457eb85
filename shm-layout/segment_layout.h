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
//           [reservation slots][client registry][audit ring]
#pragma once

#include <cstddef>
#include <cstdint>

#include "atomics.h"

namespace sluice::shm {

inline constexpr Word kMagic = 0x3130454349554c53ULL;  // "SLUICE01" little-endian
inline constexpr Word kLayoutMajor = 1;
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
inline constexpr Word kFlagGlobal = 2;

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
  Word name[kNameWords];
};
static_assert(sizeof(CompiledModel) == 10 * sizeof(Word));

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

struct KeySlot {
  // hot line
  Word hash;   // 0 = empty
  Word value;  // rate: GCRA theoretical arrival time (monotonic ns); budget: units used
  Word reserved_hot[6];
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

inline constexpr Word make_cell_key(Word key_index, Word kind, Word measure, Word flags) {
  return (key_index & 0xffffffff) | (kind & 0xff) << 32 | (measure & 0xff) << 40 |
         (flags & 0xff) << 48;
}
inline constexpr Word cell_key_index(Word k) { return k & 0xffffffff; }
inline constexpr Word cell_kind(Word k) { return (k >> 32) & 0xff; }
inline constexpr Word cell_measure(Word k) { return (k >> 40) & 0xff; }

struct ReservationSlot {
  Word state;
  Word deadline_ns;  // monotonic; 0 = held while the owner lives
  Word reserved0;
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
  Word reserved1;
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
  Word reserved_hot[14];
  // per limit
  Word limit_admitted[kMaxLimits];
  Word limit_rejected[kMaxLimits];  // enforced rejections
  Word limit_shadow_rejected[kMaxLimits];
};
static_assert(sizeof(ClientSlot) == 14 * kLinePair);
static_assert(offsetof(ClientSlot, admitted) == kLinePair);

// ---------------------------------------------------------------------------
// Header at offset 0.

struct Region {
  Word offset;
  Word size;   // bytes
  Word count;  // records (slots, entries); bytes for the audit ring
};

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
  Word reserved0[6];
  // line pair: sidecar liveness and clock calibration
  Word sidecar_pid;
  Word sidecar_start_time;
  Word heartbeat_ns;    // monotonic
  Word wall_offset_ns;  // CLOCK_REALTIME - CLOCK_MONOTONIC, refreshed with the heartbeat
  Word reserved1[12];
  // line pair: policy
  Word policy_generation;  // 0 = none published yet
  Word reserved2[15];
  // line pair: table use and totals folded in from departed clients
  Word keys_used;
  Word admitted_departed;
  Word rejected_departed;
  Word abandoned_total;
  Word limit_departed_generation;  // policy the per-limit counts below refer to
  Word reserved3[11];
  // per-limit counts folded in from departed clients
  Word limit_admitted_departed[kMaxLimits];
  Word limit_rejected_departed[kMaxLimits];
  Word limit_shadow_rejected_departed[kMaxLimits];
};
static_assert(offsetof(SegmentHeader, sidecar_pid) == 256);
static_assert(offsetof(SegmentHeader, policy_generation) == 384);
static_assert(offsetof(SegmentHeader, keys_used) == 512);
static_assert(sizeof(SegmentHeader) == 640 + sizeof(Word[3][kMaxLimits]));
static_assert(sizeof(SegmentHeader) <= 4096);

inline constexpr std::size_t kHeaderBytes = 4096;  // header region, page-aligned

}  // namespace sluice::shm
