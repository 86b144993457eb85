#include "alert_webhook.h"

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <utility>

namespace sluice {

namespace {

constexpr const char* kZeroTime = "0001-01-01T00:00:00Z";  // Go's zero time.Time
constexpr const char* kUrlForm = "write http://HOST:PORT/PATH, e.g. http://127.0.0.1:9093/alerts";

struct Target {
  std::string host;
  int port = 0;
  std::string path;
};

Status bad_url(const std::string& url, const std::string& problem) {
  return Status(ErrorCode::kInvalidArgument,
                "alerts_webhook '" + url + "': " + problem + "; " + kUrlForm);
}

// http://HOST:PORT[/PATH], HOST a name, an IPv4 address or [IPv6].
Result<Target> parse_url(const std::string& url) {
  if (url.empty()) return bad_url(url, "is empty");
  for (const char c : url) {
    if (std::isspace(static_cast<unsigned char>(c)) ||
        std::iscntrl(static_cast<unsigned char>(c))) {
      return bad_url(url, "contains a space or a control character");
    }
  }
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return bad_url(url, "has no scheme");
  std::string scheme = url.substr(0, scheme_end);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "http") return bad_url(url, "scheme '" + scheme + "' is not supported, only http");

  const std::size_t host_begin = scheme_end + 3;
  const std::size_t path_begin = url.find_first_of("/?#", host_begin);
  const std::string authority = url.substr(host_begin, path_begin - host_begin);
  Target to;
  to.path = path_begin == std::string::npos ? "/" : url.substr(path_begin);
  to.path = to.path.substr(0, to.path.find('#'));  // a fragment is never sent
  if (to.path.empty() || to.path.front() != '/') to.path.insert(0, "/");
  if (authority.empty()) return bad_url(url, "has no host");
  if (authority.find('@') != std::string::npos) return bad_url(url, "user info is not supported");

  std::string port;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string::npos) return bad_url(url, "has an IPv6 address without ']'");
    to.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return bad_url(url, "has text after the IPv6 address");
      port = authority.substr(close + 2);
    } else {
      return bad_url(url, "has no port");
    }
  } else {
    const std::size_t colon = authority.find(':');
    if (colon == std::string::npos) return bad_url(url, "has no port");
    if (authority.find(':', colon + 1) != std::string::npos) {
      return bad_url(url, "has an IPv6 address without brackets");
    }
    to.host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (to.host.empty()) return bad_url(url, "has no host");
  if (port.empty()) return bad_url(url, "has no port");
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(),
                                      [](unsigned char c) { return std::isdigit(c) != 0; })) {
    return bad_url(url, "port '" + port + "' is not a number in 1..65535");
  }
  to.port = std::stoi(port);
  if (to.port < 1 || to.port > 65535) {
    return bad_url(url, "port " + port + " is out of range 1..65535");
  }
  return to;
}

std::uint64_t now_unix_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

