// Deployment files: the Kubernetes manifest shares /dev/shm and the PID
// namespace between sluiced and the application and carries a valid
// policy; the systemd unit that meson generates runs the installed sluiced
// and passes `systemd-analyze verify`.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "sluice/policy.h"
#include "test_support.h"

namespace sluice {
namespace {

const std::string kSource = SLUICE_SOURCE_ROOT;

YAML::Node deployment_pod_spec(const std::vector<YAML::Node>& docs) {
  for (const YAML::Node& d : docs) {
    if (d["kind"].as<std::string>() == "Deployment") return d["spec"]["template"]["spec"];
  }
  return {};
}

TEST(Deploy, KubernetesPodSharesShmAndPidsBetweenSluicedAndTheApp) {
  const std::vector<YAML::Node> docs =
      YAML::LoadAllFromFile(kSource + "/examples/kubernetes/sluice-sidecar.yaml");
  const YAML::Node pod = deployment_pod_spec(docs);
  ASSERT_TRUE(pod) << "no Deployment in the manifest";
  EXPECT_TRUE(pod["shareProcessNamespace"].as<bool>())
      << "sluiced must see the app's pids to tell live clients from dead ones";
  std::string shm_volume;
  for (const YAML::Node& v : pod["volumes"]) {
    if (v["emptyDir"] && v["emptyDir"]["medium"] &&
        v["emptyDir"]["medium"].as<std::string>() == "Memory") {
      shm_volume = v["name"].as<std::string>();
    }
  }
  ASSERT_FALSE(shm_volume.empty()) << "no emptyDir with medium: Memory";
  ASSERT_EQ(pod["containers"].size(), 2u);
  for (const YAML::Node& c : pod["containers"]) {
    bool mounted = false;
    for (const YAML::Node& m : c["volumeMounts"]) {
      mounted |= m["name"].as<std::string>() == shm_volume &&
                 m["mountPath"].as<std::string>() == "/dev/shm";
    }
    EXPECT_TRUE(mounted) << c["name"].as<std::string>() << " does not mount it at /dev/shm";
  }
}

TEST(Deploy, KubernetesConfigMapHoldsAValidPolicy) {
  const std::vector<YAML::Node> docs =
      YAML::LoadAllFromFile(kSource + "/examples/kubernetes/sluice-sidecar.yaml");
  std::string text;
  for (const YAML::Node& d : docs) {
    if (d["kind"].as<std::string>() == "ConfigMap")
      text = d["data"]["policy.yaml"].as<std::string>();
  }
  ASSERT_FALSE(text.empty());
  const std::string pod = "POD_NAME";
  text.replace(text.find(pod), pod.size(),
               "pricing-agent-7d9f-x2k4");  // as the container's sed does
  Result<Policy> p = parse_policy(text, "configmap policy.yaml");
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->segment.name, "sluice");
  EXPECT_EQ(p->store.kind, "redis");
  EXPECT_EQ(p->store.host_id, "pricing-agent-7d9f-x2k4");
  EXPECT_EQ(p->metrics.listen, "0.0.0.0:9464");
  EXPECT_EQ(p->limits.at(0).scope, Scope::kGlobal);
}

TEST(Deploy, SystemdUnitRunsTheInstalledSluicedAndVerifies) {
  const std::string unit = testing::read_text(testing::build_root() + "/sidecar/sluiced.service");
  ASSERT_FALSE(unit.empty());
  EXPECT_NE(unit.find("\nExecStart=/"), std::string::npos);
  EXPECT_NE(unit.find("/sluiced --foreground --config /etc/sluice/policy.yaml\n"),
            std::string::npos);
  EXPECT_NE(unit.find("\nExecReload=/bin/kill -HUP $MAINPID\n"), std::string::npos);
  EXPECT_NE(unit.find("\nRemoveIPC=no\n"), std::string::npos)
      << "the segment must outlive a restart";
  EXPECT_EQ(unit.find('@'), std::string::npos) << "an unfilled @VARIABLE@";
  if (std::system("command -v systemd-analyze >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "systemd-analyze is not installed";
  }
  // Verified with ExecStart pointing at the built sluiced (the installed one
  // may not exist yet): unknown keys and bad values are reported on stderr.
  std::string local = unit;
  const std::size_t at = local.find("ExecStart=") + 10;
  local.replace(at, local.find(' ', at) - at, testing::build_root() + "/sidecar/sluiced");
  const std::string path = "/tmp/sluiced-" + std::to_string(::getpid()) + ".service";
  std::ofstream(path) << local;
  const std::string out = path + ".out";
  const int rc = std::system(("systemd-analyze verify " + path + " >" + out + " 2>&1").c_str());
  const std::string said = testing::read_text(out);
  std::remove(path.c_str());
  std::remove(out.c_str());
  EXPECT_EQ(rc, 0) << said;
  EXPECT_EQ(said, "") << said;
}

// What `meson install` puts where, into a scratch DESTDIR.
TEST(Deploy, MesonInstallPutsBinariesLibraryHeaderPkgConfigPythonAndUnitInPlace) {
  if (std::system("command -v meson >/dev/null 2>&1") != 0) GTEST_SKIP() << "no meson";
  char tmpl[] = "/tmp/sluice-install-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dest = tmpl;
  const std::string log = dest + ".log";
  const int rc = std::system(("meson install -C " + testing::build_root() +
                              " --no-rebuild --quiet --destdir " + dest + " >" + log + " 2>&1")
                                 .c_str());
  ASSERT_EQ(rc, 0) << testing::read_text(log);
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dest)) {
    found.push_back(e.path().string().substr(dest.size()));
  }
  auto has = [&](const std::string& suffix) {
    for (const std::string& f : found) {
      if (f.size() >= suffix.size() &&
          f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0) {
        return true;
      }
    }
    return false;
  };
  for (const char* want :
       {"/bin/sluiced", "/bin/sluice", "/libsluice.so", "/include/sluice.h", "/pkgconfig/sluice.pc",
        "/sluice/__init__.py", "/sluice/client.py", "/sluice/_install_paths.py",
        "/lib/systemd/system/sluiced.service", "/share/doc/sluice/README.md"}) {
    EXPECT_TRUE(has(want)) << want << " not installed";
  }
  std::filesystem::remove_all(dest);
  std::remove(log.c_str());
}

}  // namespace
}  // namespace sluice
