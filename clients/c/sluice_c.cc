// The C ABI (sluice.h) over the C++ client. Every entry point catches
// everything at the boundary (free unless something throws, and the hot path
// never does) and formats errors into a thread-local buffer without
// allocating.
#include "sluice.h"

#include <algorithm>
#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <exception>
#include <initializer_list>
#include <new>
#include <string_view>
#include <utility>

#include "segment_layout.h"
#include "sluice/quota.h"

struct sluice_client {
  explicit sluice_client(sluice::Client c) : client(std::move(c)) {}
  sluice::Client client;
  char limit_name[64] = {};  // NUL-terminated copy for sluice_limit_name
};

namespace {

using sluice::Outcome;
using sluice::Reason;
using sluice::SettleError;

// The values of sluice.h are the C++ enums' values.
static_assert(SLUICE_REASON_NONE == static_cast<int>(Reason::kNone));
static_assert(SLUICE_REASON_RATE_LIMITED == static_cast<int>(Reason::kRateLimited));
static_assert(SLUICE_REASON_BUDGET_EXHAUSTED == static_cast<int>(Reason::kBudgetExhausted));
static_assert(SLUICE_REASON_MODEL_NOT_ALLOWED == static_cast<int>(Reason::kModelNotAllowed));
static_assert(SLUICE_REASON_UNKNOWN_MODEL_PRICE == static_cast<int>(Reason::kUnknownModelPrice));
static_assert(SLUICE_REASON_TABLE_FULL == static_cast<int>(Reason::kTableFull));
static_assert(SLUICE_REASON_TOO_MANY_RESERVATIONS ==
              static_cast<int>(Reason::kTooManyReservations));
static_assert(SLUICE_REASON_REQUEST_TOO_LARGE == static_cast<int>(Reason::kRequestTooLarge));
static_assert(SLUICE_REASON_TOO_MANY_LIMITS == static_cast<int>(Reason::kTooManyLimits));
static_assert(SLUICE_REASON_NO_POLICY == static_cast<int>(Reason::kNoPolicy));
static_assert(SLUICE_REASON_POLICY_STALE == static_cast<int>(Reason::kPolicyStale));
static_assert(SLUICE_REASON_INVALID_ARGUMENT == static_cast<int>(Reason::kInvalidArgument));
static_assert(SLUICE_REASON_AUDIT_UNAVAILABLE == static_cast<int>(Reason::kAuditUnavailable));
static_assert(SLUICE_REASON_STORE_UNAVAILABLE == static_cast<int>(Reason::kStoreUnavailable));
constexpr int kLastReason = SLUICE_REASON_STORE_UNAVAILABLE;
static_assert(SLUICE_OUTCOME_UNREPORTED == static_cast<int>(Outcome::kUnreported));
static_assert(SLUICE_OUTCOME_OK == static_cast<int>(Outcome::kOk));
static_assert(SLUICE_OUTCOME_PROVIDER_ERROR == static_cast<int>(Outcome::kProviderError));
static_assert(SLUICE_OUTCOME_TIMEOUT == static_cast<int>(Outcome::kTimeout));
static_assert(SLUICE_OUTCOME_CANCELLED_BY_CLIENT == static_cast<int>(Outcome::kCancelledByClient));
static_assert(SLUICE_OUTCOME_CUT_OFF == static_cast<int>(Outcome::kCutOff));
constexpr int kLastOutcome = SLUICE_OUTCOME_CUT_OFF;
static_assert(SLUICE_MAX_MODEL_VERSION_BYTES == sluice::kMaxModelVersionBytes);

// The engine takes at most this many attributes and rejects a call with
// more as invalid_argument; one more than that is enough to be rejected.
constexpr std::size_t kMaxAttributes = sluice::kMaxCallAttributes;
static_assert(SLUICE_MAX_ATTRIBUTES == sluice::kMaxCallAttributes);
static_assert(SLUICE_MAX_TOKENS == sluice::kMaxTokensPerCall);

static_assert(sizeof(sluice_client::limit_name) >
                  sluice::shm::kNameWords * sizeof(sluice::shm::Word),
              "a limit name always fits, NUL included");
static_assert(sizeof(sluice_decision) == 40 && sizeof(sluice_extension) == 24,
              "the C structs are ABI: other languages mirror their layout");
static_assert(offsetof(sluice_call_report, outcome) == 16 &&
                  offsetof(sluice_call_report, model_version) == 24 &&
                  sizeof(sluice_call_report) == 24 + sizeof(const char*),
              "the C structs are ABI: other languages mirror their layout");

// The calling thread's last error. Touched only on failure: the first touch
// in a thread may allocate the thread's block of this library's TLS.
thread_local char last_error[512];

// Formats the thread's last error and returns `status`.
[[gnu::format(printf, 2, 3)]] int fail(int status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(last_error, sizeof last_error, format, args);
  va_end(args);
  return status;
}

int fail_message(int status, std::string_view message) {
  const std::size_t n = std::min(message.size(), sizeof last_error - 1);
  std::memcpy(last_error, message.data(), n);
  last_error[n] = '\0';
  return status;
}

int attach_status(sluice::ErrorCode code) {
  switch (code) {
    case sluice::ErrorCode::kOk:
      return SLUICE_OK;
    case sluice::ErrorCode::kInvalidArgument:
      return SLUICE_ERR_INVALID_ARGUMENT;
    case sluice::ErrorCode::kNotFound:
      return SLUICE_ERR_NOT_FOUND;
    case sluice::ErrorCode::kPermissionDenied:
      return SLUICE_ERR_PERMISSION_DENIED;
    case sluice::ErrorCode::kIncompatible:
      return SLUICE_ERR_INCOMPATIBLE;
    case sluice::ErrorCode::kNotReady:
      return SLUICE_ERR_NOT_READY;
    case sluice::ErrorCode::kAlreadyRunning:
    case sluice::ErrorCode::kIo:
      return SLUICE_ERR_IO;
  }
  return SLUICE_ERR_INTERNAL;
}

// A token count of a settle call, named in its out-of-range message.
struct Tokens {
  const char* name;
  std::uint64_t value;
};

// A settle error as a status, with the message naming the call and the id.
// `tokens` are the counts the call passed (the first out of range is named).
int settle_status(const char* call, std::uint64_t id, SettleError e,
                  std::initializer_list<Tokens> tokens = {}) {
  const auto n = static_cast<unsigned long long>(id);
  switch (e) {
    case SettleError::kNone:
      return SLUICE_OK;
    case SettleError::kUnknownReservation:
      return fail(SLUICE_ERR_UNKNOWN_RESERVATION,
                  "%s: unknown reservation %llu: it never existed, is already settled, or was "
                  "settled as abandoned; nothing was charged",
                  call, n);
    case SettleError::kInvalidArgument: {
      const auto max = static_cast<unsigned long long>(sluice::kMaxTokensPerCall);
      for (const Tokens& t : tokens) {
        if (t.value <= sluice::kMaxTokensPerCall) continue;
        return fail(SLUICE_ERR_INVALID_ARGUMENT,
                    "%s: %s %llu is more than %llu, the most one call may carry; reservation "
                    "%llu is unchanged and still open",
                    call, t.name, static_cast<unsigned long long>(t.value), max, n);
      }
      // Each count is in range, but the reservation's total would not be (extend).
      return fail(SLUICE_ERR_INVALID_ARGUMENT,
                  "%s: reservation %llu would pass %llu output tokens, the most one call may "
                  "carry; it is unchanged and still open",
                  call, n, max);
    }
    case SettleError::kNotReady:
      return fail(SLUICE_ERR_NOT_ATTACHED, "%s: the client is not attached; attach again", call);
  }
  return fail(SLUICE_ERR_INTERNAL, "%s: unexpected settle error %d", call, static_cast<int>(e));
}

// `in` as the engine takes it, or an error naming the field out of range
// (checked here, before the narrowing to the engine's types).
int call_report(std::uint64_t id, const sluice_call_report& in, sluice::CallReport* out) {
  const auto n = static_cast<unsigned long long>(id);
  if (in.outcome < 0 || in.outcome > kLastOutcome) {
    return fail(SLUICE_ERR_INVALID_ARGUMENT,
                "sluice_commit_report: outcome %d is not a SLUICE_OUTCOME_* value; reservation "
                "%llu is unchanged and still open",
                static_cast<int>(in.outcome), n);
  }
  if (in.http_status > SLUICE_MAX_HTTP_STATUS) {
    return fail(SLUICE_ERR_INVALID_ARGUMENT,
                "sluice_commit_report: http_status %u is more than %d; pass the provider's "
                "status, or 0 for none; reservation %llu is unchanged and still open",
                static_cast<unsigned>(in.http_status), SLUICE_MAX_HTTP_STATUS, n);
  }
  const std::size_t version_bytes =
      in.model_version == nullptr ? 0
                                  : ::strnlen(in.model_version, sluice::kMaxModelVersionBytes + 1);
  if (version_bytes > sluice::kMaxModelVersionBytes) {
    return fail(SLUICE_ERR_INVALID_ARGUMENT,
                "sluice_commit_report: model_version is longer than %d bytes; pass the version "
                "the response named, e.g. gpt-4o-2024-08-06; reservation %llu is unchanged and "
                "still open",
                SLUICE_MAX_MODEL_VERSION_BYTES, n);
  }
  out->outcome = static_cast<Outcome>(in.outcome);
  out->latency_ns = in.latency_ns;
  out->ttft_ns = in.ttft_ns;
  out->http_status = static_cast<std::uint16_t>(in.http_status);
  out->model_version =
      std::string_view(in.model_version == nullptr ? "" : in.model_version, version_bytes);
  return SLUICE_OK;
}

int null_argument(const char* call, const char* name) {
  return fail(SLUICE_ERR_INVALID_ARGUMENT, "%s: %s is NULL", call, name);
}

// Runs `body` (returning a status); nothing it throws crosses the ABI.
template <class Body>
int at_boundary(const char* call, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return fail(SLUICE_ERR_INTERNAL, "%s: out of memory", call);
  } catch (const std::exception& e) {
    return fail(SLUICE_ERR_INTERNAL, "%s: %s", call, e.what());
  } catch (...) {
    return fail(SLUICE_ERR_INTERNAL, "%s: unexpected exception", call);
  }
}

}  // namespace

