"""An answer whose personality is deleted while it streams, or before its delivery is
confirmed: the gateway drops its job and says so (PERSONALITY_DELETED, with its words; its
user's data deleted, USER_DATA_DELETING, reads the same once the job was accepted). The
messages that showed it are edited into why, exactly as a restarted bot edits such a half
answer (unfinished.failure_notice: the default voice, not the deleted personality's), and
nothing is posted anew as that personality: none shown, nothing said. Not delivered, so not
spoken, and a 🔄's old answer stays.

The bot used to show "Something went wrong on our side" there, in the deleted personality's
voice (the gateway said JOB_TAKEN_OVER), and posted it anew when nothing was shown yet.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import grpc
import pytest

from tzurot.bot.answer_endings import Replacing
from tzurot.bot.answering import Poster
from tzurot.bot.answers import Answer, AnswerBook
from tzurot.bot.config import BotSettings
from tzurot.bot.errors import deleted_notice
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.unfinished import failure_notice
from tzurot.runtime.errors import FailedPrecondition, PermissionDenied, TzurotError, to_status
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

FINCH = common.Personality(
    slug="finch", display_name="Finch", error_message="*Finch ruffles its feathers.*"
)
PUBLIC_FINCH = common.Personality(
    slug="finch",
    display_name="Finch",
    error_message="*Finch ruffles its feathers.*",
    public=True,
)
WORDS = "this personality was deleted, so this answer stops here; it answers no one now"
DELETED = FailedPrecondition(WORDS, reason="PERSONALITY_DELETED")
NOTICE = f"I couldn't answer that.\n-# {WORDS}"


def rpc_error(err: TzurotError) -> grpc.aio.AioRpcError:
    status = to_status(err)
    trailing = grpc.aio.Metadata(*status.trailing_metadata)
    return grpc.aio.AioRpcError(status.code, grpc.aio.Metadata(), trailing, status.details)


class Call:
    """Generate: accepted, then `chunks`, then the answer, or (`fails`) that error; not
    `accepted`: refused at once, with `fails`."""

    def __init__(self, chunks: list[str], fails: TzurotError | None, *, accepted: bool) -> None:
        self.chunks, self.fails, self.accepted = chunks, fails, accepted

    def __aiter__(self) -> AsyncIterator[gw.GenerateResponse]:
        return self._events()

    async def _events(self) -> AsyncIterator[gw.GenerateResponse]:
        if not self.accepted and self.fails is not None:
            raise rpc_error(self.fails)
        yield gw.GenerateResponse(accepted=gw.JobAccepted(job_id="job-1", replacing=True))
        for text in self.chunks:
            yield gw.GenerateResponse(chunk=gw.TextChunk(text=text))
        if self.fails is not None:
            raise rpc_error(self.fails)
        content = "".join(self.chunks)
        yield gw.GenerateResponse(finished=gw.GenerationFinished(content=content, speak=True))

    def cancel(self) -> bool:
        return True


class Stub:
    """The gateway: Generate as `Call`; ConfirmDelivery refused with `refuse` when set."""

    def __init__(
        self,
        chunks: list[str],
        *,
        fails: TzurotError | None = None,
        refuse: TzurotError | None = None,
        accepted: bool = True,
    ) -> None:
        self.chunks, self.fails, self.refuse = chunks, fails, refuse
        self.accepted = accepted
        self.confirmed: list[list[str]] = []

    def Generate(self, request: gw.GenerateRequest, timeout: float) -> Call:
        return Call(self.chunks, self.fails, accepted=self.accepted)

    async def ConfirmDelivery(self, request: gw.ConfirmDeliveryRequest) -> Any:
        self.confirmed.append(list(request.message_ids))
        if self.refuse is not None:
            raise rpc_error(self.refuse)
        return gw.ConfirmDeliveryResponse()

    async def NoteAnswerPreview(self, request: gw.NoteAnswerPreviewRequest, **_: Any) -> Any:
        return gw.NoteAnswerPreviewResponse()


class Webhooks:
    """The webhook pool: what each message shows, as whom it was posted, what was deleted;
    `unreachable`: Discord out of reach (that error) once the answer is whole or has
    failed, when its messages are edited into why."""

    def __init__(self, unreachable: Exception | None = None) -> None:
        self.shown: dict[int, str] = {}
        self.posted_as: dict[int, str] = {}
        self.deleted: list[int] = []
        self.unreachable = unreachable

    async def for_channel_of(self, channel: object) -> object:
        return object()

    async def send(self, channel: object, content: str, *, username: str, **_: Any) -> Any:
        message_id = 500 + len(self.posted_as)
        self.shown[message_id], self.posted_as[message_id] = content, username
        return SimpleNamespace(id=message_id)

    async def edit(self, channel: object, message_id: int, content: str, **_: Any) -> None:
        if self.unreachable is not None and "couldn't answer" in content:
            raise self.unreachable
        self.shown[message_id] = content

    async def delete(self, channel: object, message_id: int) -> bool:
        self.deleted.append(message_id)
        del self.shown[message_id]
        return True

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


class Voices:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def speak_later(self, channel: object, actor: object, job_id: str, *_: object) -> None:
        self.asked.append(job_id)


async def post(
    stub: Stub,
    replacing: Replacing | None = None,
    *,
    turn: bool = False,
    webhooks: Webhooks | None = None,
    personality: common.Personality = FINCH,
) -> tuple[Webhooks, Channel, Voices]:
    """Posts Finch's answer (`turn`: as a scheduled turn, which nobody asked for)."""
    webhooks, channel, voices = webhooks or Webhooks(), Channel(42), Voices()
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    settings = BotSettings(tls_dir=Path("unused"), stream_edit_interval_seconds=0)
    poster = Poster(gateway, webhooks, settings, AnswerBook(10), voice=voices)  # type: ignore[arg-type]  # fakes of the pool and the voice poster
    quiet = (
        Answer(personality, 0, channel, gw.GenerateRequest(), shown=personality) if turn else None
    )
    await poster.post(
        channel, None, personality, gw.GenerateRequest(), 7, replacing=replacing, quiet=quiet
    )
    if quiet is not None:
        why = stub.fails or stub.refuse
        assert why is not None
        assert quiet.error_reason == why.reason  # its event acknowledged so
        assert quiet.message_ids == []  # nothing of it left to acknowledge as posted
    return webhooks, channel, voices


