// Who may attach (README, Security). A real sluiced, started as root under a
// umask of 077 with `segment: {group: users}`, gives the segment (0660) and
// the audit directory (2750) and files (0640) to group `users`. Children
// drop to nobody (uid and gid 65534) with and without `users` among their
// groups: outside it, attach fails with one line naming the group, through
// the C++ API, the CLI and the Python client; inside it, a client spends but
// can neither change nor delete nor add to the audit trail.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "audit_writer.h"
#include "child_process.h"
#include "segment.h"
#include "sidecar.h"
#include "sluice/inspect.h"
#include "sluice/quota.h"
#include "test_support.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using testing::build_root;
using testing::eventually;
using testing::one_line;
using testing::read_text;

constexpr uid_t kNobody = 65534;
constexpr gid_t kNogroup = 65534;
const char* const kGroup = "users";  // in /etc/group on Debian; root is not in it

std::optional<gid_t> gid_of(const char* name) {
  const struct group* g = ::getgrnam(name);
  return g != nullptr ? std::optional<gid_t>(g->gr_gid) : std::nullopt;
}

// Drops this (forked) process to nobody with `groups` as its only
// supplementary groups; exits 120 if the kernel refuses.
void become_nobody(const std::vector<gid_t>& groups) {
  if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(kNogroup) != 0 ||
      ::setuid(kNobody) != 0) {
    ::_exit(120);
  }
}

struct ChildResult {
  int exit_code = -1;
  std::string message;  // what the body wrote
};

int exit_code_of(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs `body` in a child dropped to nobody with `groups`; the body returns
// the child's exit status and may say why in *message.
ChildResult as_nobody(const std::vector<gid_t>& groups,
                      const std::function<int(std::string*)>& body) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    become_nobody(groups);
    std::string message;
    const int rc = body(&message);
    if (::write(fds[1], message.data(), message.size()) < 0) ::_exit(121);
    ::_exit(rc);
  }
  ::close(fds[1]);
  ChildResult r;
  char buf[1024];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) {
    r.message.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  r.exit_code = pid > 0 ? exit_code_of(pid) : -1;
  return r;
}

struct ProgramRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class Permissions : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root: it starts sluiced for group '" << kGroup
                   << "' and switches to the unprivileged user nobody (65534)";
    }
    const std::optional<gid_t> users = gid_of(kGroup);
    if (!users || *users == ::getgid()) {
      GTEST_SKIP() << "needs a group '" << kGroup << "' that is not root's primary group";
    }
    users_ = *users;
    static int counter = 0;
    segment_ = "sluice-permtest-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    char tmpl[] = "/tmp/sluice-permtest-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);  // nobody may look for the audit directory
    audit_dir_ = dir_ / "audit";
    policy_ = write_policy(segment_, kGroup);
    start_sidecar();
  }

  void TearDown() override {
    testing::stop_child(sidecar_);
    if (segment_.empty()) return;  // skipped
    for (const std::string& name : {segment_, segment_ + "-nogroup"}) {
      (void)SegmentMap::remove(name);
      std::remove(sidecar_lock_path(name).c_str());
    }
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  fs::path write_policy(const std::string& segment, const std::string& group) {
    const fs::path path = dir_ / (segment + ".yaml");
    std::ofstream(path) << "segment:\n  name: " << segment << "\n  group: " << group
                        << "\naudit:\n  dir: " << audit_dir_.string()
                        << "\nstore:\n  path: " << (dir_ / "store.db").string() << R"(
models:
  gpt-4o: { input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00 }
limits:
  - name: team-usd
    match: { team: "*" }
    usd_per_day: 100
)";
    return path;
  }

  // sluiced in the foreground under umask 077: the modes it sets must not
  // depend on the umask.
  void start_sidecar() {
    const mode_t old = ::umask(077);
    sidecar_ = testing::spawn_child(
        {build_root() + "/sidecar/sluiced", "--foreground", "--config", policy_.string()},
        (dir_ / "sluiced.log").string(), (dir_ / "sluiced.log").string());
    ::umask(old);
    ASSERT_GT(sidecar_, 0);
    ASSERT_TRUE(eventually([&] {
      Result<SegmentStatus> s = read_status(segment_);
      return s.ok() && s->sidecar_alive && s->policy_generation >= 1;
    })) << read_text(dir_ / "sluiced.log");
  }

  // Runs `args` as nobody with `groups`; stdout and stderr go to files
  // opened before the switch.
  ProgramRun run_as_nobody(const std::vector<gid_t>& groups, const std::vector<std::string>& args,
                           const std::vector<std::string>& env = {}) {
    const fs::path out = dir_ / "run.out", err = dir_ / "run.err";
    std::vector<char*> argv, envp;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (o < 0 || e < 0 || ::dup2(o, STDOUT_FILENO) < 0 || ::dup2(e, STDERR_FILENO) < 0) {
        ::_exit(122);
      }
      if (::chdir("/") != 0) ::_exit(123);
      become_nobody(groups);
      ::execve(argv[0], argv.data(), envp.data());
      ::_exit(127);
    }
    ProgramRun r;
    r.exit_code = pid > 0 ? exit_code_of(pid) : -1;
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
  }

  std::string shm_path() const { return "/dev/shm/" + segment_; }

  // The one line attach gives nobody outside group `users`.
  std::string denied() const {
    return "permission denied on " + shm_path() +
           ": add this user to group 'users' (usermod -aG users nobody, then log in again) or "
           "run as its owner 'root'";
  }

  std::vector<fs::path> audit_files() const {
    std::vector<fs::path> files;
    for (const fs::directory_entry& e : fs::directory_iterator(audit_dir_)) {
      files.push_back(e.path());
    }
    return files;
  }

  gid_t users_ = 0;
  std::string segment_;
  fs::path dir_, audit_dir_, policy_;
  pid_t sidecar_ = -1;
};

