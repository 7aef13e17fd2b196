"""Answers streaming at once in threads of one channel, against the strict fake: every thread
posts through the parent channel's one webhook, and Discord counts a webhook's requests per
webhook (discord-api-docs topics/rate-limits: top-level resources), so the answers share one
budget of edits."""

from __future__ import annotations

import pytest

from tzurot.testing.discord_e2e import World, running_bot

pytestmark = pytest.mark.e2e


async def test_answers_streaming_in_threads_of_one_channel_share_its_webhook(
    world: World,
) -> None:
    """With a 0.5 s floor a lone answer edits every 0.5 s, the webhook's whole budget of
    edits; three at once each take a third (every 1.5 s), so a 6 s stream is edited a few
    times each. Paced per thread, they asked for three times the bucket: discord.py, which
    paces a webhook by its `X-RateLimit-Remaining`, held their requests back (no 429 shows),
    and the answers dragged on for half a minute with about 40 edits each. (At the default
    1.5 s floor three answers happen to fit the budget; four would not.)"""
    await world.set_key(world.alice)
    words = [f"w{i}" for i in range(60)]
    world.provider.reply = " ".join(words)
    world.provider.chunk_delay = 0.1  # about 6 s of streaming each
    threads = [world.discord.add_thread(world.guild, world.general, f"side {n}") for n in "abc"]
    async with running_bot(world, stream_edit_interval_seconds=0.5):
        said = [await world.discord.say(t, world.alice, "@Lilith count with me") for t in threads]
        for message in said:
            await world.delivered(f"{message.id}:lilith", within=90)
    hooks = {m.webhook_id for t in threads for m in world.discord.webhook_messages(t)}
    assert len(hooks) == 1  # one webhook, the parent's, for every thread
    assert world.discord.rate_limited == []  # no 429, on edits or anything else
    for thread in threads:
        (answer,) = world.discord.webhook_messages(thread)
        assert answer.content.endswith(" ".join(words))  # ended whole
        assert 2 <= len(answer.edits) <= 10  # shown while streaming, at a third of the budget
