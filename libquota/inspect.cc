// Read-only inspection of a segment: a snapshot of the header, the client
// registry and the reservation slots, and the key table decoded against a
// private copy of the published policy. Never writes a shared word.
#include "sluice/inspect.h"

#include "policy_snapshot.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <ctime>
#include <memory>
#include <string_view>
#include <unordered_map>

#include "clock.h"
#include "process.h"
#include "segment.h"
#include "segment_layout.h"

namespace sluice {

using shm::Word;
using namespace shm;  // NOLINT(google-build-using-namespace): the layout's names read best bare

namespace {

constexpr std::uint64_t kHeartbeatFreshNs = 2'000'000'000ull;

// ---------------------------------------------------------------------------
// Status

bool sidecar_alive(const SegmentHeader& h, std::uint64_t now_ns, std::uint64_t* age_ms) {
  const Word pid = load_acquire(h.sidecar_pid);
  const Word beat = load_acquire(h.heartbeat_ns);
  const Word age = now_ns > beat ? now_ns - beat : 0;
  *age_ms = beat == 0 ? 0 : age / 1'000'000ull;
  if (pid == 0 || beat == 0 || age > kHeartbeatFreshNs) return false;
  if (pid > static_cast<Word>(INT32_MAX)) return false;
  return process_alive(static_cast<pid_t>(pid), load_relaxed(h.sidecar_start_time));
}

void count_clients(const SegmentMap& seg, SegmentStatus& st) {
  for (Word i = 0; i < seg.client_count(); ++i) {
    const ClientSlot& c = seg.clients()[i];
    const Word pid = load_acquire(c.pid);
    if (pid == 0) continue;
    st.admitted_total += load_acquire(c.admitted);  // acquire: the fold_seq check comes after
    st.rejected_total += load_acquire(c.rejected);
    for (int b = 0; b < kLatencyBuckets; ++b)
      st.latency_counts[b] += load_acquire(c.latency_hist[b]);
    const bool departed = load_relaxed(c.departed) != 0;
    if (!departed && pid <= static_cast<Word>(INT32_MAX) &&
        process_alive(static_cast<pid_t>(pid), load_relaxed(c.start_time))) {
      ++st.clients_attached;
    }
  }
}

std::uint64_t count_in_flight(const SegmentMap& seg) {
  std::uint64_t n = 0;
  for (Word i = 0; i < seg.reservation_count(); ++i) {
    if (state_status(load_relaxed(seg.reservations()[i].state)) != kResFree) ++n;
  }
  return n;
}

// ---------------------------------------------------------------------------
// Policy: a private copy of the published slot, taken under its seqlock.

Result<std::unique_ptr<CompiledPolicy>> current_policy(const SegmentMap& seg) {
  const std::string& name = seg.name();
  for (int attempt = 0; attempt < 64; ++attempt) {
    const Word generation = load_acquire(seg.header().policy_generation);
    if (generation == 0) {
      return Status(ErrorCode::kNotReady, "segment '" + name +
                                              "' has no policy published yet; wait for sluiced "
                                              "to finish starting, or check its log");
    }
    auto copy = std::make_unique<CompiledPolicy>();
    const SnapshotResult r = snapshot_policy(seg, generation, *copy);
    if (r == SnapshotResult::kBusy) continue;  // republished while we copied
    if (r != SnapshotResult::kOk) break;
    return copy;
  }
  return Status(ErrorCode::kIncompatible, "segment '" + name +
                                              "' holds a policy that cannot be read (being "
                                              "rewritten, or corrupt); retry, or restart sluiced");
}

// ---------------------------------------------------------------------------
// Key rows

template <int N>
std::string text_of(const Word (&words)[N]) {
  char buf[N * 8];
  std::memcpy(buf, words, sizeof buf);
  return std::string(buf, strnlen(buf, sizeof buf));
}

const char* unit_of(Word measure) {
  switch (measure) {
    case kMeasureRequests:
      return "requests";
    case kMeasureTokens:
      return "tokens";
    case kMeasureInputTokens:
      return "input_tokens";
    case kMeasureOutputTokens:
      return "output_tokens";
    case kMeasureNanoUsd:
      return "usd";
  }
  return "units";
}

std::string iso_utc(std::uint64_t unix_seconds) {
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm;
  if (::gmtime_r(&t, &tm) == nullptr) return std::to_string(unix_seconds);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

// "team=pricing,feature=quote-agent" from the limit's attribute names and the
// key's label (values joined by '|'; the last value takes what is left).
std::string attributes_of(const CompiledLimit& limit, const KeySlot& key) {
  char label[sizeof(key.label)];
  const std::string_view values(label, load_text(key.label, label));
  std::string out;
  std::size_t at = 0;
  for (Word t = 0; t < limit.term_count; ++t) {
    std::size_t end = t + 1 == limit.term_count ? std::string_view::npos : values.find('|', at);
    if (end == std::string_view::npos) end = values.size();
    if (t > 0) out += ',';
    out += text_of(limit.term_attr_name[t]);
    out += '=';
    if (at <= values.size()) out += values.substr(at, end - at);
    at = end + 1;
  }
  return out;
}

// The start of the budget window containing `wall_s`, as the engine picks it.
Word current_window(const CompiledLimit& l, Word wall_s) {
  if (l.window_count == 0) return 0;
  Word w = 0;
  while (w + 1 < l.window_count && l.window_start[w + 1] <= wall_s) ++w;
  return l.window_start[w];
}

void fill_rate(const CompiledLimit& l, Word tat, Word now_ns, KeyRow& row) {
  const Word ahead = tat > now_ns ? tat - now_ns : 0;
  row.rate = true;
  row.window = "rolling";
  row.used = ahead / l.emission_ns + (ahead % l.emission_ns != 0 ? 1 : 0);
  row.limit_value = l.burst;
}

void fill_budget(const CompiledLimit& l, Word value, Word window_start, KeyRow& row) {
  row.window_start_unix = window_start;
  const Word n = std::min<Word>(l.window_count, kWindowTable);
  for (Word w = 0; w + 1 < n; ++w) {
    if (l.window_start[w] == window_start) row.window_end_unix = l.window_start[w + 1];
  }
  row.window = iso_utc(window_start);
  row.used = value;
  row.limit_value = l.budget;
}

KeyRow row_for(const CompiledLimit& l, const KeySlot& key, Word now_ns) {
  KeyRow row;
  row.limit = text_of(l.name);
  row.attributes = attributes_of(l, key);
  row.unit = unit_of(l.measure);
  row.shadow = (l.flags & kFlagShadow) != 0;
  const Word value = load_relaxed(key.value);
  if (l.kind == kKindRate) {
    fill_rate(l, value, now_ns, row);
  } else {
    fill_budget(l, value, load_relaxed(key.window_start), row);
  }
  row.remaining = row.limit_value > row.used ? row.limit_value - row.used : 0;
  return row;
}

const char* audit_writer_name(Word kind) {
  switch (kind) {
    case 1:
      return "io_uring";
    case 2:
      return "pwrite";
  }
  return "none";
}

// The audit counters of the ring's control block (bounds checked by attach)
// and the directory sluiced publishes in the header.
void read_audit(const SegmentMap& seg, SegmentStatus& st) {
  const AuditRingControl& c = seg.audit_control();
  st.audit_writer = audit_writer_name(load_acquire(c.writer_kind));
  st.audit_drained = load_relaxed(c.drained);
  st.audit_written = load_relaxed(c.written);
  st.audit_dropped = load_relaxed(c.dropped);
  st.audit_refused = load_relaxed(c.refused);
  st.audit_skipped = load_relaxed(c.skipped);
  st.audit_corrupt = load_relaxed(c.corrupt);
  st.audit_ring_high_water_bytes = load_relaxed(c.high_water);
  st.audit_ring_capacity_bytes = seg.audit_capacity();
  st.audit_bytes_on_disk = load_relaxed(c.bytes_on_disk);
  st.audit_last_fsync_unix_ns = load_relaxed(c.last_fsync_unix_ns);
  if (st.audit_last_fsync_unix_ns != 0) {
    const Word now = realtime_ns();
    const Word at = st.audit_last_fsync_unix_ns;
    st.audit_last_fsync_age_ms = now > at ? (now - at) / 1'000'000ull : 0;
  }
  char dir[sizeof(SegmentHeader::audit_dir)];
  st.audit_dir.assign(dir, load_text(seg.header().audit_dir, dir));
}

const char* store_health(Word state) {
  switch (state) {
    case kStoreUp:
      return "up";
    case kStoreDown:
      return "down";
  }
  return "unknown";
}

// What the sync loop publishes in the header; per-limit figures only when
// they refer to the policy clients decide with now.
void read_store(const SegmentMap& seg, SegmentStatus& st) {
  const SegmentHeader& h = seg.header();
  char text[sizeof(SegmentHeader::store_where)];
  st.store.assign(text, load_text(h.store_where, text));
  if (st.store.empty()) return;
  st.store_health = store_health(load_relaxed(h.store_state));
  st.store_last_sync_unix_ns = load_relaxed(h.store_last_sync_unix_ns);
  if (st.store_last_sync_unix_ns != 0) {
    const Word now = realtime_ns();
    st.store_last_sync_age_ms =
        now > st.store_last_sync_unix_ns ? (now - st.store_last_sync_unix_ns) / 1'000'000ull : 0;
  }
  st.store_syncs = load_relaxed(h.store_syncs);
  st.store_failures = load_relaxed(h.store_failures);
  st.store_retry_pending = load_relaxed(h.store_pending) != 0;
  st.store_sync_cpu_us = load_relaxed(h.store_sync_cpu_ns) / 1000;
  st.store_cells = load_relaxed(h.store_cells);
  st.store_hosts = load_relaxed(h.store_hosts);
  st.store_last_error.assign(text, load_text(h.store_last_error, text));
  Result<std::unique_ptr<CompiledPolicy>> policy = current_policy(seg);
  if (!policy.ok()) return;
  const CompiledPolicy& p = *policy.value();
  const Word generation = load_acquire(h.store_limit_generation);
  for (Word i = 0; i < p.limit_count && generation == p.generation; ++i) {
    const CompiledLimit& l = p.limits[i];
    if (l.kind != kKindBudget || !(l.flags & kFlagGlobal)) continue;
    GlobalLimitRow row;
    row.limit = text_of(l.name);
    row.unit = unit_of(l.measure);
    row.granted = load_relaxed(h.store_allotted[i]);
    row.exposed = load_relaxed(h.store_exposed[i]);
    row.used = load_relaxed(h.store_host_used[i]);
    row.held = row.granted > row.used ? row.granted - row.used : 0;
    row.global_remaining = load_relaxed(h.store_global_left[i]);
    st.global_limits.push_back(row);
  }
  if (load_acquire(h.store_limit_generation) != generation) st.global_limits.clear();
}

Word wall_seconds(const SegmentHeader& h, Word now_ns) {
  const Word offset = load_relaxed(h.wall_offset_ns);
  return (offset != 0 ? now_ns + offset : realtime_ns()) / 1'000'000'000ull;
}

}  // namespace

Result<SegmentStatus> read_status(const std::string& segment) {
  Result<SegmentMap> seg = SegmentMap::attach(segment, SegmentMap::Access::kReadOnly);
  if (!seg.ok()) return seg.status();
  const SegmentHeader& h = seg->header();
  SegmentStatus st;
  st.segment = segment;
  st.sidecar_alive = sidecar_alive(h, monotonic_ns(), &st.heartbeat_age_ms);
  st.pid = load_acquire(h.sidecar_pid);
  st.policy_generation = load_acquire(h.policy_generation);
  st.keys_used = load_relaxed(h.keys_used);
  st.keys_capacity = load_relaxed(h.max_keys);
  st.reservations_in_flight = count_in_flight(seg.value());
  st.reservations_capacity = seg->reservation_count();
  // Header and clients are read between two equal, even fold_seq values, so
  // a client the sidecar is folding into the header is counted once.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const Word before = load_acquire(h.fold_seq);
    if (before & 1) continue;
    st.admitted_total = load_acquire(h.admitted_departed);
    st.rejected_total = load_acquire(h.rejected_departed);
    st.latency_counts.assign(kLatencyBuckets, 0);
    for (int b = 0; b < kLatencyBuckets; ++b)
      st.latency_counts[b] = load_acquire(h.latency_departed[b]);
    st.clients_attached = 0;
    count_clients(seg.value(), st);
    if (load_acquire(h.fold_seq) == before) break;
  }
  st.abandoned_total = load_relaxed(h.abandoned_total);
  st.latency_sample_every = kLatencySampleEvery;
  for (int b = 0; b < kLatencyBuckets; ++b) {
    st.latency_bounds_ns.push_back(b + 1 < kLatencyBuckets ? latency_bucket_bound_ns(b)
                                                           : ~std::uint64_t{0});
  }
  st.segment_bytes = seg->size();
  read_audit(seg.value(), st);
  read_store(seg.value(), st);
  return st;
}

Result<std::vector<KeyRow>> list_keys(const std::string& segment, bool all_windows) {
  Result<SegmentMap> seg = SegmentMap::attach(segment, SegmentMap::Access::kReadOnly);
  if (!seg.ok()) return seg.status();
  Result<std::unique_ptr<CompiledPolicy>> policy = current_policy(seg.value());
  if (!policy.ok()) return policy.status();
  const CompiledPolicy& p = *policy.value();
  std::unordered_map<Word, const CompiledLimit*> by_identity;
  for (Word i = 0; i < p.limit_count; ++i) by_identity.emplace(p.limits[i].identity, &p.limits[i]);

  const Word now_ns = monotonic_ns();
  const Word wall_s = wall_seconds(seg->header(), now_ns);
  std::vector<KeyRow> rows;
  for (Word i = 0; i < seg->key_capacity(); ++i) {
    const KeySlot& k = seg->keys()[i];
    if (load_acquire(k.hash) == 0) continue;
    const Word identity = load_acquire(k.identity);
    const auto limit = identity == 0 ? by_identity.end() : by_identity.find(identity);
    if (limit == by_identity.end()) continue;
    const CompiledLimit& l = *limit->second;
    if (l.kind == kKindBudget && !all_windows &&
        load_relaxed(k.window_start) != current_window(l, wall_s)) {
      continue;
    }
    rows.push_back(row_for(l, k, now_ns));
  }
  return rows;
}

Result<std::vector<LimitRow>> list_limits(const std::string& segment) {
  Result<SegmentMap> seg = SegmentMap::attach(segment, SegmentMap::Access::kReadOnly);
  if (!seg.ok()) return seg.status();
  Result<std::unique_ptr<CompiledPolicy>> policy = current_policy(seg.value());
  if (!policy.ok()) return policy.status();
  const CompiledPolicy& p = *policy.value();
  std::vector<LimitRow> rows(p.limit_count);
  for (Word i = 0; i < p.limit_count; ++i) {
    const CompiledLimit& l = p.limits[i];
    LimitRow& row = rows[i];
    row.limit = text_of(l.name);
    row.kind = l.kind == kKindRate ? "rate" : l.kind == kKindBudget ? "budget" : "model_access";
    row.unit = l.kind == kKindModelAccess ? "" : unit_of(l.measure);
    row.shadow = (l.flags & kFlagShadow) != 0;
  }
  // Counts indexed by the positions of this generation only.
  auto add = [&](const Word* admitted, const Word* rejected, const Word* shadow,
                 const Word* committed, const Word* failed) {
    for (Word i = 0; i < p.limit_count; ++i) {
      // acquire: the fold_seq check that follows may not be read before these
      rows[i].admitted += load_acquire(admitted[i]);
      rows[i].rejected += load_acquire(rejected[i]);
      rows[i].shadow_rejected += load_acquire(shadow[i]);
      rows[i].committed += load_acquire(committed[i]);
      rows[i].failed += load_acquire(failed[i]);
    }
  };
  const SegmentHeader& h = seg->header();
  // As in read_status: between two equal, even fold_seq values.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const Word before = load_acquire(h.fold_seq);
    if (before & 1) continue;
    for (LimitRow& r : rows)
      r.admitted = r.rejected = r.shadow_rejected = r.committed = r.failed = 0;
    if (load_acquire(h.limit_departed_generation) == p.generation) {
      add(h.limit_admitted_departed, h.limit_rejected_departed, h.limit_shadow_rejected_departed,
          h.limit_committed_departed, h.limit_failed_departed);
    }
    for (Word c = 0; c < seg->client_count(); ++c) {
      const ClientSlot& slot = seg->clients()[c];
      if (load_acquire(slot.pid) == 0 || load_acquire(slot.counters_generation) != p.generation) {
        continue;
      }
      add(slot.limit_admitted, slot.limit_rejected, slot.limit_shadow_rejected,
          slot.limit_committed, slot.limit_failed);
    }
    if (load_acquire(h.fold_seq) == before) break;
  }
  std::unordered_map<Word, Word> index_of;
  for (Word i = 0; i < p.limit_count; ++i) index_of.emplace(p.limits[i].identity, i);
  for (Word k = 0; k < seg->key_capacity(); ++k) {
    const KeySlot& key = seg->keys()[k];
    if (load_relaxed(key.hash) == 0) continue;
    const auto at = index_of.find(load_acquire(key.identity));
    if (at != index_of.end()) ++rows[at->second].keys;
  }
  return rows;
}

