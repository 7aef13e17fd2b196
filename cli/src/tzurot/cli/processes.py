"""The child processes of a local mesh: spawned early behind start gates, opened later.

`tzurot up` spawns every service first thing (this module imports the standard library
only), so the services import their libraries (seconds of CPU each) while `up` itself
imports, makes certificates, starts Postgres and migrates; then it opens each gate with the
service's environment (`tzurot.runtime.startgate`). A respawned service starts at once.

The gated services come from one fork server (`tzurot.runtime.forkserver`), which imports
the libraries they share once and forks each of them; `up` is their subreaper while it runs,
so once the fork server exits they are `up`'s own children, waited for through a pidfd
(`AdoptedChild`). `TZUROT_FORK_SERVER=0`, or a system without subreapers or pidfds (not
Linux), spawns each service as its own interpreter instead. A respawn is always its own
interpreter.

Every child starts with SIGINT held (`startgate.sigint_held`): the terminal's Ctrl-C reaches
it as it reaches `up`, and waits until the child can end quietly on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Protocol

from tzurot.runtime.forkserver import REPORT_FD_ENV, SERVICES_ENV
from tzurot.runtime.startgate import StartGate, sigint_held

SERVICES = ("keyvault", "memory", "inference", "gateway")
"""The mesh's services in start order (the bot joins them when it has a Discord token)."""


FORK_SERVER_ENV = "TZUROT_FORK_SERVER"
"""Set to 0 to spawn each gated service as its own interpreter (no fork server)."""

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


class Child(Protocol):
    """A service process: `asyncio.subprocess.Process`, or a forked child `up` adopted."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


class AdoptedChild:
    """A child this process adopted as subreaper, waited for through a pidfd."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._returncode: int | None = None
        self._loop = asyncio.get_running_loop()
        self._exited: asyncio.Future[int] = self._loop.create_future()
        self._pidfd = os.pidfd_open(pid)
        self._loop.add_reader(self._pidfd, self._reap)

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def returncode(self) -> int | None:
        return self._returncode

    def _reap(self) -> None:
        self._loop.remove_reader(self._pidfd)
        try:
            _, status = os.waitpid(self._pid, 0)
            self._returncode = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped elsewhere: its code is lost
            self._returncode = 255
        os.close(self._pidfd)
        self._exited.set_result(self._returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, sig: int) -> None:
        if self._returncode is None:
            signal.pidfd_send_signal(self._pidfd, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class NeverStarted:
    """A service the fork server did not start (it failed first): exited with its code."""

    def __init__(self, code: int) -> None:
        self._code = code

    @property
    def pid(self) -> int:
        return 0

    @property
    def returncode(self) -> int | None:
        return self._code

    async def wait(self) -> int:
        return self._code

    def send_signal(self, sig: int) -> None:
        """Nothing to signal."""

    def kill(self) -> None:
        """Nothing to kill."""


def _subreaper(on: bool) -> bool:
    """Makes this process the subreaper of its descendants (or stops); False where it cannot."""
    if sys.platform != "linux" or not hasattr(os, "pidfd_open"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _read_to_end(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks)


class Mesh:
    """The child processes of a running local mesh."""

    def __init__(self) -> None:
        self.processes: dict[str, Child] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self._gates: dict[str, StartGate] = {}
        self._fork_server: asyncio.subprocess.Process | None = None
        self._adopting: asyncio.Future[None] | None = None

    async def spawn(self, service: str, env: Mapping[str, str]) -> None:
        """Starts `service` now with `env`."""
        self.envs[service] = dict(env)
        with sigint_held():
            self.processes[service] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", f"tzurot.{service}", env=self.envs[service]
            )

    async def spawn_gated(self, services: Sequence[str]) -> None:
        """Starts each service behind a start gate: it imports, then waits for `open`."""
        if os.environ.get(FORK_SERVER_ENV, "1") != "0" and _subreaper(True):
            await self._fork_gated(services)
            return
        for service in services:
            gate = StartGate()
            self._gates[service] = gate
            try:
                with sigint_held():
                    self.processes[service] = await asyncio.create_subprocess_exec(
                        sys.executable,
                        "-m",
                        f"tzurot.{service}",
                        env={**os.environ, **gate.child_env()},
                        pass_fds=(gate.child_fd,),
                    )
            finally:
                gate.spawned()

    async def _fork_gated(self, services: Sequence[str]) -> None:
        """One fork server starts every service; they are adopted once it exits."""
        gates = {service: StartGate() for service in services}
        self._gates.update(gates)
        report, report_w = os.pipe()
        try:
            with sigint_held():
                self._fork_server = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "tzurot.runtime.forkserver",
                    env={
                        **os.environ,
                        SERVICES_ENV: ",".join(f"{s}={g.child_fd}" for s, g in gates.items()),
                        REPORT_FD_ENV: str(report_w),
                    },
                    pass_fds=(report_w, *(gate.child_fd for gate in gates.values())),
                )
        except BaseException:
            os.close(report)
            raise
        finally:
            os.close(report_w)
            for gate in gates.values():
                gate.spawned()
        self._adopting = asyncio.ensure_future(self._adopt(self._fork_server, report, services))

    async def _adopt(
        self, server: asyncio.subprocess.Process, report: int, services: Sequence[str]
    ) -> None:
        """Reads the fork server's "service pid" lines; once it exited (its children are
        ours then), waits for each through a pidfd. A service it did not report never started."""
        try:
            lines = await asyncio.get_running_loop().run_in_executor(None, _read_to_end, report)
        finally:
            os.close(report)
        code = await server.wait()
        _subreaper(False)  # orphans from now on (e.g. Postgres's) are not ours
        pids = dict(line.split() for line in lines.decode().splitlines())
        for service in services:
            if service in pids:
                self.processes[service] = AdoptedChild(int(pids[service]))
            else:
                self.processes[service] = NeverStarted(code or 1)

    def open(self, service: str, env: Mapping[str, str]) -> None:
        """Lets a gated `service` start with `env` (its whole environment, kept for respawns)."""
        self.envs[service] = dict(env)
        changed = {k: v for k, v in env.items() if os.environ.get(k) != v}
        # A service that exited at its gate (Ctrl-C in this terminal, a crash) has closed the
        # pipe: `wait_any_exit` reports it.
        with contextlib.suppress(BrokenPipeError):
            self._gates.pop(service).open(changed)

    async def respawn(self, service: str) -> None:
        await self.spawn(service, self.envs[service])

    async def made(self) -> None:
        """Waits until every gated service has its process (the fork server made them all).

        A wait cancelled (`up` stopping while the fork server still works) leaves the
        adoption going, for `stop` to finish: cancelled with it, `stop` met a CancelledError."""
        if self._adopting is not None:
            await asyncio.shield(self._adopting)

    async def wait_any_exit(self) -> str:
        await self.made()
        waits = {asyncio.ensure_future(p.wait()): name for name, p in self.processes.items()}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waits[next(iter(done))]

    async def stop(self, grace: float = 8.0) -> None:
        """Closes the gates still shut (those services exit at once), then SIGTERM in reverse
        start order (gateway first), SIGKILL what outlives the grace."""
        for gate in self._gates.values():
            gate.close()
        self._gates.clear()
        if self._adopting is not None:
            if self._fork_server is not None and self._fork_server.returncode is None:
                self._fork_server.kill()  # still importing: it forks nothing now
            with contextlib.suppress(Exception):
                await self._adopting
        for process in reversed(list(self.processes.values())):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                process.kill()
                await process.wait()
