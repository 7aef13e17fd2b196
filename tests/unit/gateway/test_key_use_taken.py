"""A refusal is of the key that was read, not of whatever the user stored since: each use
says when the key was read at the earliest (`taken_after`, sent as KeyUse.taken_after), and
a pending use merges only into one as late and of a bound no earlier (none known: any key).
A flush cancelled while keyvault is asked (a reply stopped as it marks a refused key) keeps
its batch, every user's uses in it, for the next flush: the mark the reply counts as done is
never lost."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from tzurot.gateway import convert
from tzurot.gateway.domain import KeyUse
from tzurot.gateway.key_uses import MAX_PENDING, KeyUses, TakenKeyUse, taken_after
from tzurot.runtime.errors import FailedPrecondition

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[KeyUse]] = []

    async def record_uses(self, uses: Sequence[KeyUse]) -> None:
        self.batches.append(list(uses))


class HangingSink(Sink):
    """Keyvault that does not answer until `block` is cleared."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = asyncio.Event()
        self.block = True

    async def record_uses(self, uses: Sequence[KeyUse]) -> None:
        self.asked.set()
        if self.block:
            await asyncio.sleep(3600)
        await super().record_uses(uses)


def _sent(sink: Sink) -> set[tuple[str, str, bool]]:
    return {(u.user_id, u.provider, u.rejected) for batch in sink.batches for u in batch}


async def test_a_cancel_while_keyvault_is_asked_keeps_the_whole_batch() -> None:
    sink = HangingSink()
    uses = KeyUses(sink, clock=Clock())
    uses.used("other-user", "openai")  # another user's pending "last used"
    marking = asyncio.ensure_future(uses.rejected("alice", "brave"))  # as a KeyRefused does
    await sink.asked.wait()
    marking.cancel()
    await asyncio.gather(marking, return_exceptions=True)
    assert marking.cancelled()
    sink.block = False
    await uses.flush()  # the next periodic flush
    assert _sent(sink) == {("other-user", "openai", False), ("alice", "brave", True)}


async def test_a_batch_put_back_merges_with_uses_noted_meanwhile() -> None:
    sink = HangingSink()
    uses = KeyUses(sink, clock=Clock())
    marking = asyncio.ensure_future(uses.rejected("alice", "brave", taken_after=T0))
    await sink.asked.wait()
    later = T0 + timedelta(minutes=5)
    refusing = asyncio.ensure_future(uses.rejected("alice", "brave", taken_after=later))
    await asyncio.sleep(0)  # noted, waiting for the flush in flight
    sink.block = False  # keyvault answers the next call (the one in flight stays stuck)
    marking.cancel()
    await asyncio.gather(marking, return_exceptions=True)
    await refusing
    [[use]] = sink.batches
    assert use.rejected
    assert taken_after(use) == later  # either key refused: the later one stored is marked


async def test_past_the_limit_the_put_back_rejection_is_kept_before_later_uses() -> None:
    sink = HangingSink()
    uses = KeyUses(sink, clock=Clock())
    marking = asyncio.ensure_future(uses.rejected("alice", "brave"))
    await sink.asked.wait()
    for n in range(MAX_PENDING):
        uses.used(f"user-{n}", "openrouter")
    marking.cancel()
    await asyncio.gather(marking, return_exceptions=True)
    sink.block = False
    await uses.flush()
    assert ("alice", "brave", True) in _sent(sink)


async def test_a_rejection_carries_when_the_key_was_read_at_the_earliest() -> None:
    sink = Sink()
    uses = KeyUses(sink, clock=Clock())
    began = uses.now()
    await uses.rejected("alice", "brave", taken_after=began)
    [[use]] = sink.batches
    assert use == TakenKeyUse("alice", "brave", T0 + timedelta(seconds=2), True, began)
    wire = convert.key_use(use)
    assert wire.rejected
    assert wire.taken_after.ToDatetime(tzinfo=UTC) == began


async def test_a_refused_error_carries_it_too() -> None:
    sink = Sink()
    uses = KeyUses(sink, clock=Clock())
    err = FailedPrecondition(
        "refused",
        reason="INVALID_API_KEY",
        metadata={"provider": "openrouter", "key_source": "user", "refused_key_providers": "brave"},
    )
    await uses.refused("alice", err, taken_after=T0)
    [batch] = sink.batches
    assert {(u.provider, taken_after(u)) for u in batch} == {("openrouter", T0), ("brave", T0)}


async def test_a_use_without_it_is_sent_without_it() -> None:
    sink = Sink()
    uses = KeyUses(sink, clock=Clock())
    await uses.rejected("alice", "brave")
    [[use]] = sink.batches
    assert taken_after(use) is None
    assert not convert.key_use(use).HasField("taken_after")  # keyvault: whatever is stored


async def test_merged_uses_never_pair_one_keys_time_with_anothers_bound() -> None:
    """Alice's new key (read an hour in) answered, then her old key's call (read at T0)
    answered late: sent apart, so keyvault never counts the late answer, nor would it clear a
    refusal, for the new key. A use whose time and bound are both later stands for both."""
    sink = Sink()
    uses = KeyUses(sink, clock=Clock())
    new_key = T0 + timedelta(hours=1)
    uses.used("alice", "openai", taken_after=new_key)  # at T0 + 1 s
    uses.used("alice", "openai", taken_after=T0)  # at T0 + 2 s: the old key, late
    uses.used("bob", "openai", taken_after=T0)
    uses.used("bob", "openai")  # later, and of any key: covers the one before
    uses.used("carol", "openai", taken_after=T0)
    uses.used("carol", "openai", taken_after=new_key)  # later, of a later key: covers it
    await uses.flush()
    [batch] = sink.batches
    assert len(batch) == 4
    assert {(u.user_id, u.used_at, taken_after(u)) for u in batch} == {
        ("alice", T0 + timedelta(seconds=1), new_key),
        ("alice", T0 + timedelta(seconds=2), T0),
        ("bob", T0 + timedelta(seconds=4), None),
        ("carol", T0 + timedelta(seconds=6), new_key),
    }
