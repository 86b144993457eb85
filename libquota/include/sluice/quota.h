// Sluice client: admit or reject an LLM call against the limits a local
// sluiced publishes in shared memory, in well under a microsecond.
//
//   auto client = sluice::Client::attach("sluice-demo");
//   if (!client.ok()) { std::fprintf(stderr, "%s\n", client.status().message().c_str()); return 2;
//   }
//
//   sluice::Attribute attrs[] = {{"team", "pricing"}, {"feature", "quote-agent"},
//                                {"model", "gpt-4o"}};
//   sluice::Reservation r = client->reserve({attrs, /*input_tokens=*/1200,
//                                            /*max_output_tokens=*/800});
//   if (!r.admitted()) {
//     // r.decision().reason, client->limit_name(r.decision().limit_index),
//     // r.decision().retry_after_ns say who said no and when to try again.
//     return;
//   }
//   ... call the model ...
//   r.commit(/*input_tokens=*/1180, /*output_tokens=*/412);  // settles the difference
//
// A Reservation that goes out of scope uncommitted is cancelled (refunded).
// reserve / commit / cancel / extend never allocate, lock, throw or make a
// system call. A Client belongs to one thread at a time: create one per
// thread (attach costs a few microseconds). Reservations outlive neither
// their Client nor, unless held with hold_for_ns, their process: the sidecar
// settles the work of a process that died at its estimate, as abandoned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "sluice/status.h"

namespace sluice {

// What one call may carry. A call outside these bounds is rejected with
// Reason::kInvalidArgument and charges nothing (describe_invalid_request says
// which bound it broke); a commit or extend outside them is refused with
// SettleError::kInvalidArgument and leaves the reservation as it was.
inline constexpr std::size_t kMaxCallAttributes = 16;
inline constexpr std::size_t kMaxAttributeNameBytes = 63;    // and at least 1
inline constexpr std::size_t kMaxAttributeValueBytes = 255;  // and at least 1
// All names and values of a call, counting 2 bytes more per attribute: what
// one audit record holds, so the audit trail keeps every attribute whole.
inline constexpr std::size_t kMaxAttributeBytes = 1024;
// Input, output, or a reservation's output after extends, per call.
inline constexpr std::uint64_t kMaxTokensPerCall = std::uint64_t{1} << 32;

// Names and values are bytes, compared and hashed whole: UTF-8 is not
// required (tools print invalid sequences as U+FFFD in JSON), and a NUL is a
// byte like any other here (the C ABI's strings end at the first NUL).
struct Attribute {
  std::string_view name;   // "team", "feature", "user", "model", "api_key", ...
  std::string_view value;  // the model is the attribute named "model"
};

struct CallRequest {
  std::span<const Attribute> attributes;
  std::uint64_t input_tokens = 0;       // estimate, at most kMaxTokensPerCall
  std::uint64_t max_output_tokens = 0;  // the most the call may produce, at most kMaxTokensPerCall
  // 0: held while this process lives. Otherwise the reservation is detached
  // from the process and held this long (monotonic) until commit or cancel
  // from any process; after that the sidecar settles it as abandoned.
  std::uint64_t hold_for_ns = 0;
};

enum class Reason : std::uint8_t {
  kNone = 0,
  kRateLimited,
  kBudgetExhausted,
  kModelNotAllowed,
  kUnknownModelPrice,
  kTableFull,
  kTooManyReservations,
  kRequestTooLarge,  // more units than the limit's burst: can never pass
  kTooManyLimits,    // the call matches more limits than a reservation holds
  kNoPolicy,         // the sidecar has not published a policy
  kPolicyStale,      // budget windows ran out: the sidecar stopped refreshing them
  kInvalidArgument,
  kAuditUnavailable,  // audit is required and the audit ring is full
  kStoreUnavailable,  // a global limit with on_store_down: fail_closed, and the store is down
};
// The stable snake_case name ("rate_limited", "budget_exhausted", ...).
const char* to_string(Reason r);

struct Decision {
  bool admitted = false;
  Reason reason = Reason::kNone;
  std::uint64_t reservation_id = 0;  // when admitted
  int limit_index = -1;              // the limit that rejected, -1 when none
  std::uint64_t retry_after_ns = 0;  // when rejected and known, else 0
  std::uint32_t shadow_rejects = 0;  // shadow limits that would have rejected
  std::uint64_t estimated_cost_nusd = 0;
};

enum class SettleError : std::uint8_t {
  kNone = 0,
  kUnknownReservation,  // never existed, already settled, or settled as abandoned
  kInvalidArgument,     // token counts past kMaxTokensPerCall; the reservation stays as it was
  kNotReady,            // the client is not attached
};
const char* to_string(SettleError e);

// Whether `request` breaks a bound above, which reserve would reject as
// Reason::kInvalidArgument: if so, writes which one as a line (no newline,
// NUL-terminated, cut to `size`), e.g. "attribute 'user': value of 300
// bytes, at most 255 ...", and returns true. Allocates nothing; a check
// for callers that want to say why, not for the hot path.
bool describe_invalid_request(const CallRequest& request, char* out, std::size_t size);

// What a commit may report of the model call it settles (all optional): it
// goes into the commit's audit record and the segment's per-model and
// per-limit call stats, which the sidecar turns into metrics and alerts.
enum class Outcome : std::uint8_t {
  kUnreported = 0,
  kOk,
  kProviderError,
  kTimeout,
  kCancelledByClient,
  kCutOff,  // a stream stopped because the budget was gone
};
// The stable snake_case name ("ok", "provider_error", ...; "unreported").
const char* to_string(Outcome o);
// The outcome named `name` (as to_string gives it); false if there is none.
bool parse_outcome(std::string_view name, Outcome* out);
// Whether the outcome counts as a failed call (error rates, alerts,
// sluice_limit_commits_total{result="failed"}): provider_error and timeout.
bool is_error(Outcome o);

inline constexpr std::size_t kMaxModelVersionBytes = 128;

struct CallReport {
  Outcome outcome = Outcome::kUnreported;
  std::uint64_t latency_ns = 0;    // provider latency, request to last byte; 0: not reported
  std::uint64_t ttft_ns = 0;       // time to first token (streams); 0: not reported
  std::uint16_t http_status = 0;   // the provider's HTTP status; 0: not reported
  std::string_view model_version;  // as the response reported it, at most 128 bytes
};

struct Settlement {
  SettleError error = SettleError::kNone;
  std::uint64_t cost_nusd = 0;  // actual cost of the call (commit)
  bool ok() const { return error == SettleError::kNone; }
};

struct Extension {
  SettleError error = SettleError::kNone;
  bool admitted = false;  // false: the budget or rate is gone; stop the stream
  Reason reason = Reason::kNone;
  int limit_index = -1;
  std::uint64_t retry_after_ns = 0;
};

class Reservation;
struct ClientState;

class Client {
 public:
  // Maps the segment `name` (as in the policy's segment.name) and registers
  // this client. Errors name the cause and the fix: no such segment (is
  // sluiced running?), permission denied (which group to join), incompatible
  // layout version, segment not ready, registry full.
  static Result<Client> attach(const std::string& segment_name);

  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  ~Client();

