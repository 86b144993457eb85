// The hot path's promises, checked rather than claimed: reserve, commit,
// cancel, extend and rejections allocate nothing (operator new is counted),
// and make no system call (run under seccomp strict mode, where any system
// call but read, write, exit and sigreturn kills the process).
#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <new>

#include "sluice_fixture.h"

#include "counting_new.h"

namespace sluice {
namespace {

using testing::SidecarHarness;

const char* const kPolicy = R"(
models:
  gpt-4o: { input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00 }
limits:
  - name: team-requests
    match: { team: "*" }
    requests_per_second: 1000000
    burst_requests: 1000000
  - name: team-tokens
    match: { team: "*" }
    tokens_per_second: 1000000000
    burst_tokens: 1000000000
  - name: daily-usd
    match: { team: "*" }
    usd_per_day: 1000000
  - name: guests
    match: { team: guest }
    models: [gpt-4o-mini]
)";

// Every operation of the protocol, `rounds` times; returns how many failed.
int exercise(Client& c, int rounds) {
  const Attribute call[] = {{"team", "alpha"}, {"feature", "f"}, {"model", "gpt-4o"}};
  const Attribute denied[] = {{"team", "guest"}, {"model", "gpt-4o"}};
  int failures = 0;
  for (int i = 0; i < rounds; ++i) {
    Decision d = c.reserve_raw({call, 100, 100});
    failures += !d.admitted;
    failures += !c.extend(d.reservation_id, 50).admitted;
    failures += !c.commit(d.reservation_id, 90, 120).ok();
    Decision e = c.reserve_raw({call, 10, 10});
    failures += !c.cancel(e.reservation_id).ok();
    failures += c.reserve_raw({denied, 1, 1}).admitted;  // rejected: model not allowed
    failures += c.commit(d.reservation_id, 1, 1).ok();   // settled already: refused
  }
  return failures;
}

TEST(HotPath, AllocatesNothingIncludingWhenAdoptingANewPolicy) {
  SidecarHarness h("alloc", kPolicy);
  Client c = h.attach();
  ASSERT_EQ(exercise(c, 10), 0);  // warm: keys exist, policy adopted
  g_allocations = 0;
  g_counting = true;
  int failures = exercise(c, 1000);
  g_counting = false;
  ASSERT_TRUE(h.rewrite(kPolicy).ok());  // a new generation: the next call adopts it
  g_counting = true;
  failures += exercise(c, 10);
  g_counting = false;
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(g_allocations.load(), 0);
  EXPECT_GT(c.policy_generation(), 1u);
}

bool clock_is_served_by_the_vdso() {
  std::ifstream f("/sys/devices/system/clocksource/clocksource0/current_clocksource");
  std::string source;
  f >> source;
  return source == "tsc" || source == "kvm-clock" || source == "arch_sys_counter";
}

TEST(HotPath, MakesNoSystemCall) {
  if (!clock_is_served_by_the_vdso()) {
    GTEST_SKIP() << "this kernel's clocksource is not read through the vDSO here";
  }
  SidecarHarness h("seccomp", kPolicy);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    Result<Client> c = Client::attach(h.segment());
    if (!c.ok() || exercise(c.value(), 10) != 0) ::_exit(3);
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT) != 0) ::_exit(4);
    // From here any system call but read, write and exit kills this process.
    const int failures = exercise(c.value(), 1000);
    const char report = failures == 0 ? 'y' : 'n';
    if (::write(fds[1], &report, 1) != 1) ::syscall(SYS_exit, 5);
    ::syscall(SYS_exit, 0);  // exit_group is not allowed in strict mode
  }
  ::close(fds[1]);
  char report = 0;
  const ssize_t n = ::read(fds[0], &report, 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_FALSE(WIFSIGNALED(status))
      << "killed by signal " << WTERMSIG(status) << ": the hot path made a system call";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "exit " << WEXITSTATUS(status);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(report, 'y');
}

}  // namespace
}  // namespace sluice
