"""A fork server: import the libraries the services share once, then fork each service.

Most of a service's start is importing (SQLAlchemy, pydantic, protobuf, gRPC, structlog:
~1.3 s of CPU of each service's 1.5 to 2.4 s), and `tzurot up` starts four of them on two
cores. `python -m tzurot.runtime.forkserver` imports `PRELOAD` once, then forks a child per
service (inference, without a database, before SQLAlchemy is loaded) that runs
`python -m tzurot.<service>` in place, behind its start gate (`startgate.py`), and exits. Its
launcher (`tzurot.cli.processes`) is the children's subreaper: they become its own children
when the fork server exits.

gRPC must not fork once it has made a channel, a server or its threads: the fork server
imports modules only, and forks only while it is the only thread it has (else it starts
each service as a fresh interpreter instead: the same children, without the sharing).

Environment: `TZUROT_FORK_SERVICES` "service=gate fd,…" and `TZUROT_FORK_REPORT_FD`, a pipe
the server writes "service pid" lines to, one a child, then closes. Only the standard library
is imported at module level: the launcher imports this module for `runs_service`.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import runpy
import signal
import sys
import threading
from pathlib import Path

from tzurot.runtime.startgate import GATE_FD_ENV, take_sigint

SERVICES_ENV = "TZUROT_FORK_SERVICES"
REPORT_FD_ENV = "TZUROT_FORK_REPORT_FD"

PRELOAD_COMMON = (
    "pydantic",
    "pydantic_settings",
    "structlog",
    "grpc",
    "grpc.aio",
    "grpc_health.v1.health",
    "grpc_reflection.v1alpha.reflection",
    "prometheus_client",
    "tzurot.runtime.main",
    "tzurot.runtime.server",
    "tzurot.runtime.client",
    "tzurot.runtime.logging",
    "tzurot.runtime.metrics",
    "google.protobuf.json_format",
    "tzurot.audio",
    "tzurot.v1.inference_pb2_grpc",
    "tzurot.v1.memory_pb2_grpc",
    "tzurot.v1.keyvault_pb2_grpc",
    "tzurot.v1.gateway_pb2",
)
"""Imported before any fork."""

PRELOAD_DATABASE = (
    "sqlalchemy.ext.asyncio",
    "tzurot.db.engine",
    "tzurot.db.direct",
    "tzurot.db.warm",
    # What each engine loads when it is made (its dialect and driver), after the gate.
    "sqlalchemy.dialects.postgresql.asyncpg",
    "asyncpg",
)
"""Imported after the services without a database are forked, before the others: inference
(the slowest to import, openai) starts its own imports while this server loads SQLAlchemy,
which it never uses."""

WITHOUT_DATABASE = frozenset({"inference"})

PRELOAD = PRELOAD_COMMON + PRELOAD_DATABASE
"""What at least two of the four services import anyway, at import or when their engine is
made (`tests/unit/cli/test_fork_server.py` checks it): imported here once instead of once per
service."""


def process_name(service: str) -> str:
    """The name (`/proc/<pid>/comm`, 15 characters) of a service forked here."""
    return f"tzurot-{service}"[:15]


def runs_service(pid: int, service: str) -> bool:
    """Whether process `pid` runs `service`: `python -m tzurot.<service>`, or forked here."""
    proc = Path(f"/proc/{pid}")
    try:
        if (proc / "comm").read_text().strip() == process_name(service):
            return True
        return f"tzurot.{service}".encode() in (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False


def _parse_services(raw: str) -> list[tuple[str, int]]:
    services = []
    for item in raw.split(","):
        name, fd = item.split("=")
        services.append((name, int(fd)))
    return services


def _single_threaded() -> bool:
    return threading.active_count() == 1 and len(os.listdir("/proc/self/task")) == 1


def _fork_all(
    services: list[tuple[str, int]], report: int, *, every: list[tuple[str, int]]
) -> str | None:
    """Forks (or, when not single-threaded, spawns) each of `services` and reports its pid.

    Returns the service to run in a forked child (which closes the gates of `every` other
    service); None in the server once each child is made.
    """
    fork = _single_threaded()
    for name, gate_fd in services:
        if not fork:
            pid = _spawn(name, gate_fd)
        else:
            pid = os.fork()
            if pid == 0:
                # `_interrupted` stays through the service's imports: Python's handler, given
                # back here, let a Ctrl-C land in them as a KeyboardInterrupt, or in a weakref
                # callback ("Exception ignored in ..."); run_service takes SIGINT over.
                os.close(report)
                for other, fd in every:
                    if other != name:
                        with contextlib.suppress(OSError):
                            os.close(fd)
                os.environ[GATE_FD_ENV] = str(gate_fd)
                return name
        os.close(gate_fd)
        os.write(report, f"{name} {pid}\n".encode())
    return None


def _spawn(service: str, gate_fd: int) -> int:
    env = {**os.environ, GATE_FD_ENV: str(gate_fd)}
    os.set_inheritable(gate_fd, True)
    # SIGINT held until its run_service takes it (startgate.py), as `up` spawns this server.
    return os.posix_spawn(
        sys.executable,
        [sys.executable, "-m", f"tzurot.{service}"],
        env,
        setsigmask={signal.SIGINT},
    )


def _run(service: str) -> None:
    """Runs `tzurot.<service>` as `python -m` does, in this (forked) process."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(process_name(service))
    runpy.run_module(f"tzurot.{service}", run_name="__main__", alter_sys=True)


def main() -> None:
    services = _parse_services(os.environ.pop(SERVICES_ENV))
    report = int(os.environ.pop(REPORT_FD_ENV))
    os.set_inheritable(report, False)
    # As Python's gc docs advise before fork without exec: no collection in the server, its
    # objects frozen (never scanned again), so the children's collections neither copy the
    # pages they share nor walk the ~80 k preloaded objects.
    gc.disable()
    first = [(name, fd) for name, fd in services if name in WITHOUT_DATABASE]
    rest = [(name, fd) for name, fd in services if name not in WITHOUT_DATABASE]
    child = None
    for stage, forked in ((PRELOAD_COMMON, first), (PRELOAD_DATABASE, rest)):
        for module in stage:
            importlib.import_module(module)
        gc.freeze()
        child = _fork_all(forked, report, every=services)
        if child is not None:
            break
    if child is None:
        os.close(report)
        return
    gc.enable()
    _run(child)  # its SystemExit ends this process as it would end `python -m`


def _interrupted(_signum: int, _frame: object) -> None:
    """Ctrl-C in `tzurot up`'s terminal while importing (this server, or a service forked
    here until its run_service): `up` stops the rest and says so. The process ends at once,
    unwinding nothing: an import cut by KeyboardInterrupt, or the interpreter's finalization
    after one, ended it by the signal itself now and then (-2), and a KeyboardInterrupt
    raised inside a weakref callback is printed ("Exception ignored in ...") and lost."""
    os._exit(130)


if __name__ == "__main__":
    # `up` spawned this server with SIGINT held (startgate.py): a Ctrl-C while the interpreter
    # started and imported the modules above reaches `_interrupted` only now.
    take_sigint(_interrupted)
    try:
        main()
    except KeyboardInterrupt:  # a forked service, once run_service gave it Python's handler
        sys.exit(130)
