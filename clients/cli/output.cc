#include "output.h"

#include <algorithm>
#include <cstdio>

namespace sluice::cli {
namespace {

constexpr std::uint64_t kNanoPerUsd = 1'000'000'000ull;

std::string nine_decimals(std::uint64_t nano_usd) {
  char frac[16];
  std::snprintf(frac, sizeof frac, "%09llu",
                static_cast<unsigned long long>(nano_usd % kNanoPerUsd));
  return std::to_string(nano_usd / kNanoPerUsd) + "." + frac;
}

std::string pad(const std::string& s, std::size_t width, bool right) {
  if (s.size() >= width) return s;
  const std::string fill(width - s.size(), ' ');
  return right ? fill + s : s + fill;
}

void print_row(const std::vector<std::string>& cells, const std::vector<std::size_t>& widths,
               const std::vector<std::size_t>& right) {
  std::string line;
  for (std::size_t c = 0; c < cells.size(); ++c) {
    const bool is_right = std::find(right.begin(), right.end(), c) != right.end();
    const bool last = c + 1 == cells.size();
    line += last && !is_right ? cells[c] : pad(cells[c], widths[c], is_right);
    if (!last) line += "  ";
  }
  std::printf("%s\n", line.c_str());
}

}  // namespace

int fail(int exit_code, const std::string& message) {
  std::string line = message;
  std::replace(line.begin(), line.end(), '\n', ' ');
  std::fprintf(stderr, "sluice: %s\n", line.c_str());
  return exit_code;
}

std::string format_usd(std::uint64_t nano_usd) {
  std::string s = nine_decimals(nano_usd);
  const std::size_t cents = s.find('.') + 3;
  while (s.size() > cents && s.back() == '0') s.pop_back();
  return "$" + s;
}

std::string format_usd_fixed(std::uint64_t nano_usd) { return nine_decimals(nano_usd); }

double usd(std::uint64_t nano_usd) {
  return static_cast<double>(nano_usd) / static_cast<double>(kNanoPerUsd);
}

void print_json(const nlohmann::json& doc) {
  const std::string text = doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::printf("%s\n", text.c_str());
}

void print_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::size_t width = 0;
  for (const auto& [key, value] : fields) width = std::max(width, key.size() + 1);
  for (const auto& [key, value] : fields) {
    std::printf("%s %s\n", pad(key + ":", width, false).c_str(), value.c_str());
  }
}

void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows,
                 const std::vector<std::size_t>& right) {
  std::vector<std::size_t> widths(header.size(), 0);
  for (std::size_t c = 0; c < header.size(); ++c) widths[c] = header[c].size();
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size() && c < widths.size(); ++c) {
      widths[c] = std::max(widths[c], row[c].size());
    }
  }
  print_row(header, widths, right);
  for (const auto& row : rows) print_row(row, widths, right);
}

}  // namespace sluice::cli
