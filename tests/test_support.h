// Test support shared by the tests that run the real binaries: where the
// build is, reading a file whole, waiting for a condition, and the one-line
// rule for errors.
#pragma once

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

namespace sluice::testing {

// The build directory meson runs the tests from (SLUICE_BUILD_ROOT).
inline std::string build_root() {
  const char* env = std::getenv("SLUICE_BUILD_ROOT");
  return env != nullptr ? env : std::string(SLUICE_SOURCE_ROOT) + "/build";
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Polls `done` every 20 ms until it holds (true) or `limit` passes (false).
inline bool eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// Exactly one non-empty line, newline-terminated.
inline bool one_line(const std::string& s) {
  return !s.empty() && s.back() == '\n' && s.find('\n') == s.size() - 1;
}

}  // namespace sluice::testing
