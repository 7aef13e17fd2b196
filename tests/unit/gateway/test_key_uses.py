"""Key uses gather in memory and reach keyvault in one batch; a rejection goes at once; a
batch keyvault could not take waits for the next flush; only a provider refusing the user's
stored key is a rejection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from tzurot.gateway.domain import KeyUse
from tzurot.gateway.key_uses import KeyUses, refused_stored_key
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
)

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


def refusal(source: str | None, provider: str = "elevenlabs") -> FailedPrecondition:
    """Inference's error for a refused key, as it crosses the mesh."""
    meta = {"provider": provider}
    if source is not None:
        meta["key_source"] = source
    return FailedPrecondition("refused", reason="INVALID_API_KEY", metadata=meta)


@pytest.mark.parametrize(
    ("err", "provider"),
    [
        (refusal("user"), "elevenlabs"),
        (refusal("user", "openai"), "openai"),
        (refusal("system"), None),  # the operator's key: not in her wallet
        (refusal("none"), None),  # a keyless local server
        (refusal(None), None),  # an older inference that does not say whose
        (FailedPrecondition("x", reason="INVALID_API_KEY", metadata={"key_source": "user"}), None),
        (
            FailedPrecondition(
                "lacks voices_write",
                reason="KEY_MISSING_PERMISSION",
                metadata={"provider": "elevenlabs"},
            ),
            None,
        ),
        (
            ResourceExhausted(
                "quota", reason="PROVIDER_QUOTA_EXCEEDED", metadata={"provider": "elevenlabs"}
            ),
            None,
        ),
        (
            ResourceExhausted(
                "slow down",
                retry_after_seconds=5.0,
                reason="PROVIDER_RATE_LIMITED",
                metadata={"provider": "elevenlabs", "key_source": "user"},
            ),
            None,
        ),
        (Unavailable("elevenlabs failed (HTTP 503)", metadata={"provider": "elevenlabs"}), None),
        (InvalidArgument("voice", "elevenlabs refused the request (HTTP 422)"), None),
    ],
)
def test_only_a_refusal_of_the_users_stored_key_names_a_key(
    err: TzurotError, provider: str | None
) -> None:
    assert refused_stored_key(err) == provider


async def test_a_refusal_of_her_key_marks_it_at_once_and_anything_else_nothing() -> None:
    sink = Sink()
    uses = KeyUses(sink, clock=Clock())
    await uses.refused("u1", ResourceExhausted("quota", reason="PROVIDER_QUOTA_EXCEEDED"))
    await uses.refused("u1", refusal("system"))
    await uses.refused("u1", Unavailable("elevenlabs failed (HTTP 500)"))
    assert sink.batches == []
    await uses.refused("u1", refusal("user"))
    assert sink.batches == [[KeyUse("u1", "elevenlabs", T0 + timedelta(seconds=1), rejected=True)]]


async def test_a_helper_models_refusal_marks_its_own_providers_key_not_the_answers() -> None:
    """A voice note transcribed on OpenAI for an answer on OpenRouter: Generate passes the
    answer's provider, but the refusal names the transcription's (inference tags it)."""
    sink = Sink()
    uses = KeyUses(sink, clock=Clock())
    await uses.refused("u1", refusal("user", "openai"), provider="openrouter")
    assert sink.batches == [[KeyUse("u1", "openai", T0 + timedelta(seconds=1), rejected=True)]]