def test_it_reads_as_a_restarted_bot_shows_such_a_half_answer() -> None:
    withheld = failure_notice(common.Personality(), "PERSONALITY_DELETED", WORDS)
    for personality in (FINCH, PUBLIC_FINCH):  # its own voice went with it, either way
        assert deleted_notice(DELETED, personality) == NOTICE == withheld


async def test_deleted_while_it_streams_its_preview_says_so_in_no_ones_voice() -> None:
    stub = Stub(["Once upon", " a time"], fails=DELETED)
    webhooks, channel, _ = await post(stub)
    assert webhooks.shown == {500: NOTICE}  # the preview, edited in place
    assert webhooks.posted_as == {500: "Finch"}  # posted once, while Finch still was
    assert channel.notices == []
    assert stub.confirmed == []


async def test_a_scheduled_turn_deleted_while_it_streams_goes_as_its_other_failures_do() -> None:
    """Nobody asked for it: its half answer is taken away, and nothing is told."""
    webhooks, channel, _ = await post(Stub(["Once upon"], fails=DELETED), turn=True)
    assert webhooks.shown == {}
    assert webhooks.deleted == [500]
    assert channel.notices == []


async def test_deleted_before_anything_was_shown_nothing_is_posted() -> None:
    webhooks, channel, _ = await post(Stub([], fails=DELETED))
    assert webhooks.posted_as == {}  # nothing speaks as a deleted personality
    assert channel.notices == []


async def test_deleted_before_its_delivery_was_confirmed_it_says_so_and_is_not_kept() -> None:
    """Whole, posted in two messages, then refused at confirmation (its job dropped): the
    first says why, the second goes; not spoken, and the answer a 🔄 replaced stays."""
    removed: list[str] = []

    async def remove() -> None:
        removed.append("old answer")

    async def forget() -> None:
        removed.append("old exchange")

    stub = Stub(["word " * 300, "word " * 300], refuse=DELETED)
    webhooks, _, voices = await post(stub, Replacing(remove=remove, forget=forget))
    assert len(stub.confirmed) == 1
    assert len(stub.confirmed[0]) == 2  # it was whole: two messages
    assert webhooks.shown == {500: NOTICE}
    assert webhooks.deleted == [501]
    assert voices.asked == []
    assert removed == []


