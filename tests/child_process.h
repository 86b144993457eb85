// Test support: starts a program as a child whose stdout and stderr go to
// files, and which the kernel kills if the test process dies first, so a
// crashed test leaves no sidecar running.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace sluice::testing {

// Returns the child's pid, or -1 if fork failed. `err` may equal `out`.
inline pid_t spawn_child(const std::vector<std::string>& args, const std::string& out,
                         const std::string& err) {
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(126);  // the test died before the prctl
  const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  const int e = err == out ? o : ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (o < 0 || e < 0 || ::dup2(o, STDOUT_FILENO) < 0 || ::dup2(e, STDERR_FILENO) < 0) ::_exit(126);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

// Stops a child with SIGTERM, and with SIGKILL if it is still running
// after `grace`; reaps it either way.
inline void stop_child(pid_t pid, std::chrono::milliseconds grace = std::chrono::seconds(5)) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (::waitpid(pid, nullptr, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// A forked child that reports one trivially copyable value on a pipe.
struct Reporter {
  pid_t pid = -1;
  int fd = -1;
};

// Forks a child that runs `work(&report)`, writes `report` to the parent and
// exits with the code `work` returns. Nothing of the child outlives it.
template <class Report, class Work>
Reporter fork_reporter(Work work) {
  int p[2];
  if (::pipe(p) != 0) return {};
  const pid_t pid = ::fork();
  if (pid != 0) {
    ::close(p[1]);
    return {pid, p[0]};
  }
  ::close(p[0]);
  Report report{};
  const int code = work(&report);
  (void)!::write(p[1], &report, sizeof report);
  ::_exit(code);
}

// The child's report (zeros if it sent none) once it exited; `exit_status`
// gets waitpid's status.
template <class Report>
Report collect_report(const Reporter& r, int* exit_status) {
  Report report{};
  if (::read(r.fd, &report, sizeof report) != static_cast<ssize_t>(sizeof report)) report = {};
  ::close(r.fd);
  *exit_status = 0;
  ::waitpid(r.pid, exit_status, 0);
  return report;
}

}  // namespace sluice::testing
