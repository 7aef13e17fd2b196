"""The gateway-away notice speaks only under a message that may have meant a personality:
an '@' that may start a personality's mention (not a Discord ping of a user or a role,
@everyone/@here, an e-mail address), or a reply to one of our webhook messages or to an
answer this bot remembers. Not a reply to the bot's own notices or slash-command replies,
never a forward. A forward is no reply at all: it addresses nobody. And the notice has its
own cooldown, a minute at least (TZUROT_GATEWAY_AWAY_NOTICE_SECONDS)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import discord
import pytest
from pydantic import ValidationError

from tzurot.bot.addressing import may_mention
from tzurot.bot.answers import Answer
from tzurot.bot.config import BotSettings
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.messages import GATEWAY_AWAY, MessageFlow
from tzurot.bot.webhooks import WebhookPool
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from .test_gateway_away import APP_ID, NOBODY, Channel, Stub, flow_with, message, ours

NOT_FOR_US = [
    "hey <@123456789012345678> look at this",
    "hey <@!123456789012345678> look at this",
    "<@&987654321> ping role",
    "@everyone meeting now",
    "@here quick one",
    "mail me at ada@example.com",
    "write to first.last@example.org",
    "an @ alone",
    "ends with @",
]
MAYBE_FOR_US = [
    "@Lilith hello",
    "hey <@123456789012345678> and @lilith",
    "(@sage) what now?",
    "hi,@Sage",
    "@everyones favourite",  # a name that only begins like @everyone
    "@heresy",
    "@✨Luna✨ hi",
    "@Everyone, meeting now",  # Discord pings only the lowercase word: a name may be meant
]


@pytest.mark.parametrize("content", NOT_FOR_US)
async def test_a_message_meant_for_no_personality_is_not_told(content: str) -> None:
    """Nobody activated, nobody named: a human's ping is not the bot's to answer."""
    stub = Stub()  # the gateway away
    flow = flow_with(stub)
    channel = Channel()
    await flow.on_message(message(content, channel=channel))
    assert channel.sent == [], content


@pytest.mark.parametrize("content", MAYBE_FOR_US)
async def test_a_message_that_may_mention_a_personality_is_told(content: str) -> None:
    flow = flow_with(Stub())
    channel = Channel()
    await flow.on_message(message(content, channel=channel))
    assert channel.sent == [GATEWAY_AWAY], content


def test_only_an_at_sign_that_may_start_a_name_counts() -> None:
    assert [c for c in NOT_FOR_US if may_mention(c)] == []
    assert [c for c in MAYBE_FOR_US if not may_mention(c)] == []


def reference(target_id: int, resolved: Any = None, *, forward: bool = False) -> Any:
    kind = discord.MessageReferenceType.forward if forward else discord.MessageReferenceType.default
    return SimpleNamespace(message_id=target_id, channel_id=42, resolved=resolved, type=kind)


def slash_command_reply(message_id: int) -> Any:
    """The bot's answer to a slash command: posted through the interaction's webhook, whose
    id is the application's."""
    posted = MagicMock(spec=discord.Message)
    posted.id = message_id
    posted.webhook_id = APP_ID
    posted.application_id = APP_ID
    return posted


def bot_notice(message_id: int) -> Any:
    """A notice the bot user sent itself (the gateway-away notice, a deny notice): no
    webhook."""
    posted = MagicMock(spec=discord.Message)
    posted.id = message_id
    posted.webhook_id = None
    posted.application_id = APP_ID
    return posted


@pytest.mark.parametrize("target", [slash_command_reply(31), bot_notice(32)])
async def test_a_reply_to_the_bots_own_output_is_not_told(target: Any) -> None:
    stub = Stub()
    flow = flow_with(stub)
    channel = Channel()
    await flow.on_message(
        message("thanks", channel=channel, reference=reference(target.id, target))
    )
    assert channel.sent == []


