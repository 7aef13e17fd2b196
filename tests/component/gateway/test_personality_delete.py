"""Deleting a personality forgets it in memory, in an order a sweep can finish: its answers in
flight first (a confirmation that lands while memory forgets stores nothing after it),
memory's ForgetPersonality, the row last. The deletion is recorded on the row before memory
is asked, so one that fails half way hides the personality at once and is finished by the
sweep (admin/deletions.py; tests/component/gateway/test_pending_deletions.py has the failures
after memory forgot). A user's data deletion does the same for each private personality of
theirs, not for the public ones they leave behind. Either way no `core` row names the
personality afterwards but those kept on purpose (`KEPT`): the tables that name it without a
foreign key (settings, lorebook attachments, the denylist) are emptied of it with its row, and
a new column naming a personality without a foreign key fails here until it is handled.

Real Postgres for `core`; memory is the conftest fake, which records what it forgot and lets
a confirmation land mid-deletion.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Actor, GenerateEvent, HistoryTurn, JobAccepted, Personality
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import FailedPrecondition, NotFound, Unavailable

from .conftest import ALICE, MemoryConfirmedMeanwhile, StoredExchange, command

BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")

KEPT = {
    ("jobs", "personality_id"): "delivered and failed answers stay their user's (tables.py)",
    ("channel_state", "last_speaker_id"): "a conversation's state, replaced as it goes on",
    ("channel_state", "round_speakers"): "a conversation's state, replaced as it goes on",
}
"""Columns that still name a deleted personality, on purpose (the comments in tables.py and
group_tables.py say why); nothing else in `core` may."""
WITHOUT_FOREIGN_KEY = {("jobs", "personality_id")}
"""The columns named after a personality with no foreign key to `core.personalities`. A new
one fails the test: delete its rows in store/personality_related.delete_references (and seed one
below), or say in KEPT why they stay."""

pytestmark = pytest.mark.component


@pytest.fixture
def memory() -> MemoryConfirmedMeanwhile:
    return MemoryConfirmedMeanwhile()


async def streamed(gateway: Gateway, key: str, personality: str = "lilith") -> str:
    """An answer generated and streamed, not confirmed yet (the bot is posting it): its job."""
    events: list[GenerateEvent] = [
        event async for event in gateway.generate(command(key=key, personality=personality))
    ]
    assert isinstance(events[0], JobAccepted)
    return events[0].job_id


def greeting(personality_id: str) -> StoredExchange:
    """The channel's greeting turn (no user): no user's forget takes it."""
    turn = HistoryTurn("assistant", "", "", "Welcome!", ("greet-1",))
    return StoredExchange("greeting", "channel-1", personality_id, "", (turn,))


async def test_deleting_a_personality_forgets_it_and_the_sweep_finishes_a_failed_one(
    gateway: Gateway,
    admin: Admin,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    memory: MemoryConfirmedMeanwhile,
    lilith: Personality,
) -> None:
    sage, _ = await store.import_personality(PersonalitySeed(name="Sage"), owner_user_id=None)
    for key, personality in (("msg-1", "lilith"), ("msg-2", "sage")):
        await gateway.confirm_delivery(await streamed(gateway, key, personality), [f"{key}-a"])
    memory.exchanges.append(greeting(lilith.id))
    in_flight = await streamed(gateway, "msg-3")
    operator = Principal(None)  # `tzurot admin personalities delete`; lilith is public

    memory.error = Unavailable("memory is down")
    with pytest.raises(FailedPrecondition) as failed:
        await admin.delete_personality(operator, "lilith")
    assert failed.value.reason == "DELETION_PENDING"
    assert "finishes by itself" in failed.value.message
    assert await store.get_personality(lilith.id) is None  # hidden at once: answers nobody
    assert await personality_rows(engine, lilith.id) == 1  # its row waits for memory
    memory.error = None
    assert await admin.finish_pending_deletions() == 1  # nobody asked again

    assert memory.forgotten_personalities == [lilith.id]
    assert [e.personality_id for e in memory.exchanges] == [sage.id]
    assert await personality_rows(engine, lilith.id) == 0
    with pytest.raises(NotFound):  # its answer in flight went first
        await gateway.confirm_delivery(in_flight, ["msg-3-a"])
    assert [e.personality_id for e in memory.exchanges] == [sage.id]
    assert await admin.finish_pending_deletions() == 0


async def test_an_answer_confirmed_while_memory_forgets_is_not_stored_after(
    gateway: Gateway, admin: Admin, memory: MemoryConfirmedMeanwhile, lilith: Personality
) -> None:
    job_id = await streamed(gateway, "msg-1")

    async def bot_confirms() -> None:
        with contextlib.suppress(NotFound):  # its job is gone: nothing to deliver
            await gateway.confirm_delivery(job_id, ["answer-1"])

    memory.meanwhile = bot_confirms
    await admin.delete_personality(Principal(None), "lilith")

    assert memory.meanwhile is None  # the confirmation did land during the deletion
    assert memory.exchanges == []


async def test_deleting_her_data_forgets_her_private_personalities_only(
    gateway: Gateway,
    admin: Admin,
    store: GatewayStore,
    engine: AsyncEngine,
    memory: MemoryConfirmedMeanwhile,
) -> None:
    user = await gateway.user(ALICE)
    mine, _ = await store.import_personality(
        PersonalitySeed(name="Secret", public=False), owner_user_id=user.id
    )
    shared, _ = await store.import_personality(
        PersonalitySeed(name="Shared", public=True), owner_user_id=user.id
    )
    memory.exchanges += [greeting(mine.id), greeting(shared.id)]

    memory.error = Unavailable("memory is down")
    with pytest.raises(FailedPrecondition) as failed:
        await admin.delete_user_data(Principal(user))
    assert failed.value.reason == "DELETION_PENDING"
    assert await store.get_personality(mine.id) is None  # hidden with her, at once
    memory.error = None
    assert await admin.finish_pending_deletions() == 2  # her private personality, then her

    assert memory.forgotten_personalities == [mine.id]
    assert [e.personality_id for e in memory.exchanges] == [shared.id]  # the channel's, kept
    assert await personality_rows(engine, mine.id) == 0
    kept = await store.get_personality(shared.id)
    assert kept is not None
    assert kept.owner_user_id is None


async def personality_rows(engine: AsyncEngine, personality_id: str) -> int:
    """The personality's rows, whether or not a lookup finds it (one being deleted: not)."""
    p = t.personalities.c
    async with engine.connect() as conn:
        count = await conn.scalar(sa.select(sa.func.count()).where(p.id == personality_id))
    return int(count or 0)


