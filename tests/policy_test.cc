// Policy parsing: exact values from the example, and one test per rejected input.
#include "sluice/policy.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice {
namespace {

const std::string kExample = std::string(SLUICE_SOURCE_ROOT) + "/examples/policy.yaml";

// True when `r` failed with kInvalidArgument and one line starting with `prefix`
// ("FILE:LINE: FIELD: ") and containing `detail`.
::testing::AssertionResult Rejected(const Result<Policy>& r, const std::string& prefix,
                                    const std::string& detail = "") {
  if (r.ok()) return ::testing::AssertionFailure() << "policy was accepted";
  const std::string& m = r.status().message();
  if (r.status().code() != ErrorCode::kInvalidArgument) {
    return ::testing::AssertionFailure() << "wrong code for: " << m;
  }
  if (m.find('\n') != std::string::npos) {
    return ::testing::AssertionFailure() << "message spans lines: " << m;
  }
  if (m.rfind(prefix, 0) != 0) {
    return ::testing::AssertionFailure() << "message does not start with '" << prefix << "': " << m;
  }
  if (m.find(detail) == std::string::npos) {
    return ::testing::AssertionFailure() << "message lacks '" << detail << "': " << m;
  }
  return ::testing::AssertionSuccess() << m;
}

Result<Policy> Parse(const std::string& yaml) { return parse_policy(yaml, "bad.yaml"); }

// A valid one-limit policy whose limit body (indented 4) is `body`; the body starts on line 3.
Result<Policy> ParseLimit(const std::string& body) {
  return Parse("limits:\n  - name: l\n" + body);
}

const LimitSpec* FindLimit(const Policy& p, const std::string& name) {
  for (const LimitSpec& l : p.limits) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

TEST(PolicyTest, ExampleLoadsWithExactValues) {
  Result<Policy> r = load_policy_file(kExample);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const Policy& p = r.value();
  EXPECT_EQ(p.source, kExample);
  EXPECT_EQ(p.segment.name, "sluice-demo");
  EXPECT_EQ(p.segment.max_keys, 65536u);
  EXPECT_EQ(p.segment.max_reservations, 16384u);
  EXPECT_EQ(p.segment.audit_ring_bytes, 16u << 20);
  EXPECT_EQ(p.store.kind, "sqlite");
  EXPECT_EQ(p.store.path, "var/sluice.db");

  ASSERT_EQ(p.models.size(), 2u);
  EXPECT_EQ(p.models[0].name, "gpt-4o");
  EXPECT_EQ(p.models[0].input_pusd_per_token, 2500000u);
  EXPECT_EQ(p.models[0].output_pusd_per_token, 10000000u);
  EXPECT_EQ(p.models[0].cached_pusd_per_token, 0u);
  EXPECT_EQ(p.models[1].name, "gpt-4o-mini");
  EXPECT_EQ(p.models[1].input_pusd_per_token, 150000u);
  EXPECT_EQ(p.models[1].output_pusd_per_token, 600000u);

  ASSERT_EQ(p.limits.size(), 5u);
  const LimitSpec& tokens = p.limits[0];
  EXPECT_EQ(tokens.name, "team-tokens");
  EXPECT_EQ(tokens.line, 13);
  EXPECT_EQ(tokens.kind, LimitKind::kRate);
  EXPECT_EQ(tokens.measure, Measure::kTokens);
  EXPECT_EQ(tokens.period, Period::kMinute);
  EXPECT_EQ(tokens.amount, 200000u);
  EXPECT_EQ(tokens.burst, 50000u);
  ASSERT_EQ(tokens.match.size(), 1u);
  EXPECT_EQ(tokens.match[0].attribute, "team");
  EXPECT_TRUE(tokens.match[0].wildcard);
  EXPECT_EQ(tokens.match[0].value, "");
  EXPECT_FALSE(tokens.shadow);
  EXPECT_EQ(tokens.scope, Scope::kLocal);
  EXPECT_EQ(tokens.on_store_down, OnStoreDown::kFailClosed);

  const LimitSpec& requests = p.limits[1];
  EXPECT_EQ(requests.line, 17);
  EXPECT_EQ(requests.measure, Measure::kRequests);
  EXPECT_EQ(requests.period, Period::kSecond);
  EXPECT_EQ(requests.amount, 50u);
  EXPECT_EQ(requests.burst, 100u);

  const LimitSpec& usd = p.limits[2];
  EXPECT_EQ(usd.name, "pricing-daily-usd");
  EXPECT_EQ(usd.line, 21);
  EXPECT_EQ(usd.kind, LimitKind::kBudget);
  EXPECT_EQ(usd.measure, Measure::kUsd);
  EXPECT_EQ(usd.period, Period::kDay);
  EXPECT_EQ(usd.amount, 25000000000u);
  EXPECT_EQ(usd.timezone, "America/New_York");

  ASSERT_EQ(p.alerts.size(), 3u);
  EXPECT_EQ(p.alerts[0].name, "pricing-burn");
  EXPECT_EQ(p.alerts[0].kind, AlertKind::kExhaustsWithin);
  EXPECT_EQ(p.alerts[0].budget, "pricing-daily-usd");
  EXPECT_EQ(p.alerts[0].value_ns, 7'200'000'000'000u);
  EXPECT_EQ(p.alerts[1].kind, AlertKind::kErrorRateAbove);
  EXPECT_EQ(p.alerts[1].model, "gpt-4o-mini");
  EXPECT_EQ(p.alerts[1].rate, 0.05);
  EXPECT_EQ(p.alerts[2].kind, AlertKind::kP99LatencyAbove);
  EXPECT_EQ(p.alerts[2].value_ns, 8'000'000'000u);
  EXPECT_EQ(p.alerts_webhook, "");
  ASSERT_EQ(usd.match.size(), 2u);
  EXPECT_EQ(usd.match[0].attribute, "feature");
  EXPECT_EQ(usd.match[0].value, "quote-agent");
  EXPECT_FALSE(usd.match[0].wildcard);
  EXPECT_EQ(usd.match[1].attribute, "team");
  EXPECT_EQ(usd.match[1].value, "pricing");

  const LimitSpec& access = p.limits[3];
  EXPECT_EQ(access.kind, LimitKind::kModelAccess);
  EXPECT_EQ(access.models, std::vector<std::string>{"gpt-4o-mini"});

  const LimitSpec& users = p.limits[4];
  EXPECT_EQ(users.line, 28);
  EXPECT_EQ(users.measure, Measure::kRequests);
  EXPECT_EQ(users.period, Period::kMinute);
  EXPECT_EQ(users.amount, 60u);
  EXPECT_EQ(users.burst, 1u);  // 60/min is 1/s
  EXPECT_TRUE(users.shadow);
  EXPECT_EQ(users.timezone, "UTC");
}

TEST(PolicyTest, DefaultBurstIsOneSecondOfRateRoundedUp) {
  Result<Policy> r = Parse(R"(limits:
  - { name: rps, requests_per_second: 50 }
  - { name: tpm, tokens_per_minute: 200000 }
  - { name: rph, requests_per_hour: 7201 }
  - { name: slow, output_tokens_per_hour: 1 }
)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(FindLimit(*r, "rps")->burst, 50u);
  EXPECT_EQ(FindLimit(*r, "tpm")->burst, 3334u);
  EXPECT_EQ(FindLimit(*r, "rph")->burst, 3u);
  EXPECT_EQ(FindLimit(*r, "slow")->burst, 1u);
  EXPECT_EQ(FindLimit(*r, "slow")->measure, Measure::kOutputTokens);
}

TEST(PolicyTest, MatchTermsAreSortedByAttributeWithWildcardsFlagged) {
  Result<Policy> r =
      ParseLimit(R"(    match: { user: "*", team: pricing, feature: "quote-agent", model: "*" }
    requests_per_second: 5
)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const auto& m = r->limits[0].match;
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0].attribute, "feature");
  EXPECT_EQ(m[1].attribute, "model");
  EXPECT_EQ(m[2].attribute, "team");
  EXPECT_EQ(m[3].attribute, "user");
  EXPECT_FALSE(m[0].wildcard);
  EXPECT_EQ(m[0].value, "quote-agent");
  EXPECT_TRUE(m[1].wildcard);
  EXPECT_EQ(m[1].value, "");
  EXPECT_TRUE(m[3].wildcard);
}

TEST(PolicyTest, AmountsConvertExactlyWithoutFloatingPoint) {
  Result<Policy> r = Parse(R"(models:
  tiny: { input_usd_per_mtok: 0.000001, output_usd_per_mtok: 0.1, cached_usd_per_mtok: 1.25 }
limits:
  - { name: nano, usd_per_month: 0.000000001 }
  - { name: whole, usd_per_week: 25 }
  - { name: odd, usd_per_day: 0.29 }
)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->models[0].input_pusd_per_token, 1u);
  EXPECT_EQ(r->models[0].output_pusd_per_token, 100000u);
  EXPECT_EQ(r->models[0].cached_pusd_per_token, 1250000u);
  EXPECT_EQ(FindLimit(*r, "nano")->amount, 1u);
  EXPECT_EQ(FindLimit(*r, "nano")->period, Period::kMonth);
  EXPECT_EQ(FindLimit(*r, "whole")->amount, 25000000000u);
  EXPECT_EQ(FindLimit(*r, "odd")->amount, 290000000u);  // 0.29 is not exact as a double
}

