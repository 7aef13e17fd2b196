"""History use-cases against real Postgres: idempotency, order, paging, edits, deletes."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory.domain import Attachment, NewTurn, Role, StoredTurn
from tzurot.memory.forget_user import UserForgetter
from tzurot.memory.service import History
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import turns as turns_table
from tzurot.runtime.errors import InvalidArgument, NotFound

pytestmark = pytest.mark.component

CHANNEL = "chan-1"
PERSONA = "lilith"


@pytest.fixture
def history(engine: AsyncEngine) -> History:
    return History(PostgresTurnStore(engine))


def new_id() -> str:
    return str(uuid.uuid4())


def exchange_turns(question: str, answer: str, n: int = 0) -> list[NewTurn]:
    return [
        NewTurn(
            role="user",
            content=question,
            author_id="111",
            author_name="Alice",
            message_ids=(f"u{n}",),
        ),
        NewTurn(
            role="assistant",
            content=answer,
            author_id="lilith",
            author_name="Lilith",
            message_ids=(f"a{n}-1", f"a{n}-2"),
        ),
    ]


async def store(
    history: History,
    n: int,
    *,
    user: str = "user-a",
    channel: str = CHANNEL,
    persona: str = PERSONA,
) -> list[StoredTurn]:
    stored = await history.store_exchange(
        f"job-{n}-{uuid.uuid4().hex[:6]}",
        channel,
        persona,
        user,
        exchange_turns(f"q{n}", f"a{n}", n),
    )
    assert stored.created
    return stored.turns


async def count_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(turns_table)) or 0)


async def test_store_returns_the_turns_in_order(history: History) -> None:
    attachment = Attachment(
        url="https://cdn.example/cat.png",
        content_type="image/png",
        filename="cat.png",
        size_bytes=1234,
        description="a cat",
    )
    turns = exchange_turns("hello", "hi there")
    turns[0] = NewTurn(
        role="user",
        content="hello",
        author_id="111",
        author_name="Alice",
        message_ids=("u0",),
        attachments=(attachment,),
    )
    stored = await history.store_exchange("job-1", CHANNEL, PERSONA, "user-a", turns)
    assert stored.created is True
    user, assistant = stored.turns
    assert (user.role, user.position, user.content) == (Role.USER, 0, "hello")
    assert (assistant.role, assistant.position, assistant.content) == (
        Role.ASSISTANT,
        1,
        "hi there",
    )
    assert user.attachments == (attachment,)
    assert assistant.message_ids == ("a0-1", "a0-2")
    assert {t.user_id for t in stored.turns} == {"user-a"}
    assert {t.job_id for t in stored.turns} == {"job-1"}
    assert user.created_at == assistant.created_at
    assert user.created_at.tzinfo is not None
    assert user.id != assistant.id
    uuid.UUID(user.id)


async def test_storing_a_job_twice_stores_nothing(history: History, engine: AsyncEngine) -> None:
    first = await history.store_exchange(
        "job-x", CHANNEL, PERSONA, "user-a", exchange_turns("q", "a")
    )
    again = await history.store_exchange(
        "job-x", CHANNEL, PERSONA, "user-a", exchange_turns("other q", "other a")
    )
    longer = await history.store_exchange(
        "job-x",
        CHANNEL,
        PERSONA,
        "user-a",
        [*exchange_turns("q", "a"), NewTurn(role="assistant", content="more")],
    )
    assert first.created is True
    assert again.created is False
    assert longer.created is False
    assert again.turns == first.turns
    assert longer.turns == first.turns
    assert await count_rows(engine) == 2


async def test_concurrent_duplicates_store_once(history: History, engine: AsyncEngine) -> None:
    results = await asyncio.gather(
        *(
            history.store_exchange("job-race", CHANNEL, PERSONA, "user-a", exchange_turns("q", "a"))
            for _ in range(8)
        )
    )
    assert [r.created for r in results].count(True) == 1
    assert all(r.turns == results[0].turns for r in results)
    assert len(results[0].turns) == 2
    assert await count_rows(engine) == 2


async def test_concurrent_duplicates_of_other_lengths_store_one_whole_exchange(
    history: History, engine: AsyncEngine
) -> None:
    """StoreExchange is one statement; position 0 decides, so no call adds a turn to
    another call's exchange."""
    lengths = [2, 3, 1, 3, 2, 1]
    results = await asyncio.gather(
        *(
            history.store_exchange(
                "job-mixed",
                CHANNEL,
                PERSONA,
                "user-a",
                [NewTurn(role="user", content=f"turn {i} of {n}") for i in range(n)],
            )
            for n in lengths
        )
    )
    (winner,) = [r for r in results if r.created]
    assert all(r.turns == winner.turns for r in results)
    assert await count_rows(engine) == len(winner.turns)


