"""GetJobStatus pollers of a job the gateway runs again by itself (an operator's RetryJob, or
an answer its dying bot cancelled, generated again by the unfinished-answer sweep) keep
polling until its new outcome, and stop at once when it will not run again.

A retry first makes the failed job retryable (RETRY_REQUESTED), then claims it; in between
it used to read `failed RETRY_REQUESTED`, so a poller gave up on a job about to run again.
Now the job reads `queued` exactly while it will be run again: a retry holds a lease on it
(store/retries.py), ended by its claim (then `running`) or by a refusal before the claim
(then `failed` with why, at once), or run out when its gateway died (then `failed`, as
before); and a job its dying bot cancelled reads `queued` until the sweep generates it again,
unless the sweep will not (its user's data being deleted). Real Postgres for `core`.
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway.domain import Job, JobAccepted, JobError, JobStatus, Personality
from tzurot.gateway.service import RETRY_REQUESTED, Gateway
from tzurot.gateway.store import AdminStore, GatewayStore
from tzurot.runtime.errors import FailedPrecondition
from tzurot.testing.waits import until

from .conftest import (
    ALICE,
    UNFINISHED_AFTER,
    FakeInference,
    FakeKeyVault,
    FakeMemory,
    answer,
    command,
    sweeping_gateway,
)

pytestmark = pytest.mark.component

Seen = list[tuple[JobStatus, str]]


@pytest.fixture
def gateway(sweeping: Gateway) -> Gateway:
    return sweeping


async def poll_until_settled(gateway: Gateway, job_id: str, seen: Seen) -> Job:
    """What a CLI or API client does: GetJobStatus until the job says it will not change
    by itself any more (streamed, delivered, failed), every 5 ms; each status it saw."""
    while True:
        job = await gateway.job_status(job_id=job_id)
        seen.append((job.status, job.error.reason if job.error else ""))
        if job.status.terminal:
            return job
        await asyncio.sleep(0.005)


async def failed_for_good(gateway: Gateway, inference: FakeInference) -> str:
    """A job failed for a lasting reason (the provider rejected the key); its id."""
    inference.script = []
    inference.error = FailedPrecondition("the key was rejected", reason="INVALID_API_KEY")
    stream = gateway.generate(command())
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    with pytest.raises(FailedPrecondition):
        async for _ in stream:
            pass
    inference.error, inference.script = None, answer("Hello again.")
    return accepted.job_id


def held_after_release(
    store: GatewayStore, monkeypatch: pytest.MonkeyPatch
) -> tuple[asyncio.Event, asyncio.Event]:
    """The next retry stops right after the job was made retryable, before its claim, until
    the second event is set (the first is set when it got there)."""
    release = store.release_failed_job
    released, go = asyncio.Event(), asyncio.Event()

    async def held(job_id: str, error: JobError, **kwargs: float) -> None:
        await release(job_id, error, **kwargs)
        released.set()
        await go.wait()

    monkeypatch.setattr(store, "release_failed_job", held)
    return released, go


def pollers(
    gateway: Gateway, job_id: str, count: int = 3
) -> tuple[list[asyncio.Task[Job]], list[Seen]]:
    seen: list[Seen] = [[] for _ in range(count)]
    tasks = [asyncio.create_task(poll_until_settled(gateway, job_id, s)) for s in seen]
    return tasks, seen


async def polled_once(seen: list[Seen]) -> None:
    """Waits until every poller read the job at least once: on a loaded machine a poller's
    first read can take longer than any fixed sleep."""
    await until(lambda: all(seen), "every poller read the job", within=30, every=0.005)


async def test_pollers_of_a_retried_job_wait_for_its_new_answer(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    monkeypatch: pytest.MonkeyPatch,
    lilith: Personality,
) -> None:
    job_id = await failed_for_good(gateway, inference)
    released, go = held_after_release(store, monkeypatch)
    retrying = asyncio.create_task(gateway.retry_job(job_id))
    await released.wait()  # retryable now, not claimed yet

    now = await gateway.job_status(job_id=job_id)
    tasks, seen = pollers(gateway, job_id)
    await polled_once(seen)
    await asyncio.sleep(0.02)  # and a few times more, meanwhile
    go.set()
    retried = await retrying
    ended = await asyncio.gather(*tasks)

    assert (now.status, now.error) == (JobStatus.QUEUED, None)
    assert (retried.status, retried.content) == (JobStatus.STREAMED, "Hello again.")
    for job, statuses in zip(ended, seen, strict=True):
        assert (job.status, job.content) == (JobStatus.STREAMED, "Hello again.")
        assert (JobStatus.QUEUED, "") in statuses
        assert all(status is not JobStatus.FAILED for status, _ in statuses), statuses


async def test_a_retry_refused_before_its_claim_reads_failed_with_why_at_once(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    monkeypatch: pytest.MonkeyPatch,
    lilith: Personality,
) -> None:
    """Refused at admission (here: her data deletion began meanwhile), it will not run:
    pollers stop with the refusal, not a lease later, and a resend may still run it."""
    job_id = await failed_for_good(gateway, inference)
    alice = await gateway.user(ALICE)
    released, go = held_after_release(store, monkeypatch)
    retrying = asyncio.create_task(gateway.retry_job(job_id))
    await released.wait()
    tasks, seen = pollers(gateway, job_id)
    await polled_once(seen)
    await AdminStore(store.engine, store.catalog).mark_user_deleting(alice.id, 60)

    go.set()
    retried = await retrying
    ended = await asyncio.wait_for(asyncio.gather(*tasks), 10.0)  # within the 20 s lease

    assert retried.status is JobStatus.FAILED
    assert retried.error is not None
    assert (retried.error.code, retried.error.reason) == ("UNAVAILABLE", "USER_DATA_DELETING")
    assert "being deleted" in retried.error.message
    assert len(inference.requests) == 1  # never run again
    for job, statuses in zip(ended, seen, strict=True):
        assert job.error is not None
        assert (job.status, job.error.reason) == (JobStatus.FAILED, "USER_DATA_DELETING")
        assert statuses[0] == (JobStatus.QUEUED, "")


async def test_a_retry_whose_gateway_died_reads_failed_once_its_lease_runs_out(
    gateway: Gateway, store: GatewayStore, inference: FakeInference, lilith: Personality
) -> None:
    """Made retryable by a gateway killed before its claim: nobody runs it any more, so it
    reads failed (retryable: a resend runs it) once the retry's lease ran out."""
    job_id = await failed_for_good(gateway, inference)
    # A lease of 1 s: the read below comes within it on a loaded machine (0.2 s is tight).
    await store.release_failed_job(job_id, RETRY_REQUESTED, lease_seconds=1.0)

    during = await gateway.job_status(job_id=job_id)
    await asyncio.sleep(1.2)
    after = await gateway.job_status(job_id=job_id)

    assert during.status is JobStatus.QUEUED
    # Nothing of the attempt that ended shows on a queued job.
    assert (during.finished_at, during.content, during.usage) == (None, "", None)
    assert after.status is JobStatus.FAILED
    assert after.error is not None
    assert (after.error.code, after.error.reason) == ("UNAVAILABLE", "RETRY_REQUESTED")
    stream = gateway.generate(command())  # the message sent again: claimed and run
    events = [event async for event in stream]
    assert isinstance(events[0], JobAccepted)
    assert (await gateway.job_status(job_id=job_id)).status is JobStatus.STREAMED


