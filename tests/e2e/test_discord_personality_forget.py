"""Deleting a personality leaves nothing of it in memory, through the fake Discord, the real
bot, the whole mesh on one real Postgres and the tzurot CLI: its history (every user's turns
and the channel's greeting), its long-term memories, memory modes toward it and what waits on
its exchanges (formation and fact outbox rows, memory uses). Lilith's rows are untouched.

Three ways a personality is deleted: its owner deletes a private one (DeletePersonality with
her as the actor), the operator deletes a public one (`tzurot admin personalities delete`),
and a user's `/settings data delete` takes her private ones.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tzurot.testing.cards import card_v3
from tzurot.testing.discord_e2e import World, member_actor, running_bot, slash_text
from tzurot.testing.fake_discord import Json
from tzurot.testing.memory_rows import PERSONALITY_ROWS, formed, rows_of, scalar
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

MANAGE_CHANNELS = str(1 << 4)


async def personality_id(world: World, slug: str) -> str:
    found = await scalar(world, "SELECT id::text FROM core.personalities WHERE slug = :s", s=slug)
    assert isinstance(found, str), slug
    return found


async def chat(world: World, user: Json, slug: str, text: str) -> None:
    said = await world.discord.say(world.general, user, f"@{slug} {text}")
    await world.delivered(f"{said.id}:{slug}")


async def tzurot_admin(world: World, *args: str) -> str:
    """Runs `tzurot admin ARGS` against the mesh as the operator (the `cli` certificate)."""
    env = {k: v for k, v in os.environ.items() if k != "TZUROT_TLS_DIR"}
    env |= {
        "TZUROT_GATEWAY_ADDR": world.mesh.gateway_addr,
        "TZUROT_CLI_TLS_DIR": str(world.mesh.pki / "cli"),
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "tzurot"),
        "admin",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_a_deleted_personality_leaves_nothing_in_memory_and_lilith_keeps_hers(
    world: World,
) -> None:
    await world.memory_ready()
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    async with running_bot(world):
        for name, public in (("Wren", False), ("Heron", True)):
            created = await slash_text(
                world, world.alice, "character", "create",
                name=name, system_prompt=f"You are {name}.", public=public,
            )  # fmt: skip
            assert f"Created **{name}**" in created
        await chat(world, world.alice, "wren", "my cat is called Pixel and she is grey")
        await chat(world, world.alice, "wren", "what colour is my cat Pixel?")
        await chat(world, world.bob, "heron", "I grow tomatoes on my balcony")
        await chat(world, world.alice, "lilith", "I sail a small boat called Kestrel")
        await chat(world, world.bob, "lilith", "my sister lives in Lisbon")
        fresh = await slash_text(world, world.alice, "memory", "fresh", personality="wren")
        assert fresh
        wren, heron = await personality_id(world, "wren"), await personality_id(world, "heron")
        lilith = await personality_id(world, "lilith")
        await formed(world, wren, heron, lilith)
        before = {p: await rows_of(world, p) for p in (wren, heron, lilith)}
        assert all(
            before[p][table]
            for p in (wren, heron, lilith)
            for table in ("memory.turns", "memory.memories")
        ), before
        assert before[wren]["memory.memory_modes"] == 1

        # Her private one, by her (the RPC every client sends for its owner); the public
        # one, by the operator through the CLI.
        await world.cli.DeletePersonality(
            gw.DeletePersonalityRequest(actor=member_actor(world.alice), personality="wren")
        )
        deleted = await tzurot_admin(world, "personalities", "delete", "heron")

    after = {p: await rows_of(world, p) for p in (wren, heron, lilith)}
    assert "Deleted heron" in deleted
    assert after == {
        wren: dict.fromkeys(PERSONALITY_ROWS, 0),
        heron: dict.fromkeys(PERSONALITY_ROWS, 0),
        lilith: before[lilith],
    }


async def test_deleting_her_data_leaves_nothing_of_her_private_personality_in_memory(
    world: World,
) -> None:
    """Her private character greeted the channel: a turn with no user, which forgetting her
    alone leaves (it is the channel's); her personality going takes it."""
    await world.memory_ready()
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    card = card_v3(name="Kleiner", first_mes="Welcome to the lab, {{user}}!")
    card["data"]["alternate_greetings"] = []
    imported = await world.cli.ImportPersonality(
        gw.ImportPersonalityRequest(
            actor=member_actor(world.alice),
            format=gw.IMPORT_FORMAT_CHARACTER_CARD_JSON,
            document=json.dumps(card).encode(),
        )
    )
    kleiner = imported.personality
    assert kleiner.public is False
    async with running_bot(world):
        activated = await world.discord.slash(
            world.general,
            world.alice,
            "channel",
            {"personality": "Kleiner"},
            subcommand=["activate"],
            permissions=MANAGE_CHANNELS,
        )
        await world.discord.wait_until(lambda: any(activated.texts()), within=30)
        said = await world.discord.say(world.general, world.alice, "hello, doctor")
        await world.delivered(f"{said.id}:kleiner")
        await chat(world, world.bob, "lilith", "my sister lives in Lisbon")
        lilith = await personality_id(world, "lilith")
        await formed(world, kleiner.id, lilith)
        greetings = await scalar(
            world,
            "SELECT count(*) FROM memory.turns WHERE personality_id = :p AND user_id = ''",
            p=kleiner.id,
        )
        assert greetings == 1
        kept = await rows_of(world, lilith)

        erased = await slash_text(
            world, world.alice, "settings", "data", "delete", confirm="DELETE"
        )

    assert "Erased" in erased
    assert await rows_of(world, kleiner.id) == dict.fromkeys(PERSONALITY_ROWS, 0)
    assert await rows_of(world, lilith) == kept
