"""Half answers whose gateway stopped or restarted (GATEWAY_RESTARTING), not only their bot.

A sweep's regeneration (an answer its dying bot cancelled, generated again with no client)
cut short by its own gateway's stop is released for the next sweep, and one whose gateway was
killed (ORPHANED after its claim) is generated again too. Each regeneration costs the user's
key, so a gateway that keeps stopping mid-regeneration gets MAX_REGENERATIONS of them; then
the answer is handed to the bot as cut off. An answer whose own run ended GATEWAY_RESTARTING
is handed over cut off, not generated again: its bot may still be there, and has told the user
to try again (its clearing of the preview may come late, or be lost). Real Postgres for `core`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.gateway import group_tables as g
from tzurot.gateway.domain import (
    GenerateEvent,
    Job,
    JobAccepted,
    JobError,
    JobStatus,
    Personality,
)
from tzurot.gateway.job_upkeep import GATEWAY_STOPPED, ORPHANED
from tzurot.gateway.run_limit import JOB_RUN_LIMIT, run_limit_message
from tzurot.gateway.service import Gateway
from tzurot.gateway.store import GatewayStore
from tzurot.gateway.store.previews import MAX_REGENERATIONS
from tzurot.testing.waits import until

from .conftest import (
    UNFINISHED_AFTER,
    FakeInference,
    FakeKeyVault,
    FakeMemory,
    command,
    sweeping_gateway,
)

pytestmark = pytest.mark.component

WHOLE = "Hello, mortal."


class Replicas:
    """Gateway replicas over the same database, each with its own inference (held back when
    `held`), their background work stopped at the end."""

    def __init__(self, store: GatewayStore, memory: FakeMemory, keyvault: FakeKeyVault) -> None:
        self.store, self.memory, self.keyvault = store, memory, keyvault
        self.made: list[Gateway] = []
        self.inferences: list[FakeInference] = []

    def start(self, *, held: bool = False) -> tuple[Gateway, FakeInference]:
        inference = FakeInference(gate=asyncio.Event() if held else None)
        gateway = sweeping_gateway(self.store, inference, self.memory, self.keyvault)
        self.made.append(gateway)
        self.inferences.append(inference)
        return gateway, inference

    def paid(self) -> int:
        """How many answers inference was asked for, on every replica."""
        return sum(len(i.requests) for i in self.inferences)


@pytest.fixture
async def replicas(
    store: GatewayStore, memory: FakeMemory, keyvault: FakeKeyVault
) -> AsyncIterator[Replicas]:
    made = Replicas(store, memory, keyvault)
    yield made
    for gateway in reversed(made.made):
        await gateway.stop_background()


async def _shown(gateway: Gateway) -> tuple[str, AsyncGenerator[GenerateEvent, None]]:
    """The bot showed a preview ("900") of the answer's first chunk (inference then held
    back); the job id and the bot's stream."""
    stream = gateway.generate(command())
    accepted = await anext(stream)
    assert isinstance(accepted, JobAccepted)
    await anext(stream)
    await gateway.note_preview(accepted.job_id, ["900"])
    return accepted.job_id, stream


async def _job(store: GatewayStore, job_id: str) -> Job:
    job = await store.get_job(job_id)
    assert job is not None
    return job


async def _regenerating(
    gateway: Gateway, store: GatewayStore, job_id: str, replicas: Replicas
) -> None:
    """Once the answer ended long enough ago, `gateway` sweeps, and its regeneration is
    running: claimed, and its inference asked (and held back). Claimed alone, a stop could
    still land before inference is asked: a run cut short there is generated again as well,
    but asks inference once fewer."""
    before, asked = (await _job(store, job_id)).attempts, replicas.paid()
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    await gateway.finish_unfinished_answers()

    async def started() -> bool:
        job = await _job(store, job_id)
        running = job.status is JobStatus.RUNNING and job.attempts > before
        return running and replicas.paid() > asked

    await until(started, "a regeneration started, inference asked", within=30, every=0.02)