async def killed_mid_answer(gateway: Gateway, inference: FakeInference) -> str:
    """Its bot showed a preview, then died (CLIENT_CANCELLED); the job id."""
    inference.gate = asyncio.Event()
    stream = gateway.generate(command())
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    await anext(stream)
    await gateway.note_preview(accepted.job_id, ["900"])
    await stream.aclose()
    inference.gate.set()
    inference.gate = None
    return accepted.job_id


async def sweep_in(gateway: Gateway, seconds: float) -> None:
    await asyncio.sleep(seconds)
    await gateway.finish_unfinished_answers()


async def handed_over(engine: AsyncEngine, job_id: str) -> None:
    """Waits until the job's answer was handed to the bot: the sweep's
    regeneration runs in the background, and a test ending before it would close the
    database under it (an asyncpg connection left unclosed)."""
    e = g.bot_events.c

    async def handed() -> bool:
        async with engine.connect() as conn:
            return bool(await conn.scalar(sa.select(sa.exists().where(e.job_id == job_id))))

    await until(handed, f"job {job_id} was handed to the bot", within=30, every=0.05)


async def test_an_answer_its_dying_bot_cancelled_reads_queued_until_generated_again(
    gateway: Gateway,
    store: GatewayStore,
    inference: FakeInference,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    job_id = await killed_mid_answer(gateway, inference)
    cancelled = await store.get_job(job_id)
    assert cancelled is not None
    assert cancelled.status is JobStatus.FAILED  # as stored: the sweep will run it again

    tasks, seen = pollers(gateway, job_id)
    await polled_once(seen)
    await sweep_in(gateway, 2 * UNFINISHED_AFTER)
    ended = await asyncio.wait_for(asyncio.gather(*tasks), 30.0)
    await handed_over(engine, job_id)  # the regeneration's last step, before the engine goes

    for job, statuses in zip(ended, seen, strict=True):
        assert (job.status, job.content) == (JobStatus.STREAMED, "Hello, mortal.")
        assert statuses[0] == (JobStatus.QUEUED, "")
        assert all(status is not JobStatus.FAILED for status, _ in statuses), statuses


async def test_an_answer_the_sweep_will_not_generate_again_reads_failed(
    gateway: Gateway, store: GatewayStore, inference: FakeInference, lilith: Personality
) -> None:
    """Her data is being deleted: the sweep does not generate her answer again (it tells
    her why instead), so pollers stop at once."""
    job_id = await killed_mid_answer(gateway, inference)
    alice = await gateway.user(ALICE)
    await AdminStore(store.engine, store.catalog).mark_user_deleting(alice.id, 60)

    tasks, seen = pollers(gateway, job_id, count=1)
    (job,) = await asyncio.wait_for(asyncio.gather(*tasks), 10.0)  # not until the sweep
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    assert await gateway.finish_unfinished_answers() == 1  # handed over withheld, at once

    assert job.error is not None
    assert (job.status, job.error.reason) == (JobStatus.FAILED, "CLIENT_CANCELLED")
    assert seen[0] == [(JobStatus.FAILED, "CLIENT_CANCELLED")]
    assert len(inference.requests) == 1  # not generated again


async def test_an_answer_cut_off_longer_ago_than_the_sweeps_reach_reads_failed(
    store: GatewayStore,
    inference: FakeInference,
    memory: FakeMemory,
    keyvault: FakeKeyVault,
    lilith: Personality,
) -> None:
    """The sweep leaves an answer that ended more than `unfinished_max_age_seconds` ago as
    it is (it was down, or behind a backlog): such a job will not run again, so it reads
    failed, not queued for good."""
    # A reach of 2 s: the kill (its failure and usage writes) and the first read fit in it on
    # a loaded 2-core machine; 0.3 s did not, once.
    gateway = sweeping_gateway(store, inference, memory, keyvault, unfinished_max_age_seconds=2.0)
    job_id = await killed_mid_answer(gateway, inference)
    assert (await gateway.job_status(job_id=job_id)).status is JobStatus.QUEUED  # within reach
    await asyncio.sleep(2.2)

    job = await gateway.job_status(job_id=job_id)

    assert job.error is not None
    assert (job.status, job.error.reason) == (JobStatus.FAILED, "CLIENT_CANCELLED")
    assert await gateway.finish_unfinished_answers() == 0
    assert len(inference.requests) == 1  # not generated again
