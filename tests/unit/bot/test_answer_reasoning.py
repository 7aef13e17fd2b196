"""The reasoning the gateway sends with an answer (the user's show_reasoning setting): posted
as a spoiler in a message of its own under the answer, confirmed as part of it, the voice
still under the answer; a reasoning Discord refuses leaves the answer delivered. And the cut
off line under an answer the model's length limit ended."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
from structlog.testing import capture_logs

from tzurot.bot.answer_notes import CUT_OFF_LINE
from tzurot.bot.answering import Poster
from tzurot.bot.answers import AnswerBook
from tzurot.bot.config import BotSettings
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.reasoning import REASONING_HEADER
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

LILITH = common.Personality(slug="lilith", display_name="Lilith")


class GenerateCall:
    """A server-streaming call as grpc.aio's: iterated, then cancelled (a no-op once over)."""

    def __init__(self, finished: gw.GenerationFinished) -> None:
        self.finished = finished

    def __aiter__(self) -> AsyncIterator[gw.GenerateResponse]:
        return self._events()

    async def _events(self) -> AsyncIterator[gw.GenerateResponse]:
        yield gw.GenerateResponse(accepted=gw.JobAccepted(job_id="job-1"))
        yield gw.GenerateResponse(chunk=gw.TextChunk(text=self.finished.content))
        yield gw.GenerateResponse(finished=self.finished)

    def cancel(self) -> bool:
        return False


class Stub:
    """The gateway: one Generate that ends with `finished`; ConfirmDelivery recorded."""

    def __init__(self, finished: gw.GenerationFinished) -> None:
        self.finished = finished
        self.confirmed: list[list[str]] = []

    def Generate(self, request: gw.GenerateRequest, timeout: float) -> GenerateCall:
        return GenerateCall(self.finished)

    async def NoteAnswerPreview(self, request: gw.NoteAnswerPreviewRequest, **_: Any) -> Any:
        return gw.NoteAnswerPreviewResponse()

    async def ConfirmDelivery(self, request: gw.ConfirmDeliveryRequest, **_: Any) -> Any:
        self.confirmed.append(list(request.message_ids))
        return gw.ConfirmDeliveryResponse()


class _Response:
    status, reason = 400, "refused"


class Webhooks:
    """The webhook pool: what was sent, by message id, and how; `refuse` refuses a send whose
    text contains it."""

    def __init__(self, refuse: str = "") -> None:
        self.sent: dict[int, str] = {}
        self.how: dict[int, dict[str, Any]] = {}
        self.refuse = refuse

    async def for_channel_of(self, channel: object) -> object:
        return object()

    async def send(
        self, channel: object, content: str, *, files: Sequence[discord.File] = (), **how: Any
    ) -> Any:
        if self.refuse and self.refuse in content:
            raise discord.HTTPException(_Response(), {"code": 50035, "message": "no"})  # type: ignore[arg-type]  # the fields HTTPException reads
        message_id = 100 + len(self.sent)
        self.sent[message_id], self.how[message_id] = content, how
        return SimpleNamespace(id=message_id)

    async def edit(self, channel: object, message_id: int, content: str, **_: Any) -> None:
        self.sent[message_id] = content


class Channel(discord.TextChannel):
    def __init__(self) -> None:  # no connection state: nothing else is read
        self.id = 42
        self.guild = SimpleNamespace(me=None)  # type: ignore[assignment]  # only `me` is read

    def typing(self) -> Any:
        return contextlib.nullcontext()


class Voices:
    """The voice poster: the message each spoken answer was to go under."""

    def __init__(self) -> None:
        self.under: list[int] = []

    def speak_later(
        self, channel: object, actor: object, job_id: str, reply_to: int, *_: Any
    ) -> None:
        self.under.append(reply_to)


async def post(finished: gw.GenerationFinished, hooks: Webhooks) -> SimpleNamespace:
    stub, voices = Stub(finished), Voices()
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    settings = BotSettings(tls_dir=Path("unused"), stream_edit_interval_seconds=0)
    poster = Poster(gateway, hooks, settings, AnswerBook(10), voice=voices)  # type: ignore[arg-type]  # fakes of the pool and the voice poster
    await poster.post(Channel(), None, LILITH, gw.GenerateRequest(), 7)
    return SimpleNamespace(confirmed=stub.confirmed, voices=voices.under)


async def test_the_reasoning_follows_the_answer_as_a_spoiler_and_is_part_of_it() -> None:
    hooks = Webhooks()
    finished = gw.GenerationFinished(
        content="Yes.", reasoning="Because || of <@7>.", speak=True, footer="fake/model"
    )
    posted = await post(finished, hooks)
    (answer_id, reasoning_id) = hooks.sent
    assert hooks.sent[answer_id] == "Yes.\n-# fake/model"
    assert hooks.sent[reasoning_id] == f"{REASONING_HEADER}\n||Because |\u200b|\u200b of <@7>.||"
    assert hooks.how[reasoning_id]["mentions"].users is False  # it pings nobody
    assert hooks.how[reasoning_id]["suppress_embeds"]
    assert posted.confirmed == [[str(answer_id), str(reasoning_id)]]
    assert posted.voices == [answer_id]  # the voice goes under the answer, not its reasoning


async def test_no_reasoning_no_message() -> None:
    hooks = Webhooks()
    posted = await post(gw.GenerationFinished(content="Yes."), hooks)
    assert list(hooks.sent.values()) == ["Yes."]
    assert posted.confirmed == [["100"]]


async def test_a_reasoning_discord_refuses_leaves_the_answer_delivered() -> None:
    hooks = Webhooks(refuse=REASONING_HEADER)
    with capture_logs() as logs:
        posted = await post(gw.GenerationFinished(content="Yes.", reasoning="Hm."), hooks)
    assert list(hooks.sent.values()) == ["Yes."]
    assert posted.confirmed == [["100"]]
    assert any(e["event"] == "bot.reasoning_refused" for e in logs)


async def test_an_answer_cut_at_the_length_limit_says_so_above_the_footer() -> None:
    hooks = Webhooks()
    finished = gw.GenerationFinished(
        content="It began ```py\nprint(", finish_reason="length", footer="fake/model"
    )
    await post(finished, hooks)
    assert list(hooks.sent.values()) == [
        f"It began ```py\nprint(\n```\n{CUT_OFF_LINE}\n-# fake/model"
    ]
