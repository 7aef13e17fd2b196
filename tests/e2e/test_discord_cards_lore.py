"""Character cards and lorebooks through the fake Discord, the real bot and the whole mesh:
a card imported in Discord becomes a personality whose lore reaches the provider's request."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from typing import Any

import pytest
from PIL import Image

from tzurot.testing.cards import card_v3, picture, png_card, world_info
from tzurot.testing.discord_e2e import World, member_actor, running_bot
from tzurot.testing.fake_discord import FakeInteraction
from tzurot.v1 import gateway_pb2 as gw
from tzurot.v1 import memory_pb2 as mem
from tzurot.v1 import memory_pb2_grpc as mem_grpc

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
async def memory_loaded(world: World) -> None:
    """The answers here read long-term memory: wait until its model is loaded."""
    await world.memory_ready()


MANAGE_CHANNELS = str(1 << 4)


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    return "\n".join(t for t in interaction.texts() if t)


def messages(world: World) -> list[dict[str, Any]]:
    body = world.provider.chat_requests()[-1].body
    return list(body["messages"])


def text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)


async def import_card(world: World, user: dict[str, Any], filename: str, data: bytes) -> str:
    file = world.discord.upload(world.general, filename, data, "image/png")
    done = await world.discord.slash(
        world.general, user, "character", {"card": file}, subcommand=["import"]
    )
    return await answered(world, done)


async def test_a_png_card_becomes_a_personality_whose_lore_reaches_the_provider(
    world: World,
) -> None:
    await world.set_key(world.alice)
    card = card_v3(name="Grigori", nickname="Father Grigori")
    async with running_bot(world):
        text = await import_card(world, world.alice, "grigori.png", png_card(card, color="blue"))
        assert "Imported **Grigori**" in text
        said = await world.discord.say(
            world.general, world.alice, "@Grigori what happened in the mines?"
        )
        await world.delivered(f"{said.id}:grigori")
        (answer,) = world.discord.webhook_messages(world.general)
        inspected = await world.discord.context_menu(world.general, world.alice, "Inspect", answer)
        inspection = await answered(world, inspected)

    sent = messages(world)
    system = text_of(sent[0])
    # macros expanded at prompt time: the nickname for {{char}}, the speaker for {{user}}
    assert system.startswith("You are Father Grigori. Speak to ")
    assert "Father Grigori is the last priest of Ravenholm." in system
    assert not any("{{" in text_of(m) for m in sent)
    assert "LORE-ALWAYS: Father Grigori never sleeps." in system  # constant entry
    # the keyed entry sits at depth 2 as a system message, before the user's message
    user_index = max(i for i, m in enumerate(sent) if m["role"] == "user")
    lore_index = next(i for i, m in enumerate(sent) if "LORE-MINES" in text_of(m))
    assert sent[lore_index]["role"] == "system"
    assert 0 < lore_index < user_index
    assert "Lore (2 fired):" in inspection
    assert "Ravenholm lore / the mines: key 'mines' in the last 3 message(s)" in inspection
    assert "Ravenholm lore / constant: constant" in inspection

    found = await world.cli.GetPersonality(
        gw.GetPersonalityRequest(actor=member_actor(world.alice), personality="grigori")
    )
    p = found.personality
    assert (p.display_name, p.public) == ("Grigori", False)  # private to its importer
    assert p.system_prompt == "You are {{char}}. Speak to {{user}} in sermons."  # as written
    assert (p.card.nickname, p.card.first_message) == (
        "Father Grigori",
        "Come, {{user}}! Join me on the rooftops!",
    )
    assert list(p.card.alternate_greetings) == ["Ah, a visitor!"]
    assert p.card.creation_date == 1700000000


async def test_export_then_import_gives_the_same_character(world: World) -> None:
    card = card_v3(name="Alyx")
    async with running_bot(world):
        assert "Imported **Alyx**" in await import_card(
            world, world.alice, "alyx.png", png_card(card, chunk="chara")
        )
        before = await world.cli.GetPersonality(
            gw.GetPersonalityRequest(actor=member_actor(world.alice), personality="alyx")
        )
        exported = await world.discord.slash(
            world.general,
            world.alice,
            "character",
            {"personality": "alyx", "format": "png"},
            subcommand=["export"],
        )
        assert "alyx.png" in await answered(world, exported)
        (document,) = exported.files
        stranger = await world.discord.slash(
            world.general, world.bob, "character", {"personality": "alyx"}, subcommand=["export"]
        )
        assert "no personality named 'alyx'" in await answered(world, stranger)
        again = await import_card(world, world.alice, "alyx.png", document)
        assert "Updated **Alyx**" in again
        after = await world.cli.GetPersonality(
            gw.GetPersonalityRequest(actor=member_actor(world.alice), personality="alyx")
        )
    picture_file = Image.open(io.BytesIO(document))
    picture_file.load()
    chunks = picture_file.text  # type: ignore[attr-defined]
    assert json.loads(base64.b64decode(chunks["ccv3"]))["spec"] == "chara_card_v3"
    assert json.loads(base64.b64decode(chunks["chara"]))["spec"] == "chara_card_v2"
    assert picture_file.getpixel((0, 0)) == (255, 0, 0)  # the imported picture, kept
    first, second = before.personality, after.personality
    for message in (first, second):
        message.ClearField("updated_at")
        message.card.ClearField("modification_date")
    assert second == first


@pytest.mark.parametrize(
    ("filename", "data", "words"),
    [
        ("cat.gif", b"GIF89a not a card", "not a PNG, JSON or CHARX"),
        ("plain.png", picture(), "no character card"),
        ("v9.json", json.dumps({"spec": "chara_card_v9", "data": {}}).encode(), "chara_card_v9"),
    ],
)
async def test_bad_files_get_a_clear_answer(
    world: World, filename: str, data: bytes, words: str
) -> None:
    async with running_bot(world):
        text = await import_card(world, world.alice, filename, data)
    assert words in text


async def test_a_channel_lorebook_fires_with_sticky_state_kept_between_messages(
    world: World,
) -> None:
    await world.set_key(world.alice)
    book = world_info(
        bridge={
            "key": ["bridge"],
            "keysecondary": ["night"],
            "selectiveLogic": 3,  # AND_ALL
            "content": "LORE-BRIDGE: the bridge is haunted after dark.",
            "sticky": 3,
        },
        hidden={"key": ["/sec(ret)?s?/i"], "content": "LORE-SECRET: there is a tunnel."},
    )
    document = json.dumps(book).encode()
    async with running_bot(world):
        file = world.discord.upload(world.general, "haunts.json", document, "application/json")
        refused = await world.discord.slash(
            world.general,
            world.bob,
            "lorebook",
            {"file": file, "attach_to": "channel"},
            subcommand=["import"],
        )
        assert "Manage Channels" in await answered(world, refused)
        done = await world.discord.slash(
            world.general,
            world.alice,
            "lorebook",
            {"file": file, "attach_to": "channel"},
            subcommand=["import"],
            permissions=MANAGE_CHANNELS,
        )
        assert "Imported **haunts** (2 entries)" in await answered(world, done)

        async def ask(text: str) -> str:
            said = await world.discord.say(world.general, world.alice, f"@Lilith {text}")
            await world.delivered(f"{said.id}:lilith")
            return "\n".join(text_of(m) for m in messages(world))

        first = await ask("is the bridge safe at night?")
        second = await ask("and tell me your SECRETS")
        third = await ask("thanks")
        fourth = await ask("bye")
        listed = await world.discord.slash(
            world.general, world.alice, "lorebook", {"attached_to": "channel"}, subcommand=["list"]
        )
        shown = await answered(world, listed)
        # the owner edits it: a new version imported over the old one, still attached here
        edited = json.loads(document)
        edited["entries"]["1"]["content"] = "LORE-TUNNEL: the tunnel leads to the mines."
        newer = world.discord.upload(
            world.general, "haunts.json", json.dumps(edited).encode(), "application/json"
        )
        replaced = await world.discord.slash(
            world.general,
            world.alice,
            "lorebook",
            {"file": newer, "replace": "haunts"},
            subcommand=["import"],
        )
        assert "Replaced **haunts** (2 entries)" in await answered(world, replaced)
        fifth = await ask("any secret ways out?")
        not_hers = await world.discord.slash(
            world.general,
            world.bob,
            "lorebook",
            {"file": newer, "replace": "haunts"},
            subcommand=["import"],
        )
        assert "no lorebook 'haunts'" in await answered(world, not_hers)  # not told it exists
    assert "LORE-BRIDGE" in first  # bridge AND night (AND_ALL)
    assert "LORE-BRIDGE" in second  # sticky: still in play without its keys
    assert "LORE-SECRET" in second  # a regex key, case-insensitive
    assert "LORE-BRIDGE" not in third  # sticky 3 ran out (two messages an exchange)
    assert "LORE-SECRET" in third  # still within the scan depth (2 messages)
    assert "LORE-BRIDGE" not in fourth
    assert "LORE-SECRET" not in fourth
    assert "**haunts** (2 entries)" in shown
    assert "attached to channel" in shown
    assert "LORE-TUNNEL" in fifth
    assert "LORE-SECRET" not in fifth


async def test_an_inclusion_group_lets_one_entry_into_the_prompt(world: World) -> None:
    await world.set_key(world.alice)
    shared = {"key": ["weather"], "group": "sky"}
    book = world_info(
        rain={**shared, "content": "LORE-RAIN: it rains.", "groupWeight": 50},
        sun={**shared, "content": "LORE-SUN: the sun shines.", "groupOverride": True},
        fog={**shared, "content": "LORE-FOG: fog rolls in.", "groupOverride": True, "order": 5},
        wind={"key": ["weather"], "group": "air", "content": "LORE-WIND: the wind howls."},
    )
    async with running_bot(world):
        file = world.discord.upload(
            world.general, "sky.json", json.dumps(book).encode(), "application/json"
        )
        done = await world.discord.slash(
            world.general,
            world.alice,
            "lorebook",
            {"file": file, "attach_to": "channel"},
            subcommand=["import"],
            permissions=MANAGE_CHANNELS,
        )
        assert "Imported **sky** (4 entries)" in await answered(world, done)
        said = await world.discord.say(world.general, world.alice, "@Lilith how is the weather?")
        await world.delivered(f"{said.id}:lilith")
        prompt = "\n".join(text_of(m) for m in messages(world))
        (answer,) = world.discord.webhook_messages(world.general)
        inspected = await world.discord.context_menu(world.general, world.alice, "Inspect", answer)
        inspection = await answered(world, inspected)
    # one entry of the group "sky": the override with the highest order; "air" is its own
    assert "LORE-SUN" in prompt
    assert "LORE-RAIN" not in prompt
    assert "LORE-FOG" not in prompt
    assert "LORE-WIND" in prompt
    assert "won group 'sky' (override)" in inspection


async def greeting_in_history(world: World, channel: dict[str, Any], text: str) -> None:
    """Waits until Kleiner's greeting is the channel's history in memory."""
    found = await world.cli.GetPersonality(
        gw.GetPersonalityRequest(personality="kleiner", actor=member_actor(world.alice))
    )
    memory = mem_grpc.MemoryServiceStub(await world.mesh.channel("gateway", target="memory"))
    request = mem.GetHistoryRequest(
        channel_id=str(channel["id"]), personality_id=found.personality.id, limit=5
    )
    for _ in range(600):
        history = await memory.GetHistory(request)
        if any(turn.content == text for turn in history.turns):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("the greeting did not reach history within 30 s")


async def test_a_character_greets_when_a_conversation_starts_and_the_greeting_is_history(
    world: World,
) -> None:
    """`/channel activate` starts a conversation in a channel where the character has no
    history: it posts its greeting (first_mes or an alternate), which the next prompt has as
    the conversation's first turn; activating it again greets nobody twice."""
    await world.set_key(world.alice)
    tavern = world.discord.add_channel(world.guild, "tavern")

    def entry(uid: int, content: str) -> dict[str, Any]:
        return {
            "id": uid,
            "keys": [],
            "content": content,
            "extensions": {},
            "enabled": True,
            "insertion_order": uid,
            "use_regex": False,
            "constant": True,
        }

    book = {
        "name": "Lab lore",
        "extensions": {},
        "entries": [
            entry(1, "@@is_greeting 0\nLORE-AFTER-FIRST: the teleporter works."),
            entry(2, "@@is_greeting 1\nLORE-AFTER-ALTERNATE: the teleporter is broken."),
        ],
    }
    card = card_v3(name="Kleiner", nickname="Doctor Kleiner", character_book=book)
    name = world.alice.get("global_name") or world.alice["username"]
    expected = {f"Come, {name}! Join me on the rooftops!", "Ah, a visitor!"}

    async def activate() -> str:
        done = await world.discord.slash(
            tavern,
            world.alice,
            "channel",
            {"personality": "Kleiner"},
            subcommand=["activate"],
            permissions=MANAGE_CHANNELS,
        )
        return await answered(world, done)

    async with running_bot(world):
        assert "Imported **Kleiner**" in await import_card(
            world, world.alice, "kleiner.png", png_card(card)
        )
        assert "now answers every message" in await activate()
        (greeting,) = await world.discord.wait_until(lambda: world.discord.webhook_messages(tavern))
        # Posted is not yet history: the bot's acknowledgement stores it, and a message sent
        # in between would race it.
        await greeting_in_history(world, tavern, greeting.content)
        assert "already answers every message" in await activate()  # nothing changed
        said = await world.discord.say(tavern, world.alice, "hello, doctor")
        await world.delivered(f"{said.id}:kleiner")
        await asyncio.sleep(1.0)  # room for a second greeting to show up, were one queued
        posted = world.discord.webhook_messages(tavern)
    assert greeting.author_name == "Kleiner"
    assert greeting.content in expected  # macros expanded
    assert posted[0].id == greeting.id
    assert len(posted) == 2  # the greeting and the answer; no second greeting
    sent = messages(world)
    first = next(i for i, m in enumerate(sent) if text_of(m).endswith(greeting.content))
    last_user = max(i for i, m in enumerate(sent) if m["role"] == "user")
    assert sent[first]["role"] == "assistant"
    assert first < last_user  # the greeting came first in the conversation
    # lore's @@is_greeting: only the entry of the greeting the conversation began with
    prompt = "\n".join(text_of(m) for m in sent)
    alternate = greeting.content == "Ah, a visitor!"
    assert ("LORE-AFTER-ALTERNATE" in prompt) == alternate
    assert ("LORE-AFTER-FIRST" in prompt) == (not alternate)


