"""A forward is read by its snapshot, as Discord shows it (tzurot.bot.forwards): discord.py
messages built from the fake Discord's own forwards (fake_discord/forwards.py).

The model reads a forward's snapshot as the message referred to: the source as it was when
forwarded (a later edit does not reach it), by no known author but "a message <forwarder>
forwarded", and the source is never read again by id, whether the forward is the user's message,
the message it replies to or one it links. Who a forward addresses: nobody by its snapshot's
names (PlanChannelReply reads no text of it); where a personality is activated, the user's turn
says it is a forward; a forward showing nothing asks the gateway nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock

import discord
import pytest

from tzurot.bot.forwards import FORWARD_TURN, shown_attachments, shows_nothing, turn_text
from tzurot.bot.references import REPLY_QUOTE_PREFIX, collect_references, reply_quote
from tzurot.testing.fake_discord import FakeDiscord, Posted
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from .test_gateway_away import flow_with

SHARED = "the lighthouse keeper counts ships at dawn"


class World:
    """The fake Discord's world (no server: its records only), and discord.py's reading of
    the messages it stores."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.guild = fake.add_guild()
        self.general = fake.add_channel(self.guild, "general")
        self.memes = fake.add_channel(self.guild, "memes")
        self.alice, self.bob = fake.make_user("alice"), fake.make_user("bob")
        self._state = MagicMock()
        self._state.store_user = lambda data, cache=True: discord.User(state=self._state, data=data)
        self._channels: dict[int, Any] = {}

    def read(self, posted: Posted) -> discord.Message:
        """`posted` as discord.py reads it from Discord's JSON."""
        channel = self._channels.get(posted.channel_id)
        if channel is None:
            channel = MagicMock(spec=discord.TextChannel)
            channel.id = posted.channel_id
            channel.guild = SimpleNamespace(id=int(self.guild["id"]))
            self._channels[posted.channel_id] = channel
        payload: Any = dict(posted.data)  # Discord's JSON, as discord.py's typed payload
        return discord.Message(state=self._state, channel=channel, data=payload)


@pytest.fixture
async def world() -> World:
    return World(FakeDiscord())


async def never(channel_id: int, message_id: int) -> discord.Message | None:
    raise AssertionError(f"read {channel_id}/{message_id} again")


async def test_a_forward_refers_to_its_snapshot_never_to_its_source(world: World) -> None:
    source = await world.fake.say(world.memes, world.bob, SHARED)
    forward = await world.fake.forward(source, world.general, world.alice)
    await world.fake.edit_message(source, "the lighthouse was sold")
    [found] = await collect_references(
        world.read(forward), max_depth=3, max_count=10, resolve=never
    )
    assert found.content == SHARED
    assert found.message_id == str(source.id)  # a copy of the source
    assert (found.author_id, found.author_name) == ("", "a message Alice forwarded")
    assert found.depth == 1
    written = datetime.fromisoformat(source.data["timestamp"])
    assert found.created_at.ToDatetime(tzinfo=UTC) == written  # when the source was written


async def test_a_reply_to_a_forward_refers_to_its_snapshot_once(world: World) -> None:
    source = await world.fake.say(world.memes, world.bob, SHARED)
    forward = await world.fake.forward(source, world.general, world.bob)
    await world.fake.edit_message(source, "the lighthouse was sold")
    reply = await world.fake.say(world.general, world.alice, "@Lilith what now?", reply_to=forward)
    refs = await collect_references(world.read(reply), max_depth=3, max_count=10, resolve=never)
    assert [(r.content, r.author_name, r.depth) for r in refs] == [
        (SHARED, "a message Bob forwarded", 1)
    ]


async def test_a_link_to_a_forward_reads_the_forward_not_its_source(world: World) -> None:
    source = await world.fake.say(world.memes, world.bob, SHARED)
    forward = await world.fake.forward(source, world.general, world.bob)
    url = f"https://discord.com/channels/{world.guild['id']}/{forward.channel_id}/{forward.id}"
    linking = await world.fake.say(world.general, world.alice, f"@Lilith see {url}")
    read: list[tuple[int, int]] = []

    async def resolve(channel_id: int, message_id: int) -> discord.Message | None:
        read.append((channel_id, message_id))
        found = world.fake.find(message_id)
        return world.read(found) if found is not None else None

    refs = await collect_references(world.read(linking), max_depth=3, max_count=10, resolve=resolve)
    assert read == [(forward.channel_id, forward.id)]
    assert [r.content for r in refs] == [SHARED]


