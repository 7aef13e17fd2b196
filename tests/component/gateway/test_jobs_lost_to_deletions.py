"""An answer whose job is deleted while it is being answered, with its personality (by its
owner) or with its user's data: the run ends saying why, in the words its half answer reads
with once a restarted bot shows it (PERSONALITY_DELETED, USER_DATA_DELETING), not as one
whose job another run took over (JOB_TAKEN_OVER), and writes no answer and no history; what
the provider billed for an answer it finished is recorded, as paid but not delivered. A
confirmation of an answer its personality's deletion dropped is told so too.
One carrying files is lost the same way (its files used to be written first: INTERNAL), and
one whose loss cannot be read (Postgres failing over) ends as before that read was made.

The run used to end JOB_TAKEN_OVER, which the bot showed as "Something went wrong on our
side" in the deleted personality's voice. Real Postgres for `core`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway import tables as t
from tzurot.gateway.admin import Admin, Principal
from tzurot.gateway.domain import (
    Actor,
    GeneratedFile,
    GenerateEvent,
    JobAccepted,
    JobStatus,
    ReplyChunk,
    ReplyFinished,
)
from tzurot.gateway.personalities import PersonalitySeed
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.unfinished import PERSONALITY_DELETED_WORDS
from tzurot.runtime.errors import (
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    TzurotError,
    Unavailable,
)

from .conftest import (
    ALICE,
    LIMITS,
    USAGE,
    FakeInference,
    FakeKeyVault,
    FakeMemory,
    command,
)
from .heartbeat_support import heartbeats, lease_lost
from .test_service import collect

pytestmark = pytest.mark.component

BOB = Actor(platform_user_id="100000000000000002", display_name="Bob")


@pytest.fixture
def lease() -> float:
    """The job lease: 0.4 s, a heartbeat every 0.1 s (a run learns at once that its job is
    gone); a test may give one no heartbeat comes within."""
    return 0.4


@pytest.fixture
async def gateway(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lease: float,
) -> AsyncIterator[Gateway]:
    limits = dataclasses.replace(LIMITS, job_lease_seconds=lease)
    made = Gateway(
        store=store, inference=inference, memory=memory, turns=memory, keyvault=keyvault,
        limits=limits,
    )  # fmt: skip
    yield made
    await made.stop_background()


async def bobs_finch(gateway: Gateway, store: GatewayStore) -> None:
    """Bob's public personality, which Alice talks to."""
    bob = await gateway.user(BOB)
    await store.import_personality(PersonalitySeed(name="Finch", public=True), owner_user_id=bob.id)


async def answering(
    gateway: Gateway, inference: FakeInference, events: list[GenerateEvent]
) -> tuple[asyncio.Task[list[GenerateEvent]], str]:
    """Alice's answer from Finch, its first chunk streamed and the rest held: the run, and
    its job id."""
    inference.gate = asyncio.Event()
    run = asyncio.create_task(collect(gateway.generate(command(personality="finch")), events))
    await asyncio.wait_for(inference.first_event_sent.wait(), 5)
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    return run, accepted.job_id


async def written(engine: AsyncEngine, job_id: str) -> dict[str, int]:
    """What is left of the job: its row, its usage rows, events naming it."""
    async with engine.connect() as conn:
        counts = {}
        for name, table, column in (
            ("jobs", t.jobs, t.jobs.c.id),
            ("usage_log", t.usage_log, t.usage_log.c.job_id),
            ("bot_events", g.bot_events, g.bot_events.c.job_id),
        ):
            found = sa.select(sa.func.count()).select_from(table).where(column == job_id)
            counts[name] = int(await conn.scalar(found) or 0)
    return counts


NOTHING = {"jobs": 0, "usage_log": 0, "bot_events": 0}
BILLED_ONLY = {"jobs": 0, "usage_log": 1, "bot_events": 0}


async def failed_usage(engine: AsyncEngine, job_id: str) -> list[tuple[bool, int]]:
    """The job's usage rows: (paid but not delivered, input tokens)."""
    u = t.usage_log.c
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(u.failed, u.input_tokens).where(u.job_id == job_id).order_by(u.id)
        )
        return [(bool(failed), int(tokens)) for failed, tokens in rows]