TEST_F(Permissions, SegmentIsMode0660InTheConfiguredGroupWhateverTheUmask) {
  struct stat st {};
  ASSERT_EQ(::stat(shm_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_gid, users_);
  EXPECT_EQ(st.st_uid, 0u);
}

TEST_F(Permissions, AuditDirectoryIsSetgidGroupReadableAndItsFilesReadOnlyToTheGroup) {
  struct stat st {};
  ASSERT_EQ(::stat(audit_dir_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 02750u);
  EXPECT_EQ(st.st_gid, users_);
  const std::vector<fs::path> files = audit_files();
  ASSERT_FALSE(files.empty());
  for (const fs::path& f : files) {
    ASSERT_EQ(::stat(f.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0640u) << f;
    EXPECT_EQ(st.st_gid, users_) << f;
    EXPECT_EQ(st.st_uid, 0u) << f;
  }
}

TEST_F(Permissions, OutsideTheGroupAttachIsDeniedInOneLineNamingTheGroup) {
  const ChildResult spend = as_nobody({}, [&](std::string* message) {
    const Result<Client> c = Client::attach(segment_);
    if (c.ok()) return 1;
    *message = c.status().message();
    return c.status().code() == ErrorCode::kPermissionDenied ? 0 : 2;
  });
  EXPECT_EQ(spend.exit_code, 0) << spend.message;
  EXPECT_EQ(spend.message, denied());
  // Looking needs read permission, which the group has and others do not.
  const ChildResult look = as_nobody({}, [&](std::string* message) {
    const Result<SegmentStatus> s = read_status(segment_);
    if (s.ok()) return 1;
    *message = s.status().message();
    return 0;
  });
  EXPECT_EQ(look.exit_code, 0) << look.message;
  EXPECT_EQ(look.message, denied());
  Result<SegmentStatus> s = read_status(segment_);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->admitted_total + s->rejected_total, 0u);
}

TEST_F(Permissions, TheDeniedLineSaysWhatToChangeWhenJoiningTheGroupIsNotIt) {
  auto attach_as = [&](const std::vector<gid_t>& groups) {
    return as_nobody(groups, [&](std::string* message) {
      const Result<Client> c = Client::attach(segment_);
      *message = c.ok() ? "attached" : c.status().message();
      return c.ok() ? 1 : 0;
    });
  };
  ASSERT_EQ(::chmod(shm_path().c_str(), 0600), 0);  // the group shut out by hand
  EXPECT_EQ(attach_as({users_}).message,
            "permission denied on " + shm_path() +
                ": its mode 0600 gives group 'users' no read-write access; run as its owner "
                "'root', or let the group in (chmod g+rw " +
                shm_path() + ")");
  ASSERT_EQ(::chmod(shm_path().c_str(), 0660), 0);
  ASSERT_EQ(::chown(shm_path().c_str(), 0, 0), 0);  // as with no segment.group, sluiced as root
  EXPECT_EQ(attach_as({}).message,
            "permission denied on " + shm_path() +
                ": it belongs to group 'root'; give it a group of its own (segment.group in "
                "sluiced's policy, then restart sluiced) and add this user to that group, or run "
                "as its owner 'root'");
}

TEST_F(Permissions, AGroupMemberReservesAndCommits) {
  const ChildResult spend = as_nobody({users_}, [&](std::string* message) {
    Result<Client> c = Client::attach(segment_);
    if (!c.ok()) {
      *message = c.status().message();
      return 1;
    }
    const Attribute attrs[] = {{"team", "perm"}, {"model", "gpt-4o"}};
    const Decision d = c->reserve_raw({attrs, 1000, 100});
    if (!d.admitted) {
      *message = to_string(d.reason);
      return 2;
    }
    const Settlement s = c->commit(d.reservation_id, 1000, 50);
    *message = std::to_string(s.cost_nusd);
    return s.ok() ? 0 : 3;
  });
  ASSERT_EQ(spend.exit_code, 0) << spend.message;
  EXPECT_EQ(spend.message, "3000000");  // 1000 * 2500 + 50 * 10000 nUSD
  Result<std::vector<KeyRow>> keys = list_keys(segment_);
  ASSERT_TRUE(keys.ok()) << keys.status().message();
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].attributes, "team=perm");
  EXPECT_EQ((*keys)[0].used, 3'000'000u);
  Result<SegmentStatus> s = read_status(segment_);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->admitted_total, 1u);

  // The member reads the trail of what it did with `sluice audit`.
  ProgramRun audit;
  ASSERT_TRUE(eventually([&] {
    audit = run_as_nobody({users_}, {build_root() + "/clients/cli/sluice", "audit", "--json",
                                     "--segment", segment_, "--attr", "team=perm"});
    return audit.exit_code == 0 && std::count(audit.out.begin(), audit.out.end(), '\n') == 2;
  })) << audit.exit_code
      << " " << audit.out << audit.err;
  EXPECT_NE(audit.out.find("\"event\":\"commit\""), std::string::npos) << audit.out;
  EXPECT_NE(audit.out.find("\"cost_nusd\":3000000"), std::string::npos) << audit.out;
}