extern "C" {

int sluice_attach(const char* segment, sluice_client** out) noexcept {
  if (out == nullptr) return null_argument("sluice_attach", "out");
  *out = nullptr;
  if (segment == nullptr) return null_argument("sluice_attach", "segment");
  return at_boundary("sluice_attach", [&]() -> int {
    sluice::Result<sluice::Client> client = sluice::Client::attach(segment);
    if (!client.ok()) {
      return fail_message(attach_status(client.status().code()), client.status().message());
    }
    *out = new (std::nothrow) sluice_client(std::move(client.value()));
    if (*out == nullptr) return fail(SLUICE_ERR_INTERNAL, "sluice_attach: out of memory");
    return SLUICE_OK;
  });
}

void sluice_detach(sluice_client* client) noexcept {
  try {
    delete client;
  } catch (...) {  // ~Client does not throw; nothing may cross the ABI regardless
  }
}

int sluice_reserve(sluice_client* client, const sluice_attr* attrs, size_t n, uint64_t input_tokens,
                   uint64_t max_output_tokens, uint64_t hold_for_ns,
                   sluice_decision* out) noexcept {
  if (client == nullptr) return null_argument("sluice_reserve", "client");
  if (out == nullptr) return null_argument("sluice_reserve", "out");
  if (attrs == nullptr && n > 0) return null_argument("sluice_reserve", "attrs");
  // More than the engine takes: pass one too many so that it rejects (and
  // audits) the call as invalid_argument.
  sluice::Attribute view[kMaxAttributes + 1];
  const std::size_t count = std::min(n, kMaxAttributes + 1);
  for (std::size_t i = 0; i < count; ++i) {
    if (attrs[i].name == nullptr || attrs[i].value == nullptr) {
      return fail(SLUICE_ERR_INVALID_ARGUMENT, "sluice_reserve: attrs[%zu].%s is NULL", i,
                  attrs[i].name == nullptr ? "name" : "value");
    }
    view[i] = {attrs[i].name, attrs[i].value};
  }
  return at_boundary("sluice_reserve", [&]() -> int {
    const sluice::CallRequest request{{view, count}, input_tokens, max_output_tokens, hold_for_ns};
    const sluice::Decision d = client->client.reserve_raw(request);
    out->reservation_id = d.reservation_id;
    out->retry_after_ns = d.retry_after_ns;
    out->estimated_cost_nusd = d.estimated_cost_nusd;
    out->admitted = d.admitted ? 1 : 0;
    out->reason = static_cast<int32_t>(d.reason);
    out->limit_index = d.limit_index;
    out->shadow_rejects = d.shadow_rejects;
    if (d.reason != Reason::kInvalidArgument) return SLUICE_OK;
    // A call outside the bounds is the caller's to fix: an error saying which
    // (the engine saw at most one attribute too many, the caller passed n).
    char why[256];
    if (n > kMaxAttributes) {
      std::snprintf(why, sizeof why,
                    "%zu attributes, at most %zu: leave out those no limit matches", n,
                    kMaxAttributes);
    } else if (!sluice::describe_invalid_request(request, why, sizeof why)) {
      std::snprintf(why, sizeof why, "the call is outside the engine's bounds");
    }
    return fail(SLUICE_ERR_INVALID_ARGUMENT, "sluice_reserve: %s; nothing was charged", why);
  });
}

int sluice_commit(sluice_client* client, uint64_t id, uint64_t input_tokens, uint64_t output_tokens,
                  uint64_t* cost_nusd) noexcept {
  return sluice_commit_report(client, id, input_tokens, output_tokens, nullptr, cost_nusd);
}

int sluice_commit_report(sluice_client* client, uint64_t id, uint64_t input_tokens,
                         uint64_t output_tokens, const sluice_call_report* report,
                         uint64_t* cost_nusd) noexcept {
  const char* call = report == nullptr ? "sluice_commit" : "sluice_commit_report";
  if (client == nullptr) return null_argument(call, "client");
  sluice::CallReport reported;
  if (report != nullptr) {
    if (const int status = call_report(id, *report, &reported); status != SLUICE_OK) return status;
  }
  return at_boundary(call, [&]() -> int {
    const sluice::Settlement s = client->client.commit(id, input_tokens, output_tokens, reported);
    if (!s.ok()) {
      return settle_status(call, id, s.error,
                           {{"input_tokens", input_tokens}, {"output_tokens", output_tokens}});
    }
    if (cost_nusd != nullptr) *cost_nusd = s.cost_nusd;
    return SLUICE_OK;
  });
}

int sluice_cancel(sluice_client* client, uint64_t id) noexcept {
  if (client == nullptr) return null_argument("sluice_cancel", "client");
  return at_boundary("sluice_cancel", [&]() -> int {
    return settle_status("sluice_cancel", id, client->client.cancel(id).error);
  });
}

int sluice_extend(sluice_client* client, uint64_t id, uint64_t output_tokens,
                  sluice_extension* out) noexcept {
  if (client == nullptr) return null_argument("sluice_extend", "client");
  if (out == nullptr) return null_argument("sluice_extend", "out");
  return at_boundary("sluice_extend", [&]() -> int {
    const sluice::Extension e = client->client.extend(id, output_tokens);
    if (e.error != SettleError::kNone) {
      return settle_status("sluice_extend", id, e.error, {{"output_tokens", output_tokens}});
    }
    out->retry_after_ns = e.retry_after_ns;
    out->admitted = e.admitted ? 1 : 0;
    out->reason = static_cast<int32_t>(e.reason);
    out->limit_index = e.limit_index;
    return SLUICE_OK;
  });
}

const char* sluice_limit_name(sluice_client* client, int32_t index) noexcept {
  if (client == nullptr) return "";
  const std::string_view name = client->client.limit_name(index);
  const std::size_t n = std::min(name.size(), sizeof client->limit_name - 1);
  if (n > 0) std::memcpy(client->limit_name, name.data(), n);  // "" may have no data
  client->limit_name[n] = '\0';
  return client->limit_name;
}

const char* sluice_reason_name(int32_t reason) noexcept {
  if (reason < 0 || reason > kLastReason) return "unknown";
  return sluice::to_string(static_cast<Reason>(reason));
}

const char* sluice_strerror(int status) noexcept {
  switch (status) {
    case SLUICE_OK:
      return "ok";
    case SLUICE_ERR_INVALID_ARGUMENT:
      return "invalid_argument";
    case SLUICE_ERR_NOT_FOUND:
      return "not_found";
    case SLUICE_ERR_PERMISSION_DENIED:
      return "permission_denied";
    case SLUICE_ERR_INCOMPATIBLE:
      return "incompatible";
    case SLUICE_ERR_NOT_READY:
      return "not_ready";
    case SLUICE_ERR_IO:
      return "io";
    case SLUICE_ERR_UNKNOWN_RESERVATION:
      return "unknown_reservation";
    case SLUICE_ERR_NOT_ATTACHED:
      return "not_attached";
    case SLUICE_ERR_INTERNAL:
      return "internal";
    default:
      return "unknown";
  }
}

const char* sluice_last_error(void) noexcept { return last_error; }

}  // extern "C"
