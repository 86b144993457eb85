/* Sluice C ABI: admit or reject an LLM call against the limits a local
 * sluiced publishes in shared memory, from C or any language with a C FFI.
 * A thin layer over the C++ client (sluice/quota.h) in libsluice.so.
 *
 *   sluice_client* client = NULL;
 *   if (sluice_attach("sluice-demo", &client) != SLUICE_OK) {
 *     fprintf(stderr, "%s\n", sluice_last_error());  // one line: what is wrong, how to fix it
 *     return 2;
 *   }
 *   const sluice_attr attrs[] = {{"team", "pricing"}, {"feature", "quote-agent"},
 *                                {"model", "gpt-4o"}};
 *   sluice_decision d;
 *   sluice_reserve(client, attrs, 3, 1200, 800, 0, &d);
 *   if (!d.admitted) {
 *     // sluice_limit_name(client, d.limit_index), sluice_reason_name(d.reason) and
 *     // d.retry_after_ns say who said no and when to try again.
 *   } else {
 *     ... call the model ...
 *     uint64_t cost_nusd = 0;
 *     sluice_commit(client, d.reservation_id, 1180, 412, &cost_nusd);  // or sluice_cancel
 *     // or, saying how the call went (into the audit record and sluiced's metrics):
 *     //   sluice_call_report report = {0};
 *     //   report.outcome = SLUICE_OUTCOME_OK;
 *     //   report.latency_ns = 812500000;
 *     //   report.http_status = 200;
 *     //   report.model_version = "gpt-4o-2024-08-06";
 *     //   sluice_commit_report(client, d.reservation_id, 1180, 412, &report, &cost_nusd);
 *   }
 *   sluice_detach(client);
 *
 * Every function returns a SLUICE_* status code; a non-zero code also sets a
 * one-line message for the calling thread, read with sluice_last_error().
 * A rejected call is not an error: sluice_reserve returns SLUICE_OK with
 * decision.admitted == 0 (a call outside the SLUICE_MAX_* bounds below is
 * one). No function throws, and sluice_reserve, _commit, _commit_report,
 * _cancel and _extend never allocate, lock or make a system call.
 *
 * A sluice_client belongs to one thread at a time: create one per thread.
 * A reservation not committed or cancelled is held until this process exits,
 * when the sidecar settles it at its estimate, as abandoned; one reserved
 * with hold_for_ns is held that long instead, and may be settled from any
 * process.
 */
