#!/usr/bin/env python3
"""Summarizes sluice_bench JSON output against DESIGN.md's targets.

    tools/bench_summary.py --out build/bench/summary.json build/bench/raw.json [more runs...]

With several raw files (one per run) every figure is computed per run and the
summary holds the median of each, plus every run's figures under "runs".
Prints an aligned table: figure, value, DESIGN target, met. Exits 1 when a
figure cannot be computed (a benchmark failed or was filtered out); missing a
target is a result, not an error.
"""

import argparse
import json
import re
import statistics
import sys

MIB = 1 << 20


def load_run(path):
    """Benchmarks of one raw file by plain name, errors separately."""
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    by_name, errors = {}, []
    for b in raw.get("benchmarks", []):
        name = re.sub(r"/(iterations:\d+|real_time)", "", b.get("run_name", b["name"]))
        if b.get("error_occurred"):
            errors.append(f"{name}: {b.get('error_message', 'error')}")
            continue
        by_name[name] = b
    return by_name, errors


def figures_of(b):
    """The figures of one run, as a dict; absent inputs leave figures out."""
    f = {}

    def counter(name, key):
        if name in b and key in b[name]:
            return float(b[name][key])
        return None

    def cpu_ns(name):  # per-iteration CPU time: excludes time the bench was descheduled
        if name not in b:
            return None
        unit = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[b[name].get("time_unit", "ns")]
        return float(b[name]["cpu_time"]) * unit

    def put(key, value):
        if value is not None:
            f[key] = value

    for q in ("p50", "p90", "p99", "p999"):
        put(f"reserve_commit_{q}_ns", counter("reserve_commit_3_limits", f"{q}_ns"))
    put("reserve_commit_mean_ns", counter("reserve_commit_3_limits", "mean_ns"))
    for q in ("p50", "p99"):
        put(f"reserve_commit_audit_off_{q}_ns",
            counter("reserve_commit_3_limits_audit_off", f"{q}_ns"))
        put(f"reject_audit_off_{q}_ns", counter("reject_budget_exhausted_audit_off", f"{q}_ns"))
    for q in ("p50", "p99"):
        for side in ("on", "off"):
            put(f"interleaved_audit_{side}_{q}_ns",
                counter("reserve_commit_audit_on_vs_off", f"{side}_{q}_ns"))
    if "interleaved_audit_on_p50_ns" in f and "interleaved_audit_off_p50_ns" in f:
        f["audit_cost_reserve_commit_p50_ns"] = (
            f["interleaved_audit_on_p50_ns"] - f["interleaved_audit_off_p50_ns"])
    put("reserve_only_p50_ns", counter("reserve_only_3_limits", "p50_ns"))
    put("reserve_only_p99_ns", counter("reserve_only_3_limits", "p99_ns"))
    put("reject_p50_ns", counter("reject_budget_exhausted", "p50_ns"))
    put("reject_p99_ns", counter("reject_budget_exhausted", "p99_ns"))
    put("reject_model_p50_ns", counter("reject_model_denied", "p50_ns"))
    put("reject_model_p99_ns", counter("reject_model_denied", "p99_ns"))

    for kind in ("hot_key", "hot_cell", "distinct_keys"):
        for n in (1, 2):
            name = f"multiproc_{kind}/procs:{n}"
            put(f"{kind}_{n}proc_ops_per_s", counter(name, "decisions_per_s"))
            put(f"{kind}_{n}proc_ops_per_cpu_s", counter(name, "decisions_per_cpu_s"))
            put(f"{kind}_{n}proc_cpu_share", counter(name, "cpu_share"))
    if "distinct_keys_1proc_ops_per_s" in f and "distinct_keys_2proc_ops_per_s" in f:
        f["distinct_keys_2proc_scaling"] = (
            f["distinct_keys_2proc_ops_per_s"] / f["distinct_keys_1proc_ops_per_s"])
    # What the scaling would be if each process had a core of its own.
    if "distinct_keys_1proc_ops_per_cpu_s" in f and "distinct_keys_2proc_ops_per_cpu_s" in f:
        f["distinct_keys_2proc_scaling_per_cpu"] = (
            2 * f["distinct_keys_2proc_ops_per_cpu_s"] / f["distinct_keys_1proc_ops_per_cpu_s"])

    put("redis_lua_p50_ns", counter("redis_lua_token_bucket", "p50_ns"))
    put("redis_lua_p99_ns", counter("redis_lua_token_bucket", "p99_ns"))
    if f.get("reserve_commit_p50_ns") and "redis_lua_p50_ns" in f:
        f["redis_ratio_p50"] = f["redis_lua_p50_ns"] / f["reserve_commit_p50_ns"]

    clocks = {
        "clock_monotonic_ns": "clock_gettime_cost/monotonic",
        "clock_monotonic_coarse_ns": "clock_gettime_cost/monotonic_coarse",
        "clock_realtime_ns": "clock_gettime_cost/realtime",
        "clock_rdtsc_ns": "clock_rdtsc",
        "clock_rdtscp_ns": "clock_rdtscp",
        "clock_sluice_monotonic_ns": "clock_sluice_monotonic_ns",
    }
    for key, name in clocks.items():
        put(key, cpu_ns(name))
    if f.get("reserve_commit_p50_ns") and "clock_sluice_monotonic_ns" in f:
        f["clock_share_of_reserve_commit_p50"] = (
            f["clock_sluice_monotonic_ns"] / f["reserve_commit_p50_ns"])

    put("audit_drain_records_per_s", counter("audit_drain", "records_per_s"))
    put("audit_drain_cpu_records_per_s", counter("audit_drain", "drain_cpu_records_per_s"))
    put("audit_bytes_per_record", counter("audit_drain", "bytes_per_record"))
    for path in ("io_uring", "pwrite"):
        put(f"audit_append_{path}_records_per_s",
            counter(f"audit_append_120b/{path}", "frames_per_s"))
    put("hot_key_audit_2proc_ops_per_s", counter("multiproc_hot_key_audit/procs:2", "decisions_per_s"))
    put("segment_1m_keys_bytes", counter("segment_1m_keys", "bytes"))
    put("attach_1m_keys_us", counter("segment_1m_keys", "attach_median_us"))

    stores = {0: "sqlite", 1: "redis"}
    for arg, store in stores.items():
        for keys in (1000, 10000, 100000):
            put(f"store_sync_{store}_{keys}_active_keys_cpu_ms",
                counter(f"store_sync_cost/{keys}/100/{arg}", "cpu_ms_per_sync"))
        put(f"store_sync_{store}_100000_keys_1pct_active_cpu_ms",
            counter(f"store_sync_cost/100000/1/{arg}", "cpu_ms_per_sync"))
        for q in ("p50", "p99"):
            put(f"store_lease_round_trip_{store}_{q}_ns",
                counter(f"store_lease_round_trip/{arg}", f"{q}_ns"))
    for side in ("up", "down"):
        for q in ("p50", "p99"):
            put(f"global_reserve_commit_store_{side}_{q}_ns",
                counter("global_reserve_commit_store_up_vs_down", f"{side}_{q}_ns"))
    for phase in ("up", "stopped", "restarted"):
        for q in ("p50", "p99"):
            put(f"global_reserve_commit_redis_{phase}_{q}_ns",
                counter("global_reserve_commit_redis_up_stopped_up", f"{phase}_{q}_ns"))
    return f