async def test_a_job_whose_first_turn_was_deleted_is_not_stored_again(
    history: History, engine: AsyncEngine
) -> None:
    first = await history.store_exchange(
        "job-d", CHANNEL, PERSONA, "user-a", exchange_turns("q", "a")
    )
    async with engine.begin() as conn:
        await conn.execute(sa.delete(turns_table).where(turns_table.c.id == first.turns[0].id))
    again = await history.store_exchange(
        "job-d", CHANNEL, PERSONA, "user-a", exchange_turns("q", "a")
    )
    assert again.created is False
    assert again.turns == first.turns[1:]
    assert await count_rows(engine) == 1


async def test_a_failed_exchange_stores_nothing(history: History, engine: AsyncEngine) -> None:
    turns = [*exchange_turns("q", "a"), NewTurn(role="user", content="x" * 32_001)]
    with pytest.raises(InvalidArgument) as caught:
        await history.store_exchange("job-bad", CHANNEL, PERSONA, "user-a", turns)
    assert caught.value.field == "turns[2].content"
    assert await count_rows(engine) == 0


GOOD = {"job_id": "job", "channel_id": CHANNEL, "personality_id": PERSONA}


@pytest.mark.parametrize(
    ("overrides", "turns", "field"),
    [
        ({"job_id": ""}, exchange_turns("q", "a"), "job_id"),
        ({"channel_id": ""}, exchange_turns("q", "a"), "channel_id"),
        ({"personality_id": ""}, exchange_turns("q", "a"), "personality_id"),
        ({"job_id": "job id"}, exchange_turns("q", "a"), "job_id"),
        ({"job_id": "j" * 129}, exchange_turns("q", "a"), "job_id"),
        ({}, [], "turns"),
        ({}, exchange_turns("q", "a") * 9, "turns"),
        ({}, [NewTurn(role="system", content="x")], "turns[0].role"),
        ({}, [NewTurn(role="unspecified", content="x")], "turns[0].role"),
        ({}, [NewTurn(role="user", content="x" * 32_001)], "turns[0].content"),
        (
            {},
            [NewTurn(role="user", content="x", message_ids=("",))],
            "turns[0].message_ids[0]",
        ),
    ],
)
async def test_invalid_exchanges_name_the_field(
    history: History, overrides: dict[str, str], turns: list[NewTurn], field: str
) -> None:
    ids = {**GOOD, **overrides}
    with pytest.raises(InvalidArgument) as caught:
        await history.store_exchange(
            ids["job_id"], ids["channel_id"], ids["personality_id"], "user-a", turns
        )
    assert caught.value.field == field


async def test_limits_at_the_edge_are_accepted(history: History) -> None:
    turns = [NewTurn(role="user", content="x" * 32_000)] * 16
    stored = await history.store_exchange("job-edge", CHANNEL, PERSONA, "", turns)
    assert [t.position for t in stored.turns] == list(range(16))
    assert {t.user_id for t in stored.turns} == {""}


async def test_history_is_oldest_first_and_newest_limited(history: History) -> None:
    for n in range(5):
        await store(history, n)
    await store(history, 99, channel="elsewhere")
    await store(history, 98, persona="someone-else")

    everything = await history.get_history(CHANNEL, PERSONA)
    assert [t.content for t in everything] == [x for n in range(5) for x in (f"q{n}", f"a{n}")]

    newest = await history.get_history(CHANNEL, PERSONA, limit=4)
    assert [t.content for t in newest] == ["q3", "a3", "q4", "a4"]

    cut = await history.get_history(CHANNEL, PERSONA, limit=3)
    assert [t.content for t in cut] == ["a3", "q4", "a4"]