async def test_a_hostile_regex_key_costs_its_budget_and_inspect_says_so(world: World) -> None:
    """Keys that backtrack catastrophically on the message: the answer still comes, a plain
    key still fires, and Inspect tells that the regex keys ran out of time."""
    await world.set_key(world.alice)
    hostile = [f"/(x{i}|a+)+$/" for i in range(8)]
    book = world_info(
        trap={"key": hostile, "content": "LORE-TRAP: never reached."},
        cave={"key": ["cave"], "content": "LORE-CAVE: the cave is dark."},
    )
    async with running_bot(world):
        file = world.discord.upload(
            world.general, "trap.json", json.dumps(book).encode(), "application/json"
        )
        done = await world.discord.slash(
            world.general,
            world.alice,
            "lorebook",
            {"file": file, "attach_to": "channel"},
            subcommand=["import"],
            permissions=MANAGE_CHANNELS,
        )
        assert "Imported **trap** (2 entries)" in await answered(world, done)
        text = "@Lilith the cave " + "a" * 1500 + "!"
        said = await world.discord.say(world.general, world.alice, text)
        await world.delivered(f"{said.id}:lilith")
        prompt = "\n".join(text_of(m) for m in messages(world))
        (answer,) = world.discord.webhook_messages(world.general)
        inspected = await world.discord.context_menu(world.general, world.alice, "Inspect", answer)
        inspection = await answered(world, inspected)
    assert "LORE-CAVE" in prompt
    assert "LORE-TRAP" not in prompt
    assert "regex keys took too long" in inspection
