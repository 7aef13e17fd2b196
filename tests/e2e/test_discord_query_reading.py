"""A reply's memory query read as its user's turn (issue 16), through the fake Discord and
the whole mesh: memory runs its model once on the user's message, for the search and for the
turn's long-term memory, and the memory formed carries the vector of its own text."""

from __future__ import annotations

import json

import numpy as np
import pytest
from prometheus_client import REGISTRY

from tzurot.memory.minilm_onnx import OnnxMiniLMEmbedder
from tzurot.testing.discord_e2e import World, running_bot
from tzurot.testing.memory_rows import formed, scalar

pytestmark = pytest.mark.e2e


def embedded(source: str) -> float:
    return (
        REGISTRY.get_sample_value("tzurot_memory_embedded_texts_total", {"source": source}) or 0.0
    )


async def memories(world: World, personality: str) -> dict[str, np.ndarray]:
    """The personality's memories: text -> stored vector."""
    rows = await scalar(
        world,
        "SELECT json_object_agg(text, embedding::text) FROM memory.memories"
        " WHERE personality_id = :p",
        p=personality,
    )
    assert isinstance(rows, dict)
    return {text: np.array(json.loads(vector)) for text, vector in rows.items()}


async def test_the_users_turn_is_embedded_once_for_its_search_and_its_memory(
    world: World,
) -> None:
    await world.set_key(world.alice)
    await world.memory_ready()
    embedder = world.mesh.memory_app.embedder if world.mesh.memory_app else None
    assert isinstance(embedder, OnnxMiniLMEmbedder)
    lilith = await scalar(world, "SELECT id::text FROM core.personalities WHERE slug = 'lilith'")
    assert isinstance(lilith, str)
    async with running_bot(world):
        warm = await world.discord.say(world.general, world.alice, "@Lilith hello again")
        await world.delivered(f"{warm.id}:lilith")
        await formed(world, lilith)
        model, reused = embedded("model"), embedded("reused")

        said = await world.discord.say(
            world.general, world.alice, "@Lilith my reading lamp is blue and my cat is Miso"
        )
        await world.delivered(f"{said.id}:lilith")
        await formed(world, lilith)
        turn = "Alice: my reading lamp is blue and my cat is Miso"
        found = await memories(world, lilith)

    # The message ran the model once (read as "Alice: ..."), the answer once; the user's
    # turn took the query's run.
    assert embedded("reused") - reused == 1
    assert embedded("model") - model == 2
    assert turn in found
    assert any(text.startswith("Lilith: ") and "Miso" in text for text in found)
    stored = found[turn] / np.linalg.norm(found[turn])
    own = np.array(embedder.embed_sync([turn])[0])
    # The memory's vector is its text's own (as if embedded alone), not the query's: the
    # query's vector is the message's tokens read in the turn.
    assert float(stored @ own) > 0.9999
    start = len("Alice: ")
    query = np.array(await embedder.embed_in_context(turn, start))
    assert float(stored @ query) < 0.99
    embedder.embed_sync([turn])  # this test's own read is taken again, not left behind
