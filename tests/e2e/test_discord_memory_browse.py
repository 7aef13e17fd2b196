"""/memory browse, delete and search through the fake Discord and the whole mesh: pages newest
first of only the user's own memories, one deleted (and only by its owner), and a search
that changes nothing stored, while use in a delivered answer does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tzurot.bot.commands.common import NOT_YET
from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.fake_discord import FakeInteraction
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

pytestmark = pytest.mark.e2e

BASE = datetime(2026, 1, 1, tzinfo=UTC)
TEAPOT = "Alice keeps a green teapot named Ferdinand on her windowsill"


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    text = "\n".join(t for t in interaction.texts() if t)
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text


def _actor(user: dict[str, Any]) -> common.Actor:
    return common.Actor(user_id=str(user["id"]), display_name=str(user["username"]))


async def seed(
    world: World,
    user: dict[str, Any],
    personality: str,
    texts: list[str],
    *,
    salience: float = 0.0,
    start: datetime = BASE,
) -> list[str]:
    """Memories of `user` for `personality`, one a day from BASE (the last is the newest)."""
    user_id = (await world.cli.GetUser(gw.GetUserRequest(actor=_actor(user)))).user.id
    found = await world.cli.GetPersonality(gw.GetPersonalityRequest(personality=personality))
    memory = mem_grpc.MemoryServiceStub(await world.mesh.channel("gateway", target="memory"))
    ids = []
    for day, text in enumerate(texts):
        given = common.Memory(
            id=str(uuid.uuid4()),
            personality_id=found.personality.id,
            user_id=user_id,
            text=text,
            salience=salience,
        )
        given.created_at.FromDatetime(start + timedelta(days=day))
        added = await memory.AddMemory(mem.AddMemoryRequest(memory=given), timeout=120)
        ids.append(added.memory.id)
    return ids


async def stored_state(world: World, ids: list[str]) -> dict[str, Any]:
    """What a search must not touch: salience and last access of the memories, their links,
    and the record of use."""
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "select id::text, salience, last_accessed_at from memory.memories "
                    "where id::text = any(:ids) order by id"
                ),
                {"ids": ids},
            )
            links = await conn.scalar(
                sa.text(
                    "select count(*) from memory.waypoints "
                    "where src_id::text = any(:ids) or dst_id::text = any(:ids)"
                ),
                {"ids": ids},
            )
            uses = await conn.scalar(
                sa.text(
                    "select count(*) from memory.memory_uses "
                    "where memory_ids && cast(:ids as uuid[])"
                ),
                {"ids": ids},
            )
    finally:
        await engine.dispose()
    return {"memories": [tuple(r) for r in rows], "links": links, "uses": uses}


async def test_browse_pages_newest_first_and_deletes_one(world: World) -> None:
    await world.memory_ready()
    facts = [f"Fact {n:02}: Alice collects item number {n}" for n in range(12)]
    ids = await seed(world, world.alice, "Lilith", facts)
    await seed(world, world.alice, "Sage", ["Alice told Sage about her allotment"])
    await seed(world, world.bob, "Lilith", ["Bob once fell into a pond"])
    async with running_bot(world):

        async def browse(user: dict[str, Any], **options: Any) -> str:
            asked = await world.discord.slash(
                world.general,
                user,
                "memory",
                {"personality": "Lilith", **options},
                subcommand=["browse"],
            )
            return await answered(world, asked)

        first = await browse(world.alice)
        second = await browse(world.alice, page=2)
        typed = await world.discord.slash(
            world.general,
            world.alice,
            "memory",
            {"personality": "lilith", "memory": "Fact 11"},
            subcommand=["delete"],
            focused="memory",
        )
        await world.discord.wait_until(lambda: bool(typed.choices()))
        # Bob cannot delete Alice's memory, even knowing its id.
        bobs = await world.discord.slash(
            world.general,
            world.bob,
            "memory",
            {"personality": "lilith", "memory": ids[11]},
            subcommand=["delete"],
        )
        refused = await answered(world, bobs)
        after_bob = await browse(world.alice)
        deleted = await world.discord.slash(
            world.general,
            world.alice,
            "memory",
            {"personality": "lilith", "memory": typed.choices()[0]["value"]},
            subcommand=["delete"],
        )
        gone = await answered(world, deleted)
        after = await browse(world.alice)
        bobs_own = await browse(world.bob)
    lines = first.splitlines()
    assert "page 1 of 2, 12 in all" in lines[0]
    assert lines[1].startswith("1. ")
    assert "Fact 11" in lines[1]  # the newest first
    assert "Fact 02" in lines[10]
    assert "Fact 01" not in first
    assert f"`{ids[11][:8]}`" in lines[1]
    assert "page:2" in first  # says how to see older ones
    assert "page 2 of 2, 12 in all" in second
    assert "11. " in second
    assert "Fact 01" in second
    assert "Fact 00" in second
    assert "Fact 02" not in second
    assert "allotment" not in first + second  # another personality's memory
    assert "pond" not in first + second  # another user's memory
    assert [c["value"] for c in typed.choices()] == [ids[11]]
    assert "no memory" in refused
    assert "12 in all" in after_bob  # Bob's attempt deleted nothing
    assert gone == f"Deleted from **Lilith** (`lilith`)'s memories: {facts[11]}"
    assert "11 in all" in after
    assert "Fact 11" not in after
    assert "Fact 10" in after.splitlines()[1]
    assert "(page 1 of 1, 1 in all)" in bobs_own
    assert "pond" in bobs_own


async def test_a_search_changes_nothing_but_use_in_an_answer_is_recorded(world: World) -> None:
    await world.set_key(world.alice)
    await world.memory_ready()
    ids = await seed(
        world,
        world.alice,
        "Lilith",
        [TEAPOT, "Alice keeps a spare teapot lid in the cupboard", "Alice dislikes mornings"],
    )
    before = await stored_state(world, ids)
    async with running_bot(world):
        searched = await world.discord.slash(
            world.general,
            world.alice,
            "memory",
            {"personality": "Lilith", "query": "green teapot Ferdinand"},
            subcommand=["search"],
        )
        found = await answered(world, searched)
        after_search = await stored_state(world, ids)
        said = await world.discord.say(
            world.general, world.alice, "@Lilith what is my green teapot called?"
        )
        await world.delivered(f"{said.id}:lilith")
    prompt = str(world.provider.chat_requests()[-1].body["messages"])
    after_use = await stored_state(world, ids)
    assert TEAPOT in found  # the search worked: it showed the memory
    assert after_search == before  # and touched nothing: no reinforcement, no links, no use
    # The same memory in a delivered answer's prompt is recorded as used (what later
    # reinforces it): the state above is one that real use changes.
    assert TEAPOT in prompt
    assert after_use["uses"] == before["uses"] + 1


async def test_prune_deletes_only_weak_memories(world: World) -> None:
    await world.memory_ready()
    recently = datetime.now(UTC) - timedelta(hours=1)  # no time to decay
    await seed(
        world,
        world.alice,
        "Lilith",
        ["Alice once mentioned the weather"],
        salience=0.05,
        start=recently,
    )
    await seed(
        world, world.alice, "Lilith", ["Alice is a marine biologist"], salience=0.9, start=recently
    )
    async with running_bot(world):
        pruned = await world.discord.slash(
            world.general,
            world.alice,
            "memory",
            {"personality": "lilith", "threshold": 0.2},
            subcommand=["prune"],
        )
        done = await answered(world, pruned)
        left = await world.discord.slash(
            world.general, world.alice, "memory", {"personality": "Lilith"}, subcommand=["browse"]
        )
        shown = await answered(world, left)
    assert done == "Deleted 1 memory."
    assert "marine biologist" in shown
    assert "weather" not in shown


async def test_history_undo_forgets_the_last_exchange_here(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        kept = await world.discord.say(world.general, world.alice, "@Lilith the owl is grey")
        await world.delivered(f"{kept.id}:lilith")
        undone = await world.discord.say(world.general, world.alice, "@Lilith the fox is red")
        await world.delivered(f"{undone.id}:lilith")
        undo = await world.discord.slash(
            world.general, world.alice, "history", {"personality": "lilith"}, subcommand=["undo"]
        )
        removed = await answered(world, undo)
        asked = await world.discord.say(world.general, world.alice, "@Lilith what do you recall?")
        await world.delivered(f"{asked.id}:lilith")
    messages = world.provider.chat_requests()[-1].body["messages"][:-1]
    history = [str(m["content"]) for m in messages if m["role"] in {"user", "assistant"}]
    assert removed == "Removed 2 messages from history."
    assert any("the owl is grey" in c for c in history)
    assert not any("the fox is red" in c for c in history)