async def test_a_forwarded_answer_is_quoted_without_our_quote_line(world: World) -> None:
    answer = await world.fake.say(
        world.memes, world.bob, f"{REPLY_QUOTE_PREFIX} **alice** hi · link\nHello, Alice."
    )
    forward = await world.fake.forward(answer, world.general, world.alice)
    [found] = await collect_references(
        world.read(forward), max_depth=3, max_count=10, resolve=never
    )
    assert found.content == "Hello, Alice."


async def test_the_answer_quotes_a_forward_by_what_it_shows(world: World) -> None:
    source = await world.fake.say(world.memes, world.bob, SHARED)
    quote = reply_quote(world.read(await world.fake.forward(source, world.general, world.alice)))
    assert quote.startswith(f"{REPLY_QUOTE_PREFIX} **Alice** (forwarded) {SHARED} · ")
    picture = world.fake.upload(world.memes, "cat.png", b"png", "image/png")
    image = await world.fake.say(world.memes, world.bob, "", attachments=[picture])
    quote = reply_quote(world.read(await world.fake.forward(image, world.general, world.alice)))
    assert quote.startswith(f"{REPLY_QUOTE_PREFIX} **Alice** (forwarded) · ")


async def test_what_a_forward_shows(world: World) -> None:
    picture = world.fake.upload(world.memes, "cat.png", b"png", "image/png")
    text = await world.fake.say(world.memes, world.bob, SHARED)
    image = await world.fake.say(world.memes, world.bob, "", attachments=[picture])
    card = await world.fake.say(world.memes, world.bob, "", extra={"embeds": [{"title": "t"}]})
    plain_empty = world.read(card)

    def forwarded(source: Posted) -> Any:
        return world.fake.forward(source, world.general, world.alice)

    by_text, by_image = world.read(await forwarded(text)), world.read(await forwarded(image))
    by_card = world.read(await forwarded(card))
    assert (shows_nothing(by_text), shows_nothing(by_image), shows_nothing(by_card)) == (
        False,
        False,
        True,
    )
    assert not shows_nothing(plain_empty)  # no forward: not this module's to judge
    assert turn_text(by_text) == FORWARD_TURN
    assert turn_text(plain_empty) == ""
    assert [a.filename for a in shown_attachments(by_image)] == ["cat.png"]
    assert shown_attachments(by_text) == []


class Recording:
    """A gateway stub that keeps each request; PlanChannelReply answers `speakers`."""

    def __init__(self, speakers: list[common.Personality]) -> None:
        self.requests: list[tuple[str, Any]] = []
        self._speakers = speakers

    def __getattr__(self, method: str) -> Any:
        async def rpc(request: Any, **_: Any) -> Any:
            self.requests.append((method, request))
            if method == "PlanChannelReply":
                return gw.PlanChannelReplyResponse(round_id="m:1", speakers=self._speakers)
            raise AssertionError(f"unexpected {method}")

        return rpc


async def test_a_forward_is_a_turn_only_for_the_activated_and_names_nobody(world: World) -> None:
    lilith = common.Personality(slug="lilith", id="p1")
    stub = Recording([lilith])
    flow = flow_with(stub)  # type: ignore[arg-type]  # a recording stub
    naming = await world.fake.say(world.memes, world.bob, "@Sage <@123> tell me a secret")
    forward = world.read(await world.fake.forward(naming, world.general, world.alice))
    actor = common.Actor(user_id=world.alice["id"])
    targets, round_id = await flow._addressees.targets(forward, actor)
    assert (targets, round_id) == ([(lilith, FORWARD_TURN)], "m:1")
    [(method, asked)] = stub.requests
    assert (method, asked.content) == ("PlanChannelReply", "")  # no name of the snapshot's


async def test_a_forward_showing_nothing_asks_the_gateway_nothing(world: World) -> None:
    stub = Recording([common.Personality(slug="lilith", id="p1")])
    flow = flow_with(stub)  # type: ignore[arg-type]  # a recording stub
    card = await world.fake.say(world.memes, world.bob, "", extra={"embeds": [{"title": "t"}]})
    forward = world.read(await world.fake.forward(card, world.general, world.alice))
    actor = common.Actor(user_id=world.alice["id"])
    assert await flow._addressees.targets(forward, actor) == ([], "")
    assert await flow._addressees.addressed(forward, actor) == []
    assert stub.requests == []
