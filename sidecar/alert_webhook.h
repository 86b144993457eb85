// Delivers alert state changes to the policy's `alerts_webhook` as
// Prometheus Alertmanager webhook messages (version "4"), from one thread of
// its own: post() only queues, so a slow, dead or hanging receiver never
// holds up the sidecar.
//
//   AlertWebhookOptions options;
//   options.url = "http://127.0.0.1:9095/alerts";  // the policy's alerts_webhook
//   options.segment = "prod";
//   auto hook = AlertWebhook::start(options, log);
//   if (!hook.ok()) return hook.status();  // one line: the bad URL and what to write
//   (*hook)->post(change);                 // queued; returns at once
//   (*hook)->drain(std::chrono::seconds(2));  // optional, before shutdown
//   hook->reset();  // stops within about one attempt's timeout
//
// Delivery: the thread takes what is queued (up to max_alerts_per_message
// changes, oldest first) and POSTs it as ONE message; a 2xx answer delivers
// it. Anything else is a failed attempt, retried after a backoff that starts
// at backoff_ms and doubles up to max_backoff_ms; after `attempts` failures
// the changes are dropped and one line is logged. Messages go out in the
// order they were posted; the next waits until the one before is delivered
// or dropped. When more than max_queued changes wait, the oldest is dropped.
// Counts are in alert changes, except failed_attempts and messages_sent.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sluice/status.h"

namespace sluice {

// One alert's state change, as the sidecar's alert evaluator reports it.
struct AlertChange {
  std::string name{};                           // labels.alertname: the alert's name in the policy
  bool firing = false;                          // false: resolved
  std::map<std::string, std::string> labels{};  // more labels, e.g. {"budget", "pricing-daily-usd"}
  std::string summary{};                        // annotations.summary: one line for people
  std::uint64_t starts_at_unix_ns = 0;          // when it started firing; 0: when posted
  std::uint64_t ends_at_unix_ns = 0;            // when it resolved; 0: when posted (if resolved)
};

struct AlertWebhookOptions {
  std::string url{};                // http://HOST:PORT/PATH; the port is required
  std::uint64_t timeout_ms = 2000;  // connect, read and write timeout of each attempt
  int attempts = 5;                 // per message, then it is dropped and counted
  std::uint64_t backoff_ms = 250;   // wait after the first failed attempt, doubling
  std::uint64_t max_backoff_ms = 4000;
  std::size_t max_queued = 256;  // changes waiting; when full the OLDEST is dropped
  std::size_t max_alerts_per_message = 32;
  std::string segment{};  // the label "segment" of every alert, and the message's group
};

struct AlertWebhookStats {
  std::uint64_t queued = 0;           // changes post() has accepted, in total
  std::uint64_t sent = 0;             // changes in messages answered 2xx
  std::uint64_t failed_attempts = 0;  // POSTs that failed (connection error or not 2xx)
  std::uint64_t dropped = 0;          // changes given up on: queue full or attempts used up
  std::uint64_t pending = 0;          // changes waiting or being delivered now
  std::uint64_t messages_sent = 0;    // POSTs answered 2xx
  std::string last_error{};           // of the last failed attempt; empty if none failed
};

class AlertWebhook {
 public:
  using LogFn = std::function<void(const std::string&)>;

  // Validates the options (a bad URL is one line naming it and the form to
  // write) and starts the delivery thread. `log` gets one line per message
  // given up on, when the queue starts dropping (once until it empties) and
  // at destruction if changes were left; it is called from the thread, from
  // post() and from the destructor, never after the destructor has returned.
  static Result<std::unique_ptr<AlertWebhook>> start(AlertWebhookOptions options, LogFn log);
  // Stops the thread: an attempt in progress is cut short, a backoff is not
  // waited out. Returns within about timeout_ms even if the receiver hangs.
  // Changes still undelivered are logged as one line.
  ~AlertWebhook();
  AlertWebhook(const AlertWebhook&) = delete;
  AlertWebhook& operator=(const AlertWebhook&) = delete;

  // Queues `change` and wakes the thread; never waits on the network.
  void post(AlertChange change);
  AlertWebhookStats stats() const;
  // Waits until nothing is waiting or being delivered, or `limit` passes.
  // True if nothing is.
  bool drain(std::chrono::milliseconds limit);

 private:
  struct State;  // shared with the thread, which may outlive *this (see the destructor)
  explicit AlertWebhook(std::shared_ptr<State> state);
  static void run(const std::shared_ptr<State>& state);
  static void deliver(State& state, const std::vector<AlertChange>& batch);

  std::shared_ptr<State> state_;
  std::thread thread_;
};

// The Alertmanager webhook message (JSON, version "4") carrying `changes`:
// each alert's labels are alertname, `segment` (if not empty) and the
// change's labels; fingerprints are Alertmanager's (FNV-1a 64 of the sorted
// labels); times are RFC 3339 UTC, 0001-01-01T00:00:00Z when unset.
std::string alertmanager_message(const std::vector<AlertChange>& changes,
                                 const std::string& segment);

}  // namespace sluice