TEST_F(Permissions, AGroupMemberCanReadButNeitherChangeNorDeleteNorAddToTheAuditTrail) {
  const std::vector<fs::path> files = audit_files();
  ASSERT_FALSE(files.empty());
  const std::string dir = audit_dir_.string();
  const ChildResult tamper = as_nobody({users_}, [&](std::string* message) {
    // Each step must meet exactly the errno it names.
    auto expect = [&](const std::string& what, bool failed, int want) {
      if (failed && errno == want) return true;
      *message = what + (failed ? std::string(": ") + std::strerror(errno) : ": succeeded");
      return false;
    };
    for (const fs::path& f : files) {
      const int r = ::open(f.c_str(), O_RDONLY);
      if (r < 0) {
        *message = "cannot read " + f.string() + ": " + std::strerror(errno);
        return 1;
      }
      ::close(r);
      if (!expect("open for writing " + f.string(), ::open(f.c_str(), O_WRONLY) < 0, EACCES) ||
          !expect("truncate " + f.string(), ::truncate(f.c_str(), 0) != 0, EACCES) ||
          !expect("unlink " + f.string(), ::unlink(f.c_str()) != 0, EACCES) ||
          !expect("rename " + f.string(), ::rename(f.c_str(), (dir + "/moved").c_str()) != 0,
                  EACCES) ||
          !expect("chmod " + f.string(), ::chmod(f.c_str(), 0666) != 0, EPERM)) {
        return 2;
      }
    }
    const std::string forged = dir + "/audit-20990101T000000-000000.sal";
    if (!expect("create " + forged, ::open(forged.c_str(), O_WRONLY | O_CREAT, 0640) < 0, EACCES) ||
        !expect("chmod " + dir, ::chmod(dir.c_str(), 0777) != 0, EPERM)) {
      return 3;
    }
    return 0;
  });
  EXPECT_EQ(tamper.exit_code, 0) << tamper.message;
  EXPECT_EQ(audit_files(), files);
}

