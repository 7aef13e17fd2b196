"""What is switched off in a channel through the fake Discord stays off there: `/freewill off`
(the personality speaks up on its own no more, one still on does) and `/notifications
unsubscribe` (an announcement reaches the other subscribers only). On the group mesh of
test_discord_groups.py, whose ManualClock the free will test moves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e import test_discord_groups as groups
from tests.e2e.test_discord_groups import (
    MANAGE_CHANNELS,
    MANAGE_GUILD,
    activate,
    answers,
    bot_posts,
    events_of,
    make_superuser,
    set_channel,
    settled,
    settled_notices,
    subscribe,
)
from tzurot.gateway.clock import ManualClock
from tzurot.testing.discord_e2e import World, running_bot

pytestmark = pytest.mark.e2e

# The group mesh's fixtures, for this module (its own mesh, clock and fresh channels).
clock, changelog, group_mesh, world = (
    groups.clock,
    groups.changelog,
    groups.group_mesh,
    groups.world,
)


async def freewill(world: World, sub: str, **options: object) -> str:
    done = await world.discord.slash(
        world.general,
        world.alice,
        "freewill",
        options,
        subcommand=[sub],
        permissions=MANAGE_CHANNELS,
    )
    await world.discord.wait_until(lambda: any(done.texts()))
    return "".join(done.texts())


async def quiet_spell(world: World, clock: ManualClock) -> int:
    """Alice talks to Lilith, then the channel is quiet for two hours and the scheduler
    looks: how many turns it queued here (it looks at every due channel of the module)."""
    clock.advance(timedelta(minutes=1))
    said = await world.discord.say(world.general, world.alice, "@Lilith good night")
    await world.delivered(f"{said.id}:lilith")
    clock.advance(timedelta(hours=2))
    before = len(await events_of(world, str(world.general["id"])))
    assert world.mesh.gateway_app is not None
    await world.mesh.gateway_app.features.freewill.tick()
    return len(await events_of(world, str(world.general["id"]))) - before


async def test_after_freewill_off_only_the_personality_still_on_speaks_up(
    world: World, clock: ManualClock
) -> None:
    await activate(world, "Lilith", "Sage")
    await set_channel(world, "group_chain_cap", 0)  # no answers to answers: only turns
    async with running_bot(world):
        on = [
            await freewill(world, "on", personality=name, daily_budget=5, quiet_hours="0-0")
            for name in ("Lilith", "Sage")
        ]
        off = await freewill(world, "off", personality="Lilith")
        status = await freewill(world, "status")
        speakers = []
        for _ in range(2):
            assert await quiet_spell(world, clock) == 1
            events = await settled(world, lambda ev: all(e["delivered_at"] for e in ev))
            assert events[-1]["reason"] == "check_in"
            assert events[-1]["dropped_reason"] == ""
            speakers.append(answers(world)[-1].author_name)
        last = await freewill(world, "off", personality="Sage")
        posted = len(answers(world))
        queued_after = await quiet_spell(world, clock)
        posted_after = len(answers(world)) - posted - 1  # Lilith's answer to "good night"
    assert all("may now speak up here on its own" in text for text in on)
    assert "**Lilith** no longer speaks up on its own here." in off
    assert "**Lilith**: off" in status
    assert "**Sage**: on" in status
    assert speakers == ["Sage", "Sage"]
    assert "**Sage** no longer speaks up on its own here." in last
    assert (queued_after, posted_after) == (0, 0)


async def test_after_notifications_unsubscribe_an_announcement_skips_that_channel(
    world: World, clock: ManualClock
) -> None:
    # A notice is due from the database's now() but claimed by the gateway's clock: the
    # module's clock must not lag the real time (it starts at today's noon, UTC).
    clock.set(max(clock.now(), datetime.now(UTC) + timedelta(minutes=1)))
    news = world.discord.add_channel(world.guild, "still-news")
    left = world.discord.add_channel(world.guild, "was-news")
    text = f"Upgrade at dawn ({uuid.uuid4().hex[:6]})"
    await make_superuser(world, world.alice)
    async with running_bot(world):
        for channel in (news, left):
            await subscribe(world, channel)
        done = await world.discord.slash(
            left,
            world.alice,
            "notifications",
            subcommand=["unsubscribe"],
            permissions=MANAGE_GUILD,
        )
        await world.discord.wait_until(lambda: any(done.texts()))
        unsubscribed = "".join(done.texts())
        queued = await world.discord.slash(
            news, world.alice, "admin", {"text": text}, subcommand=["announce"]
        )
        await world.discord.wait_until(lambda: any(queued.texts()))
        announced = "".join(queued.texts())
        await settled_notices(world, text, news)
        left_events = await events_of_channel(world, left)
    assert unsubscribed == "This channel no longer gets release notes."
    assert "Announcement queued for" in announced
    assert [m.content for m in bot_posts(world, news) if text in m.content] == [text]
    assert [m for m in bot_posts(world, left) if text in m.content] == []
    assert [e for e in left_events if e["text"] == text] == []


async def events_of_channel(world: World, channel: dict[str, object]) -> list[dict[str, object]]:
    return await events_of(world, str(channel["id"]))
