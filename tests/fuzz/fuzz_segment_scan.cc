// libFuzzer target: everything the sidecar does with a segment its clients
// may have corrupted. A real segment (scan_segment.h) is put back to the
// state its clients left, the input's patches overwrite words of any region
// (header and region table included), a client makes a few calls on it, then
// the sidecar's work runs on it: reclaim, the audit ring's drain (decode, encode, verify, count),
// the budget window check and a policy publish, two store syncs (a scan of the key table,
// echo_store.h) and a metrics scrape (sluice/inspect.h). None of it may crash, read outside the
// mapping or loop for long (run with -timeout).
//
// Input: patches, each [u8 region][u16 word offset, LE][u8 word count][words],
// region (mod 8): header, policy slot 0, policy slot 1, key slots,
// reservation slots, client slots, audit ring control, audit ring bytes. The
// offset wraps at the region's end; a count past it is cut there.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "audit_encoder.h"
#include "audit_generated.h"
#include "audit_record.h"
#include "audit_ring_reader.h"
#include "echo_store.h"
#include "metrics.h"
#include "policy_compiler.h"
#include "policy_publisher.h"
#include "reclaim.h"
#include "scan_segment.h"
#include "sluice/quota.h"
#include "store_sync.h"

namespace {

using namespace sluice;  // NOLINT(google-build-using-namespace)
using shm::Word;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_segment_scan: %s\n", what.c_str());
  std::abort();
}

struct Region {
  std::uint8_t* at;
  std::size_t bytes;
};

// Where region `which` is, as the segment was created (not as a patched
// header says: the patches may move the region table).
Region region(const fuzz::ScanSegment& s, int which) {
  const SegmentMap& m = s.map;
  auto* base = reinterpret_cast<std::uint8_t*>(&m.header());
  switch (which) {
    case 0:
      return {base, shm::kHeaderBytes};
    case 1:
    case 2: {
      const auto* h = reinterpret_cast<const shm::SegmentHeader*>(s.image.data());
      return {base + h->policy[which - 1].offset, sizeof(shm::CompiledPolicy)};
    }
    case 3:
      return {reinterpret_cast<std::uint8_t*>(m.keys()), m.key_capacity() * sizeof(shm::KeySlot)};
    case 4:
      return {reinterpret_cast<std::uint8_t*>(m.reservations()),
              m.reservation_count() * sizeof(shm::ReservationSlot)};
    case 5:
      return {reinterpret_cast<std::uint8_t*>(m.clients()),
              m.client_count() * sizeof(shm::ClientSlot)};
    case 6:
      return {reinterpret_cast<std::uint8_t*>(&m.audit_control()), sizeof(shm::AuditRingControl)};
    default:
      return {reinterpret_cast<std::uint8_t*>(m.audit_ring()), m.audit_capacity()};
  }
}

// Puts the segment back as the clients left it. Client slots past the ones
// the clients used are restored only as far as the last input patched them.
void restore(const fuzz::ScanSegment& s, std::size_t client_bytes) {
  const SegmentMap& m = s.map;
  auto* base = reinterpret_cast<std::uint8_t*>(&m.header());
  const std::size_t clients_at = reinterpret_cast<std::uint8_t*>(m.clients()) - base;
  const std::size_t clients_end = clients_at + m.client_count() * sizeof(shm::ClientSlot);
  std::memcpy(base, s.image.data(), clients_at + client_bytes);
  std::memcpy(base + clients_end, s.image.data() + clients_end, s.image.size() - clients_end);
}

// Applies the input's patches; returns how many bytes of client slots they reach.
std::size_t apply_patches(const fuzz::ScanSegment& s, const std::uint8_t* data, std::size_t size) {
  std::size_t client_bytes = 0;
  std::size_t at = 0;
  while (size - at >= 4) {
    const Region r = region(s, data[at] % 8);
    const std::size_t words = r.bytes / sizeof(Word);
    const std::size_t offset = (data[at + 1] | data[at + 2] << 8) % words;
    const std::size_t count = std::min<std::size_t>(data[at + 3], words - offset);
    at += 4;
    const std::size_t bytes = std::min(count * sizeof(Word), size - at);
    std::memcpy(r.at + offset * sizeof(Word), data + at, bytes);
    at += bytes;
    if (r.at == reinterpret_cast<std::uint8_t*>(s.map.clients())) {
      client_bytes = std::max(client_bytes, offset * sizeof(Word) + bytes);
    }
  }
  return client_bytes;
}

// A client attached to the corrupted segment decides as usual: a new one
// each time, so that what it does depends on the input only. Returns how many
// bytes of client slots it may have written (up to its registration's end).
std::size_t client_calls(const fuzz::ScanSegment& s) {
  Result<Client> c = Client::attach(s.name);
  if (!c.ok()) return 0;
  const Attribute pricing[] = {
      {"team", "pricing"}, {"feature", "quote-agent"}, {"user", "ann"}, {"model", "gpt-4o"}};
  const Attribute support[] = {{"team", "support"}, {"model", "gpt-4o-mini"}};
  Decision d = c->reserve_raw({pricing, 100, 50});
  if (d.admitted) {
    (void)c->extend(d.reservation_id, 10);
    (void)c->commit(d.reservation_id, 90, 70);
  }
  d = c->reserve_raw({support, 1, 1});
  if (d.admitted) (void)c->cancel(d.reservation_id);
  (void)c->reserve_raw({pricing, 5, 5});  // left open: the reclaimer settles it
  std::size_t mine = 0;
  for (std::size_t i = 0; i < s.map.client_count(); ++i) {
    if (shm::load_relaxed(s.map.clients()[i].pid) == static_cast<Word>(::getpid())) mine = i + 1;
  }
  return mine * sizeof(shm::ClientSlot);
}

