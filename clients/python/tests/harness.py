"""A real sluiced for a test: a policy in a temp dir with a unique segment,
started in the foreground, stopped with SIGTERM, its segment removed.

SLUICE_BUILD_ROOT names the build dir (default: <repo>/build); SLUICE_LIB
the libsluice.so the client under test loads.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
from pathlib import Path
from typing import Dict, Optional

import sluice

REPO = Path(__file__).resolve().parents[3]
BUILD_ROOT = Path(os.environ.get("SLUICE_BUILD_ROOT", str(REPO / "build")))
SLUICED = BUILD_ROOT / "sidecar" / "sluiced"
LIBSLUICE = Path(os.environ.get("SLUICE_LIB", str(BUILD_ROOT / "clients" / "c" / "libsluice.so")))
os.environ["SLUICE_LIB"] = str(LIBSLUICE)  # for this process's sluice, run from meson or not

# gpt-4o costs 2500 nano-dollars an input token and 10000 an output token;
# gpt-4o-mini 150 and 600.
POLICY = """
models:
  gpt-4o:      { input_usd_per_mtok: 2.50, output_usd_per_mtok: 10.00 }
  gpt-4o-mini: { input_usd_per_mtok: 0.15, output_usd_per_mtok: 0.60 }
limits:
  - name: pricing-usd
    match: { team: pricing }
    usd_per_day: 0.05
  - name: search-requests
    match: { team: search }
    requests_per_second: 1
    burst_requests: 2
  - name: research-usd
    match: { team: research }
    usd_per_day: 0.007026
"""

_counter = itertools.count()


class Sluiced:
    """A running sluiced over ``policy`` (limits and models; the segment,
    store and audit blocks are added)."""

    def __init__(self, policy: str = POLICY) -> None:
        if not SLUICED.exists():
            raise RuntimeError(f"no {SLUICED}: build first, or set SLUICE_BUILD_ROOT")
        self.segment = f"sluice-test-py-{os.getpid()}-{next(_counter)}"
        self.dir = Path(tempfile.mkdtemp(prefix=self.segment + "-"))
        self.policy_path = self.dir / "policy.yaml"
        self.policy_path.write_text(
            f"segment:\n  name: {self.segment}\n{policy}"
            f"\nstore:\n  path: {self.dir / 'store.db'}\n"
            f"\naudit:\n  dir: {self.dir / 'audit'}\n"
        )
        self.log_path = self.dir / "sluiced.log"
        self.process: Optional[subprocess.Popen[bytes]] = None
        self._start()

    def _start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [str(SLUICED), "--foreground", "--config", str(self.policy_path),
                 "--tick-ms", "20"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if os.path.exists(f"/dev/shm/{self.segment}") and self._policy_published():
                return
            time.sleep(0.02)
        log_text = self.log_path.read_text(errors="replace")
        self.stop()
        raise RuntimeError(f"sluiced did not publish {self.segment}: {log_text}")

    def _policy_published(self) -> bool:
        try:
            with sluice.Client(self.segment) as client:
                return client.limit_name(0) is not None
        except sluice.SluiceError:
            return False

    def stop(self) -> int:
        """SIGTERM, then removes the segment, its lock and the temp dir; returns the exit status."""
        rc = 0
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                rc = self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                rc = self.process.wait()
        self.process = None
        for path in (f"/dev/shm/{self.segment}", f"/dev/shm/{self.segment}.sluiced.lock"):
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


def client_env() -> Dict[str, str]:
    """The environment for a child Python that uses the client under test."""
    env = dict(os.environ)
    env["SLUICE_LIB"] = str(LIBSLUICE)
    env["PYTHONPATH"] = str(REPO / "clients" / "python")
    return env


class SluicedTestCase(unittest.TestCase):
    """A test with its own sluiced and a client attached to it."""

    def setUp(self) -> None:
        self.sluiced = Sluiced()
        self.client = sluice.Client(self.sluiced.segment)

    def tearDown(self) -> None:
        self.client.close()
        self.assertEqual(self.sluiced.stop(), 0)