  // Debits every matching limit at the worst case (input + max output), all
  // or nothing. The returned Reservation cancels itself unless committed.
  Reservation reserve(const CallRequest& request);
  // The same, returning the raw decision; settle with commit / cancel by id.
  Decision reserve_raw(const CallRequest& request);

  Settlement commit(std::uint64_t reservation_id, std::uint64_t input_tokens,
                    std::uint64_t output_tokens);
  // The same, with what the model call reported. A model version past
  // kMaxModelVersionBytes or an http_status past 999 is refused with
  // SettleError::kInvalidArgument, leaving the reservation as it was.
  Settlement commit(std::uint64_t reservation_id, std::uint64_t input_tokens,
                    std::uint64_t output_tokens, const CallReport& report);
  Settlement cancel(std::uint64_t reservation_id);
  // Debits `output_tokens` more on the token and cost limits of a live
  // reservation, all or nothing; a refusal leaves the reservation as it was.
  Extension extend(std::uint64_t reservation_id, std::uint64_t output_tokens);

  // Name of limit `index` in the policy this client last saw ("" if none).
  std::string_view limit_name(int index) const;
  std::uint64_t policy_generation() const;

 private:
  explicit Client(std::unique_ptr<ClientState> state);
  Decision reserve_now(const CallRequest& request);
  std::unique_ptr<ClientState> s_;
};

// RAII over one reservation: commit, cancel or extend it; dropping it
// uncommitted cancels. Move-only.
class Reservation {
 public:
  Reservation() = default;
  Reservation(Client* client, const Decision& decision) : client_(client), decision_(decision) {}
  Reservation(Reservation&& o) noexcept : client_(o.client_), decision_(o.decision_) {
    o.client_ = nullptr;
  }
  Reservation& operator=(Reservation&& o) noexcept;
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;
  ~Reservation() { cancel(); }

  bool admitted() const { return decision_.admitted; }
  const Decision& decision() const { return decision_; }
  std::uint64_t id() const { return decision_.reservation_id; }

  Settlement commit(std::uint64_t input_tokens, std::uint64_t output_tokens);
  Settlement commit(std::uint64_t input_tokens, std::uint64_t output_tokens,
                    const CallReport& report);
  Settlement cancel();
  Extension extend(std::uint64_t output_tokens);

 private:
  bool live() const { return client_ != nullptr && decision_.admitted; }
  Client* client_ = nullptr;
  Decision decision_;
};

}  // namespace sluice
