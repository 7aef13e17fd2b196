"""An answer cut short by a restart in the mesh (a rollout stopping the gateway mid-answer, a
service that died) is asked for again by the bot, the same request, and streams into the
messages that showed the first: the user never reads "try again" for a rollout. Only when
the retries run out is the user told so. Meanwhile the messages are not noted as the job's
preview (the gateway's sweep would hand a failed job showing one over as abandoned), and the
new generation notes them again.

The bot used to show "the gateway is restarting; try again in a moment" at every rollout that
met an answer streaming.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import discord
import grpc
import pytest

from tests.unit.bot.test_answer_of_deleted_personality import FINCH, Channel, rpc_error
from tzurot.bot import answer_restarts
from tzurot.bot.answer_restarts import RECOVERING_LINE
from tzurot.bot.answering import Poster
from tzurot.bot.answers import Answer, AnswerBook
from tzurot.bot.config import BotSettings
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.posting import StreamedAnswer
from tzurot.bot.splitting import DISCORD_LIMIT
from tzurot.runtime.errors import Unavailable
from tzurot.v1 import gateway_pb2 as gw

STOPPED = Unavailable(
    "the gateway is restarting; send the message again in a moment", reason="GATEWAY_RESTARTING"
)
PROVIDER_DOWN = Unavailable("the provider is not reachable", reason="PROVIDER_UNAVAILABLE")
REQUEST = gw.GenerateRequest(idempotency_key="m1:finch", content="tell me a story")


def connection_lost() -> grpc.aio.AioRpcError:
    """The gateway's process gone mid-call (killed): UNAVAILABLE without its rich status."""
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "Socket closed"
    )


@dataclass
class Generation:
    """One Generate call: accepted, `chunks`, then `fails` (an rpc error) or the answer."""

    chunks: list[str]
    fails: grpc.aio.AioRpcError | None = None


@dataclass
class Call:
    generation: Generation

    def __aiter__(self) -> AsyncIterator[gw.GenerateResponse]:
        return self._events()

    async def _events(self) -> AsyncIterator[gw.GenerateResponse]:
        yield gw.GenerateResponse(accepted=gw.JobAccepted(job_id="job-1"))
        for text in self.generation.chunks:
            yield gw.GenerateResponse(chunk=gw.TextChunk(text=text))
        if self.generation.fails is not None:
            raise self.generation.fails
        content = "".join(self.generation.chunks)
        yield gw.GenerateResponse(finished=gw.GenerationFinished(content=content))

    def cancel(self) -> bool:
        return True


@dataclass
class Stub:
    """The gateway: each Generate is the next of `generations`; what it was asked, what was
    noted as the preview (in order) and confirmed."""

    generations: list[Generation]
    asked: list[gw.GenerateRequest] = field(default_factory=list)
    notes: list[list[str]] = field(default_factory=list)
    confirmed: list[list[str]] = field(default_factory=list)
    poster: Poster | None = None
    answering_when_asked: list[bool] = field(default_factory=list)
    """Whether the bot counted job-1 as its own answer in flight at each Generate."""

    def Generate(self, request: gw.GenerateRequest, timeout: float) -> Call:
        self.asked.append(request)
        if self.poster is not None:
            self.answering_when_asked.append(self.poster.answering("job-1"))
        return Call(self.generations[len(self.asked) - 1])

    async def ConfirmDelivery(self, request: gw.ConfirmDeliveryRequest) -> Any:
        self.confirmed.append(list(request.message_ids))
        if self.poster is not None:  # still its own until confirmed: a hand-over is left
            self.answering_when_asked.append(self.poster.answering("job-1"))
        return gw.ConfirmDeliveryResponse()

    async def NoteAnswerPreview(self, request: gw.NoteAnswerPreviewRequest, **_: Any) -> Any:
        self.notes.append(list(request.message_ids))
        return gw.NoteAnswerPreviewResponse()


class Webhooks:
    """The webhook pool: what each message shows; `refuse_after` posts, Discord refuses."""

    def __init__(self, refuse_after: int | None = None) -> None:
        self.shown: dict[int, str] = {}
        self.sent = 0
        self.deleted: list[int] = []
        self.edits: list[str] = []
        self.refuse_after = refuse_after

    async def for_channel_of(self, channel: object) -> object:
        return object()

    async def send(self, channel: object, content: str, **_: Any) -> Any:
        if self.refuse_after is not None and self.sent >= self.refuse_after:
            response = SimpleNamespace(status=403, reason="Forbidden", headers={})
            raise discord.Forbidden(response, {"code": 50013, "message": "Missing Permissions"})  # type: ignore[arg-type]  # the fields discord.py reads
        message_id = 500 + self.sent
        self.sent += 1
        self.shown[message_id] = content
        return SimpleNamespace(id=message_id)

    async def edit(self, channel: object, message_id: int, content: str, **_: Any) -> None:
        self.shown[message_id] = content
        self.edits.append(content)

    async def delete(self, channel: object, message_id: int) -> bool:
        self.deleted.append(message_id)
        del self.shown[message_id]
        return True

    def forget(self, channel_id: int) -> None:
        pass


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(answer_restarts, "RESTART_BACKOFF_SECONDS", 0.0)


