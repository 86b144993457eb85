"""examples/python/*.py run against a real sluiced, with exact outcomes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import unittest
from pathlib import Path
from typing import List

import sluice

from .harness import REPO, Sluiced, client_env

EXAMPLES = REPO / "examples" / "python"


def run(args: List[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env={**client_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


class ExamplesAgainstSluiced(unittest.TestCase):
    def setUp(self) -> None:
        self.sluiced = Sluiced()
        self.segment = self.sluiced.segment

    def tearDown(self) -> None:
        self.assertEqual(self.sluiced.stop(), 0)

    def test_service_loop_backs_off_when_rate_limited(self) -> None:
        done = run([str(EXAMPLES / "service_loop.py"), "--segment", self.segment,
                    "--team", "search", "--seconds", "1", "--rps", "20"])
        self.assertEqual(done.returncode, 0, done.stderr)
        # A burst of 2 at 1 request a second: 2 admitted, then a rejection
        # that says to wait about a second, which is the rest of the run.
        self.assertRegex(done.stdout, r"^service_loop: team=search admitted=[23] "
                                      r"rejected\[rate_limited\]=1 decision_p50=\d+ns p99=\d+ns")

    def test_pricing_agent_cuts_a_stream_off_when_extend_is_refused(self) -> None:
        with sluice.Client(self.segment) as client:  # leave $0.025 of the $0.05
            client.charge(team="pricing", model="gpt-4o", input_tokens=0, output_tokens=2500)
        done = run([str(EXAMPLES / "pricing_agent.py"), "--segment", self.segment,
                    "--pace-ms", "0"])
        self.assertEqual(done.returncode, 0, done.stderr)
        # Call 1 costs $0.0117; call 2 is reserved but its one extend is
        # refused, so it commits its first 800 tokens ($0.0117); call 3
        # cannot be afforded.
        self.assertEqual(done.stdout, "pricing_agent: calls=2 spent=$0.023400 streams_cut_off=1 "
                                      "rate_waits=0 stopped=budget_exhausted\n")

    def test_batch_job_charges_its_usage_once_at_exit(self) -> None:
        done = run([str(EXAMPLES / "batch_job.py"), "--segment", self.segment, "--items", "3",
                    "--pace", "0"])
        self.assertEqual(done.returncode, 0, done.stderr)
        # 2760 input tokens at 150 nusd and 1020 output tokens at 600 nusd.
        self.assertEqual(done.stdout,
                         "batch_job: processed 3 items (2760 in, 1020 out); charging at exit\n"
                         "batch_job: charged $0.001026 for 2760 in, 1020 out\n")
        # Of research-usd's $0.007026, exactly $0.006 (10000 output tokens) is left.
        with sluice.Client(self.segment) as client:
            with self.assertRaises(sluice.QuotaExceeded):
                client.reserve(team="research", model="gpt-4o-mini", input_tokens=0,
                               max_output_tokens=10001)
            with client.reserve(team="research", model="gpt-4o-mini", input_tokens=0,
                                max_output_tokens=10000):
                pass

    def test_batch_job_charges_at_exit_on_sigterm(self) -> None:
        job = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "batch_job.py"), "--segment", self.segment,
             "--items", "1000", "--pace", "0.1"],
            env=client_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        # Attached (the segment is mapped), then a few items in: well within budget.
        maps = Path(f"/proc/{job.pid}/maps")
        deadline = time.monotonic() + 30
        while f"/dev/shm/{self.segment}" not in maps.read_text():
            self.assertLess(time.monotonic(), deadline, "batch_job never attached")
            time.sleep(0.02)
        time.sleep(0.35)
        job.send_signal(signal.SIGTERM)
        out, err = job.communicate(timeout=60)
        self.assertEqual(job.returncode, 128 + signal.SIGTERM, err)
        self.assertRegex(out, r"^batch_job: charged \$0\.\d{6} for \d+ in, \d+ out\n$")

    def test_missing_segment_is_one_line_and_exit_2(self) -> None:
        for example in ("service_loop.py", "pricing_agent.py", "batch_job.py"):
            done = run([str(EXAMPLES / example), "--segment", self.segment + "-missing"])
            self.assertEqual(done.returncode, 2, example)
            self.assertEqual(done.stdout, "", example)
            name = example.removesuffix(".py")
            self.assertTrue(done.stderr.startswith(f"{name}: no segment '{self.segment}-missing'"),
                            done.stderr)
            self.assertEqual(done.stderr.count("\n"), 1, done.stderr)


class ExamplesWithoutSluiced(unittest.TestCase):
    def test_help(self) -> None:
        for example in ("service_loop.py", "pricing_agent.py", "batch_job.py"):
            done = run([str(EXAMPLES / example), "--help"])
            self.assertEqual(done.returncode, 0, example)
            self.assertIn("--segment", done.stdout, example)

    def test_missing_library_is_one_line_naming_sluice_lib(self) -> None:
        done = run([str(EXAMPLES / "service_loop.py")], SLUICE_LIB="/nonexistent/libsluice.so")
        self.assertEqual(done.returncode, 2)
        self.assertTrue(done.stderr.startswith(
            "service_loop: cannot load SLUICE_LIB=/nonexistent/libsluice.so: "), done.stderr)
        self.assertEqual(done.stderr.count("\n"), 1, done.stderr)

    def test_bad_flags_exit_2(self) -> None:
        done = run([str(EXAMPLES / "pricing_agent.py"), "--max-calls", "0"])
        self.assertEqual(done.returncode, 2)
        self.assertIn("--max-calls must be positive", done.stderr)
