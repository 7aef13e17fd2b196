"""Streaming inside Discord's limits at the production cadence, mentions that never ping
by surprise, and long code blocks split with their fences, against the strict fake."""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import World, running_bot

pytestmark = pytest.mark.e2e


async def test_three_answers_stream_in_one_channel_within_the_webhook_limit(world: World) -> None:
    await world.set_key(world.alice)
    words = [f"w{i}" for i in range(60)]
    world.provider.reply = " ".join(words)
    world.provider.chunk_delay = 0.1  # about 6 s of streaming each, at the production cadence
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith @Sage count with me")
        for slug in ("lilith", "sage"):
            await world.delivered(f"{said.id}:{slug}", within=60)
    answers = world.discord.webhook_messages(world.general)
    assert {a.author_name for a in answers} == {"Lilith", "Sage"}
    assert all(a.content.endswith(" ".join(words)) for a in answers)  # the final text, always
    assert all(len(a.edits) >= 2 for a in answers)  # shown while streaming
    assert world.discord.rate_limited == []  # the shared cadence stayed inside the budget


async def test_a_tight_rate_limit_still_delivers_every_final_text(world: World) -> None:
    await world.set_key(world.alice)
    world.discord.webhook_rate = (2, 2.0)  # far stricter than Discord
    words = [f"w{i}" for i in range(40)]
    world.provider.reply = " ".join(words)
    world.provider.chunk_delay = 0.05
    try:
        async with running_bot(world):
            said = await world.discord.say(world.general, world.alice, "@Lilith @Sage go")
            for slug in ("lilith", "sage"):
                await world.delivered(f"{said.id}:{slug}", within=60)
    finally:
        world.discord.webhook_rate = (5, 2.0)
    answers = world.discord.webhook_messages(world.general)
    assert len(answers) == 2
    assert all(a.content.endswith("w39") for a in answers)


async def test_model_written_mentions_never_ping(world: World) -> None:
    await world.set_key(world.alice)
    role = world.discord.add_role(world.guild, "mods")
    role["mentionable"] = True
    world.provider.reply = (
        f"@everyone @here <@{world.bob['id']}> <@&{role['id']}> and you, <@{world.alice['id']}>"
    )
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith ping everyone")
        await world.delivered(f"{said.id}:lilith")
    (answer,) = world.discord.webhook_messages(world.general)
    assert "@everyone" in answer.content
    assert not any(world.discord.pings[answer.id])  # nobody notified, on send or edit
    assert answer.allowed_mentions
    assert all(a is not None for a in answer.allowed_mentions)  # set on every send and edit


async def test_the_answered_user_may_be_pinged_when_configured(world: World) -> None:
    await world.set_key(world.alice)
    world.provider.reply = f"<@{world.alice['id']}> and <@{world.bob['id']}>"
    async with running_bot(world, ping_answered_user=True):
        said = await world.discord.say(world.general, world.alice, "@Lilith ping me")
        await world.delivered(f"{said.id}:lilith")
    (answer,) = world.discord.webhook_messages(world.general)
    users = set().union(*(p.users for p in world.discord.pings[answer.id]))
    assert users == {int(world.alice["id"])}


async def test_a_long_code_block_is_split_with_its_fence_closed_and_reopened(
    world: World,
) -> None:
    await world.set_key(world.alice)
    code = "\n".join(f"    total += {i}  # keep adding" for i in range(150))
    world.provider.reply = f"Here you go:\n\n```python\n{code}\n```\nThat is all."
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith write code")
        await world.delivered(f"{said.id}:lilith")
    pieces = [a.content for a in world.discord.webhook_messages(world.general)]
    assert len(pieces) >= 3
    assert all(len(p) <= 2000 for p in pieces)
    assert all(p.count("```") % 2 == 0 for p in pieces)  # every piece renders as code
    assert all(p.startswith("```python\n") for p in pieces[1:])
    assert pieces[-1].endswith("That is all.")


async def test_a_personality_can_post_without_link_previews(world: World) -> None:
    """The owner hides link previews: its answers carry SUPPRESS_EMBEDS, so Discord adds no
    embed for the links the model wrote; other personalities' answers keep theirs."""
    await world.set_key(world.alice)
    world.provider.reply = "Read https://example.com/guide first."
    async with running_bot(world):
        created = await world.discord.slash(
            world.general,
            world.alice,
            "character",
            {"name": "Nova", "system_prompt": "You are Nova."},
            subcommand=["create"],
        )
        await world.discord.wait_until(lambda: any(created.texts()))
        not_owner = await world.discord.slash(
            world.general,
            world.bob,
            "character",
            {"personality": "Nova", "show": False},
            subcommand=["link_previews"],
        )
        hidden = await world.discord.slash(
            world.general,
            world.alice,
            "character",
            {"personality": "Nova", "show": False},
            subcommand=["link_previews"],
        )
        await world.discord.wait_until(lambda: any(hidden.texts()) and any(not_owner.texts()))
        said = await world.discord.say(world.general, world.alice, "@Nova @Lilith a link?")
        for slug in ("nova", "lilith"):
            await world.delivered(f"{said.id}:{slug}")
    assert "now hidden" in "".join(hidden.texts())
    assert "Link previews" not in "".join(not_owner.texts())  # only its owner may
    by_name = {m.author_name: m for m in world.discord.webhook_messages(world.general)}
    nova, lilith = by_name["Nova"], by_name["Lilith"]
    assert "https://example.com/guide" in nova.content
    assert (nova.flags & 4, nova.embeds) == (4, [])
    assert lilith.flags & 4 == 0
    assert lilith.embeds == [{"type": "link", "url": "https://example.com/guide"}]
