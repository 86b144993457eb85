#include "audit_pipeline.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <tuple>

#include "audit_generated.h"
#include "clock.h"
#include "log_reader.h"

namespace sluice {

using namespace shm;  // NOLINT(google-build-using-namespace)

namespace {

// Calls `seen` with every verified record of `path`, in file order. Like
// recovery and the readers, it looks past a hole a crash left between two
// batches written out of order, so it sees the file's last record.
void for_each_record_in(const std::string& path,
                        const std::function<void(const audit::fb::Record&)>& seen) {
  (void)audit::verify_file(path, [&](std::span<const std::uint8_t> payload) {
    flatbuffers::Verifier v(payload.data(), payload.size());
    if (audit::fb::VerifyRecordBuffer(v)) seen(*audit::fb::GetRecord(payload.data()));
    return std::string();
  });
}

std::optional<std::uint64_t> last_sequence_in(const std::string& path) {
  std::optional<std::uint64_t> last;
  for_each_record_in(path, [&](const audit::fb::Record& r) { last = r.sequence(); });
  return last;
}

// The ring position just past the last record of segment `instance` that
// the two newest of `files` hold; nullopt if they hold none.
std::optional<std::uint64_t> last_ring_end(const std::vector<std::string>& files,
                                           std::uint64_t instance) {
  if (instance == 0) return std::nullopt;
  int looked = 0;
  for (auto it = files.rbegin(); it != files.rend() && looked < 2; ++it, ++looked) {
    std::optional<std::uint64_t> end;
    for_each_record_in(*it, [&](const audit::fb::Record& r) {
      if (r.ring_instance() == instance && r.ring_end() != 0) end = r.ring_end();
    });
    if (end) return end;
  }
  return std::nullopt;
}

}  // namespace

std::uint64_t next_audit_sequence(const std::string& dir) {
  Result<std::vector<std::string>> files = audit::list_segment_files(dir);
  if (!files.ok()) return 0;
  for (auto it = files->rbegin(); it != files->rend(); ++it) {
    if (const std::optional<std::uint64_t> last = last_sequence_in(*it)) return *last + 1;
  }
  return 0;
}

Result<std::unique_ptr<AuditPipeline>> AuditPipeline::open(const SegmentMap& seg,
                                                           const AuditSpec& spec,
                                                           const std::string& group, LogFn log) {
  std::error_code ec;
  const std::string dir = std::filesystem::absolute(spec.dir, ec).lexically_normal().string();
  if (ec || dir.size() >= sizeof(Word) * kAuditDirWords) {
    return Status(ErrorCode::kInvalidArgument,
                  "audit.dir '" + spec.dir + "' cannot be made an absolute path of at most " +
                      std::to_string(sizeof(Word) * kAuditDirWords - 1) +
                      " bytes; set a shorter audit.dir");
  }
  AuditWriterOptions o;
  o.dir = dir;
  o.group = group;
  o.fsync_interval_ms = spec.fsync_interval_ms;
  o.rotate_bytes = spec.rotate_bytes;
  o.rotate_seconds = spec.rotate_seconds;
  o.retain_files = spec.retain_files;
  o.retain_seconds = spec.retain_seconds;
  o.batches_in_flight = 16;  // 16 MiB of records in flight: the drain rarely waits for the disk
  const std::uint64_t first = next_audit_sequence(dir);
  // Only these can hold records: a file the writer creates now is empty,
  // and reading its preallocated zeros costs tens of milliseconds.
  Result<std::vector<std::string>> listed = audit::list_segment_files(dir);
  const std::vector<std::string> had =
      listed.ok() ? std::move(listed.value()) : std::vector<std::string>();
  Result<AuditWriter> w = AuditWriter::open(o, log);
  if (!w.ok()) return w.status();
  store_text(seg.header().audit_dir, dir.data(), dir.size());
  std::unique_ptr<AuditPipeline> p(
      new AuditPipeline(seg, std::move(w.value()), dir, std::move(log), first));
  // A sidecar that died left the records it had written in the ring too:
  // read on after the last one the files hold, not from head.
  if (const std::optional<std::uint64_t> end =
          last_ring_end(had, load_relaxed(seg.header().instance))) {
    p->reader_.resume_at(*end);
  }
  return p;
}

AuditPipeline::AuditPipeline(const SegmentMap& seg, AuditWriter writer, std::string dir, LogFn log,
                             std::uint64_t first_sequence)
    : seg_(&seg),
      writer_(std::move(writer)),
      reader_(seg, 100'000'000, AuditRingReader::Release::kExplicit),
      encoder_(seg),
      dir_(std::move(dir)),
      log_(std::move(log)),
      sequence_(first_sequence) {}

AuditPipeline::~AuditPipeline() { (void)stop(); }

void AuditPipeline::start() {
  if (thread_.joinable() || stopped_) return;
  thread_ = std::thread([this] { run(); });
}

void AuditPipeline::run() {
  std::uint64_t idle = 0;
  while (!stopping_.load(std::memory_order_acquire)) {
    if (pump(monotonic_ns()) != 0) {
      idle = 0;
      continue;
    }
    // Idle: look again soon, less often the longer nothing comes.
    idle = std::min<std::uint64_t>(idle + 1, 20);
    std::this_thread::sleep_for(std::chrono::microseconds(250 * idle));
  }
}

void AuditPipeline::post(std::vector<AuditRecord> records) {
  if (records.empty()) return;
  std::lock_guard<std::mutex> lock(posted_mu_);
  posted_.insert(posted_.end(), records.begin(), records.end());
}

bool AuditPipeline::append(const AuditRecordView& view) {
  const std::span<const std::uint8_t> payload = encoder_.encode(view, sequence_);
  const Status s = writer_.append(payload);
  if (!s.ok()) {
    // Not taken: the record is lost, and so is its sequence number (a gap).
    if (!failing_) log_("audit records are being lost: " + s.message());
    failing_ = true;
  } else {
    failing_ = false;
    ++appended_;
  }
  ++sequence_;
  if (observer_) observe(payload);
  return s.ok();
}

void AuditPipeline::release_written() {
  const std::uint64_t through = writer_.written_through();
  const AuditRingControl& ring = seg_->audit_control();
  Word up_to = load_relaxed(ring.head);
  while (!unwritten_.empty() && unwritten_.front().frames <= through) {
    up_to = unwritten_.front().ring_end;
    unwritten_.pop_front();
  }
  // With none left unwritten, everything read is on disk or was never to be
  // (padding, skipped and unreadable spans).
  if (unwritten_.empty()) up_to = reader_.read_position();
  if (up_to != load_relaxed(ring.head)) reader_.release(up_to);
}

void AuditPipeline::observe(std::span<const std::uint8_t> payload) {
  const audit::fb::Record& r = *audit::fb::GetRecord(payload.data());
  auto text = [](const flatbuffers::String* s) {
    return s != nullptr ? std::string_view(s->data(), s->size()) : std::string_view();
  };
  std::array<AuditAttributeView, std::tuple_size_v<decltype(AuditRecordView::attributes)>> attrs;
  std::size_t count = 0;
  const auto* names = r.attribute_names();
  const auto* values = r.attribute_values();
  if (names != nullptr && values != nullptr) {
    count = std::min<std::size_t>({names->size(), values->size(), attrs.size()});
    for (std::size_t i = 0; i < count; ++i) {
      attrs[i] = {text(names->Get(static_cast<flatbuffers::uoffset_t>(i))),
                  text(values->Get(static_cast<flatbuffers::uoffset_t>(i)))};
    }
  }
  DecodedRecord d;
  d.event = r.event();
  d.decision = r.decision();
  d.reason = text(r.reason());
  d.limit = text(r.limit());
  d.attributes = std::span<const AuditAttributeView>(attrs.data(), count);
  d.est_input_tokens = r.est_input_tokens();
  d.est_output_tokens = r.est_output_tokens();
  d.actual_input_tokens = r.actual_input_tokens();
  d.actual_output_tokens = r.actual_output_tokens();
  d.cost_nusd = r.cost_nusd();
  d.outcome = text(r.outcome());
  d.http_status = r.http_status();
  d.latency_ns = r.latency_ns();
  d.ttft_ns = r.ttft_ns();
  d.model_version = text(r.model_version());
  observer_(d);
}

std::size_t AuditPipeline::pump(std::uint64_t now_ns, std::size_t max_records) {
  std::size_t handled = reader_.poll(now_ns, max_records, [this](std::span<const Word> words) {
    AuditRecordView view;
    if (!decode_audit_record(words, &view)) {
      ++unreadable_;
      return;
    }
    view.ring_end = reader_.read_position();
    if (append(view)) unwritten_.push_back({appended_, view.ring_end});
  });
  {
    std::lock_guard<std::mutex> lock(posted_mu_);
    taking_.swap(posted_);
  }
  for (const AuditRecord& r : taking_) {
    AuditRecordView view;
    view.fixed = r;
    append(view);
  }
  handled += taking_.size();
  taking_.clear();
  // Records leave the ring only once written: when a quarter of it waits,
  // submit what is batched now rather than at the next sync.
  const AuditRingControl& ring = seg_->audit_control();
  if (4 * (load_relaxed(ring.tail) - load_relaxed(ring.head)) > seg_->audit_capacity()) {
    if (Status s = writer_.submit(); !s.ok()) log_("audit writer: " + s.message());
  }
  if (Status s = writer_.poll(); !s.ok()) log_("audit writer: " + s.message());
  release_written();
  publish_stats();
  return handled;
}

Status AuditPipeline::flush(bool sync) {
  Status s = writer_.flush(sync);
  publish_stats();
  return s;
}

void AuditPipeline::publish_stats() {
  AuditRingControl& c = seg_->audit_control();
  const AuditRingStats& r = reader_.stats();
  const AuditWriterStats w = writer_.stats();
  store_relaxed(c.drained, r.drained);
  store_relaxed(c.written, w.frames_written);
  store_relaxed(c.skipped, r.skipped);
  store_relaxed(c.corrupt, r.corrupt + unreadable_);
  store_relaxed(c.high_water, std::max(load_relaxed(c.high_water), r.high_water));
  store_relaxed(c.bytes_on_disk, w.bytes_on_disk);
  store_relaxed(c.last_fsync_unix_ns, w.last_sync_realtime_ns);
  store_release(c.writer_kind, w.io_uring ? 1 : 2);
}

Status AuditPipeline::stop() {
  if (stopped_) return Status::Ok();
  stopped_ = true;
  stopping_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
  // What producers published; one still writing gets a moment (a dead one
  // is skipped once the reader's timeout passes).
  const std::uint64_t give_up = monotonic_ns() + 500'000'000;
  for (;;) {
    const std::size_t n = pump(monotonic_ns());
    const AuditRingControl& c = seg_->audit_control();
    const bool empty = reader_.read_position() == load_acquire(c.tail);
    if (n == 0 && (empty || monotonic_ns() > give_up)) break;
    if (n == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  Status closed = writer_.close();
  if (closed.ok()) reader_.release(reader_.read_position());
  publish_stats();
  return closed;
}

}  // namespace sluice
