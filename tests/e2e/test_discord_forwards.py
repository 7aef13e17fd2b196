"""Discord's forwards through the fake Discord, the real bot and the whole mesh, as the fake
provider receives them. A forward has no content of its own: what it shows is its snapshot, the
source as it was when forwarded (discord-api-docs resources/message.mdx, "Forwards").

- In a channel with a personality activated, a forward is a turn for it: the user's turn says
  it is a forward and quotes the snapshot's text, so it stays in history (the next turn, a
  chain reply, a 🔄 read it; lore is matched on it); a forwarded image is seen as one the user
  posted. A forward showing nothing is answered by nobody. An update event of a forward (a
  pin) leaves its turn as it is; PluralKit is not asked about a forward.
- A comment sent with a forward (a message of its own, after it) takes it into its own turn:
  one answer, which reads both.
- A reply to a forward, or a link to one, refers to its snapshot, never to the source read
  again by id (which may have been edited since, or be out of the reader's sight).
- A forward addresses nobody: not the personality named inside the snapshot, not the one whose
  answer is forwarded; in a channel without an activation nothing happens.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2

from tzurot.bot.bot import TzurotBot
from tzurot.cli.localdb import create_database
from tzurot.testing.cards import world_info
from tzurot.testing.discord_e2e import (
    RecordingGateway,
    World,
    discord_world,
    recording_gateway,
    running_bot,
    settled,
)
from tzurot.testing.fake_discord import FakePluralKit, Json, Posted
from tzurot.testing.fake_provider import echo_reply
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

from .regenerations import regeneration_delivered

pytestmark = pytest.mark.e2e

SHARED = "the lighthouse keeper counts ships at dawn; second point: the fog horn is broken"
EDITED = "the lighthouse was sold last spring"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
DESCRIPTION = "a grey cat asleep on a red sofa"
FORWARD_TURN = "[forwarded a message]"
QUOTED = f"{FORWARD_TURN}\n> {SHARED}"
"""The user's turn for a forward of SHARED: the note, then the forwarded text quoted."""
MANAGE_CHANNELS = str(1 << 4)


@pytest.fixture(scope="module")
async def discord_mesh(
    postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """The shared mesh, with inference allowed to read the fake Discord's CDN."""
    database = create_database(postgres_url, f"test_{uuid.uuid4().hex[:20]}")
    async with discord_world(
        database,
        Path(tmp_path_factory.mktemp("forwards")),
        inference={"attachment_hosts": ["127.0.0.1"]},
        gateway={"events_poll_seconds": 0.1},  # a chain reply is posted soon
    ) as w:
        yield w


class SlowPlans(RecordingGateway):
    """A hop whose PlanChannelReply of a given content (a forward's is "") finishes `delays`
    seconds late, as one of two concurrent calls may; it records who was planned for."""

    delays: Mapping[str, float] = {}

    def __init__(self, upstream: Any) -> None:
        super().__init__(upstream)
        self.planned: list[str] = []  # the messages' ids

    async def PlanChannelReply(self, request: gw.PlanChannelReplyRequest, context: Any) -> Any:
        self.planned.append(request.message_id)
        await asyncio.sleep(self.delays.get(request.content, 0.0))
        return await self.upstream.PlanChannelReply(request)

    async def SubscribeBotEvents(self, request: Any, context: Any) -> Any:
        async for event in self.upstream.SubscribeBotEvents(request):
            yield event

    async def AckBotEvent(self, request: Any, context: Any) -> Any:
        return await self.upstream.AckBotEvent(request)

    async def GetJobStatus(self, request: Any, context: Any) -> Any:
        return await self.upstream.GetJobStatus(request)


def slow_plans(delays: Mapping[str, float]) -> type[SlowPlans]:
    return type("SlowPlansOf", (SlowPlans,), {"delays": dict(delays)})


async def activate(world: World, channel: Json, personality: str = "Lilith") -> None:
    where = common.Location(guild_id=str(world.guild["id"]), channel_id=str(channel["id"]))
    await world.cli.ActivateChannel(
        gw.ActivateChannelRequest(location=where, personality=personality)
    )


def prompts(world: World) -> list[str]:
    """Everything the provider was sent for each answer, oldest first."""
    return [json.dumps(r.body) for r in world.provider.chat_requests()]


def last_user_turn(world: World, index: int = -1) -> str:
    """The user's turn a request the provider received answers (the last one by default)."""
    messages = world.provider.chat_requests()[index].body["messages"]
    return str(next(m["content"] for m in reversed(messages) if m["role"] == "user"))


def history(world: World, index: int = -1) -> list[str]:
    """The users' turns before the last one in a request the provider received (oldest
    first; the echoing answers left out)."""
    messages = world.provider.chat_requests()[index].body["messages"][:-1]
    return [str(m["content"]) for m in messages if m["role"] == "user"]


def link(world: World, message: Posted) -> str:
    return f"https://discord.com/channels/{world.guild['id']}/{message.channel_id}/{message.id}"


def describing_model(body: dict[str, Any]) -> str:
    """The vision model describes any image it is shown; everyone else echoes."""
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list) and any(p.get("type") == "image_url" for p in content):
            return DESCRIPTION
    return echo_reply(body)


