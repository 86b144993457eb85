// sluiced's eye on the calls: about once a second it samples the segment
// (per-model call counts and latency, each budget key's spend), keeps the
// recent history, evaluates the policy's alerts on it, logs each alert that
// starts or stops firing (once), posts the change to the policy's
// alerts_webhook (never waiting on it), and writes burn rates and alert
// states to the telemetry file (sluice/telemetry.h) for `sluice status`,
// `sluice top` and the metrics endpoint.
//
//   auto monitor = TelemetryMonitor::start(policy, log);
//   if (!monitor.ok()) return monitor.status();
//   (*monitor)->run_every_second(wall_clock);  // sluiced: a thread of its own ticks it
//   (*monitor)->tick(wall_now_ns);             // or ticked by hand (tests); samples when due
//   (*monitor)->replace(new_policy);           // on reload
//
// A sample reads every cell of the key table (about 75 ms for 50,000 keys),
// which is why sluiced ticks it on a thread of its own rather than its
// heartbeat's. Its members may be called from any thread.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "alert_rules.h"
#include "alert_webhook.h"
#include "sluice/policy.h"
#include "sluice/status.h"
#include "sluice/telemetry.h"

namespace sluice {

// What the segment `segment` holds now, as alert_rules reads it; unix_ns is
// `now_unix_ns`. Models and budgets are empty if the segment cannot be read.
TelemetrySample sample_segment(const std::string& segment, std::uint64_t now_unix_ns);

class TelemetryMonitor {
 public:
  using LogFn = std::function<void(const std::string&)>;
  static constexpr std::uint64_t kSampleEveryNs = 1'000'000'000;

  // Starts the webhook's thread when the policy has alerts_webhook; a bad
  // URL fails the start (one line).
  static Result<std::unique_ptr<TelemetryMonitor>> start(const Policy& policy, LogFn log);

  // Stops the thread, if any.
  ~TelemetryMonitor();
  TelemetryMonitor(const TelemetryMonitor&) = delete;
  TelemetryMonitor& operator=(const TelemetryMonitor&) = delete;

  // Starts a thread that ticks at `wall_clock()` (Unix ns) every second
  // until the monitor is destroyed.
  void run_every_second(std::function<std::uint64_t()> wall_clock);
  // Samples, evaluates and writes when kSampleEveryNs has passed since the
  // last sample (or the clock went back); otherwise does nothing.
  void tick(std::uint64_t now_unix_ns);
  // A reloaded policy: its alerts replace the old ones (unchanged ones keep
  // their state), and a changed alerts_webhook is started. On error the
  // running alerts and webhook are kept.
  Status replace(const Policy& policy);

  // The last evaluation.
  Telemetry last() const;
  // The webhook's counts; none without alerts_webhook.
  std::optional<AlertWebhookStats> webhook_stats() const;

 private:
  TelemetryMonitor(const Policy& policy, LogFn log);
  static Result<std::unique_ptr<AlertWebhook>> start_webhook(const Policy& policy,
                                                             const LogFn& log);
  void report(const AlertStatus& change);

  mutable std::mutex mu_;  // everything below; held for a whole tick
  std::string segment_;
  std::optional<gid_t> group_;
  LogFn log_;
  TelemetryHistory history_;
  AlertBook book_;
  std::string webhook_url_;
  std::unique_ptr<AlertWebhook> webhook_;
  std::optional<std::uint64_t> last_sample_ns_;
  Telemetry last_;
  bool write_failed_ = false;  // logged once until a write succeeds again

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace sluice
