"""Slash commands in a DM with the bot. In production the bot syncs its commands globally
(`dev_guild_id` unset), and Discord offers a global command that is not guild-only in the
user's DM with the app (discord-api-docs Application Commands, "Interaction Contexts": BOT_DM).
A user setting their key privately does `/wallet set` there. Each command a DM offers answers
as in a server, privately; one that needs a server is not offered there (the fake refuses it:
CommandUnavailable), and one whose channel level means nothing in a DM (the bot answers in no
DM) says so, never asking for a permission nobody has in a DM."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from tzurot.bot.commands.common import NO_CHANNEL_IN_DM, NOT_YET
from tzurot.testing.discord_e2e import USER_KEY, World, member_actor, running_bot
from tzurot.testing.fake_discord import CommandUnavailable, FakeInteraction, Json
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


async def asked_in_dm(
    world: World,
    dm: Json,
    command: str,
    *subcommand: str,
    options: Mapping[str, object] | None = None,
) -> tuple[str, FakeInteraction]:
    """Alice runs the command in her DM with the bot: its answer's text, and the interaction."""
    done = await world.discord.slash(dm, world.alice, command, options, subcommand=subcommand)
    await world.discord.wait_until(lambda: any(done.texts()))
    text = "\n".join(t for t in done.texts() if t)
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text, done


@pytest.fixture
def global_world(world: World) -> World:
    """A scene of this module, whose bots all sync globally: no command is registered in the
    server, so a DM and the server offer the same, global, commands."""
    assert world.guild["id"] not in world.discord.synced_commands
    return world


async def test_wallet_in_a_dm_sets_lists_tests_and_removes_the_key(global_world: World) -> None:
    world = global_world
    async with running_bot(world, dev_guild_id=None):
        assert list(world.discord.synced_commands) == ["global"]
        dm = world.discord.dm_channel(world.alice)
        opened = await world.discord.slash(
            dm, world.alice, "wallet", {"provider": "openrouter"}, subcommand=["set"]
        )
        modal = await world.discord.wait_until(opened.modal)
        assert modal["title"] == "Your openrouter API key"
        submitted = await world.discord.submit_modal(opened, world.alice, {"api_key": USER_KEY})
        await world.discord.wait_until(lambda: any(submitted.texts()))
        saved = "".join(submitted.texts())
        stored = await world.cli.ListWalletKeys(
            gw.ListWalletKeysRequest(actor=member_actor(world.alice))
        )
        listed, listing = await asked_in_dm(world, dm, "wallet", "list")
        tested, testing = await asked_in_dm(
            world, dm, "wallet", "test", options={"provider": "openrouter"}
        )
        removed, removing = await asked_in_dm(
            world, dm, "wallet", "remove", options={"provider": "openrouter"}
        )
        again, _ = await asked_in_dm(world, dm, "wallet", "list")
    assert saved == f"Saved your openrouter key (…{USER_KEY[-4:]}). It is stored encrypted."
    assert [(k.provider, k.hint, k.active) for k in stored.keys] == [
        ("openrouter", USER_KEY[-4:], True)
    ]
    assert listed == f"Your API keys:\n- **openrouter** (…{USER_KEY[-4:]}): active"
    assert tested == "Your openrouter key works."
    assert removed == "Removed your openrouter key."
    assert again == "You have no API keys stored. Add one with `/wallet set <provider>`."
    for answer in (submitted, listing, testing, removing):  # a modal has no flags
        assert answer.is_ephemeral()
    seen = [str(r) for i in (opened, submitted, listing, testing, removing) for r in i.responses]
    assert not any(USER_KEY in s for s in seen)
    assert world.discord.refusals == []


async def test_personal_commands_answer_in_a_dm_as_in_a_server(global_world: World) -> None:
    world = global_world
    await world.set_key(world.alice)
    async with running_bot(world, dev_guild_id=None):
        dm = world.discord.dm_channel(world.alice)
        answers = [
            await asked_in_dm(world, dm, "timezone", "set", options={"zone": "Asia/Tokyo"}),
            await asked_in_dm(world, dm, "timezone", "get"),
            await asked_in_dm(world, dm, "usage"),
            await asked_in_dm(world, dm, "llm-config", "list"),
            await asked_in_dm(world, dm, "model", "show", options={"personality": "lilith"}),
            await asked_in_dm(world, dm, "memory", "stats", options={"personality": "lilith"}),
            await asked_in_dm(world, dm, "memory", "browse", options={"personality": "lilith"}),
            await asked_in_dm(
                world, dm, "memory", "search", options={"personality": "lilith", "query": "tea"}
            ),
            await asked_in_dm(world, dm, "character", "browse"),
            await asked_in_dm(world, dm, "character", "view", options={"personality": "lil"}),
        ]
        typed = await world.discord.slash(
            dm,
            world.alice,
            "model",
            {"personality": "li"},
            subcommand=["show"],
            focused="personality",
        )
        await world.discord.wait_until(typed.choices)
    texts = [text for text, _ in answers]
    assert texts[0].startswith("Your time zone is **Asia/Tokyo**")
    assert texts[1].startswith("Your time zone is **Asia/Tokyo**")
    assert texts[2] == "No usage in the last day."
    assert "**lilith default** `openrouter/fake/lilith` (global)" in texts[3]
    assert texts[4].startswith("**Lilith** answers you here with **lilith default**")
    assert texts[5:8] == [
        "Lilith has no memories of you yet.",
        "Lilith has no memories of you yet.",
        "No memories match.",
    ]
    assert texts[8] == "- **Lilith** (lil, the night queen)\n- **Sage**"
    assert texts[9].startswith("**Lilith** (`lilith`)\nAliases: lil, the night queen")
    assert all(done.is_ephemeral() for _, done in answers)
    assert [c["value"] for c in typed.choices()] == ["Lilith"]
    assert world.discord.refusals == []


