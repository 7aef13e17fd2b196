"""One job runs `max_runs` times at most, whatever runs it again (run_limit.py): a message
that kills the service answering it (a poison message) is not asked again and again on the
user's key, one replica after another. Every path that runs a job again claims it under its
idempotency key: the bot's retries after a restart, a resend taking over a job whose lease
ran out, the claim of one the sweep failed ORPHANED, the unfinished-answer sweep's
regeneration, an operator's retry."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import tables as t
from tzurot.gateway.domain import JobAccepted, JobError, JobStatus, Personality
from tzurot.gateway.job_upkeep import ORPHANED
from tzurot.gateway.run_limit import JOB_RUN_LIMIT, past_run_limit, run_limit_message
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore, NewJob
from tzurot.runtime.errors import FailedPrecondition, TzurotError, Unavailable
from tzurot.testing.waits import until

from .conftest import LIMITS, FakeInference, FakeKeyVault, FakeMemory, answer, command

pytestmark = pytest.mark.component

DIED = Unavailable("inference went away mid-answer", reason="SERVICE_RESTARTING")


async def _ask(gateway: Gateway) -> TzurotError:
    """One Generate of the message (the bot's first ask, or a retry): the error it ends with."""
    with pytest.raises(TzurotError) as failed:
        async for _ in gateway.generate(command()):
            pass
    return failed.value


async def test_a_message_that_kills_inference_runs_three_times_then_fails_for_good(
    gateway: Gateway, store: GatewayStore, inference: FakeInference, lilith: Personality
) -> None:
    inference.script, inference.error = [], DIED
    errors = [await _ask(gateway) for _ in range(5)]  # a client retrying for ever

    assert len(inference.requests) == 3  # the cap, not the client, ended it
    # The third run's own failure reads final: the client does not ask a fourth time for it.
    assert [e.reason for e in errors[:2]] == ["SERVICE_RESTARTING"] * 2
    for late in errors[2:]:
        assert isinstance(late, FailedPrecondition)
        assert late.reason == JOB_RUN_LIMIT
        assert late.message == run_limit_message(3)
    job = await store.get_job_by_key("msg-1")
    assert job is not None
    assert (job.status, job.attempts) == (JobStatus.FAILED, 3)
    assert job.error == JobError("FAILED_PRECONDITION", JOB_RUN_LIMIT, run_limit_message(3))
    # Not retryable: an operator's retry (and so the unfinished-answer sweep's) is refused too.
    with pytest.raises(FailedPrecondition) as refused:
        await gateway.retry_job(job.id)
    assert refused.value.reason == JOB_RUN_LIMIT
    assert len(inference.requests) == 3


async def test_the_cap_is_a_setting(
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    capped = GatewayStore(engine, max_runs=1)
    gateway = Gateway(
        store=capped, inference=inference, memory=memory, keyvault=keyvault, limits=LIMITS
    )
    inference.script, inference.error = [], DIED
    first, second = await _ask(gateway), await _ask(gateway)
    assert first.reason == second.reason == JOB_RUN_LIMIT
    assert second.message == "this message made the answering service fail once; it is not retried"
    assert len(inference.requests) == 1


def _new_job(user_id: str, personality_id: str) -> NewJob:
    return NewJob(
        idempotency_key="msg-1",
        user_id=user_id,
        personality_id=personality_id,
        guild_id="guild-1",
        channel_id="channel-1",
        request_content="Hello",
        request_message_ids=["msg-1"],
        author_id="1",
        author_name="Alice",
    )


async def _stale(engine: AsyncEngine, job_id: str, attempts: int) -> None:
    """The job's gateway died on its `attempts`th run: running, its lease long run out."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(t.jobs)
            .where(t.jobs.c.id == job_id)
            .values(
                attempts=attempts,
                heartbeat_at=sa.func.now() - sa.text("interval '1 hour'"),
            )
        )


async def test_a_job_whose_last_run_died_is_not_taken_over_nor_failed_retryable(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    """The lease paths: a resend's claim of an orphan past its lease, and the sweep's."""
    user = await gateway.user(command().actor)
    job, claimed = await store.claim_job(_new_job(user.id, lilith.id), start=True)
    assert claimed
    await _stale(engine, job.id, 3)

    again, claimed = await store.claim_job(_new_job(user.id, lilith.id), start=True)
    assert not claimed  # not a fourth run
    assert (again.status, again.attempts) == (JobStatus.FAILED, 3)
    assert again.error is not None
    assert again.error.reason == JOB_RUN_LIMIT

    async with engine.begin() as conn:  # running again, as the sweep would meet it
        await conn.execute(sa.update(t.jobs).where(t.jobs.c.id == job.id).values(status="running"))
    assert await store.fail_orphaned_jobs(0.0, ORPHANED) == [job.id]
    swept = await store.get_job(job.id)
    assert swept is not None
    assert swept.error is not None
    assert swept.error.reason == JOB_RUN_LIMIT


async def test_an_orphan_before_its_last_run_stays_retryable(
    gateway: Gateway, store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    user = await gateway.user(command().actor)
    job, _ = await store.claim_job(_new_job(user.id, lilith.id), start=True)
    await _stale(engine, job.id, 2)
    assert await store.fail_orphaned_jobs(0.0, ORPHANED) == [job.id]
    swept = await store.get_job(job.id)
    assert swept is not None
    assert swept.error == ORPHANED
    again, claimed = await store.claim_job(_new_job(user.id, lilith.id), start=True)
    assert claimed
    assert (again.status, again.attempts) == (JobStatus.RUNNING, 3)


async def test_a_lasting_failure_keeps_its_own_words(
    gateway: Gateway, store: GatewayStore, inference: FakeInference, lilith: Personality
) -> None:
    """Only a failure that would let the job run again becomes the run limit's."""
    user = await gateway.user(command().actor)
    job, _ = await store.claim_job(_new_job(user.id, lilith.id), start=True)
    lasting = JobError("FAILED_PRECONDITION", "INVALID_API_KEY", "your key was refused")
    assert await store.fail_job(job.id, lasting, 1)
    assert past_run_limit(FailedPrecondition("refused", reason="INVALID_API_KEY"), 3, 3) is None
    assert past_run_limit(DIED, 2, 3) is None
    last = past_run_limit(DIED, 3, 3)
    assert last is not None
    assert last.reason == JOB_RUN_LIMIT
    failed = await store.get_job(job.id)
    assert failed is not None
    assert failed.error == lasting


async def test_a_dying_bot_s_cut_does_not_count(
    sweeping: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    lilith: Personality,
) -> None:
    """A run its dying bot cut off (CLIENT_CANCELLED) is not one a service died in: past the
    cap its answer is still generated again by the unfinished-answer sweep, which its own
    MAX_REGENERATIONS bounds (review 159: the cap had left two regenerations of three)."""
    inference.script, inference.error = [], DIED
    for _ in range(2):  # two runs died, asked again by the bot
        await _ask(sweeping)
    inference.script, inference.error = answer("Hello", ", ", "mortal."), None
    inference.gate = asyncio.Event()
    stream = sweeping.generate(command())  # its third run, which its bot's death cuts off
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    await anext(stream)
    await sweeping.note_preview(accepted.job_id, ["900"])
    await stream.aclose()  # the bot was killed mid-answer
    inference.gate.set()
    job = await store.get_job(accepted.job_id)
    assert job is not None
    assert job.error is not None
    assert job.error.reason == "CLIENT_CANCELLED"
    inference.script = answer("Hello again.")
    await asyncio.sleep(0.2)  # past UNFINISHED_AFTER
    await sweeping.finish_unfinished_answers()  # generated again in the background
    await until(lambda: len(inference.requests) >= 4, "the sweep's regeneration asked inference")
    assert len(inference.requests) == 4  # regenerated


FLAKY = Unavailable("openrouter is unavailable; try again later", reason="PROVIDER_UNAVAILABLE")


async def test_a_providers_outage_does_not_count_toward_the_cap(
    gateway: Gateway, store: GatewayStore, inference: FakeInference, lilith: Personality
) -> None:
    """A 🔄 pressed again on an answer reuses its key (the bot's `#regen1` from the answer
    shown): three provider hiccups on it (review 159) must not refuse the fourth press once
    the provider is back. Only a run cut by a service's death or its gateway's counts."""
    inference.script, inference.error = [], FLAKY
    failed = [await _ask(gateway) for _ in range(4)]
    assert [e.reason for e in failed] == ["PROVIDER_UNAVAILABLE"] * 4
    inference.script, inference.error = answer("Better", " now."), None
    async for _ in gateway.generate(command()):
        pass
    job = await store.get_job_by_key("msg-1")
    assert job is not None
    assert (job.status, job.attempts) == (JobStatus.STREAMED, 5)
    assert job.content == "Better now."


async def test_a_cut_last_run_after_provider_hiccups_ends_it(
    gateway: Gateway, store: GatewayStore, inference: FakeInference, lilith: Personality
) -> None:
    """Past the cap, the run that a service's death cuts is the last."""
    inference.script, inference.error = [], FLAKY
    await _ask(gateway), await _ask(gateway), await _ask(gateway)
    inference.error = DIED
    final = await _ask(gateway)
    assert (final.reason, len(inference.requests)) == (JOB_RUN_LIMIT, 4)
    refused = await _ask(gateway)
    assert refused.reason == JOB_RUN_LIMIT
    assert len(inference.requests) == 4
