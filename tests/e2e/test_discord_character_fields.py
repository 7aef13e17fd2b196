"""A personality's author's note (at its depth) and its own cleanup rules, set with
`/character edit` in the fake Discord, reach what the provider receives and what is posted."""

from __future__ import annotations

from typing import Any

import pytest

from tzurot.bot.commands.common import NOT_YET
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.fake_discord import FakeInteraction
from tzurot.v1 import common_pb2 as common
from tzurot.v1 import gateway_pb2 as gw

pytestmark = pytest.mark.e2e

NOTE = "Answer as if writing a telegram."
RULES = '[{"pattern": "\\\\bsaid\\\\b", "replacement": "whispered"}]'


async def answered(world: World, interaction: FakeInteraction) -> str:
    await world.discord.wait_until(lambda: any(interaction.texts()))
    text = "\n".join(t for t in interaction.texts() if t)
    assert NOT_YET not in text, "the gateway answered UNIMPLEMENTED"
    return text


async def edit(world: World, user: dict[str, Any], field: str, value: str) -> str:
    done = await world.discord.slash(
        world.general,
        user,
        "character",
        {"personality": "quill", "field": field, "value": value},
        subcommand=["edit"],
    )
    return await answered(world, done)


def conversation_after_note(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (at,) = [i for i, m in enumerate(messages) if m["content"] == f"[Author's note: {NOTE}]"]
    assert messages[at]["role"] == "system"
    return [m for m in messages[at + 1 :] if m["role"] in ("user", "assistant")]


async def test_the_author_note_sits_at_its_depth_and_the_cleanup_rule_shapes_the_answer(
    world: World,
) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        created = await world.discord.slash(
            world.general,
            world.alice,
            "character",
            {"name": "Quill", "system_prompt": "You are Quill, a scribe."},
            subcommand=["create"],
        )
        assert "Created **Quill**" in await answered(world, created)
        assert "Updated author_note" in await edit(world, world.alice, "author_note", NOTE)
        assert "Updated author_note_depth" in await edit(
            world, world.alice, "author_note_depth", "4"
        )
        refused = await edit(world, world.alice, "author_note_depth", "9")
        assert "author_note_depth is 2, 3 or 4" in refused
        bad = await edit(world, world.alice, "cleanup_rules", '[{"pattern": "(unclosed"}]')
        assert "cleanup rule 0 is not a valid regex" in bad
        assert "Updated cleanup_rules" in await edit(world, world.alice, "cleanup_rules", RULES)
        # one character field changes, the note stays
        assert "Updated description" in await edit(world, world.alice, "description", "A scribe.")
        theirs = await edit(world, world.bob, "author_note", "Bob's note")
        assert "Updated" not in theirs
        viewed = await world.discord.slash(
            world.general, world.alice, "character", {"personality": "quill"}, subcommand=["view"]
        )
        view = await answered(world, viewed)
        for n, text in enumerate(["one", "two", "three", "four"]):
            said = await world.discord.say(world.general, world.alice, f"@Quill {text}")
            await world.delivered(f"{said.id}:quill")
            messages = list(world.provider.chat_requests()[-1].body["messages"])
            after = conversation_after_note(messages)
            # counted from the bottom, or from the top of a history still shorter than that
            assert len(after) == min(4, 2 * n + 1), (n, messages)
    assert f"Author's note (4 from the bottom): {NOTE}" in view
    assert "Cleanup rules: 1" in view
    assert after[-1]["content"].endswith("four")
    posted = world.discord.webhook_messages(world.general)
    answers = [m.content.splitlines()[-1] for m in posted]  # under the reply header
    assert answers == [f"You whispered: Alice: {n}" for n in ("one", "two", "three", "four")]
    alice = common.Actor(user_id=str(world.alice["id"]), display_name="alice")
    stored = await world.cli.GetPersonality(
        gw.GetPersonalityRequest(actor=alice, personality="quill")
    )
    character = stored.personality.character
    assert (character.author_note, character.author_note_depth) == (NOTE, 4)
    assert character.description == "A scribe."
    assert [(r.pattern, r.replacement) for r in stored.personality.cleanup_rules] == [
        ("\\bsaid\\b", "whispered")
    ]
