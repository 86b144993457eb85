// How much of a global limit this host asks the store for, and how a rate
// share becomes GCRA terms. Pure arithmetic, so it is tested on its own.
#pragma once

#include <algorithm>
#include <cstdint>

namespace sluice {

// A global budget cell's ask. `headroom` is what the host wants exposed
// beyond what it has used: it doubles while an interval spends half of it
// or more (demand outruns the lease) and halves while an interval spends
// under an eighth, between budget / 1000 and the budget. The host asks to
// hold four times the headroom, so it can raise its exposure at the next
// sync without waiting on other hosts.
struct BudgetAsk {
  std::uint64_t headroom = 0;
  std::uint64_t want_exposed = 0;
  std::uint64_t want_allotted = 0;
};

inline BudgetAsk size_budget_ask(std::uint64_t used, std::uint64_t used_this_interval,
                                 std::uint64_t headroom, std::uint64_t budget) {
  const std::uint64_t least = std::max<std::uint64_t>(budget / 1000, 1);
  std::uint64_t h = std::max(headroom, least);
  if (used_this_interval * 2 >= h) {
    h = std::min(h * 2, std::max(budget, least));
  } else if (used_this_interval * 8 < h) {
    h = std::max(h / 2, least);
  }
  BudgetAsk ask;
  ask.headroom = h;
  ask.want_exposed = std::min(used + h, std::max(budget, used));
  ask.want_allotted = std::min(used + 4 * h, std::max(budget, used));
  return ask;
}

// This host's demand on a global rate cell, in units per period: the units
// it admitted over the interval (the GCRA arrival time's advance divided by
// the emission interval), doubled when the cell is saturated (its arrival
// time is past half the burst ahead of now, so calls were being turned away).
inline std::uint64_t rate_demand(std::uint64_t tat_before, std::uint64_t tat_now,
                                 std::uint64_t now_before, std::uint64_t now_ns,
                                 std::uint64_t emission_ns, std::uint64_t capacity_ns,
                                 std::uint64_t period_ns) {
  const std::uint64_t from = std::max(tat_before, now_before);
  const std::uint64_t elapsed = now_ns > now_before ? now_ns - now_before : 0;
  if (emission_ns == 0 || elapsed == 0 || tat_now <= from) return 0;
  const std::uint64_t units = (tat_now - from) / emission_ns;
  std::uint64_t per_period =
      static_cast<std::uint64_t>(static_cast<unsigned __int128>(units) * period_ns / elapsed);
  if (tat_now > now_ns + capacity_ns / 2) per_period = per_period * 2 + 1;
  return per_period;
}

// GCRA terms for a share of a rate: the emission interval of `share` units
// per period, and a burst scaled like the rate (at least one unit).
struct ShareTerms {
  std::uint64_t emission_ns = 0;
  std::uint64_t capacity_ns = 0;
};

inline ShareTerms share_terms(std::uint64_t share, std::uint64_t period_ns, std::uint64_t rate,
                              std::uint64_t burst) {
  ShareTerms t;
  if (share == 0 || rate == 0) return t;
  t.emission_ns = (period_ns + share - 1) / share;  // round up: never faster than the share
  const std::uint64_t host_burst = std::max<std::uint64_t>(
      1, static_cast<std::uint64_t>(static_cast<unsigned __int128>(burst) * share / rate));
  t.capacity_ns = host_burst * t.emission_ns;
  return t;
}

}  // namespace sluice
