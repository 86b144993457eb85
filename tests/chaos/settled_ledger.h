// The chaos test's reading of an audit trail: for every reservation, its
// reserve record and its settlements, and what the settlements charged per
// team, in the units of each budget measure. A settlement is a commit, a
// cancel or an abandonment the sidecar recorded.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "audit/log_reader.h"
#include "audit_generated.h"
#include "sluice/status.h"

namespace sluice::chaos {

struct Charged {
  std::uint64_t input = 0, output = 0, tokens = 0, nusd = 0;
  bool operator==(const Charged&) const = default;
};

struct SettledLedger {
  std::set<std::uint64_t> admitted;                 // ids with an admitted reserve record
  std::map<std::uint64_t, int> settlements;         // id -> settlement records
  std::map<std::uint64_t, std::string> unreserved;  // id -> settlement with no reserve record
  std::map<std::string, Charged> charged;           // team -> what settlements charged
  std::uint64_t records = 0, bad_frames = 0;
  std::uint64_t duplicate_reserves = 0;  // an admitted reserve record seen twice
};

// Reads every record in `dir`; `team_of_pid` names the team each worker
// process spent for (abandonment records carry the holder's pid).
inline Result<SettledLedger> read_ledger(const std::string& dir,
                                         const std::map<std::uint32_t, std::string>& team_of_pid) {
  namespace fb = audit::fb;
  Result<audit::LogReader> reader = audit::LogReader::open(dir);
  if (!reader.ok()) return reader.status();
  SettledLedger l;
  for (;;) {
    Result<std::optional<audit::FrameRef>> f = reader->next();
    if (!f.ok()) return f.status();
    if (!f.value()) break;
    const std::span<const std::uint8_t> p = f.value()->payload;
    flatbuffers::Verifier v(p.data(), p.size());
    if (!fb::VerifyRecordBuffer(v))
      return Status(ErrorCode::kIo, "an audit record fails to verify");
    const fb::Record& r = *fb::GetRecord(p.data());
    ++l.records;
    const std::uint64_t id = r.reservation_id();
    if (r.event() == fb::Event::Reserve) {
      if (r.decision() == fb::Decision::Admitted && !l.admitted.insert(id).second) {
        ++l.duplicate_reserves;
      }
      continue;
    }
    if (r.event() == fb::Event::Extend) continue;
    const std::string reason = r.reason() != nullptr ? r.reason()->str() : "";
    ++l.settlements[id];
    const auto team = team_of_pid.find(r.pid());
    Charged& c = l.charged[team != team_of_pid.end() ? team->second : "?"];
    auto charge = [&c](std::uint64_t in, std::uint64_t out, std::uint64_t nusd) {
      c.input += in;
      c.output += out;
      c.tokens += in + out;
      c.nusd += nusd;
    };
    if (r.event() == fb::Event::Commit || reason == "finished_commit") {
      charge(r.actual_input_tokens(), r.actual_output_tokens(), r.cost_nusd());
    } else if (reason == "charged_at_estimate") {
      charge(r.est_input_tokens(), r.est_output_tokens(), r.cost_nusd());
    }
    if (reason != "refunded_partial") l.unreserved[id] = reason;  // until its reserve is seen
  }
  // Records reach the files in ring order, the sidecar's own after them: a
  // settlement may precede its reserve record there.
  for (auto it = l.unreserved.begin(); it != l.unreserved.end();) {
    it = l.admitted.count(it->first) ? l.unreserved.erase(it) : std::next(it);
  }
  l.bad_frames = reader->problems().size();
  return l;
}

}  // namespace sluice::chaos
