// The Redis store: store.h's arithmetic as two Lua scripts, one call per cell
// update, pipelined so a push is one round trip. Budget counts live in the
// scripts as Lua numbers (doubles), exact below 2^53; push() refuses inputs
// beyond that and the budget script refuses sums beyond it (a true sum
// of 2^53 or more never rounds below 2^53, so the check holds). Rate shares are
// computed here, in 128-bit integers, from the demands the rate script
// returns: pool * demand does not fit a double exactly.
#include "redis_store.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::uint64_t kMaxExact = (std::uint64_t{1} << 53) - 1;  // doubles count exactly to here
constexpr std::uint64_t kMaxLeaseMs = std::uint64_t{1} << 40;      // 35 years
constexpr milliseconds kFirstBackoff{50};
constexpr milliseconds kMaxBackoff{2000};
constexpr std::string_view kUrlExample = "redis://host:6379/0";

// KEYS[1]: the cell. ARGV: host, session, seq, lease_ms, kind (1 local, 2
// global), used_delta, budget, want_allotted, want_exposed, limit identity,
// window start, window end, limit name, label. Returns {duplicate,
// host_used, host_allotted, host_exposed, global_used, global_allotted}.
// Steps as numbered in store.h.
constexpr const char* kBudgetScript = R"lua(
local key = KEYS[1]
local host, session, seq = ARGV[1], ARGV[2], ARGV[3]
local lease_ms, kind, delta = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local budget, want_allotted, want_exposed = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local exact = 9007199254740991  -- 2^53 - 1: a sum beyond it reads as more
local function int(x) return string.format('%d', x) end

local f = {}
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do f[all[i]] = all[i + 1] end
local function num(field) return tonumber(f[field] or '0') end

local hu, ha, hx = num('u:' .. host), num('a:' .. host), num('x:' .. host)
local used, allotted = num('used'), num('allotted')
local function state(duplicate) return {duplicate, hu, ha, hx, used, allotted} end

-- 1. session and seq are decimal strings: seq compares by length, then digits.
local last = f['s:' .. host]
if last then
  local s, q = string.match(last, '^(%d+):(%d+)$')
  if s == session and (#q > #seq or (#q == #seq and q >= seq)) then return state(1) end
end
-- 2.
hu, used = hu + delta, used + delta
if math.abs(hu) > exact or math.abs(used) > exact then
  return redis.error_reply('cell ' .. key .. ' would count above 2^53 - 1 units, the most the redis store counts exactly; lower the limit or use store kind sqlite')
end
local put = {'s:' .. host, session .. ':' .. seq, 'u:' .. host, int(hu), 'used', int(used),
             'kind', ARGV[5], 'lid', ARGV[10], 'ws', ARGV[11], 'we', ARGV[12],
             'limit', ARGV[13], 'label', ARGV[14]}
if kind == 2 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  -- 3.
  table.insert(put, 'budget'); table.insert(put, ARGV[7])
  -- 4.
  for field, value in pairs(f) do
    local k = string.match(field, '^l:(.*)$')
    if k and k ~= host and tonumber(value) < now then
      local ak, xk = num('a:' .. k), num('x:' .. k)
      if ak > xk then
        allotted = allotted - (ak - xk)
        table.insert(put, 'a:' .. k); table.insert(put, int(xk))
      end
    end
  end
  -- 5.
  if want_allotted > ha then
    local grant = math.min(want_allotted - ha, budget - allotted)
    if grant > 0 then ha, allotted = ha + grant, allotted + grant end
  elseif want_allotted < ha then
    local keep = math.max(want_allotted, hx)
    ha, allotted = keep, allotted - (ha - keep)
  end
  -- 6.
  hx = math.max(hx, math.min(want_exposed, ha))
  -- 7.
  for _, v in ipairs({'a:' .. host, int(ha), 'x:' .. host, int(hx), 'allotted', int(allotted),
                      'l:' .. host, int(now + lease_ms)}) do
    table.insert(put, v)
  end
end
redis.call('HSET', key, unpack(put))
local window_end = tonumber(ARGV[12])
if window_end > 0 then redis.call('EXPIREAT', key, window_end + 7 * 86400) end
return state(0)
)lua";

// KEYS[1]: the cell. ARGV: host, lease_ms, rate, demand, limit identity,
// limit name, label. Returns the demands of the hosts whose lease runs,
// this host's first, as the decimal strings pushed (never Lua numbers).
constexpr const char* kRateScript = R"lua(
local key, host = KEYS[1], ARGV[1]
local lease_ms = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local f = {}
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do f[all[i]] = all[i + 1] end

