// The C ABI end to end: c_abi_test.c (built as tests/c_abi_client, a C99
// program) against a real sluiced started here; libsluice.so's hot path
// allocates nothing; what it exports; and the pkg-config file that makes it
// usable after `meson install`.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "../clients/c/sluice.h"
#include "child_process.h"
#include "segment.h"
#include "sidecar.h"
#include "sluice/inspect.h"
#include "sluice_fixture.h"
#include "test_support.h"

#include "counting_new.h"

namespace sluice {
namespace {

const std::string kBuild = testing::build_root();

// c_abi_test.c's checks depend on these numbers.
const char* const kPolicy = R"(
models:
  gpt-4o: { input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00 }
limits:
  - name: pricing-usd
    match: { team: pricing }
    usd_per_day: 0.05
  - name: search-requests
    match: { team: search }
    requests_per_second: 1
    burst_requests: 2
  - name: bulk-tokens
    match: { team: bulk }
    tokens_per_second: 1000000000
    burst_tokens: 1000000000
  - name: bulk-usd
    match: { team: bulk }
    usd_per_day: 1000000
)";

int wait_exit(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Runs `args` to completion; returns its exit status, its stdout + stderr in *output.
int run(const std::vector<std::string>& args, std::string* output) {
  static int n = 0;
  const std::string path =
      "/tmp/c-abi-test-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
  const pid_t pid = testing::spawn_child(args, path, path);
  if (pid < 0) return -1;
  const int rc = wait_exit(pid);
  *output = testing::read_text(path);
  std::remove(path.c_str());
  return rc;
}

// What a shell command prints on stdout.
std::string shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

class CAbi : public ::testing::Test {
 protected:
  void SetUp() override {
    segment_ = testing::unique_segment("c-abi");
    policy_ = testing::write_policy(segment_, kPolicy);
    log_ = "/tmp/" + segment_ + ".log";
    sluiced_ = testing::spawn_child(
        {kBuild + "/sidecar/sluiced", "--foreground", "--config", policy_, "--tick-ms", "20"}, log_,
        log_);
    ASSERT_GT(sluiced_, 0);
    ASSERT_TRUE(testing::eventually([&] {
      Result<SegmentStatus> s = read_status(segment_);
      return s.ok() && s->sidecar_alive;
    })) << testing::read_text(log_);
  }
  void TearDown() override {
    if (sluiced_ > 0) {
      ::kill(sluiced_, SIGTERM);
      EXPECT_EQ(wait_exit(sluiced_), 0) << testing::read_text(log_);
    }
    (void)SegmentMap::remove(segment_);
    std::remove(sidecar_lock_path(segment_).c_str());
    std::remove(policy_.c_str());
    std::remove(log_.c_str());
    std::filesystem::remove_all(testing::test_audit_dir(segment_));
    testing::remove_test_store(testing::test_store_path(segment_));
  }

  std::string segment_, policy_, log_;
  pid_t sluiced_ = -1;
};

// The call stats row of `model`, or nullptr.
const ModelCallRow* row_of(const std::vector<ModelCallRow>& rows, const std::string& model) {
  for (const ModelCallRow& r : rows) {
    if (r.model == model) return &r;
  }
  return nullptr;
}

TEST_F(CAbi, CProgramPassesEveryCheckAgainstARealSluiced) {
  std::string out;
  EXPECT_EQ(run({kBuild + "/tests/c_abi_client", segment_}, &out), 0) << out;
  EXPECT_NE(out.find("c_abi_test: all "), std::string::npos) << out;
  EXPECT_EQ(out.find("failed"), std::string::npos) << out;

  // What commit_report_says_how_the_call_went reported, and nothing it refused.
  Result<std::vector<ModelCallRow>> rows = list_model_calls(segment_);
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  const ModelCallRow* gpt = row_of(rows.value(), "gpt-4o");
  ASSERT_NE(gpt, nullptr);
  ASSERT_EQ(gpt->calls.size(), 6u);
  EXPECT_EQ(gpt->calls[SLUICE_OUTCOME_OK], 1u);
  EXPECT_EQ(gpt->calls[SLUICE_OUTCOME_PROVIDER_ERROR], 0u);
  EXPECT_EQ(gpt->calls[SLUICE_OUTCOME_TIMEOUT], 1u);
  EXPECT_EQ(gpt->calls[SLUICE_OUTCOME_CANCELLED_BY_CLIENT], 0u);
  EXPECT_EQ(gpt->calls[SLUICE_OUTCOME_CUT_OFF], 0u);
  std::vector<std::uint64_t> latency(20, 0), ttft(20, 0);
  latency[7] = 1;   // 812.5 ms: (500, 1000]
  latency[16] = 1;  // 30 s: (20, 30] s
  ttft[4] = 1;      // 95 ms: (50, 100]
  EXPECT_EQ(gpt->latency_counts, latency);
  EXPECT_EQ(gpt->latency_sum_us, 812'500u + 30'000'000u);
  EXPECT_EQ(gpt->ttft_counts, ttft);
  EXPECT_EQ(gpt->ttft_sum_us, 95'000u);
}

// libsluice.so loaded as an application loads it, its functions by name.
struct LibSluice {
  void* handle = nullptr;
  decltype(&sluice_attach) attach = nullptr;
  decltype(&sluice_detach) detach = nullptr;
  decltype(&sluice_reserve) reserve = nullptr;
  decltype(&sluice_commit) commit = nullptr;
  decltype(&sluice_commit_report) commit_report = nullptr;
  decltype(&sluice_cancel) cancel = nullptr;
  decltype(&sluice_extend) extend = nullptr;

  LibSluice() : handle(::dlopen((kBuild + "/clients/c/libsluice.so").c_str(), RTLD_NOW)) {
    if (handle == nullptr) return;
    attach = reinterpret_cast<decltype(attach)>(::dlsym(handle, "sluice_attach"));
    detach = reinterpret_cast<decltype(detach)>(::dlsym(handle, "sluice_detach"));
    reserve = reinterpret_cast<decltype(reserve)>(::dlsym(handle, "sluice_reserve"));
    commit = reinterpret_cast<decltype(commit)>(::dlsym(handle, "sluice_commit"));
    commit_report =
        reinterpret_cast<decltype(commit_report)>(::dlsym(handle, "sluice_commit_report"));
    cancel = reinterpret_cast<decltype(cancel)>(::dlsym(handle, "sluice_cancel"));
    extend = reinterpret_cast<decltype(extend)>(::dlsym(handle, "sluice_extend"));
  }
  ~LibSluice() {
    if (handle != nullptr) ::dlclose(handle);
  }
  LibSluice(const LibSluice&) = delete;
  LibSluice& operator=(const LibSluice&) = delete;
};

TEST_F(CAbi, ReserveExtendCommitCancelAndRejectAllocateNothing) {
  LibSluice lib;
  ASSERT_NE(lib.handle, nullptr) << ::dlerror();
  ASSERT_TRUE(lib.attach && lib.detach && lib.reserve && lib.commit && lib.commit_report &&
              lib.cancel && lib.extend);
  sluice_client* c = nullptr;
  g_counting = true;
  ASSERT_EQ(lib.attach(segment_.c_str(), &c), SLUICE_OK);
  g_counting = false;
  ASSERT_GT(g_allocations.load(), 0) << "the count must see libsluice's allocations";
  const sluice_attr call[] = {{"team", "bulk"}, {"feature", "f"}, {"model", "gpt-4o"}};
  const sluice_attr unpriced[] = {{"team", "bulk"}, {"model", "mystery"}};
  const sluice_call_report report{812'500'000, 95'000'000, SLUICE_OUTCOME_OK, 200,
                                  "gpt-4o-2024-08-06"};
  const sluice_call_report bad{0, 0, SLUICE_OUTCOME_OK, 1000, nullptr};
  auto round = [&] {
    int failures = 0;
    sluice_decision d{}, e{}, r{}, t{};
    sluice_extension x{};
    std::uint64_t cost = 0;
    failures += lib.reserve(c, call, 3, 100, 100, 0, &d) != SLUICE_OK || !d.admitted;
    failures += lib.extend(c, d.reservation_id, 50, &x) != SLUICE_OK || !x.admitted;
    failures += lib.commit(c, d.reservation_id, 90, 120, &cost) != SLUICE_OK || cost != 1425000;
    failures += lib.reserve(c, call, 3, 10, 10, 0, &e) != SLUICE_OK || !e.admitted;
    failures += lib.cancel(c, e.reservation_id) != SLUICE_OK;
    failures += lib.reserve(c, unpriced, 2, 1, 1, 0, &r) != SLUICE_OK || r.admitted;
    failures += lib.commit(c, d.reservation_id, 1, 1, &cost) != SLUICE_ERR_UNKNOWN_RESERVATION;
    failures += lib.reserve(c, call, 3, 10, 10, 0, &t) != SLUICE_OK || !t.admitted;
    failures +=
        lib.commit_report(c, t.reservation_id, 10, 10, &bad, &cost) != SLUICE_ERR_INVALID_ARGUMENT;
    failures += lib.commit_report(c, t.reservation_id, 10, 10, &report, &cost) != SLUICE_OK ||
                cost != 125000;
    return failures;
  };
  EXPECT_EQ(round(), 0);  // warm: this thread's error buffer exists from here on
  g_allocations = 0;
  g_counting = true;
  int failures = 0;
  for (int i = 0; i < 1000; ++i) failures += round();
  g_counting = false;
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(g_allocations.load(), 0);
  lib.detach(c);
}

TEST_F(CAbi, ReportedCommitsCountByOutcomeAndPlainOnesAsUnreported) {
  LibSluice lib;
  ASSERT_NE(lib.handle, nullptr) << ::dlerror();
  ASSERT_TRUE(lib.attach && lib.reserve && lib.commit && lib.commit_report && lib.cancel &&
              lib.detach);
  sluice_client* c = nullptr;
  ASSERT_EQ(lib.attach(segment_.c_str(), &c), SLUICE_OK);
  const sluice_attr call[] = {{"team", "pricing"}, {"model", "gpt-4o"}};
  const std::string longest(SLUICE_MAX_MODEL_VERSION_BYTES, 'v');
  const sluice_call_report error{9'000'000'000, 0, SLUICE_OUTCOME_PROVIDER_ERROR, 529, nullptr};
  const sluice_call_report cut{40'000'000, 8'000'000, SLUICE_OUTCOME_CUT_OFF, 200, ""};
  const sluice_call_report versioned{0, 0, SLUICE_OUTCOME_OK, 0, longest.c_str()};
  const sluice_call_report* const reports[] = {&error, &cut, &versioned, nullptr};
  std::uint64_t cost = 0;
  for (const sluice_call_report* report : reports) {
    sluice_decision d{};
    ASSERT_EQ(lib.reserve(c, call, 2, 100, 100, 0, &d), SLUICE_OK);
    ASSERT_EQ(d.admitted, 1);
    EXPECT_EQ(lib.commit_report(c, d.reservation_id, 100, 100, report, &cost), SLUICE_OK);
    EXPECT_EQ(cost, 1'250'000u);
  }
  sluice_decision d{};
  ASSERT_EQ(lib.reserve(c, call, 2, 100, 100, 0, &d), SLUICE_OK);
  EXPECT_EQ(lib.commit(c, d.reservation_id, 100, 100, &cost), SLUICE_OK);  // the old call
  // Refused: counts nothing, charges nothing. $0.05 - 5 x $0.00125 leaves
  // exactly 4375 output tokens, which the refused one still holds 200 of.
  const std::string too_long(SLUICE_MAX_MODEL_VERSION_BYTES + 1, 'v');
  const sluice_call_report refused{1, 1, SLUICE_OUTCOME_OK, 200, too_long.c_str()};
  ASSERT_EQ(lib.reserve(c, call, 2, 0, 200, 0, &d), SLUICE_OK);
  EXPECT_EQ(lib.commit_report(c, d.reservation_id, 0, 100, &refused, &cost),
            SLUICE_ERR_INVALID_ARGUMENT);
  sluice_decision rest{};
  ASSERT_EQ(lib.reserve(c, call, 2, 0, 4375 - 200 + 1, 0, &rest), SLUICE_OK);
  EXPECT_EQ(rest.admitted, 0);
  EXPECT_EQ(lib.cancel(c, d.reservation_id), SLUICE_OK);
  ASSERT_EQ(lib.reserve(c, call, 2, 0, 4375, 0, &rest), SLUICE_OK);
  EXPECT_EQ(rest.admitted, 1);
  EXPECT_EQ(lib.cancel(c, rest.reservation_id), SLUICE_OK);
  lib.detach(c);

  Result<std::vector<ModelCallRow>> rows = list_model_calls(segment_);
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  const ModelCallRow* gpt = row_of(rows.value(), "gpt-4o");
  ASSERT_NE(gpt, nullptr);
  // unreported (NULL report, plain commit), ok, provider_error, timeout, cancelled, cut_off
  EXPECT_EQ(gpt->calls, (std::vector<std::uint64_t>{2, 1, 1, 0, 0, 1}));
  EXPECT_EQ(gpt->latency_sum_us, 9'000'000u + 40'000u);
  EXPECT_EQ(gpt->latency_counts[13], 1u);  // 9 s: (8, 10] s
  EXPECT_EQ(gpt->latency_counts[3], 1u);   // 40 ms: (25, 50]
  EXPECT_EQ(gpt->ttft_sum_us, 8'000u);
}

TEST(CAbiProgram, WithoutASegmentPrintsOneUsageLineAndExits2) {
  std::string out;
  EXPECT_EQ(run({kBuild + "/tests/c_abi_client"}, &out), 2);
  EXPECT_TRUE(testing::one_line(out)) << out;
  EXPECT_EQ(out.rfind("usage: c_abi_test SEGMENT", 0), 0u) << out;
}

TEST(CAbiLibrary, ExportsOnlyTheSluiceFunctions) {
  const std::string symbols =
      shell("nm -D --defined-only --format=posix '" + kBuild + "/clients/c/libsluice.so'");
  std::istringstream lines(symbols);
  std::string line;
  std::vector<std::string> exported;
  while (std::getline(lines, line)) {
    const std::string name = line.substr(0, line.find(' '));
    if (name.rfind("SLUICE", 0) == 0) continue;  // the version script's node, if any
    exported.push_back(name);
    EXPECT_EQ(name.rfind("sluice_", 0), 0u) << "libsluice.so exports " << name;
  }
  for (const char* f :
       {"sluice_attach", "sluice_detach", "sluice_reserve", "sluice_commit", "sluice_commit_report",
        "sluice_cancel", "sluice_extend", "sluice_limit_name", "sluice_reason_name",
        "sluice_strerror", "sluice_last_error"}) {
    EXPECT_NE(std::find(exported.begin(), exported.end(), f), exported.end()) << f;
  }
  EXPECT_EQ(exported.size(), 11u) << symbols;
}

TEST(CAbiPackage, PkgConfigFileNamesTheLibraryAndTheHeader) {
  const std::string pc = testing::read_text(kBuild + "/meson-private/sluice.pc");
  for (const char* line : {"\nName: sluice\n", "\nVersion: 0.1.0\n",
                           "\nLibs: -L${libdir} -lsluice\n", "\nCflags: -I${includedir}\n"}) {
    EXPECT_NE(pc.find(line), std::string::npos) << "no line " << line << " in:\n" << pc;
  }
  // The uninstalled twin points into this build, as the installed one will
  // point into the prefix.
  const std::string flags = shell("PKG_CONFIG_PATH='" + kBuild +
                                  "/meson-uninstalled' pkg-config --cflags --libs "
                                  "sluice-uninstalled");
  EXPECT_NE(flags.find("-L" + kBuild + "/clients/c"), std::string::npos) << flags;
  EXPECT_NE(flags.find("-lsluice"), std::string::npos) << flags;
  EXPECT_NE(flags.find(std::string("-I") + SLUICE_SOURCE_ROOT + "/clients/c"), std::string::npos)
      << flags;
}

}  // namespace
}  // namespace sluice
