// libFuzzer target: the policy parser and compiler (libquota/policy.cc,
// policy_compiler.cc) on arbitrary text. Whatever the text, parse_policy
// either refuses it with one line or returns a Policy that compiles into a
// block every client accepts (policy_valid), with budget window tables that
// hold the time it was compiled at.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "policy_compiler.h"
#include "policy_snapshot.h"
#include "sluice/policy.h"

namespace {

constexpr std::uint64_t kSeed = 0x5eed5eed5eed5eedULL;
constexpr std::int64_t kNow = 1'767'225'600;  // 2026-01-01T00:00:00Z

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_policy: %s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  sluice::Result<sluice::Policy> policy = sluice::parse_policy(text, "fuzz.yaml");
  if (!policy.ok()) {
    const std::string& m = policy.status().message();
    if (m.empty() || m.find('\n') != std::string::npos) fail("error is not one line", m);
    return 0;
  }
  static auto compiled = std::make_unique<sluice::shm::CompiledPolicy>();
  *compiled = {};
  const sluice::Status s = sluice::compile_policy(*policy, kSeed, kNow, 1, *compiled);
  if (!s.ok()) fail("a parsed policy does not compile", s.message());
  if (!sluice::policy_valid(*compiled)) fail("clients would refuse the compiled policy", text);
  if (!sluice::window_tables_hold(*compiled, kNow))
    fail("fresh window tables do not hold now", text);
  return 0;
}
