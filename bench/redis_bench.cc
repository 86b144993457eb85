// The peer comparison: the decision a Sluice rate cell makes (GCRA on one
// theoretical arrival time), as a Lua script on a real redis-server on
// loopback, one EVALSHA round trip per decision, timed like the Sluice
// decisions (latency.h). Redis decides one cell per round trip; Sluice's
// reserve + commit decides and settles three, so the ratio understates the
// difference.
#include <benchmark/benchmark.h>
#include <hiredis/hiredis.h>

#include <string>

#include "latency.h"
#include "redis_server.h"

namespace sluice::bench {
namespace {

// KEYS[1]: the cell. ARGV: emission interval (us per unit), capacity (us),
// units. Returns {1, 0} when admitted, {0, retry_after_us} when not.
constexpr const char* kGcraScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local emission, capacity, units = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local next_tat = tat + emission * units
if next_tat - now > capacity then
  return {0, next_tat - now - capacity}
end
redis.call('SET', KEYS[1], string.format('%.0f', next_tat))
return {1, 0}
)lua";

constexpr int kWarmup = 2'000;

void redis_lua_token_bucket(benchmark::State& state) {
  std::string error;
  std::unique_ptr<testing::RedisServer> server =
      testing::RedisServer::start(&error, testing::RedisServer::Persistence::kNone);
  if (!server) {
    state.SkipWithError(error.c_str());
    return;
  }
  redisContext* c = server->connect(&error);
  if (c == nullptr) {
    state.SkipWithError(error.c_str());
    return;
  }
  auto* loaded = static_cast<redisReply*>(redisCommand(c, "SCRIPT LOAD %s", kGcraScript));
  if (loaded == nullptr || loaded->type != REDIS_REPLY_STRING) {
    state.SkipWithError("SCRIPT LOAD failed");
    if (loaded != nullptr) freeReplyObject(loaded);
    redisFree(c);
    return;
  }
  const std::string sha(loaded->str, loaded->len);
  freeReplyObject(loaded);

  // Never rejects: 1 us per request, 10^12 us of burst.
  auto decide = [&]() {
    auto* r =
        static_cast<redisReply*>(redisCommand(c, "EVALSHA %s 1 %s %s %s %s", sha.c_str(),
                                              "{sluice}:cell:alpha", "1", "1000000000000", "1"));
    const bool admitted = r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                          r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 1;
    if (r != nullptr) freeReplyObject(r);
    return admitted;
  };
  bool ok = true;
  for (int i = 0; i < kWarmup; ++i) ok &= decide();
  const TscTimer& timer = TscTimer::get();
  LatencySamples samples(state.max_iterations);
  for (auto _ : state) {
    const std::uint64_t t0 = TscTimer::now();
    const bool admitted = decide();
    const std::uint64_t t1 = TscTimer::now();
    samples.add(t1 - t0);
    ok &= admitted;
  }
  redisFree(c);
  if (!ok) state.SkipWithError("the Lua GCRA script did not admit (or redis failed)");
  samples.report(state, timer);
}
BENCHMARK(redis_lua_token_bucket)->Iterations(50'000)->UseRealTime();

}  // namespace
}  // namespace sluice::bench
