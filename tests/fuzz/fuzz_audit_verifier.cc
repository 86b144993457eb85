// libFuzzer target: the FlatBuffers audit Record verifier as `sluice audit`
// and `sluice report` use it (clients/cli/audit_source.cc), and everything
// they do with a record it accepts: filter it, add it to a cost report,
// print it as a table row and as JSON.
//
// The input is one frame's payload. Whatever it holds, the verifier either
// refuses it with one line or the record it accepts reads within its bytes
// (ASan checks every access).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "audit_filter.h"
#include "audit_format.h"
#include "audit_generated.h"
#include "audit_source.h"
#include "cost_report.h"
#include "frame.h"

namespace {

namespace cli = sluice::cli;
namespace fb = sluice::audit::fb;

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz_audit_verifier: %s\n", what.c_str());
  std::abort();
}

const cli::AuditFilter& filter() {
  static const cli::AuditFilter f = [] {
    cli::AuditFilterOptions o;
    o.since = "2020-01-01";
    o.attrs = {"team=pricing"};
    sluice::Result<cli::AuditFilter> parsed =
        cli::parse_audit_filter(o, 1'767'225'600'000'000'000ull);
    if (!parsed.ok()) fail(parsed.status().message());
    return parsed.value();
  }();
  return f;
}

void use(const fb::Record& r) {
  (void)filter().matches(r);
  cli::CostReport report({"team", "feature", "model"});
  report.add(r);
  (void)report.rows();
  cli::print_audit_row(r);  // stdout is /dev/null
  (void)cli::audit_record_json(r).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (std::freopen("/dev/null", "w", stdout) == nullptr) fail("cannot silence stdout");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> payload(data, size);
  const std::string why = cli::check_audit_record(payload);
  if (!why.empty() && why.find('\n') != std::string::npos) fail("refusal is not one line");
  bool delivered = false;
  cli::AuditRecordSink sink(
      [&](const fb::Record& r) {
        delivered = true;
        use(r);
      },
      "not shown");
  sink.deliver(sluice::audit::FrameRef{"fuzz.sal", 0, payload});
  if (delivered != why.empty()) fail("the sink and the verifier disagree");
  return 0;
}
