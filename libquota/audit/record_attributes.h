// The attributes of an audit record (shm-layout/audit.fbs keeps them as two
// parallel vectors of strings): visits each name / value pair, skipping
// what a damaged record lacks.
//
//   for_each_attribute(*record, [](std::string_view name, std::string_view value) { ... });
#pragma once

#include <algorithm>
#include <string_view>

#include "audit_generated.h"

namespace sluice::audit {

template <class Visit>
void for_each_attribute(const fb::Record& record, Visit visit) {
  const auto* names = record.attribute_names();
  const auto* values = record.attribute_values();
  if (names == nullptr || values == nullptr) return;
  const flatbuffers::uoffset_t n = std::min(names->size(), values->size());
  for (flatbuffers::uoffset_t i = 0; i < n; ++i) {
    const flatbuffers::String* name = names->Get(i);
    const flatbuffers::String* value = values->Get(i);
    if (name != nullptr && value != nullptr) visit(name->string_view(), value->string_view());
  }
}

}  // namespace sluice::audit