Deletion = Callable[[Gateway, Admin, MemoryConfirmedMeanwhile, Personality], Awaitable[None]]


async def asked(
    gateway: Gateway, admin: Admin, memory: MemoryConfirmedMeanwhile, target: Personality
) -> None:
    await admin.delete_personality(Principal(None), target.slug)


async def swept(
    gateway: Gateway, admin: Admin, memory: MemoryConfirmedMeanwhile, target: Personality
) -> None:
    """Memory fails first: the sweep finishes it."""
    memory.error = Unavailable("memory is down")
    with pytest.raises(FailedPrecondition):
        await admin.delete_personality(Principal(None), target.slug)
    memory.error = None
    assert await admin.finish_pending_deletions() == 1


async def with_its_owner(
    gateway: Gateway, admin: Admin, memory: MemoryConfirmedMeanwhile, target: Personality
) -> None:
    """Its owner's data deletion takes her private personality."""
    owner = await gateway.user(ALICE)
    assert target.owner_user_id == owner.id
    await admin.delete_user_data(Principal(owner))


@pytest.mark.parametrize("delete", [asked, swept, with_its_owner])
async def test_no_row_names_a_deleted_personality_but_those_kept_on_purpose(
    delete: Deletion,
    gateway: Gateway,
    admin: Admin,
    *,
    store: GatewayStore,
    engine: AsyncEngine,
    memory: MemoryConfirmedMeanwhile,
) -> None:
    async with engine.connect() as conn:
        assert await unkeyed_personality_columns(conn) == WITHOUT_FOREIGN_KEY
    alice, bob = await gateway.user(ALICE), await gateway.user(BOB)
    target, _ = await store.import_personality(
        PersonalitySeed(name="Orphan Check", public=False), owner_user_id=alice.id
    )
    other, _ = await store.import_personality(PersonalitySeed(name="Other"), owner_user_id=None)
    await gateway.confirm_delivery(await streamed(gateway, "msg-1", target.slug), ["msg-1-a"])
    async with engine.begin() as conn:
        for personality in (target, other):
            await name_without_foreign_keys(conn, personality, bob.id, BOB.platform_user_id)
        before = await naming(conn, target)
        others_before = await naming(conn, other)
    assert set(KEPT) | {
        ("settings", "scope_id"),
        ("lorebook_attachments", "target"),
        ("denylist", "scope_id"),
    } <= set(before)

    await delete(gateway, admin, memory, target)

    async with engine.connect() as conn:
        after = await naming(conn, target)
        assert set(after) - set(KEPT) == set()
        assert await naming(conn, other) == others_before  # another's are untouched


