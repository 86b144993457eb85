#include "sidecar.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "clock.h"
#include "group_access.h"
#include "policy_compiler.h"
#include "policy_publisher.h"
#include "process.h"

namespace sluice {

std::string sidecar_lock_path(const std::string& segment_name) {
  return "/dev/shm/" + segment_name + ".sluiced.lock";
}

namespace {

SegmentSizes sizes_of(const Policy& p) {
  return {p.segment.max_keys, p.segment.max_reservations, p.segment.audit_ring_bytes};
}

// Takes the segment's lock (released by the kernel when this process dies).
Result<int> take_lock(const std::string& segment) {
  const std::string path = sidecar_lock_path(segment);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0660);
  if (fd < 0) {
    return Status(ErrorCode::kPermissionDenied,
                  "cannot open " + path + ": " + std::strerror(errno) +
                      "; run sluiced as the segment's owner or group");
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    const std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "?";
    return Status(ErrorCode::kAlreadyRunning,
                  "another sluiced (pid " + pid + ") is running on segment '" + segment +
                      "'; stop it (kill " + pid + ") or use another segment.name");
  }
  const std::string me = std::to_string(::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) < 0) {
    // The pid in the lock file is only for the message above.
  }
  return fd;
}

// The hash seed a new segment gets: the store's, so that hosts sharing it
// hash keys alike; a random one when there is no store.
Result<std::uint64_t> seed_for_new_segment(Store* store) {
  if (store == nullptr) return SegmentMap::random_seed();
  Result<std::uint64_t> seed = store->hash_seed(SegmentMap::random_seed());
  if (!seed.ok()) {
    return Status(ErrorCode::kIo, "cannot read the shared hash seed from the store (" +
                                      seed.status().message() +
                                      "); a new segment needs it: start the store and retry");
  }
  return seed;
}

// A reopened segment must hash like the store's other hosts. A store that
// does not answer now is checked by nothing: its cells are matched by hash.
Status check_seed(const SegmentMap& seg, Store* store, const std::string& name) {
  if (store == nullptr) return Status::Ok();
  const std::uint64_t mine = shm::load_relaxed(seg.header().hash_seed);
  Result<std::uint64_t> seed = store->hash_seed(mine);
  if (!seed.ok() || seed.value() == mine) return Status::Ok();
  return Status(ErrorCode::kIncompatible,
                "segment '" + name + "' hashes keys with another seed than the store at " +
                    store->where() + "; stop its clients and remove /dev/shm/" + name +
                    " so sluiced creates it afresh with the store's seed");
}

void publish_clock(shm::SegmentHeader& h, std::uint64_t mono, std::uint64_t wall) {
  shm::store_relaxed(h.wall_offset_ns, wall - mono);
  shm::store_release(h.heartbeat_ns, mono);
}

}  // namespace

Sidecar::Sidecar(Sidecar&& o) noexcept
    : policy_path_(std::move(o.policy_path_)),
      policy_(std::move(o.policy_)),
      seg_(std::move(o.seg_)),
      lock_fd_(o.lock_fd_),
      reopened_(o.reopened_),
      reclaimed_(o.reclaimed_),
      log_(std::move(o.log_)),
      wall_clock_(std::move(o.wall_clock_)),
      tally_(std::move(o.tally_)),
      audit_(std::move(o.audit_)),
      sync_(std::move(o.sync_)),
      metrics_(std::move(o.metrics_)),
      telemetry_(std::move(o.telemetry_)),
      telemetry_by_tick_(o.telemetry_by_tick_) {
  o.lock_fd_ = -1;
}

Sidecar& Sidecar::operator=(Sidecar&& o) noexcept {
  if (this != &o) {
    telemetry_.reset();
    metrics_.reset();
    sync_.reset();
    audit_.reset();
    tally_.reset();
    if (lock_fd_ >= 0) ::close(lock_fd_);
    policy_path_ = std::move(o.policy_path_);
    policy_ = std::move(o.policy_);
    seg_ = std::move(o.seg_);
    lock_fd_ = o.lock_fd_;
    reopened_ = o.reopened_;
    reclaimed_ = o.reclaimed_;
    log_ = std::move(o.log_);
    wall_clock_ = std::move(o.wall_clock_);
    tally_ = std::move(o.tally_);
    audit_ = std::move(o.audit_);
    sync_ = std::move(o.sync_);
    metrics_ = std::move(o.metrics_);
    telemetry_ = std::move(o.telemetry_);
    telemetry_by_tick_ = o.telemetry_by_tick_;
    o.lock_fd_ = -1;
  }
  return *this;
}

