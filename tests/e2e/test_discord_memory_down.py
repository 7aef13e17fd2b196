"""Memory down, through the fake Discord and the whole mesh: the answer is still posted,
degraded (counted in tzurot_degraded_answers_total, logged, shown by Inspect), and once memory
is back on its port, answers see their history and are stored again."""

from __future__ import annotations

import pytest
import structlog
from prometheus_client import REGISTRY

from tzurot.testing.discord_e2e import World, running_bot

pytestmark = pytest.mark.e2e


def degraded(reason: str) -> float:
    return REGISTRY.get_sample_value("tzurot_degraded_answers_total", {"reason": reason}) or 0.0


def prompt_text(world: World) -> str:
    return str(world.provider.chat_requests()[-1].body["messages"])


async def test_memory_down_degrades_the_answer_and_it_recovers(world: World) -> None:
    await world.set_key(world.alice)
    await world.memory_ready()
    async with running_bot(world):
        said = await world.discord.say(world.general, world.alice, "@Lilith my lamp is blue")
        await world.delivered(f"{said.id}:lilith")
        before = degraded("memory_unavailable"), degraded("history_unavailable")

        await world.mesh.stop_memory()
        try:
            with structlog.testing.capture_logs() as logs:
                down = await world.discord.say(world.general, world.alice, "@Lilith still here?")
                (answer,) = await world.discord.wait_until(
                    lambda: [
                        m
                        for m in world.discord.webhook_messages(world.general)
                        if m.content.endswith("You said: Alice: still here?")
                    ]
                )
            without_memory = prompt_text(world)
        finally:
            await world.mesh.start_memory()
        after = degraded("memory_unavailable"), degraded("history_unavailable")
        # The bot kept confirming the posted answer: once memory is back it is stored, and
        # Inspect finds it and says what it went without.
        await world.delivered(f"{down.id}:lilith", within=60)
        inspected = await world.discord.context_menu(world.general, world.alice, "Inspect", answer)
        await world.discord.wait_until(lambda: any(inspected.texts()))

        # Back: the channels reconnect (within gRPC's 5 s reconnect backoff); the first
        # answer that sees its history again is stored as usual.
        recovered = None
        for attempt in range(30):
            asked = await world.discord.say(
                world.general, world.alice, f"@Lilith what colour is my lamp? ({attempt})"
            )
            tail = f"({attempt})"
            await world.discord.wait_until(
                lambda tail=tail: any(  # type: ignore[misc]  # a default binds the loop value
                    m.content.endswith(tail) for m in world.discord.webhook_messages(world.general)
                )
            )
            if "my lamp is blue" in prompt_text(world):
                recovered = await world.delivered(f"{asked.id}:lilith")
                break
    assert "my lamp is blue" not in without_memory  # made without the history it could not read
    assert after[0] - before[0] == 1  # counted: long-term memory unavailable
    assert after[1] - before[1] == 1  # and the history
    events = {e["event"] for e in logs}
    assert {"memory.unavailable", "history.unavailable"} <= events  # and logged
    text = "\n".join(inspected.texts())
    assert "Long-term memory was unavailable" in text
    assert "history was unavailable" in text
    assert recovered is not None, "answers never saw their history again after memory came back"