// RFC 3339 in UTC as Go's RFC3339Nano writes it (Alertmanager's own form):
// fraction of a second without trailing zeros, none if whole.
std::string rfc3339(std::uint64_t unix_ns) {
  if (unix_ns == 0) return kZeroTime;
  const auto seconds = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  auto nanos = static_cast<unsigned>(unix_ns % 1'000'000'000);
  std::tm t{};
  ::gmtime_r(&seconds, &t);
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  std::string out(buf, n);
  if (nanos != 0) {
    int digits = 9;
    while (nanos % 10 == 0) {
      nanos /= 10;
      --digits;
    }
    std::snprintf(buf, sizeof buf, ".%0*u", digits, nanos);
    out += buf;
  }
  return out + "Z";
}

// Prometheus' LabelSet fingerprint, which Alertmanager sends: FNV-1a 64 over
// the labels sorted by name, each name and value followed by 0xff.
std::string fingerprint(const std::map<std::string, std::string>& labels) {
  std::uint64_t h = 14695981039346656037ULL;
  const auto add = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ULL;
  };
  for (const auto& [name, value] : labels) {
    for (const char c : name) add(static_cast<unsigned char>(c));
    add(0xff);
    for (const char c : value) add(static_cast<unsigned char>(c));
    add(0xff);
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::map<std::string, std::string> alert_labels(const AlertChange& change,
                                                const std::string& segment) {
  std::map<std::string, std::string> labels = change.labels;
  labels["alertname"] = change.name;
  if (!segment.empty()) labels.emplace("segment", segment);
  return labels;
}

// The pairs every map in `all` has, with the same value.
std::map<std::string, std::string> common(
    const std::vector<std::map<std::string, std::string>>& all) {
  if (all.empty()) return {};
  std::map<std::string, std::string> shared = all.front();
  for (const auto& each : all) {
    std::erase_if(shared, [&each](const auto& kv) {
      const auto it = each.find(kv.first);
      return it == each.end() || it->second != kv.second;
    });
  }
  return shared;
}

// A label set as Prometheus prints it: {a="x", b="y"}.
std::string label_string(const std::map<std::string, std::string>& labels) {
  std::string out = "{";
  for (const auto& [name, value] : labels) {
    if (out.size() > 1) out += ", ";
    out += name + "=\"";
    for (const char c : value) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

// "'a'", "'a', 'b', 'c'", "'a', 'b', 'c' and 4 more".
std::string names(const std::vector<AlertChange>& batch) {
  constexpr std::size_t kNamed = 3;
  std::string out;
  for (std::size_t i = 0; i < batch.size() && i < kNamed; ++i) {
    if (i > 0) out += ", ";
    out += "'" + batch[i].name + "'";
  }
  if (batch.size() > kNamed) out += " and " + std::to_string(batch.size() - kNamed) + " more";
  return out;
}

std::string describe(const httplib::Result& res, std::uint64_t timeout_ms) {
  if (res) return "answered HTTP " + std::to_string(res->status);
  const std::string within = " within " + std::to_string(timeout_ms) + " ms";
  switch (res.error()) {
    case httplib::Error::Connection:
      return "cannot connect (refused, unreachable or name not resolved)";
    case httplib::Error::ConnectionTimeout:
      return "no connection" + within;
    case httplib::Error::Read:
      return "no answer (read failed or nothing" + within + ")";
    case httplib::Error::Write:
      return "could not send the request" + within;
    case httplib::Error::Canceled:
      return "canceled (stopping)";
    default:
      return "request failed (" + httplib::to_string(res.error()) + ")";
  }
}

}  // namespace

std::string alertmanager_message(const std::vector<AlertChange>& changes,
                                 const std::string& segment) {
  using nlohmann::json;
  json alerts = json::array();
  std::vector<std::map<std::string, std::string>> all_labels;
  std::vector<std::map<std::string, std::string>> all_annotations;
  bool any_firing = false;
  for (const AlertChange& c : changes) {
    any_firing = any_firing || c.firing;
    std::map<std::string, std::string> labels = alert_labels(c, segment);
    std::map<std::string, std::string> annotations;
    if (!c.summary.empty()) annotations["summary"] = c.summary;
    alerts.push_back({
        {"status", c.firing ? "firing" : "resolved"},
        {"labels", labels},
        {"annotations", annotations},
        {"startsAt", rfc3339(c.starts_at_unix_ns)},
        {"endsAt", c.firing ? std::string(kZeroTime) : rfc3339(c.ends_at_unix_ns)},
        {"generatorURL", ""},
        {"fingerprint", fingerprint(labels)},
    });
    all_labels.push_back(std::move(labels));
    all_annotations.push_back(std::move(annotations));
  }
  std::map<std::string, std::string> group;
  if (!segment.empty()) group["segment"] = segment;
  const json message = {
      {"version", "4"},
      {"groupKey", "{}:" + label_string(group)},
      {"truncatedAlerts", 0},
      {"status", any_firing ? "firing" : "resolved"},
      {"receiver", "sluice"},
      {"groupLabels", group},
      {"commonLabels", common(all_labels)},
      {"commonAnnotations", common(all_annotations)},
      {"externalURL", ""},
      {"alerts", alerts},
  };
  // Invalid UTF-8 in a name or label is replaced, never thrown.
  return message.dump(-1, ' ', false, json::error_handler_t::replace);
}

struct AlertWebhook::State {
  AlertWebhookOptions options;
  std::string path;
  // Used by the thread; stop() from the destructor cuts an attempt short.
  std::unique_ptr<httplib::Client> client;

  mutable std::mutex mu;
  std::condition_variable wake;  // post(), stopping
  std::condition_variable idle;  // nothing pending, or the thread has finished
  std::deque<AlertChange> queue;
  std::size_t in_flight = 0;  // changes of the message being delivered
  bool stopping = false;
  bool finished = false;
  bool overflowing = false;  // dropped for a full queue since the thread last emptied it
  AlertWebhookStats stats;

  std::mutex log_mu;
  bool log_open = true;  // false once the destructor returns: the thread says nothing more
  LogFn log;

  void say(const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mu);
    if (log_open && log) log(line);
  }
};

Result<std::unique_ptr<AlertWebhook>> AlertWebhook::start(AlertWebhookOptions options, LogFn log) {
  Result<Target> target = parse_url(options.url);
  if (!target.ok()) return target.status();
  const auto bad = [](const std::string& what) {
    return Status(ErrorCode::kInvalidArgument, "alerts webhook: " + what);
  };
  if (options.timeout_ms == 0) return bad("timeout_ms is 0; give each attempt at least 1 ms");
  if (options.attempts < 1) return bad("attempts is below 1; make at least one attempt");
  if (options.max_queued == 0) return bad("max_queued is 0; let at least one alert wait");
  if (options.max_alerts_per_message == 0) {
    return bad("max_alerts_per_message is 0; send at least one alert per message");
  }
  options.max_backoff_ms = std::max(options.max_backoff_ms, options.backoff_ms);

  auto state = std::make_shared<State>();
  state->path = target->path;
  state->client = std::make_unique<httplib::Client>(target->host, target->port);
  const auto timeout = std::chrono::milliseconds(options.timeout_ms);
  state->client->set_connection_timeout(timeout);
  state->client->set_read_timeout(timeout);
  state->client->set_write_timeout(timeout);
  state->client->set_keep_alive(false);
  state->client->set_default_headers({{"User-Agent", "sluiced"}});
  state->options = std::move(options);
  state->log = std::move(log);
  return std::unique_ptr<AlertWebhook>(new AlertWebhook(std::move(state)));
}

AlertWebhook::AlertWebhook(std::shared_ptr<State> state)
    : state_(std::move(state)), thread_([s = state_] { run(s); }) {}

AlertWebhook::~AlertWebhook() {
  State& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.stopping = true;
  }
  s.wake.notify_all();
  s.client->stop();  // shuts the socket of an attempt in progress
  bool finished = false;
  std::size_t left = 0;
  {
    std::unique_lock<std::mutex> lock(s.mu);
    // An attempt begun just before stopping runs into its own timeout.
    const auto grace = std::chrono::milliseconds(s.options.timeout_ms + 500);
    finished = s.idle.wait_for(lock, grace, [&s] { return s.finished; });
    left = s.queue.size() + s.in_flight;
    s.stats.dropped += left;
  }
  if (finished) {
    thread_.join();
  } else {
    thread_.detach();  // it holds the state and finishes on its own, silently
  }
  {
    std::lock_guard<std::mutex> lock(s.log_mu);
    s.log_open = false;
  }
  if (left > 0 && s.log) {
    s.log("alerts webhook: stopped with " + std::to_string(left) + " alert change(s) for " +
          s.options.url + " undelivered");
  }
}

void AlertWebhook::post(AlertChange change) {
  if (change.firing && change.starts_at_unix_ns == 0) change.starts_at_unix_ns = now_unix_ns();
  if (!change.firing && change.ends_at_unix_ns == 0) change.ends_at_unix_ns = now_unix_ns();
  State& s = *state_;
  bool began_overflowing = false;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.queue.size() >= s.options.max_queued) {
      s.queue.pop_front();
      ++s.stats.dropped;
      began_overflowing = !std::exchange(s.overflowing, true);
    }
    s.queue.push_back(std::move(change));
    ++s.stats.queued;
  }
  s.wake.notify_one();
  if (began_overflowing) {  // once until the queue empties again, not once per drop
    s.say("alerts webhook: more than " + std::to_string(s.options.max_queued) +
          " alert changes waiting for " + s.options.url + "; dropping the oldest");
  }
}

