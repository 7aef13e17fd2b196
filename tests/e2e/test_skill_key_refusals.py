"""A wallet key a skill's service refuses turns inactive, though the reply goes on, through
the whole mesh: Echo draws on Alice's OpenAI key, which OpenAI refuses (401), and searches
the web on her Brave key, which Brave refuses; the model answers without them, and
`/wallet list` then shows both keys inactive (not "used" by this reply), her OpenRouter key
(the answer's) active, as after any refused key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.refused_skill_keys import (
    ANSWER,
    DRAW,
    OPENAI_KEY,
    SEARCH,
    refused_skill_keys,
    wallet,
)
from tzurot.testing.e2e import Harness, request
from tzurot.testing.postgres import DatabaseFactory

pytestmark = pytest.mark.e2e


@pytest.fixture
async def harness(fresh_database: DatabaseFactory, tmp_path: Path) -> AsyncIterator[Harness]:
    """The shared mesh (refused_skill_keys.py)."""
    async with refused_skill_keys(fresh_database(), tmp_path) as h:
        yield h


async def test_keys_a_skills_services_refused_turn_inactive_and_the_answer_goes_on(
    harness: Harness,
) -> None:
    h = harness
    assert await wallet(h) == {"brave": True, "openai": True, "openrouter": True}
    h.provider.enqueue_tool_calls(DRAW, SEARCH)
    h.provider.enqueue(ANSWER)
    events = [event async for event in h.bot.Generate(request("draw and research the moon"))]
    finished = events[-1].finished
    assert finished.content == ANSWER
    assert finished.usage.provider == "openrouter"
    # The drawing was asked for on her OpenAI key and refused (401): nothing was drawn.
    [drawing] = h.provider.image_requests()
    assert drawing.api_key == OPENAI_KEY
    assert not finished.files
    assert await wallet(h) == {"brave": False, "openai": False, "openrouter": True}
