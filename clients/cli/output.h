// How `sluice` prints: one-line errors on stderr, JSON documents or aligned
// text on stdout, and money (integer nano-dollars) without rounding.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::cli {

// Prints "sluice: MESSAGE" on stderr (one line) and returns `exit_code`.
int fail(int exit_code, const std::string& message);

// "$0.0075", "$25.00": exact, trailing zeros dropped down to cents.
std::string format_usd(std::uint64_t nano_usd);
// "0.007500000": exact, nine decimals, for columns of USD amounts.
std::string format_usd_fixed(std::uint64_t nano_usd);
// USD as a JSON number (nano-dollar precision).
double usd(std::uint64_t nano_usd);

// "2.300": nanoseconds as seconds to the millisecond, rounded half up.
std::string format_seconds(std::uint64_t ns);

// "1 frame", "2 frames".
std::string counted(std::uint64_t n, const std::string& noun);

// One JSON document on one line. Invalid UTF-8 (a truncated label, or an
// attribute value that is not UTF-8) is replaced by U+FFFD: always valid JSON.
void print_json(const nlohmann::json& doc);

// Text for one row on a terminal: control characters (C0, DEL, C1) and bytes
// that are not UTF-8 become '?', so that an attribute value can neither break
// the row nor send the terminal an escape sequence.
std::string printable_text(std::string_view s);

// "key:   value" lines, values aligned.
void print_fields(const std::vector<std::pair<std::string, std::string>>& fields);

// A table with a header row; columns whose index is in `right` are right-aligned.
// format_table returns its lines, each ending in '\n'.
std::string format_table(const std::vector<std::string>& header,
                         const std::vector<std::vector<std::string>>& rows,
                         const std::vector<std::size_t>& right);
void print_table(const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows,
                 const std::vector<std::size_t>& right);

// One CSV record (RFC 4180): fields with a comma, quote or line break are
// quoted, quotes doubled; ends in "\r\n".
std::string csv_line(const std::vector<std::string>& fields);

}  // namespace sluice::cli
