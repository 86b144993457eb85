// The audit ring between clients and the sidecar: every decision lands as
// one record, in order, across wraps, from many processes; a producer that
// died mid-record is skipped only once it is proven dead, and a slow one is
// always waited for.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "audit_record.h"
#include "audit_ring.h"
#include "audit_ring_reader.h"
#include "audit_test_policy.h"
#include "clock.h"
#include "sluice_fixture.h"

namespace sluice {
namespace {

using testing::SidecarHarness;

const char* const kPolicy = testing::kAuditTestPolicy;
const char* const kSmallRing = "  audit_ring_bytes: 64KiB\n";

struct Drained {
  AuditRecordView view;
  std::vector<std::pair<std::string, std::string>> attrs;
};

// Polls until `want` records arrived or nothing moves for a while.
std::vector<Drained> drain(AuditRingReader& reader, std::size_t want = ~std::size_t{0}) {
  std::vector<Drained> out;
  int idle = 0;
  while (out.size() < want && idle < 200) {
    const std::size_t n = reader.poll(monotonic_ns(), 1024, [&](std::span<const shm::Word> w) {
      Drained d;
      EXPECT_TRUE(decode_audit_record(w, &d.view));
      for (std::size_t i = 0; i < d.view.attribute_count; ++i) {
        d.attrs.emplace_back(d.view.attributes[i].name, d.view.attributes[i].value);
      }
      out.push_back(std::move(d));
    });
    if (n == 0) {
      if (want == ~std::size_t{0}) break;
      ++idle;
      ::usleep(1000);
    } else {
      idle = 0;
    }
  }
  return out;
}

shm::Word event(const Drained& d) { return shm::info_event(d.view.fixed.info); }
shm::Word decision(const Drained& d) { return shm::info_decision(d.view.fixed.info); }

TEST(AuditRing, ReserveAndCommitEachWriteOneRecordWithTheCallsFacts) {
  SidecarHarness h("ring-facts", kPolicy);
  Client c = h.attach();
  AuditRingReader reader(h.seg());
  const Attribute attrs[] = {{"team", "search"}, {"feature", "chat"}, {"model", "cheap"}};
  Reservation r = c.reserve({attrs, 1000, 500});
  ASSERT_TRUE(r.admitted());
  const std::uint64_t id = r.id();
  ASSERT_TRUE(r.commit(900, 100).ok());

  std::vector<Drained> got = drain(reader);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(event(got[0]), shm::kAuditReserve);
  EXPECT_EQ(decision(got[0]), shm::kAuditAdmitted);
  EXPECT_EQ(got[0].view.fixed.reservation_id, id);
  EXPECT_EQ(got[0].view.fixed.pid, static_cast<shm::Word>(::getpid()));
  EXPECT_EQ(got[0].view.fixed.est_input, 1000u);
  EXPECT_EQ(got[0].view.fixed.est_output, 500u);
  EXPECT_EQ(got[0].view.fixed.cost_nusd, 2'000'000u);  // 1000 * $1/M + 500 * $2/M, in nUSD
  EXPECT_EQ(got[0].attrs, (std::vector<std::pair<std::string, std::string>>{
                              {"team", "search"}, {"feature", "chat"}, {"model", "cheap"}}));
  const std::uint64_t wall = realtime_ns();
  EXPECT_LT(wall - got[0].view.fixed.time_unix_ns, 5'000'000'000ull);

  EXPECT_EQ(event(got[1]), shm::kAuditCommit);
  EXPECT_EQ(decision(got[1]), shm::kAuditSettled);
  EXPECT_EQ(got[1].view.fixed.reservation_id, id);
  EXPECT_EQ(got[1].view.fixed.actual_input, 900u);
  EXPECT_EQ(got[1].view.fixed.actual_output, 100u);
  EXPECT_EQ(got[1].view.fixed.cost_nusd, 1'100'000u);
  EXPECT_EQ(got[1].view.attribute_count, 0u);
  EXPECT_EQ(shm::load_relaxed(h.seg().audit_control().dropped), 0u);
}

TEST(AuditRing, RejectionRecordsNameTheLimitAndReason) {
  SidecarHarness h("ring-reject", kPolicy);
  Client c = h.attach();
  AuditRingReader reader(h.seg());
  const Attribute attrs[] = {{"team", "tiny"}, {"model", "cheap"}};
  Reservation first = c.reserve({attrs, 10, 10});
  ASSERT_TRUE(first.admitted());
  Reservation second = c.reserve({attrs, 10, 10});
  ASSERT_FALSE(second.admitted());
  first.cancel();

  std::vector<Drained> got = drain(reader);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(decision(got[1]), shm::kAuditRejected);
  EXPECT_EQ(shm::info_reason(got[1].view.fixed.info), static_cast<shm::Word>(Reason::kRateLimited));
  EXPECT_EQ(shm::info_limit(got[1].view.fixed.info), 1u);  // one-per-hour
  EXPECT_GT(got[1].view.fixed.retry_after_ns, 0u);
  EXPECT_EQ(got[1].view.fixed.reservation_id, 0u);
  EXPECT_EQ(event(got[2]), shm::kAuditCancel);
}

TEST(AuditRing, RecordsOfEverySizeWrapAroundTheRingIntact) {
  SidecarHarness h("ring-wrap", kPolicy, kSmallRing);
  Client c = h.attach();
  AuditRingReader reader(h.seg());
  const std::string name(shm::kAuditMaxNameBytes, 'n');
  int calls = 0;
  std::size_t max_bytes = 0;
  // Value lengths 1..255 and up to 4 extra attributes (as many as a call
  // may carry: kMaxAttributeBytes) give record lengths from the smallest to
  // the largest; the 64 KiB ring wraps many times.
  for (int extra = 0; extra <= 4; ++extra) {
    for (int v = 1; v <= 255; ++v) {
      int fit = 0;
      std::size_t bytes = 2 + 4 + 6;
      while (fit < extra && bytes + 2 + name.size() + v <= kMaxAttributeBytes) {
        bytes += 2 + name.size() + v;
        ++fit;
      }
      std::vector<std::string> values;
      std::vector<Attribute> attrs = {{"team", "search"}};
      values.reserve(fit);
      for (int e = 0; e < fit; ++e) values.push_back(std::string(v, static_cast<char>('a' + e)));
      for (int e = 0; e < fit; ++e) attrs.push_back({name, values[e]});
      const Decision d = c.reserve_raw({attrs, 1, 1});
      ASSERT_TRUE(d.admitted);
      ASSERT_TRUE(c.cancel(d.reservation_id).ok());
      ++calls;
      std::vector<Drained> got = drain(reader);
      ASSERT_EQ(got.size(), 2u);
      ASSERT_EQ(got[0].attrs.size(), static_cast<std::size_t>(fit + 1));
      max_bytes = std::max(max_bytes, bytes);
      for (int e = 0; e < fit; ++e) {
        EXPECT_EQ(got[0].attrs[e + 1].first, name);
        EXPECT_EQ(got[0].attrs[e + 1].second, values[e]);
      }
      EXPECT_EQ(got[0].view.fixed.reservation_id, d.reservation_id);
      EXPECT_EQ(got[1].view.fixed.reservation_id, d.reservation_id);
    }
  }
  EXPECT_EQ(max_bytes, shm::kAuditMaxAttributeBytes);  // the largest record was written
  const shm::Word tail = shm::load_relaxed(h.seg().audit_control().tail);
  EXPECT_GT(tail, 4 * h.seg().audit_capacity());  // wrapped at least four times
  EXPECT_EQ(shm::load_relaxed(h.seg().audit_control().head), tail);
  EXPECT_EQ(shm::load_relaxed(h.seg().audit_control().dropped), 0u);
}

// A call past the attribute bounds is rejected as invalid_argument; its
// record still says what it carried, truncated to what a record holds.
TEST(AuditRing, AnOversizedCallIsRecordedTruncatedToTheAttributeLimit) {
  SidecarHarness h("ring-max", kPolicy, kSmallRing);
  Client c = h.attach();
  AuditRingReader reader(h.seg());
  const std::string big(1000, 'v');  // truncated to 255
  const std::string key(100, 'k');   // truncated to 63
  std::vector<Attribute> attrs = {{"team", "search"}};
  for (int i = 0; i < 10; ++i) attrs.push_back({key, big});
  const Decision d = c.reserve_raw({attrs, 1, 1});
  ASSERT_FALSE(d.admitted);
  EXPECT_EQ(d.reason, Reason::kInvalidArgument);
  std::vector<Drained> got = drain(reader);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(decision(got[0]), shm::kAuditRejected);
  EXPECT_EQ(shm::info_reason(got[0].view.fixed.info),
            static_cast<shm::Word>(Reason::kInvalidArgument));
  // 2 + 4 + 6 bytes for team, then 320 per attribute: three fit in 1024.
  ASSERT_EQ(got[0].attrs.size(), 4u);
  EXPECT_EQ(got[0].attrs[1].first, std::string(63, 'k'));
  EXPECT_EQ(got[0].attrs[1].second, std::string(255, 'v'));
}

TEST(AuditRing, AFullRingDropsAndCountsWithoutBlockingTheCaller) {
  SidecarHarness h("ring-full", kPolicy, kSmallRing);
  Client c = h.attach();
  const Attribute attrs[] = {{"team", "search"}};
  int admitted = 0;
  for (int i = 0; i < 2000; ++i) {  // 2000 * 2 records of 128 bytes > 64 KiB
    Reservation r = c.reserve({attrs, 1, 1});
    admitted += r.admitted();
  }
  EXPECT_EQ(admitted, 2000);
  const shm::Word dropped = shm::load_relaxed(h.seg().audit_control().dropped);
  AuditRingReader reader(h.seg());
  const std::size_t kept = drain(reader).size();
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(kept + dropped, 4000u);
}

TEST(AuditRing, RequiredAuditRefusesCallsWhenTheRingIsFull) {
  SidecarHarness h("ring-required", std::string(kPolicy) + "audit:\n  required: true\n",
                   kSmallRing);
  Client c = h.attach();
  const Attribute attrs[] = {{"team", "search"}};
  int refused = 0;
  for (int i = 0; i < 2000; ++i) {
    const Decision d = c.reserve_raw({attrs, 1, 1});
    if (!d.admitted) {
      EXPECT_EQ(d.reason, Reason::kAuditUnavailable);
      ++refused;
    } else {
      ASSERT_TRUE(c.cancel(d.reservation_id).ok());
    }
  }
  EXPECT_GT(refused, 0);
  EXPECT_EQ(shm::load_relaxed(h.seg().audit_control().refused), static_cast<shm::Word>(refused));
  // Once drained, calls pass again.
  AuditRingReader reader(h.seg());
  drain(reader);
  EXPECT_TRUE(c.reserve_raw({attrs, 1, 1}).admitted);
}

TEST(AuditRing, ProducersInSeveralProcessesLoseAndDuplicateNothing) {
  SidecarHarness h("ring-procs", kPolicy);
  constexpr int kChildren = 3, kCalls = 3000;
  std::vector<pid_t> kids;
  for (int i = 0; i < kChildren; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      Result<Client> c = Client::attach(h.segment());
      if (!c.ok()) ::_exit(2);
      const std::string worker = std::to_string(i);
      for (int n = 0; n < kCalls; ++n) {
        const std::string call = std::to_string(n);
        const Attribute attrs[] = {{"team", "search"}, {"worker", worker}, {"call", call}};
        Reservation r = c->reserve({attrs, 1, 1});
        if (!r.admitted() || !r.commit(1, 1).ok()) ::_exit(3);
      }
      ::_exit(0);
    }
    kids.push_back(pid);
  }
  AuditRingReader reader(h.seg());
  std::set<std::pair<std::string, std::string>> reserves;
  std::map<std::uint64_t, int> reserve_ids, commit_ids;
  std::size_t total = 0;
  auto take = [&] {
    return reader.poll(monotonic_ns(), 4096, [&](std::span<const shm::Word> w) {
      AuditRecordView v;
      ASSERT_TRUE(decode_audit_record(w, &v));
      ++total;
      if (shm::info_event(v.fixed.info) == shm::kAuditReserve) {
        ASSERT_EQ(v.attribute_count, 3u);
        EXPECT_TRUE(
            reserves.emplace(std::string(v.attributes[1].value), std::string(v.attributes[2].value))
                .second);
        ++reserve_ids[v.fixed.reservation_id * 4096 + v.fixed.pid];
      } else {
        ++commit_ids[v.fixed.reservation_id * 4096 + v.fixed.pid];
      }
    });
  };
  int running = kChildren;
  while (running > 0) {
    take();
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
      --running;
    }
  }
  while (take() != 0) {
  }
  EXPECT_EQ(shm::load_relaxed(h.seg().audit_control().dropped), 0u);
  EXPECT_EQ(total, 2u * kChildren * kCalls);
  EXPECT_EQ(reserves.size(), static_cast<std::size_t>(kChildren * kCalls));
  EXPECT_EQ(reserve_ids, commit_ids);  // every reservation: one reserve, one commit
}

// The registration of process `pid` in `seg`, or nullptr.
shm::ClientSlot* registration_of(const SegmentMap& seg, pid_t pid) {
  for (std::uint64_t i = 0; i < seg.client_count(); ++i) {
    if (shm::load_relaxed(seg.clients()[i].pid) == static_cast<shm::Word>(pid)) {
      return &seg.clients()[i];
    }
  }
  return nullptr;
}

// A child process that registers and claims one record, then holds the claim
// until publish(), when it fills and publishes the record (reservation id 77)
// and exits 0. The constructor returns once the claim is made.
class ClaimingChild {
 public:
  explicit ClaimingChild(const std::string& segment) {
    EXPECT_EQ(::pipe(ready_), 0);
    EXPECT_EQ(::pipe(go_), 0);
    pid_ = ::fork();
    if (pid_ == 0) run(segment);
    char b = 0;
    EXPECT_EQ(::read(ready_[0], &b, 1), 1);
  }
  ~ClaimingChild() {
    for (int fd : {ready_[0], ready_[1], go_[0], go_[1]}) ::close(fd);
  }
  ClaimingChild(const ClaimingChild&) = delete;
  ClaimingChild& operator=(const ClaimingChild&) = delete;

