"""Everything an answer shows is noted with its preview, in the order it is posted: its text,
the messages of the files that did not fit on its last message, then its reasoning's
message; so a bot that dies before confirming the answer leaves all of it to its successor
(tzurot.bot.unfinished: kept with the answer handed over whole, deleted otherwise).

And an answer withheld when its delivery is confirmed (its personality, or its user's data,
deleted meanwhile) keeps nothing it showed beyond its text: its reasoning's message and its
files' messages are deleted, and the files attached to the message left saying why are
taken off it. They used to stay under the notice."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import grpc

from tzurot.bot.answering import Poster
from tzurot.bot.answers import Answer, AnswerBook
from tzurot.bot.config import BotSettings
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.reasoning import REASONING_HEADER
from tzurot.bot.skill_output import MAX_FILES
from tzurot.runtime.errors import FailedPrecondition, TzurotError, to_status
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

LILITH = common.Personality(slug="lilith", display_name="Lilith")
WORDS = "this personality was deleted, so this answer stops here; it answers no one now"
DELETED = FailedPrecondition(WORDS, reason="PERSONALITY_DELETED")


def rpc_error(err: TzurotError) -> grpc.aio.AioRpcError:
    status = to_status(err)
    trailing = grpc.aio.Metadata(*status.trailing_metadata)
    return grpc.aio.AioRpcError(status.code, grpc.aio.Metadata(), trailing, status.details)


def images(count: int) -> list[common.GeneratedFile]:
    return [
        common.GeneratedFile(filename=f"image-{n}.png", content_type="image/png", data=b"png")
        for n in range(count)
    ]


class Call:
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
    """The gateway: one Generate ending with `finished`; each preview note and confirmation
    recorded; ConfirmDelivery refused with `refuse` when set."""

    def __init__(self, finished: gw.GenerationFinished, refuse: TzurotError | None = None) -> None:
        self.finished, self.refuse = finished, refuse
        self.notes: list[list[str]] = []
        self.confirmed: list[list[str]] = []

    def Generate(self, request: gw.GenerateRequest, timeout: float) -> Call:
        return Call(self.finished)

    async def NoteAnswerPreview(self, request: gw.NoteAnswerPreviewRequest, **_: Any) -> Any:
        self.notes.append(list(request.message_ids))
        return gw.NoteAnswerPreviewResponse()

    async def ConfirmDelivery(self, request: gw.ConfirmDeliveryRequest, **_: Any) -> Any:
        self.confirmed.append(list(request.message_ids))
        if self.refuse is not None:
            raise rpc_error(self.refuse)
        return gw.ConfirmDeliveryResponse()


class Webhooks:
    """The webhook pool: what each message shows (its text, its files), what was deleted."""

    def __init__(self) -> None:
        self.shown: dict[int, str] = {}
        self.files: dict[int, list[str]] = {}
        self.deleted: list[int] = []

    async def for_channel_of(self, channel: object) -> object:
        return object()

    async def send(
        self, channel: object, content: str, *, files: Sequence[discord.File] = (), **_: Any
    ) -> Any:
        message_id = 100 + len(self.shown) + len(self.deleted)
        self.shown[message_id] = content
        self.files[message_id] = [f.filename for f in files]
        return SimpleNamespace(id=message_id)

    async def edit(self, channel: object, message_id: int, content: str, **_: Any) -> None:
        self.shown[message_id] = content

    async def attach(self, channel: object, message_id: int, files: list[discord.File]) -> None:
        self.files[message_id] = [f.filename for f in files]

    async def delete(self, channel: object, message_id: int) -> bool:
        self.deleted.append(message_id)
        del self.shown[message_id]
        self.files.pop(message_id, None)
        return True


class Channel(discord.TextChannel):
    def __init__(self) -> None:  # no connection state: nothing else is read
        self.id = 42
        self.guild = SimpleNamespace(me=None)  # type: ignore[assignment]  # only `me` is read

    def typing(self) -> Any:
        return contextlib.nullcontext()

    async def send(self, content: str | None = None, **_: Any) -> Any:
        return discord.Object(id=1)


class Voices:
    def speak_later(self, *_: Any) -> None:
        pass


async def post(stub: Stub, *, turn: bool = False) -> Webhooks:
    hooks = Webhooks()
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    settings = BotSettings(tls_dir=Path("unused"), stream_edit_interval_seconds=0)
    poster = Poster(gateway, hooks, settings, AnswerBook(10), voice=Voices())  # type: ignore[arg-type]  # fakes of the pool and the voice poster
    channel = Channel()
    quiet = Answer(LILITH, 0, channel, gw.GenerateRequest(), shown=LILITH) if turn else None
    await poster.post(channel, None, LILITH, gw.GenerateRequest(), 7, quiet=quiet)
    await poster.notes_sent()
    return hooks


async def test_the_files_and_reasoning_messages_are_noted_with_the_answer() -> None:
    finished = gw.GenerationFinished(
        content="Your moons.", reasoning="Hm.", files=images(MAX_FILES + 1)
    )
    stub = Stub(finished)
    hooks = await post(stub)
    answer_id, files_id, reasoning_id = hooks.shown
    assert hooks.files[answer_id] == [f"image-{n}.png" for n in range(MAX_FILES)]
    assert hooks.files[files_id] == [f"image-{MAX_FILES}.png"]
    assert hooks.shown[reasoning_id].startswith(REASONING_HEADER)
    everything = [str(answer_id), str(files_id), str(reasoning_id)]
    assert stub.notes[-1] == everything  # a restarted bot finds all of it
    assert stub.confirmed == [everything]


async def test_a_withheld_answer_at_confirmation_keeps_nothing_beyond_its_notice() -> None:
    finished = gw.GenerationFinished(
        content="Your moons.", reasoning="Hm.", files=images(MAX_FILES + 1)
    )
    hooks = await post(Stub(finished, refuse=DELETED))
    ((notice_id, notice),) = hooks.shown.items()  # the answer's text, saying why
    assert notice == f"I couldn't answer that.\n-# {WORDS}"
    assert hooks.files[notice_id] == []  # its files taken off
    assert len(hooks.deleted) == 2  # the files' message and the reasoning's


async def test_a_withheld_scheduled_turn_at_confirmation_leaves_nothing() -> None:
    finished = gw.GenerationFinished(content="Your moons.", reasoning="Hm.", files=images(1))
    hooks = await post(Stub(finished, refuse=DELETED), turn=True)
    assert hooks.shown == {}
    assert len(hooks.deleted) == 2  # the answer (its files with it) and its reasoning
