"""The child processes of a local mesh: spawned early behind start gates, opened later.

`tzurot up` spawns every service first thing (this module imports the standard library
only), so the services import their libraries (seconds of CPU each) while `up` itself
imports, makes certificates, starts Postgres and migrates; then it opens each gate with the
service's environment (`tzurot.runtime.startgate`). A respawned service starts at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping, Sequence

from tzurot.runtime.startgate import StartGate

SERVICES = ("keyvault", "memory", "inference", "gateway")
"""The mesh's services in start order (the bot joins them when it has a Discord token)."""


class Mesh:
    """The child processes of a running local mesh."""

    def __init__(self) -> None:
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self._gates: dict[str, StartGate] = {}

    async def spawn(self, service: str, env: Mapping[str, str]) -> None:
        """Starts `service` now with `env`."""
        self.envs[service] = dict(env)
        self.processes[service] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"tzurot.{service}", env=self.envs[service]
        )

    async def spawn_gated(self, services: Sequence[str]) -> None:
        """Starts each service behind a start gate: it imports, then waits for `open`."""
        for service in services:
            gate = StartGate()
            self._gates[service] = gate
            try:
                self.processes[service] = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    f"tzurot.{service}",
                    env={**os.environ, **gate.child_env()},
                    pass_fds=(gate.child_fd,),
                )
            finally:
                gate.spawned()

    def open(self, service: str, env: Mapping[str, str]) -> None:
        """Lets a gated `service` start with `env` (its whole environment, kept for respawns)."""
        self.envs[service] = dict(env)
        changed = {k: v for k, v in env.items() if os.environ.get(k) != v}
        self._gates.pop(service).open(changed)

    async def respawn(self, service: str) -> None:
        await self.spawn(service, self.envs[service])

    async def wait_any_exit(self) -> str:
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
        for process in reversed(list(self.processes.values())):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                process.kill()
                await process.wait()