async def name_without_foreign_keys(
    conn: AsyncConnection, personality: Personality, user_id: str, platform_user_id: str
) -> None:
    """Rows that name the personality where nothing cascades: a setting of its level and one of
    a user's toward it, a lorebook attached to it, a denylist entry toward it (by slug), and a
    group conversation it spoke in last."""
    await conn.execute(
        sa.insert(t.settings),
        [
            {"scope": "personality", "scope_id": personality.id, "key": "k", "value": 1},
            {
                "scope": "user_personality",
                "scope_id": f"{user_id}:{personality.id}",
                "key": "k",
                "value": 2,
            },
        ],
    )
    lorebook = await conn.scalar(
        sa.insert(t.lorebooks).values(name=f"{personality.slug} lore").returning(t.lorebooks.c.id)
    )
    await conn.execute(
        sa.insert(t.lorebook_attachments).values(
            lorebook_id=lorebook, scope="personality", target=personality.id
        )
    )
    await conn.execute(
        sa.insert(t.denylist).values(
            target="user",
            target_id=platform_user_id,
            scope="personality",
            scope_id=personality.slug,
            mode="block",
        )
    )
    await conn.execute(
        sa.insert(g.channel_state).values(
            conversation_id=f"conversation-{personality.slug}",
            channel_id="channel-1",
            round_speakers=[personality.id],
            last_speaker_id=personality.id,
        )
    )


async def unkeyed_personality_columns(conn: AsyncConnection) -> set[tuple[str, str]]:
    """`core`'s columns named after a personality (`personality_id`, `card_personality_id`…)
    with no foreign key to `core.personalities`; those with one must delete or unset with it."""
    named = await conn.execute(
        sa.text(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'core' AND column_name LIKE '%personality%'"
        )
    )
    keyed = await conn.execute(
        sa.text(
            "SELECT cl.relname, a.attname, c.confdeltype::text FROM pg_constraint c"
            " JOIN pg_class cl ON cl.oid = c.conrelid"
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)"
            " WHERE c.contype = 'f' AND c.confrelid = 'core.personalities'::regclass"
        )
    )
    on_delete = {(table, column): action for table, column, action in keyed}
    assert set(on_delete.values()) <= {"c", "n"}, on_delete  # CASCADE or SET NULL
    return {(table, column) for table, column in named if (table, column) not in on_delete}


async def naming(conn: AsyncConnection, personality: Personality) -> dict[tuple[str, str], int]:
    """Rows of every `core` column that could hold the personality's id or slug (uuid, text,
    text[], jsonb) and do, by (table, column)."""
    columns = await conn.execute(
        sa.text(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'core' AND udt_name IN ('uuid', 'text', '_text', 'jsonb')"
            " ORDER BY table_name, ordinal_position"
        )
    )
    by_table: dict[str, list[str]] = {}
    for table, column in columns:
        by_table.setdefault(table, []).append(column)
    found: dict[tuple[str, str], int] = {}
    for table, names in by_table.items():
        counts = ", ".join(
            f'count(*) FILTER (WHERE CAST("{c}" AS text) LIKE :id OR CAST("{c}" AS text) = :slug)'
            for c in names
        )
        row = (
            await conn.execute(
                sa.text(f'SELECT {counts} FROM core."{table}"'),  # noqa: S608  # catalog names
                {"id": f"%{personality.id}%", "slug": personality.slug},
            )
        ).one()
        found.update({(table, c): n for c, n in zip(names, row, strict=True) if n})
    return found