async def nothing_answered(world: World, bot: TzurotBot, *channels: Json) -> None:
    await settled(world, bot)
    for channel in channels:
        assert world.discord.webhook_messages(channel) == []


async def test_a_forward_where_a_personality_is_activated_is_a_turn_kept_in_history(
    world: World,
) -> None:
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    source = await world.discord.say(memes, world.bob, SHARED)
    async with running_bot(world):
        forward = await world.discord.forward(source, world.general, world.alice)
        await world.delivered(f"{forward.id}:lilith")
        first = last_user_turn(world)
        said = await world.discord.say(world.general, world.alice, "and the second point?")
        await world.delivered(f"{said.id}:lilith")
    assert first.endswith(QUOTED)  # said in her turn, quoted: not her own words
    assert "a message Alice forwarded" not in prompts(world)[-2]  # not referred to again
    assert any(turn.endswith(QUOTED) for turn in history(world))  # the next turn reads it
    [answer, _] = world.discord.webhook_messages(world.general)
    assert "forwarded" in answer.content.split("\n")[0]  # the answer's quote line
    assert not world.discord.refusals


async def test_a_forward_of_discords_longest_message_is_answered(world: World) -> None:
    """4000 characters (a Nitro user's message), also in 2000 lines (each quoted): within the
    gateway's limit on a message (max_message_chars, 16000), as the user's own would be."""
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    long = ("fog horn " * 445)[:3999] + "!"
    lines = "\n".join(["x"] * 1999 + ["xy"])
    assert len(long) == len(lines) == 4000
    quoted_lines = "\n".join(["> x"] * 1999 + ["> xy"])
    world.provider.reply = lambda body: "noted"  # not the whole text echoed back
    async with running_bot(world):
        for text, turn in ((long, f"> {long}"), (lines, quoted_lines)):
            source = await world.discord.say(memes, world.bob, text)
            forward = await world.discord.forward(source, world.general, world.alice)
            await world.delivered(f"{forward.id}:lilith")
            assert last_user_turn(world).endswith(f"{FORWARD_TURN}\n{turn}")
    assert [m.content.split("\n")[-1] for m in world.discord.webhook_messages(world.general)] == [
        "noted",
        "noted",
    ]


async def lorebook(world: World, sub: str, **options: object) -> None:
    """Alice's `/lorebook <sub>`, answered."""
    done = await world.discord.slash(
        world.general,
        world.alice,
        "lorebook",
        options,
        subcommand=[sub],
        permissions=MANAGE_CHANNELS,
    )
    await world.discord.wait_until(lambda: any(done.texts()))


async def test_a_forwarded_text_finds_its_lore(world: World) -> None:
    """Lore is matched on the user's turn: the forwarded text is in it."""
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    lore = "LORE-LIGHT: the lighthouse has stood dark since the war."
    book = json.dumps(world_info(lamp={"key": ["lighthouse"], "content": lore})).encode()
    source = await world.discord.say(memes, world.bob, SHARED)
    async with running_bot(world):
        file = world.discord.upload(world.general, "lamp.json", book, "application/json")
        await lorebook(world, "import", file=file)
        await lorebook(world, "attach", lorebook="lamp", scope="channel")
        forward = await world.discord.forward(source, world.general, world.alice)
        await world.delivered(f"{forward.id}:lilith")
    assert lore in prompts(world)[-1]


