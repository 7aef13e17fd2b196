"""Fact claims whose leases overlap store each exchange's facts once.

Gateway's fact worker handles its batches one after another, and an LLM call can outlast
the lease (300 s): another replica then claims the same exchanges again, with newer ones.
Each claim has a token; StoreFacts stores only while its claim still holds every job of the
request, and finishing the jobs deletes their outbox rows in the same transaction, so the
facts of an exchange are stored once whoever gets there first. The use-cases are called
directly (no server, so no background worker races the claims).
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.memory.domain import Exchange, NewTurn
from tzurot.memory.embedding import Embedder
from tzurot.memory.fact_store import PostgresFactStore
from tzurot.memory.facts import Facts, NewFact
from tzurot.memory.store import PostgresTurnStore
from tzurot.memory.tables import fact_outbox, memories
from tzurot.runtime.errors import InvalidArgument

pytestmark = pytest.mark.component

PERSONA = "lilith"
ALICE = "user-alice"
REX = NewFact("Alice has a dog named Rex")
TEA = NewFact("Alice likes tea")


def said(job_id: str, text: str) -> Exchange:
    return Exchange(job_id, "chan-1", PERSONA, ALICE, (NewTurn("user", text),), extract_facts=True)


async def facts_kept(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        found = await conn.scalars(
            sa.select(memories.c.text)
            .where(memories.c.superseded_by.is_(None))
            .order_by(memories.c.text)
        )
        return list(found)


async def end_leases(engine: AsyncEngine) -> None:
    """Every lease of the fact outbox runs out now (as time passing would)."""
    async with engine.begin() as conn:
        await conn.execute(sa.update(fact_outbox).values(claimed_until=sa.func.now()))


async def overlapping_claims(engine: AsyncEngine, embedder: Embedder) -> tuple[Facts, str, str]:
    """A claim of job-1 whose lease ran out, and the claim that took job-1 again with job-2:
    (the use-case, the first claim's token, the second's)."""
    turns = PostgresTurnStore(engine)
    facts = Facts(PostgresFactStore(engine), turns, embedder)
    await turns.store_exchange(said("job-1", "I have a dog named Rex"))
    (slow,) = await facts.claim(lease_seconds=1)  # replica 1: its LLM call takes long
    await asyncio.sleep(1.2)
    await turns.store_exchange(said("job-2", "I also like tea"))
    (again,) = await facts.claim()  # replica 2
    assert (slow.job_ids, again.job_ids) == (["job-1"], ["job-1", "job-2"])
    assert slow.claim != again.claim
    return facts, slow.claim, again.claim


async def test_a_claim_whose_lease_ran_out_stores_nothing(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """The review's case: replica 1 stores first, then replica 2. Before claim tokens both
    stored (replica 2's request finished job-2, so it counted as claimed): Rex twice."""
    facts, slow, again = await overlapping_claims(engine, embedder)

    late, _ = await facts.store(PERSONA, ALICE, ["job-1"], [REX], slow)
    kept, _ = await facts.store(PERSONA, ALICE, ["job-1", "job-2"], [REX, TEA], again)

    assert (len(late), len(kept)) == (0, 2)
    assert await facts_kept(engine) == [REX.text, TEA.text]
    assert not await facts.claim()  # both jobs finished


async def test_the_claim_that_took_the_jobs_again_stores_them_first(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    facts, slow, again = await overlapping_claims(engine, embedder)

    kept, _ = await facts.store(PERSONA, ALICE, ["job-1", "job-2"], [REX, TEA], again)
    late, _ = await facts.store(PERSONA, ALICE, ["job-1"], [REX], slow)

    assert (len(kept), len(late)) == (2, 0)
    assert await facts_kept(engine) == [REX.text, TEA.text]


async def test_a_caller_without_a_token_cannot_store_twice_either(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    """A gateway from before tokens sends none: its jobs need only still wait. It finishes
    job-1 first here, so the claim holding job-1 and job-2 stores nothing (job-1 is gone);
    job-2 waits for that lease to run out and is stored once, by a later claim."""
    facts, _slow, again = await overlapping_claims(engine, embedder)

    old, _ = await facts.store(PERSONA, ALICE, ["job-1"], [REX])
    late, _ = await facts.store(PERSONA, ALICE, ["job-1", "job-2"], [REX, TEA], again)
    assert (len(old), len(late)) == (1, 0)
    assert not await facts.claim()  # job-2 is still the second claim's

    await end_leases(engine)
    (retry,) = await facts.claim()
    assert retry.job_ids == ["job-2"]
    await facts.store(PERSONA, ALICE, retry.job_ids, [TEA], retry.claim)
    assert await facts_kept(engine) == [REX.text, TEA.text]


async def test_a_token_that_is_no_claims_is_refused(
    engine: AsyncEngine, embedder: Embedder
) -> None:
    facts = Facts(PostgresFactStore(engine), PostgresTurnStore(engine), embedder)
    with pytest.raises(InvalidArgument) as refused:
        await facts.store(PERSONA, ALICE, ["job-1"], [REX], "not-a-token")
    assert refused.value.field == "claim_token"
