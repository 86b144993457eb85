"""What a commit reports of its model call (latency_s, ttft_s, outcome,
http_status, model_version), read back from the sluiced's own metrics
endpoint; and bad reports refused in one line with nothing charged
(harness.POLICY: team pricing has $0.05 a day, 5000 gpt-4o output tokens)."""

from __future__ import annotations

import re
import socket
import unittest
import urllib.request
from typing import Any, Dict

import sluice

from .harness import POLICY, Sluiced

PRICING: Dict[str, Any] = {"team": "pricing", "feature": "quote-agent", "model": "gpt-4o"}
SAMPLE = re.compile(r"^(\w+(?:\{[^}]*\})?) (\S+)$")


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class CallReport(unittest.TestCase):
    def setUp(self) -> None:
        self.port = free_port()
        self.sluiced = Sluiced(POLICY + f"\nmetrics:\n  listen: 127.0.0.1:{self.port}\n")
        self.client = sluice.Client(self.sluiced.segment)

    def tearDown(self) -> None:
        self.client.close()
        self.assertEqual(self.sluiced.stop(), 0)

    def metrics(self) -> Dict[str, float]:
        """Every sample of a scrape, by its name and labels as printed."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        samples = {}
        for line in text.splitlines():
            match = SAMPLE.match(line)
            if match:
                samples[match.group(1)] = float(match.group(2))
        return samples

    def calls(self, outcome: str) -> float:
        return self.metrics()[f'sluice_model_calls_total{{model="gpt-4o",outcome="{outcome}"}}']

    def assert_whole_budget_left(self) -> None:
        with self.client.reserve(input_tokens=0, max_output_tokens=5000, **PRICING) as r:
            self.assertEqual(r.estimated_cost_nusd, 50_000_000)

    def test_reports_reach_the_per_model_metrics(self) -> None:
        with self.client.reserve(input_tokens=1000, max_output_tokens=1000, **PRICING) as r:
            cost = r.commit(1000, 200, latency_s=0.8125, ttft_s=0.095, outcome="ok",
                            http_status=200, model_version="gpt-4o-2024-08-06")
        self.assertEqual(cost, 0.0045)
        with self.client.reserve(input_tokens=10, max_output_tokens=10, **PRICING) as r:
            r.commit(10, 0, latency_s=30, outcome="timeout")
        resp = {"usage": {"prompt_tokens": 10, "completion_tokens": 5}}
        with self.client.reserve(input_tokens=10, max_output_tokens=10, **PRICING) as r:
            r.commit_response(resp, outcome="cut_off", model_version=b"v\xff")
        with self.client.reserve(input_tokens=10, max_output_tokens=10, **PRICING) as r:
            r.commit(10, 10)  # reports nothing
        self.client.charge(input_tokens=1, output_tokens=1, **PRICING)  # nor does charge

        m = self.metrics()
        gpt = '{model="gpt-4o"'
        self.assertEqual(self.calls("ok"), 1)
        self.assertEqual(self.calls("timeout"), 1)
        self.assertEqual(self.calls("cut_off"), 1)
        self.assertEqual(self.calls("unreported"), 2)
        self.assertEqual(self.calls("provider_error"), 0)
        self.assertEqual(m[f'sluice_call_latency_seconds_bucket{gpt},le="0.5"}}'], 0)
        self.assertEqual(m[f'sluice_call_latency_seconds_bucket{gpt},le="1"}}'], 1)
        self.assertEqual(m[f'sluice_call_latency_seconds_bucket{gpt},le="20"}}'], 1)
        self.assertEqual(m[f'sluice_call_latency_seconds_bucket{gpt},le="30"}}'], 2)
        self.assertEqual(m['sluice_call_latency_seconds_count{model="gpt-4o"}'], 2)
        self.assertAlmostEqual(m['sluice_call_latency_seconds_sum{model="gpt-4o"}'], 30.8125)
        self.assertEqual(m[f'sluice_call_ttft_seconds_bucket{gpt},le="0.1"}}'], 1)
        self.assertAlmostEqual(m['sluice_call_ttft_seconds_sum{model="gpt-4o"}'], 0.095)

    def test_bad_reports_are_invalid_in_one_line_and_charge_nothing(self) -> None:
        cases = [
            (dict(latency_s=-0.001), "latency_s is -0.001; give the seconds the call took"),
            (dict(ttft_s=float("nan")), "ttft_s is nan;"),
            (dict(latency_s=float("inf")), "latency_s is inf;"),
            (dict(latency_s=2**64), "latency_s is 18446744073709551616;"),
            (dict(latency_s="0.8"), "latency_s is '0.8';"),
            (dict(ttft_s=True), "ttft_s is True;"),
            (dict(outcome="success"), "outcome is 'success'; give one of ok, provider_error, "
                                      "timeout, cancelled_by_client, cut_off, or None"),
            (dict(outcome=1), "outcome is 1;"),
            (dict(http_status=1000), "http_status is 1000; give the provider's HTTP status, "
                                     "a whole number up to 999 (e.g. 200), or None"),
            (dict(http_status=-1), "http_status is -1;"),
            (dict(http_status=200.0), "http_status is 200.0;"),
            (dict(model_version="v" * 129), "model_version is 129 bytes, at most 128"),
            (dict(model_version="é" * 65), "model_version is 130 bytes, at most 128"),
            (dict(model_version="a\x00b"), "model_version contains a NUL character"),
            (dict(model_version="\ud800"), "cannot be encoded as UTF-8"),
            (dict(model_version=42), "model_version is 42;"),
        ]
        with self.client.reserve(input_tokens=0, max_output_tokens=100, **PRICING) as r:
            for report, message in cases:
                with self.subTest(report=report):
                    with self.assertRaises(sluice.InvalidArgument) as caught:
                        r.commit(0, 100, **report)
                    self.assertIsInstance(caught.exception, ValueError)
                    self.assertEqual(caught.exception.code, "invalid_argument")
                    self.assertIn(message, str(caught.exception))
                    self.assertNotIn("\n", str(caught.exception))
            self.assertFalse(r.settled)
            r.cancel()
        self.assert_whole_budget_left()
        for outcome in ("unreported", "ok", "timeout"):
            self.assertEqual(self.calls(outcome), 0)

    def test_the_bounds_themselves_are_taken(self) -> None:
        with self.client.reserve(input_tokens=0, max_output_tokens=100, **PRICING) as r:
            cost = r.commit(0, 100, latency_s=0, ttft_s=0.0, outcome="cancelled_by_client",
                            http_status=999, model_version="é" * 64)
        self.assertEqual(cost, 0.001)
        self.assertEqual(self.calls("cancelled_by_client"), 1)
        self.assertEqual(self.metrics()['sluice_call_latency_seconds_count{model="gpt-4o"}'], 0)
        self.assertEqual(sluice.OUTCOMES[1:3], ("ok", "provider_error"))


if __name__ == "__main__":
    unittest.main()
