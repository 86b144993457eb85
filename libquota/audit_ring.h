// The producer half of the audit ring (layout and protocol: AuditRing in
// shm-layout/segment_layout.h). Inline because it runs inside reserve and
// commit: one CAS on the ring's tail to claim, plain word stores to fill,
// one release store to publish. Never blocks: a full ring returns nullptr and
// the caller counts the record as dropped (or refuses the call when audit is
// required). The consumer is sidecar/audit_ring_reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "segment.h"
#include "segment_layout.h"

namespace sluice {

// Asks for a cache line in the state a store needs, without waiting. GCC
// drops __builtin_prefetch(p, 1) unless built for PREFETCHW; the instruction
// itself is a hint every x86-64 accepts (0F 0D, a NOP where unsupported).
inline void prefetch_for_write(const void* p) {
#if defined(__x86_64__)
  asm volatile("prefetchw %0" : : "m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 1, 3);
#endif
}

// A claimed record: where it goes and how long it is.
struct AuditSlot {
  shm::Word* record = nullptr;  // nullptr: not claimed (ring full)
  shm::Word length = 0;         // bytes, a multiple of 8
  shm::Word position = 0;       // the record's ring position (monotonic, as head and tail)
};

// Claims `length` bytes (a multiple of 8, at most kAuditMaxRecordBytes) for
// one record, announcing the claim in `me` first so the sidecar can tell a
// producer that died mid-record from a slow one. `head_cache` is this
// producer's last look at the consumer's head.
inline AuditSlot audit_claim(const SegmentMap& seg, shm::ClientSlot& me, shm::Word* head_cache,
                             shm::Word length) {
  using namespace shm;  // NOLINT(google-build-using-namespace)
  AuditRingControl& ring = seg.audit_control();
  const Word cap = seg.audit_capacity();
  Word tail = load_relaxed(ring.tail);
  for (;;) {
    const Word offset = tail & (cap - 1);
    const Word pad = offset + length > cap ? cap - offset : 0;  // the record may not wrap
    const Word need = pad + length;
    if (tail + need - *head_cache > cap) {
      *head_cache = load_acquire(ring.head);
      if (tail + need - *head_cache > cap) {
        // Full. Withdraw any claim a lost CAS left announced: a live client's
        // stale claim would make the consumer wait on a span it never took.
        if (load_relaxed(me.audit_claim) != 0) store_release(me.audit_claim, 0);
        return {};
      }
    }
    store_relaxed(me.audit_claim, make_audit_claim(tail, need));
    if (!compare_exchange(ring.tail, tail, tail + need)) continue;  // tail reloaded
    Word* words = seg.audit_ring();
    if (pad != 0) {
      store_release(words[offset / 8],
                    make_record_header(static_cast<std::int32_t>(pad), kAuditRecordPadding));
    }
    Word* record = words + ((tail + pad) & (cap - 1)) / 8;
    // Fetch the record's lines now; the caller fills them after its
    // decision, by when they are in cache. A store here would instead sit in
    // the store buffer and stall the decision's first locked instruction.
    for (Word line = 0; line < length; line += 64) prefetch_for_write(record + line / 8);
    return {record, length, tail + pad};
  }
}

// Writes the header with the length negated (the record is being written),
// then the fixed part of the record.
inline void audit_write_fixed(const AuditSlot& slot, const shm::AuditRecord& r) {
  shm::store_relaxed(
      slot.record[0],
      shm::make_record_header(-static_cast<std::int32_t>(slot.length), shm::kAuditRecordEvent));
  shm::Word words[sizeof(shm::AuditRecord) / 8];
  std::memcpy(words, &r, sizeof r);
  for (std::size_t w = 1; w < sizeof(shm::AuditRecord) / 8; ++w) {
    shm::store_relaxed(slot.record[w], words[w]);
  }
}

// Publishes a filled record and clears the claim.
inline void audit_publish(shm::ClientSlot& me, const AuditSlot& slot) {
  shm::store_release(slot.record[0], shm::make_record_header(static_cast<std::int32_t>(slot.length),
                                                             shm::kAuditRecordEvent));
  shm::store_release(me.audit_claim, 0);
}

// The attributes of a call as the record carries them: at most
// kAuditMaxAttributeBytes, each name and value truncated to its maximum.
struct AuditAttributes {
  std::size_t count = 0;  // attributes that fit
  std::size_t bytes = 0;  // before padding
};

template <class Attr>
inline AuditAttributes audit_attributes_size(const Attr* attrs, std::size_t n) {
  AuditAttributes a;
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t need = 2 + std::min(attrs[i].name.size(), shm::kAuditMaxNameBytes) +
                             std::min(attrs[i].value.size(), shm::kAuditMaxValueBytes);
    if (a.bytes + need > shm::kAuditMaxAttributeBytes) break;
    a.bytes += need;
    ++a.count;
  }
  return a;
}

inline shm::Word audit_record_length(const AuditAttributes& a) {
  return sizeof(shm::AuditRecord) + ((a.bytes + 7) & ~std::size_t{7});
}

// Writes the attributes after the fixed part of `slot`'s record.
template <class Attr>
inline void audit_write_attributes(const AuditSlot& slot, const Attr* attrs,
                                   const AuditAttributes& a) {
  alignas(8) unsigned char text[shm::kAuditMaxAttributeBytes + 8];
  std::size_t at = 0;
  for (std::size_t i = 0; i < a.count; ++i) {
    const std::size_t n = std::min(attrs[i].name.size(), shm::kAuditMaxNameBytes);
    const std::size_t v = std::min(attrs[i].value.size(), shm::kAuditMaxValueBytes);
    text[at++] = static_cast<unsigned char>(n);
    text[at++] = static_cast<unsigned char>(v);
    std::memcpy(text + at, attrs[i].name.data(), n);
    at += n;
    std::memcpy(text + at, attrs[i].value.data(), v);
    at += v;
  }
  const std::size_t words = (at + 7) / 8;
  std::memset(text + at, 0, words * 8 - at);
  shm::Word* dst = slot.record + sizeof(shm::AuditRecord) / 8;
  for (std::size_t w = 0; w < words; ++w) {
    shm::Word word;
    std::memcpy(&word, text + w * 8, 8);
    shm::store_relaxed(dst[w], word);
  }
}

// Writes `text` (at most kAuditMaxVersionBytes: a commit's model version)
// after the fixed part of `slot`'s record, zero-padded to 8 bytes.
inline void audit_write_text(const AuditSlot& slot, std::string_view text) {
  alignas(8) unsigned char bytes[shm::kAuditMaxVersionBytes + 8] = {};
  const std::size_t n = std::min(text.size(), shm::kAuditMaxVersionBytes);
  std::memcpy(bytes, text.data(), n);
  shm::Word* dst = slot.record + sizeof(shm::AuditRecord) / 8;
  for (std::size_t w = 0; w < (n + 7) / 8; ++w) {
    shm::Word word;
    std::memcpy(&word, bytes + w * 8, 8);
    shm::store_relaxed(dst[w], word);
  }
}

}  // namespace sluice
