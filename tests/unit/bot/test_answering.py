"""Posting an answer: the gateway's Generate call ends with the post, a deleted channel is
told as such, a scheduled turn's failure is logged, never posted to the channel, and the
answer a 🔄 replaces goes only once the new one is delivered: a regeneration refused or
failing leaves it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import grpc
import pytest
from structlog.testing import capture_logs

from tzurot.bot.answer_endings import Replacing
from tzurot.bot.answering import Poster
from tzurot.bot.answers import Answer, AnswerBook
from tzurot.bot.config import BotSettings
from tzurot.bot.delivery import refusal_text
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.voice import fetch_speech
from tzurot.runtime.errors import FailedPrecondition, NotFound, TzurotError, to_status
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

LILITH = common.Personality(slug="lilith", display_name="Lilith")
UNKNOWN_CHANNEL, MISSING_PERMISSIONS = 10003, 50013


class GenerateCall:
    """A server-streaming Generate call, cancellable like grpc.aio's: accepted, a chunk, then
    finished, or (`runs_on`) a generation that goes on until the call is cancelled."""

    def __init__(self, *, runs_on: bool) -> None:
        self.runs_on = runs_on
        self.cancelled = False

    def __aiter__(self) -> AsyncIterator[gw.GenerateResponse]:
        return self._events()

    async def _events(self) -> AsyncIterator[gw.GenerateResponse]:
        yield gw.GenerateResponse(accepted=gw.JobAccepted(job_id="job-1"))
        yield gw.GenerateResponse(chunk=gw.TextChunk(text="Hello"))
        if self.runs_on:
            await asyncio.Event().wait()
        yield gw.GenerateResponse(finished=gw.GenerationFinished(content="Hello there."))

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class Stub:
    def __init__(self, *, runs_on: bool = False) -> None:
        self.runs_on = runs_on
        self.calls: list[GenerateCall] = []

    def Generate(self, request: gw.GenerateRequest, timeout: float) -> GenerateCall:
        self.calls.append(GenerateCall(runs_on=self.runs_on))
        return self.calls[-1]


class Webhooks:
    """The webhook pool as the poster uses it; every send fails with `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.looked_up = 0

    async def for_channel_of(self, channel: object) -> object:
        self.looked_up += 1  # finds, or creates, the channel's webhook
        return object()

    async def send(self, channel: object, content: str, **_: Any) -> discord.WebhookMessage:
        raise self.error

    async def edit(self, channel: object, message_id: int, content: str, **_: Any) -> None:
        raise self.error

    async def delete(self, channel: object, message_id: int) -> bool:
        raise self.error

    def forget(self, channel_id: int) -> None:
        pass


class Channel(discord.TextChannel):
    """A text channel as the poster uses it; `notices` are what the bot posted itself."""

    def __init__(self, channel_id: int) -> None:  # no connection state: nothing else is read
        self.id = channel_id
        self.guild = SimpleNamespace(me=None)  # type: ignore[assignment]  # only `me` is read
        self.notices: list[str] = []

    def typing(self) -> Any:
        return contextlib.nullcontext()

    async def send(self, content: str | None = None, **_: Any) -> Any:
        self.notices.append(content or "")
        return discord.Object(id=1)


class _Response:
    def __init__(self, status: int) -> None:
        self.status, self.reason = status, "refused"


def refusal(status: int, code: int) -> discord.HTTPException:
    return discord.HTTPException(_Response(status), {"code": code, "message": "refused"})  # type: ignore[arg-type]  # the fields HTTPException reads


def poster(stub: Stub, webhooks: Webhooks) -> tuple[Poster, Channel]:
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    settings = BotSettings(tls_dir=Path("unused"), stream_edit_interval_seconds=0)
    return Poster(gateway, webhooks, settings, AnswerBook(10)), Channel(42)  # type: ignore[arg-type]  # a fake pool


async def test_a_post_failing_mid_stream_cancels_the_gateway_call_at_once() -> None:
    stub = Stub(runs_on=True)
    answers, channel = poster(stub, Webhooks(aiohttp.ClientConnectionError("reset")))
    await answers.post(channel, None, LILITH, gw.GenerateRequest(), 7)
    # At once, not when the garbage collector gets to it: the generation nobody will see
    # stops (and is not paid for) now.
    assert [call.cancelled for call in stub.calls] == [True]


def test_unknown_channel_is_told_as_a_deleted_channel_not_a_lost_webhook() -> None:
    for status in (404, 400):  # 400: a webhook's thread_id naming a deleted thread
        text = refusal_text(refusal(status, UNKNOWN_CHANNEL))
        assert "deleted" in text
        assert "webhook" not in text


async def test_a_deleted_channel_gets_no_notice_and_nothing_more() -> None:
    stub, webhooks = Stub(), Webhooks(refusal(404, UNKNOWN_CHANNEL))
    answers, channel = poster(stub, webhooks)
    with capture_logs() as logs:
        await answers.post(channel, None, LILITH, gw.GenerateRequest(), 7)
        await answers.post(channel, None, LILITH, gw.GenerateRequest(), 7)  # the next addressee
    assert "bot.channel_deleted" in [entry["event"] for entry in logs]
    assert channel.notices == []  # it has nowhere to go
    assert len(stub.calls) == 1  # nothing more generated for it,
    assert webhooks.looked_up == 1  # nor a webhook looked for (or created) there


async def test_a_scheduled_turn_discord_refuses_is_logged_not_posted() -> None:
    stub = Stub()
    answers, channel = poster(stub, Webhooks(refusal(403, MISSING_PERMISSIONS)))
    turn = Answer(LILITH, 0, channel, gw.GenerateRequest(), shown=LILITH)
    with capture_logs() as logs:
        await answers.post(channel, None, LILITH, gw.GenerateRequest(), 0, quiet=turn)
    assert "bot.post_refused" in [entry["event"] for entry in logs]
    assert channel.notices == []  # nobody asked: nobody to tell
    assert turn.message_ids == []  # acknowledged with nothing delivered, as before


class SpeakCall(GenerateCall):
    """A SpeakAnswer call whose speech goes on until the call is cancelled."""

    def __init__(self) -> None:
        super().__init__(runs_on=True)
        self.speaking = asyncio.Event()

    async def _events(self) -> AsyncIterator[gw.SpeakAnswerResponse]:  # type: ignore[override]
        yield gw.SpeakAnswerResponse(chunk=common.AudioChunk(data=b"RIFF"))
        self.speaking.set()
        await asyncio.Event().wait()


class SpeakStub:
    def __init__(self) -> None:
        self.calls: list[SpeakCall] = []

    def SpeakAnswer(self, request: gw.SpeakAnswerRequest, timeout: float) -> SpeakCall:
        self.calls.append(SpeakCall())
        return self.calls[-1]


async def test_a_cancelled_voice_fetch_cancels_the_gateway_call_at_once() -> None:
    stub = SpeakStub()
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    fetching = asyncio.create_task(fetch_speech(gateway, gw.SpeakAnswerRequest()))
    while not stub.calls:  # noqa: ASYNC110 - the task has not called yet
        await asyncio.sleep(0)
    await stub.calls[0].speaking.wait()  # the first chunk is read; the speech goes on
    fetching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await fetching
    assert stub.calls[0].cancelled


class SpokenCall(GenerateCall):
    """A Generate call whose answer the gateway asks to be spoken once delivered."""

    async def _events(self) -> AsyncIterator[gw.GenerateResponse]:
        yield gw.GenerateResponse(accepted=gw.JobAccepted(job_id="job-1"))
        yield gw.GenerateResponse(chunk=gw.TextChunk(text="Hello"))
        yield gw.GenerateResponse(
            finished=gw.GenerationFinished(content="Hello there.", speak=True)
        )


class SpeakingStub(Stub):
    def __init__(self) -> None:
        super().__init__()
        self.confirmed: list[list[str]] = []

    def Generate(self, request: gw.GenerateRequest, timeout: float) -> GenerateCall:
        self.calls.append(SpokenCall(runs_on=False))
        return self.calls[-1]

    async def ConfirmDelivery(self, request: gw.ConfirmDeliveryRequest) -> Any:
        self.confirmed.append(list(request.message_ids))
        return gw.ConfirmDeliveryResponse()

    async def NoteAnswerPreview(self, request: gw.NoteAnswerPreviewRequest, **_: Any) -> Any:
        return gw.NoteAnswerPreviewResponse()


class FirstPostOnly(Webhooks):
    """The answer's first post lands; what follows (its last edit) fails with `error`."""

    async def send(self, channel: object, content: str, **_: Any) -> Any:
        return SimpleNamespace(id=501)


class EveryPost(FirstPostOnly):
    async def edit(self, channel: object, message_id: int, content: str, **_: Any) -> None:
        pass


class Voices:
    """The voice poster as the answer poster uses it: what it was asked to speak."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def speak_later(self, channel: object, actor: object, job_id: str, *_: object) -> None:
        self.asked.append(job_id)


def speaking_poster(webhooks: Webhooks) -> tuple[Poster, Channel, SpeakingStub, Voices]:
    stub, voices = SpeakingStub(), Voices()
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    settings = BotSettings(tls_dir=Path("unused"), stream_edit_interval_seconds=0)
    answers = Poster(gateway, webhooks, settings, AnswerBook(10), voice=voices)  # type: ignore[arg-type]  # fakes of the pool and the voice poster
    return answers, Channel(42), stub, voices


async def test_an_answer_delivered_whole_is_spoken() -> None:
    answers, channel, stub, voices = speaking_poster(EveryPost(RuntimeError("unused")))
    await answers.post(channel, None, LILITH, gw.GenerateRequest(), 7)
    assert stub.confirmed == [["501"]]
    assert voices.asked == ["job-1"]


async def test_no_voice_is_asked_for_an_answer_discord_did_not_take_whole() -> None:
    """Refused (the message deleted: 10008) or unreachable after the first post: what was
    posted is confirmed, and no voice is paid for."""
    for error in (refusal(404, 10008), aiohttp.ClientConnectionError("reset")):
        answers, channel, stub, voices = speaking_poster(FirstPostOnly(error))
        await answers.post(channel, None, LILITH, gw.GenerateRequest(), 7)
        assert stub.confirmed == [["501"]], error  # what was posted is confirmed
        assert voices.asked == [], error


class RefusedCall(GenerateCall):
    """A Generate call the gateway refuses before it begins (nothing accepted)."""

    def __init__(self, err: TzurotError) -> None:
        super().__init__(runs_on=False)
        self.err = err

    async def _events(self) -> AsyncIterator[gw.GenerateResponse]:
        status = to_status(self.err)
        trailing = grpc.aio.Metadata(*status.trailing_metadata)
        raise grpc.aio.AioRpcError(status.code, grpc.aio.Metadata(), trailing, status.details)
        yield gw.GenerateResponse()  # an async generator that never yields


class RefusingStub(SpeakingStub):
    def __init__(self, err: TzurotError) -> None:
        super().__init__()
        self.err = err

    def Generate(self, request: gw.GenerateRequest, timeout: float) -> GenerateCall:
        self.calls.append(RefusedCall(self.err))
        return self.calls[-1]


class Recorded(EveryPost):
    """Every post lands, recorded in `log` with what else happened, in order."""

    def __init__(self, log: list[str]) -> None:
        super().__init__(RuntimeError("unused"))
        self.log = log

    async def send(self, channel: object, content: str, **_: Any) -> Any:
        self.log.append(f"posted {content.splitlines()[-1]}")
        return SimpleNamespace(id=501)


class RegeneratedCall(GenerateCall):
    """A 🔄's Generate call: accepted (`replacing`: the gateway takes the old exchange out of
    history at delivery), a chunk, then the answer, or (`fails`) that failure instead."""

    def __init__(self, *, replacing: bool, fails: TzurotError | None) -> None:
        super().__init__(runs_on=False)
        self.replacing, self.fails = replacing, fails

    async def _events(self) -> AsyncIterator[gw.GenerateResponse]:
        yield gw.GenerateResponse(accepted=gw.JobAccepted(job_id="job-2", replacing=self.replacing))
        yield gw.GenerateResponse(chunk=gw.TextChunk(text="Hello"))
        if self.fails is not None:
            status = to_status(self.fails)
            trailing = grpc.aio.Metadata(*status.trailing_metadata)
            raise grpc.aio.AioRpcError(status.code, grpc.aio.Metadata(), trailing, status.details)
        yield gw.GenerateResponse(finished=gw.GenerationFinished(content="Hello there."))


class RegeneratingStub(SpeakingStub):
    def __init__(self, *, replacing: bool = True, fails: TzurotError | None = None) -> None:
        super().__init__()
        self.replacing, self.fails = replacing, fails

    def Generate(self, request: gw.GenerateRequest, timeout: float) -> GenerateCall:
        self.calls.append(RegeneratedCall(replacing=self.replacing, fails=self.fails))
        return self.calls[-1]


def replacing(log: list[str], stub: SpeakingStub | None = None) -> Replacing:
    """The old answer's removal and forgetting, recorded in `log` (with what was confirmed
    by then, when `stub` is given)."""

    async def remove() -> None:
        log.append(f"old answer deleted after {stub.confirmed if stub else []}")

    async def forget() -> None:
        log.append("old exchange forgotten")

    return Replacing(remove=remove, forget=forget)


async def test_the_answer_a_regeneration_replaces_goes_once_the_new_one_is_delivered() -> None:
    """Not when the gateway accepts the generation: the new answer is posted whole and
    confirmed (its delivery takes the old exchange out of history), then the old one goes."""
    log: list[str] = []
    stub = RegeneratingStub()
    answers, channel = poster(stub, Recorded(log))
    await answers.post(
        channel, None, LILITH, gw.GenerateRequest(), 7, replacing=replacing(log, stub)
    )
    assert log == ["posted Hello", "old answer deleted after [['501']]"]


@pytest.mark.parametrize(
    ("err", "told"),
    [
        (NotFound("no personality named 'wren'", reason="PERSONALITY_NOT_FOUND"), False),
        (FailedPrecondition("no API key", reason="NO_API_KEY"), True),
    ],
)
async def test_a_regeneration_refused_before_it_begins_leaves_the_answer_it_replaces(
    err: TzurotError, told: bool
) -> None:
    """Its personality gone (deleted since the bot's check): nothing is posted. Refused for
    another reason (no key): the reason is told. Either way the old answer stays."""
    log: list[str] = []
    answers, channel = poster(RefusingStub(err), Recorded(log))
    await answers.post(channel, None, LILITH, gw.GenerateRequest(), 7, replacing=replacing(log))
    assert len(log) == told  # the error reply, when there is one to tell
    assert not any(entry.startswith("old") for entry in log)


async def test_a_regeneration_failing_after_it_began_leaves_the_answer_it_replaces() -> None:
    """Accepted, then refused by inference (the user's key gone): the failure is told where
    the new answer began, and the old answer stays, as its exchange stays in history."""
    log: list[str] = []
    stub = RegeneratingStub(fails=FailedPrecondition("no API key", reason="NO_API_KEY"))
    answers, channel = poster(stub, Recorded(log))
    await answers.post(channel, None, LILITH, gw.GenerateRequest(), 7, replacing=replacing(log))
    assert log == ["posted Hello"]  # the preview, then the error reply edited into it
    assert stub.confirmed == []


async def test_an_older_gateway_has_the_old_exchange_forgotten_once_it_accepted() -> None:
    """A gateway that does not say it replaces the exchange (older than JobAccepted.replacing)
    leaves it in history: the bot removes it itself as the generation starts, as it used to;
    the old answer's messages still go only once the new one is delivered."""
    log: list[str] = []
    stub = RegeneratingStub(replacing=False)
    answers, channel = poster(stub, Recorded(log))
    await answers.post(
        channel, None, LILITH, gw.GenerateRequest(), 7, replacing=replacing(log, stub)
    )
    assert log == [
        "old exchange forgotten",
        "posted Hello",
        "old answer deleted after [['501']]",
    ]
