"""Commands that remove something for good act only on the personality the user chose, through
the fake Discord, the real bot and the whole mesh.

Alice's own alias "luna moon" names her Old, and she then makes "Luna Moon": to the gateway's
name rules "Luna Moon" means Old (her own alias before a display name). `/personality delete`,
`/history clear`, `/history undo`, `/memory prune`, `/personality voice remove` and
`/character alias remove` given such a name do nothing: the reply names the personality it
means (display name and slug) and the slug to type. Given the slug (what picking from their
autocomplete sends), they act on exactly that one.
"""

from __future__ import annotations

from typing import Any

import pytest

from tzurot.bot.commands.common import NOT_YET
from tzurot.testing.discord_e2e import World, member_actor, running_bot
from tzurot.testing.fake_discord import FakeInteraction, Json
from tzurot.testing.memory_rows import scalar
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()), within=60)
    text = "".join(interaction.texts())
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text


async def slash(world: World, user: Json, *command: str, **options: Any) -> str:
    done = await world.discord.slash(
        world.general, user, command[0], options, subcommand=list(command[1:])
    )
    return await answered(world, done)


async def suggested(world: World, user: Json, *command: str, typed: str) -> list[Json]:
    asked = await world.discord.slash(
        world.general,
        user,
        command[0],
        {"personality": typed},
        subcommand=list(command[1:]),
        focused="personality",
    )
    await world.discord.wait_until(lambda: any(r.get("type") == 8 for r in asked.responses))
    return asked.choices()


async def exists(world: World, slug: str) -> bool:
    found = await scalar(world, "SELECT count(*) FROM core.personalities WHERE slug = :s", s=slug)
    return bool(found)


async def old_and_luna_moon(world: World, prefix: str) -> tuple[str, str]:
    """Alice's "<prefix> Old", her own alias "<prefix> luna moon" for it, then her
    "<prefix> Luna Moon": the slugs of both."""
    old = await slash(
        world, world.alice, "character", "create",
        name=f"{prefix} Old", system_prompt="You are old.",
    )  # fmt: skip
    assert old.startswith(f"Created **{prefix} Old**"), old
    old_slug = f"{prefix.lower()}-old"
    alias = await slash(
        world, world.alice, "alias", "add", personality=old_slug, alias=f"{prefix} luna moon"
    )
    assert f"now means **{prefix} Old**" in alias, alias
    luna = await slash(
        world, world.alice, "character", "create",
        name=f"{prefix} Luna Moon", system_prompt="You are the moon.",
    )  # fmt: skip
    assert luna.startswith(f"Created **{prefix} Luna Moon**"), luna
    return old_slug, f"{prefix.lower()}-luna-moon"


async def test_delete_by_a_name_meaning_another_deletes_nothing_until_the_slug_is_typed(
    world: World,
) -> None:
    async with running_bot(world):
        old, luna = await old_and_luna_moon(world, "Dl")
        by_name = await slash(
            world, world.alice, "personality", "delete", personality="Dl Luna Moon",
            confirm="DELETE",
        )  # fmt: skip
        both_kept = (await exists(world, old), await exists(world, luna))
        by_its_own_name = await slash(
            world, world.alice, "personality", "delete", personality="Dl Old", confirm="DELETE"
        )
        warned = await slash(
            world, world.alice, "personality", "delete", personality="Dl Luna Moon", confirm="no"
        )
        by_slug = await slash(
            world, world.alice, "personality", "delete", personality=luna, confirm="DELETE"
        )

    assert by_name == (
        "Nothing deleted: `Dl Luna Moon` means **Dl Old** (`dl-old`) for you. This cannot be "
        "undone, so it is done only to a personality named by its slug (picking it from the "
        "list gives it). If **Dl Old** (`dl-old`) is the one, run `/personality delete` with "
        "`personality: dl-old` and `confirm: DELETE`."
    )
    assert both_kept == (True, True)
    # Its own display name is no slug either: nothing deleted, the slug to type named.
    assert by_its_own_name.startswith("Nothing deleted: `Dl Old` means **Dl Old** (`dl-old`)")
    # The warning names what the name means and the exact command that deletes it.
    assert "Deleting **Dl Old** (`dl-old`) cannot be undone" in warned
    assert "`/personality delete` with `personality: dl-old` and `confirm: DELETE`" in warned
    assert by_slug.startswith("Deleted **Dl Luna Moon** (`dl-luna-moon`) for good")
    assert not await exists(world, luna)
    assert await exists(world, old)


