// libFuzzer target: segment header validation at attach (libquota/segment.cc,
// SegmentMap::attach and bind) and what a client does first with a segment
// it attached (Client::attach, one reserve and its commit).
//
// The input is the start of /dev/shm/<a name of this process>; when the
// header's segment_size asks for more (up to 16 MiB) the file is extended
// with zeros, so a small input can describe a whole segment. Attach must
// either refuse with one line or give a map whose every region lies inside
// the mapping: the accessors' first and last records are touched (ASan and
// the mapping's end catch any that do not).
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "segment.h"
#include "segment_layout.h"
#include "sluice/quota.h"

namespace {

using sluice::SegmentMap;
namespace shm = sluice::shm;

constexpr std::uint64_t kMaxExtendedBytes = 16u << 20;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_segment_attach: %s\n", what.c_str());
  std::abort();
}

const std::string& segment_name() {
  static const std::string name = "sluice-fuzz-attach-" + std::to_string(::getpid());
  return name;
}

void write_segment(const std::string& name, const std::uint8_t* data, std::size_t size) {
  const int fd = ::open(("/dev/shm/" + name).c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot create /dev/shm/" + name);
  if (size > 0 && ::write(fd, data, size) != static_cast<ssize_t>(size)) fail("short write");
  std::uint64_t wanted = 0;
  if (size >= offsetof(shm::SegmentHeader, segment_size) + sizeof(shm::Word)) {
    std::memcpy(&wanted, data + offsetof(shm::SegmentHeader, segment_size), sizeof wanted);
  }
  if (wanted > size && wanted <= kMaxExtendedBytes &&
      ::ftruncate(fd, static_cast<off_t>(wanted)) != 0) {
    fail("cannot extend the segment");
  }
  ::close(fd);
}

shm::Word sum = 0;  // what the touches read, so that they are not optimized away

template <class T>
void touch(const T* first, std::uint64_t count) {
  if (count == 0) fail("a region of no records");
  const auto* a = reinterpret_cast<const shm::Word*>(first);
  const auto* b = reinterpret_cast<const shm::Word*>(first + count) - 1;
  sum += shm::load_relaxed(*a) + shm::load_relaxed(*b);
}

void touch_every_region(const SegmentMap& m) {
  const auto* base = reinterpret_cast<const std::uint8_t*>(&m.header());
  for (int i = 0; i < 2; ++i) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&m.policy_slot(i));
    if (p < base || p + sizeof(shm::CompiledPolicy) > base + m.size()) fail("policy slot outside");
    touch(&m.policy_slot(i), 1);
  }
  touch(m.keys(), m.key_capacity());
  touch(m.reservations(), m.reservation_count());
  touch(m.clients(), m.client_count());
  touch(&m.audit_control(), 1);
  const std::uint64_t cap = m.audit_capacity();
  if (cap < sizeof(shm::Word) || (cap & (cap - 1)) != 0) fail("audit capacity not a power of two");
  touch(m.audit_ring(), cap / sizeof(shm::Word));
  const auto* ring_end = reinterpret_cast<const std::uint8_t*>(m.audit_ring()) + cap;
  if (ring_end > base + m.size()) fail("audit ring outside");
}

void one_line(const sluice::Status& s) {
  if (s.message().empty() || s.message().find('\n') != std::string::npos) {
    fail("refusal is not one line: " + s.message());
  }
}

// A client's first call on the segment: whatever the segment holds, reserve
// decides (or refuses) and commit settles without leaving the mapping.
void first_call(const std::string& name) {
  sluice::Result<sluice::Client> c = sluice::Client::attach(name);
  if (!c.ok()) return one_line(c.status());
  const sluice::Attribute attrs[] = {{"team", "pricing"}, {"model", "gpt-4o"}};
  const sluice::Decision d = c->reserve_raw({attrs, 100, 50});
  if (d.admitted) (void)c->commit(d.reservation_id, 90, 40);
  (void)c->limit_name(d.limit_index);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& name = segment_name();
  write_segment(name, data, size);
  for (const SegmentMap::Access access :
       {SegmentMap::Access::kReadOnly, SegmentMap::Access::kReadWrite}) {
    sluice::Result<SegmentMap> m = SegmentMap::attach(name, access);
    if (!m.ok()) {
      one_line(m.status());
      continue;
    }
    touch_every_region(m.value());
  }
  sluice::Result<SegmentMap> reopened = SegmentMap::reopen(name, sluice::SegmentSizes{});
  if (!reopened.ok()) one_line(reopened.status());
  first_call(name);
  (void)SegmentMap::remove(name);
  return 0;
}
