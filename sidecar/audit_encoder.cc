#include "audit_encoder.h"

#include <cstdio>

#include "audit_generated.h"
#include "policy_snapshot.h"
#include "sluice/quota.h"

namespace sluice {

using namespace shm;  // NOLINT(google-build-using-namespace)
namespace fb = audit::fb;

namespace {

constexpr std::size_t kKeptGenerations = 8;

const char* abandon_reason(Word kind) {
  switch (kind) {
    case kAbandonChargedEstimate:
      return "charged_at_estimate";
    case kAbandonRefunded:
      return "refunded_partial";
    case kAbandonFinishedCommit:
      return "finished_commit";
    case kAbandonFinishedCancel:
      return "finished_cancel";
    default:
      return "unknown";
  }
}

const char* reason_name(Word event, Word reason) {
  if (event == kAuditAbandon) return abandon_reason(reason);
  if (reason == 0) return "";
  if (reason > static_cast<Word>(Reason::kAuditUnavailable)) return "unknown";
  return to_string(static_cast<Reason>(reason));
}

}  // namespace

AuditEncoder::AuditEncoder(const SegmentMap& seg)
    : seg_(&seg), carried_(seg.reservation_count()), fbb_(1024) {}

const std::vector<std::string>& AuditEncoder::limit_names(std::uint64_t generation) {
  auto it = limit_names_.find(generation);
  if (it != limit_names_.end()) return it->second;
  std::vector<std::string> names;
  SnapshotResult r = SnapshotResult::kBusy;
  for (int attempt = 0; attempt < 64 && r == SnapshotResult::kBusy; ++attempt) {
    r = snapshot_policy(*seg_, generation, policy_);
  }
  if (r == SnapshotResult::kOk) {
    for (Word l = 0; l < policy_.limit_count; ++l) {
      char text[sizeof(policy_.limits[l].name)];
      names.emplace_back(text, load_text(policy_.limits[l].name, text));
    }
  } else {
    // The policy was replaced twice since; remember the miss (not for long).
    if (limit_names_.size() >= kKeptGenerations) limit_names_.erase(limit_names_.begin());
    static const std::vector<std::string> kNone;
    return kNone;
  }
  if (limit_names_.size() >= kKeptGenerations) limit_names_.erase(limit_names_.begin());
  return limit_names_.emplace(generation, std::move(names)).first->second;
}

std::span<const std::uint8_t> AuditEncoder::encode(const AuditRecordView& v,
                                                   std::uint64_t sequence) {
  const AuditRecord& r = v.fixed;
  const Word event = info_event(r.info), decision = info_decision(r.info);
  const Word limit = info_limit(r.info);

  // The attributes: the record's own, or those its reservation's reserve carried.
  AuditRecordView carried_view;
  const AuditRecordView* attrs = &v;
  const Word slot = r.reservation_id & 0xffffffff;
  if (r.reservation_id != 0 && slot < carried_.size()) {
    Carried& c = carried_[slot];
    if (event == kAuditReserve && decision == kAuditAdmitted) {
      c.reservation_id = r.reservation_id;
      c.count = v.attribute_count;
      c.bytes.assign(reinterpret_cast<const char*>(v.attribute_bytes.data()),
                     v.attribute_bytes.size());
    } else if (event != kAuditReserve && c.reservation_id == r.reservation_id &&
               split_audit_attributes(
                   {reinterpret_cast<const unsigned char*>(c.bytes.data()), c.bytes.size()},
                   c.count, &carried_view)) {
      attrs = &carried_view;
      const bool settles = event == kAuditCommit || event == kAuditCancel || event == kAuditAbandon;
      if (settles) c.reservation_id = 0;  // the bytes stay valid until the next reserve
    }
  }

  fbb_.Clear();
  attr_names_.clear();
  attr_values_.clear();
  for (std::size_t i = 0; i < attrs->attribute_count; ++i) {
    const AuditAttributeView& a = attrs->attributes[i];
    attr_names_.push_back(fbb_.CreateString(a.name.data(), a.name.size()));
    attr_values_.push_back(fbb_.CreateString(a.value.data(), a.value.size()));
  }
  const auto names_vec = attr_names_.empty() ? 0 : fbb_.CreateVector(attr_names_);
  const auto values_vec = attr_values_.empty() ? 0 : fbb_.CreateVector(attr_values_);

  const std::vector<std::string>* names = nullptr;
  auto name_of = [&](Word l) {
    if (names == nullptr) names = &limit_names(r.policy_generation);
    if (l < names->size()) return fbb_.CreateString((*names)[l]);
    // A limit the policy snapshot lacks, by number. (Not "#" + std::to_string:
    // GCC 12 at -O3 reports a false -Wrestrict on that.)
    char unnamed[24];
    const int n =
        std::snprintf(unnamed, sizeof unnamed, "#%llu", static_cast<unsigned long long>(l));
    return fbb_.CreateString(unnamed, static_cast<std::size_t>(n));
  };
  shadows_.clear();
  for (Word l = 0; l < 64 && (r.shadow_mask >> l) != 0; ++l) {
    if ((r.shadow_mask >> l) & 1) shadows_.push_back(name_of(l));
  }
  const auto shadow_vec = shadows_.empty() ? 0 : fbb_.CreateVector(shadows_);
  const auto limit_name = limit != kAuditNoLimit ? name_of(limit) : 0;
  const char* reason_text = reason_name(event, info_reason(r.info));
  const auto reason = reason_text[0] != '\0' ? fbb_.CreateString(reason_text) : 0;
  const Word outcome = call_outcome(r.call_info);
  const auto outcome_name =
      outcome != 0 ? fbb_.CreateString(to_string(static_cast<Outcome>(outcome))) : 0;
  const auto version = v.model_version.empty()
                           ? 0
                           : fbb_.CreateString(v.model_version.data(), v.model_version.size());

  fb::RecordBuilder b(fbb_);
  b.add_sequence(sequence);
  b.add_time_unix_ns(r.time_unix_ns);
  b.add_reservation_id(r.reservation_id);
  b.add_pid(static_cast<std::uint32_t>(r.pid));
  b.add_start_time(r.start_time);
  b.add_event(static_cast<fb::Event>(event));
  b.add_decision(static_cast<fb::Decision>(decision));
  if (!reason.IsNull()) b.add_reason(reason);
  if (!limit_name.IsNull()) b.add_limit(limit_name);
  if (!names_vec.IsNull()) {
    b.add_attribute_names(names_vec);
    b.add_attribute_values(values_vec);
  }
  b.add_est_input_tokens(r.est_input);
  b.add_est_output_tokens(r.est_output);
  b.add_actual_input_tokens(r.actual_input);
  b.add_actual_output_tokens(r.actual_output);
  b.add_cost_nusd(r.cost_nusd);
  b.add_retry_after_ns(r.retry_after_ns);
  if (!shadow_vec.IsNull()) b.add_shadow_rejects(shadow_vec);
  b.add_policy_generation(r.policy_generation);
  if (v.ring_end != 0) {
    b.add_ring_end(v.ring_end);
    b.add_ring_instance(load_relaxed(seg_->header().instance));
  }
  if (!outcome_name.IsNull()) b.add_outcome(outcome_name);
  if (call_http_status(r.call_info) != 0) {
    b.add_http_status(static_cast<std::uint16_t>(call_http_status(r.call_info)));
  }
  if (r.latency_ns != 0) b.add_latency_ns(r.latency_ns);
  if (r.ttft_ns != 0) b.add_ttft_ns(r.ttft_ns);
  if (!version.IsNull()) b.add_model_version(version);
  fb::FinishRecordBuffer(fbb_, b.Finish());
  return {fbb_.GetBufferPointer(), fbb_.GetSize()};
}

}  // namespace sluice
