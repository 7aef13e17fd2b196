"""retries.py: an upload the provider never had whole (NotReceived) is asked again once, as
NotSent is, within the failures allowed and the time left; a helper model's call ends by the
caller's deadline as a whole (each of its steps quick does not let it run past it), and its
estimate is kept for the caller to report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable

import pytest
from pydantic import SecretStr

from tests.unit.inference.fake_models import UnusedModel
from tzurot.inference.dialects import ProviderCall, helper_call
from tzurot.inference.domain import PaidCall, StreamEvent, TextDelta, Transcript
from tzurot.inference.providers import Provider
from tzurot.inference.retries import (
    NoAnswerInTime,
    NotReceived,
    NotSent,
    Retries,
    RetryPolicy,
    helper_completion,
    whole_answer,
)
from tzurot.runtime.errors import Unavailable

UNREACHED = "PROVIDER_UNAVAILABLE"
PROVIDER = Provider("fakeai", "https://fake.test/v1")
GIVE_UP = 10.0
"""The test's own bound: a call nothing ends is a failure, not a hang."""


def not_received() -> NotReceived:
    return NotReceived("fakeai is unreachable; try again later", reason=UNREACHED)


def test_an_upload_never_received_whole_is_asked_again_once() -> None:
    budget = Retries(failures=2, backoff=0.5, time_left=lambda: 60.0)
    waits = [budget.wait(not_received(), began=False, resendable=False) for _ in range(2)]
    assert waits == [0.5, None]
    # A connection never made is still asked again, with what remains of the budget.
    assert budget.wait(NotSent("x", reason=UNREACHED), began=False, resendable=False) == 1.0


@pytest.mark.parametrize(("failures", "time_left"), [(0, 60.0), (2, 0.4)])
def test_no_retry_the_policy_or_the_time_left_forbids(failures: int, time_left: float) -> None:
    budget = Retries(failures=failures, backoff=0.5, time_left=lambda: time_left)
    assert budget.wait(not_received(), began=False, resendable=False) is None


async def test_a_transcription_not_received_is_sent_again() -> None:
    outcomes: list[NotReceived | Transcript] = [not_received(), Transcript("hi")]

    async def transcribe() -> Transcript:
        outcome = outcomes.pop(0)
        if isinstance(outcome, NotReceived):
            raise outcome
        return outcome

    assert await whole_answer(transcribe, RetryPolicy(backoff=0.01)) == Transcript("hi")


class Trickling(UnusedModel):
    """A helper model whose stream never ends (`every` seconds a word, or silence)."""

    def __init__(self, every: float | None) -> None:
        self.every = every
        self.calls = 0

    async def stream_chat(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        call: ProviderCall,
        request_timeout: float | None = None,
        on_accepted: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        self.calls += 1
        every = self.every
        if every is None:
            await asyncio.sleep(3600)
            return
        while True:
            yield TextDelta("word ")
            await asyncio.sleep(every)


async def cut_short(
    model: Trickling, policy: RetryPolicy
) -> tuple[Unavailable, list[PaidCall], float]:
    cut_off: list[PaidCall] = []
    call = helper_call([{"role": "user", "content": "fix this"}], "fake/cheap")
    began = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        await asyncio.wait_for(
            helper_completion(
                model,
                PROVIDER,
                SecretStr("k"),
                "fake/cheap",
                call,
                policy,
                request_type="transcript_cleanup",
                cut_off=cut_off,
            ),
            GIVE_UP,
        )
    return caught.value, cut_off, time.monotonic() - began


async def test_a_helper_still_answering_at_the_deadline_is_cut_off_and_estimated() -> None:
    """Each word comes well within any step's timeout: only the whole call's deadline ends
    it, with what it was billed for its caller to report."""
    err, cut_off, took = await cut_short(Trickling(every=0.1), RetryPolicy().within(1.0))
    assert not isinstance(err, NoAnswerInTime)
    assert err.reason == UNREACHED
    assert took < 2.0
    (paid,) = cut_off
    assert (paid.request_type, paid.estimated) == ("transcript_cleanup", True)
    assert paid.usage.input_tokens > 0
    assert paid.usage.output_tokens > 0  # the words received


async def test_a_helper_silent_at_the_deadline_and_never_seen_sending_is_not_billed() -> None:
    """This model writes nothing to a socket: nothing went out, so nothing is estimated (one
    sent whole and silent is NoAnswerInTime: test_helper_deadline_sent.py, real sockets)."""
    err, cut_off, took = await cut_short(Trickling(every=None), RetryPolicy().within(1.0))
    assert isinstance(err, NotSent)
    assert not isinstance(err, NoAnswerInTime)
    assert took < 2.0
    assert cut_off == []


async def test_nothing_is_sent_once_the_deadline_passed() -> None:
    model = Trickling(every=0.1)
    err, cut_off, _ = await cut_short(model, RetryPolicy().within(-1.0))
    assert isinstance(err, NotSent)
    assert (model.calls, cut_off) == (0, [])
