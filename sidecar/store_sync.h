// The sidecar's sync loop with the central store. Every interval it scans
// the key table and pushes, in one batch:
//   - every budget cell's usage since its last push (local and global),
//   - every global budget cell of a current window: what the host wants
//     exposed and held (lease_sizing.h), which also renews its lease,
//   - every global rate cell: this host's demand.
// Then it writes what the store granted into the key table (budget
// ceilings, rate shares) and moves the header's store_up_until_ns on, so
// global limits see the store as up. A push that fails is kept and retried
// as it is (same session and sequence number) before anything new is sent,
// so usage is never lost and never counted twice; usage that accrues
// meanwhile goes into the next push. Admission never waits on any of it.
//
//   auto sync = StoreSync::open(seg, policy.store, std::move(store), log, /*fresh=*/true);
//   (*sync)->start();   // a thread syncs every store.sync_interval_ms
//   (*sync)->stop();    // a last push that gives unexposed allotment back
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "segment.h"
#include "segment_layout.h"
#include "sluice/policy.h"
#include "sluice/status.h"
#include "store.h"

namespace sluice {

class StoreSync {
 public:
  using LogFn = std::function<void(const std::string&)>;

  // `fresh`: the segment was just created, so the store's record of this
  // host's current windows is written into it (restore). Otherwise the
  // segment's own counts stand and the store's record only says what has
  // been pushed already. Restoring happens here if the store answers, else
  // at the first sync that reaches it.
  static Result<std::unique_ptr<StoreSync>> open(const SegmentMap& seg, const StoreSpec& spec,
                                                 std::unique_ptr<Store> store, LogFn log,
                                                 bool fresh);
  ~StoreSync();
  StoreSync(const StoreSync&) = delete;
  StoreSync& operator=(const StoreSync&) = delete;

  void start();
  // Stops the thread, then one last sync that gives back what this host
  // holds beyond its exposure. Idempotent.
  void stop();

  // One sync on the caller's thread (tests, and the thread's body).
  Status sync_once();

  std::uint64_t syncs() const { return syncs_; }

 private:
  StoreSync(const SegmentMap& seg, const StoreSpec& spec, std::unique_ptr<Store> store, LogFn log);

  struct Tracked;
  // Where each update of a push came from, to write its answer back.
  struct SlotRef {
    std::uint64_t index = 0;  // key slot
    std::uint64_t hash = 0;   // the key it held when the push was built
    std::uint64_t limit = 0;  // in the policy of `generation`
    std::uint64_t period_ns = 0;
    std::uint64_t burst = 0;
  };
  struct Outgoing {
    Push push;
    std::vector<SlotRef> slots;
    std::uint64_t generation = 0;
  };

  Status restore(bool fresh);
  Outgoing build_push(bool releasing);
  Status send();  // pending_ to the store; on success its answers are applied
  void apply(const Outgoing& out, const std::vector<CellState>& states);
  void publish_limits(std::uint64_t generation);
  void publish_status(const Status& result, std::uint64_t cpu_ns);
  Status sync(bool releasing);

  const SegmentMap& seg_;
  StoreSpec spec_;
  std::unique_ptr<Store> store_;
  LogFn log_;
  std::uint64_t session_ = 0;
  std::uint64_t next_seq_ = 1;
  bool restored_ = false;
  bool fresh_ = false;
  std::optional<Outgoing> pending_;  // sent and failed: retried as it is
  std::unique_ptr<shm::CompiledPolicy> policy_;
  std::unordered_map<std::uint64_t, Tracked> cells_;               // by key slot index
  std::unordered_map<std::uint64_t, std::int64_t> pushed_before_;  // hash -> used the store has
  std::uint64_t syncs_ = 0;
  bool was_up_ = true;

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace sluice
