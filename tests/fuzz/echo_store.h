// A Store that answers from memory, for fuzzing the sidecar's sync loop
// without a database: every push is granted what it asks, and restore
// returns the cells it was given. Its answers are plausible, not exact.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "store.h"

namespace sluice::fuzz {

class EchoStore : public Store {
 public:
  explicit EchoStore(std::vector<RestoredCell> restored) : restored_(std::move(restored)) {}

  std::string where() const override { return "echo:fuzz"; }
  Result<std::uint64_t> hash_seed(std::uint64_t proposal) override { return proposal; }

  Result<std::vector<CellState>> push(const Push& push) override {
    std::vector<CellState> states;
    for (const CellUpdate& u : push.cells) {
      CellState s;
      s.host_used = u.used_delta;
      s.global_used = u.used_delta;
      s.host_allotted = u.want_allotted;
      s.host_exposed = u.want_exposed;
      s.global_allotted = u.want_allotted;
      s.host_share = u.rate / 2;
      s.hosts = 2;
      states.push_back(s);
    }
    return states;
  }

  Result<std::vector<RestoredCell>> restore(const std::string&, std::uint64_t) override {
    return restored_;
  }

 private:
  std::vector<RestoredCell> restored_;
};

}  // namespace sluice::fuzz
