"""Issue 14: how fast the CLI starts, and the first answer after start against the next ones.

- `tzurot --help` and `tzurot chat --help`: process spawn to exit (lazy imports: no gRPC, no
  stubs until a command needs them). Goal: well under a second.
- `tzurot chat -m` against a running `tzurot up --demo`: the first turn right after the mesh
  reports ready, then steady turns (each is a new CLI process, so CLI start is in both; the
  difference is what start-up left cold: models, encodings, connections).
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from bench.cold_start import free_base_port, running_up, up_interpreter
from bench.results import Figure, summarise


def _timed(args: list[str], env: dict[str, str]) -> float:
    """Milliseconds from spawning `python -m tzurot.cli <args>` until it exits (must succeed)."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own (or UP_PYTHON's) interpreter, no shell
        [up_interpreter()[0], "-m", "tzurot.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"tzurot {' '.join(args)} failed: {done.stderr[-500:]}")
    return elapsed


def run(quick: bool) -> list[Figure]:
    repeats = 3 if quick else 10
    env = {**up_interpreter()[1], "TZUROT_LOG_FORMAT": "json"}
    figures = [
        summarise(
            "cli start: tzurot --help",
            [_timed(["--help"], env) for _ in range(repeats)],
            goal="< 1000 ms",
        ),
        summarise(
            "cli start: tzurot chat --help",
            [_timed(["chat", "--help"], env) for _ in range(repeats)],
            goal="< 1000 ms",
        ),
    ]
    with tempfile.TemporaryDirectory(prefix="tzcli-", dir="/tmp") as tmp:
        data = Path(tmp) / "data"
        base = free_base_port()
        with running_up(data, base):
            chat_env = {
                **env,
                "TZUROT_GATEWAY_ADDR": f"127.0.0.1:{base}",
                "TZUROT_CLI_TLS_DIR": str(data / "certs" / "cli"),
            }

            def turn(n: int) -> float:
                return _timed(["chat", "Sage", "--user", f"bench{n}", "-m", "hello"], chat_env)

            first = turn(0)
            steady = [turn(n) for n in range(1, repeats + 1)]
    return [
        *figures,
        summarise("tzurot chat -m, first turn after start", [first]),
        summarise(
            "tzurot chat -m, steady turns",
            steady,
            first_over_steady_p50=round(first / sorted(steady)[len(steady) // 2], 2),
        ),
    ]
