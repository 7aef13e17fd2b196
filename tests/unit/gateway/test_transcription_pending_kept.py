"""A transcription the provider has whole (TranscriptionPending) is kept by the gateway until
its outcome comes, and written (failed, estimated) only for a reply cut before then: the
attachment's reading, the failed report of the same estimate, a refusal taken back or an
error of inference's own ends it; the gateway's deadline, a cancel, inference restarting or
failing unclassified do not. It crosses the wire with its estimate, or without (taken back),
and only to a gateway that says it reads it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tzurot.gateway import convert as gateway_convert
from tzurot.gateway import domain as g
from tzurot.gateway.cancelled_usage import RelayedAnswer
from tzurot.inference import convert as inference_convert
from tzurot.inference import server as inference_server
from tzurot.inference.domain import PaidCall, TokenUsage
from tzurot.inference.domain import TranscriptionPending as PendingIn
from tzurot.runtime.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    TzurotError,
    Unavailable,
    error_from_code,
)
from tzurot.v1 import inference_pb2 as inf

HEARD = g.Usage(
    "openai", "whisper-1", 0, 0, request_type="transcription", audio_seconds=12.5, estimated=True
)
ESTIMATE = PaidCall(
    "transcription", "openai", "whisper-1", TokenUsage(0, 0), audio_seconds=12.5, estimated=True
)


def pending(index: int = 1) -> RelayedAnswer:
    relayed = RelayedAnswer()
    relayed.transcription_pending(g.TranscriptionPending(index, HEARD))
    return relayed


def test_it_crosses_the_wire_with_its_estimate_or_taken_back() -> None:
    wire = inference_convert.reply_event(PendingIn(1, ESTIMATE))
    assert gateway_convert.reply_event(wire) == g.TranscriptionPending(1, HEARD)
    back = inference_convert.reply_event(PendingIn(1, None))
    assert gateway_convert.reply_event(back) == g.TranscriptionPending(1, None)


def test_only_a_gateway_that_reads_it_is_sent_it() -> None:
    """Stubs that know the field but not the event read it as the finished answer."""
    older = inf.GenerateReplyRequest(accepts_usage_spent=True, accepts_answer_progress=True)
    assert not inference_server._accepts(older, PendingIn(1, ESTIMATE))
    ours = inf.GenerateReplyRequest(accepts_transcription_pending=True)
    assert inference_server._accepts(ours, PendingIn(1, ESTIMATE))


def test_a_reply_cut_while_the_provider_has_the_audio_writes_its_estimate() -> None:
    assert pending().unheard() == (HEARD,)


def test_its_reading_ends_it() -> None:
    relayed = pending(1)
    relayed.read(g.AttachmentRead(0, g.Attachment(url="u", content_type="audio/ogg"), ()))
    assert relayed.unheard() == (HEARD,)  # another attachment's
    relayed.read(g.AttachmentRead(1, g.Attachment(url="u", content_type="audio/ogg"), ()))
    assert relayed.unheard() == ()


def test_the_failed_report_of_its_estimate_ends_it() -> None:
    relayed = pending()
    relayed.reported(g.UsageSpent((HEARD,), failed=True))
    assert relayed.unheard() == ()


def test_an_attempt_refused_and_asked_again_is_taken_back() -> None:
    relayed = pending(1)
    relayed.transcription_pending(g.TranscriptionPending(1, None))
    assert relayed.unheard() == ()


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
    """It reported what a transcription failing after the upload was billed first; any other
    failure was a refusal, billed nothing."""
    relayed = pending()
    relayed.inference_failed(err)
    assert relayed.unheard() == ()


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
    relayed = pending()
    relayed.inference_failed(err)
    assert relayed.unheard() == (HEARD,)


async def failing() -> AsyncIterator[g.ReplyEvent]:
    """Inference's stream: the transcription pending, then inference's own refusal."""
    yield g.TranscriptionPending(1, HEARD)
    raise Unavailable("openai is unavailable (HTTP 503)", reason="PROVIDER_UNAVAILABLE")


async def read_all(relayed: RelayedAnswer) -> None:
    async for event in relayed.watching(failing()):
        assert isinstance(event, g.TranscriptionPending)
        relayed.transcription_pending(event)


async def read_then_cut(relayed: RelayedAnswer) -> None:
    async for _ in relayed.watching(failing()):
        raise FailedPrecondition("taken over", reason="JOB_TAKEN_OVER")


async def test_only_an_error_of_inference_s_stream_is_noted() -> None:
    """The gateway's own cut (a lost job, raised as the events are read) keeps it."""
    relayed = RelayedAnswer()
    with pytest.raises(Unavailable):
        await read_all(relayed)
    assert relayed.unheard() == ()
    relayed = pending()
    with pytest.raises(FailedPrecondition):
        await read_then_cut(relayed)
    assert relayed.unheard() == (HEARD,)
