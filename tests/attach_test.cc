// Every way attaching can fail names the cause and the fix in one line.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "segment.h"
#include "sluice/inspect.h"
#include "sluice_fixture.h"

namespace sluice {
namespace {

using testing::SidecarHarness;

const char* const kPolicy = "limits:\n  - name: r\n    requests_per_second: 10\n";

void expect_one_line(const Status& s) { EXPECT_EQ(s.message().find('\n'), std::string::npos); }

// Writes `bytes` as /dev/shm/<name>.
void write_shm_file(const std::string& name, const std::string& bytes) {
  const int fd = ::open(("/dev/shm/" + name).c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0660);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

TEST(Attach, MissingSegmentAsksWhetherSluicedIsRunning) {
  Result<Client> c = Client::attach("sluice-test-no-such-segment");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(c.status().message().find("is sluiced running?"), std::string::npos);
  expect_one_line(c.status());
}

TEST(Attach, FileThatIsNotASegmentIsRefusedForItsMagic) {
  const std::string name = testing::unique_segment("magic");
  write_shm_file(name, std::string(8192, 'x'));
  Result<Client> c = Client::attach(name);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kIncompatible);
  EXPECT_NE(c.status().message().find("not a Sluice segment"), std::string::npos);
  expect_one_line(c.status());
  (void)SegmentMap::remove(name);
}

TEST(Attach, ShortFileIsRefused) {
  const std::string name = testing::unique_segment("short");
  write_shm_file(name, std::string(100, '\0'));
  Result<Client> c = Client::attach(name);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kIncompatible);
  EXPECT_NE(c.status().message().find("too short"), std::string::npos);
  (void)SegmentMap::remove(name);
}

TEST(Attach, OtherLayoutVersionIsRefusedNamingBothVersions) {
  SidecarHarness h("version", kPolicy);
  shm::store_relaxed(h.seg().header().layout_major, 7);
  Result<Client> c = Client::attach(h.segment());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kIncompatible);
  EXPECT_NE(c.status().message().find("layout version 7"), std::string::npos);
  EXPECT_NE(c.status().message().find("speaks " + std::to_string(shm::kLayoutMajor)),
            std::string::npos);
  expect_one_line(c.status());
  shm::store_relaxed(h.seg().header().layout_major, shm::kLayoutMajor);
}

TEST(Attach, SegmentNotYetReadyIsRefused) {
  SidecarHarness h("ready", kPolicy);
  shm::store_relaxed(h.seg().header().ready, 0);
  Result<Client> c = Client::attach(h.segment());
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), ErrorCode::kNotReady);
  EXPECT_NE(c.status().message().find("not ready"), std::string::npos);
  shm::store_relaxed(h.seg().header().ready, shm::kReadyValue);
}

TEST(Attach, RegionOutsideTheSegmentIsRefused) {
  SidecarHarness h("bounds", kPolicy);
  const shm::Word old = shm::load_relaxed(h.seg().header().keys.count);
  shm::store_relaxed(h.seg().header().keys.count, old * 1000);
  Result<Client> c = Client::attach(h.segment());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("outside its bounds"), std::string::npos);
  shm::store_relaxed(h.seg().header().keys.count, old);
}

TEST(Attach, UserOutsideTheSegmentGroupGetsPermissionDenied) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged user";
  SidecarHarness h("perm", kPolicy);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);  // nobody
    Result<Client> c = Client::attach(h.segment());
    const std::string msg = c.ok() ? "attached" : c.status().message();
    if (::write(fds[1], msg.data(), msg.size()) < 0) ::_exit(4);
    ::_exit(c.ok() ? 1 : 0);
  }
  ::close(fds[1]);
  char buf[512] = {};
  const ssize_t n = ::read(fds[0], buf, sizeof buf - 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(WEXITSTATUS(status), 0) << buf;
  EXPECT_NE(std::string(buf).find("permission denied"), std::string::npos) << buf;
  EXPECT_NE(std::string(buf).find("group"), std::string::npos) << buf;
}

TEST(Attach, ReadOnlyUserCanInspectButNotSpend) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to an unprivileged user";
  SidecarHarness h("readonly", kPolicy);
  ASSERT_EQ(::chmod(("/dev/shm/" + h.segment()).c_str(), 0644), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(3);  // nobody: read only
    const bool inspect = read_status(h.segment()).ok() && list_keys(h.segment()).ok();
    const Result<Client> c = Client::attach(h.segment());
    const bool refused = !c.ok() && c.status().code() == ErrorCode::kPermissionDenied;
    ::_exit(inspect && refused ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(Attach, SegmentIsCreatedReadableOnlyByOwnerAndGroup) {
  SidecarHarness h("mode", kPolicy);
  struct stat st;
  ASSERT_EQ(::stat(("/dev/shm/" + h.segment()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

// Found by tests/fuzz/fuzz_segment_scan: the sidecar read a policy slot
// wherever the header's region table said at the time, so a client that
// rewrote the table sent its reads and writes outside the mapping.
TEST(Attach, PolicySlotsStayWhereAttachFoundThemWhenAClientRewritesTheHeader) {
  SidecarHarness h("slot-moved", kPolicy);
  const SegmentMap& seg = h.seg();
  shm::CompiledPolicy* const slots[] = {&seg.policy_slot(0), &seg.policy_slot(1)};
  shm::store_relaxed(seg.header().policy[0].offset, 0x80028c8ull << 8);
  shm::store_relaxed(seg.header().policy[1].offset, 1);
  EXPECT_EQ(&seg.policy_slot(0), slots[0]);
  EXPECT_EQ(&seg.policy_slot(1), slots[1]);
  EXPECT_EQ(&seg.policy_slot(2), slots[0]);
  const auto* base = reinterpret_cast<const std::uint8_t*>(&seg.header());
  for (const shm::CompiledPolicy* slot : slots) {
    EXPECT_GE(reinterpret_cast<const std::uint8_t*>(slot), base + shm::kHeaderBytes);
    EXPECT_LE(reinterpret_cast<const std::uint8_t*>(slot + 1), base + seg.size());
  }
}

}  // namespace
}  // namespace sluice