local live, gone = {ARGV[4]}, {}
for field, value in pairs(f) do
  local k = string.match(field, '^l:(.*)$')
  if k and k ~= host then
    if tonumber(value) < now then
      table.insert(gone, field); table.insert(gone, 'd:' .. k)
    else
      table.insert(live, f['d:' .. k] or '0')
    end
  end
end
if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
redis.call('HSET', key, 'd:' .. host, ARGV[4], 'l:' .. host, string.format('%d', now + lease_ms),
           'rate', ARGV[3], 'kind', '3', 'lid', ARGV[5], 'limit', ARGV[6], 'label', ARGV[7])
redis.call('PEXPIRE', key, lease_ms + 60000)
return live
)lua";

struct Endpoint {
  std::string host;
  int port = 6379;
  int db = 0;
};

struct ReplyFree {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;
using Command = std::vector<std::string>;

template <class T>
bool parse_decimal(std::string_view text, T* out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return !text.empty() && ec == std::errc() && ptr == end;
}

Status bad_url(const std::string& url, const std::string& what) {
  return Status(ErrorCode::kInvalidArgument,
                "store.url '" + url + "': " + what + "; write url: " + std::string(kUrlExample));
}

// redis://host[:port][/db]; host may be a bracketed IPv6 address.
Result<Endpoint> parse_url(const std::string& url) {
  constexpr std::string_view kScheme = "redis://";
  if (url.empty()) return bad_url(url, "is empty");
  if (url.starts_with("rediss://")) return bad_url(url, "TLS (rediss://) is not supported");
  if (!url.starts_with(kScheme)) return bad_url(url, "does not start with redis://");
  std::string_view rest{url};
  rest.remove_prefix(kScheme.size());
  if (rest.find('@') != std::string_view::npos) {
    return bad_url(url, "credentials (user:password@) are not supported");
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return bad_url(url, "options after '?' are not supported");
  }
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);

  Endpoint endpoint;
  std::string_view port;
  bool has_port = false;
  if (authority.starts_with('[')) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad_url(url, "'[' has no closing ']'");
    endpoint.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) {
      return bad_url(url, "expected ':port' after the ']'");
    }
    has_port = !after.empty();
    if (has_port) port = after.substr(1);
  } else {
    const std::size_t colon = authority.find(':');
    if (colon != std::string_view::npos &&
        authority.find(':', colon + 1) != std::string_view::npos) {
      return bad_url(url, "an IPv6 address needs brackets, as in redis://[::1]:6379/0");
    }
    endpoint.host = std::string(authority.substr(0, colon));
    has_port = colon != std::string_view::npos;
    if (has_port) port = authority.substr(colon + 1);
  }
  if (endpoint.host.empty()) return bad_url(url, "has no host");
  if (has_port) {
    if (port.empty()) return bad_url(url, "port is empty");
    unsigned value = 0;
    if (!parse_decimal(port, &value)) return bad_url(url, "port is not a number");
    if (value == 0 || value > 65535) {
      return bad_url(url, "port " + std::string(port) + " is outside 1-65535");
    }
    endpoint.port = static_cast<int>(value);
  }
  if (!path.empty()) {
    unsigned db = 0;
    if (!parse_decimal(path, &db) || db > 1'000'000) {
      return bad_url(url, "database '" + std::string(path) + "' is not a number");
    }
    endpoint.db = static_cast<int>(db);
  }
  return endpoint;
}

std::string cell_key(std::uint64_t hash) {
  char text[32];
  std::snprintf(text, sizeof text, "sluice:{%016" PRIx64 "}", hash);
  return text;
}

std::string hex(std::uint64_t hash) {
  char text[17];
  std::snprintf(text, sizeof text, "%016" PRIx64, hash);
  return text;
}

std::string host_index_key(const std::string& host) { return "sluice:host:" + host; }

std::string one_line(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::replace(text.begin(), text.end(), '\r', ' ');
  return text;
}

// A write to a connection the server has closed raises SIGPIPE, which would
// end the sidecar: hiredis writes with write(2). SIGPIPE is blocked on this
// thread while an instance lives, and one raised meanwhile is discarded.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &saved_);
  }
  ~SigpipeBlocked() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      const timespec zero{};
      while (sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

 private:
  sigset_t pipe_;
  sigset_t saved_;
  bool was_pending_ = false;
};

