"""A deletion whose gateway is killed after memory forgot (memory's tombstone in place) and
before gateway deleted its row is finished by another replica's sweep once its lease runs
out, without anyone asking again; meanwhile nothing is answered that memory would silently
not keep: the user is refused, the personality found by no name (admin/deletions.py).

The gateway that takes the deletion is a real process (`python -m tzurot.gateway`, killed
with SIGKILL) beside the in-process mesh, whose own gateway replica sweeps. Real memory,
keyvault and Postgres. A lock the test holds on one of the turns memory is to delete makes
memory's forget stop after its tombstone committed (its deletes wait for the lock, a
sweep's too), which is where the gateway is killed.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
import sqlalchemy as sa

from tzurot.db.engine import create_engine
from tzurot.gateway.cache import CATALOG_TTL_SECONDS
from tzurot.runtime.client import secure_channel
from tzurot.runtime.errors import from_rpc_error
from tzurot.runtime.tls import load_tls
from tzurot.testing.e2e import Harness, actor, converse, echo_mesh, request, set_key
from tzurot.testing.postgres import DatabaseFactory
from tzurot.testing.processes import ServiceProcess, gateway_process
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import gateway_pb2_grpc as gw_grpc

pytestmark = pytest.mark.e2e

LEASE = 3.0
# The turns each forget deletes, locked by the test so that it stops after its tombstone.
LOCK_TURNS = {
    "user": "SELECT 1 FROM memory.turns WHERE user_id = :id FOR UPDATE",
    "personality": "SELECT 1 FROM memory.turns WHERE personality_id = :id FOR UPDATE",
}


@pytest.fixture
async def mesh(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    replica = {"deletion_lease_seconds": LEASE, "sweep_seconds": 0.5}
    async with echo_mesh(fresh_database(), tmp_path, gateway=replica) as h:
        await set_key(h)
        yield h


@pytest.fixture
async def gateway(mesh: Harness, tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    process = gateway_process(
        mesh.mesh, tmp_path / "gateway.log", {"TZUROT_DELETION_LEASE_SECONDS": str(LEASE)}
    )
    await process.start(mesh.mesh.pki)
    try:
        yield process
    finally:
        await process.stop()


async def count(database: str, sql: str, **params: object) -> int:
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(sa.text(sql), params) or 0)
    finally:
        await engine.dispose()


async def text(database: str, sql: str) -> str:
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            return str(await conn.scalar(sa.text(sql)))
    finally:
        await engine.dispose()


async def eventually(
    database: str, sql: str, expected: int, params: Mapping[str, object] | None = None
) -> None:
    """Waits (60 s at most) until `sql` counts `expected`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60.0
    while (found := await count(database, sql, **(params or {}))) != expected:
        assert loop.time() < deadline, f"{sql}: {found}, not {expected}, after 60 s"
        await asyncio.sleep(0.1)


def stub(mesh: Harness, process: ServiceProcess, identity: str) -> gw_grpc.GatewayServiceAsyncStub:
    channel = secure_channel(
        process.addr,
        load_tls(mesh.mesh.pki / identity),
        server_identity="gateway",
        default_timeout=60,
    )
    _channels.append(channel)
    return gw_grpc.GatewayServiceStub(channel)


# Kept alive: a garbage-collected grpc.aio channel closes itself under its stub.
_channels: list[grpc.aio.Channel] = []


@asynccontextmanager
async def killed_after_memory_forgot(
    mesh: Harness,
    gateway: ServiceProcess,
    deletion: Callable[[], Awaitable[Any]],
    tombstone: Mapping[str, str],
) -> AsyncIterator[None]:
    """Runs `deletion` on the gateway process, holding the turns memory will delete
    (LOCK_TURNS) until memory's `tombstone` is in place; the body runs then (the deletion
    cannot end while the lock is held); then SIGKILL, and the lock goes."""
    db = mesh.mesh.database_url
    engine = create_engine(db)
    try:
        async with engine.connect() as blocker:
            locked = sa.text(LOCK_TURNS[tombstone["kind"]])
            assert (await blocker.execute(locked, {"id": tombstone["id"]})).all()
            deleting = asyncio.ensure_future(deletion())
            await eventually(
                db,
                "SELECT count(*) FROM memory.forgotten WHERE kind = :kind AND id = :id",
                1,
                tombstone,
            )
            yield
            await gateway.signal(signal.SIGKILL)
            await gateway.wait()
            deleting.cancel()
            await blocker.rollback()
    finally:
        await engine.dispose()


