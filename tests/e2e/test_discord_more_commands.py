"""The other slash commands, reactions and Inspect through the fake Discord.

A command the gateway answers UNIMPLEMENTED fails its test (the bot shows NOT_YET then).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tzurot.bot.commands.common import NOT_YET
from tzurot.testing.discord_e2e import World, running_bot, settled
from tzurot.testing.fake_discord import FakeInteraction, Json

from .regenerations import regeneration_delivered

pytestmark = pytest.mark.e2e
MANAGE_CHANNELS = str(1 << 4)


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    text = "\n".join(t for t in interaction.texts() if t)
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text


async def test_every_command_is_synced(world: World) -> None:
    async with running_bot(world):
        pass
    names = {c["name"] for c in world.discord.synced_commands[world.guild["id"]]}
    assert names >= {
        "wallet", "llm-config", "model", "timezone", "usage", "channel", "character",
        "persona", "history", "settings", "memory", "help", "Inspect",
    }  # fmt: skip
    channel = next(
        c for c in world.discord.synced_commands[world.guild["id"]] if c["name"] == "channel"
    )
    assert str(channel["default_member_permissions"]) == MANAGE_CHANNELS


async def test_help_is_private_and_lists_the_commands(world: World) -> None:
    async with running_bot(world):
        shown = await world.discord.slash(world.general, world.alice, "help")
        text = await answered(world, shown)
    assert "/wallet set" in text
    assert shown.is_ephemeral()


async def test_timezone_autocomplete_offers_iana_zones(world: World) -> None:
    async with running_bot(world):
        typed = await world.discord.slash(
            world.general,
            world.alice,
            "timezone",
            {"zone": "europe/ber"},
            subcommand=["set"],
            focused="zone",
        )
        await world.discord.wait_until(typed.choices)
        bad = await world.discord.slash(
            world.general, world.alice, "timezone", {"zone": "Mars/Olympus"}, subcommand=["set"]
        )
        assert "not an IANA time zone" in await answered(world, bad)
    assert typed.choices()[0]["value"] == "Europe/Berlin"


async def test_timezone_set_then_get(world: World) -> None:
    async with running_bot(world):
        done = await world.discord.slash(
            world.general, world.alice, "timezone", {"zone": "Asia/Tokyo"}, subcommand=["set"]
        )
        assert "Asia/Tokyo" in await answered(world, done)
        shown = await world.discord.slash(
            world.general, world.alice, "timezone", subcommand=["get"]
        )
        assert "Asia/Tokyo" in await answered(world, shown)


DATE_LINE = re.compile(r"Current date and time: (\w+, \d+ \w+ \d{4}, \d\d:\d\d) \(([^)]+)\)")


async def date_line_for(world: World, text: str) -> tuple[datetime, str]:
    """The date line of the prompt for Alice's `@Lilith {text}`: (its local time, its zone)."""
    said = await world.discord.say(world.general, world.alice, f"@Lilith {text}")
    await world.delivered(f"{said.id}:lilith")
    prompt = json.dumps(world.provider.chat_requests()[-1].body["messages"])
    (found,) = DATE_LINE.findall(prompt)
    return datetime.strptime(found[0], "%A, %d %B %Y, %H:%M"), found[1]