async def test_a_scheduled_turn_deleted_before_its_delivery_was_confirmed_goes_quietly() -> None:
    """Nobody asked for it: as when it is deleted while it streams, its messages are taken
    away and nothing is told; its event is acknowledged with why, not as posted. It used to
    leave the notice in the channel, acknowledged as posted."""
    stub = Stub(["word " * 300, "word " * 300], refuse=DELETED)
    webhooks, channel, voices = await post(stub, turn=True)
    assert len(stub.confirmed) == 1
    assert webhooks.shown == {}
    assert webhooks.deleted == [501, 500]  # the last first
    assert channel.notices == []
    assert voices.asked == []


# Her data being deleted (USER_DATA_DELETING) takes her answer under way as a deletion of its
# personality does (her private personality may be going with it): what showed it says so, in
# no personality's voice, and nothing is posted anew. It used to be shown as a refusal, in the
# personality's voice: posted anew as that personality when nothing was shown yet, and an
# answer refused at its confirmation stayed whole.
HER_WORDS = (
    "your data is being deleted, as you asked; until that has finished (usually within "
    "minutes, up to a day while ElevenLabs cannot be reached to delete cloned voices) nothing "
    "you send is answered or kept"
)
HERS = PermissionDenied(HER_WORDS, reason="USER_DATA_DELETING")
HER_NOTICE = f"I couldn't answer that.\n-# {HER_WORDS}"


async def test_her_data_deleted_while_it_streams_its_preview_says_so_in_no_ones_voice() -> None:
    stub = Stub(["Once upon", " a time"], fails=HERS)
    webhooks, channel, _ = await post(stub)
    assert deleted_notice(HERS, FINCH) == HER_NOTICE  # Finch is private: hers, maybe
    assert webhooks.shown == {500: HER_NOTICE}  # the preview, edited in place
    assert webhooks.posted_as == {500: "Finch"}  # posted once, while it answered
    assert channel.notices == []
    assert stub.confirmed == []


async def test_her_data_deleted_before_anything_was_shown_nothing_is_posted() -> None:
    webhooks, channel, _ = await post(Stub([], fails=HERS))
    assert webhooks.posted_as == {}
    assert channel.notices == []


async def test_her_data_deleted_before_its_delivery_was_confirmed_it_says_so() -> None:
    stub = Stub(["word " * 300, "word " * 300], refuse=HERS)
    webhooks, _, voices = await post(stub)
    assert len(stub.confirmed[0]) == 2  # it was whole: two messages
    assert webhooks.shown == {500: HER_NOTICE}
    assert webhooks.deleted == [501]
    assert voices.asked == []


async def test_a_message_of_hers_refused_while_her_data_is_deleted_is_told_as_refusals_are() -> (
    None
):
    """Refused at admission (no job accepted: nothing of an answer under way): the refusal
    of a message, in the personality's voice, as any refusal is shown."""
    webhooks, channel, _ = await post(Stub([], fails=HERS, accepted=False))
    assert list(webhooks.shown.values()) == [f"*Finch ruffles its feathers.*\n-# {HER_WORDS}"]
    assert list(webhooks.posted_as.values()) == ["Finch"]
    assert channel.notices == []


@pytest.mark.parametrize(
    "unreachable",
    [aiohttp.ClientConnectionError("connection reset"), TimeoutError()],
    ids=["dropped", "timeout"],
)
@pytest.mark.parametrize("when", ["streaming", "confirming"])
async def test_discord_out_of_reach_while_it_says_so_stops_only_that_answer(
    unreachable: Exception, when: str
) -> None:
    """Discord out of reach when its messages are edited into why: logged, as when it is out
    of reach while an answer is posted, and the message's other addressees are answered (it
    used to escape `post`, skipping them)."""
    if when == "streaming":
        stub = Stub(["Once upon"], fails=DELETED)
    else:
        stub = Stub(["Once upon"], refuse=DELETED)
    webhooks, channel, voices = await post(stub, webhooks=Webhooks(unreachable))
    assert webhooks.shown == {500: "Once upon"}  # the edit did not get through
    assert channel.notices == []
    assert voices.asked == []


async def test_her_data_deleted_while_a_public_one_streams_reads_in_its_voice() -> None:
    """A public personality is not going with her data: its preview reads as the refusal of a
    message of hers does, and as a restarted bot shows that half answer (the gateway names a
    public personality in the hand-over), in its voice."""
    stub = Stub(["Once upon", " a time"], fails=HERS)
    webhooks, channel, _ = await post(stub, personality=PUBLIC_FINCH)
    said = f"*Finch ruffles its feathers.*\n-# {HER_WORDS}"
    assert deleted_notice(HERS, PUBLIC_FINCH) == said
    assert webhooks.shown == {500: said}
    assert channel.notices == []
    assert stub.confirmed == []
