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

// Columns `s` takes on a terminal: its UTF-8 code points ("—" is one).
std::size_t display_width(const std::string& s) {
  return static_cast<std::size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string pad(const std::string& s, std::size_t width, bool right) {
  const std::size_t has = display_width(s);
  if (has >= width) return s;
  const std::string fill(width - has, ' ');
  return right ? fill + s : s + fill;
}

std::string format_row(const std::vector<std::string>& cells,
                       const std::vector<std::size_t>& widths,
                       const std::vector<std::size_t>& right) {
  std::string line;
  for (std::size_t c = 0; c < cells.size(); ++c) {
    const bool is_right = std::find(right.begin(), right.end(), c) != right.end();
    const bool last = c + 1 == cells.size();
    line += last && !is_right ? cells[c] : pad(cells[c], widths[c], is_right);
    if (!last) line += "  ";
  }
  return line + "\n";
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

std::string format_seconds(std::uint64_t ns) {
  const std::uint64_t ms = ns / 1'000'000 + (ns % 1'000'000 >= 500'000 ? 1 : 0);
  char text[32];
  std::snprintf(text, sizeof text, "%llu.%03llu", static_cast<unsigned long long>(ms / 1000),
                static_cast<unsigned long long>(ms % 1000));
  return text;
}

std::string counted(std::uint64_t n, const std::string& noun) {
  return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
}

std::string printable_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    // The length of the UTF-8 sequence at i (RFC 3629), 0 if there is none.
    std::size_t len = c < 0x80                 ? 1
                      : c >= 0xC2 && c <= 0xDF ? 2
                      : c >= 0xE0 && c <= 0xEF ? 3
                      : c >= 0xF0 && c <= 0xF4 ? 4
                                               : 0;
    if (len > s.size() - i) len = 0;
    for (std::size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) len = 0;
    }
    if (len >= 3) {  // no overlong forms, surrogates or code points past U+10FFFF
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) ||
          (c == 0xF4 && c1 > 0x8F)) {
        len = 0;
      }
    }
    const bool control = (len == 1 && (c < 0x20 || c == 0x7F)) ||
                         (len == 2 && c == 0xC2 && static_cast<unsigned char>(s[i + 1]) < 0xA0);
    if (len == 0 || control) {
      out += '?';
      ++i;
      continue;
    }
    out.append(s.substr(i, len));
    i += len;
  }
  return out;
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

std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows,
                         const std::vector<std::size_t>& right) {
  std::vector<std::size_t> widths(header.size(), 0);
  for (std::size_t c = 0; c < header.size(); ++c) widths[c] = display_width(header[c]);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size() && c < widths.size(); ++c) {
      widths[c] = std::max(widths[c], display_width(row[c]));
    }
  }
  std::string out = format_row(header, widths, right);
  for (const auto& row : rows) out += format_row(row, widths, right);
  return out;
}

void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows,
                 const std::vector<std::size_t>& right) {
  const std::string text = format_table(header, rows, right);
  std::fwrite(text.data(), 1, text.size(), stdout);
}

std::string csv_line(const std::vector<std::string>& fields) {
  std::string line;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line += ',';
    const std::string& f = fields[i];
    if (f.find_first_of(",\"\r\n") == std::string::npos) {
      line += f;
      continue;
    }
    line += '"';
    for (const char c : f) {
      if (c == '"') line += '"';
      line += c;
    }
    line += '"';
  }
  return line + "\r\n";
}

}  // namespace sluice::cli
