// sluiced's Prometheus metrics: the text (escaping, HELP and TYPE for every
// family, the latency histogram, the series cap folding into "__other__",
// counters that never go back), the HTTP endpoint, and a real sluiced
// scraped over HTTP while a scripted workload runs against it.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "metrics.h"
#include "metrics_server.h"
#include "segment.h"
#include "sidecar.h"
#include "sluice/inspect.h"
#include "sluice/quota.h"
#include "sluice_fixture.h"
#include "test_support.h"

namespace sluice {
namespace {

namespace fb = audit::fb;
using testing::eventually;
using Labels = std::map<std::string, std::string>;

// ---------------------------------------------------------------------------
// A tiny exposition-format parser: every sample belongs to a family with one
// # HELP and one # TYPE before it, label values unescape, values are numbers.

struct ParsedSample {
  std::string name;
  Labels labels;
  double value = 0;
};

struct Parsed {
  std::map<std::string, std::string> type;  // family -> counter | gauge | histogram
  std::map<std::string, std::string> help;
  std::vector<ParsedSample> samples;
  std::vector<std::string> errors;

  // The family a sample name belongs to (a histogram's _bucket, _sum, _count).
  std::string family_of(const std::string& name) const {
    if (type.count(name) != 0) return name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        std::string base = name.substr(0, name.size() - s.size());
        const auto t = type.find(base);
        if (t != type.end() && t->second == "histogram") return base;
      }
    }
    return "";
  }
  const ParsedSample* find(const std::string& name, const Labels& labels = {}) const {
    for (const ParsedSample& s : samples) {
      if (s.name == name && s.labels == labels) return &s;
    }
    return nullptr;
  }
  // The value of one sample; NaN (which no EXPECT_EQ / EXPECT_NEAR passes) when absent.
  double value(const std::string& name, const Labels& labels = {}) const {
    const ParsedSample* s = find(name, labels);
    return s != nullptr ? s->value : std::nan("");
  }
  std::vector<const ParsedSample*> all(const std::string& name) const {
    std::vector<const ParsedSample*> out;
    for (const ParsedSample& s : samples) {
      if (s.name == name) out.push_back(&s);
    }
    return out;
  }
};

Parsed parse(const std::string& text) {
  Parsed p;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  auto error = [&](const std::string& what) {
    p.errors.push_back("line " + std::to_string(n) + ": " + what + ": " + line);
  };
  if (!text.empty() && text.back() != '\n') p.errors.push_back("no newline at the end");
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, kind, name, rest;
      words >> hash >> kind >> name;
      std::getline(words, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      if (kind == "HELP") {
        if (!p.help.emplace(name, rest).second) error("second HELP");
      } else if (kind == "TYPE") {
        if (rest != "counter" && rest != "gauge" && rest != "histogram") error("type");
        if (!p.type.emplace(name, rest).second) error("second TYPE");
        if (p.help.count(name) == 0) error("TYPE before HELP");
      }
      continue;
    }
    ParsedSample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const std::size_t eq = line.find("=\"", i);
        if (eq == std::string::npos) {
          error("label");
          break;
        }
        const std::string key = line.substr(i, eq - i);
        std::string value;
        i = eq + 2;
        for (; i < line.size() && line[i] != '"'; ++i) {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
        }
        ++i;  // the closing quote
        if (i < line.size() && line[i] == ',') ++i;
        if (!s.labels.emplace(key, value).second) error("label twice");
      }
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') {
      error("no value");
      continue;
    }
    const std::string number = line.substr(i + 1);
    char* end = nullptr;
    s.value = std::strtod(number.c_str(), &end);
    if (number.empty() || end != number.c_str() + number.size()) error("not a number");
    const std::string family = p.family_of(s.name);
    if (family.empty()) error("sample of no family with a TYPE");
    if (p.find(s.name, s.labels) != nullptr) error("duplicate sample");
    p.samples.push_back(std::move(s));
  }
  return p;
}

// Counters (and a histogram's series) of `before` are all in `after`, none smaller.
void expect_counters_only_grew(const Parsed& before, const Parsed& after) {
  for (const ParsedSample& s : before.samples) {
    const std::string t = before.type.at(before.family_of(s.name));
    if (t != "counter" && t != "histogram") continue;
    const ParsedSample* later = after.find(s.name, s.labels);
    ASSERT_NE(later, nullptr) << s.name << " went away";
    EXPECT_GE(later->value, s.value) << s.name << " went back";
  }
}

// Every family sluiced writes, with its type.
const std::map<std::string, std::string> kFamilies = {
    {"sluice_sidecar_up", "gauge"},
    {"sluice_calls_total", "counter"},
    {"sluice_model_calls_total", "counter"},
    {"sluice_limit_commits_total", "counter"},
    {"sluice_call_latency_seconds", "histogram"},
    {"sluice_call_ttft_seconds", "histogram"},
    {"sluice_decisions_total", "counter"},
    {"sluice_rejections_total", "counter"},
    {"sluice_tokens_total", "counter"},
    {"sluice_cost_usd_total", "counter"},
    {"sluice_budget_used", "gauge"},
    {"sluice_budget_remaining", "gauge"},
    {"sluice_reservations_in_flight", "gauge"},
    {"sluice_reservations_abandoned_total", "counter"},
    {"sluice_keys_used", "gauge"},
    {"sluice_keys_capacity", "gauge"},
    {"sluice_clients_attached", "gauge"},
    {"sluice_audit_records_drained_total", "counter"},
    {"sluice_audit_records_written_total", "counter"},
    {"sluice_audit_records_dropped_total", "counter"},
    {"sluice_audit_calls_refused_total", "counter"},
    {"sluice_audit_records_skipped_total", "counter"},
    {"sluice_audit_ring_high_water_bytes", "gauge"},
    {"sluice_audit_bytes_on_disk", "gauge"},
    {"sluice_store_up", "gauge"},
    {"sluice_store_syncs_total", "counter"},
    {"sluice_store_sync_errors_total", "counter"},
    {"sluice_store_last_sync_age_seconds", "gauge"},
    {"sluice_store_sync_cpu_seconds", "gauge"},
    {"sluice_global_budget_granted", "gauge"},
    {"sluice_global_budget_used", "gauge"},
    {"sluice_global_budget_remaining", "gauge"},
    {"sluice_model_version_info", "gauge"},
    {"sluice_team_call_latency_seconds", "histogram"},
    {"sluice_team_call_ttft_seconds", "histogram"},
    {"sluice_budget_burn_rate", "gauge"},
    {"sluice_budget_exhaustion_seconds", "gauge"},
    {"sluice_alert_firing", "gauge"},
    {"sluice_decision_latency_seconds", "histogram"},
};

// ---------------------------------------------------------------------------
// Building readings and records by hand

DecodedRecord record(fb::Event event, fb::Decision decision,
                     const std::vector<AuditAttributeView>& attrs = {}) {
  DecodedRecord r;
  r.event = event;
  r.decision = decision;
  r.attributes = attrs;
  return r;
}

