#include "audit_ring_reader.h"

#include <sys/types.h>

#include <algorithm>

#include "process.h"

namespace sluice {

using namespace shm;  // NOLINT(google-build-using-namespace)

AuditRingReader::AuditRingReader(const SegmentMap& seg, std::uint64_t skip_after_ns,
                                 Release release)
    : seg_(&seg),
      skip_after_ns_(skip_after_ns),
      release_(release),
      copy_(kAuditMaxRecordBytes / sizeof(Word)) {}

// Last word first: a consumer killed part way leaves the header of a record
// it had not finished zeroing, so the next consumer reads the record again
// rather than mistaking one of its words for a header. At most the whole
// ring, word by word from `from`, however odd a span a client's words made.
void AuditRingReader::zero(std::uint64_t from, std::uint64_t to) {
  const Word cap = seg_->audit_capacity();
  Word* words = seg_->audit_ring();
  const Word bytes = to - from;
  const Word n = std::min<Word>(bytes / sizeof(Word) + (bytes % sizeof(Word) != 0), cap / 8);
  for (Word i = n; i > 0; --i) {
    store_relaxed(words[((from + (i - 1) * sizeof(Word)) & (cap - 1)) / 8], 0);
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
  if (!started_) {
    read_ = load_relaxed(ring.head);
    started_ = true;
  }
  Word head = read_;  // where reading goes on: ring.head, or ahead of it until release()
  Word tail = tail_seen_;
  auto read_tail = [&] {
    tail = tail_seen_ = load_acquire(ring.tail);
    stats_.high_water = std::max(stats_.high_water, tail - head);
    // Else a client wrote nonsense into the tail (or the head).
    return tail - head <= cap && (tail - head) % kAuditAlign == 0;
  };
  stats_.blocked = false;
  std::size_t delivered = 0;
  while (delivered < max_records) {
    const Word index = head & (cap - 1);
    Word header = load_acquire(words[index / 8]);
    if (record_length(header) <= 0 || tail - head < sizeof(Word) || tail - head > cap) {
      if (!read_tail()) {  // start again from the tail
        ++stats_.corrupt;
        pass(head, tail);
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
      pass(head, next);
      head = next;
      ++stats_.skipped;
      continue;
    }
    const Word len = static_cast<Word>(length);
    if (len > tail - head && !read_tail()) {
      ++stats_.corrupt;
      pass(head, tail);
      head = tail;
      break;
    }
    const Word type = record_type(header);
    const bool fits = len % kAuditAlign == 0 && len <= cap - index && len <= tail - head;
    const bool valid =
        fits &&
        (type == kAuditRecordPadding ||
         (type == kAuditRecordEvent && len >= sizeof(AuditRecord) && len <= kAuditMaxRecordBytes));
    if (!valid) {
      // No way to find the next record boundary: drop what was claimed so far.
      ++stats_.corrupt;
      pass(head, tail);
      head = tail;
      break;
    }
    if (type == kAuditRecordEvent) {
      const std::size_t n = len / sizeof(Word);
      for (std::size_t w = 0; w < n; ++w) copy_[w] = load_relaxed(words[index / 8 + w]);
      read_ = head + len;  // read_position() in the callback: just past this record
      on_record(std::span<const Word>(copy_.data(), n));
      ++stats_.drained;
      ++delivered;
    }
    pass(head, head + len);  // per record: a crash here leaves no zeroed span behind head
    head += len;
  }
  read_ = head;
  if (release_ == Release::kOnRead) store_release(ring.head, head);
  return delivered;
}

void AuditRingReader::pass(std::uint64_t from, std::uint64_t to) {
  read_ = to;
  if (release_ != Release::kOnRead) return;
  zero(to - from > seg_->audit_capacity() ? to - seg_->audit_capacity() : from, to);
  store_release(seg_->audit_control().head, to);
}

void AuditRingReader::release(std::uint64_t up_to) {
  if (!started_) return;
  AuditRingControl& ring = seg_->audit_control();
  const Word head = load_relaxed(ring.head);
  if (up_to - head > read_ - head) up_to = read_;  // never past what was read
  if (up_to == head) return;
  const Word cap = seg_->audit_capacity();
  zero(up_to - head > cap ? up_to - cap : head, up_to);
  store_release(ring.head, up_to);
}

bool AuditRingReader::resume_at(std::uint64_t position) {
  const AuditRingControl& ring = seg_->audit_control();
  const Word head = load_relaxed(ring.head), tail = load_acquire(ring.tail);
  if (started_ || position - head > tail - head || position % kAuditAlign != 0) return false;
  read_ = position;
  started_ = true;
  release(position);
  return true;
}

bool AuditRingReader::settling(std::uint64_t client) const {
  const ReservationSlot* slots = seg_->reservations();
  for (Word i = 0; i < seg_->reservation_count(); ++i) {
    const Word st = load_acquire(slots[i].state);
    if (state_status(st) == kResSettling && state_actor(st) == client) return true;
  }
  return false;
}

std::uint64_t AuditRingReader::skip_dead_claim(std::uint64_t head, std::uint64_t tail) {
  Word next_claim = ~Word{0};  // where the nearest claim after head starts
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
      if (ahead8 < (kClaimStartMask >> 1) && (claim & 0xfffffff) != 0) {
        next_claim = std::min(next_claim, head + ahead8 * 8);
      }
      continue;
    }
    const Word pid = load_acquire(c.pid);
    if (pid != 0 && process_alive(static_cast<pid_t>(pid), load_relaxed(c.start_time))) {
      return head;  // a live producer: wait, however slow
    }
    if (claim_end > tail) continue;  // not a claim that took effect
    // The reclaimer decides from this span whether a dead settler's record
    // was published (reclaim.cc): keep it until the settlement is finished.
    if (settling(i + 1)) return head;
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
  // header) or the next claimed span; one pass, however many claims there are.
  Word at = head;
  while (at < tail && at < next_claim && load_acquire(words[(at & (cap - 1)) / 8]) == 0) {
    at += sizeof(Word);
  }
  return at;
}

}  // namespace sluice
