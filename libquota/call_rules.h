// The bounds a call must keep (sluice/quota.h lists them) as one inline
// check for reserve's hot path: a few compares per attribute, no branch per
// byte. describe_invalid_request (call_rules.cc) says which bound failed.
#pragma once

#include "segment_layout.h"
#include "sluice/quota.h"

namespace sluice::detail {

// The audit record keeps a valid call's attributes whole.
static_assert(kMaxAttributeNameBytes == shm::kAuditMaxNameBytes);
static_assert(kMaxAttributeValueBytes == shm::kAuditMaxValueBytes);
static_assert(kMaxAttributeBytes == shm::kAuditMaxAttributeBytes);

inline bool request_is_valid(const CallRequest& r) {
  if (r.attributes.size() > kMaxCallAttributes || r.input_tokens > kMaxTokensPerCall ||
      r.max_output_tokens > kMaxTokensPerCall) {
    return false;
  }
  std::size_t bytes = 0;
  bool bad = false;
  for (const Attribute& a : r.attributes) {
    // An empty name or value wraps to SIZE_MAX here: too long, as it were.
    bad |= a.name.size() - 1 >= kMaxAttributeNameBytes;
    bad |= a.value.size() - 1 >= kMaxAttributeValueBytes;
    bytes += 2 + a.name.size() + a.value.size();
  }
  return !bad && bytes <= kMaxAttributeBytes;
}

}  // namespace sluice::detail
