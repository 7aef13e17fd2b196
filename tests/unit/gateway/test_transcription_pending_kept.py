"""Helper calls the provider has whole (HelperCallPending: an image's description, a
transcription, a transcript's clean-up) are kept by the gateway until their outcome comes, and
written (failed, each of its own kind) only for a reply cut before then: the attachment's
reading ends the calls of the kinds it carries, a failed report those of its kinds, a call
taken back or an error of inference's own ends them; the gateway's deadline, a cancel,
inference restarting or failing unclassified do not. They cross the wire with their calls, or
none (taken back), only to a gateway that says it reads them; a gateway that reads only an
older inference's TranscriptionPending is sent that, and reads it as the same event."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tzurot.gateway import convert as gateway_convert
from tzurot.gateway import domain as g
from tzurot.gateway.cancelled_usage import RelayedAnswer
from tzurot.inference import convert as inference_convert
from tzurot.inference import server as inference_server
from tzurot.inference.domain import HelperCallPending as PendingIn
from tzurot.inference.domain import PaidCall, TokenUsage
from tzurot.runtime.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
    error_from_code,
)
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import inference_pb2 as inf

HEARD = g.Usage(
    "openai", "whisper-1", 0, 0, request_type="transcription", audio_seconds=12.5, estimated=True
)
ESTIMATE = PaidCall(
    "transcription", "openai", "whisper-1", TokenUsage(0, 0), audio_seconds=12.5, estimated=True
)
COUNTED = g.Usage("openai", "whisper-1", 0, 0, request_type="transcription", audio_seconds=12.0)
"""The transcription's own count, once its transcript came (while it is cleaned up)."""
CLEANING = g.Usage(
    "openrouter", "x/cheap", 120, 0, request_type="transcript_cleanup", estimated=True
)
DESCRIBING = g.Usage(
    "openrouter", "x/vision", 900, 0, request_type="image_description", estimated=True
)
DESCRIBING_IN = PaidCall(
    "image_description", "openrouter", "x/vision", TokenUsage(900, 0), estimated=True
)


def pending(index: int = 1, *calls: g.Usage) -> RelayedAnswer:
    relayed = RelayedAnswer()
    relayed.helper_call_pending(g.HelperCallPending(index, calls or (HEARD,)))
    return relayed


def read(index: int, *paid: g.Usage) -> g.AttachmentRead:
    return g.AttachmentRead(index, g.Attachment(url="u", content_type="audio/ogg"), paid)


def test_it_crosses_the_wire_with_its_calls_or_taken_back() -> None:
    wire = inference_convert.reply_event(PendingIn(1, (ESTIMATE,)))
    assert gateway_convert.reply_event(wire) == g.HelperCallPending(1, (HEARD,))
    wire = inference_convert.reply_event(PendingIn(0, (DESCRIBING_IN,)))
    assert gateway_convert.reply_event(wire) == g.HelperCallPending(0, (DESCRIBING,))
    back = inference_convert.reply_event(PendingIn(1, ()))
    assert gateway_convert.reply_event(back) == g.HelperCallPending(1, ())


def test_an_older_inference_s_transcription_pending_reads_as_the_same() -> None:
    estimate = common.Usage(
        provider="openai",
        model="whisper-1",
        request_type="transcription",
        audio_seconds=12.5,
        estimated=True,
    )
    old = inf.GenerateReplyResponse(
        transcription_pending=inf.TranscriptionPending(index=1, estimate=estimate)
    )
    assert gateway_convert.reply_event(old) == g.HelperCallPending(1, (HEARD,))
    back = inf.GenerateReplyResponse(transcription_pending=inf.TranscriptionPending(index=1))
    assert gateway_convert.reply_event(back) == g.HelperCallPending(1, ())


