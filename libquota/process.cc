#include "process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace sluice {

namespace {

struct ProcStat {
  char state = '?';
  std::uint64_t start_time = 0;  // 0: no such process
};

ProcStat read_stat(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[1024];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return {};
  buf[n] = '\0';
  // The command name (field 2) may hold spaces and parentheses: fields after
  // it start after the last ')'. Field 3 is the state; start time is field 22.
  const char* p = std::strrchr(buf, ')');
  if (p == nullptr) return {};
  ++p;
  ProcStat st;
  for (int field = 3; field <= 22; ++field) {
    while (*p == ' ') ++p;
    if (field == 3) st.state = *p;
    if (field == 22) {
      st.start_time = std::strtoull(p, nullptr, 10);
      return st;
    }
    while (*p != ' ' && *p != '\0') ++p;
    if (*p == '\0') return {};
  }
  return {};
}

}  // namespace

std::uint64_t process_start_time(pid_t pid) { return read_stat(pid).start_time; }

bool process_alive(pid_t pid, std::uint64_t start_time) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  const ProcStat st = read_stat(pid);
  if (st.start_time == 0) return ::kill(pid, 0) == 0 || errno == EPERM;  // no /proc: trust kill
  if (st.state == 'Z' || st.state == 'X') return false;                  // exited, not yet reaped
  return start_time == 0 || st.start_time == start_time;
}

}  // namespace sluice
