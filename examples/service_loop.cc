// A latency-critical service: many small calls, each asking Sluice first.
// Rejected calls are not sent; the service backs off for retry_after.
//
//   service_loop --segment sluice-demo --team search --seconds 10 --rps 120
//
// Prints one summary line: calls admitted and rejected (by reason) and the
// decision latency percentiles it saw.
#include <sluice/quota.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace {

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + ts.tv_nsec;
}

void sleep_ns(std::uint64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1'000'000'000ull), static_cast<long>(ns % 1'000'000'000ull)};
  nanosleep(&ts, nullptr);
}

const char* arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::puts("usage: service_loop [--segment NAME] [--team T] [--seconds S] [--rps N]");
    return 0;
  }
  const std::string segment = arg(argc, argv, "--segment", "sluice-demo");
  const std::string team = arg(argc, argv, "--team", "search");
  const double seconds = std::atof(arg(argc, argv, "--seconds", "10"));
  const double rps = std::atof(arg(argc, argv, "--rps", "120"));
  if (seconds <= 0 || rps <= 0) {
    std::fprintf(stderr, "service_loop: --seconds and --rps must be positive numbers\n");
    return 2;
  }

  sluice::Result<sluice::Client> client = sluice::Client::attach(segment);
  if (!client.ok()) {
    std::fprintf(stderr, "service_loop: %s\n", client.status().message().c_str());
    return 2;
  }
  const sluice::Attribute attrs[] = {
      {"team", team}, {"feature", "autocomplete"}, {"user", "u-1042"}, {"model", "gpt-4o-mini"}};
  std::vector<std::uint32_t> latency_ns;
  latency_ns.reserve(static_cast<std::size_t>(seconds * rps) + 16);
  std::map<std::string, int> rejected;
  int admitted = 0;
  const std::uint64_t interval = static_cast<std::uint64_t>(1e9 / rps);
  const std::uint64_t end = now_ns() + static_cast<std::uint64_t>(seconds * 1e9);
  std::uint64_t next = now_ns();
  while (now_ns() < end) {
    const std::uint64_t t0 = now_ns();
    sluice::Reservation r = client->reserve({attrs, 180, 60});
    latency_ns.push_back(static_cast<std::uint32_t>(now_ns() - t0));
    if (r.admitted()) {
      ++admitted;
      // The model answered (one call in 100 with a 503): settle the real usage
      // and say how the call went (simulated: 180..270 ms).
      const bool failed = admitted % 100 == 0;
      r.commit(175, 40 + admitted % 20,
               {failed ? sluice::Outcome::kProviderError : sluice::Outcome::kOk,
                /*latency_ns=*/180'000'000 + static_cast<std::uint64_t>(admitted % 10) * 10'000'000,
                /*ttft_ns=*/0, /*http_status=*/static_cast<std::uint16_t>(failed ? 503 : 200),
                /*model_version=*/"gpt-4o-mini-2024-07-18"});
    } else {
      ++rejected[sluice::to_string(r.decision().reason)];
    }
    next += interval;
    const std::uint64_t t = now_ns();
    if (next > t) sleep_ns(next - t);
  }
  std::sort(latency_ns.begin(), latency_ns.end());
  auto pct = [&](double p) {
    return latency_ns[static_cast<std::size_t>(p * static_cast<double>(latency_ns.size() - 1))];
  };
  std::printf("service_loop: team=%s admitted=%d", team.c_str(), admitted);
  for (const auto& [reason, n] : rejected) std::printf(" rejected[%s]=%d", reason.c_str(), n);
  // The loop sleeps between calls, so each decision starts with cold caches.
  std::printf(" decision_p50=%uns p99=%uns (cold caches)\n", pct(0.50), pct(0.99));
  return 0;
}
