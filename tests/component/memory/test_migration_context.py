"""Migration 0013 makes every memory's context again from the same user's (or the
channel's) turns, as formation now does, so none keeps another user's words: it writes
exactly what formation writes (the same texts, stripped as Python strips them), leaves a
context that is right already unwritten, and clears one it cannot make again."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import create_engine
from tzurot.db.migrate import upgrade
from tzurot.memory.domain import Attachment, Exchange, NewTurn
from tzurot.memory.embedding import Embedder
from tzurot.memory.formation import Formation
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.migrations import SCRIPT_LOCATION
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import SCHEMA, memories, turns
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.component

PERSONA = "lilith"


async def say(engine: AsyncEngine, job_id: str, channel: str, user: str, *said: NewTurn) -> None:
    await PostgresTurnStore(engine).store_exchange(Exchange(job_id, channel, PERSONA, user, said))


async def contexts(engine: AsyncEngine) -> dict[str, tuple[str, str]]:
    """Each memory's text: its context and its row version (xmin: changed if rewritten)."""
    stmt = sa.select(memories.c.text, memories.c.context, sa.text("xmin::text"))
    async with engine.connect() as conn:
        return {text: (context, xmin) for text, context, xmin in await conn.execute(stmt)}


async def set_context(engine: AsyncEngine, text: str, context: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(memories).where(memories.c.text == text).values(context=context)
        )


async def test_0013_makes_each_context_again_from_the_users_own_turns(
    fresh_database: DatabaseFactory, embedder: Embedder
) -> None:
    url = fresh_database()
    upgrade(SCRIPT_LOCATION, url, SCHEMA, "0012")
    engine = create_engine(url)
    try:
        # A channel: the bot's greeting, Ann (spaces Python strips, an image), Bob, Ann.
        greeting = "Welcome to the tavern, travellers!"
        await say(engine, "greet", "tavern", "", NewTurn("assistant", greeting))
        photo = Attachment(url="https://cdn/cat.png", description=" \u3000a grey cat\u00a0 ")
        await say(
            engine,
            "ann-1",
            "tavern",
            "ann",
            NewTurn(
                "user", "\u2003 I lost my grey cat \n", author_name="Ann", attachments=(photo,)
            ),
            NewTurn("assistant", "Your grey cat was seen by the mill."),
        )
        await say(
            engine,
            "bob-1",
            "tavern",
            "bob",
            NewTurn("user", "Where can I buy fresh bread?", author_name="Bob"),
            NewTurn("assistant", "The baker opens at dawn."),
        )
        await say(
            engine,
            "ann-2",
            "tavern",
            "ann",
            NewTurn("user", "I will check the old mill tonight", author_name="Ann"),
        )
        # A conversation of one user, and one whose first turn goes later.
        await say(engine, "cy-1", "dm-cy", "cy", NewTurn("user", "My locker code is 4417"))
        await say(engine, "cy-2", "dm-cy", "cy", NewTurn("user", "My bike is the red one"))
        await say(
            engine,
            "dee-1",
            "dm-dee",
            "dee",
            NewTurn("user", "Remember the dentist on Friday"),
            NewTurn("assistant", "Dentist on Friday, noted."),
        )
        store = PostgresMemoryStore(engine)
        assert await Formation(store, LongTermMemory(store, embedder)).drain() == 7
        formed = {text: context for text, (context, _xmin) in (await contexts(engine)).items()}

        # What formation wrote before: the turn before, whoever's it was.
        bob, ann_2 = "Bob: Where can I buy fresh bread?", "Ann: I will check the old mill tonight"
        await set_context(
            engine,
            bob,
            "assistant: Your grey cat was seen by the mill.\nassistant: The baker opens at dawn.",
        )
        await set_context(engine, ann_2, "assistant: The baker opens at dawn.")
        dee = "user: Remember the dentist on Friday"
        async with engine.begin() as conn:
            await conn.execute(
                sa.delete(turns).where(turns.c.job_id == "dee-1", turns.c.position == 0)
            )
            # A merge once gave a formed memory ids that are no turn's.
            await conn.execute(
                sa.update(memories)
                .where(memories.c.text == "user: My bike is the red one")
                .values(source_turn_ids=sa.func.array_append(memories.c.source_turn_ids, "t-x"))
            )
        before = await contexts(engine)

        upgrade(SCRIPT_LOCATION, url, SCHEMA)

        after = await contexts(engine)
    finally:
        await engine.dispose()
    assert {text: context for text, (context, _xmin) in after.items()} == {
        **formed,
        dee: "",  # its turn is gone: whose neighbours were they?
        "assistant: Dentist on Friday, noted.": "",  # the turn before it is gone
    }
    assert formed[bob] == f"assistant: {greeting}\nassistant: The baker opens at dawn."
    assert formed["Ann: I lost my grey cat a grey cat"] == (
        f"assistant: {greeting}\nassistant: Your grey cat was seen by the mill."
    )
    rewritten = {text for text in after if after[text][1] != before[text][1]}
    assert rewritten == {bob, ann_2, dee, "assistant: Dentist on Friday, noted."}


async def test_0013_leaves_memories_without_context_alone(
    fresh_database: DatabaseFactory,
) -> None:
    url = fresh_database()
    upgrade(SCRIPT_LOCATION, url, SCHEMA, "0012")
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "INSERT INTO memory.memories (id, personality_id, user_id, text, embedding,"
                    " sector, salience, source_turn_ids) VALUES (:id, 'p', 'u', 'added', :v,"
                    " 'semantic', 0.5, ARRAY['not-a-turn'])"
                ),
                {"id": uuid.uuid4(), "v": "[" + ",".join(["0.1"] * 384) + "]"},
            )
        before = await contexts(engine)
        upgrade(SCRIPT_LOCATION, url, SCHEMA)
        assert await contexts(engine) == before
    finally:
        await engine.dispose()
