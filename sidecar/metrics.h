// sluiced's Prometheus metrics as text (exposition format 0.0.4): what the
// segment counts, read through the read-only inspect API (sluice/inspect.h),
// and what the audit drain saw (AuditTally). Kept apart from the HTTP server
// (metrics_server.h) so that the text can be tested on its own.
//
//   AuditTally tally(policy.metrics.max_series);
//   pipeline->set_observer([&](const DecodedRecord& r) { tally.observe(r); });
//   Exposition exposition(policy.metrics.max_series);
//   std::string text = exposition.render(read_segment("sluice-demo"), &tally);
//
// Every family a render writes has # HELP and # TYPE, samples or not. A
// family holds at most metrics.max_series series: the first max_series - 1
// label sets keep a series of their own, in the order they were first seen,
// for as long as the Exposition (or AuditTally) lives; any later label set
// is counted in one series whose label values are all "__other__". Counters
// only grow from one render to the next.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "audit_pipeline.h"
#include "segment_layout.h"
#include "sluice/inspect.h"
#include "sluice/telemetry.h"

namespace sluice {

// A sample's value, exact, in billionths of its unit: tokens and requests
// times 10^9, USD as nano-dollars, seconds as nanoseconds.
using Billionths = unsigned __int128;
inline constexpr Billionths kBillion = 1'000'000'000;
constexpr Billionths whole(std::uint64_t n) { return Billionths{n} * kBillion; }

// The decimal text of `v` units: "42", "0.0000125" (no exponent, exact).
std::string decimal_text(Billionths v);
// `v` as a label value between double quotes: backslash, quote and newline
// escaped; bytes that are not UTF-8 replaced by U+FFFD.
std::string label_value_text(std::string_view v);
// `v` as # HELP text: backslash and newline escaped.
std::string help_text(std::string_view v);

inline constexpr std::string_view kOtherLabelValue = "__other__";

struct Sample {
  std::vector<std::string> labels;  // values, in the order of the family's label names
  Billionths value = 0;
};

// The series of one family, capped as described above. Not thread-safe.
class SeriesTable {
 public:
  struct Series {
    std::vector<std::string> labels;
    Billionths value = 0;    // what the family shows
    Billionths reading = 0;  // summed by read() during scrape `read_in`
    std::uint64_t read_in = 0;
  };

  explicit SeriesTable(std::uint64_t max_series) : max_series_(max_series) {}

  // The series `labels` is counted in: its own, created on first sight
  // while there is room, else the "__other__" one. References stay valid.
  Series& at(std::span<const std::string_view> labels);
  Series& at(std::initializer_list<std::string_view> labels) {
    return at(std::span<const std::string_view>(labels.begin(), labels.size()));
  }
  // Adds `value` to what scrape `scrape` read for `labels`.
  void read(std::span<const std::string_view> labels, Billionths value, std::uint64_t scrape);
  // Ends scrape `scrape`: a counter's series shows the larger of what it
  // showed and what was read; a gauge's shows what was read.
  void settle(bool counter, std::uint64_t scrape);

  // Own series in first-seen order, then "__other__" if anything folded.
  // `only_read_in`: only the series scrape `only_read_in` read (gauges).
  std::vector<Sample> samples(std::optional<std::uint64_t> only_read_in = std::nullopt) const;

 private:
  std::uint64_t max_series_;
  std::deque<Series> own_;
  std::unordered_map<std::string, std::size_t> index_;
  std::optional<Series> other_;
  std::string key_;  // reused: finding a series allocates nothing once it exists
};

// Counts of what the audit drain saw: rejections by limit and reason;
// tokens and cost charged (commits, and abandonments as the sidecar charged
// them) by team, feature and model; the model versions commits reported; and
// per team, the latency and time to first token commits reported. observe()
// runs on the drain thread, counts() on a scrape's; they share a mutex held
// for a few map lookups, or for copying the counts out.
class AuditTally {
 public:
  explicit AuditTally(std::uint64_t max_series);

  void observe(const DecodedRecord& record);

  // Reported durations of one team's commits, in the buckets of the
  // segment's call stats (shm::kCallLatencyBoundsMs, then everything slower).
  struct TeamCalls {
    std::string team;  // kOtherLabelValue for teams past the cap
    std::array<std::uint64_t, shm::kCallLatencyBuckets> latency{}, ttft{};
    std::uint64_t latency_sum_ns = 0, ttft_sum_ns = 0;
  };
  struct Counts {
    std::vector<Sample> rejections;  // limit, reason; in calls
    std::vector<Sample> tokens;      // team, feature, model, direction (input | output)
    std::vector<Sample> cost_usd;    // team, feature, model
    std::vector<Sample> versions;    // model, version; 1 each
    std::vector<TeamCalls> teams;    // in first-seen order, then "__other__"
  };
  Counts counts() const;

 private:
  TeamCalls& team_calls(std::string_view team);

  mutable std::mutex mu_;
  std::uint64_t max_series_;
  SeriesTable rejections_;
  SeriesTable tokens_;
  SeriesTable cost_;
  SeriesTable versions_;
  std::deque<TeamCalls> teams_;
  std::unordered_map<std::string, std::size_t> team_index_;
  std::optional<TeamCalls> other_team_;
};

// What one scrape reads from a segment through sluice/inspect.h.
struct SegmentReading {
  std::optional<SegmentStatus> status;  // none: the segment could not be read
  std::vector<LimitRow> limits;         // empty until a policy is published
  std::vector<KeyRow> keys;             // cells of current windows
  std::vector<ModelCallRow> models;     // what commits reported, per model
  std::optional<Telemetry> telemetry;   // burn rates and alerts; none before sluiced wrote them
};
SegmentReading read_segment(const std::string& segment);

// Renders scrapes, remembering across them which label sets have a series
// and what every counter showed. render() may be called from any thread;
// renders run one at a time.
class Exposition {
 public:
  explicit Exposition(std::uint64_t max_series) : max_series_(max_series) {}

  // `tally` null: the audit families have no samples.
  std::string render(const SegmentReading& reading, const AuditTally* tally);

 private:
  struct Family {
    std::string_view name;
    bool counter;
    std::string_view help;
    std::vector<std::string_view> label_names;
  };
  struct Reading {
    std::vector<std::string_view> labels;
    Billionths value;
  };
  void write_family(std::string& out, const Family& family, const std::vector<Reading>& readings);
  void write_latency(std::string& out, const SegmentStatus* status);
  // Burn rates, time to exhaustion and alert states, from the telemetry file.
  void write_telemetry_families(std::string& out, const Telemetry* telemetry);
  // Histograms of what commits reported (latency or time to first token), per model.
  static void write_call_histogram(std::string& out, std::string_view name, std::string_view help,
                                   const std::vector<ModelCallRow>& models, bool ttft);

  std::mutex mu_;
  std::uint64_t max_series_;
  std::uint64_t scrape_ = 0;
  std::unordered_map<std::string_view, SeriesTable> tables_;  // by family name (literals)
  std::vector<std::uint64_t> latency_bounds_ns_;
  std::vector<std::uint64_t> latency_counts_;  // each bucket the largest count read
};

}  // namespace sluice