@pytest.mark.parametrize(
    ("command", "subcommand", "options"),
    [
        ("channel", ["list"], {}),
        ("channel", ["activate"], {"personality": "lilith"}),
        ("freewill", ["status"], {}),
        ("notifications", ["subscribe"], {}),
        # "Your conversation here": the bot answers in no DM, so a DM has none to clear.
        ("history", ["clear"], {"personality": "lilith"}),
        ("history", ["undo"], {"personality": "lilith"}),
    ],
)
async def test_commands_for_a_server_channel_are_not_offered_in_a_dm(
    global_world: World, command: str, subcommand: list[str], options: dict[str, object]
) -> None:
    world = global_world
    async with running_bot(world, dev_guild_id=None):
        dm = world.discord.dm_channel(world.alice)
        with pytest.raises(CommandUnavailable, match="not offered in a DM with the app"):
            await world.discord.slash(dm, world.alice, command, options, subcommand=subcommand)


async def test_speak_is_not_offered_in_a_dm(global_world: World) -> None:
    """Speak voices a personality's answer, posted only in a server's channel: a DM has none,
    and the bot has no voice-message permissions there for a server admin to grant."""
    world = global_world
    async with running_bot(world, dev_guild_id=None):
        dm = world.discord.dm_channel(world.alice)
        # The fake's `say` posts only in a guild channel: Alice's DM message is stored as is.
        mine = world.discord._store(world.discord._message_json(dm, world.alice, "hello"))
        with pytest.raises(CommandUnavailable, match="not offered in a DM with the app"):
            await world.discord.context_menu(dm, world.alice, "Speak", mine)
        inspected = await world.discord.context_menu(dm, world.alice, "Inspect", mine)
        await world.discord.wait_until(lambda: any(inspected.texts()))
    assert [t for t in inspected.texts() if t] == ["That is not an answer this bot posted."]
    assert inspected.is_ephemeral()


CONFIG = "CONFIG"  # stands for the id of an LLM config Alice may use


@pytest.mark.parametrize(
    ("command", "subcommand", "options"),
    [
        ("settings", ["set"], {"key": "max_images", "value": "3", "level": "channel"}),
        ("settings", ["reset"], {"key": "max_images", "level": "channel"}),
        ("model", ["set"], {"personality": "lilith", "config": CONFIG, "level": "channel"}),
        ("model", ["reset"], {"personality": "lilith", "level": "channel"}),
        ("lorebook", ["attach"], {"lorebook": "x", "scope": "channel"}),
        ("lorebook", ["detach"], {"lorebook": "x", "scope": "channel"}),
    ],
)
async def test_a_channel_level_in_a_dm_says_there_is_no_channel(
    global_world: World, command: str, subcommand: list[str], options: dict[str, object]
) -> None:
    """The channel level of a setting, a model or a lorebook: in a DM no one has Manage
    Channels and no personality answers, so the bot says why instead of asking for it."""
    world = global_world
    if options.get("config") == CONFIG:
        configs = await world.cli.ListLlmConfigs(
            gw.ListLlmConfigsRequest(actor=member_actor(world.alice))
        )
        options = {**options, "config": configs.configs[0].id}
    async with running_bot(world, dev_guild_id=None):
        dm = world.discord.dm_channel(world.alice)
        text, done = await asked_in_dm(world, dm, command, *subcommand, options=options)
        # Alice's own level still works from her DM.
        mine, _ = await asked_in_dm(
            world, dm, "settings", "set", options={"key": "max_images", "value": "3"}
        )
    assert text == NO_CHANNEL_IN_DM
    assert done.is_ephemeral()
    assert mine == "Set at level me: `max_images`: now **3** (your default)."
    assert world.discord.refusals == []
