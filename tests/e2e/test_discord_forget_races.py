"""Answers that reach memory after a deletion store nothing (memory's tombstones), through the
fake Discord, the real bot and the whole mesh on one real Postgres.

- A confirmation racing `/settings data delete`: gateway has read the job to confirm, her data
  deletion runs to its end (memory's ForgetUser included), then the exchange reaches memory.
- An answer started, generated and confirmed while her personality is being deleted (after
  memory forgot it, before gateway deletes its row): what another gateway replica whose
  catalog still holds the personality for 5 s would do (this mesh's one gateway hides a
  personality being deleted at once, admin/deletions.py: the test lifts that mark while the
  answer runs, as that replica does not see it).

Each is made to happen by holding one of gateway's calls to memory (its `GrpcMemory`) while the
other request runs; both requests are the product's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import World, member_actor, running_bot
from tzurot.testing.fake_discord import Json
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

# What memory holds of an exchange: by its job, and by its user or personality.
BY_JOB = ("turns", "formation_outbox", "fact_outbox", "memory_uses")


async def scalar(world: World, sql: str, **params: object) -> Any:
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(sa.text(sql), params)
    finally:
        await engine.dispose()


async def left_of(world: World, job_ids: list[str], column: str, value: str) -> dict[str, int]:
    """Memory's rows of these jobs, and the turns and memories whose `column` is `value`."""
    counts = {}
    for table in BY_JOB:
        sql = f"SELECT count(*) FROM memory.{table} WHERE job_id = ANY(:jobs)"  # noqa: S608
        counts[f"{table} of the jobs"] = int(await scalar(world, sql, jobs=job_ids))
    for table in ("turns", "memories"):
        sql = f"SELECT count(*) FROM memory.{table} WHERE {column} = :v"  # noqa: S608
        counts[f"{table} of {column}"] = int(await scalar(world, sql, v=value))
    return counts


async def settled(world: World) -> None:
    """Waits until formation has nothing left to form (what it would form from an orphan
    exchange is counted too)."""
    for _ in range(600):
        if not await scalar(world, "SELECT count(*) FROM memory.formation_outbox"):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("formation did not drain")


def gateway_memory(world: World) -> Any:
    """Gateway's client to memory: one `GrpcMemory`, which its conversation path and its admin
    share (typed by neither's port alone)."""
    app = world.mesh.gateway_app
    assert app is not None
    return app.gateway._memory


@asynccontextmanager
async def as_a_replica_with_it_cached(world: World, personality_id: str) -> AsyncIterator[None]:
    """Another replica whose catalog cache still holds the personality does not see that it
    is being deleted: its deletion's mark is lifted meanwhile, then put back."""
    engine = create_engine(world.mesh.database_url)
    mark = "UPDATE core.personalities SET deletion_requested_at = :at WHERE id = CAST(:p AS uuid)"
    try:
        async with engine.begin() as conn:
            marked = await conn.scalar(
                sa.text(
                    "SELECT deletion_requested_at FROM core.personalities"
                    " WHERE id = CAST(:p AS uuid)"
                ),
                {"p": personality_id},
            )
            assert marked is not None  # recorded before memory was asked
            await conn.execute(sa.text(mark), {"at": None, "p": personality_id})
        try:
            yield
        finally:
            async with engine.begin() as conn:
                await conn.execute(sa.text(mark), {"at": marked, "p": personality_id})
    finally:
        await engine.dispose()


async def chat(world: World, user: Json, slug: str, text: str) -> gw.Job:
    said = await world.discord.say(world.general, user, f"@{slug} {text}")
    return await world.delivered(f"{said.id}:{slug}")


async def test_a_confirmation_racing_her_data_deletion_stores_no_turn(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.memory_ready()
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    memory = gateway_memory(world)
    store_exchange = memory.store_exchange
    raced: list[str] = []
    done = asyncio.Event()

    async def her_data_deleted_first(**exchange: Any) -> None:
        """Gateway has read her job and is confirming it: her data deletion runs to its end
        before the exchange reaches memory."""
        if exchange["user_id"] != hers or raced:
            await store_exchange(**exchange)
            return
        raced.append(exchange["job_id"])
        try:
            await world.cli.DeleteUserData(
                gw.DeleteUserDataRequest(actor=member_actor(world.alice))
            )
            await store_exchange(**exchange)
        finally:
            done.set()

    async with running_bot(world):
        await chat(world, world.alice, "lilith", "my cat is called Pixel and she is grey")
        hers = str(
            await scalar(
                world,
                "SELECT id::text FROM core.users WHERE platform_user_id = :p",
                p=str(world.alice["id"]),
            )
        )
        monkeypatch.setattr(memory, "store_exchange", her_data_deleted_first)
        await world.discord.say(world.general, world.alice, "@lilith I sail a boat called Kestrel")
        await asyncio.wait_for(done.wait(), 60)
        await chat(world, world.bob, "lilith", "I grow tomatoes on my balcony")
        await settled(world)

    assert await left_of(world, raced, "user_id", hers) == {
        "turns of the jobs": 0,
        "formation_outbox of the jobs": 0,
        "fact_outbox of the jobs": 0,
        "memory_uses of the jobs": 0,
        "turns of user_id": 0,
        "memories of user_id": 0,
    }
    assert not await scalar(
        world, "SELECT count(*) FROM core.users WHERE id = CAST(:u AS uuid)", u=hers
    )
    bobs = await scalar(
        world,
        "SELECT count(*) FROM memory.turns WHERE content = :c",
        c="I grow tomatoes on my balcony",
    )
    assert bobs == 1


async def test_an_answer_confirmed_while_her_personality_is_deleted_stores_no_turn(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await world.memory_ready()
    await world.set_key(world.alice)
    created = await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=member_actor(world.alice),
            personality=common.Personality(
                slug="plover", display_name="Plover", system_prompt="You are Plover.", public=False
            ),
        )
    )
    plover = created.personality.id
    memory = gateway_memory(world)
    forget_personality = memory.forget_personality
    store_exchange = memory.store_exchange
    late: list[gw.Job] = []
    jobs: list[str] = []

    async def recorded(**exchange: Any) -> None:
        if exchange["personality_id"] == plover:
            jobs.append(exchange["job_id"])
        await store_exchange(**exchange)

    async def answered_meanwhile(personality_id: str) -> int:
        """Memory forgot Plover; before gateway deletes its row, an answer from it is
        started, generated, posted and confirmed (its row and a catalog still name it)."""
        forgotten = int(await forget_personality(personality_id))
        async with as_a_replica_with_it_cached(world, personality_id):
            late.append(await chat(world, world.alice, "plover", "I sail a boat called Kestrel"))
        return forgotten

    monkeypatch.setattr(memory, "store_exchange", recorded)
    async with running_bot(world):
        await chat(world, world.alice, "plover", "my cat is called Pixel and she is grey")
        monkeypatch.setattr(memory, "forget_personality", answered_meanwhile)
        await world.cli.DeletePersonality(
            gw.DeletePersonalityRequest(actor=member_actor(world.alice), personality="plover")
        )
        await settled(world)

    assert [job.status for job in late] == [common.JOB_STATUS_DELIVERED]
    assert len(jobs) == 2  # the first answer, and the one confirmed meanwhile
    assert await left_of(world, jobs, "personality_id", plover) == {
        "turns of the jobs": 0,
        "formation_outbox of the jobs": 0,
        "fact_outbox of the jobs": 0,
        "memory_uses of the jobs": 0,
        "turns of personality_id": 0,
        "memories of personality_id": 0,
    }
