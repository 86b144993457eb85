#include "sluice/telemetry.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "group_access.h"
#include "telemetry_json.h"

namespace sluice {

namespace {

using nlohmann::json;

// JSON has no infinity: +inf (no key on course to run out) is written as null.
json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

AlertKind alert_kind(const std::string& name) {
  for (AlertKind k :
       {AlertKind::kExhaustsWithin, AlertKind::kP99LatencyAbove, AlertKind::kErrorRateAbove}) {
    if (name == to_string(k)) return k;
  }
  throw std::invalid_argument("unknown alert kind '" + name + "'");
}

BurnRate burn_from(const json& j) {
  BurnRate b;
  j.at("limit").get_to(b.limit);
  j.at("key").get_to(b.key);
  j.at("measure").get_to(b.measure);
  j.at("budget").get_to(b.budget);
  j.at("used").get_to(b.used);
  j.at("per_second_5m").get_to(b.per_second_5m);
  j.at("per_second_1h").get_to(b.per_second_1h);
  if (const json& e = j.at("exhausts_in_s"); !e.is_null()) b.exhausts_in_s = e.get<std::uint64_t>();
  return b;
}

AlertStatus alert_from(const json& j) {
  AlertStatus a;
  j.at("name").get_to(a.name);
  a.kind = alert_kind(j.at("kind").get<std::string>());
  j.at("firing").get_to(a.firing);
  j.at("since_unix_ns").get_to(a.since_unix_ns);
  j.at("started_firing_unix_ns").get_to(a.started_firing_unix_ns);
  j.at("summary").get_to(a.summary);
  j.at("labels").get_to(a.labels);
  const json& observed = j.at("observed");
  a.observed =
      observed.is_null() ? std::numeric_limits<double>::infinity() : observed.get<double>();
  return a;
}

}  // namespace

json burn_json(const BurnRate& b) {
  return {{"limit", b.limit},
          {"key", b.key},
          {"measure", b.measure},
          {"budget", b.budget},
          {"used", b.used},
          {"per_second_5m", b.per_second_5m},
          {"per_second_1h", b.per_second_1h},
          {"exhausts_in_s", b.exhausts_in_s ? json(*b.exhausts_in_s) : json(nullptr)}};
}

json alert_json(const AlertStatus& a) {
  return {{"name", a.name},
          {"kind", to_string(a.kind)},
          {"firing", a.firing},
          {"since_unix_ns", a.since_unix_ns},
          {"started_firing_unix_ns", a.started_firing_unix_ns},
          {"summary", a.summary},
          {"labels", a.labels},
          {"observed", number_or_null(a.observed)}};
}

std::string telemetry_path(const std::string& segment) {
  return "/dev/shm/" + segment + ".telemetry.json";
}

std::string telemetry_json(const Telemetry& t) {
  json burn = json::array();
  for (const BurnRate& b : t.burn) burn.push_back(burn_json(b));
  json alerts = json::array();
  for (const AlertStatus& a : t.alerts) alerts.push_back(alert_json(a));
  const json j = {{"unix_ns", t.unix_ns},
                  {"sidecar_pid", t.sidecar_pid},
                  {"burn", std::move(burn)},
                  {"alerts", std::move(alerts)}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<Telemetry> parse_telemetry(std::string_view text, const std::string& where) {
  try {
    const json j = json::parse(text);
    Telemetry t;
    j.at("unix_ns").get_to(t.unix_ns);
    j.at("sidecar_pid").get_to(t.sidecar_pid);
    for (const json& b : j.at("burn")) t.burn.push_back(burn_from(b));
    for (const json& a : j.at("alerts")) t.alerts.push_back(alert_from(a));
    return t;
  } catch (const std::exception& e) {
    return Status(ErrorCode::kIncompatible,
                  where + " is not telemetry this sluice can read (" + e.what() +
                      "); restart sluiced with this version to rewrite it");
  }
}

Status write_telemetry(const std::string& segment, const Telemetry& t, std::optional<gid_t> group) {
  const std::string path = telemetry_path(segment);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Status(ErrorCode::kIo, "cannot write " + tmp + ": " + std::strerror(errno) +
                                      "; free space in /dev/shm or run sluiced as its owner");
  }
  Status access = set_file_access(fd, tmp, 0640, group);
  const std::string text = telemetry_json(t);
  std::size_t done = 0;
  while (access.ok() && done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      access = Status(ErrorCode::kIo, "cannot write " + tmp + ": " + std::strerror(errno) +
                                          "; free space in /dev/shm");
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (access.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    access = Status(ErrorCode::kIo, "cannot rename " + tmp + " to " + path + ": " +
                                        std::strerror(errno) + "; check /dev/shm's permissions");
  }
  if (!access.ok()) ::unlink(tmp.c_str());
  return access;
}

Result<Telemetry> read_telemetry(const std::string& segment) {
  const std::string path = telemetry_path(segment);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      return Status(ErrorCode::kNotFound,
                    "no telemetry at " + path + "; start sluiced (it writes it every second)");
    }
    return Status(ErrorCode::kPermissionDenied, permission_denied_message(path, false));
  }
  std::string text;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return parse_telemetry(text, path);
}

}  // namespace sluice
