"""Key uses gather in memory and reach keyvault in one batch; a rejection goes at once; a
batch keyvault could not take waits for the next flush."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from tzurot.gateway.domain import KeyUse
from tzurot.gateway.key_uses import KeyUses
from tzurot.runtime.errors import Unavailable

T0 = datetime(2026, 3, 1, tzinfo=UTC)


class Sink:
    def __init__(self) -> None:
        self.batches: list[list[KeyUse]] = []
        self.down = False

    async def record_uses(self, uses: Sequence[KeyUse]) -> None:
        if self.down:
            raise Unavailable("keyvault is down")
        self.batches.append(list(uses))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


async def test_uses_are_sent_once_per_key_in_one_batch() -> None:
    sink = Sink()
    uses = KeyUses(sink, clock=Clock())
    uses.used("u1", "openrouter")
    uses.used("u1", "openrouter")
    uses.used("u2", "openai")
    assert sink.batches == []  # nothing on the request path
    await uses.flush()
    await uses.flush()  # nothing new: no call
    assert sink.batches == [
        [
            KeyUse("u1", "openrouter", T0 + timedelta(seconds=2)),
            KeyUse("u2", "openai", T0 + timedelta(seconds=3)),
        ]
    ]


async def test_a_rejection_is_sent_at_once_with_what_gathered() -> None:
    sink = Sink()
    uses = KeyUses(sink, clock=Clock())
    uses.used("u1", "openrouter")
    await uses.rejected("u1", "openrouter")
    assert sink.batches == [
        [
            KeyUse("u1", "openrouter", T0 + timedelta(seconds=1)),
            KeyUse("u1", "openrouter", T0 + timedelta(seconds=2), rejected=True),
        ]
    ]


async def test_a_batch_keyvault_refused_is_kept_for_the_next_flush() -> None:
    sink = Sink()
    uses = KeyUses(sink, clock=Clock())
    sink.down = True
    await uses.rejected("u1", "openrouter")  # never raises into the failed answer
    uses.used("u2", "openai")
    sink.down = False
    await uses.flush()
    assert [(u.user_id, u.rejected) for u in sink.batches[0]] == [("u1", True), ("u2", False)]
