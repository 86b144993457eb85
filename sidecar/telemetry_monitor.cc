#include "telemetry_monitor.h"

#include <unistd.h>

#include <chrono>
#include <utility>

#include "group_access.h"
#include "sluice/inspect.h"

namespace sluice {

TelemetrySample sample_segment(const std::string& segment, std::uint64_t now_unix_ns) {
  TelemetrySample sample;
  sample.unix_ns = now_unix_ns;
  if (Result<std::vector<ModelCallRow>> models = list_model_calls(segment); models.ok()) {
    for (const ModelCallRow& row : models.value()) {
      TelemetrySample::Model& m = sample.models.emplace_back();
      m.name = row.model;
      for (std::size_t o = 0; o < m.calls.size() && o < row.calls.size(); ++o) {
        m.calls[o] = row.calls[o];
      }
      for (std::size_t b = 0; b < m.latency_hist.size() && b < row.latency_counts.size(); ++b) {
        m.latency_hist[b] = row.latency_counts[b];
      }
    }
  }
  Result<std::vector<KeyRow>> keys = list_keys(segment);
  sample.budgets_complete = keys.ok();
  if (keys.ok()) {
    for (const KeyRow& key : keys.value()) {
      if (key.rate) continue;
      sample.budgets.push_back({key.limit, key.attributes, key.limit_value, key.used,
                                key.window_start_unix, key.window_end_unix, key.unit});
    }
  }
  return sample;
}

TelemetryMonitor::TelemetryMonitor(const Policy& policy, LogFn log)
    : segment_(policy.segment.name), log_(std::move(log)), book_(policy.alerts) {
  if (!policy.segment.group.empty()) {
    // Checked when sluiced started: a group deleted since leaves the file to its owner.
    if (Result<gid_t> gid = lookup_group(policy.segment.group, "segment.group"); gid.ok()) {
      group_ = gid.value();
    }
  }
}

Result<std::unique_ptr<AlertWebhook>> TelemetryMonitor::start_webhook(const Policy& policy,
                                                                      const LogFn& log) {
  if (policy.alerts_webhook.empty()) return std::unique_ptr<AlertWebhook>();
  AlertWebhookOptions options;
  options.url = policy.alerts_webhook;
  options.segment = policy.segment.name;
  return AlertWebhook::start(std::move(options), log);
}

Result<std::unique_ptr<TelemetryMonitor>> TelemetryMonitor::start(const Policy& policy, LogFn log) {
  Result<std::unique_ptr<AlertWebhook>> webhook = start_webhook(policy, log);
  if (!webhook.ok()) return webhook.status();
  std::unique_ptr<TelemetryMonitor> m(new TelemetryMonitor(policy, std::move(log)));
  m->webhook_ = std::move(webhook.value());
  m->webhook_url_ = policy.alerts_webhook;
  return m;
}

TelemetryMonitor::~TelemetryMonitor() {
  {
    const std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TelemetryMonitor::run_every_second(std::function<std::uint64_t()> wall_clock) {
  thread_ = std::thread([this, wall_clock = std::move(wall_clock)] {
    std::unique_lock<std::mutex> lock(stop_mu_);
    while (!stopping_) {
      lock.unlock();
      tick(wall_clock());
      lock.lock();
      stop_cv_.wait_for(lock, std::chrono::nanoseconds(kSampleEveryNs),
                        [this] { return stopping_; });
    }
  });
}

Telemetry TelemetryMonitor::last() const {
  const std::lock_guard<std::mutex> lock(mu_);
  return last_;
}

std::optional<AlertWebhookStats> TelemetryMonitor::webhook_stats() const {
  const std::lock_guard<std::mutex> lock(mu_);
  if (!webhook_) return std::nullopt;
  return webhook_->stats();
}

Status TelemetryMonitor::replace(const Policy& policy) {
  const std::lock_guard<std::mutex> lock(mu_);
  if (policy.alerts_webhook != webhook_url_) {
    Result<std::unique_ptr<AlertWebhook>> webhook = start_webhook(policy, log_);
    if (!webhook.ok()) return webhook.status();
    webhook_ = std::move(webhook.value());  // the old one stops within one attempt's timeout
    webhook_url_ = policy.alerts_webhook;
  }
  book_.replace(policy.alerts);
  return Status::Ok();
}

void TelemetryMonitor::tick(std::uint64_t now_unix_ns) {
  const std::lock_guard<std::mutex> lock(mu_);
  if (last_sample_ns_ && now_unix_ns >= *last_sample_ns_ &&
      now_unix_ns - *last_sample_ns_ < kSampleEveryNs) {
    return;
  }
  last_sample_ns_ = now_unix_ns;
  history_.add(sample_segment(segment_, now_unix_ns));
  for (const AlertStatus& change : book_.evaluate(history_, now_unix_ns)) report(change);

  last_.unix_ns = now_unix_ns;
  last_.sidecar_pid = static_cast<std::uint64_t>(::getpid());
  last_.burn = history_.burn_rates(now_unix_ns);
  last_.alerts = book_.status();
  const Status written = write_telemetry(segment_, last_, group_);
  if (!written.ok() && !write_failed_) {
    log_("burn rates and alert states not written (status and metrics miss them): " +
         written.message());
  }
  write_failed_ = !written.ok();
}

void TelemetryMonitor::report(const AlertStatus& change) {
  log_("alert '" + change.name + "' " + (change.firing ? "firing: " : "resolved: ") +
       change.summary);
  if (!webhook_) return;
  webhook_->post({.name = change.name,
                  .firing = change.firing,
                  .labels = change.labels,
                  .summary = change.summary,
                  .starts_at_unix_ns = change.started_firing_unix_ns,
                  .ends_at_unix_ns = change.firing ? 0 : change.since_unix_ns});
}

}  // namespace sluice