TEST_F(Permissions, TheCliOutsideTheGroupExitsTwoWithOneLineNamingTheGroup) {
  const std::string cli = build_root() + "/clients/cli/sluice";
  const std::vector<std::vector<std::string>> commands = {
      {cli, "status", "--segment", segment_},
      {cli, "keys", "--segment", segment_},
      {cli, "charge", "--segment", segment_, "--attr", "team=perm", "--input-tokens", "1",
       "--output-tokens", "1"},
  };
  for (const auto& args : commands) {
    const ProgramRun r = run_as_nobody({}, args);
    EXPECT_EQ(r.exit_code, 2) << args[1] << ": " << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(one_line(r.err)) << r.err;
    EXPECT_EQ(r.err, "sluice: " + denied() + "\n");
  }
  const ProgramRun member = run_as_nobody({users_}, {cli, "status", "--segment", segment_});
  EXPECT_EQ(member.exit_code, 0) << member.err;
}

TEST_F(Permissions, ThePythonClientOutsideTheGroupRaisesOneLineNamingTheGroup) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitized libsluice.so cannot be loaded into an uninstrumented python3";
#endif
  const std::string python = "/usr/bin/python3";  // not a per-user install nobody cannot reach
  if (::access(python.c_str(), X_OK) != 0) GTEST_SKIP() << "no " << python;
  const std::string script =
      "import sluice\n"
      "try:\n"
      "    sluice.Client(" +
      std::string("'") + segment_ +
      "')\n"
      "except sluice.SluiceError as e:\n"
      "    print(e.code + ': ' + str(e))\n";
  const ProgramRun r =
      run_as_nobody({}, {python, "-c", script},
                    {"SLUICE_LIB=" + build_root() + "/clients/c/libsluice.so",
                     "PYTHONPATH=" + std::string(SLUICE_SOURCE_ROOT) + "/clients/python",
                     "PYTHONDONTWRITEBYTECODE=1"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "permission_denied: " + denied() + "\n") << r.err;
}

TEST_F(Permissions, ARestartGivesTheSegmentBackItsModeAndGroup) {
  testing::stop_child(sidecar_);
  sidecar_ = -1;
  ASSERT_EQ(::chown(shm_path().c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(shm_path().c_str(), 0600), 0);
  start_sidecar();  // reopens the segment, counters kept
  struct stat st {};
  ASSERT_EQ(::stat(shm_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_gid, users_);
}

TEST_F(Permissions, AGroupThatDoesNotExistFailsSluicedInOneLine) {
  const std::string segment = segment_ + "-nogroup";
  const fs::path policy = write_policy(segment, "sluice-no-such-group");
  const fs::path log = dir_ / "nogroup.log";
  const pid_t pid = testing::spawn_child(
      {build_root() + "/sidecar/sluiced", "--foreground", "--config", policy.string()},
      log.string(), log.string());
  ASSERT_GT(pid, 0);
  EXPECT_EQ(exit_code_of(pid), 2);
  const std::string err = read_text(log);
  EXPECT_TRUE(one_line(err)) << err;
  EXPECT_EQ(err,
            "sluiced: segment.group 'sluice-no-such-group' does not exist on this host; create it "
            "(groupadd sluice-no-such-group) and add sluiced's user and the clients' users to it, "
            "or change segment.group\n");
  EXPECT_FALSE(SegmentMap::exists(segment));  // nothing was created
}

// An audit directory that exists keeps its mode and group; sluiced says what
// is wrong with it (AuditWriter directly, as sluiced opens it).
class ExistingAuditDirectory : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::optional<gid_t> users = gid_of(kGroup);
    if (::geteuid() != 0 || !users) {
      GTEST_SKIP() << "needs root and a group '" << kGroup << "' to give directories to";
    }
    users_ = *users;
    char tmpl[] = "/tmp/sluice-auditdir-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  Result<AuditWriter> open(std::vector<std::string>* log) {
    AuditWriterOptions o;
    o.dir = dir_.string();
    o.group = kGroup;
    o.rotate_bytes = 1 << 16;
    o.use_io_uring = false;
    return AuditWriter::open(o, [log](const std::string& line) { log->push_back(line); });
  }

  mode_t mode() const {
    struct stat st {};
    return ::stat(dir_.c_str(), &st) == 0 ? st.st_mode & 07777 : 0;
  }

  std::vector<std::string> warnings(const std::vector<std::string>& log) const {
    std::vector<std::string> out;
    for (const std::string& line : log) {
      if (line.find("audit: directory") == 0) out.push_back(line);
    }
    return out;
  }

  gid_t users_ = 0;
  fs::path dir_;
};