AlertWebhookStats AlertWebhook::stats() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  AlertWebhookStats out = state_->stats;
  out.pending = state_->queue.size() + state_->in_flight;
  return out;
}

bool AlertWebhook::drain(std::chrono::milliseconds limit) {
  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mu);
  const auto empty = [&s] { return s.queue.empty() && s.in_flight == 0; };
  s.idle.wait_for(lock, limit, [&] { return empty() || s.finished; });
  return empty();
}

void AlertWebhook::run(const std::shared_ptr<State>& state) {
  State& s = *state;
  for (;;) {
    std::vector<AlertChange> batch;
    {
      std::unique_lock<std::mutex> lock(s.mu);
      s.wake.wait(lock, [&s] { return s.stopping || !s.queue.empty(); });
      if (s.stopping) break;
      const std::size_t n = std::min(s.queue.size(), s.options.max_alerts_per_message);
      batch.assign(std::make_move_iterator(s.queue.begin()),
                   std::make_move_iterator(s.queue.begin() + static_cast<std::ptrdiff_t>(n)));
      s.queue.erase(s.queue.begin(), s.queue.begin() + static_cast<std::ptrdiff_t>(n));
      s.in_flight = n;
      if (s.queue.empty()) s.overflowing = false;
    }
    deliver(s, batch);
  }
  std::lock_guard<std::mutex> lock(s.mu);
  s.finished = true;
  s.idle.notify_all();
}