async def test_history_clear_and_undo_act_only_on_the_personality_named_by_its_slug(
    world: World,
) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        old, luna = await old_and_luna_moon(world, "Hc")
        for slug, text in ((old, "the owl is grey"), (luna, "the moon is full")):
            said = await world.discord.say(world.general, world.alice, f"@{slug} {text}")
            await world.delivered(f"{said.id}:{slug}")
        offered = await suggested(world, world.alice, "history", "clear", typed="hc ")
        cleared_by_name = await slash(
            world, world.alice, "history", "clear", personality="Hc Luna Moon"
        )
        undone_by_name = await slash(
            world, world.alice, "history", "undo", personality="Hc Luna Moon"
        )
        asked = await world.discord.say(world.general, world.alice, f"@{old} what do you recall?")
        await world.delivered(f"{asked.id}:{old}")
        old_history = history_turns(world)
        cleared = await slash(world, world.alice, "history", "clear", personality=luna)
        undone = await slash(world, world.alice, "history", "undo", personality=old)

    assert {"name": "Hc Old (hc-old)", "value": old} in offered
    assert {"name": "Hc Luna Moon (hc-luna-moon)", "value": luna} in offered
    assert cleared_by_name.startswith(
        "Nothing cleared: `Hc Luna Moon` means **Hc Old** (`hc-old`) for you."
    )
    assert cleared_by_name.endswith("run `/history clear` with `personality: hc-old`.")
    assert undone_by_name.startswith("Nothing removed: `Hc Luna Moon` means **Hc Old** (`hc-old`)")
    assert undone_by_name.endswith("run `/history undo` with `personality: hc-old`.")
    assert "the owl is grey" in old_history  # Old's history is all there
    assert cleared == "Cleared 2 messages of your history with Hc Luna Moon."
    assert undone == "Removed 2 messages from history."


def history_turns(world: World) -> str:
    prompt = world.provider.chat_requests()[-1].body["messages"]
    return "\n".join(str(m["content"]) for m in prompt if m["role"] != "system")


async def test_prune_voice_remove_and_alias_remove_want_the_slug_too(world: World) -> None:
    await world.memory_ready()
    async with running_bot(world):
        old, _ = await old_and_luna_moon(world, "Pv")
        await world.cli.SetPersonalityVoice(
            gw.SetPersonalityVoiceRequest(
                actor=member_actor(world.alice),
                personality=old,
                voice=common.VoiceConfig(provider="openai", voice_id="alloy"),
            )
        )
        added = await slash(
            world, world.alice, "character", "alias", "add", personality=old, alias="pv oldie"
        )
        assert "`@pv oldie` now means **Pv Old**" in added, added
        pruned = await slash(world, world.alice, "memory", "prune", personality="Pv Luna Moon")
        unvoiced = await slash(
            world, world.alice, "personality", "voice", "remove", personality="Pv Luna Moon"
        )
        unaliased = await slash(
            world, world.alice, "character", "alias", "remove",
            personality="Pv Luna Moon", alias="pv oldie",
        )  # fmt: skip
        voice_kept = await slash(
            world, world.alice, "personality", "voice", "show", personality=old
        )
        alias_kept = await world.cli.GetPersonality(
            gw.GetPersonalityRequest(actor=member_actor(world.alice), personality=old)
        )
        pruned_by_slug = await slash(world, world.alice, "memory", "prune", personality=old)
        unvoiced_by_slug = await slash(
            world, world.alice, "personality", "voice", "remove", personality=old
        )
        unaliased_by_slug = await slash(
            world, world.alice, "character", "alias", "remove", personality=old, alias="pv oldie"
        )

    refused = "`Pv Luna Moon` means **Pv Old** (`pv-old`) for you."
    assert pruned.startswith(f"Nothing deleted: {refused}")
    assert pruned.endswith("run `/memory prune` with `personality: pv-old`.")
    assert unvoiced.startswith(f"Nothing removed: {refused}")
    assert unvoiced.endswith("run `/personality voice remove` with `personality: pv-old`.")
    assert unaliased.startswith(f"Nothing removed: {refused}")
    assert unaliased.endswith(
        "run `/character alias remove` with `personality: pv-old` and `alias: pv oldie`."
    )
    assert "speaks with openai voice `alloy`" in voice_kept
    assert "pv oldie" in alias_kept.personality.aliases
    assert pruned_by_slug == "Deleted 0 memories."
    assert unvoiced_by_slug == "Pv Old has no voice now."
    assert unaliased_by_slug == "`@pv oldie` no longer means **Pv Old**."
