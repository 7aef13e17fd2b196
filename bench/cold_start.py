"""Figure 6: `tzurot up` from spawn to every service healthy, fresh and with existing data.

The mesh is started as `make run` starts it (child processes, embedded Postgres), with the
demo provider so no network is needed; the time is read when `up` prints that it is ready.
Also the CPU all its processes used to get there (`up` and its children, Postgres not
counted), which the machine's load moves far less than the wall time. Goal (issue 16):
≤ 3 s with existing data on a quiet machine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from bench.results import Figure, goal, summarise

REPO = Path(__file__).resolve().parents[1]

UP_PYTHON = "TZUROT_BENCH_UP_PYTHON"
"""Names another checkout's interpreter (its `.venv/bin/python`): `tzurot up` is then that
checkout's, so this bench measures its mesh (a before/after on the same machine in the same
minutes). Its services get none of this bench's settings (`GRPC_EXPERIMENTS`)."""


def up_interpreter() -> tuple[str, dict[str, str]]:
    """The interpreter that runs `tzurot up`, and the environment its services start from."""
    other = os.environ.get(UP_PYTHON)
    if not other:
        return sys.executable, dict(os.environ)
    return other, {k: v for k, v in os.environ.items() if k not in (UP_PYTHON, "GRPC_EXPERIMENTS")}


def free_base_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1]) % 20000 + 30000


@contextmanager
def running_up(
    data_dir: Path,
    base_port: int,
    env: Mapping[str, str] | None = None,
    *,
    demo: bool = True,
    seeds: Path = REPO / "personalities",
) -> Iterator[subprocess.Popen[str]]:
    """`tzurot up` as `make run` starts it (`--demo` unless `demo` is false: then `env` names
    the providers); yields once ready, then stops it (SIGINT)."""
    python, base_env = up_interpreter()
    up = subprocess.Popen(  # noqa: S603 - our own (or UP_PYTHON's) interpreter, no shell
        [
            python,
            "-m",
            "tzurot.cli",
            "up",
            *(["--demo"] if demo else []),
            "--data-dir",
            str(data_dir),
            "--base-port",
            str(base_port),
            "--seeds",
            str(seeds),
        ],
        env={**base_env, "TZUROT_LOG_FORMAT": "json", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert up.stdout is not None
    drain: threading.Thread | None = None
    try:
        for line in up.stdout:
            if line.startswith("Tzurot is up"):
                break
        else:
            raise RuntimeError("tzurot up exited before it was ready")
        # the services share this pipe: keep reading it so a long run never fills it
        drain = threading.Thread(target=_drain, args=(up.stdout,), daemon=True)
        drain.start()
        yield up
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=60)
        if drain is not None:
            drain.join(timeout=5)
        if drain is None or not drain.is_alive():
            up.stdout.close()


def _drain(stream: IO[str]) -> None:
    for _ in stream:
        pass


GOAL_MS = 3000.0


def _cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU of a live process (Linux /proc); with `reaped`, also that of the
    children it has waited for (`up`'s fork server, which exits once it forked the services)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def start_once(data_dir: Path) -> tuple[float, float]:
    """Seconds from spawning `tzurot up` until it reports ready, and the CPU seconds `up`, the
    children it reaped (the fork server) and its service processes (not Postgres) used by then."""
    started = time.perf_counter()
    with running_up(data_dir, free_base_port()) as up:
        wall = time.perf_counter() - started
        cpu = _cpu_seconds(up.pid, reaped=True)
        for pid in _children(up.pid):
            if not _is_postgres(pid):
                with contextlib.suppress(OSError):
                    cpu += _cpu_seconds(pid)
        return wall, cpu


def _is_postgres(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return "postgres" in Path(f"/proc/{pid}/comm").read_text()
    return True


def run(quick: bool) -> list[Figure]:
    repeats = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="tzcold-", dir="/tmp") as tmp:
        data = Path(tmp) / "data"
        fresh, _ = start_once(data)
        warm = [start_once(data) for _ in range(repeats)]
    walls = [w * 1000 for w, _ in warm]
    cpu_s = min(c for _, c in warm)
    best = min(walls)
    return [
        summarise("cold start, fresh .data (initdb)", [fresh * 1000]),
        summarise("cold start, existing .data", walls, cpu_s=round(cpu_s, 2)),
        goal(
            "cold start, existing data",
            best,
            "ms",
            f"<= {GOAL_MS:.0f} ms on a quiet machine",
            best <= GOAL_MS,
            cpu_s=round(cpu_s, 2),
            load=os.getloadavg()[0],
        ),
    ]


def main() -> None:
    for figure in run(quick=True):
        print(figure.name, f"{figure.p50:.0f} ms", figure.extra)


if __name__ == "__main__":
    main()