async def test_a_forward_of_a_message_in_this_history_shows_it(world: World) -> None:
    """Forwarding an earlier answer here: its text is the turn's, not a reference dropped as
    already in history."""
    await world.set_key(world.alice)
    await activate(world, world.general)
    async with running_bot(world):
        asked = await world.discord.say(world.general, world.alice, "tell me about the keeper")
        await world.delivered(f"{asked.id}:lilith")
        other = await world.discord.say(world.general, world.alice, "something else entirely")
        await world.delivered(f"{other.id}:lilith")
        [first, _] = world.discord.webhook_messages(world.general)
        forward = await world.discord.forward(first, world.general, world.alice)
        await world.delivered(f"{forward.id}:lilith")
    shown = first.content.split("\n")[-1]  # the answer without its quote line
    assert "tell me about the keeper" in shown
    assert last_user_turn(world).endswith(f"{FORWARD_TURN}\n> {shown}")


async def test_an_update_of_a_forward_leaves_its_turn_as_it_was(world: World) -> None:
    """Discord sends MESSAGE_UPDATE for a pin or an embed: no user edits a forward, and its
    turn keeps the text and the forwarded image's description."""
    await world.set_key(world.alice)
    world.provider.reply = describing_model
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    picture = world.discord.upload(memes, "cat.png", PNG, "image/png")
    source = await world.discord.say(memes, world.bob, "look at this", attachments=[picture])
    async with running_bot(world) as bot:
        forward = await world.discord.forward(source, world.general, world.alice)
        await world.delivered(f"{forward.id}:lilith")
        forward.data["pinned"] = True  # a moderator pins it
        payload = {**forward.data, "member": world.discord._member(forward.data["author"])}
        await world.discord.dispatch("MESSAGE_UPDATE", payload, guild_id=int(world.guild["id"]))
        await settled(world, bot)
        asked = await world.discord.say(world.general, world.alice, "what was in it?")
        await world.delivered(f"{asked.id}:lilith")
    [turn] = [t for t in history(world) if FORWARD_TURN in t]
    assert "> look at this" in turn
    assert DESCRIPTION in turn


