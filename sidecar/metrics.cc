#include "metrics.h"

#include <algorithm>
#include <utility>

#include "segment_layout.h"
#include "sluice/quota.h"

namespace sluice {

namespace fb = audit::fb;

// ---------------------------------------------------------------------------
// Text

std::string decimal_text(Billionths v) {
  Billionths units = v / kBillion;
  std::uint64_t fraction = static_cast<std::uint64_t>(v % kBillion);
  char digits[48];
  std::size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + static_cast<int>(units % 10));
    units /= 10;
  } while (units != 0);
  std::string out(std::make_reverse_iterator(digits + n), std::make_reverse_iterator(digits));
  if (fraction != 0) {
    char frac[10] = {};
    for (int i = 8; i >= 0; --i) {
      frac[i] = static_cast<char>('0' + fraction % 10);
      fraction /= 10;
    }
    std::size_t len = 9;
    while (frac[len - 1] == '0') --len;
    out += '.';
    out.append(frac, len);
  }
  return out;
}

namespace {

// The length of the UTF-8 sequence starting at s[i], 0 if it is not one.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b = byte(i);
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the range of the second byte
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b <= 0xdf) {
    len = 2;
  } else if (b >= 0xe0 && b <= 0xef) {
    len = 3;
    if (b == 0xe0) lo = 0xa0;  // not overlong
    if (b == 0xed) hi = 0x9f;  // not a surrogate
  } else if (b >= 0xf0 && b <= 0xf4) {
    len = 4;
    if (b == 0xf0) lo = 0x90;  // not overlong
    if (b == 0xf4) hi = 0x8f;  // at most U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  }
  return len;
}

}  // namespace

std::string label_value_text(std::string_view v) {
  std::string out;
  out.reserve(v.size() + 2);
  for (std::size_t i = 0; i < v.size();) {
    const std::size_t len = utf8_length(v, i);
    if (len == 0) {
      out += "\xef\xbf\xbd";  // U+FFFD REPLACEMENT CHARACTER
      ++i;
      continue;
    }
    if (len == 1 && (v[i] == '\\' || v[i] == '"')) {
      out += '\\';
      out += v[i];
    } else if (len == 1 && v[i] == '\n') {
      out += "\\n";
    } else {
      out.append(v.substr(i, len));
    }
    i += len;
  }
  return out;
}

