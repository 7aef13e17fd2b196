"""An answer the provider ended at its length limit (finish_reason "length") through the fake
Discord and the whole mesh: its last message says it was cut off, above the model footer,
within Discord's 2000 characters; history keeps the answer without the line."""

from __future__ import annotations

import pytest

from tzurot.bot.answer_notes import CUT_OFF_LINE
from tzurot.testing.discord_e2e import World, running_bot

pytestmark = pytest.mark.e2e


async def test_an_answer_cut_at_the_length_limit_says_so_in_its_last_message(
    world: World,
) -> None:
    await world.set_key(world.alice)
    long_tale = " ".join(f"word{n}" for n in range(400))  # over one message
    world.provider.enqueue(long_tale, finish_reason="length")
    world.provider.enqueue("A whole answer.")
    async with running_bot(world):
        footer = await world.discord.slash(
            world.general,
            world.alice,
            "settings",
            {"key": "model_footer", "value": "on"},
            subcommand=["set"],
        )
        await world.discord.wait_until(lambda: any(footer.texts()))
        cut = await world.discord.say(world.general, world.alice, "@Lilith tell me everything")
        await world.delivered(f"{cut.id}:lilith")
        whole = await world.discord.say(world.general, world.alice, "@Lilith and briefly?")
        await world.delivered(f"{whole.id}:lilith")
    *tale, last, brief = world.discord.webhook_messages(world.general)
    assert tale, "the tale takes more than one message"
    assert all(len(m.content) <= 2000 for m in [*tale, last])
    assert last.content.endswith(f"word399\n{CUT_OFF_LINE}\n-# openrouter/fake/lilith")
    assert CUT_OFF_LINE not in "".join(m.content for m in tale)
    assert brief.content.endswith("A whole answer.\n-# openrouter/fake/lilith")
    assert CUT_OFF_LINE not in brief.content
    history = world.provider.chat_requests()[-1].body["messages"]
    assert any("word399" in str(m["content"]) for m in history)
    assert not any("cut off" in str(m["content"]) for m in history)
