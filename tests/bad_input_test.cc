// Bad input through the C++ API: a call outside the bounds of
// sluice/quota.h is rejected as invalid_argument (a commit or extend with a
// SettleError) and charges nothing; attribute values are bytes, compared
// whole; costs and debts past 64 bits saturate instead of wrapping; an
// unknown or settled reservation is never charged again. Each test reads the
// cells and the audit ring (nothing drains it: the sidecar runs without its
// audit pipeline) before and after.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "audit_record.h"
#include "audit_ring_reader.h"
#include "clock.h"
#include "settle.h"
#include "sluice/inspect.h"
#include "sluice_fixture.h"

namespace sluice {
namespace {

using testing::SidecarHarness;
using Attrs = std::vector<std::pair<std::string, std::string>>;

// gpt-4o: 2500 nUSD an input token, 10000 an output token. absurd: 5e12
// pUSD a token, so 2^32 tokens cost past 2^64 nUSD.
const char* const kPolicy = R"(
models:
  gpt-4o: { input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00 }
  absurd: { input_usd_per_mtok: 5000000, output_usd_per_mtok: 5000000 }
limits:
  - name: team-usd
    match: { team: "*" }
    usd_per_day: 1000000
  - name: stream-tokens
    match: { team: "*", feature: stream }
    tokens_per_hour: 1
    burst_tokens: 10
)";

struct Record {
  shm::Word event = 0;
  shm::Word decision = 0;
  shm::Word reason = 0;
  std::uint64_t reservation_id = 0;
  Attrs attrs;
};

// Every record the ring holds now.
std::vector<Record> drain(const SegmentMap& seg) {
  AuditRingReader reader(seg);
  std::vector<Record> out;
  while (reader.poll(monotonic_ns(), 1024, [&](std::span<const shm::Word> words) {
    AuditRecordView v;
    EXPECT_TRUE(decode_audit_record(words, &v));
    Record r{shm::info_event(v.fixed.info),
             shm::info_decision(v.fixed.info),
             shm::info_reason(v.fixed.info),
             v.fixed.reservation_id,
             {}};
    for (std::size_t i = 0; i < v.attribute_count; ++i) {
      r.attrs.emplace_back(v.attributes[i].name, v.attributes[i].value);
    }
    out.push_back(std::move(r));
  }) != 0) {
  }
  return out;
}

Decision reserve(Client& c, const Attrs& attrs, std::uint64_t in, std::uint64_t out) {
  std::vector<Attribute> view;
  for (const auto& [name, value] : attrs) view.push_back({name, value});
  return c.reserve_raw({view, in, out});
}

// What describe_invalid_request says about the call ("" when it is valid).
std::string why(const Attrs& attrs, std::uint64_t in = 1, std::uint64_t out = 1) {
  std::vector<Attribute> view;
  for (const auto& [name, value] : attrs) view.push_back({name, value});
  char text[256];
  return describe_invalid_request({view, in, out}, text, sizeof text) ? text : "";
}

SegmentStatus status(const SidecarHarness& h) {
  Result<SegmentStatus> s = read_status(h.segment());
  EXPECT_TRUE(s.ok()) << s.status().message();
  return s.ok() ? s.value() : SegmentStatus{};
}

TEST(BadInput, EmptyNamesAndValuesAreInvalidAndChargeNothing) {
  SidecarHarness h("bad-empty", kPolicy);
  Client c = h.attach();
  const std::vector<Attrs> calls = {
      {{"team", ""}, {"model", "gpt-4o"}},
      {{"team", "a"}, {"", "gpt-4o"}},
      {{"team", "a"}, {"model", ""}},
  };
  for (const Attrs& call : calls) {
    const Decision d = reserve(c, call, 1, 1);
    EXPECT_FALSE(d.admitted);
    EXPECT_EQ(d.reason, Reason::kInvalidArgument);
    EXPECT_EQ(d.limit_index, -1);
    EXPECT_EQ(d.reservation_id, 0u);
  }
  EXPECT_EQ(why(calls[0]), "attribute 'team' has an empty value; give it a value or leave it out");
  EXPECT_EQ(why(calls[1]), "attribute 2 has an empty name; name it, e.g. team");
  EXPECT_EQ(why(calls[2]), "attribute 'model' has an empty value; give it a value or leave it out");
  const SegmentStatus s = status(h);
  EXPECT_EQ(s.keys_used, 0u);  // no cell was even created
  EXPECT_EQ(s.admitted_total, 0u);
  EXPECT_EQ(s.rejected_total, 3u);
  const std::vector<Record> records = drain(h.seg());
  ASSERT_EQ(records.size(), 3u);
  for (std::size_t i = 0; i < records.size(); ++i) {
    EXPECT_EQ(records[i].event, shm::kAuditReserve);
    EXPECT_EQ(records[i].decision, shm::kAuditRejected);
    EXPECT_EQ(records[i].reason, static_cast<shm::Word>(Reason::kInvalidArgument));
    EXPECT_EQ(records[i].attrs, calls[i]);  // what the call carried, as it was
  }
}

TEST(BadInput, AttributesUpToTheBoundsAreKeptWholeAndLargerOnesAreInvalid) {
  SidecarHarness h("bad-size", kPolicy);
  Client c = h.attach();
  const std::string name63(63, 'k'), name64(64, 'k');
  const std::string value255(255, 'v'), value256(256, 'v');
  // 256 + 13 + 256 + 256 + 243 bytes (2 more than name and value each):
  // 1024, the most a call may carry.
  const Attrs fits = {{"team", std::string(250, 't')},
                      {"model", "gpt-4o"},
                      {"a", std::string(253, 'a')},
                      {"b", std::string(253, 'b')},
                      {"c", std::string(240, 'c')}};
  const std::vector<Attrs> valid = {{{"team", value255}, {"model", "gpt-4o"}},
                                    {{"team", "t"}, {"model", "gpt-4o"}, {name63, "x"}},
                                    fits};
  Attrs seventeen;
  for (int i = 0; i < 17; ++i) seventeen.push_back({"a" + std::to_string(i), "x"});
  Attrs past = fits;
  past.back().second += 'c';  // 1025
  const std::vector<std::pair<Attrs, std::string>> invalid = {
      {{{"team", value256}, {"model", "gpt-4o"}},
       "attribute 'team' has a value of 256 bytes, at most 255; pass a shorter value (e.g. an id "
       "or a hash)"},
      {{{"team", "t"}, {name64, "x"}},
       "attribute name '" + name63 + "...' is 64 bytes, at most 63"},
      {past,
       "attributes take 1025 bytes (names and values, 2 more each), at most 1024; leave out "
       "those no limit matches or shorten them"},
      {seventeen, "17 attributes, at most 16: leave out those no limit matches"},
  };
  for (const Attrs& call : valid) {
    EXPECT_EQ(why(call), "");
    const Decision d = reserve(c, call, 0, 1);
    ASSERT_TRUE(d.admitted) << to_string(d.reason);
    EXPECT_EQ(c.commit(d.reservation_id, 0, 1).cost_nusd, 10'000u);
  }
  for (const auto& [call, message] : invalid) {
    EXPECT_EQ(why(call), message);
    EXPECT_EQ(reserve(c, call, 0, 1).reason, Reason::kInvalidArgument);
  }
  EXPECT_EQ(h.cell_value("team-usd", std::string(48, 'v')), 10'000u);  // labels keep 48 bytes
  EXPECT_EQ(status(h).keys_used, 3u);  // one cell per admitted team, none for the rest
  const std::vector<Record> records = drain(h.seg());
  ASSERT_EQ(records.size(), 2 * valid.size() + invalid.size());
  for (std::size_t i = 0; i < valid.size(); ++i) {
    EXPECT_EQ(records[2 * i].attrs, valid[i]);  // the audit record keeps them whole
    EXPECT_EQ(records[2 * i].decision, shm::kAuditAdmitted);
    EXPECT_EQ(records[2 * i + 1].event, shm::kAuditCommit);
  }
}

TEST(BadInput, ValuesAreBytesComparedWholeNulAndNonUtf8Included) {
  SidecarHarness h("bad-bytes", kPolicy);
  Client c = h.attach();
  const std::vector<std::string> teams = {std::string("a\0b", 3), std::string("a\0c", 3), "a",
                                          "caf\xe9", "\xff\xfe"};
  for (const std::string& team : teams) {
    const Decision d = reserve(c, {{"team", team}, {"model", "gpt-4o"}}, 0, 1);
    ASSERT_TRUE(d.admitted) << to_string(d.reason);
    ASSERT_TRUE(c.commit(d.reservation_id, 0, 1).ok());
  }
  EXPECT_EQ(status(h).keys_used, teams.size());  // five cells: no two values merged
  const std::vector<Record> records = drain(h.seg());
  ASSERT_EQ(records.size(), 2 * teams.size());
  for (std::size_t i = 0; i < teams.size(); ++i) {
    EXPECT_EQ(records[2 * i].attrs[0].second, teams[i]);  // recorded byte for byte
  }
}

TEST(BadInput, TokenCountsPastTheBoundAreInvalidAndLeaveTheReservationAsItWas) {
  SidecarHarness h("bad-tokens", kPolicy);
  Client c = h.attach();
  const Attrs call = {{"team", "t"}, {"model", "gpt-4o"}};
  EXPECT_EQ(reserve(c, call, kMaxTokensPerCall + 1, 0).reason, Reason::kInvalidArgument);
  EXPECT_EQ(reserve(c, call, 0, ~std::uint64_t{0}).reason, Reason::kInvalidArgument);
  EXPECT_EQ(why(call, kMaxTokensPerCall + 1, 0),
            "input_tokens 4294967297 is more than 4294967296, the most one call may carry");
  EXPECT_EQ(why(call, 0, ~std::uint64_t{0}),
            "max_output_tokens 18446744073709551615 is more than 4294967296, the most one call "
            "may carry");
  EXPECT_EQ(status(h).keys_used, 0u);

  const Decision whole = reserve(c, call, kMaxTokensPerCall, 0);  // the bound itself passes
  ASSERT_TRUE(whole.admitted) << to_string(whole.reason);
  EXPECT_EQ(whole.estimated_cost_nusd, 2500 * kMaxTokensPerCall);
  ASSERT_TRUE(c.cancel(whole.reservation_id).ok());

  const Decision d = reserve(c, call, 10, 10);  // 125,000 nUSD held
  ASSERT_TRUE(d.admitted);
  EXPECT_EQ(h.cell_value("team-usd", "t"), 125'000u);
  EXPECT_EQ(c.commit(d.reservation_id, kMaxTokensPerCall + 1, 0).error,
            SettleError::kInvalidArgument);
  EXPECT_EQ(c.commit(d.reservation_id, 0, ~std::uint64_t{0}).error, SettleError::kInvalidArgument);
  EXPECT_EQ(c.extend(d.reservation_id, kMaxTokensPerCall + 1).error, SettleError::kInvalidArgument);
  // Each count in range, but 10 + 2^32 output tokens past it.
  EXPECT_EQ(c.extend(d.reservation_id, kMaxTokensPerCall).error, SettleError::kInvalidArgument);
  EXPECT_EQ(h.cell_value("team-usd", "t"), 125'000u);  // still the estimate, still live
  const Settlement s = c.commit(d.reservation_id, 10, 5);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.cost_nusd, 75'000u);
  EXPECT_EQ(h.cell_value("team-usd", "t"), 75'000u);
}

TEST(BadInput, ACostPast64BitsSaturatesInsteadOfWrappingRound) {
  SidecarHarness h("bad-cost", kPolicy);
  Client c = h.attach();
  const Attrs call = {{"team", "rich"}, {"model", "absurd"}};
  // 2^32 tokens at 5e12 pUSD: 2.1e22 nUSD, past 2^64.
  const Decision huge = reserve(c, call, kMaxTokensPerCall, 0);
  EXPECT_EQ(huge.estimated_cost_nusd, ~std::uint64_t{0});
  EXPECT_EQ(huge.reason, Reason::kRequestTooLarge);  // not a wrapped, admissible amount
  EXPECT_EQ(c.limit_name(huge.limit_index), "team-usd");

  const Decision d = reserve(c, call, 1, 1);
  ASSERT_TRUE(d.admitted);
  EXPECT_EQ(d.estimated_cost_nusd, 10'000'000'000u);  // $10
  EXPECT_EQ(h.cell_value("team-usd", "rich"), 10'000'000'000u);
  const Settlement s = c.commit(d.reservation_id, kMaxTokensPerCall, kMaxTokensPerCall);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.cost_nusd, ~std::uint64_t{0});
  // The debt saturates the cell (a wrap would have left it near zero).
  EXPECT_EQ(h.cell_value("team-usd", "rich"), detail::kSaturatedCell);
  EXPECT_EQ(reserve(c, {{"team", "rich"}, {"model", "gpt-4o"}}, 1, 1).reason,
            Reason::kBudgetExhausted);
}

TEST(BadInput, AnExtendTooLargeForARateCellIsRefusedNotWrapped) {
  SidecarHarness h("bad-extend", kPolicy);
  Client c = h.attach();
  // stream-tokens: 1 token an hour (3.6e12 ns each), 10 of burst.
  const Decision d = reserve(c, {{"team", "t"}, {"feature", "stream"}, {"model", "gpt-4o"}}, 1, 0);
  ASSERT_TRUE(d.admitted) << to_string(d.reason);
  const std::uint64_t rate = h.cell_value("stream-tokens", "stream|t");
  const std::uint64_t usd = h.cell_value("team-usd", "t");
  // 3,976,298,167 tokens * 3.6e12 ns is 1.39e12 ns past a multiple of 2^64:
  // wrapped, it would debit less than one token. Refused instead.
  const Extension e = c.extend(d.reservation_id, 3'976'298'167);
  EXPECT_EQ(e.error, SettleError::kNone);
  EXPECT_FALSE(e.admitted);
  EXPECT_EQ(c.limit_name(e.limit_index), "stream-tokens");
  EXPECT_EQ(h.cell_value("stream-tokens", "stream|t"), rate);
  EXPECT_EQ(h.cell_value("team-usd", "t"), usd);
  EXPECT_TRUE(c.commit(d.reservation_id, 1, 0).ok());
}

TEST(BadInput, UnknownIdsAndSecondSettlementsChargeNothing) {
  SidecarHarness h("bad-ids", kPolicy);
  Client c = h.attach();
  const Attrs call = {{"team", "t"}, {"model", "gpt-4o"}};
  const Decision d = reserve(c, call, 0, 100);  // 1,000,000 nUSD held
  ASSERT_TRUE(d.admitted);
  const std::uint64_t wrong_seq = d.reservation_id + (std::uint64_t{1} << 32);
  const std::uint64_t past_the_slots = (std::uint64_t{1} << 32) | 0xffffffffu;
  for (std::uint64_t id : {std::uint64_t{0}, ~std::uint64_t{0}, wrong_seq, past_the_slots,
                           d.reservation_id & 0xffffffffu}) {
    EXPECT_EQ(c.commit(id, 0, 1).error, SettleError::kUnknownReservation) << id;
    EXPECT_EQ(c.cancel(id).error, SettleError::kUnknownReservation) << id;
    EXPECT_EQ(c.extend(id, 1).error, SettleError::kUnknownReservation) << id;
  }
  EXPECT_EQ(h.cell_value("team-usd", "t"), 1'000'000u);

  ASSERT_TRUE(c.commit(d.reservation_id, 0, 50).ok());  // 500,000
  EXPECT_EQ(c.commit(d.reservation_id, 0, 100).error, SettleError::kUnknownReservation);
  EXPECT_EQ(c.cancel(d.reservation_id).error, SettleError::kUnknownReservation);
  EXPECT_EQ(c.extend(d.reservation_id, 1).error, SettleError::kUnknownReservation);
  EXPECT_EQ(h.cell_value("team-usd", "t"), 500'000u);

  const Decision cancelled = reserve(c, call, 0, 100);
  ASSERT_TRUE(cancelled.admitted);
  ASSERT_TRUE(c.cancel(cancelled.reservation_id).ok());
  EXPECT_EQ(c.commit(cancelled.reservation_id, 0, 100).error, SettleError::kUnknownReservation);
  EXPECT_EQ(c.cancel(cancelled.reservation_id).error, SettleError::kUnknownReservation);
  EXPECT_EQ(c.extend(cancelled.reservation_id, 1).error, SettleError::kUnknownReservation);
  EXPECT_EQ(h.cell_value("team-usd", "t"), 500'000u);

  // The RAII handle refuses a second settlement without a call.
  std::vector<Attribute> view = {{"team", "t"}, {"model", "gpt-4o"}};
  Reservation r = c.reserve({view, 0, 100});
  ASSERT_TRUE(r.commit(0, 10).ok());
  EXPECT_EQ(r.commit(0, 10).error, SettleError::kUnknownReservation);
  EXPECT_EQ(r.cancel().error, SettleError::kUnknownReservation);
  EXPECT_EQ(h.cell_value("team-usd", "t"), 600'000u);

  // One record per reserve and one per settlement: nothing for the refusals.
  const std::vector<Record> records = drain(h.seg());
  ASSERT_EQ(records.size(), 6u);
  EXPECT_EQ(records[1].event, shm::kAuditCommit);
  EXPECT_EQ(records[1].reservation_id, d.reservation_id);
  EXPECT_EQ(records[3].event, shm::kAuditCancel);
  EXPECT_EQ(records[5].event, shm::kAuditCommit);
}

TEST(BadInput, DescribeFitsAnyBufferAndNamesControlBytesSafely) {
  char small[8];
  std::vector<Attribute> view = {{"team", ""}};
  EXPECT_TRUE(describe_invalid_request({view, 1, 1}, small, sizeof small));
  EXPECT_EQ(std::string(small), "attribu");  // cut, NUL-terminated
  EXPECT_TRUE(describe_invalid_request({view, 1, 1}, nullptr, 0));
  EXPECT_EQ(why({{"te\nam", ""}}),
            "attribute 'te?am' has an empty value; give it a value or leave it out");
  EXPECT_EQ(why({}), "");
}

}  // namespace
}  // namespace sluice
