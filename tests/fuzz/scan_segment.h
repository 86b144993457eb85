// The segment fuzz_segment_scan corrupts: a real, small one (64 key slots,
// 16 reservation slots, a 4 KiB audit ring), with a policy published twice
// (both slots hold one) and the traces of real clients: keys, reservations
// left active, held, extended and settled, a departed registration and a
// live one, and their audit records waiting in the ring.
//
//   const ScanSegment& s = scan_segment();  // built on first use, removed at exit
//   std::memcpy(s.map.keys(), s.image.data() + offset, ...);  // back to the base
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "segment.h"
#include "sluice/policy.h"

namespace sluice::fuzz {

struct ScanSegment {
  std::string name;
  SegmentMap map;
  Policy policy;
  std::vector<std::uint8_t> image;  // the segment's bytes as the clients left them
  std::uint64_t clients_used = 0;   // registrations the clients took (the rest are zero)
  std::uint64_t now_ns = 0;         // monotonic: a little after the clients ran
};

const ScanSegment& scan_segment();

}  // namespace sluice::fuzz
