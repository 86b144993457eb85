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

}  // namespace

}  // namespace sluice