// The drain's view of one encoded record, as AuditPipeline shows it to the
// metrics' AuditTally.
void observe(const audit::fb::Record& r, AuditTally& tally) {
  auto text = [](const flatbuffers::String* s) {
    return s != nullptr ? std::string_view(s->data(), s->size()) : std::string_view();
  };
  AuditAttributeView attrs[16];
  std::size_t count = 0;
  if (r.attribute_names() != nullptr && r.attribute_values() != nullptr) {
    count = std::min<std::size_t>({r.attribute_names()->size(), r.attribute_values()->size(), 16});
    for (flatbuffers::uoffset_t i = 0; i < count; ++i) {
      attrs[i] = {text(r.attribute_names()->Get(i)), text(r.attribute_values()->Get(i))};
    }
  }
  DecodedRecord d;
  d.event = r.event();
  d.decision = r.decision();
  d.reason = text(r.reason());
  d.limit = text(r.limit());
  d.attributes = std::span<const AuditAttributeView>(attrs, count);
  d.est_input_tokens = r.est_input_tokens();
  d.est_output_tokens = r.est_output_tokens();
  d.actual_input_tokens = r.actual_input_tokens();
  d.actual_output_tokens = r.actual_output_tokens();
  d.cost_nusd = r.cost_nusd();
  tally.observe(d);
}

// The sidecar's encoding of every record must verify, whatever the ring held.
void encode(AuditEncoder& encoder, const AuditRecordView& view, std::uint64_t sequence,
            AuditTally& tally) {
  const std::span<const std::uint8_t> payload = encoder.encode(view, sequence);
  flatbuffers::Verifier v(payload.data(), payload.size());
  if (!audit::fb::VerifyRecordBuffer(v)) fail("the encoder wrote a Record that does not verify");
  observe(*audit::fb::GetRecord(payload.data()), tally);
}

// As AuditPipeline drains: head moves only when records are on disk
// (release), and a sidecar that restarts reads on from where its audit files
// end. That position is taken from an unused word of the ring's control block
// (reserved_head[0]; 0: no files), so that inputs choose it.
void drain(const SegmentMap& m, std::uint64_t now_ns, const std::vector<shm::AuditRecord>& settled,
           AuditTally& tally) {
  AuditRingReader reader(m, 100'000'000, AuditRingReader::Release::kExplicit);
  AuditEncoder encoder(m);
  std::uint64_t sequence = 0;
  auto on_record = [&](std::span<const Word> words) {
    AuditRecordView view;
    if (decode_audit_record(words, &view)) encode(encoder, view, sequence++, tally);
  };
  const Word files_end = shm::load_relaxed(m.audit_control().reserved_head[0]);
  if (files_end != 0) (void)reader.resume_at(files_end);
  // Once now, once after the reader's patience with an unpublished record ran out.
  (void)reader.poll(now_ns, 4096, on_record);
  reader.release(reader.read_position());
  (void)reader.poll(now_ns + 1'000'000'000, 4096, on_record);
  reader.release(reader.read_position());
  for (const shm::AuditRecord& r : settled) {
    AuditRecordView view;
    view.fixed = r;
    encode(encoder, view, sequence++, tally);
  }
}

// As Sidecar::tick: republish when the live policy's window tables no longer
// hold now (here always, so that publishing runs on the corrupted segment).
void refresh_windows(const fuzz::ScanSegment& s) {
  const Word gen = shm::load_acquire(s.map.header().policy_generation);
  const auto now = static_cast<std::int64_t>(::time(nullptr));
  if (gen != 0) (void)window_tables_hold(s.map.policy_slot(static_cast<int>(gen & 1)), now);
  (void)publish_policy(s.map, s.policy, now);
}

void sync_with_store(const fuzz::ScanSegment& s) {
  RestoredCell cell;
  cell.cell.hash = 0x1234567890abcdefULL;
  cell.cell.limit_identity = s.policy.limits.empty() ? 1 : limit_identity(s.policy.limits[0]);
  cell.cell.label = "pricing";
  cell.host_used = 7;
  Result<std::unique_ptr<StoreSync>> sync = StoreSync::open(
      s.map, s.policy.store, std::make_unique<fuzz::EchoStore>(std::vector{cell}),
      [](const std::string&) {}, /*fresh=*/true);
  if (!sync.ok()) fail(sync.status().message());
  (void)(*sync)->sync_once();
}  // the last sync, releasing, runs here

void scrape(const std::string& name, const AuditTally& tally) {
  Exposition exposition(50);
  (void)exposition.render(read_segment(name), &tally);
  (void)list_keys(name, /*all_windows=*/true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const fuzz::ScanSegment& s = fuzz::scan_segment();
  static std::size_t client_bytes = 0;  // how far the last input wrote client slots
  restore(s, std::max(client_bytes, s.clients_used * sizeof(shm::ClientSlot)));
  client_bytes = apply_patches(s, data, size);
  client_bytes = std::max(client_bytes, client_calls(s));

  std::vector<shm::AuditRecord> settled;
  (void)reclaim(s.map, s.now_ns, &settled, 1'767'225'600'000'000'000ull);
  AuditTally tally(50);
  drain(s.map, s.now_ns, settled, tally);
  refresh_windows(s);
  sync_with_store(s);
  scrape(s.name, tally);
  return 0;
}
