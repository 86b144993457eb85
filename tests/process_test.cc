// Proof of death: what lets the sidecar settle a client's work.
#include "process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace sluice {
namespace {

TEST(Process, ThisProcessIsAliveWithItsOwnStartTime) {
  const std::uint64_t start = process_start_time(::getpid());
  ASSERT_GT(start, 0u);
  EXPECT_TRUE(process_alive(::getpid(), start));
}

TEST(Process, SamePidWithAnotherStartTimeIsAReusedPidSoDead) {
  const std::uint64_t start = process_start_time(::getpid());
  EXPECT_FALSE(process_alive(::getpid(), start + 1));
}

TEST(Process, UnknownStartTimeIsAliveWhileThePidExists) {
  EXPECT_TRUE(process_alive(::getpid(), 0));
}

TEST(Process, ZombieIsDeadAndAReapedPidIsDead) {
  const pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  const std::uint64_t start = process_start_time(child);
  ASSERT_GT(start, 0u);
  EXPECT_TRUE(process_alive(child, start));
  ::kill(child, SIGKILL);
  siginfo_t info;
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT),
            0);  // a zombie now
  EXPECT_FALSE(process_alive(child, start));
  ::waitpid(child, nullptr, 0);
  EXPECT_FALSE(process_alive(child, start));
  EXPECT_EQ(process_start_time(child), 0u);
}

TEST(Process, NonPositivePidsAreNeverAlive) {
  EXPECT_FALSE(process_alive(0, 0));
  EXPECT_FALSE(process_alive(-1, 0));
}

}  // namespace
}  // namespace sluice
