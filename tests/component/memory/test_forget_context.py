"""A memory's context (the turns around the one it was formed from, searched with it) is
never another user's turn, so ForgetUser leaves none of the forgotten user's words in
someone else's memory. Formation used to take the turn before an exchange whoever's it
was: the assistant's answer to Alice, quoting her, stayed in Bob's memory (and in its
search_text) after ForgetUser(Alice). Real Postgres, real formation.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory.domain import Exchange, NewTurn
from tzurot.memory.forget_user import UserForgetter
from tzurot.memory.formation import Formation
from tzurot.memory.longterm import LongTermMemory
from tzurot.memory.memory_store import PostgresMemoryStore
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import memories

pytestmark = pytest.mark.component

PERSONA = "lilith"


async def say(engine: AsyncEngine, job_id: str, user_id: str, *turns: NewTurn) -> None:
    await PostgresTurnStore(engine).store_exchange(
        Exchange(job_id, "chan-tavern", PERSONA, user_id, turns)
    )


async def contexts(engine: AsyncEngine) -> dict[str, str]:
    """Each memory's text: its context."""
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(memories.c.text, memories.c.context))).all()
    return {text: context for text, context in rows}


async def test_forget_user_leaves_none_of_her_words_in_another_users_memory(
    engine: AsyncEngine, memory_store: PostgresMemoryStore, longterm: LongTermMemory
) -> None:
    await say(
        engine,
        "job-alice",
        "user-alice",
        NewTurn("user", "my bank PIN is 4921 and I live at 12 Elm Street", author_name="Alice"),
        NewTurn("assistant", "Noted, Alice: PIN 4921, 12 Elm Street."),
    )
    await say(
        engine,
        "job-bob",
        "user-bob",
        NewTurn("user", "Hello there, what did we talk about today?", author_name="Bob"),
        NewTurn("assistant", "We talked about many interesting things today."),
    )
    assert await Formation(memory_store, longterm).drain() == 2

    await UserForgetter(engine).forget("user-alice")

    hers = sa.or_(
        *(
            column.ilike(f"%{word}%")
            for column in (memories.c.text, memories.c.context)
            for word in ("4921", "Elm", "Alice")
        )
    )
    searched = sa.func.to_tsquery("english", "4921 | elm | alice")
    async with engine.connect() as conn:
        left = (
            await conn.execute(sa.select(memories.c.user_id, memories.c.text).where(hers))
        ).all()
        found = await conn.scalar(
            sa.select(sa.func.count()).where(memories.c.search_text.op("@@")(searched))
        )
        bobs = await conn.scalar(sa.select(sa.func.count()).where(memories.c.user_id == "user-bob"))
    assert left == []
    assert found == 0
    assert bobs == 2  # Bob's memories stay, without her words


async def test_the_turn_before_an_exchange_is_the_same_users_or_the_channels(
    engine: AsyncEngine, memory_store: PostgresMemoryStore, longterm: LongTermMemory
) -> None:
    """In a channel: the bot's greeting (no user's), Ann's exchange, Bob's, Ann's again.
    Ann's first exchange and Bob's have the greeting before them, Ann's second her own
    exchange before; each turn's own exchange gives the turn after."""
    greeting = "Welcome to the tavern, travellers, sit by the fire!"
    await say(engine, "job-greet", "", NewTurn("assistant", greeting))
    ann, ann_answer = "I am looking for my lost grey cat", "Your grey cat was seen by the mill."
    await say(
        engine,
        "job-ann-1",
        "user-ann",
        NewTurn("user", ann, author_name="Ann"),
        NewTurn("assistant", ann_answer),
    )
    bob, bob_answer = "Where can I buy fresh bread around here?", "The baker opens at dawn."
    await say(
        engine,
        "job-bob",
        "user-bob",
        NewTurn("user", bob, author_name="Bob"),
        NewTurn("assistant", bob_answer),
    )
    again = "Thanks, I will check the old mill tonight"
    await say(engine, "job-ann-2", "user-ann", NewTurn("user", again, author_name="Ann"))
    assert await Formation(memory_store, longterm).drain() == 4

    assert await contexts(engine) == {
        f"assistant: {greeting}": "",
        f"Ann: {ann}": f"assistant: {greeting}\nassistant: {ann_answer}",
        f"assistant: {ann_answer}": f"Ann: {ann}",
        f"Bob: {bob}": f"assistant: {greeting}\nassistant: {bob_answer}",  # not Ann's answer
        f"assistant: {bob_answer}": f"Bob: {bob}",
        f"Ann: {again}": f"assistant: {ann_answer}",  # hers, past Bob's
    }
