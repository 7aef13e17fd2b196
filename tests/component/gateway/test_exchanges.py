"""DeleteExchange: any exchange of the history, found by one of its messages, by its user;
never what was said to the channel (a free-will post, a chain reply), even by its payer."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import Actor, HistoryTurn, JobAccepted, Personality
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.runtime.errors import InvalidArgument, NotFound, PermissionDenied

from .conftest import ALICE, FakeMemory, command, seed

pytestmark = pytest.mark.component

BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")


async def exchange(
    gateway: Gateway, key: str, answer_id: str, *, personality: str = "lilith", message: str = ""
) -> str:
    cmd = command(f"say {key}", key=key, personality=personality)
    if message:
        cmd = dataclasses.replace(cmd, message_ids=(message,))
    events = [event async for event in gateway.generate(cmd)]
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    await gateway.confirm_delivery(accepted.job_id, [answer_id])
    return accepted.job_id


def stored_ids(memory: FakeMemory) -> list[tuple[str, ...]]:
    return [t.message_ids for e in memory.exchanges for t in e.turns]


async def test_an_older_exchange_is_deleted_by_its_answer_and_the_rest_stays(
    gateway: Gateway, admin: Admin, memory: FakeMemory, lilith: Personality
) -> None:
    first = await exchange(gateway, "msg-1", "ans-1")
    await exchange(gateway, "msg-2", "ans-2")

    removed = await admin.delete_exchange(Principal(await gateway.user(ALICE)), "ans-1")

    assert [(t.role, t.message_ids, t.job_id) for t in removed] == [
        ("user", ("msg-1",), first),
        ("assistant", ("ans-1",), first),
    ]
    assert stored_ids(memory) == [("msg-2",), ("ans-2",)]


async def test_only_the_user_it_answered_may_delete_it(
    gateway: Gateway, admin: Admin, memory: FakeMemory, lilith: Personality
) -> None:
    await exchange(gateway, "msg-1", "ans-1")
    with pytest.raises(PermissionDenied) as denied:
        await admin.delete_exchange(Principal(await gateway.user(BOB)), "ans-1")
    assert denied.value.reason == "NOT_YOUR_EXCHANGE"
    assert stored_ids(memory) == [("msg-1",), ("ans-1",)]

    with pytest.raises(NotFound) as missing:
        await admin.delete_exchange(Principal(await gateway.user(ALICE)), "never-posted")
    assert missing.value.reason == "EXCHANGE_NOT_FOUND"
    with pytest.raises(InvalidArgument) as blank:
        await admin.delete_exchange(Principal(await gateway.user(ALICE)), " ")
    assert blank.value.field == "message_id"


async def test_a_message_two_personalities_answered_keeps_the_other_exchange(
    gateway: Gateway, admin: Admin, store: GatewayStore, memory: FakeMemory, lilith: Personality
) -> None:
    await store.import_personality(seed("sage"), owner_user_id=None)
    await exchange(gateway, "msg-3:lilith", "ans-l", message="msg-3")
    await exchange(gateway, "msg-3:sage", "ans-s", personality="sage", message="msg-3")
    alice = Principal(await gateway.user(ALICE))

    with pytest.raises(InvalidArgument):  # the user's message names two exchanges
        await admin.delete_exchange(alice, "msg-3")
    removed = await admin.delete_exchange(alice, "ans-l")

    assert [t.message_ids for t in removed] == [("ans-l",)]
    assert stored_ids(memory) == [("msg-3",), ("msg-3",), ("ans-s",)]


async def test_a_post_said_to_the_channel_is_nobodys_to_delete_not_even_its_payers(
    gateway: Gateway, admin: Admin, memory: FakeMemory, engine: AsyncEngine, lilith: Personality
) -> None:
    """A free-will post Alice pays for: its job is hers (she pays), its turn the channel's
    (no user). Her ❌ on it is refused; her own answer next to it she may still delete."""
    await exchange(gateway, "msg-1", "ans-1")
    alice = await gateway.user(ALICE)
    async with engine.begin() as conn:
        posted = await conn.scalar(
            sa.insert(t.jobs)
            .values(
                idempotency_key=f"turn:{uuid.uuid4()}", status="delivered", user_id=alice.id,
                personality_id=lilith.id, channel_id="channel-1", request_content="",
                author_id=ALICE.platform_user_id, author_name="Alice",
                content="Anyone awake?", delivered_message_ids=["fw-1"],
            )
            .returning(t.jobs.c.id)
        )  # fmt: skip
    await memory.store_exchange(
        job_id=str(posted),
        conversation_id="channel-1",
        personality_id=lilith.id,
        user_id="",  # as delivery stores a scheduled turn
        turns=[HistoryTurn("assistant", "lilith", "Lilith", "Anyone awake?", ("fw-1",))],
        form_memories=False,
    )

    with pytest.raises(PermissionDenied) as denied:
        await admin.delete_exchange(Principal(alice), "fw-1")

    assert denied.value.reason == "NOT_YOUR_EXCHANGE"
    assert "said to the channel" in denied.value.message
    assert stored_ids(memory) == [("msg-1",), ("ans-1",), ("fw-1",)]
    await admin.delete_exchange(Principal(alice), "ans-1")  # her own exchange: hers to delete
    assert stored_ids(memory) == [("fw-1",)]