async def _stop(gateway: Gateway) -> None:
    """SIGTERM, as app.py stops a gateway: stopping, its background work cancelled, then
    its running jobs released."""
    gateway.stopping()
    await gateway.stop_background()
    await gateway.release_running_jobs()


async def _handed(engine: AsyncEngine) -> list[str]:
    e = g.bot_events.c
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(e.job_id).where(e.kind == "unfinished"))
        return [str(r.job_id) for r in rows]


async def _sweep_until_handed(gateway: Gateway, engine: AsyncEngine) -> list[str]:
    """Once the answer ended long enough ago: one sweep (its regeneration runs in the
    background), then the jobs handed to the bot once that shows."""
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    await gateway.finish_unfinished_answers()
    await until(lambda: _handed(engine), "the sweep handed an answer over", within=30, every=0.05)
    return await _handed(engine)


async def test_a_regeneration_its_gateway_stopped_is_generated_again_by_the_next_sweep(
    replicas: Replicas, store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    first, _ = replicas.start(held=True)
    job_id, bot = await _shown(first)
    await bot.aclose()  # the bot was killed mid-answer: CLIENT_CANCELLED
    await _regenerating(first, store, job_id, replicas)

    await _stop(first)  # SIGTERM mid-regeneration (a rollout)

    stopped = await _job(store, job_id)
    assert stopped.error is not None
    assert (stopped.status, stopped.error.reason) == (JobStatus.FAILED, "GATEWAY_RESTARTING")
    assert stopped.preview_retried_at is None  # released: the next sweep generates it
    assert stopped.retry_until is None
    other, _ = replicas.start()
    assert (await other.job_status(job_id=job_id)).status is JobStatus.QUEUED
    assert await _handed(engine) == []

    assert await _sweep_until_handed(other, engine) == [job_id]
    whole = await _job(store, job_id)
    assert (whole.status, whole.content) == (JobStatus.STREAMED, WHOLE)
    assert whole.preview_message_ids == ("900",)
    assert replicas.paid() == 3  # the answer, the regeneration cut short, this one
    assert await other.finish_unfinished_answers() == 0  # handed once


async def _handed_cut_off(
    other: Gateway, engine: AsyncEngine, store: GatewayStore, job_id: str
) -> None:
    """`other`'s sweep hands the answer to the bot as it is, cut off by a restart, once,
    without generating it again; GetJobStatus read it failed all along."""
    assert (await other.job_status(job_id=job_id)).status is JobStatus.FAILED
    assert await _sweep_until_handed(other, engine) == [job_id]
    cut = await _job(store, job_id)
    assert cut.error is not None
    assert (cut.status, cut.error.reason) == (JobStatus.FAILED, "GATEWAY_RESTARTING")
    assert cut.preview_retried_at is None
    assert await other.finish_unfinished_answers() == 0  # handed once


@pytest.mark.parametrize("ending", ["stopped", "orphaned"])
async def test_a_half_answer_whose_gateway_went_away_is_handed_over_cut_off(
    ending: str,
    replicas: Replicas,
    store: GatewayStore,
    engine: AsyncEngine,
    lilith: Personality,
) -> None:
    """Its run ended GATEWAY_RESTARTING (its gateway stopped: GATEWAY_STOPPED; or was killed
    and its orphan failed: ORPHANED), its preview still noted, its bot gone too. Not generated
    again: that is also how the answer of a live bot ends, which told the user to try again."""
    first, _ = replicas.start(held=True)
    job_id, bot = await _shown(first)
    if ending == "stopped":
        first.stopping()
        await bot.aclose()  # the stop cancels its stream, and the bot is gone too
        await first.release_running_jobs()
    else:
        assert await store.fail_orphaned_jobs(0.0, ORPHANED) == [job_id]  # after its lease
        await bot.aclose()  # (its late failure changes nothing)
    other, inference = replicas.start()

    await _handed_cut_off(other, engine, store, job_id)
    assert inference.requests == []
    assert replicas.paid() == 1


async def test_a_live_bots_answer_whose_preview_clearing_was_lost_is_not_generated_again(
    replicas: Replicas, store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    """The gateway stops mid-answer with its bot alive: the bot shows "the gateway is
    restarting; try again" and clears its preview in the background, a note lost here (the
    preview stays noted). Generating it again would answer twice (the user resends), paying
    twice, and edit the bot's error into the answer."""
    first, _ = replicas.start(held=True)
    job_id, bot = await _shown(first)
    first.stopping()
    await first.release_running_jobs()  # SIGTERM: its job failed GATEWAY_STOPPED
    cut = await _job(store, job_id)
    assert cut.error is not None
    assert (cut.status, cut.error.reason) == (JobStatus.FAILED, "GATEWAY_RESTARTING")
    assert cut.preview_message_ids == ("900",)  # the live bot's clearing never arrived
    other, inference = replicas.start()

    await _handed_cut_off(other, engine, store, job_id)
    assert inference.requests == []
    assert replicas.paid() == 1
    await bot.aclose()  # the live bot's stream, ended by the server's stop


async def test_a_regeneration_whose_gateway_was_killed_is_generated_again(
    replicas: Replicas, store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    """kill -9 mid-regeneration: nothing released it, but its run ended GATEWAY_RESTARTING
    (ORPHANED) after the regeneration began, which the next sweep generates again too."""
    first, _ = replicas.start(held=True)
    job_id, bot = await _shown(first)
    await bot.aclose()
    await _regenerating(first, store, job_id, replicas)
    # Killed: its regeneration writes nothing more (held back here, cancelled at the end,
    # when every write of its is fenced off); another replica fails the orphan.
    assert await store.fail_orphaned_jobs(0.0, ORPHANED) == [job_id]
    orphan = await _job(store, job_id)
    assert orphan.preview_retried_at is not None
    other, _ = replicas.start()
    assert (await other.job_status(job_id=job_id)).status is JobStatus.QUEUED

    assert await _sweep_until_handed(other, engine) == [job_id]
    whole = await _job(store, job_id)
    assert (whole.status, whole.content) == (JobStatus.STREAMED, WHOLE)
    assert replicas.paid() == 3


@pytest.mark.usefixtures("lilith")
@pytest.mark.parametrize("release", ["before_its_failure", "lost"])
async def test_a_stopped_regeneration_is_generated_again_whatever_its_writes_order(
    release: str,
    replicas: Replicas,
    store: GatewayStore,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The release of a regeneration cut short may land before its run's own failure write
    (shielded, still waiting on Postgres), or not at all (the database away, the engine
    closed): either way the next sweep generates the answer again."""
    first, _ = replicas.start(held=True)
    job_id, bot = await _shown(first)
    await bot.aclose()
    await _regenerating(first, store, job_id, replicas)
    if release == "before_its_failure":
        assert await store.release_preview_retry(job_id, 1, GATEWAY_STOPPED)
        assert (await _job(store, job_id)).status is JobStatus.RUNNING

    async def not_released(*_: object) -> bool:
        raise OSError("the database is away")

    monkeypatch.setattr(store, "release_preview_retry", not_released, raising=False)
    await _stop(first)  # its failure write (GATEWAY_STOPPED) lands now
    monkeypatch.undo()
    stopped = await _job(store, job_id)
    assert stopped.error is not None
    assert (stopped.status, stopped.error.reason) == (JobStatus.FAILED, "GATEWAY_RESTARTING")
    other, _ = replicas.start()
    assert (await other.job_status(job_id=job_id)).status is JobStatus.QUEUED

    assert await _sweep_until_handed(other, engine) == [job_id]
    whole = await _job(store, job_id)
    assert (whole.status, whole.content) == (JobStatus.STREAMED, WHOLE)
    assert replicas.paid() == 3


@pytest.mark.usefixtures("lilith")
async def test_a_regeneration_its_gateway_stopped_before_it_ran_is_generated_again(
    replicas: Replicas,
    store: GatewayStore,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Stopped after the retry made the job retryable (RETRY_REQUESTED), before it claimed
    it: nothing was paid, and the answer was cut off by its gateway, not refused."""
    first, _ = replicas.start(held=True)
    job_id, bot = await _shown(first)
    await bot.aclose()
    make_retryable = store.release_failed_job
    retryable = asyncio.Event()

    async def held(job_id: str, error: JobError, **kwargs: float) -> None:
        await make_retryable(job_id, error, **kwargs)
        retryable.set()
        await asyncio.Event().wait()  # until the stop cancels it

    monkeypatch.setattr(store, "release_failed_job", held)
    await asyncio.sleep(2 * UNFINISHED_AFTER)
    await first.finish_unfinished_answers()
    await asyncio.wait_for(retryable.wait(), 5.0)
    await _stop(first)
    monkeypatch.undo()
    stopped = await _job(store, job_id)
    assert stopped.error is not None
    assert (stopped.status, stopped.error.reason) == (JobStatus.FAILED, "GATEWAY_RESTARTING")
    assert stopped.error.message == GATEWAY_STOPPED.message
    assert replicas.paid() == 1

    other, _ = replicas.start()
    assert await _sweep_until_handed(other, engine) == [job_id]
    whole = await _job(store, job_id)
    assert (whole.status, whole.content) == (JobStatus.STREAMED, WHOLE)
    assert replicas.paid() == 2


async def test_an_answer_whose_gateways_keep_stopping_mid_regeneration_is_handed_over_cut_off(
    replicas: Replicas, store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    """Each regeneration costs the user's key: after MAX_REGENERATIONS cut short, the next
    sweep hands the answer over as it is (the bot says it was cut off by a restart), and
    GetJobStatus reads it failed, for its pollers to stop. (The job's run limit, 3 runs by
    default, would end it first: raised here, `test_..._at_its_run_limit` below.)"""
    replicas.store = GatewayStore(engine, max_runs=2 + MAX_REGENERATIONS)
    first, _ = replicas.start(held=True)
    job_id, bot = await _shown(first)
    await bot.aclose()
    for _ in range(MAX_REGENERATIONS):  # a crash-looping rollout
        gateway, _ = replicas.start(held=True)
        await _regenerating(gateway, store, job_id, replicas)
        await _stop(gateway)
    assert replicas.paid() == 1 + MAX_REGENERATIONS
    last, _ = replicas.start()
    assert (await last.job_status(job_id=job_id)).status is JobStatus.FAILED

    assert await _sweep_until_handed(last, engine) == [job_id]
    cut = await _job(store, job_id)
    assert cut.error is not None
    assert (cut.status, cut.error.reason) == (JobStatus.FAILED, "GATEWAY_RESTARTING")
    assert replicas.paid() == 1 + MAX_REGENERATIONS  # not generated again
    assert await last.finish_unfinished_answers() == 0


async def test_an_answer_whose_gateways_keep_stopping_mid_regeneration_ends_at_its_run_limit(
    replicas: Replicas, store: GatewayStore, engine: AsyncEngine, lilith: Personality
) -> None:
    """A regeneration is a run of the job: its first run and two regenerations cut short are
    its three runs (run_limit.py), and it is handed over failed for good, in those words."""
    first, _ = replicas.start(held=True)
    job_id, bot = await _shown(first)
    await bot.aclose()
    for _ in range(2):
        gateway, _ = replicas.start(held=True)
        await _regenerating(gateway, store, job_id, replicas)
        await _stop(gateway)
    assert replicas.paid() == 3
    last, _ = replicas.start()
    assert (await last.job_status(job_id=job_id)).status is JobStatus.FAILED

    assert await _sweep_until_handed(last, engine) == [job_id]
    cut = await _job(store, job_id)
    assert cut.error is not None
    assert (cut.status, cut.attempts, cut.error.reason) == (JobStatus.FAILED, 3, JOB_RUN_LIMIT)
    assert replicas.paid() == 3  # not generated a fourth time
    (event,) = await last.group_store.claim_events(last.clock.now(), timedelta(seconds=60), 0, 1)
    handed = await last.unfinished_answer(event)
    assert handed is not None
    assert (handed.failed_reason, handed.failed_message) == (JOB_RUN_LIMIT, run_limit_message(3))
