// sluice top: a live view of the segment (top_snapshot.h says what it
// shows). On a terminal it redraws every interval and reads single keys (q
// or Ctrl-C quits); the terminal is put back as it was on every way out,
// SIGINT, SIGTERM and SIGHUP included. Anywhere else it prints one snapshot
// of two samples an interval apart, as a table or JSON, and exits.
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "commands.h"
#include "output.h"
#include "top_snapshot.h"

namespace sluice::cli {
namespace {

constexpr double kMinIntervalSeconds = 0.1;
constexpr double kMaxIntervalSeconds = 3600;

struct TopOptions {
  std::string interval = "1";
  bool json = false;
};

// --interval: seconds, a decimal between kMinIntervalSeconds and kMaxIntervalSeconds.
Result<double> parse_interval(const std::string& text) {
  double seconds = 0;
  const char* end = text.data() + text.size();
  const auto [at, ec] = std::from_chars(text.data(), end, seconds);
  if (text.empty() || ec != std::errc() || at != end || !std::isfinite(seconds) ||
      seconds < kMinIntervalSeconds || seconds > kMaxIntervalSeconds) {
    return Status(ErrorCode::kInvalidArgument,
                  "--interval '" + text +
                      "': give seconds from 0.1 to 3600, e.g. --interval 1 or --interval 0.5");
  }
  return seconds;
}

// "1", "0.5", "2.25".
std::string seconds_text(double seconds) {
  char out[32];
  std::snprintf(out, sizeof out, "%g", seconds);
  return out;
}

void sleep_seconds(double seconds) {
  const auto ns = static_cast<long long>(seconds * 1e9);
  timespec left{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  while (::nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}

void write_all(const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(STDOUT_FILENO, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

// ---------------------------------------------------------------------------
// Not a terminal: one snapshot

int print_snapshot(const std::string& segment, double interval, bool as_json) {
  Result<TopSample> before = take_top_sample(segment);
  if (!before.ok()) return fail(kExitUsage, before.status().message());
  sleep_seconds(interval);
  Result<TopSample> after = take_top_sample(segment);
  if (!after.ok()) return fail(kExitUsage, after.status().message());
  const TopSnapshot snapshot = compare_samples(before.value(), after.value());
  if (as_json) {
    print_json(top_json(snapshot));
  } else {
    std::fputs(top_text(snapshot).c_str(), stdout);
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------
// A terminal: redraw until q, Ctrl-C or a signal

volatile std::sig_atomic_t g_stop = 0;

void request_stop(int /*signal*/) { g_stop = 1; }

constexpr const char* kHideCursor = "\x1b[?25l";
constexpr const char* kShowCursor = "\x1b[?25h";
constexpr const char* kClearHome = "\x1b[H\x1b[2J";

// While alive: stdin (when it is a terminal) reads single keys without echo,
// Ctrl-C included as a key; the cursor is hidden; SIGINT, SIGTERM and SIGHUP
// ask the loop to stop instead of killing the process. The destructor puts
// all of it back, so every return and every exception restores the terminal.
class LiveTerminal {
 public:
  LiveTerminal() {
    struct sigaction sa {};
    sa.sa_handler = request_stop;  // no SA_RESTART: a wait ends early
    ::sigemptyset(&sa.sa_mask);
    sigset_t stop_signals;
    ::sigemptyset(&stop_signals);
    for (int i = 0; i < kSignals; ++i) {
      ::sigaction(kStopSignals[i], &sa, &saved_actions_[i]);
      ::sigaddset(&stop_signals, kStopSignals[i]);
    }
    // Delivered only inside ppoll() below, so none slips in between the
    // check of g_stop and the wait.
    ::sigprocmask(SIG_BLOCK, &stop_signals, &saved_mask_);
    if (::isatty(STDIN_FILENO) == 1 && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ISIG);
      raw.c_cc[VMIN] = 1;
      raw.c_cc[VTIME] = 0;
      raw_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    keys_ = raw_;
    write_all(kHideCursor);
  }
  ~LiveTerminal() {
    write_all(kShowCursor);
    if (raw_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    ::sigprocmask(SIG_SETMASK, &saved_mask_, nullptr);  // a pending one reaches request_stop
    for (int i = 0; i < kSignals; ++i) ::sigaction(kStopSignals[i], &saved_actions_[i], nullptr);
  }
  LiveTerminal(const LiveTerminal&) = delete;
  LiveTerminal& operator=(const LiveTerminal&) = delete;

  // Waits `seconds` for a key; false when the user or a signal asks to quit.
  bool wait(double seconds) {
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::nanoseconds(static_cast<long long>(seconds * 1e9));
    while (g_stop == 0) {
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            deadline - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) return true;
      const timespec timeout{static_cast<time_t>(left / 1'000'000'000),
                             static_cast<long>(left % 1'000'000'000)};
      pollfd in{STDIN_FILENO, POLLIN, 0};
      const int ready = ::ppoll(&in, keys_ ? 1 : 0, &timeout, &saved_mask_);
      if (ready <= 0) continue;  // timeout, or a signal (checked above)
      char key = 0;
      const ssize_t n = ::read(STDIN_FILENO, &key, 1);
      if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
        keys_ = false;  // end of input (or the terminal is gone): only signals stop us now
      }
      if (n == 1 && (key == 'q' || key == 'Q' || key == kCtrlC)) return false;
    }
    return false;
  }

  // Clears the screen and draws `frame`, cut to the window so it never scrolls.
  static void draw(const std::string& frame) {
    winsize ws{};
    const bool sized = ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0;
    const std::size_t width = sized ? ws.ws_col : 0;
    const std::size_t height = sized && ws.ws_row > 1 ? ws.ws_row - 1 : 0;
    std::string out = kClearHome;
    std::size_t lines = 0;
    std::size_t start = 0;
    while (start < frame.size()) {
      std::size_t end = frame.find('\n', start);
      if (end == std::string::npos) end = frame.size();
      if (height != 0 && lines + 1 == height && end + 1 < frame.size()) {
        out += "... (window too small for the rest)\r\n";
        break;
      }
      out += clip(frame.substr(start, end - start), width) + "\r\n";
      ++lines;
      start = end + 1;
    }
    write_all(out);
  }

 private:
  static constexpr int kSignals = 3;
  static constexpr int kStopSignals[kSignals] = {SIGINT, SIGTERM, SIGHUP};
  static constexpr char kCtrlC = 0x03;

  // The first `width` columns of `line` (UTF-8 code points); all of it when width is 0.
  static std::string clip(const std::string& line, std::size_t width) {
    if (width == 0) return line;
    std::size_t columns = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
      if ((static_cast<unsigned char>(line[i]) & 0xC0) == 0x80) continue;
      if (++columns > width) return line.substr(0, i);
    }
    return line;
  }

  termios saved_{};
  bool raw_ = false;   // stdin is in single-key mode: saved_ is put back at the end
  bool keys_ = false;  // keys are read from stdin
  struct sigaction saved_actions_[kSignals] {};
  sigset_t saved_mask_{};
};

int run_live(const std::string& segment, double interval) {
  Result<TopSample> before = take_top_sample(segment);
  if (!before.ok()) return fail(kExitUsage, before.status().message());
  LiveTerminal terminal;
  LiveTerminal::draw("segment " + segment + ": sampling for " + seconds_text(interval) +
                     " s ... (q quits)\n");
  while (terminal.wait(interval)) {
    Result<TopSample> after = take_top_sample(segment);
    if (!after.ok()) {
      LiveTerminal::draw("sluice top: " + after.status().message() + "\n(q quits)\n");
      continue;
    }
    LiveTerminal::draw(top_text(compare_samples(before.value(), after.value())) +
                       "\nq quits; every " + seconds_text(interval) + " s\n");
    before = std::move(after);
  }
  return kExitOk;
}

int run_top(const Globals& g, const TopOptions& o) {
  Result<double> interval = parse_interval(o.interval);
  if (!interval.ok()) return fail(kExitUsage, interval.status().message());
  if (o.json || ::isatty(STDOUT_FILENO) != 1) return print_snapshot(g.segment, *interval, o.json);
  return run_live(g.segment, *interval);
}

}  // namespace

void add_top_command(CLI::App& app, const Globals& g, std::vector<Command>& out) {
  auto o = std::make_shared<TopOptions>();
  CLI::App* top =
      app.add_subcommand("top", "live view: requests/s, rejections, burn rate, time to exhaustion");
  top->add_option("--interval", o->interval, "seconds between samples (0.1 to 3600); default 1")
      ->type_name("SECONDS");
  top->add_flag("--json", o->json, "one snapshot as one JSON object (never live)");
  top->footer(
      "On a terminal the view redraws every interval; q or Ctrl-C quits. Otherwise (a pipe, a\n"
      "file) it takes two samples one interval apart, prints one snapshot and exits.\n"
      "Per limit: REQ/S admitted, REJECTED/S with the reason its kind gives (rate_limited,\n"
      "budget_exhausted, model_not_allowed; `sluice audit --decision rejected` has every\n"
      "exact reason), WOULD-REJECT/S of shadow limits, and BURN summed over its budget keys.\n"
      "Per key: USED, LIMIT and REMAINING as in `sluice keys`; BURN of a budget key is what its\n"
      "window's usage grew by per second ($/h for USD, tok/s for tokens); EXHAUSTED IN is\n"
      "REMAINING at that burn (— when not burning). A rate key's bucket drains with time at a\n"
      "pace this view does not read, so its BURN is left blank.\n"
      "From the live sluiced, which evaluates them about once a second: the firing alerts under\n"
      "the calls line, and per budget key BURN 5M, its burn over the last 5 minutes, and\n"
      "EXHAUSTED IN 5M, when it runs out at that burn (— when not within its window). BURN\n"
      "reacts within one interval; BURN 5M is steadier and is what exhausts_within alerts use.\n"
      "Exit status: 0 done, 2 bad flags or no segment.");
  out.push_back({top, [&g, o] { return run_top(g, *o); }});
}

}  // namespace sluice::cli
