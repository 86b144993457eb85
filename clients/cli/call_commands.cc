// sluice reserve | charge | commit | cancel: the reservation protocol from a
// shell. Every input is checked before the segment is touched, so a bad
// flag never charges anything. `reserve` holds its reservation for --ttl
// (detached from this short-lived process) so another process can settle it;
// `charge` and `commit` may report how the model call went (--outcome, ...).
#include <cstdio>
#include <memory>

#include "args.h"
#include "commands.h"
#include "output.h"
#include "sluice/quota.h"

namespace sluice::cli {
namespace {

using nlohmann::json;

struct CallOptions {
  std::vector<std::string> attrs;
  std::string model;
  std::string input_tokens;
  std::string output_tokens;  // reserve: the most the call may produce
  std::string ttl = "15m";
  CallReportFlags report;  // charge
  bool json = false;
};

struct SettleOptions {
  std::string id;
  std::string input_tokens;
  std::string output_tokens;
  CallReportFlags report;  // commit
  bool json = false;
};

struct Call {
  AttributeList attrs;
  std::uint64_t input = 0;
  std::uint64_t output = 0;
  std::uint64_t hold_ns = 0;  // 0: held while this process lives
};

// The call as the engine takes it; `attrs` holds the views.
CallRequest request_of(const Call& call, Attribute (&attrs)[kMaxCallAttributes]) {
  const std::size_t n = std::min(call.attrs.size(), kMaxCallAttributes);
  for (std::size_t i = 0; i < n; ++i) attrs[i] = {call.attrs[i].first, call.attrs[i].second};
  CallRequest req;
  req.attributes = std::span<const Attribute>(attrs, n);
  req.input_tokens = call.input;
  req.max_output_tokens = call.output;
  req.hold_for_ns = call.hold_ns;
  return req;
}

// The engine's bounds on a call (an attribute too long, ...), checked
// before the segment is touched, so the call is not even recorded.
Status check_bounds(const Call& call) {
  Attribute attrs[kMaxCallAttributes];
  char why[256];
  if (!describe_invalid_request(request_of(call, attrs), why, sizeof why)) return Status::Ok();
  return Status(ErrorCode::kInvalidArgument, why);
}

Result<Call> parse_call(const CallOptions& o, const std::string& output_flag, bool held) {
  Call call;
  Result<AttributeList> attrs = parse_attributes(o.attrs, o.model);
  if (!attrs.ok()) return attrs.status();
  call.attrs = std::move(attrs.value());
  Result<std::uint64_t> in = parse_token_count("--input-tokens", o.input_tokens);
  if (!in.ok()) return in.status();
  Result<std::uint64_t> out = parse_token_count(output_flag, o.output_tokens);
  if (!out.ok()) return out.status();
  call.input = in.value();
  call.output = out.value();
  if (held) {
    Result<std::uint64_t> ttl = parse_ttl_ns(o.ttl);
    if (!ttl.ok()) return ttl.status();
    call.hold_ns = ttl.value();
  }
  if (Status s = check_bounds(call); !s.ok()) return s;
  return call;
}

Decision decide(Client& client, const Call& call) {
  Attribute attrs[kMaxCallAttributes];
  return client.reserve_raw(request_of(call, attrs));
}

// What a user can do about a rejection.
const char* hint(Reason r) {
  switch (r) {
    case Reason::kModelNotAllowed:
      return "use a model the limit allows";
    case Reason::kBudgetExhausted:
      return "the budget frees up when its window ends";
    case Reason::kRequestTooLarge:
      return "the call is larger than the limit allows and can never pass; split it";
    case Reason::kUnknownModelPrice:
      return "the policy has no price for this model; pass a priced --model";
    case Reason::kTableFull:
      return "the key table is full; raise segment.max_keys";
    case Reason::kTooManyReservations:
      return "every reservation slot is in use; raise segment.max_reservations";
    case Reason::kNoPolicy:
      return "sluiced has not published a policy; check its log";
    case Reason::kPolicyStale:
      return "budget windows ran out; is sluiced running?";
    case Reason::kAuditUnavailable:
      return "audit is required and its ring is full; is sluiced draining it (sluice status)?";
    default:
      return "";
  }
}

std::uint64_t retry_after_ms(const Decision& d) { return (d.retry_after_ns + 999'999) / 1'000'000; }

int report_rejection(const Client& client, const Decision& d, bool as_json) {
  const std::string limit(client.limit_name(d.limit_index));
  const int code = d.reason == Reason::kInvalidArgument ? kExitUsage : kExitRejected;
  if (as_json) {
    json doc = {{"admitted", false}, {"reason", to_string(d.reason)}};
    doc["limit"] = limit.empty() ? json(nullptr) : json(limit);
    if (d.retry_after_ns > 0) doc["retry_after_ms"] = retry_after_ms(d);
    print_json(doc);
    return code;
  }
  std::string line = "rejected";
  if (!limit.empty()) line += " by limit '" + limit + "'";
  line += std::string(": ") + to_string(d.reason);
  if (d.retry_after_ns > 0) line += "; retry after " + std::to_string(retry_after_ms(d)) + " ms";
  if (*hint(d.reason) != '\0') line += std::string("; ") + hint(d.reason);
  return fail(code, line);
}

int not_live(std::uint64_t id) {
  return fail(kExitRejected, "reservation " + std::to_string(id) +
                                 " is not live (unknown, already settled, or abandoned after "
                                 "its --ttl); nothing was charged: check the id `sluice "
                                 "reserve` printed");
}

int settle_failed(std::uint64_t id, SettleError e) {
  if (e == SettleError::kUnknownReservation) return not_live(id);
  return fail(kExitUsage,
              std::string("cannot settle reservation ") + std::to_string(id) + ": " + to_string(e));
}

// ---------------------------------------------------------------------------
// Commands

int run_reserve(const Globals& g, const CallOptions& o) {
  Result<Call> call = parse_call(o, "--max-output-tokens", /*held=*/true);
  if (!call.ok()) return fail(kExitUsage, call.status().message());
  Result<Client> client = Client::attach(g.segment);
  if (!client.ok()) return fail(kExitUsage, client.status().message());
  const Decision d = decide(client.value(), call.value());
  if (!d.admitted) return report_rejection(client.value(), d, o.json);
  if (o.json) {
    print_json({{"admitted", true},
                {"reservation", d.reservation_id},
                {"reservation_str", std::to_string(d.reservation_id)},
                {"estimated_cost_usd", usd(d.estimated_cost_nusd)},
                {"shadow_rejects", d.shadow_rejects},
                {"ttl_ms", call->hold_ns / 1'000'000}});
  } else {
    std::printf("admitted reservation %llu (est. %s, held %s)\n",
                static_cast<unsigned long long>(d.reservation_id),
                format_usd(d.estimated_cost_nusd).c_str(), o.ttl.c_str());
  }
  return kExitOk;
}

int run_charge(const Globals& g, const CallOptions& o) {
  Result<Call> call = parse_call(o, "--output-tokens", /*held=*/false);
  if (!call.ok()) return fail(kExitUsage, call.status().message());
  Result<CallReport> report = parse_call_report(o.report);
  if (!report.ok()) return fail(kExitUsage, report.status().message());
  Result<Client> client = Client::attach(g.segment);
  if (!client.ok()) return fail(kExitUsage, client.status().message());
  const Decision d = decide(client.value(), call.value());
  if (!d.admitted) return report_rejection(client.value(), d, o.json);
  const Settlement s = client->commit(d.reservation_id, call->input, call->output, report.value());
  if (!s.ok()) return settle_failed(d.reservation_id, s.error);
  if (o.json) {
    print_json({{"admitted", true},
                {"reservation", d.reservation_id},
                {"reservation_str", std::to_string(d.reservation_id)},
                {"cost_usd", usd(s.cost_nusd)},
                {"shadow_rejects", d.shadow_rejects}});
  } else {
    std::printf("charged %s (reservation %llu)\n", format_usd(s.cost_nusd).c_str(),
                static_cast<unsigned long long>(d.reservation_id));
  }
  return kExitOk;
}

int run_commit(const Globals& g, const SettleOptions& o) {
  Result<std::uint64_t> id = parse_reservation_id(o.id);
  if (!id.ok()) return fail(kExitUsage, id.status().message());
  Result<std::uint64_t> in = parse_token_count("--input-tokens", o.input_tokens);
  if (!in.ok()) return fail(kExitUsage, in.status().message());
  Result<std::uint64_t> out = parse_token_count("--output-tokens", o.output_tokens);
  if (!out.ok()) return fail(kExitUsage, out.status().message());
  Result<CallReport> report = parse_call_report(o.report);
  if (!report.ok()) return fail(kExitUsage, report.status().message());
  Result<Client> client = Client::attach(g.segment);
  if (!client.ok()) return fail(kExitUsage, client.status().message());
  const Settlement s = client->commit(id.value(), in.value(), out.value(), report.value());
  if (!s.ok()) return settle_failed(id.value(), s.error);
  if (o.json) {
    print_json({{"committed", true},
                {"reservation", id.value()},
                {"reservation_str", std::to_string(id.value())},
                {"cost_usd", usd(s.cost_nusd)}});
  } else {
    std::printf("committed reservation %llu: %s\n", static_cast<unsigned long long>(id.value()),
                format_usd(s.cost_nusd).c_str());
  }
  return kExitOk;
}

int run_cancel(const Globals& g, const SettleOptions& o) {
  Result<std::uint64_t> id = parse_reservation_id(o.id);
  if (!id.ok()) return fail(kExitUsage, id.status().message());
  Result<Client> client = Client::attach(g.segment);
  if (!client.ok()) return fail(kExitUsage, client.status().message());
  const Settlement s = client->cancel(id.value());
  if (!s.ok()) return settle_failed(id.value(), s.error);
  if (o.json) {
    print_json({{"cancelled", true},
                {"reservation", id.value()},
                {"reservation_str", std::to_string(id.value())}});
  } else {
    std::printf("cancelled reservation %llu: refunded\n",
                static_cast<unsigned long long>(id.value()));
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------
// Registration

void add_call_flags(CLI::App* sub, CallOptions& o, const std::string& output_flag,
                    const std::string& output_help) {
  sub->add_option("--attr", o.attrs, "attribute of the call, KEY=VALUE (repeat)")
      ->type_name("K=V")
      ->allow_extra_args(false);
  sub->add_option("--model", o.model, "the model; same as --attr model=M");
  sub->add_option("--input-tokens", o.input_tokens, "input tokens (estimate)")
      ->type_name("N")
      ->required();
  sub->add_option(output_flag, o.output_tokens, output_help)->type_name("N")->required();
  sub->add_flag("--json", o.json, "one JSON object");
}

// What `charge` and `commit` may report of the model call.
void add_report_flags(CLI::App* sub, CallReportFlags& r) {
  sub->add_option("--latency-ms", r.latency_ms,
                  "provider latency, request to last byte, in ms (e.g. 812.5)")
      ->type_name("MS");
  sub->add_option("--ttft-ms", r.ttft_ms, "time to first token in ms, for streams")
      ->type_name("MS");
  sub->add_option("--outcome", r.outcome,
                  "how the call ended: ok, provider_error, timeout, cancelled_by_client or "
                  "cut_off")
      ->type_name("NAME");
  sub->add_option("--http-status", r.http_status, "the provider's HTTP status (at most 999)")
      ->type_name("N");
  sub->add_option("--model-version", r.model_version,
                  "the model version the response named, at most 128 bytes")
      ->type_name("V");
}

void add_settle_flags(CLI::App* sub, SettleOptions& o, bool with_usage) {
  sub->add_option("ID", o.id, "reservation id printed by sluice reserve")->required();
  if (with_usage) {
    sub->add_option("--input-tokens", o.input_tokens, "actual input tokens")
        ->type_name("N")
        ->required();
    sub->add_option("--output-tokens", o.output_tokens, "actual output tokens")
        ->type_name("N")
        ->required();
    add_report_flags(sub, o.report);
  }
  sub->add_flag("--json", o.json, "one JSON object");
}

}  // namespace

void add_call_commands(CLI::App& app, const Globals& g, std::vector<Command>& out) {
  const char* exits = "Exit status: 0 admitted, 1 rejected, 2 bad input or no segment.";

  auto reserve_opts = std::make_shared<CallOptions>();
  CLI::App* reserve =
      app.add_subcommand("reserve", "reserve a call at its worst case; prints its id");
  add_call_flags(reserve, *reserve_opts, "--max-output-tokens",
                 "the most output the call may produce");
  reserve
      ->add_option("--ttl", reserve_opts->ttl,
                   "hold it this long (30s, 15m, 2h, 900); then sluiced settles it as abandoned")
      ->capture_default_str();
  reserve->footer(exits);
  out.push_back({reserve, [&g, reserve_opts] { return run_reserve(g, *reserve_opts); }});

  auto charge_opts = std::make_shared<CallOptions>();
  CLI::App* charge =
      app.add_subcommand("charge", "reserve and commit a finished call (batch jobs)");
  add_call_flags(charge, *charge_opts, "--output-tokens", "output tokens");
  add_report_flags(charge, charge_opts->report);
  charge->footer(exits);
  out.push_back({charge, [&g, charge_opts] { return run_charge(g, *charge_opts); }});

  auto commit_opts = std::make_shared<SettleOptions>();
  CLI::App* commit = app.add_subcommand(
      "commit", "settle a reservation at its actual usage, saying how the call went");
  add_settle_flags(commit, *commit_opts, /*with_usage=*/true);
  commit->footer("Exit status: 0 committed, 1 reservation not live, 2 bad input or no segment.");
  out.push_back({commit, [&g, commit_opts] { return run_commit(g, *commit_opts); }});

  auto cancel_opts = std::make_shared<SettleOptions>();
  CLI::App* cancel = app.add_subcommand("cancel", "cancel a reservation: refund all of it");
  add_settle_flags(cancel, *cancel_opts, /*with_usage=*/false);
  cancel->footer("Exit status: 0 cancelled, 1 reservation not live, 2 bad input or no segment.");
  out.push_back({cancel, [&g, cancel_opts] { return run_cancel(g, *cancel_opts); }});
}

}  // namespace sluice::cli