bool is_budget(CellKind kind) {
  return kind == CellKind::kLocalBudget || kind == CellKind::kGlobalBudget;
}

Status refuse(const CellUpdate& update, const char* field, std::uint64_t value) {
  return Status(ErrorCode::kInvalidArgument,
                "limit '" + update.cell.limit_name + "' cell '" + update.cell.label +
                    "': " + field + " " + std::to_string(value) +
                    " is above 2^53 - 1 (about 9 million USD in nano-dollars), the most the "
                    "redis store counts exactly; lower the limit or use store kind sqlite");
}

Status check(const Push& push) {
  if (push.host.empty()) {
    return Status(ErrorCode::kInvalidArgument, "push without a host; set store.host_id");
  }
  for (const CellUpdate& u : push.cells) {
    if (u.kind == CellKind::kGlobalRate) continue;
    if (!is_budget(u.kind)) {
      return Status(ErrorCode::kInvalidArgument, "limit '" + u.cell.limit_name +
                                                     "': unknown cell kind " +
                                                     std::to_string(static_cast<int>(u.kind)));
    }
    const std::uint64_t magnitude = u.used_delta < 0 ? 0 - static_cast<std::uint64_t>(u.used_delta)
                                                     : static_cast<std::uint64_t>(u.used_delta);
    if (magnitude > kMaxExact) return refuse(u, "used_delta", magnitude);
    if (u.budget > kMaxExact) return refuse(u, "budget", u.budget);
    if (u.want_allotted > kMaxExact) return refuse(u, "want_allotted", u.want_allotted);
    if (u.want_exposed > kMaxExact) return refuse(u, "want_exposed", u.want_exposed);
  }
  return Status::Ok();
}

// The script's arguments after the key (see kBudgetScript, kRateScript).
Command script_args(const Push& push, const CellUpdate& u) {
  const std::string lease = std::to_string(std::min(push.lease_ms, kMaxLeaseMs));
  const StoreCell& c = u.cell;
  if (u.kind == CellKind::kGlobalRate) {
    return {push.host,
            lease,
            std::to_string(u.rate),
            std::to_string(u.demand),
            std::to_string(c.limit_identity),
            c.limit_name,
            c.label};
  }
  return {push.host,
          std::to_string(push.session),
          std::to_string(push.seq),
          lease,
          std::to_string(static_cast<int>(u.kind)),
          std::to_string(u.used_delta),
          std::to_string(u.budget),
          std::to_string(u.want_allotted),
          std::to_string(u.want_exposed),
          std::to_string(c.limit_identity),
          std::to_string(c.window_start),
          std::to_string(c.window_end),
          c.limit_name,
          c.label};
}

// {verb, script or sha, "1", key, args...}: EVALSHA with a sha, EVAL with the source.
Command script_call(const char* verb, const std::string& script, const Push& push,
                    const CellUpdate& u) {
  Command command = {verb, script, "1", cell_key(u.cell.hash)};
  Command args = script_args(push, u);
  command.insert(command.end(), std::make_move_iterator(args.begin()),
                 std::make_move_iterator(args.end()));
  return command;
}

bool is_error(const Reply& r, std::string_view prefix = "") {
  return r->type == REDIS_REPLY_ERROR &&
         std::string_view(r->str, r->len).substr(0, prefix.size()) == prefix;
}

std::string_view text(const redisReply* r) {
  return r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
                 r->type == REDIS_REPLY_ERROR
             ? std::string_view(r->str, r->len)
             : std::string_view();
}

bool budget_state(const redisReply* r, CellState* state) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 6) return false;
  for (std::size_t i = 0; i < 6; ++i) {
    if (r->element[i]->type != REDIS_REPLY_INTEGER) return false;
  }
  auto at = [&](std::size_t i) { return static_cast<std::int64_t>(r->element[i]->integer); };
  auto nonnegative = [&](std::size_t i) {
    return static_cast<std::uint64_t>(std::max<std::int64_t>(at(i), 0));
  };
  state->duplicate = at(0) != 0;
  state->host_used = at(1);
  state->host_allotted = nonnegative(2);
  state->host_exposed = nonnegative(3);
  state->global_used = at(4);
  state->global_allotted = nonnegative(5);
  return true;
}