# (figure, target text, predicate) from DESIGN.md's Targets table.
TARGETS = {
    "reserve_commit_p50_ns": ("<= 150 ns", lambda v: v <= 150),
    "reserve_commit_p99_ns": ("<= 1000 ns", lambda v: v <= 1000),
    "reject_p50_ns": ("<= 60 ns", lambda v: v <= 60),
    "hot_key_2proc_ops_per_s": (">= 5 M/s", lambda v: v >= 5e6),
    "hot_cell_2proc_ops_per_s": (">= 5 M/s", lambda v: v >= 5e6),
    "distinct_keys_2proc_scaling": (">= 1.8 x", lambda v: v >= 1.8),
    "redis_ratio_p50": (">= 200 x", lambda v: v >= 200),
    "audit_drain_records_per_s": (">= 2 M/s", lambda v: v >= 2e6),
    "segment_1m_keys_bytes": ("<= 256 MiB", lambda v: v <= 256 * MIB),
    "attach_1m_keys_us": ("<= 1000 us", lambda v: v <= 1000),
}

REQUIRED = [
    "reserve_commit_p50_ns", "reserve_commit_p90_ns", "reserve_commit_p99_ns",
    "reserve_commit_p999_ns", "reject_p50_ns", "reject_p99_ns", "hot_key_1proc_ops_per_s",
    "hot_key_2proc_ops_per_s", "hot_cell_2proc_ops_per_s", "distinct_keys_2proc_scaling", "redis_lua_p50_ns",
    "redis_ratio_p50", "clock_monotonic_ns", "clock_monotonic_coarse_ns", "clock_realtime_ns",
    "clock_rdtsc_ns", "segment_1m_keys_bytes", "attach_1m_keys_us",
    "reserve_commit_audit_off_p50_ns", "audit_drain_records_per_s", "audit_bytes_per_record",
]