SegmentStatus status_with(std::uint64_t admitted, std::uint64_t rejected) {
  SegmentStatus st;
  st.segment = "s";
  st.sidecar_alive = true;
  st.admitted_total = admitted;
  st.rejected_total = rejected;
  st.latency_sample_every = 128;
  return st;
}

LimitRow limit_row(const std::string& name, std::uint64_t admitted, std::uint64_t rejected,
                   std::uint64_t shadow = 0) {
  LimitRow l;
  l.limit = name;
  l.kind = "rate";
  l.unit = "tokens";
  l.admitted = admitted;
  l.rejected = rejected;
  l.shadow_rejected = shadow;
  return l;
}

// ---------------------------------------------------------------------------
// The text

TEST(MetricsText, DecimalTextIsExactAndNeverAnExponent) {
  EXPECT_EQ(decimal_text(0), "0");
  EXPECT_EQ(decimal_text(whole(42)), "42");
  EXPECT_EQ(decimal_text(12'500), "0.0000125");
  EXPECT_EQ(decimal_text(1), "0.000000001");
  EXPECT_EQ(decimal_text(whole(1) + 1), "1.000000001");
  EXPECT_EQ(decimal_text(whole(~std::uint64_t{0})), "18446744073709551615");
  EXPECT_EQ(decimal_text(whole(~std::uint64_t{0}) + 500'000'000), "18446744073709551615.5");
}

TEST(MetricsText, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(label_value_text("plain-value_1"), "plain-value_1");
  EXPECT_EQ(label_value_text("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(label_value_text(""), "");
}

TEST(MetricsText, LabelValuesThatAreNotUtf8GetReplacementCharacters) {
  EXPECT_EQ(label_value_text("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");  // é € 😀 kept
  EXPECT_EQ(label_value_text("a\xff"
                             "b"),
            "a\xef\xbf\xbd"
            "b");
  EXPECT_EQ(label_value_text("\xc3"), "\xef\xbf\xbd");                  // cut short
  EXPECT_EQ(label_value_text("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd");  // overlong '/'
  EXPECT_EQ(label_value_text("\xed\xa0\x80"),                           // a surrogate
            "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

TEST(MetricsText, HelpEscapesBackslashAndNewlineOnly) {
  EXPECT_EQ(help_text("a \"quoted\" \\ path\nnext"), "a \"quoted\" \\\\ path\\nnext");
}

TEST(MetricsText, EveryFamilyHasHelpAndTypeEvenWithNothingRead) {
  Exposition e(1000);
  const Parsed p = parse(e.render(SegmentReading{}, nullptr));
  EXPECT_TRUE(p.errors.empty()) << ::testing::PrintToString(p.errors);
  for (const auto& [family, type] : kFamilies) {
    EXPECT_EQ(p.type.count(family), 1u) << family;
    EXPECT_FALSE(p.help.count(family) == 0 || p.help.at(family).empty()) << family;
    if (p.type.count(family) != 0) {
      EXPECT_EQ(p.type.at(family), type) << family;
    }
  }
  EXPECT_EQ(p.type.size(), kFamilies.size());
  // An unreadable segment: the sidecar is not up, and nothing is made up.
  EXPECT_EQ(p.value("sluice_sidecar_up"), 0);
  EXPECT_TRUE(p.all("sluice_calls_total").empty());
  EXPECT_EQ(p.value("sluice_decision_latency_seconds_bucket", {{"le", "+Inf"}}), 0);
  EXPECT_EQ(p.value("sluice_decision_latency_seconds_count"), 0);
}

TEST(MetricsText, AFullReadingRendersItsValuesInTheirUnits) {
  SegmentReading r;
  r.status = status_with(40, 7);
  SegmentStatus& st = *r.status;
  st.keys_used = 12;
  st.keys_capacity = 65536;
  st.reservations_in_flight = 3;
  st.abandoned_total = 2;
  st.clients_attached = 4;
  st.audit_drained = 100;
  st.audit_written = 99;
  st.audit_dropped = 1;
  st.audit_refused = 5;
  st.audit_skipped = 6;
  st.audit_ring_high_water_bytes = 4096;
  st.audit_bytes_on_disk = 123456;
  st.store = "sqlite:/tmp/x.db";
  st.store_health = "up";
  st.store_syncs = 17;
  st.store_failures = 2;
  st.store_last_sync_unix_ns = 1;
  st.store_last_sync_age_ms = 250;
  st.store_sync_cpu_us = 1500;
  GlobalLimitRow g;
  g.limit = "all-hosts-usd";
  g.unit = "usd";
  g.granted = 2'500'000'000;  // $2.50
  g.used = 1'250'000'001;
  g.global_remaining = 400'000'000'000;
  st.global_limits.push_back(g);
  r.limits = {limit_row("team-tokens", 30, 4, 0), limit_row("watch", 9, 0, 3)};
  KeyRow usd;
  usd.limit = "pricing-daily-usd";
  usd.attributes = "team=pricing,feature=quote-agent";
  usd.unit = "usd";
  usd.used = 15'817'500;  // $0.0158175
  usd.limit_value = 1'000'000'000;
  usd.remaining = 984'182'500;
  KeyRow tokens = usd;
  tokens.limit = "team-tokens-daily";
  tokens.attributes = "team=pricing";
  tokens.unit = "tokens";
  tokens.used = 3330;
  tokens.remaining = 996'670;
  KeyRow rate = tokens;
  rate.rate = true;
  rate.limit = "team-rate";
  r.keys = {usd, tokens, rate};

  AuditTally tally(1000);
  const std::vector<AuditAttributeView> pricing = {
      {"team", "pricing"}, {"feature", "quote-agent"}, {"model", "gpt-4o"}};
  DecodedRecord commit = record(fb::Event::Commit, fb::Decision::Settled, pricing);
  commit.actual_input_tokens = 777;
  commit.actual_output_tokens = 333;
  commit.cost_nusd = 5'272'500;
  tally.observe(commit);
  tally.observe(commit);
  DecodedRecord rejected = record(fb::Event::Reserve, fb::Decision::Rejected, pricing);
  rejected.limit = "pricing-daily-usd";
  rejected.reason = "budget_exhausted";
  tally.observe(rejected);
  DecodedRecord no_policy = record(fb::Event::Reserve, fb::Decision::Rejected);
  no_policy.reason = "no_policy";
  tally.observe(no_policy);

  Exposition e(1000);
  const Parsed p = parse(e.render(r, &tally));
  ASSERT_TRUE(p.errors.empty()) << ::testing::PrintToString(p.errors);
  EXPECT_EQ(p.value("sluice_sidecar_up"), 1);
  EXPECT_EQ(p.value("sluice_calls_total", {{"decision", "admitted"}}), 40);
  EXPECT_EQ(p.value("sluice_calls_total", {{"decision", "rejected"}}), 7);
  EXPECT_EQ(p.value("sluice_decisions_total", {{"limit", "team-tokens"}, {"decision", "admitted"}}),
            30);
  EXPECT_EQ(p.value("sluice_decisions_total", {{"limit", "team-tokens"}, {"decision", "rejected"}}),
            4);
  EXPECT_EQ(
      p.value("sluice_decisions_total", {{"limit", "watch"}, {"decision", "shadow_rejected"}}), 3);
  EXPECT_EQ(p.value("sluice_rejections_total",
                    {{"limit", "pricing-daily-usd"}, {"reason", "budget_exhausted"}}),
            1);
  EXPECT_EQ(p.value("sluice_rejections_total", {{"limit", ""}, {"reason", "no_policy"}}), 1);
  const Labels who = {{"team", "pricing"}, {"feature", "quote-agent"}, {"model", "gpt-4o"}};
  Labels in = who, out = who;
  in["direction"] = "input";
  out["direction"] = "output";
  EXPECT_EQ(p.value("sluice_tokens_total", in), 1554);
  EXPECT_EQ(p.value("sluice_tokens_total", out), 666);
  EXPECT_NEAR(p.value("sluice_cost_usd_total", who), 0.010545, 1e-12);
  EXPECT_NE(p.find("sluice_cost_usd_total", who), nullptr);
  const Labels usd_key = {
      {"limit", "pricing-daily-usd"}, {"key", "team=pricing,feature=quote-agent"}, {"unit", "usd"}};
  EXPECT_NEAR(p.value("sluice_budget_used", usd_key), 0.0158175, 1e-12);
  EXPECT_NEAR(p.value("sluice_budget_remaining", usd_key), 0.9841825, 1e-12);
  const Labels token_key = {
      {"limit", "team-tokens-daily"}, {"key", "team=pricing"}, {"unit", "tokens"}};
  EXPECT_EQ(p.value("sluice_budget_used", token_key), 3330);
  EXPECT_EQ(p.value("sluice_budget_remaining", token_key), 996670);
  EXPECT_EQ(p.all("sluice_budget_used").size(), 2u);  // rate cells are not budgets
  EXPECT_EQ(p.value("sluice_reservations_in_flight"), 3);
  EXPECT_EQ(p.value("sluice_reservations_abandoned_total"), 2);
  EXPECT_EQ(p.value("sluice_keys_used"), 12);
  EXPECT_EQ(p.value("sluice_keys_capacity"), 65536);
  EXPECT_EQ(p.value("sluice_clients_attached"), 4);
  EXPECT_EQ(p.value("sluice_audit_records_drained_total"), 100);
  EXPECT_EQ(p.value("sluice_audit_records_written_total"), 99);
  EXPECT_EQ(p.value("sluice_audit_records_dropped_total"), 1);
  EXPECT_EQ(p.value("sluice_audit_calls_refused_total"), 5);
  EXPECT_EQ(p.value("sluice_audit_records_skipped_total"), 6);
  EXPECT_EQ(p.value("sluice_audit_ring_high_water_bytes"), 4096);
  EXPECT_EQ(p.value("sluice_audit_bytes_on_disk"), 123456);
  EXPECT_EQ(p.value("sluice_store_up"), 1);
  EXPECT_EQ(p.value("sluice_store_syncs_total"), 17);
  EXPECT_EQ(p.value("sluice_store_sync_errors_total"), 2);
  EXPECT_DOUBLE_EQ(p.value("sluice_store_last_sync_age_seconds"), 0.25);
  EXPECT_DOUBLE_EQ(p.value("sluice_store_sync_cpu_seconds"), 0.0015);
  const Labels global = {{"limit", "all-hosts-usd"}, {"unit", "usd"}};
  EXPECT_DOUBLE_EQ(p.value("sluice_global_budget_granted", global), 2.5);
  EXPECT_NEAR(p.value("sluice_global_budget_used", global), 1.250000001, 1e-12);
  EXPECT_DOUBLE_EQ(p.value("sluice_global_budget_remaining", global), 400);
}

TEST(MetricsText, LatencyHistogramIsCumulativeInSecondsAndEndsInInf) {
  SegmentReading r;
  r.status = status_with(0, 0);
  r.status->latency_bounds_ns = {32, 64, 128, ~std::uint64_t{0}};
  r.status->latency_counts = {1, 2, 0, 3};
  Exposition e(1000);
  const std::string text = e.render(r, nullptr);
  const Parsed p = parse(text);
  ASSERT_TRUE(p.errors.empty()) << ::testing::PrintToString(p.errors);
  EXPECT_NE(text.find("sluice_decision_latency_seconds_bucket{le=\"0.000000032\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(p.value("sluice_decision_latency_seconds_bucket", {{"le", "0.000000064"}}), 3);
  EXPECT_EQ(p.value("sluice_decision_latency_seconds_bucket", {{"le", "0.000000128"}}), 3);
  EXPECT_EQ(p.value("sluice_decision_latency_seconds_bucket", {{"le", "+Inf"}}), 6);
  EXPECT_EQ(p.value("sluice_decision_latency_seconds_count"), 6);
  // Midpoints 16, 48, 96 ns and the open bucket at its lower bound, 128 ns.
  EXPECT_NE(text.find("sluice_decision_latency_seconds_sum 0.000000496\n"), std::string::npos)
      << text;
  const std::vector<const ParsedSample*> buckets = p.all("sluice_decision_latency_seconds_bucket");
  ASSERT_EQ(buckets.size(), 4u);
  EXPECT_EQ(buckets.back()->labels.at("le"), "+Inf");
  for (std::size_t i = 1; i < buckets.size(); ++i) {
    EXPECT_GE(buckets[i]->value, buckets[i - 1]->value);
    EXPECT_GT(std::strtod(buckets[i]->labels.at("le").c_str(), nullptr),
              std::strtod(buckets[i - 1]->labels.at("le").c_str(), nullptr));
  }
  EXPECT_NE(p.help.at("sluice_decision_latency_seconds").find("one reserve in 128"),
            std::string::npos);
  EXPECT_NE(p.help.at("sluice_decision_latency_seconds").find("estimated"), std::string::npos);
}

TEST(MetricsText, CallReportsRenderPerModelHistogramsAndOutcomeCounts) {
  SegmentReading r;
  r.status = status_with(0, 0);
  ModelCallRow m;
  m.model = "gpt-4o";
  m.calls = {1, 7, 1, 1, 0, 0};
  for (int b = 0; b < shm::kCallLatencyBuckets; ++b) {
    m.latency_bounds_ms.push_back(b + 1 < shm::kCallLatencyBuckets ? shm::call_latency_bound_ms(b)
                                                                   : ~std::uint64_t{0});
  }
  m.latency_counts.assign(shm::kCallLatencyBuckets, 0);
  m.ttft_counts.assign(shm::kCallLatencyBuckets, 0);
  m.latency_counts[3] = 7;   // (25, 50] ms
  m.latency_counts[13] = 1;  // (8, 10] s
  m.latency_sum_us = 7 * 40'000 + 9'000'000;
  r.models = {m};
  LimitRow l;
  l.limit = "pricing-daily";
  l.committed = 11;
  l.failed = 2;
  r.limits = {l};
  Exposition e(1000);
  const std::string text = e.render(r, nullptr);
  const Parsed p = parse(text);
  ASSERT_TRUE(p.errors.empty()) << ::testing::PrintToString(p.errors);
  EXPECT_EQ(p.value("sluice_model_calls_total", {{"model", "gpt-4o"}, {"outcome", "ok"}}), 7);
  EXPECT_EQ(p.value("sluice_model_calls_total", {{"model", "gpt-4o"}, {"outcome", "timeout"}}), 1);
  EXPECT_EQ(
      p.value("sluice_limit_commits_total", {{"limit", "pricing-daily"}, {"result", "failed"}}), 2);
  EXPECT_EQ(p.value("sluice_call_latency_seconds_bucket", {{"model", "gpt-4o"}, {"le", "0.025"}}),
            0);
  EXPECT_EQ(p.value("sluice_call_latency_seconds_bucket", {{"model", "gpt-4o"}, {"le", "0.05"}}),
            7);
  EXPECT_EQ(p.value("sluice_call_latency_seconds_bucket", {{"model", "gpt-4o"}, {"le", "10"}}), 8);
  EXPECT_EQ(p.value("sluice_call_latency_seconds_bucket", {{"model", "gpt-4o"}, {"le", "+Inf"}}),
            8);
  EXPECT_EQ(p.value("sluice_call_latency_seconds_count", {{"model", "gpt-4o"}}), 8);
  EXPECT_NE(text.find("sluice_call_latency_seconds_sum{model=\"gpt-4o\"} 9.28\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(p.value("sluice_call_ttft_seconds_count", {{"model", "gpt-4o"}}), 0);
}

TEST(MetricsText, LabelSetsBeyondMaxSeriesFoldIntoOneOtherSeries) {
  SegmentReading r;
  r.status = status_with(0, 0);
  // Four limits: twelve label sets for sluice_decisions_total, room for 4 series.
  r.limits = {limit_row("a", 1, 10), limit_row("b", 100, 1000), limit_row("c", 2, 20),
              limit_row("d", 3, 30)};
  Exposition e(4);
  Parsed p = parse(e.render(r, nullptr));
  ASSERT_TRUE(p.errors.empty()) << ::testing::PrintToString(p.errors);
  const std::vector<const ParsedSample*> series = p.all("sluice_decisions_total");
  ASSERT_EQ(series.size(), 4u);
  EXPECT_EQ(p.value("sluice_decisions_total", {{"limit", "a"}, {"decision", "admitted"}}), 1);
  EXPECT_EQ(p.value("sluice_decisions_total", {{"limit", "a"}, {"decision", "rejected"}}), 10);
  EXPECT_EQ(p.value("sluice_decisions_total", {{"limit", "a"}, {"decision", "shadow_rejected"}}),
            0);
  const Labels other = {{"limit", "__other__"}, {"decision", "__other__"}};
  EXPECT_EQ(p.value("sluice_decisions_total", other), 100 + 1000 + 2 + 20 + 3 + 30);

  // The same series next time, whatever order the label sets come in; a
  // folded set that is gone does not take the other series back.
  r.limits = {limit_row("d", 4, 30), limit_row("a", 1, 11), limit_row("c", 2, 20)};
  p = parse(e.render(r, nullptr));
  EXPECT_EQ(p.all("sluice_decisions_total").size(), 4u);
  EXPECT_EQ(p.value("sluice_decisions_total", {{"limit", "a"}, {"decision", "rejected"}}), 11);
  EXPECT_EQ(p.value("sluice_decisions_total", other), 1155);  // not 4 + 30 + 2 + 20

  // The audit families are capped the same way.
  AuditTally tally(3);
  for (const char* limit : {"x", "y", "z", "z", "w"}) {
    DecodedRecord rej = record(fb::Event::Reserve, fb::Decision::Rejected);
    rej.limit = limit;
    rej.reason = "rate_limited";
    tally.observe(rej);
  }
  p = parse(e.render(r, &tally));
  EXPECT_EQ(p.all("sluice_rejections_total").size(), 3u);
  EXPECT_EQ(p.value("sluice_rejections_total", {{"limit", "x"}, {"reason", "rate_limited"}}), 1);
  EXPECT_EQ(p.value("sluice_rejections_total", {{"limit", "y"}, {"reason", "rate_limited"}}), 1);
  EXPECT_EQ(p.value("sluice_rejections_total", {{"limit", "__other__"}, {"reason", "__other__"}}),
            3);
}

TEST(MetricsText, ACapOfOneFoldsEverySeries) {
  SegmentReading r;
  r.status = status_with(5, 6);
  Exposition e(1);
  const Parsed p = parse(e.render(r, nullptr));
  EXPECT_EQ(p.all("sluice_calls_total").size(), 1u);
  EXPECT_EQ(p.value("sluice_calls_total", {{"decision", "__other__"}}), 11);
  EXPECT_EQ(p.value("sluice_sidecar_up"), 1);  // no labels: the one series is all there is
}

TEST(MetricsText, CountersNeverGoBackWhileGaugesFollowTheSegment) {
  SegmentReading r;
  r.status = status_with(10, 2);
  r.limits = {limit_row("a", 8, 2)};
  KeyRow k;
  k.limit = "daily";
  k.attributes = "team=x";
  k.unit = "tokens";
  k.used = 50;
  k.remaining = 950;
  r.keys = {k};
  Exposition e(1000);
  const Parsed first = parse(e.render(r, nullptr));

  // Clients still moving their counts to a new policy: the sums dip.
  r.status = status_with(9, 2);
  r.limits = {limit_row("a", 3, 0)};
  r.keys.clear();  // a new window: the old cell is no longer current
  const Parsed dip = parse(e.render(r, nullptr));
  expect_counters_only_grew(first, dip);
  EXPECT_EQ(dip.value("sluice_calls_total", {{"decision", "admitted"}}), 10);
  EXPECT_EQ(dip.value("sluice_decisions_total", {{"limit", "a"}, {"decision", "admitted"}}), 8);
  EXPECT_TRUE(dip.all("sluice_budget_used").empty());

  // A limit removed by a reload keeps its last counts; a new one starts.
  r.status = status_with(12, 3);
  r.limits = {limit_row("b", 1, 0)};
  const Parsed later = parse(e.render(r, nullptr));
  expect_counters_only_grew(dip, later);
  EXPECT_EQ(later.value("sluice_calls_total", {{"decision", "admitted"}}), 12);
  EXPECT_EQ(later.value("sluice_decisions_total", {{"limit", "a"}, {"decision", "admitted"}}), 8);
  EXPECT_EQ(later.value("sluice_decisions_total", {{"limit", "b"}, {"decision", "admitted"}}), 1);

  // The segment cannot be read: counters hold, the sidecar is down.
  const Parsed gone = parse(e.render(SegmentReading{}, nullptr));
  expect_counters_only_grew(later, gone);
  EXPECT_EQ(gone.value("sluice_sidecar_up"), 0);
}

TEST(AuditTally, CountsWhatWasChargedAndWhatWasRejected) {
  AuditTally tally(1000);
  const std::vector<AuditAttributeView> batch = {
      {"team", "batch"}, {"model", "gpt-4o-mini"}, {"user", "u1"}};
  auto with = [&](fb::Event ev, fb::Decision d, const char* reason) {
    DecodedRecord r = record(ev, d, batch);
    r.reason = reason;
    r.est_input_tokens = 1000;
    r.est_output_tokens = 500;
    r.actual_input_tokens = 10;
    r.actual_output_tokens = 20;
    r.cost_nusd = 7;
    return r;
  };
  tally.observe(with(fb::Event::Reserve, fb::Decision::Admitted, ""));  // estimates: nothing
  tally.observe(with(fb::Event::Extend, fb::Decision::Admitted, ""));
  tally.observe(with(fb::Event::Cancel, fb::Decision::Settled, ""));
  tally.observe(with(fb::Event::Commit, fb::Decision::Settled, ""));  // 10 + 20
  tally.observe(with(fb::Event::Abandon, fb::Decision::Abandoned, "charged_at_estimate"));
  tally.observe(with(fb::Event::Abandon, fb::Decision::Abandoned, "finished_commit"));
  DecodedRecord refunded = with(fb::Event::Abandon, fb::Decision::Abandoned, "refunded_partial");
  refunded.cost_nusd = 0;
  tally.observe(refunded);
  tally.observe(with(fb::Event::Reserve, fb::Decision::Rejected, "rate_limited"));

  const AuditTally::Counts c = tally.counts();
  ASSERT_EQ(c.tokens.size(), 2u);
  const std::vector<std::string> who_in = {"batch", "", "gpt-4o-mini", "input"};
  const std::vector<std::string> who_out = {"batch", "", "gpt-4o-mini", "output"};
  EXPECT_EQ(c.tokens[0].labels, who_in);  // a missing attribute is ""
  EXPECT_TRUE(c.tokens[0].value == whole(10 + 1000 + 10));
  EXPECT_EQ(c.tokens[1].labels, who_out);
  EXPECT_TRUE(c.tokens[1].value == whole(20 + 500 + 20));
  ASSERT_EQ(c.cost_usd.size(), 1u);
  EXPECT_TRUE(c.cost_usd[0].value == 21);  // nano-dollars: commit, estimate, finished commit
  ASSERT_EQ(c.rejections.size(), 1u);
  EXPECT_EQ(c.rejections[0].labels, (std::vector<std::string>{"", "rate_limited"}));
  EXPECT_TRUE(c.rejections[0].value == whole(1));
}

TEST(AuditTally, ANewModelVersionShowsAsANewSeriesAndEachTeamGetsLatencyHistograms) {
  AuditTally tally(1000);
  auto commit = [&](const char* team, const char* version, std::uint64_t latency_ns,
                    std::uint64_t ttft_ns) {
    const std::vector<AuditAttributeView> attrs = {{"team", team}, {"model", "gpt-4o"}};
    DecodedRecord r = record(fb::Event::Commit, fb::Decision::Settled, attrs);
    r.outcome = "ok";
    r.model_version = version;
    r.latency_ns = latency_ns;
    r.ttft_ns = ttft_ns;
    tally.observe(r);
  };
  commit("pricing", "gpt-4o-2024-08-06", 40'000'000, 8'000'000);  // (25, 50] ms, (5, 10] ms
  commit("pricing", "gpt-4o-2024-08-06", 9'000'000'000, 0);       // (8, 10] s, no ttft
  commit("search", "", 0, 0);                                     // nothing reported
  Exposition e(1000);
  SegmentReading r;
  r.status = status_with(0, 0);
  const std::string text = e.render(r, &tally);
  std::ofstream("/tmp/x/metrics.txt") << text;
  Parsed p = parse(text);
  ASSERT_TRUE(p.errors.empty()) << ::testing::PrintToString(p.errors);
  EXPECT_EQ(
      p.value("sluice_model_version_info", {{"model", "gpt-4o"}, {"version", "gpt-4o-2024-08-06"}}),
      1);
  EXPECT_EQ(p.all("sluice_model_version_info").size(), 1u);
  EXPECT_EQ(
      p.value("sluice_team_call_latency_seconds_bucket", {{"team", "pricing"}, {"le", "0.05"}}), 1);
  EXPECT_EQ(p.value("sluice_team_call_latency_seconds_bucket", {{"team", "pricing"}, {"le", "10"}}),
            2);
  EXPECT_EQ(p.value("sluice_team_call_latency_seconds_count", {{"team", "pricing"}}), 2);
  EXPECT_EQ(p.value("sluice_team_call_latency_seconds_sum", {{"team", "pricing"}}), 9.04);
  EXPECT_EQ(p.value("sluice_team_call_ttft_seconds_bucket", {{"team", "pricing"}, {"le", "0.01"}}),
            1);
  EXPECT_EQ(p.value("sluice_team_call_ttft_seconds_count", {{"team", "pricing"}}), 1);
  EXPECT_EQ(p.all("sluice_team_call_latency_seconds_count").size(), 1u);  // search reported nothing

  // The provider starts serving a new version: a second series appears.
  commit("pricing", "gpt-4o-2024-11-20", 40'000'000, 0);
  p = parse(e.render(r, &tally));
  EXPECT_EQ(
      p.value("sluice_model_version_info", {{"model", "gpt-4o"}, {"version", "gpt-4o-2024-11-20"}}),
      1);
  EXPECT_EQ(p.all("sluice_model_version_info").size(), 2u);
  EXPECT_EQ(p.value("sluice_team_call_latency_seconds_count", {{"team", "pricing"}}), 3);
}

TEST(AuditTally, TeamsPastTheSeriesCapShareOneOtherHistogram) {
  AuditTally tally(3);  // two teams of their own, then "__other__"
  for (const char* team : {"a", "b", "c", "d"}) {
    const std::vector<AuditAttributeView> attrs = {{"team", team}};
    DecodedRecord r = record(fb::Event::Commit, fb::Decision::Settled, attrs);
    r.latency_ns = 1'000'000;
    tally.observe(r);
  }
  const AuditTally::Counts c = tally.counts();
  ASSERT_EQ(c.teams.size(), 3u);
  EXPECT_EQ(c.teams[0].team, "a");
  EXPECT_EQ(c.teams[1].team, "b");
  EXPECT_EQ(c.teams[2].team, "__other__");
  EXPECT_EQ(c.teams[2].latency[0], 2u);  // c and d, 1 ms: <= 5 ms
  EXPECT_EQ(c.teams[2].latency_sum_ns, 2'000'000u);
}

// ---------------------------------------------------------------------------
// The endpoint

// A loopback port nothing listens on now: bound to port 0, then let go.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// A socket listening on 127.0.0.1:`port` until destroyed.
class HeldPort {
 public:
  explicit HeldPort(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 1), 0);
  }
  ~HeldPort() { ::close(fd_); }
  HeldPort(const HeldPort&) = delete;
  HeldPort& operator=(const HeldPort&) = delete;

 private:
  int fd_;
};

std::string listen_at(int port) { return "127.0.0.1:" + std::to_string(port); }

TEST(MetricsServer, AnswersMetricsAsExpositionTextAndNotFoundElsewhere) {
  const int port = free_port();
  std::atomic<int> renders{0};
  Result<std::unique_ptr<MetricsServer>> s = MetricsServer::bind(listen_at(port), [&] {
    ++renders;
    return std::string("# HELP x An x.\n# TYPE x gauge\nx 1\n");
  });
  ASSERT_TRUE(s.ok()) << s.status().message();
  (*s)->start();
  EXPECT_EQ((*s)->url(), "http://127.0.0.1:" + std::to_string(port) + "/metrics");
  httplib::Client http("127.0.0.1", port);
  httplib::Result ok = http.Get("/metrics");
  ASSERT_TRUE(ok) << httplib::to_string(ok.error());
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(ok->body, "# HELP x An x.\n# TYPE x gauge\nx 1\n");
  for (const char* path : {"/", "/metrics/", "/metricsx", "/other"}) {
    httplib::Result missing = http.Get(path);
    ASSERT_TRUE(missing) << path;
    EXPECT_EQ(missing->status, 404) << path;
  }
  httplib::Result post = http.Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 404);
  EXPECT_EQ(renders.load(), 1);
  (*s)->stop();
  EXPECT_FALSE(httplib::Client("127.0.0.1", port).Get("/metrics"));
}

TEST(MetricsServer, ATakenPortFailsInOneLineThatSaysWhatToDo) {
  const int port = free_port();
  HeldPort held(port);
  Result<std::unique_ptr<MetricsServer>> s =
      MetricsServer::bind(listen_at(port), [] { return std::string(); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(), "metrics.listen " + listen_at(port) +
                                      ": address in use; pick another port or stop what holds it");
}

TEST(MetricsServer, AnAddressThisHostDoesNotHaveFailsInOneLine) {
  Result<std::unique_ptr<MetricsServer>> s =
      MetricsServer::bind("192.0.2.1:9464", [] { return std::string(); });  // TEST-NET-1
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().message(),
            "metrics.listen 192.0.2.1:9464: not an address of this host; listen on 127.0.0.1 or "
            "one of this host's");
  Result<std::unique_ptr<MetricsServer>> unresolved =
      MetricsServer::bind("no-such-host.invalid:9464", [] { return std::string(); });
  ASSERT_FALSE(unresolved.ok());
  EXPECT_EQ(
      unresolved.status().message().rfind(
          "metrics.listen no-such-host.invalid:9464: cannot resolve 'no-such-host.invalid'", 0),
      0u)
      << unresolved.status().message();
  EXPECT_EQ(unresolved.status().message().find('\n'), std::string::npos);
}

TEST(MetricsServer, BoundButNeverStartedLetsThePortGo) {
  const int port = free_port();
  {
    Result<std::unique_ptr<MetricsServer>> s =
        MetricsServer::bind(listen_at(port), [] { return std::string(); });
    ASSERT_TRUE(s.ok()) << s.status().message();
  }
  Result<std::unique_ptr<MetricsServer>> again =
      MetricsServer::bind(listen_at(port), [] { return std::string(); });
  EXPECT_TRUE(again.ok()) << again.status().message();
}

// ---------------------------------------------------------------------------
// In process: scrapes while the drain and a client run (what TSan watches).

std::string scrape_text(int port) {
  httplib::Client http("127.0.0.1", port);
  httplib::Result r = http.Get("/metrics");
  return r && r->status == 200 ? r->body : std::string();
}

TEST(SidecarMetrics, ScrapesWhileClientsDecideOnlySeeCountersGrow) {
  const int port = free_port();
  SidecarOptions options;
  options.audit = SidecarOptions::Audit::kThread;
  options.sync = SidecarOptions::Sync::kOff;
  testing::SidecarHarness h("metrics-inproc", R"(
models:
  m: { input_usd_per_mtok: 1.00, output_usd_per_mtok: 3.00 }
limits:
  - name: per-team
    match: { team: "*" }
    tokens_per_day: 1000000000
metrics:
  listen: )" + listen_at(port) + "\n",
                            "", options);
  ASSERT_NE(h.sidecar().metrics(), nullptr);
  std::atomic<bool> done{false};
  std::thread client([&] {
    [&] {
      Client c = h.attach();
      const Attribute attrs[] = {{"team", "t"}, {"model", "m"}};
      for (int i = 0; i < 3000; ++i) {
        const Decision d = c.reserve_raw({attrs, 10, 10});
        ASSERT_TRUE(d.admitted);
        ASSERT_TRUE(c.commit(d.reservation_id, 10, 10).ok());
      }
    }();
    done = true;
  });
  Parsed last = parse(scrape_text(port));
  ASSERT_TRUE(last.errors.empty()) << ::testing::PrintToString(last.errors);
  while (!done) {
    const Parsed next = parse(scrape_text(port));
    ASSERT_TRUE(next.errors.empty()) << ::testing::PrintToString(next.errors);
    expect_counters_only_grew(last, next);
    last = next;
  }
  client.join();
  const Labels who = {{"team", "t"}, {"feature", ""}, {"model", "m"}};
  // 10 + 10 tokens a call: 10,000 + 30,000 nano-dollars.
  ASSERT_TRUE(eventually([&] {
    return parse(scrape_text(port)).value("sluice_cost_usd_total", who) >= 0.12 - 1e-9;
  })) << scrape_text(port);
  const Parsed end = parse(scrape_text(port));
  expect_counters_only_grew(last, end);
  EXPECT_NEAR(end.value("sluice_cost_usd_total", who), 0.12, 1e-9);
  EXPECT_EQ(end.value("sluice_calls_total", {{"decision", "admitted"}}), 3000);
  EXPECT_GT(end.value("sluice_decision_latency_seconds_count"), 0);  // 3000 reserves: sampled
  h.stop();
  EXPECT_FALSE(httplib::Client("127.0.0.1", port).Get("/metrics"));
}

// ---------------------------------------------------------------------------
// A real sluiced

const std::string kBuild = testing::build_root();

struct Spawned {
  pid_t pid = -1;
  std::string output_path;
  std::string output() const { return testing::read_text(output_path); }
};

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The TCP ports process `pid` listens on (its sockets, found in /proc/net/tcp{,6}).
std::set<int> listening_ports(pid_t pid) {
  std::set<std::string> inodes;
  std::error_code ec;
  for (const auto& fd :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    const std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
    if (target.rfind("socket:[", 0) == 0) inodes.insert(target.substr(8, target.size() - 9));
  }
  std::set<int> ports;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the header
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      f >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >>
          inode;
      if (state == "0A" && inodes.count(inode) != 0) {  // 0A: LISTEN
        ports.insert(std::stoi(local.substr(local.rfind(':') + 1), nullptr, 16));
      }
    }
  }
  return ports;
}

bool alive(const std::string& segment) {
  Result<SegmentStatus> s = read_status(segment);
  return s.ok() && s->sidecar_alive;
}

// Known prices: gpt-4o costs 2500 nano-dollars an input token and 10000 an
// output token; gpt-4o-mini 150 and 600.
const char* const kPolicy = R"(
models:
  gpt-4o: { input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00 }
  gpt-4o-mini: { input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60 }
limits:
  - name: pricing-daily-usd
    match: { team: pricing, feature: quote-agent }
    usd_per_day: 1.00
  - name: support-models
    match: { team: support }
    models: [gpt-4o-mini]
  - name: team-tokens-daily
    match: { team: "*" }
    tokens_per_day: 1000000
  - name: user-requests
    match: { team: "*", user: "*" }
    requests_per_minute: 1
    shadow: true
)";

class RealSluiced : public ::testing::Test {
 protected:
  void TearDown() override {
    for (pid_t p : started_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
    for (const std::string& s : segments_) {
      (void)SegmentMap::remove(s);
      std::remove(sidecar_lock_path(s).c_str());
      std::remove(("/tmp/" + s + ".yaml").c_str());
      std::filesystem::remove_all(testing::test_audit_dir(s));
      testing::remove_test_store(testing::test_store_path(s));
    }
    for (const std::string& f : outputs_) std::remove(f.c_str());
  }
  // A segment of its own with `kPolicy` and `metrics_block` (may be empty).
  std::string policy(const std::string& metrics_block) {
    const std::string segment = testing::unique_segment("metrics");
    segments_.push_back(segment);
    return testing::write_policy(segment, std::string(kPolicy) + metrics_block);
  }
  std::string segment_of(const std::string& policy_path) const {
    return std::filesystem::path(policy_path).stem().string();
  }
  Spawned spawn(const std::string& policy_path) {
    static int n = 0;
    Spawned sp;
    sp.output_path =
        "/tmp/metrics-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++) + ".out";
    outputs_.push_back(sp.output_path);
    sp.pid = testing::spawn_child(
        {kBuild + "/sidecar/sluiced", "--foreground", "--config", policy_path, "--tick-ms", "20"},
        sp.output_path, sp.output_path);
    EXPECT_GT(sp.pid, 0);
    return sp;
  }
  Spawned start(const std::string& policy_path) {
    Spawned sp = spawn(policy_path);
    started_.push_back(sp.pid);
    EXPECT_TRUE(eventually([&] { return alive(segment_of(policy_path)); })) << sp.output();
    return sp;
  }
  void stop(const Spawned& sp) {
    ::kill(sp.pid, SIGTERM);
    EXPECT_EQ(wait_exit(sp.pid), 0) << sp.output();
    started_.erase(std::remove(started_.begin(), started_.end(), sp.pid), started_.end());
  }

  std::vector<std::string> segments_, outputs_;
  std::vector<pid_t> started_;
};

// One call: reserve, then commit `in`/`out` tokens when admitted.
Decision call(Client& c, const std::vector<Attribute>& attrs, std::uint64_t est_in,
              std::uint64_t est_out, std::uint64_t in, std::uint64_t out) {
  const Decision d = c.reserve_raw({attrs, est_in, est_out});
  if (d.admitted) {
    EXPECT_TRUE(c.commit(d.reservation_id, in, out).ok());
  }
  return d;
}

const std::vector<Attribute> kPricing = {
    {"team", "pricing"}, {"feature", "quote-agent"}, {"model", "gpt-4o"}};
const std::vector<Attribute> kPricingAnn = {
    {"team", "pricing"}, {"feature", "quote-agent"}, {"model", "gpt-4o"}, {"user", "ann"}};
const std::vector<Attribute> kSupport = {{"team", "support"}, {"model", "gpt-4o"}};

// Whether process `pid` holds a client registration in `segment`.
bool registered(const std::string& segment, pid_t pid) {
  Result<SegmentMap> m = SegmentMap::attach(segment, SegmentMap::Access::kReadOnly);
  for (std::uint64_t i = 0; m.ok() && i < m->client_count(); ++i) {
    if (shm::load_acquire(m->clients()[i].pid) == static_cast<shm::Word>(pid)) return true;
  }
  return false;
}

// Client::attach, made sure of. A reclaim pass that runs while a client
// attaches can free the new registration (libquota/reclaim.cc frees a slot
// that was free when it scanned and has been claimed since), which would
// lose this test's counts: wait out a few ticks and attach again if so.
Result<Client> attach_surely(const std::string& segment) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    Result<Client> c = Client::attach(segment);
    if (!c.ok()) return c;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // five ticks
    if (registered(segment, ::getpid())) return c;
  }
  return Status(ErrorCode::kIo, "the registration in '" + segment + "' keeps being freed");
}

// In a child process: attach, run `work`, exit (0 when it held).
template <class Work>
int in_child(const std::string& segment, Work work) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    Result<Client> c = attach_surely(segment);
    if (!c.ok()) ::_exit(3);
    ::_exit(work(c.value()) ? 0 : 4);
  }
  return wait_exit(pid);
}

TEST_F(RealSluiced, ServesTheWorkloadsDecisionsCostsAndBudgetsAndCountersOnlyGrow) {
  const int port = free_port();
  const std::string path = policy("metrics:\n  listen: " + listen_at(port) + "\n");
  const std::string segment = segment_of(path);
  Spawned sp = start(path);
  EXPECT_TRUE(eventually([&] {
    return sp.output().find("metrics on http://" + listen_at(port) + "/metrics") !=
           std::string::npos;
  })) << sp.output();
  EXPECT_EQ(listening_ports(sp.pid), std::set<int>{port});

  Result<Client> c = attach_surely(segment);
  ASSERT_TRUE(c.ok()) << c.status().message();
  // Three commits of 777 + 333 gpt-4o tokens: 5,272,500 nano-dollars each.
  EXPECT_TRUE(call(*c, kPricingAnn, 1000, 500, 777, 333).admitted);
  const Decision shadowed = call(*c, kPricingAnn, 1000, 500, 777, 333);
  EXPECT_TRUE(shadowed.admitted);
  EXPECT_NE(shadowed.shadow_rejects, 0u);  // user-requests would have said no
  EXPECT_TRUE(call(*c, kPricing, 1000, 500, 777, 333).admitted);
  // Two calls for a model support may not use, one that would pass the budget.
  for (int i = 0; i < 2; ++i) {
    const Decision d = call(*c, kSupport, 100, 100, 0, 0);
    EXPECT_FALSE(d.admitted);
    EXPECT_EQ(d.reason, Reason::kModelNotAllowed);
  }
  const Decision too_much = call(*c, kPricing, 395'000, 0, 0, 0);  // $0.9875 > $0.9841825 left
  EXPECT_FALSE(too_much.admitted);
  EXPECT_EQ(too_much.reason, Reason::kBudgetExhausted);
  // A client that dies holding a reservation: charged at its estimate of
  // 1001 + 203 gpt-4o-mini tokens, 271,950 nano-dollars.
  EXPECT_EQ(in_child(segment,
                     [](Client& child) {
                       const std::vector<Attribute> batch = {
                           {"team", "batch"}, {"feature", "nightly"}, {"model", "gpt-4o-mini"}};
                       return child.reserve_raw({batch, 1001, 203}).admitted;
                     }),
            0);

  const Labels pricing = {{"team", "pricing"}, {"feature", "quote-agent"}, {"model", "gpt-4o"}};
  const Labels batch = {{"team", "batch"}, {"feature", "nightly"}, {"model", "gpt-4o-mini"}};
  // Once the sidecar has settled the dead client and drained every record.
  Parsed first;
  ASSERT_TRUE(eventually([&] {
    first = parse(scrape_text(port));
    return first.value("sluice_reservations_abandoned_total") == 1 &&
           first.value("sluice_reservations_in_flight") == 0 &&
           first.value("sluice_audit_records_drained_total") == 10 &&
           first.find("sluice_cost_usd_total", batch) != nullptr &&
           first.value("sluice_calls_total", {{"decision", "admitted"}}) == 4;
  })) << scrape_text(port);
  ASSERT_TRUE(first.errors.empty()) << ::testing::PrintToString(first.errors);
  for (const auto& [family, type] : kFamilies) {
    EXPECT_EQ(first.type.count(family), 1u) << family;
    EXPECT_EQ(first.help.count(family), 1u) << family;
  }
  EXPECT_EQ(first.value("sluice_sidecar_up"), 1);
  EXPECT_EQ(first.value("sluice_calls_total", {{"decision", "rejected"}}), 3);
  EXPECT_EQ(first.value("sluice_decisions_total",
                        {{"limit", "pricing-daily-usd"}, {"decision", "admitted"}}),
            3);
  EXPECT_EQ(first.value("sluice_decisions_total",
                        {{"limit", "pricing-daily-usd"}, {"decision", "rejected"}}),
            1);
  EXPECT_EQ(first.value("sluice_decisions_total",
                        {{"limit", "support-models"}, {"decision", "rejected"}}),
            2);
  EXPECT_EQ(first.value("sluice_decisions_total",
                        {{"limit", "user-requests"}, {"decision", "shadow_rejected"}}),
            1);
  EXPECT_EQ(first.value("sluice_rejections_total",
                        {{"limit", "support-models"}, {"reason", "model_not_allowed"}}),
            2);
  EXPECT_EQ(first.value("sluice_rejections_total",
                        {{"limit", "pricing-daily-usd"}, {"reason", "budget_exhausted"}}),
            1);
  EXPECT_NEAR(first.value("sluice_cost_usd_total", pricing), 0.0158175, 1e-9);
  EXPECT_NEAR(first.value("sluice_cost_usd_total", batch), 0.00027195, 1e-9);
  Labels in = pricing, out = pricing;
  in["direction"] = "input";
  out["direction"] = "output";
  EXPECT_EQ(first.value("sluice_tokens_total", in), 3 * 777);
  EXPECT_EQ(first.value("sluice_tokens_total", out), 3 * 333);
  Labels batch_in = batch;
  batch_in["direction"] = "input";
  EXPECT_EQ(first.value("sluice_tokens_total", batch_in), 1001);
  const std::vector<const ParsedSample*> usd = first.all("sluice_budget_remaining");
  const auto pricing_budget = std::find_if(usd.begin(), usd.end(), [](const ParsedSample* s) {
    return s->labels.at("limit") == "pricing-daily-usd";
  });
  ASSERT_NE(pricing_budget, usd.end());
  EXPECT_EQ((*pricing_budget)->labels.at("unit"), "usd");
  EXPECT_NEAR((*pricing_budget)->value, 1.0 - 0.0158175, 1e-9);
  EXPECT_EQ(
      first.value("sluice_budget_used",
                  {{"limit", "team-tokens-daily"}, {"key", "team=pricing"}, {"unit", "tokens"}}),
      3 * (777 + 333));
  EXPECT_EQ(first.value("sluice_keys_capacity"), 65536);
  EXPECT_EQ(first.value("sluice_store_up"), 1);
  EXPECT_EQ(first.value("sluice_decision_latency_seconds_count"),
            first.value("sluice_decision_latency_seconds_bucket", {{"le", "+Inf"}}));

  // More work, from a process that exits: its counts move into the header.
  EXPECT_EQ(in_child(segment,
                     [](Client& child) {
                       bool ok = call(child, kPricing, 1000, 500, 777, 333).admitted;
                       ok = call(child, kPricing, 1000, 500, 777, 333).admitted && ok;
                       return !call(child, kSupport, 1, 1, 0, 0).admitted && ok;
                     }),
            0);
  Parsed second;
  ASSERT_TRUE(eventually([&] {
    second = parse(scrape_text(port));
    return second.value("sluice_calls_total", {{"decision", "admitted"}}) == 6 &&
           second.value("sluice_clients_attached") == 1 &&
           second.value("sluice_rejections_total",
                        {{"limit", "support-models"}, {"reason", "model_not_allowed"}}) == 3;
  })) << scrape_text(port);
  ASSERT_TRUE(second.errors.empty()) << ::testing::PrintToString(second.errors);
  expect_counters_only_grew(first, second);
  EXPECT_NEAR(second.value("sluice_cost_usd_total", pricing), 5 * 0.0052725, 1e-9);
  EXPECT_EQ(second.value("sluice_calls_total", {{"decision", "rejected"}}), 4);
  EXPECT_EQ(second.value("sluice_decisions_total",
                         {{"limit", "pricing-daily-usd"}, {"decision", "admitted"}}),
            5);
  stop(sp);
}

TEST_F(RealSluiced, ASecondSluicedOnATakenMetricsPortFailsInOneLine) {
  const int port = free_port();
  const std::string metrics = "metrics:\n  listen: " + listen_at(port) + "\n";
  const std::string first_path = policy(metrics), second_path = policy(metrics);
  Spawned first = start(first_path);
  Spawned second = spawn(second_path);
  EXPECT_EQ(wait_exit(second.pid), 2);
  EXPECT_EQ(second.output(), "sluiced: metrics.listen " + listen_at(port) +
                                 ": address in use; pick another port or stop what holds it\n");
  EXPECT_FALSE(SegmentMap::exists(segment_of(second_path)));  // refused before the segment
  EXPECT_TRUE(alive(segment_of(first_path)));
  EXPECT_EQ(parse(scrape_text(port)).value("sluice_sidecar_up"), 1);
  stop(first);
}

TEST_F(RealSluiced, WithoutAMetricsBlockNothingIsServed) {
  const std::string path = policy("");
  Spawned sp = start(path);
  EXPECT_TRUE(eventually([&] { return sp.output().find(", metrics off") != std::string::npos; }))
      << sp.output();
  EXPECT_TRUE(listening_ports(sp.pid).empty());
  stop(sp);
}

}  // namespace
}  // namespace sluice
