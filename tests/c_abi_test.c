/* The C ABI (clients/c/sluice.h) from C99, against a running sluiced whose
 * segment is argv[1] and whose policy is c_abi_wrapper_test.cc's kPolicy:
 *
 *   gpt-4o at $2.50 / $10.00 per million tokens (2500 / 10000 nusd a token)
 *   pricing-usd      team pricing   $0.05 a day (50,000,000 nusd)
 *   search-requests  team search    1 request a second, burst 2
 *
 * Prints each failed check with its line, then one summary line; exits 0
 * only when every check passed. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sluice.h"

static int checks = 0;
static int failures = 0;

static void check(int ok, const char* what, int line) {
  ++checks;
  if (!ok) {
    ++failures;
    printf("c_abi_test.c:%d: failed: %s (last error on this thread: %s)\n", line, what,
           sluice_last_error());
  }
}

static void check_u64(uint64_t got, uint64_t want, const char* what, int line) {
  ++checks;
  if (got != want) {
    ++failures;
    printf("c_abi_test.c:%d: failed: %s: got %" PRIu64 ", want %" PRIu64 "\n", line, what, got,
           want);
  }
}

static void check_str(const char* got, const char* want, const char* what, int line) {
  ++checks;
  if (got == NULL || strcmp(got, want) != 0) {
    ++failures;
    printf("c_abi_test.c:%d: failed: %s: got \"%s\", want \"%s\"\n", line, what,
           got == NULL ? "(null)" : got, want);
  }
}

#define CHECK(cond) check((cond), #cond, __LINE__)
#define CHECK_U64(got, want) check_u64((got), (want), #got, __LINE__)
#define CHECK_STR(got, want) check_str((got), (want), #got, __LINE__)
#define CONTAINS(haystack, needle) (strstr((haystack), (needle)) != NULL)

static const uint64_t kSecond = 1000000000ull;
static const uint64_t kDayAndDst = 25ull * 3600ull * 1000000000ull;

static const sluice_attr kPricing[] = {
    {"team", "pricing"}, {"feature", "quote-agent"}, {"model", "gpt-4o"}};
static const sluice_attr kSearch[] = {{"team", "search"}, {"model", "gpt-4o"}};

static void names_are_stable_snake_case(void) {
  CHECK_STR(sluice_reason_name(SLUICE_REASON_NONE), "none");
  CHECK_STR(sluice_reason_name(SLUICE_REASON_RATE_LIMITED), "rate_limited");
  CHECK_STR(sluice_reason_name(SLUICE_REASON_BUDGET_EXHAUSTED), "budget_exhausted");
  CHECK_STR(sluice_reason_name(SLUICE_REASON_MODEL_NOT_ALLOWED), "model_not_allowed");
  CHECK_STR(sluice_reason_name(SLUICE_REASON_UNKNOWN_MODEL_PRICE), "unknown_model_price");
  CHECK_STR(sluice_reason_name(SLUICE_REASON_TOO_MANY_RESERVATIONS), "too_many_reservations");
  CHECK_STR(sluice_reason_name(SLUICE_REASON_INVALID_ARGUMENT), "invalid_argument");
  CHECK_STR(sluice_reason_name(SLUICE_REASON_STORE_UNAVAILABLE), "store_unavailable");
  CHECK_STR(sluice_reason_name(-1), "unknown");
  CHECK_STR(sluice_reason_name(SLUICE_REASON_STORE_UNAVAILABLE + 1), "unknown");
  CHECK_STR(sluice_strerror(SLUICE_OK), "ok");
  CHECK_STR(sluice_strerror(SLUICE_ERR_NOT_FOUND), "not_found");
  CHECK_STR(sluice_strerror(SLUICE_ERR_UNKNOWN_RESERVATION), "unknown_reservation");
  CHECK_STR(sluice_strerror(SLUICE_ERR_INTERNAL), "internal");
  CHECK_STR(sluice_strerror(42), "unknown");
}

static void attach_errors_are_one_line_naming_the_fix(const char* segment) {
  static char sentinel;
  sluice_client* client = (sluice_client*)(void*)&sentinel; /* attach resets it to NULL */
  char missing[256];
  snprintf(missing, sizeof missing, "%s-missing", segment);
  CHECK(sluice_attach(missing, &client) == SLUICE_ERR_NOT_FOUND);
  CHECK(client == NULL);
  CHECK(CONTAINS(sluice_last_error(), missing));
  CHECK(CONTAINS(sluice_last_error(), "is sluiced running?"));
  CHECK(CONTAINS(sluice_last_error(), "sluiced --config"));
  CHECK(strchr(sluice_last_error(), '\n') == NULL);

  CHECK(sluice_attach(NULL, &client) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK_STR(sluice_last_error(), "sluice_attach: segment is NULL");
  CHECK(sluice_attach(segment, NULL) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK_STR(sluice_last_error(), "sluice_attach: out is NULL");
  sluice_detach(NULL); /* a no-op */
}

static void admitted_call_commits_at_its_exact_cost(sluice_client* c) {
  sluice_decision d;
  CHECK(sluice_reserve(c, kPricing, 3, 1000, 1000, 0, &d) == SLUICE_OK);
  CHECK(d.admitted == 1);
  CHECK(d.reason == SLUICE_REASON_NONE);
  CHECK(d.limit_index == -1);
  CHECK(d.reservation_id != 0);
  CHECK_U64(d.estimated_cost_nusd, 12500000); /* 1000 * 2500 + 1000 * 10000 */
  uint64_t cost = 0;
  CHECK(sluice_commit(c, d.reservation_id, 1000, 200, &cost) == SLUICE_OK);
  CHECK_U64(cost, 4500000); /* 1000 * 2500 + 200 * 10000: $0.0045 */

  /* Settled once: a second commit, a cancel or an extend knows it no more. */
  CHECK(sluice_commit(c, d.reservation_id, 1000, 200, &cost) == SLUICE_ERR_UNKNOWN_RESERVATION);
  char id[32];
  snprintf(id, sizeof id, "unknown reservation %" PRIu64, d.reservation_id);
  CHECK(CONTAINS(sluice_last_error(), "sluice_commit"));
  CHECK(CONTAINS(sluice_last_error(), id));
  CHECK(sluice_cancel(c, d.reservation_id) == SLUICE_ERR_UNKNOWN_RESERVATION);
  CHECK(CONTAINS(sluice_last_error(), "sluice_cancel"));
  sluice_extension e;
  CHECK(sluice_extend(c, d.reservation_id, 10, &e) == SLUICE_ERR_UNKNOWN_RESERVATION);
  CHECK(CONTAINS(sluice_last_error(), "sluice_extend"));
}

/* $0.0455 left of $0.05: 4550 output tokens. */
static void cancel_refunds_and_extend_is_refused_when_the_budget_is_gone(sluice_client* c) {
  sluice_decision whole, more;
  CHECK(sluice_reserve(c, kPricing, 3, 0, 4550, 0, &whole) == SLUICE_OK);
  CHECK(whole.admitted == 1);
  CHECK_U64(whole.estimated_cost_nusd, 45500000);
  CHECK(sluice_reserve(c, kPricing, 3, 0, 1, 0, &more) == SLUICE_OK);
  CHECK(more.admitted == 0);
  CHECK(more.reason == SLUICE_REASON_BUDGET_EXHAUSTED);

  CHECK(sluice_cancel(c, whole.reservation_id) == SLUICE_OK);
  CHECK(sluice_reserve(c, kPricing, 3, 0, 4550, 0, &whole) == SLUICE_OK);
  CHECK(whole.admitted == 1); /* the cancel gave all of it back */

  sluice_extension e;
  CHECK(sluice_extend(c, whole.reservation_id, 1, &e) == SLUICE_OK);
  CHECK(e.admitted == 0);
  CHECK_STR(sluice_reason_name(e.reason), "budget_exhausted");
  CHECK_STR(sluice_limit_name(c, e.limit_index), "pricing-usd");
  CHECK(e.retry_after_ns > 0 && e.retry_after_ns <= kDayAndDst);
  /* The refusal left the reservation as it was: it still commits. */
  uint64_t cost = 0;
  CHECK(sluice_commit(c, whole.reservation_id, 0, 0, &cost) == SLUICE_OK);
  CHECK_U64(cost, 0);
}

static void extend_debits_more_while_the_budget_lasts(sluice_client* c) {
  sluice_decision d;
  CHECK(sluice_reserve(c, kPricing, 3, 0, 1000, 0, &d) == SLUICE_OK);
  CHECK(d.admitted == 1);
  sluice_extension e;
  CHECK(sluice_extend(c, d.reservation_id, 1000, &e) == SLUICE_OK);
  CHECK(e.admitted == 1);
  CHECK(e.reason == SLUICE_REASON_NONE);
  CHECK(e.limit_index == -1);
  uint64_t cost = 0;
  CHECK(sluice_commit(c, d.reservation_id, 0, 2000, &cost) == SLUICE_OK);
  CHECK_U64(cost, 20000000);
}

/* $0.0255 left: 2550 output tokens pass, 2551 do not. */
static void budget_rejection_names_limit_reason_and_retry(sluice_client* c) {
  sluice_decision d;
  CHECK(sluice_reserve(c, kPricing, 3, 0, 2551, 0, &d) == SLUICE_OK);
  CHECK(d.admitted == 0);
  CHECK(d.reservation_id == 0);
  CHECK_STR(sluice_reason_name(d.reason), "budget_exhausted");
  CHECK_STR(sluice_limit_name(c, d.limit_index), "pricing-usd");
  CHECK(d.retry_after_ns > 0 && d.retry_after_ns <= kDayAndDst);

  CHECK(sluice_reserve(c, kPricing, 3, 0, 2550, 0, &d) == SLUICE_OK);
  CHECK(d.admitted == 1);
  CHECK(sluice_cancel(c, d.reservation_id) == SLUICE_OK);
}

static void rate_rejection_says_when_to_retry(sluice_client* c) {
  sluice_decision d;
  uint64_t cost = 0;
  for (int i = 0; i < 2; ++i) { /* the burst */
    CHECK(sluice_reserve(c, kSearch, 2, 10, 10, 0, &d) == SLUICE_OK);
    CHECK(d.admitted == 1);
    CHECK(sluice_commit(c, d.reservation_id, 10, 10, &cost) == SLUICE_OK);
    CHECK_U64(cost, 125000);
  }
  CHECK(sluice_reserve(c, kSearch, 2, 10, 10, 0, &d) == SLUICE_OK);
  CHECK(d.admitted == 0);
  CHECK(d.reason == SLUICE_REASON_RATE_LIMITED);
  CHECK_STR(sluice_reason_name(d.reason), "rate_limited");
  CHECK_STR(sluice_limit_name(c, d.limit_index), "search-requests");
  CHECK(d.retry_after_ns > 0 && d.retry_after_ns <= kSecond);
}

static void rejections_that_are_decisions_not_errors(sluice_client* c) {
  const sluice_attr mystery[] = {{"team", "pricing"}, {"model", "mystery"}};
  sluice_decision d;
  CHECK(sluice_reserve(c, mystery, 2, 1, 1, 0, &d) == SLUICE_OK);
  CHECK(d.admitted == 0);
  CHECK_STR(sluice_reason_name(d.reason), "unknown_model_price");
}

static void held_reservation_settles_from_another_client(sluice_client* c, const char* segment) {
  sluice_decision d;
  CHECK(sluice_reserve(c, kPricing, 3, 1, 1, 60 * kSecond, &d) == SLUICE_OK);
  CHECK(d.admitted == 1);
  sluice_client* other = NULL;
  CHECK(sluice_attach(segment, &other) == SLUICE_OK);
  uint64_t cost = 0;
  CHECK(sluice_commit(other, d.reservation_id, 1, 1, &cost) == SLUICE_OK);
  CHECK_U64(cost, 12500);
  sluice_detach(other);
}

static void null_and_out_of_range_arguments_are_errors(sluice_client* c) {
  sluice_decision d;
  sluice_extension e;
  uint64_t cost = 0;
  CHECK(sluice_reserve(NULL, kPricing, 3, 1, 1, 0, &d) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK_STR(sluice_last_error(), "sluice_reserve: client is NULL");
  CHECK(sluice_reserve(c, kPricing, 3, 1, 1, 0, NULL) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK_STR(sluice_last_error(), "sluice_reserve: out is NULL");
  CHECK(sluice_reserve(c, NULL, 1, 1, 1, 0, &d) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK_STR(sluice_last_error(), "sluice_reserve: attrs is NULL");
  const sluice_attr no_value[] = {{"team", "pricing"}, {"model", NULL}};
  CHECK(sluice_reserve(c, no_value, 2, 1, 1, 0, &d) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK_STR(sluice_last_error(), "sluice_reserve: attrs[1].value is NULL");
  CHECK(sluice_commit(NULL, 1, 1, 1, &cost) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(sluice_cancel(NULL, 1) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(sluice_extend(NULL, 1, 1, &e) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(sluice_extend(c, 1, 1, NULL) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK_STR(sluice_limit_name(NULL, 0), "");
  CHECK_STR(sluice_limit_name(c, 64), "");

  CHECK(sluice_commit(c, 123456789, 1, 1, &cost) == SLUICE_ERR_UNKNOWN_RESERVATION);
  CHECK(sluice_cancel(c, 0) == SLUICE_ERR_UNKNOWN_RESERVATION);
  CHECK(sluice_extend(c, 987654321, 1, &e) == SLUICE_ERR_UNKNOWN_RESERVATION);

  /* Token counts past the engine's range leave the reservation open. */
  CHECK(sluice_reserve(c, kPricing, 3, 1, 1, 0, &d) == SLUICE_OK);
  CHECK(d.admitted == 1);
  CHECK(sluice_commit(c, d.reservation_id, UINT64_MAX, 0, &cost) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(CONTAINS(sluice_last_error(), "input_tokens 18446744073709551615 is more than 4294967296"));
  CHECK(sluice_commit(c, d.reservation_id, 1, 1, NULL) == SLUICE_OK); /* cost may be NULL */
}

/* A call outside the SLUICE_MAX_* bounds is an error naming the bound, with
 * the decision filled in as a rejection; team "bulk" has room for all of it,
 * so nothing else could refuse these calls. */
static void calls_outside_the_bounds_are_errors_naming_the_bound(sluice_client* c) {
  static const sluice_attr kBulk[] = {{"team", "bulk"}, {"model", "gpt-4o"}};
  sluice_decision d;
  memset(&d, 0xff, sizeof d);
  sluice_attr many[SLUICE_MAX_ATTRIBUTES + 1];
  for (int i = 0; i < SLUICE_MAX_ATTRIBUTES + 1; ++i) many[i] = kBulk[0];
  CHECK(sluice_reserve(c, many, 17, 1, 1, 0, &d) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK_STR(sluice_last_error(),
            "sluice_reserve: 17 attributes, at most 16: leave out those no limit matches; "
            "nothing was charged");
  CHECK(d.admitted == 0);
  CHECK(d.reservation_id == 0);
  CHECK_STR(sluice_reason_name(d.reason), "invalid_argument");
  CHECK_STR(sluice_limit_name(c, d.limit_index), "");

  char value[SLUICE_MAX_ATTRIBUTE_VALUE_BYTES + 2];
  memset(value, 'v', sizeof value - 1);
  value[sizeof value - 1] = '\0'; /* 256 bytes */
  const sluice_attr long_value[] = {{"team", "bulk"}, {"model", "gpt-4o"}, {"user", value}};
  CHECK(sluice_reserve(c, long_value, 3, 1, 1, 0, &d) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK_STR(sluice_last_error(),
            "sluice_reserve: attribute 'user' has a value of 256 bytes, at most 255; pass a "
            "shorter value (e.g. an id or a hash); nothing was charged");
  value[SLUICE_MAX_ATTRIBUTE_VALUE_BYTES] = '\0'; /* 255 bytes: taken */
  CHECK(sluice_reserve(c, long_value, 3, 1, 1, 0, &d) == SLUICE_OK);
  CHECK(d.admitted == 1);
  CHECK(sluice_cancel(c, d.reservation_id) == SLUICE_OK);

  const sluice_attr empty_value[] = {{"team", ""}};
  CHECK(sluice_reserve(c, empty_value, 1, 1, 1, 0, &d) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(CONTAINS(sluice_last_error(), "attribute 'team' has an empty value"));
  const sluice_attr empty_name[] = {{"team", "bulk"}, {"", "x"}};
  CHECK(sluice_reserve(c, empty_name, 2, 1, 1, 0, &d) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(CONTAINS(sluice_last_error(), "attribute 2 has an empty name"));
  CHECK(sluice_reserve(c, kBulk, 2, SLUICE_MAX_TOKENS + 1, 0, 0, &d) ==
        SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(CONTAINS(sluice_last_error(), "input_tokens 4294967297 is more than 4294967296"));
  CHECK(sluice_reserve(c, kBulk, 2, 0, UINT64_MAX, 0, &d) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(CONTAINS(sluice_last_error(), "max_output_tokens 18446744073709551615 is more than"));
  CHECK(strchr(sluice_last_error(), '\n') == NULL);

  /* Settling: out-of-range counts leave the reservation open; a settled one
   * is unknown to every later commit, cancel and extend. */
  uint64_t cost = 0;
  sluice_extension e;
  CHECK(sluice_reserve(c, kBulk, 2, 10, 10, 0, &d) == SLUICE_OK);
  CHECK(d.admitted == 1);
  CHECK(sluice_commit(c, d.reservation_id, 1, SLUICE_MAX_TOKENS + 1, &cost) ==
        SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(CONTAINS(sluice_last_error(), "output_tokens 4294967297 is more than 4294967296"));
  CHECK(CONTAINS(sluice_last_error(), "is unchanged and still open"));
  CHECK(sluice_extend(c, d.reservation_id, SLUICE_MAX_TOKENS, &e) == SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(CONTAINS(sluice_last_error(), "would pass 4294967296 output tokens"));
  CHECK(sluice_commit(c, d.reservation_id, 10, 10, &cost) == SLUICE_OK);
  CHECK_U64(cost, 125000);
  CHECK(sluice_commit(c, d.reservation_id, 10, 10, &cost) == SLUICE_ERR_UNKNOWN_RESERVATION);
  CHECK(CONTAINS(sluice_last_error(), "nothing was charged"));
  CHECK(sluice_cancel(c, d.reservation_id) == SLUICE_ERR_UNKNOWN_RESERVATION);
  CHECK(sluice_extend(c, d.reservation_id, 1, &e) == SLUICE_ERR_UNKNOWN_RESERVATION);
  CHECK(sluice_reserve(c, kBulk, 2, 10, 10, 0, &d) == SLUICE_OK);
  CHECK(sluice_cancel(c, d.reservation_id) == SLUICE_OK);
  CHECK(sluice_commit(c, d.reservation_id, 1, 1, &cost) == SLUICE_ERR_UNKNOWN_RESERVATION);
  CHECK(sluice_cancel(c, d.reservation_id) == SLUICE_ERR_UNKNOWN_RESERVATION);
}

/* A commit may say how the model call went; c_abi_wrapper_test.cc finds
 * these two in the segment's gpt-4o call stats (ok at 812.5 ms, first
 * token at 95 ms; a timeout at 30 s). A report out of range is refused
 * naming the field, and the reservation stays open. */
static void commit_report_says_how_the_call_went(sluice_client* c) {
  static const sluice_attr kBulk[] = {{"team", "bulk"}, {"model", "gpt-4o"}};
  sluice_call_report report;
  memset(&report, 0, sizeof report);
  report.outcome = SLUICE_OUTCOME_OK;
  report.latency_ns = 812500000;
  report.ttft_ns = 95000000;
  report.http_status = 200;
  report.model_version = "gpt-4o-2024-08-06";
  sluice_decision d;
  uint64_t cost = 0;
  CHECK(sluice_reserve(c, kBulk, 2, 100, 100, 0, &d) == SLUICE_OK);
  CHECK(d.admitted == 1);
  CHECK(sluice_commit_report(c, d.reservation_id, 100, 50, &report, &cost) == SLUICE_OK);
  CHECK_U64(cost, 750000); /* 100 * 2500 + 50 * 10000 */
  CHECK(sluice_commit_report(c, d.reservation_id, 100, 50, &report, &cost) ==
        SLUICE_ERR_UNKNOWN_RESERVATION);
  CHECK(CONTAINS(sluice_last_error(), "sluice_commit_report: unknown reservation"));

  char version[SLUICE_MAX_MODEL_VERSION_BYTES + 2];
  memset(version, 'v', sizeof version - 1);
  version[sizeof version - 1] = '\0'; /* 129 bytes */
  CHECK(sluice_reserve(c, kBulk, 2, 100, 100, 0, &d) == SLUICE_OK);
  report.outcome = SLUICE_OUTCOME_CUT_OFF + 1;
  CHECK(sluice_commit_report(c, d.reservation_id, 1, 1, &report, &cost) ==
        SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(CONTAINS(sluice_last_error(),
                 "sluice_commit_report: outcome 6 is not a SLUICE_OUTCOME_* value; reservation"));
  CHECK(CONTAINS(sluice_last_error(), "is unchanged and still open"));
  report.outcome = -1;
  CHECK(sluice_commit_report(c, d.reservation_id, 1, 1, &report, &cost) ==
        SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(CONTAINS(sluice_last_error(), "outcome -1 is not a SLUICE_OUTCOME_* value"));
  report.outcome = SLUICE_OUTCOME_TIMEOUT;
  report.http_status = 65736; /* 200 once narrowed to 16 bits: must not pass as 200 */
  CHECK(sluice_commit_report(c, d.reservation_id, 1, 1, &report, &cost) ==
        SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(CONTAINS(sluice_last_error(), "http_status 65736 is more than 999"));
  report.http_status = SLUICE_MAX_HTTP_STATUS + 1;
  CHECK(sluice_commit_report(c, d.reservation_id, 1, 1, &report, &cost) ==
        SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(CONTAINS(sluice_last_error(), "http_status 1000 is more than 999"));
  report.http_status = 0;
  report.model_version = version;
  CHECK(sluice_commit_report(c, d.reservation_id, 1, 1, &report, &cost) ==
        SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(CONTAINS(sluice_last_error(), "model_version is longer than 128 bytes"));
  CHECK(strchr(sluice_last_error(), '\n') == NULL);
  CHECK(sluice_commit_report(c, d.reservation_id, SLUICE_MAX_TOKENS + 1, 1, &report, &cost) ==
        SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(CONTAINS(sluice_last_error(), "model_version is longer")); /* the report comes first */
  report.model_version = NULL;                                     /* not reported */
  CHECK(sluice_commit_report(c, d.reservation_id, SLUICE_MAX_TOKENS + 1, 1, &report, &cost) ==
        SLUICE_ERR_INVALID_ARGUMENT);
  CHECK(CONTAINS(sluice_last_error(),
                 "sluice_commit_report: input_tokens 4294967297 is more than 4294967296"));
  CHECK(sluice_commit_report(NULL, d.reservation_id, 1, 1, &report, &cost) ==
        SLUICE_ERR_INVALID_ARGUMENT);
  CHECK_STR(sluice_last_error(), "sluice_commit_report: client is NULL");
  /* Still open, still at its estimate: it commits, as a timeout after 30 s. */
  report.latency_ns = 30 * kSecond;
  report.ttft_ns = 0;
  CHECK(sluice_commit_report(c, d.reservation_id, 100, 0, &report, &cost) == SLUICE_OK);
  CHECK_U64(cost, 250000);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: c_abi_test SEGMENT (a sluiced running c_abi_wrapper_test's policy)\n");
    return 2;
  }
  const char* segment = argv[1];
  names_are_stable_snake_case();
  attach_errors_are_one_line_naming_the_fix(segment);

  sluice_client* c = NULL;
  if (sluice_attach(segment, &c) != SLUICE_OK) {
    printf("c_abi_test: cannot attach: %s\n", sluice_last_error());
    return 1;
  }
  /* In this order: each leaves the pricing budget where the next expects. */
  admitted_call_commits_at_its_exact_cost(c);
  cancel_refunds_and_extend_is_refused_when_the_budget_is_gone(c);
  extend_debits_more_while_the_budget_lasts(c);
  budget_rejection_names_limit_reason_and_retry(c);
  rate_rejection_says_when_to_retry(c);
  rejections_that_are_decisions_not_errors(c);
  held_reservation_settles_from_another_client(c, segment);
  null_and_out_of_range_arguments_are_errors(c);
  calls_outside_the_bounds_are_errors_naming_the_bound(c);
  commit_report_says_how_the_call_went(c);
  sluice_detach(c);

  if (failures > 0) {
    printf("c_abi_test: %d of %d checks failed\n", failures, checks);
    return 1;
  }
  printf("c_abi_test: all %d checks passed\n", checks);
  return 0;
}
