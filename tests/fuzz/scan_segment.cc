#include "scan_segment.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>

#include "clock.h"
#include "echo_store.h"
#include "policy_publisher.h"
#include "sluice/quota.h"
#include "store_sync.h"

namespace sluice::fuzz {
namespace {

constexpr const char* kPolicy = R"(
models:
  gpt-4o:      { input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00 }
  gpt-4o-mini: { input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60 }
limits:
  - name: team-tokens
    match: { team: "*" }
    tokens_per_minute: 200000
  - name: team-requests
    match: { team: "*" }
    requests_per_second: 50
  - name: pricing-daily-usd
    match: { team: pricing, feature: quote-agent }
    usd_per_day: 25.00
    timezone: America/New_York
  - name: support-models
    match: { team: support }
    models: [gpt-4o-mini]
  - name: user-requests
    match: { team: "*", user: "*" }
    requests_per_minute: 60
    shadow: true
  - name: pricing-usd-all-hosts
    match: { team: pricing }
    usd_per_day: 500.00
    scope: global
    on_store_down: local_share
  - name: team-rps-all-hosts
    match: { team: "*" }
    requests_per_second: 200
    scope: global
)";

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_segment_scan: building the base segment: %s\n", what.c_str());
  std::abort();
}

void publish(const ScanSegment& s) {
  Result<std::uint64_t> g = publish_policy(s.map, s.policy, ::time(nullptr));
  if (!g.ok()) fail(g.status().message());
}

// What a few clients leave behind. `live` stays attached (this process is
// alive), the other detaches, so the reclaimer has work of both kinds. A sync
// with the store grants the global limits first, so calls are admitted.
void run_clients(const ScanSegment& s, Client& live) {
  Result<Client> gone = Client::attach(s.name);
  if (!gone.ok()) fail(gone.status().message());
  Result<std::unique_ptr<StoreSync>> sync = StoreSync::open(
      s.map, s.policy.store, std::make_unique<EchoStore>(std::vector<RestoredCell>{}),
      [](const std::string&) {}, /*fresh=*/true);
  if (!sync.ok()) fail(sync.status().message());
  const Attribute pricing[] = {
      {"team", "pricing"}, {"feature", "quote-agent"}, {"user", "ann"}, {"model", "gpt-4o"}};
  const Attribute support[] = {{"team", "support"}, {"user", "bob"}, {"model", "gpt-4o"}};
  const Attribute mini[] = {{"team", "support"}, {"model", "gpt-4o-mini"}};
  (void)(*sync)->sync_once();
  (void)gone->reserve_raw({pricing, 1, 1});  // the keys exist: the next sync grants them
  (void)(*sync)->sync_once();
  Decision d = gone->reserve_raw({pricing, 1200, 800});
  (void)gone->commit(d.reservation_id, 1100, 400);
  (void)gone->reserve_raw({pricing, 300, 200});  // left active: abandoned once it departs
  d = gone->reserve_raw({mini, 50, 50});
  (void)gone->extend(d.reservation_id, 100);   // extended, left active
  (void)gone->reserve_raw({support, 10, 10});  // rejected: model not allowed
  d = live.reserve_raw({mini, 20, 20});
  (void)live.cancel(d.reservation_id);
  (void)live.reserve_raw({pricing, 500, 500});               // active, owner alive
  (void)live.reserve_raw({pricing, 40, 40, 1'000'000'000});  // held for 1 s, detached
  (void)(*sync)->sync_once();
}

ScanSegment* build() {
  auto* s = new ScanSegment;
  s->name = "sluice-fuzz-scan-" + std::to_string(::getpid());
  (void)SegmentMap::remove(s->name);
  Result<Policy> p = parse_policy(kPolicy, "scan_segment.cc");
  if (!p.ok()) fail(p.status().message());
  s->policy = std::move(p.value());
  Result<SegmentMap> m = SegmentMap::create(s->name, {40, 16, 4096}, "", 0x5ca11ab1e5eedULL);
  if (!m.ok()) fail(m.status().message());
  s->map = std::move(m.value());
  std::atexit([] { (void)SegmentMap::remove(scan_segment().name); });
  publish(*s);
  publish(*s);
  static Result<Client> live = Client::attach(s->name);  // never detaches
  if (!live.ok()) fail(live.status().message());
  run_clients(*s, live.value());
  for (std::uint64_t i = 0; i < s->map.client_count(); ++i) {
    if (shm::load_relaxed(s->map.clients()[i].pid) != 0) s->clients_used = i + 1;
  }
  const auto* base = reinterpret_cast<const std::uint8_t*>(&s->map.header());
  s->image.assign(base, base + s->map.size());
  s->now_ns = monotonic_ns() + 10'000'000;
  return s;
}

}  // namespace

const ScanSegment& scan_segment() {
  static const ScanSegment* s = build();
  return *s;
}

}  // namespace sluice::fuzz