def test_only_a_gateway_that_reads_it_is_sent_it() -> None:
    """Stubs that know the field but not the event read it as the finished answer."""
    older = inf.GenerateReplyRequest(accepts_usage_spent=True, accepts_answer_progress=True)
    assert not inference_server._accepts(older, PendingIn(1, (ESTIMATE,)))
    ours = inf.GenerateReplyRequest(accepts_helper_call_pending=True)
    assert inference_server._accepts(ours, PendingIn(1, (ESTIMATE,)))
    transcriptions_only = inf.GenerateReplyRequest(accepts_transcription_pending=True)
    assert inference_server._accepts(transcriptions_only, PendingIn(1, (ESTIMATE,)))


def test_a_gateway_reading_only_transcriptions_is_sent_the_transcription() -> None:
    """Its own event: the transcription among the calls, or none (a description, taken back)."""
    cleanup = PaidCall("transcript_cleanup", "openrouter", "x/cheap", TokenUsage(120, 0))
    wire = inference_convert.transcription_pending(PendingIn(1, (ESTIMATE, cleanup)))
    assert wire.WhichOneof("event") == "transcription_pending"
    assert wire.transcription_pending.index == 1
    assert wire.transcription_pending.estimate.audio_seconds == 12.5
    for calls in [(DESCRIBING_IN,), ()]:
        wire = inference_convert.transcription_pending(PendingIn(0, calls))
        assert not wire.transcription_pending.HasField("estimate")


class Reading:
    """Inference's reply: a description in flight, then a transcription."""

    async def generate_reply(
        self, request: object, *, time_limit: float | None = None
    ) -> AsyncIterator[PendingIn]:
        yield PendingIn(0, (DESCRIBING_IN,))
        yield PendingIn(1, (ESTIMATE,))


class Context:
    def time_remaining(self) -> float | None:
        return None


async def sent_to(request: inf.GenerateReplyRequest) -> list[inf.GenerateReplyResponse]:
    servicer = inference_server.InferenceServicer(Reading())  # type: ignore[arg-type]  # its generate_reply only
    return [r async for r in servicer.GenerateReply(request, Context())]  # type: ignore[arg-type]  # time_remaining only


async def test_each_gateway_is_sent_the_event_it_reads() -> None:
    ours = inf.GenerateReplyRequest(
        accepts_transcription_pending=True, accepts_helper_call_pending=True
    )
    sent = await sent_to(ours)
    assert [r.WhichOneof("event") for r in sent] == ["helper_call_pending"] * 2
    assert [len(r.helper_call_pending.calls) for r in sent] == [1, 1]
    older = await sent_to(inf.GenerateReplyRequest(accepts_transcription_pending=True))
    assert [r.WhichOneof("event") for r in older] == ["transcription_pending"] * 2
    assert not older[0].transcription_pending.HasField("estimate")  # a description: none
    assert older[1].transcription_pending.estimate.audio_seconds == 12.5
    assert await sent_to(inf.GenerateReplyRequest(accepts_usage_spent=True)) == []


def test_a_reply_cut_while_the_provider_has_them_writes_them() -> None:
    assert pending().pending_calls() == (HEARD,)
    assert pending(0, DESCRIBING).pending_calls() == (DESCRIBING,)
    assert pending(1, COUNTED, CLEANING).pending_calls() == (COUNTED, CLEANING)


def test_what_is_said_replaces_what_was_said_for_the_attachment() -> None:
    relayed = pending(1, HEARD)
    relayed.helper_call_pending(g.HelperCallPending(0, (DESCRIBING,)))
    relayed.helper_call_pending(g.HelperCallPending(1, (COUNTED, CLEANING)))
    assert sorted(relayed.pending_calls(), key=str) == sorted(
        (DESCRIBING, COUNTED, CLEANING), key=str
    )


def test_its_reading_ends_the_calls_it_carries() -> None:
    relayed = pending(1)
    relayed.read(read(0, COUNTED))
    assert relayed.pending_calls() == (HEARD,)  # another attachment's
    relayed.read(read(1, COUNTED))
    assert relayed.pending_calls() == ()
    relayed = pending(0, DESCRIBING)
    relayed.read(read(0, DESCRIBING))
    assert relayed.pending_calls() == ()


