// Crash points for the chaos suite (tests/chaos). A process can be killed at
// any instruction, but the steps that matter most (between two cells'
// debits, between claiming and publishing an audit record) last nanoseconds:
// a SIGKILL from outside almost never lands there. So the chaos build
// (-DSLUICE_FAULT_INJECTION, libquota_chaos) lets a worker arm one point and
// kill itself with SIGKILL the n-th time it reaches it. In every other build
// SLUICE_FAULT_POINT(p) is nothing: the hot path is unchanged.
#pragma once

#include <cstdint>
#include <string_view>

namespace sluice::fault {

enum class Point : int {
  kReserveSlotClaimed,    // a reservation slot is RESERVING, nothing debited
  kReserveBetweenDebits,  // some of the reservation's cells are debited, not all
  kReserveDebited,        // every cell debited, the slot not yet ACTIVE
  kAuditClaimed,          // an audit record's span is claimed, nothing written
  kAuditWritten,          // the record is written, not yet published
  kSettleTaken,           // commit / cancel took the slot (SETTLING), usage not written
  kSettleKindStored,      // the actual usage is in the slot, no cell settled
  kSettleBetweenCells,    // some cells settled, not all
  kSettleCellsDone,       // every cell settled, the record not yet published
  kSettlePublished,       // the record is published, the slot not yet free
  kExtendBetweenCells,    // an extend debited some cells, not all
  kCount,
};

// "settle_between_cells", ...; nullptr for kCount.
const char* name(Point p);
// The point named `text`; false if there is none.
bool parse(std::string_view text, Point* out);
// From now on, the `after`-th time this process reaches `p` it dies (SIGKILL).
void arm(Point p, std::uint64_t after);
// Called at each point (through SLUICE_FAULT_POINT).
void reached(Point p);

}  // namespace sluice::fault

#ifdef SLUICE_FAULT_INJECTION
#define SLUICE_FAULT_POINT(p) ::sluice::fault::reached(::sluice::fault::Point::p)
#else
#define SLUICE_FAULT_POINT(p) static_cast<void>(0)
#endif
