// Creating, reopening and attaching Sluice segments (Boost.Interprocess
// shared_memory_object + mapped_region; no managed allocator, no mutex).
#include "segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <cstring>
#include <optional>
#include <random>

#include "group_access.h"
#include "sluice/telemetry.h"

namespace sluice {
namespace bip = boost::interprocess;

struct SegmentMap::Mapping {
  bip::mapped_region region;
};

namespace {

constexpr std::uint64_t kPage = 4096;
constexpr mode_t kSegmentMode = 0660;  // owner and group read-write; README, Security

// segment.group as a gid; nothing when it is empty (sluiced's own group).
Result<std::optional<gid_t>> group_of(const std::string& group) {
  if (group.empty()) return std::optional<gid_t>();
  Result<gid_t> gid = lookup_group(group, "segment.group");
  if (!gid.ok()) return gid.status();
  return std::optional<gid_t>(gid.value());
}

std::uint64_t round_up(std::uint64_t n, std::uint64_t to) { return (n + to - 1) / to * to; }

std::string shm_path(const std::string& name) { return "/dev/shm/" + name; }

// `write`: the open asked for read-write access.
Status open_error(const std::string& name, const bip::interprocess_exception& e, bool write) {
  const std::string path = shm_path(name);
  switch (e.get_error_code()) {
    case bip::not_found_error:
      return Status(ErrorCode::kNotFound, "no segment '" + name + "' (" + path +
                                              "): is sluiced running? start it with: "
                                              "sluiced --config POLICY.yaml");
    case bip::security_error:
      return Status(ErrorCode::kPermissionDenied, permission_denied_message(path, write));
    case bip::already_exists_error:
      return Status(ErrorCode::kAlreadyRunning,
                    "segment '" + name + "' already exists (" + path + ")");
    default:
      return Status(ErrorCode::kIo, "cannot open segment " + path + ": " + e.what());
  }
}

// Lays regions out one after the other, each page-aligned.
struct Layout {
  shm::Region policy[2];
  shm::Region keys, reservations, clients, calls, audit;
  std::uint64_t total = 0;
};

Layout layout_for(const SegmentSizes& s) {
  Layout l;
  std::uint64_t at = shm::kHeaderBytes;
  auto place = [&at](shm::Region& r, std::uint64_t count, std::uint64_t record) {
    r.offset = at;
    r.count = count;
    r.size = count * record;
    at = round_up(at + r.size, kPage);
  };
  place(l.policy[0], 1, sizeof(shm::CompiledPolicy));
  place(l.policy[1], 1, sizeof(shm::CompiledPolicy));
  place(l.keys, SegmentMap::key_capacity_for(s.max_keys), sizeof(shm::KeySlot));
  place(l.reservations, s.max_reservations, sizeof(shm::ReservationSlot));
  place(l.clients, shm::kMaxClients, sizeof(shm::ClientSlot));
  place(l.calls, shm::kModelStatsRows, sizeof(shm::ModelCallStats));
  place(l.audit, 1, sizeof(shm::AuditRingControl) + s.audit_ring_bytes);
  l.audit.count = s.audit_ring_bytes;  // the ring's capacity in bytes
  l.total = at;
  return l;
}

void write_region(shm::Region& dst, const shm::Region& src) {
  shm::store_relaxed(dst.offset, src.offset);
  shm::store_relaxed(dst.size, src.size);
  shm::store_relaxed(dst.count, src.count);
}

}  // namespace

std::uint64_t SegmentMap::key_capacity_for(std::uint64_t max_keys) {
  return round_up(max_keys + max_keys / 4 + 1, 64);
}

std::uint64_t SegmentMap::bytes_for(const SegmentSizes& sizes) { return layout_for(sizes).total; }

SegmentMap::SegmentMap() = default;
SegmentMap::SegmentMap(SegmentMap&&) noexcept = default;
SegmentMap& SegmentMap::operator=(SegmentMap&&) noexcept = default;
SegmentMap::~SegmentMap() = default;

bool SegmentMap::exists(const std::string& name) {
  struct stat st;
  return ::stat(shm_path(name).c_str(), &st) == 0;
}

Status SegmentMap::remove(const std::string& name) {
  ::unlink(telemetry_path(name).c_str());  // what sluiced made of this segment's calls
  if (!bip::shared_memory_object::remove(name.c_str()) && exists(name)) {
    return Status(ErrorCode::kIo, "cannot remove " + shm_path(name) + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Result<SegmentMap> SegmentMap::attach(const std::string& name, Access access) {
  SegmentMap m;
  m.name_ = name;
  const bip::mode_t mode = access == Access::kReadOnly ? bip::read_only : bip::read_write;
  try {
    bip::shared_memory_object shm(bip::open_only, name.c_str(), mode);
    bip::offset_t size = 0;
    if (!shm.get_size(size) || size < static_cast<bip::offset_t>(shm::kHeaderBytes)) {
      return Status(ErrorCode::kIncompatible,
                    "segment '" + name + "' is " + std::to_string(size) +
                        " bytes, too short for a Sluice segment; remove " + shm_path(name) +
                        " and restart sluiced");
    }
    m.mapping_ = std::make_unique<Mapping>(Mapping{bip::mapped_region(shm, mode)});
  } catch (const bip::interprocess_exception& e) {
    return open_error(name, e, access == Access::kReadWrite);
  }
  if (Status s = m.bind(/*require_ready=*/true); !s.ok()) return s;
  return m;
}

Result<SegmentMap> SegmentMap::reopen(const std::string& name, const SegmentSizes& sizes,
                                      const std::string& group) {
  Result<std::optional<gid_t>> gid = group_of(group);
  if (!gid.ok()) return gid.status();
  Result<SegmentMap> m = attach(name);
  if (!m.ok()) return m;
  const Layout want = layout_for(sizes);
  const shm::SegmentHeader& h = m->header();
  if (m->size() != want.total || shm::load_relaxed(h.keys.count) != want.keys.count ||
      shm::load_relaxed(h.reservations.count) != want.reservations.count ||
      shm::load_relaxed(h.audit.count) != want.audit.count ||
      shm::load_relaxed(h.max_keys) != sizes.max_keys) {
    return Status(ErrorCode::kIncompatible,
                  "segment '" + name +
                      "' exists with other sizes than the policy's segment block; restore the "
                      "old sizes or remove " +
                      shm_path(name) + " (its counters are lost) and start again");
  }
  // A policy that names another group (or a segment someone chmodded) takes
  // effect on restart, counters kept.
  const int fd = ::open(shm_path(name).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return Status(ErrorCode::kIo, "cannot open " + shm_path(name) + ": " + std::strerror(errno) +
                                      "; run sluiced as the segment's owner");
  }
  const Status access = set_file_access(fd, shm_path(name), kSegmentMode, gid.value());
  ::close(fd);
  if (!access.ok()) return access;
  return m;
}

std::uint64_t SegmentMap::random_seed() {
  std::random_device rd;
  const shm::Word seed = (static_cast<shm::Word>(rd()) << 32) ^ rd();
  return seed == 0 ? 1 : seed;
}

Result<SegmentMap> SegmentMap::create(const std::string& name, const SegmentSizes& sizes,
                                      const std::string& group, std::uint64_t hash_seed) {
  const Layout l = layout_for(sizes);
  Result<std::optional<gid_t>> gid = group_of(group);
  if (!gid.ok()) return gid.status();
  SegmentMap m;
  m.name_ = name;
  try {
    bip::shared_memory_object shm(bip::create_only, name.c_str(), bip::read_write,
                                  bip::permissions(kSegmentMode));
    // Exactly 0660 whatever the umask, and the policy's group, checked.
    const int fd = shm.get_mapping_handle().handle;
    if (Status s = set_file_access(fd, shm_path(name), kSegmentMode, gid.value()); !s.ok()) {
      bip::shared_memory_object::remove(name.c_str());
      return s;
    }
    shm.truncate(static_cast<bip::offset_t>(l.total));
    m.mapping_ = std::make_unique<Mapping>(Mapping{bip::mapped_region(shm, bip::read_write)});
  } catch (const bip::interprocess_exception& e) {
    if (e.get_error_code() != bip::already_exists_error) {
      bip::shared_memory_object::remove(name.c_str());
    }
    return open_error(name, e, /*write=*/true);
  }
  auto* h = static_cast<shm::SegmentHeader*>(m.mapping_->region.get_address());
  shm::store_relaxed(h->magic, shm::kMagic);
  shm::store_relaxed(h->layout_major, shm::kLayoutMajor);
  shm::store_relaxed(h->layout_minor, shm::kLayoutMinor);
  shm::store_relaxed(h->segment_size, l.total);
  shm::store_relaxed(h->hash_seed, hash_seed == 0 ? random_seed() : hash_seed);
  shm::store_relaxed(h->created_unix, static_cast<shm::Word>(::time(nullptr)));
  shm::store_relaxed(h->instance, random_seed());
  shm::store_relaxed(h->max_keys, sizes.max_keys);
  write_region(h->policy[0], l.policy[0]);
  write_region(h->policy[1], l.policy[1]);
  write_region(h->keys, l.keys);
  write_region(h->reservations, l.reservations);
  write_region(h->clients, l.clients);
  write_region(h->calls, l.calls);
  write_region(h->audit, l.audit);
  shm::store_release(h->ready, shm::kReadyValue);
  if (Status s = m.bind(/*require_ready=*/true); !s.ok()) return s;
  return m;
}

Status SegmentMap::bind(bool require_ready) {
  size_ = mapping_->region.get_size();
  auto* base = static_cast<std::uint8_t*>(mapping_->region.get_address());
  header_ = reinterpret_cast<shm::SegmentHeader*>(base);
  const shm::SegmentHeader& h = *header_;
  const std::string path = shm_path(name_);
  if (shm::load_acquire(h.magic) != shm::kMagic) {
    return Status(ErrorCode::kIncompatible, path +
                                                " is not a Sluice segment (bad magic); check "
                                                "--segment or remove the file");
  }
  const shm::Word major = shm::load_relaxed(h.layout_major);
  if (major != shm::kLayoutMajor) {
    return Status(ErrorCode::kIncompatible,
                  "segment '" + name_ + "' has layout version " + std::to_string(major) +
                      ", this build speaks " + std::to_string(shm::kLayoutMajor) +
                      "; use a client from the same release as sluiced, or restart sluiced");
  }
  if (require_ready && shm::load_acquire(h.ready) != shm::kReadyValue) {
    return Status(ErrorCode::kNotReady,
                  "segment '" + name_ +
                      "' is not ready (sluiced is still creating it, or died doing so); retry, "
                      "or restart sluiced");
  }
  if (shm::load_relaxed(h.segment_size) != size_) {
    return Status(ErrorCode::kIncompatible, "segment '" + name_ + "' says it is " +
                                                std::to_string(shm::load_relaxed(h.segment_size)) +
                                                " bytes but maps " + std::to_string(size_) +
                                                "; remove " + path + " and restart sluiced");
  }
  // The audit region is its control block and a power-of-two ring.
  auto audit_region_ok = [this](const shm::Region& r) {
    const std::uint64_t off = shm::load_relaxed(r.offset);
    const std::uint64_t size = shm::load_relaxed(r.size);
    const std::uint64_t cap = shm::load_relaxed(r.count);
    return off >= shm::kHeaderBytes && off % kPage == 0 && off <= size_ && size <= size_ - off &&
           cap >= 4096 && cap <= (1ull << 30) && (cap & (cap - 1)) == 0 &&
           size == sizeof(shm::AuditRingControl) + cap;
  };
  // Every region must lie inside the mapping, page-aligned, and hold whole records.
  auto region_ok = [this](const shm::Region& r, std::uint64_t record, std::uint64_t max_count) {
    const std::uint64_t off = shm::load_relaxed(r.offset);
    const std::uint64_t size = shm::load_relaxed(r.size);
    const std::uint64_t count = shm::load_relaxed(r.count);
    return off >= shm::kHeaderBytes && off % kPage == 0 && off <= size_ && size <= size_ - off &&
           count >= 1 && count <= max_count && size / record == count && size % record == 0;
  };
  if (!region_ok(h.policy[0], sizeof(shm::CompiledPolicy), 1) ||
      !region_ok(h.policy[1], sizeof(shm::CompiledPolicy), 1) ||
      !region_ok(h.keys, sizeof(shm::KeySlot), 1ull << 26) ||
      !region_ok(h.reservations, sizeof(shm::ReservationSlot), 1ull << 22) ||
      !region_ok(h.clients, sizeof(shm::ClientSlot), shm::kMaxClients) ||
      !region_ok(h.calls, sizeof(shm::ModelCallStats), shm::kModelStatsRows) ||
      !audit_region_ok(h.audit)) {
    return Status(ErrorCode::kIncompatible, "segment '" + name_ +
                                                "' has a region outside its bounds (corrupt); "
                                                "remove " +
                                                path + " and restart sluiced");
  }
  // Every pointer is taken once, here, from the offsets just checked.
  for (int i = 0; i < 2; ++i) {
    policy_[i] =
        reinterpret_cast<shm::CompiledPolicy*>(base + shm::load_relaxed(h.policy[i].offset));
  }
  keys_ = reinterpret_cast<shm::KeySlot*>(base + shm::load_relaxed(h.keys.offset));
  key_capacity_ = shm::load_relaxed(h.keys.count);
  reservations_ =
      reinterpret_cast<shm::ReservationSlot*>(base + shm::load_relaxed(h.reservations.offset));
  reservation_count_ = shm::load_relaxed(h.reservations.count);
  clients_ = reinterpret_cast<shm::ClientSlot*>(base + shm::load_relaxed(h.clients.offset));
  client_count_ = shm::load_relaxed(h.clients.count);
  model_stats_ = reinterpret_cast<shm::ModelCallStats*>(base + shm::load_relaxed(h.calls.offset));
  model_stats_count_ = shm::load_relaxed(h.calls.count);
  audit_control_ =
      reinterpret_cast<shm::AuditRingControl*>(base + shm::load_relaxed(h.audit.offset));
  audit_ring_ = reinterpret_cast<shm::Word*>(audit_control_ + 1);
  audit_capacity_ = shm::load_relaxed(h.audit.count);
  return Status::Ok();
}

}  // namespace sluice
