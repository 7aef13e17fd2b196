"""The mesh as deployed, for load figures: a process per service, as `tzurot up` runs them.

`tzurot up` (what `make run` starts) spawns gateway, inference, memory and keyvault as
processes of their own on an embedded Postgres, with mTLS between them; the instant fake LLM
provider runs in another (`bench.provider`), and the caller (the load driver) talks to
gateway from its own process with the bot's certificate, as the bot does. Personality Echo
and the users' keys are the in-process figures' (`bench.env`), rate limits too (on, but
never refusing), logs JSON at INFO to /dev/null.

`Deployed.cpu()` reads each process's CPU seconds from /proc (Linux): the four services, the
provider, Postgres (its postmaster, its live backends and those that exited) and this
process (the driver).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench.cold_start import REPO, free_base_port, running_up
from bench.env import UNREACHABLE_LIMITS
from bench.load import GrpcChat, user_of
from tzurot.runtime.client import secure_channel
from tzurot.runtime.forkserver import runs_service
from tzurot.runtime.tls import load_tls
from tzurot.testing.e2e import ECHO_SEED, USER_KEY, actor
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

SERVICES = ("gateway", "inference", "memory", "keyvault")
SERVERS = (*SERVICES, "postgres", "provider")
"""The processes that serve a turn (everything but the driver)."""
DRIVER = "driver"


@dataclass(frozen=True)
class Deployed:
    gateway_addr: str
    bot_certs: Path
    pids: dict[str, int]
    """The processes in SERVERS by name (postgres: its postmaster)."""
    postgres_dir: Path

    def cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) so far of each of SERVERS, and of this process."""
        seconds = {
            name: process_cpu(pid, with_children=name == "postgres")
            for name, pid in self.pids.items()
        }
        seconds[DRIVER] = time.process_time()
        return seconds

    def servers_cpu(self) -> float:
        """CPU seconds of every process but the driver."""
        cpu = self.cpu()
        return sum(cpu[name] for name in SERVERS)


def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def process_cpu(pid: int, *, with_children: bool = False, live_children: bool = True) -> float:
    """CPU seconds of `pid`; `with_children`: also of its live children (unless not
    `live_children`) and of those it waited for (Postgres's backends come and go with the
    pools' connections)."""
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    if with_children and live_children:
        for child in children(pid):
            with contextlib.suppress(OSError):
                child_fields = _stat(child)
                ticks += int(child_fields[11]) + int(child_fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def threads_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of each thread of `pid` so far, summed by thread name (/proc's comm:
    the main thread has the process's name, grpc's and Python's workers their own)."""
    seconds: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            seconds[name] = seconds.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return seconds


def postmaster(data_dir: Path) -> int:
    """The Postgres server process serving `data_dir`: its pid is the first line of
    postmaster.pid."""
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def _service_pids(parent: int) -> dict[str, int]:
    """The services among the children of `parent` (`tzurot up`), by `-m tzurot.<service>`."""
    found: dict[str, int] = {}
    for child in children(parent):
        with contextlib.suppress(OSError):
            for name in SERVICES:
                if runs_service(child, name):
                    found[name] = child
    return found


@contextmanager
def _provider_process() -> Iterator[tuple[int, str]]:
    """`python -m bench.provider`: yields its pid and base URL; stops it (SIGTERM)."""
    provider = subprocess.Popen(
        [sys.executable, "-m", "bench.provider"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert provider.stdout is not None
    try:
        url = provider.stdout.readline().strip()
        if not url.startswith("http"):
            raise RuntimeError("bench.provider exited before it was listening")
        yield provider.pid, url
    finally:
        provider.terminate()
        provider.wait(timeout=30)
        provider.stdout.close()


def _env(provider_url: str) -> dict[str, str]:
    limits = {f"TZUROT_{name.upper()}": str(value) for name, value in UNREACHABLE_LIMITS.items()}
    return {
        "TZUROT_PROVIDERS": json.dumps({"openrouter": provider_url, "openai": provider_url}),
        "TZUROT_LOG_LEVEL": "INFO",
        **limits,
    }


@contextmanager
def deployed_mesh(env: Mapping[str, str] | None = None) -> Iterator[Deployed]:
    """`tzurot up` with Echo as its only seed and the fake provider in its own process;
    `env` is added to the services' environment."""
    with (
        tempfile.TemporaryDirectory(prefix="tzrate-", dir="/tmp") as tmp,
        _provider_process() as (provider_pid, provider_url),
    ):
        seeds = Path(tmp) / "seeds"
        seeds.mkdir()
        (seeds / "echo.yaml").write_bytes(ECHO_SEED)
        data, port = Path(tmp) / "data", free_base_port()
        with running_up(
            data, port, {**_env(provider_url), **(env or {})}, demo=False, seeds=seeds
        ) as up:
            pids = _service_pids(up.pid)
            missing = set(SERVICES) - set(pids)
            if missing:
                raise RuntimeError(f"tzurot up has no process for {sorted(missing)}")
            pids["postgres"] = postmaster(data / "pg")
            pids["provider"] = provider_pid
            yield Deployed(f"127.0.0.1:{port}", data / "certs" / "bot", pids, data / "pg")


@asynccontextmanager
async def bot_chat(deployed: Deployed, *, users: int, prefix: str) -> AsyncIterator[GrpcChat]:
    """A channel to gateway with the bot's certificate; `users` users with a key each."""
    async with secure_channel(
        deployed.gateway_addr,
        load_tls(deployed.bot_certs),
        server_identity="gateway",
        default_timeout=30.0,
    ) as channel:
        stub = gw_grpc.GatewayServiceStub(channel)
        for n in range(users):
            request = gw.SetWalletKeyRequest(
                actor=actor(user_of(prefix, n)), provider="openrouter", api_key=USER_KEY
            )
            await _when_available(functools.partial(stub.SetWalletKey, request))
        yield GrpcChat(stub)


async def _when_available(call: Callable[[], Awaitable[object]], within: float = 60.0) -> None:
    """`call`, again while it answers UNAVAILABLE (gateway's channels still connecting
    right after `up` is ready), for at most `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            await call()
            return
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


async def idle(cpu_seconds: Callable[[], float], limit_seconds: float = 60.0) -> None:
    """Waits until `cpu_seconds` (the processes watched) grows by under 10 % of a core in
    half a second (background work such as formation done), or `limit_seconds`."""
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        before = cpu_seconds()
        await asyncio.sleep(0.5)
        if cpu_seconds() - before < 0.05:
            return