#ifndef SLUICE_H_
#define SLUICE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define SLUICE_NOEXCEPT noexcept
extern "C" {
#else
#define SLUICE_NOEXCEPT
#endif

/* Status codes: what every function returns. Names from sluice_strerror. */
enum {
  SLUICE_OK = 0,
  SLUICE_ERR_INVALID_ARGUMENT = 1,    /* a NULL pointer, a call outside the bounds below */
  SLUICE_ERR_NOT_FOUND = 2,           /* no such segment */
  SLUICE_ERR_PERMISSION_DENIED = 3,   /* the OS refused access to the segment */
  SLUICE_ERR_INCOMPATIBLE = 4,        /* a segment of another layout version or size */
  SLUICE_ERR_NOT_READY = 5,           /* sluiced has not finished creating the segment */
  SLUICE_ERR_IO = 6,                  /* a system call failed; all client slots in use */
  SLUICE_ERR_UNKNOWN_RESERVATION = 7, /* never existed, already settled, or abandoned */
  SLUICE_ERR_NOT_ATTACHED = 8,        /* the client is not attached */
  SLUICE_ERR_INTERNAL = 9             /* out of memory or a bug: see sluice_last_error */
};

/* Why a call was rejected (sluice_decision.reason, sluice_extension.reason).
 * Names from sluice_reason_name; the values never change. */
enum {
  SLUICE_REASON_NONE = 0,
  SLUICE_REASON_RATE_LIMITED = 1,
  SLUICE_REASON_BUDGET_EXHAUSTED = 2,
  SLUICE_REASON_MODEL_NOT_ALLOWED = 3,
  SLUICE_REASON_UNKNOWN_MODEL_PRICE = 4,
  SLUICE_REASON_TABLE_FULL = 5,
  SLUICE_REASON_TOO_MANY_RESERVATIONS = 6,
  SLUICE_REASON_REQUEST_TOO_LARGE = 7,  /* more units than the limit's burst: never passes */
  SLUICE_REASON_TOO_MANY_LIMITS = 8,    /* the call matches more limits than a reservation holds */
  SLUICE_REASON_NO_POLICY = 9,          /* the sidecar has not published a policy */
  SLUICE_REASON_POLICY_STALE = 10,      /* the sidecar stopped refreshing budget windows */
  SLUICE_REASON_INVALID_ARGUMENT = 11,  /* a call outside the bounds below (also an error) */
  SLUICE_REASON_AUDIT_UNAVAILABLE = 12, /* audit is required and the audit ring is full */
  SLUICE_REASON_STORE_UNAVAILABLE = 13  /* a fail_closed global limit and the store is down */
};

/* What one call may carry; sluice_reserve refuses a call outside these
 * (SLUICE_ERR_INVALID_ARGUMENT, nothing charged), and sluice_commit and
 * sluice_extend token counts past SLUICE_MAX_TOKENS. */
#define SLUICE_MAX_ATTRIBUTES 16
#define SLUICE_MAX_ATTRIBUTE_NAME_BYTES 63    /* and at least 1 */
#define SLUICE_MAX_ATTRIBUTE_VALUE_BYTES 255  /* and at least 1 */
#define SLUICE_MAX_ATTRIBUTE_BYTES 1024       /* all names and values, 2 more each */
#define SLUICE_MAX_TOKENS ((uint64_t)1 << 32) /* input, output, or output after extends */

/* How the model call a commit settles ended (sluice_call_report.outcome).
 * Names as "unreported", "ok", "provider_error", "timeout",
 * "cancelled_by_client", "cut_off"; the values never change. */
enum {
  SLUICE_OUTCOME_UNREPORTED = 0, /* what a plain sluice_commit counts */
  SLUICE_OUTCOME_OK = 1,
  SLUICE_OUTCOME_PROVIDER_ERROR = 2,
  SLUICE_OUTCOME_TIMEOUT = 3,
  SLUICE_OUTCOME_CANCELLED_BY_CLIENT = 4,
  SLUICE_OUTCOME_CUT_OFF = 5 /* a stream stopped because the budget was gone */
};

/* What sluice_commit_report takes of a report; past these it refuses the
 * commit (SLUICE_ERR_INVALID_ARGUMENT, the reservation left open). */
#define SLUICE_MAX_HTTP_STATUS 999
#define SLUICE_MAX_MODEL_VERSION_BYTES 128

/* An attached client; opaque. */
typedef struct sluice_client sluice_client;

/* One attribute of a call: "team", "feature", "user", "model", "api_key", ...
 * Both are NUL-terminated and need only live for the call: a value ends at
 * its first NUL. Any other bytes are taken as they are (UTF-8 is not
 * required). */
typedef struct sluice_attr {
  const char* name;
  const char* value;
} sluice_attr;

typedef struct sluice_decision {
  uint64_t reservation_id;      /* when admitted: settle it with commit or cancel */
  uint64_t retry_after_ns;      /* when rejected and known, else 0 */
  uint64_t estimated_cost_nusd; /* the worst case reserved, in nano-dollars */
  int32_t admitted;             /* 1 admitted, 0 rejected */
  int32_t reason;               /* SLUICE_REASON_*; NONE when admitted */
  int32_t limit_index;          /* the limit that rejected (sluice_limit_name), -1 when none */
  uint32_t shadow_rejects;      /* shadow limits that would have rejected */
} sluice_decision;

typedef struct sluice_extension {
  uint64_t retry_after_ns; /* when refused and known, else 0 */
  int32_t admitted;        /* 0: the budget or rate is gone; stop the stream */
  int32_t reason;          /* SLUICE_REASON_* when refused */
  int32_t limit_index;     /* the limit that refused, -1 when none */
} sluice_extension;

/* What the model call a commit settles reported: it goes into the commit's
 * audit record and the per-model call stats that sluiced turns into
 * metrics and alerts. A zeroed struct reports nothing; so does each field
 * left 0 (or NULL). */
typedef struct sluice_call_report {
  uint64_t latency_ns;       /* provider latency, request to last byte */
  uint64_t ttft_ns;          /* time to first token (streams) */
  int32_t outcome;           /* SLUICE_OUTCOME_* */
  uint32_t http_status;      /* the provider's HTTP status, at most SLUICE_MAX_HTTP_STATUS */
  const char* model_version; /* as the response named it, NUL-terminated, at most
                                SLUICE_MAX_MODEL_VERSION_BYTES; need only live for the call */
} sluice_call_report;

/* Maps the segment `segment` (the policy's segment.name) and registers this
 * client; *out is set on SLUICE_OK and left NULL otherwise. Errors name the
 * cause and the fix: no such segment (is sluiced running?), permission
 * denied (which group to join), incompatible layout, not ready, registry
 * full. Costs a few microseconds; not for the hot path. */
int sluice_attach(const char* segment, sluice_client** out) SLUICE_NOEXCEPT;

/* Unregisters and unmaps; the sidecar settles what the client left open.
 * NULL is a no-op. */
void sluice_detach(sluice_client* client) SLUICE_NOEXCEPT;

/* Debits every limit the call matches at the worst case (input +
 * max output tokens), all or nothing, and fills *out. `attrs` may be NULL
 * when n is 0. hold_for_ns 0 holds the reservation while this process
 * lives; otherwise it is held that long from any process. Returns SLUICE_OK
 * whether admitted or rejected; SLUICE_ERR_INVALID_ARGUMENT for NULL
 * pointers (client, out, attrs with n > 0, a NULL name or value), and for a
 * call outside the SLUICE_MAX_* bounds (an empty or too long name or value,
 * too many attributes, too many tokens): then *out is filled too (admitted
 * 0, reason SLUICE_REASON_INVALID_ARGUMENT), nothing is charged, and
 * sluice_last_error says which bound. */
int sluice_reserve(sluice_client* client, const sluice_attr* attrs, size_t n, uint64_t input_tokens,
                   uint64_t max_output_tokens, uint64_t hold_for_ns,
                   sluice_decision* out) SLUICE_NOEXCEPT;

/* Settles reservation `id` at the actual usage; *cost_nusd (may be NULL)
 * receives the call's cost in nano-dollars. SLUICE_ERR_UNKNOWN_RESERVATION
 * when it never existed or is already settled (committed or cancelled:
 * nothing is charged twice); SLUICE_ERR_INVALID_ARGUMENT when a token count
 * passes SLUICE_MAX_TOKENS (the reservation stays open, unchanged). */
int sluice_commit(sluice_client* client, uint64_t id, uint64_t input_tokens, uint64_t output_tokens,
                  uint64_t* cost_nusd) SLUICE_NOEXCEPT;

/* sluice_commit, with what the model call reported (`report` may be NULL:
 * a plain commit, counted as unreported). SLUICE_ERR_INVALID_ARGUMENT,
 * naming the field, for an outcome not listed above, an http_status past
 * SLUICE_MAX_HTTP_STATUS or a model_version past
 * SLUICE_MAX_MODEL_VERSION_BYTES: the reservation stays open, unchanged. */
int sluice_commit_report(sluice_client* client, uint64_t id, uint64_t input_tokens,
                         uint64_t output_tokens, const sluice_call_report* report,
                         uint64_t* cost_nusd) SLUICE_NOEXCEPT;

/* Refunds reservation `id`. SLUICE_ERR_UNKNOWN_RESERVATION as for commit. */
int sluice_cancel(sluice_client* client, uint64_t id) SLUICE_NOEXCEPT;

/* Debits `output_tokens` more on the token and cost limits of live
 * reservation `id`, all or nothing, and fills *out; a refusal
 * (out->admitted == 0, still SLUICE_OK) leaves the reservation as it was. */
int sluice_extend(sluice_client* client, uint64_t id, uint64_t output_tokens,
                  sluice_extension* out) SLUICE_NOEXCEPT;

/* Name of limit `index` in the policy this client last saw; "" for -1, an
 * index out of range or a NULL client. Valid until the next call on this
 * client. */
const char* sluice_limit_name(sluice_client* client, int32_t index) SLUICE_NOEXCEPT;

/* The stable snake_case name of a reason ("rate_limited",
 * "budget_exhausted", ...), "unknown" for a value not listed above. Static. */
const char* sluice_reason_name(int32_t reason) SLUICE_NOEXCEPT;

/* The stable snake_case name of a status code ("ok", "not_found",
 * "unknown_reservation", ...), "unknown" for a value not listed. Static. */
const char* sluice_strerror(int status) SLUICE_NOEXCEPT;

/* The one-line message of the calling thread's last failed call ("" if
 * none), without a trailing newline. Valid until that thread's next failed
 * call. */
const char* sluice_last_error(void) SLUICE_NOEXCEPT;

#ifdef __cplusplus
} /* extern "C" */
#endif

#undef SLUICE_NOEXCEPT

#endif /* SLUICE_H_ */