def test_the_waits_double_less_a_random_part_of_up_to_half(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """1, 2, 4, 8, 8 s at most: the answers a stopping gateway cut short together are not
    all asked for again at the same moment."""
    monkeypatch.setattr(answer_restarts, "RESTART_BACKOFF_SECONDS", 1.0)  # as shipped
    for retry, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0)]:
        waits = [answer_restarts.restart_backoff(retry) for _ in range(200)]
        assert all(base / 2 <= wait <= base for wait in waits), (retry, min(waits), max(waits))
        assert max(waits) - min(waits) > base / 4  # spread, not one value


async def post(stub: Stub, webhooks: Webhooks | None = None, *, retries: int = 2) -> Webhooks:
    webhooks = webhooks or Webhooks()
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    settings = BotSettings(
        tls_dir=Path("unused"), stream_edit_interval_seconds=0, generate_restart_retries=retries
    )
    poster = Poster(gateway, webhooks, settings, AnswerBook(10))  # type: ignore[arg-type]  # a fake pool
    stub.poster = poster
    await poster.post(Channel(42), None, FINCH, REQUEST, 7)
    await poster.notes_sent()
    assert not poster.answering("job-1")  # no longer once posted, or failed
    return webhooks


async def test_a_rollout_mid_answer_is_asked_again_and_finished_in_the_same_message() -> None:
    stub = Stub(
        [
            Generation(["Once upon", " a time"], fails=rpc_error(STOPPED)),
            Generation(["Once upon a time,", " the end."]),
        ]
    )
    webhooks = await post(stub)
    assert webhooks.shown == {500: "Once upon a time, the end."}  # edited in place
    assert webhooks.sent == 1  # nothing posted anew
    assert stub.asked == [REQUEST, REQUEST]  # the same request: the gateway's same job
    assert stub.confirmed == [["500"]]
    # Noted once, and left noted while it waits: should the bot stop then, the gateway
    # hands the half answer over as cut off.
    assert stub.notes == [["500"]]
    # Its own in flight while it waits and until its delivery is confirmed: a hand-over of
    # it met meanwhile is left alone.
    assert stub.answering_when_asked == [False, True, True]


async def test_while_it_is_asked_again_the_half_answer_says_so_and_the_answer_drops_it() -> None:
    """A gateway killed mid-answer holds the ask until its run's lease ends (up to 25 s): the
    half answer used to stay frozen, with no sign of anything going on."""
    stub = Stub(
        [
            Generation(["Once upon", " a time"], fails=rpc_error(STOPPED)),
            Generation(["Once upon", " a time", " it ended."], fails=rpc_error(STOPPED)),
            Generation(["Once upon a time,", " the end."]),
        ]
    )
    webhooks = await post(stub)
    # Under what the message showed (the cadence let the first chunk through), once: the
    # second ask's chunks came within the edit interval, and the line still showed.
    recovering = [e for e in webhooks.edits if RECOVERING_LINE in e]
    assert recovering == [f"Once upon\n{RECOVERING_LINE}"]
    assert webhooks.shown == {500: "Once upon a time, the end."}  # never kept


async def test_a_status_line_is_shown_under_the_last_message_only_and_fits() -> None:
    shown: dict[int, str] = {}

    async def send(text: str) -> int:
        shown[len(shown) + 1] = text
        return len(shown)

    async def edit(message_id: int, text: str) -> None:
        shown[message_id] = text

    async def delete(message_id: int) -> None:
        del shown[message_id]

    stream = StreamedAnswer(send, edit, delete, interval=0)
    assert not await stream.show_status(RECOVERING_LINE)  # nothing shown: nothing to say it under
    await stream.update("x" * 3000)
    assert await stream.show_status(RECOVERING_LINE)
    assert await stream.show_status(RECOVERING_LINE)  # once, however often asked
    assert shown[2].endswith(f"\n{RECOVERING_LINE}")
    assert shown[2].count(RECOVERING_LINE) == 1
    assert RECOVERING_LINE not in shown[1]
    await stream.update("x" * (2 * DISCORD_LIMIT))  # two full messages: the line cuts in
    assert await stream.show_status(RECOVERING_LINE)
    assert len(shown[2]) <= DISCORD_LIMIT
    assert await stream.finish("x" * 3000) == [1, 2]
    assert RECOVERING_LINE not in shown[2]