TEST(PolicyTest, StoreAuditAndGlobalScopeAreRead) {
  Result<Policy> r = Parse(R"(segment: { group: sluice, audit_ring_bytes: 65536 }
store: { kind: redis, url: "redis://cache:6379", host_id: host-a }
audit:
  dir: /var/lib/sluice/audit
  required: true
  fsync_interval_ms: 10
  rotate_bytes: 1GiB
  rotate_seconds: 600
  retain_files: 7
  retain_seconds: 86400
limits:
  - name: global-usd
    usd_per_month: 1000
    scope: global
    on_store_down: local_share
)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->segment.group, "sluice");
  EXPECT_EQ(r->segment.audit_ring_bytes, 65536u);
  EXPECT_EQ(r->store.kind, "redis");
  EXPECT_EQ(r->store.url, "redis://cache:6379");
  EXPECT_EQ(r->store.host_id, "host-a");
  EXPECT_EQ(r->audit.dir, "/var/lib/sluice/audit");
  EXPECT_TRUE(r->audit.required);
  EXPECT_EQ(r->audit.fsync_interval_ms, 10u);
  EXPECT_EQ(r->audit.rotate_bytes, 1u << 30);
  EXPECT_EQ(r->audit.rotate_seconds, 600u);
  EXPECT_EQ(r->audit.retain_files, 7u);
  EXPECT_EQ(r->audit.retain_seconds, 86400u);
  EXPECT_TRUE(r->audit.enabled);
  EXPECT_EQ(r->limits[0].scope, Scope::kGlobal);
  EXPECT_EQ(r->limits[0].on_store_down, OnStoreDown::kLocalShare);
}

