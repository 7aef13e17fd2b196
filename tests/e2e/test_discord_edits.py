"""Editing a message a personality answered, through the fake Discord and the whole mesh: the
user turn in history takes the new text, as the next prompt shows."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from tzurot.testing.discord_e2e import World, running_bot

pytestmark = pytest.mark.e2e


def _edits() -> float:
    return (
        REGISTRY.get_sample_value(
            "grpc_server_handled_total",
            {
                "grpc_service": "tzurot.v1.MemoryService",
                "grpc_method": "EditTurn",
                "grpc_code": "OK",
            },
        )
        or 0.0
    )


async def test_an_edited_message_updates_its_turn_in_history(world: World) -> None:
    await world.set_key(world.alice)
    async with running_bot(world):
        said = await world.discord.say(
            world.general, world.alice, "@Lilith my favourite colour is red"
        )
        await world.delivered(f"{said.id}:lilith")
        before = _edits()
        await world.discord.edit_message(said, "@Lilith my favourite colour is blue")
        await world.discord.wait_until(lambda: _edits() > before)
        asked = await world.discord.say(world.general, world.alice, "@Lilith which colour?")
        await world.delivered(f"{asked.id}:lilith")
    history = [
        str(m["content"])
        for m in world.provider.chat_requests()[-1].body["messages"][:-1]
        if m["role"] == "user"
    ]
    assert any(c.endswith("my favourite colour is blue") for c in history)
    assert not any("red" in c for c in history)
