// sluiced: the Sluice sidecar. See sidecar.h for what it does.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>

#include "sidecar.h"

namespace {

void log_line(const std::string& msg) {
  char when[32];
  const std::time_t t = std::time(nullptr);
  std::tm tm;
  ::gmtime_r(&t, &tm);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
  std::fprintf(stderr, "%s sluiced[%d]: %s\n", when, static_cast<int>(::getpid()), msg.c_str());
  std::fflush(stderr);
}

// Forks; the parent waits for the child to report its start (one line, empty
// on success) and exits with that outcome. Returns the write end in the child.
int daemonize(const std::string& log_path) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::fprintf(stderr, "sluiced: cannot create a pipe: %s\n", std::strerror(errno));
    std::exit(2);
  }
  const pid_t child = ::fork();
  if (child < 0) {
    std::fprintf(stderr, "sluiced: cannot fork: %s\n", std::strerror(errno));
    std::exit(2);
  }
  if (child > 0) {
    ::close(fds[1]);
    std::string report;
    char buf[512];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) {
      report.append(buf, static_cast<std::size_t>(n));
    }
    if (report.rfind("ok ", 0) == 0) {
      std::printf("sluiced: started (pid %s), logging to %s\n", report.substr(3).c_str(),
                  log_path.c_str());
      std::exit(0);
    }
    std::fprintf(stderr, "%s\n", report.empty() ? "sluiced: exited during start" : report.c_str());
    std::exit(2);
  }
  ::close(fds[0]);
  ::setsid();
  std::error_code ec;
  const std::filesystem::path parent = std::filesystem::path(log_path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  const int null = ::open("/dev/null", O_RDWR);
  ::dup2(null, STDIN_FILENO);
  ::dup2(log >= 0 ? log : null, STDOUT_FILENO);
  ::dup2(log >= 0 ? log : null, STDERR_FILENO);
  return fds[1];
}

void report(int fd, const std::string& line) {
  if (fd < 0) return;
  if (::write(fd, line.data(), line.size()) < 0) {
    // The parent is gone; the log has the line.
  }
  ::close(fd);
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{
      "sluiced - the Sluice sidecar: creates the shared-memory segment, publishes the policy,\n"
      "settles the work of dead clients and writes the audit trail (every decision) to the\n"
      "policy's audit.dir. SIGHUP (or `sluice reload`) reloads the policy; SIGTERM drains\n"
      "the audit ring to disk, stops, and leaves the segment and its counters in place."};
  std::string config;
  bool foreground = false;
  std::string log_path = "var/sluiced.log";
  int tick_ms = 100;
  app.add_option("-c,--config", config, "policy file (YAML)")->required();
  app.add_flag("-f,--foreground", foreground, "stay in the foreground, log to stderr");
  app.add_option("--log", log_path, "log file when running in the background")
      ->capture_default_str();
  app.add_option("--tick-ms", tick_ms, "heartbeat and reclaim interval")
      ->check(CLI::Range(10, 10000))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "sluiced: %s; see sluiced --help\n", e.what());
    return 2;
  }

  // A store whose server hung up must see EPIPE, not kill the daemon.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&signals, s);
  ::sigprocmask(SIG_BLOCK, &signals, nullptr);

  const int status_fd = foreground ? -1 : daemonize(log_path);
  sluice::SidecarOptions options;
  options.log = log_line;
  sluice::Result<sluice::Sidecar> started = sluice::Sidecar::start(config, options);
  if (!started.ok()) {
    const std::string line = "sluiced: " + started.status().message();
    if (foreground) {
      std::fprintf(stderr, "%s\n", line.c_str());
    } else {
      log_line(started.status().message());
      report(status_fd, line);
    }
    return 2;
  }
  sluice::Sidecar& sidecar = started.value();
  const sluice::SegmentMap& seg = sidecar.segment();
  log_line(std::string(sidecar.reopened() ? "reopened" : "created") + " segment '" + seg.name() +
           "' (" + std::to_string(seg.size() >> 20) + " MiB, " +
           std::to_string(sidecar.policy().limits.size()) + " limits), policy " + config +
           ", audit to " + sidecar.audit()->dir() + ", metrics " +
           (sidecar.metrics() != nullptr ? "on " + sidecar.metrics()->url() : "off"));
  report(status_fd, "ok " + std::to_string(::getpid()));

  const timespec tick{tick_ms / 1000, (tick_ms % 1000) * 1'000'000L};
  for (;;) {
    const int sig = ::sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGTERM || sig == SIGINT) {
      sidecar.stop();
      log_line(std::string("stopping on ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") +
               "; segment left in place");
      return 0;
    }
    if (sig == SIGHUP) {
      const sluice::Status s = sidecar.reload();
      log_line(s.ok() ? "policy reloaded from " + config
                      : "reload refused, running policy kept: " + s.message());
    }
    const sluice::ReclaimStats before = sidecar.reclaimed();
    sidecar.tick();
    const sluice::ReclaimStats& after = sidecar.reclaimed();
    if (after.abandoned != before.abandoned || after.refunded_partial != before.refunded_partial ||
        after.finished != before.finished || after.extends_undone != before.extends_undone) {
      log_line(
          "settled work of gone clients: " + std::to_string(after.abandoned - before.abandoned) +
          " abandoned, " + std::to_string(after.refunded_partial - before.refunded_partial) +
          " half-reserved refunded, " + std::to_string(after.finished - before.finished) +
          " commits finished, " + std::to_string(after.extends_undone - before.extends_undone) +
          " extends undone");
    }
  }
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // a bug, never expected: still one line
    std::fprintf(stderr, "sluiced: internal error: %s; please report it with the log\n", e.what());
    return 2;
  }
}
