#!/usr/bin/env python3
"""A batch job: it runs many model calls without asking first, adds up the
usage, and charges it in one go when it exits (even on an error, Ctrl-C or
SIGTERM), through atexit.

    SLUICE_LIB=build/clients/c/libsluice.so PYTHONPATH=clients/python \\
        python3 examples/python/batch_job.py --segment sluice-demo --items 30
"""

from __future__ import annotations

import argparse
import atexit
import signal
import sys
import time
from types import FrameType
from typing import Any, Dict, Optional

import sluice


class Usage:
    """Tokens used so far; charged once, at exit."""

    def __init__(self, client: sluice.Client) -> None:
        self.client = client
        self.input_tokens = 0
        self.output_tokens = 0

    def add(self, resp: Dict[str, Any]) -> None:
        input_tokens, output_tokens = sluice.usage_from_response(resp)
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens

    def charge(self) -> None:
        if self.input_tokens == 0 and self.output_tokens == 0:
            return
        try:
            cost = self.client.charge(team="research", feature="nightly-eval",
                                      model="gpt-4o-mini", input_tokens=self.input_tokens,
                                      output_tokens=self.output_tokens)
        except sluice.QuotaExceeded as e:
            print(f"batch_job: the limits refused the charge: {e}", file=sys.stderr)
        except sluice.SluiceError as e:
            print(f"batch_job: cannot charge: {e}", file=sys.stderr)
        else:
            print(f"batch_job: charged ${cost:.6f} for {self.input_tokens} in, "
                  f"{self.output_tokens} out")
        finally:
            self.client.close()


def exit_on_sigterm(signum: int, frame: Optional[FrameType]) -> None:
    sys.exit(128 + signum)  # SystemExit runs the atexit handlers; a bare SIGTERM would not


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segment", default="sluice-demo", help="the policy's segment.name")
    parser.add_argument("--items", type=int, default=30, help="items to process")
    parser.add_argument("--pace", type=float, default=0.25, help="seconds per item")
    args = parser.parse_args()
    if args.items < 0 or args.pace < 0:
        print("batch_job: --items and --pace must not be negative", file=sys.stderr)
        return 2

    try:
        client = sluice.Client(args.segment)  # attach first: no sidecar, no work
    except sluice.SluiceError as e:
        print(f"batch_job: {e}", file=sys.stderr)
        return 2
    usage = Usage(client)
    atexit.register(usage.charge)
    signal.signal(signal.SIGTERM, exit_on_sigterm)

    for i in range(1, args.items + 1):
        # ... call the model for item i here; it reports its usage ...
        resp = {"usage": {"prompt_tokens": 900 + i % 7 * 10, "completion_tokens": 300 + i % 5 * 20}}
        usage.add(resp)
        time.sleep(args.pace)
    print(f"batch_job: processed {args.items} items ({usage.input_tokens} in, "
          f"{usage.output_tokens} out); charging at exit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
