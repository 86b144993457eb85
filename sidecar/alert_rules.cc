#include "alert_rules.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

namespace sluice {
namespace {

constexpr std::uint64_t kNsPerSecond = 1'000'000'000;
constexpr std::uint64_t kBurnWindowsNs[2] = {300 * kNsPerSecond, 3600 * kNsPerSecond};
constexpr std::size_t kNone = static_cast<std::size_t>(-1);
constexpr double kQuantile = 0.99;

template <class Point>
const Point* find_point(const std::vector<Point>& points, std::uint32_t id) {
  const auto it = std::lower_bound(points.begin(), points.end(), id,
                                   [](const Point& p, std::uint32_t v) { return p.id < v; });
  return it != points.end() && it->id == id ? &*it : nullptr;
}

std::uint64_t gap(std::uint64_t a, std::uint64_t b) { return a > b ? a - b : b - a; }

// "9.2", "3.1", "1250", "0.0167": about three significant digits, no exponent above 1e-4.
std::string number_text(double v) {
  char buf[48];
  if (v >= 100 || v == 0) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  }
  return buf;
}

// "850ms", "9.2s", "45s", "12m30s", "1h12m", "2d3h".
std::string seconds_text(double s) {
  if (s < 1) return number_text(s * 1000) + "ms";
  if (s < 60) return number_text(s) + "s";
  const auto whole = static_cast<std::uint64_t>(s);
  const auto part = [](std::uint64_t n, const char* unit) {
    return n == 0 ? std::string() : std::to_string(n) + unit;
  };
  if (whole < 3600) return part(whole / 60, "m") + part(whole % 60, "s");
  if (whole < 86400) return part(whole / 3600, "h") + part(whole % 3600 / 60, "m");
  return part(whole / 86400, "d") + part(whole % 86400 / 3600, "h");
}

std::string ns_text(std::uint64_t ns) {
  return seconds_text(static_cast<double>(ns) / static_cast<double>(kNsPerSecond));
}

std::string percent_text(double fraction) { return number_text(fraction * 100) + "%"; }

// "3.1 USD/min", "1200 tokens/min".
std::string spend_rate_text(double units_per_second, const std::string& measure) {
  const double per_minute = units_per_second * 60;
  if (measure == "usd") return number_text(per_minute / 1e9) + " USD/min";
  return number_text(per_minute) + " " + (measure.empty() ? "units" : measure) + "/min";
}

std::string scope_text(const AlertSpec& spec) {
  return spec.model.empty() ? "all models" : spec.model;
}

// What one evaluation found for one alert.
struct Finding {
  bool holds = false;
  double observed = 0;
  std::string summary;
  std::map<std::string, std::string> labels;
};

Finding exhausts_within(const AlertSpec& spec, const std::vector<BurnRate>& rates) {
  Finding f;
  f.labels["budget"] = spec.budget;
  f.observed = std::numeric_limits<double>::infinity();
  const std::string threshold = "(alert: exhausts within " + ns_text(spec.value_ns) + ")";
  const BurnRate* soonest = nullptr;
  std::size_t within = 0;
  for (const BurnRate& r : rates) {
    if (r.limit != spec.budget || !r.exhausts_in_s) continue;
    if (*r.exhausts_in_s <= spec.value_ns / kNsPerSecond) ++within;  // whole seconds
    if (soonest == nullptr || *r.exhausts_in_s < *soonest->exhausts_in_s) soonest = &r;
  }
  if (soonest == nullptr) {
    f.summary =
        "budget " + spec.budget + ": no key is on course to run out in its window " + threshold;
    return f;
  }
  f.holds = within > 0;
  f.observed = static_cast<double>(*soonest->exhausts_in_s);
  f.labels["key"] = soonest->key;
  const std::string key = soonest->key.empty() ? "" : " (" + soonest->key + ")";
  f.summary = "budget " + spec.budget + key +
              (*soonest->exhausts_in_s == 0
                   ? " is exhausted "
                   : " exhausts in " + seconds_text(f.observed) + " at " +
                         spend_rate_text(soonest->per_second_5m, soonest->measure) + " ") +
              threshold;
  if (within == 2) f.summary += "; 1 more key also does";
  if (within > 2) f.summary += "; " + std::to_string(within - 1) + " more keys also do";
  return f;
}

Finding p99_latency_above(const AlertSpec& spec, const TelemetryHistory& h, std::uint64_t now) {
  Finding f;
  if (!spec.model.empty()) f.labels["model"] = spec.model;
  const TelemetryHistory::Window w = h.window(spec.model, spec.over_ns, now);
  const std::string threshold = "alert above " + ns_text(spec.value_ns);
  const std::string over = " over " + ns_text(spec.over_ns);
  f.observed = w.p99_s.value_or(0);
  if (w.timed < spec.min_calls || !w.p99_s) {
    f.summary = "p99 latency of " + scope_text(spec) + ": " + std::to_string(w.timed) +
                " timed calls" + over + ", fewer than min_calls " + std::to_string(spec.min_calls) +
                "; " + threshold;
    return f;
  }
  f.holds = *w.p99_s * 1e9 > static_cast<double>(spec.value_ns);
  f.summary = "p99 latency of " + scope_text(spec) + " is " + seconds_text(*w.p99_s) + over + " (" +
              std::to_string(w.timed) + " timed calls); " + threshold;
  return f;
}

Finding error_rate_above(const AlertSpec& spec, const TelemetryHistory& h, std::uint64_t now) {
  Finding f;
  if (!spec.model.empty()) f.labels["model"] = spec.model;
  const TelemetryHistory::Window w = h.window(spec.model, spec.over_ns, now);
  const std::string threshold = "alert above " + percent_text(spec.rate);
  const std::string over = " over " + ns_text(spec.over_ns);
  f.observed = w.calls == 0 ? 0 : static_cast<double>(w.errors) / static_cast<double>(w.calls);
  if (w.calls < spec.min_calls || w.calls == 0) {
    f.summary = "error rate of " + scope_text(spec) + ": " + std::to_string(w.calls) + " calls" +
                over + ", fewer than min_calls " + std::to_string(spec.min_calls) + "; " +
                threshold;
    return f;
  }
  f.holds = f.observed > spec.rate;
  f.summary = "error rate of " + scope_text(spec) + " is " + percent_text(f.observed) + over +
              " (" + std::to_string(w.errors) + " of " + std::to_string(w.calls) + " calls); " +
              threshold;
  return f;
}

AlertStatus fresh_status(const AlertSpec& spec) {
  AlertStatus s;
  s.name = spec.name;
  s.kind = spec.kind;
  s.summary = "not evaluated yet";
  if (spec.kind == AlertKind::kExhaustsWithin) {
    s.labels["budget"] = spec.budget;
  } else if (!spec.model.empty()) {
    s.labels["model"] = spec.model;
  }
  return s;
}

}  // namespace

