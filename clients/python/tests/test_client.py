"""The Python client end to end against a real sluiced (see harness.POLICY
for the limits and prices these numbers come from)."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
import threading
import unittest
from typing import Any, Dict
from unittest import mock

import sluice
from sluice import _native

from .harness import LIBSLUICE, REPO, Sluiced, SluicedTestCase, client_env

PRICING: Dict[str, Any] = {"team": "pricing", "feature": "quote-agent", "model": "gpt-4o"}
SEARCH: Dict[str, Any] = {"team": "search", "model": "gpt-4o"}
DAY_AND_DST = 25 * 3600.0


class ClientAgainstSluiced(SluicedTestCase):
    def test_admitted_call_commits_at_its_exact_cost(self) -> None:
        with self.client.reserve(input_tokens=1000, max_output_tokens=1000, **PRICING) as r:
            self.assertGreater(r.id, 0)
            self.assertEqual(r.estimated_cost_nusd, 12_500_000)
            self.assertAlmostEqual(r.estimated_cost, 0.0125)
            cost = r.commit(input_tokens=1000, output_tokens=200)
        self.assertEqual(r.cost_nusd, 4_500_000)
        self.assertEqual(cost, 0.0045)
        self.assertTrue(r.settled)
        # $0.0455 left: 4550 output tokens exactly.
        with self.client.reserve(input_tokens=0, max_output_tokens=4550, **PRICING) as whole:
            self.assertEqual(whole.estimated_cost_nusd, 45_500_000)

    def test_budget_rejection_raises_quota_exceeded_naming_limit_reason_and_retry(self) -> None:
        self.client.charge(input_tokens=1000, output_tokens=200, **PRICING)  # $0.0045
        with self.assertRaises(sluice.QuotaExceeded) as caught:
            self.client.reserve(input_tokens=0, max_output_tokens=4551, **PRICING)
        e = caught.exception
        self.assertEqual(e.limit, "pricing-usd")
        self.assertEqual(e.reason, "budget_exhausted")
        self.assertGreater(e.retry_after, 0.0)  # the end of the day's window
        self.assertLessEqual(e.retry_after, DAY_AND_DST)
        self.assertIn("rejected by pricing-usd: budget_exhausted; retry in ", str(e))
        # What is left, not a token more, passes.
        with self.client.reserve(input_tokens=0, max_output_tokens=4550, **PRICING):
            pass

    def test_a_call_larger_than_the_whole_budget_can_never_pass(self) -> None:
        with self.assertRaises(sluice.QuotaExceeded) as caught:
            self.client.reserve(input_tokens=0, max_output_tokens=5001, **PRICING)
        self.assertEqual(caught.exception.reason, "request_too_large")
        self.assertEqual(caught.exception.limit, "pricing-usd")
        self.assertEqual(caught.exception.retry_after, 0.0)  # never
        self.assertEqual(str(caught.exception), "rejected by pricing-usd: request_too_large")

    def test_rate_rejection_says_when_to_retry(self) -> None:
        for _ in range(2):  # the burst
            with self.client.reserve(input_tokens=10, max_output_tokens=10, **SEARCH) as r:
                self.assertEqual(r.commit(input_tokens=10, output_tokens=10), 0.000125)
        with self.assertRaises(sluice.QuotaExceeded) as caught:
            self.client.reserve(input_tokens=10, max_output_tokens=10, **SEARCH)
        self.assertEqual(caught.exception.reason, "rate_limited")
        self.assertEqual(caught.exception.limit, "search-requests")
        self.assertGreater(caught.exception.retry_after, 0.0)
        self.assertLessEqual(caught.exception.retry_after, 1.0)

    def test_a_model_without_a_price_is_refused_by_the_limit_that_needs_one(self) -> None:
        with self.assertRaises(sluice.QuotaExceeded) as caught:
            self.client.reserve(input_tokens=1, max_output_tokens=1, team="pricing",
                                model="mystery")
        self.assertEqual(caught.exception.reason, "unknown_model_price")
        self.assertEqual(caught.exception.limit, "pricing-usd")
        self.assertEqual(caught.exception.retry_after, 0.0)

    def test_leaving_the_block_without_commit_cancels(self) -> None:
        with self.client.reserve(input_tokens=0, max_output_tokens=5000, **PRICING) as r:
            with self.assertRaises(sluice.QuotaExceeded):
                self.client.reserve(input_tokens=0, max_output_tokens=1, **PRICING)
        self.assertTrue(r.settled)
        self.assertIsNone(r.cost_nusd)
        # An exception leaving the block cancels too, and is not swallowed.
        with self.assertRaises(KeyError):
            with self.client.reserve(input_tokens=0, max_output_tokens=5000, **PRICING):
                raise KeyError("the model call failed")
        # Both refunded: the whole budget is there again.
        with self.client.reserve(input_tokens=0, max_output_tokens=5000, **PRICING) as again:
            self.assertEqual(again.estimated_cost_nusd, 50_000_000)

    def test_cancel_refunds_once(self) -> None:
        r = self.client.reserve(input_tokens=0, max_output_tokens=5000, **PRICING)
        self.assertTrue(r.cancel())
        self.assertFalse(r.cancel())
        with self.assertRaises(sluice.SluiceError) as caught:
            r.commit(input_tokens=1, output_tokens=1)
        self.assertEqual(caught.exception.code, "unknown_reservation")

    def test_extend_is_refused_when_the_budget_is_gone(self) -> None:
        with self.client.reserve(input_tokens=0, max_output_tokens=4000, **PRICING) as r:
            self.assertTrue(r.extend(1000))  # $0.05: all of it
            self.assertIsNone(r.last_refusal)
            self.assertFalse(r.extend(1))
            assert r.last_refusal is not None
            self.assertEqual(r.last_refusal.reason, "budget_exhausted")
            self.assertEqual(r.last_refusal.limit, "pricing-usd")
            self.assertGreater(r.last_refusal.retry_after, 0.0)
            # The refusal left the reservation as it was.
            self.assertEqual(r.commit(input_tokens=0, output_tokens=5000), 0.05)
        self.assertEqual(r.cost_nusd, 50_000_000)

    def test_commit_response_reads_the_usage(self) -> None:
        resp = {"choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 200}}
        with self.client.reserve(input_tokens=1000, max_output_tokens=1000, **PRICING) as r:
            self.assertEqual(r.commit_response(resp), 0.0045)
        self.assertEqual(r.cost_nusd, 4_500_000)

    def test_charge_records_a_finished_call_or_raises(self) -> None:
        cost = self.client.charge(input_tokens=1000, output_tokens=200, **PRICING)
        self.assertEqual(cost, 0.0045)
        with self.assertRaises(sluice.QuotaExceeded) as caught:
            self.client.charge(input_tokens=0, output_tokens=4551, **PRICING)
        self.assertEqual(caught.exception.limit, "pricing-usd")
        self.assertEqual(self.client.charge(input_tokens=0, output_tokens=4550, **PRICING), 0.0455)

    def test_commit_twice_is_an_error(self) -> None:
        r = self.client.reserve(input_tokens=1, max_output_tokens=1, **PRICING)
        self.assertEqual(r.commit(1, 1), 0.0000125)
        with self.assertRaises(sluice.SluiceError) as caught:
            r.commit(1, 1)
        self.assertEqual(caught.exception.code, "unknown_reservation")
        self.assertIn(f"reservation {r.id} is already settled", str(caught.exception))
        with self.assertRaises(sluice.SluiceError):
            r.extend(1)

    def test_held_reservation_commits_from_another_client(self) -> None:
        r = self.client.reserve(input_tokens=1, max_output_tokens=1, hold_for=60, **PRICING)
        with sluice.Client(self.sluiced.segment) as other:
            held = sluice.Reservation(other, _decision(r.id))
            self.assertEqual(held.commit(1, 1), 0.0000125)
        with self.assertRaises(sluice.SluiceError) as caught:
            r.commit(1, 1)  # settled elsewhere: this client's C call says so
        self.assertIn(f"unknown reservation {r.id}", str(caught.exception))
        self.assertTrue(r.settled)

    def test_bad_arguments_raise_before_any_call(self) -> None:
        with self.assertRaises(ValueError):
            self.client.reserve(input_tokens=-1, max_output_tokens=1, **PRICING)
        with self.assertRaises(ValueError):
            self.client.reserve(input_tokens=2**64, max_output_tokens=1, **PRICING)
        with self.assertRaises(TypeError):
            self.client.reserve(input_tokens=1.5, max_output_tokens=1,  # type: ignore[arg-type]
                                **PRICING)
        with self.assertRaises(TypeError):
            self.client.reserve(input_tokens=1, max_output_tokens=1,
                                team=7)  # type: ignore[arg-type]
        with self.assertRaises(ValueError):
            self.client.reserve(input_tokens=1, max_output_tokens=1, hold_for=0, **PRICING)
        with self.client.reserve(input_tokens=1, max_output_tokens=1, **PRICING) as r:
            with self.assertRaises(ValueError):
                r.commit(input_tokens=-5, output_tokens=0)
            self.assertFalse(r.settled)  # still open: the block's exit cancels it

    def test_more_than_sixteen_attributes_is_invalid(self) -> None:
        many = {f"a{i}": "x" for i in range(17)}
        with self.assertRaises(sluice.InvalidArgument) as caught:
            self.client.reserve(input_tokens=1, max_output_tokens=1, **many)
        self.assertEqual(caught.exception.code, "invalid_argument")
        self.assertIn("17 attributes, at most 16", str(caught.exception))

    def test_a_closed_client_says_so(self) -> None:
        r = self.client.reserve(input_tokens=1, max_output_tokens=1, **PRICING)
        self.client.close()
        self.client.close()  # idempotent
        self.assertTrue(self.client.closed)
        with self.assertRaises(sluice.SluiceError) as caught:
            self.client.reserve(input_tokens=1, max_output_tokens=1, **PRICING)
        self.assertEqual(caught.exception.code, "not_attached")
        self.assertIn("is closed", str(caught.exception))
        with self.assertRaises(sluice.SluiceError):
            r.commit(1, 1)

    def test_threads_share_a_client(self) -> None:
        costs: list[int] = []

        def spend() -> None:
            for _ in range(50):
                with self.client.reserve(input_tokens=10, max_output_tokens=0, **PRICING) as r:
                    r.commit(10, 0)
                    costs.append(r.cost_nusd or 0)

        threads = [threading.Thread(target=spend) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(costs, [25_000] * 200)
        # 200 * $0.000025 = $0.005 spent: $0.045 (4500 output tokens) left.
        with self.assertRaises(sluice.QuotaExceeded):
            self.client.reserve(input_tokens=0, max_output_tokens=4501, **PRICING)
        with self.client.reserve(input_tokens=0, max_output_tokens=4500, **PRICING):
            pass


def _decision(reservation_id: int) -> _native.Decision:
    d = _native.Decision()
    d.reservation_id = reservation_id
    d.admitted = 1
    return d


class Errors(unittest.TestCase):
    def test_missing_segment_is_one_line_naming_the_fix(self) -> None:
        segment = f"sluice-test-py-missing-{os.getpid()}"
        with self.assertRaises(sluice.SluiceError) as caught:
            sluice.Client(segment)
        message = str(caught.exception)
        self.assertEqual(caught.exception.code, "not_found")
        self.assertIn(f"no segment '{segment}'", message)
        self.assertIn("is sluiced running?", message)
        self.assertIn("sluiced --config", message)
        self.assertNotIn("\n", message)

    def test_missing_library_names_sluice_lib(self) -> None:
        with mock.patch.dict(os.environ, {"SLUICE_LIB": "/nonexistent/libsluice.so"}):
            with self.assertRaises(sluice.SluiceError) as caught:
                _native.load()
        message = str(caught.exception)
        self.assertEqual(caught.exception.code, "library_not_found")
        self.assertTrue(message.startswith("cannot load SLUICE_LIB=/nonexistent/libsluice.so: "))
        self.assertNotIn("\n", message)

    def test_no_library_anywhere_names_sluice_lib(self) -> None:
        with mock.patch.dict(os.environ, {"SLUICE_LIB": ""}), mock.patch.object(
            ctypes.util, "find_library", return_value=None
        ):
            with self.assertRaises(sluice.SluiceError) as caught:
                _native.load()
        self.assertEqual(
            str(caught.exception),
            "libsluice.so not found: set SLUICE_LIB to its path "
            "(e.g. SLUICE_LIB=build/clients/c/libsluice.so) or install Sluice with meson install",
        )

    def test_without_sluice_lib_the_loader_path_finds_the_library(self) -> None:
        env = client_env()
        del env["SLUICE_LIB"]
        env["LD_LIBRARY_PATH"] = str(LIBSLUICE.parent)
        env["LIBRARY_PATH"] = str(LIBSLUICE.parent)
        done = subprocess.run(
            [sys.executable, "-c", "import sluice, sluice._native as n; n.load(); print('loaded')"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout, "loaded\n")
