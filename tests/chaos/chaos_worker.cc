// A chaos worker (tests/chaos): attaches to a segment and calls reserve,
// extend, commit and cancel at random, holding up to four reservations at
// once, until it is killed or has made --calls calls. Built against
// libquota_chaos, so --die-at can kill it at one crash point (fault_point.h).
// Prints nothing on success: the chaos test checks what it did from the
// segment's counters and the audit trail.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <thread>

#include "fault_point.h"
#include "sluice/quota.h"

namespace {

struct Options {
  std::string segment;
  std::string team = "a";
  std::uint64_t seed = 1;
  std::uint64_t calls = 0;     // 0: until killed
  std::uint64_t pause_us = 0;  // the most a call waits before the next (the model's time)
  sluice::fault::Point die_at = sluice::fault::Point::kCount;
  std::uint64_t after = 1;
};

int usage(const char* why) {
  std::fprintf(stderr,
               "chaos_worker: %s\nusage: chaos_worker --segment NAME [--team T] [--seed N] "
               "[--calls N] [--pause-us N] [--die-at POINT --after N]\n",
               why);
  return 2;
}

bool parse(int argc, char** argv, Options* o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--segment") {
      o->segment = value;
    } else if (flag == "--team") {
      o->team = value;
    } else if (flag == "--seed") {
      o->seed = std::strtoull(value, nullptr, 10);
    } else if (flag == "--calls") {
      o->calls = std::strtoull(value, nullptr, 10);
    } else if (flag == "--die-at") {
      if (!sluice::fault::parse(value, &o->die_at)) return false;
    } else if (flag == "--pause-us") {
      o->pause_us = std::strtoull(value, nullptr, 10);
    } else if (flag == "--after") {
      o->after = std::strtoull(value, nullptr, 10);
    } else {
      return false;
    }
  }
  return argc % 2 == 1 && !o->segment.empty();
}

struct Live {
  std::uint64_t id = 0;
  std::uint64_t input = 0;
  std::uint64_t output = 0;  // max output, grown by extends
  int extends = 0;           // at most four, so one reservation's charge is bounded
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, &o)) return usage("bad arguments");
  if (o.die_at != sluice::fault::Point::kCount) sluice::fault::arm(o.die_at, o.after);
  sluice::Result<sluice::Client> attached = sluice::Client::attach(o.segment);
  if (!attached.ok()) {
    std::fprintf(stderr, "chaos_worker: %s\n", attached.status().message().c_str());
    return 1;
  }
  sluice::Client& client = attached.value();
  std::mt19937_64 rng(o.seed);
  auto below = [&rng](std::uint64_t n) { return n == 0 ? 0 : rng() % n; };
  const sluice::Attribute attrs[] = {{"team", o.team}, {"model", "chaos-model"}};
  Live live[4];
  int n_live = 0;
  for (std::uint64_t call = 0; o.calls == 0 || call < o.calls; ++call) {
    if (o.pause_us != 0) std::this_thread::sleep_for(std::chrono::microseconds(below(o.pause_us)));
    if (n_live < 4 && (n_live == 0 || below(10) < 4)) {
      const std::uint64_t input = 1 + below(2000), output = 1 + below(2000);
      const sluice::Decision d = client.reserve_raw({attrs, input, output});
      if (d.admitted) live[n_live++] = {d.reservation_id, input, output, 0};
      continue;
    }
    const int pick = static_cast<int>(below(static_cast<std::uint64_t>(n_live)));
    Live& r = live[pick];
    const std::uint64_t roll = below(100);
    if (roll < 20 && r.extends < 4) {
      const std::uint64_t more = 1 + below(500);
      const sluice::Extension e = client.extend(r.id, more);
      if (e.admitted) r.output += more;
      ++r.extends;
      continue;  // extended or not, it stays live
    }
    if (roll < 45) {
      (void)client.cancel(r.id);
    } else {
      // Actual usage around the estimate: mostly under, sometimes over.
      (void)client.commit(r.id, below(r.input + r.input / 8 + 1),
                          below(r.output + r.output / 8 + 1));
    }
    r = live[--n_live];
  }
  return 0;  // what is still live is settled by the sidecar, as abandoned
}