std::optional<double> latency_quantile_s(double q,
                                         const std::array<std::uint64_t, kLatencyBuckets>& hist) {
  std::uint64_t total = 0;
  for (std::uint64_t n : hist) total += n;
  if (total == 0) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  std::uint64_t below = 0;
  for (int b = 0; b < kLatencyBuckets; ++b) {
    const std::uint64_t in = hist[b];
    if (static_cast<double>(below + in) >= rank && in > 0) {
      if (b == kLatencyBuckets - 1) return static_cast<double>(kLatencyBoundsMs[b - 1]) / 1000;
      const double lower = b == 0 ? 0 : static_cast<double>(kLatencyBoundsMs[b - 1]);
      const double upper = static_cast<double>(kLatencyBoundsMs[b]);
      const double ms =
          lower + (upper - lower) * (rank - static_cast<double>(below)) / static_cast<double>(in);
      return ms / 1000;
    }
    below += in;
  }
  return static_cast<double>(kLatencyBoundsMs[kLatencyBuckets - 2]) / 1000;
}

// ---------------------------------------------------------------------------
// TelemetryHistory

std::optional<std::uint32_t> TelemetryHistory::NameTable::intern(const std::string& name,
                                                                 std::uint64_t seen_ns) {
  if (const auto it = ids_.find(name); it != ids_.end()) {
    slots_[it->second].last_seen_ns = seen_ns;
    return it->second;
  }
  if (ids_.size() >= capacity_) return std::nullopt;
  std::uint32_t id = 0;
  if (free_.empty()) {
    id = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  } else {
    id = free_.back();
    free_.pop_back();
  }
  slots_[id] = Slot{name, seen_ns};
  ids_.emplace(name, id);
  return id;
}

