// AlertWebhook against receivers on 127.0.0.1: the Alertmanager message
// shape, retries, and that post() and the destructor never wait on a dead or
// hanging receiver.
#include "alert_webhook.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "http_receiver.h"
#include "test_support.h"

namespace sluice {
namespace {

using nlohmann::json;
using sluice::testing::eventually;
using sluice::testing::LogLines;
using sluice::testing::Received;
using sluice::testing::Receiver;
using namespace std::chrono_literals;

// 2023-11-14T22:13:20.123Z and 2023-11-14T22:18:20Z.
constexpr std::uint64_t kStartsAt = 1'700'000'000'123'000'000ULL;
constexpr std::uint64_t kEndsAt = 1'700'000'300'000'000'000ULL;

// A loopback port nothing listens on (bound, read, closed).
int dead_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

AlertChange budget_low(bool firing) {
  AlertChange c;
  c.name = "BudgetLow";
  c.firing = firing;
  c.labels = {{"budget", "pricing-daily-usd"}, {"model", "gpt-4o"}, {"kind", "exhausts_within"}};
  c.summary = "pricing-daily-usd exhausts within 2h at the current rate";
  c.starts_at_unix_ns = kStartsAt;
  c.ends_at_unix_ns = firing ? 0 : kEndsAt;
  return c;
}

std::unique_ptr<AlertWebhook> start_or_die(AlertWebhookOptions options, const LogLines& log = {}) {
  Result<std::unique_ptr<AlertWebhook>> hook = AlertWebhook::start(std::move(options), log.fn());
  EXPECT_TRUE(hook.ok()) << hook.status().message();
  return hook.ok() ? std::move(hook).value() : nullptr;
}

TEST(AlertWebhookTest, FiringChangeArrivesAsAlertmanagerMessage) {
  Receiver receiver;
  auto hook = start_or_die({.url = receiver.url(), .segment = "prod"});
  ASSERT_NE(hook, nullptr);
  hook->post(budget_low(true));
  ASSERT_TRUE(hook->drain(10s));

  const std::vector<Received> got = receiver.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].path, "/alerts");
  EXPECT_EQ(got[0].content_type, "application/json");
  const json m = json::parse(got[0].body);
  EXPECT_EQ(m["version"], "4");
  EXPECT_EQ(m["status"], "firing");
  EXPECT_EQ(m["receiver"], "sluice");
  EXPECT_EQ(m["truncatedAlerts"], 0);
  EXPECT_EQ(m["groupKey"], "{}:{segment=\"prod\"}");
  EXPECT_EQ(m["groupLabels"], json({{"segment", "prod"}}));
  EXPECT_EQ(m["commonLabels"]["alertname"], "BudgetLow");
  EXPECT_EQ(m["commonLabels"]["segment"], "prod");
  EXPECT_EQ(m["externalURL"], "");
  ASSERT_EQ(m["alerts"].size(), 1u);
  const json& a = m["alerts"][0];
  EXPECT_EQ(a["status"], "firing");
  EXPECT_EQ(a["labels"], json({{"alertname", "BudgetLow"},
                               {"budget", "pricing-daily-usd"},
                               {"model", "gpt-4o"},
                               {"kind", "exhausts_within"},
                               {"segment", "prod"}}));
  EXPECT_EQ(a["annotations"]["summary"],
            "pricing-daily-usd exhausts within 2h at the current rate");
  EXPECT_EQ(a["startsAt"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(a["endsAt"], "0001-01-01T00:00:00Z");
  EXPECT_EQ(a["generatorURL"], "");
  EXPECT_EQ(a["fingerprint"].get<std::string>().size(), 16u);

  const AlertWebhookStats st = hook->stats();
  EXPECT_EQ(st.queued, 1u);
  EXPECT_EQ(st.sent, 1u);
  EXPECT_EQ(st.messages_sent, 1u);
  EXPECT_EQ(st.failed_attempts, 0u);
  EXPECT_EQ(st.dropped, 0u);
  EXPECT_EQ(st.pending, 0u);
  EXPECT_EQ(st.last_error, "");
}

TEST(AlertWebhookTest, ResolvedChangeArrivesWithStatusResolvedAndEndsAt) {
  Receiver receiver;
  auto hook = start_or_die({.url = receiver.url(), .segment = "prod"});
  ASSERT_NE(hook, nullptr);
  hook->post(budget_low(false));
  ASSERT_TRUE(hook->drain(10s));

  const std::vector<Received> got = receiver.received();
  ASSERT_EQ(got.size(), 1u);
  const json m = json::parse(got[0].body);
  EXPECT_EQ(m["status"], "resolved");
  ASSERT_EQ(m["alerts"].size(), 1u);
  EXPECT_EQ(m["alerts"][0]["status"], "resolved");
  EXPECT_EQ(m["alerts"][0]["startsAt"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(m["alerts"][0]["endsAt"], "2023-11-14T22:18:20Z");
}

TEST(AlertWebhookTest, ResolvedChangeWithoutEndTimeGetsTheTimeItWasPosted) {
  Receiver receiver;
  auto hook = start_or_die({.url = receiver.url()});
  ASSERT_NE(hook, nullptr);
  AlertChange c = budget_low(false);
  c.ends_at_unix_ns = 0;
  hook->post(c);
  ASSERT_TRUE(hook->drain(10s));

  const std::vector<Received> got = receiver.received();
  ASSERT_EQ(got.size(), 1u);
  const std::string ends_at = json::parse(got[0].body)["alerts"][0]["endsAt"];
  EXPECT_NE(ends_at, "0001-01-01T00:00:00Z");
  EXPECT_EQ(ends_at.substr(0, 2), "20");
  EXPECT_EQ(ends_at.back(), 'Z');
}

TEST(AlertWebhookTest, MessageIsFiringIfAnyAlertFiresAndCommonPartsAreShared) {
  AlertChange other = budget_low(false);
  other.name = "RateHigh";
  other.labels["model"] = "gpt-4o-mini";
  const json m = json::parse(alertmanager_message({budget_low(true), other}, "prod"));
  EXPECT_EQ(m["status"], "firing");
  ASSERT_EQ(m["alerts"].size(), 2u);
  EXPECT_EQ(m["alerts"][0]["labels"]["alertname"], "BudgetLow");
  EXPECT_EQ(m["alerts"][1]["labels"]["alertname"], "RateHigh");
  EXPECT_EQ(m["alerts"][1]["status"], "resolved");
  EXPECT_EQ(
      m["commonLabels"],
      json({{"budget", "pricing-daily-usd"}, {"kind", "exhausts_within"}, {"segment", "prod"}}));
  EXPECT_EQ(m["commonAnnotations"]["summary"],
            "pricing-daily-usd exhausts within 2h at the current rate");
}

TEST(AlertWebhookTest, FingerprintIsAlertmanagersHashOfTheSortedLabels) {
  AlertChange c;
  c.name = "BudgetLow";
  c.firing = true;
  c.labels = {{"budget", "pricing-daily-usd"}};
  // FNV-1a 64 of "alertname\xffBudgetLow\xffbudget\xffpricing-daily-usd\xffsegment\xffprod\xff".
  const json m = json::parse(alertmanager_message({c}, "prod"));
  EXPECT_EQ(m["alerts"][0]["fingerprint"], "aa3dd7bec0a5491b");
  c.labels["budget"] = "other";
  EXPECT_NE(json::parse(alertmanager_message({c}, "prod"))["alerts"][0]["fingerprint"],
            "aa3dd7bec0a5491b");
}

TEST(AlertWebhookTest, WithoutSegmentNoSegmentLabelIsAdded) {
  const json m = json::parse(alertmanager_message({budget_low(true)}, ""));
  EXPECT_EQ(m["groupKey"], "{}:{}");
  EXPECT_EQ(m["groupLabels"], json::object());
  EXPECT_FALSE(m["alerts"][0]["labels"].contains("segment"));
}

TEST(AlertWebhookTest, ServerAnswering500TwiceThen200GetsTheMessageDelivered) {
  Receiver receiver([](int index) { return index < 2 ? 500 : 200; });
  LogLines log;
  auto hook = start_or_die({.url = receiver.url(), .backoff_ms = 10}, log);
  ASSERT_NE(hook, nullptr);
  hook->post(budget_low(true));
  ASSERT_TRUE(hook->drain(10s));

  const AlertWebhookStats st = hook->stats();
  EXPECT_EQ(st.sent, 1u);
  EXPECT_EQ(st.failed_attempts, 2u);
  EXPECT_EQ(st.dropped, 0u);
  EXPECT_EQ(st.last_error, "answered HTTP 500");
  const std::vector<Received> got = receiver.received();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].body, got[2].body);  // the same message, retried
  EXPECT_TRUE(log.get().empty());       // no line per retry
}

TEST(AlertWebhookTest, MessageRefusedOnEveryAttemptIsDroppedWithOneLogLine) {
  Receiver receiver([](int) { return 503; });
  LogLines log;
  auto hook = start_or_die({.url = receiver.url(), .attempts = 3, .backoff_ms = 1}, log);
  ASSERT_NE(hook, nullptr);
  hook->post(budget_low(true));
  ASSERT_TRUE(hook->drain(10s));

  EXPECT_EQ(receiver.count(), 3u);
  const AlertWebhookStats st = hook->stats();
  EXPECT_EQ(st.sent, 0u);
  EXPECT_EQ(st.failed_attempts, 3u);
  EXPECT_EQ(st.dropped, 1u);
  EXPECT_EQ(log.get(),
            std::vector<std::string>{"alerts webhook: could not deliver 'BudgetLow' to " +
                                     receiver.url() + " after 3 attempts: answered HTTP 503"});
}

TEST(AlertWebhookTest, ChangesPostedWhileAMessageIsInFlightGoOutTogetherInOrder) {
  Receiver receiver;
  receiver.hold();
  auto hook = start_or_die({.url = receiver.url(), .timeout_ms = 30'000});
  ASSERT_NE(hook, nullptr);
  hook->post(budget_low(true));
  ASSERT_TRUE(eventually([&] { return receiver.count() == 1; }));
  for (const char* name : {"A", "B", "C"}) {
    AlertChange c = budget_low(true);
    c.name = name;
    hook->post(c);
  }
  receiver.release();
  ASSERT_TRUE(hook->drain(10s));

  const std::vector<Received> got = receiver.received();
  ASSERT_EQ(got.size(), 2u);
  const json second = json::parse(got[1].body);
  ASSERT_EQ(second["alerts"].size(), 3u);
  EXPECT_EQ(second["alerts"][0]["labels"]["alertname"], "A");
  EXPECT_EQ(second["alerts"][1]["labels"]["alertname"], "B");
  EXPECT_EQ(second["alerts"][2]["labels"]["alertname"], "C");
  EXPECT_EQ(hook->stats().sent, 4u);
  EXPECT_EQ(hook->stats().messages_sent, 2u);
}

TEST(AlertWebhookTest, DeadWebhookNeverBlocksPostAndDropsTheOldest) {
  LogLines log;
  const std::string url = "http://127.0.0.1:" + std::to_string(dead_port()) + "/alerts";
  auto hook = start_or_die({.url = url, .timeout_ms = 200, .max_queued = 16}, log);
  ASSERT_NE(hook, nullptr);
  for (int i = 0; i < 1000; ++i) hook->post(budget_low(true));

  const AlertWebhookStats st = hook->stats();
  EXPECT_EQ(st.queued, 1000u);
  EXPECT_GT(st.dropped, 0u);
  EXPECT_EQ(st.sent, 0u);
  EXPECT_LE(st.pending, 16u + 32u);  // the queue bound, plus one message in flight
  EXPECT_EQ(st.queued, st.dropped + st.pending);
  EXPECT_FALSE(hook->drain(0ms));
  ASSERT_TRUE(eventually([&] { return hook->stats().failed_attempts > 0; }));
  EXPECT_EQ(hook->stats().last_error, "cannot connect (refused, unreachable or name not resolved)");

  hook.reset();  // returns although the message is still being retried
  const std::vector<std::string> lines = log.get();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.front().find("dropping the oldest"), std::string::npos) << lines.front();
  EXPECT_NE(lines.back().find("undelivered"), std::string::npos) << lines.back();
}

TEST(AlertWebhookTest, WebhookThatNeverAnswersBlocksNeitherPostNorTheDestructor) {
  Receiver receiver;
  receiver.hold();  // accepts and reads, never answers while the hook lives
  auto hook = start_or_die({.url = receiver.url(), .timeout_ms = 200, .max_queued = 16});
  ASSERT_NE(hook, nullptr);
  for (int i = 0; i < 1000; ++i) hook->post(budget_low(true));

  EXPECT_EQ(hook->stats().queued, 1000u);
  EXPECT_GT(hook->stats().dropped, 0u);
  ASSERT_TRUE(eventually([&] { return hook->stats().failed_attempts > 0; }));
  EXPECT_EQ(hook->stats().last_error, "no answer (read failed or nothing within 200 ms)");
  EXPECT_EQ(hook->stats().sent, 0u);

  hook.reset();  // an attempt may be waiting on the receiver right now
  EXPECT_GE(receiver.count(), 1u);
}

TEST(AlertWebhookTest, DrainWithNothingPostedIsTrue) {
  Receiver receiver;
  auto hook = start_or_die({.url = receiver.url()});
  ASSERT_NE(hook, nullptr);
  EXPECT_TRUE(hook->drain(0ms));
  EXPECT_EQ(receiver.count(), 0u);
}

TEST(AlertWebhookTest, BadUrlIsRefusedInOneLineSayingWhatToWrite) {
  for (const std::string url :
       {"ftp://x", "http://", "127.0.0.1:80", "http://127.0.0.1:0/alerts",
        "http://127.0.0.1:65536/alerts", "http://127.0.0.1/alerts", "http://127.0.0.1:x/alerts",
        "http://:9093/alerts", "https://127.0.0.1:9093/alerts", "http://127.0.0.1:90 93/", ""}) {
    Result<std::unique_ptr<AlertWebhook>> hook = AlertWebhook::start({.url = url}, nullptr);
    ASSERT_FALSE(hook.ok()) << url;
    const std::string& message = hook.status().message();
    EXPECT_EQ(hook.status().code(), ErrorCode::kInvalidArgument) << url;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    EXPECT_NE(message.find("'" + url + "'"), std::string::npos) << message;
    EXPECT_NE(message.find("write http://HOST:PORT/PATH"), std::string::npos) << message;
  }
}

TEST(AlertWebhookTest, BadUrlMessagesNameTheProblem) {
  const auto message = [](const std::string& url) {
    return AlertWebhook::start({.url = url}, nullptr).status().message();
  };
  EXPECT_NE(message("ftp://x").find("scheme 'ftp' is not supported"), std::string::npos);
  EXPECT_NE(message("http://").find("has no host"), std::string::npos);
  EXPECT_NE(message("127.0.0.1:80").find("has no scheme"), std::string::npos);
  EXPECT_NE(message("http://127.0.0.1:0/").find("port 0 is out of range 1..65535"),
            std::string::npos);
  EXPECT_NE(message("http://127.0.0.1:65536/").find("port 65536 is out of range 1..65535"),
            std::string::npos);
  EXPECT_NE(message("http://127.0.0.1/").find("has no port"), std::string::npos);
}

TEST(AlertWebhookTest, GoodUrlsAreAccepted) {
  for (const std::string url : {"http://127.0.0.1:9093", "http://127.0.0.1:9093/api/alerts?x=1",
                                "HTTP://localhost:1/", "http://[::1]:65535/alerts"}) {
    Result<std::unique_ptr<AlertWebhook>> hook = AlertWebhook::start({.url = url}, nullptr);
    EXPECT_TRUE(hook.ok()) << url << ": " << hook.status().message();
  }
}

TEST(AlertWebhookTest, OptionsThatCouldNeverDeliverAreRefused) {
  Receiver receiver;
  for (const AlertWebhookOptions& options :
       {AlertWebhookOptions{.url = receiver.url(), .timeout_ms = 0},
        AlertWebhookOptions{.url = receiver.url(), .attempts = 0},
        AlertWebhookOptions{.url = receiver.url(), .max_queued = 0}}) {
    Result<std::unique_ptr<AlertWebhook>> hook = AlertWebhook::start(options, nullptr);
    ASSERT_FALSE(hook.ok());
    EXPECT_EQ(hook.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(hook.status().message().find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace sluice