async def test_a_reply_to_an_answer_our_webhook_posted_is_still_told() -> None:
    flow = flow_with(Stub())
    channel = Channel()
    await flow.on_message(message("and?", channel=channel, reference=reference(31, ours(31))))
    assert channel.sent == [GATEWAY_AWAY]


def remembering(flow: MessageFlow, message_id: int) -> None:
    lilith = common.Personality(slug="lilith", id="p1")
    answer = Answer(lilith, 77, Channel(), gw.GenerateRequest())  # type: ignore[arg-type]  # a fake channel
    flow._answers.remember(message_id, answer)


def forwarded(forward: Any, content: str = "the answer, as it was") -> Any:
    """`forward` with the snapshot Discord sends with a forward (its own content is empty)."""
    forward.message_snapshots = [SimpleNamespace(content=content, attachments=[])]
    return forward


@pytest.mark.parametrize("resolved", [None, ours(31)])
async def test_a_forward_of_an_answer_is_not_told(resolved: Any) -> None:
    flow = flow_with(Stub())
    remembering(flow, 31)
    channel = Channel(99)
    forward = forwarded(
        message("", channel=channel, reference=reference(31, resolved, forward=True))
    )
    assert not flow._addressees.may_address(forward)
    await flow.on_message(forward)
    assert channel.sent == []


async def test_a_forward_replies_to_nobody() -> None:
    """L5: the forwarded answer's personality is not addressed (it would answer an empty
    message wherever the answer was forwarded)."""
    flow = flow_with(Stub())
    remembering(flow, 31)
    forward = message("", channel=Channel(99), reference=reference(31, forward=True))
    assert await flow._addressees._replied_to(forward, common.Actor(user_id="77")) is None
    reply = message("", channel=Channel(99), reference=reference(31))
    posted = await flow._addressees._replied_to(reply, common.Actor(user_id="77"))
    assert posted is not None
    assert posted.personality_id == "p1"


async def test_a_forward_of_an_answer_is_answered_by_nobody() -> None:
    """The gateway up, nobody activated: the forward asks for no personality, nor an answer."""
    lilith = common.Personality(slug="lilith", id="p1")
    stub = Stub({**NOBODY, "GetPersonality": gw.GetPersonalityResponse(personality=lilith)})
    flow = flow_with(stub)
    remembering(flow, 31)
    channel = Channel(99)
    forward = forwarded(message("", channel=channel, reference=reference(31, forward=True)))
    await flow.on_message(forward)
    assert stub.calls == ["PlanChannelReply"]
    assert channel.sent == []


def flow_settled(**settings: Any) -> MessageFlow:
    client = MagicMock()
    client.application_id = APP_ID
    client.user = SimpleNamespace(id=1)
    gateway = GatewayClient(Stub(), generate_timeout=5)  # type: ignore[arg-type]  # a fake stub
    chosen = BotSettings(tls_dir=Path("unused"), **settings)
    return MessageFlow(client, gateway, WebhookPool("tzurot"), chosen)


async def test_the_deny_notice_cooldown_does_not_set_the_notices() -> None:
    """L1: an operator telling every blocked user (0) is not told under every message of an
    outage: the notice keeps its own cooldown."""
    flow = flow_settled(deny_notice_cooldown_seconds=0)
    channel = Channel()
    for i in range(5):
        await flow.on_message(message(f"@Lilith {i}", channel=channel, message_id=200 + i))
    assert channel.sent == [GATEWAY_AWAY]


def test_the_notice_cooldown_is_a_setting_of_a_minute_at_least() -> None:
    assert BotSettings(tls_dir=Path("unused")).gateway_away_notice_seconds == 600
    assert BotSettings(tls_dir=Path("unused"), gateway_away_notice_seconds=60)
    with pytest.raises(ValidationError):
        BotSettings(tls_dir=Path("unused"), gateway_away_notice_seconds=59)


def test_the_notice_cooldown_is_read_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZUROT_GATEWAY_AWAY_NOTICE_SECONDS", "120")
    assert BotSettings(tls_dir=Path("unused")).gateway_away_notice_seconds == 120
