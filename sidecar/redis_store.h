// RedisStore: the Store (store.h) on a redis-server that many hosts share.
//
//   StoreSpec spec{.kind = "redis", .url = "redis://10.0.0.5:6379/0", .host_id = "web-3"};
//   Result<std::unique_ptr<Store>> store = open_redis_store(spec);
//   if (!store.ok()) return store.status();  // only a bad url, host_id or timeout_ms
//   Result<std::vector<CellState>> states = (*store)->push(push);  // one round trip
//
// Opening never connects: the first call does, and a lost connection is
// reopened by the next call, at most once per backoff (50 ms doubling to
// 2 s, reset by a success); inside the backoff a call fails at once. No
// connect or command waits longer than spec.timeout_ms. Use from one thread.
//
// Layout (keys hash-tagged per cell, so a Redis Cluster may spread them):
//   sluice:{<16 hex digits of cell.hash>}  hash, the cell:
//     kind, lid (limit identity), limit, label, ws, we (window, unix s),
//     used, allotted, budget, rate; per host h: u:h used, a:h allotted,
//     x:h exposed, l:h lease end (ms), s:h "session:seq" last applied,
//     d:h demand. Budget cells expire 7 days after their window ends;
//     rate cells a minute after the last lease pushed to them runs out.
//   sluice:host:<h>  sorted set: the budget cells h pushed, scored by window end.
//   sluice:seed      the shared key-hash seed.
// One Lua script per cell update (EVALSHA) does the whole read-modify-write
// at the server's clock. Budget counts are Lua numbers (doubles), exact up
// to 2^53 - 1 nano-units, about 9 million USD per cell: pushes beyond that
// are refused.
#pragma once

#include <memory>

#include "sluice/policy.h"
#include "sluice/status.h"
#include "store.h"

namespace sluice {

// Fails (one line) only on a bad spec.url, an empty spec.host_id or a zero
// spec.timeout_ms; an unreachable server is not an error until it is used.
Result<std::unique_ptr<Store>> open_redis_store(const StoreSpec& spec);

}  // namespace sluice
