"""Figure 6: `tzurot up` from spawn to every service healthy, fresh and with existing data.

The mesh is started as `make run` starts it (child processes, embedded Postgres), with the
demo provider so no network is needed; the time is read when `up` prints that it is ready.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from bench.results import Figure, summarise

REPO = Path(__file__).resolve().parents[1]


def free_base_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1]) % 20000 + 30000


@contextmanager
def running_up(
    data_dir: Path, base_port: int, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`tzurot up --demo` as `make run` starts it; yields once ready, then stops it (SIGINT)."""
    up = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
        [
            sys.executable,
            "-m",
            "tzurot.cli",
            "up",
            "--demo",
            "--data-dir",
            str(data_dir),
            "--base-port",
            str(base_port),
            "--seeds",
            str(REPO / "personalities"),
        ],
        env={**os.environ, "TZUROT_LOG_FORMAT": "json", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert up.stdout is not None
    try:
        for line in up.stdout:
            if line.startswith("Tzurot is up"):
                break
        else:
            raise RuntimeError("tzurot up exited before it was ready")
        yield up
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
        up.stdout.close()


def start_once(data_dir: Path) -> float:
    """Seconds from spawning `tzurot up` until it reports ready."""
    started = time.perf_counter()
    with running_up(data_dir, free_base_port()):
        return time.perf_counter() - started


def run(quick: bool) -> list[Figure]:
    repeats = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="tzcold-", dir="/tmp") as tmp:
        data = Path(tmp) / "data"
        fresh = start_once(data) * 1000
        warm = [start_once(data) * 1000 for _ in range(repeats)]
    return [
        summarise("cold start, fresh .data (initdb)", [fresh]),
        summarise("cold start, existing .data", warm, goal="<= 5000 ms"),
    ]