async def test_a_forwarded_image_is_seen_as_one_posted_here(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = describing_model
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    picture = world.discord.upload(memes, "cat.png", PNG, "image/png")
    source = await world.discord.say(memes, world.bob, "", attachments=[picture])
    async with running_bot(world):
        forward = await world.discord.forward(source, world.general, world.alice)
        await world.delivered(f"{forward.id}:lilith")
    answers = [r for r in world.provider.chat_requests() if r.body["model"] == "fake/lilith"]
    assert DESCRIPTION in str(answers[-1].body["messages"][-1]["content"])


async def test_a_forward_showing_nothing_is_answered_by_nobody(world: World) -> None:
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    embed_only = await world.discord.say(
        memes, world.bob, "", extra={"embeds": [{"title": "a feed's card"}]}
    )
    asked = len(world.provider.chat_requests())
    async with running_bot(world) as bot:
        await world.discord.forward(embed_only, world.general, world.alice)
        await nothing_answered(world, bot, world.general)
    assert len(world.provider.chat_requests()) == asked
    assert not world.discord.refusals


@pytest.mark.parametrize("how", ["reply", "link"])
async def test_a_forward_referred_to_shows_its_snapshot_not_the_source_now(
    world: World, how: str
) -> None:
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    source = await world.discord.say(memes, world.bob, SHARED)
    forward = await world.discord.forward(source, world.general, world.bob)
    await world.discord.edit_message(source, EDITED)  # after the forward: not in its snapshot
    async with running_bot(world):
        if how == "reply":
            said = await world.discord.say(
                world.general, world.alice, "@Lilith what do you make of this?", reply_to=forward
            )
        else:
            said = await world.discord.say(
                world.general, world.alice, f"@Lilith what about {link(world, forward)}"
            )
        await world.delivered(f"{said.id}:lilith")
    prompt = prompts(world)[-1]
    assert SHARED in prompt
    assert EDITED not in prompt
    assert "bob" in prompt.lower()  # who forwarded it: its author is not in the snapshot


async def test_a_forward_addresses_nobody(world: World) -> None:
    """Neither the personality named in the snapshot (the forwarder did not write it) nor the
    one whose answer is forwarded; no activation here, so nothing happens."""
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    elsewhere = world.discord.add_channel(world.guild, "elsewhere")
    mentioning = await world.discord.say(elsewhere, world.bob, "@Lilith @Sage tell me a secret")
    async with running_bot(world) as bot:
        asked = await world.discord.say(world.general, world.alice, "@Lilith hello")
        await world.delivered(f"{asked.id}:lilith")
        [answer] = world.discord.webhook_messages(world.general)
        before = len(world.provider.chat_requests())
        await world.discord.forward(mentioning, elsewhere, world.alice)
        await world.discord.forward(answer, elsewhere, world.bob)
        await world.discord.forward(mentioning, world.general, world.bob)
        await nothing_answered(world, bot, elsewhere)
    assert len(world.provider.chat_requests()) == before
    assert world.discord.webhook_messages(world.general) == [answer]
    assert not world.discord.refusals


async def test_a_comment_sent_with_a_forward_reads_it(world: World) -> None:
    """Discord's "Forward" with a message: the forward, then the comment as a message of its
    own. No personality is activated here: the comment's turn carries the forward, and its
    edit keeps it."""
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    source = await world.discord.say(memes, world.bob, SHARED)
    async with running_bot(world) as bot:
        await world.discord.forward(source, world.general, world.alice)
        said = await world.discord.say(world.general, world.alice, "@Lilith what of this?")
        await world.delivered(f"{said.id}:lilith")
        first = last_user_turn(world)
        await world.discord.edit_message(said, "@Lilith what of this, really?")
        await settled(world, bot)
        again = await world.discord.say(world.general, world.alice, "@Lilith and the horn?")
        await world.delivered(f"{again.id}:lilith")
    assert first.endswith(f"what of this?\n{QUOTED}")
    assert any(t.endswith(f"what of this, really?\n{QUOTED}") for t in history(world))
    assert len(world.discord.webhook_messages(world.general)) == 2


async def test_a_comment_sent_with_a_forwarded_image_sees_it(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = describing_model
    memes = world.discord.add_channel(world.guild, "memes")
    picture = world.discord.upload(memes, "cat.png", PNG, "image/png")
    source = await world.discord.say(memes, world.bob, "", attachments=[picture])
    async with running_bot(world):
        await world.discord.forward(source, world.general, world.alice)
        said = await world.discord.say(world.general, world.alice, "@Lilith what is it?")
        await world.delivered(f"{said.id}:lilith")
    turn = last_user_turn(world)
    assert f"what is it?\n{FORWARD_TURN}" in turn
    assert DESCRIPTION in turn


async def test_a_forward_and_its_comment_get_one_answer_where_activated(world: World) -> None:
    """The comment's own gateway call finishes late: only the forward's wait joins them."""
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    source = await world.discord.say(memes, world.bob, SHARED)
    comment = "what do you make of it?"
    async with (
        recording_gateway(world, slow_plans({comment: 0.5})) as (hop, client),
        running_bot(world, gateway=client) as bot,
    ):
        forward = await world.discord.forward(source, world.general, world.alice)
        said = await world.discord.say(world.general, world.alice, comment)
        await world.delivered(f"{said.id}:lilith")
        await settled(world, bot)
    assert last_user_turn(world).endswith(f"what do you make of it?\n{QUOTED}")
    assert len(world.discord.webhook_messages(world.general)) == 1
    assert isinstance(hop, SlowPlans)
    assert hop.planned == [str(said.id)]  # nobody was asked who answers the forward
    with pytest.raises(grpc.aio.AioRpcError) as asked:  # the forward asked for no answer
        await world.cli.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=f"{forward.id}:lilith"))
    assert asked.value.code() is grpc.StatusCode.NOT_FOUND