TEST(PolicyTest, OmittedSectionsKeepDefaults) {
  Result<Policy> r = Parse("limits: []\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->limits.empty());
  EXPECT_EQ(r->segment.name, "sluice");
  EXPECT_EQ(r->store.kind, "sqlite");
  EXPECT_EQ(r->audit.fsync_interval_ms, 50u);
  EXPECT_EQ(r->audit.rotate_bytes, 64u << 20);
  EXPECT_EQ(r->audit.rotate_seconds, 3600u);
  EXPECT_EQ(r->audit.retain_files, 24u);
  EXPECT_EQ(r->audit.retain_seconds, 0u);
  EXPECT_TRUE(r->audit.enabled);
  EXPECT_FALSE(r->audit.required);
}

TEST(PolicyTest, AuditCanBeTurnedOff) {
  Result<Policy> r = Parse("audit:\n  enabled: false\nlimits: []\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE(r->audit.enabled);
}

TEST(PolicyTest, RejectsRequiredAuditWhileAuditIsOff) {
  EXPECT_TRUE(Rejected(Parse("audit:\n  enabled: false\n  required: true\nlimits: []\n"),
                       "bad.yaml:1: audit.required: is true while audit.enabled is false; "
                       "enable audit or drop required"));
}

TEST(PolicyTest, RejectsANegativeAuditRetention) {
  EXPECT_TRUE(Rejected(Parse("audit:\n  retain_seconds: -1\nlimits: []\n"),
                       "bad.yaml:2: audit.retain_seconds:"));
}

TEST(PolicyTest, ModelAccessMayNameUnpricedModels) {
  Result<Policy> r = ParseLimit("    models: [claude-3-5-sonnet, gpt-4o]\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->limits[0].models, (std::vector<std::string>{"claude-3-5-sonnet", "gpt-4o"}));
}

TEST(PolicyTest, MeasureAndPeriodNames) {
  EXPECT_STREQ(to_string(Measure::kRequests), "requests");
  EXPECT_STREQ(to_string(Measure::kTokens), "tokens");
  EXPECT_STREQ(to_string(Measure::kInputTokens), "input_tokens");
  EXPECT_STREQ(to_string(Measure::kOutputTokens), "output_tokens");
  EXPECT_STREQ(to_string(Measure::kUsd), "usd");
  EXPECT_STREQ(to_string(Period::kSecond), "second");
  EXPECT_STREQ(to_string(Period::kMinute), "minute");
  EXPECT_STREQ(to_string(Period::kHour), "hour");
  EXPECT_STREQ(to_string(Period::kDay), "day");
  EXPECT_STREQ(to_string(Period::kWeek), "week");
  EXPECT_STREQ(to_string(Period::kMonth), "month");
}

// ---- Rejected inputs: one test each.

TEST(PolicyTest, RejectsUnknownTopLevelKey) {
  EXPECT_TRUE(Rejected(Parse("limits: []\nlimts: []\n"), "bad.yaml:2: limts: unknown key",
                       "allowed: segment, store, models, limits, audit"));
}

TEST(PolicyTest, RejectsUnknownLimitKey) {
  EXPECT_TRUE(Rejected(ParseLimit("    requests_per_second: 5\n    tokens_per_fortnight: 9\n"),
                       "bad.yaml:4: limits[0].tokens_per_fortnight: unknown key",
                       "usd_per_{day,week,month}"));
}

TEST(PolicyTest, RejectsNegativeRate) {
  EXPECT_TRUE(Rejected(ParseLimit("    tokens_per_minute: -5\n"),
                       "bad.yaml:3: limits[0].tokens_per_minute: '-5' is negative",
                       "positive integer"));
}

TEST(PolicyTest, RejectsZeroRate) {
  EXPECT_TRUE(Rejected(ParseLimit("    requests_per_second: 0\n"),
                       "bad.yaml:3: limits[0].requests_per_second: is zero"));
}

TEST(PolicyTest, RejectsNonIntegerRate) {
  EXPECT_TRUE(Rejected(ParseLimit("    requests_per_minute: 1.5\n"),
                       "bad.yaml:3: limits[0].requests_per_minute: '1.5' is not a whole number"));
}

TEST(PolicyTest, RejectsUnknownTimeZone) {
  EXPECT_TRUE(Rejected(ParseLimit("    usd_per_day: 25.00\n    timezone: America/New_Yrok\n"),
                       "bad.yaml:4: limits[0].timezone: unknown time zone 'America/New_Yrok'",
                       "IANA"));
}

TEST(PolicyTest, RejectsTimeZoneOnRate) {
  EXPECT_TRUE(Rejected(ParseLimit("    timezone: UTC\n    requests_per_second: 5\n"),
                       "bad.yaml:3: limits[0].timezone: only budgets",
                       "remove timezone from requests_per_second"));
}

TEST(PolicyTest, RejectsDuplicateLimitNameNamingBothLines) {
  Result<Policy> r = Parse(R"(limits:
  - name: team-tokens
    tokens_per_minute: 100
  - name: other
    requests_per_second: 1
  - name: team-tokens
    requests_per_second: 2
)");
  EXPECT_TRUE(Rejected(r, "bad.yaml:6: limits[2].name: 'team-tokens'", "on line 2"));
}

TEST(PolicyTest, RejectsPriceMissingItsUnit) {
  Result<Policy> r = Parse(R"(models:
  gpt-4o:
    input: 2.5
    output_usd_per_mtok: 10
limits: []
)");
  EXPECT_TRUE(Rejected(r, "bad.yaml:3: models.gpt-4o.input: unknown key", "input_usd_per_mtok"));
}

TEST(PolicyTest, RejectsModelWithoutOutputPrice) {
  Result<Policy> r = Parse("models:\n  gpt-4o: { input_usd_per_mtok: 2.5 }\nlimits: []\n");
  EXPECT_TRUE(Rejected(r, "bad.yaml:2: models.gpt-4o.output_usd_per_mtok: missing"));
}

TEST(PolicyTest, RejectsPriceWithSevenDecimals) {
  Result<Policy> r = Parse(
      "models:\n  m: { input_usd_per_mtok: 0.0000001, output_usd_per_mtok: 1 }\nlimits: []\n");
  EXPECT_TRUE(Rejected(r, "bad.yaml:2: models.m.input_usd_per_mtok: '0.0000001' has more than 6"));
}

TEST(PolicyTest, RejectsUsdWithTenDecimals) {
  EXPECT_TRUE(Rejected(ParseLimit("    usd_per_day: 0.0000000001\n"),
                       "bad.yaml:3: limits[0].usd_per_day: '0.0000000001' has more than 9 "
                       "decimal places"));
}

TEST(PolicyTest, RejectsZeroUsdBudget) {
  EXPECT_TRUE(Rejected(ParseLimit("    usd_per_day: 0.00\n"),
                       "bad.yaml:3: limits[0].usd_per_day: must be a positive amount",
                       "usd_per_day: 25.00"));
}

TEST(PolicyTest, RejectsTwoMeasuresInOneLimit) {
  EXPECT_TRUE(Rejected(ParseLimit("    requests_per_second: 5\n    tokens_per_minute: 100\n"),
                       "bad.yaml:4: limits[0].tokens_per_minute: a limit has one measure",
                       "requests_per_second (line 3); split them into two limits"));
}

TEST(PolicyTest, RejectsLimitWithoutMeasure) {
  EXPECT_TRUE(Rejected(ParseLimit("    match: { team: a }\n"),
                       "bad.yaml:2: limits[0]: has no measure", "usd_per_{day,week,month}"));
}

TEST(PolicyTest, RejectsLimitWithoutName) {
  EXPECT_TRUE(Rejected(Parse("limits:\n  - requests_per_second: 5\n"),
                       "bad.yaml:2: limits[0].name: missing"));
}

TEST(PolicyTest, RejectsBurstTokensOnRequestRate) {
  EXPECT_TRUE(Rejected(ParseLimit("    requests_per_second: 5\n    burst_tokens: 10\n"),
                       "bad.yaml:4: limits[0].burst_tokens: applies only to token rates",
                       "use burst_requests"));
}

TEST(PolicyTest, RejectsBurstOnBudget) {
  EXPECT_TRUE(Rejected(ParseLimit("    tokens_per_day: 5\n    burst_tokens: 10\n"),
                       "bad.yaml:4: limits[0].burst_tokens: applies only to token rates",
                       "tokens_per_day has no burst"));
}

TEST(PolicyTest, RejectsTooManyMatchTerms) {
  EXPECT_TRUE(Rejected(
      ParseLimit("    match: { a: x, b: x, c: x, d: x, e: x }\n    requests_per_second: 5\n"),
      "bad.yaml:3: limits[0].match: 5 terms, at most 4"));
}

TEST(PolicyTest, RejectsBadAttributeName) {
  EXPECT_TRUE(Rejected(ParseLimit("    match: { Team: x }\n    requests_per_second: 5\n"),
                       "bad.yaml:3: limits[0].match.Team: is not an attribute name"));
}

TEST(PolicyTest, RejectsUnquotedWildcardAsYamlAlias) {
  EXPECT_TRUE(Rejected(ParseLimit("    match: { team: * }\n    requests_per_second: 5\n"),
                       "bad.yaml:3: YAML syntax:", "write \"*\" for a wildcard"));
}

TEST(PolicyTest, RejectsBadSegmentName) {
  EXPECT_TRUE(Rejected(Parse("segment:\n  name: sluice/demo\nlimits: []\n"),
                       "bad.yaml:2: segment.name: 'sluice/demo' is not a shared-memory name",
                       "no slash"));
}

TEST(PolicyTest, RejectsAuditRingBytesNotPowerOfTwo) {
  EXPECT_TRUE(Rejected(Parse("segment:\n  audit_ring_bytes: 48MiB\nlimits: []\n"),
                       "bad.yaml:2: segment.audit_ring_bytes: '48MiB' must be a power of two"));
}

TEST(PolicyTest, RejectsAuditRingBytesBelow64KiB) {
  EXPECT_TRUE(Rejected(Parse("segment:\n  audit_ring_bytes: 32KiB\nlimits: []\n"),
                       "bad.yaml:2: segment.audit_ring_bytes: '32KiB' must be a power of two "
                       "from 64KiB to 1GiB"));
}

TEST(PolicyTest, RejectsBadSizeSuffix) {
  EXPECT_TRUE(Rejected(Parse("segment:\n  audit_ring_bytes: 16MB\nlimits: []\n"),
                       "bad.yaml:2: segment.audit_ring_bytes: '16MB' has an unknown unit 'MB'",
                       "KiB, MiB or GiB"));
}

TEST(PolicyTest, RejectsMaxKeysOutOfRange) {
  EXPECT_TRUE(
      Rejected(Parse("segment:\n  max_keys: 16777217\nlimits: []\n"),
               "bad.yaml:2: segment.max_keys: '16777217' is out of range; use 1..16777216"));
}

TEST(PolicyTest, RejectsRedisWithoutUrl) {
  EXPECT_TRUE(Rejected(Parse("store:\n  host_id: a\n  kind: redis\nlimits: []\n"),
                       "bad.yaml:3: store.url: missing", "redis://"));
}

TEST(PolicyTest, RejectsUrlThatIsNotRedis) {
  EXPECT_TRUE(Rejected(Parse("store: { kind: redis, url: \"http://x\" }\nlimits: []\n"),
                       "bad.yaml:1: store.url: 'http://x' is not a redis URL"));
}

TEST(PolicyTest, RejectsYamlSyntaxErrorAtItsLine) {
  Result<Policy> r = Parse(R"(segment:
  name: demo
limits:
  - name: a
    match: { team: x
    requests_per_second: 5
)");
  // yaml-cpp reports the unclosed flow map where it gives up, at the next key.
  EXPECT_TRUE(Rejected(r, "bad.yaml:6: YAML syntax:"));
}

TEST(PolicyTest, RejectsBadIndentationAtItsLine) {
  EXPECT_TRUE(Rejected(Parse("limits:\n  - name: a\n   requests_per_second: 5\n"),
                       "bad.yaml:3: YAML syntax:"));
}

TEST(PolicyTest, RejectsDuplicateKey) {
  EXPECT_TRUE(Rejected(ParseLimit("    requests_per_second: 5\n    name: b\n"),
                       "bad.yaml:4: limits[0].name: appears twice (also on line 2)"));
}

TEST(PolicyTest, MissingFileIsNotFound) {
  Result<Policy> r = load_policy_file("/nonexistent/policy.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(r.status().message(),
            "cannot read policy file /nonexistent/policy.yaml: No such file or directory; check "
            "the path");
}

TEST(PolicyTest, DirectoryIsNotAPolicyFile) {
  Result<Policy> r = load_policy_file(SLUICE_SOURCE_ROOT);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kIo);
  EXPECT_NE(r.status().message().find("Is a directory"), std::string::npos);
}

TEST(PolicyTest, RejectsEmptyFile) {
  EXPECT_TRUE(Rejected(Parse(""), "bad.yaml:1: policy: the file is empty"));
  EXPECT_TRUE(Rejected(Parse("# only a comment\n"), "bad.yaml:1: policy: the file is empty"));
}

// yaml-cpp 0.7's LoadAll loops forever on these (found by tests/fuzz/fuzz_policy).
TEST(PolicyTest, RejectsAStrayTopLevelCommaAsSyntaxInsteadOfHanging) {
  EXPECT_TRUE(Rejected(Parse(","), "bad.yaml:1: YAML syntax: unexpected ','"));
  EXPECT_TRUE(Rejected(Parse(",ls1i"), "bad.yaml:1: YAML syntax: unexpected ','"));
  EXPECT_TRUE(Rejected(Parse("--- ,"), "bad.yaml:1: YAML syntax: unexpected ','"));
}

TEST(PolicyTest, RejectsASecondDocumentNamingItsLine) {
  EXPECT_TRUE(Rejected(Parse("limits: []\n---\nlimits: []\n---\nlimits: []\n"),
                       "bad.yaml:2: policy: a second YAML document starts here; keep one policy "
                       "per file"));
}

TEST(PolicyTest, RejectsMissingLimits) {
  EXPECT_TRUE(Rejected(Parse("segment: { name: a }\n"), "bad.yaml:1: limits: missing"));
}

TEST(PolicyTest, RejectsLimitsThatAreNotAList) {
  EXPECT_TRUE(
      Rejected(Parse("segment: { name: a }\nlimits:\n  name: x\n  requests_per_second: 1\n"),
               "bad.yaml:3: limits: must be a list"));
}

TEST(PolicyTest, RejectsEmptyModelAccessList) {
  EXPECT_TRUE(Rejected(ParseLimit("    models: []\n"),
                       "bad.yaml:3: limits[0].models: must be a non-empty list"));
}

TEST(PolicyTest, RejectsMoreThan64Limits) {
  std::string yaml = "limits:\n";
  for (int i = 0; i < 65; ++i) {
    yaml += "  - { name: l" + std::to_string(i) + ", requests_per_second: 1 }\n";
  }
  EXPECT_TRUE(Rejected(Parse(yaml), "bad.yaml:66: limits[64]: more than 64 limits"));
}

TEST(PolicyTest, TheMultiHostExampleSharesABudgetAndARateThroughRedis) {
  Result<Policy> r =
      load_policy_file(std::string(SLUICE_SOURCE_ROOT) + "/examples/multi-host.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const Policy& p = r.value();
  EXPECT_EQ(p.store.kind, "redis");
  EXPECT_EQ(p.store.url, "redis://127.0.0.1:6379/0");
  EXPECT_EQ(p.store.host_id, "host-a");
  EXPECT_EQ(p.store.sync_interval_ms, 250u);
  EXPECT_EQ(p.store.lease_ms, 5000u);
  EXPECT_EQ(p.store.timeout_ms, 500u);
  ASSERT_EQ(p.limits.size(), 3u);
  EXPECT_EQ(p.limits[0].scope, Scope::kGlobal);
  EXPECT_EQ(p.limits[0].on_store_down, OnStoreDown::kLocalShare);
  EXPECT_EQ(p.limits[0].amount, 500'000'000'000u);
  EXPECT_EQ(p.limits[1].scope, Scope::kGlobal);
  EXPECT_EQ(p.limits[2].scope, Scope::kLocal);
}

TEST(PolicyTest, RejectsALeaseNoLongerThanTheSyncInterval) {
  EXPECT_TRUE(Rejected(Parse("store:\n  sync_interval_ms: 1000\n  lease_ms: 1000\n"),
                       "bad.yaml:1: store.lease_ms: must be longer than sync_interval_ms (1000)",
                       "e.g. lease_ms: 20000"));
  EXPECT_TRUE(Rejected(Parse("store:\n  sync_interval_ms: 0\n"),
                       "bad.yaml:2: store.sync_interval_ms: is zero"));
  EXPECT_TRUE(Rejected(Parse("store:\n  timeout_ms: 60001\n"),
                       "bad.yaml:2: store.timeout_ms: '60001' is out of range; use 1..60000"));
}

TEST(PolicyTest, RejectsOnStoreDownOnALocalLimitAndAGlobalModelAccess) {
  EXPECT_TRUE(Rejected(ParseLimit("    requests_per_second: 1\n    on_store_down: fail_open\n"),
                       "bad.yaml:4: limits[0].on_store_down: applies only to limits shared "
                       "through the store; add scope: global"));
  EXPECT_TRUE(Rejected(ParseLimit("    models: [gpt-4o]\n    scope: global\n"),
                       "bad.yaml:4: limits[0].scope: model access is the same on every host"));
}

TEST(PolicyTest, RejectsBadScopeChoice) {
  EXPECT_TRUE(Rejected(ParseLimit("    requests_per_second: 1\n    scope: cluster\n"),
                       "bad.yaml:4: limits[0].scope: 'cluster' is not a choice; use local or "
                       "global"));
}

// A valid policy with one priced model, a budget and a rate, whose one alert (at
// alerts[0], line 7) has the body `body`, indented 4, starting on line 8.
Result<Policy> ParseAlert(const std::string& body) {
  return Parse(R"(models:
  gpt-4o: { input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00 }
limits:
  - { name: pricing-daily-usd, usd_per_day: 25.00 }
  - { name: team-tokens, tokens_per_minute: 1000 }
alerts:
  - name: a
)" + body);
}

TEST(PolicyTest, AlertsAndWebhookParseToExactValues) {
  Result<Policy> r = Parse(R"(models:
  gpt-4o: { input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00 }
limits:
  - { name: pricing-daily-usd, usd_per_day: 25.00 }
alerts_webhook: http://127.0.0.1:9093/hook
alerts:
  - name: pricing-burn
    budget: pricing-daily-usd
    when: exhausts_within
    value: 2h
  - name: gpt4o-slow
    model: gpt-4o
    when: p99_latency_above
    value: 8s
    over: 5m
  - name: errors
    when: error_rate_above
    value: 0.05
    over: 5m
    min_calls: 20
)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->alerts_webhook, "http://127.0.0.1:9093/hook");
  ASSERT_EQ(r->alerts.size(), 3u);

  const AlertSpec& burn = r->alerts[0];
  EXPECT_EQ(burn.name, "pricing-burn");
  EXPECT_EQ(burn.kind, AlertKind::kExhaustsWithin);
  EXPECT_EQ(burn.budget, "pricing-daily-usd");
  EXPECT_EQ(burn.model, "");
  EXPECT_EQ(burn.value_ns, 7'200'000'000'000u);
  EXPECT_EQ(burn.rate, 0.0);

  const AlertSpec& slow = r->alerts[1];
  EXPECT_EQ(slow.name, "gpt4o-slow");
  EXPECT_EQ(slow.kind, AlertKind::kP99LatencyAbove);
  EXPECT_EQ(slow.budget, "");
  EXPECT_EQ(slow.model, "gpt-4o");
  EXPECT_EQ(slow.value_ns, 8'000'000'000u);
  EXPECT_EQ(slow.over_ns, 300'000'000'000u);
  EXPECT_EQ(slow.min_calls, 10u);  // the default

  const AlertSpec& errors = r->alerts[2];
  EXPECT_EQ(errors.name, "errors");
  EXPECT_EQ(errors.kind, AlertKind::kErrorRateAbove);
  EXPECT_EQ(errors.model, "");  // all models together
  EXPECT_EQ(errors.value_ns, 0u);
  EXPECT_EQ(errors.rate, 0.05);
  EXPECT_EQ(errors.over_ns, 300'000'000'000u);
  EXPECT_EQ(errors.min_calls, 20u);
}

TEST(PolicyTest, NoAlertsSectionMeansNoAlertsAndNoWebhook) {
  Result<Policy> r = Parse("limits: []\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->alerts_webhook, "");
  EXPECT_TRUE(r->alerts.empty());
}

TEST(PolicyTest, AlertDurationsTakeMillisecondsSecondsMinutesAndHours) {
  Result<Policy> r = ParseAlert("    when: p99_latency_above\n    value: 500ms\n    over: 90s\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->alerts[0].value_ns, 500'000'000u);
  EXPECT_EQ(r->alerts[0].over_ns, 90'000'000'000u);
  r = ParseAlert("    when: p99_latency_above\n    value: 119s\n    over: 1h\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->alerts[0].value_ns, 119'000'000'000u);
  EXPECT_EQ(r->alerts[0].over_ns, 3'600'000'000'000u);
  r = ParseAlert("    when: exhausts_within\n    budget: pricing-daily-usd\n    value: 45m\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->alerts[0].value_ns, 2'700'000'000'000u);
}

TEST(PolicyTest, AlertsMayComeBeforeTheModelsAndLimitsTheyName) {
  Result<Policy> r = Parse(R"(alerts:
  - { name: burn, when: exhausts_within, budget: daily, value: 30m }
  - { name: slow, when: p99_latency_above, model: gpt-4o, value: 8s }
limits:
  - { name: daily, tokens_per_day: 1000000 }
models:
  gpt-4o: { input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00 }
)");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->alerts[0].budget, "daily");
  EXPECT_EQ(r->alerts[0].value_ns, 1'800'000'000'000u);
  EXPECT_EQ(r->alerts[1].model, "gpt-4o");
}

TEST(PolicyTest, AlertKindNames) {
  EXPECT_STREQ(to_string(AlertKind::kExhaustsWithin), "exhausts_within");
  EXPECT_STREQ(to_string(AlertKind::kP99LatencyAbove), "p99_latency_above");
  EXPECT_STREQ(to_string(AlertKind::kErrorRateAbove), "error_rate_above");
}

TEST(PolicyTest, RejectsUnknownAlertKey) {
  EXPECT_TRUE(Rejected(ParseAlert("    when: error_rate_above\n    value: 0.1\n    for: 5m\n"),
                       "bad.yaml:10: alerts[0].for: unknown key; allowed: name, when, value, "
                       "budget, model, over, min_calls"));
}

TEST(PolicyTest, RejectsAlertWithoutWhen) {
  EXPECT_TRUE(Rejected(ParseAlert("    value: 0.1\n"),
                       "bad.yaml:7: alerts[0].when: missing; write when: exhausts_within, "
                       "p99_latency_above or error_rate_above"));
}

TEST(PolicyTest, RejectsUnknownAlertKind) {
  EXPECT_TRUE(Rejected(ParseAlert("    when: latency_above\n    value: 8s\n"),
                       "bad.yaml:8: alerts[0].when: 'latency_above' is not a choice; use "
                       "exhausts_within, p99_latency_above or error_rate_above"));
}

TEST(PolicyTest, RejectsAlertWithoutValueNamingAnExampleForItsKind) {
  EXPECT_TRUE(Rejected(ParseAlert("    when: p99_latency_above\n"),
                       "bad.yaml:7: alerts[0].value: missing; p99_latency_above needs a "
                       "threshold, e.g. value: 8s"));
  EXPECT_TRUE(Rejected(ParseAlert("    when: exhausts_within\n    budget: pricing-daily-usd\n"),
                       "bad.yaml:7: alerts[0].value: missing; exhausts_within needs a threshold, "
                       "e.g. value: 2h"));
  EXPECT_TRUE(Rejected(ParseAlert("    when: error_rate_above\n"),
                       "bad.yaml:7: alerts[0].value: missing; error_rate_above needs a "
                       "threshold, e.g. value: 0.05"));
}

TEST(PolicyTest, RejectsDurationsThatAreNotAWholeNumberAndAUnit) {
  const auto value = [](const std::string& v) {
    return ParseAlert("    when: p99_latency_above\n    value: " + v + "\n");
  };
  const std::string fix = "write a whole number and ms, s, m or h, e.g. value: 8s";
  EXPECT_TRUE(Rejected(value("8"), "bad.yaml:9: alerts[0].value: '8' has no unit; " + fix));
  EXPECT_TRUE(
      Rejected(value("1.5s"), "bad.yaml:9: alerts[0].value: '1.5s' is not a duration; " + fix));
  EXPECT_TRUE(
      Rejected(value("8 s"), "bad.yaml:9: alerts[0].value: '8 s' is not a duration; " + fix));
  EXPECT_TRUE(Rejected(value("2d"), "bad.yaml:9: alerts[0].value: '2d' is not a duration; " + fix));
  EXPECT_TRUE(
      Rejected(value("-5s"), "bad.yaml:9: alerts[0].value: '-5s' is not a duration; " + fix));
  EXPECT_TRUE(Rejected(value("0ms"), "bad.yaml:9: alerts[0].value: '0ms' is zero; " + fix));
  EXPECT_TRUE(Rejected(value("99999999999999999999h"),
                       "bad.yaml:9: alerts[0].value: '99999999999999999999h' is too long; " + fix));
  EXPECT_TRUE(Rejected(value("[8s]"), "bad.yaml:9: alerts[0].value: must be a duration; " + fix));
}

TEST(PolicyTest, RejectsAP99ThresholdTheHistogramCannotExceed) {
  EXPECT_TRUE(Rejected(ParseAlert("    when: p99_latency_above\n    value: 2m\n"),
                       "bad.yaml:9: alerts[0].value: '2m' can never be exceeded: call latency is "
                       "measured up to 120s"));
}

TEST(PolicyTest, RejectsAWindowOutsideOneMinuteToOneHour) {
  EXPECT_TRUE(
      Rejected(ParseAlert("    when: error_rate_above\n    value: 0.1\n    over: 30s\n"),
               "bad.yaml:10: alerts[0].over: '30s' is out of range; use 1m to 1h, e.g. over: 5m"));
  EXPECT_TRUE(
      Rejected(ParseAlert("    when: error_rate_above\n    value: 0.1\n    over: 61m\n"),
               "bad.yaml:10: alerts[0].over: '61m' is out of range; use 1m to 1h, e.g. over: 5m"));
  EXPECT_TRUE(Rejected(ParseAlert("    when: error_rate_above\n    value: 0.1\n    over: 5\n"),
                       "bad.yaml:10: alerts[0].over: '5' has no unit; write a whole number and "
                       "ms, s, m or h, e.g. over: 5m"));
}

TEST(PolicyTest, RejectsAnErrorRateThatIsNotAFractionAboveZeroAtMostOne) {
  for (const char* v : {"0", "0.0", "1.5", "5%", "-0.1", "high"}) {
    EXPECT_TRUE(
        Rejected(ParseAlert(std::string("    when: error_rate_above\n    value: ") + v + "\n"),
                 "bad.yaml:9: alerts[0].value: '" + std::string(v) +
                     "' is not a fraction above 0 and at most 1; write e.g. value: 0.05 "
                     "for 5%"));
  }
  Result<Policy> r = ParseAlert("    when: error_rate_above\n    value: 1\n");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->alerts[0].rate, 1.0);
}

TEST(PolicyTest, RejectsBudgetOnALatencyOrErrorRateAlert) {
  EXPECT_TRUE(Rejected(ParseAlert("    when: p99_latency_above\n    value: 8s\n    budget: "
                                  "pricing-daily-usd\n"),
                       "bad.yaml:10: alerts[0].budget: only exhausts_within watches a budget; "
                       "remove budget (p99_latency_above watches calls"));
  EXPECT_TRUE(Rejected(ParseAlert("    when: error_rate_above\n    budget: x\n    value: 0.1\n"),
                       "bad.yaml:9: alerts[0].budget: only exhausts_within watches a budget"));
}

TEST(PolicyTest, RejectsModelOverAndMinCallsOnExhaustsWithin) {
  const std::string head =
      "    when: exhausts_within\n    budget: pricing-daily-usd\n    value: 2h\n";
  EXPECT_TRUE(Rejected(ParseAlert(head + "    model: gpt-4o\n"),
                       "bad.yaml:11: alerts[0].model: exhausts_within watches a budget, not a "
                       "model; remove model"));
  EXPECT_TRUE(Rejected(ParseAlert(head + "    over: 5m\n"),
                       "bad.yaml:11: alerts[0].over: exhausts_within projects the last 5 minutes "
                       "of spend and takes no window; remove over"));
  EXPECT_TRUE(Rejected(ParseAlert(head + "    min_calls: 5\n"),
                       "bad.yaml:11: alerts[0].min_calls: applies only to p99_latency_above and "
                       "error_rate_above; remove it"));
}

TEST(PolicyTest, RejectsExhaustsWithinWithoutABudget) {
  EXPECT_TRUE(Rejected(ParseAlert("    when: exhausts_within\n    value: 2h\n"),
                       "bad.yaml:7: alerts[0].budget: missing; exhausts_within needs the budget "
                       "to watch; name a budget: pricing-daily-usd"));
}

TEST(PolicyTest, RejectsABudgetThatNamesARateLimitOrNothing) {
  EXPECT_TRUE(Rejected(
      ParseAlert("    when: exhausts_within\n    value: 2h\n    budget: team-tokens\n"),
      "bad.yaml:10: alerts[0].budget: 'team-tokens' is a rate limit (line 5), which never runs "
      "out; name a budget: pricing-daily-usd"));
  EXPECT_TRUE(
      Rejected(ParseAlert("    when: exhausts_within\n    value: 2h\n    budget: pricing-usd\n"),
               "bad.yaml:10: alerts[0].budget: 'pricing-usd' is not a limit in limits:; name a "
               "budget: pricing-daily-usd"));
  EXPECT_TRUE(Rejected(
      Parse("limits:\n  - { name: rps, requests_per_second: 5 }\nalerts:\n"
            "  - { name: a, when: exhausts_within, value: 2h, budget: rps }\n"),
      "bad.yaml:4: alerts[0].budget: 'rps' is a rate limit (line 2), which never runs out; this "
      "policy has no budget; add a limit with usd_per_day, tokens_per_month, ..."));
}

TEST(PolicyTest, RejectsAnAlertModelThatIsNotInThePriceTable) {
  EXPECT_TRUE(Rejected(
      ParseAlert("    when: p99_latency_above\n    value: 8s\n    model: gpt-5\n"),
      "bad.yaml:10: alerts[0].model: 'gpt-5' is not in models: (the price table, where calls are "
      "counted); name one of gpt-4o, or remove model to watch all models"));
}

TEST(PolicyTest, RejectsDuplicateAlertNameNamingBothLines) {
  EXPECT_TRUE(Rejected(ParseAlert("    when: error_rate_above\n    value: 0.1\n"
                                  "  - { name: a, when: error_rate_above, value: 0.2 }\n"),
                       "bad.yaml:10: alerts[1].name: 'a' is also the name of the alert on line 7; "
                       "give each alert its own name"));
}

TEST(PolicyTest, RejectsBadOrMissingAlertName) {
  EXPECT_TRUE(Rejected(Parse("limits: []\nalerts:\n  - { name: \"pricing burn\", when: "
                             "error_rate_above, value: 0.1 }\n"),
                       "bad.yaml:3: alerts[0].name: 'pricing burn' is not an alert name; use up "
                       "to 63 letters, digits, '.', '_' or '-'"));
  EXPECT_TRUE(Rejected(Parse("limits: []\nalerts:\n  - name: " + std::string(64, 'a') +
                             "\n    when: error_rate_above\n    value: 0.1\n"),
                       "bad.yaml:3: alerts[0].name:", "is not an alert name"));
  EXPECT_TRUE(Rejected(Parse("limits: []\nalerts:\n  - { when: error_rate_above, value: 0.1 }\n"),
                       "bad.yaml:3: alerts[0].name: missing; every alert needs a unique name"));
}

TEST(PolicyTest, RejectsAlertsThatAreNotAListOfMaps) {
  EXPECT_TRUE(Rejected(Parse("limits: []\nalerts:\n  name: a\n"),
                       "bad.yaml:3: alerts: must be a list of alerts"));
  EXPECT_TRUE(Rejected(Parse("limits: []\nalerts:\n  - errors\n"),
                       "bad.yaml:3: alerts[0]: must be a map such as {name: errors"));
}

TEST(PolicyTest, RejectsAWebhookThatIsNotAnHttpUrlWithHostAndPort) {
  const auto hook = [](const std::string& url) {
    return Parse("limits: []\nalerts_webhook: " + url + "\n");
  };
  const std::string fix = "; write alerts_webhook: http://127.0.0.1:9093/hook";
  EXPECT_TRUE(Rejected(hook("https://alerts.example.com:443/hook"),
                       "bad.yaml:2: alerts_webhook: 'https://alerts.example.com:443/hook' is not "
                       "an http:// URL (sluiced posts plain HTTP)" +
                           fix));
  EXPECT_TRUE(Rejected(hook("127.0.0.1:9093"),
                       "bad.yaml:2: alerts_webhook: '127.0.0.1:9093' is not an http:// URL"));
  EXPECT_TRUE(Rejected(hook("http://alertmanager/hook"),
                       "bad.yaml:2: alerts_webhook: 'http://alertmanager/hook' needs a host and a "
                       "port" +
                           fix));
  EXPECT_TRUE(Rejected(hook("http://:9093/hook"),
                       "bad.yaml:2: alerts_webhook:", "needs a host and a port"));
  EXPECT_TRUE(Rejected(hook("http://host:70000"),
                       "bad.yaml:2: alerts_webhook:", "needs a host and a port"));
  EXPECT_TRUE(Rejected(hook("http://user@host:80/"),
                       "bad.yaml:2: alerts_webhook:", "needs a host and a port"));
  EXPECT_TRUE(Rejected(hook("\"http://host:80/a b\""),
                       "bad.yaml:2: alerts_webhook:", "has a space or control character"));
  EXPECT_TRUE(Rejected(hook("\"\""), "bad.yaml:2: alerts_webhook: must be a non-empty text value"));

  for (const char* ok : {"http://alertmanager:9093", "http://[::1]:9093/api/v2/alerts",
                         "http://hooks.internal:8080/sluice?team=pricing"}) {
    Result<Policy> r = hook(ok);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->alerts_webhook, ok);
  }
}

}  // namespace

}  // namespace sluice