// Returns with the batch delivered or dropped (in_flight 0), or as soon as
// stopping is seen (in_flight left for the destructor to count).
void AlertWebhook::deliver(State& s, const std::vector<AlertChange>& batch) {
  const std::string body = alertmanager_message(batch, s.options.segment);
  auto backoff = std::chrono::milliseconds(s.options.backoff_ms);
  const auto max_backoff = std::chrono::milliseconds(s.options.max_backoff_ms);
  std::string error;
  for (int attempt = 1;; ++attempt) {
    const httplib::Result res = s.client->Post(s.path, body, "application/json");
    std::unique_lock<std::mutex> lock(s.mu);
    if (res && res->status >= 200 && res->status < 300) {
      s.stats.sent += batch.size();
      ++s.stats.messages_sent;
      s.in_flight = 0;
      if (s.queue.empty()) s.idle.notify_all();
      return;
    }
    error = describe(res, s.options.timeout_ms);
    ++s.stats.failed_attempts;
    s.stats.last_error = error;
    if (s.stopping) return;
    if (attempt >= s.options.attempts) break;
    if (s.wake.wait_for(lock, backoff, [&s] { return s.stopping; })) return;
    backoff = std::min(backoff * 2, max_backoff);
  }
  // Said before the counts change, so that whoever sees them sees the line too.
  s.say("alerts webhook: could not deliver " + names(batch) + " to " + s.options.url + " after " +
        std::to_string(s.options.attempts) + " attempts: " + error);
  std::lock_guard<std::mutex> lock(s.mu);
  s.stats.dropped += batch.size();
  s.in_flight = 0;
  if (s.queue.empty()) s.idle.notify_all();
}

}  // namespace sluice
