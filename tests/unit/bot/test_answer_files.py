"""An answer's files (generated images) in Discord: as many as one message takes are attached
to the answer's last message, the others follow in messages of their own, and every message
that carries them is confirmed as part of the answer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord

from tzurot.bot.answering import Poster
from tzurot.bot.answers import AnswerBook
from tzurot.bot.config import BotSettings
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.skill_output import MAX_FILES
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

LILITH = common.Personality(slug="lilith", display_name="Lilith")
MIB = 1024 * 1024


def image(n: int, size: int) -> common.GeneratedFile:
    return common.GeneratedFile(
        filename=f"image-{n}.png", content_type="image/png", data=bytes(size)
    )


class GenerateCall:
    """A server-streaming call as grpc.aio's: iterated, then cancelled (a no-op once over)."""

    def __init__(self, files: list[common.GeneratedFile]) -> None:
        self.files = files

    def __aiter__(self) -> AsyncIterator[gw.GenerateResponse]:
        return self._events()

    async def _events(self) -> AsyncIterator[gw.GenerateResponse]:
        yield gw.GenerateResponse(accepted=gw.JobAccepted(job_id="job-1"))
        finished = gw.GenerationFinished(content="Your moons.", files=self.files)
        yield gw.GenerateResponse(finished=finished)

    def cancel(self) -> bool:
        return False


class Stub:
    """The gateway: one Generate that finishes with `files`, and ConfirmDelivery recorded."""

    def __init__(self, files: list[common.GeneratedFile]) -> None:
        self.files = files
        self.confirmed: list[list[str]] = []

    def Generate(self, request: gw.GenerateRequest, timeout: float) -> GenerateCall:
        return GenerateCall(self.files)

    async def NoteAnswerPreview(self, request: gw.NoteAnswerPreviewRequest, **_: Any) -> Any:
        return gw.NoteAnswerPreviewResponse()

    async def ConfirmDelivery(self, request: gw.ConfirmDeliveryRequest, **_: Any) -> Any:
        self.confirmed.append(list(request.message_ids))
        return gw.ConfirmDeliveryResponse()


class Webhooks:
    """The webhook pool: what was sent (content, file names) and attached, by message id."""

    def __init__(self) -> None:
        self.sent: dict[int, tuple[str, list[str]]] = {}
        self.attached: dict[int, list[str]] = {}

    async def for_channel_of(self, channel: object) -> object:
        return object()

    async def send(
        self, channel: object, content: str, *, files: Sequence[discord.File] = (), **_: Any
    ) -> Any:
        message_id = 100 + len(self.sent)
        self.sent[message_id] = (content, [f.filename for f in files])
        return SimpleNamespace(id=message_id)

    async def edit(self, channel: object, message_id: int, content: str, **_: Any) -> None:
        self.sent[message_id] = (content, self.sent[message_id][1])

    async def attach(self, channel: object, message_id: int, files: list[discord.File]) -> None:
        self.attached[message_id] = [f.filename for f in files]


class Channel(discord.TextChannel):
    def __init__(self, filesize_limit: int) -> None:  # no connection state: nothing else is read
        self.id = 42
        self.guild = SimpleNamespace(me=None, filesize_limit=filesize_limit)  # type: ignore[assignment]  # only these are read

    def typing(self) -> Any:
        return contextlib.nullcontext()


async def post(files: list[common.GeneratedFile], *, filesize_limit: int = 10 * MIB) -> Any:
    stub, hooks = Stub(files), Webhooks()
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    settings = BotSettings(tls_dir=Path("unused"), stream_edit_interval_seconds=0)
    poster = Poster(gateway, hooks, settings, AnswerBook(10))  # type: ignore[arg-type]  # a fake pool
    await poster.post(Channel(filesize_limit), None, LILITH, gw.GenerateRequest(), 7)
    return SimpleNamespace(hooks=hooks, confirmed=stub.confirmed)


async def test_files_beyond_one_message_follow_in_another_and_are_confirmed() -> None:
    posted = await post([image(n, 1) for n in range(MAX_FILES + 2)])
    (answer_id, follow_up) = posted.hooks.sent
    assert posted.hooks.sent[answer_id][0] == "Your moons."
    assert posted.hooks.attached[answer_id] == [f"image-{n}.png" for n in range(MAX_FILES)]
    assert posted.hooks.sent[follow_up] == ("", ["image-10.png", "image-11.png"])
    assert posted.confirmed == [[str(answer_id), str(follow_up)]]


async def test_a_request_over_25_mib_is_split_and_a_boosted_servers_limit_is_used() -> None:
    """Three 11 MiB images in a tier-2 server (50 MiB a file): two in the answer's edit (22
    MiB), the third after it, none left out."""
    posted = await post([image(n, 11 * MIB) for n in range(3)], filesize_limit=50 * MIB)
    (answer_id, follow_up) = posted.hooks.sent
    assert posted.hooks.attached[answer_id] == ["image-0.png", "image-1.png"]
    assert posted.hooks.sent[follow_up] == ("", ["image-2.png"])
