#!/usr/bin/env python3
"""A latency-critical service: many small calls, each asking Sluice first.

Rejected calls are not sent; after a rejection that says when to retry, the
service waits that long.

    SLUICE_LIB=build/clients/c/libsluice.so PYTHONPATH=clients/python \\
        python3 examples/python/service_loop.py --segment sluice-demo --team search --seconds 10

Prints one summary line: calls admitted and rejected (by reason) and the
decision latency percentiles it saw (through ctypes, so microseconds, not
the engine's nanoseconds).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import List

import sluice


def positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segment", default="sluice-demo", help="the policy's segment.name")
    parser.add_argument("--team", default="search")
    parser.add_argument("--seconds", type=positive, default=10.0, help="how long to run")
    parser.add_argument("--rps", type=positive, default=120.0, help="calls per second")
    args = parser.parse_args()

    try:
        client = sluice.Client(args.segment)
    except sluice.SluiceError as e:
        print(f"service_loop: {e}", file=sys.stderr)
        return 2
    attributes = {"team": args.team, "feature": "autocomplete", "user": "u-1042",
                  "model": "gpt-4o-mini"}
    latency_ns: List[int] = []
    rejected: Counter[str] = Counter()
    admitted = 0
    interval = 1.0 / args.rps
    end = time.monotonic() + args.seconds
    next_call = time.monotonic()
    with client:
        while time.monotonic() < end:
            t0 = time.perf_counter_ns()
            try:
                reservation = client.reserve(input_tokens=180, max_output_tokens=60, **attributes)
            except sluice.QuotaExceeded as e:
                latency_ns.append(time.perf_counter_ns() - t0)
                rejected[e.reason] += 1
                next_call = max(next_call, time.monotonic() + e.retry_after)
            else:
                latency_ns.append(time.perf_counter_ns() - t0)
                with reservation:
                    admitted += 1
                    # ... call the model; it reports its usage ...
                    output_tokens = 40 + admitted % 20
                    resp = {"usage": {"prompt_tokens": 175, "completion_tokens": output_tokens}}
                    reservation.commit_response(resp)
            next_call += interval
            pause = next_call - time.monotonic()
            if pause > 0:
                time.sleep(pause)

    latency_ns.sort()

    def pct(p: float) -> int:
        return latency_ns[int(p * (len(latency_ns) - 1))] if latency_ns else 0

    reasons = "".join(f" rejected[{reason}]={n}" for reason, n in sorted(rejected.items()))
    print(f"service_loop: team={args.team} admitted={admitted}{reasons}"
          f" decision_p50={pct(0.50)}ns p99={pct(0.99)}ns (Python + ctypes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