async def test_pluralkit_is_not_asked_about_a_forward(world: World) -> None:
    """PluralKit proxies no message without content or files of its own: a forward is not
    held for a repost; a comment sent through PluralKit still takes the forward."""
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    source = await world.discord.say(memes, world.bob, SHARED)
    elsewhere = world.discord.add_channel(world.guild, "elsewhere")
    async with (
        FakePluralKit() as pk,
        running_bot(world, pluralkit_enabled=True, pluralkit_api_base=pk.base_url),
    ):
        forward = await world.discord.forward(source, world.general, world.alice)
        await world.delivered(f"{forward.id}:lilith")
        assert pk.lookups == []
        await world.discord.forward(source, elsewhere, world.alice)
        _, repost = await pk.proxy(world.discord, elsewhere, world.alice, "@Lilith so?", "Fox")
        await world.delivered(f"{repost.id}:lilith")
    assert last_user_turn(world).endswith(f"so?\n{QUOTED}")


@pytest.mark.parametrize("restarted", [False, True])
async def test_regenerating_a_forwards_answer_reads_the_forward(
    world: World, restarted: bool
) -> None:
    """🔄 in the process that answered (the request kept) or in a new one (rebuilt from the
    forward fetched from Discord)."""
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    source = await world.discord.say(memes, world.bob, SHARED)
    async with running_bot(world):
        forward = await world.discord.forward(source, world.general, world.alice)
        await world.delivered(f"{forward.id}:lilith")
        [answer] = world.discord.webhook_messages(world.general)
        if not restarted:
            await world.discord.react(answer, world.alice, "🔄")
            await regeneration_delivered(world, f"{forward.id}:lilith", 1)
    if restarted:
        async with running_bot(world):
            await world.discord.react(answer, world.alice, "🔄")
            await regeneration_delivered(world, f"{forward.id}:lilith", 1)
    assert last_user_turn(world).endswith(QUOTED)
    assert answer.deleted


async def group_of_two(world: World) -> None:
    """Lilith and Sage activated in #general, one speaking, the other replying to it once."""
    await activate(world, world.general, "Lilith")
    await activate(world, world.general, "Sage")
    for slug in ("lilith", "sage"):  # each speaks whenever it may: a chain reply follows
        await world.cli.UpdatePersonality(
            gw.UpdatePersonalityRequest(
                personality=common.Personality(slug=slug, talkativeness=1.0),
                update_paths=["talkativeness"],
            )
        )
    where = common.Location(guild_id=str(world.guild["id"]), channel_id=str(world.general["id"]))
    settings = {"group_max_speakers": 1, "group_chain_cap": 1, "group_chain_cooldown_seconds": 0}
    for key, value in settings.items():
        await world.cli.SetSetting(
            gw.SetSettingRequest(
                scope=common.CONFIG_SOURCE_CHANNEL,
                location=where,
                key=key,
                value=struct_pb2.Value(number_value=value),
            )
        )


async def test_a_chain_reply_after_a_forward_reads_what_was_forwarded(world: World) -> None:
    """Two personalities activated: the one answering the forward, then the one replying to
    it (a chain reply, which the gateway asks for with no message referred to)."""
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    await group_of_two(world)
    source = await world.discord.say(memes, world.bob, SHARED)
    asked = len(world.provider.chat_requests())
    async with running_bot(world):
        await world.discord.forward(source, world.general, world.alice)
        posted = await world.discord.wait_until(
            lambda: len(world.discord.webhook_messages(world.general)) >= 2
        )
    assert posted
    first, chained = [m.author_name for m in world.discord.webhook_messages(world.general)]
    assert {first, chained} == {"Lilith", "Sage"}
    bodies = [r.body for r in world.provider.chat_requests()[asked:]]  # helpers' calls too
    [chain] = [
        b for b in bodies if str(b["messages"][-1]["content"]).startswith(f"[{first} just spoke")
    ]
    assert chain["model"] == f"fake/{chained.lower()}"
    turns = [str(m["content"]) for m in chain["messages"] if m["role"] == "user"]
    assert any(t.endswith(QUOTED) for t in turns), turns  # the forward, in the chain's history
    [answering] = [b for b in bodies if str(b["messages"][-1]["content"]).endswith(QUOTED)]
    assert answering["model"] == f"fake/{first.lower()}"