  pid_t pid() const { return pid_; }
  void publish() {
    const char b = 1;
    EXPECT_EQ(::write(go_[1], &b, 1), 1);
  }
  // Waits for the child; its exit status, or 128 + the signal that killed it.
  int wait() {
    int status = 0;
    EXPECT_EQ(::waitpid(pid_, &status, 0), pid_);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  [[noreturn]] void run(const std::string& segment) {
    Result<Client> c = Client::attach(segment);
    Result<SegmentMap> m = SegmentMap::attach(segment);
    if (!c.ok() || !m.ok()) ::_exit(2);
    shm::ClientSlot* me = registration_of(m.value(), ::getpid());
    shm::Word head = 0;
    const AuditSlot slot = audit_claim(m.value(), *me, &head, sizeof(shm::AuditRecord));
    if (slot.record == nullptr) ::_exit(3);
    char b = 1;
    if (::write(ready_[1], &b, 1) != 1 || ::read(go_[0], &b, 1) != 1) ::_exit(4);
    shm::AuditRecord r{};
    r.reservation_id = 77;
    r.info =
        shm::make_audit_info(shm::kAuditCancel, shm::kAuditSettled, 0, shm::kAuditNoLimit, 0, 0);
    audit_write_fixed(slot, r);
    audit_publish(*me, slot);
    ::_exit(0);
  }

  int ready_[2] = {-1, -1};
  int go_[2] = {-1, -1};
  pid_t pid_ = -1;
};

TEST(AuditRing, AProducerKilledMidRecordIsSkippedOnlyOnceDead) {
  SidecarHarness h("ring-dead", kPolicy);
  ClaimingChild child(h.segment());
  Client c = h.attach();  // a record after the child's claim
  const Attribute attrs[] = {{"team", "search"}};
  ASSERT_TRUE(c.reserve_raw({attrs, 1, 1}).admitted);

  AuditRingReader reader(h.seg(), /*skip_after_ns=*/0);
  int got = 0;
  auto count = [&](std::span<const shm::Word>) { ++got; };
  EXPECT_EQ(reader.poll(monotonic_ns(), 100, count), 0u);  // alive: waited for
  EXPECT_TRUE(reader.stats().blocked);

  ASSERT_EQ(::kill(child.pid(), SIGKILL), 0);
  EXPECT_EQ(child.wait(), 128 + SIGKILL);
  EXPECT_EQ(reader.poll(monotonic_ns(), 100, count), 1u);  // dead: skipped
  EXPECT_EQ(reader.stats().skipped, 1u);
  EXPECT_EQ(got, 1);
}

TEST(AuditRing, AStalledLiveProducerIsWaitedForPastTheTimeout) {
  SidecarHarness h("ring-stall", kPolicy);
  ClaimingChild child(h.segment());
  ASSERT_EQ(::kill(child.pid(), SIGSTOP), 0);  // stalled, not dead

  AuditRingReader reader(h.seg(), /*skip_after_ns=*/1'000'000);
  std::vector<std::uint64_t> ids;
  auto keep = [&](std::span<const shm::Word> w) {
    AuditRecordView v;
    ASSERT_TRUE(decode_audit_record(w, &v));
    ids.push_back(v.fixed.reservation_id);
  };
  for (int i = 0; i < 20; ++i) {  // well past the timeout
    EXPECT_EQ(reader.poll(monotonic_ns(), 100, keep), 0u);
    ::usleep(2000);
  }
  EXPECT_EQ(reader.stats().skipped, 0u);
  ASSERT_EQ(::kill(child.pid(), SIGCONT), 0);
  child.publish();
  EXPECT_EQ(child.wait(), 0);
  EXPECT_EQ(reader.poll(monotonic_ns(), 100, keep), 1u);
  EXPECT_EQ(ids, std::vector<std::uint64_t>{77});
}

TEST(AuditRing, ARegistrationIsNotFreedWhileTheRingStillWaitsOnItsClaim) {
  SidecarHarness h("ring-free", kPolicy);
  ClaimingChild child(h.segment());
  ASSERT_EQ(::kill(child.pid(), SIGKILL), 0);
  EXPECT_EQ(child.wait(), 128 + SIGKILL);
  h.sidecar().tick();  // reclaim: the child is dead but its claim is unconsumed
  EXPECT_NE(registration_of(h.seg(), child.pid()), nullptr);
  AuditRingReader reader(h.seg(), 0);
  reader.poll(monotonic_ns(), 100, [](std::span<const shm::Word>) {});
  EXPECT_EQ(reader.stats().skipped, 1u);
  h.sidecar().tick();
  EXPECT_EQ(registration_of(h.seg(), child.pid()), nullptr);
}

TEST(AuditRing, GarbageInTheRingIsDroppedNotDelivered) {
  SidecarHarness h("ring-garbage", kPolicy);
  shm::AuditRingControl& ring = h.seg().audit_control();
  // A hostile client claims 64 bytes and publishes a header claiming 1 MiB.
  shm::store_relaxed(ring.tail, 64);
  shm::store_release(h.seg().audit_ring()[0],
                     shm::make_record_header(1 << 20, shm::kAuditRecordEvent));
  AuditRingReader reader(h.seg());
  EXPECT_EQ(reader.poll(monotonic_ns(), 100, [](std::span<const shm::Word>) { FAIL(); }), 0u);
  EXPECT_EQ(reader.stats().corrupt, 1u);
  EXPECT_EQ(shm::load_relaxed(ring.head), 64u);
  EXPECT_EQ(shm::load_relaxed(h.seg().audit_ring()[0]), 0u);
}

// Found by tests/fuzz/fuzz_segment_scan: zeroing the span up to such a tail
// stepped past zero and went on for 2^61 words.
TEST(AuditRing, ATailThatIsNotAWholeNumberOfWordsIsDroppedNotLoopedOn) {
  SidecarHarness h("ring-odd-tail", kPolicy);
  shm::AuditRingControl& ring = h.seg().audit_control();
  shm::store_relaxed(ring.tail, 10);
  shm::store_release(h.seg().audit_ring()[0], shm::make_record_header(168, shm::kAuditRecordEvent));
  AuditRingReader reader(h.seg());
  EXPECT_EQ(reader.poll(monotonic_ns(), 100, [](std::span<const shm::Word>) { FAIL(); }), 0u);
  EXPECT_EQ(reader.stats().corrupt, 1u);
  EXPECT_EQ(shm::load_relaxed(ring.head), 10u);
  EXPECT_EQ(shm::load_relaxed(h.seg().audit_ring()[0]), 0u);
}

TEST(AuditRing, ATailMovedPastTheRingWhileARecordIsReadIsDroppedNotDelivered) {
  SidecarHarness h("ring-far-tail", kPolicy);
  shm::AuditRingControl& ring = h.seg().audit_control();
  shm::Word* words = h.seg().audit_ring();
  // A padding record, then a span claimed and not yet written.
  shm::store_release(words[0], shm::make_record_header(16, shm::kAuditRecordPadding));
  shm::store_relaxed(ring.tail, 32);
  AuditRingReader reader(h.seg());
  EXPECT_EQ(reader.poll(monotonic_ns(), 100, [](std::span<const shm::Word>) { FAIL(); }), 0u);
  ASSERT_EQ(shm::load_relaxed(ring.head), 16u);
  // The span's header appears with a length past the tail the reader saw,
  // and the tail it reads again is three rings ahead.
  shm::store_release(words[2], shm::make_record_header(168, shm::kAuditRecordEvent));
  shm::store_relaxed(ring.tail, 3 * h.seg().audit_capacity());
  EXPECT_EQ(reader.poll(monotonic_ns(), 100, [](std::span<const shm::Word>) { FAIL(); }), 0u);
  EXPECT_EQ(reader.stats().corrupt, 1u);
  EXPECT_EQ(shm::load_relaxed(words[2]), 0u);
}

TEST(AuditRing, AConsumerKilledAfterZeroingBeforeMovingHeadIsRecoveredFrom) {
  SidecarHarness h("ring-consumer", kPolicy);
  Client c = h.attach();
  const Attribute attrs[] = {{"team", "search"}};
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 3; ++i) {
    const Decision d = c.reserve_raw({attrs, 1, 1});
    ASSERT_TRUE(d.admitted);
    ids.push_back(d.reservation_id);
  }
  // The first record was copied out and zeroed; head never moved past it.
  const std::int32_t first = shm::record_length(shm::load_relaxed(h.seg().audit_ring()[0]));
  ASSERT_GT(first, 0);
  for (std::int32_t w = 0; w < first / 8; ++w) shm::store_relaxed(h.seg().audit_ring()[w], 0);

