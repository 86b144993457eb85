#include "reclaim.h"

#include <cstddef>
#include <cstdint>
#include <vector>

#include "process.h"
#include "segment_layout.h"
#include "settle.h"

namespace sluice {

using namespace shm;  // NOLINT(google-build-using-namespace)

namespace {

// Takes a slot over for the sidecar: `st` -> SETTLING by the sidecar.
bool take_over(ReservationSlot& r, Word st) {
  return compare_exchange_strong(
      r.state, st, make_state(state_seq(st), state_owner(st), kSidecarActor, kResSettling));
}

// What a reservation charged at its estimate costs.
Word estimated_cost(const ReservationSlot& r) {
  return detail::cost_nusd(load_relaxed(r.est_input), load_relaxed(r.est_output),
                           load_relaxed(r.input_pusd), load_relaxed(r.output_pusd));
}

// The audit record of a reservation the sidecar settled, read before the
// slot is released.
shm::AuditRecord abandon_record(const SegmentMap& seg, const ReservationSlot& r, Word slot_index,
                                Word st, Word kind, Word cost, Word now_unix_ns) {
  AuditRecord a{};
  a.time_unix_ns = now_unix_ns;
  a.reservation_id = state_seq(st) << 32 | slot_index;
  const Word owner = state_owner(st) != kNoOwner ? state_owner(st) : state_actor(st);
  if (owner != 0 && owner <= seg.client_count()) {
    a.pid = load_relaxed(seg.clients()[owner - 1].pid);
    a.start_time = load_relaxed(seg.clients()[owner - 1].start_time);
  }
  a.info = make_audit_info(kAuditAbandon, kAuditAbandoned, kind, kAuditNoLimit, 0, 0);
  a.policy_generation = load_relaxed(seg.header().policy_generation);
  a.est_input = load_relaxed(r.est_input);
  a.est_output = load_relaxed(r.est_output);
  if (kind == kAbandonFinishedCommit) {
    a.actual_input = load_relaxed(r.actual_input);
    a.actual_output = load_relaxed(r.actual_output);
  }
  a.cost_nusd = cost;
  return a;
}

// Whether the dead settler of slot `index` published its own record for the
// settlement. Its claim holds the span until the ring's consumer passes it,
// and the consumer does not pass a dead producer's span while the producer
// still settles a slot (AuditRingReader::skip_dead_claim): so a span behind
// head was delivered, and one at or after it is published iff its header says so.
bool settler_published(const SegmentMap& seg, const ReservationSlot& r, Word index, Word st) {
  const Word at = load_relaxed(r.audit_at);
  if (at == 0) return false;
  const Word position = at - 1;
  const Word head = load_acquire(seg.audit_control().head);
  const Word cap = seg.audit_capacity();
  const Word ahead = position - head;
  if (ahead >= cap) return static_cast<std::int64_t>(ahead) < 0;  // behind head: delivered
  if (position % kAuditAlign != 0 || (position & (cap - 1)) + sizeof(AuditRecord) > cap) {
    return false;  // not a position a client could have claimed
  }
  const Word* record = seg.audit_ring() + (position & (cap - 1)) / 8;
  if (record_length(load_acquire(record[0])) <= 0) return false;
  const Word id = state_seq(st) << 32 | index;
  return load_relaxed(record[offsetof(AuditRecord, reservation_id) / 8]) == id;
}

}  // namespace

ReclaimStats reclaim(const SegmentMap& seg, std::uint64_t now_ns,
                     std::vector<shm::AuditRecord>* settled, std::uint64_t now_unix_ns) {
  auto record = [&](const ReservationSlot& r, Word i, Word st, Word kind, Word cost) {
    if (settled != nullptr) {
      settled->push_back(abandon_record(seg, r, i, st, kind, cost, now_unix_ns));
    }
  };
  ReclaimStats stats;
  const Word n_clients = seg.client_count();
  // gone[i] is registration i + 1: its process died or its Client detached.
  std::vector<bool> gone(n_clients + 1, true);
  std::vector<Word> registered_at_scan(n_clients, 0);  // the pid seen, 0 = free
  for (Word i = 0; i < n_clients; ++i) {
    const ClientSlot& c = seg.clients()[i];
    const Word pid = load_acquire(c.pid);
    registered_at_scan[i] = pid;
    if (pid == 0) continue;
    gone[i + 1] = load_acquire(c.departed) != 0 ||
                  !process_alive(static_cast<pid_t>(pid), load_relaxed(c.start_time));
  }
  std::vector<bool> referenced(n_clients + 1, false);
  auto holder_gone = [&](Word who) {
    if (who == kSidecarActor || who > n_clients || who == 0) return true;
    const ClientSlot& c = seg.clients()[who - 1];
    // A registration that was free at the scan above may belong to a client
    // that attached since: only a registration still free is an orphan.
    if (gone[who] && registered_at_scan[who - 1] == 0) {
      return load_acquire(c.pid) == 0;
    }
    return static_cast<bool>(gone[who]);
  };

  for (Word i = 0; i < seg.reservation_count(); ++i) {
    ReservationSlot& r = seg.reservations()[i];
    Word st = load_acquire(r.state);
    const Word seq = state_seq(st);
    switch (state_status(st)) {
      case kResReserving:
        if (!holder_gone(state_owner(st)) || !take_over(r, st)) break;
        detail::settle_cells(seg, r, {0, 0, true});  // refund what was debited
        record(r, i, st, kAbandonRefunded, 0);
        detail::release_slot(r, seq);
        ++stats.refunded_partial;
        break;
      case kResActive: {
        const Word owner = state_owner(st);
        const Word deadline = load_relaxed(r.deadline_ns);
        const bool expired = owner == kNoOwner && deadline != 0 && now_ns > deadline;
        if (!(owner != kNoOwner && holder_gone(owner)) && !expired) break;
        if (!take_over(r, st)) break;
        record(r, i, st, kAbandonChargedEstimate, estimated_cost(r));
        detail::release_slot(r, seq);  // charged at the estimate: cells stay as debited
        ++stats.abandoned;
        break;
      }
      case kResSettling: {
        if (!holder_gone(state_actor(st)) || !take_over(r, st)) break;
        const Word kind = load_acquire(r.settle_kind);
        if (kind != 0) {
          const Word cost = detail::settle_cells(
              seg, r, {load_relaxed(r.actual_input), load_relaxed(r.actual_output), kind == 2});
          if (!settler_published(seg, r, i, st)) {
            record(r, i, st, kind == 2 ? kAbandonFinishedCancel : kAbandonFinishedCommit,
                   kind == 2 ? 0 : cost);
          }
          ++stats.finished;
        } else {
          record(r, i, st, kAbandonChargedEstimate, estimated_cost(r));
          ++stats.abandoned;  // died before writing its usage: the estimate stands
        }
        detail::release_slot(r, seq);
        break;
      }
      case kResExtending: {
        if (!holder_gone(state_actor(st))) break;
        const Word target = load_relaxed(r.extend_target);
        const Word out = load_relaxed(r.est_output);
        const Word back = make_state(seq, state_owner(st), 0, kResActive);
        const Word mine = make_state(seq, state_owner(st), kSidecarActor, kResExtending);
        if (!compare_exchange_strong(r.state, st, mine)) break;
        if (target > out) {
          detail::refund_extension(seg, r, target - out);
          ++stats.extends_undone;
        }
        store_relaxed(r.extend_mask, 0);
        store_relaxed(r.extend_target, 0);
        store_release(r.state, back);
        break;
      }
      default:
        break;
    }
    // A registration still named by a live slot is not freed on this pass.
    st = load_acquire(r.state);
    if (state_status(st) != kResFree) {
      if (state_owner(st) <= n_clients) referenced[state_owner(st)] = true;
      if (state_actor(st) <= n_clients) referenced[state_actor(st)] = true;
    }
  }

  SegmentHeader& h = seg.header();
  const Word abandoned = stats.abandoned;
  for (Word i = 0; i < n_clients; ++i) {
    ClientSlot& c = seg.clients()[i];
    // Only a registration seen taken at the scan, by the same pid, is judged:
    // one free then may since belong to a client that attached meanwhile.
    const Word pid = load_acquire(c.pid);
    if (pid == 0 || pid != registered_at_scan[i] || !gone[i + 1] || referenced[i + 1]) continue;
    // Its audit claim names it until the ring's consumer has passed (or skipped) it.
    if (!audit_claim_passed(load_acquire(c.audit_claim), load_acquire(seg.audit_control().head))) {
      continue;
    }
    store_relaxed(c.audit_claim, 0);
    fetch_add(h.fold_seq, 1);  // odd: tools reading counts retry until it is even again
    fetch_add(h.admitted_departed, load_relaxed(c.admitted));
    fetch_add(h.rejected_departed, load_relaxed(c.rejected));
    store_relaxed(c.admitted, 0);
    store_relaxed(c.rejected, 0);
    const bool same_policy =
        load_relaxed(c.counters_generation) == load_relaxed(h.limit_departed_generation);
    for (int l = 0; l < kMaxLimits; ++l) {
      if (same_policy) {  // counts of an older policy are dropped; the totals keep them
        fetch_add(h.limit_admitted_departed[l], load_relaxed(c.limit_admitted[l]));
        fetch_add(h.limit_rejected_departed[l], load_relaxed(c.limit_rejected[l]));
        fetch_add(h.limit_shadow_rejected_departed[l], load_relaxed(c.limit_shadow_rejected[l]));
        fetch_add(h.limit_committed_departed[l], load_relaxed(c.limit_committed[l]));
        fetch_add(h.limit_failed_departed[l], load_relaxed(c.limit_failed[l]));
      }
      store_relaxed(c.limit_admitted[l], 0);
      store_relaxed(c.limit_rejected[l], 0);
      store_relaxed(c.limit_shadow_rejected[l], 0);
      store_relaxed(c.limit_committed[l], 0);
      store_relaxed(c.limit_failed[l], 0);
    }
    for (int b = 0; b < kLatencyBuckets; ++b) {
      fetch_add(h.latency_departed[b], load_relaxed(c.latency_hist[b]));
      store_relaxed(c.latency_hist[b], 0);
    }
    store_relaxed(c.counters_generation, 0);
    store_relaxed(c.start_time, 0);
    store_relaxed(c.departed, 0);
    store_release(c.pid, 0);
    fetch_add(h.fold_seq, 1);
    ++stats.clients_freed;
  }
  if (abandoned != 0) fetch_add(h.abandoned_total, abandoned);
  return stats;
}

}  // namespace sluice