def refused(caught: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> tuple[Any, str]:
    return caught.value.code(), from_rpc_error(caught.value).reason


async def test_a_data_deletion_whose_gateway_was_killed_after_memory_forgot_her_finishes(
    mesh: Harness, gateway: ServiceProcess
) -> None:
    db = mesh.mesh.database_url
    await converse(mesh, request("my cat is called Pixel"))
    user_id = await text(db, "SELECT id::text FROM core.users")
    hers = {"u": user_id}
    user_row = "SELECT count(*) FROM core.users WHERE id = CAST(:u AS uuid)"
    assert await count(db, "SELECT count(*) FROM memory.turns WHERE user_id = :u", **hers) == 2

    async with killed_after_memory_forgot(
        mesh,
        gateway,
        lambda: stub(mesh, gateway, "bot").DeleteUserData(
            gw.DeleteUserDataRequest(actor=actor("alice"))
        ),
        {"kind": "user", "id": user_id},
    ):
        assert await count(db, user_row, **hers) == 1  # gateway still knows her
        # Meanwhile, on the other replica, she is refused: her key back and a message that
        # memory would silently not keep.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await set_key(mesh)
        assert refused(caught) == (grpc.StatusCode.PERMISSION_DENIED, "USER_DATA_DELETING")
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await converse(mesh, request("are you still there?"))
        assert refused(caught) == (grpc.StatusCode.PERMISSION_DENIED, "USER_DATA_DELETING")
        assert "being deleted" in from_rpc_error(caught.value).message

    # The living replica's sweep finishes it once the killed request's lease ran out.
    await eventually(db, user_row, 0, hers)
    for table in ("memory.turns", "memory.memories", "vault.api_keys"):
        where = f"SELECT count(*) FROM {table} WHERE user_id = :u"  # noqa: S608 - our SQL
        assert await count(db, where, **hers) == 0, table
    assert await count(db, "SELECT count(*) FROM core.jobs") == 0  # the refused one: no job

    # She comes back: a new user, answered and kept.
    await set_key(mesh)
    await converse(mesh, request("hello again"))
    assert await count(db, "SELECT count(*) FROM memory.turns WHERE user_id <> :u", **hers) == 2


async def test_a_personality_deletion_whose_gateway_was_killed_after_memory_forgot_it_finishes(
    mesh: Harness, gateway: ServiceProcess
) -> None:
    db = mesh.mesh.database_url
    await converse(mesh, request("remember the tide tables"))
    echo = await text(db, "SELECT id::text FROM core.personalities WHERE slug = 'echo'")
    its = {"p": echo}
    echo_row = "SELECT count(*) FROM core.personalities WHERE id = CAST(:p AS uuid)"
    echo_turns = "SELECT count(*) FROM memory.turns WHERE personality_id = :p"
    assert await count(db, echo_turns, **its) == 2
    await set_key(mesh, who="bob")

    async with killed_after_memory_forgot(
        mesh,
        gateway,
        lambda: stub(mesh, gateway, "cli").DeletePersonality(  # the operator
            gw.DeletePersonalityRequest(personality="echo")
        ),
        {"kind": "personality", "id": echo},
    ):
        assert await count(db, echo_row, **its) == 1  # gateway still has it
        # The other replica may know Echo from its catalog cache for its TTL (the window
        # every deletion has, tombstones cover it); past it, Echo answers nobody.
        await asyncio.sleep(CATALOG_TTL_SECONDS + 0.5)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await converse(mesh, request("are you there, Echo?", who="bob"))
        assert refused(caught) == (grpc.StatusCode.NOT_FOUND, "PERSONALITY_NOT_FOUND")

    await eventually(db, echo_row, 0, its)
    assert await count(db, echo_turns, **its) == 0
    bobs = "SELECT count(*) FROM core.jobs WHERE request_content = 'are you there, Echo?'"
    assert await count(db, bobs) == 0  # refused: no job, nothing delivered
