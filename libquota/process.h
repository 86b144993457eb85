// Proof that a process is alive, for reclaiming the work of dead clients:
// a pid alone is not proof (pids are reused), pid + start time is.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace sluice {

// Start time of `pid` in clock ticks since boot (/proc/<pid>/stat field 22),
// 0 if the process does not exist.
std::uint64_t process_start_time(pid_t pid);

// True unless the process is proven dead: no such pid, a zombie, or the pid
// now belongs to a process that started at another time. A start time of 0
// (a client caught between claiming its registration and writing its start
// time) is proven dead only by the pid being gone.
bool process_alive(pid_t pid, std::uint64_t start_time);

}  // namespace sluice