// store.h, global rates, step 3, from the demands of the hosts sharing the rate.
bool rate_state(const redisReply* r, const CellUpdate& u, CellState* state) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return false;
  unsigned __int128 sum = 0;
  for (std::size_t i = 0; i < r->elements; ++i) {
    std::uint64_t demand = 0;
    if (r->element[i]->type != REDIS_REPLY_STRING || !parse_decimal(text(r->element[i]), &demand)) {
      return false;
    }
    sum += demand;
  }
  const std::uint64_t n = r->elements;
  const std::uint64_t floor = u.rate / (4 * n);
  const std::uint64_t pool = u.rate - n * floor;
  const unsigned __int128 extra =
      sum == 0 ? pool / n : static_cast<unsigned __int128>(pool) * u.demand / sum;
  state->host_share = floor + static_cast<std::uint64_t>(extra);
  state->hosts = n;
  return true;
}

class RedisStore final : public Store {
 public:
  RedisStore(Endpoint endpoint, std::uint64_t timeout_ms)
      : endpoint_(std::move(endpoint)), timeout_(static_cast<milliseconds::rep>(timeout_ms)) {}
  ~RedisStore() override { drop(); }
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  std::string where() const override {
    return "redis://" + address() + "/" + std::to_string(endpoint_.db);
  }

  Result<std::uint64_t> hash_seed(std::uint64_t proposal) override {
    SigpipeBlocked quiet;
    Result<std::vector<Reply>> replies =
        run({{"SET", "sluice:seed", std::to_string(proposal), "NX"}, {"GET", "sluice:seed"}});
    if (!replies.ok()) return replies.status();
    if (Status s = refused(*replies, "hash seed"); !s.ok()) return s;
    std::uint64_t seed = 0;
    const redisReply* got = (*replies)[1].get();
    if (got->type != REDIS_REPLY_STRING || !parse_decimal(text(got), &seed)) {
      return Status(ErrorCode::kIncompatible,
                    "redis at " + address() + ": key sluice:seed holds '" +
                        one_line(std::string(text(got))) +
                        "', not a number; delete it (DEL sluice:seed) while no sidecar runs");
    }
    return seed;
  }

  Result<std::vector<CellState>> push(const Push& push) override {
    if (Status s = check(push); !s.ok()) return s;
    SigpipeBlocked quiet;
    // Connect first: the script shas are known once connected.
    if (Status s = connect(); !s.ok()) return s;
    if (push.cells.empty()) {  // nothing to push, but the sync still says whether redis answers
      Result<std::vector<Reply>> pong = run({Command{"PING"}});
      if (!pong.ok()) return pong.status();
      return std::vector<CellState>();
    }
    std::vector<Command> commands;
    std::vector<std::size_t> script_reply(push.cells.size());
    for (std::size_t i = 0; i < push.cells.size(); ++i) {
      const CellUpdate& u = push.cells[i];
      const bool budget = is_budget(u.kind);
      script_reply[i] = commands.size();
      commands.push_back(script_call("EVALSHA", budget ? budget_sha_ : rate_sha_, push, u));
      if (budget) {
        commands.push_back({"ZADD", host_index_key(push.host), std::to_string(u.cell.window_end),
                            hex(u.cell.hash)});
      }
    }
    Result<std::vector<Reply>> replies = run(commands);
    if (!replies.ok()) return replies.status();

    // NOSCRIPT: the server lost its scripts (restarted, flushed); EVAL sends
    // the source and caches it again.
    std::vector<std::size_t> lost;
    for (std::size_t i = 0; i < push.cells.size(); ++i) {
      if (is_error((*replies)[script_reply[i]], "NOSCRIPT")) lost.push_back(i);
    }
    if (!lost.empty()) {
      std::vector<Command> again;
      for (std::size_t i : lost) {
        const CellUpdate& u = push.cells[i];
        again.push_back(
            script_call("EVAL", is_budget(u.kind) ? kBudgetScript : kRateScript, push, u));
      }
      Result<std::vector<Reply>> resent = run(again);
      if (!resent.ok()) return resent.status();
      for (std::size_t j = 0; j < lost.size(); ++j) {
        (*replies)[script_reply[lost[j]]] = std::move((*resent)[j]);
      }
    }
    if (Status s = refused(*replies, "push"); !s.ok()) return s;

    std::vector<CellState> states(push.cells.size());
    for (std::size_t i = 0; i < push.cells.size(); ++i) {
      const CellUpdate& u = push.cells[i];
      const redisReply* r = (*replies)[script_reply[i]].get();
      const bool parsed =
          is_budget(u.kind) ? budget_state(r, &states[i]) : rate_state(r, u, &states[i]);
      if (!parsed) {
        return Status(ErrorCode::kIo, "redis at " + address() +
                                          ": unexpected reply to the script of limit '" +
                                          u.cell.limit_name + "'; is another program using " +
                                          cell_key(u.cell.hash) + "?");
      }
    }
    return states;
  }

