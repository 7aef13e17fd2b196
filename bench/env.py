"""What the mesh figures share: Postgres, the in-process mesh with Echo, the floor, quiet logs.

Logs are configured as the services configure them in production (JSON, redacted, level
INFO) and written to /dev/null, so the figures include their cost without flooding the
terminal.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from bench.floor import Floor, floor
from bench.load import GrpcChat, ProviderClock, user_of
from bench.provider_thread import ProviderThread, provider_thread
from tzurot.cli.localdb import create_database, local_postgres
from tzurot.gateway import convert as gw_convert
from tzurot.runtime.logging import configure_logging
from tzurot.testing.e2e import USER_KEY, Harness, actor, echo_mesh
from tzurot.testing.fake_provider import FakeProvider
from tzurot.v1 import gateway_pb2 as gw

MESH, FLOOR = "mesh", "floor"


# Rate limits stay on (their SQL is part of a turn's cost) but never refuse a bench turn.
UNREACHABLE_LIMITS = {
    "rate_user_capacity": 10**9,
    "rate_user_per_minute": 10**9,
    "rate_channel_capacity": 10**9,
    "rate_channel_per_minute": 10**9,
}


@dataclass
class BenchEnv:
    harness: Harness
    grpc: GrpcChat
    floor: Floor
    clock: ProviderClock
    postgres_dir: Path
    """The embedded Postgres's data directory (its postmaster.pid names the server)."""
    provider_thread: ProviderThread | None = None
    """Set when the fake provider runs on its own thread (its CPU can be left out)."""


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    configure_logging("bench", level="INFO", fmt="json")
    saved = sys.stderr
    with open("/dev/null", "w") as sink:
        sys.stderr = sink
        try:
            yield
        finally:
            sys.stderr = saved


@asynccontextmanager
async def bench_env(users: int, *, provider_on_thread: bool = False) -> AsyncIterator[BenchEnv]:
    """The mesh and the floor on one fresh database; `users` users per side with a key each.

    `provider_on_thread`: the fake provider runs on its own thread and event loop
    (`BenchEnv.provider_thread`), so its CPU can be told apart from the services'."""
    with (
        quiet_logs(),
        tempfile.TemporaryDirectory(prefix="tzbench-", dir="/tmp") as tmp,
        local_postgres(Path(tmp) / "pg", delete_on_exit=True) as server_url,
        contextlib.ExitStack() as stack,
    ):
        threaded = None
        if provider_on_thread:
            threaded = stack.enter_context(provider_thread(FakeProvider(valid_keys={USER_KEY})))
        database_url = create_database(server_url, f"bench_{uuid.uuid4().hex[:8]}")
        async with echo_mesh(
            database_url,
            Path(tmp),
            gateway=UNREACHABLE_LIMITS,
            provider=None if threaded is None else threaded.provider,
        ) as harness:
            clock = ProviderClock()
            harness.provider.reply = clock
            assert harness.mesh.memory_app is not None
            embedder = harness.mesh.memory_app.embedder  # one model in the process, both sides
            async with floor(database_url, harness.provider.base_url, embedder) as in_process:
                for n in range(users):
                    await harness.bot.SetWalletKey(
                        gw.SetWalletKeyRequest(
                            actor=actor(user_of(MESH, n)), provider="openrouter", api_key=USER_KEY
                        )
                    )
                    await in_process.wallet.set(
                        gw_convert.actor(actor(user_of(FLOOR, n))),
                        "openrouter",
                        SecretStr(USER_KEY),
                        skip_validation=False,
                    )
                yield BenchEnv(
                    harness, GrpcChat(harness.bot), in_process, clock, Path(tmp) / "pg", threaded
                )