async def test_timezone_set_reaches_the_date_line_of_the_prompt(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        before = await date_line_for(world, "what time is it?")
        done = await world.discord.slash(
            world.general, world.alice, "timezone", {"zone": "Asia/Kathmandu"}, subcommand=["set"]
        )
        assert "Asia/Kathmandu" in await answered(world, done)
        after = await date_line_for(world, "and now?")
    assert before[1] == "UTC"
    assert after[1] == "Asia/Kathmandu"
    local = datetime.now(ZoneInfo("Asia/Kathmandu")).replace(tzinfo=None)
    assert abs(after[0] - local) < timedelta(minutes=5)  # UTC+5:45, not UTC
    assert after[0] - before[0] > timedelta(hours=5)


async def test_usage_after_a_conversation(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world) as bot:
        await world.discord.say(world.general, world.alice, "@Lilith count my tokens")
        await world.discord.wait_until(lambda: world.discord.webhook_messages(world.general))
        # The answer's first words are posted while it streams; its usage is recorded when
        # it finishes. Asked before that, /usage rightly says nothing yet.
        await settled(world, bot)
        shown = await world.discord.slash(world.general, world.alice, "usage", {"period": "day"})
        text = await answered(world, shown)
    assert "openrouter/fake/lilith" in text


async def test_channel_activation_needs_manage_channels_then_answers_without_mention(
    world: World,
) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        # Discord shows /channel only to members with Manage Channels, unless a server admin
        # allows someone else (Integrations settings): the bot's own check refuses then.
        allow_bob = {"id": world.bob["id"], "type": 2, "permission": True}
        world.discord.set_command_permissions(world.guild, "channel", [allow_bob])
        refused = await world.discord.slash(
            world.general, world.bob, "channel", {"personality": "Lilith"}, subcommand=["activate"]
        )
        assert "Manage Channels" in "".join(refused.texts()) or await world.discord.wait_until(
            lambda: "Manage Channels" in "".join(refused.texts())
        )
        done = await world.discord.slash(
            world.general,
            world.alice,
            "channel",
            {"personality": "Lilith"},
            subcommand=["activate"],
            permissions=MANAGE_CHANNELS,
        )
        assert "Lilith" in await answered(world, done)
        await world.discord.say(world.general, world.alice, "no mention needed")
        (answer,) = await world.discord.wait_until(
            lambda: world.discord.webhook_messages(world.general)
        )
    assert answer.author_name == "Lilith"


async def test_character_browse_view_and_export(world: World) -> None:
    async with running_bot(world):
        browsed = await world.discord.slash(
            world.general, world.alice, "character", subcommand=["browse"]
        )
        text = await answered(world, browsed)
        assert "**Lilith** (lil, the night queen)" in text
        viewed = await world.discord.slash(
            world.general, world.alice, "character", {"personality": "lil"}, subcommand=["view"]
        )
        assert "**Lilith** (`lilith`)" in await answered(world, viewed)
        exported = await world.discord.slash(
            world.general,
            world.alice,
            "character",
            {"personality": "Lilith"},
            subcommand=["export"],
        )
        # A card holds the whole system prompt: only its owner (or a superuser) exports it.
        assert "only the owner of 'lilith'" in await answered(world, exported)
    assert exported.files == []


async def test_inspect_shows_the_job_and_model_behind_an_answer(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith hi")
        await world.delivered(f"{said.id}:lilith")
        (answer,) = world.discord.webhook_messages(world.general)
        inspected = await world.discord.context_menu(world.general, world.alice, "Inspect", answer)
        text = await answered(world, inspected)
    assert "openrouter/fake/lilith" in text
    assert inspected.is_ephemeral()


async def test_inspect_shows_the_references_and_context_to_the_user_it_answered(
    world: World,
) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        bobs = await world.discord.say(world.general, world.bob, "the bridge closes at nine")
        said = await world.discord.say(
            world.general, world.alice, "@Lilith should we hurry?", reply_to=bobs
        )
        await world.delivered(f"{said.id}:lilith")
        (answer,) = world.discord.webhook_messages(world.general)
        inspected = await world.discord.context_menu(world.general, world.alice, "Inspect", answer)
        text = await answered(world, inspected)
        by_bob = await world.discord.context_menu(world.general, world.bob, "Inspect", answer)
        bobs_view = await answered(world, by_bob)
    assert "References (1):\n- Bob: the bridge closes at nine" in text
    assert "history turns, paid with your key" in text
    assert "Only the person it answered can see what informed it." in bobs_view
    assert "the bridge closes at nine" not in bobs_view


async def test_a_cross_reaction_by_the_user_deletes_the_answer(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world) as bot:
        said = await world.discord.say(world.general, world.alice, "@Lilith say something")
        await world.delivered(f"{said.id}:lilith")
        (answer,) = world.discord.webhook_messages(world.general)
        await world.discord.react(answer, world.bob, "❌")  # not Bob's answer: nothing happens
        await settled(world, bot)
        kept_after_bob = not answer.deleted
        await world.discord.react(answer, world.alice, "❌")
        await world.discord.wait_until(lambda: answer.deleted)
    assert kept_after_bob


async def test_a_cross_on_an_older_answer_takes_its_exchange_out_of_history(
    world: World,
) -> None:
    await world.set_key(world.alice)
    async with running_bot(world) as bot:
        first = await world.discord.say(world.general, world.alice, "@Lilith the owl is grey")
        await world.delivered(f"{first.id}:lilith")
        second = await world.discord.say(world.general, world.alice, "@Lilith the fox is red")
        await world.delivered(f"{second.id}:lilith")
        older, _newer = world.discord.webhook_messages(world.general)
        await world.discord.react(older, world.bob, "❌")  # not Bob's: nothing happens
        await settled(world, bot)
        kept_after_bob = not older.deleted
        await world.discord.react(older, world.alice, "❌")
        await world.discord.wait_until(lambda: older.deleted)
        third = await world.discord.say(world.general, world.alice, "@Lilith what do you recall?")
        await world.delivered(f"{third.id}:lilith")
    messages = world.provider.chat_requests()[-1].body["messages"]
    # The conversation only: long-term memories (system context) may still recall the owl.
    history = [str(m["content"]) for m in messages[:-1] if m["role"] in {"user", "assistant"}]
    assert kept_after_bob
    assert any("the fox is red" in c for c in history)
    assert not any("the owl is grey" in c for c in history)


async def test_a_regenerate_reaction_replaces_the_answer(world: World) -> None:
    await world.set_key(world.alice)
    replies = iter(["first take", "second take"])
    world.provider.reply = lambda body: next(replies)
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith say something")
        await world.delivered(f"{said.id}:lilith")
        (answer,) = world.discord.webhook_messages(world.general)
        await world.discord.react(answer, world.alice, "🔄")
        await regeneration_delivered(world, f"{said.id}:lilith", 1)
        (again,) = world.discord.webhook_messages(world.general)
    assert answer.deleted
    assert again.content.endswith("second take")


async def test_llm_config_create_list_and_model_set_for_a_personality(world: World) -> None:
    async with running_bot(world):
        created = await world.discord.slash(
            world.general,
            world.alice,
            "llm-config",
            {"name": "Fast", "provider": "openrouter", "model": "fake/fast"},
            subcommand=["create"],
        )
        assert "Created **Fast**" in await answered(world, created)
        listed = await world.discord.slash(
            world.general, world.alice, "llm-config", subcommand=["list"]
        )
        listing = await answered(world, listed)
        assert "**Fast** `openrouter/fake/fast` (yours)" in listing
        offered = await world.discord.slash(
            world.general,
            world.alice,
            "model",
            {"personality": "Lilith", "config": "fa"},
            subcommand=["set"],
            focused="config",
        )
        await world.discord.wait_until(offered.choices)
        config_id = next(c["value"] for c in offered.choices() if c["name"].startswith("Fast"))
        chosen = await world.discord.slash(
            world.general,
            world.alice,
            "model",
            {"personality": "Lilith", "config": config_id},
            subcommand=["set"],
        )
        assert "**Lilith** now uses **Fast**" in await answered(world, chosen)

        await world.set_key(world.alice)
        await world.discord.say(world.general, world.alice, "@Lilith which model?")
        await world.discord.wait_until(lambda: world.discord.webhook_messages(world.general))
    assert world.provider.chat_requests()[-1].body["model"] == "fake/fast"


async def test_llm_config_delete_takes_the_config_out_of_list_model_set_and_answers(
    world: World,
) -> None:
    """A config Lilith uses for Alice, deleted: gone from the list, refused by `/model set`,
    and Lilith answers her with its own model again."""
    await world.set_key(world.alice)
    async with running_bot(world):
        created = await world.discord.slash(
            world.general,
            world.alice,
            "llm-config",
            {"name": "Doomed", "provider": "openrouter", "model": "fake/doomed"},
            subcommand=["create"],
        )
        assert "Created **Doomed**" in await answered(world, created)
        offered = await world.discord.slash(
            world.general,
            world.alice,
            "llm-config",
            {"config": "doo"},
            subcommand=["delete"],
            focused="config",
        )
        await world.discord.wait_until(offered.choices)
        (config_id,) = [c["value"] for c in offered.choices() if c["name"].startswith("Doomed")]
        chosen = await world.discord.slash(
            world.general,
            world.alice,
            "model",
            {"personality": "Lilith", "config": config_id},
            subcommand=["set"],
        )
        assert "**Lilith** now uses **Doomed**" in await answered(world, chosen)
        said = await world.discord.say(world.general, world.alice, "@Lilith which model?")
        await world.delivered(f"{said.id}:lilith")
        model_before = world.provider.chat_requests()[-1].body["model"]

        deleted = await world.discord.slash(
            world.general, world.alice, "llm-config", {"config": config_id}, subcommand=["delete"]
        )
        deleted_text = await answered(world, deleted)
        listed = await world.discord.slash(
            world.general, world.alice, "llm-config", subcommand=["list"]
        )
        listing = await answered(world, listed)
        again = await world.discord.slash(
            world.general,
            world.alice,
            "model",
            {"personality": "Lilith", "config": config_id},
            subcommand=["set"],
        )
        refused = await answered(world, again)
        said = await world.discord.say(world.general, world.alice, "@Lilith and now?")
        await world.delivered(f"{said.id}:lilith")
        model_after = world.provider.chat_requests()[-1].body["model"]
    assert model_before == "fake/doomed"
    assert deleted_text == "Deleted."
    assert "Doomed" not in listing
    assert f"no LLM config {config_id}" in refused
    assert model_after == "fake/lilith"


async def test_persona_set_and_view(world: World) -> None:
    async with running_bot(world):
        done = await world.discord.slash(
            world.general,
            world.alice,
            "persona",
            {"preferred_name": "Ali", "pronouns": "she/her"},
            subcommand=["set"],
        )
        assert "**Ali**" in await answered(world, done)
        shown = await world.discord.slash(
            world.general, world.alice, "persona", subcommand=["view"]
        )
        text = await answered(world, shown)
    assert "**Ali**" in text
    assert "she/her" in text


async def test_history_clear_forgets_the_conversation_here(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith my secret is 42")
        await world.delivered(f"{said.id}:lilith")
        cleared = await world.discord.slash(
            world.general, world.alice, "history", {"personality": "lilith"}, subcommand=["clear"]
        )
        assert "Cleared" in await answered(world, cleared)
        said = await world.discord.say(world.general, world.alice, "@Lilith what was my secret?")
        await world.delivered(f"{said.id}:lilith")
    prompt = world.provider.chat_requests()[-1].body["messages"]
    # No history turn is left (long-term memories, in the system prompt, are another matter).
    turns = [m for m in prompt if m["role"] != "system"]
    assert not any("my secret is 42" in str(m["content"]) for m in turns)
    assert turns[-1]["content"].endswith("what was my secret?")


def history_turns(world: World) -> str:
    """The history turns of the last prompt (not the system prompt), as one text."""
    prompt = world.provider.chat_requests()[-1].body["messages"]
    return "\n".join(str(m["content"]) for m in prompt if m["role"] != "system")


async def test_history_clear_forgets_only_your_exchanges_unless_everyone_with_manage_channels(
    world: World,
) -> None:
    await world.set_key(world.alice)
    await world.set_key(world.bob)

    async def clear(user: Json, *, everyone: bool = False, permissions: str = "0") -> str:
        options = {"personality": "lilith", **({"everyone": True} if everyone else {})}
        done = await world.discord.slash(
            world.general,
            user,
            "history",
            options,
            subcommand=["clear"],
            permissions=permissions,
        )
        return await answered(world, done)

    async def say(user: Json, text: str) -> None:
        said = await world.discord.say(world.general, user, f"@Lilith {text}")
        await world.delivered(f"{said.id}:lilith")

    async with running_bot(world):
        await say(world.alice, "my secret is 42")
        await say(world.bob, "bob was here")
        assert "Cleared 2 messages of your history" in await clear(world.bob)
        await say(world.alice, "what was my secret?")
        assert "my secret is 42" in history_turns(world)  # Alice's exchange stays
        assert "bob was here" not in history_turns(world)

        # Everyone's: the gateway refuses it without Manage Channels.
        refused = await clear(world.bob, everyone=True)
        assert "Manage Channels" in refused
        await say(world.alice, "still there?")
        assert "my secret is 42" in history_turns(world)
        done = await clear(world.bob, everyone=True, permissions=MANAGE_CHANNELS)
        assert "everyone's history" in done
        await say(world.alice, "anything left?")
    assert "my secret is 42" not in history_turns(world)


async def test_character_create_then_talk_to_it(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world, personality_cache_seconds=0):
        made = await world.discord.slash(
            world.general,
            world.alice,
            "character",
            {"name": "Morgana", "system_prompt": "You are Morgana.", "public": True},
            subcommand=["create"],
        )
        assert "Created **Morgana**" in await answered(world, made)
        await world.discord.say(world.general, world.alice, "@Morgana hello")
        (answer,) = await world.discord.wait_until(
            lambda: world.discord.webhook_messages(world.general)
        )
    assert answer.author_name == "Morgana"
