"""Token buckets shared by every gateway replica, kept in Postgres (`core.rate_buckets`).

A bucket holds at most `capacity` tokens and gains `refill_per_second`; a request takes one.
Taking is one statement for all the buckets of a request (`_TAKE_ALL`): it locks the rows, so
concurrent takers (from any replica) are serialized and a bucket never admits more than it
holds, and it takes from every bucket or from none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db import direct
from tzurot.db.engine import autocommit
from tzurot.gateway import tables as t
from tzurot.runtime.errors import ResourceExhausted


@dataclass(frozen=True)
class BucketPolicy:
    capacity: float
    refill_per_second: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill_per_second <= 0:
            raise ValueError("a bucket needs capacity >= 1 and a positive refill rate")


@dataclass(frozen=True)
class Bucket:
    """One bucket to take from; `what` names it for the user ("you", "this channel")."""

    key: str
    policy: BucketPolicy
    what: str


# $1 keys, $2 capacities, $3 refill rates (per second), in the caller's order.
# `locked` locks the buckets that exist (in key order: no deadlock between takers) and reads
# what each holds now (a waiter reads the row its predecessor committed); only when none is
# short does `taken` take one token from each, creating the missing ones full. A bucket
# created concurrently after this statement began is checked again by the upsert's WHERE.
_TAKE_ALL = direct.Statement(
    """
WITH want AS (
    SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[]) WITH ORDINALITY
        AS w(key, capacity, rate, n)
), locked AS (
    SELECT w.n, least(w.capacity, b.tokens
        + greatest(0.0, extract(epoch FROM clock_timestamp() - b.updated_at)) * w.rate)
        AS available
    FROM core.rate_buckets b JOIN want w ON w.key = b.key
    ORDER BY b.key
    FOR UPDATE OF b
), denied AS (
    SELECT n, available FROM locked WHERE available < 1
), taken AS (
    INSERT INTO core.rate_buckets AS b (key, tokens, updated_at)
    SELECT w.key, w.capacity - 1, clock_timestamp() FROM want w
    WHERE NOT EXISTS (SELECT 1 FROM denied)
    ORDER BY w.key
    ON CONFLICT (key) DO UPDATE
        SET tokens = least(excluded.tokens + 1, b.tokens
                + greatest(0.0, extract(epoch FROM clock_timestamp() - b.updated_at))
                  * (SELECT w.rate FROM want w WHERE w.key = excluded.key)) - 1,
            updated_at = greatest(b.updated_at, clock_timestamp())
        WHERE least(excluded.tokens + 1, b.tokens
                + greatest(0.0, extract(epoch FROM clock_timestamp() - b.updated_at))
                  * (SELECT w.rate FROM want w WHERE w.key = excluded.key)) >= 1
    RETURNING b.key
)
SELECT (SELECT array_agg(key) FROM taken) AS taken,
       (SELECT json_agg(json_build_array(n, available) ORDER BY n) FROM denied) AS denied
"""
)
# Gives back one token to each bucket of $3 (of $1's keys, with $2's capacities): what a take
# that came out partial took (a bucket created concurrently ran out), or what a request took
# that was not run after all (RateLimiter.give_back).
_REFUND = direct.Statement(
    """
UPDATE core.rate_buckets b SET tokens = least(w.capacity, b.tokens + 1)
FROM unnest($1::text[], $2::float8[]) AS w(key, capacity)
WHERE b.key = w.key AND b.key = ANY($3::text[])
"""
)


class RateLimiter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = autocommit(engine)  # one statement: its own transaction

    async def take(self, buckets: Sequence[Bucket]) -> None:
        """Takes one token from every bucket, or none; RESOURCE_EXHAUSTED with retry-after.

        One statement (`_TAKE_ALL`): no BEGIN/COMMIT round trips."""
        keys = [b.key for b in buckets]
        capacities = [b.policy.capacity for b in buckets]
        rates = [b.policy.refill_per_second for b in buckets]
        row = await direct.fetchrow(self._engine, _TAKE_ALL, (keys, capacities, rates))
        assert row is not None  # an aggregate: always one row
        taken = list(row["taken"] or ())
        if row["denied"]:
            n, available = row["denied"][0]
            raise _denied(buckets[n - 1], float(available))
        if len(taken) == len(buckets):
            return
        # Rare: a bucket created by a concurrent taker after this statement began ran out
        # in between. All or none: give back what this take took.
        await direct.fetch(self._engine, _REFUND, (keys, capacities, taken))
        short = next(b for b in buckets if b.key not in taken)
        raise _denied(short, 0.0)

    async def give_back(self, buckets: Sequence[Bucket]) -> None:
        """Returns the token a take took from each bucket (never past its capacity): the
        request it admitted was not run after all."""
        keys = [b.key for b in buckets]
        await direct.fetch(
            self._engine, _REFUND, (keys, [b.policy.capacity for b in buckets], keys)
        )


def _denied(bucket: Bucket, available: float) -> ResourceExhausted:
    retry_after = (1 - available) / bucket.policy.refill_per_second
    seconds = max(1, math.ceil(retry_after))
    return ResourceExhausted(
        f"slow down: {bucket.what} sent too many messages; try again in {seconds} s",
        retry_after_seconds=retry_after,
        reason="RATE_LIMITED",
        metadata={"bucket": bucket.key.partition(":")[0]},
    )


class QuotaCounter:
    """Counts uses against a fixed budget per period key (e.g. guest requests per day)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def use(self, key: str, budget: int) -> bool:
        """Counts one use under `key` if the budget allows; False when it is spent."""
        q = t.quota_counters.c
        stmt = insert(t.quota_counters).values(key=key, used=1)
        upsert = stmt.on_conflict_do_update(
            index_elements=[q.key],
            set_={"used": q.used + 1, "updated_at": sa.func.now()},
            where=q.used < budget,
        ).returning(q.used)
        if budget <= 0:
            return False
        async with self._engine.begin() as conn:
            return (await conn.execute(upsert)).one_or_none() is not None

    async def release(self, key: str) -> None:
        """Gives back one use counted under `key` (the request it admitted was not run)."""
        q = t.quota_counters.c
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(t.quota_counters)
                .where(q.key == key, q.used > 0)
                .values(used=q.used - 1, updated_at=sa.func.now())
            )