async def test_a_status_line_under_a_half_open_code_block_is_not_code() -> None:
    """Review 159: a half answer cut inside a code block showed the line as code."""
    shown: dict[int, str] = {}

    async def send(text: str) -> int:
        shown[len(shown) + 1] = text
        return len(shown)

    async def edit(message_id: int, text: str) -> None:
        shown[message_id] = text

    async def delete(message_id: int) -> None:
        del shown[message_id]

    stream = StreamedAnswer(send, edit, delete, interval=0)
    await stream.update("Here:\n```py\nprint('hi')")
    assert await stream.show_status(RECOVERING_LINE)
    assert await stream.show_status(RECOVERING_LINE)  # once, however often asked
    assert shown[1] == f"Here:\n```py\nprint('hi')\n```\n{RECOVERING_LINE}"
    assert await stream.finish("Here:\n```py\nprint('hi')\n```") == [1]
    assert shown[1] == "Here:\n```py\nprint('hi')\n```"


async def test_a_gateway_killed_mid_answer_is_asked_again_too() -> None:
    """Its connection lost (SERVICE_RESTARTING, read by the bot's client)."""
    stub = Stub([Generation(["Once"], fails=connection_lost()), Generation(["Once more."])])
    webhooks = await post(stub)
    assert webhooks.shown == {500: "Once more."}
    assert len(stub.asked) == 2
    assert stub.confirmed == [["500"]]


async def test_a_shorter_second_answer_takes_the_messages_the_first_needed_no_more() -> None:
    stub = Stub(
        [
            Generation(["word " * 600], fails=rpc_error(STOPPED)),  # two messages' worth
            Generation(["A short one."]),
        ]
    )
    webhooks = await post(stub)
    assert webhooks.shown == {500: "A short one."}
    assert webhooks.deleted == [501]
    assert stub.confirmed == [["500"]]
    assert stub.notes[-1] == ["500"]  # the message the second no longer needed is no preview


async def test_when_the_retries_run_out_the_user_is_told_to_try_again() -> None:
    stub = Stub([Generation(["Once"], fails=rpc_error(STOPPED)) for _ in range(3)])
    webhooks = await post(stub, retries=2)
    assert len(stub.asked) == 3  # the first and two retries
    (shown,) = webhooks.shown.values()
    assert "*Finch ruffles its feathers.*" in shown
    assert "try again" in shown or "send the message again" in shown
    assert stub.confirmed == []
    assert stub.notes[-1] == []  # the error is shown there: nothing for the sweep to finish


async def test_a_scheduled_turn_is_not_asked_again_here() -> None:
    """Its event is sent again later by the gateway (a turn failed UNAVAILABLE is handed
    back): asking here too would multiply what the payer's key pays."""
    stub = Stub([Generation(["Once"], fails=rpc_error(STOPPED)), Generation(["Again."])])
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    settings = BotSettings(tls_dir=Path("unused"), stream_edit_interval_seconds=0)
    poster = Poster(gateway, Webhooks(), settings, AnswerBook(10))  # type: ignore[arg-type]  # a fake pool
    turn = Answer(FINCH, 0, Channel(42), REQUEST, shown=FINCH)
    await poster.post(Channel(42), None, FINCH, REQUEST, 0, quiet=turn)
    assert len(stub.asked) == 1
    assert turn.error_code == "UNAVAILABLE"  # handed back for later (events.retry_later)


async def test_no_retry_when_retries_are_off() -> None:
    stub = Stub([Generation(["Once"], fails=rpc_error(STOPPED)), Generation(["Again."])])
    await post(stub, retries=0)
    assert len(stub.asked) == 1


async def test_an_error_that_is_not_a_restart_is_not_asked_again() -> None:
    stub = Stub([Generation(["Once"], fails=rpc_error(PROVIDER_DOWN)), Generation(["Again."])])
    webhooks = await post(stub)
    assert len(stub.asked) == 1
    (shown,) = webhooks.shown.values()
    assert "not reachable" in shown


async def test_an_answer_discord_refused_is_not_generated_again() -> None:
    """Nothing of a second generation could be shown there: it would be paid for nothing."""
    stub = Stub(
        [
            Generation(["word " * 600], fails=rpc_error(STOPPED)),  # the second one refused
            Generation(["Again."]),
        ]
    )
    webhooks = await post(stub, Webhooks(refuse_after=1))
    assert len(stub.asked) == 1
    assert 500 in webhooks.shown
