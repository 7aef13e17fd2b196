"""Token buckets shared by every gateway replica, kept in Postgres (`core.rate_buckets`).

A bucket holds at most `capacity` tokens and gains `refill_per_second`; a request takes one.
Taking is one `INSERT … ON CONFLICT DO UPDATE … WHERE` per bucket: Postgres locks the row, so
concurrent takers (from any replica) are serialized and a bucket never admits more than it
holds. Several buckets are taken in one transaction: all or none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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


class _Denied(Exception):
    def __init__(self, bucket: Bucket, retry_after: float) -> None:
        self.bucket = bucket
        self.retry_after = retry_after


class RateLimiter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def take(self, buckets: Sequence[Bucket]) -> None:
        """Takes one token from every bucket, or none; RESOURCE_EXHAUSTED with retry-after."""
        try:
            async with self._engine.begin() as conn:
                for bucket in buckets:
                    await self._take_one(conn, bucket)
        except _Denied as denied:
            seconds = max(1, math.ceil(denied.retry_after))
            raise ResourceExhausted(
                f"slow down: {denied.bucket.what} sent too many messages; try again in {seconds} s",
                retry_after_seconds=denied.retry_after,
                reason="RATE_LIMITED",
                metadata={"bucket": denied.bucket.key.partition(":")[0]},
            ) from None

    async def _take_one(self, conn: AsyncConnection, bucket: Bucket) -> None:
        params = {
            "key": bucket.key,
            "capacity": bucket.policy.capacity,
            "rate": bucket.policy.refill_per_second,
        }
        if (await conn.execute(_TAKE, params)).one_or_none() is not None:
            return
        # Denied: the conflicting row is locked by us now, so this read is current.
        left = await conn.scalar(_AVAILABLE, params)
        raise _Denied(bucket, (1 - float(left or 0.0)) / bucket.policy.refill_per_second)


def _statements() -> tuple[sa.Executable, sa.Executable]:
    """The take (upsert) and the tokens-available read, built once with bind parameters."""
    b = t.rate_buckets.c
    capacity = sa.bindparam("capacity", type_=sa.Float)
    rate = sa.bindparam("rate", type_=sa.Float)
    now = sa.func.clock_timestamp()
    elapsed = sa.func.greatest(0.0, sa.extract("epoch", now - b.updated_at))
    available = sa.func.least(capacity, b.tokens + elapsed * rate)
    stmt = insert(t.rate_buckets).values(
        key=sa.bindparam("key", type_=sa.String), tokens=capacity - 1, updated_at=now
    )
    take = stmt.on_conflict_do_update(
        index_elements=[b.key],
        set_={"tokens": available - 1, "updated_at": sa.func.greatest(b.updated_at, now)},
        where=available >= 1,
    ).returning(b.tokens)
    return take, sa.select(available).where(b.key == sa.bindparam("key"))


_TAKE, _AVAILABLE = _statements()


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
