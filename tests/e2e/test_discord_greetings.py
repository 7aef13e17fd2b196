"""A character's greeting is the channel's, through the fake Discord, the real bot and the
whole mesh: Alice activates a character that greets, and the greeting is stored with no user,
as a free-will post is. It is in the next prompts of everyone there, but it is not Alice's
exchange: her ❌/🔄 and `/history undo` leave it, her data export does not hold it, and
deleting her data leaves it in the channel's history for Bob's next prompt.

Two channels, so that each check would fail on its own were the greeting hers: her undo would
take the first channel's greeting, and the second's is left for her export and her deletion.

A greeting posted while memory is down still reaches history, once: the bot's acknowledgement
succeeds (it never posts the greeting again) and the gateway's sweep stores it when memory is
back on its port."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
import structlog

from tzurot.db.engine import create_engine
from tzurot.testing.cards import card_v3
from tzurot.testing.discord_e2e import World, member_actor, running_bot, settled
from tzurot.testing.fake_discord import FakeInteraction, Json
from tzurot.testing.fake_discord.records import Posted
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

pytestmark = pytest.mark.e2e

MANAGE_CHANNELS = str(1 << 4)
GREETING = "Welcome to the lab, {{user}}! Mind the headcrab."


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()), within=30)
    return "\n".join(t for t in interaction.texts() if t)


async def slash_text(
    world: World, where: Json, user: Json, command: str, *sub: str, **options: Any
) -> str:
    done = await world.discord.slash(where, user, command, options, subcommand=sub)
    return await answered(world, done)


def last_prompt(world: World) -> list[str]:
    """The conversation of the provider's last request (roles and texts), system left out."""
    messages = world.provider.chat_requests()[-1].body["messages"]
    return [f"{m['role']}: {text_of(m)}" for m in messages if m["role"] in {"user", "assistant"}]


def text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


async def greeting_turns(world: World, text: str) -> list[tuple[str, str, str]]:
    """The greeting's rows in memory's Postgres: (channel, user, role), by channel."""
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            found = await conn.execute(
                sa.text(
                    "SELECT channel_id, user_id, role FROM memory.turns WHERE content = :c"
                    " ORDER BY channel_id"
                ),
                {"c": text},
            )
            return [(str(r[0]), str(r[1]), str(r[2])) for r in found]
    finally:
        await engine.dispose()


async def greeted(world: World, where: Json, personality_id: str) -> Posted:
    """The greeting posted in `where`, once the bot's acknowledgement stored it in history
    (posted is not yet stored, and a message sent in between would race it)."""
    posted: list[Posted] = await world.discord.wait_until(
        lambda: world.discord.webhook_messages(where)
    )
    (greeting,) = posted
    memory = mem_grpc.MemoryServiceStub(await world.mesh.channel("gateway", target="memory"))
    request = mem.GetHistoryRequest(
        channel_id=str(where["id"]), personality_id=personality_id, limit=5
    )
    for _ in range(600):
        if any(t.content == greeting.content for t in (await memory.GetHistory(request)).turns):
            return greeting
        await asyncio.sleep(0.05)
    raise TimeoutError("the greeting did not reach history within 30 s")