Sidecar::~Sidecar() {
  telemetry_.reset();  // its webhook stops within one attempt's timeout
  metrics_.reset();    // no scrape reads the tally or the segment from here on
  sync_.reset();       // a last push before the segment goes
  audit_.reset();      // drains and closes before the segment goes
  tally_.reset();
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Result<Sidecar> Sidecar::start(const std::string& policy_path, SidecarOptions options) {
  Result<Policy> policy = load_policy_file(policy_path);
  if (!policy.ok()) return policy.status();
  Sidecar s;
  s.log_ = std::move(options.log);
  s.wall_clock_ = std::move(options.wall_clock);
  s.policy_path_ = policy_path;
  s.policy_ = std::move(policy.value());
  const std::string& name = s.policy_.segment.name;
  // A group that does not exist fails the start before anything is touched.
  if (const std::string& group = s.policy_.segment.group; !group.empty()) {
    if (Result<gid_t> gid = lookup_group(group, "segment.group"); !gid.ok()) return gid.status();
  }

  Result<int> lock = take_lock(name);
  if (!lock.ok()) return lock.status();
  s.lock_fd_ = lock.value();

  // Bound before anything is touched, so that a taken address fails the start
  // cleanly; answered once the segment has a policy.
  const MetricsSpec& metrics = s.policy_.metrics;
  if (!metrics.listen.empty()) {
    s.tally_ = std::make_unique<AuditTally>(metrics.max_series);
    auto exposition = std::make_shared<Exposition>(metrics.max_series);
    const AuditTally* tally =
        options.audit != SidecarOptions::Audit::kOff ? s.tally_.get() : nullptr;
    Result<std::unique_ptr<MetricsServer>> server = MetricsServer::bind(
        metrics.listen,
        [name, exposition, tally] { return exposition->render(read_segment(name), tally); });
    if (!server.ok()) return server.status();
    s.metrics_ = std::move(server.value());
  }

  std::unique_ptr<Store> store;
  if (options.sync != SidecarOptions::Sync::kOff) {
    Result<std::unique_ptr<Store>> opened = open_store(s.policy_.store);
    if (!opened.ok()) return opened.status();
    store = std::move(opened.value());
  }
  const SegmentSizes sizes = sizes_of(s.policy_);
  if (SegmentMap::exists(name)) {
    Result<SegmentMap> old = SegmentMap::reopen(name, sizes, s.policy_.segment.group);
    if (old.ok()) {
      s.seg_ = std::make_unique<SegmentMap>(std::move(old.value()));
      s.reopened_ = true;
    } else if (old.status().code() == ErrorCode::kNotReady) {
      // A sidecar died while creating it: nothing in it can matter.
      if (Status rm = SegmentMap::remove(name); !rm.ok()) return rm;
    } else {
      return old.status();
    }
  }
  if (s.reopened_) {
    if (Status seed = check_seed(*s.seg_, store.get(), name); !seed.ok()) return seed;
  } else {
    Result<std::uint64_t> seed = seed_for_new_segment(store.get());
    if (!seed.ok()) return seed.status();
    Result<SegmentMap> fresh =
        SegmentMap::create(name, sizes, s.policy_.segment.group, seed.value());
    if (!fresh.ok()) return fresh.status();
    s.seg_ = std::make_unique<SegmentMap>(std::move(fresh.value()));
  }
  // Before the policy is published: a fresh segment gets the store's record
  // of this host's current windows before any client can decide.
  if (store) {
    Result<std::unique_ptr<StoreSync>> sync =
        StoreSync::open(*s.seg_, s.policy_.store, std::move(store), s.log_, !s.reopened_);
    if (!sync.ok()) return sync.status();
    s.sync_ = std::move(sync.value());
  }
  if (options.audit != SidecarOptions::Audit::kOff) {
    Result<std::unique_ptr<AuditPipeline>> audit =
        AuditPipeline::open(*s.seg_, s.policy_.audit, s.policy_.segment.group, s.log_);
    if (!audit.ok()) return audit.status();
    s.audit_ = std::move(audit.value());
    if (s.tally_) {
      s.audit_->set_observer(
          [tally = s.tally_.get()](const DecodedRecord& r) { tally->observe(r); });
    }
    if (options.audit == SidecarOptions::Audit::kThread) s.audit_->start();
  }
  // Clock offset and policy first: a sidecar that shows as alive (pid and a
  // fresh heartbeat) has a policy clients can decide with.
  shm::SegmentHeader& h = s.seg_->header();
  shm::store_relaxed(h.wall_offset_ns, s.wall_ns() - monotonic_ns());
  if (Status p = s.publish(); !p.ok()) return p;
  Result<std::unique_ptr<TelemetryMonitor>> telemetry = TelemetryMonitor::start(s.policy_, s.log_);
  if (!telemetry.ok()) return telemetry.status();
  s.telemetry_ = std::move(telemetry.value());
  s.telemetry_by_tick_ = options.telemetry == SidecarOptions::Telemetry::kTick;
  if (!s.telemetry_by_tick_) {
    std::function<std::uint64_t()> clock = s.wall_clock_;
    if (!clock) clock = [] { return realtime_ns(); };
    s.telemetry_->run_every_second(std::move(clock));
  }
  shm::store_relaxed(h.sidecar_start_time, process_start_time(::getpid()));
  shm::store_release(h.sidecar_pid, static_cast<shm::Word>(::getpid()));
  s.tick();
  if (s.sync_) {
    (void)s.sync_->sync_once();  // leases before the first interval has passed
    if (options.sync == SidecarOptions::Sync::kThread) s.sync_->start();
  }
  if (s.metrics_) s.metrics_->start();
  return s;
}

std::uint64_t Sidecar::wall_ns() const { return wall_clock_ ? wall_clock_() : realtime_ns(); }

Status Sidecar::publish() {
  const auto now = static_cast<std::int64_t>(wall_ns() / 1'000'000'000ull);
  Result<std::uint64_t> gen = publish_policy(*seg_, policy_, now);
  return gen.ok() ? Status::Ok() : gen.status();
}

void Sidecar::refresh_windows(std::uint64_t wall_ns) {
  const shm::Word gen = shm::load_acquire(seg_->header().policy_generation);
  const auto now = static_cast<std::int64_t>(wall_ns / 1'000'000'000ull);
  if (gen != 0 && !window_tables_hold(seg_->policy_slot(static_cast<int>(gen & 1)), now)) {
    (void)publish();
  }
}

// Budget windows follow the wall clock both ways: once it passes the
// middle of the live window tables, or is stepped back before their first
// window, the policy is republished with tables that start at the window
// holding it. A client pairs the offset it reads with the tables it holds,
// so the two go out in the order that keeps every pair it can see within
// one table for any step shorter than 7 windows: on a step back the tables
// that reach back go first, otherwise the clock does.
void Sidecar::tick() {
  shm::SegmentHeader& h = seg_->header();
  const std::uint64_t mono = monotonic_ns();
  const std::uint64_t wall = wall_ns();
  const bool stepped_back = static_cast<std::int64_t>(wall - mono) <
                            static_cast<std::int64_t>(shm::load_relaxed(h.wall_offset_ns));
  if (stepped_back) refresh_windows(wall);
  publish_clock(h, mono, wall);
  if (!stepped_back) refresh_windows(wall);
  std::vector<shm::AuditRecord> settled;
  const ReclaimStats r = reclaim(*seg_, monotonic_ns(), audit_ ? &settled : nullptr, wall_ns());
  if (audit_) audit_->post(std::move(settled));
  reclaimed_.abandoned += r.abandoned;
  reclaimed_.refunded_partial += r.refunded_partial;
  reclaimed_.finished += r.finished;
  reclaimed_.extends_undone += r.extends_undone;
  reclaimed_.clients_freed += r.clients_freed;
  if (telemetry_ && telemetry_by_tick_) telemetry_->tick(wall_ns());
}

Status Sidecar::reload() {
  Result<Policy> next = load_policy_file(policy_path_);
  if (!next.ok()) return next.status();
  if (next->segment.name != policy_.segment.name) {
    return Status(ErrorCode::kInvalidArgument,
                  policy_path_ + ": segment.name changed from '" + policy_.segment.name + "' to '" +
                      next->segment.name +
                      "'; a running sluiced keeps its segment: restart it to move");
  }
  const AuditSpec &was = policy_.audit, &now = next->audit;
  if (now.dir != was.dir || now.fsync_interval_ms != was.fsync_interval_ms ||
      now.rotate_bytes != was.rotate_bytes || now.rotate_seconds != was.rotate_seconds ||
      now.retain_files != was.retain_files || now.retain_seconds != was.retain_seconds) {
    return Status(ErrorCode::kInvalidArgument,
                  policy_path_ +
                      ": the audit files' settings (dir, fsync, rotation, retention) changed; a "
                      "running sluiced keeps its audit files: restart it to apply them");
  }
  if (next->metrics.listen != policy_.metrics.listen ||
      next->metrics.max_series != policy_.metrics.max_series) {
    return Status(ErrorCode::kInvalidArgument,
                  policy_path_ +
                      ": the metrics settings (listen, max_series) changed; a running sluiced "
                      "keeps its metrics endpoint: restart it to apply them");
  }
  const StoreSpec &had = policy_.store, &wants = next->store;
  if (wants.kind != had.kind || wants.path != had.path || wants.url != had.url ||
      wants.host_id != had.host_id || wants.sync_interval_ms != had.sync_interval_ms ||
      wants.lease_ms != had.lease_ms || wants.timeout_ms != had.timeout_ms) {
    return Status(ErrorCode::kInvalidArgument,
                  policy_path_ +
                      ": the store settings changed; a running sluiced keeps its store: restart it "
                      "to apply them");
  }
  if (Status s = telemetry_->replace(next.value()); !s.ok()) return s;
  Policy previous = std::move(policy_);
  policy_ = std::move(next.value());
  if (Status s = publish(); !s.ok()) {
    policy_ = std::move(previous);
    (void)telemetry_->replace(policy_);  // what ran before, so it starts again
    return s;
  }
  return Status::Ok();
}

void Sidecar::stop() {
  if (metrics_) metrics_->stop();
  if (sync_) sync_->stop();
  if (audit_) {
    if (Status s = audit_->stop(); !s.ok()) log_("audit files not closed cleanly: " + s.message());
  }
  shm::store_release(seg_->header().sidecar_pid, 0);
  shm::store_relaxed(seg_->header().sidecar_start_time, 0);
}

}  // namespace sluice
