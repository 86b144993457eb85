// describe_invalid_request: which bound of sluice/quota.h a call breaks, in
// one line, formatted into the caller's buffer (the C ABI's error path does
// not allocate).
#include <cstdarg>
#include <cstdio>

#include "call_rules.h"

namespace sluice {
namespace {

[[gnu::format(printf, 3, 4)]] bool say(char* out, std::size_t size, const char* format, ...) {
  if (size == 0) return true;
  va_list args;
  va_start(args, format);
  std::vsnprintf(out, size, format, args);
  va_end(args);
  return true;
}

// An attribute name for a message: at most 63 bytes, control bytes as '?'.
struct ShownName {
  char text[kMaxAttributeNameBytes + 1];
  explicit ShownName(std::string_view name) {
    std::size_t n = 0;
    for (; n < name.size() && n < kMaxAttributeNameBytes; ++n) {
      const auto c = static_cast<unsigned char>(name[n]);
      text[n] = c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c);
    }
    text[n] = '\0';
  }
};

unsigned long long ull(std::uint64_t v) { return static_cast<unsigned long long>(v); }

}  // namespace

bool describe_invalid_request(const CallRequest& r, char* out, std::size_t size) {
  const std::size_t n = r.attributes.size();
  if (n > kMaxCallAttributes) {
    return say(out, size, "%zu attributes, at most %zu: leave out those no limit matches", n,
               kMaxCallAttributes);
  }
  if (r.input_tokens > kMaxTokensPerCall) {
    return say(out, size, "input_tokens %llu is more than %llu, the most one call may carry",
               ull(r.input_tokens), ull(kMaxTokensPerCall));
  }
  if (r.max_output_tokens > kMaxTokensPerCall) {
    return say(out, size, "max_output_tokens %llu is more than %llu, the most one call may carry",
               ull(r.max_output_tokens), ull(kMaxTokensPerCall));
  }
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const Attribute& a = r.attributes[i];
    if (a.name.empty()) {
      return say(out, size, "attribute %zu has an empty name; name it, e.g. team", i + 1);
    }
    const ShownName name(a.name);
    if (a.name.size() > kMaxAttributeNameBytes) {
      return say(out, size, "attribute name '%s...' is %zu bytes, at most %zu", name.text,
                 a.name.size(), kMaxAttributeNameBytes);
    }
    if (a.value.empty()) {
      return say(out, size, "attribute '%s' has an empty value; give it a value or leave it out",
                 name.text);
    }
    if (a.value.size() > kMaxAttributeValueBytes) {
      return say(out, size,
                 "attribute '%s' has a value of %zu bytes, at most %zu; pass a shorter value "
                 "(e.g. an id or a hash)",
                 name.text, a.value.size(), kMaxAttributeValueBytes);
    }
    bytes += 2 + a.name.size() + a.value.size();
  }
  if (bytes > kMaxAttributeBytes) {
    return say(out, size,
               "attributes take %zu bytes (names and values, 2 more each), at most %zu; leave "
               "out those no limit matches or shorten them",
               bytes, kMaxAttributeBytes);
  }
  return false;
}

}  // namespace sluice
