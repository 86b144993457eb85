#include "audit_ring_reader.h"

#include <sys/types.h>

#include <algorithm>

#include "process.h"

namespace sluice {

using namespace shm;  // NOLINT(google-build-using-namespace)

AuditRingReader::AuditRingReader(const SegmentMap& seg, std::uint64_t skip_after_ns)
    : seg_(&seg), skip_after_ns_(skip_after_ns), copy_(kAuditMaxRecordBytes / sizeof(Word)) {}

// Last word first: a consumer killed part way leaves the header of a record
// it had not finished zeroing, so the next consumer reads the record again
// rather than mistaking one of its words for a header.
void AuditRingReader::zero(std::uint64_t from, std::uint64_t to) {
  const Word mask = seg_->audit_capacity() - 1;
  Word* words = seg_->audit_ring();
  for (Word pos = to; pos > from; pos -= sizeof(Word)) {
    store_relaxed(words[((pos - sizeof(Word)) & mask) / 8], 0);
  }
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
    store_release(ring.head, head);  // per record: a crash here leaves no zeroed span behind head
  }
  store_release(ring.head, head);
  return delivered;
}

std::uint64_t AuditRingReader::skip_dead_claim(std::uint64_t head, std::uint64_t tail) {
  struct Span {
    Word start, end;
  };
  std::vector<Span> claims;  // every claim at or after head (rare path: allocation is fine)
  Word end = head;
  bool dead_claim = false;
  ClientSlot* clients = seg_->clients();
  for (Word i = 0; i < seg_->client_count(); ++i) {
    ClientSlot& c = clients[i];
    const Word claim = load_acquire(c.audit_claim);
    if (!(claim >> 63)) continue;
    Word claim_end = 0;
    const bool covers = audit_claim_covers(claim, head, &claim_end);
    if (!covers) {
      // Where the claim lies relative to head, to stop the zero-run scan below.
      const Word start8 = (claim >> 28) & kClaimStartMask;
      const Word ahead8 = (start8 - (head >> 3)) & kClaimStartMask;
      if (ahead8 < (kClaimStartMask >> 1)) {
        claims.push_back({head + ahead8 * 8, head + (ahead8 + (claim & 0xfffffff)) * 8});
      }
      continue;
    }
    const Word pid = load_acquire(c.pid);
    if (pid != 0 && process_alive(static_cast<pid_t>(pid), load_relaxed(c.start_time))) {
      return head;  // a live producer: wait, however slow
    }
    if (claim_end > tail) continue;  // not a claim that took effect
    dead_claim = true;
    end = std::max(end, claim_end);
  }
  // The producer may have published since the header was read.
  const Word cap = seg_->audit_capacity();
  const Word* words = seg_->audit_ring();
  if (record_length(load_acquire(words[(head & (cap - 1)) / 8])) > 0) return head;
  if (dead_claim) return end;
  // No claim covers head: a consumer died after zeroing records it had not
  // yet moved head past. Step over the zeros to the next record (a non-zero
  // header) or the next claimed span.
  Word at = head;
  while (at < tail && load_acquire(words[(at & (cap - 1)) / 8]) == 0) {
    bool claimed = false;
    for (const Span& c : claims) claimed |= c.start <= at && at < c.end;
    if (claimed) break;
    at += sizeof(Word);
  }
  return at;
}

}  // namespace sluice
