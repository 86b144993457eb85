#include "args.h"

#include <charconv>
#include <string_view>

namespace sluice::cli {
namespace {

Status invalid(std::string message) {
  return Status(ErrorCode::kInvalidArgument, std::move(message));
}

// Digits only (no sign, no space), fitting 64 bits.
bool parse_digits(std::string_view text, std::uint64_t* out) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

struct DurationUnit {
  std::string_view suffix;
  std::uint64_t ns;
};

// Longest suffix first, so "ms" is not read as "s".
constexpr DurationUnit kDurationUnits[] = {
    {"ms", 1'000'000ull},        {"s", 1'000'000'000ull},      {"m", 60'000'000'000ull},
    {"h", 3'600'000'000'000ull}, {"d", 86'400'000'000'000ull}, {"", 1'000'000'000ull},
};

constexpr std::uint64_t kMaxTtlNs = 30 * 86'400'000'000'000ull;

}  // namespace

Result<std::uint64_t> parse_token_count(const std::string& flag, const std::string& text) {
  std::uint64_t n = 0;
  if (!parse_digits(text, &n) || n > kMaxTokenCount) {
    return invalid(flag + " '" + text + "': must be a whole number from 0 to " +
                   std::to_string(kMaxTokenCount) + ", e.g. " + flag + " 1200");
  }
  return n;
}

Result<std::uint64_t> parse_reservation_id(const std::string& text) {
  std::uint64_t id = 0;
  if (!parse_digits(text, &id)) {
    return invalid("reservation id '" + text +
                   "' is not a number; pass the id `sluice reserve` printed, e.g. "
                   "sluice commit 4294967296 --input-tokens 1200 --output-tokens 300");
  }
  return id;
}

Result<std::uint64_t> parse_ttl_ns(const std::string& text) {
  const std::string_view t(text);
  for (const DurationUnit& u : kDurationUnits) {
    if (t.size() <= u.suffix.size() || !t.ends_with(u.suffix)) continue;
    std::uint64_t n = 0;
    if (!parse_digits(t.substr(0, t.size() - u.suffix.size()), &n)) break;
    if (n == 0 || n > kMaxTtlNs / u.ns) break;
    return n * u.ns;
  }
  return invalid("--ttl '" + text +
                 "': use a positive duration of at most 30d, like 30s, 15m, 2h or 900 (seconds)");
}

Result<AttributeList> parse_attributes(const std::vector<std::string>& pairs,
                                       const std::string& model) {
  AttributeList out;
  auto add = [&out](const std::string& flag, std::string name, std::string value) -> Status {
    if (name.empty()) return invalid(flag + ": empty attribute name; e.g. --attr team=pricing");
    if (value.empty()) return invalid(flag + ": empty value; e.g. --attr " + name + "=VALUE");
    for (const auto& [seen, unused] : out) {
      if (seen == name) {
        return invalid("attribute '" + name + "' given twice (--attr or --model); give it once");
      }
    }
    out.emplace_back(std::move(name), std::move(value));
    return Status::Ok();
  };
  for (const std::string& p : pairs) {
    const std::string flag = "--attr '" + p + "'";
    const std::size_t eq = p.find('=');
    if (eq == std::string::npos) {
      return invalid(flag + ": expected KEY=VALUE, e.g. --attr team=pricing");
    }
    if (Status s = add(flag, p.substr(0, eq), p.substr(eq + 1)); !s.ok()) return s;
  }
  if (!model.empty()) {
    if (Status s = add("--model '" + model + "'", "model", model); !s.ok()) return s;
  }
  if (out.size() > kMaxCallAttributes) {
    return invalid(std::to_string(out.size()) + " attributes given; a call carries at most " +
                   std::to_string(kMaxCallAttributes));
  }
  return out;
}

}  // namespace sluice::cli
