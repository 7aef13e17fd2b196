"""The gateway away (down, restarting) while the bot finds who a message addresses: a plain
message needs no ResolveMentions (the gateway's own first test is "@" in the text); one that
could address a personality (an "@", a reply to one of our answers) is told to try again, as
a failed Generate is told, once per channel and cooldown; every failure is logged with its
code and reason; and an edit met by the outage is logged, never raised into discord.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import discord
import grpc
from structlog.testing import capture_logs

from tzurot.bot.answers import Answer
from tzurot.bot.config import BotSettings
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.messages import GATEWAY_AWAY, MessageFlow
from tzurot.bot.webhooks import WebhookPool
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

APP_ID = 4242


def _away(method: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(),
        f"{method}: deadline exceeded",
    )


class Stub:
    """Every RPC fails as a gateway away does (wait_for_ready, then its deadline), except
    those `answers` gives a reply for; `calls` names each RPC asked."""

    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        self.calls: list[str] = []
        self._answers = answers or {}

    def __getattr__(self, method: str) -> Callable[..., Any]:
        async def rpc(request: Any, **_: Any) -> Any:
            self.calls.append(method)
            if method in self._answers:
                return self._answers[method]
            raise _away(method)

        return rpc


class Channel:
    def __init__(self, channel_id: int = 42) -> None:
        self.id = channel_id
        self.sent: list[str] = []

    async def send(self, content: str, **_: Any) -> Any:
        self.sent.append(content)
        return SimpleNamespace(id=900 + len(self.sent))


def flow_with(stub: Stub) -> MessageFlow:
    client = MagicMock()
    client.application_id = APP_ID
    client.user = SimpleNamespace(id=1)
    settings = BotSettings(tls_dir=Path("unused"), stream_edit_interval_seconds=0)
    gateway = GatewayClient(stub, generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    return MessageFlow(client, gateway, WebhookPool("tzurot"), settings)


def message(content: str, *, channel: Channel, message_id: int = 5, reference: Any = None) -> Any:
    """A user's message as on_message reads it."""
    return SimpleNamespace(
        id=message_id,
        content=content,
        channel=channel,
        guild=SimpleNamespace(id=1),
        author=SimpleNamespace(id=77, bot=False, display_name="Ada"),
        webhook_id=None,
        application_id=None,
        type=discord.MessageType.default,
        interaction_metadata=None,
        reference=reference,
        embeds=[],
        attachments=[],
    )


def ours(message_id: int) -> Any:
    """A message one of our webhooks posted (an answer), as Discord resolves a reply's."""
    posted = MagicMock(spec=discord.Message)
    posted.id = message_id
    posted.webhook_id = 555
    posted.application_id = APP_ID
    posted.author = SimpleNamespace(display_name="Lilith")
    return posted


def reply_to(target: Any) -> Any:
    return SimpleNamespace(
        message_id=target.id,
        channel_id=42,
        resolved=target,
        type=discord.MessageReferenceType.default,
    )


NOBODY = {"PlanChannelReply": gw.PlanChannelReplyResponse()}  # no activated personality


async def test_a_plain_message_asks_no_resolve_mentions() -> None:
    """No "@": nothing for the gateway's ResolveMentions to find (its own first test)."""
    stub = Stub(NOBODY)
    flow = flow_with(stub)
    with capture_logs() as logs:
        await flow.on_message(message("hello there", channel=Channel()))
    assert "ResolveMentions" not in stub.calls
    assert stub.calls == ["PlanChannelReply"]
    assert [e["event"] for e in logs] == []


async def test_a_mention_the_gateway_could_not_read_is_told_and_logged_with_why() -> None:
    stub = Stub()
    flow = flow_with(stub)
    channel = Channel()
    with capture_logs() as logs:
        await flow.on_message(message("@Lilith hello", channel=channel))
    assert stub.calls == ["ResolveMentions"]
    assert channel.sent == [GATEWAY_AWAY]
    assert GATEWAY_AWAY == "The gateway is restarting; try again in a moment."
    [failed] = [e for e in logs if e["event"] == "bot.message_failed"]
    assert failed["code"] == "DEADLINE_EXCEEDED"
    assert "reason" in failed


async def test_the_channel_is_told_once_per_cooldown() -> None:
    flow = flow_with(Stub())
    channel, elsewhere = Channel(42), Channel(43)
    await flow.on_message(message("@Lilith hello", channel=channel, message_id=5))
    await flow.on_message(message("@Lilith are you there?", channel=channel, message_id=6))
    await flow.on_message(message("@Sage hi", channel=elsewhere, message_id=7))
    assert channel.sent == [GATEWAY_AWAY]
    assert elsewhere.sent == [GATEWAY_AWAY]


async def test_a_reply_to_one_of_our_answers_is_told() -> None:
    """No "@", but a reply to our answer addresses its personality: told as a mention is."""
    stub = Stub()
    flow = flow_with(stub)
    channel = Channel()
    await flow.on_message(message("and then?", channel=channel, reference=reply_to(ours(31))))
    assert "ResolveMentions" not in stub.calls
    assert channel.sent == [GATEWAY_AWAY]


async def test_a_reply_to_an_answer_this_bot_remembers_is_told() -> None:
    flow = flow_with(Stub())
    answer = Answer(common.Personality(slug="lilith"), 77, Channel(), gw.GenerateRequest())  # type: ignore[arg-type]  # a fake channel
    flow._answers.remember(31, answer)
    channel = Channel()
    reference = SimpleNamespace(
        message_id=31, channel_id=42, resolved=None, type=discord.MessageReferenceType.default
    )
    await flow.on_message(message("and then?", channel=channel, reference=reference))
    assert channel.sent == [GATEWAY_AWAY]


async def test_a_message_that_cannot_address_anyone_is_only_logged() -> None:
    """No "@", no reply to us: only an activated personality could answer it, which the
    gateway away cannot say; the channel is not told about every message said in it."""
    stub = Stub()
    flow = flow_with(stub)
    channel = Channel()
    someone = MagicMock(spec=discord.Message)
    someone.id, someone.webhook_id, someone.application_id = 30, None, None
    with capture_logs() as logs:
        await flow.on_message(message("nice weather", channel=channel))
        await flow.on_message(
            message("agreed", channel=channel, message_id=6, reference=reply_to(someone))
        )
    assert channel.sent == []
    assert [e["code"] for e in logs if e["event"] == "bot.message_failed"] == [
        "DEADLINE_EXCEEDED",
        "DEADLINE_EXCEEDED",
    ]


async def test_an_edit_met_by_the_gateway_away_is_logged_not_raised() -> None:
    stub = Stub()
    flow = flow_with(stub)
    request = gw.GenerateRequest(message_ids=["5"])
    answer = Answer(common.Personality(slug="lilith"), 77, Channel(), request)  # type: ignore[arg-type]  # a fake channel
    flow._answers.remember(31, answer)
    edited = message("@Lilith hello again", channel=Channel())
    edited.edited_at = datetime.now(UTC)  # the user's edit (a preview's update sets none)
    with capture_logs() as logs:
        await flow.on_edit(edited)  # raised, discord.py would log a traceback
    assert stub.calls == ["ResolveMentions"]
    [skipped] = [e for e in logs if e["event"] == "bot.edit_not_applied"]
    assert skipped["code"] == "DEADLINE_EXCEEDED"
