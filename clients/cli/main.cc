// sluice: the command line over a running sluiced. Parses the command line,
// runs the chosen subcommand, and turns every failure into one line on
// stderr and an exit status (0 done, 1 rejected, 2 usage or attach error).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "commands.h"
#include "output.h"

namespace {

using sluice::cli::Command;
using sluice::cli::Globals;
using sluice::cli::kExitUsage;

std::string default_segment() {
  const char* env = std::getenv("SLUICE_SEGMENT");
  return env != nullptr && *env != '\0' ? env : "sluice";
}

constexpr const char* kCommandList =
    "check, status, keys, limits, top, report, reload, audit, reserve, charge, commit or cancel";

// One line for a parse error, pointing at the help of the subcommand being parsed.
std::string parse_error_line(const CLI::App& app, const CLI::ParseError& e) {
  const std::vector<CLI::App*> chosen = app.get_subcommands();
  if (!chosen.empty()) {
    return std::string(e.what()) + "; see sluice " + chosen.front()->get_name() + " --help";
  }
  const std::vector<std::string> rest = app.remaining();
  if (dynamic_cast<const CLI::RequiredError*>(&e) != nullptr) {
    if (rest.empty()) return std::string("no command given: use ") + kCommandList;
    if (rest.front().rfind('-', 0) == 0) {
      return "unknown option '" + rest.front() + "'; see sluice --help";
    }
    return "unknown command '" + rest.front() + "': use " + kCommandList;
  }
  return std::string(e.what()) + "; see sluice --help";
}

int run(int argc, char** argv) {
  CLI::App app{
      "sluice - inspect and use the quotas a local sluiced enforces.\n"
      "Validate a policy, look at the segment, and reserve, charge, commit or cancel\n"
      "LLM calls from a shell."};
  app.fallthrough();  // --segment may come after the subcommand
  app.require_subcommand(1);
  Globals globals;
  globals.segment = default_segment();
  app.add_option("--segment", globals.segment,
                 "shared-memory segment (policy segment.name); default $SLUICE_SEGMENT, else "
                 "sluice")
      ->capture_default_str();
  app.footer("Exit status: 0 admitted or done, 1 rejected, 2 usage or attach error.");

  std::vector<Command> commands;
  sluice::cli::add_check_command(app, commands);
  sluice::cli::add_inspect_commands(app, globals, commands);
  sluice::cli::add_audit_commands(app, globals, commands);
  sluice::cli::add_call_commands(app, globals, commands);
  sluice::cli::add_top_command(app, globals, commands);
  sluice::cli::add_report_command(app, globals, commands);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    return sluice::cli::fail(kExitUsage, parse_error_line(app, e));
  }
  for (const Command& c : commands) {
    if (c.app->parsed()) return c.run();
  }
  return sluice::cli::fail(kExitUsage, "no command given; see sluice --help");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    return sluice::cli::fail(kExitUsage, std::string("internal error: ") + e.what());
  } catch (...) {
    return sluice::cli::fail(kExitUsage, "internal error");
  }
}