  AuditRingReader reader(h.seg(), /*skip_after_ns=*/0);
  std::vector<std::uint64_t> got;
  reader.poll(monotonic_ns(), 100, [&](std::span<const shm::Word> w) {
    AuditRecordView v;
    ASSERT_TRUE(decode_audit_record(w, &v));
    got.push_back(v.fixed.reservation_id);
  });
  reader.poll(monotonic_ns(), 100, [&](std::span<const shm::Word> w) {
    AuditRecordView v;
    ASSERT_TRUE(decode_audit_record(w, &v));
    got.push_back(v.fixed.reservation_id);
  });
  EXPECT_EQ(got, (std::vector<std::uint64_t>{ids[1], ids[2]}));
  EXPECT_EQ(shm::load_relaxed(h.seg().audit_control().head),
            shm::load_relaxed(h.seg().audit_control().tail));
}

TEST(AuditRing, AClaimThatFindsTheRingFullLeavesNoClaimAnnounced) {
  SidecarHarness h("ring-stale", kPolicy, kSmallRing);
  Client c = h.attach();
  const Attribute attrs[] = {{"team", "search"}};
  while (shm::load_relaxed(h.seg().audit_control().dropped) == 0) {
    ASSERT_TRUE(c.reserve_raw({attrs, 1, 1}).admitted);
  }
  shm::ClientSlot* me = registration_of(h.seg(), ::getpid());
  ASSERT_NE(me, nullptr);
  // As a CAS lost to another producer would leave it.
  shm::store_relaxed(me->audit_claim, shm::make_audit_claim(64, 128));
  ASSERT_TRUE(c.reserve_raw({attrs, 1, 1}).admitted);  // its record is dropped
  EXPECT_EQ(shm::load_relaxed(me->audit_claim), 0u);
}

}  // namespace
}  // namespace sluice
