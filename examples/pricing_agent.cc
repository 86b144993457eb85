// A pricing agent with a strict dollar budget: it reserves the worst case of
// each call, streams the answer in chunks, asks Sluice for more as chunks
// arrive, and stops the stream the moment the budget is gone. It quits when
// a new call can no longer be afforded.
//
//   pricing_agent --segment sluice-demo --max-calls 10000 --pace-ms 20
#include <sluice/quota.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

const char* arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

void sleep_ms(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1'000'000L};
  nanosleep(&ts, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::puts("usage: pricing_agent [--segment NAME] [--max-calls N] [--pace-ms MS]");
    return 0;
  }
  const std::string segment = arg(argc, argv, "--segment", "sluice-demo");
  const long max_calls = std::atol(arg(argc, argv, "--max-calls", "10000"));
  const long pace_ms = std::atol(arg(argc, argv, "--pace-ms", "20"));
  if (max_calls <= 0 || pace_ms < 0) {
    std::fprintf(stderr,
                 "pricing_agent: --max-calls must be positive and --pace-ms not negative\n");
    return 2;
  }
  sluice::Result<sluice::Client> client = sluice::Client::attach(segment);
  if (!client.ok()) {
    std::fprintf(stderr, "pricing_agent: %s\n", client.status().message().c_str());
    return 2;
  }
  const sluice::Attribute attrs[] = {
      {"team", "pricing"}, {"feature", "quote-agent"}, {"user", "agent-7"}, {"model", "gpt-4o"}};
  std::uint64_t spent_nusd = 0;
  long calls = 0, cut_off = 0, rate_waits = 0;
  const char* stop = "max calls reached";
  while (calls < max_calls) {
    sluice::Reservation r = client->reserve({attrs, /*input=*/1500, /*max_output=*/800});
    if (!r.admitted()) {
      const sluice::Decision& d = r.decision();
      if (d.reason == sluice::Reason::kRateLimited) {  // slow down, then go on
        ++rate_waits;
        sleep_ms(static_cast<long>(d.retry_after_ns / 1'000'000) + 1);
        continue;
      }
      stop = sluice::to_string(d.reason);
      break;
    }
    // Stream: the first 800 tokens were reserved; longer answers ask for more.
    std::uint64_t streamed = 800;
    const std::uint64_t wanted = 800 + static_cast<std::uint64_t>(calls % 4) * 400;
    bool budget_gone = false;
    while (streamed < wanted) {
      if (!r.extend(400).admitted) {
        budget_gone = true;  // stop the stream here: the budget would be overshot
        break;
      }
      streamed += 400;
    }
    cut_off += budget_gone;
    // How the call went, as the provider client measured it (simulated here:
    // first token after 350 ms, then 1.5 ms a token).
    const sluice::CallReport report{budget_gone ? sluice::Outcome::kCutOff : sluice::Outcome::kOk,
                                    /*latency_ns=*/350'000'000 + streamed * 1'500'000,
                                    /*ttft_ns=*/350'000'000,
                                    /*http_status=*/200, /*model_version=*/"gpt-4o-2024-08-06"};
    spent_nusd += r.commit(1480, streamed, report).cost_nusd;
    ++calls;
    if (pace_ms > 0) sleep_ms(pace_ms);
  }
  std::printf(
      "pricing_agent: calls=%ld spent=$%.6f streams_cut_off=%ld rate_waits=%ld stopped=%s\n", calls,
      static_cast<double>(spent_nusd) / 1e9, cut_off, rate_waits, stop);
  return 0;
}
