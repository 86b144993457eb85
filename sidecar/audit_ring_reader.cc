#include "audit_ring_reader.h"

#include <sys/types.h>

#include <algorithm>

#include "process.h"

namespace sluice {

using namespace shm;  // NOLINT(google-build-using-namespace)

AuditRingReader::AuditRingReader(const SegmentMap& seg, std::uint64_t skip_after_ns)
    : seg_(&seg), skip_after_ns_(skip_after_ns), copy_(kAuditMaxRecordBytes / sizeof(Word)) {}

void AuditRingReader::zero(std::uint64_t from, std::uint64_t to) {
  const Word mask = seg_->audit_capacity() - 1;
  Word* words = seg_->audit_ring();
  for (Word pos = from; pos < to; pos += sizeof(Word)) store_relaxed(words[(pos & mask) / 8], 0);
}

// The tail is read only when the records seen so far run out: producers CAS
// it on every record, and a consumer reading it as often would steal its
// cache line from them each time.
std::size_t AuditRingReader::poll(std::uint64_t now_ns, std::size_t max_records,
                                  const OnRecord& on_record) {
  AuditRingControl& ring = seg_->audit_control();
  const Word cap = seg_->audit_capacity();
  const Word* words = seg_->audit_ring();
  Word head = load_relaxed(ring.head);
  Word tail = tail_seen_;
  auto read_tail = [&] {
    tail = tail_seen_ = load_acquire(ring.tail);
    stats_.high_water = std::max(stats_.high_water, tail - head);
    return tail - head <= cap;  // else a client wrote nonsense into the tail
  };
  stats_.blocked = false;
  std::size_t delivered = 0;
  while (delivered < max_records) {
    const Word index = head & (cap - 1);
    Word header = load_acquire(words[index / 8]);
    if (record_length(header) <= 0 || tail - head < sizeof(Word) || tail - head > cap) {
      if (!read_tail()) {  // start again from the tail
        ++stats_.corrupt;
        zero(head, head + cap);
        head = tail;
        break;
      }
      if (head == tail) break;  // nothing claimed: empty
      header = load_acquire(words[index / 8]);
    }
    const std::int32_t length = record_length(header);
    if (length <= 0) {  // claimed, still being written
      if (blocked_at_ != head) {
        blocked_at_ = head;
        blocked_since_ns_ = now_ns;
      }
      const Word next =
          now_ns - blocked_since_ns_ >= skip_after_ns_ ? skip_dead_claim(head, tail) : head;
      if (next == head) {
        stats_.blocked = true;
        break;
      }
      zero(head, next);
      head = next;
      ++stats_.skipped;
      continue;
    }
    const Word len = static_cast<Word>(length);
    if (len > tail - head) read_tail();
    const Word type = record_type(header);
    const bool fits = len % kAuditAlign == 0 && len <= cap - index && len <= tail - head;
    const bool valid =
        fits &&
        (type == kAuditRecordPadding ||
         (type == kAuditRecordEvent && len >= sizeof(AuditRecord) && len <= kAuditMaxRecordBytes));
    if (!valid) {
      // No way to find the next record boundary: drop what was claimed so far.
      ++stats_.corrupt;
      zero(head, tail);
      head = tail;
      break;
    }
    if (type == kAuditRecordEvent) {
      const std::size_t n = len / sizeof(Word);
      for (std::size_t w = 0; w < n; ++w) copy_[w] = load_relaxed(words[index / 8 + w]);
      zero(head, head + len);
      on_record(std::span<const Word>(copy_.data(), n));
      ++stats_.drained;
      ++delivered;
    } else {
      zero(head, head + len);
    }
    head += len;
  }
  store_release(ring.head, head);
  return delivered;
}

std::uint64_t AuditRingReader::skip_dead_claim(std::uint64_t head, std::uint64_t tail) {
  Word end = head;
  bool dead_claim = false;
  ClientSlot* clients = seg_->clients();
  for (Word i = 0; i < seg_->client_count(); ++i) {
    ClientSlot& c = clients[i];
    Word claim = load_acquire(c.audit_claim);
    Word claim_end = 0;
    if (!audit_claim_covers(claim, head, &claim_end)) continue;
    const Word pid = load_acquire(c.pid);
    if (pid != 0 && process_alive(static_cast<pid_t>(pid), load_relaxed(c.start_time))) {
      return head;  // a live producer: wait, however slow
    }
    if (claim_end > tail) continue;  // not a claim that took effect
    dead_claim = true;
    end = std::max(end, claim_end);
  }
  // The producer may have published since the header was read.
  const Word index = head & (seg_->audit_capacity() - 1);
  if (!dead_claim || record_length(load_acquire(seg_->audit_ring()[index / 8])) > 0) return head;
  return end;
}

}  // namespace sluice
