// Encodes audit records copied out of the ring (audit_record.h) as the
// FlatBuffers `Record` of shm-layout/audit.fbs, the payload of one frame on
// disk. Names what the ring carries as numbers (reason, limit, shadow
// limits) and gives the settlement records of a reservation the attributes
// its reserve carried, so each record on disk stands on its own.
//
//   AuditEncoder enc(seg);
//   std::span<const std::uint8_t> payload = enc.encode(view, sequence);
//
// One thread only; the returned bytes live until the next encode.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <flatbuffers/flatbuffers.h>

#include "audit_generated.h"
#include "audit_record.h"
#include "segment.h"

namespace sluice {

class AuditEncoder {
 public:
  explicit AuditEncoder(const SegmentMap& seg);

  std::span<const std::uint8_t> encode(const AuditRecordView& record, std::uint64_t sequence);

 private:
  // The names of the limits of policy `generation` ("" when that policy is
  // no longer in the segment).
  const std::vector<std::string>& limit_names(std::uint64_t generation);

  // The attributes of the reservation in each slot, from its reserve record.
  struct Carried {
    std::uint64_t reservation_id = 0;
    std::size_t count = 0;
    std::string bytes;
  };

  const SegmentMap* seg_;
  std::vector<Carried> carried_;
  std::map<std::uint64_t, std::vector<std::string>> limit_names_;
  shm::CompiledPolicy policy_{};
  flatbuffers::FlatBufferBuilder fbb_;
  // Reused from record to record: encoding allocates nothing once warm.
  std::vector<flatbuffers::Offset<flatbuffers::String>> attr_names_, attr_values_, shadows_;
};

}  // namespace sluice