def fmt(key, v):
    if key.endswith("_bytes"):
        return f"{v / MIB:.1f} MiB"
    if key.endswith("_records_per_s"):
        return f"{v / 1e6:.2f} M/s"
    if key.endswith("_per_record"):
        return f"{v:.0f} B"
    if key.endswith(("_ops_per_s", "_ops_per_cpu_s")):
        return f"{v / 1e6:.2f} M/s"
    if key.endswith("_ns"):
        return f"{v:.1f} ns" if v < 1e4 else f"{v / 1e3:.1f} us"
    if key.endswith("_ms"):
        return f"{v:.1f} ms"
    if key.endswith("_us"):
        return f"{v:.1f} us"
    if key.startswith("clock_share"):
        return f"{100 * v:.0f} %"
    if "ratio" in key or "scaling" in key:
        return f"{v:.2f} x" if v < 100 else f"{v:.0f} x"
    return f"{v:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("raw", nargs="+", help="sluice_bench --benchmark_out JSON files, one per run")
    ap.add_argument("--out", required=True, help="summary JSON to write")
    args = ap.parse_args()

    runs, errors = [], []
    for path in args.raw:
        b, errs = load_run(path)
        errors += [f"{path}: {e}" for e in errs]
        runs.append(figures_of(b))
    keys = sorted({k for r in runs for k in r})
    summary = {k: statistics.median([r[k] for r in runs if k in r]) for k in keys}
    met = {k: TARGETS[k][1](summary[k]) for k in TARGETS if k in summary}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({**summary, "targets_met": met, "runs": runs, "errors": errors}, f, indent=2)
        f.write("\n")

    title = "median of %d runs" % len(runs) if len(runs) > 1 else "one run"
    order = [k for k in REQUIRED if k in summary] + [k for k in keys if k not in REQUIRED]
    rows = [("figure (" + title + ")", "value", "target", "met")]
    for k in order:
        target = TARGETS.get(k)
        rows.append((k, fmt(k, summary[k]), target[0] if target else "",
                     ("yes" if met[k] else "NO") if target else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, r in enumerate(rows):
        print(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
        if i == 0:
            print("  ".join("-" * w for w in widths))

    missing = [k for k in REQUIRED if k not in summary]
    for e in errors:
        print(f"bench error: {e}", file=sys.stderr)
    if missing:
        print("bench_summary: missing figures: " + ", ".join(missing) +
              "; see the errors above or build/bench/raw.json", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