def test_a_cleanup_cut_off_once_sent_is_kept_past_the_reading_until_its_report() -> None:
    """The raw transcript's reading carries the transcription only; the clean-up's estimate
    (reported just after it) is what the provider may have billed until then."""
    relayed = pending(1, COUNTED, CLEANING)
    relayed.read(read(1, COUNTED))
    assert relayed.pending_calls() == (CLEANING,)
    relayed.reported(g.UsageSpent((CLEANING,), failed=True))
    assert relayed.pending_calls() == ()


def test_the_failed_report_of_its_kind_ends_it() -> None:
    relayed = pending()
    relayed.reported(g.UsageSpent((HEARD,), failed=True))
    assert relayed.pending_calls() == ()
    relayed = pending(0, DESCRIBING)
    drawn = g.Usage("openrouter", "x/image", 10, 0, request_type="image_generation")
    relayed.reported(g.UsageSpent((drawn,)))  # another kind: a skill's call
    assert relayed.pending_calls() == (DESCRIBING,)
    relayed.reported(g.UsageSpent((DESCRIBING,), failed=True))
    assert relayed.pending_calls() == ()


def test_an_attempt_refused_and_asked_again_is_taken_back() -> None:
    relayed = pending(1)
    relayed.helper_call_pending(g.HelperCallPending(1, ()))
    assert relayed.pending_calls() == ()


@pytest.mark.parametrize(
    "err",
    [
        Unavailable("openai is unavailable (HTTP 503)", reason="PROVIDER_UNAVAILABLE"),
        InvalidArgument("config", "openai rejected the request", reason="PROVIDER_REJECTED"),
        ResourceExhausted("rate limited", reason="PROVIDER_RATE_LIMITED"),
        FailedPrecondition("key refused", reason="INVALID_API_KEY"),
    ],
)
def test_an_error_of_inference_s_own_ends_it(err: TzurotError) -> None:
    """It reported what a call failing once sent was billed first; any other failure was a
    refusal, billed nothing."""
    relayed = pending(1, COUNTED, CLEANING)
    relayed.inference_failed(err)
    assert relayed.pending_calls() == ()


@pytest.mark.parametrize(
    "err",
    [
        DeadlineExceeded("deadline"),  # the gateway's deadline cut the call
        error_from_code("CANCELLED", "cancelled"),
        Unavailable("inference is restarting", reason="SERVICE_RESTARTING"),
        TzurotError("boom"),  # UNKNOWN: inference failed on nothing it classified
    ],
)
def test_a_cut_keeps_it(err: TzurotError) -> None:
    relayed = pending(0, DESCRIBING)
    relayed.inference_failed(err)
    assert relayed.pending_calls() == (DESCRIBING,)


async def failing() -> AsyncIterator[g.ReplyEvent]:
    """Inference's stream: the transcription pending, then inference's own refusal."""
    yield g.HelperCallPending(1, (HEARD,))
    raise Unavailable("openai is unavailable (HTTP 503)", reason="PROVIDER_UNAVAILABLE")


async def read_all(relayed: RelayedAnswer) -> None:
    async for event in relayed.watching(failing()):
        assert isinstance(event, g.HelperCallPending)
        relayed.helper_call_pending(event)


async def read_then_cut(relayed: RelayedAnswer) -> None:
    async for _ in relayed.watching(failing()):
        raise FailedPrecondition("taken over", reason="JOB_TAKEN_OVER")


async def test_only_an_error_of_inference_s_stream_is_noted() -> None:
    """The gateway's own cut (a lost job, raised as the events are read) keeps it."""
    relayed = RelayedAnswer()
    with pytest.raises(Unavailable):
        await read_all(relayed)
    assert relayed.pending_calls() == ()
    relayed = pending()
    with pytest.raises(FailedPrecondition):
        await read_then_cut(relayed)
    assert relayed.pending_calls() == (HEARD,)