async def test_a_greeting_is_the_channels_not_the_activating_users(world: World) -> None:
    await world.memory_ready()
    await world.set_key(world.alice)
    await world.set_key(world.bob)
    card = card_v3(name="Kleiner", nickname="Doctor Kleiner", first_mes=GREETING)
    card["data"]["alternate_greetings"] = []  # one greeting: the test knows which
    card["data"]["extensions"]["tzurot"] = {"public": True}
    imported = await world.cli.ImportPersonality(  # the operator's: Alice's deletion keeps it
        gw.ImportPersonalityRequest(
            format=gw.IMPORT_FORMAT_CHARACTER_CARD_JSON, document=json.dumps(card).encode()
        )
    )
    kleiner = imported.personality
    general, lab = world.general, world.discord.add_channel(world.guild, "lab")
    async with running_bot(world) as bot:
        for where in (general, lab):
            activated = await world.discord.slash(
                where,
                world.alice,
                "channel",
                {"personality": "Kleiner"},
                subcommand=["activate"],
                permissions=MANAGE_CHANNELS,
            )
            assert "now answers every message" in await answered(world, activated)
        greeting = await greeted(world, general, kleiner.id)
        await greeted(world, lab, kleiner.id)
        stored = await greeting_turns(world, greeting.content)

        # Not her exchange: her reactions and her undo leave it.
        await world.discord.react(greeting, world.alice, "❌")
        await world.discord.react(greeting, world.alice, "🔄")
        await settled(world, bot)
        reactions_left_it = not greeting.deleted
        undone = await slash_text(
            world, general, world.alice, "history", "undo", personality=kleiner.slug
        )
        said = await world.discord.say(general, world.alice, "hello, doctor")
        await world.delivered(f"{said.id}:kleiner")
        her_prompt = last_prompt(world)

        # Her export and her data deletion: the greetings are not hers.
        exported = await world.discord.slash(
            general, world.alice, "settings", subcommand=["data", "export"]
        )
        await world.discord.wait_until(lambda: bool(exported.files), within=30)
        erased = await slash_text(
            world, general, world.alice, "settings", "data", "delete", confirm="DELETE"
        )
        left = await greeting_turns(world, greeting.content)
        asked = await world.discord.say(lab, world.bob, "is anyone in the lab?")
        await world.delivered(f"{asked.id}:kleiner")
        bobs_prompt = last_prompt(world)
        again = await world.discord.say(general, world.bob, "where did alice go?")
        await world.delivered(f"{again.id}:kleiner")
        bobs_prompt_here = last_prompt(world)

    with zipfile.ZipFile(io.BytesIO(b"".join(exported.files))) as archive:
        history = json.loads(archive.read("history.json"))

    def greeted_before(prompt: list[str], asked: str) -> bool:
        """The greeting is in the prompt as Kleiner's, and the message asked comes last."""
        greets = any(t.startswith("assistant: ") and t.endswith(greeting.content) for t in prompt)
        return greets and prompt[-1].startswith("user: ") and asked in prompt[-1]

    nobodys = sorted((str(where["id"]), "", "assistant") for where in (general, lab))
    # Every difference at once.
    got = {
        "greeting": greeting.content.startswith("Welcome to the lab, "),
        "stored as": stored,
        "kept after her ❌ and 🔄": reactions_left_it,
        "her undo": undone,
        "in her next prompt": greeted_before(her_prompt, "hello, doctor"),
        "her export's history": [t["role"] for t in history],
        "her message exported": "hello, doctor" in str(history),
        "a greeting exported": greeting.content in str(history),
        "erased": "Erased" in erased,
        "left after her deletion": left,
        "in bob's next prompt there": greeted_before(bobs_prompt, "is anyone in the lab?"),
        "in bob's next prompt here": greeted_before(bobs_prompt_here, "where did alice go?"),
        "her exchange in bob's prompt": "hello, doctor" in str(bobs_prompt_here),
    }
    assert got == {
        "greeting": True,
        "stored as": nobodys,  # nobody's: each channel's
        "kept after her ❌ and 🔄": True,
        "her undo": "Removed 0 messages from history.",  # nothing of hers to undo
        "in her next prompt": True,
        "her export's history": ["user", "assistant"],  # her own exchange only
        "her message exported": True,
        "a greeting exported": False,
        "erased": True,
        "left after her deletion": nobodys,
        "in bob's next prompt there": True,  # still the channel's history
        "in bob's next prompt here": True,
        "her exchange in bob's prompt": False,  # hers went with her data
    }


async def acknowledged(world: World, text: str) -> bool:
    """Whether the greeting's bot event is acknowledged in gateway's Postgres."""
    engine = create_engine(world.mesh.database_url)
    try:
        async with engine.connect() as conn:
            return bool(
                await conn.scalar(
                    sa.text(
                        "SELECT delivered_at IS NOT NULL FROM core.bot_events"
                        " WHERE kind = 'greeting' AND text = :t"
                    ),
                    {"t": text},
                )
            )
    finally:
        await engine.dispose()


