// The sidecar's audit drain: records out of the ring (AuditRingReader),
// encoded as FlatBuffers (AuditEncoder), appended to the audit files
// (AuditWriter), with the counts `sluice status` shows published in the
// ring's control block. Records the reclaimer settled join the same stream.
//
// A record leaves the ring (its span given back to producers) only once its
// write has completed, so a sidecar killed at any moment loses none: the
// next one reads the ring again from after the last record its files hold.
//
//   auto p = AuditPipeline::open(seg, policy.audit, policy.segment.group, log);
//   (*p)->start();           // a thread drains from now on
//   (*p)->post(abandoned);   // from any thread
//   (*p)->stop();            // drains what is left, everything on disk
//
// Without start(), pump() does one pass on the caller's thread (tests).
// set_observer() shows every record, decoded, to whoever counts them
// (sluiced's metrics).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "audit_encoder.h"
#include "audit_generated.h"
#include "audit_record.h"
#include "audit_ring_reader.h"
#include "audit_writer.h"
#include "segment.h"
#include "sluice/policy.h"
#include "sluice/status.h"

namespace sluice {

// One record as the drain encoded it: reason and limit named, and the
// attributes of a reservation's reserve carried to its later records. The
// views live for the observer's call only.
struct DecodedRecord {
  audit::fb::Event event = audit::fb::Event::Reserve;
  audit::fb::Decision decision = audit::fb::Decision::Admitted;
  std::string_view reason;  // "" when none; abandonments: what the sidecar did
  std::string_view limit;   // the limit that rejected; "" when none
  std::span<const AuditAttributeView> attributes;
  std::uint64_t est_input_tokens = 0;
  std::uint64_t est_output_tokens = 0;
  std::uint64_t actual_input_tokens = 0;
  std::uint64_t actual_output_tokens = 0;
  std::uint64_t cost_nusd = 0;  // reserve / extend: estimated; commit: actual; abandon: charged
  // commits: what the caller reported ("" / 0 when not reported)
  std::string_view outcome;
  std::uint16_t http_status = 0;
  std::uint64_t latency_ns = 0;
  std::uint64_t ttft_ns = 0;
  std::string_view model_version;
};

class AuditPipeline {
 public:
  using LogFn = std::function<void(const std::string&)>;
  using Observer = std::function<void(const DecodedRecord&)>;

  // Opens (and recovers) the audit directory `spec.dir`, made absolute, and
  // publishes it in the segment header for tools. What it creates is given
  // to `group` (the policy's segment.group) when that is not empty.
  static Result<std::unique_ptr<AuditPipeline>> open(const SegmentMap& seg, const AuditSpec& spec,
                                                     const std::string& group, LogFn log);
  ~AuditPipeline();

  // Called on the draining thread with every record, once it is appended
  // (or refused by the writer). Set it before start().
  void set_observer(Observer observer) { observer_ = std::move(observer); }

  void start();
  // Stops the thread, drains what producers have published (waiting a
  // little for any still writing), and closes the files. Idempotent.
  Status stop();

  // Records settled by the sidecar itself; written with the next pass.
  void post(std::vector<shm::AuditRecord> records);

  // One pass: up to `max_records` from the ring plus everything posted, then
  // the writer's housekeeping. Returns how many records it handled.
  std::size_t pump(std::uint64_t now_ns, std::size_t max_records = 4096);

  // Everything appended so far submitted; with `sync`, on disk. The ring
  // space of what was written is given back by the next pump() or stop().
  Status flush(bool sync);
  // Records on disk and the bytes their files hold.
  AuditWriterStats writer_stats() const { return writer_.stats(); }

  const std::string& dir() const { return dir_; }
  std::uint64_t next_sequence() const { return sequence_; }

 private:
  AuditPipeline(const SegmentMap& seg, AuditWriter writer, std::string dir, LogFn log,
                std::uint64_t first_sequence);
  void run();
  // False if the writer did not take it (the record is lost).
  bool append(const AuditRecordView& view);
  // Gives the ring back up to the last record whose write has completed.
  void release_written();
  void observe(std::span<const std::uint8_t> payload);
  void publish_stats();

  const SegmentMap* seg_;
  AuditWriter writer_;
  AuditRingReader reader_;
  AuditEncoder encoder_;
  std::string dir_;
  LogFn log_;
  Observer observer_;
  std::uint64_t sequence_;
  std::uint64_t unreadable_ = 0;  // records copied out that did not decode
  std::uint64_t appended_ = 0;    // frames the writer took since open
  // Ring records read but not yet written: the frames appended up to and
  // including each, and the ring position just past it, oldest first.
  struct Unwritten {
    std::uint64_t frames;
    std::uint64_t ring_end;
  };
  std::deque<Unwritten> unwritten_;
  bool failing_ = false;  // the writer refused; logged once until it recovers

  std::mutex posted_mu_;
  std::vector<shm::AuditRecord> posted_;
  std::vector<shm::AuditRecord> taking_;

  std::atomic<bool> stopping_{false};
  std::thread thread_;
  bool stopped_ = false;
};

// The sequence number the record after the last one in `dir` gets (0 for an
// empty directory): read from the newest file that holds a record.
std::uint64_t next_audit_sequence(const std::string& dir);

}  // namespace sluice
