"""`/settings data delete` through Discord: the fake Discord, the real bot, the whole mesh on
one real Postgres, the fake ElevenLabs. Everything of hers goes, in every schema: her
messages and answers, usage, keys, history, long-term memories and what waits to be formed
from them; her private personality with its voice; the voice samples she uploaded; the
voice she cloned, from her ElevenLabs account; her unpublished lorebook; her rate-limit
bucket. What she published for others stays, ownerless (a public personality, a lorebook
attached to it), and Bob's conversation with the same personality is untouched.
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from tzurot.audio import encode_tone
from tzurot.db.engine import create_engine
from tzurot.testing.discord_e2e import (
    VoiceWorld,
    member_actor,
    running_bot,
    slash_text,
)
from tzurot.testing.fake_discord import Json
from tzurot.testing.fake_elevenlabs import DEFAULT_ELEVENLABS_KEY
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

LOREBOOK = b'{"entries": {"0": {"key": ["tavern"], "content": "The Prancing Pony."}}}'


async def scalar(database: str, sql: str, **params: object) -> object:
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(sa.text(sql), params)
    finally:
        await engine.dispose()


async def user_id_of(database: str, user: Json) -> str:
    found = await scalar(
        database, "SELECT id::text FROM core.users WHERE platform_user_id = :p", p=str(user["id"])
    )
    assert isinstance(found, str)
    return found


# Every table that holds a user's id, with how to find the user's rows (:u, her id).
HERS = {
    "core.users": "id = CAST(:u AS uuid)",
    "core.jobs": "user_id = CAST(:u AS uuid)",
    "core.usage_log": "user_id = CAST(:u AS uuid)",
    "core.personas": "user_id = CAST(:u AS uuid)",
    "core.llm_configs": "owner_user_id = CAST(:u AS uuid)",
    "core.personalities": "owner_user_id = CAST(:u AS uuid)",
    "core.lorebooks": "owner_user_id = CAST(:u AS uuid)",
    "core.voice_samples": "uploaded_by = CAST(:u AS uuid)",
    "core.personality_voices": "cloned_by = CAST(:u AS uuid)",
    "core.voice_clones": "cloner_id = CAST(:u AS uuid)",
    "core.settings": "scope_id = :u OR scope_id LIKE :u || ':%'",
    "core.rate_buckets": "key IN ('user:' || :u, 'guest:' || :u)",
    "core.bot_events": "payer_user_id = CAST(:u AS uuid)",
    "core.freewill_personalities": "payer_user_id = CAST(:u AS uuid)",
    "memory.turns": "user_id = :u",
    "memory.memories": "user_id = :u",
    "memory.memory_modes": "user_id = :u",
    "memory.fact_outbox": "user_id = :u",
    "memory.formation_outbox": "job_id IN (SELECT id::text FROM core.jobs"
    " WHERE user_id = CAST(:u AS uuid))",
    "vault.api_keys": "user_id = :u",
}


async def rows_of(database: str, user_id: str) -> dict[str, int]:
    counts = {}
    for table, where in HERS.items():
        count = await scalar(database, f"SELECT count(*) FROM {table} WHERE {where}", u=user_id)  # noqa: S608
        counts[table] = int(count)  # type: ignore[call-overload]
    return counts


async def said_by(database: str, user_id: str) -> list[str]:
    """What the turns of her exchanges said (both sides)."""
    engine = create_engine(database)
    try:
        async with engine.connect() as conn:
            query = sa.text("SELECT content FROM memory.turns WHERE user_id = :u")
            return list((await conn.execute(query, {"u": user_id})).scalars())
    finally:
        await engine.dispose()


async def memories_formed(database: str, user_id: str) -> None:
    for _ in range(600):
        if await scalar(
            database, "SELECT count(*) FROM memory.memories WHERE user_id = :u", u=user_id
        ):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("no long-term memory was formed")


async def test_data_delete_erases_all_of_hers_and_keeps_what_she_published(
    voice_scene: VoiceWorld,
) -> None:
    world, db = voice_scene.world, voice_scene.database
    alice = member_actor(world.alice)
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    await world.cli.SetWalletKey(
        gw.SetWalletKeyRequest(actor=alice, provider="elevenlabs", api_key=DEFAULT_ELEVENLABS_KEY)
    )
    # A private personality of hers, and a public one others use.
    for slug, public in (("wren", False), ("heron", True)):
        await world.cli.CreatePersonality(
            gw.CreatePersonalityRequest(
                actor=alice,
                personality=common.Personality(
                    slug=slug, display_name=slug.title(), system_prompt="Hi.", public=public
                ),
            )
        )
    await world.cli.ImportLorebook(
        gw.ImportLorebookRequest(actor=alice, document=LOREBOOK, name="My notes")
    )
    on_heron = common.LorebookAttachment(scope=common.LORE_SCOPE_PERSONALITY, target="heron")
    await world.cli.ImportLorebook(
        gw.ImportLorebookRequest(actor=alice, document=LOREBOOK, name="Heron lore", attach=on_heron)
    )
    await world.memory_ready()
    async with running_bot(world):
        for slug in ("wren", "heron"):
            sample = world.discord.upload(world.general, "me.mp3", encode_tone(1.0), "audio/mpeg")
            added = await slash_text(
                world, world.alice, "personality", "voice-sample", "upload",
                personality=slug, file=sample,
            )  # fmt: skip
            assert "Added" in added
        cloned = await slash_text(
            world, world.alice, "personality", "voice", "clone", personality="wren"
        )
        assert "Cloned from 1 sample" in cloned
        said = await world.discord.say(
            world.general, world.alice, "@Lilith my cat is called Pixel and she is grey"
        )
        await world.delivered(f"{said.id}:lilith")
        bobs = await world.discord.say(world.general, world.bob, "@Lilith I grow tomatoes")
        await world.delivered(f"{bobs.id}:lilith")
        hers = await user_id_of(db, world.alice)
        bob = await user_id_of(db, world.bob)
        await memories_formed(db, hers)
        await memories_formed(db, bob)  # after hers in the channel: her answer came before
        her_words = await said_by(db, hers)
        before = await rows_of(db, hers)
        assert all(
            before[table]
            for table in (
                "core.users",
                "core.jobs",
                "core.usage_log",
                "core.personalities",
                "core.lorebooks",
                "core.voice_samples",
                "core.personality_voices",
                "core.rate_buckets",
                "memory.turns",
                "memory.memories",
                "vault.api_keys",
            )
        ), before
        (clone,) = [v for v in voice_scene.eleven.cloned_voices() if v.name == "Wren"]

        erased = await slash_text(
            world, world.alice, "settings", "data", "delete", confirm="DELETE"
        )
        assert "Erased" in erased

    # Every difference at once: what of hers is left, and what stays for the others.
    left = await rows_of(db, hers)
    after = {
        "her rows left": {table: n for table, n in left.items() if n},
        "her clone in her ElevenLabs account": clone.voice_id in voice_scene.eleven.voices,
        "voice samples": await scalar(db, "SELECT count(*) FROM core.voice_samples"),
        "her private personality": await scalar(
            db, "SELECT count(*) FROM core.personalities WHERE slug = 'wren'"
        ),
        "lorebooks": await scalar(
            db,
            "SELECT string_agg(name || ':' || coalesce(owner_user_id::text, 'nobody'), ',')"
            " FROM core.lorebooks",
        ),
        "her public personality's owner": await scalar(
            db,
            "SELECT coalesce(owner_user_id::text, 'nobody') FROM core.personalities"
            " WHERE slug = 'heron'",
        ),
        "bob's turns": await scalar(
            db, "SELECT count(*) FROM memory.turns WHERE user_id = :u", u=bob
        ),
        "bob's jobs": await scalar(
            db, "SELECT count(*) FROM core.jobs WHERE user_id = CAST(:u AS uuid)", u=bob
        ),
        # Not even in the context (searched with the memory) of Bob's memories.
        "memories holding her words": await scalar(
            db,
            "SELECT count(*) FROM memory.memories m, unnest(CAST(:said AS text[])) AS s(said)"
            " WHERE strpos(m.text || m.context, s.said) > 0",
            said=her_words,
        ),
    }
    assert after == {
        "her rows left": {},
        "her clone in her ElevenLabs account": False,
        "voice samples": 0,
        "her private personality": 0,
        "lorebooks": "Heron lore:nobody",
        "her public personality's owner": "nobody",
        "bob's turns": 2,
        "bob's jobs": 1,
        "memories holding her words": 0,
    }


async def test_while_her_deletion_is_under_way_she_is_told_so_and_nothing_is_answered(
    voice_scene: VoiceWorld,
) -> None:
    """A deletion cut short after memory forgot her (its sweep not done yet): her message is
    refused in words the bot shows, rather than answered and silently not kept; asking again
    says the same (the sweep finishes it)."""
    world, db = voice_scene.world, voice_scene.database
    await world.set_key(world.alice)
    async with running_bot(world):
        hello = await world.discord.say(world.general, world.alice, "@Lilith hello")
        await world.delivered(f"{hello.id}:lilith")
        hers = await user_id_of(db, world.alice)
        paid = len(world.provider.chat_requests())
        engine = create_engine(db)
        try:
            async with engine.begin() as conn:  # held by a request that is still running
                await conn.execute(
                    sa.text(
                        "UPDATE core.users SET deletion_requested_at = now(),"
                        " deletion_lease_until = now() + interval '1 hour'"
                        " WHERE id = CAST(:u AS uuid)"
                    ),
                    {"u": hers},
                )
        finally:
            await engine.dispose()

        await world.discord.say(world.general, world.alice, "@Lilith are you still there?")
        (told,) = await world.discord.wait_until(
            lambda: [
                m
                for m in world.discord.webhook_messages(world.general)
                if "being deleted" in m.content
            ]
        )
        again = await slash_text(world, world.alice, "settings", "data", "delete", confirm="DELETE")

    assert "nothing you send is answered or kept" in told.content
    assert "being deleted" in again
    assert len(world.provider.chat_requests()) == paid  # nothing generated
    turns = await scalar(db, "SELECT count(*) FROM memory.turns WHERE user_id = :u", u=hers)
    assert turns == 2  # her first exchange only
