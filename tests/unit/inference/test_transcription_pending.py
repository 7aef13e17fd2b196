"""transcription.py: what a transcription may be billed is said the moment the provider has
the whole upload (HelperCallPending: by the audio's size until its duration is read, then by
its duration), for a reply cut before the outcome (a cancel, the gateway's deadline), and
taken back when that attempt is refused; nothing is said of an
upload never sent or never received whole, which is asked again once (NotReceived). The call
is bounded as a whole by the caller's deadline."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field, replace

import pytest
from pydantic import SecretStr

from tzurot.audio import encode_tone
from tzurot.inference import transcription_cut_off
from tzurot.inference.domain import Downloaded, HelperCallPending, PaidCall, Transcript
from tzurot.inference.providers import Provider
from tzurot.inference.retries import NoAnswerInTime, NotReceived, NotSent, RetryPolicy
from tzurot.inference.transcription import Transcribing, transcribed
from tzurot.inference.transcription_cut_off import size_cut_off
from tzurot.runtime.errors import ResourceExhausted, TzurotError

SECONDS = 1.5
AUDIO = encode_tone(SECONDS, fmt="ogg")
UNREACHED = "PROVIDER_UNAVAILABLE"
POLICY = RetryPolicy(failures=2, backoff=0.01)


@dataclass
class Attempt:
    """One call: whether its upload goes out whole, then its outcome (after `gate`, when set)."""

    sent: bool
    outcome: Transcript | TzurotError
    gate: asyncio.Event | None = None


@dataclass
class Scripted:
    attempts: list[Attempt]
    limits: list[float | None] = field(default_factory=list)
    cancelled: bool = False

    async def transcribe(
        self,
        provider: Provider,
        api_key: SecretStr,
        *,
        model: str,
        audio: bytes,
        filename: str,
        content_type: str,
        time_limit: float | None = None,
        on_sent: Callable[[], None] | None = None,
    ) -> Transcript:
        self.limits.append(time_limit)
        attempt = self.attempts.pop(0)
        if attempt.sent:
            assert on_sent is not None
            on_sent()
        try:
            if attempt.gate is not None:
                await attempt.gate.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if isinstance(attempt.outcome, TzurotError):
            raise attempt.outcome
        return attempt.outcome


def call() -> Transcribing:
    return Transcribing(
        Provider("openai", "https://api.test/v1"),
        SecretStr("sk-test"),
        "whisper-1",
        Downloaded(AUDIO, "audio/ogg"),
        "voice.ogg",
    )


def unavailable(kind: type[TzurotError]) -> TzurotError:
    return kind("openai is unavailable; try again later", reason=UNREACHED)


async def steps_of(
    model: Scripted, policy: RetryPolicy = POLICY, unheard: list[PaidCall] | None = None
) -> list[HelperCallPending | Transcript]:
    return [s async for s in transcribed(call(), model, policy, index=3, unheard=unheard)]


def the_estimate(pending: HelperCallPending | Transcript) -> PaidCall:
    assert isinstance(pending, HelperCallPending)
    assert pending.index == 3
    (estimate,) = pending.calls
    return estimate


BY_SIZE = size_cut_off("openai", "whisper-1", AUDIO, "audio/ogg")
"""What is said while the audio's duration is read: its size at a typical bitrate."""


async def duration_said(steps: AsyncGenerator[HelperCallPending | Transcript, None]) -> PaidCall:
    """The duration's estimate, once said: one said before it (the upload went out before the
    duration was read, as it does from these fakes) is by the audio's size."""
    while (estimate := the_estimate(await anext(steps))) == BY_SIZE:
        pass
    return estimate


async def test_what_it_may_bill_is_said_once_the_provider_has_the_whole_upload() -> None:
    gate = asyncio.Event()
    model = Scripted([Attempt(True, Transcript("hello"), gate)])
    steps = transcribed(call(), model, POLICY, index=3)
    async with aclosing(steps):
        estimate = await duration_said(steps)  # while the provider works on it
        assert (estimate.request_type, estimate.provider, estimate.model) == (
            "transcription",
            "openai",
            "whisper-1",
        )
        assert estimate.estimated
        assert estimate.audio_seconds == pytest.approx(SECONDS, abs=0.05)  # its duration
        gate.set()
        assert await anext(steps) == Transcript("hello")


async def test_a_failure_after_it_reports_the_same_estimate() -> None:
    unheard: list[PaidCall] = []
    gate = asyncio.Event()
    model = Scripted([Attempt(True, unavailable(NoAnswerInTime), gate)])
    steps = transcribed(call(), model, POLICY, index=3, unheard=unheard)
    async with aclosing(steps):
        said = await duration_said(steps)
        gate.set()
        with pytest.raises(NoAnswerInTime):
            await anext(steps)
    assert unheard == [said]


