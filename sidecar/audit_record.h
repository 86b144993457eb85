// Reading one audit record copied out of the ring (AuditRecord in
// shm-layout/segment_layout.h): the fixed part and the call's attributes,
// every length checked against the copy. Views point into the copy.
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <string_view>

#include "segment_layout.h"

namespace sluice {

struct AuditAttributeView {
  std::string_view name;
  std::string_view value;
};

struct AuditRecordView {
  shm::AuditRecord fixed{};
  std::size_t attribute_count = 0;
  std::array<AuditAttributeView, 16> attributes{};
  // The attributes exactly as the producer wrote them, for carrying to later records.
  std::span<const unsigned char> attribute_bytes;
  std::uint64_t ring_end = 0;      // the ring position just past the record; 0: not from the ring
  std::string_view model_version;  // a commit's, as reported (call_info)
};

// False if the record is malformed (lengths or fields out of range).
bool decode_audit_record(std::span<const shm::Word> words, AuditRecordView* out);

// Splits attribute bytes ([u8 name len][u8 value len][name][value]...).
// False if they do not parse into exactly `count` attributes.
bool split_audit_attributes(std::span<const unsigned char> bytes, std::size_t count,
                            AuditRecordView* out);

}  // namespace sluice
