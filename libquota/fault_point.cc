// The chaos build's crash points (fault_point.h). Workers are one thread.
#include "fault_point.h"

#include <csignal>

namespace sluice::fault {

namespace {

constexpr const char* kNames[] = {
    "reserve_slot_claimed", "reserve_between_debits", "reserve_debited",
    "audit_claimed",        "audit_written",          "settle_taken",
    "settle_kind_stored",   "settle_between_cells",   "settle_cells_done",
    "settle_published",     "extend_between_cells",
};
static_assert(sizeof kNames / sizeof kNames[0] == static_cast<int>(Point::kCount));

Point g_armed = Point::kCount;
std::uint64_t g_left = 0;

}  // namespace

const char* name(Point p) {
  const int i = static_cast<int>(p);
  return i >= 0 && i < static_cast<int>(Point::kCount) ? kNames[i] : nullptr;
}

bool parse(std::string_view text, Point* out) {
  for (int i = 0; i < static_cast<int>(Point::kCount); ++i) {
    if (text == kNames[i]) {
      *out = static_cast<Point>(i);
      return true;
    }
  }
  return false;
}

void arm(Point p, std::uint64_t after) {
  g_armed = p;
  g_left = after;
}

void reached(Point p) {
  if (p != g_armed || g_left == 0 || --g_left != 0) return;
  std::raise(SIGKILL);
}

}  // namespace sluice::fault