async def in_history(world: World, where: Json, personality_id: str, text: str) -> bool:
    """Whether memory's GetHistory (what prompts read) has the greeting."""
    memory = mem_grpc.MemoryServiceStub(await world.mesh.channel("gateway", target="memory"))
    request = mem.GetHistoryRequest(
        channel_id=str(where["id"]), personality_id=personality_id, limit=5
    )
    return any(t.content == text for t in (await memory.GetHistory(request)).turns)


def ack_codes(logs: Sequence[Mapping[str, Any]]) -> list[str]:
    """How the gateway answered the bot's AckBotEvent calls."""
    return [
        str(e["code"])
        for e in logs
        if e["event"] == "rpc.served" and str(e.get("method", "")).endswith("/AckBotEvent")
    ]


async def test_a_greeting_posted_while_memory_is_down_reaches_history_once_it_is_back(
    world: World,
) -> None:
    await world.memory_ready()
    card = card_v3(name="Alyx", nickname="Alyx", first_mes="This way, {{user}}. Quickly.")
    card["data"]["alternate_greetings"] = []
    card["data"]["extensions"]["tzurot"] = {"public": True}
    imported = await world.cli.ImportPersonality(
        gw.ImportPersonalityRequest(
            format=gw.IMPORT_FORMAT_CHARACTER_CARD_JSON, document=json.dumps(card).encode()
        )
    )
    alyx = imported.personality
    # Activated while memory is up (a conversation starts only where it has no history) and
    # no bot is connected: the greeting waits in the outbox for the bot.
    await world.cli.ActivateChannel(
        gw.ActivateChannelRequest(
            actor=member_actor(world.alice),
            location=common.Location(guild_id=world.guild["id"], channel_id=world.general["id"]),
            personality="Alyx",
            manage_channels=True,
        )
    )
    await world.mesh.stop_memory()
    memory_down = True
    try:
        with structlog.testing.capture_logs() as logs:
            # The bot connects with memory down: it posts the greeting and acknowledges it.
            async with running_bot(world) as bot:
                (posted,) = await world.discord.wait_until(
                    lambda: world.discord.webhook_messages(world.general), within=30
                )
                # The gateway has answered the acknowledgement (after asking memory, which
                # waits a few seconds for memory's channel): only then is memory back.
                await world.discord.wait_until(lambda: ack_codes(logs), within=30)
                acked_while_down = await acknowledged(world, posted.content)
                turns_while_down = await greeting_turns(world, posted.content)

                # Memory is back: nothing from the bot now (it is still connected, and
                # posts nothing again); the greeting reaches history all the same.
                await world.mesh.start_memory()
                memory_down = False
                for _ in range(1200):
                    if await greeting_turns(world, posted.content):
                        break
                    await asyncio.sleep(0.05)
                await settled(world, bot)
                stored = await greeting_turns(world, posted.content)
                read_back = await in_history(world, world.general, alyx.id, posted.content)
                shown = [m.content for m in world.discord.webhook_messages(world.general)]
    finally:
        if memory_down:
            await world.mesh.start_memory()
    events = [e["event"] for e in logs]
    got = {
        "the gateway's answer to the acknowledgement": ack_codes(logs),
        "the bot's acknowledgement failed": "events.ack_failed" in events,
        "acknowledged while memory was down": acked_while_down,
        "in history while memory was down": turns_while_down,
        "left pending, then stored by the sweep": [
            e for e in events if e in {"greeting.history_pending", "greeting.history_stored_late"}
        ],
        "stored as": stored,
        "read back by GetHistory": read_back,
        "posted": shown,
    }
    assert got == {
        "the gateway's answer to the acknowledgement": ["OK"],  # once, and taken
        "the bot's acknowledgement failed": False,
        "acknowledged while memory was down": True,
        "in history while memory was down": [],
        "left pending, then stored by the sweep": [
            "greeting.history_pending",
            "greeting.history_stored_late",
        ],
        "stored as": [(str(world.general["id"]), "", "assistant")],  # once, the channel's
        "read back by GetHistory": True,
        "posted": [posted.content],  # once: the bot never posted it again
    }
