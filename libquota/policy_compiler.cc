#include "policy_compiler.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "calendar.h"
#include "hashing.h"

namespace sluice {
namespace {

using shm::Word;

Word limit_flags(const LimitSpec& l) {
  Word flags = l.shadow ? shm::kFlagShadow : 0;
  if (l.scope == Scope::kGlobal) {
    flags |= shm::kFlagGlobal;
    if (l.on_store_down == OnStoreDown::kLocalShare) flags |= shm::kFlagStoreDownLocalShare;
    if (l.on_store_down == OnStoreDown::kFailOpen) flags |= shm::kFlagStoreDownFailOpen;
  }
  return flags;
}

Word measure_word(Measure m) {
  switch (m) {
    case Measure::kRequests:
      return shm::kMeasureRequests;
    case Measure::kTokens:
      return shm::kMeasureTokens;
    case Measure::kInputTokens:
      return shm::kMeasureInputTokens;
    case Measure::kOutputTokens:
      return shm::kMeasureOutputTokens;
    case Measure::kUsd:
      return shm::kMeasureNanoUsd;
  }
  return 0;
}

Word kind_word(LimitKind k) {
  switch (k) {
    case LimitKind::kRate:
      return shm::kKindRate;
    case LimitKind::kBudget:
      return shm::kKindBudget;
    case LimitKind::kModelAccess:
      return shm::kKindModelAccess;
  }
  return 0;
}

template <int N>
void put_text(Word (&dst)[N], const std::string& s) {
  shm::store_text(dst, s.data(), s.size());
}

}  // namespace

std::uint64_t limit_identity(const LimitSpec& l) {
  std::string canon = l.name;
  canon += '\0';
  canon += std::to_string(static_cast<int>(l.kind)) + '/' +
           std::to_string(static_cast<int>(l.measure)) + '/' +
           std::to_string(static_cast<int>(l.period)) + '/' + l.timezone;
  for (const MatchTerm& t : l.match) {
    canon += '\0';
    canon += t.attribute;
    canon += '=';
    canon += t.wildcard ? std::string("\x01*") : t.value;
  }
  return nonzero(XXH3_64bits_withSeed(canon.data(), canon.size(), 0));
}

Status compile_policy(const Policy& policy, std::uint64_t seed, std::int64_t now_unix,
                      Word generation, shm::CompiledPolicy& out) {
  if (policy.limits.size() > shm::kMaxLimits || policy.models.size() > shm::kMaxModels) {
    return Status(ErrorCode::kInvalidArgument, "policy has more than " +
                                                   std::to_string(shm::kMaxLimits) +
                                                   " limits or models; merge limits");
  }
  shm::store_relaxed(out.generation, generation);
  shm::store_relaxed(out.limit_count, policy.limits.size());
  shm::store_relaxed(out.model_count, policy.models.size());
  shm::store_relaxed(out.flags, (policy.audit.required ? shm::kPolicyAuditRequired : 0) |
                                    (policy.audit.enabled ? 0 : shm::kPolicyAuditOff));
  shm::store_relaxed(out.compiled_at_unix, static_cast<Word>(now_unix));

  for (std::size_t i = 0; i < policy.models.size(); ++i) {
    const ModelPrice& m = policy.models[i];
    shm::CompiledModel& c = out.models[i];
    shm::store_relaxed(c.name_hash, hash_text(seed, m.name));
    shm::store_relaxed(c.input_pusd_per_token, m.input_pusd_per_token);
    shm::store_relaxed(c.output_pusd_per_token, m.output_pusd_per_token);
    shm::store_relaxed(c.cached_pusd_per_token, m.cached_pusd_per_token);
    put_text(c.name, m.name);
  }

  for (std::size_t i = 0; i < policy.limits.size(); ++i) {
    const LimitSpec& l = policy.limits[i];
    shm::CompiledLimit& c = out.limits[i];
    if (l.match.size() > shm::kMaxMatchTerms || l.models.size() > shm::kMaxAllowedModels) {
      return Status(ErrorCode::kInvalidArgument,
                    "limit '" + l.name + "' has too many match terms or models");
    }
    shm::store_relaxed(c.identity, limit_identity(l));
    shm::store_relaxed(c.kind, kind_word(l.kind));
    shm::store_relaxed(c.measure, measure_word(l.measure));
    shm::store_relaxed(c.flags, limit_flags(l));
    shm::store_relaxed(c.period_seconds, period_seconds(l.period));
    shm::store_relaxed(c.term_count, l.match.size());
    for (int t = 0; t < shm::kMaxMatchTerms; ++t) {
      const bool used = t < static_cast<int>(l.match.size());
      const MatchTerm* term = used ? &l.match[t] : nullptr;
      shm::store_relaxed(c.term_attr_hash[t], used ? hash_text(seed, term->attribute) : 0);
      shm::store_relaxed(c.term_value_hash[t],
                         used && !term->wildcard ? hash_text(seed, term->value) : 0);
      put_text(c.term_attr_name[t], used ? term->attribute : std::string());
    }
    Word emission = 0, capacity = 0, burst = 0, budget = 0;
    if (l.kind == LimitKind::kRate) {
      const std::uint64_t period_ns = period_seconds(l.period) * 1'000'000'000ull;
      emission = (period_ns + l.amount - 1) / l.amount;  // round up: never faster than the rate
      burst = l.burst;
      capacity = burst * emission;
    } else if (l.kind == LimitKind::kBudget) {
      budget = l.amount;
      Result<std::vector<std::int64_t>> starts =
          window_starts(l.period, l.timezone, now_unix, shm::kWindowTable);
      if (!starts.ok()) return starts.status();
      for (int w = 0; w < shm::kWindowTable; ++w) {
        shm::store_relaxed(c.window_start[w], static_cast<Word>(starts.value()[w]));
      }
    }
    shm::store_relaxed(c.emission_ns, emission);
    shm::store_relaxed(c.capacity_ns, capacity);
    shm::store_relaxed(c.burst, burst);
    shm::store_relaxed(c.budget, budget);
    shm::store_relaxed(c.amount, l.amount);
    shm::store_relaxed(c.window_count, l.kind == LimitKind::kBudget ? shm::kWindowTable : 0);
    shm::store_relaxed(c.allowed_count, l.models.size());
    for (int m = 0; m < shm::kMaxAllowedModels; ++m) {
      const bool used = m < static_cast<int>(l.models.size());
      shm::store_relaxed(c.allowed_model_hash[m], used ? hash_text(seed, l.models[m]) : 0);
    }
    put_text(c.name, l.name);
  }
  return Status::Ok();
}

bool window_tables_hold(const shm::CompiledPolicy& compiled, std::int64_t now_unix) {
  const Word n = std::min<Word>(shm::load_relaxed(compiled.limit_count), shm::kMaxLimits);
  for (Word i = 0; i < n; ++i) {
    const shm::CompiledLimit& c = compiled.limits[i];
    if (shm::load_relaxed(c.kind) != shm::kKindBudget) continue;
    const auto first = static_cast<std::int64_t>(shm::load_relaxed(c.window_start[0]));
    const auto middle =
        static_cast<std::int64_t>(shm::load_relaxed(c.window_start[shm::kWindowTable / 2]));
    if (now_unix < first || now_unix >= middle) return false;
  }
  return true;
}

}  // namespace sluice