std::optional<std::uint32_t> TelemetryHistory::NameTable::find(const std::string& name) const {
  const auto it = ids_.find(name);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

void TelemetryHistory::NameTable::forget_unseen_since(std::uint64_t ns) {
  for (auto it = ids_.begin(); it != ids_.end();) {
    Slot& slot = slots_[it->second];
    if (slot.last_seen_ns >= ns) {
      ++it;
      continue;
    }
    free_.push_back(it->second);
    slot = Slot{};
    it = ids_.erase(it);
  }
}

void TelemetryHistory::NameTable::clear() {
  slots_.clear();
  free_.clear();
  ids_.clear();
}

TelemetryHistory::TelemetryHistory(std::uint64_t keep_ns, std::uint64_t max_budget_keys)
    : keep_ns_(keep_ns), models_(kMaxModels), budget_keys_(max_budget_keys) {}

void TelemetryHistory::clear() {
  snapshots_.clear();
  models_.clear();
  budget_keys_.clear();
  latest_budgets_.clear();
}

void TelemetryHistory::add(TelemetrySample sample) {
  const std::uint64_t t = sample.unix_ns;
  if (!snapshots_.empty() && t < snapshots_.back().unix_ns) clear();
  // Expire first, so that names only old samples mention make room for new ones.
  while (!snapshots_.empty() && t - snapshots_.front().unix_ns > keep_ns_) snapshots_.pop_front();
  const std::uint64_t oldest = snapshots_.empty() ? t : snapshots_.front().unix_ns;
  models_.forget_unseen_since(oldest);
  budget_keys_.forget_unseen_since(oldest);

  Snapshot snap;
  snap.unix_ns = t;
  snap.budgets_complete = sample.budgets_complete;
  untracked_models_ = 0;
  for (const TelemetrySample::Model& m : sample.models) {
    const std::optional<std::uint32_t> id = models_.intern(m.name, t);
    if (!id) {
      ++untracked_models_;
      continue;
    }
    snap.models.push_back(ModelPoint{*id, m.calls, m.latency_hist});
  }
  std::sort(snap.models.begin(), snap.models.end(),
            [](const ModelPoint& a, const ModelPoint& b) { return a.id < b.id; });
  // Two rows of one name count together.
  std::vector<ModelPoint> merged;
  merged.reserve(snap.models.size());
  for (const ModelPoint& p : snap.models) {
    if (merged.empty() || merged.back().id != p.id) {
      merged.push_back(p);
      continue;
    }
    for (int i = 0; i < kOutcomes; ++i) merged.back().calls[i] += p.calls[i];
    for (int i = 0; i < kLatencyBuckets; ++i) merged.back().hist[i] += p.hist[i];
  }
  snap.models = std::move(merged);

  latest_budgets_.clear();
  untracked_budget_keys_ = 0;
  std::vector<bool> seen;
  for (TelemetrySample::Budget& b : sample.budgets) {
    std::string name = b.limit;
    name.push_back('\0');  // a limit name never holds one
    name += b.key;
    const std::optional<std::uint32_t> id = budget_keys_.intern(name, t);
    if (!id) {
      ++untracked_budget_keys_;
      continue;
    }
    if (seen.size() <= *id) seen.resize(*id + 1, false);
    if (seen[*id]) continue;  // the same key twice: the first counts
    seen[*id] = true;
    snap.budgets.push_back(BudgetPoint{*id, b.used, b.window_start_unix});
    latest_budgets_.push_back(LatestBudget{*id, std::move(b)});
  }
  std::sort(snap.budgets.begin(), snap.budgets.end(),
            [](const BudgetPoint& a, const BudgetPoint& b) { return a.id < b.id; });
  if (untracked_budget_keys_ != 0) snap.budgets_complete = false;

  // The newest sample is always kept; it replaces the one before it unless
  // that one is kFineStepNs past its own predecessor.
  const std::size_t n = snapshots_.size();
  if ((n >= 1 && snapshots_.back().unix_ns == t) ||
      (n >= 2 && snapshots_[n - 1].unix_ns - snapshots_[n - 2].unix_ns < kFineStepNs)) {
    snapshots_.back() = std::move(snap);
  } else {
    snapshots_.push_back(std::move(snap));
  }
  // Past kFineSpanNs of age, at most one sample per kCoarseStepNs.
  for (std::size_t i = 1; i + 1 < snapshots_.size() && t - snapshots_[i].unix_ns > kFineSpanNs;) {
    if (snapshots_[i].unix_ns - snapshots_[i - 1].unix_ns < kCoarseStepNs) {
      snapshots_.erase(snapshots_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

template <class Usable>
std::size_t TelemetryHistory::base_index(std::uint64_t target_ns, const Usable& usable) const {
  const std::uint64_t from = target_ns > kCoarseStepNs ? target_ns - kCoarseStepNs : 0;
  const auto first = std::partition_point(snapshots_.begin(), snapshots_.end(),
                                          [&](const Snapshot& s) { return s.unix_ns < from; });
  std::size_t best = kNone;
  for (auto i = static_cast<std::size_t>(first - snapshots_.begin()); i + 1 < snapshots_.size();
       ++i) {
    if (!usable(snapshots_[i])) continue;
    if (best == kNone ||
        gap(snapshots_[i].unix_ns, target_ns) < gap(snapshots_[best].unix_ns, target_ns)) {
      best = i;
    }
    if (snapshots_[i].unix_ns >= target_ns) break;  // later ones are farther
  }
  return best;
}

std::vector<BurnRate> TelemetryHistory::burn_rates(std::uint64_t now_unix_ns) const {
  std::vector<BurnRate> out;
  if (snapshots_.empty()) return out;
  const Snapshot& latest = snapshots_.back();
  const std::uint64_t now = std::max(now_unix_ns, latest.unix_ns);
  out.reserve(latest_budgets_.size());
  // A complete sample taken in the key's window without the key: nothing spent yet.
  auto not_yet_spent = [](const Snapshot& s, std::uint64_t window_start_unix) {
    return s.budgets_complete && s.unix_ns / kNsPerSecond >= window_start_unix;
  };
  for (const LatestBudget& lb : latest_budgets_) {
    const TelemetrySample::Budget& b = lb.budget;
    BurnRate r;
    r.limit = b.limit;
    r.key = b.key;
    r.budget = b.budget;
    r.used = b.used;
    r.measure = b.measure;
    double* rates[2] = {&r.per_second_5m, &r.per_second_1h};
    for (int w = 0; w < 2; ++w) {
      const std::size_t i =
          base_index(now - std::min(now, kBurnWindowsNs[w]), [&](const Snapshot& s) {
            const BudgetPoint* p = find_point(s.budgets, lb.id);
            if (p == nullptr) return not_yet_spent(s, b.window_start_unix);
            return p->window_start_unix == b.window_start_unix;
          });
      if (i == kNone) continue;
      const BudgetPoint* base = find_point(snapshots_[i].budgets, lb.id);
      const std::uint64_t base_used = base != nullptr ? base->used : 0;
      if (b.used <= base_used) continue;  // refunds: 0, not negative
      *rates[w] = static_cast<double>(b.used - base_used) * 1e9 /
                  static_cast<double>(latest.unix_ns - snapshots_[i].unix_ns);
    }
    if (b.used >= b.budget) {
      r.exhausts_in_s = 0;
    } else if (r.per_second_5m > 0) {
      const double s = std::floor(static_cast<double>(b.budget - b.used) / r.per_second_5m);
      const std::uint64_t now_s = now / kNsPerSecond;
      if (s < 1e18 &&
          (b.window_end_unix == 0 || now_s + static_cast<std::uint64_t>(s) <= b.window_end_unix)) {
        r.exhausts_in_s = static_cast<std::uint64_t>(s);
      }
    }
    out.push_back(std::move(r));
  }
  return out;
}

TelemetryHistory::Window TelemetryHistory::window(const std::string& model, std::uint64_t over_ns,
                                                  std::uint64_t now_unix_ns) const {
  Window w;
  if (snapshots_.empty()) return w;
  std::optional<std::uint32_t> only;
  if (!model.empty()) {
    only = models_.find(model);
    if (!only) return w;
  }
  const Snapshot& latest = snapshots_.back();
  const std::uint64_t now = std::max(now_unix_ns, latest.unix_ns);
  const std::uint64_t target = now - std::min(now, over_ns);
  std::array<std::uint64_t, kOutcomes> calls{};
  std::array<std::uint64_t, kLatencyBuckets> hist{};
  for (const ModelPoint& last : latest.models) {
    if (only && last.id != *only) continue;
    const std::size_t base = base_index(
        target, [&](const Snapshot& s) { return find_point(s.models, last.id) != nullptr; });
    if (base == kNone) continue;
    // What the counters grew by, sample to sample; a decrease is a new segment counting from 0.
    const ModelPoint* prev = find_point(snapshots_[base].models, last.id);
    for (std::size_t j = base + 1; j < snapshots_.size(); ++j) {
      const ModelPoint* cur = find_point(snapshots_[j].models, last.id);
      if (cur == nullptr) continue;
      bool reset = false;
      for (int i = 0; i < kOutcomes; ++i) reset |= cur->calls[i] < prev->calls[i];
      for (int i = 0; i < kLatencyBuckets; ++i) reset |= cur->hist[i] < prev->hist[i];
      for (int i = 0; i < kOutcomes; ++i) calls[i] += cur->calls[i] - (reset ? 0 : prev->calls[i]);
      for (int i = 0; i < kLatencyBuckets; ++i) {
        hist[i] += cur->hist[i] - (reset ? 0 : prev->hist[i]);
      }
      prev = cur;
    }
  }
  for (int i = 1; i < kOutcomes; ++i) {
    w.calls += calls[i];
    if (shm::outcome_is_error(static_cast<shm::Word>(i))) w.errors += calls[i];
  }
  for (std::uint64_t n : hist) w.timed += n;
  w.p99_s = latency_quantile_s(kQuantile, hist);
  return w;
}

TelemetryHistory::Size TelemetryHistory::size() const {
  Size s;
  s.samples = snapshots_.size();
  for (const Snapshot& snap : snapshots_) {
    s.model_points += snap.models.size();
    s.budget_points += snap.budgets.size();
  }
  s.models = models_.size();
  s.budget_keys = budget_keys_.size();
  s.untracked_models = untracked_models_;
  s.untracked_budget_keys = untracked_budget_keys_;
  return s;
}

// ---------------------------------------------------------------------------
// AlertBook

AlertBook::AlertBook(std::vector<AlertSpec> specs) { replace(std::move(specs)); }

std::vector<AlertStatus> AlertBook::evaluate(const TelemetryHistory& h, std::uint64_t now_unix_ns) {
  std::vector<AlertStatus> changes = std::move(retired_);
  retired_.clear();
  for (AlertStatus& s : changes) s.since_unix_ns = now_unix_ns;
  std::optional<std::vector<BurnRate>> rates;
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const AlertSpec& spec = specs_[i];
    Finding f;
    switch (spec.kind) {
      case AlertKind::kExhaustsWithin:
        if (!rates) rates = h.burn_rates(now_unix_ns);
        f = exhausts_within(spec, *rates);
        break;
      case AlertKind::kP99LatencyAbove:
        f = p99_latency_above(spec, h, now_unix_ns);
        break;
      case AlertKind::kErrorRateAbove:
        f = error_rate_above(spec, h, now_unix_ns);
        break;
    }
    AlertStatus& s = status_[i];
    s.summary = std::move(f.summary);
    s.labels = std::move(f.labels);
    s.observed = f.observed;
    if (f.holds != s.firing) {
      s.firing = f.holds;
      s.since_unix_ns = now_unix_ns;
      if (s.firing) s.started_firing_unix_ns = now_unix_ns;
      changes.push_back(s);
    }
  }
  return changes;
}

void AlertBook::replace(std::vector<AlertSpec> specs) {
  std::vector<AlertStatus> status;
  status.reserve(specs.size());
  std::vector<bool> kept(specs_.size(), false);
  for (const AlertSpec& spec : specs) {
    std::size_t j = 0;
    while (j < specs_.size() && !(specs_[j] == spec)) ++j;
    if (j < specs_.size() && !kept[j]) {
      kept[j] = true;
      status.push_back(std::move(status_[j]));
    } else {
      status.push_back(fresh_status(spec));
    }
  }
  for (std::size_t j = 0; j < specs_.size(); ++j) {
    if (kept[j] || !status_[j].firing) continue;
    AlertStatus s = std::move(status_[j]);
    s.firing = false;
    s.summary = s.name + ": removed or redefined by a policy reload";
    retired_.push_back(std::move(s));
  }
  specs_ = std::move(specs);
  status_ = std::move(status);
}

}  // namespace sluice