async def test_a_forward_and_its_comment_in_a_group_keep_the_chain_reply(world: World) -> None:
    """The forward waits for its comment before any round is planned: a round planned for it
    (finishing after the comment's, which it would replace) would leave the comment's
    speakers outside the group's round, and no chain reply would follow."""
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    await group_of_two(world)
    source = await world.discord.say(memes, world.bob, SHARED)
    world.provider.reply = "one two three four five six seven eight"
    world.provider.chunk_delay = 0.1  # an answer that takes a moment, as a real model's
    async with (
        recording_gateway(world, slow_plans({"": 0.3})) as (hop, client),
        running_bot(world, gateway=client) as bot,
    ):
        await world.discord.forward(source, world.general, world.alice)
        said = await world.discord.say(world.general, world.alice, "what do you both make of it?")
        posted = await world.discord.wait_until(
            lambda: len(world.discord.webhook_messages(world.general)) >= 2, within=15
        )
        await settled(world, bot)
    assert posted, "no chain reply after the comment's answer"
    assert isinstance(hop, SlowPlans)
    assert hop.planned == [str(said.id)]
    first, chained = world.discord.webhook_messages(world.general)
    assert {first.author_name, chained.author_name} == {"Lilith", "Sage"}


async def test_a_message_sent_before_a_forward_does_not_take_it(world: World) -> None:
    """Still being read (its gateway call late) when the forward comes: the comment sent
    after the forward takes it, not the message sent before."""
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    source = await world.discord.say(memes, world.bob, SHARED)
    slow = {"good morning!": 0.3, "what do you make of this?": 0.6}  # the first read first
    async with (
        recording_gateway(world, slow_plans(slow)) as (_, client),
        running_bot(world, gateway=client) as bot,
    ):
        before = await world.discord.say(world.general, world.alice, "good morning!")
        await world.discord.forward(source, world.general, world.alice)
        said = await world.discord.say(world.general, world.alice, "what do you make of this?")
        await world.delivered(f"{before.id}:lilith")
        await world.delivered(f"{said.id}:lilith")
        await settled(world, bot)
    turns = {last_user_turn(world, i) for i in range(len(world.provider.chat_requests()))}

    assert any(t.endswith("good morning!") for t in turns), turns
    assert any(t.endswith(f"what do you make of this?\n{QUOTED}") for t in turns), turns


async def test_a_mention_seconds_after_a_forward_does_not_take_it(world: World) -> None:
    """No activation: the forward is for the humans; a mention later is no comment of it."""
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    source = await world.discord.say(memes, world.bob, SHARED)
    async with running_bot(world):
        await world.discord.forward(source, world.general, world.alice)
        await asyncio.sleep(2.5)
        said = await world.discord.say(world.general, world.alice, "@Lilith weather on Mars?")
        await world.delivered(f"{said.id}:lilith")
    assert last_user_turn(world).endswith("weather on Mars?")


async def test_a_forward_and_its_comment_get_one_answer_with_a_slow_gateway(
    world: World,
) -> None:
    """The comment's own gateway call ends after the forward's 1.5 s wait: the comment claimed
    the forward when it was read, so the two still get one answer."""
    await world.set_key(world.alice)
    memes = world.discord.add_channel(world.guild, "memes")
    await activate(world, world.general)
    source = await world.discord.say(memes, world.bob, SHARED)
    comment = "what do you make of it?"
    async with (
        recording_gateway(world, slow_plans({comment: 1.6, "": 1.6})) as (hop, client),
        running_bot(world, gateway=client) as bot,
    ):
        forward = await world.discord.forward(source, world.general, world.alice)
        said = await world.discord.say(world.general, world.alice, comment)
        await world.delivered(f"{said.id}:lilith")
        await settled(world, bot)
    assert last_user_turn(world).endswith(f"what do you make of it?\n{QUOTED}")
    assert len(world.discord.webhook_messages(world.general)) == 1
    assert isinstance(hop, SlowPlans)
    assert hop.planned == [str(said.id)]  # nobody was asked who answers the forward
    with pytest.raises(grpc.aio.AioRpcError) as asked:  # the forward asked for no answer
        await world.cli.GetJobStatus(gw.GetJobStatusRequest(idempotency_key=f"{forward.id}:lilith"))
    assert asked.value.code() is grpc.StatusCode.NOT_FOUND
