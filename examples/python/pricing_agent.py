#!/usr/bin/env python3
"""A pricing agent with a strict dollar budget.

It reserves the worst case of each call, streams the answer in chunks, asks
Sluice for more as chunks run past the estimate (r.extend), and stops the
stream the moment extend says the budget is gone. It quits when a new call
can no longer be afforded; a rate limit only makes it wait.

    SLUICE_LIB=build/clients/c/libsluice.so PYTHONPATH=clients/python \\
        python3 examples/python/pricing_agent.py --segment sluice-demo --max-calls 100
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Iterator

import sluice

CHUNK_TOKENS = 400
RESERVED_OUTPUT = 800


def fake_stream(tokens: int) -> Iterator[int]:
    """Stands in for a model's streamed answer: chunks of CHUNK_TOKENS tokens."""
    while tokens > 0:
        chunk = min(CHUNK_TOKENS, tokens)
        tokens -= chunk
        yield chunk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segment", default="sluice-demo", help="the policy's segment.name")
    parser.add_argument("--max-calls", type=int, default=10000, help="stop after this many calls")
    parser.add_argument("--pace-ms", type=int, default=20, help="pause between calls")
    args = parser.parse_args()
    if args.max_calls <= 0 or args.pace_ms < 0:
        print("pricing_agent: --max-calls must be positive and --pace-ms not negative",
              file=sys.stderr)
        return 2

    try:
        client = sluice.Client(args.segment)
    except sluice.SluiceError as e:
        print(f"pricing_agent: {e}", file=sys.stderr)
        return 2
    attributes = {"team": "pricing", "feature": "quote-agent", "user": "agent-7",
                  "model": "gpt-4o"}
    spent_nusd = calls = cut_off = rate_waits = 0
    stop = "max calls reached"
    with client:
        while calls < args.max_calls:
            try:
                reservation = client.reserve(input_tokens=1500,
                                             max_output_tokens=RESERVED_OUTPUT, **attributes)
            except sluice.QuotaExceeded as e:
                if e.reason == "rate_limited":  # slow down, then go on
                    rate_waits += 1
                    time.sleep(e.retry_after + 0.001)
                    continue
                stop = e.reason
                break
            with reservation:
                wanted = RESERVED_OUTPUT + (calls % 4) * CHUNK_TOKENS
                streamed = 0
                for chunk in fake_stream(wanted):
                    # Past the reserved output, each chunk must be paid for first.
                    if streamed + chunk > RESERVED_OUTPUT and not reservation.extend(chunk):
                        cut_off += 1  # stop the stream here: the budget would be overshot
                        break
                    streamed += chunk
                reservation.commit(input_tokens=1480, output_tokens=streamed)
                spent_nusd += reservation.cost_nusd or 0
            calls += 1
            if args.pace_ms:
                time.sleep(args.pace_ms / 1000)
    print(f"pricing_agent: calls={calls} spent=${spent_nusd / sluice.NUSD_PER_USD:.6f} "
          f"streams_cut_off={cut_off} rate_waits={rate_waits} stopped={stop}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
