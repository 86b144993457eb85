"""Bad input through the Python client: each a one-line InvalidArgument (a
ValueError) or SluiceError naming the fix, and nothing charged (harness.POLICY:
team pricing has $0.05 a day, exactly 5000 gpt-4o output tokens)."""

from __future__ import annotations

import unittest
from typing import Any, Dict

import sluice

from .harness import SluicedTestCase

PRICING: Dict[str, Any] = {"team": "pricing", "feature": "quote-agent", "model": "gpt-4o"}


class BadInput(SluicedTestCase):
    def assert_whole_budget_left(self) -> None:
        """The pricing budget is untouched: all 5000 output tokens still pass."""
        with self.client.reserve(input_tokens=0, max_output_tokens=5000, **PRICING) as r:
            self.assertEqual(r.estimated_cost_nusd, 50_000_000)

    def assert_invalid(self, message: str, **call: Any) -> None:
        with self.assertRaises(sluice.InvalidArgument) as caught:
            self.client.reserve(**call)
        self.assertIsInstance(caught.exception, ValueError)
        self.assertEqual(caught.exception.code, "invalid_argument")
        self.assertIn(message, str(caught.exception))
        self.assertNotIn("\n", str(caught.exception))

    def test_token_counts_outside_0_to_2_32_are_invalid_and_charge_nothing(self) -> None:
        for bad in (-1, 2**32 + 1, 2**64, 2**64 + 5):
            self.assert_invalid(
                f"input_tokens is {bad}; token counts are whole numbers from 0 to 4294967296",
                input_tokens=bad, max_output_tokens=1, **PRICING)
            self.assert_invalid(f"max_output_tokens is {bad}",
                                input_tokens=1, max_output_tokens=bad, **PRICING)
        self.assertEqual(sluice.MAX_TOKENS, 2**32)
        self.assert_whole_budget_left()

    def test_empty_long_and_nul_values_are_invalid_and_charge_nothing(self) -> None:
        self.assert_invalid("attribute 'user' has an empty value",
                            input_tokens=0, max_output_tokens=1, user="", **PRICING)
        self.assert_invalid("attribute 'user' has a value of 256 bytes, at most 255",
                            input_tokens=0, max_output_tokens=1, user="u" * 256, **PRICING)
        self.assert_invalid("contains a NUL character",
                            input_tokens=0, max_output_tokens=1, user="a\x00b", **PRICING)
        self.assert_invalid("contains a NUL character",
                            input_tokens=0, max_output_tokens=1, user=b"\x00", **PRICING)
        self.assert_invalid("cannot be encoded as UTF-8",
                            input_tokens=0, max_output_tokens=1, user="\ud800", **PRICING)
        five = {name: "x" * 250 for name in "abcde"}  # 5 * (2 + 1 + 250) bytes
        self.assert_invalid("attributes take 1265 bytes (names and values, 2 more each), "
                            "at most 1024", input_tokens=0, max_output_tokens=1, **five)
        with self.assertRaises(TypeError):
            self.client.reserve(input_tokens=0, max_output_tokens=1, user=7, **PRICING)
        self.assert_whole_budget_left()

    def test_a_value_of_255_bytes_is_taken(self) -> None:
        with self.client.reserve(input_tokens=0, max_output_tokens=1, user="u" * 255,
                                 **PRICING) as r:
            self.assertEqual(r.commit(0, 1), 0.00001)

    def test_bytes_values_are_taken_as_they_are(self) -> None:
        # b"pricing" is the same value as "pricing": the same budget.
        with self.client.reserve(input_tokens=0, max_output_tokens=5000, team=b"pricing",
                                 model="gpt-4o") as r:
            with self.assertRaises(sluice.QuotaExceeded):
                self.client.reserve(input_tokens=0, max_output_tokens=1, **PRICING)
            r.cancel()
        # Bytes that are not UTF-8 are a value like any other (no limit matches it).
        with self.client.reserve(input_tokens=1, max_output_tokens=1, team=b"\xff\xfe") as other:
            self.assertEqual(other.commit(1, 1), 0.0)
        self.assert_whole_budget_left()

    def test_settling_out_of_range_leaves_the_reservation_open(self) -> None:
        with self.client.reserve(input_tokens=0, max_output_tokens=10, **PRICING) as r:
            with self.assertRaises(sluice.InvalidArgument) as caught:
                r.commit(input_tokens=2**32 + 1, output_tokens=0)
            self.assertIn("input_tokens is 4294967297", str(caught.exception))
            with self.assertRaises(sluice.InvalidArgument) as caught:
                r.extend(2**32)  # each count in range, the total past it
            self.assertIn(f"reservation {r.id} would pass 4294967296 output tokens",
                          str(caught.exception))
            self.assertFalse(r.settled)
            self.assertEqual(r.commit(0, 10), 0.0001)

    def test_a_settled_reservation_is_never_charged_again(self) -> None:
        r = self.client.reserve(input_tokens=0, max_output_tokens=100, **PRICING)
        self.assertEqual(r.commit(0, 100), 0.001)
        for settle_again in (lambda: r.commit(0, 100), lambda: r.extend(1)):
            with self.assertRaises(sluice.SluiceError) as caught:
                settle_again()
            self.assertEqual(caught.exception.code, "unknown_reservation")
        self.assertFalse(r.cancel())  # already settled: no refund either
        cancelled = self.client.reserve(input_tokens=0, max_output_tokens=100, **PRICING)
        self.assertTrue(cancelled.cancel())
        with self.assertRaises(sluice.SluiceError):
            cancelled.commit(0, 100)
        # $0.001 spent once: 4900 output tokens left, not one more.
        with self.client.reserve(input_tokens=0, max_output_tokens=4900, **PRICING):
            with self.assertRaises(sluice.QuotaExceeded):
                self.client.reserve(input_tokens=0, max_output_tokens=1, **PRICING)


if __name__ == "__main__":
    unittest.main()