  Result<std::vector<RestoredCell>> restore(const std::string& host,
                                            std::uint64_t now_unix) override {
    SigpipeBlocked quiet;
    const std::string index = host_index_key(host);
    Result<std::vector<Reply>> listed =
        run({{"ZREMRANGEBYSCORE", index, "-inf", std::to_string(now_unix)},
             {"ZRANGE", index, "0", "-1"}});
    if (!listed.ok()) return listed.status();
    if (Status s = refused(*listed, "restore"); !s.ok()) return s;
    const redisReply* members = (*listed)[1].get();
    if (members->type != REDIS_REPLY_ARRAY) {
      return Status(ErrorCode::kIo,
                    "redis at " + address() + ": " + index + " is not a sorted set");
    }
    std::vector<std::uint64_t> hashes;
    std::vector<Command> reads;
    for (std::size_t i = 0; i < members->elements; ++i) {
      const std::string_view member = text(members->element[i]);
      std::uint64_t hash = 0;
      auto [ptr, ec] = std::from_chars(member.data(), member.data() + member.size(), hash, 16);
      if (member.size() != 16 || ec != std::errc() || ptr != member.data() + member.size()) {
        continue;
      }
      hashes.push_back(hash);
      reads.push_back({"HMGET", cell_key(hash), "lid", "ws", "we", "limit", "label", "kind",
                       "u:" + host, "x:" + host});
    }
    std::vector<RestoredCell> cells;
    if (reads.empty()) return cells;
    Result<std::vector<Reply>> fields = run(reads);
    if (!fields.ok()) return fields.status();
    if (Status s = refused(*fields, "restore"); !s.ok()) return s;
    for (std::size_t i = 0; i < hashes.size(); ++i) {
      const redisReply* r = (*fields)[i].get();
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 8) continue;
      auto field = [&](std::size_t j) { return text(r->element[j]); };
      RestoredCell cell;
      cell.cell.hash = hashes[i];
      int kind = 0;
      // A cell whose key has expired reads as all nil: nothing to restore.
      if (!parse_decimal(field(0), &cell.cell.limit_identity) ||
          !parse_decimal(field(1), &cell.cell.window_start) ||
          !parse_decimal(field(2), &cell.cell.window_end) || !parse_decimal(field(5), &kind) ||
          !is_budget(static_cast<CellKind>(kind)) || cell.cell.window_end <= now_unix) {
        continue;
      }
      cell.cell.limit_name = std::string(field(3));
      cell.cell.label = std::string(field(4));
      cell.kind = static_cast<CellKind>(kind);
      if (!field(6).empty() && !parse_decimal(field(6), &cell.host_used)) continue;
      if (!field(7).empty() && !parse_decimal(field(7), &cell.host_exposed)) continue;
      cells.push_back(std::move(cell));
    }
    return cells;
  }

 private:
  std::string address() const {
    const bool ipv6 = endpoint_.host.find(':') != std::string::npos;
    return (ipv6 ? "[" + endpoint_.host + "]" : endpoint_.host) + ":" +
           std::to_string(endpoint_.port);
  }

  timeval timeout() const {
    const auto ms = timeout_.count();
    return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
  }

  void drop() {
    if (context_ != nullptr) redisFree(context_);
    context_ = nullptr;
  }

  // Why the connection failed, in words; drops it.
  std::string failure() {
    std::string why;
    if (context_ == nullptr) {
      why = "no connection";
    } else if (context_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      why = "no reply within " + std::to_string(timeout_.count()) + " ms";
    } else if (context_->err == REDIS_ERR_EOF) {
      why = "the server closed the connection";
    } else {
      why = one_line(context_->errstr);
    }
    drop();
    return why;
  }

  // Connected, with the database selected and the scripts loaded; or, at
  // most once per backoff, an attempt to get there.
  Status connect() {
    if (context_ != nullptr) return Status::Ok();
    const Clock::time_point now = Clock::now();
    if (now < retry_at_) {
      return unreachable(std::chrono::ceil<milliseconds>(retry_at_ - now));
    }
    last_failure_ = open_connection();
    if (last_failure_.empty()) {
      backoff_ = milliseconds(0);
      return Status::Ok();
    }
    backoff_ = backoff_.count() == 0 ? kFirstBackoff : std::min(backoff_ * 2, kMaxBackoff);
    retry_at_ = Clock::now() + backoff_;
    return unreachable(backoff_);
  }

  Status unreachable(milliseconds retry_in) const {
    return Status(ErrorCode::kIo, "redis at " + address() + " unreachable: " + last_failure_ +
                                      "; retrying in " + std::to_string(retry_in.count()) + " ms");
  }

  // "" when connected; otherwise why not.
  std::string open_connection() {
    context_ = redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port, timeout());
    if (context_ == nullptr) return "cannot allocate a connection";
    if (context_->err != 0) return failure();
    if (redisSetTimeout(context_, timeout()) != REDIS_OK) return failure();
    Result<std::vector<Reply>> replies = exchange({{"SELECT", std::to_string(endpoint_.db)},
                                                   {"SCRIPT", "LOAD", kBudgetScript},
                                                   {"SCRIPT", "LOAD", kRateScript}});
    if (!replies.ok()) return replies.status().message();
    for (const Reply& r : *replies) {
      if (r->type == REDIS_REPLY_ERROR) {
        drop();
        return one_line(std::string(text(r.get())));
      }
    }
    budget_sha_ = std::string(text((*replies)[1].get()));
    rate_sha_ = std::string(text((*replies)[2].get()));
    return "";
  }

  // Sends every command, then reads every reply, in order: one round trip.
  // An I/O failure or timeout drops the connection; error replies are
  // returned as replies.
  Result<std::vector<Reply>> exchange(const std::vector<Command>& commands) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const Command& command : commands) {
      argv.clear();
      lengths.clear();
      for (const std::string& arg : command) {
        argv.push_back(arg.data());
        lengths.push_back(arg.size());
      }
      if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(),
                                 lengths.data()) != REDIS_OK) {
        return Status(ErrorCode::kIo, failure());
      }
    }
    std::vector<Reply> replies;
    replies.reserve(commands.size());
    for (std::size_t i = 0; i < commands.size(); ++i) {
      void* reply = nullptr;
      if (redisGetReply(context_, &reply) != REDIS_OK || reply == nullptr) {
        return Status(ErrorCode::kIo, failure());
      }
      replies.emplace_back(static_cast<redisReply*>(reply));
    }
    return replies;
  }

  // connect() and exchange(), failures worded for the caller.
  Result<std::vector<Reply>> run(const std::vector<Command>& commands) {
    if (Status s = connect(); !s.ok()) return s;
    Result<std::vector<Reply>> replies = exchange(commands);
    if (!replies.ok()) {
      return Status(ErrorCode::kIo, "redis at " + address() + ": " + replies.status().message() +
                                        "; reconnecting on the next call");
    }
    return replies;
  }

  // The first error reply, as a Status.
  Status refused(const std::vector<Reply>& replies, const char* what) const {
    for (const Reply& r : replies) {
      if (r->type == REDIS_REPLY_ERROR) {
        return Status(ErrorCode::kIo, "redis at " + address() + " refused the " + what + ": " +
                                          one_line(std::string(text(r.get()))));
      }
    }
    return Status::Ok();
  }

  Endpoint endpoint_;
  milliseconds timeout_;
  redisContext* context_ = nullptr;
  std::string budget_sha_;
  std::string rate_sha_;
  Clock::time_point retry_at_{};
  milliseconds backoff_{0};
  std::string last_failure_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_redis_store(const StoreSpec& spec) {
  Result<Endpoint> endpoint = parse_url(spec.url);
  if (!endpoint.ok()) return endpoint.status();
  if (spec.host_id.empty()) {
    return Status(ErrorCode::kInvalidArgument,
                  "store.host_id is empty; write host_id: a name no other host uses, e.g. web-3");
  }
  if (spec.timeout_ms == 0 || spec.timeout_ms > 3'600'000) {
    return Status(ErrorCode::kInvalidArgument, "store.timeout_ms " +
                                                   std::to_string(spec.timeout_ms) +
                                                   " is outside 1-3600000; write timeout_ms: 500");
  }
  return std::unique_ptr<Store>(new RedisStore(std::move(*endpoint), spec.timeout_ms));
}

}  // namespace sluice