Result<std::vector<ModelCallRow>> list_model_calls(const std::string& segment) {
  Result<SegmentMap> seg = SegmentMap::attach(segment, SegmentMap::Access::kReadOnly);
  if (!seg.ok()) return seg.status();
  std::vector<ModelCallRow> rows;
  for (Word r = 0; r < seg->model_stats_count(); ++r) {
    const ModelCallStats& m = seg->model_stats()[r];
    if (r != 0 && load_acquire(m.name_hash) == 0) break;  // rows are taken in order
    ModelCallRow row;
    if (r != 0) row.model = text_of(m.name);
    for (int o = 0; o < kCallOutcomes; ++o) row.calls.push_back(load_relaxed(m.calls[o]));
    for (int b = 0; b < kCallLatencyBuckets; ++b) {
      row.latency_bounds_ms.push_back(b + 1 < kCallLatencyBuckets ? call_latency_bound_ms(b)
                                                                  : ~std::uint64_t{0});
      row.latency_counts.push_back(load_relaxed(m.latency_hist[b]));
      row.ttft_counts.push_back(load_relaxed(m.ttft_hist[b]));
    }
    row.latency_sum_us = load_relaxed(m.latency_sum_us);
    row.ttft_sum_us = load_relaxed(m.ttft_sum_us);
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace sluice