async def ended_with(run: asyncio.Task[list[GenerateEvent]]) -> TzurotError:
    with pytest.raises(TzurotError) as ended:
        await asyncio.wait_for(run, 5)
    return ended.value


@pytest.mark.parametrize("lease", [0.4, 60.0], ids=["mid-answer", "at-its-finish"])
async def test_a_run_whose_personality_is_deleted_ends_saying_so_and_writes_nothing(
    gateway: Gateway,
    store: GatewayStore,
    admin: Admin,
    *,
    inference: FakeInference,
    memory: FakeMemory,
    engine: AsyncEngine,
    lease: float,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Bob deletes Finch while it answers Alice: the run's next heartbeat finds its job gone
    (mid-answer), or its finish does (the answer was all there before a heartbeat)."""
    await bobs_finch(gateway, store)
    events: list[GenerateEvent] = []
    run, job_id = await answering(gateway, inference, events)
    beats = heartbeats(store, monkeypatch)

    await admin.delete_personality(Principal(await gateway.user(BOB)), "finch")
    heartbeat = lease < 1
    if heartbeat:
        await lease_lost(beats)
    inference.gate.set()  # type: ignore[union-attr]  # set by `answering`

    ended = await ended_with(run)
    assert isinstance(ended, FailedPrecondition)
    assert (ended.reason, ended.message) == ("PERSONALITY_DELETED", PERSONALITY_DELETED_WORDS)
    # Mid-answer it stops at the next event, before the rest is paid for and streamed.
    assert len(events) == (2 if heartbeat else 4)
    assert inference.streams_closed == 1
    if heartbeat:
        # No answer, no hand-over; the text relayed before was billed: estimated, not delivered.
        assert await written(engine, job_id) == BILLED_ONLY
        assert await failed_usage(engine, job_id) == [(True, 0)]
    else:  # the provider answered in full: what it billed is recorded, as not delivered
        assert await written(engine, job_id) == BILLED_ONLY
        assert await failed_usage(engine, job_id) == [(True, USAGE.input_tokens)]
    assert memory.exchanges == []


@pytest.mark.parametrize("lease", [60.0], ids=["at-its-finish"])
async def test_a_run_with_files_whose_personality_is_deleted_at_its_finish_says_so(
    gateway: Gateway,
    store: GatewayStore,
    admin: Admin,
    *,
    inference: FakeInference,
    memory: FakeMemory,
    engine: AsyncEngine,
) -> None:
    """As above, its answer carrying a file (a generated image): its finish finds the job
    gone the same way. It used to write the files first, which the deleted job's foreign
    key refused (IntegrityError): the run ended INTERNAL, "Something went wrong" in Finch's
    voice."""
    drawn = GeneratedFile("finch.png", "image/png", b"\x89PNG", "a finch")
    inference.script = [
        ReplyChunk("Here"),
        ReplyChunk(" is your picture."),
        ReplyFinished("Here is your picture.", USAGE, "stop", files=(drawn,)),
    ]
    await bobs_finch(gateway, store)
    events: list[GenerateEvent] = []
    run, job_id = await answering(gateway, inference, events)

    await admin.delete_personality(Principal(await gateway.user(BOB)), "finch")
    inference.gate.set()  # type: ignore[union-attr]  # set by `answering`

    ended = await ended_with(run)
    assert isinstance(ended, FailedPrecondition)
    assert (ended.reason, ended.message) == ("PERSONALITY_DELETED", PERSONALITY_DELETED_WORDS)
    assert await written(engine, job_id) == BILLED_ONLY
    async with engine.connect() as conn:
        files = sa.select(sa.func.count()).where(t.job_files.c.job_id == job_id)
        assert await conn.scalar(files) == 0
    assert memory.exchanges == []


async def test_a_run_whose_users_data_is_deleted_ends_saying_hers_is(
    gateway: Gateway,
    store: GatewayStore,
    admin: Admin,
    *,
    inference: FakeInference,
    memory: FakeMemory,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As any answer to her is refused while her data is deleted (a message of hers, a half
    answer of hers after a restart), in the same words."""
    await bobs_finch(gateway, store)
    events: list[GenerateEvent] = []
    run, job_id = await answering(gateway, inference, events)
    beats = heartbeats(store, monkeypatch)

    await admin.delete_user_data(Principal(await gateway.user(ALICE)))
    await lease_lost(beats)
    inference.gate.set()  # type: ignore[union-attr]  # set by `answering`

    ended = await ended_with(run)
    assert isinstance(ended, PermissionDenied)
    assert ended.reason == "USER_DATA_DELETING"
    assert "your data is being deleted" in ended.message
    assert await written(engine, job_id) == NOTHING
    assert memory.exchanges == []


async def test_a_run_whose_job_another_run_took_over_still_says_so(
    gateway: Gateway,
    store: GatewayStore,
    *,
    inference: FakeInference,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its job is still there, another run's: JOB_TAKEN_OVER, even while its personality's
    deletion is under way (it has not dropped the job yet)."""
    await bobs_finch(gateway, store)
    events: list[GenerateEvent] = []
    run, job_id = await answering(gateway, inference, events)
    beats = heartbeats(store, monkeypatch)
    async with engine.begin() as conn:  # another run claimed it; Finch's deletion recorded
        await conn.execute(
            sa.update(t.jobs).where(t.jobs.c.id == job_id).values(attempts=t.jobs.c.attempts + 1)
        )
        await conn.execute(
            sa.update(t.personalities)
            .where(t.personalities.c.slug == "finch")
            .values(deletion_requested_at=sa.func.now())
        )
    await lease_lost(beats)
    inference.gate.set()  # type: ignore[union-attr]  # set by `answering`

    ended = await ended_with(run)
    assert (type(ended), ended.reason) == (FailedPrecondition, "JOB_TAKEN_OVER")


async def test_a_run_that_finds_its_job_taken_over_at_its_finish_records_what_was_billed(
    gateway: Gateway,
    store: GatewayStore,
    *,
    inference: FakeInference,
    engine: AsyncEngine,
) -> None:
    """The provider answered in full (and billed the user's key) before the run found another
    run had its job: that usage is recorded once, as not delivered, and the job stays the
    other run's."""
    await bobs_finch(gateway, store)
    events: list[GenerateEvent] = []
    run, job_id = await answering(gateway, inference, events)
    async with engine.begin() as conn:  # another run claimed it
        await conn.execute(
            sa.update(t.jobs).where(t.jobs.c.id == job_id).values(attempts=t.jobs.c.attempts + 1)
        )
    inference.gate.set()  # type: ignore[union-attr]  # set by `answering`

    ended = await ended_with(run)
    assert (type(ended), ended.reason) == (FailedPrecondition, "JOB_TAKEN_OVER")
    assert await failed_usage(engine, job_id) == [(True, USAGE.input_tokens)]
    job = await store.get_job(job_id)
    assert job is not None
    assert (job.status, job.attempts, job.content) == (JobStatus.RUNNING, 2, "")


async def failover(*_: object) -> object:
    """A read of the store during a Postgres failover."""
    raise ConnectionResetError("connection was closed in the middle of operation")


async def test_a_run_that_cannot_read_why_its_job_is_lost_still_says_taken_over(
    gateway: Gateway,
    store: GatewayStore,
    *,
    inference: FakeInference,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A job is taken over around a Postgres failover, when the read of why may fail too:
    the run ends as it did before it read why (JOB_TAKEN_OVER), not as a bug (INTERNAL,
    job.unexpected_error)."""
    await bobs_finch(gateway, store)
    events: list[GenerateEvent] = []
    run, job_id = await answering(gateway, inference, events)
    beats = heartbeats(store, monkeypatch)
    monkeypatch.setattr(store, "job_loss", failover)
    async with engine.begin() as conn:  # another run claimed it
        await conn.execute(
            sa.update(t.jobs).where(t.jobs.c.id == job_id).values(attempts=t.jobs.c.attempts + 1)
        )
    await lease_lost(beats)
    inference.gate.set()  # type: ignore[union-attr]  # set by `answering`

    ended = await ended_with(run)
    assert (type(ended), ended.reason) == (FailedPrecondition, "JOB_TAKEN_OVER")


async def test_a_confirmation_that_cannot_read_why_its_job_is_gone_is_told_to_retry(
    gateway: Gateway,
    store: GatewayStore,
    admin: Admin,
    *,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its job gone, and the read of why failing (a failover): UNAVAILABLE, which the bot
    retries (ConfirmDelivery is idempotent) and so learns why once the database is back; not
    INTERNAL, and not a final JOB_NOT_FOUND that would leave a deleted personality's answer
    up as if delivered."""
    await bobs_finch(gateway, store)
    events = await collect(gateway.generate(command(personality="finch")))
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    await gateway.note_preview(accepted.job_id, ["900"])
    await admin.delete_personality(Principal(await gateway.user(BOB)), "finch")
    monkeypatch.setattr(store, "withheld_reason", failover)

    with pytest.raises(TzurotError) as refused:
        await gateway.confirm_delivery(accepted.job_id, ["900"])
    assert (type(refused.value), refused.value.reason) == (Unavailable, "DATABASE_UNAVAILABLE")
    monkeypatch.undo()  # the database back: the bot's retry learns why
    with pytest.raises(TzurotError) as retried:
        await gateway.confirm_delivery(accepted.job_id, ["900"])
    assert retried.value.reason == "PERSONALITY_DELETED"


async def test_a_job_dropped_during_its_delivery_whose_reason_cannot_be_read_is_retried(
    gateway: Gateway,
    store: GatewayStore,
    admin: Admin,
    *,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deletion lands between the exchange's storing and the job's delivery, and why
    cannot be read (a failover): told UNAVAILABLE to retry, as above; not taken for memory
    away (which notes the delivery on the job's row: gone, so INTERNAL)."""
    await bobs_finch(gateway, store)
    events = await collect(gateway.generate(command(personality="finch")))
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    await gateway.note_preview(accepted.job_id, ["900"])
    deliver = store.deliver

    async def dropped_first(job_id: str, *args: object, **kwargs: object) -> object:
        await admin.delete_personality(Principal(await gateway.user(BOB)), "finch")
        monkeypatch.setattr(store, "withheld_reason", failover)
        return await deliver(job_id, *args, **kwargs)  # type: ignore[arg-type]  # passed on

    monkeypatch.setattr(store, "deliver", dropped_first)
    with pytest.raises(TzurotError) as refused:
        await gateway.confirm_delivery(accepted.job_id, ["900"])
    assert (type(refused.value), refused.value.reason) == (Unavailable, "DATABASE_UNAVAILABLE")


@pytest.mark.parametrize("previewed", [True, False], ids=["previewed", "not-previewed"])
async def test_a_confirmation_after_its_personality_was_deleted_is_told_so(
    gateway: Gateway,
    store: GatewayStore,
    admin: Admin,
    *,
    memory: FakeMemory,
    previewed: bool,
) -> None:
    """Answered whole, then Finch deleted before its bot confirmed it: nothing is delivered.
    One whose preview the bot had noted was handed over withheld by the deletion, which is
    how the confirmation learns why (PERSONALITY_DELETED, for the bot to show it where the
    answer is); of one it had not, nothing is left to tell it by (JOB_NOT_FOUND)."""
    await bobs_finch(gateway, store)
    events = await collect(gateway.generate(command(personality="finch")))
    accepted = events[0]
    assert isinstance(accepted, JobAccepted)
    if previewed:
        await gateway.note_preview(accepted.job_id, ["900"])

    await admin.delete_personality(Principal(await gateway.user(BOB)), "finch")

    with pytest.raises(TzurotError) as refused:
        await gateway.confirm_delivery(accepted.job_id, ["900"])
    if previewed:
        assert isinstance(refused.value, FailedPrecondition)
        assert (refused.value.reason, refused.value.message) == (
            "PERSONALITY_DELETED",
            PERSONALITY_DELETED_WORDS,
        )
    else:
        assert isinstance(refused.value, NotFound)
        assert refused.value.reason == "JOB_NOT_FOUND"
    assert memory.exchanges == []
