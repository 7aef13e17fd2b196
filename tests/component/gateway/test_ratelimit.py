"""Token buckets and quota counters on real Postgres, shared by several gateway replicas."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tzurot.db.engine import create_engine
from tzurot.gateway.ratelimit import Bucket, BucketPolicy, QuotaCounter, RateLimiter
from tzurot.runtime.errors import ResourceExhausted
from tzurot.testing.waits import until

pytestmark = pytest.mark.component

SLOW = BucketPolicy(capacity=5, refill_per_second=1 / 3600)  # no refill within a test


async def _attempt(limiter: RateLimiter, buckets: list[Bucket]) -> bool:
    try:
        await limiter.take(buckets)
    except ResourceExhausted:
        return False
    return True


async def test_a_burst_of_ten_times_the_limit_from_two_replicas_admits_exactly_the_bucket(
    engine: AsyncEngine, core_url: str
) -> None:
    other_replica = create_engine(core_url)  # a second gateway: its own pool, same database
    try:
        limiters = [RateLimiter(engine), RateLimiter(other_replica)]
        bucket = Bucket("user:burst", SLOW, "you")
        results = await asyncio.gather(*(_attempt(limiters[i % 2], [bucket]) for i in range(50)))
    finally:
        await other_replica.dispose()
    assert sum(results) == 5


async def test_denial_says_when_to_try_again(engine: AsyncEngine) -> None:
    limiter = RateLimiter(engine)
    policy = BucketPolicy(capacity=2, refill_per_second=0.1)  # one token per 10 s
    bucket = Bucket("user:slow", policy, "you")
    await limiter.take([bucket])
    await limiter.take([bucket])
    with pytest.raises(ResourceExhausted) as denied:
        await limiter.take([bucket])
    assert denied.value.reason == "RATE_LIMITED"
    assert denied.value.retry_after_seconds is not None
    assert 9.0 < denied.value.retry_after_seconds <= 10.0
    assert "try again in 10 s" in denied.value.message


async def test_tokens_come_back_at_the_refill_rate(engine: AsyncEngine) -> None:
    limiter = RateLimiter(engine)
    # A token every 0.5 s: the refusals below come within that of the take before them even
    # on a loaded machine (at 20 a second, 50 ms between two statements was too short).
    bucket = Bucket("user:fast", BucketPolicy(capacity=1, refill_per_second=2.0), "you")
    await limiter.take([bucket])
    assert not await _attempt(limiter, [bucket])
    await asyncio.sleep(1.0)  # 2 tokens' worth, capped at the capacity of 1
    assert await _attempt(limiter, [bucket])
    assert not await _attempt(limiter, [bucket])


async def test_several_buckets_are_taken_all_or_none(engine: AsyncEngine) -> None:
    limiter = RateLimiter(engine)
    user = Bucket("user:a", BucketPolicy(capacity=3, refill_per_second=1 / 3600), "you")
    channel = Bucket("channel:c", BucketPolicy(capacity=1, refill_per_second=1 / 3600), "it")
    await limiter.take([user, channel])
    with pytest.raises(ResourceExhausted) as denied:
        await limiter.take([user, channel])
    assert denied.value.metadata == {"bucket": "channel"}
    # The refused request took nothing from the user's bucket: two tokens are left.
    assert await _attempt(limiter, [user])
    assert await _attempt(limiter, [user])
    assert not await _attempt(limiter, [user])


async def test_a_bucket_created_meanwhile_that_runs_out_takes_nothing(engine: AsyncEngine) -> None:
    """The take's statement began before another replica's first take of the channel's
    bucket committed (emptying it): the channel is refused and the user's token given back."""
    limiter = RateLimiter(engine)
    user = Bucket("user:r", BucketPolicy(capacity=3, refill_per_second=1 / 3600), "you")
    channel = Bucket("channel:r", BucketPolicy(capacity=1, refill_per_second=1 / 3600), "it")
    await limiter.take([user])  # the user's bucket exists: two tokens left
    async with engine.connect() as other:
        await other.execute(
            text(
                "INSERT INTO core.rate_buckets (key, tokens, updated_at) "
                "VALUES ('channel:r', 0, clock_timestamp())"
            )
        )
        attempt = asyncio.create_task(_attempt(limiter, [user, channel]))
        await until(lambda: _waiting_for_a_lock(engine), "the take waited on the uncommitted row")
        await other.commit()
        assert not await attempt
    assert await _attempt(limiter, [user])
    assert await _attempt(limiter, [user])
    assert not await _attempt(limiter, [user])


async def _waiting_for_a_lock(engine: AsyncEngine) -> bool:
    """Whether a session of this database waits for a lock now."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with engine.connect() as conn:
        return bool(await conn.scalar(query))


async def test_quota_counter_admits_exactly_its_budget_under_concurrency(
    engine: AsyncEngine,
) -> None:
    quota = QuotaCounter(engine)
    admitted = await asyncio.gather(*(quota.use("guest:2026-01-01", 7) for _ in range(30)))
    assert sum(admitted) == 7
    assert await quota.use("guest:2026-01-02", 7)  # another day, another budget
    assert not await quota.use("guest:off", 0)
