"""Key uses gather in memory and reach keyvault in one batch; a rejection goes at once; a
batch keyvault could not take waits for the next flush; only a provider refusing the user's
stored key is a rejection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from tzurot.gateway.domain import KeyUse
from tzurot.gateway.key_uses import KeyUses, refused_before_failing, refused_stored_key
from tzurot.runtime.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
    from_rpc_error,
    to_status,
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


def failed_after_skills(named: str | None, **meta: str) -> Unavailable:
    """Inference's error for a reply that failed (a 5xx) after a skill's service refused
    wallet keys (`named`, as inference writes them; None: an older inference)."""
    metadata = {"provider": "openrouter", **meta}
    if named is not None:
        metadata["refused_key_providers"] = named
    return Unavailable(
        "openrouter is failing (HTTP 502)", reason="PROVIDER_UNAVAILABLE", metadata=metadata
    )


@pytest.mark.parametrize(
    ("named", "providers"),
    [
        ("brave,openai", ["brave", "openai"]),
        ("brave", ["brave"]),
        (" openai , ,brave,openai", ["brave", "openai"]),  # tolerant of stray separators
        ("", []),
        (None, []),  # an older inference: nothing changes
    ],
)
def test_the_keys_refused_before_a_reply_failed_are_read_from_its_error(
    named: str | None, providers: list[str]
) -> None:
    assert refused_before_failing(failed_after_skills(named)) == providers


def test_the_names_cross_the_wire_with_the_error() -> None:
    """As inference's server sends the error and gateway's client reads it back."""
    status = to_status(failed_after_skills("brave,openai"))
    sent = grpc.aio.AioRpcError(
        status.code,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*status.trailing_metadata),
        details=status.details,
    )
    read = from_rpc_error(sent, service="inference")
    assert read.reason == "PROVIDER_UNAVAILABLE"
    assert refused_before_failing(read) == ["brave", "openai"]


async def test_keys_a_skill_refused_before_the_reply_failed_are_marked_at_once() -> None:
    sink = Sink()
    uses = KeyUses(sink, clock=Clock())
    await uses.refused("u1", failed_after_skills("brave,openai"), provider="openrouter")
    at = T0 + timedelta(seconds=1)
    assert sink.batches == [
        [KeyUse("u1", "brave", at, rejected=True), KeyUse("u1", "openai", at, rejected=True)]
    ]


async def test_the_answers_own_refusal_and_a_skills_are_both_marked() -> None:
    """Her Brave key refused by a search, then her OpenRouter key by the next round."""
    sink = Sink()
    uses = KeyUses(sink, clock=Clock())
    err = FailedPrecondition(
        "openrouter rejected the API key",
        reason="INVALID_API_KEY",
        metadata={"provider": "openrouter", "key_source": "user"},
    )
    err.metadata["refused_key_providers"] = "brave"
    await uses.refused("u1", err, provider="openrouter")
    assert [(u.provider, u.rejected) for u in sink.batches[0]] == [
        ("brave", True),
        ("openrouter", True),
    ]


async def test_an_error_naming_no_refused_key_marks_nothing_and_never_raises() -> None:
    sink = Sink()
    uses = KeyUses(sink, clock=Clock())
    await uses.refused("u1", failed_after_skills(None), provider="openrouter")
    await uses.refused("u1", failed_after_skills(""), provider="openrouter")
    assert sink.batches == []
    sink.down = True
    await uses.refused("u1", failed_after_skills("brave"))  # keyvault down: kept, not raised
    sink.down = False
    await uses.flush()
    assert [(u.provider, u.rejected) for u in sink.batches[0]] == [("brave", True)]
