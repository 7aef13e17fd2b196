"""The gateway-away notice in a channel with a personality activated: there a plain message
(no '@', no reply) meant the activated one, so while the gateway is away it is told to try
again too, under the same cooldown. The bot learns which channels those are only from what
the gateway answered for their messages (PlanChannelReply's round), keeps at most a few
thousand, least recently seen dropped first, and forgets one the gateway answers as having
none activated."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

from tzurot.bot.activated import CAPACITY, ActivatedChannels
from tzurot.bot.config import BotSettings
from tzurot.bot.gateway_client import GatewayClient
from tzurot.bot.messages import GATEWAY_AWAY, MessageFlow
from tzurot.bot.webhooks import WebhookPool
from tzurot.v1 import gateway_pb2 as gw

from .test_gateway_away import APP_ID, NOBODY, Channel, Stub, flow_with, message

PLANNED = {"PlanChannelReply": gw.PlanChannelReplyResponse(round_id="m:1")}
"""A round planned: a personality is activated there (no speaker named, so nothing is posted
and the test needs no webhook)."""


class Switchable(Stub):
    """The gateway answering `answers` until `away()`, then away for every call."""

    def away(self) -> None:
        self._answers = {}

    def answer(self, answers: dict[str, Any]) -> None:
        self._answers = answers


def client() -> Any:
    bot = MagicMock()
    bot.application_id = APP_ID
    bot.user = SimpleNamespace(id=1)
    return bot


async def seen_activated(flow: MessageFlow, stub: Switchable, channel: Channel) -> None:
    """A plain message in `channel` while the gateway plans a round there."""
    stub.answer(PLANNED)
    await flow.on_message(message("hello", channel=channel, message_id=channel.id * 10))
    assert channel.sent == []


async def test_a_plain_message_where_a_personality_is_activated_is_told() -> None:
    stub = Switchable()
    flow = flow_with(stub)
    general, elsewhere = Channel(42), Channel(43)
    await seen_activated(flow, stub, general)
    stub.answer(NOBODY)
    await flow.on_message(message("hi all", channel=elsewhere, message_id=430))

    stub.away()
    await flow.on_message(message("still there?", channel=general, message_id=421))
    await flow.on_message(message("hello?", channel=general, message_id=422))
    await flow.on_message(message("anyone?", channel=elsewhere, message_id=431))

    assert general.sent == [GATEWAY_AWAY]  # once: the notice's cooldown per channel
    assert elsewhere.sent == []  # nobody activated there: a human talking to humans


async def test_a_channel_the_gateway_answers_as_deactivated_is_forgotten() -> None:
    stub = Switchable()
    flow = flow_with(stub)
    general = Channel(42)
    await seen_activated(flow, stub, general)
    stub.answer(NOBODY)  # deactivated since: no round
    await flow.on_message(message("hello", channel=general, message_id=421))

    stub.away()
    await flow.on_message(message("still there?", channel=general, message_id=422))

    assert general.sent == []


async def test_a_mention_is_still_told_where_nobody_is_activated() -> None:
    flow = flow_with(Switchable())
    channel = Channel(44)
    await flow.on_message(message("@Lilith hi", channel=channel))
    assert channel.sent == [GATEWAY_AWAY]


def test_the_memory_is_bounded_least_recently_seen_first() -> None:
    seen = ActivatedChannels(capacity=3)
    for channel in (1, 2, 3):
        seen.note(channel, activated=True)
    seen.note(1, activated=True)  # seen again: the most recent
    seen.note(4, activated=True)
    assert [c for c in (1, 2, 3, 4) if c in seen] == [1, 3, 4]
    seen.note(3, activated=False)
    seen.note(5, activated=False)  # never seen: nothing to forget, nothing kept
    assert [c for c in (1, 2, 3, 4, 5) if c in seen] == [1, 4]
    assert len(seen) == 2


def test_the_default_keeps_a_few_thousand_channels() -> None:
    seen = ActivatedChannels()
    for channel in range(CAPACITY + 100):
        seen.note(channel, activated=True)
    assert len(seen) == CAPACITY == 4096
    assert 0 not in seen
    assert CAPACITY + 99 in seen


async def test_a_foreign_webhook_post_where_one_is_activated_is_not_told() -> None:
    """A feed's or another bot's webhook post is nobody's plain message (PluralKit on, as by
    default: webhook posts are looked at); the human whose message PluralKit reposts is told
    by their own message, which comes first."""
    stub = Switchable()
    flow = MessageFlow(
        client(),
        GatewayClient(stub, generate_timeout=5),  # type: ignore[arg-type]  # a fake stub
        WebhookPool("tzurot"),
        BotSettings(tls_dir=Path("unused"), stream_edit_interval_seconds=0),
        pluralkit=MagicMock(),
    )
    general = Channel(42)
    await seen_activated(flow, stub, general)
    stub.away()
    feed = message("New release v1.2.3 published", channel=general, message_id=421)
    feed.webhook_id = 31337  # someone else's webhook
    feed.author = SimpleNamespace(id=31337, bot=True, display_name="GitHub")
    await flow.on_message(feed)
    assert general.sent == []
    await flow.on_message(message("hello?", channel=general, message_id=422))  # a user's
    assert general.sent == [GATEWAY_AWAY]
