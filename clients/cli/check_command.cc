// sluice check FILE: validates a policy file without touching any segment.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "sluice/policy.h"

namespace sluice::cli {
namespace {

int run_check(const std::string& path) {
  Result<Policy> policy = load_policy_file(path);
  if (!policy.ok()) {
    // Already one line in the "FILE:LINE: field: fix" form of compilers.
    std::fprintf(stderr, "%s\n", policy.status().message().c_str());
    return kExitUsage;
  }
  std::printf("%s: ok (%zu limits, %zu models, segment %s)\n", path.c_str(), policy->limits.size(),
              policy->models.size(), policy->segment.name.c_str());
  return kExitOk;
}

}  // namespace

void add_check_command(CLI::App& app, std::vector<Command>& out) {
  CLI::App* sub = app.add_subcommand("check", "validate a policy file; touches no segment");
  auto path = std::make_shared<std::string>();
  sub->add_option("FILE", *path, "policy file (YAML)")->required();
  sub->footer("Exit status: 0 valid, 2 invalid (the error names file, line, field and fix).");
  out.push_back({sub, [path] { return run_check(*path); }});
}

}  // namespace sluice::cli
