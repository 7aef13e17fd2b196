"""What commands answer, as a demanding user reads it, through the fake Discord and the whole
mesh: a switch that was already so says so (not as if it had just changed), a personality is
named by its display name ("Echo"), not by what was typed ("echo"), and `/lorebook` options
autocomplete (the user's own lorebooks; for attaching, the personalities they own)."""

from __future__ import annotations

import json
import uuid

import pytest

from tzurot.bot.commands.common import NOT_YET
from tzurot.testing.cards import world_info
from tzurot.testing.discord_e2e import World, member_actor, running_bot
from tzurot.testing.fake_discord import FakeInteraction, Json
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

MANAGE_CHANNELS = str(1 << 4)


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()), within=60)
    text = "\n".join(t for t in interaction.texts() if t)
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text


async def slash(world: World, user: Json, command: str, *sub: str, **options: object) -> str:
    """`user`'s `/command sub… options` in #general (with Manage Channels), answered."""
    done = await world.discord.slash(
        world.general, user, command, options, subcommand=list(sub), permissions=MANAGE_CHANNELS
    )
    return await answered(world, done)


async def suggested(
    world: World, user: Json, command: str, sub: str, focused: str, **options: object
) -> list[Json]:
    """What the autocomplete of `/command sub`'s `focused` option offers `user`."""
    asked = await world.discord.slash(
        world.general, user, command, options, subcommand=[sub], focused=focused
    )
    await world.discord.wait_until(lambda: any(r.get("type") == 8 for r in asked.responses))
    return asked.choices()


async def own(world: World, user: Json, name: str) -> str:
    """A personality `user` owns, shown as `name`; its slug (new in each test: the tests of
    this module share one gateway), which the tests type."""
    slug = f"{name.lower()}-{uuid.uuid4().hex[:8]}"
    await world.cli.CreatePersonality(
        gw.CreatePersonalityRequest(
            actor=member_actor(user),
            personality=common.Personality(
                slug=slug, display_name=name, system_prompt=f"You are {name}."
            ),
        )
    )
    return slug


async def book(world: World, user: Json, name: str, entries: int = 1) -> str:
    """A lorebook of `user`'s with `entries` entries; its id."""
    document = world_info(**{f"e{i}": {"key": [f"k{i}"], "content": "x"} for i in range(entries)})
    imported = await world.cli.ImportLorebook(
        gw.ImportLorebookRequest(
            actor=member_actor(user), document=json.dumps(document).encode(), name=name
        )
    )
    return imported.lorebook.id


def _where(world: World) -> common.Location:
    return common.Location(guild_id=str(world.guild["id"]), channel_id=str(world.general["id"]))


async def freewill(world: World, state: str) -> str:
    return await slash(world, world.alice, "freewill", state, personality="lilith")


async def test_freewill_on_when_on_already_says_so(world: World) -> None:
    await world.set_key(world.alice)
    await world.cli.ActivateChannel(
        gw.ActivateChannelRequest(location=_where(world), personality="lilith")
    )
    async with running_bot(world):
        on, on_again = await freewill(world, "on"), await freewill(world, "on")
    assert on.startswith("**Lilith** may now speak up here on its own, at most 3 times"), on
    assert on_again.startswith("**Lilith** already speaks up here on its own: at most 3 times")
    assert on_again.endswith("Each message is paid with your key. `/freewill off` stops it.")


async def test_freewill_off_when_off_already_says_so(world: World) -> None:
    await world.set_key(world.alice)
    await world.cli.ActivateChannel(
        gw.ActivateChannelRequest(location=_where(world), personality="lilith")
    )
    async with running_bot(world):
        await freewill(world, "on")
        off, off_again = await freewill(world, "off"), await freewill(world, "off")
    assert off == "**Lilith** no longer speaks up on its own here."
    assert off_again == "Free will was already off for **Lilith** here; nothing changed."


async def test_channel_activate_twice_says_it_already_answers(world: World) -> None:
    async with running_bot(world):
        first = await slash(world, world.alice, "channel", "activate", personality="lilith")
        again = await slash(world, world.alice, "channel", "activate", personality="lilith")
    assert first.startswith("**Lilith** now answers every message here."), first
    assert again.startswith("**Lilith** already answers every message here; nothing changed.")


@pytest.mark.parametrize(
    ("command", "options", "expected"),
    [
        pytest.param(
            ("personality", "voice", "show"), {}, "Echo has no voice.", id="personality-voice-show"
        ),
        pytest.param(
            ("personality", "voice-sample", "list"),
            {},
            "Echo has no voice samples.",
            id="personality-voice-sample-list",
        ),
        pytest.param(
            ("personality", "voice", "remove"),
            {},
            "Echo has no voice now.",
            id="personality-voice-remove",
        ),
        pytest.param(("model", "show"), {}, "**Echo** answers you here with", id="model-show"),
        pytest.param(("model", "reset"), {}, "**Echo** now uses ", id="model-reset"),
        pytest.param(
            ("settings", "view"), {}, "**Your settings here toward Echo**\n", id="settings-view"
        ),
        pytest.param(
            ("history", "clear"),
            {},
            "Cleared 0 messages of your history with Echo.",
            id="history-clear",
        ),
        pytest.param(
            ("memory", "stats"), {}, "Echo has no memories of you yet.", id="memory-stats"
        ),
        pytest.param(
            ("memory", "browse"), {}, "Echo has no memories of you yet.", id="memory-browse"
        ),
        pytest.param(
            ("memory", "incognito"),
            {"state": "on"},
            "Incognito with Echo until ",
            id="memory-incognito",
        ),
        pytest.param(("memory", "fresh"), {}, "A fresh start with Echo: ", id="memory-fresh"),
    ],
)
async def test_replies_name_the_personality_by_its_display_name(
    world: World, command: tuple[str, ...], options: dict[str, str], expected: str
) -> None:
    if command[0] == "memory":
        await world.memory_ready()
    echo = await own(world, world.alice, "Echo")  # typed by its slug, echo-…
    async with running_bot(world):
        said = await slash(world, world.alice, *command, personality=echo, **options)
    assert said.startswith(expected), said