TEST_F(ExistingAuditDirectory, WritableByEveryUserIsRefusedInOneLine) {
  ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0);
  std::vector<std::string> log;
  Result<AuditWriter> w = open(&log);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(w.status().message(), "audit directory '" + dir_.string() +
                                      "' is writable by every user (mode 0777), so anyone could "
                                      "delete the audit trail; chmod 2750 " +
                                      dir_.string() + ", or remove it so that sluiced creates it");
  EXPECT_EQ(mode(), 0777u);  // not changed
}

TEST_F(ExistingAuditDirectory, GroupWritableOrOfAnotherGroupIsKeptWithAWarning) {
  ASSERT_EQ(::chown(dir_.c_str(), static_cast<uid_t>(-1), 0), 0);  // group root
  ASSERT_EQ(::chmod(dir_.c_str(), 0770), 0);
  std::vector<std::string> log;
  Result<AuditWriter> w = open(&log);
  ASSERT_TRUE(w.ok()) << w.status().message();
  EXPECT_EQ(warnings(log),
            (std::vector<std::string>{
                "audit: directory " + dir_.string() +
                    " is group-writable (mode 0770): members of group 'root' could delete audit "
                    "files; chmod g-w " +
                    dir_.string(),
                "audit: directory " + dir_.string() +
                    " belongs to group 'root', not segment.group 'users', whose members then "
                    "cannot read it; chgrp users " +
                    dir_.string() + " && chmod 2750 " + dir_.string()}));
  EXPECT_EQ(mode(), 0770u);  // not changed
  // The files it makes are still the group's, read-only to it.
  ASSERT_TRUE(w->close().ok());
  for (const fs::directory_entry& e : fs::directory_iterator(dir_)) {
    struct stat st {};
    ASSERT_EQ(::stat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0640u);
    EXPECT_EQ(st.st_gid, users_);
  }
}

TEST_F(ExistingAuditDirectory, MissingDirectoriesAreMadeForTheGroup) {
  const fs::path nested = dir_ / "var" / "audit";
  AuditWriterOptions o;
  o.dir = nested.string();
  o.group = kGroup;
  o.rotate_bytes = 1 << 16;
  o.use_io_uring = false;
  const mode_t old = ::umask(077);
  Result<AuditWriter> w = AuditWriter::open(o, {});
  ::umask(old);
  ASSERT_TRUE(w.ok()) << w.status().message();
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "var").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);  // the group may pass through
  EXPECT_EQ(st.st_gid, users_);
  ASSERT_EQ(::stat(nested.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 02750u);
  EXPECT_EQ(st.st_gid, users_);
}

TEST_F(ExistingAuditDirectory, AGroupThatDoesNotExistIsAOneLineError) {
  AuditWriterOptions o;
  o.dir = (dir_ / "audit").string();
  o.group = "sluice-no-such-group";
  Result<AuditWriter> w = AuditWriter::open(o, {});
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(w.status().message().rfind("segment.group 'sluice-no-such-group' does not exist", 0),
            0u);
  EXPECT_FALSE(fs::exists(dir_ / "audit"));
}

}  // namespace
}  // namespace sluice
