// The `sluice` subcommands. Each add_* registers its subcommands on the app
// and returns how to run them; main.cc parses and runs the one chosen.
// A run returns the exit status: 0 admitted or done, 1 rejected (or a
// reservation that is not live), 2 usage or attach error.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace sluice::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRejected = 1;
inline constexpr int kExitUsage = 2;

// Options every subcommand sees; filled in by the parse before a run.
struct Globals {
  std::string segment = "sluice";
};

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// check FILE
void add_check_command(CLI::App& app, std::vector<Command>& out);
// status, keys, limits, reload
void add_inspect_commands(CLI::App& app, const Globals& globals, std::vector<Command>& out);
// audit, audit verify
void add_audit_commands(CLI::App& app, const Globals& globals, std::vector<Command>& out);
// reserve, charge, commit, cancel
void add_call_commands(CLI::App& app, const Globals& globals, std::vector<Command>& out);
// top
void add_top_command(CLI::App& app, const Globals& globals, std::vector<Command>& out);
// report
void add_report_command(CLI::App& app, const Globals& globals, std::vector<Command>& out);

}  // namespace sluice::cli
