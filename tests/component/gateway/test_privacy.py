"""DeleteUserData's order against work in flight: an answer of the user's that the bot
confirms while the deletion runs is never stored into history after memory forgot them
(it would stay there for good, under an id no user maps to any more). The export's rows
that no RPC of the conftest mesh makes (answer files, scheduled turns), and its size limit.
Real Postgres for `core`; memory is the conftest fake, which lets the confirmation land
mid-deletion."""

from __future__ import annotations

import contextlib
import io
import json
import uuid
import zipfile

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal, privacy
from tzurot.gateway.domain import JobAccepted, Personality
from tzurot.gateway.service import Gateway
from tzurot.runtime.errors import FailedPrecondition, NotFound

from .conftest import ALICE, MemoryConfirmedMeanwhile, command

pytestmark = pytest.mark.component


@pytest.fixture
def memory() -> MemoryConfirmedMeanwhile:
    return MemoryConfirmedMeanwhile()


async def test_an_answer_confirmed_during_the_deletion_is_not_stored_into_history(
    gateway: Gateway,
    admin: Admin,
    memory: MemoryConfirmedMeanwhile,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    events = [event async for event in gateway.generate(command("my address is 1 Elm St"))]
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)  # streamed; the bot is posting it

    async def bot_confirms() -> None:
        with contextlib.suppress(NotFound):  # her job is gone: nothing to deliver
            await gateway.confirm_delivery(accepted.job_id, ["answer-1"])

    memory.meanwhile = bot_confirms
    user = await gateway.user(ALICE)
    await admin.delete_user_data(Principal(user))

    assert memory.meanwhile is None  # the confirmation did land during the deletion
    assert [e for e in memory.exchanges if e.user_id == user.id] == []
    async with engine.connect() as conn:
        for table, column in ((t.users, t.users.c.id), (t.jobs, t.jobs.c.user_id)):
            count = await conn.scalar(
                sa.select(sa.func.count()).select_from(table).where(column == user.id)
            )
            assert count == 0, table.name


async def test_the_export_holds_what_answers_carried_not_the_channels_scheduled_turns(
    gateway: Gateway,
    admin: Admin,
    engine: AsyncEngine,
    lilith: Personality,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Her request, with a voice note a helper transcribed and an image the answer carried;
    # and what she pays for in a group channel: free will there, and a chain reply it
    # scheduled on her, whose answer (about Bob) is the channel's, not hers.
    [accepted, *_] = [event async for event in gateway.generate(command("draw my cat"))]
    assert isinstance(accepted, JobAccepted)
    user = await gateway.user(ALICE)
    turn = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(t.jobs)
            .where(t.jobs.c.id == accepted.job_id)
            .values(attachment_reads={"https://cdn.example/voice.ogg": "please draw my cat"})
        )
        chain_job = await conn.scalar(
            sa.insert(t.jobs)
            .values(
                idempotency_key=f"turn:{turn}", status="delivered", user_id=user.id,
                personality_id=lilith.id, channel_id="channel-1", request_content="",
                author_id="", author_name="", content="Bob, your address is 1 Elm St",
                reasoning="Bob lives at 1 Elm St",
            )
            .returning(t.jobs.c.id)
        )  # fmt: skip
        for job, name in ((accepted.job_id, "../cat.png"), (chain_job, "bob.png")):
            await conn.execute(
                sa.insert(t.job_files).values(
                    job_id=job, position=0, filename=name, content_type="image/png",
                    data=b"\x89PNG " + name.encode(), description="a picture",
                )
            )  # fmt: skip
        await conn.execute(
            sa.insert(g.freewill_channels).values(
                conversation_id="channel-1", channel_id="channel-1"
            )
        )
        await conn.execute(
            sa.insert(g.freewill_personalities).values(
                conversation_id="channel-1", personality_id=lilith.id, payer_user_id=user.id
            )
        )
        await conn.execute(
            sa.insert(g.bot_events).values(
                id=turn, kind="turn", channel_id="channel-1", personality_id=lilith.id,
                payer_user_id=user.id, reason="chain", directive="Reply to Bob's address",
            )
        )  # fmt: skip

    archive = (await admin.export_user_data(Principal(user))).archive

    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        files = {name: opened.read(name) for name in opened.namelist()}
    mine, chain = json.loads(files["messages.json"])
    (picture,) = mine["files"]
    assert (mine["request_content"], mine["scheduled"], mine["attachment_reads"]) == (
        "draw my cat",
        False,
        {"https://cdn.example/voice.ogg": "please draw my cat"},
    )
    assert picture["file"] == f"answer_files/{accepted.job_id}/0-cat.png"
    assert files[picture["file"]] == b"\x89PNG ../cat.png"
    assert (chain["scheduled"], chain["answer"], chain["reasoning"], chain["files"]) == (
        True,
        None,
        None,
        [],
    )
    assert [(f["conversation_id"], f["enabled"]) for f in json.loads(files["free_will.json"])] == [
        ("channel-1", True)
    ]
    assert [(e["id"], e["reason"]) for e in json.loads(files["scheduled_turns.json"])] == [
        (turn, "chain")
    ]
    assert b"Elm St" not in b"".join(files.values())

    # JSON alone past what one reply carries: refused, saying so.
    monkeypatch.setattr(privacy, "MAX_ARCHIVE_BYTES", 2000)
    with pytest.raises(FailedPrecondition) as refused:
        await admin.export_user_data(Principal(user))
    assert refused.value.reason == "EXPORT_TOO_LARGE"
    assert "one export can carry" in refused.value.message