async def test_history_before_pages_back(history: History) -> None:
    stored = [await store(history, n) for n in range(4)]
    third_at = stored[2][0].created_at
    older = await history.get_history(CHANNEL, PERSONA, before=third_at)
    assert [t.content for t in older] == ["q0", "a0", "q1", "a1"]
    page = await history.get_history(CHANNEL, PERSONA, limit=2, before=third_at)
    assert [t.content for t in page] == ["q1", "a1"]
    assert await history.get_history(CHANNEL, PERSONA, before=stored[0][0].created_at) == []
    later = stored[3][0].created_at + timedelta(seconds=1)
    assert len(await history.get_history(CHANNEL, PERSONA, before=later)) == 8


async def test_history_default_limit(engine: AsyncEngine) -> None:
    small = History(PostgresTurnStore(engine), default_limit=3)
    for n in range(3):
        await store(small, n)
    assert [t.content for t in await small.get_history(CHANNEL, PERSONA)] == ["a1", "q2", "a2"]
    assert len(await small.get_history(CHANNEL, PERSONA, limit=500)) == 6


@pytest.mark.parametrize(
    ("channel", "persona", "limit", "field"),
    [
        ("", PERSONA, 0, "channel_id"),
        (CHANNEL, "", 0, "personality_id"),
        (CHANNEL, PERSONA, -1, "limit"),
        (CHANNEL, PERSONA, 501, "limit"),
    ],
)
async def test_invalid_history_requests(
    history: History, channel: str, persona: str, limit: int, field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await history.get_history(channel, persona, limit)
    assert caught.value.field == field


async def test_find_turns_by_message_id(history: History) -> None:
    for n in range(3):
        await store(history, n)
    found = await history.find_turns_by_message_id(["a1-2", "u2", "nope"])
    assert [t.content for t in found] == ["a1", "q2"]
    assert await history.find_turns_by_message_id(["nope"]) == []
    with pytest.raises(InvalidArgument) as caught:
        await history.find_turns_by_message_id([])
    assert caught.value.field == "message_ids"


async def test_edit_turn(history: History) -> None:
    stored = await store(history, 0)
    edited = await history.edit_turn("a0-2", "a better answer")
    assert edited.id == stored[1].id
    assert edited.content == "a better answer"
    assert edited.created_at == stored[1].created_at
    contents = [t.content for t in await history.get_history(CHANNEL, PERSONA)]
    assert contents == ["q0", "a better answer"]
    with pytest.raises(NotFound) as caught:
        await history.edit_turn("missing", "x")
    assert caught.value.reason == "TURN_NOT_FOUND"
    with pytest.raises(InvalidArgument) as bad:
        await history.edit_turn("u0", "x" * 32_001)
    assert bad.value.field == "content"


async def test_edit_turn_of_a_job(history: History) -> None:
    """A message two exchanges share as their user turn: the job named is the one edited
    (none named: the newest), and the turn's attachments stay as stored."""
    cat = Attachment(url="https://cdn.example/cat.png", content_type="image/png")
    jobs = []
    for persona in ("lilith", "sage"):
        turns = exchange_turns("my cat", f"{persona}'s answer", 0)
        turns[0] = dataclasses.replace(turns[0], attachments=(cat,))
        turns[1] = dataclasses.replace(turns[1], message_ids=(f"a-{persona}",))
        jobs.append(new_id())
        await history.store_exchange(jobs[-1], CHANNEL, persona, "user-a", turns)

    older = await history.edit_turn("u0", "our cat", jobs[0])
    assert (older.job_id, older.content, older.attachments) == (jobs[0], "our cat", (cat,))
    newest = await history.edit_turn("u0", "their cat")
    assert (newest.job_id, newest.content) == (jobs[1], "their cat")
    users = await history.find_turns_by_message_id(["u0"])
    assert [(t.job_id, t.content) for t in users] == [(jobs[0], "our cat"), (jobs[1], "their cat")]
    with pytest.raises(NotFound):
        await history.edit_turn("a-lilith", "x", jobs[1])  # a message of another job
    with pytest.raises(InvalidArgument) as bad:
        await history.edit_turn("u0", "x", "job 1")
    assert bad.value.field == "job_id"


async def test_delete_turns(history: History) -> None:
    for n in range(3):
        await store(history, n)
    assert await history.delete_turns(["u0", "a0-1", "a2-2"]) == 3
    assert await history.delete_turns(["u0"]) == 0
    contents = [t.content for t in await history.get_history(CHANNEL, PERSONA)]
    assert contents == ["q1", "a1", "q2"]


async def test_clear_turns_only_that_conversation(history: History) -> None:
    for n in range(3):
        await store(history, n)
    await store(history, 9, persona="other")
    assert await history.clear_turns(CHANNEL, PERSONA) == 6
    assert await history.get_history(CHANNEL, PERSONA) == []
    assert len(await history.get_history(CHANNEL, "other")) == 2
    assert await history.clear_turns(CHANNEL, PERSONA) == 0


async def test_clear_turns_of_one_user_leaves_the_others(history: History) -> None:
    await store(history, 0, user="user-a")
    await store(history, 1, user="user-b")
    await store(history, 2, user="user-a")
    await store(history, 3, user="user-a", persona="other")
    assert await history.clear_turns(CHANNEL, PERSONA, "user-a") == 4
    contents = [t.content for t in await history.get_history(CHANNEL, PERSONA)]
    assert contents == ["q1", "a1"]
    assert len(await history.get_history(CHANNEL, "other")) == 2
    assert await history.clear_turns(CHANNEL, PERSONA, "user-a") == 0
    with pytest.raises(InvalidArgument) as caught:
        await history.clear_turns(CHANNEL, PERSONA, "user a")
    assert caught.value.field == "user_id"


async def test_remove_last_exchange_of_that_user(history: History) -> None:
    await store(history, 0, user="user-a")
    await store(history, 1, user="user-a")
    await store(history, 2, user="user-b")
    removed = await history.remove_last_exchange(CHANNEL, PERSONA, "user-a")
    assert [(t.role, t.content) for t in removed] == [(Role.USER, "q1"), (Role.ASSISTANT, "a1")]
    contents = [t.content for t in await history.get_history(CHANNEL, PERSONA)]
    assert contents == ["q0", "a0", "q2", "a2"]
    assert [t.content for t in await history.remove_last_exchange(CHANNEL, PERSONA, "user-a")] == [
        "q0",
        "a0",
    ]
    assert await history.remove_last_exchange(CHANNEL, PERSONA, "user-a") == []
    assert await history.remove_last_exchange(CHANNEL, "other", "user-b") == []
    with pytest.raises(InvalidArgument) as caught:
        await history.remove_last_exchange(CHANNEL, PERSONA, "")
    assert caught.value.field == "user_id"


async def test_forget_user(history: History, engine: AsyncEngine) -> None:
    await store(history, 0, user="user-a")
    await store(history, 1, user="user-b")
    await store(history, 2, user="user-a", channel="elsewhere")
    forgetter = UserForgetter(engine)
    forgotten = await forgetter.forget("user-a")
    assert (forgotten.deleted_turns, forgotten.deleted_memories) == (4, 0)
    assert [t.content for t in await history.get_history(CHANNEL, PERSONA)] == ["q1", "a1"]
    assert (await forgetter.forget("user-a")).deleted_turns == 0
    with pytest.raises(InvalidArgument):
        await forgetter.forget("")


async def test_a_group_channel_reads_every_personality_of_the_channel(history: History) -> None:
    await store(history, 1)
    await store(history, 2, persona="other")
    await store(history, 3, channel="elsewhere")
    own = await history.get_history_page(CHANNEL, PERSONA)
    assert [t.content for t in own.turns] == ["q1", "a1"]
    group = await history.get_history_page(CHANNEL, "", whole_channel=True)
    assert [(t.content, t.personality_id) for t in group.turns] == [
        ("q1", PERSONA),
        ("a1", PERSONA),
        ("q2", "other"),
        ("a2", "other"),
    ]
    with pytest.raises(InvalidArgument):
        await history.get_history_page(CHANNEL, "")  # one personality's, unless whole_channel
