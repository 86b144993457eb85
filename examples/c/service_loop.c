/* A latency-critical service in C, over libsluice (clients/c/sluice.h): many
 * small calls, each asking Sluice first. Rejected calls are not sent.
 *
 *   service_loop_c --segment sluice-demo --team search --seconds 10 --rps 120
 *   cc service_loop.c $(pkg-config --cflags --libs sluice)   # once installed
 *
 * Prints one summary line: calls admitted and rejected (by reason) and the
 * decision latency percentiles it saw. */
#define _POSIX_C_SOURCE 200809L /* NOLINT(bugprone-reserved-identifier): clock_gettime */

#include <sluice.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ns / 1000000000ull);
  ts.tv_nsec = (long)(ns % 1000000000ull);
  nanosleep(&ts, NULL);
}

static const char* arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

static int by_value(const void* a, const void* b) {
  const uint32_t x = *(const uint32_t*)a;
  const uint32_t y = *(const uint32_t*)b;
  return (x > y) - (x < y);
}

enum { kReasons = SLUICE_REASON_STORE_UNAVAILABLE + 1 };

int main(int argc, char** argv) {
  if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    puts("usage: service_loop_c [--segment NAME] [--team T] [--seconds S] [--rps N]");
    return 0;
  }
  const char* segment = arg(argc, argv, "--segment", "sluice-demo");
  const char* team = arg(argc, argv, "--team", "search");
  const double seconds = atof(arg(argc, argv, "--seconds", "10"));
  const double rps = atof(arg(argc, argv, "--rps", "120"));
  if (seconds <= 0 || rps <= 0) {
    fprintf(stderr, "service_loop_c: --seconds and --rps must be positive numbers\n");
    return 2;
  }

  sluice_client* client = NULL;
  if (sluice_attach(segment, &client) != SLUICE_OK) {
    fprintf(stderr, "service_loop_c: %s\n", sluice_last_error());
    return 2;
  }
  const sluice_attr attrs[] = {
      {"team", team}, {"feature", "autocomplete"}, {"user", "u-1042"}, {"model", "gpt-4o-mini"}};
  const size_t capacity = (size_t)(seconds * rps) + 16;
  uint32_t* latency_ns = malloc(capacity * sizeof *latency_ns);
  if (latency_ns == NULL) {
    fprintf(stderr, "service_loop_c: out of memory\n");
    sluice_detach(client);
    return 2;
  }
  size_t calls = 0;
  int admitted = 0;
  int rejected[kReasons] = {0};
  const uint64_t interval = (uint64_t)(1e9 / rps);
  const uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
  uint64_t next = now_ns();
  while (now_ns() < end && calls < capacity) {
    sluice_decision d;
    const uint64_t t0 = now_ns();
    sluice_reserve(client, attrs, 4, 180, 60, 0, &d);
    latency_ns[calls++] = (uint32_t)(now_ns() - t0);
    if (d.admitted) {
      ++admitted;
      /* the model answered: settle the real usage */
      sluice_commit(client, d.reservation_id, 175, 40 + (uint64_t)(admitted % 20), NULL);
    } else if (d.reason >= 0 && d.reason < kReasons) {
      ++rejected[d.reason];
    }
    next += interval;
    const uint64_t t = now_ns();
    if (next > t) sleep_ns(next - t);
  }
  sluice_detach(client);

  qsort(latency_ns, calls, sizeof *latency_ns, by_value);
  const uint32_t p50 = calls ? latency_ns[(size_t)(0.50 * (double)(calls - 1))] : 0;
  const uint32_t p99 = calls ? latency_ns[(size_t)(0.99 * (double)(calls - 1))] : 0;
  free(latency_ns);
  printf("service_loop_c: team=%s admitted=%d", team, admitted);
  for (int r = 0; r < kReasons; ++r) {
    if (rejected[r] > 0) printf(" rejected[%s]=%d", sluice_reason_name(r), rejected[r]);
  }
  /* The loop sleeps between calls, so each decision starts with cold caches. */
  printf(" decision_p50=%uns p99=%uns (cold caches)\n", (unsigned)p50, (unsigned)p99);
  return 0;
}