std::string help_text(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

void write_header(std::string& out, std::string_view name, std::string_view type,
                  std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help_text(help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void write_sample(std::string& out, std::string_view name,
                  std::span<const std::string_view> label_names,
                  std::span<const std::string> values, Billionths value) {
  out += name;
  if (!label_names.empty()) {
    out += '{';
    for (std::size_t i = 0; i < label_names.size(); ++i) {
      if (i > 0) out += ',';
      out += label_names[i];
      out += "=\"";
      out += label_value_text(i < values.size() ? std::string_view{values[i]} : std::string_view{});
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  out += decimal_text(value);
  out += '\n';
}

void write_samples(std::string& out, std::string_view name,
                   std::span<const std::string_view> label_names,
                   const std::vector<Sample>& samples) {
  for (const Sample& s : samples) write_sample(out, name, label_names, s.labels, s.value);
}

}  // namespace

// ---------------------------------------------------------------------------
// SeriesTable

SeriesTable::Series& SeriesTable::at(std::span<const std::string_view> labels) {
  key_.clear();
  for (const std::string_view l : labels) {
    const std::uint32_t n = static_cast<std::uint32_t>(l.size());
    key_.append(reinterpret_cast<const char*>(&n), sizeof n);  // unambiguous: length first
    key_.append(l);
  }
  if (const auto it = index_.find(key_); it != index_.end()) return own_[it->second];
  if (own_.size() + 1 < max_series_) {
    index_.emplace(key_, own_.size());
    own_.push_back(Series{{labels.begin(), labels.end()}});
    return own_.back();
  }
  if (!other_) {
    other_.emplace(Series{std::vector<std::string>(labels.size(), std::string(kOtherLabelValue))});
  }
  return *other_;
}

void SeriesTable::read(std::span<const std::string_view> labels, Billionths value,
                       std::uint64_t scrape) {
  Series& s = at(labels);
  if (s.read_in != scrape) {
    s.reading = 0;
    s.read_in = scrape;
  }
  s.reading += value;
}

void SeriesTable::settle(bool counter, std::uint64_t scrape) {
  auto one = [&](Series& s) {
    if (s.read_in != scrape) return;
    s.value = counter ? std::max(s.value, s.reading) : s.reading;
  };
  for (Series& s : own_) one(s);
  if (other_) one(*other_);
}

std::vector<Sample> SeriesTable::samples(std::optional<std::uint64_t> only_read_in) const {
  std::vector<Sample> out;
  out.reserve(own_.size() + 1);
  auto one = [&](const Series& s) {
    if (!only_read_in || s.read_in == *only_read_in) out.push_back({s.labels, s.value});
  };
  for (const Series& s : own_) one(s);
  if (other_) one(*other_);
  return out;
}

// ---------------------------------------------------------------------------
// AuditTally

AuditTally::AuditTally(std::uint64_t max_series)
    : max_series_(max_series),
      rejections_(max_series),
      tokens_(max_series),
      cost_(max_series),
      versions_(max_series) {}

namespace {

std::string_view attribute(const DecodedRecord& r, std::string_view name) {
  for (const AuditAttributeView& a : r.attributes) {
    if (a.name == name) return a.value;
  }
  return {};
}

}  // namespace

void AuditTally::observe(const DecodedRecord& r) {
  if (r.event == fb::Event::Reserve) {
    if (r.decision != fb::Decision::Rejected) return;
    const std::lock_guard<std::mutex> lock(mu_);
    rejections_.at({r.limit, r.reason}).value += whole(1);
    return;
  }
  // What was charged: a commit's actual usage; an abandonment's as the
  // sidecar settled it (a refund charges nothing).
  std::uint64_t input = 0, output = 0;
  if (r.event == fb::Event::Commit ||
      (r.event == fb::Event::Abandon && r.reason == "finished_commit")) {
    input = r.actual_input_tokens;
    output = r.actual_output_tokens;
  } else if (r.event == fb::Event::Abandon && r.reason == "charged_at_estimate") {
    input = r.est_input_tokens;
    output = r.est_output_tokens;
  } else {
    return;
  }
  const std::string_view team = attribute(r, "team"), feature = attribute(r, "feature"),
                         model = attribute(r, "model");
  const std::lock_guard<std::mutex> lock(mu_);
  tokens_.at({team, feature, model, "input"}).value += whole(input);
  tokens_.at({team, feature, model, "output"}).value += whole(output);
  cost_.at({team, feature, model}).value += r.cost_nusd;  // nano-dollars: billionths of USD
  if (!r.model_version.empty()) versions_.at({model, r.model_version}).value = whole(1);
  if (r.latency_ns == 0 && r.ttft_ns == 0) return;
  TeamCalls& calls = team_calls(team);
  if (r.latency_ns != 0) {
    ++calls.latency[static_cast<std::size_t>(shm::call_latency_bucket(r.latency_ns))];
    calls.latency_sum_ns += r.latency_ns;
  }
  if (r.ttft_ns != 0) {
    ++calls.ttft[static_cast<std::size_t>(shm::call_latency_bucket(r.ttft_ns))];
    calls.ttft_sum_ns += r.ttft_ns;
  }
}

AuditTally::TeamCalls& AuditTally::team_calls(std::string_view team) {
  const std::string key(team);
  if (auto it = team_index_.find(key); it != team_index_.end()) return teams_[it->second];
  if (teams_.size() + 1 < max_series_) {
    team_index_.emplace(key, teams_.size());
    teams_.push_back(TeamCalls{.team = key});
    return teams_.back();
  }
  if (!other_team_) other_team_ = TeamCalls{.team = std::string(kOtherLabelValue)};
  return *other_team_;
}

AuditTally::Counts AuditTally::counts() const {
  const std::lock_guard<std::mutex> lock(mu_);
  Counts c{rejections_.samples(), tokens_.samples(), cost_.samples(), versions_.samples(),
           std::vector<TeamCalls>(teams_.begin(), teams_.end())};
  if (other_team_) c.teams.push_back(*other_team_);
  return c;
}

// ---------------------------------------------------------------------------
// Reading the segment

SegmentReading read_segment(const std::string& segment) {
  SegmentReading r;
  Result<SegmentStatus> status = read_status(segment);
  if (!status.ok()) return r;
  r.status = std::move(status.value());
  if (Result<std::vector<LimitRow>> limits = list_limits(segment); limits.ok()) {
    r.limits = std::move(limits.value());
  }
  if (Result<std::vector<KeyRow>> keys = list_keys(segment); keys.ok()) {
    r.keys = std::move(keys.value());
  }
  if (Result<std::vector<ModelCallRow>> models = list_model_calls(segment); models.ok()) {
    r.models = std::move(models.value());
  }
  if (Result<Telemetry> telemetry = read_telemetry(segment); telemetry.ok()) {
    r.telemetry = std::move(telemetry.value());
  }
  return r;
}

// ---------------------------------------------------------------------------
// Exposition

namespace {

// A cell's or a limit's amount: usd in USD (from nano-dollars), else units.
Billionths amount(std::string_view unit, std::uint64_t v) {
  return unit == "usd" ? Billionths{v} : whole(v);
}

// A rate of `unit`s per second in billionths of what the metrics show
// (USD for usd, whose rates are in nano-dollars per second).
Billionths rate_amount(std::string_view unit, double per_second) {
  const double billionths = unit == "usd" ? per_second : per_second * 1e9;
  if (!(billionths > 0)) return 0;
  return static_cast<Billionths>(std::min(billionths, 1e36) + 0.5);
}

Billionths ms(std::uint64_t v) { return Billionths{v} * 1'000'000; }

// One series of a histogram over the call latency buckets
// (shm::kCallLatencyBoundsMs, then +Inf), labelled `label`=`value`: its
// cumulative buckets, _sum (`sum`, in billionths of a second) and _count.
void write_call_series(std::string& out, std::string_view name, std::string_view label,
                       const std::string& value, std::span<const std::uint64_t> counts,
                       Billionths sum) {
  const std::string bucket = std::string(name) + "_bucket";
  const std::string_view label_le[] = {label, "le"};
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    const std::string labels[] = {
        value, i < std::size(shm::kCallLatencyBoundsMs)
                   ? decimal_text(ms(shm::call_latency_bound_ms(static_cast<int>(i))))
                   : "+Inf"};
    write_sample(out, bucket, label_le, labels, whole(cumulative));
  }
  const std::string_view names[] = {label};
  const std::string values[] = {value};
  write_sample(out, std::string(name) + "_sum", names, values, sum);
  write_sample(out, std::string(name) + "_count", names, values, whole(cumulative));
}

}  // namespace

void Exposition::write_family(std::string& out, const Family& f,
                              const std::vector<Reading>& readings) {
  SeriesTable& table = tables_.try_emplace(f.name, max_series_).first->second;
  for (const Reading& r : readings) table.read(r.labels, r.value, scrape_);
  table.settle(f.counter, scrape_);
  write_header(out, f.name, f.counter ? "counter" : "gauge", f.help);
  // A counter keeps showing a series it stopped reading (a limit removed by
  // a reload): it must not go back. A gauge shows what it read now.
  write_samples(out, f.name, f.label_names,
                table.samples(f.counter ? std::nullopt : std::optional<std::uint64_t>(scrape_)));
}

void Exposition::write_latency(std::string& out, const SegmentStatus* st) {
  if (st != nullptr && !st->latency_counts.empty() &&
      st->latency_bounds_ns.size() == st->latency_counts.size()) {
    if (latency_bounds_ns_ != st->latency_bounds_ns) {
      latency_bounds_ns_ = st->latency_bounds_ns;
      latency_counts_.assign(latency_bounds_ns_.size(), 0);
    }
    for (std::size_t i = 0; i < latency_counts_.size(); ++i) {
      latency_counts_[i] = std::max(latency_counts_[i], st->latency_counts[i]);
    }
  }
  const std::uint64_t every = st != nullptr && st->latency_sample_every != 0
                                  ? st->latency_sample_every
                                  : shm::kLatencySampleEvery;
  constexpr std::string_view kName = "sluice_decision_latency_seconds";
  write_header(out, kName, "histogram",
               "Decision latency of reserve, the whole call, sampled: one reserve in " +
                   std::to_string(every) +
                   " is timed. _sum is estimated from the buckets' midpoints (the last, "
                   "unbounded bucket at its lower bound), not measured.");
  const std::string bucket = std::string(kName) + "_bucket";
  static constexpr std::string_view kLe[] = {"le"};
  std::uint64_t cumulative = 0, lower_ns = 0;
  Billionths sum = 0;  // seconds: nanoseconds are billionths
  bool infinite = false;
  for (std::size_t i = 0; i < latency_counts_.size(); ++i) {
    const std::uint64_t upper_ns = latency_bounds_ns_[i], n = latency_counts_[i];
    cumulative += n;
    infinite = upper_ns == ~std::uint64_t{0};
    const Billionths middle =
        infinite ? Billionths{lower_ns} : (Billionths{lower_ns} + Billionths{upper_ns}) / 2;
    sum += middle * n;
    const std::string le[] = {infinite ? "+Inf" : decimal_text(Billionths{upper_ns})};
    write_sample(out, bucket, kLe, le, whole(cumulative));
    lower_ns = upper_ns;
    if (infinite) break;
  }
  if (!infinite) {
    const std::string le[] = {"+Inf"};
    write_sample(out, bucket, kLe, le, whole(cumulative));
  }
  write_sample(out, std::string(kName) + "_sum", {}, {}, sum);
  write_sample(out, std::string(kName) + "_count", {}, {}, whole(cumulative));
}

void Exposition::write_call_histogram(std::string& out, std::string_view name,
                                      std::string_view help,
                                      const std::vector<ModelCallRow>& models, bool ttft) {
  write_header(out, name, "histogram", help);
  for (const ModelCallRow& m : models) {
    const std::vector<std::uint64_t>& counts = ttft ? m.ttft_counts : m.latency_counts;
    if (counts.size() != shm::kCallLatencyBuckets) continue;
    const std::uint64_t sum_us = ttft ? m.ttft_sum_us : m.latency_sum_us;
    write_call_series(out, name, "model", m.model, counts, Billionths{sum_us} * 1000);
  }
}

std::string Exposition::render(const SegmentReading& in, const AuditTally* tally) {
  const std::lock_guard<std::mutex> lock(mu_);
  ++scrape_;
  const SegmentStatus* st = in.status ? &*in.status : nullptr;
  std::string out;
  out.reserve(16384);
  // The samples of a family without labels: one, when the status was read.
  auto single = [&](auto field) {
    return st != nullptr ? std::vector<Reading>{{{}, field(*st)}} : std::vector<Reading>{};
  };

  write_family(out,
               {"sluice_sidecar_up",
                false,
                "1 while sluiced heartbeats the segment and its process is alive, else 0.",
                {}},
               {{{}, whole(st != nullptr && st->sidecar_alive ? 1 : 0)}});

  std::vector<Reading> calls;
  if (st != nullptr) {
    calls = {{{"admitted"}, whole(st->admitted_total)}, {{"rejected"}, whole(st->rejected_total)}};
  }
  write_family(out,
               {"sluice_calls_total",
                true,
                "Reserve decisions of every client, departed ones included, by decision "
                "(admitted | rejected).",
                {"decision"}},
               calls);

  std::vector<Reading> decisions;
  for (const LimitRow& l : in.limits) {
    decisions.push_back({{l.limit, "admitted"}, whole(l.admitted)});
    decisions.push_back({{l.limit, "rejected"}, whole(l.rejected)});
    decisions.push_back({{l.limit, "shadow_rejected"}, whole(l.shadow_rejected)});
  }
  write_family(out,
               {"sluice_decisions_total",
                true,
                "Reserve decisions each limit of the current policy took part in, by decision: "
                "admitted, rejected, shadow_rejected (a shadow limit would have rejected).",
                {"limit", "decision"}},
               decisions);

  const AuditTally::Counts audit = tally != nullptr ? tally->counts() : AuditTally::Counts{};
  static constexpr std::string_view kRejectionLabels[] = {"limit", "reason"};
  write_header(out, "sluice_rejections_total", "counter",
               "Rejected reserves, from the audit trail, by the limit that rejected (\"\" when "
               "none) and the reason.");
  write_samples(out, "sluice_rejections_total", kRejectionLabels, audit.rejections);
  static constexpr std::string_view kTokenLabels[] = {"team", "feature", "model", "direction"};
  write_header(out, "sluice_tokens_total", "counter",
               "Tokens charged, from the audit trail: the actual tokens of commits, and of "
               "abandoned reservations as the sidecar charged them; by the call's team, feature "
               "and model attributes (\"\" when missing) and direction (input | output).");
  write_samples(out, "sluice_tokens_total", kTokenLabels, audit.tokens);
  static constexpr std::string_view kCostLabels[] = {"team", "feature", "model"};
  write_header(out, "sluice_cost_usd_total", "counter",
               "Cost charged in USD (exact nano-dollars), from the audit trail: commits, and "
               "abandoned reservations as the sidecar charged them; by the call's team, feature "
               "and model attributes (\"\" when missing).");
  write_samples(out, "sluice_cost_usd_total", kCostLabels, audit.cost_usd);
  static constexpr std::string_view kVersionLabels[] = {"model", "version"};
  write_header(out, "sluice_model_version_info", "gauge",
               "1 for each model version commits reported the provider served, by the call's "
               "model attribute (a new version shows as a new series), from the audit trail.");
  write_samples(out, "sluice_model_version_info", kVersionLabels, audit.versions);
  write_header(out, "sluice_team_call_latency_seconds", "histogram",
               "Provider latency commits reported, by the call's team attribute (\"\" when "
               "missing), from the audit trail. _sum is exact.");
  for (const AuditTally::TeamCalls& t : audit.teams) {
    write_call_series(out, "sluice_team_call_latency_seconds", "team", t.team, t.latency,
                      Billionths{t.latency_sum_ns});
  }
  write_header(out, "sluice_team_call_ttft_seconds", "histogram",
               "Time to first token commits reported (streams), by the call's team attribute "
               "(\"\" when missing), from the audit trail. _sum is exact.");
  for (const AuditTally::TeamCalls& t : audit.teams) {
    write_call_series(out, "sluice_team_call_ttft_seconds", "team", t.team, t.ttft,
                      Billionths{t.ttft_sum_ns});
  }

  std::vector<Reading> used, remaining;
  for (const KeyRow& k : in.keys) {
    if (k.rate) continue;
    used.push_back({{k.limit, k.attributes, k.unit}, amount(k.unit, k.used)});
    remaining.push_back({{k.limit, k.attributes, k.unit}, amount(k.unit, k.remaining)});
  }
  write_family(out,
               {"sluice_budget_used",
                false,
                "Spent in the current window of each budget cell (a limit's key: its matched "
                "attributes), in units of unit; usd in USD.",
                {"limit", "key", "unit"}},
               used);
  write_family(out,
               {"sluice_budget_remaining",
                false,
                "Left in the current window of each budget cell, in units of unit; usd in USD.",
                {"limit", "key", "unit"}},
               remaining);

  write_family(out,
               {"sluice_reservations_in_flight",
                false,
                "Reservations reserved and not yet committed, cancelled or settled.",
                {}},
               single([](const SegmentStatus& s) { return whole(s.reservations_in_flight); }));
  write_family(out,
               {"sluice_reservations_abandoned_total",
                true,
                "Reservations the sidecar settled at their estimate because their holder died or "
                "their hold expired.",
                {}},
               single([](const SegmentStatus& s) { return whole(s.abandoned_total); }));
  write_family(
      out, {"sluice_keys_used", false, "Cells in the key table (segment.max_keys at most).", {}},
      single([](const SegmentStatus& s) { return whole(s.keys_used); }));
  write_family(out,
               {"sluice_keys_capacity", false, "The key table's capacity, segment.max_keys.", {}},
               single([](const SegmentStatus& s) { return whole(s.keys_capacity); }));
  write_family(
      out, {"sluice_clients_attached", false, "Client processes registered in the segment.", {}},
      single([](const SegmentStatus& s) { return whole(s.clients_attached); }));

  write_family(out,
               {"sluice_audit_records_drained_total",
                true,
                "Audit records sluiced copied out of the ring.",
                {}},
               single([](const SegmentStatus& s) { return whole(s.audit_drained); }));
  write_family(
      out,
      {"sluice_audit_records_written_total", true, "Audit records written to the audit files.", {}},
      single([](const SegmentStatus& s) { return whole(s.audit_written); }));
  write_family(out,
               {"sluice_audit_records_dropped_total",
                true,
                "Audit records lost because the ring was full.",
                {}},
               single([](const SegmentStatus& s) { return whole(s.audit_dropped); }));
  write_family(
      out,
      {"sluice_audit_calls_refused_total",
       true,
       "Calls refused (audit_unavailable) because audit is required and the ring was full.",
       {}},
      single([](const SegmentStatus& s) { return whole(s.audit_refused); }));
  write_family(out,
               {"sluice_audit_records_skipped_total",
                true,
                "Audit records of clients that died while writing them, skipped.",
                {}},
               single([](const SegmentStatus& s) { return whole(s.audit_skipped); }));
  write_family(out,
               {"sluice_audit_ring_high_water_bytes",
                false,
                "The most bytes ever waiting in the audit ring.",
                {}},
               single([](const SegmentStatus& s) { return whole(s.audit_ring_high_water_bytes); }));
  write_family(out, {"sluice_audit_bytes_on_disk", false, "Bytes the audit files hold.", {}},
               single([](const SegmentStatus& s) { return whole(s.audit_bytes_on_disk); }));

  const bool store = st != nullptr && !st->store.empty();
  const SegmentStatus* with_store = store ? st : nullptr;
  auto store_single = [&](auto field) {
    return with_store != nullptr ? std::vector<Reading>{{{}, field(*with_store)}}
                                 : std::vector<Reading>{};
  };
  write_family(out,
               {"sluice_store_up",
                false,
                "1 while the central store answers the sidecar's syncs, else 0.",
                {}},
               store_single([](const SegmentStatus& s) { return whole(s.store_health == "up"); }));
  write_family(
      out, {"sluice_store_syncs_total", true, "Syncs with the central store that succeeded.", {}},
      store_single([](const SegmentStatus& s) { return whole(s.store_syncs); }));
  write_family(
      out,
      {"sluice_store_sync_errors_total", true, "Syncs with the central store that failed.", {}},
      store_single([](const SegmentStatus& s) { return whole(s.store_failures); }));
  std::vector<Reading> age;
  if (with_store != nullptr && with_store->store_last_sync_unix_ns != 0) {
    age.push_back({{}, ms(with_store->store_last_sync_age_ms)});
  }
  write_family(out,
               {"sluice_store_last_sync_age_seconds",
                false,
                "Seconds since the last successful sync with the central store.",
                {}},
               age);
  write_family(
      out, {"sluice_store_sync_cpu_seconds", false, "CPU time the last sync took.", {}},
      store_single([](const SegmentStatus& s) { return Billionths{s.store_sync_cpu_us} * 1000; }));

  std::vector<Reading> granted, global_used, global_remaining;
  if (st != nullptr) {
    for (const GlobalLimitRow& g : st->global_limits) {
      granted.push_back({{g.limit, g.unit}, amount(g.unit, g.granted)});
      global_used.push_back({{g.limit, g.unit}, amount(g.unit, g.used)});
      global_remaining.push_back({{g.limit, g.unit}, amount(g.unit, g.global_remaining)});
    }
  }
  write_family(out,
               {"sluice_global_budget_granted",
                false,
                "What the store allotted this host of each global budget limit in its current "
                "window; usd in USD.",
                {"limit", "unit"}},
               granted);
  write_family(out,
               {"sluice_global_budget_used",
                false,
                "What this host spent of each global budget limit in its current window; usd in "
                "USD.",
                {"limit", "unit"}},
               global_used);
  write_family(out,
               {"sluice_global_budget_remaining",
                false,
                "What is left of each global budget limit over every host, as the store last "
                "answered; usd in USD.",
                {"limit", "unit"}},
               global_remaining);

  std::vector<Reading> model_calls;
  for (const ModelCallRow& m : in.models) {
    for (std::size_t o = 0; o < m.calls.size() && o < shm::kCallOutcomes; ++o) {
      model_calls.push_back({{m.model, to_string(static_cast<Outcome>(o))}, whole(m.calls[o])});
    }
  }
  write_family(out,
               {"sluice_model_calls_total",
                true,
                "Commits by model (\"\" for calls without a priced model) and the outcome the "
                "caller reported (unreported when it said none).",
                {"model", "outcome"}},
               model_calls);
  std::vector<Reading> commits;
  for (const LimitRow& l : in.limits) {
    commits.push_back({{l.limit, "committed"}, whole(l.committed)});
    commits.push_back({{l.limit, "failed"}, whole(l.failed)});
  }
  write_family(out,
               {"sluice_limit_commits_total",
                true,
                "Commits of reservations each limit took part in: committed, and failed (the "
                "caller reported provider_error or timeout).",
                {"limit", "result"}},
               commits);
  write_call_histogram(out, "sluice_call_latency_seconds",
                       "Provider latency commits reported, request to last byte, per model. _sum "
                       "is exact to the microsecond.",
                       in.models, /*ttft=*/false);
  write_call_histogram(out, "sluice_call_ttft_seconds",
                       "Time to first token commits reported (streams), per model. _sum is exact "
                       "to the microsecond.",
                       in.models, /*ttft=*/true);

  write_telemetry_families(out, in.telemetry ? &*in.telemetry : nullptr);
  write_latency(out, st);
  return out;
}

void Exposition::write_telemetry_families(std::string& out, const Telemetry* t) {
  std::vector<Reading> burn, exhaustion, firing;
  if (t != nullptr) {
    for (const BurnRate& b : t->burn) {
      burn.push_back({{b.limit, b.key, b.measure, "5m"}, rate_amount(b.measure, b.per_second_5m)});
      burn.push_back({{b.limit, b.key, b.measure, "1h"}, rate_amount(b.measure, b.per_second_1h)});
      if (b.exhausts_in_s) exhaustion.push_back({{b.limit, b.key}, whole(*b.exhausts_in_s)});
    }
    for (const AlertStatus& a : t->alerts) firing.push_back({{a.name}, whole(a.firing ? 1 : 0)});
  }
  write_family(out,
               {"sluice_budget_burn_rate",
                false,
                "Spend per second of each budget cell over the last 5 minutes or hour (window), "
                "in units of unit per second; usd in USD per second.",
                {"limit", "key", "unit", "window"}},
               burn);
  write_family(out,
               {"sluice_budget_exhaustion_seconds",
                false,
                "Seconds until a budget cell runs out at its 5-minute burn rate (0: it has); "
                "only cells on course to run out before their window ends.",
                {"limit", "key"}},
               exhaustion);
  write_family(
      out,
      {"sluice_alert_firing", false, "1 while the policy's alert is firing, else 0.", {"name"}},
      firing);
}

}  // namespace sluice