@pytest.mark.parametrize("kind", [NotSent, NotReceived])
async def test_nothing_is_said_of_an_upload_the_provider_never_had_whole(
    kind: type[TzurotError],
) -> None:
    unheard: list[PaidCall] = []
    model = Scripted([Attempt(False, unavailable(kind)), Attempt(False, unavailable(kind))])
    with pytest.raises(kind):
        await steps_of(model, RetryPolicy(failures=1, backoff=0.01), unheard)
    assert unheard == []


async def test_an_upload_never_received_whole_is_asked_again_once() -> None:
    model = Scripted([Attempt(False, unavailable(NotReceived)), Attempt(True, Transcript("hello"))])
    steps = await steps_of(model)
    assert steps[-1] == Transcript("hello")
    assert model.attempts == []
    model = Scripted([Attempt(False, unavailable(NotReceived)) for _ in range(3)])
    with pytest.raises(NotReceived):
        await steps_of(model)
    assert len(model.attempts) == 1  # asked twice: once again, no more


async def test_an_attempt_refused_after_the_upload_is_taken_back() -> None:
    """A 429 answered to the whole upload: nothing billed; the wait before it is asked again
    holds nothing in flight."""
    limited = ResourceExhausted(
        "openai is rate limiting requests (HTTP 429); try again later",
        retry_after_seconds=0.01,
        reason="PROVIDER_RATE_LIMITED",
    )
    refused, gate = asyncio.Event(), asyncio.Event()
    model = Scripted([Attempt(True, limited, refused), Attempt(True, Transcript("hello"), gate)])
    steps = transcribed(call(), model, POLICY, index=3)
    async with aclosing(steps), asyncio.timeout(5):
        first = await duration_said(steps)  # said: the upload is out and the audio read
        refused.set()
        taken_back, again = [await anext(steps) for _ in range(2)]
        gate.set()
        heard = await anext(steps)
    assert taken_back == HelperCallPending(3, ())
    assert first == the_estimate(again)  # read once
    assert heard == Transcript("hello")


async def test_the_call_is_bounded_by_the_caller_s_deadline_as_a_whole() -> None:
    model = Scripted([Attempt(False, Transcript("hello"))])
    await steps_of(model, RetryPolicy().within(5.0))
    (limit,) = model.limits
    assert limit is not None
    assert 4.0 < limit <= 5.0
    model = Scripted([Attempt(False, Transcript("hello"))])
    await steps_of(model, RetryPolicy())
    assert model.limits == [None]  # no deadline: the client's own timeouts


async def test_closing_the_reading_ends_the_call() -> None:
    """The reply went away (cancelled, cut): the provider's call is not left running."""
    model = Scripted([Attempt(True, Transcript("never"), asyncio.Event())])
    steps = transcribed(call(), model, POLICY, index=3)
    began = time.monotonic()
    await duration_said(steps)
    await steps.aclose()
    assert model.cancelled
    assert time.monotonic() - began < 5


@contextmanager
def estimates_thread_busy() -> Iterator[threading.Event]:
    """Holds the estimates' one thread (a stuck FFmpeg parse, say) until the event is set."""
    free = threading.Event()
    held = transcription_cut_off._ESTIMATES.submit(free.wait, 10)
    try:
        yield free
    finally:
        free.set()
        held.result(10)


async def test_the_transcript_never_waits_for_the_audio_s_duration() -> None:
    gate = asyncio.Event()
    model = Scripted([Attempt(True, Transcript("hello"), gate)])
    with estimates_thread_busy():
        asyncio.get_running_loop().call_later(0.1, gate.set)  # answered while it is read
        began = time.monotonic()
        steps = await steps_of(model)
        took = time.monotonic() - began
    # Its outcome came before the duration: said by the audio's size only (a reading then
    # cleaned up says the transcript's own count, attachments.py).
    assert steps == [HelperCallPending(3, (BY_SIZE,)), Transcript("hello")]
    assert took < transcription_cut_off.ESTIMATE_TIME_LIMIT / 2


async def test_the_audio_is_said_by_its_size_until_its_duration_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reply cut after the upload went out whole, while the duration is read (up to
    ESTIMATE_TIME_LIMIT: here held far longer), still counts the transcription (review 307
    L2); the duration's estimate replaces it once read."""
    monkeypatch.setattr(transcription_cut_off, "ESTIMATE_TIME_LIMIT", 30.0)
    gate = asyncio.Event()
    model = Scripted([Attempt(True, Transcript("hello"), gate)])
    steps = transcribed(call(), model, POLICY, index=3)
    async with aclosing(steps), asyncio.timeout(5):
        with estimates_thread_busy() as free:
            by_size = await anext(steps)  # the upload went out; the duration is not read
            assert by_size == HelperCallPending(3, (BY_SIZE,))
            assert BY_SIZE.estimated
            assert BY_SIZE.audio_seconds != pytest.approx(SECONDS, abs=0.05)
            free.set()
            by_duration = the_estimate(await anext(steps))
        assert by_duration == replace(BY_SIZE, audio_seconds=by_duration.audio_seconds)
        assert by_duration.audio_seconds == pytest.approx(SECONDS, abs=0.05)
        gate.set()
        assert await anext(steps) == Transcript("hello")