async def test_channel_deactivate_names_it_by_its_display_name(world: World) -> None:
    async with running_bot(world):
        await slash(world, world.alice, "channel", "activate", personality="lilith")
        stopped = await slash(world, world.alice, "channel", "deactivate", personality="lilith")
    assert stopped == "**Lilith** no longer answers every message here."


async def test_incognito_off_when_not_on_says_so(world: World) -> None:
    await world.memory_ready()
    echo = await own(world, world.alice, "Echo")

    async def incognito(state: str) -> str:
        return await slash(world, world.alice, "memory", "incognito", personality=echo, state=state)

    async with running_bot(world):
        not_on = await incognito("off")
        await incognito("on")
        off = await incognito("off")
    assert not_on == "Incognito was not on with Echo; it remembers as before."
    assert off == "Incognito is off: Echo remembers again."


async def test_fresh_undone_when_none_says_so(world: World) -> None:
    await world.memory_ready()
    echo = await own(world, world.alice, "Echo")

    async def fresh(**options: object) -> str:
        return await slash(world, world.alice, "memory", "fresh", personality=echo, **options)

    async with running_bot(world):
        not_fresh = await fresh(undo=True)
        await fresh()
        undone = await fresh(undo=True)
    assert not_fresh == (
        "There was no fresh start with Echo; it already uses all its memories of you."
    )
    assert undone == "Echo uses all its memories of you again."


async def test_link_previews_set_as_they_were_say_so(world: World) -> None:
    echo = await own(world, world.alice, "Echo")
    async with running_bot(world):
        same = await slash(
            world, world.alice, "character", "link_previews", personality=echo, show=True
        )
        hidden = await slash(
            world, world.alice, "character", "link_previews", personality=echo, show=False
        )
    assert same == "Link previews in **Echo**'s answers were already shown."
    assert hidden == "Link previews in **Echo**'s answers are now hidden."


async def skills(world: World, sub: str, personality: str) -> str:
    available = await world.cli.ListAvailableSkills(gw.ListAvailableSkillsRequest())
    skill = available.skills[0].name
    said = await slash(world, world.alice, "skills", sub, personality=personality, skill=skill)
    return said.replace(skill, "SKILL")


async def test_skill_disabled_when_not_used_says_so(world: World) -> None:
    echo = await own(world, world.alice, "Echo")
    async with running_bot(world):
        unused = await skills(world, "disable", echo)
    assert unused == "**Echo** does not use `SKILL`; nothing changed. It uses: none"


async def test_skill_enabled_when_used_already_says_so(world: World) -> None:
    echo = await own(world, world.alice, "Echo")
    async with running_bot(world):
        enabled = await skills(world, "enable", echo)
        again = await skills(world, "enable", echo)
    assert enabled == "**Echo** now uses: `SKILL`"
    assert again == "**Echo** already uses `SKILL`; nothing changed. It uses: `SKILL`"


async def test_lorebook_attached_twice_says_it_already_was(world: World) -> None:
    await book(world, world.alice, "moor")
    async with running_bot(world):
        first = await slash(
            world, world.alice, "lorebook", "attach", lorebook="moor", scope="channel"
        )
        again = await slash(
            world, world.alice, "lorebook", "attach", lorebook="moor", scope="channel"
        )
    assert first == "**moor** is now in play (channel)."
    assert again == "**moor** was already in play there (channel); nothing changed."


async def test_lorebook_options_autocomplete_her_books_and_personalities(world: World) -> None:
    moor = await book(world, world.alice, "Moor", entries=2)
    fen = await book(world, world.alice, "Fen")
    await book(world, world.bob, "Bob's marsh")
    for i in range(26):
        await book(world, world.alice, f"Heath {i:02d}")
    wren = await own(world, world.alice, "Wren")
    async with running_bot(world):
        typed = await suggested(world, world.alice, "lorebook", "export", "lorebook", lorebook="mo")
        many = await suggested(world, world.alice, "lorebook", "delete", "lorebook", lorebook="")
        replace = await suggested(world, world.alice, "lorebook", "import", "replace", replace="fe")
        bobs = await suggested(world, world.bob, "lorebook", "attach", "lorebook", lorebook="")
        owned = await suggested(
            world, world.alice, "lorebook", "attach", "personality", personality=""
        )
        detach = await suggested(
            world, world.alice, "lorebook", "detach", "personality", personality="wr"
        )
        listed = await suggested(
            world, world.alice, "lorebook", "list", "personality", personality="lil"
        )
    assert typed == [{"name": "Moor (2 entries)", "value": moor}]
    assert len(many) == 25  # Discord's limit, of her 28
    assert all("Bob" not in c["name"] for c in many)
    assert replace == [{"name": "Fen (1 entry)", "value": fen}]
    assert [c["name"] for c in bobs] == ["Bob's marsh (1 entry)"]
    assert owned == [{"name": "Wren", "value": wren}]  # not Lilith: public, not hers
    assert detach == [{"name": "Wren", "value": wren}]
    assert [c["name"] for c in listed] == ["Lilith"]  # any she may see
